"""The two networks compared (readme_tables.py's "networks" block): EchoNet-Dynamic's R(2+1)D-18 over the
clip beside the design card's per-frame ResNet-18, from two runs of the same options on the same data, so
on the same test videos in the same order, and on the training seeds both ran.

At each budget (a ratio of coupled removal, the one every method of the study's primary questions is
pruned to, in effective FLOPs), two questions per method of methods.PRIMARY_METHODS:
- what the method loses on R(2+1)D-18 against that network's own baseline (non-inferiority, as every
  pruned model against its baseline, claims.py), and
- whether R(2+1)D-18 loses more or less than the per-frame network by the same method at the same ratio:
  the difference of the two losses, paired by seed and video, d[s, v] = (|video model| - |video baseline|)
  - (|frame model| - |frame baseline|), a two-sided question (neither network is the one expected to
  hold), its margin M a share (NONINFERIORITY_FRACTION) of the per-frame baseline's MAE, the reference.
These alone are one Holm family (FAMILY), stated before the run; the standard error is crossed.py's over
seeds x videos. At equal ratio each network keeps its own share of FLOPs: the budget line names both
reductions. Removal's speed-ups are the video run's (speed.py's rule, every model of that run one family),
beside the per-frame run's at the same ratio.
"""
import numpy as np
import pandas as pd

import claims
import config
import methods
import power
import speed

FAMILY = "networks"
FRAME, VIDEO = "resnet18_frames", "r2plus1d_18"
NAMES = {FRAME: "per-frame ResNet-18", VIDEO: "R(2+1)D-18"}


def network(results):
    return results["config"].get("MODEL", FRAME)  # runs before R(2+1)D recorded no MODEL: the per-frame one


def same_videos(frame, video):
    """ValueError unless the runs are the per-frame and the video network on the same data, split the same
    way into the same test split (so the same videos, in the same order, pair), on shared seeds."""
    if (network(frame), network(video)) != (FRAME, VIDEO):
        raise ValueError(f"the first file must be a run of {FRAME}, the second of {VIDEO}; they are "
                         f"{network(frame)} and {network(video)}")
    for what, read in (("data (its fingerprint)", lambda r: r["identity"]["data"]),
                       ("split seed (SEED)", lambda r: r["config"]["SEED"]),
                       ("split sizes", lambda r: r["splits"])):
        if read(frame) != read(video):
            raise ValueError(f"the two runs differ in their {what}: {read(frame)} and {read(video)}; the "
                             f"networks can be paired only on the same test videos")
    seeds = sorted({m["seed"] for m in frame["models"]} & {m["seed"] for m in video["models"]})
    if not seeds:
        raise ValueError("the two runs share no training seed")
    return seeds


def errors(models, method, ratio, seeds):
    """[per-video errors of each seed], in seed order: the model's, or the baseline's (ratio None)."""
    picked = models[(models.method == method) & ((models.ratio == ratio) if ratio is not None else True)]
    picked = picked[picked.seed.isin(seeds)].sort_values("seed")
    if list(picked.seed) != list(seeds):
        raise ValueError(f"{method} {ratio} was not run for every seed of {seeds}")
    return list(picked.test_errors)


def loss(models, method, ratio, seeds):
    """seeds x videos of the model's |error| minus its network's baseline's."""
    return claims.paired(errors(models, method, ratio, seeds), errors(models, "baseline", None, seeds))


def tests(frame, video, alpha):
    """claims.decide's table of the family: per ratio of the video run's coupled removal and primary method,
    the video network's loss ("vs baseline") and the networks' difference ("networks")."""
    seeds = same_videos(frame, video)
    frames, videos = pd.DataFrame(frame["models"]), pd.DataFrame(video["models"])
    fraction = config.NONINFERIORITY_FRACTION  # the one margin, whatever the runs recorded
    ratios = sorted(videos[videos.method == "structured_physical"].ratio.unique())
    rows, matrices, margins = [], [], []
    for ratio in ratios:
        for method in methods.PRIMARY_METHODS:
            mine, theirs = (loss(models, method, ratio, seeds) for models in (videos, frames))
            for kind, diffs, margin_of, question in (
                    ("vs baseline", mine, videos, claims.NON_INFERIORITY),
                    ("networks", mine - theirs, frames, claims.TWO_SIDED)):
                rows.append({"kind": kind, "method": method, "ratio": ratio, "family": FAMILY,
                             "question": question})
                matrices.append(diffs)
                margins.append(claims.margin(margin_of, seeds=seeds, fraction=fraction))
    found = claims.test_all(matrices, margins)
    return claims.decide(pd.DataFrame([{**r, **f} for r, f in zip(rows, found)]), alpha), seeds


def budget(frames, videos, ratio):
    """'ratio 0.5: 3.9× fewer FLOPs (per-frame: 3.8×)', R(2+1)D-18's reduction first."""
    def reduction(models):
        dense = models[models.method == "baseline"].effective_flops.mean()
        removed = models[(models.method == "structured_physical") & (models.ratio == ratio)]
        return f"{dense / removed.effective_flops.mean():.1f}×"
    return f"ratio {ratio:g}: {reduction(videos)} fewer FLOPs (per-frame: {reduction(frames)})"


def speed_cells(frames, videos):
    """{ratio: [cell per runtime]}: removal's speed-up over the baseline on R(2+1)D-18, its interval and
    verdict by its own run's rule (speed.py), the per-frame network's at the same ratio beside it."""
    found = {}
    for prefix in speed.RUNTIMES:
        if f"{prefix}_round_ms" not in videos or f"{prefix}_round_ms" not in frames:
            continue
        mine, theirs = (speed.compared(models, prefix) for models in (videos, frames))
        for ratio in sorted(videos[videos.method == "structured_physical"].ratio.unique()):
            own, other = (c.get(("structured_physical", ratio)) for c in (mine, theirs))
            found.setdefault(ratio, []).append(
                (f"{speed.interval(own, '×')} {own.verdict}" if own is not None else "")
                + (f" (per-frame: {other.speedup:.2f}× {other.verdict})" if other is not None else ""))
    return found


def baselines(frames, videos, seeds):
    """'The baselines, over these seeds: R(2+1)D-18 test MAE 4.10 ± 0.20 (R² 0.80), 31.3 M parameters,
    ... FLOPs per video; per-frame ResNet-18 ...'."""
    def words(models, name):
        base = models[(models.method == "baseline") & models.seed.isin(seeds)]
        return (f"{name} test MAE {base.test_mae.mean():.2f} ± {base.test_mae.std():.2f} (R² "
                f"{base.test_r2.mean():.2f}), {base.params_effective.mean() / 1e6:.1f} M parameters, "
                f"{base.effective_flops.mean() / 1e6:,.0f} M FLOPs per video")
    return f"The baselines, over these seeds: {words(videos, NAMES[VIDEO])}; {words(frames, NAMES[FRAME])}."


def networks(frame, video):
    """The README's table of the two networks: budgets down, the primary methods across, each cell the
    method's loss on R(2+1)D-18 and, under it, that loss less the per-frame network's; then removal's
    speed-ups, the baselines, the family and what it resolves (power.py)."""
    alpha = config.ALPHA
    table, seeds = tests(frame, video, alpha)
    frames, videos = pd.DataFrame(frame["models"]), pd.DataFrame(video["models"])
    speeds_at = speed_cells(frames, videos)
    runtimes = [runtime.name for prefix, runtime in speed.RUNTIMES.items()
                if f"{prefix}_round_ms" in videos and f"{prefix}_round_ms" in frames]
    columns = ["budget", *map(methods.label, methods.PRIMARY_METHODS), *(f"removal's speed-up, {r}"
                                                                          for r in runtimes)]
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for ratio, rows in table.groupby("ratio", sort=True):
        cells = []
        for method in methods.PRIMARY_METHODS:
            own, both = (rows[(rows.method == method) & (rows.kind == kind)].iloc[0]
                         for kind in ("vs baseline", "networks"))
            cells.append(f"{cell(own)} {own.verdict}<br>less the per-frame loss: {cell(both)} {both.verdict}")
        lines.append(f"| {budget(frames, videos, ratio)} | " + " | ".join(cells + speeds_at.get(ratio, []))
                     + " |")
    margins = table.groupby("kind").margin.median()
    return "\n".join(lines) + "\n\n" + " ".join([
        f"Each cell: the model's test MAE on {NAMES[VIDEO]} minus that network's baseline's [95% interval] "
        f"and the verdict; under it, that loss minus the same method's loss on the {NAMES[FRAME]} at the "
        f"same ratio, paired by seed and video. Seeds {', '.join(map(str, seeds))} (those both runs have); "
        f"the same {int(table.videos.max())} test videos for both networks.",
        baselines(frames, videos, seeds),
        f"The margin M is {config.NONINFERIORITY_FRACTION:g} of the baseline's MAE "
        f"({margins['vs baseline']:.2f} for {NAMES[VIDEO]}; {margins['networks']:.2f}, the per-frame "
        f"network's, for the difference of losses); Holm over these {len(table)} comparisons alone. A "
        f"speed-up cell: its 95% interval and the verdict of its own run's speed rule, the per-frame "
        f"network's beside it.",
        power.sentence(table, alpha)]).strip() + "\n"


def cell(row):
    return f"{row.change:+.2f} [{row.ci_low:+.2f}, {row.ci_high:+.2f}]"


def fine_tuned_val_maes(run):
    """{model name: (its best fine-tuning epoch's validation MAE, the model's right after pruning)} of a
    run's seed-ordered models that were fine-tuned (never the baseline or a small net from scratch)."""
    return {claims.label(m["method"], m["ratio"]): (min(m["history"]["val_mae"]),
                                                    m["history"]["val_mae_after_pruning"])
            for m in run["models"] if "val_mae_after_pruning" in m.get("history", {})}


def chosen_rate(*runs):
    """The fine-tuning rate whose models' best fine-tuning epochs have the lowest mean validation MAE."""
    return min(runs, key=lambda run: np.mean([v for v, _ in fine_tuned_val_maes(run).values()]))[
        "config"]["FINE_TUNE_LEARNING_RATE"]


def fine_tune_rate(*runs):
    """How the video network's fine-tuning rate was chosen: one run per candidate rate, alike in everything
    else; each model's best fine-tuning epoch on validation, and their mean; the lowest mean wins. No test
    number is read."""
    runs = sorted(runs, key=lambda run: run["config"]["FINE_TUNE_LEARNING_RATE"])
    names = list(fine_tuned_val_maes(runs[0]))
    lines = ["| fine-tuning rate | " + " | ".join(names) + " | mean |", "|---" * (len(names) + 2) + "|"]
    for run in runs:
        found = fine_tuned_val_maes(run)
        values = [found[name][0] for name in names]
        lines.append(f"| {run['config']['FINE_TUNE_LEARNING_RATE']:g} | "
                     + " | ".join(f"{v:.2f}" for v in values) + f" | {np.mean(values):.2f} |")
    after = [fine_tuned_val_maes(runs[0])[name][1] for name in names]  # the same model for every rate
    lines.append("| right after pruning, recalibrated | " + " | ".join(f"{v:.2f}" for v in after)
                 + f" | {np.mean(after):.2f} |")
    first = runs[0]
    return ("\n".join(lines) + f"\n\nValidation MAE of {NAMES[network(first)]}, the best of "
            f"{first['config']['FINE_TUNE_EPOCHS']} fine-tuning epochs, seed "
            f"{', '.join(str(s) for s in first['config']['SEEDS'])}, {first['splits']['val']} validation "
            f"videos. Chosen: {chosen_rate(*runs):g}.\n")
