"""The loyalty core: brands, clubs, members, the ledger, program rules and the
outbox. It knows nothing of Apple, Google or the web."""
