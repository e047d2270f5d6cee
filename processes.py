"""Which process this is and what it computes on: one process, or one of torchrun's (a GPU each with NCCL,
CPU processes with gloo); the main process speaks and measures while the others wait at a barrier; the
device, its precision under autocast, the CPU threads a measuring runtime takes, and which CPU it is."""
import contextlib
import datetime
import os

import torch
import torch.distributed as dist


# How long a process waits at a collective before the run is given up. After each model the main
# process measures alone (ONNX export, INT8 calibration, the test split scored in FP32 and INT8) while
# the others wait at a barrier: at EchoNet-Dynamic's 1,277 test videos about 12 minutes on one thread
# (docs/bench_results.json: 139 ms a video in ONNX Runtime on two), under 2 on the 16 CPUs of a GPU box
# (cpu_threads). The default of 10 minutes killed such runs, and a restarted run died at the same step.
PROCESS_GROUP_TIMEOUT = datetime.timedelta(minutes=60)


def init_distributed():
    """Under torchrun (WORLD_SIZE > 1): one process per GPU with NCCL, or per CPU process with gloo."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend, timeout=PROCESS_GROUP_TIMEOUT)


def too_many_processes(device_name="auto"):
    """What is wrong with torchrun's processes for the GPUs here, or None: one process a GPU, each on its
    own (--device cuda:0 would put every process on one GPU)."""
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
    if processes == 1 or not torch.cuda.is_available() or device_name == "cpu":  # gloo on the CPU: any number
        return None
    if processes > torch.cuda.device_count():
        return (f"torchrun started {processes} processes on this machine, which has "
                f"{torch.cuda.device_count()} GPU(s): one process a GPU, so --nproc_per_node "
                f"{torch.cuda.device_count()} at most (run_gpu.sh counts them)")
    if device_name not in ("auto", "cuda"):
        return (f"--device {device_name} under torchrun would put every process on one device; leave it "
                f"auto: each process takes the GPU of its LOCAL_RANK")
    return None


def rank():
    return dist.get_rank() if dist.is_initialized() else 0


def world_size():
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main():
    return rank() == 0


def cpu_threads():
    """The threads of a CPU runtime that measures (ONNX Runtime, INT8 calibration): torch's own in one
    process, so both runtimes get the same cores; under torchrun, which sets OMP_NUM_THREADS=1 for every
    process, every CPU this process may use, since the main process measures alone while the others wait."""
    if world_size() == 1:
        return torch.get_num_threads()
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def log(message):
    if is_main():  # under torchrun, one process speaks
        print(message, flush=True)


def barrier():
    if dist.is_initialized():
        dist.barrier()


def pick_device(name="auto"):
    """cuda (this process's GPU under torchrun) when available, else cpu; "cuda" is this process's GPU too."""
    if name == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def precision(device, amp):
    """The autocast dtype: bf16 where the GPU computes it natively (Ampere and later), else fp16 with the
    gradient scaler; fp32 on CPU or with AMP off."""
    if not amp or device.type != "cuda":
        return torch.float32
    return torch.bfloat16 if native_bf16(device) else torch.float16


def native_bf16(device):
    """bf16 in hardware: torch.cuda.is_bf16_supported() says yes by default on T4, V100 and RTX 20xx too,
    where it is emulated and cuDNN has no bf16 convolutions (training fails or crawls)."""
    return bool(torch.version.hip) or torch.cuda.get_device_properties(device).major >= 8


def autocast(device, dtype):
    return torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else contextlib.nullcontext()


def gather(tensor):
    """Concatenate a 1-D CPU tensor over all processes (each holds a disjoint shard)."""
    if not dist.is_initialized():
        return tensor
    parts = [None] * world_size()
    dist.all_gather_object(parts, tensor)
    return torch.cat(parts)


def cpu_info(cpuinfo="/proc/cpuinfo"):
    """(model name, set of flags) from /proc/cpuinfo: which CPU gave the times, as two CPUs of 2 cores can
    differ fivefold (docs/troubleshooting.md); (None, set()) elsewhere than Linux."""
    model, flags = None, set()
    try:
        with open(cpuinfo) as f:
            lines = f.read().splitlines()
    except OSError:
        return model, flags
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
        elif key.strip().lower() == "model name" and model is None:
            model = value.strip()
    return model, flags
