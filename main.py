"""The experiment: train the EF baseline, then prune it by each method at each ratio, fine-tune with
the masks in place, measure everything, and write results/ as each model finishes.

    python main.py                 # the reference configuration
    python main.py --quick         # a few minutes on a laptop CPU, on the built-in sample data
    python main.py --data-root /data/EchoNet-Dynamic --num-epochs 10

Started again with the same configuration, a run continues where it stopped; --fresh starts over.
"""
import copy
import os
import random
import sys
import time
from dataclasses import dataclass, replace
from types import SimpleNamespace

# first: a syntax error or an unknown name in config.py is one message (exit 2)
from bookkeeping import config_types
config_types.import_config()

import numpy as np
import torch
import torch.distributed as dist

import allocation
import batches
import batchnorm
from bookkeeping import ledger
import config
import dataset
from bookkeeping import folders
from bookkeeping import locks
import latency
import measurement
import metrics
import onnx_runtime
from bookkeeping import provenance
import prune_utils
import quantize
import reports
from bookkeeping import run_identity
import sensitivity
import train
import visualize_model_architecture
import visualize_results
from dataset import DataError
from model import EFRegressionModel, load_pretrained, save_checkpoint


def log(message):
    if train.is_main():  # under torchrun, one process speaks
        print(message, flush=True)


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class SeedContext:
    """What every model of one seed shares: the seed, the folder of its checkpoints, training states and
    epoch logs, and the run's configuration, data loaders, device, measuring inputs (`measuring_inputs`)
    and training EFs (the head's initialisation); for distillation, once the baseline is trained, the
    loader "distill" (with_teacher) and how far the baseline's predictions for the training videos are
    from their labels (teacher_train_mae: what a distillation target can add); once measured, the seed's
    coupled-group sensitivity (the sensitivity allocation's, sensitivity.group_sensitivity)."""
    seed: int
    folder: str
    cfg: SimpleNamespace
    loaders: dict
    device: torch.device
    inputs: SimpleNamespace
    train_efs: np.ndarray
    sensitivity: tuple = ()
    teacher_train_mae: float = None


def test_metrics(ctx, model):
    """MAE, RMSE, R² on the test split, and each video's error (for the paired bootstrap)."""
    predicted, target = train.predict(model, ctx.loaders["test"], ctx.device, ctx.cfg.AMP)
    return {**prefixed("test_", metrics.regression_metrics(predicted, target)), "test_videos": len(target),
            "test_errors": [round(e, 5) for e in (predicted - target).tolist()]}


def compare_to_baseline(record, baseline, cfg, control=None):
    """Changes against the baseline of the same seed; the MAE's 95% intervals over the same test videos.
    With the dense control of the same seed, the MAE's change against it too (paired likewise). The
    speedups come after the latency phase (latency.speedups)."""
    record.update(metrics.bootstrap_mae(record["test_errors"], baseline["test_errors"],
                                        cfg.BOOTSTRAP_SAMPLES))
    if control is not None and record is not control:
        record["mae_diff_vs_control"] = record["test_mae"] - control["test_mae"]
        record["mae_diff_vs_control_ci_low"], record["mae_diff_vs_control_ci_high"] = \
            metrics.paired_difference_interval(record["test_errors"], control["test_errors"],
                                               cfg.BOOTSTRAP_SAMPLES)
    record["mae_increase_pct"] = 100 * (record["test_mae"] - baseline["test_mae"]) / baseline["test_mae"]
    record["compression_ratio"] = baseline["params"] / record["params_effective"]
    record["theoretical_speedup"] = baseline["flops"] / record["effective_flops"]
    if "int8_test_mae" in record:  # INT8 against its own FP32 ONNX model on the same videos
        fp32 = "fp32_onnx_test_mae" if "fp32_onnx_test_errors" in record else "test_mae"
        record["int8_mae_change"] = record["int8_test_mae"] - record[fp32]
        record["int8_mae_change_ci_low"], record["int8_mae_change_ci_high"] = \
            metrics.paired_difference_interval(record["int8_test_errors"],
                                               record[fp32.replace("mae", "errors")], cfg.BOOTSTRAP_SAMPLES)
    return record


def seed_run(ctx):
    """Every model's run starts from its seed alone, so a continued run repeats an uninterrupted one."""
    seed_everything(ctx.seed)
    for loader in ("train", "distill"):
        if loader in ctx.loaders:
            ctx.loaders[loader].seed = ctx.seed


def with_teacher(ctx, baseline_model):
    """ctx with the loader "distill": the training batches, each video's target (its label, the dense
    baseline's prediction for it), the predictions made once, on the device, for the whole split."""
    in_order = copy.copy(ctx.loaders["train"])  # shares the clips
    in_order.shuffle = False
    teacher, labels = train.predict(baseline_model, in_order, ctx.device, ctx.cfg.AMP)
    distill = copy.copy(ctx.loaders["train"])
    distill.efs = torch.stack([labels, teacher], 1).to(distill.efs.device)
    gap = (teacher - labels).abs().mean().item()
    log(f"distillation (seed {ctx.seed}): the baseline's predictions for the training videos are "
        f"{gap:.2f} EF points from their labels on average")
    return replace(ctx, loaders={**ctx.loaders, "distill": distill}, teacher_train_mae=gap)


def fit(ctx, model, name, *, epochs, lr, pruner=None, distilled=False):
    """Train `model` (train.train), continuing from its training state when an earlier run of the same
    inputs left one, and logging each epoch to its CSV beside the checkpoint. distilled: on the labels
    and the dense baseline's predictions (with_teacher), DISTILLATION_WEIGHT the latter's share."""
    state = ledger.training_state_path(ctx.folder, name)
    if train.is_main():
        run_identity.check_training_state(state, ctx.inputs.identity, log)
    train.barrier()
    return train.train(model, ctx.loaders["distill" if distilled else "train"], ctx.loaders["val"],
                       epochs=epochs, lr=lr, device=ctx.device, desc=name, log=log, state_path=state,
                       amp=ctx.cfg.AMP, schedule=ctx.cfg.LR_SCHEDULE,
                       pruner=pruner, channels_last=ctx.cfg.CHANNELS_LAST,
                       epoch_log=ledger.epoch_log_path(ctx.folder, name),
                       distillation_weight=ctx.cfg.DISTILLATION_WEIGHT if distilled else None)


def recovery_fields(ctx, method, ratio):
    """What a record says of distillation and of the FLOP budget its ratio was solved for."""
    fields = {}
    if method.endswith(prune_utils.DISTILLED):
        fields.update(distillation_weight=ctx.cfg.DISTILLATION_WEIGHT,
                      teacher_train_mae=ctx.teacher_train_mae)
    budgets = [s for s, r in budget_ratios(ctx.cfg).items() if r == ratio]
    if budgets and prune_utils.base_method(method) in prune_utils.REMOVED + (prune_utils.SCRATCH,):
        fields["target_flops_speedup"] = budgets[0]
    return fields


def finish(ctx, model, record):
    """Save and measure on the main process; the others wait, then go on with the same model. The
    training state stays until the record is in results.json (main's `finished`)."""
    cfg, checkpoint = ctx.cfg, os.path.join(ctx.folder, f"{record['name']}.pt")
    if train.is_main():
        save_checkpoint(checkpoint, model, method=record["method"], ratio=record["ratio"],
                        seed=record["seed"], num_frames=cfg.NUM_FRAMES, image_size=cfg.IMAGE_SIZE,
                        config_hash=run_identity.config_hash(cfg), identity=ctx.inputs.identity["id"])
        record.update(measurement.measure(model, cfg, checkpoint, ctx.inputs))
        record.update(seconds_training=record["history"]["seconds"], **measurement.speed(record["history"]))
    train.barrier()
    return record


def run_baseline(ctx):
    cfg = ctx.cfg
    seed_run(ctx)
    model = EFRegressionModel(float(np.mean(ctx.train_efs)), float(np.std(ctx.train_efs)))
    pretrained, reason = load_pretrained(model, cfg.PRETRAINED, cfg.PRETRAINED_PATH)
    log(f"baseline (seed {ctx.seed}): ResNet-18 "
        f"{'with ImageNet weights' if pretrained else 'from random init'} ({reason})")
    history = fit(ctx, model, "baseline", epochs=cfg.NUM_EPOCHS, lr=cfg.LEARNING_RATE)
    record = {"name": "baseline", "method": "baseline", "ratio": 0.0, "seed": ctx.seed,
              "pretrained": pretrained, "pretrained_reason": reason,
              **test_metrics(ctx, model), "val_mae": min(history["val_mae"]), "history": history}
    finish(ctx, model, record)
    record["achieved_ratio"] = 0.0
    if train.is_main():
        record["sparsity_before_fine_tune"] = record["sparsity"]
        compare_to_baseline(record, record, cfg)
    return record, model


def run_sensitivity(ctx, model):
    """Each prunable layer pruned alone, BatchNorm recalibrated on training batches, no fine-tuning, on
    the validation split (never test)."""
    cfg = ctx.cfg
    start = time.perf_counter()
    dense_mae, rows = sensitivity.layer_sensitivity(model, ctx.loaders["val"], ctx.device,
                                                    ratios=cfg.SENSITIVITY_RATIOS, scope=cfg.PRUNING_SCOPE,
                                                    amp=cfg.AMP,
                                                    batches=recalibration_batches(ctx.loaders, ctx.seed),
                                                    num_batches=cfg.BN_RECALIBRATION_BATCHES)
    seconds = time.perf_counter() - start
    worst = max(rows, key=lambda r: r["val_mae_increase"])
    log(f"layer sensitivity (seed {ctx.seed}): {len(rows)} single-layer prunings evaluated on validation in "
        f"{seconds:.0f} s; largest loss: {worst['layer']} by {worst['criterion']} at {worst['ratio']:g}, "
        f"val MAE {worst['recalibrated_dense_val_mae']:.2f} -> {worst['val_mae']:.2f} (recalibrated; "
        f"{dense_mae:.2f} as trained)")
    return [{"seed": ctx.seed, "dense_val_mae": dense_mae, "seconds": seconds, **r} for r in rows]


def run_group_sensitivity(ctx, model):
    """Each coupled group's channels removed alone, as run_sensitivity measures a layer: what the
    sensitivity allocation allocates from."""
    cfg = ctx.cfg
    start = time.perf_counter()
    rows = sensitivity.group_sensitivity(model, ctx.loaders["val"], ctx.device, cfg.SENSITIVITY_RATIOS,
                                         num_frames=cfg.NUM_FRAMES, image_size=cfg.IMAGE_SIZE,
                                         round_to=cfg.PHYSICAL_ROUND_TO, amp=cfg.AMP,
                                         batches=recalibration_batches(ctx.loaders, ctx.seed),
                                         num_batches=cfg.BN_RECALIBRATION_BATCHES)
    seconds = time.perf_counter() - start
    groups = len({r["group"] for r in rows})
    log(f"coupled-group sensitivity (seed {ctx.seed}): {groups} groups each removed alone at "
        f"{len(cfg.SENSITIVITY_RATIOS)} ratios, evaluated on validation in {seconds:.0f} s")
    return [{"seed": ctx.seed, "seconds": seconds, **r} for r in rows]


def seed_sensitivity(experiment, ctx, model):
    """The seed's layer sensitivity (SENSITIVITY) and, for the sensitivity allocation, its coupled-group
    sensitivity, each measured once (an earlier run's rows reused) and written as soon as measured.
    Returns ctx with the group rows."""
    cfg, results = experiment.cfg, experiment.results
    wanted = {"sensitivity": cfg.SENSITIVITY and run_sensitivity,
              "group_sensitivity": "sensitivity" in cfg.CHANNEL_ALLOCATIONS and run_group_sensitivity}
    for key, measure in wanted.items():
        if measure:
            rows = [r for r in experiment.earlier.get(key, []) if r["seed"] == ctx.seed]
            results[key] += rows or measure(ctx, model)
    if any(wanted.values()):
        experiment.clock.lap("sensitivity")
        if train.is_main():
            reports.write_results(ledger.with_earlier(results, experiment.earlier), cfg.RESULTS_DIR,
                                  summary=False)
    return replace(ctx, sensitivity=tuple(r for r in results["group_sensitivity"] if r["seed"] == ctx.seed))


def pruning_steps(cfg):
    """1 for one-shot; for gradual, PRUNING_STEPS, spread over the first PRUNING_RAMP_END of fine-tuning."""
    return 1 if cfg.PRUNING_SCHEDULE == "oneshot" else cfg.PRUNING_STEPS


def recalibration_batches(loaders, seed):
    """The training batches BatchNorm is recalibrated on: the first of epoch 0's order for `seed`,
    whatever epoch the training batches are at, so a continued run (its baseline reused, or its
    fine-tuning resumed) recalibrates on exactly the batches an uninterrupted one did."""
    fixed = copy.copy(loaders["train"])  # shares the clips; its own seed and epoch
    fixed.seed = seed
    fixed.set_epoch(0)
    return fixed


def recalibration(ctx):
    """The pruner's after_step: BatchNorm's running statistics re-estimated on training batches."""
    return lambda model: batchnorm.recalibrate(model, recalibration_batches(ctx.loaders, ctx.seed),
                                               ctx.cfg.BN_RECALIBRATION_BATCHES, ctx.cfg.AMP)


def run_pruned(ctx, baseline_model, baseline, method, ratio, control=None):
    """Prune a copy of the trained baseline on the schedule's steps inside fine-tuning (masks in place
    unless the reference's flaw is switched on), make the pruning permanent, measure. Every step is
    followed by BatchNorm recalibration. One-shot: the step is taken here, so the model measured right
    after pruning is the one fine-tuned (a random control's mask included), and it competes with the
    fine-tuning epochs on validation, as train.train does for a step it takes itself."""
    cfg, loaders, device = ctx.cfg, ctx.loaders, ctx.device
    name, pruning = f"{method}_{ratio:g}", prune_utils.base_method(method)
    seed_run(ctx)
    model = copy.deepcopy(baseline_model)
    pruner = prune_utils.Pruner.from_config(model, pruning, ratio, cfg, steps=pruning_steps(cfg),
                                            remove_masks=cfg.REMOVE_MASKS_BEFORE_FINE_TUNE,
                                            after_step=recalibration(ctx), ramp_end=cfg.PRUNING_RAMP_END,
                                            sensitivity=ctx.sensitivity)
    pruned = None
    if pruner.steps == 1:
        pruner.step()
        pruned = (train.evaluate(model, loaders["val"], device, cfg.AMP)["mae"],
                  copy.deepcopy(model.state_dict()))
        mae_before = train.evaluate(model, loaders["test"], device, cfg.AMP)["mae"]
    else:  # gradual: what pruning at once to the ratio costs, on a copy, recalibrated likewise
        one_shot = copy.deepcopy(baseline_model)
        prune_utils.Pruner.from_config(one_shot, pruning, ratio, cfg, after_step=recalibration(ctx)).step()
        mae_before = train.evaluate(one_shot, loaders["test"], device, cfg.AMP)["mae"]
        del one_shot
    history = fit(ctx, model, name, epochs=cfg.FINE_TUNE_EPOCHS, lr=cfg.FINE_TUNE_LEARNING_RATE,
                  pruner=pruner, distilled=pruning != method)
    if pruned is not None:
        keep_if_better(model, history, *pruned)
    prune_utils.make_permanent(model)
    record = {"name": name, "method": method, "ratio": ratio, "seed": ctx.seed, **test_metrics(ctx, model),
              "val_mae": history["best_val_mae"], "test_mae_before_fine_tune": mae_before,
              "sparsity_before_fine_tune": pruner.sparsity_after_pruning, "pruning_steps": pruner.steps,
              "masks_removed_before_fine_tune": cfg.REMOVE_MASKS_BEFORE_FINE_TUNE,
              "bn_recalibration_batches": cfg.BN_RECALIBRATION_BATCHES, "history": history,
              **prune_utils.achieved(model, baseline_model, pruning, cfg.PRUNING_SCOPE), **pruner.allocation,
              **recovery_fields(ctx, method, ratio)}
    finish(ctx, model, record)
    return compare_to_baseline(record, baseline, cfg, control) if train.is_main() else record


def run_scratch(ctx, baseline_model, baseline, method, ratio, control=None):
    """The small network from scratch (Liu et al. 2019's Scratch-E): structured_physical's architecture at
    `ratio`, a fresh random initialisation (never ImageNet's), trained by the baseline's recipe for the
    baseline's epochs plus the fine-tuning epochs, so it gets the training the pruned model got in all.
    method: scratch, or scratch_kd (trained with distillation from the dense baseline)."""
    cfg = ctx.cfg
    name = f"{method}_{ratio:g}"
    seed_run(ctx)
    model = prune_utils.scratch_model(ratio, float(np.mean(ctx.train_efs)), float(np.std(ctx.train_efs)),
                                      num_frames=cfg.NUM_FRAMES, image_size=cfg.IMAGE_SIZE,
                                      round_to=cfg.PHYSICAL_ROUND_TO)
    history = fit(ctx, model, name, epochs=cfg.NUM_EPOCHS + cfg.FINE_TUNE_EPOCHS, lr=cfg.LEARNING_RATE,
                  distilled=method != prune_utils.SCRATCH)
    record = {"name": name, "method": method, "ratio": ratio, "seed": ctx.seed,
              "pretrained": False, **test_metrics(ctx, model), "val_mae": min(history["val_mae"]),
              "history": history,
              **prune_utils.achieved(model, baseline_model, "structured_physical", cfg.PRUNING_SCOPE),
              **recovery_fields(ctx, method, ratio)}
    finish(ctx, model, record)
    record["sparsity_before_fine_tune"] = record.get("sparsity")
    return compare_to_baseline(record, baseline, cfg, control) if train.is_main() else record


def keep_if_better(model, history, val_mae, state):
    """The model right after pruning against the best fine-tuning epoch, on validation (a tie keeps the
    pruned one, as train.train does): fine-tuning never returns a model worse than pruning left it."""
    history["val_mae_after_pruning"] = val_mae
    if history.get("best_val_mae") is None or val_mae <= history["best_val_mae"]:
        model.load_state_dict(state)
        history["best_val_mae"], history["best_epoch"] = val_mae, 0


def prefixed(prefix, values):
    return {prefix + k: v for k, v in values.items()}


def budget_ratios(cfg):
    """{FLOP speed-up: the structured_physical ratio that reaches it} of TARGET_FLOPS_SPEEDUPS."""
    return {speedup: allocation.ratio_for_speedup(speedup, cfg.IMAGE_SIZE, cfg.PHYSICAL_ROUND_TO)
            for speedup in cfg.TARGET_FLOPS_SPEEDUPS}


def pruning_plan(cfg):
    """(method, ratio) in the order of the methodology: the dense control first (every pruned model is
    compared to it; none when nothing is pruned), then unstructured, structured, and the others; the
    methods that remove channels at the FLOP budgets' ratios too; each distilled method right after
    its model fine-tuned on the labels alone."""
    channels = cfg.STRUCTURED_PRUNING_RATIOS
    removed = channels + [r for r in budget_ratios(cfg).values() if r not in channels]
    methods = [("unstructured", cfg.UNSTRUCTURED_PRUNING_RATIOS), ("structured", channels)]
    if cfg.PHYSICAL_STRUCTURED_PRUNING:
        methods.append(("structured_physical", removed))
        methods += [(f"structured_physical_{allocation}", removed) for allocation in cfg.CHANNEL_ALLOCATIONS]
        if pruning_steps(cfg) == 1:  # the masked twin reads its channels off one Torch-Pruning step
            methods.append(("structured_coupled_masked", channels))
    if cfg.RANDOM_PRUNING_CONTROL:
        methods += [("unstructured_random", cfg.UNSTRUCTURED_PRUNING_RATIOS), ("structured_random", channels)]
    if cfg.PHYSICAL_STRUCTURED_PRUNING and cfg.RANDOM_REMOVAL_CONTROL:
        methods.append(("structured_physical_random", removed))
    if cfg.PHYSICAL_STRUCTURED_PRUNING and cfg.SCRATCH_CONTROL:
        methods.append((prune_utils.SCRATCH, removed))
    pruned = [(method, ratio) for method, ratios in methods for ratio in ratios]
    plan = [(prune_utils.CONTROL, 0.0)] + pruned if pruned else []
    distilled = set(cfg.DISTILLED_METHODS)
    return [(m + suffix, ratio) for m, ratio in plan
            for suffix in ("", prune_utils.DISTILLED)[:1 + (m in distilled)]]


# --- the experiment ------------------------------------------------------------------------------

def main(argv):
    cfg = config.load(argv, config.parser(__doc__))
    train.init_distributed()
    device = train.pick_device(cfg.DEVICE)
    torch.backends.cudnn.benchmark = cfg.CUDNN_BENCHMARK and device.type == "cuda"
    steady_allocator = device.type == "cpu" and latency.steady_cpu_allocator()
    if cfg.LATENCY_COMPILE and (reason := latency.compile_error(device)):
        need = "a C++ compiler (g++ or clang)" if device.type == "cpu" else "Triton (pip install triton)"
        raise config.ConfigError(f"--latency-compile is on but torch.compile does not run on {device} here "
                                 f"({reason}); install {need}, or set --latency-compile false")
    if cfg.ONNX_EXPORT is None:
        cfg.ONNX_EXPORT = onnx_runtime.available()
        if not cfg.ONNX_EXPORT:
            log("onnxruntime is not installed: no ONNX export or ONNX Runtime timing "
                "(pip install onnx onnxruntime)")
    elif cfg.ONNX_EXPORT and not onnx_runtime.available():
        raise config.ConfigError("--onnx-export is on but onnxruntime is not installed: "
                                 "pip install onnx onnxruntime")
    if cfg.INT8 is None:
        cfg.INT8 = cfg.ONNX_EXPORT
    if cfg.PHYSICAL_STRUCTURED_PRUNING and (problems := prune_utils.unreachable(cfg.STRUCTURED_PRUNING_RATIOS,
                                                                                cfg.PHYSICAL_ROUND_TO)):
        raise config.ConfigError("; ".join(problems) + ". Lower the ratio, set --physical-round-to 1, or "
                                 "--physical-structured-pruning false.")
    budget_ratios(cfg)  # a FLOP budget the channel rounding cannot meet stops the run now, before training
    if train.is_main():
        folders.check_writable(cfg)  # now, naming the folder, not after an epoch of training
        locks.lock(cfg.RESULTS_DIR, log)
    try:
        return run(cfg, device, steady_allocator)
    finally:
        locks.unlock_all()  # the results folder's lock, and an outside checkpoint folder's


def run(cfg, device, steady_allocator):
    """The run: set up (the data, checked against an earlier run), every seed's models, then the end
    (every model timed together, the figures and the reports)."""
    experiment = set_up(cfg, device, steady_allocator)
    for seed in cfg.SEEDS:
        run_seed(experiment, seed)
        if train.is_main() and seed != cfg.SEEDS[-1]:  # the last seed's summary.md comes with the figures
            results = ledger.with_earlier(experiment.results, experiment.earlier)
            reports.write_results(results, cfg.RESULTS_DIR)
    return wrap_up(experiment)


def set_up(cfg, device, steady_allocator):
    """The data read and checked, an earlier run of the same inputs continued (or archived with --fresh),
    and the results as far as they are known before the first model. Returns what the run's steps share."""
    previous = ledger.earlier_results(cfg) if train.is_main() else {}  # before the data: nothing moved
    clock = measurement.Clock()
    splits, loaders, skipped = dataset.load_data(cfg, device, log)
    names = [n for split in splits.values() for n in split.names] + [s["video"] for s in skipped]
    identity = run_identity.run_identity(cfg, run_identity.data_fingerprint(cfg.DATA_ROOT, names))
    clock.lap("data_preparation")
    earlier = earlier_run(cfg, previous, identity, skipped)
    mean_ef, mean_mae = metrics.mean_predictor_mae(splits["train"].efs, splits["test"].efs)
    log(f"{len(splits['train'])}/{len(splits['val'])}/{len(splits['test'])} train/val/test videos from "
        f"{cfg.DATA_ROOT}; device {device} x {train.world_size()} process(es), precision "
        f"{str(train.precision(device, cfg.AMP)).replace('torch.', '')}; "
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
    return SimpleNamespace(cfg=cfg, device=device, splits=splits, loaders=loaders, inputs=inputs,
                           results=results, earlier=earlier, done=earlier.get("models", []), clock=clock,
                           mean_mae=mean_mae, start=time.perf_counter())


def earlier_run(cfg, previous, identity, skipped):
    """The earlier run's results to continue ({} when there is none, or with --fresh), on every process."""
    if train.is_main():  # every input checked: only now may --fresh archive
        earlier = ledger.start_or_continue(cfg, previous, identity, skipped, log)
        run_identity.claim_checkpoints(cfg, identity, log)
    train.barrier()
    if not train.is_main():  # after the main process has archived (--fresh) or checked the old run
        unfresh = SimpleNamespace(**{**vars(cfg), "FRESH": False})
        earlier = ledger.start_or_continue(unfresh, ledger.earlier_results(unfresh), identity, skipped, log)
    return earlier


def measuring_inputs(cfg, splits, identity):
    """What measuring needs besides the model: a few real test videos to check each ONNX export against
    PyTorch; for INT8, training videos to calibrate on (never validation or test) and the whole test split."""
    test = splits["test"]
    return SimpleNamespace(
        identity=identity,
        sample_videos=torch.stack([test[i][0] for i in range(min(4, len(test)))]),
        calibration=quantize.calibration_videos(splits["train"], cfg.INT8_CALIBRATION_VIDEOS, cfg.SEED)
        if cfg.INT8 and train.is_main() else None,
        test=batches.Batches(test.clips, test.efs, 4 * cfg.BATCH_SIZE, torch.device("cpu")))


def finished(experiment, record, folder, phase):
    """A model's record into results.json as soon as it is measured."""
    results = experiment.results
    results["models"].append(ledger.relative_paths(record, experiment.cfg.RESULTS_DIR))
    experiment.clock.lap(phase)
    if train.is_main():  # earlier records not reused yet stay in results.json
        reports.write_results(ledger.with_earlier(results, experiment.earlier), experiment.cfg.RESULTS_DIR,
                              summary=False)
        ledger.forget_training_state(folder, record["name"])  # only now: the record is safe
        if "seconds_training" in record:
            log(measurement.time_line(record))


def seed_context(experiment, seed):
    folder = os.path.join(experiment.cfg.CHECKPOINT_DIR, f"seed{seed}")
    os.makedirs(folder, exist_ok=True)
    return SeedContext(seed=seed, folder=folder, cfg=experiment.cfg, loaders=experiment.loaders,
                       device=experiment.device, inputs=experiment.inputs,
                       train_efs=experiment.splits["train"].efs)


def reused(experiment, ctx, name):
    """(record, model) of a model an earlier run finished, or None (ledger.reuse)."""
    return ledger.reuse(experiment.done, name, ctx.seed, ctx.cfg, ctx.folder, identity=ctx.inputs.identity,
                         log=log)


def run_seed(experiment, seed):
    """One seed's models, each recorded as it finishes: the baseline, its layer sensitivity, then every
    pruned model and control of the plan, the dense control first. A model an earlier run finished is
    reused, not trained again."""
    cfg = experiment.cfg
    ctx = seed_context(experiment, seed)
    baseline, baseline_model = seed_baseline(experiment, ctx)
    ctx = seed_sensitivity(experiment, ctx, baseline_model)
    if cfg.DISTILLED_METHODS:
        ctx = with_teacher(ctx, baseline_model)

    control = None  # the dense control of this seed, first in the plan
    for method, ratio in pruning_plan(cfg):
        earlier = reused(experiment, ctx, f"{method}_{ratio:g}")
        if earlier:
            record = earlier[0]
        elif prune_utils.base_method(method) == prune_utils.SCRATCH:
            record = run_scratch(ctx, baseline_model, baseline, method, ratio, control=control)
        else:
            record = run_pruned(ctx, baseline_model, baseline, method, ratio, control=control)
        control = record if method == prune_utils.CONTROL else control
        finished(experiment, record, ctx.folder, "pruned_models")
        if train.is_main():
            log(f"{record['name']} (seed {seed}): sparsity {record['sparsity_before_fine_tune']:.3f} -> "
                f"{record['sparsity']:.3f}, test MAE {record['test_mae']:.2f} "
                f"({record['mae_increase_pct']:+.1f}%), {record['params_effective']:,} effective params")


def seed_baseline(experiment, ctx):
    """The seed's baseline, trained (or an earlier run's, reused) and recorded: (record, model)."""
    baseline, baseline_model = reused(experiment, ctx, "baseline") or run_baseline(ctx)
    experiment.results["pretrained"] = {"used": baseline["pretrained"],
                                        "reason": baseline["pretrained_reason"]}
    finished(experiment, baseline, ctx.folder, "baseline")
    if train.is_main():
        log(f"baseline (seed {ctx.seed}): test MAE {baseline['test_mae']:.2f} (95% interval "
            f"{baseline['test_mae_ci_low']:.2f}–{baseline['test_mae_ci_high']:.2f}; mean predictor "
            f"{experiment.mean_mae:.2f}), R² {baseline['test_r2']:.3f}")
    return baseline, baseline_model


def wrap_up(experiment):
    """The end of the run: every model timed together, once all are trained (latency.py), and again
    whenever a record lacks it; then the figures and the reports."""
    cfg, results, clock = experiment.cfg, experiment.results, experiment.clock
    if train.is_main() and latency.untimed(results["models"]):
        latency.time_models(results["models"], cfg, experiment.device, experiment.inputs.sample_videos[:1],
                            log)
        clock.lap("latency")
        reports.write_results(results, cfg.RESULTS_DIR, summary=False)
    results["seconds"] = time.perf_counter() - experiment.start
    results["finished"] = time.strftime("%Y-%m-%d %H:%M %Z")
    if not train.is_main():
        return results
    figures = []
    if cfg.DRAW_FIGURES:
        reports.write_results(results, cfg.RESULTS_DIR, summary=False)  # the figures read results.json
        physical = [ledger.resolve(cfg.RESULTS_DIR, r["checkpoint"]) for r in results["models"]
                    if r["method"] == "structured_physical" and r["seed"] == cfg.SEEDS[0]]
        figures = visualize_results.draw_all(cfg.RESULTS_DIR, cfg.FIGURES_DIR)
        figures += visualize_model_architecture.draw_checkpoints(physical, cfg.FIGURES_DIR)
        clock.lap("figures")
    log("\n" + reports.write_results(results, cfg.RESULTS_DIR, figures))
    log("phases: " + ", ".join(f"{name.replace('_', ' ')} {seconds:.0f} s"
                               for name, seconds in clock.laps.items()))
    log(f"done in {results['seconds'] / 60:.1f} min; results in {cfg.RESULTS_DIR}/")
    return results


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (config.ConfigError, DataError, quantize.QuantizationError, folders.WriteFailed,
            allocation.AllocationError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except locks.FolderInUse as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(3)
    except OSError as e:  # a folder that became unwritable or a full disk mid-run; the run continues later
        print(f"error: {e.strerror or e}: {e.filename or ''} (free space or fix the folder's permissions, "
              f"then run the same command again to continue)", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted; run the same command again to continue", file=sys.stderr)
        sys.exit(130)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
