"""What each option takes beyond its kind (kinds.KINDS), in one table (RULES), the options that
need one another (NEEDS), and the methods a distilled method must be one of (methods.planned): checked
together by options.load, before any data is read. A number is finite (nan and inf pass a float's parsing
and a `<= 1` test alike); a list names each value once (a model trained twice is reported as n = 2, std 0).
What only the model can tell (a ratio the channel rounding cannot reach, an allocation that cannot meet
its FLOPs) is plan_checks.py's, also before training. No torch here: every script loads options."""
import math
from collections import namedtuple

import methods
from cli import kinds

Rule = namedtuple("Rule", "says fits numeric", defaults=(False,))  # says: what one value must be


def between(low, high=math.inf, *, above=False, below=False):
    """A finite number from `low` (above: beyond it) to `high` (below: short of it)."""
    if high == math.inf:
        says = f"{'above' if above else 'of at least'} {low:g}"
    elif above == below:
        says = f"{'strictly between' if above else 'from'} {low:g} {'and' if above else 'to'} {high:g}"
    else:
        says = f"{'above' if above else 'from'} {low:g} {'to below' if below else 'to at most'} {high:g}"
    return Rule(says, lambda v: math.isfinite(v) and (v > low if above else v >= low)
                and (v < high if below else v <= high), numeric=True)


def one_of(*choices):
    return Rule("one of " + ", ".join(choices), lambda v: v in choices)


COUNT, NOT_NEGATIVE, POSITIVE = between(1), between(0), between(0, above=True)
FRACTION = between(0, 1, above=True, below=True)
SHARE = between(0, 1)
FOLDER = Rule("a path, not empty", lambda v: v is None or bool(str(v).strip()))
PRUNED = [m for m in methods.METHODS if m != "baseline" and not methods.variant(m)]

RULES = {  # every option but the booleans and --device (options.device_problems asks torch)
    **dict.fromkeys(["NUM_FRAMES", "IMAGE_SIZE", "NUM_TRAIN_VIDEOS", "NUM_VAL_VIDEOS", "NUM_TEST_VIDEOS",
                     "BATCH_SIZE", "NUM_EPOCHS", "PRUNING_STEPS", "PHYSICAL_ROUND_TO", "LATENCY_TIMED_RUNS",
                     "LATENCY_ROUNDS", "INT8_CALIBRATION_VIDEOS", "CRITERION_BATCHES"], COUNT),
    **dict.fromkeys(["FINE_TUNE_EPOCHS", "BN_RECALIBRATION_BATCHES", "LATENCY_WARMUP_RUNS", "SEED", "SEEDS",
                     "FRAME_PERIOD"],
                    NOT_NEGATIVE),  # numpy's generators take no negative seed
    "BOOTSTRAP_SAMPLES": between(100),
    "LEARNING_RATE": POSITIVE, "FINE_TUNE_LEARNING_RATE": POSITIVE,
    "PRUNING_RAMP_END": between(0, 1, below=True),  # the last step must leave fine-tuning after it
    "ALPHA": FRACTION, "NONINFERIORITY_FRACTION": FRACTION, "DISTILLATION_WEIGHT": SHARE,
    **dict.fromkeys(["UNSTRUCTURED_PRUNING_RATIOS", "STRUCTURED_PRUNING_RATIOS", "SENSITIVITY_RATIOS"],
                    FRACTION),
    "TARGET_FLOPS_SPEEDUPS": between(1, above=True),  # how many times fewer FLOPs
    "CLIPS_ON_DEVICE": Rule("auto or a share of the GPU's free memory from 0 to 1",
                            lambda v: v == "auto" or SHARE.fits(v)),
    "PRUNING_SCOPE": one_of("backbone", "all"), "PRUNING_SCHEDULE": one_of("oneshot", "gradual"),
    "MODEL": one_of("resnet18_frames", "r2plus1d_18"),
    "LR_SCHEDULE": one_of("constant", "cosine"), "FINE_TUNE_SCHEDULE": one_of("plain", "rewind"),
    "SCRATCH_B_MAX_FACTOR": between(1),
    "INT8_CALIBRATION_METHOD": one_of("minmax", "entropy", "percentile"),
    "INT8_KEEP_FP32": one_of("head", "first_conv"),
    "CHANNEL_ALLOCATIONS": one_of(*methods.choices("CHANNEL_ALLOCATIONS")),
    "EQUAL_FLOPS_METHODS": one_of(*methods.choices("EQUAL_FLOPS_METHODS")),
    "IMPORTANCE_CRITERIA": one_of(*dict.fromkeys(methods.choices("IMPORTANCE_CRITERIA"))),
    "DISTILLED_METHODS": one_of(*PRUNED), "INT8_METHODS": one_of("baseline", *PRUNED),
    "REWOUND_METHODS": one_of(*[m for m in PRUNED if not methods.from_scratch(m)]),
    **dict.fromkeys(["DATA_ROOT", "CACHE_DIR", "RESULTS_DIR", "CHECKPOINT_DIR", "FIGURES_DIR",
                     "PRETRAINED_PATH"], FOLDER),
}


# (in use, what it needs, why): an option in use whose need is not met is refused with the why
NEEDS = [
    (lambda c: c.CHANNEL_ALLOCATIONS or c.TARGET_FLOPS_SPEEDUPS, lambda c: c.PHYSICAL_STRUCTURED_PRUNING,
     "--channel-allocations and --target-flops-speedups prune removed channels: they need "
     "--physical-structured-pruning true"),
    (lambda c: c.CHANNEL_ALLOCATIONS, lambda c: c.PRUNING_SCHEDULE == "oneshot",
     "--channel-allocations are matched in FLOPs in one step: use --pruning-schedule oneshot"),
    (lambda c: c.CHANNEL_ALLOCATIONS, lambda c: c.STRUCTURED_PRUNING_RATIOS or c.TARGET_FLOPS_SPEEDUPS,
     "--channel-allocations allocate the removed channels of structured_physical, and this run removes "
     "none: give --structured-pruning-ratios or --target-flops-speedups"),
    (lambda c: c.SENSITIVITY or "sensitivity" in c.CHANNEL_ALLOCATIONS, lambda c: c.SENSITIVITY_RATIOS,
     "--sensitivity-ratios is empty, and --sensitivity true and --channel-allocations sensitivity measure "
     "at those ratios: give at least one (or turn both off)"),
    (lambda c: c.NUM_FRAMES * math.ceil(c.IMAGE_SIZE / 32) ** 2 < 2, lambda c: c.BATCH_SIZE >= 2,
     "--batch-size 1 with --num-frames 1 at --image-size 32 or less: ResNet-18's last BatchNorm sees one "
     "value per channel (1x1 maps, batches.fewest_clips) and cannot train on it; give --batch-size 2 or "
     "more, or 2 frames"),
    (lambda c: c.FINE_TUNE_SCHEDULE == "rewind", lambda c: c.FINE_TUNE_EPOCHS <= c.NUM_EPOCHS,
     "--fine-tune-schedule rewind replays the baseline's last --fine-tune-epochs epochs of rates: give at "
     "most --num-epochs of them"),
    (lambda c: c.INT8, lambda c: c.ONNX_EXPORT is not False,
     "--int8 quantizes the ONNX export: it needs --onnx-export true or none"),
]


def dashed(name):
    return "--" + name.lower().replace("_", "-")


def show(value):
    """A value as it is written on the command line."""
    if isinstance(value, list):
        return ",".join(map(show, value))
    return str(value).lower() if value is None or isinstance(value, bool) else f"{value:g}" if isinstance(
        value, float) else str(value)


def says(name):
    """What one value of option `name` must be: 'a whole number of at least 1'."""
    rule = RULES[name]
    whole = "whole" in kinds.KIND.get(name, "")
    return f"{'a whole number' if whole else 'a number'} {rule.says}" if rule.numeric else rule.says


def rule_problems(cfg):
    """Every option against its RULES row: each value (of a list: each element) fits, a list names each
    value once, SEEDS names at least one."""
    problems = []
    for name in RULES:
        value = getattr(cfg, name)
        values = value if isinstance(value, list) else [value]
        bad = [v for v in values if not RULES[name].fits(v)]
        if bad and isinstance(value, list):
            problems.append(f"{dashed(name)} {show(value)}: each value must be {says(name)}, and "
                            f"{show(bad)} {'is' if len(bad) == 1 else 'are'} not")
        elif bad:
            problems.append(f"{dashed(name)} takes {says(name)}, got "
                            f"{repr(value) if isinstance(value, str) else show(value)}")
        twice = sorted({show(v) for i, v in enumerate(values) if v in values[:i]})
        if twice:
            problems.append(f"{dashed(name)} lists {', '.join(twice)} twice ({show(value)}); each value once "
                            f"(one model trained twice would be reported as n = 2, std 0)")
    if not cfg.SEEDS:
        problems.append("--seeds is empty; give at least one seed")
    return problems


def needs(method):
    """The options that put `method` in the plan, as a refusal names them."""
    return "a pruned model (a ratio or a budget)" if method == methods.CONTROL else methods.needs(method)


def relation_problems(cfg):
    """NEEDS, and every distilled or rewound method one of the run's methods (methods.planned)."""
    problems = [why for in_use, need, why in NEEDS if in_use(cfg) and not need(cfg)]
    for suffix, constant in methods.VARIANTS.items():
        option = "--" + constant.lower().replace("_", "-")
        for method in getattr(cfg, constant):
            if method in PRUNED and not methods.planned(method, cfg):
                problems.append(f"{option} names {method}, which this run does not train (no "
                                f"{method}{suffix} without it): it needs {needs(method)}; drop it from "
                                f"{option} or turn it on")
    return problems


def problems(cfg):
    """Every problem of the configuration `cfg` that needs no model; CLIPS_ON_DEVICE's share made a number."""
    if cfg.CLIPS_ON_DEVICE != "auto":  # argparse reads it as text: auto or a number
        try:
            cfg.CLIPS_ON_DEVICE = float(cfg.CLIPS_ON_DEVICE)
        except (TypeError, ValueError):
            return [f"--clips-on-device takes {says('CLIPS_ON_DEVICE')}, got {cfg.CLIPS_ON_DEVICE!r}"]
    found = rule_problems(cfg)
    return found + (relation_problems(cfg) if not found else [])  # relations of values that fit
