"""The experiment: train the EF baseline, then prune it by each method at each ratio, fine-tune with
the masks in place, measure everything, and write results/ as each model finishes. This file is the plan,
top to bottom (which models, in which order, each compared with what); how each model is trained, pruned
and measured is seed_models.py's, and the run's records are bookkeeping/run_state.py's.

    python main.py                 # the reference configuration
    python main.py --quick         # a few minutes on a laptop CPU, on the built-in sample data
    python main.py --data-root /data/EchoNet-Dynamic --num-epochs 10

Started again with the same configuration, a run continues where it stopped; --fresh starts over.
"""
import sys
import time
from collections import namedtuple
from dataclasses import dataclass, replace
from types import SimpleNamespace

import cli  # first: a syntax error or an unknown name in config.py is one message (exit 2)

import torch
import torch.distributed as dist

import answers
import batches
import dataset
import flop_budgets
import latency
import measurement
import methods
import metrics
import plan_checks
import processes
import quantize
import reports
import seed_models
import visualize_model_architecture
import visualize_results
from bookkeeping import ledger
from bookkeeping import provenance
from bookkeeping import run_identity
from bookkeeping import run_state
from cli import exits
from processes import log
from storage import folders
from storage import locks


def main(argv):
    cfg = cli.load(argv, cli.parser(__doc__))
    device, steady_allocator = plan_checks.machine(cfg)  # torchrun, the device, compile, ONNX Runtime
    plan_checks.refuse(cfg)  # ratios, budgets and allocations the model cannot give: before training
    try:
        if processes.is_main():
            folders.check_writable(cfg)  # now, naming the folder, not after an epoch of training
            locks.lock(cfg.RESULTS_DIR, log)
        return run(cfg, device, steady_allocator)
    except torch.OutOfMemoryError as e:  # a batch (or the clips) larger than the GPU's free memory
        raise cli.ConfigError(f"the GPU ran out of memory ({str(e).splitlines()[0]}). Lower --batch-size "
                              f"(now {cfg.BATCH_SIZE}), or set --clips-on-device 0 to keep the clips in "
                              f"host memory; then run the same command again to continue") from None
    finally:
        locks.unlock_all()  # the results folder's lock, and an outside checkpoint folder's
        if dist.is_initialized():
            dist.destroy_process_group()


def run(cfg, device, steady_allocator):
    """The run: set up (the data, checked against an earlier run), every seed's models, then the end
    (every model timed together, the figures and the reports)."""
    experiment = set_up(cfg, device, steady_allocator)
    for seed in cfg.SEEDS:
        run_seed(experiment, seed)
        if processes.is_main() and seed != cfg.SEEDS[-1]:  # the last seed's summary.md comes with the figures
            results = ledger.with_earlier(experiment.results, experiment.earlier)
            reports.write_results(results, cfg.RESULTS_DIR)
    return wrap_up(experiment)


@dataclass
class Experiment:
    """What the run's steps share: the configuration and device, the data (splits, their loaders, and what
    measuring needs besides a model: measuring_inputs), results.json as far as known, the earlier run
    continued and its finished models, the phases' clock, the mean predictor's test MAE, the start."""
    cfg: SimpleNamespace
    device: torch.device
    splits: dict
    loaders: dict
    inputs: SimpleNamespace
    results: dict
    earlier: dict
    done: list
    clock: measurement.Clock
    mean_mae: float
    start: float


def set_up(cfg, device, steady_allocator):
    """The data read and checked, an earlier run of the same inputs continued (or archived with --fresh),
    and the results as far as they are known before the first model. Returns what the run's steps share."""
    previous = ledger.earlier_results(cfg) if processes.is_main() else {}  # before the data: nothing moved
    clock = measurement.Clock()
    splits, loaders, skipped = dataset.load_data(cfg, device, log)
    names = [n for split in splits.values() for n in split.names] + [s["video"] for s in skipped]
    identity = run_identity.run_identity(cfg, run_identity.data_fingerprint(cfg.DATA_ROOT, names))
    clock.lap("data_preparation")
    earlier = run_state.earlier_run(cfg, previous, identity, skipped)
    mean_ef, mean_mae = metrics.mean_predictor_mae(splits["train"].efs, splits["test"].efs)
    log(f"{len(splits['train'])}/{len(splits['val'])}/{len(splits['test'])} train/val/test videos from "
        f"{cfg.DATA_ROOT}; device {device} x {processes.world_size()} process(es), precision "
        f"{str(processes.precision(device, cfg.AMP)).replace('torch.', '')}; "
        f"mean predictor test MAE {mean_mae:.2f}")
    results = {"config": {k: v for k, v in vars(cfg).items() if k != "FRESH"}, "identity": identity,
               "environment": provenance.environment(device, steady_allocator),
               "splits": {name: len(split) for name, split in splits.items()}, "skipped_videos": skipped,
               "mean_predictor": {"ef": mean_ef, "test_mae": mean_mae}, "sensitivity": [],
               "group_sensitivity": [], "models": [],
               "phases": clock.laps, "clips_on_device": loaders["train"].resident,
               "started": time.strftime("%Y-%m-%d %H:%M %Z")}
    inputs = measuring_inputs(cfg, splits, identity)
    if cfg.INT8:
        results["environment"]["cpu_int8"] = quantize.cpu_int8_features()
    return Experiment(cfg=cfg, device=device, splits=splits, loaders=loaders, inputs=inputs, results=results,
                      earlier=earlier, done=earlier.get("models", []), clock=clock, mean_mae=mean_mae,
                      start=time.perf_counter())


def measuring_inputs(cfg, splits, identity):
    """What measuring needs besides the model: a few real test videos to check each ONNX export against
    PyTorch; for INT8, training videos to calibrate on (never validation or test) and the whole test split."""
    test = splits["test"]
    return SimpleNamespace(
        identity=identity,
        sample_videos=torch.stack([test[i][0] for i in range(min(4, len(test)))]),
        calibration=quantize.calibration_videos(splits["train"], cfg.INT8_CALIBRATION_VIDEOS, cfg.SEED)
        if cfg.INT8 and processes.is_main() else None,
        test=batches.Batches(test.clips, test.efs, 4 * cfg.BATCH_SIZE, torch.device("cpu")))



def run_seed(experiment, seed):
    """One seed's models, each recorded as it finishes: the baseline, its layer sensitivity, then every
    pruned model and control of the plan, the dense control first. A model an earlier run finished is
    reused, not trained again."""
    cfg = experiment.cfg
    ctx = run_state.seed_context(experiment, seed)
    baseline, baseline_model = seed_baseline(experiment, ctx)
    ctx = seed_sensitivity(experiment, ctx, baseline_model)
    if cfg.DISTILLED_METHODS:
        ctx = seed_models.with_teacher(ctx, baseline_model)

    control = None  # the dense control of this seed, first in the plan
    for step in pruning_plan(cfg):
        earlier = run_state.reused(experiment, ctx, f"{step.method}_{step.ratio:g}")
        if earlier:
            record = earlier[0]
        elif methods.from_scratch(step.method):
            record = seed_models.run_scratch(ctx, baseline_model, baseline, step, control=control)
        else:
            record = seed_models.run_pruned(ctx, baseline_model, baseline, step, control=control)
        control = record if step.method == methods.CONTROL else control
        run_state.finished(experiment, record, ctx.folder, "pruned_models")
        if processes.is_main():
            log(f"{record['name']} (seed {seed}): sparsity {record['sparsity_before_fine_tune']:.3f} -> "
                f"{record['sparsity']:.3f}, test MAE {record['test_mae']:.2f} "
                f"({record['mae_increase_pct']:+.1f}%), {record['params_effective']:,} effective params")


def seed_baseline(experiment, ctx):
    """The seed's baseline, trained (or an earlier run's, reused) and recorded: (record, model)."""
    baseline, baseline_model = run_state.reused(experiment, ctx, "baseline") or seed_models.run_baseline(ctx)
    experiment.results["pretrained"] = {"used": baseline["pretrained"],
                                        "reason": baseline["pretrained_reason"]}
    run_state.finished(experiment, baseline, ctx.folder, "baseline")
    if processes.is_main():
        log(f"baseline (seed {ctx.seed}): test MAE {baseline['test_mae']:.2f} (95% interval "
            f"{baseline['test_mae_ci_low']:.2f}–{baseline['test_mae_ci_high']:.2f}; mean predictor "
            f"{experiment.mean_mae:.2f}), R² {baseline['test_r2']:.3f}")
    return baseline, baseline_model


def seed_sensitivity(experiment, ctx, model):
    """The seed's layer sensitivity (SENSITIVITY) and, for the sensitivity allocation, its coupled-group
    sensitivity, each measured once (an earlier run's rows reused) and written as soon as measured.
    Returns ctx with the group rows."""
    cfg, results = experiment.cfg, experiment.results
    wanted = {"sensitivity": cfg.SENSITIVITY and seed_models.run_sensitivity,
              "group_sensitivity": ("sensitivity" in cfg.CHANNEL_ALLOCATIONS
                                    and seed_models.run_group_sensitivity)}
    for key, measure in wanted.items():
        if measure:
            rows = [r for r in experiment.earlier.get(key, []) if r["seed"] == ctx.seed]
            results[key] += rows or measure(ctx, model)
    if any(wanted.values()):
        experiment.clock.lap("sensitivity")
        if processes.is_main():
            reports.write_results(ledger.with_earlier(results, experiment.earlier), cfg.RESULTS_DIR,
                                  summary=False)
    return replace(ctx, sensitivity=tuple(r for r in results["group_sensitivity"] if r["seed"] == ctx.seed))


# One model of the plan: its method, its ratio, and the FLOP budget (times fewer than the baseline's) that
# ratio was solved for, or None (flop_budgets.budget_ratios).
Step = namedtuple("Step", "method ratio budget")


def pruning_plan(cfg):
    """The models after the baseline, in methods.py's order: the dense control first (every pruned model is
    compared to it; none when nothing is pruned), then each method the options put in the plan
    (methods.planned) at its ratios, the removed-channel ones at the FLOP budgets' ratios too, each with
    the budget it came from; each distilled or rewound method right after its model fine-tuned as
    configured."""
    budgets = flop_budgets.budget_ratios(cfg)
    channels = cfg.STRUCTURED_PRUNING_RATIOS
    at = {"unstructured": cfg.UNSTRUCTURED_PRUNING_RATIOS, "channels": channels,
          "removed": channels + [r for r in budgets.values() if r not in channels]}

    def budget(row, ratio):
        return next((s for s, r in budgets.items() if r == ratio), None) if row.ratios == "removed" else None
    pruned = [Step(method, ratio, budget(row, ratio)) for method, row in methods.METHODS.items()
              if method != methods.CONTROL and row.ratios and methods.planned(method, cfg)
              for ratio in at[row.ratios]]
    plan = [Step(methods.CONTROL, 0.0, None)] + pruned if pruned else []
    return [step._replace(method=step.method + suffix) for step in plan
            for suffix in ["", *[suffix for suffix, constant in methods.VARIANTS.items()
                                 if step.method in getattr(cfg, constant)]]]


def wrap_up(experiment):
    """The end of the run: every model timed together, once all are trained (latency.py), and again
    whenever a record lacks it; then the figures and the reports."""
    cfg, results, clock = experiment.cfg, experiment.results, experiment.clock
    if processes.is_main() and latency.untimed(results["models"]):
        latency.time_models(results["models"], cfg, experiment.device, experiment.inputs.sample_videos[:1],
                            log)
        clock.lap("latency")
        reports.write_results(results, cfg.RESULTS_DIR, summary=False)
    results["seconds"] = time.perf_counter() - experiment.start
    results["finished"] = time.strftime("%Y-%m-%d %H:%M %Z")
    if not processes.is_main():
        return results
    figures = []
    if cfg.DRAW_FIGURES:
        reports.write_results(results, cfg.RESULTS_DIR, summary=False)  # the figures read results.json
        physical = [folders.resolve(cfg.RESULTS_DIR, r["checkpoint"]) for r in results["models"]
                    if r["method"] == "structured_physical" and r["seed"] == cfg.SEEDS[0]]
        figures = visualize_results.draw_all(cfg.RESULTS_DIR, cfg.FIGURES_DIR)
        figures += visualize_model_architecture.draw_checkpoints(physical, cfg.FIGURES_DIR)
        clock.lap("figures")
    summary = reports.write_results(results, cfg.RESULTS_DIR, figures)
    log("\n" + (summary if cfg.VERBOSE else "\n".join(ending(results, cfg, figures))))
    log("phases: " + ", ".join(f"{name.replace('_', ' ')} {seconds:.0f} s"
                               for name, seconds in clock.laps.items()))
    log(f"done in {results['seconds'] / 60:.1f} min; results in {cfg.RESULTS_DIR}/")
    return results


def ending(results, cfg, figures):
    """The few lines a run ends with (all of summary.md with --verbose): the primary answers at each budget,
    what the design resolves, and where the files are."""
    answers_ = answers.terminal(results)
    head = (["The study's primary questions (summary.md has every table and claim):"] if answers_ else
            ["This run asks none of the study's primary questions; summary.md has its tables and claims."])
    where = [f"summary, tables and claims: {cfg.RESULTS_DIR}/summary.md; per model: results.csv, "
             f"results_by_ratio.csv, results.json"]
    if figures:
        where.append(f"figures: {len(figures)} files in {cfg.FIGURES_DIR}/")
    return head + answers_ + where


if __name__ == "__main__":
    exits.run(main, sys.argv[1:], again="run the same command again to continue")
