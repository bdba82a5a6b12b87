"""The Oktopost API and the HTTP under it: errors, sessions, retries, the client.

Owns what a call to Oktopost or its file storage may do: `errors` (the tap's
errors, printable text, links redacted), `transport` (sessions and the request
deadline), `retry` (which answers are retried, the waits, the call throttle),
`client` (the export list and detail) and `exports` (an export's run and record).

Imports: no other package of the tap (order: api <- tables <- archives <- sync <-
streams <- tap; each imports only those before it).
"""
