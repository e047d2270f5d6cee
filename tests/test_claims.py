"""Every claim of summary.md follows one rule (a crossed bootstrap over seeds and videos, Holm over the
run's comparisons for both the difference and non-inferiority, a margin that is a share of the dense
model's error), and the equal-size comparison interpolates each method between its own ratios."""
import math

import numpy as np
import pandas as pd
import pytest

import claims
import equal_size
import metrics
import reports

VIDEOS = 100


def model(method, ratio, errors, seed=42, params=11e6, flops=1e9):
    errors = np.asarray(errors, float)
    return {"name": f"{method}_{ratio:g}", "method": method, "ratio": ratio, "seed": seed,
            "test_mae": float(np.abs(errors).mean()), "test_rmse": float(np.sqrt((errors ** 2).mean())),
            "test_r2": 0.5,
            "test_errors": errors.tolist(), "test_mae_before_fine_tune": 5.0, "params": 11e6,
            "params_nonzero": params, "params_effective": params,
            "flops": 1e9, "effective_flops": flops, "latency_ms": 10.0, "size_mb": 40.0,
            "gzip_size_mb": 30.0, "sparsity": ratio, "sparsity_before_fine_tune": ratio,
            "compression_ratio": 11e6 / params, "theoretical_speedup": 1e9 / flops, "latency_speedup": 1.0}


def results(models):
    base = next(m for m in models if m["method"] == "baseline")
    for m in models:
        m.update(metrics.bootstrap_mae(m["test_errors"], base["test_errors"], 500))
        m["mae_increase_pct"] = 100 * (m["test_mae"] - base["test_mae"]) / base["test_mae"]
    return {"config": {"DATA_ROOT": "data", "NUM_FRAMES": 2, "IMAGE_SIZE": 32, "LATENCY_TIMED_RUNS": 2,
                       "LATENCY_WARMUP_RUNS": 1, "FINE_TUNE_EPOCHS": 1, "FINE_TUNE_LEARNING_RATE": 1e-3,
                       "LR_SCHEDULE": "cosine", "BOOTSTRAP_SAMPLES": 2000, "ALPHA": 0.05,
                       "NONINFERIORITY_FRACTION": 0.1,
                       "BN_RECALIBRATION_BATCHES": 20},
            "splits": {"train": 8, "val": 4, "test": VIDEOS}, "pretrained": {"used": False, "reason": "off"},
            "environment": {"device": "cpu", "device_name": "cpu", "torch_threads": 2, "python": "3",
                            "torch": "2",
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
    noisy = base + 0.5 + 8 * (z - z.mean()) / z.std()  # change 0.5 +- 0.8: contains 0, reaches past M = 1.5
    worse = base + 2 + rng.normal(0, 0.2, VIDEOS)  # clearly worse
    w = rng.normal(0, 1, VIDEOS)
    close = base + 0.05 + (w - w.mean()) / w.std()  # change 0.05 +- 0.1: within the margin of 1.5
    models = [model("baseline", 0.0, signs * base), model("dense_control", 0.0, signs * base),
              model("unstructured", 0.5, signs * np.abs(noisy), params=5e6, flops=0.5e9),
              model("unstructured", 0.9, signs * worse, params=1e6, flops=0.1e9),
              model("structured", 0.5, signs * close, params=6e6, flops=0.6e9)]
    found = results(models)
    return found, reports.summary_markdown(found)


def test_an_interval_containing_zero_but_beyond_the_margin_is_inconclusive(run):
    found, summary = run
    by, table = verdicts(found)
    row = table[(table.kind == "vs baseline") & (table.method == "unstructured")
                & (table.ratio == 0.5)].iloc[0]
    assert row.ci_low < 0 < row.ci_high and row.ci_high > row.margin and row.p_ni_holm > 0.025
    assert by[("vs baseline", "unstructured", 0.5)] == "inconclusive"
    line = next(text for text in summary.splitlines()
                if text.startswith("| unstructured 0.5 ") and "| baseline " in text)
    assert "inconclusive" in line and "no loss" not in line


def test_a_change_beyond_zero_after_holm_is_worse_and_one_within_the_margin_is_no_loss(run):
    """The margin is a tenth of the baseline's MAE (15 here: 1.5); +2 is beyond it, +0.05 within it."""
    found, summary = run
    by, table = verdicts(found)
    assert table.margin.to_numpy() == pytest.approx(1.5, rel=0.01)
    assert by[("vs baseline", "unstructured", 0.9)] == "worse"
    assert by[("vs dense control", "unstructured", 0.9)] == "worse"
    assert by[("vs baseline", "structured", 0.5)] == "no loss"
    # identical errors on every video: no bootstrap spread, so no verdict either way
    assert by[("vs baseline", "dense_control", 0.0)] == "no bootstrap spread"
    assert "without bootstrap spread" in summary
    tested = table.dropna(subset=["p"])
    assert (tested.p_holm >= tested.p).all() and (tested.p_ni_holm >= tested.p_ni).all()
    assert len(table) == 4 + 3 + 1  # vs baseline, vs control, one pair
    assert "The rule for every claim" in summary and "Holm" in summary
    for word in ("not distinguishable", "within the noise", "beyond the noise"):
        assert word not in summary


def test_holm_on_a_known_example():
    assert claims.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert claims.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # made monotone


def test_the_bootstrap_resamples_seeds_and_one_video_draw_for_all_of_them():
    one = [np.ones(10)]
    change, boot = claims.bootstrap_change([np.full(10, 2.0)], one, samples=100)
    assert change == 1.0 and np.allclose(boot, 1.0)
    # two seeds whose changes differ: the seeds' spread widens the interval over videos alone
    a, b = [np.full(10, 2.0), np.full(10, 4.0)], [np.ones(10), np.ones(10)]
    change, boot = claims.bootstrap_change(a, b, samples=2000)
    assert change == 2.0 and set(np.round(boot, 6)) == {1.0, 2.0, 3.0}


def crossed(diffs):
    """The crossed bootstrap's variance of the mean of a seeds x videos matrix, exactly: its two-way
    decomposition, the seed part over seeds, the video part over videos, the rest over both."""
    seeds, videos = diffs.shape
    seed_part = diffs.mean(1) - diffs.mean()
    video_part = diffs.mean(0) - diffs.mean()
    rest = diffs - diffs.mean() - seed_part[:, None] - video_part[None, :]
    return ((seed_part ** 2).mean() / seeds + (video_part ** 2).mean() / videos
            + (rest ** 2).mean() / diffs.size)


def nested(diffs, samples, rng):
    """The bootstrap claims.py used to run: seeds resampled, then videos drawn afresh within each seed."""
    seeds, videos = diffs.shape
    chosen = rng.integers(0, seeds, size=(samples, seeds))
    return diffs[chosen[..., None], rng.integers(0, videos, size=(samples, seeds, videos))].mean((1, 2))


def test_three_seeds_on_the_same_videos_get_the_crossed_interval_not_the_narrower_nested_one():
    """Every seed is scored on the same 100 videos and a video hard for the pruned model is hard under
    every seed: that per-video effect does not average out over seeds, and the interval must keep it."""
    rng = np.random.default_rng(1)
    video = rng.normal(0, 2, VIDEOS)  # the effect each video has, common to the seeds
    diffs = 0.3 + video[None, :] + rng.normal(0, 0.1, (3, 1)) + rng.normal(0, 0.3, (3, VIDEOS))
    reference = [np.full(VIDEOS, 5.0)] * 3
    found = claims.test([5.0 + d for d in diffs], reference, samples=4000, margin=0.5)
    sd = math.sqrt(crossed(diffs))
    assert found["sd"] == pytest.approx(sd, rel=0.1)
    assert found["ci_high"] - found["ci_low"] >= 0.9 * 2 * 1.96 * sd
    assert nested(diffs, 4000, rng).std() < 0.7 * sd  # about sd / sqrt(3): the old interval was too narrow
    text = claims.rule(results([model("baseline", 0.0, np.ones(VIDEOS))]),
                       pd.DataFrame([{**found, "seeds": 3}]))
    assert "Only 3 training seeds" in text and "under-covers the seed-to-seed spread" in text
    assert "2.7 times" in text


def three_seeds(method, ratio, errors):
    return [model(method, ratio, e, seed=s) for s, e in zip((42, 7, 123), errors)]


def standardized(rng, size):
    z = rng.normal(0, 1, size)
    return (z - z.mean()) / z.std()


def test_a_small_loss_detected_within_the_margin_is_non_inferior_not_no_loss():
    """+0.3 on every seed, tightly: a real loss, smaller than M = 0.1 x the baseline's 4.0 = 0.4."""
    rng = np.random.default_rng(2)
    base = [4.0 + 0.5 * standardized(rng, VIDEOS) for _ in range(3)]
    pruned = [b + 0.3 + 0.3 * standardized(rng, VIDEOS) for b in base]
    models = three_seeds("baseline", 0.0, base) + three_seeds("unstructured", 0.5, pruned)
    table = claims.claims(pd.DataFrame(models))
    row = table.iloc[0]
    assert row.margin == pytest.approx(0.4) and row.ci_low > 0 and row.p_holm < 0.05 and row.p_ni_holm < 0.025
    assert row.verdict == "non-inferior within 0.40"


def test_non_inferiority_is_holm_adjusted_over_the_family():
    """Each model's change is 0.17 +- 0.10 against a margin of 0.4: one-sided p about 0.01, which passes
    alone and fails once Holm counts the eight comparisons of the run."""
    rng = np.random.default_rng(3)
    base = 8.0 + 0.5 * standardized(rng, VIDEOS)
    ratios = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    pruned = [model("unstructured", r, base + 0.17 + standardized(rng, VIDEOS)) for r in ratios]
    table = claims.claims(pd.DataFrame([model("baseline", 0.0, base)] + pruned), fraction=0.05)
    assert len(table) == 8 and (table.p_ni < 0.025).all() and (table.p_ni_holm > 0.025).all()
    assert (table.verdict == "inconclusive").all()
    alone = claims.claims(pd.DataFrame([model("baseline", 0.0, base), pruned[0]]), fraction=0.05)
    assert alone.verdict.tolist() == ["no loss"]


def test_p_values_are_resolved_far_below_the_old_floor():
    """A change of 2 with a standard error of 0.1: p = 2(1 - Phi(20)), not 2 / (B + 1)."""
    rng = np.random.default_rng(4)
    found = claims.test([7.0 + standardized(rng, VIDEOS)], [np.full(VIDEOS, 5.0)], samples=2000)
    assert found["p"] < 1e-20 < 2 / 2001
    assert claims.holm([found["p"]] * 42).max() < 1e-18  # Holm over 42 comparisons: nowhere near 0.042


def test_degenerate_statistics_give_no_verdict_and_the_rule_says_why():
    """Four test videos (the tests' tiny runs): no verdicts at all, however large the change."""
    few = [model("baseline", 0.0, [3.0, 4.0, 5.0, 6.0]), model("unstructured", 0.5, [9.0, 8.5, 9.5, 10.0])]
    table = claims.claims(pd.DataFrame(few))
    assert table.verdict.tolist() == ["too few test videos"]
    assert "No verdicts: 4 test videos" in claims.rule(results(few), table)


def test_the_videos_needed_resolve_the_margin_at_80_percent_power():
    table = pd.DataFrame({"sd_video": [1.0, 1.0, 5.0], "margin": [0.4, 0.4, 0.4]})
    assert claims.videos_needed(table) == math.ceil(((1.959964 + 0.841621) * 1.0 / 0.4) ** 2)  # 50


def test_interpolation_is_linear_in_log_size_and_never_extrapolates():
    assert equal_size.interpolate([1e6, 1e8], [5.0, 3.0], 1e7) == pytest.approx(4.0)
    assert equal_size.interpolate([1e8, 1e6], [3.0, 5.0], 1e6) == pytest.approx(5.0)
    assert math.isnan(equal_size.interpolate([1e6, 1e8], [5.0, 3.0], 1e5))


def test_summary_compares_methods_at_equal_size(run):
    found, summary = run
    assert "MAE at equal effective parameters" in summary and "MAE at equal effective FLOPs" in summary
    import pandas as pd
    shown = equal_size.table(pd.DataFrame(found["models"]), "params_nonzero")
    # structured 0.5 (6 M) read off unstructured's curve, between the control (11 M) and unstructured 0.5
    # (5 M)
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

    from bookkeeping import provenance
    assert provenance.installed("torch-pruning") == importlib.metadata.version("torch-pruning")
    assert provenance.installed("no-such-package-here") == "not installed"
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: types.SimpleNamespace(returncode=128, stdout=""))
    assert provenance.git_commit() == "none (not a git checkout)"


def test_a_summary_with_the_baseline_alone_has_no_claims(run):
    found, _ = run
    early = {**found, "models": found["models"][:1]}
    summary = reports.summary_markdown(early)
    assert "Table 1" in summary and "The rule for every claim" not in summary
