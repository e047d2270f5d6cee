"""ONNX Runtime: whether it is installed, a CPU session, and a model's export to ONNX checked against
PyTorch. Latency times its sessions (latency.onnx_runner); quantize.py builds INT8 files from the exports."""
import copy

import numpy as np
import torch

import metrics
import processes
from storage import folders


def available():
    try:
        import onnxruntime  # noqa: F401
        return True
    except ImportError:
        return False


def session(path, threads=None, optimized=True):
    """An ONNX Runtime CPU session with `threads` intra-op threads (default: processes.cpu_threads, as many as
    torch uses in one process). optimized=False runs QDQ models op by op in float."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or processes.cpu_threads()
    if not optimized:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def export(model, path, videos, sizes=True, gzip=True):
    """Export to ONNX (dynamic batch axis) and check it against PyTorch on `videos` in ONNX Runtime's CPU
    execution provider. Its latency is timed with every other model's (latency.py)."""
    model = copy.deepcopy(model).eval().cpu()
    videos = videos.cpu()
    folders.write_atomic(path, lambda tmp: torch.onnx.export(
        model, (videos[:1],), tmp, input_names=["video"], output_names=["ef"],
        dynamic_axes={"video": {0: "batch"}, "ef": {0: "batch"}}, dynamo=False))
    checker = session(path)
    with torch.inference_mode():
        expected = model(videos).numpy()
    actual = checker.run(None, {"video": videos.numpy()})[0]
    result = {"onnx_max_abs_diff": float(np.abs(actual - expected).max()), "onnx_path": path}
    return {**result, **size_fields(metrics.file_sizes(path, gzip))} if sizes else result


def size_fields(sizes):
    """metrics.file_sizes of an ONNX file, under the names the records use."""
    return {f"onnx_{name}": value for name, value in sizes.items()}
