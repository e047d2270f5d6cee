"""Where the numbers come from: the commit (or why there is none), the installed packages' versions,
the machine and the device, written into results.json as its `environment`."""
import importlib.metadata
import os
import platform
import subprocess

import torch
import torch.distributed as dist

import processes


# The CPU flags that choose oneDNN's and ONNX Runtime's kernels: runs of one commit, configuration and data
# on hosts that differ in these (AMX or not) trained different models (docs/results.md), so every run
# records them.
KERNEL_FLAGS = {"avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile",
                "amx_bf16", "amx_int8", "asimddp", "i8mm", "sve"}


def environment(device, steady_allocator):
    """Where the numbers come from: the commit (or that there is none) and the installed packages'
    versions from their metadata (torch_pruning.__version__ said 1.6.0 with 1.6.1 installed)."""
    cuda = device.type == "cuda"
    cpu_model, cpu_flags = processes.cpu_info()
    return {
        "python": platform.python_version(), "torch": installed("torch"),
        "torchvision": installed("torchvision"), "torch_pruning": installed("torch-pruning"),
        "onnxruntime": installed("onnxruntime"), "numpy": installed("numpy"), "platform": platform.platform(),
        "cpu_count": os.cpu_count(), "cpu_model": cpu_model, "cpu_avx512": "avx512f" in cpu_flags,
        "cpu_kernel_flags": sorted(KERNEL_FLAGS & cpu_flags),
        "torch_threads": torch.get_num_threads(), "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if cuda else platform.processor() or "cpu",
        "cuda": torch.version.cuda if cuda else None, "git_commit": git_commit(),
        "world_size": processes.world_size(),
        "distributed_backend": dist.get_backend() if dist.is_initialized() else None,
        "cpu_malloc_thresholds_fixed": steady_allocator,
    }


def installed(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def git_commit():
    """The checkout's commit, marked "+changes" when files differ from it; or why there is none."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=here,
                              timeout=10)
        if head.returncode:
            return "none (not a git checkout)"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=here, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "none (git is not installed)"
    return head.stdout.strip() + (" +changes" if dirty else "")
