"""The cells the result tables (readme_tables.py) share: a model's name as the claims name it, a run's
records model by model in its own seed order, mean ± std over seeds, a change with its interval, and
the run judged at the one margin."""
import pandas as pd

import claims
import config


def name(record):
    return claims.label(record["method"], record["ratio"])  # the names summary.md's claims use


def judged(results):
    """claims.for_run at the one margin, config.py's NONINFERIORITY_FRACTION, whatever the run recorded."""
    return claims.for_run(results, fraction=config.NONINFERIORITY_FRACTION)


def by_model(results):
    """{(method, ratio): [records sorted by seed]} in the run's order."""
    models = {}
    for r in results["models"]:
        models.setdefault((r["method"], r["ratio"]), []).append(r)
    order = {seed: i for i, seed in enumerate(results["config"].get("SEEDS", []))}  # the run's own seed order
    return {key: sorted(rows, key=lambda r: (order.get(r["seed"], len(order)), r["seed"]))
            for key, rows in models.items()}


def mean_std(values):
    if len(values) <= 1:
        return f"{values[0]:.2f}"
    return f"{pd.Series(values).mean():.2f} ± {pd.Series(values).std():.2f}"


def interval(test):
    return f"{test['change']:+.2f} [{test['ci_low']:+.2f}, {test['ci_high']:+.2f}]"
