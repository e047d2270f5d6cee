"""All constants of the experiment. Defaults reproduce the reference configuration.

Every constant but the internal SAMPLE_DATA_ROOT, FRESH and NOT_RESULTS is a command-line option of
every script, by its lower-case, dashed name (argparse; `python main.py --help` lists them by section,
with this file's comments as help, their defaults and their --quick values):
    python main.py --num-epochs 3 --data-root /data/echonet --structured-pruning-ratios 0.5
Lists are comma-separated; booleans take true or false (in any case); None is written `none`.
config.py's values are checked against their kinds (cli/kinds.py) before any option is read.
`--quick` applies the QUICK preset (a laptop CPU run); explicit options win over it.
`--fresh` archives earlier results and checkpoints and starts again.
A script with options of its own adds them to `parser(__doc__)` and passes that to `load`.
"""
# --- data -------------------------------------------------------------------
SAMPLE_DATA_ROOT = "data/sample_echonet"  # built-in synthetic data, generated on first use
DATA_ROOT = SAMPLE_DATA_ROOT              # point at an EchoNet-Dynamic folder for the real run
NUM_FRAMES = 32                           # frames per video, evenly spaced over the whole video
# 0: NUM_FRAMES evenly spaced over the whole video (the design card's). A period p: NUM_FRAMES frames p
# apart, from the middle of the video (EchoNet-Dynamic's EF model samples 32 frames at period 2); a video
# too short for the span repeats its last frame.
FRAME_PERIOD = 0
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
# "resnet18_frames": the design card's ResNet-18 on every frame, the frames' features averaged.
# "r2plus1d_18": EchoNet-Dynamic's EF network, torchvision's R(2+1)D-18 over the clip (factorised 3D
# convolutions; Kinetics-400 weights). Both end in the same head (EF in units of the training EF spread).
MODEL = "resnet18_frames"
PRETRAINED = True         # ImageNet (R(2+1)D: Kinetics-400) weights through torchvision; offline: random init
PRETRAINED_PATH = None    # a local state_dict of MODEL's backbone (resnet18, r2plus1d_18), used instead
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
# "plain": FINE_TUNE_LEARNING_RATE on LR_SCHEDULE over the fine-tuning epochs. "rewind": learning-rate
# rewinding (Renda et al. 2020), the baseline's own rates of its last FINE_TUNE_EPOCHS epochs replayed
# (LEARNING_RATE on LR_SCHEDULE). Every method alike, the dense control too.
FINE_TUNE_SCHEDULE = "plain"
# These methods (the dense control too) are also fine-tuned by learning-rate rewinding, as <method>_rw beside
# the same method fine-tuned by FINE_TUNE_SCHEDULE, so that one run compares the two retrainings.
REWOUND_METHODS = []
# True reproduces the reference's flaw: masks removed before fine-tuning, so pruned weights regrow.
REMOVE_MASKS_BEFORE_FINE_TUNE = False
RANDOM_PRUNING_CONTROL = False  # add unstructured_random and structured_random at the same ratios
# With PHYSICAL_STRUCTURED_PRUNING: structured_physical_random removes random coupled channel groups, the
# same counts (ShrinkBench's control, for removal); scratch trains structured_physical's architecture from
# a random initialisation for NUM_EPOCHS + FINE_TUNE_EPOCHS epochs (Liu et al. 2019's Scratch-E).
RANDOM_REMOVAL_CONTROL = True
SCRATCH_CONTROL = True
# Also scratch_b (Liu et al. 2019's Scratch-B): the same small net trained for the dense baseline's training
# compute, NUM_EPOCHS times the dense model's FLOPs over its own, in epochs, at most SCRATCH_B_MAX_FACTOR
# times Scratch-E's epochs (Liu et al. double them): does the small net lose only for want of compute?
SCRATCH_B_CONTROL = False
SCRATCH_B_MAX_FACTOR = 2.0
# After every pruning step (one-shot, gradual, physical; each layer of the sensitivity), before the
# model is evaluated or fine-tuned, every BatchNorm's running statistics are re-estimated on this
# many training batches, no weight changed (batchnorm.py): otherwise they still describe the dense
# model, and "right after pruning" and the sensitivity measure the stale statistics
# (docs/methodology.md, "A fair comparison"). 0 turns it off.
BN_RECALIBRATION_BATCHES = 20
# The masked methods also pruned, one-shot, to structured_physical's effective FLOPs at each of its ratios
# and budgets, as <method>_flops (their own sparsity found by a search, allocation.py): removal against
# unstructured and per-layer masks at equal FLOPs, the study's primary comparisons (methods.PRIMARY).
EQUAL_FLOPS_METHODS = ["unstructured", "structured"]
# Coupled removal also by these channel importance criteria (criteria.py), as structured_physical_<name>
# at the same ratios and budgets, each compared with group L2: "taylor" (first order), "hessian" (second
# order, OBD), "bnscale" (network slimming's BatchNorm scale), "fpgm" (geometric median), "lamp"
# (layer-adaptive magnitude; also unstructured_lamp beside global L1). One-shot or gradual.
IMPORTANCE_CRITERIA = []
CRITERION_BATCHES = 8     # training batches whose loss gradients the Taylor and Hessian criteria read
# Recovering accuracy at high compression (docs/methodology.md, "Channel allocation"). Channel allocations of
# removed channels besides the uniform one (structured_physical), each pruned to the uniform model's
# effective FLOPs at the same ratio (allocation.py): "global" (Torch-Pruning's global ranking, the head
# protected), "sensitivity" (each group's share from the sensitivity of each coupled group, removed alone
# at SENSITIVITY_RATIOS on the validation split, measured after the baseline). One-shot.
CHANNEL_ALLOCATIONS = []
# FLOP budgets: each adds the removed-channel models (structured_physical, its random control, the
# allocations, the small net) at the uniform ratio that needs this many times fewer FLOPs than the
# baseline, within flop_budgets.BUDGET_TOLERANCE (the channel rounding moves FLOPs in steps).
TARGET_FLOPS_SPEEDUPS = []
# These methods ("scratch" and "dense_control" too) are also fine-tuned (trained) with distillation from
# the dense baseline, as <method>_kd: the loss (1 - w) x MSE to the label + w x MSE to the baseline's
# prediction for the same video (Hinton et al. 2015, for regression), w = DISTILLATION_WEIGHT, chosen on
# the validation split (docs/results.md, "The distillation weight"). The baseline's predictions are
# computed once per seed.
DISTILLED_METHODS = []
DISTILLATION_WEIGHT = 0.25

# Layer sensitivity: after the baseline, prune each layer alone (L1 weights, L2 channels) at these
# ratios and measure validation MAE without fine-tuning, against the dense model with its BatchNorm
# recalibrated alike (results/sensitivity.csv, a heatmap).
SENSITIVITY = True
SENSITIVITY_RATIOS = [0.3, 0.5, 0.7, 0.9]  # the ratios each layer is pruned to, alone

# --- measurement ------------------------------------------------------------
BOOTSTRAP_SAMPLES = 2000  # bootstrap replicates for a model's MAE interval and the per-seed ΔMAE cells
# The claims of summary.md (claims.py): "better" or "worse" only where the t test of the MAE change (its
# standard error from the seeds x videos variance components) rejects 0 at ALPHA after Holm's adjustment
# within its family (the primary questions of methods.py, or every other comparison); non-inferiority or
# equivalence at ALPHA / 2 per side, Holm-adjusted likewise.
ALPHA = 0.05
# The margin of non-inferiority and equivalence, as this share of the baseline's mean test MAE over the
# seeds compared: 0.1, a tenth of the error the dense model makes, the one margin of every run (the
# README's tables judge committed runs at it), not set by what the test split can resolve; summary.md
# and the README say what the run resolves (power.py).
NONINFERIORITY_FRACTION = 0.1
LATENCY_WARMUP_RUNS = 5   # untimed runs before the latency is timed
LATENCY_TIMED_RUNS = 20   # timed runs of one video per round; their median and p90 are the round's reading
# Every model's latency is timed once all models are trained, in this many rounds: each round times
# every model once (warm-up, then LATENCY_TIMED_RUNS runs), in an order shuffled from round to round,
# since load on a machine drifts over a run (latency.py). A model's latency is the median of its round
# medians, its spread their lowest and highest. A model is ranked against its reference round by round:
# faster or slower only beyond a 5% speed-up (SPEED_THRESHOLD), Holm-adjusted over the run's models
# (speed.py).
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
# The methods whose models are quantized (with INT8 on; a distilled model by its method's name); [] every
# model. The quick preset quantizes the dense models, unstructured and coupled removal: INT8 beside both
# kinds of pruning, within the quick run's time (INT8 calibration and test scoring cost seconds a model).
INT8_METHODS = []

# --- output -----------------------------------------------------------------
# Folders are relative to the working directory (where python main.py is started), not to this file.
RESULTS_DIR = "results"   # results.json, the CSV tables and summary.md
# Model checkpoints and training states, one folder per seed. None: RESULTS_DIR/checkpoints, inside the
# results folder and under its lock, so a checkpoint folder belongs to one run and moves with it.
# Another folder is locked too and stamped with the run's identity (owner.json).
CHECKPOINT_DIR = None
FIGURES_DIR = "figures"   # figures as PNG and PDF
DRAW_FIGURES = True       # draw figures/ at the end of main.py
VERBOSE = False           # print all of summary.md at the end of a run, not only the primary answers
# A run started again with the same configuration continues: finished models are reused and a
# model cut off mid-training continues from its last epoch. --fresh archives the old results first.
FRESH = False
# Constants that do not change any number: a run may continue with them changed. The data's folder is
# one: the data is identified by its fingerprint (bookkeeping/run_identity.py), however it is spelled.
NOT_RESULTS = ["DATA_ROOT", "RESULTS_DIR", "CHECKPOINT_DIR", "FIGURES_DIR", "DRAW_FIGURES", "CACHE_DIR",
               "CACHE_FRAMES", "CLIPS_ON_DEVICE", "FRESH", "NOT_RESULTS", "VERBOSE"]

# A laptop-CPU preset: a smaller input and a shorter schedule; the whole pipeline in minutes. Chosen on
# the validation split (docs/methodology.md, "A fair comparison"): 16 frames of 32x32 beat 8 frames of
# 64x64 at the same cost (frames carry the EF signal), 3 fine-tuning epochs did as well as 4, and
# fine-tuning at 3e-4 beat 1e-4 and 1e-3 (mean over every model and two seeds), BatchNorm recalibrated.
# BatchNorm recalibrated on 4 batches (32 videos) recovered as much as on all 13, and the sensitivity's
# 80 recalibrations cost a third as much. 8 latency rounds of 10 runs (the timing of 4 rounds of 20): with
# one seed the paired speed rule has a degree of freedom per round less one, and Holm over every model of
# the run at 3 of them ranked no 3.8x ONNX Runtime speed-up (speed.py); 2 warm-up runs a round, as every
# model has run in the rounds before. INT8 for some methods (INT8_METHODS): the quick run keeps its time.
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
    LATENCY_WARMUP_RUNS=2,
    LATENCY_TIMED_RUNS=10,
    LATENCY_ROUNDS=8,
    INT8_METHODS=["baseline", "dense_control", "unstructured", "structured_physical"],
)

