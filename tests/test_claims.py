"""Every claim of summary.md follows one rule (Holm over the run's comparisons, a non-inferiority
margin), and the equal-size comparison interpolates each method between its own ratios."""
import math

import numpy as np
import pytest

import claims
import equal_size
import metrics
import reports

VIDEOS = 100


def model(method, ratio, errors, seed=42, params=11e6, flops=1e9):
    errors = np.asarray(errors, float)
    return {"name": f"{method}_{ratio:g}", "method": method, "ratio": ratio, "seed": seed,
            "test_mae": float(np.abs(errors).mean()), "test_rmse": float(np.sqrt((errors ** 2).mean())), "test_r2": 0.5,
            "test_errors": errors.tolist(), "test_mae_before_fine_tune": 5.0, "params": 11e6,
            "params_nonzero": params, "flops": 1e9, "effective_flops": flops, "latency_ms": 10.0, "size_mb": 40.0,
            "gzip_size_mb": 30.0, "sparsity": ratio, "sparsity_before_fine_tune": ratio,
            "compression_ratio": 11e6 / params, "theoretical_speedup": 1e9 / flops, "latency_speedup": 1.0}


def results(models):
    base = next(m for m in models if m["method"] == "baseline")
    for m in models:
        m.update(metrics.bootstrap_mae(m["test_errors"], base["test_errors"], 500))
        m["mae_increase_pct"] = 100 * (m["test_mae"] - base["test_mae"]) / base["test_mae"]
    return {"config": {"DATA_ROOT": "data", "NUM_FRAMES": 2, "IMAGE_SIZE": 32, "LATENCY_TIMED_RUNS": 2,
                       "LATENCY_WARMUP_RUNS": 1, "FINE_TUNE_EPOCHS": 1, "FINE_TUNE_LEARNING_RATE": 1e-3,
                       "LR_SCHEDULE": "cosine", "BOOTSTRAP_SAMPLES": 2000, "ALPHA": 0.05, "NONINFERIORITY_MARGIN": 1.0,
                       "BN_RECALIBRATION_BATCHES": 20},
            "splits": {"train": 8, "val": 4, "test": VIDEOS}, "pretrained": {"used": False, "reason": "off"},
            "environment": {"device": "cpu", "device_name": "cpu", "torch_threads": 2, "python": "3", "torch": "2",
                            "torchvision": "0", "torch_pruning": "1.6.1", "git_commit": None},
            "mean_predictor": {"ef": 55.0, "test_mae": 10.0}, "sensitivity": [], "models": models}


def verdicts(summary_results):
    import pandas as pd
    table = claims.claims(pd.DataFrame(summary_results["models"]))
    return {(r.kind, r.method, r.ratio): r.verdict for r in table.itertuples()}, table


@pytest.fixture(scope="module")
def run():
    rng = np.random.default_rng(0)
    base = 15 + rng.normal(0, 0.3, VIDEOS)  # |error| per video
    signs = rng.choice([-1, 1], VIDEOS)
    z = rng.normal(0, 1, VIDEOS)
    noisy = base + 0.5 + 4 * (z - z.mean()) / z.std()  # change 0.5 +- 0.4: contains 0, upper bound beyond 1
    worse = base + 2 + rng.normal(0, 0.2, VIDEOS)  # clearly worse
    w = rng.normal(0, 1, VIDEOS)
    close = base + 0.05 + (w - w.mean()) / w.std()  # change 0.05 +- 0.1: within the margin
    models = [model("baseline", 0.0, signs * base), model("dense_control", 0.0, signs * base),
              model("unstructured", 0.5, signs * np.abs(noisy), params=5e6, flops=0.5e9),
              model("unstructured", 0.9, signs * worse, params=1e6, flops=0.1e9),
              model("structured", 0.5, signs * close, params=6e6, flops=0.6e9)]
    found = results(models)
    return found, reports.summary_markdown(found)


def test_an_interval_containing_zero_but_beyond_the_margin_is_inconclusive(run):
    found, summary = run
    by, table = verdicts(found)
    row = table[(table.kind == "vs baseline") & (table.method == "unstructured") & (table.ratio == 0.5)].iloc[0]
    assert row.ci_low < 0 < row.ci_high and row.upper > 1.0
    assert by[("vs baseline", "unstructured", 0.5)] == "inconclusive"
    line = next(l for l in summary.splitlines() if l.startswith("| unstructured 0.5 ") and "| baseline " in l)
    assert "inconclusive" in line and "no loss" not in line


def test_a_change_beyond_zero_after_holm_is_worse_and_one_within_the_margin_is_no_loss(run):
    found, summary = run
    by, table = verdicts(found)
    assert by[("vs baseline", "unstructured", 0.9)] == "worse"
    assert by[("vs dense control", "unstructured", 0.9)] == "worse"
    assert by[("vs baseline", "structured", 0.5)] == "no loss"
    assert by[("vs baseline", "dense_control", 0.0)] == "no loss"  # identical errors: change 0
    assert (table.p_holm >= table.p).all() and len(table) == 4 + 3 + 1  # vs baseline, vs control, one pair
    assert "The rule for every claim" in summary and "Holm" in summary
    for word in ("not distinguishable", "within the noise", "beyond the noise"):
        assert word not in summary


def test_holm_on_a_known_example():
    assert claims.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert claims.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # made monotone


def test_the_bootstrap_resamples_seeds_then_videos():
    one = [np.ones(10)]
    change, boot = claims.bootstrap_change([np.full(10, 2.0)], one, samples=100)
    assert change == 1.0 and np.allclose(boot, 1.0)
    # two seeds whose changes differ: the seeds' spread widens the interval over videos alone
    a, b = [np.full(10, 2.0), np.full(10, 4.0)], [np.ones(10), np.ones(10)]
    change, boot = claims.bootstrap_change(a, b, samples=2000)
    assert change == 2.0 and set(np.round(boot, 6)) == {1.0, 2.0, 3.0}


def test_interpolation_is_linear_in_log_size_and_never_extrapolates():
    assert equal_size.interpolate([1e6, 1e8], [5.0, 3.0], 1e7) == pytest.approx(4.0)
    assert equal_size.interpolate([1e8, 1e6], [3.0, 5.0], 1e6) == pytest.approx(5.0)
    assert math.isnan(equal_size.interpolate([1e6, 1e8], [5.0, 3.0], 1e5))


def test_summary_compares_methods_at_equal_size(run):
    found, summary = run
    assert "MAE at equal non-zero parameters" in summary and "MAE at equal effective FLOPs" in summary
    import pandas as pd
    shown = equal_size.table(pd.DataFrame(found["models"]), "params_nonzero")
    # structured 0.5 (6 M) read off unstructured's curve, between the control (11 M) and unstructured 0.5 (5 M)
    row = shown[shown["size of"] == "structured 0.5"].iloc[0]
    control, unstructured = (np.abs(found["models"][i]["test_errors"]).mean() for i in (1, 2))
    t = math.log(11e6 / 6e6) / math.log(11e6 / 5e6)
    assert row["unstructured"] == pytest.approx(control + t * (unstructured - control))
    assert math.isnan(shown[shown["size of"] == "unstructured 0.9"].iloc[0]["structured"])


def test_the_equal_size_figure_has_one_line_per_method_from_the_control(run, tmp_path):
    import pandas as pd
    import visualize_results
    found, _ = run
    paths = visualize_results.equal_size_figure(found, pd.DataFrame(found["models"]), str(tmp_path))
    assert [p.rsplit(".", 1)[1] for p in paths] == ["png", "pdf"]


def test_provenance_names_the_installed_versions_and_a_missing_checkout(monkeypatch):
    import importlib.metadata
    import subprocess
    import types

    import provenance
    assert provenance.installed("torch-pruning") == importlib.metadata.version("torch-pruning")
    assert provenance.installed("no-such-package-here") == "not installed"
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: types.SimpleNamespace(returncode=128, stdout=""))
    assert provenance.git_commit() == "none (not a git checkout)"


def test_a_summary_with_the_baseline_alone_has_no_claims(run):
    found, _ = run
    early = {**found, "models": found["models"][:1]}
    summary = reports.summary_markdown(early)
    assert "Table 1" in summary and "The rule for every claim" not in summary
