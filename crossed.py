"""The standard error of a mean change over seeds x test videos, crossed: every seed is scored on the same
test videos, so the change d[s, v] = mu + a[s] + b[v] + e[s, v] has a seed effect a (variance seed), a
video effect b common to the seeds (variance video) and their interaction e (variance interaction), and
the mean change over S seeds and V videos has the variance

    seed / S + video / V + interaction / (S V).

The components come from the two-way ANOVA of the matrix (method of moments; one value per cell, so the
interaction is the residual), each truncated at 0:

    MS_seed = V sum_s (d_s. - d..)^2 / (S - 1),   E = interaction + V seed
    MS_video = S sum_v (d_.v - d..)^2 / (V - 1),  E = interaction + S video
    MS_rest = sum (d_sv - d_s. - d_.v + d..)^2 / ((S - 1)(V - 1)),  E = interaction

so S V var(mean) is estimated by MS_seed + MS_video - MS_rest where both components are above 0
(unbiased); by MS_video alone where the seed component is 0 (the seeds agree no less than the interaction
predicts: the seed level pools with it, and the standard error is the ordinary one over videos of the
seeds' mean); by MS_seed alone where the video component is 0; by MS_rest where both are. Exact and
deterministic. The crossed (pigeonhole) bootstrap it replaces counts the interaction about three times
over (Owen 2007): with the committed runs' components its standard deviation was 1.18-1.19 times the
true one, and its verdicts near a threshold moved with the bootstrap's seed.

The reference distribution is Student's t with Satterthwaite's degrees of freedom for that combination,
df = (sum c_i MS_i)^2 / sum (c_i MS_i)^2 / df_i (Satterthwaite 1946; for a balanced design the df lmerTest
gives): where the seed part is above 0 it rests on S - 1 degrees of freedom (2 with 3 seeds), df falls
toward them and the t quantile widens the interval (4.30 at df 2, against 1.96); where it is 0, df is the
videos'. With one seed: the per-video standard error and t with V - 1 df. tests/test_crossed.py measures
the 95% interval's coverage by simulation with components like the committed runs': 93-97% at 3 seeds x
100 videos and at the headline study's 5 x 1,000; at 3 x 1,000, where the seed part is most of the
variance, a little less (about 93%). Its limit, measured the same way: with 3 seeds, a seed part that is
large but estimated at 0 (the seeds agreeing by chance) is pooled away, so far in the tail, at Holm's
thresholds, a true null is rejected more often than the level says (about 3 times at seed sd 0.2, 13 times
at 0.4, per-video sd 1, interaction sd 2.3); more seeds are the remedy, not another formula.
"""
import numpy as np

import student_t


def mean_squares(diffs):
    """(MS_seed, MS_video, MS_rest) of the two-way ANOVA of (..., seeds, videos) matrices; seeds >= 2."""
    seeds, videos = diffs.shape[-2:]
    grand = diffs.mean((-2, -1), keepdims=True)
    by_seed, by_video = diffs.mean(-1, keepdims=True), diffs.mean(-2, keepdims=True)
    rest = diffs - by_seed - by_video + grand
    return (videos * ((by_seed - grand) ** 2).sum((-2, -1)) / (seeds - 1),
            seeds * ((by_video - grand) ** 2).sum((-2, -1)) / (videos - 1),
            (rest ** 2).sum((-2, -1)) / ((seeds - 1) * (videos - 1)))


def combine(ms_seed, ms_video, ms_rest, seeds, videos):
    """(var(mean), Satterthwaite df) from the mean squares (observed, or expected for a planned design):
    the seed and video components truncated at 0 (module docstring). seeds >= 2."""
    with_seed, with_video = ms_seed > ms_rest, ms_video > ms_rest  # the components left above 0
    weights = (1.0 * with_seed, 1.0 * with_video, 1.0 - with_seed - with_video)  # (1, 1, -1) where both
    terms = [w * ms for w, ms in zip(weights, (ms_seed, ms_video, ms_rest))]
    dfs = (seeds - 1, videos - 1, (seeds - 1) * (videos - 1))
    total = np.maximum(sum(terms), 0.0)  # S V var(mean)
    with np.errstate(invalid="ignore", divide="ignore"):
        df = total ** 2 / sum(term ** 2 / d for term, d in zip(terms, dfs))
    return total / (seeds * videos), np.where(total > 0, df, np.nan)


def components(diffs):
    """{seed, video, interaction}: the variance components of (..., seeds, videos) matrices, truncated at
    0; {change, se, df}: the mean, its standard error and Satterthwaite's degrees of freedom. One seed:
    video is the per-video variance (the interaction inseparable from it), seed NaN, df = videos - 1."""
    diffs = np.asarray(diffs, float)
    seeds, videos = diffs.shape[-2:]
    change = diffs.mean((-2, -1))
    if seeds == 1:
        video = diffs[..., 0, :].var(-1, ddof=1)
        return {"change": change, "se": np.sqrt(video / videos), "df": np.full_like(change, videos - 1.0),
                "seed": np.full_like(change, np.nan), "video": video, "interaction": np.zeros_like(change)}
    ms_seed, ms_video, ms_rest = mean_squares(diffs)
    variance, df = combine(ms_seed, ms_video, ms_rest, seeds, videos)
    return {"change": change, "se": np.sqrt(variance), "df": df,
            "seed": np.maximum(ms_seed - ms_rest, 0) / videos,
            "video": np.maximum(ms_video - ms_rest, 0) / seeds, "interaction": ms_rest}


def planned(seed, video, interaction, seeds, videos):
    """(se, df) of the mean change of a design of `seeds` x `videos` with these components: combine() of
    the expected mean squares, so the plan pools where the decision would. One seed: video holds the
    per-video variance."""
    seed, video, interaction = np.broadcast_arrays(*(np.asarray(c, float)
                                                     for c in (seed, video, interaction)))
    if np.ndim(seeds) == 0 and seeds == 1:  # seeds: a count, or counts to broadcast against the components
        return np.sqrt((video + interaction) / videos), np.full_like(video, videos - 1.0)
    variance, df = combine(interaction + videos * seed, interaction + seeds * video, interaction,
                           seeds, videos)
    return np.sqrt(variance), df


def tail(statistic, df):
    """P(T > statistic), NaN where the degrees of freedom are."""
    missing = np.isnan(df)
    found = student_t.sf(np.where(missing, 0.0, statistic), np.where(missing, 1.0, df))
    return np.where(missing, np.nan, found)


def test(diffs, margin=float("nan"), level=0.95):
    """The mean change of (..., seeds, videos) matrices with its `level` t interval and p-values: p
    (two-sided, no change), p_ni (one-sided, H0 change >= margin), p_eq (equivalence: the larger p of the
    one-sided tests of H0 change <= -margin and H0 change >= margin, TOST), the components and df; NaN
    without spread. `margin`: one, or one per matrix."""
    found = components(diffs)
    change, se, df = found["change"], found["se"], found["df"]
    spread = se > 1e-12 * (1 + np.abs(change))  # the same change on every video and seed: nothing to test
    df, margin = np.where(spread, df, np.nan), np.broadcast_to(np.asarray(margin, float), change.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = student_t.ppf(0.5 + level / 2, np.nan_to_num(df, nan=1.0)) * se
        p_low, p_high = tail((change + margin) / se, df), tail((margin - change) / se, df)
        found.update(df=df, ci_low=change - half, ci_high=change + half, p=2 * tail(np.abs(change) / se, df),
                     p_ni=p_high, p_eq=np.maximum(p_low, p_high), margin=margin)
    return found
