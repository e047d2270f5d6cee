"""What a student never opens: the run's records, above the experiment (they import it; it never imports
them, and what a seed's models need of the records is passed in: run_state.SeedRecords). Earlier results
continued and finished models reused (ledger), each model's record written as it is measured (run_state),
which run a file belongs to (run_identity), the commit and versions beside every result (provenance), and
what is read of a results.json (results_parts). Used by the scripts alone (tests/test_house.py)."""
