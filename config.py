"""All constants of the experiment. Defaults reproduce the reference configuration.

Every constant but the internal SAMPLE_DATA_ROOT, FRESH and NOT_RESULTS is a command-line option of
every script, by its lower-case, dashed name (argparse; `python main.py --help` lists them by section,
with this file's comments as help, their defaults and their --quick values):
    python main.py --num-epochs 3 --data-root /data/echonet --structured-pruning-ratios 0.5
Lists are comma-separated; booleans take true or false (in any case); None is written `none`.
config.py's values are checked against the kinds in bookkeeping/config_types.py before any option is read.
`--quick` applies the QUICK preset (a laptop CPU run); explicit options win over it.
`--fresh` archives earlier results and checkpoints and starts again.
A script with options of its own adds them to `parser(__doc__)` and passes that to `load`.
"""
import argparse
import os
import re
import sys
import textwrap
import tokenize
from types import SimpleNamespace

from bookkeeping import config_types

# --- data -------------------------------------------------------------------
SAMPLE_DATA_ROOT = "data/sample_echonet"  # built-in synthetic data, generated on first use
DATA_ROOT = SAMPLE_DATA_ROOT              # point at an EchoNet-Dynamic folder for the real run
NUM_FRAMES = 32                           # frames per video, evenly spaced over the whole video
IMAGE_SIZE = 112                          # EchoNet-Dynamic's native size
# Split counts: the sample generator writes this many videos per split, and a FileList.csv without
# a Split column is split at random (seeded) into this many.
# Evaluation is cheap next to training: 100 test videos put a 95% interval of about +-0.5 EF points
# on a model's MAE (20 gave +-1, wider than most differences between the methods).
NUM_TRAIN_VIDEOS = 100
NUM_VAL_VIDEOS = 60       # validation videos (split counts, above)
NUM_TEST_VIDEOS = 100     # test videos (split counts, above)
CACHE_FRAMES = True       # keep every decoded clip in CACHE_DIR: a later run reads it, not the videos
CACHE_DIR = "cache"       # where CACHE_FRAMES keeps the decoded clips
SKIP_BAD_VIDEOS = True    # an undecodable, empty or 1-frame video is left out (counted, named); False: stop
# Where a split's decoded clips live during the run: on the GPU when they fit in this share of its free
# memory ("auto": half, the rest left to the model), so batches are drawn there with no copy; else in
# host memory, copied batch by batch. A number from 0 (never on the GPU) to 1. The CPU uses host memory.
CLIPS_ON_DEVICE = "auto"

# --- model and training -----------------------------------------------------
PRETRAINED = True         # ImageNet weights through torchvision; falls back to random init offline
PRETRAINED_PATH = None    # a local ResNet-18 state_dict file, used instead of the download
BATCH_SIZE = 16           # videos per batch, training and evaluation
NUM_EPOCHS = 50           # epochs of baseline training
LEARNING_RATE = 1e-4      # Adam's learning rate for the baseline
LR_SCHEDULE = "constant"  # "constant", or "cosine": decay to zero over the epochs (baseline and fine-tuning)
SEED = 42                 # the data: sample generation and a split without a Split column
SEEDS = [42]              # training: every model is trained and pruned once per seed
DEVICE = "auto"           # auto: cuda when available, else cpu
# GPU speed, used on CUDA only (recorded in the results): automatic mixed precision (bf16 where the
# GPU supports it, else fp16 with a gradient scaler; latency is measured in the same precision) and
# cuDNN autotuning. CHANNELS_LAST (below) applies to training on every device as well as to latency.
AMP = True
CUDNN_BENCHMARK = True    # cuDNN autotuning, CUDA only (see AMP)

# --- pruning ----------------------------------------------------------------
# The layers every method prunes. "backbone": every Conv2d, the regression head left dense (the
# field's practice: global magnitude pruning otherwise removes most of the head's 512 weights and
# the EF output dies). "all": the reference's unstructured scope, every Conv2d and Linear.
PRUNING_SCOPE = "backbone"
# "oneshot": prune to the ratio, then fine-tune (the reference). "gradual": Zhu & Gupta (2017),
# sparsity ratio * (1 - (1 - k/n)^3) after step k = 1..n, n = PRUNING_STEPS, the steps evenly spaced
# from the start of fine-tuning to PRUNING_RAMP_END of it, the same total fine-tuning; Torch-Pruning's
# iterative steps for structured_physical.
PRUNING_SCHEDULE = "oneshot"
PRUNING_STEPS = 3         # steps of the gradual schedule
# The gradual schedule's last step comes after this fraction of the fine-tuning steps, so the model
# trains at its final sparsity for the rest (the last step at the last epoch's start left one epoch).
PRUNING_RAMP_END = 0.5
UNSTRUCTURED_PRUNING_RATIOS = [0.5, 0.8, 0.9]  # fractions of weights zeroed (global L1 magnitude)
STRUCTURED_PRUNING_RATIOS = [0.3, 0.5, 0.7]    # fractions of each Conv2d's output channels (L2 norm)
# Also remove coupled channel groups with Torch-Pruning (structured_physical), and mask the same channels
# (structured_coupled_masked; one-shot only), so that masking and removal are compared on one choice.
PHYSICAL_STRUCTURED_PRUNING = True
# Channels kept by structured_physical are rounded to a multiple of this: CPU kernels (oneDNN, ONNX
# Runtime's MLAS) run odd channel counts far slower. 1 keeps the exact ratio.
PHYSICAL_ROUND_TO = 8
FINE_TUNE_EPOCHS = 2      # epochs of fine-tuning after pruning, every method alike
FINE_TUNE_LEARNING_RATE = 1e-5  # Adam's learning rate for fine-tuning
# True reproduces the reference's flaw: masks removed before fine-tuning, so pruned weights regrow.
REMOVE_MASKS_BEFORE_FINE_TUNE = False
RANDOM_PRUNING_CONTROL = False  # add unstructured_random and structured_random at the same ratios
# With PHYSICAL_STRUCTURED_PRUNING: structured_physical_random removes random coupled channel groups, the
# same counts (ShrinkBench's control, for removal); scratch trains structured_physical's architecture from
# a random initialisation for NUM_EPOCHS + FINE_TUNE_EPOCHS epochs (Liu et al. 2019's Scratch-E).
RANDOM_REMOVAL_CONTROL = True
SCRATCH_CONTROL = True
# After every pruning step (one-shot, gradual, physical; each layer of the sensitivity), before the
# model is evaluated or fine-tuned, every BatchNorm's running statistics are re-estimated on this
# many training batches, no weight changed (batchnorm.py): otherwise they still describe the dense
# model, and "right after pruning" and the sensitivity measure the stale statistics
# (docs/methodology.md, "A fair comparison"). 0 turns it off.
BN_RECALIBRATION_BATCHES = 20
# Recovering accuracy at high compression (docs/methodology.md, "Channel allocation"). Channel allocations of
# removed channels besides the uniform one (structured_physical), each pruned to the uniform model's
# effective FLOPs at the same ratio (allocation.py): "global" (Torch-Pruning's global ranking, the head
# protected), "sensitivity" (each group's share from the sensitivity of each coupled group, removed alone
# at SENSITIVITY_RATIOS on the validation split, measured after the baseline). One-shot.
CHANNEL_ALLOCATIONS = []
# FLOP budgets: each adds the removed-channel models (structured_physical, its random control, the
# allocations, the small net) at the uniform ratio that needs this many times fewer FLOPs than the
# baseline, within allocation.BUDGET_TOLERANCE (the channel rounding moves FLOPs in steps).
TARGET_FLOPS_SPEEDUPS = []
# These methods ("scratch" and "dense_control" too) are also fine-tuned (trained) with distillation from
# the dense baseline, as <method>_kd: the loss (1 - w) x MSE to the label + w x MSE to the baseline's
# prediction for the same video (Hinton et al. 2015, for regression), w = DISTILLATION_WEIGHT, chosen on
# the validation split (docs/results.md, "The distillation weight"). The baseline's predictions are
# computed once per seed.
DISTILLED_METHODS = []
DISTILLATION_WEIGHT = 1.0

# Layer sensitivity: after the baseline, prune each layer alone (L1 weights, L2 channels) at these
# ratios and measure validation MAE without fine-tuning, against the dense model with its BatchNorm
# recalibrated alike (results/sensitivity.csv, a heatmap).
SENSITIVITY = True
SENSITIVITY_RATIOS = [0.3, 0.5, 0.7, 0.9]  # the ratios each layer is pruned to, alone

# --- measurement ------------------------------------------------------------
BOOTSTRAP_SAMPLES = 2000  # bootstrap replicates for the 95% intervals of MAE and its change
# The claims of summary.md (claims.py): "better" or "worse" only where the crossed bootstrap test of the
# MAE change rejects 0 at ALPHA after Holm's adjustment over all the run's comparisons; non-inferiority
# at ALPHA / 2, one-sided, Holm-adjusted over the same comparisons.
ALPHA = 0.05
# The non-inferiority margin, as this share of the baseline's mean test MAE over the seeds compared:
# 0.1, a tenth of the error the dense model makes, set by that rule and not by what the test split can
# resolve; summary.md and the README say how many test videos would resolve it.
NONINFERIORITY_FRACTION = 0.1
LATENCY_WARMUP_RUNS = 5   # untimed runs before the latency is timed
LATENCY_TIMED_RUNS = 20   # timed runs of one video per round; their median and p90 are the round's reading
# Every model's latency is timed once all models are trained, in this many rounds: each round times
# every model once (warm-up, then LATENCY_TIMED_RUNS runs), in an order shuffled from round to round,
# since load on a machine drifts over a run (latency.py). A model's latency is the median of its round
# medians, its spread their lowest and highest; models are ranked only where spreads do not overlap.
LATENCY_ROUNDS = 5
CHANNELS_LAST = True      # memory format for training and latency, every model alike (faster on CPU too)
# Time PyTorch through torch.compile with frozen weights (BatchNorm folded, activations fused) rather
# than eagerly. Eager PyTorch runs each BatchNorm and ReLU as its own pass, which costs pruned models
# relatively more, so its speedups come out below ONNX Runtime's (docs/onnx_int8.md).
LATENCY_COMPILE = False
ONNX_EXPORT = None        # export every model to ONNX and time it in ONNX Runtime; None: when installed
# INT8 beside pruning: every model's ONNX file statically quantized by ONNX Runtime (QDQ, per-channel
# int8 weights, uint8 activations), calibrated on training videos only, and measured like FP32 (test
# MAE through ONNX Runtime, latency, size). Settings chosen on the validation split (docs/onnx_int8.md).
INT8 = None               # quantize every model to INT8; None: when ONNX_EXPORT is on
# Each checkpoint's and ONNX file's gzip-compressed size besides its size on disk (zeros compress: what masks
# save in storage). Compressing a full-size ResNet-18 file takes about a second of a core.
GZIP_SIZES = True
INT8_CALIBRATION_VIDEOS = 64        # training videos the activation ranges are calibrated on
INT8_CALIBRATION_METHOD = "minmax"  # "minmax", "entropy" or "percentile"
INT8_REDUCE_RANGE = True  # 7-bit weights: without VNNI, x86 int8 kernels saturate on 8-bit products
INT8_KEEP_FP32 = ["head"]  # parts left in FP32: "head" (frame mean and EF output), "first_conv"

# --- output -----------------------------------------------------------------
# Folders are relative to the working directory (where python main.py is started), not to this file.
RESULTS_DIR = "results"   # results.json, the CSV tables and summary.md
# Model checkpoints and training states, one folder per seed. None: RESULTS_DIR/checkpoints, inside the
# results folder and under its lock, so a checkpoint folder belongs to one run and moves with it.
# Another folder is locked too and stamped with the run's identity (owner.json).
CHECKPOINT_DIR = None
FIGURES_DIR = "figures"   # figures as PNG and PDF
DRAW_FIGURES = True       # draw figures/ at the end of main.py
# A run started again with the same configuration continues: finished models are reused and a
# model cut off mid-training continues from its last epoch. --fresh archives the old results first.
FRESH = False
# Constants that do not change any number: a run may continue with them changed. The data's folder is
# one: the data is identified by its fingerprint (bookkeeping/run_identity.py), however it is spelled.
NOT_RESULTS = ["DATA_ROOT", "RESULTS_DIR", "CHECKPOINT_DIR", "FIGURES_DIR", "DRAW_FIGURES", "CACHE_DIR",
               "CACHE_FRAMES", "CLIPS_ON_DEVICE", "FRESH", "NOT_RESULTS"]

# A laptop-CPU preset: a smaller input and a shorter schedule; the whole pipeline in minutes. Chosen on
# the validation split (docs/methodology.md, "A fair comparison"): 16 frames of 32x32 beat 8 frames of
# 64x64 at the same cost (frames carry the EF signal), 3 fine-tuning epochs did as well as 4, and
# fine-tuning at 3e-4 beat 1e-4 and 1e-3 (mean over every model and two seeds), BatchNorm recalibrated.
# BatchNorm recalibrated on 4 batches (32 videos) recovered as much as on all 13, and the sensitivity's
# 80 recalibrations cost a third as much.
QUICK = dict(
    NUM_FRAMES=16,
    IMAGE_SIZE=32,
    BATCH_SIZE=8,
    NUM_EPOCHS=20,
    LEARNING_RATE=1e-3,
    LR_SCHEDULE="cosine",
    FINE_TUNE_EPOCHS=3,
    FINE_TUNE_LEARNING_RATE=3e-4,
    SENSITIVITY_RATIOS=[0.5, 0.9],
    BN_RECALIBRATION_BATCHES=4,
    LATENCY_TIMED_RUNS=20,
    LATENCY_ROUNDS=3,
)


class ConfigError(ValueError):
    pass


def defaults():
    """Every upper-case constant of this module, by name."""
    return {k: v for k, v in vars(sys.modules[__name__]).items() if k.isupper() and k != "QUICK"}


def check_file():
    """config.py's values as edited, each of its kind (bookkeeping/config_types.py), before any option
    is read: a quoted boolean or number, a number where a list belongs, a renamed constant are one
    message."""
    module = sys.modules[__name__]
    values = {k: v for k, v in vars(module).items() if k.isupper()}
    found = config_types.problems(values)
    if found:
        raise ConfigError("config.py was edited into values the experiment cannot take: " + "; ".join(found))
    for name, value in values.items():  # a whole number given to a number: a float, as on the command line
        setattr(module, name, value)


def _dashed(name):
    return name.lower().replace("_", "-")


def _sections():
    """[(heading, [(NAME, help)])] read from this file's source, so the help has no second copy to keep in
    step: a constant's help is its trailing comment, else the comment block right above it."""
    sections, block, trailing = [], [], {}
    with open(__file__) as f:
        tokens = list(tokenize.generate_tokens(f.readline))
    for tok in tokens:  # comments after code on the same line, by line number
        if tok.type == tokenize.COMMENT and tok.line[:tok.start[1]].strip():
            trailing[tok.start[0]] = tok.string.lstrip("#").strip()
    for tok in tokens:
        if tok.type == tokenize.COMMENT and tok.start[1] == 0:
            heading = re.fullmatch(r"# --- (.+?) -*", tok.string)
            if heading:
                sections.append((heading[1], []))
            else:
                block.append(tok.string.lstrip("#").strip())
        elif tok.type == tokenize.NL and not tok.line.strip():  # a blank line ends a comment block
            block = []
        elif tok.type == tokenize.NAME and tok.start[1] == 0:
            if sections and tok.string.isupper() and tok.string != "QUICK":
                sections[-1][1].append((tok.string, trailing.get(tok.start[0]) or " ".join(block)))
            block = []
    return sections


def _show(value):
    """A value as it is written on the command line."""
    if isinstance(value, list):
        return ",".join(map(_show, value))
    return str(value).lower() if value is None or isinstance(value, bool) else str(value)


# What an empty list's elements are, since its default cannot say (config_types.KINDS names the kind).
_empty_list_element = {"a list of texts in quotes": "", "a list of numbers": 0.0,
                       "a list of whole numbers": 0}


def _type(default, kind=None):
    """The argparse type of a constant, from its default (a list: comma-separated, its first element's type,
    an empty one's from its `kind`); its __name__ is the type that argparse's error message names."""
    like = (default or [_empty_list_element.get(kind, 0.0)])[0] if isinstance(default, list) else default

    def scalar(t):
        t = t.strip()
        if isinstance(like, bool):  # true or false in any case, nothing else: "no" or "0" may be a typo
            if t.lower() in ("true", "false"):
                return t.lower() == "true"
            raise ValueError(t)
        if like is not None:
            return type(like)(t)
        if t.lower() == "none":  # only a constant whose default is None takes none
            return None
        for kind in (int, float):  # the most specific type that fits
            try:
                return kind(t)
            except ValueError:
                pass
        return {"true": True, "false": False}.get(t.lower(), t)

    def convert(text):
        if isinstance(default, list):
            return [scalar(t) for t in text.split(",") if t.strip()]
        return scalar(text)
    name = "value" if like is None else type(like).__name__
    convert.__name__ = f"comma-separated {name} list" if isinstance(default, list) else name
    return convert


def _metavar(default):
    like = default[0] if isinstance(default, list) and default else default
    name = {bool: "BOOL", int: "N", float: "X", str: "TEXT"}.get(type(like), "VALUE")
    return f"{name},..." if isinstance(default, list) else name


class _Formatter(argparse.RawDescriptionHelpFormatter):  # a script's docstring keeps its layout
    def _split_lines(self, text, width):  # and --option-names are not broken at their dashes
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def parser(description=None):
    """An argparse parser with --quick, --fresh and every constant as --lower-dashed-name, grouped by this
    file's section headings. A script adds its own arguments to it and passes it to load()."""
    check_file()
    # The usage names not every option; abbreviations are off, so --num-epoch never means --num-epochs.
    p = argparse.ArgumentParser(description=description, formatter_class=_Formatter,
                                usage="%(prog)s [-h] [--quick] [--fresh] [--option VALUE ...]",
                                allow_abbrev=False,
                                epilog="Lists are comma-separated; booleans take true or false (in any "
                                       "case); none is\nNone. Explicit options win over --quick.")
    p.add_argument("--quick", action="store_true",
                   help="the laptop-CPU preset: a smaller input, a shorter schedule (the --quick values "
                        "below)")
    p.add_argument("--fresh", dest="FRESH", action="store_true", default=argparse.SUPPRESS,
                   help="archive the earlier results and checkpoints and start again")
    values = defaults()
    internal = ("SAMPLE_DATA_ROOT", "FRESH", "NOT_RESULTS")  # in the namespace, not options (--fresh is)

    def option(match):
        """The comments are written for Python: constants and values as typed on the command line."""
        name = match[0]
        if name in ("True", "False", "None"):
            return name.lower()
        return f"--{_dashed(name)}" if name in values and name not in internal else name
    for heading, constants in _sections():
        group = p.add_argument_group(heading)
        for name, text in constants:
            if name in internal:
                continue
            default = values[name]
            text = re.sub(r"\b([A-Z][A-Z0-9_]+|True|False|None)\b", option, text)
            quick = f"; --quick {_show(QUICK[name])}" if name in QUICK else ""
            text += f" (default {_show(default)}{quick})"
            group.add_argument(f"--{_dashed(name)}", dest=name,
                               type=_type(default, config_types.KIND.get(name)),
                               default=argparse.SUPPRESS, metavar=_metavar(default),
                               help=text.replace("%", "%%"))
    return p


def load(argv=(), p=None):
    """Defaults, then the --quick preset, then explicit options; validated. Returns every constant in a
    SimpleNamespace. p: a parser() to which a script added its own arguments; they come along in the
    namespace under their lower-case dest names. An unknown option or a bad value exits through argparse
    (usage and message on stderr, SystemExit(2)); a bad configuration raises ConfigError."""
    args = vars((p or parser()).parse_args(list(argv)))
    values = defaults()
    if args.pop("quick"):
        values.update(QUICK)
    values.update(args)  # only the options given: the others are SUPPRESSed
    cfg = SimpleNamespace(**values)
    validate(cfg)
    if cfg.CHECKPOINT_DIR is None:  # inside the results folder (not a result: it may move with it)
        cfg.CHECKPOINT_DIR = os.path.join(cfg.RESULTS_DIR, "checkpoints")
    return cfg


def differences(old, new):
    """'NAME: old -> new' for every constant that changes results."""
    keys = (set(old) | set(new)) - set(NOT_RESULTS)
    return [f"{_dashed(k)}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(keys)
            if old.get(k) != new.get(k)]


def device_problems(name):
    """--device: auto, cpu, cuda or cuda:N, and a GPU only where there is one (checked with the options,
    not at the first tensor moved)."""
    import torch  # here: config.py is imported by scripts that have not loaded torch yet
    if name == "auto":
        return []
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as e:
        return [f"device {name!r} is not a device ({e}); use auto, cpu, cuda or cuda:N"]
    if device.type == "cpu":
        return []
    if device.type != "cuda":
        return [f"device {name!r} is not supported; use auto, cpu, cuda or cuda:N"]
    if not torch.cuda.is_available():
        return [f"device {name!r} asks for a GPU but CUDA is not available here; use --device cpu or auto"]
    if device.index is not None and device.index >= torch.cuda.device_count():
        return [f"device {name!r}: this machine has {torch.cuda.device_count()} GPU(s); use cuda:0 .. "
                f"cuda:{torch.cuda.device_count() - 1}"]
    return []


def _size_problems(cfg):
    """Ratios, counts and the share of the GPU the clips may take."""
    problems = []
    for name in ("UNSTRUCTURED_PRUNING_RATIOS", "STRUCTURED_PRUNING_RATIOS"):
        for r in getattr(cfg, name):
            if not 0 < r < 1:
                problems.append(f"{_dashed(name)}: ratio {r} is outside (0, 1)")
    for name in ("NUM_FRAMES", "IMAGE_SIZE", "BATCH_SIZE", "NUM_EPOCHS", "LATENCY_TIMED_RUNS",
                 "LATENCY_ROUNDS"):
        if getattr(cfg, name) < 1:
            problems.append(f"{_dashed(name)} must be at least 1, got {getattr(cfg, name)}")
    if cfg.FINE_TUNE_EPOCHS < 0:
        problems.append("fine-tune-epochs must not be negative")
    if cfg.CLIPS_ON_DEVICE != "auto":
        try:
            share = float(cfg.CLIPS_ON_DEVICE)
        except ValueError:
            share = None
        if share is None or not 0 <= share <= 1:
            problems.append(f"clips-on-device takes auto or a share of the GPU's free memory from 0 to 1, "
                            f"got {cfg.CLIPS_ON_DEVICE!r}")
        else:
            cfg.CLIPS_ON_DEVICE = share
    return problems


def _choice_problems(cfg):
    """Rates, schedules, the claims rule and INT8's settings."""
    problems = []
    if cfg.LEARNING_RATE <= 0 or cfg.FINE_TUNE_LEARNING_RATE <= 0:
        problems.append("learning rates must be positive")
    if cfg.PRUNING_SCOPE not in ("backbone", "all"):
        problems.append(f"pruning-scope must be backbone or all, got {cfg.PRUNING_SCOPE!r}")
    if cfg.PRUNING_SCHEDULE not in ("oneshot", "gradual"):
        problems.append(f"pruning-schedule must be oneshot or gradual, got {cfg.PRUNING_SCHEDULE!r}")
    if not 0 <= cfg.PRUNING_RAMP_END < 1:
        problems.append(f"pruning-ramp-end is a fraction of fine-tuning from 0 to below 1, "
                        f"got {cfg.PRUNING_RAMP_END}")
    if not 0 < cfg.NONINFERIORITY_FRACTION < 1 or not 0 < cfg.ALPHA < 1:
        problems.append(f"noninferiority-fraction and alpha are fractions in (0, 1), got "
                        f"{cfg.NONINFERIORITY_FRACTION} and {cfg.ALPHA}")
    if cfg.PRUNING_STEPS < 1 or cfg.BOOTSTRAP_SAMPLES < 100:
        problems.append("pruning-steps must be at least 1 and bootstrap-samples at least 100")
    if any(not 0 < r < 1 for r in cfg.SENSITIVITY_RATIOS):
        problems.append(f"sensitivity-ratios must lie in (0, 1), got {cfg.SENSITIVITY_RATIOS}")
    methods = ("minmax", "entropy", "percentile")
    if cfg.INT8_CALIBRATION_VIDEOS < 1 or cfg.INT8_CALIBRATION_METHOD not in methods:
        problems.append("int8-calibration-videos must be at least 1 and int8-calibration-method one of "
                        f"minmax, entropy, percentile (got {cfg.INT8_CALIBRATION_VIDEOS}, "
                        f"{cfg.INT8_CALIBRATION_METHOD!r})")
    if set(cfg.INT8_KEEP_FP32) - {"head", "first_conv"}:
        problems.append(f"int8-keep-fp32 takes head and/or first_conv, got {cfg.INT8_KEEP_FP32}")
    if cfg.INT8 and cfg.ONNX_EXPORT is False:
        problems.append("int8 quantizes the ONNX export: it needs onnx-export on")
    if cfg.LR_SCHEDULE not in ("constant", "cosine"):
        problems.append(f"lr-schedule must be constant or cosine, got {cfg.LR_SCHEDULE!r}")
    return problems + _recovery_problems(cfg)


def _recovery_problems(cfg):
    """Channel allocations, FLOP budgets and distillation."""
    problems = []
    if set(cfg.CHANNEL_ALLOCATIONS) - {"global", "sensitivity"}:
        problems.append(f"channel-allocations takes global and sensitivity, got {cfg.CHANNEL_ALLOCATIONS}")
    if (cfg.CHANNEL_ALLOCATIONS or cfg.TARGET_FLOPS_SPEEDUPS) and not cfg.PHYSICAL_STRUCTURED_PRUNING:
        problems.append("channel-allocations and target-flops-speedups prune removed channels: they need "
                        "physical-structured-pruning true")
    if cfg.CHANNEL_ALLOCATIONS and cfg.PRUNING_SCHEDULE != "oneshot":
        problems.append("channel-allocations are matched in FLOPs in one step: use pruning-schedule oneshot")
    if any(s <= 1 for s in cfg.TARGET_FLOPS_SPEEDUPS):
        problems.append(f"target-flops-speedups are how many times fewer FLOPs, above 1, got "
                        f"{_show(cfg.TARGET_FLOPS_SPEEDUPS)}")
    import methods  # the method table (no torch)
    known = [m for m in methods.METHODS if m != "baseline" and not m.endswith("_kd")]
    if set(cfg.DISTILLED_METHODS) - set(known):
        problems.append(f"distilled-methods takes methods of the run ({', '.join(known)}), got "
                        f"{cfg.DISTILLED_METHODS}")
    if not 0 <= cfg.DISTILLATION_WEIGHT <= 1:
        problems.append(f"distillation-weight is a share of the loss from 0 to 1, got "
                        f"{cfg.DISTILLATION_WEIGHT}")
    return problems


def _seed_and_folder_problems(cfg):
    """Seeds (distinct, not negative), ratios listed once, folders given."""
    problems = []
    if not cfg.SEEDS or len(set(cfg.SEEDS)) != len(cfg.SEEDS):
        problems.append(f"seeds must be distinct and at least one, got {cfg.SEEDS}")
    for name in ("UNSTRUCTURED_PRUNING_RATIOS", "STRUCTURED_PRUNING_RATIOS", "SENSITIVITY_RATIOS"):
        ratios = getattr(cfg, name)  # one model trained twice would be reported as n = 2 with std 0
        if len(set(ratios)) != len(ratios):
            problems.append(f"{_dashed(name)} lists a ratio twice ({_show(ratios)}); list each once")
    if any(s < 0 for s in [cfg.SEED, *cfg.SEEDS]):  # numpy's generators take no negative seed
        problems.append(f"seed and seeds must not be negative, got --seed {cfg.SEED}, "
                        f"--seeds {_show(cfg.SEEDS)}")
    for name in ("DATA_ROOT", "CACHE_DIR", "RESULTS_DIR", "CHECKPOINT_DIR", "FIGURES_DIR"):
        value = getattr(cfg, name)
        if value is not None and not str(value).strip():
            problems.append(f"{_dashed(name)} is empty; give a folder")
    return problems


def validate(cfg):
    problems = (_size_problems(cfg) + _choice_problems(cfg) + _seed_and_folder_problems(cfg)
                + device_problems(cfg.DEVICE))
    if problems:
        raise ConfigError("bad configuration: " + "; ".join(problems))
