"""The names every table, claim and figure gives the experiment's models (prune_utils.py says what each
method chooses): one table, so that a method added is named in one place."""
LABELS = {
    "baseline": "baseline",
    "dense_control": "dense control",
    "unstructured": "unstructured",
    "structured": "per-layer L2 channels (masks)",
    "structured_coupled_masked": "coupled channels (masks)",
    "structured_physical": "coupled channels (removed)",
    "unstructured_random": "random unstructured",
    "structured_random": "random per-layer channels (masks)",
    "structured_physical_random": "random coupled channels (removed)",
    "scratch": "small net from scratch",
}
