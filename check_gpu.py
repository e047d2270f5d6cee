"""What to know before a long run: torch/CUDA versions, devices, memory, and a tiny timed matmul.

    python check_gpu.py                     # seconds: versions, devices, memory, a timed matmul
    python check_gpu.py --project           # about a minute more on a GPU: what the runs will take here
    python check_gpu.py --project --data-root /data/EchoNet-Dynamic   # measured on a few of its videos
    python check_gpu.py --selftest          # minutes on a GPU: the GPU path end to end, PASS/FAIL per part

--project measures, on this machine and through the run's own code, what the reference run spends its
time on: training and evaluation videos/s through the real data path (batches.Batches feeding
train.train, bench_data's rounds) against the model's ceiling (the same steps on batches already on
the device) and the share of the steps spent waiting for data; ONNX export and ONNX Runtime scoring
(FP32 and INT8) and INT8 quantization; one video's latency in every runtime; decoding a video; the
per-model bookkeeping (parameter and FLOP counts, checkpoint, file sizes). It multiplies these rates
by the work the configuration asks for (work_counts: every model of main.py's plan for every seed)
and prints the projected time of `python main.py` and of `python main.py --quick` phase by phase.
Every other option is main.py's (config.py) and changes the configuration projected:
`python check_gpu.py --project --num-epochs 10` projects `python main.py --num-epochs 10` and
`python main.py --quick --num-epochs 10`. Without --data-root the data path runs on synthetic videos
(create_sample_data, in a temporary folder); --data-root measures on a few videos of that folder and
counts its splits as FileList.csv gives them.

--selftest is what to run first on a new GPU box (gpu_selftest.py says what each part checks): a tiny
main.py run with INT8, the sensitivity, the controls and distillation, its continuation, the GPU tests,
bench.py --data's ceilings and a torchrun start on two GPUs, each ending in a PASS, FAIL or SKIP line;
exit status 0 when none failed. Without a GPU it stops at once (exit 2); --device cpu runs it on the CPU.
"""
import argparse
import platform
import sys
import time

import torch
import torchvision

import cli  # first: a broken config.py is one message (exit 2)
import run_projection
from cli import exits


def timed_matmul(device, n=4096, repeats=10, dtype=torch.float32):
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = (time.perf_counter() - start) / repeats
    return seconds * 1000, 2 * n ** 3 / seconds / 1e12


def describe():
    """The machine: versions, devices, memory, a timed matmul."""
    import processes
    print(f"python {platform.python_version()}, torch {torch.__version__}, "
          f"torchvision {torchvision.__version__}")
    print(f"CUDA build {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
          f"CPU threads {torch.get_num_threads()}")
    if not torch.cuda.is_available():
        print("CUDA is not available: main.py will run on the CPU (use --quick there).")
        ms, tflops = timed_matmul(torch.device("cpu"), n=1024, repeats=3)
        print(f"cpu: 1024x1024 fp32 matmul {ms:.1f} ms ({tflops * 1000:.0f} GFLOP/s)")
        return
    for i in range(torch.cuda.device_count()):
        device = torch.device("cuda", i)
        props = torch.cuda.get_device_properties(device)
        free, total = torch.cuda.mem_get_info(device)
        print(f"cuda:{i} {props.name}, compute capability {props.major}.{props.minor}, "
              f"{total / 2**30:.1f} GiB ({free / 2**30:.1f} GiB free), bf16 {processes.native_bf16(device)}")
        for dtype in (torch.float32, torch.bfloat16):
            ms, tflops = timed_matmul(device, dtype=dtype)
            print(f"  4096x4096 {str(dtype).split('.')[-1]} matmul: {ms:.2f} ms ({tflops:.1f} TFLOP/s)")


def own_options(p):
    """check_gpu's options (the others are main.py's)."""
    p.add_argument("--project", action="store_true", help="measure this machine (about a minute on a GPU) "
                   "and project the time of python main.py and python main.py --quick, with the other "
                   "options given")
    p.add_argument("--steps", type=int, default=None, metavar="N",
                   help="--project: training batches timed per round (default 3 on a GPU, 2 on a CPU)")
    p.add_argument("--rounds", type=int, default=None, metavar="N", help="--project: interleaved rounds of "
                   "pipeline and ceiling, their median taken (default 3 on a GPU, 1 on a CPU)")
    p.add_argument("--videos", type=int, default=None, metavar="N", help="--project: videos per split "
                   "decoded for measuring (default: steps x batch for training, one batch for validation, "
                   "4 x batch for test)")
    p.add_argument("--int8-videos", type=int, default=4, metavar="N", help="--project: calibration videos "
                   "of the INT8 quantization timed (default 4; each further one projected at an ONNX Runtime "
                   "run's time)")
    p.add_argument("--selftest", action="store_true", help="check this GPU box end to end (minutes): one "
                   "PASS, FAIL or SKIP line a part and a summary; exit status 0 when no part failed; with "
                   "--device cpu, on the CPU at tiny sizes (gpu_selftest.py)")
    p.add_argument("--selftest-out", metavar="PATH", help="--selftest: also write every part's verdict and "
                   "numbers to this JSON file, part by part")
    p.add_argument("--selftest-skip", default="", metavar="PARTS", help="--selftest: leave out these parts, "
                   "comma-separated (environment, end_to_end, continuation, gpu_tests, data_path, torchrun)")
    return p


def main(argv=()):
    """The machine described; with --project, both runs projected (project_runs' result)."""
    argv = list(argv)
    p = own_options(cli.parser(__doc__))
    options = cli.load(argv, p)  # --help, and every option checked
    for name in ("steps", "rounds", "videos", "int8_videos"):
        if getattr(options, name) is not None and getattr(options, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if options.selftest:  # its parts, verdicts and exit status are gpu_selftest.py's
        import gpu_selftest
        own = own_options(argparse.ArgumentParser(add_help=False, allow_abbrev=False))
        sys.exit(gpu_selftest.selftest(options, own.parse_known_args(argv)[1]))  # main.py's options given
    describe()
    if not options.project:
        return None
    gpu = torch.cuda.is_available()
    options.steps = options.steps or (3 if gpu else 2)
    options.rounds = options.rounds or (3 if gpu else 1)
    own = own_options(argparse.ArgumentParser(add_help=False, allow_abbrev=False))
    _, run_args = own.parse_known_args(argv)  # main.py's options, for the two configurations projected
    return run_projection.project_runs(run_args, options)


if __name__ == "__main__":  # a GPU that is there but cannot be used (driver, out of memory): MACHINE
    exits.run(main, sys.argv[1:], again="run the same command again", machine=(RuntimeError,))
