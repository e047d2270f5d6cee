"""ONNX Runtime's static quantization of one FP32 ONNX file, as quantize.int8_export runs it (it also
turns any failure here into a QuantizationError naming the step): pre-processing, the graph made safe
for the quantizer (every node named, no tensor named like one it makes), the nodes of the roles kept in
FP32, calibration and quantize_static; then the INT8 file run in ONNX Runtime against the FP32 one.
What the settings are and why: quantize.py."""
import contextlib
import io
import os

import numpy as np

from storage import folders
import onnx_runtime


# --- calibration data, fed to the quantizer ------------------------------------------------------

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


# --- quantization -------------------------------------------------------------------------------

def quantize_file(fp32_onnx_path, videos, tmp, chosen, step):
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


def check_int8(tmp, fp32_onnx_path, videos, step):
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
