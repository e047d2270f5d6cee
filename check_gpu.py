"""What to know before a long run: torch/CUDA versions, devices, memory, and a tiny timed matmul."""
import argparse
import platform
import sys
import time

import torch
import torchvision


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


def main():
    print(f"python {platform.python_version()}, torch {torch.__version__}, torchvision {torchvision.__version__}")
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
              f"{total / 2**30:.1f} GiB ({free / 2**30:.1f} GiB free), bf16 {torch.cuda.is_bf16_supported()}")
        for dtype in (torch.float32, torch.bfloat16):
            ms, tflops = timed_matmul(device, dtype=dtype)
            print(f"  4096x4096 {str(dtype).split('.')[-1]} matmul: {ms:.2f} ms ({tflops:.1f} TFLOP/s)")


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__).parse_args()  # no options; --help says what this is
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except RuntimeError as e:  # a GPU that is there but cannot be used (driver, out of memory)
        print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
        sys.exit(1)
