"""Figures from results/results.json, as PNG and PDF, sized for a paper column and readable in
black-and-white print (each method has its own marker and line style, not only a colour).

    python visualize_results.py [--results-dir results] [--figures-dir figures]
"""
import os
import sys

import matplotlib
import matplotlib.colors

matplotlib.use("Agg")  # no display on servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import cli  # noqa: E402 (first: a broken config.py is one message, exit 2)
import edge as edge_front  # noqa: E402
import methods  # noqa: E402
import equal_size  # noqa: E402
from speed import pytorch_mode  # noqa: E402
from cli import exits  # noqa: E402
from figure_data import accuracy_and_speed, layer_fractions, load, timed  # noqa: E402
from figure_style import COLUMN_WIDTH, STYLE, from_baseline, legend_below, plot_methods, save  # noqa: E402
from log_ticks import plain_log_ticks  # noqa: E402


def mae_vs_compression(results, models, figures_dir):
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.6))
    plot_methods(ax, models, "compression_ratio", "test_mae")
    ax.axhline(results["mean_predictor"]["test_mae"], color="gray", linestyle="-.", linewidth=1,
               label="mean predictor")
    ax.set(xscale="log", xlabel="compression ratio (dense params / effective params)",
           ylabel="test MAE (EF %)")
    ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator([1, 2, 4, 8, 16, 32, 64]))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g×"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.legend(loc="best", framealpha=0.9)
    return save(fig, figures_dir, "mae_vs_compression")


def latency(results, models, figures_dir):
    if not timed(models, "latency_ms"):
        return []
    fig, (left, right) = plt.subplots(1, 2, figsize=(2 * COLUMN_WIDTH, 2.6))
    plot_methods(left, from_baseline(models), "ratio", "latency_ms", with_baseline=False)
    left.set(xlabel="pruning ratio (0 = baseline)",
             ylabel=f"latency (ms / video, {models.latency_device[0]})", title="latency vs pruning ratio",
             ylim=(0, None))
    plot_methods(right, models, "latency_ms", "test_mae")
    front = edge_front.pareto(accuracy_and_speed(models), "latency_ms")
    right.step(front.latency_ms, front.mae, where="post", color="gray", linewidth=3, alpha=0.35,
               label="Pareto front", zorder=1)
    right.set(xlabel="latency (ms / video)", ylabel="test MAE (EF %)", title="accuracy vs speed")
    legend_below(fig, right)
    return save(fig, figures_dir, "latency")


def size(results, models, figures_dir):
    fig, (left, right) = plt.subplots(1, 2, figsize=(2 * COLUMN_WIDTH, 2.6))
    for ax, column, label in ((left, "params_effective", "effective parameters (M)"),
                              (right, "effective_flops", "FLOPs per video (G, non-zero weights)")):
        scaled = models.assign(value=models[column] / (1e6 if column == "params_effective" else 1e9))
        plot_methods(ax, from_baseline(scaled), "ratio", "value", with_baseline=False)
        ax.set(xlabel="pruning ratio (0 = baseline)", ylabel=label, ylim=(0, None))
    executed = models[models.method == "structured"]
    if not executed.empty:
        right.axhline(executed.flops.iloc[0] / 1e9, color=STYLE["structured"][1], linewidth=0.8,
                      label="executed by dense kernels (masked)")
    legend_below(fig, right, ncol=2)
    return save(fig, figures_dir, "params_flops")


def sparsity_fine_tune(results, models, figures_dir):
    """The masked models that methods.py gives a bar label: physically pruned ones have no masks, their
    weights are gone."""
    short = {method: row.bar for method, row in methods.METHODS.items() if row.bar}
    pruned = models[models.method.isin(list(short))]
    pruned = pruned.groupby(["method", "ratio"], sort=False).mean(numeric_only=True).reset_index()
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.6))
    x = range(len(pruned))
    ax.bar([i - 0.2 for i in x], pruned.sparsity_before_fine_tune, width=0.4, color="white",
           edgecolor="black", label="after pruning")
    ax.bar([i + 0.2 for i in x], pruned.sparsity, width=0.4, color="gray", edgecolor="black", hatch="//",
           label="after fine-tuning")
    ax.set_xticks(list(x), [f"{short[m]}\n{r:g}" for m, r in zip(pruned.method, pruned.ratio)], fontsize=6)
    ax.set(ylabel="fraction of zero weights", ylim=(0, 1.05),
           title="masks removed before fine-tuning" if results["config"]["REMOVE_MASKS_BEFORE_FINE_TUNE"]
           else "masks kept during fine-tuning")
    ax.legend(loc="upper left", framealpha=0.9)
    return save(fig, figures_dir, "sparsity_fine_tune")


def training_curves(results, models, figures_dir):
    """The first seed's runs (curves of several seeds on one plot are unreadable)."""
    models = models[models.seed == models.seed.iloc[0]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(2 * COLUMN_WIDTH, 2.6))
    for _, row in models[models.method == "baseline"].iterrows():
        epochs = range(1, len(row.history["train_loss"]) + 1)
        left.plot(epochs, row.history["train_loss"], "k-o", markersize=3, label="train MSE")
        twin = left.twinx()
        twin.plot(epochs, row.history["val_mae"], "k--s", markersize=3, label="val MAE")
        twin.set_ylabel("val MAE (EF %)")
        twin.grid(False)
        left.legend(handles=left.lines + twin.lines, loc="upper right", framealpha=0.9)
    left.set(xlabel="epoch", ylabel="train MSE (EF %²)", title="baseline training", ylim=(0, None))
    for _, row in models[models.method != "baseline"].iterrows():
        label, colour, marker, line = STYLE[row.method]
        right.plot(range(0, len(row.history["val_mae"]) + 1), [None] + row.history["val_mae"],
                   color=colour, marker=marker, linestyle=line, markersize=3, alpha=0.4 + 0.6 * row.ratio)
    for method, (label, colour, marker, line) in STYLE.items():
        if method != "baseline" and (models.method == method).any():
            right.plot([], [], color=colour, marker=marker, linestyle=line, label=label)
    right.set(xlabel="fine-tuning epoch", ylabel="val MAE (EF %)",
              title="fine-tuning (darker = higher ratio)")
    right.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    right.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), framealpha=0.9, fontsize=6)
    fig.subplots_adjust(wspace=0.5)
    return save(fig, figures_dir, "training_curves")


def per_layer(results, models, figures_dir):
    paths = []
    for method in [m for m in STYLE if m != "baseline"]:
        rows = models[(models.method == method)].drop_duplicates("ratio")  # the first seed's checkpoints
        if rows.empty:
            continue
        fig, ax = plt.subplots(figsize=(2 * COLUMN_WIDTH, 2.4))
        for _, row in rows.iterrows():
            fractions = layer_fractions(row.checkpoint)
            ax.plot(range(len(fractions)), list(fractions.values()), marker=STYLE[method][2], markersize=3,
                    color=STYLE[method][1], alpha=0.4 + 0.6 * row.ratio, label=f"ratio {row.ratio:g}")
        ax.set_xticks(range(len(fractions)), list(fractions), rotation=90, fontsize=5)
        ax.set(ylabel="fraction of weights kept", ylim=(0, 1.05),
               title=f"{STYLE[method][0]}: kept per layer")
        ax.legend(loc="lower left", framealpha=0.9, ncol=3)
        paths += save(fig, figures_dir, f"per_layer_{method}")
    return paths


def onnx(results, models, figures_dir):
    """Does each method's gain survive in ONNX Runtime, and what do zeros save on disk?"""
    if not timed(models, "latency_speedup", "onnx_latency_speedup"):
        return []
    fig, (left, right) = plt.subplots(1, 2, figsize=(2 * COLUMN_WIDTH, 2.6))
    plot_methods(left, models, "latency_speedup", "onnx_latency_speedup")
    top = max(models.latency_speedup.max(), models.onnx_latency_speedup.max()) * 1.1
    left.plot([0, top], [0, top], color="gray", linewidth=0.8, label="same speedup")
    left.set(xlabel=f"PyTorch latency speedup (×, {pytorch_mode(models).split(' (')[0]})",
             ylabel="ONNX Runtime latency speedup (×)", xlim=(0, top), ylim=(0, top),
             title="speedup vs baseline")
    gzipped = "onnx_gzip_size_mb" in models  # GZIP_SIZES
    plot_methods(right, from_baseline(models), "ratio", "onnx_gzip_size_mb" if gzipped else "onnx_size_mb",
                 with_baseline=False)
    right.set(xlabel="pruning ratio (0 = baseline)",
              ylabel="gzip-compressed ONNX file (MB)" if gzipped else "ONNX file (MB)",
              ylim=(0, None), title="size on disk, compressed" if gzipped else "size on disk")
    legend_below(fig, left)
    fig.subplots_adjust(wspace=0.3)
    return save(fig, figures_dir, "onnx")


def sensitivity(results, models, figures_dir):
    """Layers × ratios, one panel per criterion: how much the validation MAE rises when that layer
    alone is pruned, with no fine-tuning (mean over seeds). The layers the model cannot lose stand out."""
    if not results.get("sensitivity"):
        return []
    rows = pd.DataFrame(list(results["sensitivity"]))
    criteria = {"l1_weights": "L1 weights (unstructured)", "l2_channels": "L2 channels (structured)"}
    shown = [c for c in criteria if (rows.criterion == c).any()]
    layers = list(dict.fromkeys(rows.layer))
    table = rows.pivot_table(index=["criterion", "layer"], columns="ratio", values="val_mae_increase",
                             aggfunc="mean")
    # log colours: one layer (the stem) can cost 100x more than the rest, which must still read apart
    norm = matplotlib.colors.LogNorm(vmin=0.1, vmax=max(float(table.to_numpy().max()), 1.0))
    fig, axes = plt.subplots(1, len(shown), figsize=(2 * COLUMN_WIDTH, 0.5 + 0.16 * len(layers)),
                             squeeze=False, sharey=True)
    for ax, criterion in zip(axes[0], shown):
        grid = table.loc[criterion].reindex(layers)  # the head has no channel row: left blank
        image = ax.imshow(grid.clip(lower=0.1).to_numpy(), cmap="Reds", norm=norm, aspect="auto")
        for (i, j), value in np.ndenumerate(grid.to_numpy()):
            if not np.isnan(value):
                ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=5,
                        color="white" if value > norm.vmax ** 0.6 else "black")
        ax.set_xticks(range(len(grid.columns)), [f"{r:g}" for r in grid.columns])
        ax.set_yticks(range(len(layers)), layers, fontsize=5)
        ax.set(xlabel="ratio of the layer pruned", title=criteria[criterion])
        ax.grid(False)
    bar = fig.colorbar(image, ax=list(axes[0]), label="val MAE increase (EF points, log scale)", shrink=0.8)
    plain_log_ticks(bar.ax.yaxis)
    base = rows.groupby("seed").dense_val_mae.first().mean()
    fig.suptitle(f"one layer pruned alone, no fine-tuning (dense val MAE {base:.2f})", fontsize=8)
    return save(fig, figures_dir, "sensitivity")


def edge(results, models, figures_dir):
    """Pruning and INT8 together: accuracy against ONNX Runtime latency and file size, every method in
    FP32 (filled) and INT8 (hollow), and the Pareto front over all of them."""
    points = edge_front.points(models)
    if "INT8" not in set(points.precision) or points.latency_ms.isna().any():
        return []
    fig, axes = plt.subplots(1, 2, figsize=(2 * COLUMN_WIDTH, 2.8))
    for ax, cost, label in ((axes[0], "latency_ms", "ONNX Runtime latency (ms / video)"),
                            (axes[1], "size_mb", "ONNX file (MB)")):
        for (method, precision), rows in points.groupby(["method", "precision"], sort=False):
            name, colour, marker, _ = STYLE[method]
            # INT8 hollow: the face left empty, the edge in colour; a line marker (x, +, 1) has no face,
            # and is drawn in its colour in both precisions
            hollow = precision != "FP32" and matplotlib.markers.MarkerStyle(marker).is_filled()
            ax.scatter(rows[cost], rows.mae, marker=marker, s=40 if method == "baseline" else 22, zorder=3,
                       label=f"{name}, {precision}",
                       **({"facecolors": "none", "edgecolors": colour} if hollow else {"color": colour}))
        front = edge_front.pareto(points, cost)
        ax.step(front[cost], front.mae, where="post", color="gray", linewidth=3, alpha=0.35,
                label="Pareto front", zorder=1)
        ax.axhline(results["mean_predictor"]["test_mae"], color="gray", linestyle="-.", linewidth=1,
                   label="mean predictor")
        ax.set(xscale="log", xlabel=label, ylabel="test MAE (EF %)" if ax is axes[0] else "")
        plain_log_ticks(ax.xaxis)
    axes[0].set_title("accuracy vs speed (FP32 filled, INT8 hollow)")
    axes[1].set_title("accuracy vs size")
    legend_below(fig, axes[0], ncol=3)
    return save(fig, figures_dir, "edge")


def equal_size_figure(results, models, figures_dir):
    """MAE against effective parameters and against effective FLOPs, one line per method from the dense
    control (the anchor of equal_size's interpolation): methods compared at equal size, not ratio."""
    found = {size: equal_size.curves(models, size) for size in equal_size.SIZES}
    if not any(found.values()):
        return []
    fig, axes = plt.subplots(1, 2, figsize=(2 * COLUMN_WIDTH, 2.6))
    for ax, (size, (name, scale, unit)) in zip(axes, equal_size.SIZES.items()):
        for method, (sizes, maes) in found[size].items():
            label, colour, marker, line = STYLE.get(method, (method, "black", "o", "-"))
            order = np.argsort(sizes)
            ax.plot(sizes[order] / scale, maes[order], color=colour, marker=marker, linestyle=line,
                    label=label)
        ax.axhline(results["mean_predictor"]["test_mae"], color="gray", linestyle="-.", linewidth=1,
                   label="mean predictor")
        ax.set(xscale="log", xlabel=f"{name} ({unit}, log)",
               ylabel="test MAE (EF %)" if ax is axes[0] else "")
        plain_log_ticks(ax.xaxis)
    axes[0].set_title("accuracy at equal effective parameters")
    axes[1].set_title("accuracy at equal effective FLOPs")
    legend_below(fig, axes[0], ncol=3)
    return save(fig, figures_dir, "equal_size")


FIGURES = [mae_vs_compression, latency, size, equal_size_figure, sparsity_fine_tune, training_curves,
           per_layer, onnx, sensitivity, edge]


def draw_all(results_dir, figures_dir):
    os.makedirs(figures_dir, exist_ok=True)
    results, models = load(results_dir)
    return [path for figure in FIGURES for path in figure(results, models, figures_dir)]


def main(argv):
    cfg = cli.load(argv, cli.parser(__doc__))
    try:
        drawn = draw_all(cfg.RESULTS_DIR, cfg.FIGURES_DIR)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as e:  # cut off or edited by hand
        raise exits.Unreadable(f"{os.path.join(cfg.RESULTS_DIR, 'results.json')} cannot be drawn from "
                               f"({type(e).__name__}: {e}); it is damaged or not main.py's. Run main.py "
                               f"again to rewrite it.") from None
    for path in drawn:
        print(path)


if __name__ == "__main__":
    exits.run(main, sys.argv[1:], again="run the same command again to draw the figures")
