"""An export run's file: the download, exact Range reads and the archive's members.

Owns `download` (ArchiveStore, RemoteFile: signed-link downloads to a private
folder, Range reads, the disk bound) and `archive` (which members are tables,
nested ZIPs, the bomb guard).

Imports: `api` and `tables` only (order: api <- tables <- archives <- sync <-
streams <- tap; each imports only those before it).
"""
