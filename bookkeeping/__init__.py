"""What a student never opens: the run's bookkeeping. Which run a file belongs to (run_identity),
one run per folder (locks), the folders' checks, atomic writes and archiving (folders), earlier
results continued and finished models reused (ledger), the commit and versions beside every result
(provenance), and the kind each constant of config.py takes (config_types)."""
