"""The two networks compared (readme_tables.py's "networks" block): EchoNet-Dynamic's R(2+1)D-18 over the
clip beside the design card's per-frame ResNet-18, from two runs on the same data, so on the same test
videos in the same order, and on the training seeds both ran.

At each FLOP budget (each network's coupled removal at the ratio that cuts its own effective FLOPs by the
same factor, within flop_budgets.BUDGET_TOLERANCE: the video network's run solves its ratios for the
per-frame study's factors, TARGET_FLOPS_SPEEDUPS), two questions per method of methods.PRIMARY_METHODS
(every one pruned to removal's effective FLOPs):
- what the method loses on R(2+1)D-18 against that network's own baseline (non-inferiority, as every
  pruned model against its baseline, claims.py), and
- whether R(2+1)D-18 loses more or less than the per-frame network by the same method at the same budget:
  the difference of the two losses, paired by seed and video, d[s, v] = (|video model| - |video baseline|)
  - (|frame model| - |frame baseline|), a two-sided question (neither network is the one expected to
  hold), its margin M a share (NONINFERIORITY_FRACTION) of the per-frame baseline's MAE, the reference.
These alone are one Holm family (FAMILY), stated before the run; the standard error is crossed.py's over
seeds x videos. Removal's speed-ups are each run's (speed.py's rule, every model of a run one family).
"""
import numpy as np
import pandas as pd

import claims
import config
import flop_budgets
import methods
import power
import speed
from table_cells import interval

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


def reduction(models, ratio):
    """The factor by which coupled removal at `ratio` cuts the run's baseline's effective FLOPs."""
    dense = models[models.method == "baseline"].effective_flops.mean()
    removed = models[(models.method == "structured_physical") & (models.ratio == ratio)]
    return dense / removed.effective_flops.mean()


def budgets(frames, videos):
    """[(video ratio, per-frame ratio)]: each budget of the video run's coupled removal with the per-frame
    run's ratio that cuts its FLOPs by the nearest factor, where that is within BUDGET_TOLERANCE."""
    found = []
    for ratio in sorted(videos[videos.method == "structured_physical"].ratio.unique()):
        factor = reduction(videos, ratio)
        near = min(frames[frames.method == "structured_physical"].ratio.unique(),
                   key=lambda r: abs(np.log(reduction(frames, r) / factor)))
        if abs(reduction(frames, near) / factor - 1) <= flop_budgets.BUDGET_TOLERANCE:
            found.append((ratio, near))
    if not found:
        raise ValueError("no FLOP budget of the video run is within the tolerance of one of the per-frame "
                         "run's; run it at the per-frame run's budgets (--target-flops-speedups)")
    return found


def tests(frame, video, alpha):
    """claims.decide's table of the family: per budget and primary method, the video network's loss
    ("vs baseline") and the networks' difference ("networks"); ratio the video run's, frame_ratio the
    per-frame run's at the same budget."""
    seeds = same_videos(frame, video)
    frames, videos = pd.DataFrame(frame["models"]), pd.DataFrame(video["models"])
    fraction = config.NONINFERIORITY_FRACTION  # the one margin, whatever the runs recorded
    rows, matrices, margins = [], [], []
    for ratio, frame_ratio in budgets(frames, videos):
        for method in methods.PRIMARY_METHODS:
            mine, theirs = loss(videos, method, ratio, seeds), loss(frames, method, frame_ratio, seeds)
            for kind, diffs, margin_of, question in (
                    ("vs baseline", mine, videos, claims.NON_INFERIORITY),
                    ("networks", mine - theirs, frames, claims.TWO_SIDED)):
                rows.append({"kind": kind, "method": method, "ratio": ratio, "frame_ratio": frame_ratio,
                             "family": FAMILY, "question": question})
                matrices.append(diffs)
                margins.append(claims.margin(margin_of, seeds=seeds, fraction=fraction))
    found = claims.test_all(matrices, margins)
    return claims.decide(pd.DataFrame([{**r, **f} for r, f in zip(rows, found)]), alpha), seeds


def budget(frames, videos, ratio, frame_ratio):
    """'3.8× fewer FLOPs (ratio 0.445; per-frame: 3.76× at ratio 0.5)', R(2+1)D-18's first."""
    return (f"{reduction(videos, ratio):.2f}× fewer FLOPs (ratio {ratio:g}; per-frame: "
            f"{reduction(frames, frame_ratio):.2f}× at ratio {frame_ratio:g})")


def speed_cells(frames, videos, pairs):
    """{video ratio: [cell per runtime]}: removal's speed-up over the baseline on R(2+1)D-18, its interval
    and verdict by its own run's rule (speed.py), the per-frame network's at the same budget beside it."""
    found = {}
    for prefix in speed.RUNTIMES:
        if f"{prefix}_round_ms" not in videos or f"{prefix}_round_ms" not in frames:
            continue
        mine, theirs = (speed.compared(models, prefix) for models in (videos, frames))
        for ratio, frame_ratio in pairs:
            own = mine.get(("structured_physical", ratio))
            other = theirs.get(("structured_physical", frame_ratio))
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


def right_after(frames, videos, pairs, seeds):
    """'Right after pruning ...': coupled removal's test MAE before any fine-tuning against random coupled
    groups' at each budget, both networks, means over the seeds: whether the criterion or the fine-tuning
    is what a network's removed model lacks (descriptive; the random control's verdicts are in each run's
    exploratory family). "" where a run has no random removal control."""
    def before(models, method, ratio):
        picked = models[(models.method == method) & (models.ratio == ratio) & models.seed.isin(seeds)]
        found = picked.get("test_mae_before_fine_tune")
        return found.mean() if found is not None and len(picked) else float("nan")
    cells = []
    for ratio, frame_ratio in pairs:
        found = [before(models, method, r) for models, r in ((videos, ratio), (frames, frame_ratio))
                 for method in ("structured_physical", "structured_physical_random")]
        if not np.isfinite(found).all():
            return ""
        cells.append(f"{found[0]:.2f} against {found[1]:.2f} at {reduction(videos, ratio):.2f}× (per-frame "
                     f"{found[2]:.2f} against {found[3]:.2f})")
    return (f"Test MAE right after pruning and recalibration, before fine-tuning, {NAMES[VIDEO]}'s coupled "
            f"removal against random coupled groups, means over the seeds: {'; '.join(cells)}.")


def networks(frame, video):
    """The README's table of the two networks: budgets down, the primary methods across, each cell the
    method's loss on R(2+1)D-18 and, under it, that loss less the per-frame network's; then removal's
    speed-ups, the baselines, the family and what it resolves (power.py)."""
    alpha = config.ALPHA
    table, seeds = tests(frame, video, alpha)
    frames, videos = pd.DataFrame(frame["models"]), pd.DataFrame(video["models"])
    pairs = list(dict.fromkeys(zip(table.ratio, table.frame_ratio)))
    speeds_at = speed_cells(frames, videos, pairs)
    runtimes = [runtime.name for prefix, runtime in speed.RUNTIMES.items()
                if f"{prefix}_round_ms" in videos and f"{prefix}_round_ms" in frames]
    columns = ["budget", *map(methods.label, methods.PRIMARY_METHODS), *(f"removal's speed-up, {r}"
                                                                          for r in runtimes)]
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for (ratio, frame_ratio), rows in table.groupby(["ratio", "frame_ratio"], sort=True):
        cells = []
        for method in methods.PRIMARY_METHODS:
            own, both = (rows[(rows.method == method) & (rows.kind == kind)].iloc[0]
                         for kind in ("vs baseline", "networks"))
            cells.append(f"{interval(own)} {own.verdict}<br>less the per-frame loss: {interval(both)} "
                         f"{both.verdict}")
        lines.append(f"| {budget(frames, videos, ratio, frame_ratio)} | "
                     + " | ".join(cells + speeds_at.get(ratio, [])) + " |")
    margins = table.groupby("kind").margin.median()
    return "\n".join(lines) + "\n\n" + " ".join([
        f"Each cell: the model's test MAE on {NAMES[VIDEO]} minus that network's baseline's [95% interval] "
        f"and the verdict; under it, that loss minus the same method's loss on the {NAMES[FRAME]} at the "
        f"same FLOP budget, paired by seed and video. Seeds {', '.join(map(str, seeds))} (those both runs "
        f"have); the same {int(table.videos.max())} test videos for both networks.",
        baselines(frames, videos, seeds), right_after(frames, videos, pairs, seeds),
        f"The margin M is {config.NONINFERIORITY_FRACTION:g} of the baseline's MAE "
        f"({margins['vs baseline']:.2f} for {NAMES[VIDEO]}; {margins['networks']:.2f}, the per-frame "
        f"network's, for the difference of losses); Holm over these {len(table)} comparisons alone. A "
        f"speed-up cell: its 95% interval and the verdict of its own run's speed rule, the per-frame "
        f"network's beside it.",
        power.sentence(table, alpha)]).strip() + "\n"


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
    found = [fine_tuned_val_maes(run) for run in runs]
    names = list(found[0])
    lines = ["| fine-tuning rate | " + " | ".join(names) + " | mean |", "|---" * (len(names) + 2) + "|"]
    for run, maes in zip(runs, found):
        values = [maes[name][0] for name in names]
        lines.append(f"| {run['config']['FINE_TUNE_LEARNING_RATE']:g} | "
                     + " | ".join(f"{v:.2f}" for v in values) + f" | {np.mean(values):.2f} |")
    after = [found[0][name][1] for name in names]  # the same model for every rate
    lines.append("| right after pruning, recalibrated | " + " | ".join(f"{v:.2f}" for v in after)
                 + f" | {np.mean(after):.2f} |")
    first = runs[0]
    return ("\n".join(lines) + f"\n\nValidation MAE of {NAMES[network(first)]}, the best of "
            f"{first['config']['FINE_TUNE_EPOCHS']} fine-tuning epochs, seed "
            f"{', '.join(str(s) for s in first['config']['SEEDS'])}, {first['splits']['val']} validation "
            f"videos. Chosen: {chosen_rate(*runs):g}.\n")
