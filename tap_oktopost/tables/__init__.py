"""From CSV text to typed records: table and column names, types, reading.

Owns the pure rules of a table: `names` (table and column names), `column_types`
(types, converters, scans), `type_policy` (the column_typing setting) and
`csv_data` (decoding, CSV reading, records). No HTTP, no SDK, no files of its own.

Imports: no other package of the tap (order: api <- tables <- archives <- sync <-
streams <- tap; each imports only those before it). `archives` uses these rules
to name a member's table and to tell CSV text from other files.
"""
