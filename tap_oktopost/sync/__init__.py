"""One sync's bookkeeping and output: the plan, the bookmarks, RECORD and BATCH.

Owns `runs` (the runs a sync loads, planned before any CSV stream's SCHEMA),
`ledger` (the bookmarks' layout in state), `batches` (BATCH files), `output`
(the RECORD writer) and `progress` (what the operator sees while it runs).

Imports: `api`, `tables` and `archives` only (order: api <- tables <- archives <-
sync <- streams <- tap; each imports only those before it), and `sdk_seams`, the
SDK's internals, which any part may use.
"""
