"""check_gpu.py --project: the work main.py does, counted from the configuration, times measured rates.

The arithmetic is checked exactly on made-up rates, and against a finished tiny run (tiny_run): its
per-model histories and phase times, fed into the projection for the same configuration, give back
its training and validation videos exactly and its phase times within the tolerances below."""
import json
import statistics
from types import SimpleNamespace

import pytest

import cli
import methods
import run_work
from conftest import options

# Training and validation, projected at the run's own rates (one rate for every model, as check_gpu
# measures one), against the pruned models' measured seconds: the arithmetic is exact, so what is left
# is how one model's speed differs from the run's mean (the physically pruned and scratch networks are
# smaller; a shared 2-core machine made identical tiny fine-tunings differ by 20x): 50%.
TRAINING_TOLERANCE = 0.5
# The baseline and pruned-model phases as a whole: the projection counts training, evaluation,
# recalibration and each model's measuring, and leaves out pruning itself, checkpoint and results
# writes and bootstrap intervals (a fifth of these phases in a tiny run, far less at full size): it
# must account for at least half of the measured time and never exceed it by more than 10%.
PHASE_SHARE = (0.5, 1.1)


def made_up_config(**changes):
    cfg = SimpleNamespace(NUM_EPOCHS=5, FINE_TUNE_EPOCHS=2, BATCH_SIZE=4, BN_RECALIBRATION_BATCHES=2,
                          SEEDS=[1, 2], SENSITIVITY=True, SENSITIVITY_RATIOS=[0.5, 0.9], ONNX_EXPORT=True,
                          INT8=True, LATENCY_ROUNDS=3, LATENCY_WARMUP_RUNS=1, LATENCY_TIMED_RUNS=4,
                          CHANNEL_ALLOCATIONS=[])
    vars(cfg).update(changes)
    return cfg


def test_work_times_rates_exactly_on_made_up_numbers():
    plan = [("dense_control", 0.0), ("unstructured", 0.5), ("scratch", 0.5)]
    counts = run_work.work_counts(made_up_config(), (10, 6, 7), (3, 2, 4), plan)
    per_seed_model = {"models": 1, "onnx_exports": 1, "int8_exports": 1}  # each model, each seed
    assert counts["data_preparation"] == {"decoded_videos": 23}
    assert counts["baseline"] == {"train_videos": 2 * 5 * 10, "val_videos": 2 * 5 * 6, "eval_videos": 2 * 7,
                                  "recalibration_videos": 0, "onnx_videos": 2 * 7, "int8_videos": 2 * 7,
                                  **{k: 2 for k in per_seed_model}}
    # (3 layers by L1 + 2 convolutions by L2) x 2 ratios = 10 prunings, each recalibrated on 2 batches of 4,
    # and the dense model evaluated as trained and recalibrated (the reference)
    assert counts["sensitivity"] == {"eval_videos": 2 * 12 * 6, "recalibration_videos": 2 * 11 * 8}
    # two one-shot models (fine-tuned 2 epochs; validation and test after pruning; test), scratch (7 epochs)
    assert counts["pruned_models"] == {"train_videos": 2 * (2 * 2 + 7) * 10,
                                       "val_videos": 2 * (2 * 2 + 7) * 6,
                                       "eval_videos": 2 * (2 * (6 + 2 * 7) + 7),
                                       "recalibration_videos": 2 * 2 * 8,
                                       "onnx_videos": 2 * 3 * 7, "int8_videos": 2 * 3 * 7,
                                       **{k: 2 * 3 for k in per_seed_model}}
    assert counts["latency"] == {"pytorch_runs": 8 * 3 * 5, "onnx_runs": 8 * 3 * 5, "int8_runs": 8 * 3 * 5}
    seconds_per = {unit: 0.5 * (i + 1) for i, unit in enumerate(run_work.UNITS)}
    projected = run_work.project(counts, seconds_per)
    assert projected["baseline"]["train_videos"] == 100 * 0.5
    assert projected["latency"]["int8_runs"] == 120 * 6.0
    assert run_work.phase_totals(projected)["sensitivity"] == 144 * 1.5 + 176 * 2.0
    assert run_work.project(counts, {"train_videos": 2.0})["pruned_models"] == {"train_videos": 440.0}
    # gradual pruning: each of 3 steps recalibrated besides the one-shot copy, validation after the last;
    # no ONNX: no export, no INT8, one runtime timed; no sensitivity
    cfg = made_up_config(SEEDS=[1], ONNX_EXPORT=False, INT8=False, SENSITIVITY=False)
    counts = run_work.work_counts(cfg, (10, 6, 7), (3, 2, 4), [("unstructured", 0.5)], pruning_steps=3)
    assert counts["pruned_models"]["recalibration_videos"] == 4 * 8
    assert counts["pruned_models"]["eval_videos"] == 6 + 2 * 7
    assert counts["pruned_models"]["onnx_exports"] == 0 == counts["latency"]["onnx_runs"]
    assert counts["sensitivity"] == {} and counts["latency"]["pytorch_runs"] == 2 * 3 * 5
    # the sensitivity allocation: 4 coupled groups x 2 ratios removed alone, and the dense model recalibrated
    cfg = made_up_config(SEEDS=[1], SENSITIVITY=False, CHANNEL_ALLOCATIONS=["sensitivity"])
    counts = run_work.work_counts(cfg, (10, 6, 7), (3, 2, 4), [("unstructured", 0.5)])
    assert counts["sensitivity"] == {"eval_videos": 9 * 6, "recalibration_videos": 9 * 8}
    assert run_work.int8_seconds(4.0, 4, 64, 0.1) == pytest.approx(10.0)
    assert run_work.int8_seconds(4.0, 4, 2, 1) == 4  # never below what was measured
    assert methods.SCRATCH == "scratch"  # as work_counts knows it


def test_the_projection_gives_back_a_tiny_runs_work_and_phase_times(tiny_run):
    out, _ = tiny_run
    results = json.load(open(out / "results" / "results.json"))
    cfg = SimpleNamespace(**results["config"])  # as the run resolved it (ONNX export, INT8)
    sizes = tuple(results["splits"][s] for s in ("train", "val", "test"))
    counts = run_work.run_counts(cfg, sizes)
    models = results["models"]
    phase_of = {m["name"]: "baseline" if m["method"] == "baseline" else "pruned_models" for m in models}
    history = {phase: [m["history"] for m in models if phase_of[m["name"]] == phase]
               for phase in ("baseline", "pruned_models")}
    for phase, histories in history.items():  # the work, exactly
        assert counts[phase]["train_videos"] == sum(h["train_videos"] for h in histories)
        assert counts[phase]["val_videos"] == sum(h["eval_videos"] for h in histories)
        assert counts[phase]["models"] == len(histories)
    # the dense model as trained and recalibrated, then every layer pruned alone, per seed
    evaluations = 2 * len(cfg.SEEDS) + len(results["sensitivity"])
    assert counts["sensitivity"]["eval_videos"] == evaluations * sizes[1]
    runs = {f"{name}_runs": sum(m[f"{prefix}_rounds"] * (cfg.LATENCY_WARMUP_RUNS + cfg.LATENCY_TIMED_RUNS)
                                for m in models)
            for name, prefix in (("pytorch", "latency"), ("onnx", "onnx_latency"), ("int8", "int8_latency"))}
    assert counts["latency"] == runs
    # the rates measured in the run, one for every model, as check_gpu measures them
    every = [h for histories in history.values() for h in histories]
    training = sum(h["train_seconds"] for h in every) / sum(h["train_videos"] for h in every)
    evaluation = sum(h["eval_seconds"] for h in every) / sum(h["eval_videos"] for h in every)
    seconds_per = {"train_videos": training, "val_videos": evaluation, "eval_videos": evaluation,
                   "recalibration_videos": evaluation, "onnx_videos": 0, "int8_videos": 0,  # in seconds_int8
                   "models": statistics.mean(m["seconds_pytorch"] + m["seconds_sizes"] for m in models),
                   "onnx_exports": statistics.mean(m["seconds_onnx"] for m in models),
                   "int8_exports": statistics.mean(m["seconds_int8"] for m in models)}
    projected = run_work.project(counts, seconds_per)
    trained = {phase: sum(h["train_seconds"] + h["eval_seconds"] for h in histories)
               for phase, histories in history.items()}
    at_rates = {phase: projected[phase]["train_videos"] + projected[phase]["val_videos"] for phase in history}
    assert sum(at_rates.values()) == pytest.approx(sum(trained.values()), rel=1e-9)
    assert at_rates["pruned_models"] == pytest.approx(trained["pruned_models"], rel=TRAINING_TOLERANCE)
    totals = run_work.phase_totals(projected)
    share = (totals["baseline"] + totals["pruned_models"]) / (results["phases"]["baseline"] +
                                                               results["phases"]["pruned_models"])
    assert PHASE_SHARE[0] <= share <= PHASE_SHARE[1], share


def test_check_gpu_projects_both_runs_on_the_cpu(run_here, tmp_path):
    tiny = options(num_frames=2, image_size=32, batch_size=4, latency_warmup_runs=1, latency_timed_runs=2,
                   steps=1, rounds=1, int8_videos=1, structured_pruning_ratios=0.5, device="cpu")
    result = run_here("check_gpu.py", "--project", *tiny, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "CPU threads" in out and "measuring on synthetic videos" in out and "temporary folder" in out
    assert "python main.py --num-frames 2" in out and "python main.py --quick --num-frames 2" in out
    assert "measured once" in out  # --quick's input is the same here
    assert "ceiling" in out and "waiting for data" in out and "ONNX Runtime scoring" in out
    assert out.count("    total ") == 2 and "100/60/100 train/val/test videos" in out
    assert "counted:" in out and "left out:" in out
    assert not list(tmp_path.iterdir())  # everything measured in a temporary folder


def test_plain_check_gpu_is_unchanged_and_rejects_bad_options(run_here, tmp_path):
    result = run_here("check_gpu.py", cwd=tmp_path)
    assert result.returncode == 0 and "torch" in result.stdout and "projected" not in result.stdout
    assert run_here("check_gpu.py", "--project", "--steps", "0", cwd=tmp_path).returncode == 2
    assert cli.load([]).NUM_EPOCHS == 50  # the reference configuration projected by default
