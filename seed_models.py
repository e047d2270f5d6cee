"""One seed's models, a function each: the baseline trained, its layer sensitivity, a pruned model
(pruned, BatchNorm recalibrated, fine-tuned with the masks in place, made permanent) and the small network
trained from scratch; each saved, measured and compared with the seed's baseline. Which models, in which
order, is main.py's plan; every model's run starts from its seed alone (seed_run)."""
import copy
import os
import random
import time
from dataclasses import dataclass, replace
from types import SimpleNamespace

import numpy as np
import torch

import batchnorm
import flop_budgets
import measurement
import metrics
import processes
import pruners
import methods
import prune_utils
import sensitivity
import train
from model import WEIGHTS, EFRegressionModel, load_pretrained, save_checkpoint
from processes import log


@dataclass(frozen=True)
class SeedContext:
    """What every model of one seed shares: the seed, the folder of its checkpoints, training states and
    epoch logs, and the run's configuration, data loaders, device, measuring inputs (main.measuring_inputs)
    and training EFs (the head's initialisation); for distillation, once the baseline is trained, the
    loader "distill" (seed_models.with_teacher) and how far the baseline's predictions for the training
    videos are from their labels (teacher_train_mae: what a distillation target can add); once measured,
    the seed's coupled-group sensitivity (the sensitivity allocation's, sensitivity.group_sensitivity)."""
    seed: int
    folder: str
    cfg: SimpleNamespace
    loaders: dict
    device: torch.device
    inputs: SimpleNamespace
    train_efs: np.ndarray
    records: object = None  # bookkeeping/run_state.SeedRecords: training states, epoch logs, stamps
    sensitivity: tuple = ()
    teacher_train_mae: float = None


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def seed_run(ctx):
    """Every model's run starts from its seed alone, so a continued run repeats an uninterrupted one."""
    seed_everything(ctx.seed)
    for loader in ("train", "distill"):
        if loader in ctx.loaders:
            ctx.loaders[loader].seed = ctx.seed


def test_metrics(ctx, model):
    """MAE, RMSE, R² on the test split, and each video's error (for the paired bootstrap)."""
    predicted, target = train.predict(model, ctx.loaders["test"], ctx.device, ctx.cfg.AMP)
    scores = metrics.regression_metrics(predicted, target)
    return {**{f"test_{k}": v for k, v in scores.items()}, "test_videos": len(target),
            "test_errors": [round(e, 5) for e in (predicted - target).tolist()]}


def run_baseline(ctx):
    cfg = ctx.cfg
    seed_run(ctx)
    model = EFRegressionModel(float(np.mean(ctx.train_efs)), float(np.std(ctx.train_efs)), arch=cfg.MODEL)
    pretrained, reason = load_pretrained(model, cfg.PRETRAINED, cfg.PRETRAINED_PATH)
    name, data = WEIGHTS[cfg.MODEL][:2]
    log(f"baseline (seed {ctx.seed}): {name} "
        f"{f'with {data} weights' if pretrained else 'from random init'} ({reason})")
    history = fit(ctx, model, "baseline", epochs=cfg.NUM_EPOCHS, lr=cfg.LEARNING_RATE)
    record = {"name": "baseline", "method": "baseline", "ratio": 0.0, "seed": ctx.seed,
              "pretrained": pretrained, "pretrained_reason": reason,
              **test_metrics(ctx, model), "val_mae": min(history["val_mae"]), "history": history}
    finish(ctx, model, record)
    record["achieved_ratio"] = 0.0
    if processes.is_main():
        record["sparsity_before_fine_tune"] = record["sparsity"]
        measurement.compare_to_baseline(record, record, cfg)
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


def criterion_batches(ctx):
    """The training batches a gradient criterion reads (criteria.py): BatchNorm's, in a fixed order; never
    validation or test batches, whose videos the model is judged on."""
    return recalibration_batches(ctx.loaders, ctx.seed)


def recalibration(ctx):
    """The pruner's after_step: BatchNorm's running statistics re-estimated on training batches."""
    return lambda model: batchnorm.recalibrate(model, recalibration_batches(ctx.loaders, ctx.seed),
                                               ctx.cfg.BN_RECALIBRATION_BATCHES, ctx.cfg.AMP)


def run_pruned(ctx, baseline_model, baseline, step, control=None):
    """Prune a copy of the trained baseline on the schedule's steps inside fine-tuning (masks in place
    unless the reference's flaw is switched on), make the pruning permanent, measure. Every step is
    followed by BatchNorm recalibration. One-shot: the step is taken here, so the model measured right
    after pruning is the one fine-tuned (a random control's mask included), and it competes with the
    fine-tuning epochs on validation, as train.train does for a step it takes itself. step: the plan's
    (method, ratio, budget), main.pruning_plan."""
    cfg, loaders, device = ctx.cfg, ctx.loaders, ctx.device
    method, ratio = step.method, step.ratio
    name, pruning = f"{method}_{ratio:g}", methods.base_method(method)
    seed_run(ctx)
    model = copy.deepcopy(baseline_model)
    pruner = pruners.Pruner.from_config(model, pruning, ratio, cfg, steps=pruning_steps(cfg),
                                        remove_masks=cfg.REMOVE_MASKS_BEFORE_FINE_TUNE,
                                        after_step=recalibration(ctx), ramp_end=cfg.PRUNING_RAMP_END,
                                        sensitivity=ctx.sensitivity, batches=criterion_batches(ctx))
    pruned = None
    if pruner.steps == 1:
        pruner.step()
        pruned = (train.evaluate(model, loaders["val"], device, cfg.AMP)["mae"],
                  copy.deepcopy(model.state_dict()))
        mae_before = train.evaluate(model, loaders["test"], device, cfg.AMP)["mae"]
    else:  # gradual: what pruning at once to the ratio costs, on a copy, recalibrated likewise
        one_shot = copy.deepcopy(baseline_model)
        pruners.Pruner.from_config(one_shot, pruning, ratio, cfg, after_step=recalibration(ctx),
                                   sensitivity=ctx.sensitivity, batches=criterion_batches(ctx)).step()
        mae_before = train.evaluate(one_shot, loaders["test"], device, cfg.AMP)["mae"]
        del one_shot
    history = fit(ctx, model, name, **fine_tuning(cfg, method), pruner=pruner,
                  distilled=methods.variant(method) == methods.DISTILLED)
    if pruned is not None:
        keep_if_better(model, history, *pruned)
    prune_utils.make_permanent(model)
    record = {"name": name, "method": method, "ratio": ratio, "seed": ctx.seed, **test_metrics(ctx, model),
              "val_mae": history["best_val_mae"], "test_mae_before_fine_tune": mae_before,
              "sparsity_before_fine_tune": pruner.sparsity_after_pruning, "pruning_steps": pruner.steps,
              "masks_removed_before_fine_tune": cfg.REMOVE_MASKS_BEFORE_FINE_TUNE,
              "bn_recalibration_batches": cfg.BN_RECALIBRATION_BATCHES, "history": history,
              **prune_utils.achieved(model, baseline_model, pruning, cfg.PRUNING_SCOPE), **pruner.allocation,
              **recovery_fields(ctx, step)}
    finish(ctx, model, record)
    return measurement.compare_to_baseline(record, baseline, cfg, control) if processes.is_main() else record


def fine_tuning(cfg, method=None):
    """The fine-tuning's epochs and rate, every method alike: plain (FINE_TUNE_LEARNING_RATE on LR_SCHEDULE
    over the fine-tuning epochs), or learning-rate rewinding (Renda et al. 2020): the baseline's own rates
    of its last FINE_TUNE_EPOCHS epochs, replayed; rewinding for a method named in REWOUND_METHODS too."""
    if cfg.FINE_TUNE_SCHEDULE == "rewind" or methods.variant(method or "") == methods.REWOUND:
        return {"epochs": cfg.FINE_TUNE_EPOCHS, "lr": cfg.LEARNING_RATE,
                "rewind": (cfg.NUM_EPOCHS - cfg.FINE_TUNE_EPOCHS, cfg.NUM_EPOCHS)}
    return {"epochs": cfg.FINE_TUNE_EPOCHS, "lr": cfg.FINE_TUNE_LEARNING_RATE}


def scratch_epochs(cfg, method, ratio):
    """Scratch-E (Liu et al. 2019): the baseline's epochs plus the fine-tuning epochs, the training the
    pruned model got in all. Scratch-B: the dense baseline's training compute (NUM_EPOCHS epochs at its
    FLOPs) in epochs of the small net, never fewer than Scratch-E's and at most SCRATCH_B_MAX_FACTOR times
    them (Liu et al. doubled the epochs wherever the FLOPs fell more than twofold)."""
    scratch_e = cfg.NUM_EPOCHS + cfg.FINE_TUNE_EPOCHS
    if methods.base_method(method) != methods.SCRATCH_B:
        return scratch_e
    dense, small = (flop_budgets.uniform_flops(r, cfg.IMAGE_SIZE, cfg.PHYSICAL_ROUND_TO, cfg.MODEL,
                                             cfg.NUM_FRAMES) for r in (0.0, ratio))
    most = round(cfg.SCRATCH_B_MAX_FACTOR * scratch_e)
    return max(scratch_e, min(round(cfg.NUM_EPOCHS * dense / small), most))


def keep_if_better(model, history, val_mae, state):
    """The model right after pruning against the best fine-tuning epoch, on validation (a tie keeps the
    pruned one, as train.train does): fine-tuning never returns a model worse than pruning left it."""
    history["val_mae_after_pruning"] = val_mae
    if history.get("best_val_mae") is None or val_mae <= history["best_val_mae"]:
        model.load_state_dict(state)
        history["best_val_mae"], history["best_epoch"] = val_mae, 0


def run_scratch(ctx, baseline_model, baseline, step, control=None):
    """The small network from scratch (Liu et al. 2019): structured_physical's architecture at `ratio`, a
    fresh random initialisation (never ImageNet's), trained by the baseline's recipe for scratch_epochs
    (Scratch-E: the training the pruned model got in all; Scratch-B: the dense baseline's compute).
    step.method: scratch or scratch_b, or with _kd (trained with distillation from the dense baseline)."""
    cfg, method, ratio = ctx.cfg, step.method, step.ratio
    name = f"{method}_{ratio:g}"
    seed_run(ctx)
    model = prune_utils.scratch_model(ratio, float(np.mean(ctx.train_efs)), float(np.std(ctx.train_efs)),
                                      num_frames=cfg.NUM_FRAMES, image_size=cfg.IMAGE_SIZE,
                                      round_to=cfg.PHYSICAL_ROUND_TO, arch=cfg.MODEL)
    history = fit(ctx, model, name, epochs=scratch_epochs(cfg, method, ratio), lr=cfg.LEARNING_RATE,
                  distilled=method.endswith(methods.DISTILLED))
    record = {"name": name, "method": method, "ratio": ratio, "seed": ctx.seed,
              "pretrained": False, **test_metrics(ctx, model), "val_mae": min(history["val_mae"]),
              "history": history,
              **prune_utils.achieved(model, baseline_model, "structured_physical", cfg.PRUNING_SCOPE),
              **recovery_fields(ctx, step)}
    finish(ctx, model, record)
    record["sparsity_before_fine_tune"] = record.get("sparsity")
    return measurement.compare_to_baseline(record, baseline, cfg, control) if processes.is_main() else record


def fit(ctx, model, name, *, epochs, lr, pruner=None, distilled=False, rewind=None):
    """Train `model` (train.train), continuing from its training state when an earlier run of the same
    inputs left one, and logging each epoch to its CSV beside the checkpoint. distilled: on the labels
    and the dense baseline's predictions (with_teacher), DISTILLATION_WEIGHT the latter's share."""
    state = ctx.records.training_state(name)
    return train.train(model, ctx.loaders["distill" if distilled else "train"], ctx.loaders["val"],
                       epochs=epochs, lr=lr, device=ctx.device, desc=name, log=log, state_path=state,
                       amp=ctx.cfg.AMP, schedule=ctx.cfg.LR_SCHEDULE,
                       pruner=pruner, channels_last=ctx.cfg.CHANNELS_LAST,
                       epoch_log=ctx.records.epoch_log(name),
                       distillation_weight=ctx.cfg.DISTILLATION_WEIGHT if distilled else None,
                       rewind=rewind)


def finish(ctx, model, record):
    """Save and measure on the main process; the others wait, then go on with the same model. The
    training state stays until the record is in results.json (run_state.finished)."""
    cfg, checkpoint = ctx.cfg, os.path.join(ctx.folder, f"{record['name']}.pt")
    if processes.is_main():
        save_checkpoint(checkpoint, model, method=record["method"], ratio=record["ratio"],
                        seed=record["seed"], num_frames=cfg.NUM_FRAMES, image_size=cfg.IMAGE_SIZE,
                        **ctx.records.stamp)
        record.update(measurement.measure(model, cfg, checkpoint, ctx.inputs, method=record["method"]))
        record.update(seconds_training=record["history"]["seconds"], **measurement.speed(record["history"]))
    processes.barrier()
    return record


def recovery_fields(ctx, step):
    """What a record says of distillation, of its fine-tuning's schedule and of the FLOP budget its ratio
    was solved for (the plan's)."""
    fields = {}
    if not methods.from_scratch(step.method):
        fields["fine_tune_schedule"] = "rewind" if "rewind" in fine_tuning(ctx.cfg, step.method) else "plain"
    if step.method.endswith(methods.DISTILLED):
        fields.update(distillation_weight=ctx.cfg.DISTILLATION_WEIGHT,
                      teacher_train_mae=ctx.teacher_train_mae)
    if step.budget is not None:
        fields["target_flops_speedup"] = step.budget
    return fields
