"""Block diagram of the EF model: frames -> ResNet-18 stem and four stages (with channel counts) ->
mean over frames -> linear -> EF (R(2+1)D-18's: the clip -> its stem and four stages -> pooled over space
and time -> linear -> EF). Given a physically pruned checkpoint, its reduced channel counts are drawn
beside the baseline's.

    python visualize_model_architecture.py                                    # the dense model
    python visualize_model_architecture.py checkpoints/structured_physical_0.5.pt [--figures-dir figures]
"""
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

import cli  # noqa: E402 (first: a broken config.py is one message, exit 2)
from cli import exits  # noqa: E402
from model import CONVS, VIDEO, EFRegressionModel, load_checkpoint  # noqa: E402


def out_channels(module):
    """The output channels of a block's last convolution (R(2+1)D's: the temporal one)."""
    return [m for m in module.modules() if isinstance(m, CONVS)][-1].out_channels


def stage_channels(model):
    """[(block name, channel counts)] of the stem and each residual stage; inner convs listed too."""
    net = model.backbone
    video = model.arch == VIDEO
    stem = ("stem\n(2+1)D\nconv" if video else "stem\nconv 7×7/2\n+ max-pool",
            [out_channels(net.stem if video else net.conv1)])
    blocks = [stem]
    for i in range(1, 5):
        layer = getattr(net, f"layer{i}")
        inner = [out_channels(block.conv1) for block in layer]
        blocks.append((f"layer{i}\n2 residual\nblocks", [out_channels(layer[-1].conv2)] + inner))
    return blocks


def describe(channels):
    out, *inner = channels
    text = f"{out} ch"
    if inner and any(c != out for c in inner):
        text += f"\n(inner {'/'.join(map(str, inner))})"
    return text


def draw_row(ax, y, model, title, num_frames, image_size):
    boxes = [(f"video\n{num_frames} frames\n3×{image_size}×{image_size}", "", "white")]
    boxes += [(name, describe(ch), "#dddddd") for name, ch in stage_channels(model)]
    pool = "avg pool\nover space\nand time" if model.arch == VIDEO else "avg pool,\nmean over\nframes"
    boxes += [(pool, f"{model.head.in_features}", "white"),
              ("linear", f"{model.head.in_features}→1", "#dddddd"), ("EF (%)", "", "white")]
    ax.text(-0.2, y + 0.5, title, fontsize=8, weight="bold", va="bottom")
    for i, (name, detail, colour) in enumerate(boxes):
        x = i * 1.25
        ax.add_patch(FancyBboxPatch((x, y - 0.55), 1.0, 1.0, boxstyle="round,pad=0.02", facecolor=colour,
                                    edgecolor="black", linewidth=0.8))
        ax.text(x + 0.5, y + 0.12, name, ha="center", va="center", fontsize=5.5, linespacing=1.1)
        ax.text(x + 0.5, y - 0.3, detail, ha="center", va="center", fontsize=6, weight="bold")
        if i:
            ax.annotate("", xy=(x, y), xytext=(x - 0.25, y), arrowprops=dict(arrowstyle="->", linewidth=0.8))
    return len(boxes)


def draw(models, figures_dir, name, num_frames, image_size):
    fig, ax = plt.subplots(figsize=(7.0, 0.4 + 1.1 * len(models)))
    width = 0
    for row, (title, model) in enumerate(models):
        width = draw_row(ax, -1.6 * row, model, title, num_frames, image_size)
    ax.set(xlim=(-0.3, width * 1.25), ylim=(-1.6 * (len(models) - 1) - 0.8, 0.9))
    ax.axis("off")
    os.makedirs(figures_dir, exist_ok=True)
    paths = [os.path.join(figures_dir, f"{name}.{ext}") for ext in ("png", "pdf")]
    for path in paths:
        fig.savefig(path, bbox_inches="tight", dpi=200)
    plt.close(fig)
    return paths


def draw_checkpoints(checkpoints, figures_dir, name="architecture", num_frames=32, image_size=112,
                     arch="resnet18_frames"):
    """The dense network (the checkpoints') in the first row, then one row per checkpoint."""
    models = []
    for path in checkpoints:
        try:
            model, info = load_checkpoint(path)
        except OSError:  # a path that is not there or not a file: the error names it
            raise
        except Exception as e:  # noqa: BLE001 (torch.load raises EOFError, UnpicklingError, KeyError...)
            raise cli.ConfigError(f"{path} is not a checkpoint main.py saved ({type(e).__name__}: "
                                  f"{str(e).splitlines()[0] if str(e) else 'empty or cut off'}); "
                                  f"give the .pt files of <results-dir>/checkpoints/seed<N>/") from None
        num_frames, image_size = info.get("num_frames", num_frames), info.get("image_size", image_size)
        title = f"{info.get('method', 'model')} {info.get('ratio', '')} ({os.path.basename(path)})"
        models.append((title, model))
    arch = models[0][1].arch if models else arch  # no checkpoint: --model's network
    dense = ("baseline R(2+1)D-18 (dense)" if arch == VIDEO else "baseline ResNet-18 (dense)",
             EFRegressionModel(arch=arch))
    return draw([dense] + models, figures_dir, name, num_frames, image_size)


def main(argv):
    p = cli.parser(__doc__)
    p.add_argument("checkpoints", nargs="*", metavar="CHECKPOINT.pt",
                   help="checkpoints drawn below the dense model")
    p.usage += " [CHECKPOINT.pt ...]"
    cfg = cli.load(argv, p)
    checkpoints = cfg.checkpoints
    name = "architecture" if not checkpoints else "architecture_" + os.path.basename(checkpoints[0])[:-3]
    try:
        drawn = draw_checkpoints(checkpoints, cfg.FIGURES_DIR, name, cfg.NUM_FRAMES, cfg.IMAGE_SIZE,
                                 arch=cfg.MODEL)
    except (cli.ConfigError, OSError):
        raise
    except (RuntimeError, KeyError, ValueError) as e:  # a file torch.load reads that is not a model's
        raise exits.Unreadable(f"a checkpoint cannot be read ({type(e).__name__}: "
                               f"{str(e).splitlines()[0] if str(e) else ''}); give checkpoints that main.py "
                               f"saved") from None
    for path in drawn:
        print(path)


if __name__ == "__main__":
    exits.run(main, sys.argv[1:], again="run the same command again to draw the figure")
