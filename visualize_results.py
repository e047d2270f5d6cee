"""Figures from results/results.json, as PNG and PDF, sized for a paper column and readable in
black-and-white print (each method has its own marker and line style, not only a colour).

    python visualize_results.py [--results-dir results] [--figures-dir figures]
"""
import os
import sys

import matplotlib

matplotlib.use("Agg")  # no display on servers
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

import config  # noqa: E402
import metrics  # noqa: E402

STYLE = {  # method: (label, colour, marker, line style)
    "baseline": ("baseline", "black", "*", "none"),
    "unstructured": ("unstructured (masks)", "#1b6ca8", "o", "-"),
    "structured": ("structured (masks)", "#d1495b", "s", "--"),
    "structured_physical": ("structured (removed)", "#2e8540", "^", ":"),
}
COLUMN_WIDTH = 3.5  # inches: one column of a two-column paper
plt.rcParams.update({"font.size": 8, "axes.titlesize": 8, "legend.fontsize": 7, "figure.dpi": 150,
                     "savefig.bbox": "tight", "axes.grid": True, "grid.alpha": 0.3})


def load(results_dir):
    path = os.path.join(results_dir, "results.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found; run main.py first or pass --results-dir")
    results = pd.read_json(path, typ="series")
    return results, pd.DataFrame(results["models"])


def summarise(models, column):
    """Mean and sample std of a column per method and ratio (std is NaN for a single seed)."""
    return models.groupby(["method", "ratio"], sort=False)[column].agg(["mean", "std"]).reset_index()


def plot_methods(ax, models, x, y, with_baseline=True):
    """One line per pruning method (mean, with error bars when there are several seeds)."""
    for method, (label, colour, marker, line) in STYLE.items():
        rows = models[models.method == method]
        if rows.empty or (method == "baseline" and not with_baseline):
            continue
        xs, ys = summarise(rows, x), summarise(rows, y)
        ax.errorbar(xs["mean"], ys["mean"], yerr=ys["std"].fillna(0), xerr=xs["std"].fillna(0),
                    label=label, color=colour, marker=marker, linestyle=line,
                    markersize=9 if method == "baseline" else 5, capsize=2, zorder=3 if method == "baseline" else 2)


def save(fig, figures_dir, name):
    paths = [os.path.join(figures_dir, f"{name}.{ext}") for ext in ("png", "pdf")]
    for path in paths:
        fig.savefig(path)
    plt.close(fig)
    return paths


def mae_vs_compression(results, models, figures_dir):
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.6))
    plot_methods(ax, models, "compression_ratio", "test_mae")
    ax.axhline(results["mean_predictor"]["test_mae"], color="gray", linestyle="-.", linewidth=1,
               label="mean predictor")
    ax.set(xscale="log", xlabel="compression ratio (dense params / non-zero params)", ylabel="test MAE (EF %)")
    ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator([1, 2, 4, 8, 16, 32, 64]))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g×"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.legend(loc="best", framealpha=0.9)
    return save(fig, figures_dir, "mae_vs_compression")


def latency(results, models, figures_dir):
    fig, (left, right) = plt.subplots(1, 2, figsize=(2 * COLUMN_WIDTH, 2.6))
    with_zero = pd.concat([models] + [models[models.method == "baseline"].assign(method=m) for m in STYLE
                                      if m != "baseline" and (models.method == m).any()])
    plot_methods(left, with_zero, "ratio", "latency_ms", with_baseline=False)
    left.set(xlabel="pruning ratio (0 = baseline)", ylabel=f"latency (ms / video, {models.latency_device[0]})",
             title="latency vs pruning ratio", ylim=(0, None))
    left.legend(loc="lower left", framealpha=0.9)
    plot_methods(right, models, "latency_ms", "test_mae")
    points = models.groupby(["method", "ratio"], sort=False)[["latency_ms", "test_mae"]].mean().sort_values("latency_ms")
    front = points[points.test_mae <= points.test_mae.cummin()]
    right.step(front.latency_ms, front.test_mae, where="post", color="gray", linewidth=3, alpha=0.35,
               label="Pareto front", zorder=1)
    right.set(xlabel="latency (ms / video)", ylabel="test MAE (EF %)", title="accuracy vs speed")
    right.legend(loc="best", framealpha=0.9)
    return save(fig, figures_dir, "latency")


def size(results, models, figures_dir):
    fig, (left, right) = plt.subplots(1, 2, figsize=(2 * COLUMN_WIDTH, 2.6))
    for ax, column, label in ((left, "params_nonzero", "non-zero parameters (M)"),
                              (right, "effective_flops", "FLOPs per video (G, non-zero weights)")):
        scaled = models.assign(value=models[column] / (1e6 if column == "params_nonzero" else 1e9))
        with_zero = pd.concat([scaled] + [scaled[scaled.method == "baseline"].assign(method=m) for m in STYLE
                                          if m != "baseline" and (scaled.method == m).any()])
        plot_methods(ax, with_zero, "ratio", "value", with_baseline=False)
        ax.set(xlabel="pruning ratio (0 = baseline)", ylabel=label, ylim=(0, None))
    executed = models[models.method == "structured"]
    if not executed.empty:
        right.axhline(executed.flops.iloc[0] / 1e9, color=STYLE["structured"][1], linewidth=0.8,
                      label="executed by dense kernels (masked)")
    left.legend(loc="lower left", framealpha=0.9)
    right.legend(loc="lower left", framealpha=0.9)
    return save(fig, figures_dir, "params_flops")


def sparsity_fine_tune(results, models, figures_dir):
    """Masked models only: physically pruned ones have no masks, their weights are gone."""
    pruned = models[models.method.isin(["unstructured", "structured"])]
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.6))
    x = range(len(pruned))
    ax.bar([i - 0.2 for i in x], pruned.sparsity_before_fine_tune, width=0.4, color="white", edgecolor="black",
           label="after pruning")
    ax.bar([i + 0.2 for i in x], pruned.sparsity, width=0.4, color="gray", edgecolor="black", hatch="//",
           label="after fine-tuning")
    short = {"unstructured": "unstr.", "structured": "struct."}
    ax.set_xticks(list(x), [f"{short[m]}\n{r:g}" for m, r in zip(pruned.method, pruned.ratio)], fontsize=6)
    ax.set(ylabel="fraction of zero weights", ylim=(0, 1.05),
           title="masks removed before fine-tuning" if results["config"]["REMOVE_MASKS_BEFORE_FINE_TUNE"]
           else "masks kept during fine-tuning")
    ax.legend(loc="upper left", framealpha=0.9)
    return save(fig, figures_dir, "sparsity_fine_tune")


def training_curves(results, models, figures_dir):
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
        right.plot(range(0, len(row.history["val_mae"]) + 1), [None] + row.history["val_mae"], color=colour,
                   marker=marker, linestyle=line, markersize=3, alpha=0.4 + 0.6 * row.ratio)
    right.scatter([], [], color="gray", label="darker = higher ratio")
    for method, (label, colour, marker, line) in STYLE.items():
        if method != "baseline" and (models.method == method).any():
            right.plot([], [], color=colour, marker=marker, linestyle=line, label=label)
    right.set(xlabel="fine-tuning epoch", ylabel="val MAE (EF %)", title="fine-tuning")
    right.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    right.legend(loc="best", framealpha=0.9)
    fig.subplots_adjust(wspace=0.55)
    return save(fig, figures_dir, "training_curves")


def layer_fractions(checkpoint):
    """Fraction of the dense model's weights kept (non-zero) in every Conv2d/Linear layer."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    dense = {name + ".weight": w.numel() for name, w in metrics.prunable_weights(_dense_model())}
    return {name[:-len(".weight")].replace("backbone.", ""): int((state[name] != 0).sum()) / n
            for name, n in dense.items()}


def _dense_model():
    from model import EFRegressionModel
    return EFRegressionModel()


def per_layer(results, models, figures_dir):
    paths = []
    for method in ("unstructured", "structured", "structured_physical"):
        rows = models[(models.method == method)].drop_duplicates("ratio")
        if rows.empty:
            continue
        fig, ax = plt.subplots(figsize=(2 * COLUMN_WIDTH, 2.4))
        for _, row in rows.iterrows():
            fractions = layer_fractions(row.checkpoint)
            ax.plot(range(len(fractions)), list(fractions.values()), marker=STYLE[method][2], markersize=3,
                    color=STYLE[method][1], alpha=0.4 + 0.6 * row.ratio, label=f"ratio {row.ratio:g}")
        ax.set_xticks(range(len(fractions)), list(fractions), rotation=90, fontsize=5)
        ax.set(ylabel="fraction of weights kept", ylim=(0, 1.05), title=f"{STYLE[method][0]}: kept per layer")
        ax.legend(loc="lower left", framealpha=0.9, ncol=3)
        paths += save(fig, figures_dir, f"per_layer_{method}")
    return paths


def onnx(results, models, figures_dir):
    """Does each method's gain survive in ONNX Runtime, and what do zeros save on disk?"""
    if "onnx_latency_ms" not in models:
        return []
    fig, (left, right) = plt.subplots(1, 2, figsize=(2 * COLUMN_WIDTH, 2.6))
    plot_methods(left, models, "latency_speedup", "onnx_latency_speedup")
    top = max(models.latency_speedup.max(), models.onnx_latency_speedup.max()) * 1.1
    left.plot([0, top], [0, top], color="gray", linewidth=0.8, label="same speedup")
    left.set(xlabel="PyTorch latency speedup (×)", ylabel="ONNX Runtime latency speedup (×)",
             xlim=(0, top), ylim=(0, top), title="speedup vs baseline: PyTorch and ONNX Runtime")
    left.legend(loc="upper left", framealpha=0.9)
    with_zero = pd.concat([models] + [models[models.method == "baseline"].assign(method=m) for m in STYLE
                                      if m != "baseline" and (models.method == m).any()])
    plot_methods(right, with_zero, "ratio", "onnx_gzip_size_mb", with_baseline=False)
    right.set(xlabel="pruning ratio (0 = baseline)", ylabel="gzip-compressed ONNX file (MB)", ylim=(0, None),
              title="size on disk, compressed")
    right.legend(loc="lower left", framealpha=0.9)
    fig.subplots_adjust(wspace=0.3)
    return save(fig, figures_dir, "onnx")


FIGURES = [mae_vs_compression, latency, size, sparsity_fine_tune, training_curves, per_layer, onnx]


def draw_all(results_dir, figures_dir):
    os.makedirs(figures_dir, exist_ok=True)
    results, models = load(results_dir)
    return [path for figure in FIGURES for path in figure(results, models, figures_dir)]


if __name__ == "__main__":
    cfg = config.load(sys.argv[1:])
    for path in draw_all(cfg.RESULTS_DIR, cfg.FIGURES_DIR):
        print(path)
