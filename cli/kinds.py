"""What each constant of config.py is. Our users edit config.py between runs, and Python takes whatever
they write: PHYSICAL_STRUCTURED_PRUNING = "false" is a true string, BATCH_SIZE = "16" a traceback an
hour later. So config.py's values are checked as options are by argparse, against the kinds kept here
(not in config.py, which is the file being edited): `problems` says which constant, on which line, and
what it takes. A constant added to config.py needs nothing here: its kind is its value's (inferred),
unless the value cannot tell (None, "auto", an empty list). `import_config` makes a syntax error or an
unknown name in config.py one message too. config.py must not be imported at the top of this module."""
import ast
import difflib
import os
import sys
import traceback

PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "config.py")
# What each shipped constant takes, by name: kept here so that an edit of its value cannot change its kind
# (SEEDS = 42 for [42], NUM_EPOCHS = 1.5). A new constant is inferred from its value (inferred).
KINDS = {
    "True or False": "CACHE_FRAMES SKIP_BAD_VIDEOS PRETRAINED AMP CUDNN_BENCHMARK "
                     "PHYSICAL_STRUCTURED_PRUNING REMOVE_MASKS_BEFORE_FINE_TUNE RANDOM_PRUNING_CONTROL "
                     "RANDOM_REMOVAL_CONTROL SCRATCH_CONTROL SCRATCH_B_CONTROL SENSITIVITY CHANNELS_LAST "
                     "LATENCY_COMPILE "
                     "INT8_REDUCE_RANGE GZIP_SIZES DRAW_FIGURES FRESH VERBOSE",
    "True, False or None": "ONNX_EXPORT INT8",
    "a whole number": "NUM_FRAMES IMAGE_SIZE NUM_TRAIN_VIDEOS NUM_VAL_VIDEOS NUM_TEST_VIDEOS BATCH_SIZE "
                      "NUM_EPOCHS SEED PRUNING_STEPS FRAME_PERIOD PHYSICAL_ROUND_TO FINE_TUNE_EPOCHS "
                      "CRITERION_BATCHES "
                      "BN_RECALIBRATION_BATCHES BOOTSTRAP_SAMPLES LATENCY_WARMUP_RUNS LATENCY_TIMED_RUNS "
                      "LATENCY_ROUNDS INT8_CALIBRATION_VIDEOS",
    "a number": "LEARNING_RATE PRUNING_RAMP_END FINE_TUNE_LEARNING_RATE ALPHA NONINFERIORITY_FRACTION "
                "SCRATCH_B_MAX_FACTOR "
                "DISTILLATION_WEIGHT",
    "text in quotes": "SAMPLE_DATA_ROOT DATA_ROOT CACHE_DIR LR_SCHEDULE DEVICE PRUNING_SCOPE MODEL "
                      "FINE_TUNE_SCHEDULE "
                      "PRUNING_SCHEDULE INT8_CALIBRATION_METHOD RESULTS_DIR FIGURES_DIR",
    "text in quotes or None": "PRETRAINED_PATH CHECKPOINT_DIR",
    '"auto" or a number': "CLIPS_ON_DEVICE",
    "a list of whole numbers": "SEEDS",
    "a list of numbers": "UNSTRUCTURED_PRUNING_RATIOS STRUCTURED_PRUNING_RATIOS SENSITIVITY_RATIOS "
                         "TARGET_FLOPS_SPEEDUPS",
    "a list of texts in quotes": "INT8_KEEP_FP32 NOT_RESULTS CHANNEL_ALLOCATIONS DISTILLED_METHODS "
                                 "REWOUND_METHODS EQUAL_FLOPS_METHODS INT8_METHODS IMPORTANCE_CRITERIA",
}
KIND = {name: kind for kind, names in KINDS.items() for name in names.split()}
SCALAR = ((bool, "True or False"), (int, "a whole number"), (float, "a number"), (str, "text in quotes"))
ELEMENT = {"a list of whole numbers": "a whole number", "a list of numbers": "a number",
           "a list of texts in quotes": "text in quotes"}


def fits(kind, value):
    if kind in ELEMENT:
        return isinstance(value, list) and all(fits(ELEMENT[kind], v) for v in value)
    if value is None and kind.endswith("or None"):
        return True
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return {"True or False": isinstance(value, bool), "True, False or None": isinstance(value, bool),
            "a whole number": number and isinstance(value, int), "a number": number,
            '"auto" or a number': value == "auto" or number}.get(kind, isinstance(value, str))


def advice(name, kind, value):
    """What to write instead, where it can be told."""
    if kind in ELEMENT and fits(ELEMENT[kind], value):  # before the quotes: "global" is a list's text
        return f"; write it as a list: {name} = [{value!r}]"
    if isinstance(value, str) and not kind.startswith("text") and value != "auto":
        try:
            unquoted = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            unquoted = None
        if kind in ELEMENT and fits(ELEMENT[kind], unquoted):  # SEEDS = "42": neither quotes nor 42 do
            return f"; write it as a list, without the quotes: {name} = [{unquoted!r}]"
        return "; write it without the quotes"
    if kind == "a whole number" and isinstance(value, float):
        return f"; e.g. {name} = {max(1, round(value))}"
    return ""


def inferred(value):
    """The kind a new constant's value tells, or None where it cannot (None, "auto", an empty list)."""
    if isinstance(value, list):
        element = {inferred(v) for v in value}
        if len(element) == 1 and element <= set(ELEMENT.values()):
            return {v: k for k, v in ELEMENT.items()}[element.pop()]
        return "a list of numbers" if value and element <= {"a whole number", "a number"} else None
    if value is None or value == "auto":
        return None
    return next((kind for t, kind in SCALAR if isinstance(value, t)), None)


def kind_of(name, value):
    """A constant's kind: as shipped (KINDS), else its value's."""
    return KIND.get(name) or inferred(value)


def lines(path=PATH):
    """Each top-level name assigned in config.py: its line."""
    with open(path) as f:
        tree = ast.parse(f.read())
    return {t.id: node.lineno for node in tree.body if isinstance(node, ast.Assign)
            for t in node.targets if isinstance(t, ast.Name)}


def problems(values, path=PATH):
    """Every constant of `values` (config.py's upper-case names) that does not fit its kind, every unknown
    constant (a misspelt or renamed one) and every missing one: 'config.py line N: ...'. Whole numbers
    given to a number are made floats in `values`, as the command line would."""
    where, found, named = lines(path), [], set()
    name_of = os.path.basename(path)
    missing = sorted(set(KIND) - set(values))
    for name, value in values.items():
        line = f"{name_of} line {where.get(name, '?')}"
        if name == "QUICK" and isinstance(value, dict):
            found += [f"{line}: QUICK[{k!r}] = {v!r}: " +
                      (f"{k} takes {kind_of(k, values[k])}" if k in values else
                       f"not a constant of {name_of}")
                      for k, v in value.items() if (k not in values and k not in KIND)
                      or k in values and not fits(kind_of(k, values[k]), v)]
        elif name not in KIND and difflib.get_close_matches(name, missing, n=1):  # renamed, not new
            close = difflib.get_close_matches(name, missing, n=1)
            named.update(close)
            found.append(f"{line}: {name} is not a constant of the experiment; did you mean {close[0]} "
                         f"(missing from {name_of})?")
        elif kind_of(name, value) is None:
            found.append(f"{line}: {name} = {value!r}: a new constant's kind is told by its value, and "
                         f"{value!r} cannot tell it; give it a value of its kind, or name its kind in "
                         f"cli/kinds.py (KINDS)")
        elif not fits(kind_of(name, value), value):
            kind = kind_of(name, value)
            found.append(f"{line}: {name} = {value!r}; {name} takes {kind}{advice(name, kind, value)}")
        elif kind_of(name, value) in ("a number", "a list of numbers"):
            values[name] = [float(v) for v in value] if isinstance(value, list) else float(value)
    found += [f"{name_of}: {name} is missing (renamed or deleted?); put it back, {KIND[name]}"
              for name in missing if name not in named]
    return found


def import_config():
    """config.py imported, or one message and exit 2 for a syntax error or an unknown name in it: a
    traceback from inside the import names neither the line to fix nor how."""
    try:
        import config
        return config
    except Exception as e:  # noqa: BLE001 (SyntaxError, NameError, TypeError...: whatever an edit does)
        if isinstance(e, SyntaxError):
            line, what = e.lineno, f"{e.msg}: {(e.text or '').strip()}"
        else:
            frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == PATH]
            line = frames[-1].lineno if frames else "?"
            what = f"{type(e).__name__}: {e}"
            what += f" ({frames[-1].line})" if frames else ""
        print(f"error: config.py line {line}: {what}. Fix that line: NAME = value, text in quotes, True, "
              f"False and None capitalised, lists in brackets (e.g. SEEDS = [42]).", file=sys.stderr)
        sys.exit(2)
