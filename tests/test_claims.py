"""Every claim of summary.md follows one rule (the crossed standard error over seeds and videos, Holm over
the run's comparisons for both the difference and the margin's test, a margin that is a share of the
dense model's error, words that follow the sign and the question), and the equal-size comparison
interpolates each method between its own ratios. The statistics themselves: test_crossed.py."""
import math
import os

import numpy as np
import pandas as pd
import pytest

import answers
import claims
import criteria_tables
import equal_size
import methods
import metrics
import reports
import table_cells

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
    assert row.ci_low < 0 < row.ci_high and row.ci_high > row.margin and row.p_margin_holm > 0.025
    assert by[("vs baseline", "unstructured", 0.5)] == "inconclusive"
    line = next(text for text in summary.splitlines()
                if text.startswith("| unstructured 0.5 ") and "| baseline " in text)
    assert "inconclusive" in line and "non-inferior" not in line


def test_a_change_beyond_zero_after_holm_is_worse_and_one_within_the_margin_is_non_inferior(run):
    """The margin is a tenth of the baseline's MAE (15 here: 1.5); +2 is beyond it, +0.05 within it."""
    found, summary = run
    by, table = verdicts(found)
    assert table.margin.to_numpy() == pytest.approx(1.5, rel=0.01)
    assert by[("vs baseline", "unstructured", 0.9)] == "worse"
    assert by[("vs dense control", "unstructured", 0.9)] == "worse"
    assert by[("vs baseline", "structured", 0.5)] == "non-inferior within 1.50"
    # identical errors on every video: no spread, so no verdict either way
    assert by[("vs baseline", "dense_control", 0.0)] == "no spread"
    assert "without spread" in summary
    tested = table.dropna(subset=["p"])
    assert (tested.p_holm >= tested.p).all() and (tested.p_margin_holm >= tested.p_margin).all()
    assert len(table) == 4 + 3 + 1  # vs baseline, vs control, one pair
    assert "The rule for every claim" in summary and "Holm" in summary and "**Power**" in summary
    for word in ("not distinguishable", "within the noise", "beyond the noise", "no loss"):
        assert word not in summary
    assert "bootstrap" not in claims.rule(found, table)  # the claims read no resampling


def test_holm_on_a_known_example():
    assert claims.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert claims.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # made monotone


def three_seeds(method, ratio, errors):
    return [model(method, ratio, e, seed=s) for s, e in zip((42, 7, 123), errors)]


def standardized(rng, size):
    z = rng.normal(0, 1, size)
    return (z - z.mean()) / z.std()


def test_a_small_loss_detected_within_the_margin_is_worse_by_less_than_the_margin():
    """+0.3 on every seed, tightly: a real loss, smaller than M = 0.1 x the baseline's 4.0 = 0.4."""
    rng = np.random.default_rng(2)
    base = [4.0 + 0.5 * standardized(rng, VIDEOS) for _ in range(3)]
    pruned = [b + 0.3 + 0.3 * standardized(rng, VIDEOS) for b in base]
    models = three_seeds("baseline", 0.0, base) + three_seeds("unstructured", 0.5, pruned)
    table = claims.claims(pd.DataFrame(models))
    row = table.iloc[0]
    assert row.question == claims.NON_INFERIORITY
    assert row.margin == pytest.approx(0.4) and row.ci_low > 0 and row.p_holm < 0.05
    assert row.p_margin_holm < 0.025 and row.verdict == "worse, by less than 0.40"


def test_non_inferiority_is_holm_adjusted_over_the_family():
    """Each model's change is 0.17 +- 0.10 against a margin of 0.4: one-sided p about 0.01, which passes
    alone and fails once Holm counts the eight comparisons of the run."""
    rng = np.random.default_rng(3)
    base = 8.0 + 0.5 * standardized(rng, VIDEOS)
    ratios = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    pruned = [model("unstructured", r, base + 0.17 + standardized(rng, VIDEOS)) for r in ratios]
    table = claims.claims(pd.DataFrame([model("baseline", 0.0, base)] + pruned), fraction=0.05)
    assert len(table) == 8 and (table.p_ni < 0.025).all() and (table.p_margin_holm > 0.025).all()
    assert (table.verdict == "inconclusive").all()
    alone = claims.claims(pd.DataFrame([model("baseline", 0.0, base), pruned[0]]), fraction=0.05)
    assert alone.verdict.tolist() == ["non-inferior within 0.40"]


def test_the_primary_questions_are_one_holm_family_and_every_other_comparison_another():
    """The study's questions, stated before the run (methods.PRIMARY_PAIRS, PRIMARY_METHODS), are adjusted
    over themselves alone: exploratory comparisons added to the run do not weaken them."""
    rng = np.random.default_rng(5)
    base = 8.0 + 0.5 * standardized(rng, VIDEOS)
    primary = [model(m, 0.5, base + 0.17 + standardized(rng, VIDEOS))
               for m in ("structured_physical", "unstructured_flops", "structured_flops", "scratch")]
    exploratory = [model("unstructured", r, base + 0.17 + standardized(rng, VIDEOS)) for r in (0.2, 0.4, 0.6)]
    table = claims.claims(pd.DataFrame([model("baseline", 0.0, base)] + primary + exploratory), fraction=0.05)
    first = table[table.family == claims.PRIMARY]
    assert sorted(zip(first.method, first.reference)) == sorted(
        [(m, "baseline") for m in ("structured_physical", "unstructured_flops", "structured_flops",
                                   "scratch")]
        + [("structured_physical", "unstructured_flops"), ("structured_physical", "structured_flops"),
           ("structured_physical", "scratch")])
    assert np.allclose(first.p_holm, claims.holm(first.p.to_numpy()))
    assert np.allclose(first.p_margin_holm, claims.holm(first.p_margin.to_numpy()))
    others = table[table.family == claims.EXPLORATORY]
    assert len(others) == 3 and np.allclose(others.p_holm, claims.holm(others.p.to_numpy()))
    summary = claims.paragraphs(results([model("baseline", 0.0, base)] + primary + exploratory), table)
    assert "## Claims: the primary questions" in "".join(summary)
    assert "the 7 primary questions, stated before the run" in summary[0]


def test_each_importance_criterion_against_group_l2_is_a_holm_family_of_its_own():
    """The criteria study's questions (methods.CRITERIA_PAIRS: each criterion, and learning-rate rewinding,
    against group L2 removal fine-tuned plainly) are adjusted over themselves alone, apart
    from the primary questions and the exploratory comparisons, and summary.md shows them apart."""
    rng = np.random.default_rng(7)
    base = 8.0 + 0.5 * standardized(rng, VIDEOS)
    removal = [model("structured_physical", 0.5, base + 0.2 + standardized(rng, VIDEOS))]
    criteria = [model(f"structured_physical_{name}", 0.5, base + 0.2 + standardized(rng, VIDEOS))
                for name in ("taylor", "hessian", "fpgm", "rw")]  # and rewinding against plain fine-tuning
    frame = [model("baseline", 0.0, base)] + removal + criteria
    table = claims.claims(pd.DataFrame(frame), fraction=0.05)
    family = table[table.family == claims.CRITERIA]
    assert sorted(family.method) == sorted(m["method"] for m in criteria)
    assert set(family.reference) == {"structured_physical"}
    assert np.allclose(family.p_holm, claims.holm(family.p.to_numpy()))
    others = table[table.family == claims.EXPLORATORY]
    assert len(others) == 4 and np.allclose(others.p_holm, claims.holm(others.p.to_numpy()))  # vs baseline
    summary = "".join(claims.paragraphs(results(frame), table))
    assert ("## Claims: each importance criterion against group L2 removal, and learning-rate rewinding"
            in summary)
    assert "the 4 comparisons of the criteria study" in summary
    # the criteria study's table (README, docs/results.md): a row per budget, a column per compared model,
    # each cell that comparison's change, interval and verdict in its family alone
    shown = criteria_tables.criteria(results(frame)).splitlines()
    compared = [m["method"] for m in criteria]
    assert shown[0] == "| budget | " + " | ".join(methods.label(m) for m in compared) + " |"
    cells = next(line for line in shown if line.startswith("| ratio 0.5 |")).strip(" |").split(" | ")[1:]
    at_the_one_margin = table_cells.judged(results(frame)).query("family == @claims.CRITERIA")
    at_the_one_margin = at_the_one_margin.set_index("method").loc[compared]
    for test, cell in zip(at_the_one_margin.itertuples(), cells, strict=True):
        assert cell == f"{test.change:+.2f} [{test.ci_low:+.2f}, {test.ci_high:+.2f}] {test.verdict}"
    assert "minus coupled channels (removed)'s" in shown[-1]
    assert "Holm over the 4 comparisons of this family alone" in shown[-1]


def test_a_criterion_made_again_takes_its_column_from_its_own_run_only_where_both_share_their_models():
    """A criterion whose chooser was fixed and made again in a run of its own replaces the first run's
    column: the family is the one a single run holding the remade models would give. It is refused where
    the two runs' baselines or group L2 models differ on a test video (they are not the same models)."""
    rng = np.random.default_rng(8)
    base = 8.0 + 0.5 * standardized(rng, VIDEOS)
    removal = model("structured_physical", 0.5, base + 0.2 + standardized(rng, VIDEOS))
    shared = [model("baseline", 0.0, base), removal]
    first = [model(f"structured_physical_{name}", 0.5, base + 0.2 + standardized(rng, VIDEOS))
             for name in ("taylor", "hessian")]
    fixed = model("structured_physical_hessian", 0.5, base + 0.1 + 0.3 * standardized(rng, VIDEOS))

    def run(models, criteria):
        found = results([dict(m) for m in models])
        found["identity"] = {"data": "the same videos"}
        found["config"]["IMPORTANCE_CRITERIA"] = criteria
        return found

    both = ["taylor", "hessian"]
    shown = criteria_tables.criteria(run(shared + first, both), run(shared + [fixed], ["hessian"]))
    table, note = shown.split("\n\n", 1)
    assert table == criteria_tables.criteria(run(shared + [first[0], fixed], both)).split("\n\n", 1)[0]
    assert table != criteria_tables.criteria(run(shared + first, both)).split("\n\n", 1)[0]
    assert "coupled channels, Hessian (OBD) (removed) is from a run made again" in note
    one_video_off = np.asarray(removal["test_errors"])
    one_video_off[0] += 0.01
    other = dict(removal, test_errors=one_video_off.tolist())
    with pytest.raises(ValueError, match="coupled channels \\(removed\\) models differ"):
        criteria_tables.criteria(run(shared + first, both), run([shared[0], other, fixed], ["hessian"]))


def test_the_readme_answers_each_primary_question_once_per_budget_with_its_verdict():
    rng = np.random.default_rng(6)
    base = 8.0 + 0.5 * standardized(rng, VIDEOS)
    models = [model("baseline", 0.0, base)] + [
        model(m, ratio, base + 0.1 + standardized(rng, VIDEOS), flops=flops)
        for ratio, flops in ((0.3, 0.5e9), (0.7, 0.1e9))
        for m in ("structured_physical", "unstructured_flops", "structured_flops", "scratch")]
    frame = pd.DataFrame(models)
    table = claims.claims(frame, fraction=0.05)
    found = answers.rows(table, frame)
    assert [budget for budget, *_ in found if budget] == [
        "2.0× fewer FLOPs (500 M; removal ratio 0.3)", "10.0× fewer FLOPs (100 M; removal ratio 0.7)"]
    assert len(found) == 2 * len(answers.QUESTIONS)
    primaries = table[table.family == claims.PRIMARY]
    for (_, words, change, verdict), (method, reference, said) in zip(found, answers.QUESTIONS * 2):
        assert words == said and verdict in set(primaries.verdict)


def test_p_values_are_resolved_far_below_the_old_floor():
    """A change of 2 with a standard error of 0.1: p from t with 99 df far in its tail, not 2 / (B + 1)."""
    rng = np.random.default_rng(4)
    found = claims.test([7.0 + standardized(rng, VIDEOS)], [np.full(VIDEOS, 5.0)])
    assert found["df"] == VIDEOS - 1 and found["p"] < 1e-20 < 2 / 2001
    assert claims.holm([found["p"]] * 42).max() < 1e-18  # Holm over 42 comparisons: nowhere near 0.042


def test_degenerate_statistics_give_no_verdict_and_the_rule_says_why():
    """Four test videos (the tests' tiny runs): no verdicts at all, however large the change."""
    few = [model("baseline", 0.0, [3.0, 4.0, 5.0, 6.0]), model("unstructured", 0.5, [9.0, 8.5, 9.5, 10.0])]
    table = claims.claims(pd.DataFrame(few))
    assert table.verdict.tolist() == ["too few test videos"]
    assert "No verdicts: 4 test videos" in claims.rule(results(few), table)


def wrong_sign(row):
    """Whether a verdict's word contradicts its interval: a loss word below 0, "better" above 0."""
    loss = row.verdict.startswith(("worse", "non-inferior"))
    return (row.ci_high < 0 and loss) or (row.ci_low > 0 and row.verdict.startswith("better"))


def test_no_verdict_word_contradicts_the_sign_of_its_interval_for_either_question():
    """Constructed errors: gains and losses, large, small and in between, against the baseline
    (non-inferiority) and between methods at the same ratio (two-sided), many comparisons so that Holm
    leaves some intervals wholly below or above 0 unconfirmed: the words still follow the sign."""
    rng = np.random.default_rng(6)
    base = [4.0 + 0.5 * standardized(rng, VIDEOS) for _ in range(3)]
    shifts = {0.1: -1.0, 0.2: -0.14, 0.3: -0.09, 0.4: -0.05, 0.5: 0.05, 0.6: 0.09, 0.7: 0.14, 0.8: 1.0}
    models = three_seeds("baseline", 0.0, base)
    for method, sign in (("structured", 1), ("structured_random", -1)):
        for ratio, shift in shifts.items():
            models += three_seeds(method, ratio, [b + sign * shift + 0.9 * standardized(rng, VIDEOS)
                                                  for b in base])
    table = claims.claims(pd.DataFrame(models))
    assert set(table.question) == {claims.NON_INFERIORITY, claims.TWO_SIDED}
    below, above = table[table.ci_high < 0], table[table.ci_low > 0]
    for question in (claims.NON_INFERIORITY, claims.TWO_SIDED):  # each sign, confirmed and not, per question
        for side in (below, above):
            asked = side[side.question == question]
            assert (asked.p_holm < 0.05).any() and (asked.p_holm >= 0.05).any()
    assert not any(wrong_sign(r) for r in table.itertuples())
    assert set(table.verdict) >= {"better", "worse", "inconclusive"}


def test_every_combination_of_tests_gives_a_word_that_follows_the_sign():
    """verdict() over every combination of the tests' outcomes, interval positions and questions."""
    found = set()
    for question in (claims.NON_INFERIORITY, claims.TWO_SIDED):
        for low, high in ((-0.9, -0.1), (-0.3, 0.3), (0.1, 0.9)):
            for p_holm in (0.01, 0.5):
                for p_margin_holm in (0.001, 0.5):
                    row = pd.Series({"videos": VIDEOS, "p_holm": p_holm, "p_margin_holm": p_margin_holm,
                                     "question": question, "change": (low + high) / 2, "ci_low": low,
                                     "ci_high": high, "margin": 0.4})
                    if p_holm < 0.05 and low < 0 < high:
                        continue  # a difference detected has an interval beside 0
                    row["verdict"] = claims.verdict(row, alpha=0.05)
                    assert not wrong_sign(row), row.to_dict()
                    assert question == claims.NON_INFERIORITY or "non-inferior" not in row.verdict
                    assert question == claims.TWO_SIDED or "equivalent" not in row.verdict
                    found.add(row.verdict)
    assert found == {"better", "worse", "worse, by less than 0.40", "better, by less than 0.40",
                     "equivalent within ±0.40", "non-inferior within 0.40", "inconclusive"}


def test_the_claims_of_a_file_are_the_same_on_every_run():
    """No random numbers: the committed run's claims, worked out here and in a second process, agree to the
    last digit."""
    import json
    import subprocess
    import sys

    from conftest import ROOT
    path = os.path.join(ROOT, "docs", "study_results.json")
    table = claims.for_run(json.load(open(path)))
    script = ("import json, sys, claims; t = claims.for_run(json.load(open(sys.argv[1]))); print(json.dumps("
              "[t.verdict.tolist(), t.change.tolist(), t.ci_low.tolist(), t.p_holm.tolist()]))")
    other = json.loads(subprocess.run([sys.executable, "-c", script, path], cwd=ROOT, capture_output=True,
                                      text=True, check=True).stdout)
    assert other == json.loads(json.dumps([table.verdict.tolist(), table.change.tolist(),
                                           table.ci_low.tolist(), table.p_holm.tolist()]))
    assert table.equals(claims.for_run(json.load(open(path))))


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
