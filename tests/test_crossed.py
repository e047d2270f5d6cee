"""The claims' statistics: the variance components of a seeds x videos matrix of paired changes and the
standard error they give (crossed.py), its Student t reference with Satterthwaite's df (student_t.py),
shown right by simulation at the committed study's shape, and the power statement (power.py)."""
import numpy as np
import pandas as pd
import pytest

import crossed
import power
import student_t

SEEDS, VIDEOS = 3, 100
# the committed runs' components (docs/*.json, median comparison): seed sd about 0, video 1.1, interaction 2.3
RANGES = {"seed": (0.0, 0.4), "video": (1.0, 3.0), "interaction": (2.0, 3.7)}  # standard deviations


def matrix(seed_effects, video_effects, rng, interaction=1.0):
    """0.3 + a[s] + b[v] + e[s, v], e double-centred so that the ANOVA's parts are exactly these."""
    e = rng.normal(0, interaction, (len(seed_effects), len(video_effects)))
    e = e - e.mean(0) - e.mean(1, keepdims=True) + e.mean()
    return 0.3 + np.asarray(seed_effects)[:, None] + np.asarray(video_effects)[None, :] + e


def test_the_components_are_the_two_way_anova_of_the_matrix():
    rng = np.random.default_rng(0)
    a, b = np.array([-0.5, 0.1, 0.4]), rng.normal(0, 1.5, VIDEOS)
    d = matrix(a, b, rng, interaction=2.0)
    ms_seed = VIDEOS * ((a - a.mean()) ** 2).sum() / (SEEDS - 1)
    ms_video = SEEDS * ((b - b.mean()) ** 2).sum() / (VIDEOS - 1)
    rest = d - d.mean(1, keepdims=True) - d.mean(0) + d.mean()
    ms_rest = (rest ** 2).sum() / ((SEEDS - 1) * (VIDEOS - 1))
    found = crossed.components(d)
    assert ms_seed > ms_rest and ms_video > ms_rest  # both components above 0: the unbiased sum
    assert found["seed"] == pytest.approx((ms_seed - ms_rest) / VIDEOS)
    assert found["video"] == pytest.approx((ms_video - ms_rest) / SEEDS)
    assert found["interaction"] == pytest.approx(ms_rest)
    variance = found["seed"] / SEEDS + found["video"] / VIDEOS + found["interaction"] / (SEEDS * VIDEOS)
    assert found["se"] ** 2 == pytest.approx(variance)
    terms, dfs = (ms_seed, ms_video, -ms_rest), (SEEDS - 1, VIDEOS - 1, (SEEDS - 1) * (VIDEOS - 1))
    assert found["df"] == pytest.approx(sum(terms) ** 2 / sum(t ** 2 / k for t, k in zip(terms, dfs)))
    assert found["change"] == pytest.approx(d.mean())


def test_seeds_that_agree_pool_with_the_interaction_and_one_seed_is_the_ordinary_standard_error():
    """A seed component estimated below 0 is 0: the standard error is the one over videos of the seeds'
    mean, with the videos' df; one seed: the per-video standard error, V - 1 df."""
    rng = np.random.default_rng(1)
    d = matrix([0.0, 0.0, 0.0], rng.normal(0, 1.5, VIDEOS), rng, interaction=2.0)
    found = crossed.components(d)
    assert found["seed"] == 0 and found["video"] > 0
    assert found["se"] == pytest.approx(d.mean(0).std(ddof=1) / np.sqrt(VIDEOS))
    assert found["df"] == VIDEOS - 1
    one = crossed.test(d[:1], margin=0.5)
    assert one["se"] == pytest.approx(d[0].std(ddof=1) / np.sqrt(VIDEOS)) and one["df"] == VIDEOS - 1
    half = student_t.ppf(0.975, VIDEOS - 1) * one["se"]
    assert (one["ci_low"], one["ci_high"]) == pytest.approx((d[0].mean() - half, d[0].mean() + half))


def test_student_t_matches_its_tables_and_the_normal_far_in_the_tail():
    assert student_t.ppf(0.975, [1, 2, 4, 30]) == pytest.approx([12.7062, 4.3027, 2.7764, 2.0423], abs=1e-4)
    assert student_t.ppf(0.8, 10) == pytest.approx(0.8791, abs=1e-4)
    assert student_t.sf(3.0, 5) == pytest.approx(0.015050, rel=1e-4)
    assert student_t.sf(-1.0, 7) == pytest.approx(1 - student_t.sf(1.0, 7))
    assert student_t.sf(8.0, 1e7) == pytest.approx(6.22096e-16, rel=1e-3)  # the normal tail at 8
    p = np.array([1e-12, 1e-4, 0.3, 0.5, 0.9])
    assert student_t.cdf(student_t.ppf(p, 2.5), 2.5) == pytest.approx(p, rel=1e-9)
    for df in (0.6, 1e6):  # Satterthwaite's df below 1, and the planned designs' largest
        assert student_t.cdf(student_t.ppf(p, df), df) == pytest.approx(p, rel=1e-8)
    assert np.isnan(student_t.ppf([0.975, np.nan], [np.nan, 3])).all()  # a comparison without spread


def studies(rng, n, seeds=SEEDS, ranges=RANGES, videos=VIDEOS):
    """n simulated studies of seeds x videos, each with its components drawn from `ranges`; true change 0.
    Returns the matrices and the true standard deviation of each study's mean change."""
    sd = {name: rng.uniform(low, high, (n, 1, 1)) for name, (low, high) in ranges.items()}
    d = (sd["seed"] * rng.normal(0, 1, (n, seeds, 1)) + sd["video"] * rng.normal(0, 1, (n, 1, videos))
         + sd["interaction"] * rng.normal(0, 1, (n, seeds, videos)))
    true = np.sqrt(sd["seed"] ** 2 / seeds + sd["video"] ** 2 / videos
                   + sd["interaction"] ** 2 / (seeds * videos))
    return d, true.ravel()


def bootstrap_sd(d):
    """The crossed (pigeonhole) bootstrap's standard deviation of the mean, exactly (its two-way
    decomposition with population moments): what claims.py used before."""
    grand = d.mean((-2, -1), keepdims=True)
    seed, video = d.mean(-1, keepdims=True) - grand, d.mean(-2, keepdims=True) - grand
    rest = d - grand - seed - video
    seeds, videos = d.shape[-2:]
    return np.sqrt((seed ** 2).mean((-2, -1)) / seeds + (video ** 2).mean((-2, -1)) / videos
                   + (rest ** 2).mean((-2, -1)) / (seeds * videos))


def test_the_95_percent_interval_covers_95_percent_of_simulated_studies_of_the_committed_shape():
    """4,000 studies of 3 seeds x 100 videos (the runs the rule was first judged on), components drawn from
    the committed runs' ranges: the interval covers the true change 93-97% of the time, and the standard
    error is unbiased to a few per cent where the crossed bootstrap's ran 15-20% high."""
    rng = np.random.default_rng(41)
    d, true = studies(rng, 4000)
    found = crossed.test(d, margin=0.4)
    assert 0.93 <= covered(found) <= 0.97
    assert 0.95 <= np.mean(found["se"] / true) <= 1.06
    assert np.mean(bootstrap_sd(d) / true) > 1.12  # the bootstrap counted the interaction three times
    # the same studies' p-values of the true change: rejected as often as the interval misses it
    assert (found["p"] < 0.05).mean() == pytest.approx(1 - covered(found), abs=0.002)


def test_the_headline_studys_shape_is_covered_and_three_seeds_of_1000_videos_a_little_less():
    """The committed headline study, 5 seeds x 1,000 test videos: 93-97% over 1,500 studies. At 3 seeds x
    1,000 (the criteria, recovery and video runs) the seed part, on 2 df, is most of the variance: a seed sd
    of 0.2-0.4 estimated at 0 by chance is pooled away, and the interval covers a little less (about 93%;
    crossed.py says so, and more seeds are the remedy)."""
    rng = np.random.default_rng(42)
    d, true = studies(rng, 1500, seeds=5, videos=1000)
    found = crossed.test(d, margin=0.4)
    assert 0.93 <= covered(found) <= 0.97
    assert 0.95 <= np.mean(found["se"] / true) <= 1.05
    d, _ = studies(rng, 1500, seeds=3, videos=1000)
    assert 0.91 <= covered(crossed.test(d, margin=0.4)) < 0.95


def covered(found):
    return ((found["ci_low"] <= 0) & (0 <= found["ci_high"])).mean()


def test_one_seed_covers_the_choice_of_videos_not_of_the_seed_and_the_median_components_are_covered():
    """One seed: 93-97% where the seed has no effect of its own; where it has one (seed sd up to 0.4), the
    interval cannot see it and covers less (what summary.md's one-seed caveat says)."""
    rng = np.random.default_rng(7)
    d, _ = studies(rng, 2000, seeds=1, ranges={**RANGES, "seed": (0.0, 0.0)})
    assert 0.93 <= covered(crossed.test(d, margin=0.4)) <= 0.97
    d, _ = studies(rng, 2000, seeds=1)
    assert covered(crossed.test(d, margin=0.4)) < 0.93
    median = 1.1 * rng.normal(0, 1, (4000, 1, VIDEOS)) + 2.3 * rng.normal(0, 1, (4000, SEEDS, VIDEOS))
    assert 0.93 <= covered(crossed.test(median, margin=0.4)) <= 0.97


def test_the_same_matrices_give_the_same_numbers_every_time():
    d, _ = studies(np.random.default_rng(3), 50)
    first, second = crossed.test(d, margin=0.4), crossed.test(d.copy(), margin=0.4)
    assert all(np.array_equal(first[k], second[k], equal_nan=True) for k in first)


def test_the_videos_needed_resolve_the_loss_at_80_percent_power_and_no_more():
    """One seed, per-video sd 2: the fewest videos V with (t_(1-a) + t_0.8) 2 / sqrt(V) <= loss."""
    components, loss, level = (np.array([0.0]), np.array([4.0]), np.array([0.0])), np.array([0.5]), 0.025
    found = int(power.videos_needed(components, 1, loss, level)[0])
    for videos, enough in ((found, True), (found - 1, False)):
        se, df = crossed.planned(*components, seeds=1, videos=videos)
        assert bool(power.resolved(se, df, level)[0] <= 0.5) is enough
    assert found == pytest.approx(((1.95996 + 0.84162) * 2 / 0.5) ** 2, rel=0.03)  # the normal's, nearly


def test_a_seed_part_too_large_for_the_loss_needs_more_seeds_not_videos():
    """seed sd 0.3 over 3 seeds: se >= 0.17 whatever the videos, so a loss of 0.3 is out of reach."""
    components = (np.array([0.09]), np.array([1.0]), np.array([5.0]))
    assert np.isinf(power.videos_needed(components, 3, np.array([0.3]), 0.025)[0])
    se, df = crossed.planned(*components, seeds=3, videos=10 ** 6)
    assert se[0] ** 2 >= 0.09 / 3 and df[0] == pytest.approx(2, abs=0.01)
    assert np.isfinite(power.videos_needed(components, 40, np.array([0.3]), 0.025)[0])


def test_the_seeds_needed_resolve_a_loss_the_videos_cannot_and_no_fewer_do():
    """The same seed part at 1,000 videos: the fewest seeds whose planned test detects 0.3 with 80% power."""
    components = (np.array([0.09]), np.array([1.0]), np.array([5.0]))
    found = int(power.seeds_needed(components, 1000, np.array([0.3]), 0.025)[0])
    for seeds, enough in ((found, True), (found - 1, False)):
        se, df = crossed.planned(*components, seeds=seeds, videos=1000)
        assert bool(power.resolved(se, df, 0.025)[0] <= 0.3) is enough
    assert np.isinf(power.seeds_needed(components, 1000, np.array([0.01]), 0.025)[0])  # beyond MOST_SEEDS


def test_the_power_sentence_reports_the_decisions_own_numbers():
    rng = np.random.default_rng(5)
    d, _ = studies(rng, 6)
    rows = pd.DataFrame([{key: float(value[i]) for key, value in crossed.test(d, margin=0.38).items()}
                         for i in range(6)]).assign(seeds=SEEDS, videos=VIDEOS)
    text = power.sentence(rows, alpha=0.05)
    holm = 0.05 / (2 * 6)
    assert f"{holm:.2g} per side" in text and f"this run has {VIDEOS}" in text
    assert f"{np.median(power.resolved(rows.se, rows.df, holm)):.2f} EF points" in text
    assert "with 3 seeds" in text and "with 5 seeds" in text
