"""python check_gpu.py --selftest: what to run first on a new GPU box (minutes on one GPU). Each part
ends in one line, PASS <part>: <numbers>, FAIL <part>: <why>, or SKIP <part>: <why> where it cannot run
here (never a PASS); then a summary line. Exit status 0 when no part failed, 1 when one did.

    environment    torch and CUDA versions; each GPU's capability, memory and native bf16; the training
                   precision chosen; matrix products timed
    end_to_end     a tiny main.py run (synthetic data, a temporary folder): INT8, layer sensitivity, the
                   random, removal and scratch controls, distillation; results.json checked
    continuation   the distilled model's checkpoint deleted, the same command again: that model trained
                   again from the reused baseline (its teacher), every other reused with the same test MAE
    gpu_tests      python -m pytest -m cuda tests/test_gpu.py, in a subprocess
    data_path      bench.py --data --quick's ratios (bench_data.py): training and evaluation against
                   their ceilings, the data wait, the training ceiling against the device's matmul
    torchrun       a tiny run under torchrun, one process on each of 2 GPUs (where there are 2)

--selftest-out PATH writes every verdict with its numbers as JSON, part by part. Without a GPU the
self-test stops at once (exit 2); --device cpu runs its parts on the CPU, with a smaller plan (INT8 and
one pruned model): what the suite checks, on a machine with no GPU.
"""
import importlib.util
import os
import re
import sys
import tempfile
import time
from collections import Counter

import torch

import cli
import processes
from storage import folders
from create_sample_data import create_sample_data
from selftest_runs import (ROOT, TIMEOUT, Failed, context, continuation, end_to_end, finished, finite,
                           outcome, precision_name, torchrun)


# --- the parts ----------------------------------------------------------------------------------

def environment(ctx):
    import bench_data
    versions = {"torch": torch.__version__, "cuda_build": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version(), "device": str(ctx.device)}
    said = f"torch {torch.__version__}, CUDA build {torch.version.cuda}, cuDNN {versions['cudnn']}"
    if ctx.device.type == "cpu":
        here = torch.cuda.device_count() if torch.cuda.is_available() else 0
        gflops = bench_data.matmul_rate(ctx.device, torch.float32, 1024)
        return outcome("PASS", f"{said}; the CPU (--device cpu; {here} GPU(s) here, not used), "
                               f"{torch.get_num_threads()} threads, fp32 matmul {gflops:.0f} GFLOP/s",
                       **versions, gpus=here, fp32_gflop_per_s=gflops)
    gpus = []
    for i in range(torch.cuda.device_count()):
        props, (free, total) = torch.cuda.get_device_properties(i), torch.cuda.mem_get_info(i)
        gpus.append({"name": props.name, "capability": f"{props.major}.{props.minor}",
                     "total_gib": round(total / 2**30, 1), "free_gib": round(free / 2**30, 1),
                     "native_bf16": processes.native_bf16(torch.device("cuda", i))})
    props = torch.cuda.get_device_properties(ctx.device)
    expected = torch.bfloat16 if props.major >= 8 or torch.version.hip else torch.float16
    if processes.precision(ctx.device, True) != expected:  # bf16 emulated before Ampere: slow or failing
        raise Failed(f"training would run in {precision_name(ctx.device)} on compute capability "
                     f"{props.major}.{props.minor}, where {expected} is the one computed natively")
    rates = {str(d).replace("torch.", ""): bench_data.matmul_rate(ctx.device, d, 8192) / 1000
             for d in dict.fromkeys((torch.float32, expected))}
    torch.cuda.empty_cache()
    listed = "; ".join(f"cuda:{i} {g['name']} (capability {g['capability']}, {g['total_gib']} GiB, "
                       f"{g['free_gib']} free, native bf16 {g['native_bf16']})" for i, g in enumerate(gpus))
    return outcome("PASS", f"{said}; {len(gpus)} GPU(s): {listed}; training on {ctx.device} in "
                           f"{precision_name(ctx.device)}; 8192x8192 matmul " +
                   ", ".join(f"{k} {v:.0f} TFLOP/s" for k, v in rates.items()),
                   **versions, gpus=gpus, precision=precision_name(ctx.device), matmul_tflop_per_s=rates)


def pytest_verdict(code, output):
    """The gpu_tests part's outcome from pytest's exit status and its -q output."""
    lines = [line for line in output.splitlines() if line.strip()]
    summary = next((line.strip("= ") for line in reversed(lines)
                    if re.search(r"\d+ (passed|failed|errors?|skipped)", line)), "no summary")
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|errors?|skipped)", summary)}
    failed = [line.split()[1] for line in lines if line.startswith(("FAILED ", "ERROR "))]
    if code == 0 and counts.get("passed"):
        return outcome("PASS", f"tests/test_gpu.py: {summary}", **counts)
    if code == 0:
        raise Failed(f"no GPU test ran ({summary})")
    raise Failed(f"pytest exited with status {code}: {summary}" + "".join(f"; {name}" for name in failed))


def gpu_tests(ctx):
    if ctx.device.type != "cuda":
        return outcome("SKIP", "on the CPU: tests/test_gpu.py needs CUDA (the CPU suite: pytest tests)")
    tests = os.path.join(ROOT, "tests", "test_gpu.py")
    if not os.path.isfile(tests):
        raise Failed(f"{tests} is not here: run the self-test from a checkout of ef-prune")
    if not all(importlib.util.find_spec(name) for name in ("pytest", "xdist")):
        raise Failed("pytest or pytest-xdist is not installed: pip install -r requirements-dev.txt")
    pytest = [sys.executable, "-m", "pytest", "-q", "-n", "0", "-m", "cuda", "-p", "no:cacheprovider", tests]
    code, out, _ = finished(pytest, ROOT, TIMEOUT["gpu_tests"], "the GPU tests")
    return pytest_verdict(code, out)


def data_verdict(table, rounds):
    """The data_path part's outcome from bench_data.bench_data's table."""
    rows = {"training": "training, whole pipeline", "evaluation": "evaluation, whole pipeline",
            "ceiling": "training ceiling (batches already on the device)",
            "batches": "data path alone, batches (this version)"}
    table = table.set_index("what")
    try:
        n = {"train_x_ceiling": table.loc[rows["training"], "x_ceiling"],
             "data_wait_share": table.loc[rows["training"], "data_wait_share"],
             "eval_x_ceiling": table.loc[rows["evaluation"], "x_ceiling"],
             "ceiling_x_matmul": table.loc[rows["ceiling"], "x_matmul"],
             "batches_x_per_video": table.loc[rows["batches"], "x_per_video"]}
    except KeyError as e:
        raise Failed(f"bench_data's table has no {e}") from None
    n = {k: float(v) for k, v in n.items()}
    if bad := [k for k, v in n.items() if not finite(v) or v < 0]:
        raise Failed(f"not measured: {', '.join(bad)}")
    return outcome("PASS", f"training at {n['train_x_ceiling']:.2f}x its ceiling "
                           f"({n['data_wait_share']:.0%} of the steps waiting for data), evaluation at "
                           f"{n['eval_x_ceiling']:.2f}x; the training ceiling at "
                           f"{n['ceiling_x_matmul']:.2f}x the device's matmul; batches "
                           f"{n['batches_x_per_video']:.1f}x the per-video path (the --quick input, median "
                           f"of {rounds} round(s))", **n, rounds=rounds)


def data_path(ctx):
    import bench_data
    root = os.path.join(ctx.folder, "bench")
    # enough for bench_data's three training batches and one evaluation batch (4x) of the --quick input
    create_sample_data(root, num_train=24, num_val=8, num_test=32, seed=0, log=lambda *_: None)
    cfg = cli.load(["--quick", "--device", ctx.device_name, "--data-root", root, "--num-train-videos",
                       "24", "--num-val-videos", "8", "--num-test-videos", "32",
                       "--cache-dir", os.path.join(ctx.folder, "bench-cache")])
    rounds = 3 if ctx.device.type == "cuda" else 1
    return data_verdict(bench_data.bench_data(cfg, ctx.device, 3, rounds, log=lambda *_: None), rounds)


PARTS = {"environment": environment, "end_to_end": end_to_end, "continuation": continuation,
         "gpu_tests": gpu_tests, "data_path": data_path, "torchrun": torchrun}


# --- the self-test -----------------------------------------------------------------------------

def checked_skip(options, extra):
    """The parts --selftest-skip leaves out; options that do not go with --selftest refused."""
    given = [t.split("=")[0] for t in extra if t.startswith("-") and t.split("=")[0] != "--device"]
    given += [f"--{k}" for k in ("project", "steps", "rounds", "videos") if getattr(options, k)]
    if given:
        raise cli.ConfigError(f"--selftest runs its own tiny configuration; of the other options it takes "
                              f"--device only (given: {', '.join(given)})")
    skip = {part.strip() for part in options.selftest_skip.split(",") if part.strip()}
    if unknown := skip - set(PARTS):
        raise cli.ConfigError(f"--selftest-skip: no part {', '.join(sorted(unknown))}; the parts are "
                              f"{', '.join(PARTS)}")
    return skip


def write_report(path, report):
    if path:
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            folders.write_json(path, report)
        except OSError as e:  # folders.WriteFailed is one
            raise cli.ConfigError(f"--selftest-out {path}: cannot write there ({e})") from None


def chosen_device(name, out):
    """The device the parts run on; without a GPU (and without --device cpu), the refusal."""
    if name == "cpu" or torch.cuda.is_available():
        return processes.pick_device(name)
    why = (f"no CUDA GPU here (torch {torch.__version__}, CUDA build {torch.version.cuda}: "
           f"torch.cuda.is_available() is False); the self-test checks the GPU path. Run it on the GPU "
           f"box, or python check_gpu.py --selftest --device cpu for its parts on the CPU at tiny sizes")
    write_report(out, {"verdict": "REFUSED", "why": why, "parts": []})
    raise cli.ConfigError(why)


def run_part(name, ctx, skip):
    start = time.perf_counter()
    if name in skip:
        result = outcome("SKIP", "left out (--selftest-skip)")
    else:
        print(f"{name} ...", flush=True)
        try:
            result = PARTS[name](ctx)
        except Failed as e:
            result = outcome("FAIL", str(e))
        except Exception as e:  # noqa: BLE001 (one part's crash is its FAIL; the others still run)
            result = outcome("FAIL", f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}")
    return {"part": name, **result, "line": f"{result['verdict']} {name}: {result['text']}",
            "seconds": round(time.perf_counter() - start, 1)}


def selftest(options, extra):
    """check_gpu.py --selftest: every part's verdict line, then the summary. Returns the exit status."""
    skip = checked_skip(options, extra)
    device = chosen_device(options.DEVICE, options.selftest_out)
    report = {"command": " ".join(["python", "check_gpu.py", *sys.argv[1:]]), "device": str(device),
              "started": time.strftime("%Y-%m-%d %H:%M %Z"), "parts": []}
    write_report(options.selftest_out, report)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="selftest-") as folder:
        data = os.path.join(folder, "echonet")
        create_sample_data(data, num_train=8, num_val=4, num_test=4, seed=0, log=lambda *_: None, processes=1)
        ctx = context(device, options.DEVICE if options.DEVICE != "auto" else device.type, folder, data)
        for part in PARTS:
            report["parts"].append(run_part(part, ctx, skip))
            print(report["parts"][-1]["line"], flush=True)
            write_report(options.selftest_out, report)
    counts = Counter(p["verdict"] for p in report["parts"])
    named = {v: [p["part"] for p in report["parts"] if p["verdict"] == v] for v in ("SKIP", "FAIL")}
    named = {v: f" ({', '.join(parts)})" if parts else "" for v, parts in named.items()}
    report.update(verdict="FAIL" if counts["FAIL"] else "PASS", seconds=round(time.perf_counter() - start))
    report["summary"] = (f"selftest {report['verdict']} on {device}: {counts['PASS']} passed, "
                         f"{counts['SKIP']} skipped{named['SKIP']}, {counts['FAIL']} failed{named['FAIL']}, "
                         f"in {report['seconds']} s")
    print(report["summary"], flush=True)
    write_report(options.selftest_out, report)
    return 1 if counts["FAIL"] else 0
