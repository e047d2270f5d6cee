"""What a run's design resolves, from the decision's own statistic (crossed.py): the standard error from
the variance components, Student's t with Satterthwaite's df, Holm's threshold over the run's family.

A one-sided test at level a detects a true change delta with power POWER where about

    delta >= (t_(1-a) + t_POWER) se,   se^2 = seed / S + video / V + interaction / (S V),

with df as the decision would have them (crossed.planned). The level is Holm's first threshold,
ALPHA / (2 m) per side for m comparisons: the one a comparison must meet whatever the others show (later
thresholds are larger only where others were rejected). The margin's test of a model that truly changes
nothing has the same power at M: its level is the same, ALPHA / 2 per side, Holm-adjusted. The seed floor:
however many videos, se^2 >= seed / S, and where the seed part is above 0 the df stay near S - 1, so a
loss may need more seeds, not more videos. Each comparison is planned from its own components; the
statement gives the median over the run's comparisons.
"""
import numpy as np

import crossed
import student_t

POWER = 0.80  # the power the statement is for
MORE_SEEDS = 5  # the test videos the margin needs are also given for this many seeds
MOST_VIDEOS = 10 ** 6  # a loss not resolved with this many test videos is not resolved by videos
MOST_SEEDS = 100  # the seeds a loss may need before "more than" is said


def resolved(se, df, level):
    """The true change a one-sided test at `level` detects with POWER: (t_(1-level) + t_POWER) x se."""
    return (student_t.ppf(1 - level, df) + student_t.ppf(POWER, df)) * se


def chance(change, se, df, level):
    """The power of a one-sided test at `level` against a true change `change`."""
    return student_t.sf(student_t.ppf(1 - level, df) - change / se, df)


def videos_needed(components, seeds, loss, level):
    """The fewest test videos with which a one-sided test at `level` over `seeds` seeds detects `loss` with
    POWER, per comparison (components: arrays seed, video, interaction); inf where MOST_VIDEOS do not:
    the seed part is too large (more seeds are needed)."""
    def enough(videos):
        return resolved(*crossed.planned(*components, seeds=seeds, videos=videos), level) <= loss
    low, high = np.full(np.shape(loss), 2), np.full(np.shape(loss), MOST_VIDEOS)  # 2: fewest with df > 0
    reached, first = enough(high), enough(low)
    while np.any(open_ := high - low > 1):  # enough(high) where reached; the answer in (low, high]
        middle = (low + high) // 2
        more = enough(middle)
        high, low = np.where(open_ & more, middle, high), np.where(open_ & ~more, middle, low)
    return np.where(first, 2, np.where(reached, high, np.inf))


def seeds_needed(components, videos, loss, level):
    """The fewest training seeds with which a one-sided test at `level` on `videos` test videos detects
    `loss` with POWER, per comparison; inf beyond MOST_SEEDS. Where the seed part is above 0 only seeds
    bring the standard error below its floor, and they raise the df too."""
    counts = np.arange(2, MOST_SEEDS + 1)[:, None]  # every count at once: one call of the t quantiles
    enough = resolved(*crossed.planned(*components, seeds=counts, videos=videos), level) <= loss
    return np.where(enough.any(0), counts[enough.argmax(0), 0], np.inf)  # the fewest that suffice


def seeds_words(components, videos, loss, level):
    """'about 9 seeds at 1,000 test videos (2 of 21 comparisons: more than 100)', the median."""
    found = seeds_needed(components, videos, loss, level)
    median, never = np.median(found), int(np.isinf(found).sum())
    words = (f"about {median:.0f} seeds at {videos:,} test videos" if np.isfinite(median)
             else f"more than {MOST_SEEDS} seeds at {videos:,} test videos")
    return words + (f" ({never} of the {len(found)} comparisons: more than {MOST_SEEDS})" if never else "")


def needed_words(components, seeds, loss, level):
    """'about 230 test videos with 3 seeds (7 of 69 comparisons: none)', the median over comparisons."""
    found = videos_needed(components, seeds, loss, level)
    median, never = np.median(found), int(np.isinf(found).sum())
    seeds = f"{seeds} seed{'s' * (seeds > 1)}"
    words = f"about {median:,.0f} test videos with {seeds}" if np.isfinite(median) else \
        f"no number of test videos with {seeds}"
    return words + (f" ({never} of the {len(found)} comparisons: no number of videos)" if never else "")


def sentence(table, alpha):
    """The power paragraph of the rule (claims.rule): what the run resolves, and what the margin needs,
    the medians over the comparisons tested."""
    rows = table.dropna(subset=["p"]) if len(table) else table
    if rows.empty:
        return ""
    holm, level, seeds = alpha / (2 * len(table)), alpha / 2, int(rows.seeds.max())
    se, df, margin = rows.se.to_numpy(), rows.df.to_numpy(), rows.margin.to_numpy()
    components = (np.nan_to_num(rows.seed.to_numpy()), rows.video.to_numpy(), rows.interaction.to_numpy())
    more = (f", {needed_words(components, MORE_SEEDS, margin, holm)}" if 1 < seeds < MORE_SEEDS else "")
    more += f", or {seeds_words(components, int(rows.videos.max()), margin, holm)}" if seeds > 1 else ""
    return (f"**Power**, from the same statistic (each comparison from its own variance components and df; "
            f"medians over the {len(rows)} tested; Holm's first threshold over the {len(table)} comparisons, "
            f"{holm:.2g} per side): this design detects a change of "
            f"{np.median(resolved(se, df, holm)):.2f} EF points with {POWER:.0%} power "
            f"({np.median(resolved(se, df, level)):.2f} before Holm's adjustment); a change of M "
            f"({np.median(margin):.2f}), or a model that changes nothing within M, with "
            f"{np.median(chance(margin, se, df, holm)):.0%} power "
            f"({np.median(chance(margin, se, df, level)):.0%} before). M with {POWER:.0%} power needs "
            f"{needed_words(components, seeds, margin, holm)}{more}"
            + (" (one seed: the seed's own part not measured)" if seeds == 1 else "")
            + f"; this run has {int(rows.videos.max())}.")
