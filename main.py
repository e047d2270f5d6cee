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
from types import SimpleNamespace

from bookkeeping import config_types  # first: a syntax error or an unknown name in config.py is one message (exit 2)
config_types.import_config()

import numpy as np
import torch
import torch.distributed as dist

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




def test_metrics(model, cfg, loaders, device):
    """MAE, RMSE, R² on the test split, and each video's error (for the paired bootstrap)."""
    predicted, target = train.predict(model, loaders["test"], device, cfg.AMP)
    return {**prefixed("test_", metrics.regression_metrics(predicted, target)), "test_videos": len(target),
            "test_errors": [round(e, 5) for e in (predicted - target).tolist()]}


def compare_to_baseline(record, baseline, cfg, control=None):
    """Changes against the baseline of the same seed; the MAE's 95% intervals over the same test videos.
    With the dense control of the same seed, the MAE's change against it too (paired likewise). The
    speedups come after the latency phase (latency.speedups)."""
    record.update(metrics.bootstrap_mae(record["test_errors"], baseline["test_errors"], cfg.BOOTSTRAP_SAMPLES))
    if control is not None and record is not control:
        record["mae_diff_vs_control"] = record["test_mae"] - control["test_mae"]
        record["mae_diff_vs_control_ci_low"], record["mae_diff_vs_control_ci_high"] = \
            metrics.paired_difference_interval(record["test_errors"], control["test_errors"], cfg.BOOTSTRAP_SAMPLES)
    record["mae_increase_pct"] = 100 * (record["test_mae"] - baseline["test_mae"]) / baseline["test_mae"]
    record["compression_ratio"] = baseline["params"] / record["params_effective"]
    record["theoretical_speedup"] = baseline["flops"] / record["effective_flops"]
    if "int8_test_mae" in record:  # INT8 against its own FP32 ONNX model on the same videos
        fp32 = "fp32_onnx_test_mae" if "fp32_onnx_test_errors" in record else "test_mae"
        record["int8_mae_change"] = record["int8_test_mae"] - record[fp32]
        record["int8_mae_change_ci_low"], record["int8_mae_change_ci_high"] = metrics.paired_difference_interval(
            record["int8_test_errors"], record[fp32.replace("mae", "errors")], cfg.BOOTSTRAP_SAMPLES)
    return record


def seed_run(seed, loaders):
    """Every model's run starts from its seed alone, so a continued run repeats an uninterrupted one."""
    seed_everything(seed)
    loaders["train"].seed = seed


def fit(model, cfg, loaders, device, epochs, lr, desc, state, identity, pruner=None):
    if train.is_main():
        run_identity.check_training_state(state, identity, log)
    train.barrier()
    return train.train(model, loaders["train"], loaders["val"], epochs, lr, device, desc=desc, log=log,
                       state_path=state, amp=cfg.AMP, schedule=cfg.LR_SCHEDULE, pruner=pruner,
                       channels_last=cfg.CHANNELS_LAST)


def finish(model, record, cfg, checkpoint, inputs):
    """Save and measure on the main process; the others wait, then go on with the same model. The
    training state stays until the record is in results.json (main's `finished`)."""
    if train.is_main():
        save_checkpoint(checkpoint, model, method=record["method"], ratio=record["ratio"], seed=record["seed"],
                        num_frames=cfg.NUM_FRAMES, image_size=cfg.IMAGE_SIZE, config_hash=run_identity.config_hash(cfg),
                        identity=inputs.identity["id"])
        record.update(measurement.measure(model, cfg, checkpoint, inputs))
        record.update(seconds_training=record["history"]["seconds"], **measurement.speed(record["history"]))
    train.barrier()
    return record


def run_baseline(seed, cfg, loaders, device, train_efs, inputs, folder):
    seed_run(seed, loaders)
    model = EFRegressionModel(float(np.mean(train_efs)), float(np.std(train_efs)))
    pretrained, reason = load_pretrained(model, cfg.PRETRAINED, cfg.PRETRAINED_PATH)
    log(f"baseline (seed {seed}): ResNet-18 {'with ImageNet weights' if pretrained else 'from random init'} ({reason})")
    state = ledger.training_state_path(folder, "baseline")
    history = fit(model, cfg, loaders, device, cfg.NUM_EPOCHS, cfg.LEARNING_RATE, "baseline", state,
                  inputs.identity)
    record = {"name": "baseline", "method": "baseline", "ratio": 0.0, "seed": seed,
              "pretrained": pretrained, "pretrained_reason": reason,
              **test_metrics(model, cfg, loaders, device), "val_mae": min(history["val_mae"]), "history": history}
    finish(model, record, cfg, os.path.join(folder, "baseline.pt"), inputs)
    record["achieved_ratio"] = 0.0
    if train.is_main():
        record["sparsity_before_fine_tune"] = record["sparsity"]
        compare_to_baseline(record, record, cfg)
    return record, model


def run_sensitivity(model, seed, cfg, loaders, device):
    """Each prunable layer pruned alone, BatchNorm recalibrated on training batches, no fine-tuning, on
    the validation split (never test)."""
    start = time.perf_counter()
    dense_mae, rows = sensitivity.layer_sensitivity(model, loaders["val"], device, cfg.SENSITIVITY_RATIOS,
                                                    cfg.PRUNING_SCOPE, cfg.AMP, recalibration_batches(loaders, seed),
                                                    cfg.BN_RECALIBRATION_BATCHES)
    seconds = time.perf_counter() - start
    worst = max(rows, key=lambda r: r["val_mae_increase"])
    log(f"layer sensitivity (seed {seed}): {len(rows)} single-layer prunings evaluated on validation in "
        f"{seconds:.0f} s; largest loss: {worst['layer']} by {worst['criterion']} at {worst['ratio']:g}, val MAE "
        f"{dense_mae:.2f} -> {worst['val_mae']:.2f}")
    return [{"seed": seed, "dense_val_mae": dense_mae, "seconds": seconds, **r} for r in rows]


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


def recalibration(cfg, loaders, seed):
    """The pruner's after_step: BatchNorm's running statistics re-estimated on training batches."""
    return lambda model: batchnorm.recalibrate(model, recalibration_batches(loaders, seed),
                                               cfg.BN_RECALIBRATION_BATCHES, cfg.AMP)


def run_pruned(baseline_model, baseline, method, ratio, seed, cfg, loaders, device, inputs, folder, control=None):
    """Prune a copy of the trained baseline on the schedule's steps inside fine-tuning (masks in place
    unless the reference's flaw is switched on), make the pruning permanent, measure. Every step is
    followed by BatchNorm recalibration. One-shot: the step is taken here, so the model measured right
    after pruning is the one fine-tuned (a random control's mask included), and it competes with the
    fine-tuning epochs on validation, as train.train does for a step it takes itself."""
    name = f"{method}_{ratio:g}"
    seed_run(seed, loaders)
    model = copy.deepcopy(baseline_model)
    pruner = prune_utils.Pruner(model, method, ratio, cfg.NUM_FRAMES, cfg.IMAGE_SIZE, cfg.PHYSICAL_ROUND_TO,
                                cfg.PRUNING_SCOPE, pruning_steps(cfg), cfg.REMOVE_MASKS_BEFORE_FINE_TUNE,
                                after_step=recalibration(cfg, loaders, seed), ramp_end=cfg.PRUNING_RAMP_END)
    pruned = None
    if pruner.steps == 1:
        pruner.step()
        pruned = (train.evaluate(model, loaders["val"], device, cfg.AMP)["mae"], copy.deepcopy(model.state_dict()))
        mae_before = train.evaluate(model, loaders["test"], device, cfg.AMP)["mae"]
    else:  # gradual: what pruning at once to the ratio costs, on a copy, recalibrated likewise
        one_shot = copy.deepcopy(baseline_model)
        prune_utils.Pruner(one_shot, method, ratio, cfg.NUM_FRAMES, cfg.IMAGE_SIZE, cfg.PHYSICAL_ROUND_TO,
                           cfg.PRUNING_SCOPE, after_step=recalibration(cfg, loaders, seed)).step()
        mae_before = train.evaluate(one_shot, loaders["test"], device, cfg.AMP)["mae"]
        del one_shot
    state = ledger.training_state_path(folder, name)
    history = fit(model, cfg, loaders, device, cfg.FINE_TUNE_EPOCHS, cfg.FINE_TUNE_LEARNING_RATE, name, state,
                  inputs.identity, pruner)
    if pruned is not None:
        keep_if_better(model, history, *pruned)
    prune_utils.make_permanent(model)
    record = {"name": name, "method": method, "ratio": ratio, "seed": seed, **test_metrics(model, cfg, loaders, device),
              "val_mae": history["best_val_mae"], "test_mae_before_fine_tune": mae_before,
              "sparsity_before_fine_tune": pruner.sparsity_after_pruning, "pruning_steps": pruner.steps,
              "masks_removed_before_fine_tune": cfg.REMOVE_MASKS_BEFORE_FINE_TUNE,
              "bn_recalibration_batches": cfg.BN_RECALIBRATION_BATCHES, "history": history,
              **prune_utils.achieved(model, baseline_model, method, cfg.PRUNING_SCOPE)}
    finish(model, record, cfg, os.path.join(folder, f"{name}.pt"), inputs)
    return compare_to_baseline(record, baseline, cfg, control) if train.is_main() else record


def run_scratch(baseline_model, baseline, ratio, seed, cfg, loaders, device, *, train_efs, inputs, folder,
                control):
    """The small network from scratch (Liu et al. 2019's Scratch-E): structured_physical's architecture at
    `ratio`, a fresh random initialisation (never ImageNet's), trained by the baseline's recipe for the
    baseline's epochs plus the fine-tuning epochs, so it gets the training the pruned model got in all."""
    name = f"{prune_utils.SCRATCH}_{ratio:g}"
    seed_run(seed, loaders)
    model = prune_utils.scratch_model(ratio, float(np.mean(train_efs)), float(np.std(train_efs)), cfg.NUM_FRAMES,
                                      cfg.IMAGE_SIZE, cfg.PHYSICAL_ROUND_TO)
    state = ledger.training_state_path(folder, name)
    history = fit(model, cfg, loaders, device, cfg.NUM_EPOCHS + cfg.FINE_TUNE_EPOCHS, cfg.LEARNING_RATE, name,
                  state, inputs.identity)
    record = {"name": name, "method": prune_utils.SCRATCH, "ratio": ratio, "seed": seed, "pretrained": False,
              **test_metrics(model, cfg, loaders, device), "val_mae": min(history["val_mae"]), "history": history,
              **prune_utils.achieved(model, baseline_model, "structured_physical", cfg.PRUNING_SCOPE)}
    finish(model, record, cfg, os.path.join(folder, f"{name}.pt"), inputs)
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


def pruning_plan(cfg):
    """(method, ratio) in the order of the methodology: the dense control first (every pruned model is
    compared to it; none when nothing is pruned), then unstructured, structured, and the others."""
    channels = cfg.STRUCTURED_PRUNING_RATIOS
    methods = [("unstructured", cfg.UNSTRUCTURED_PRUNING_RATIOS), ("structured", channels)]
    if cfg.PHYSICAL_STRUCTURED_PRUNING:
        methods.append(("structured_physical", channels))
        if pruning_steps(cfg) == 1:  # the masked twin reads its channels off one Torch-Pruning step
            methods.append(("structured_coupled_masked", channels))
    if cfg.RANDOM_PRUNING_CONTROL:
        methods += [("unstructured_random", cfg.UNSTRUCTURED_PRUNING_RATIOS), ("structured_random", channels)]
    if cfg.PHYSICAL_STRUCTURED_PRUNING and cfg.RANDOM_REMOVAL_CONTROL:
        methods.append(("structured_physical_random", channels))
    if cfg.PHYSICAL_STRUCTURED_PRUNING and cfg.SCRATCH_CONTROL:
        methods.append((prune_utils.SCRATCH, channels))
    pruned = [(method, ratio) for method, ratios in methods for ratio in ratios]
    return [(prune_utils.CONTROL, 0.0)] + pruned if pruned else []


# --- the experiment ------------------------------------------------------------------------------

def main(argv):
    cfg = config.load(argv, config.parser(__doc__))
    train.init_distributed()
    device = train.pick_device(cfg.DEVICE)
    torch.backends.cudnn.benchmark = cfg.CUDNN_BENCHMARK and device.type == "cuda"
    steady_allocator = device.type == "cpu" and latency.steady_cpu_allocator()
    if cfg.LATENCY_COMPILE and (reason := latency.compile_error(device)):
        need = "a C++ compiler (g++ or clang)" if device.type == "cpu" else "Triton (pip install triton)"
        raise config.ConfigError(f"--latency-compile is on but torch.compile does not run on {device} here ({reason}); "
                                 f"install {need}, or set --latency-compile false")
    if cfg.ONNX_EXPORT is None:
        cfg.ONNX_EXPORT = onnx_runtime.available()
        if not cfg.ONNX_EXPORT:
            log("onnxruntime is not installed: no ONNX export or ONNX Runtime timing (pip install onnx onnxruntime)")
    elif cfg.ONNX_EXPORT and not onnx_runtime.available():
        raise config.ConfigError("--onnx-export is on but onnxruntime is not installed: pip install onnx onnxruntime")
    if cfg.INT8 is None:
        cfg.INT8 = cfg.ONNX_EXPORT
    if cfg.PHYSICAL_STRUCTURED_PRUNING and (problems := prune_utils.unreachable(cfg.STRUCTURED_PRUNING_RATIOS,
                                                                                cfg.PHYSICAL_ROUND_TO)):
        raise config.ConfigError("; ".join(problems) + ". Lower the ratio, set --physical-round-to 1, or "
                                 "--physical-structured-pruning false.")
    if train.is_main():
        folders.check_writable(cfg)  # now, naming the folder, not after an epoch of training
        locks.lock(cfg.RESULTS_DIR, log)
    try:
        return run(cfg, device, steady_allocator)
    finally:
        locks.unlock_all()  # the results folder's lock, and an outside checkpoint folder's


def run(cfg, device, steady_allocator):
    previous = ledger.earlier_results(cfg) if train.is_main() else {}  # before the data: nothing moved
    clock = measurement.Clock()
    splits, loaders, skipped = dataset.load_data(cfg, device, log)
    names = [n for split in splits.values() for n in split.names] + [s["video"] for s in skipped]
    identity = run_identity.run_identity(cfg, run_identity.data_fingerprint(cfg.DATA_ROOT, names))
    clock.lap("data_preparation")
    if train.is_main():  # every input checked: only now may --fresh archive
        earlier = ledger.start_or_continue(cfg, previous, identity, skipped, log)
        run_identity.claim_checkpoints(cfg, identity, log)
    train.barrier()
    if not train.is_main():  # after the main process has archived (--fresh) or checked the old run
        unfresh = SimpleNamespace(**{**vars(cfg), "FRESH": False})
        earlier = ledger.start_or_continue(unfresh, ledger.earlier_results(unfresh), identity, skipped, log)
    done = earlier.get("models", [])
    mean_ef, mean_mae = metrics.mean_predictor_mae(splits["train"].efs, splits["test"].efs)
    log(f"{len(splits['train'])}/{len(splits['val'])}/{len(splits['test'])} train/val/test videos from "
        f"{cfg.DATA_ROOT}; device {device} x {train.world_size()} process(es), precision "
        f"{str(train.precision(device, cfg.AMP)).replace('torch.', '')}; mean predictor test MAE {mean_mae:.2f}")
    results = {"config": {k: v for k, v in vars(cfg).items() if k != "FRESH"}, "identity": identity,
               "environment": provenance.environment(device, steady_allocator),
               "splits": {name: len(split) for name, split in splits.items()}, "skipped_videos": skipped,
               "mean_predictor": {"ef": mean_ef, "test_mae": mean_mae}, "sensitivity": [], "models": [],
               "phases": clock.laps, "clips_on_device": loaders["train"].resident,
               "started": time.strftime("%Y-%m-%d %H:%M %Z")}
    # what measuring needs besides the model: a few real test videos to check each ONNX export against
    # PyTorch; for INT8, training videos to calibrate on (never validation or test) and the whole test split
    inputs = SimpleNamespace(
        identity=identity,
        sample_videos=torch.stack([splits["test"][i][0] for i in range(min(4, len(splits["test"])))]),
        calibration=quantize.calibration_videos(splits["train"], cfg.INT8_CALIBRATION_VIDEOS, cfg.SEED)
        if cfg.INT8 and train.is_main() else None,
        test=batches.Batches(splits["test"].clips, splits["test"].efs, 4 * cfg.BATCH_SIZE, torch.device("cpu")))
    if cfg.INT8:
        results["environment"]["cpu_int8"] = quantize.cpu_int8_features()
    start = time.perf_counter()

    def finished(record, folder, phase):
        results["models"].append(ledger.relative_paths(record, cfg.RESULTS_DIR))
        clock.lap(phase)
        if train.is_main():  # earlier records not reused yet stay in results.json
            reports.write_results(ledger.with_earlier(results, earlier), cfg.RESULTS_DIR)
            ledger.forget_training_state(folder, record["name"])  # only now: the record is safe
            if "seconds_training" in record:
                log(measurement.time_line(record))

    for seed in cfg.SEEDS:
        folder = os.path.join(cfg.CHECKPOINT_DIR, f"seed{seed}")
        os.makedirs(folder, exist_ok=True)
        reused = ledger.reuse(done, "baseline", seed, cfg, folder, identity, log)
        if reused:
            baseline, baseline_model = reused
        else:
            baseline, baseline_model = run_baseline(seed, cfg, loaders, device, splits["train"].efs, inputs,
                                                       folder)
        results["pretrained"] = {"used": baseline["pretrained"], "reason": baseline["pretrained_reason"]}
        finished(baseline, folder, "baseline")
        if train.is_main():
            log(f"baseline (seed {seed}): test MAE {baseline['test_mae']:.2f} (95% interval "
                f"{baseline['test_mae_ci_low']:.2f}–{baseline['test_mae_ci_high']:.2f}; mean predictor {mean_mae:.2f}), "
                f"R² {baseline['test_r2']:.3f}")
        if cfg.SENSITIVITY:
            rows = [r for r in earlier.get("sensitivity", []) if r["seed"] == seed]
            results["sensitivity"] += rows or run_sensitivity(baseline_model, seed, cfg, loaders, device)
            clock.lap("sensitivity")
            if train.is_main():
                reports.write_results(ledger.with_earlier(results, earlier), cfg.RESULTS_DIR)

        control = None  # the dense control of this seed, first in the plan
        for method, ratio in pruning_plan(cfg):
            reused = ledger.reuse(done, f"{method}_{ratio:g}", seed, cfg, folder, identity, log)
            if reused:
                record = reused[0]
            elif method == prune_utils.SCRATCH:
                record = run_scratch(baseline_model, baseline, ratio, seed, cfg, loaders, device,
                                     train_efs=splits["train"].efs, inputs=inputs, folder=folder, control=control)
            else:
                record = run_pruned(baseline_model, baseline, method, ratio, seed, cfg, loaders, device, inputs,
                                    folder, control)
            control = record if method == prune_utils.CONTROL else control
            finished(record, folder, "pruned_models")
            if train.is_main():
                log(f"{record['name']} (seed {seed}): sparsity {record['sparsity_before_fine_tune']:.3f} -> "
                    f"{record['sparsity']:.3f}, test MAE {record['test_mae']:.2f} ({record['mae_increase_pct']:+.1f}%), "
                    f"{record['params_effective']:,} effective params")

    # Every model timed together, once all are trained (latency.py); again whenever a record lacks it.
    if train.is_main() and latency.untimed(results["models"]):
        latency.time_models(results["models"], cfg, device, inputs.sample_videos[:1], log)
        clock.lap("latency")
        reports.write_results(results, cfg.RESULTS_DIR)
    results["seconds"], results["finished"] = time.perf_counter() - start, time.strftime("%Y-%m-%d %H:%M %Z")
    if not train.is_main():
        return results
    figures = []
    if cfg.DRAW_FIGURES:
        reports.write_results(results, cfg.RESULTS_DIR)
        physical = [ledger.resolve(cfg.RESULTS_DIR, r["checkpoint"]) for r in results["models"]
                    if r["method"] == "structured_physical" and r["seed"] == cfg.SEEDS[0]]
        figures = visualize_results.draw_all(cfg.RESULTS_DIR, cfg.FIGURES_DIR)
        figures += visualize_model_architecture.draw_checkpoints(physical, cfg.FIGURES_DIR)
        clock.lap("figures")
    log("\n" + reports.write_results(results, cfg.RESULTS_DIR, figures))
    log("phases: " + ", ".join(f"{name.replace('_', ' ')} {seconds:.0f} s" for name, seconds in clock.laps.items()))
    log(f"done in {results['seconds'] / 60:.1f} min; results in {cfg.RESULTS_DIR}/")
    return results


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (config.ConfigError, DataError, quantize.QuantizationError, folders.WriteFailed) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except locks.FolderInUse as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(3)
    except OSError as e:  # a folder that became unwritable or a full disk mid-run; the run continues later
        print(f"error: {e.strerror or e}: {e.filename or ''} (free space or fix the folder's permissions, then run "
              f"the same command again to continue)", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted; run the same command again to continue", file=sys.stderr)
        sys.exit(130)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
