"""All constants of the experiment. Defaults reproduce the reference configuration.

Override any constant from the command line by its lower-case, dashed name:
    python main.py --num-epochs 3 --data-root /data/echonet --structured-pruning-ratios 0.5
Lists are comma-separated; booleans take true/false; None is written `none`.
`--quick` applies the QUICK preset (a laptop CPU run); explicit overrides win over it.
`--fresh` archives earlier results and checkpoints and starts again.
"""
import sys
from types import SimpleNamespace

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
NUM_VAL_VIDEOS = 60
NUM_TEST_VIDEOS = 100
CACHE_FRAMES = True       # decode each video once into CACHE_DIR (uint8 clips), not every epoch
CACHE_DIR = "cache"
SKIP_BAD_VIDEOS = True    # an undecodable, empty or 1-frame video is left out (counted, named); False: stop
NUM_WORKERS = None        # DataLoader worker processes; None: up to 8 on CUDA, 0 (main process) on CPU

# --- model and training -----------------------------------------------------
PRETRAINED = True         # ImageNet weights through torchvision; falls back to random init offline
PRETRAINED_PATH = None    # a local ResNet-18 state_dict file, used instead of the download
BATCH_SIZE = 16
NUM_EPOCHS = 50
LEARNING_RATE = 1e-4
LR_SCHEDULE = "constant"  # or "cosine": decay to zero over the epochs (baseline and fine-tuning)
SEED = 42                 # the data: sample generation and a split without a Split column
SEEDS = [42]              # training: every model is trained and pruned once per seed
DEVICE = "auto"           # auto: cuda when available, else cpu
# GPU speed, used on CUDA only (recorded in the results): automatic mixed precision (bf16 where the
# GPU supports it, else fp16 with a gradient scaler; latency is measured in the same precision) and
# cuDNN autotuning. CHANNELS_LAST (below) applies to training on every device as well as to latency.
AMP = True
CUDNN_BENCHMARK = True

# --- pruning ----------------------------------------------------------------
# The layers every method prunes. "backbone": every Conv2d, the regression head left dense (the
# field's practice: global magnitude pruning otherwise removes most of the head's 512 weights and
# the EF output dies). "all": the reference's unstructured scope, every Conv2d and Linear.
PRUNING_SCOPE = "backbone"
# "oneshot": prune to the ratio, then fine-tune (the reference). "gradual": Zhu & Gupta (2017),
# sparsity ratio * (1 - (1 - k/n)^3) at the start of fine-tuning epochs k = 1..n, n = PRUNING_STEPS
# (at most FINE_TUNE_EPOCHS), the same total fine-tuning epochs; Torch-Pruning's iterative steps
# for structured_physical.
PRUNING_SCHEDULE = "oneshot"
PRUNING_STEPS = 3
UNSTRUCTURED_PRUNING_RATIOS = [0.5, 0.8, 0.9]
STRUCTURED_PRUNING_RATIOS = [0.3, 0.5, 0.7]
PHYSICAL_STRUCTURED_PRUNING = True  # also remove the channels with Torch-Pruning (structured_physical)
# Channels kept by structured_physical are rounded to a multiple of this: CPU kernels (oneDNN, ONNX
# Runtime's MLAS) run odd channel counts far slower. 1 keeps the exact ratio.
PHYSICAL_ROUND_TO = 8
FINE_TUNE_EPOCHS = 2
FINE_TUNE_LEARNING_RATE = 1e-5
# True reproduces the reference's flaw: masks removed before fine-tuning, so pruned weights regrow.
REMOVE_MASKS_BEFORE_FINE_TUNE = False
RANDOM_PRUNING_CONTROL = False  # add unstructured_random and structured_random at the same ratios

# Layer sensitivity: after the baseline, prune each layer alone (L1 weights, L2 channels) at these
# ratios and measure validation MAE without fine-tuning (results/sensitivity.csv, a heatmap).
SENSITIVITY = True
SENSITIVITY_RATIOS = [0.3, 0.5, 0.7, 0.9]

# --- measurement ------------------------------------------------------------
BOOTSTRAP_SAMPLES = 2000  # resamples of the test videos for the 95% intervals of MAE and its change
LATENCY_WARMUP_RUNS = 5
LATENCY_TIMED_RUNS = 20
CHANNELS_LAST = True      # memory format for training and latency, the same for every model (faster on CPU too)
# Time PyTorch through torch.compile with frozen weights (BatchNorm folded, activations fused) rather
# than eagerly. Eager PyTorch runs each BatchNorm and ReLU as its own pass, which costs pruned models
# relatively more, so its speedups come out below ONNX Runtime's (README, "ONNX Runtime").
LATENCY_COMPILE = False
ONNX_EXPORT = None        # export every model to ONNX and time it in ONNX Runtime; None: when installed

# --- output -----------------------------------------------------------------
RESULTS_DIR = "results"
CHECKPOINT_DIR = "checkpoints"
FIGURES_DIR = "figures"
DRAW_FIGURES = True       # draw figures/ at the end of main.py
# A run started again with the same configuration continues: finished models are reused and a
# model cut off mid-training continues from its last epoch. --fresh archives the old results first.
FRESH = False
# Constants that do not change any number: a run may continue with them changed.
NOT_RESULTS = ["RESULTS_DIR", "CHECKPOINT_DIR", "FIGURES_DIR", "DRAW_FIGURES", "CACHE_DIR", "CACHE_FRAMES",
               "NUM_WORKERS", "FRESH", "NOT_RESULTS"]

# A laptop-CPU preset: a smaller input and a shorter schedule; the whole pipeline in minutes. Chosen on
# the validation split (README, "A fair comparison"): 16 frames of 32x32 beat 8 frames of 64x64 at
# the same cost (frames carry the EF signal), fine-tuning at 1e-3 beat 3e-4 over the methods, 3
# fine-tuning epochs did as well as 4, and one-shot beat gradual at this budget.
QUICK = dict(
    NUM_FRAMES=16,
    IMAGE_SIZE=32,
    BATCH_SIZE=8,
    NUM_EPOCHS=20,
    LEARNING_RATE=1e-3,
    LR_SCHEDULE="cosine",
    FINE_TUNE_EPOCHS=3,
    FINE_TUNE_LEARNING_RATE=1e-3,
    SENSITIVITY_RATIOS=[0.5, 0.9],
    LATENCY_TIMED_RUNS=20,
)


class ConfigError(ValueError):
    pass


def defaults():
    """Every upper-case constant of this module, by name."""
    return {k: v for k, v in vars(sys.modules[__name__]).items() if k.isupper() and k != "QUICK"}


def _parse_value(name, text, default):
    def scalar(t, like):
        t = t.strip()
        if t.lower() == "none":
            return None
        if isinstance(like, bool):
            if t.lower() in ("true", "1", "yes", "on"):
                return True
            if t.lower() in ("false", "0", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if isinstance(like, int):
            return int(t)
        if isinstance(like, float):
            return float(t)
        if like is None:  # a constant whose default is None: read the most specific type that fits
            for kind in (int, float):
                try:
                    return kind(t)
                except ValueError:
                    pass
            return {"true": True, "false": False}.get(t.lower(), t)
        return t
    try:
        if isinstance(default, list):
            like = default[0] if default else 0.0
            return [scalar(t, like) for t in text.split(",") if t.strip()]
        return scalar(text, default)
    except ValueError as e:
        raise ConfigError(f"--{_dashed(name)} {text!r}: {e}") from None


def _dashed(name):
    return name.lower().replace("_", "-")


def load(argv=()):
    """Defaults, then the --quick preset, then explicit `--name value` overrides."""
    values = defaults()
    argv = list(argv)
    if "--quick" in argv:
        argv.remove("--quick")
        values.update(QUICK)
    if "--fresh" in argv:
        argv.remove("--fresh")
        values["FRESH"] = True
    by_flag = {f"--{_dashed(k)}": k for k in values}
    overrides = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        flag, _, inline = arg.partition("=")
        if flag not in by_flag:
            known = ", ".join(sorted(by_flag))
            raise ConfigError(f"unknown option {flag!r}. Known options: --quick, {known}")
        name = by_flag[flag]
        if inline:
            text = inline
        elif i + 1 < len(argv):
            i += 1
            text = argv[i]
        else:
            raise ConfigError(f"{flag} needs a value")
        overrides[name] = _parse_value(name, text, defaults()[name])
        i += 1
    values.update(overrides)
    cfg = SimpleNamespace(**values)
    validate(cfg)
    return cfg


def differences(old, new):
    """'NAME: old -> new' for every constant that changes results."""
    keys = (set(old) | set(new)) - set(NOT_RESULTS)
    return [f"{_dashed(k)}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(keys) if old.get(k) != new.get(k)]


def validate(cfg):
    problems = []
    for name in ("UNSTRUCTURED_PRUNING_RATIOS", "STRUCTURED_PRUNING_RATIOS"):
        for r in getattr(cfg, name):
            if not 0 < r < 1:
                problems.append(f"{_dashed(name)}: ratio {r} is outside (0, 1)")
    for name in ("NUM_FRAMES", "IMAGE_SIZE", "BATCH_SIZE", "NUM_EPOCHS", "LATENCY_TIMED_RUNS"):
        if getattr(cfg, name) < 1:
            problems.append(f"{_dashed(name)} must be at least 1, got {getattr(cfg, name)}")
    if cfg.FINE_TUNE_EPOCHS < 0 or (cfg.NUM_WORKERS or 0) < 0:
        problems.append("fine-tune-epochs and num-workers must not be negative")
    if cfg.LEARNING_RATE <= 0 or cfg.FINE_TUNE_LEARNING_RATE <= 0:
        problems.append("learning rates must be positive")
    if cfg.PRUNING_SCOPE not in ("backbone", "all"):
        problems.append(f"pruning-scope must be backbone or all, got {cfg.PRUNING_SCOPE!r}")
    if cfg.PRUNING_SCHEDULE not in ("oneshot", "gradual"):
        problems.append(f"pruning-schedule must be oneshot or gradual, got {cfg.PRUNING_SCHEDULE!r}")
    if cfg.PRUNING_STEPS < 1 or cfg.BOOTSTRAP_SAMPLES < 100:
        problems.append("pruning-steps must be at least 1 and bootstrap-samples at least 100")
    if any(not 0 < r < 1 for r in cfg.SENSITIVITY_RATIOS):
        problems.append(f"sensitivity-ratios must lie in (0, 1), got {cfg.SENSITIVITY_RATIOS}")
    if cfg.LR_SCHEDULE not in ("constant", "cosine"):
        problems.append(f"lr-schedule must be constant or cosine, got {cfg.LR_SCHEDULE!r}")
    if not cfg.SEEDS or len(set(cfg.SEEDS)) != len(cfg.SEEDS):
        problems.append(f"seeds must be distinct and at least one, got {cfg.SEEDS}")
    if problems:
        raise ConfigError("bad configuration: " + "; ".join(problems))
