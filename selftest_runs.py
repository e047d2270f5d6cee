"""The self-test's runs of main.py (gpu_selftest.py): a tiny run with INT8 and, on a GPU, every other
path a run takes there; its continuation after one model's checkpoint is deleted; a torchrun start on two
GPUs. Each runs main.py in a subprocess, in a temporary folder, and checks what it wrote."""
import json
import math
import os
import signal
import subprocess
import sys
from types import SimpleNamespace

import torch

import cli
import processes
from storage import folders

ROOT = os.path.dirname(os.path.abspath(__file__))
# tests/conftest.py's TINY (2 frames of 32x32, one epoch, one ratio a method, 8/4/4 videos), INT8 on
TINY = ["--num-frames", "2", "--image-size", "32", "--batch-size", "4", "--num-epochs", "1",
        "--fine-tune-epochs", "1", "--learning-rate", "1e-3", "--fine-tune-learning-rate", "1e-4",
        "--unstructured-pruning-ratios", "0.5", "--structured-pruning-ratios", "0.5",
        "--latency-warmup-runs", "1", "--latency-timed-runs", "2", "--latency-rounds", "3",
        "--pretrained", "false", "--num-train-videos", "8", "--num-val-videos", "4", "--num-test-videos", "4",
        "--draw-figures", "false", "--gzip-sizes", "false", "--int8", "true",
        "--int8-calibration-videos", "2"]
# On a GPU every path a run takes there. The distilled model is the one deleted: the continuation then
# fine-tunes it from the reused baseline, which is also its teacher, so both must be on the GPU.
GPU_PLAN = SimpleNamespace(deleted="structured_physical_kd_0.5", options=[
    "--sensitivity", "true", "--sensitivity-ratios", "0.9", "--random-pruning-control", "true",
    "--random-removal-control", "true", "--scratch-control", "true",
    "--distilled-methods", "structured_physical"])
# On a CPU, what a test of the suite can afford: the baseline, the dense control and one pruned model,
# each with INT8.
CPU_PLAN = SimpleNamespace(deleted="unstructured_0.5", options=["--structured-pruning-ratios", "",
                                                                 "--sensitivity", "false"])
# The torchrun start: the plan's models without the measuring that only the main process does.
LEAN = ["--sensitivity", "false", "--int8", "false", "--onnx-export", "false", "--random-removal-control",
        "false", "--scratch-control", "false"]
# seconds, to stop a hang
TIMEOUT = {"end_to_end": 300, "continuation": 240, "gpu_tests": 420, "torchrun": 240}
# what every record of the tiny run has
NEEDED = ("test_mae", "fp32_onnx_test_mae", "int8_test_mae", "latency_ms", "int8_latency_ms")


class Failed(Exception):
    """A part's FAIL, with why."""


def finite(value):
    return isinstance(value, (int, float)) and math.isfinite(value)


def outcome(verdict, text, **numbers):
    return {"verdict": verdict, "text": text, "numbers": numbers}


def precision_name(device):
    return str(processes.precision(device, True)).replace("torch.", "")


def finished(command, cwd, timeout, what):
    """(exit status, stdout, stderr) of command, run in a session of its own: on a timeout or Ctrl-C it
    is killed with every process it started (torchrun's workers, the runs a test starts)."""
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except BaseException as e:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        if isinstance(e, subprocess.TimeoutExpired):
            raise Failed(f"{what} ran longer than {timeout} s") from None
        raise
    return process.returncode, out, err


def main_py(args, cwd, timeout, launcher=()):
    """python main.py args in cwd, in a subprocess: (results.json, its stdout)."""
    os.makedirs(cwd, exist_ok=True)
    code, out, err = finished([sys.executable, *launcher, os.path.join(ROOT, "main.py"), *args], cwd, timeout,
                              "main.py")
    if code != 0:
        last = [line for line in err.splitlines() if line.strip()] or ["no message"]
        raise Failed(f"main.py exited with status {code}: {last[-1]}")
    with open(os.path.join(cwd, "results", "results.json")) as f:
        return json.load(f), out


def context(device, device_name, folder, data):
    """What the runs share: the device (and its --device), the temporary folder, the synthetic data
    folder (create_sample_data: 8/4/4 videos, seed 0), main.py's options for the device's plan."""
    plan = GPU_PLAN if device.type == "cuda" else CPU_PLAN
    return SimpleNamespace(device=device, device_name=device_name, folder=folder, data=data, first=None,
                           run=os.path.join(folder, "run"), deleted=plan.deleted,
                           args=[*TINY, *plan.options, "--device", device_name, "--data-root", data])


def by_name(results):
    return {r["name"]: r for r in results["models"]}


def check_results(results, expected, device, sensitivity, results_dir):
    """What is wrong with a finished run's results.json (empty when nothing): every model of the plan
    (`expected` names) there, each with its test, ONNX and INT8 numbers and files, timed on `device`
    in the training precision; the layer sensitivity where it was asked for."""
    records, problems = by_name(results), []
    if sorted(records) != sorted(expected):
        problems.append(f"models {sorted(records)} where the plan has {sorted(expected)}")
    for name, r in records.items():
        if lacking := [k for k in NEEDED if not finite(r.get(k))]:
            problems.append(f"{name} lacks {', '.join(lacking)}")
        if not str(r.get("latency_device")).startswith(device.type):
            problems.append(f"{name} was timed on {r.get('latency_device')}, not {device.type}")
        if r.get("latency_precision") != precision_name(device):
            problems.append(f"{name} was timed in {r.get('latency_precision')}, not {precision_name(device)}")
        if missing := [f for f in ("checkpoint", "int8_path") if not os.path.isfile(
                folders.resolve(results_dir, r.get(f) or "missing"))]:
            problems.append(f"{name}'s {' and '.join(missing)} file is not there")
    if not str(results["environment"]["device"]).startswith(device.type):
        problems.append(f"the run trained on {results['environment']['device']}, not {device.type}")
    if sensitivity and not results.get("sensitivity"):
        problems.append("no layer sensitivity rows")
    if device.type == "cuda" and results.get("clips_on_device") is not True:
        problems.append("the clips were not put on the GPU (CLIPS_ON_DEVICE auto, and they are tiny)")
    return problems


def end_to_end(ctx):
    import main as experiment
    results, _ = main_py(ctx.args, ctx.run, TIMEOUT["end_to_end"])
    cfg = cli.load(ctx.args)
    expected = ["baseline"] + [f"{method}_{ratio:g}" for method, ratio, _ in experiment.pruning_plan(cfg)]
    if problems := check_results(results, expected, ctx.device, cfg.SENSITIVITY,
                                 os.path.join(ctx.run, "results")):
        raise Failed("; ".join(problems))
    ctx.first = results
    base, records = by_name(results)["baseline"], results["models"]
    int8 = max(abs(r["int8_test_mae"] - r["fp32_onnx_test_mae"]) for r in records)
    paths = ", ".join(["INT8"] + ["sensitivity"] * cfg.SENSITIVITY + expected[2:])
    return outcome("PASS", f"{len(records)} models on {results['environment']['device']} in "
                           f"{results['seconds']:.0f} s ({precision_name(ctx.device)}; {paths}): baseline "
                           f"test MAE {base['test_mae']:.3f}, INT8 within {int8:.3f} of FP32 ONNX Runtime, "
                           f"latency {base['latency_ms']:.3g} ms (INT8 {base['int8_latency_ms']:.3g} ms on "
                           f"the CPU)",
                   models=expected, seconds=results["seconds"], baseline_test_mae=base["test_mae"],
                   largest_int8_change=int8, baseline_latency_ms=base["latency_ms"], phases=results["phases"])


def continuation(ctx):
    if ctx.first is None:
        return outcome("SKIP", "needs the end-to-end run, which did not pass here")
    results_dir, first = os.path.join(ctx.run, "results"), by_name(ctx.first)
    checkpoints = {name: folders.resolve(results_dir, r["checkpoint"]) for name, r in first.items()}
    stamps = {name: os.stat(path).st_mtime_ns for name, path in checkpoints.items() if name != ctx.deleted}
    os.remove(checkpoints[ctx.deleted])
    results, out = main_py(ctx.args, ctx.run, TIMEOUT["continuation"])
    again = by_name(results)
    problems = check_results(results, list(first), ctx.device, bool(ctx.first["sensitivity"]), results_dir)
    if "continuing the run in" not in out:
        problems.append("the run did not say it continued")
    if retrained := [n for n, stamp in stamps.items() if os.stat(checkpoints[n]).st_mtime_ns != stamp]:
        problems.append(f"trained again though their checkpoints were there: {', '.join(retrained)}")
    if moved := [n for n in stamps if again.get(n, {}).get("test_mae") != first[n]["test_mae"]]:
        problems.append(f"test MAE changed for {', '.join(moved)}")
    if not (os.path.isfile(checkpoints[ctx.deleted]) and finite(again.get(ctx.deleted, {}).get("test_mae"))):
        problems.append(f"{ctx.deleted} was not trained again")
    # every model timed again, together (the rounds of a reused model's first timing no longer compare)
    timed_before = {n: r.get("latency_round_ms") for n, r in first.items()}
    if untimed := [n for n, r in again.items() if r.get("latency_round_ms") in (None, timed_before.get(n))]:
        problems.append(f"not timed again: {', '.join(untimed)}")
    if problems:
        raise Failed("; ".join(problems))
    before, after = first[ctx.deleted]["test_mae"], again[ctx.deleted]["test_mae"]
    return outcome("PASS", f"{ctx.deleted}'s checkpoint deleted: trained again (test MAE {before:.3f} -> "
                           f"{after:.3f}) from the reused baseline on {results['environment']['device']}; "
                           f"{len(stamps)} models reused with identical test MAE; every model timed again; "
                           f"{results['seconds']:.0f} s",
                   deleted=ctx.deleted, reused=sorted(stamps), test_mae_before=before, test_mae_after=after,
                   seconds=results["seconds"])


def torchrun(ctx):
    if ctx.device.type != "cuda":
        return outcome("SKIP", "on the CPU: two CPU processes under torchrun are tests/test_distributed.py's")
    if (gpus := torch.cuda.device_count()) < 2:
        return outcome("SKIP", f"{gpus} GPU here: a torchrun start needs 2 (one process a GPU)")
    args = [*TINY, *LEAN, "--device", "cuda", "--data-root", ctx.data]
    results, _ = main_py(args, os.path.join(ctx.folder, "torchrun"), TIMEOUT["torchrun"],
                         launcher=("-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"))
    videos = {r["test_videos"] for r in results["models"]}
    if results["environment"]["world_size"] != 2 or videos != {4}:
        raise Failed(f"world size {results['environment']['world_size']}, test videos per model {videos}: "
                     f"expected 2 processes and each of the 4 test videos once")
    return outcome("PASS", f"2 processes on 2 GPUs: {len(results['models'])} models, each test video "
                           f"counted once, in {results['seconds']:.0f} s", models=len(results["models"]),
                   seconds=results["seconds"])
