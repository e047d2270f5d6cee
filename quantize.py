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
import contextlib
import io
import os
import platform

import numpy as np
import torch

from storage import folders
import metrics
import onnx_runtime
import processes

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


def _reader(input_name, videos, batch=1):
    from onnxruntime.quantization import CalibrationDataReader

    class VideoReader(CalibrationDataReader):
        """Feeds the calibration videos `batch` at a time (one video is T frames for the backbone)."""

        def __init__(self):
            self.start = 0

        def get_next(self):
            if self.start >= len(videos):
                return None
            chunk = videos[self.start:self.start + batch]
            self.start += batch
            return {input_name: chunk}

        def rewind(self):
            self.start = 0

        def __len__(self):
            return len(videos)

    return VideoReader()


# --- the graph's roles ---------------------------------------------------------------------------

def role_nodes(model):
    """Node names of each role in an (already pre-processed) ONNX model of EFRegressionModel:
    first_conv: the first Conv in topological order; head: every node after the backbone's
    GlobalAveragePool and what follows it into the frame average (Flatten, Reshape, ReduceMean,
    Gemm/MatMul, Squeeze, Mul by ef_scale)."""
    nodes = list(model.graph.node)
    convs = [n for n in nodes if n.op_type == "Conv"]
    pools = [i for i, n in enumerate(nodes) if n.op_type == "GlobalAveragePool"]
    if not convs or not pools:
        raise ValueError("no Conv or no GlobalAveragePool in the graph: not an EFRegressionModel export")
    return {"first_conv": [convs[0].name], "head": [n.name for n in nodes[pools[-1] + 1:]]}


# Names ONNX Runtime's quantizer gives the tensors it adds for a tensor T: T + suffix.
QUANTIZER_SUFFIXES = ("_scale", "_zero_point", "_quantized", "_QuantizeLinear_Input",
                      "_QuantizeLinear_Output", "_DequantizeLinear_Input", "_DequantizeLinear_Output")


def _avoid_name_collisions(model):
    """Rename every initializer and intermediate tensor whose name ends like a name the quantizer makes.
    The quantizer names the scale of tensor T "T_scale" and reuses a tensor that already has that name:
    EFRegressionModel's buffer `ef_scale` (the training EF std, about 13) became the quantization step of
    the output `ef`, so every INT8 prediction was rounded to a multiple of 13 EF points. Returns the
    renamed tensors as {old: new}."""
    keep = {v.name for v in list(model.graph.input) + list(model.graph.output)}
    names = {i.name for i in model.graph.initializer} | {o for n in model.graph.node for o in n.output}
    taken = names | keep
    renamed = {}
    for name in sorted(names - keep):
        if name.endswith(QUANTIZER_SUFFIXES):
            new, k = f"{name}_fp32", 0
            while new in taken or new.endswith(QUANTIZER_SUFFIXES):
                k += 1
                new = f"{name}_fp32_{k}"
            taken.add(new)
            renamed[name] = new
    if renamed:
        for init in model.graph.initializer:
            init.name = renamed.get(init.name, init.name)
        for node in model.graph.node:
            node.input[:] = [renamed.get(x, x) for x in node.input]
            node.output[:] = [renamed.get(x, x) for x in node.output]
        for info in model.graph.value_info:
            info.name = renamed.get(info.name, info.name)
    return renamed


def _name_nodes(model):
    """Give every unnamed node a unique name (nodes_to_exclude works by name)."""
    seen = set()
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{i}"
        seen.add(node.name)
    return model


# --- export -----------------------------------------------------------------------------------------

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
        _quantize(fp32_onnx_path, videos, written, chosen, step)
        checked.append(_check_int8(written, fp32_onnx_path, videos, step))
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


def _quantize(fp32_onnx_path, videos, tmp, chosen, step):
    """Pre-process, name the nodes kept in FP32, calibrate and quantize_static into `tmp`; step[0] says
    which step is under way."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_type = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[chosen["method"]]
    # MinMax keeps only each tensor's min and max per video (its augmented model reduces them), so 64
    # full-size videos fit; Entropy and Percentile keep whole activations for their histograms. Not
    # CalibMaxIntermediateOutputs: ONNX Runtime 1.32 drops the collected ranges at that count instead
    # of merging them, calibrating on the last few videos only (or failing: "No data is collected").
    extra = {"ActivationSymmetric": bool(chosen["activation_symmetric"])}
    if chosen["method"] == "percentile":
        extra["CalibPercentile"] = float(chosen["percentile"])
    with folders.work_folder("int8-") as work:  # ONNX Runtime's temporary files in it; a kill's removed
        pre = os.path.join(work, "pre.onnx")
        with contextlib.redirect_stdout(io.StringIO()):
            quant_pre_process(fp32_onnx_path, pre)
            step[0] = "finding the nodes to keep in FP32"
            model = _name_nodes(onnx.load(pre))
            _avoid_name_collisions(model)
            onnx.save(model, pre)
            roles = role_nodes(model)
            exclude = [name for role in chosen["keep_fp32"] for name in roles[role]]
            input_name = model.graph.input[0].name
            step[0] = f"calibration ({chosen['method']}) and quantize_static"
            quantize_static(pre, tmp, _reader(input_name, videos),
                            quant_format=QuantFormat.QDQ if chosen["fmt"] == "qdq" else QuantFormat.QOperator,
                            per_channel=bool(chosen["per_channel"]),
                            reduce_range=bool(chosen["reduce_range"]),
                            activation_type=quant_type[chosen["activation_type"]],
                            weight_type=quant_type[chosen["weight_type"]], nodes_to_exclude=exclude,
                            calibrate_method=method, extra_options=extra)


def _check_int8(tmp, fp32_onnx_path, videos, step):
    """Load the INT8 file in ONNX Runtime and run it on a few calibration videos: finite predictions,
    one per video. Returns its largest |INT8 - FP32| prediction on them."""
    step[0] = "loading the INT8 model in ONNX Runtime"
    session = onnx_runtime.session(tmp)
    step[0] = "running the INT8 model"
    few = videos[:4]
    out = session.run(None, {session.get_inputs()[0].name: few})[0]
    if out.shape != (len(few),) or not np.isfinite(out).all():
        raise ValueError(f"the INT8 model predicts {out.tolist()} on {len(few)} calibration videos")
    fp32 = onnx_runtime.session(fp32_onnx_path)
    return float(np.abs(out - fp32.run(None, {fp32.get_inputs()[0].name: few})[0]).max())


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
