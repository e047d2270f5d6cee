"""INT8 edge models beside pruning: every model's FP32 ONNX file, statically quantized by ONNX Runtime.

Pre-processing (ONNX Runtime's quant_pre_process: shape inference and graph optimization), then static
calibration on TRAINING videos only (a fixed count, picked by seed, the same for every model), then
quantize_static. The settings below were chosen on the validation split of the quick run (16 frames of
32x32, seed 42); the test split only reports. What mattered, on validation predictions:
  - the output must not be quantized: its 8-bit range is the calibration videos' EF range, so a video
    predicted beyond it was clipped (up to 11 EF points off) -> the head stays FP32 (KEEP_FP32);
  - on a CPU without VNNI (AVX2), ONNX Runtime's u8*s8 kernels saturate their int16 pair sums (the
    INT8 model ran 2x further from FP32 than the same model executed op by op in float) -> 7-bit
    weights (REDUCE_RANGE), which cost no accuracy and no speed;
  - 64 calibration videos rather than 16-32: the largest deviation halves (ranges that cover more videos);
  - Entropy (as quantize_static runs it, 128 bins, it is MinMax; with 2048 bins it clipped so hard that
    MAE doubled) and Percentile calibration, symmetric activations and per-tensor weights did not help.

Roles that can be kept in FP32 (KEEP_FP32):
  "first_conv"  the stem's 7x7 conv, which reads the normalised frames (most accurate with "head", but
                the switch between layouts cost a fifth of the speedup)
  "head"        everything after the backbone's GlobalAveragePool: the frame average, the EF head
                (Gemm 512 -> 1) and the multiplication by ef_scale; a negligible share of the work.
"""
import os
import platform

import numpy as np
import torch

import int8_quantizer
import metrics
import onnx_runtime
import processes
from storage import folders

# --- settings (mirrored as INT8_* constants in config.py) ---------------------------------------
# Chosen on validation MAE and |INT8 - FP32| of validation predictions (quick run, seed 42: baseline,
# unstructured 0.9, structured_physical 0.5 and 0.7); what mattered is listed at the top.
CALIBRATION_VIDEOS = 64          # training videos the activation ranges are calibrated on (all if fewer)
CALIBRATION_SEED = 0             # which training videos: a seeded choice, the same for every model
CALIBRATION_METHOD = "minmax"    # "minmax", "entropy" or "percentile" (neither of the others helped)
PERCENTILE = 99.999              # for CALIBRATION_METHOD "percentile"
FORMAT = "qdq"                   # "qdq" (QuantizeLinear/DequantizeLinear pairs) or "qoperator": as fast
PER_CHANNEL = True               # per-output-channel weight scales
REDUCE_RANGE = True              # 7-bit weights: without VNNI (AVX2) the u8*s8 kernels saturate otherwise
ACTIVATION_TYPE = "uint8"        # "uint8" or "int8"
WEIGHT_TYPE = "int8"             # "int8" or "uint8" (u8u8 does not saturate either, but ran 1.2x, not 1.7x)
ACTIVATION_SYMMETRIC = False     # symmetric activation ranges (zero point in the middle)
KEEP_FP32 = ("head",)            # roles left in FP32: "first_conv", "head" (see above)

ROLES = ("first_conv", "head")
METHODS = ("minmax", "entropy", "percentile")
FORMATS = ("qdq", "qoperator")
TYPES = ("uint8", "int8")


class QuantizationError(RuntimeError):
    """INT8 quantization of a model failed; the message names the file and the step."""


def settings(**overrides):
    """The module's settings (read now, so config.py may set them), with overrides; checked."""
    chosen = {"method": CALIBRATION_METHOD, "percentile": PERCENTILE, "fmt": FORMAT,
              "per_channel": PER_CHANNEL, "reduce_range": REDUCE_RANGE, "activation_type": ACTIVATION_TYPE,
              "weight_type": WEIGHT_TYPE, "activation_symmetric": ACTIVATION_SYMMETRIC,
              "keep_fp32": KEEP_FP32}
    unknown = set(overrides) - set(chosen)
    if unknown:
        raise TypeError(f"unknown INT8 setting(s) {sorted(unknown)}; known: {sorted(chosen)}")
    chosen.update({k: v for k, v in overrides.items() if v is not None})
    chosen["method"], chosen["fmt"] = str(chosen["method"]).lower(), str(chosen["fmt"]).lower()
    chosen["keep_fp32"] = tuple(chosen["keep_fp32"] or ())
    problems = []
    if chosen["method"] not in METHODS:
        problems.append(f"calibration method must be one of {METHODS}, got {chosen['method']!r}")
    if chosen["fmt"] not in FORMATS:
        problems.append(f"format must be one of {FORMATS}, got {chosen['fmt']!r}")
    for name in ("activation_type", "weight_type"):
        if chosen[name] not in TYPES:
            problems.append(f"{name} must be one of {TYPES}, got {chosen[name]!r}")
    if set(chosen["keep_fp32"]) - set(ROLES):
        problems.append(f"keep_fp32 roles must be among {ROLES}, got {chosen['keep_fp32']}")
    if not 0 < float(chosen["percentile"]) <= 100:
        problems.append(f"percentile must be in (0, 100], got {chosen['percentile']}")
    if problems:
        raise ValueError("; ".join(problems))
    return chosen


# --- calibration data: training videos only ------------------------------------------------------

def calibration_videos(train_split, count=None, seed=None):
    """`count` videos of the TRAINING split (all of them if it has fewer), chosen by `seed` and
    returned in index order as one float32 tensor (N, T, 3, H, W), the model's input layout.
    train_split: the EchoNetVideoDataset of split TRAIN (or a torch Subset of it); any other split
    is refused, so validation and test videos can never shape the quantization."""
    count = CALIBRATION_VIDEOS if count is None else int(count)
    seed = CALIBRATION_SEED if seed is None else seed
    split = getattr(getattr(train_split, "dataset", train_split), "split", None)
    if split is not None and str(split).upper() != "TRAIN":
        raise ValueError(f"INT8 calibration reads training videos only; got the {split} split")
    if count < 1:
        raise ValueError(f"INT8 calibration needs at least one video, got count={count}")
    chosen = np.sort(np.random.default_rng(seed).choice(len(train_split), min(count, len(train_split)),
                                                        replace=False))
    return torch.stack([torch.as_tensor(train_split[int(i)][0], dtype=torch.float32) for i in chosen])


# --- export (the steps in ONNX Runtime's quantizer: int8_quantizer.py) ------------------------------

def int8_export(fp32_onnx_path, calibration_videos, int8_path, **overrides):
    """Quantize the FP32 ONNX model at fp32_onnx_path to INT8 at int8_path (written to a temporary file,
    checked in ONNX Runtime, then renamed). calibration_videos: float32 training clips (N, T, 3, H, W),
    e.g. from calibration_videos(). overrides: any key of settings(). Returns the settings used.
    Every failure raises QuantizationError naming the file and the step."""
    import onnx  # noqa: F401 (installed, or an ImportError before anything is written)
    import onnxruntime  # noqa: F401
    from onnxruntime.quantization import quantize_static  # noqa: F401
    from onnxruntime.quantization.shape_inference import quant_pre_process  # noqa: F401

    chosen = settings(**overrides)
    videos = _calibration_array(fp32_onnx_path, calibration_videos)
    tmp = f"{int8_path}.tmp"
    step = ["pre-processing (quant_pre_process)"]  # the step under way, for the message
    checked = []

    def write(written):
        int8_quantizer.quantize_file(fp32_onnx_path, videos, written, chosen, step)
        checked.append(int8_quantizer.check_int8(written, fp32_onnx_path, videos, step))
    try:  # failures=(): the handler below tells a full disk from INT8's own failures
        folders.write_atomic(int8_path, write, tmp=tmp, failures=())
    except Exception as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, QuantizationError):
            raise
        if isinstance(e, OSError) and e.errno in folders.SPACE_OR_PERMISSION:  # a full disk, not INT8's fault
            raise folders.write_failed(int8_path, e) from None
        raise QuantizationError(f"INT8 quantization of {fp32_onnx_path} into {int8_path} failed at "
                                f"{step[0]}: {type(e).__name__}: {str(e).strip()[:500]}") from e
    return {**chosen, "keep_fp32": list(chosen["keep_fp32"]), "calibration_videos": len(videos),
            "calibration_max_abs_diff": checked[0]}


def _calibration_array(fp32_onnx_path, calibration_videos):
    """The calibration videos as one contiguous float32 array, checked, and the FP32 file there."""
    videos = np.ascontiguousarray(np.asarray(calibration_videos, dtype=np.float32))
    if videos.ndim != 5 or len(videos) == 0:
        raise QuantizationError(f"INT8 quantization of {fp32_onnx_path}: calibration videos must be a "
                                f"non-empty (N, T, 3, H, W) array, got shape {videos.shape}")
    if not np.isfinite(videos).all():
        raise QuantizationError(f"INT8 quantization of {fp32_onnx_path}: the calibration videos hold NaN "
                                "or inf")
    if not os.path.isfile(fp32_onnx_path):
        raise QuantizationError(f"INT8 quantization of {fp32_onnx_path}: the FP32 ONNX file does not exist")
    return videos


# --- measurement -------------------------------------------------------------------------------------

def session(path, threads=None, optimized=True):
    """onnx_runtime.session (processes.cpu_threads by default), its failure a QuantizationError naming
    the file."""
    try:
        return onnx_runtime.session(path, threads, optimized)
    except Exception as e:
        raise QuantizationError(f"ONNX Runtime cannot load {path}: {type(e).__name__}: "
                                f"{str(e).strip()[:300]}") from e


def predict(sess, data, batch_size=16):
    """(predicted, target) float64 arrays over `data`: a DataLoader (or any iterable) of (videos, efs),
    or a pair of arrays (videos, efs)."""
    (predicted,), target = predict_all([sess], data, batch_size)
    return predicted, target


def predict_all(sessions, data, batch_size=16):
    """([predicted per session], target): every session runs on the same batches in the same order, in
    one pass over `data` (so per-video errors pair exactly, whatever the data's order)."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and hasattr(data[0], "shape"):
        all_videos, all_efs = data
        data = [(all_videos[i:i + batch_size], all_efs[i:i + batch_size])
                for i in range(0, len(all_videos), batch_size)]
    names = [s.get_inputs()[0].name for s in sessions]
    predicted, target = [[] for _ in sessions], []
    for videos, efs in data:
        batch = np.ascontiguousarray(np.asarray(videos, dtype=np.float32))
        for sess, name, out in zip(sessions, names, predicted):
            out.append(sess.run(None, {name: batch})[0])
        target.append(np.asarray(efs, dtype=np.float64))
    return ([np.concatenate(p).astype(np.float64).ravel() for p in predicted], np.concatenate(target).ravel())


def int8_metrics(int8_path, test_data, fp32_path=None, compare_videos=4, gzip=True):
    """Test MAE, RMSE, R² and per-video errors of the INT8 model through ONNX Runtime; its sizes; and,
    with fp32_path, the FP32 ONNX model's per-video errors from the same loop (the same videos in the
    same order: the INT8 change is paired against them) and the largest |INT8 - FP32| prediction over
    the first `compare_videos` test videos (gzip: its gzip-compressed size too). Its latency is timed
    with every other model's (latency.py).
    test_data: the test DataLoader of (videos, efs), or a pair of arrays (videos, efs)."""
    sess = session(int8_path)
    fp32 = session(fp32_path) if fp32_path else None
    predictions, target = predict_all([sess] + ([fp32] if fp32 else []), test_data)
    predicted = predictions[0]
    name = sess.get_inputs()[0].name
    first = _first_videos(test_data, compare_videos)
    result = {f"int8_test_{k}": v for k, v in metrics.regression_metrics(predicted, target).items()}
    result.update({"int8_test_errors": [round(e, 5) for e in (predicted - target).tolist()],
                   "int8_path": int8_path})
    if fp32:
        result["fp32_onnx_test_mae"] = metrics.regression_metrics(predictions[1], target)["mae"]
        result["fp32_onnx_test_errors"] = [round(e, 5) for e in (predictions[1] - target).tolist()]
        expected = fp32.run(None, {fp32.get_inputs()[0].name: first})[0]
        result["int8_max_abs_diff_vs_fp32"] = float(np.abs(sess.run(None, {name: first})[0] - expected).max())
    result.update({f"int8_{name}": value for name, value in metrics.file_sizes(int8_path, gzip).items()})
    return result


def _first_videos(data, count):
    if isinstance(data, (tuple, list)) and len(data) == 2 and hasattr(data[0], "shape"):
        return np.ascontiguousarray(np.asarray(data[0][:count], dtype=np.float32))
    taken = []
    for videos, _ in data:
        taken.append(np.asarray(videos, dtype=np.float32))
        if sum(len(v) for v in taken) >= count:
            break
    return np.ascontiguousarray(np.concatenate(taken)[:count])


# --- the environment ---------------------------------------------------------------------------------

INT8_FLAGS = ("avx2", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def cpu_int8_features(cpuinfo="/proc/cpuinfo"):
    """What this CPU offers ONNX Runtime's int8 kernels: the x86 flags (avx2, avx512bw, avx512_vnni,
    avx_vnni, amx_int8) or ARM features (asimddp, i8mm) from /proc/cpuinfo, and a one-word summary.
    Without VNNI (or ARM dot products) x86 int8 kernels multiply with vpmaddubsw, whose int16 sums can
    saturate and which gains less over FP32 FMA. Elsewhere than Linux: the machine name only."""
    model, flags = processes.cpu_info(cpuinfo)
    result = {"machine": platform.machine(), "cpu_flags_read": False}
    if model is None and not flags:
        return {**result, "int8_dot_product": "unknown"}
    if model is not None:
        result["cpu_model"] = model
    result["cpu_flags_read"] = bool(flags)
    result.update({flag: flag in flags for flag in INT8_FLAGS})
    if "amx_int8" in flags:
        summary = "amx"
    elif "avx512_vnni" in flags or "avx_vnni" in flags:
        summary = "vnni"
    elif "asimddp" in flags:
        summary = "arm_dotprod"
    elif flags:
        summary = "none"
    else:
        summary = "unknown"
    return {**result, "int8_dot_product": summary}
