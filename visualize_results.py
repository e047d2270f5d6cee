"""Figures from results/results.json, as PNG and PDF, sized for a paper column and readable in
black-and-white print (each method has its own marker and line style, not only a colour).

    python visualize_results.py [--results-dir results] [--figures-dir figures]
"""
import json
import os
import sys

import matplotlib
import matplotlib.colors

matplotlib.use("Agg")  # no display on servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

import config  # noqa: E402
import metrics  # noqa: E402
from model import EFRegressionModel  # noqa: E402

STYLE = {  # method: (label, colour, marker, line style)
    "baseline": ("baseline", "black", "*", "none"),
    "unstructured": ("unstructured (masks)", "#1b6ca8", "o", "-"),
    "structured": ("structured (masks)", "#d1495b", "s", "--"),
    "structured_physical": ("structured (removed)", "#2e8540", "^", ":"),
    "unstructured_random": ("unstructured, random (control)", "#7fa7c9", "x", "-."),
    "structured_random": ("structured, random (control)", "#e89aa5", "+", "-."),
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
    """Mean and sample std of a column per method and ratio (std is NaN for a single seed), by ratio."""
    return models.groupby(["method", "ratio"])[column].agg(["mean", "std"]).reset_index().sort_values("ratio")


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


def legend_below(fig, ax, ncol=3):
    """One legend under the panels, where it covers no data."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=ncol, frameon=False)


def from_baseline(models):
    """Every pruning method's rows plus the baseline as its ratio-0 point, so each line starts there."""
    base = models[models.method == "baseline"]
    methods = [m for m in STYLE if m != "baseline" and (models.method == m).any()]
    return pd.concat([models] + [base.assign(method=m) for m in methods])


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
    plot_methods(left, from_baseline(models), "ratio", "latency_ms", with_baseline=False)
    left.set(xlabel="pruning ratio (0 = baseline)", ylabel=f"latency (ms / video, {models.latency_device[0]})",
             title="latency vs pruning ratio", ylim=(0, None))
    plot_methods(right, models, "latency_ms", "test_mae")
    points = models.groupby(["method", "ratio"], sort=False)[["latency_ms", "test_mae"]].mean().sort_values("latency_ms")
    front = points[points.test_mae <= points.test_mae.cummin()]
    right.step(front.latency_ms, front.test_mae, where="post", color="gray", linewidth=3, alpha=0.35,
               label="Pareto front", zorder=1)
    right.set(xlabel="latency (ms / video)", ylabel="test MAE (EF %)", title="accuracy vs speed")
    legend_below(fig, right)
    return save(fig, figures_dir, "latency")


def size(results, models, figures_dir):
    fig, (left, right) = plt.subplots(1, 2, figsize=(2 * COLUMN_WIDTH, 2.6))
    for ax, column, label in ((left, "params_nonzero", "non-zero parameters (M)"),
                              (right, "effective_flops", "FLOPs per video (G, non-zero weights)")):
        scaled = models.assign(value=models[column] / (1e6 if column == "params_nonzero" else 1e9))
        plot_methods(ax, from_baseline(scaled), "ratio", "value", with_baseline=False)
        ax.set(xlabel="pruning ratio (0 = baseline)", ylabel=label, ylim=(0, None))
    executed = models[models.method == "structured"]
    if not executed.empty:
        right.axhline(executed.flops.iloc[0] / 1e9, color=STYLE["structured"][1], linewidth=0.8,
                      label="executed by dense kernels (masked)")
    legend_below(fig, right, ncol=2)
    return save(fig, figures_dir, "params_flops")


def sparsity_fine_tune(results, models, figures_dir):
    """Masked models only: physically pruned ones have no masks, their weights are gone."""
    pruned = models[models.method.isin(["unstructured", "structured", "unstructured_random", "structured_random"])]
    pruned = pruned.groupby(["method", "ratio"], sort=False).mean(numeric_only=True).reset_index()
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.6))
    x = range(len(pruned))
    ax.bar([i - 0.2 for i in x], pruned.sparsity_before_fine_tune, width=0.4, color="white", edgecolor="black",
           label="after pruning")
    ax.bar([i + 0.2 for i in x], pruned.sparsity, width=0.4, color="gray", edgecolor="black", hatch="//",
           label="after fine-tuning")
    short = {"unstructured": "unstr.", "structured": "struct.", "unstructured_random": "unstr.\nrand.",
             "structured_random": "struct.\nrand."}
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
        right.plot(range(0, len(row.history["val_mae"]) + 1), [None] + row.history["val_mae"], color=colour,
                   marker=marker, linestyle=line, markersize=3, alpha=0.4 + 0.6 * row.ratio)
    for method, (label, colour, marker, line) in STYLE.items():
        if method != "baseline" and (models.method == method).any():
            right.plot([], [], color=colour, marker=marker, linestyle=line, label=label)
    right.set(xlabel="fine-tuning epoch", ylabel="val MAE (EF %)", title="fine-tuning (darker = higher ratio)")
    right.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    right.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), framealpha=0.9, fontsize=6)
    fig.subplots_adjust(wspace=0.5)
    return save(fig, figures_dir, "training_curves")


def layer_fractions(checkpoint):
    """Fraction of the dense model's weights kept (non-zero) in every Conv2d/Linear layer."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    dense = {name + ".weight": w.numel() for name, w in metrics.prunable_weights(EFRegressionModel())}
    return {name[:-len(".weight")].replace("backbone.", ""): int((state[name] != 0).sum()) / n
            for name, n in dense.items()}


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
    left.set(xlabel=f"PyTorch latency speedup (×, {pytorch_mode(models).split(' (')[0]})", ylabel="ONNX Runtime latency speedup (×)",
             xlim=(0, top), ylim=(0, top), title="speedup vs baseline")
    plot_methods(right, from_baseline(models), "ratio", "onnx_gzip_size_mb", with_baseline=False)
    right.set(xlabel="pruning ratio (0 = baseline)", ylabel="gzip-compressed ONNX file (MB)", ylim=(0, None),
              title="size on disk, compressed")
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
    table = rows.pivot_table(index=["criterion", "layer"], columns="ratio", values="val_mae_increase", aggfunc="mean")
    # log colours: one layer (the stem) can cost 100x more than the rest, which must still read apart
    norm = matplotlib.colors.LogNorm(vmin=0.1, vmax=max(float(table.to_numpy().max()), 1.0))
    fig, axes = plt.subplots(1, len(shown), figsize=(2 * COLUMN_WIDTH, 0.5 + 0.16 * len(layers)), squeeze=False,
                             sharey=True)
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
    fig.colorbar(image, ax=list(axes[0]), label="val MAE increase (EF points, log scale)", shrink=0.8)
    base = rows.groupby("seed").dense_val_mae.first().mean()
    fig.suptitle(f"one layer pruned alone, no fine-tuning (dense val MAE {base:.2f})", fontsize=8)
    return save(fig, figures_dir, "sensitivity")


# --- tables and summary ----------------------------------------------------------------------------

def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


AGGREGATED = ["test_mae", "test_rmse", "test_r2", "mae_diff", "mae_diff_ci_low", "mae_diff_ci_high", "mae_increase_pct", "sparsity", "sparsity_before_fine_tune",
              "params_nonzero", "compression_ratio", "flops", "effective_flops", "theoretical_speedup", "latency_ms",
              "latency_speedup", "size_mb", "gzip_size_mb", "onnx_latency_ms", "onnx_latency_speedup",
              "onnx_size_mb", "onnx_gzip_size_mb", "onnx_max_abs_diff"]


def by_ratio(models):
    """Mean, sample std and n over seeds for every method and ratio."""
    columns = [c for c in AGGREGATED if c in models]
    grouped = models.groupby(["method", "ratio"], sort=False)[columns]
    table = grouped.agg(["mean", "std"])
    table.columns = [f"{c}_{stat}" for c, stat in table.columns]
    table.insert(0, "n", grouped.size())
    return table.reset_index()


def write_results(results, results_dir, figures=()):
    """results.json (everything), results.csv (one row per model and seed), results_by_ratio.csv
    (mean ± std over seeds), sensitivity.csv (one row per layer, criterion, ratio and seed) and
    summary.md."""
    write_atomic(os.path.join(results_dir, "results.json"), json.dumps(results, indent=2))
    rows = pd.DataFrame([{k: v for k, v in r.items() if k not in ("history", "test_errors")}
                         for r in results["models"]])
    write_atomic(os.path.join(results_dir, "results.csv"), rows.to_csv(index=False))
    write_atomic(os.path.join(results_dir, "results_by_ratio.csv"), by_ratio(rows).to_csv(index=False))
    if results.get("sensitivity"):
        write_atomic(os.path.join(results_dir, "sensitivity.csv"),
                     pd.DataFrame(results["sensitivity"]).to_csv(index=False))
    summary = summary_markdown(results, [os.path.relpath(f, results_dir) for f in figures])
    write_atomic(os.path.join(results_dir, "summary.md"), summary)
    return summary


def summary_markdown(results, figures=()):
    models = pd.DataFrame(results["models"])
    env, floor = results["environment"], results["mean_predictor"]
    lines = ["# ef-prune results\n",
             f"Data: {results['config']['DATA_ROOT']}, {results['splits']['train']}/{results['splits']['val']}/"
             f"{results['splits']['test']} train/val/test videos of {results['config']['NUM_FRAMES']} frames "
             f"{results['config']['IMAGE_SIZE']}×{results['config']['IMAGE_SIZE']}. ImageNet weights: "
             f"{'yes' if results['pretrained']['used'] else 'no'} ({results['pretrained']['reason']}).\n",
             f"Environment: {env['device']} ({env['device_name']}), {env['torch_threads']} threads, "
             f"python {env['python']}, torch {env['torch']}, torchvision {env['torchvision']}, "
             f"torch-pruning {env['torch_pruning']}, commit {env['git_commit'] or 'none'}.\n",
             f"Latency: one video per call on {env['device']}, median of {results['config']['LATENCY_TIMED_RUNS']} "
             f"runs after {results['config']['LATENCY_WARMUP_RUNS']} warm-up runs, PyTorch {pytorch_mode(models)}; "
             f"ONNX Runtime with its CPU execution provider.\n",
             f"Mean predictor (always the training mean, EF {floor['ef']:.1f}): test MAE {floor['test_mae']:.2f}.\n",
             protocol_line(results["config"]),
             "ΔMAE: the model's test MAE minus its baseline's (same seed), with the 95% paired bootstrap "
             "interval over the test videos in brackets (one seed) or mean ± std over seeds.\n"]
    models = with_interval_cells(models, seeds=models.seed.nunique())
    tables = [
        ("Table 1. Baseline", ["baseline"],
         {"test_mae": "MAE", "test_mae_ci": "MAE 95% interval", "test_rmse": "RMSE", "test_r2": "R²", "params": "Params", "flops": "FLOPs",
          "latency_ms": "Latency (ms)", "size_mb": "Size (MB)"}),
        ("Table 2. Unstructured pruning (global L1)", ["unstructured", "unstructured_random"],
         {"method": "Method", "ratio": "Ratio", "sparsity_before_fine_tune": "Sparsity before FT", "sparsity": "Sparsity after FT",
          "test_mae": "MAE", "mae_diff_cell": "ΔMAE", "compression_ratio": "Compression",
          "latency_ms": "Latency (ms)", "latency_speedup": "Speedup", "gzip_size_mb": "gzip (MB)"}),
        ("Table 3. Structured pruning (L2 channels): masked vs physically removed",
         ["structured", "structured_physical", "structured_random"],
         {"method": "Method", "ratio": "Ratio", "sparsity": "Sparsity", "test_mae": "MAE",
          "mae_diff_cell": "ΔMAE", "params_nonzero": "Params (non-zero)", "compression_ratio": "Compression",
          "flops": "FLOPs", "theoretical_speedup": "Theor. speedup", "latency_ms": "Latency (ms)",
          "latency_speedup": "Speedup", "size_mb": "Size (MB)"}),
    ]
    if "onnx_latency_ms" in models:
        tables.append(("Table 4. ONNX Runtime (CPU execution provider)", list(models.method.unique()),
                       {"method": "Method", "ratio": "Ratio", "onnx_latency_ms": "ORT latency (ms)",
                        "onnx_latency_speedup": "ORT speedup", "latency_speedup": "PyTorch speedup",
                        "onnx_size_mb": "ONNX (MB)", "onnx_gzip_size_mb": "ONNX gzip (MB)",
                        "onnx_max_abs_diff": "max |ORT − PyTorch| (EF %)"}))
    seeds = models.seed.nunique()
    if seeds > 1:  # the interval's width, as mean ± std over seeds
        tables[0][2]["test_mae_ci"] = "MAE 95% interval width"
        lines.append(f"Each cell is the mean ± sample std over {seeds} seeds ({', '.join(map(str, models.seed.unique()))}).\n")
    for title, methods, columns in tables:
        rows = models[models.method.isin(methods)]
        if rows.empty:
            continue
        table = (rows[list(columns)] if seeds == 1 else mean_std_cells(rows, columns)).rename(columns=columns)
        lines += [f"\n## {title}\n", table.to_markdown(index=False, floatfmt=".4g") + "\n"]
    lines += ["\n## What the numbers show\n"] + [p + "\n" for p in method_paragraphs(models, floor["test_mae"])]
    lines += [p + "\n" for p in comparisons(models)]
    lines += [p + "\n" for p in sensitivity_paragraph(results)]
    if figures:
        lines += ["\n## Figures\n"] + [f"- [{os.path.basename(f)}]({f})" for f in figures if f.endswith(".png")]
    return "\n".join(lines)


def protocol_line(cfg):
    scope = ("backbone: every Conv2d, the regression head left dense" if cfg.get("PRUNING_SCOPE", "all") == "backbone"
             else "all: every Conv2d and Linear, the regression head included (the reference's unstructured scope)")
    schedule = ("one-shot" if cfg.get("PRUNING_SCHEDULE", "oneshot") == "oneshot" else
                f"gradual, cubic ramp over up to {cfg['PRUNING_STEPS']} steps at the start of fine-tuning epochs")
    return (f"Pruning: scope {scope}; schedule {schedule}; every model fine-tuned {cfg['FINE_TUNE_EPOCHS']} epochs "
            f"at lr {cfg['FINE_TUNE_LEARNING_RATE']:g} ({cfg['LR_SCHEDULE']}), masks held, best validation epoch "
            f"at the final sparsity.\n")


def with_interval_cells(models, seeds):
    """Text cells for the tables: the MAE's and ΔMAE's 95% intervals (one seed), else numbers for mean ± std."""
    models = models.copy()
    if "mae_diff" not in models:
        return models.assign(test_mae_ci="", mae_diff_cell=models.get("mae_increase_pct"))
    if seeds > 1:
        return models.assign(test_mae_ci=models.test_mae_ci_high - models.test_mae_ci_low, mae_diff_cell=models.mae_diff)
    models["test_mae_ci"] = [f"{lo:.2f}–{hi:.2f}" for lo, hi in zip(models.test_mae_ci_low, models.test_mae_ci_high)]
    models["mae_diff_cell"] = [f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]"
                               for d, lo, hi in zip(models.mae_diff, models.mae_diff_ci_low, models.mae_diff_ci_high)]
    return models


PAIRS = [("unstructured", "unstructured_random"), ("structured", "structured_random"),
         ("structured_physical", "structured"), ("structured_physical", "unstructured"), ("structured", "unstructured")]


def comparisons(models, samples=2000):
    """Which method is more accurate than which at the same ratio, claimed only beyond the noise.
    Several seeds: the means differ by more than the two methods' std over seeds added (their error
    bars do not overlap). One seed: the 95% paired bootstrap interval of the difference over the test
    videos excludes zero (this covers the choice of test videos, not of training seed)."""
    if "test_errors" not in models:
        return []
    names = {"unstructured": "unstructured", "structured": "structured (masks)",
             "structured_physical": "structured (removed)", "unstructured_random": "random unstructured",
             "structured_random": "random structured"}
    seeds = models.seed.nunique()
    better, unclear = [], []
    for a, b in PAIRS:
        for ratio in sorted(set(models[models.method == a].ratio) & set(models[models.method == b].ratio)):
            rows_a = models[(models.method == a) & (models.ratio == ratio)].sort_values("seed")
            rows_b = models[(models.method == b) & (models.ratio == ratio)].sort_values("seed")
            if rows_a.test_mae.mean() > rows_b.test_mae.mean():  # name the more accurate one first
                (a, rows_a), (b, rows_b) = (b, rows_b), (a, rows_a)
            mean_a, mean_b = rows_a.test_mae.mean(), rows_b.test_mae.mean()
            if seeds > 1:
                clear = mean_b - mean_a > rows_a.test_mae.std() + rows_b.test_mae.std()
                detail = f"{mean_a:.2f} ± {rows_a.test_mae.std():.2f} vs {mean_b:.2f} ± {rows_b.test_mae.std():.2f}"
            else:
                low, high = metrics.paired_difference_interval(rows_a.test_errors.iloc[0], rows_b.test_errors.iloc[0],
                                                               samples)
                clear = high < 0
                detail = f"{mean_a:.2f} vs {mean_b:.2f}, difference 95% interval {low:+.2f} to {high:+.2f}"
            text = f"{names[a]} {'over' if clear else 'and'} {names[b]} at {ratio:g} ({detail})"
            (better if clear else unclear).append(text)
    rule = (f"the means differ by more than the two std over {seeds} seeds added" if seeds > 1 else
            "the 95% paired bootstrap interval of the difference excludes zero; one training seed, so this covers "
            "the test videos, not the training seed: run several seeds (SEEDS) before concluding")
    paragraphs = [f"**Comparisons at the same ratio** (a method is called better only where {rule}).",
                  "More accurate beyond the noise: " + ("; ".join(better) if better else "none") + ".",
                  "Not distinguishable from each other: " + ("; ".join(unclear) if unclear else "none") + "."]
    return paragraphs


def sensitivity_paragraph(results):
    if not results.get("sensitivity"):
        return []
    rows = pd.DataFrame(list(results["sensitivity"]))
    rows = rows.groupby(["criterion", "layer", "ratio"], sort=False).val_mae_increase.mean().reset_index()
    top = rows[rows.ratio == rows.ratio.max()].sort_values("val_mae_increase", ascending=False)
    parts = []
    for criterion, label in (("l1_weights", "L1 weights"), ("l2_channels", "L2 channels")):
        worst = top[top.criterion == criterion].head(3)
        least = top[top.criterion == criterion].tail(3)
        if worst.empty:
            continue
        parts.append(f"{label} at {top.ratio.iloc[0]:g}: most sensitive "
                     + ", ".join(f"{r.layer} (+{r.val_mae_increase:.2f})" for r in worst.itertuples())
                     + "; least " + ", ".join(f"{r.layer} (+{r.val_mae_increase:.2f})" for r in least.itertuples()))
    return [f"**Layer sensitivity** (one layer pruned alone, no fine-tuning, validation MAE increase; "
            f"results/sensitivity.csv, figures/sensitivity.png): " + "; ".join(parts) + "."]


def pytorch_mode(models):
    compiled = "latency_compiled" in models and models.latency_compiled.fillna(False).astype(bool).all()
    return "compiled (torch.compile, weights frozen)" if compiled else "eager"


def mean_std_cells(rows, columns):
    """'mean ± std' strings per method and ratio, for tables over several seeds."""
    cells = []
    for (method, ratio), group in rows.groupby(["method", "ratio"], sort=False):
        cell = {}
        for c in columns:
            if c in ("method", "ratio"):
                cell[c] = group[c].iloc[0]
            else:
                cell[c] = f"{group[c].mean():.4g} ± {group[c].std():.2g}"
        cells.append(cell)
    return pd.DataFrame(cells)


def span(values, fmt):
    low, high = min(values), max(values)
    return format(low, fmt) if format(low, fmt) == format(high, fmt) else f"{low:{fmt}}–{high:{fmt}}"


def method_paragraphs(models, mean_mae):
    """One paragraph per method, every statement computed from the rows."""
    models = models.groupby(["method", "ratio"], sort=False).mean(numeric_only=True).reset_index()
    base = models[models.method == "baseline"].iloc[0]
    beat = "below" if base.test_mae < mean_mae else "not below"
    paragraphs = [f"**Baseline.** Test MAE {base.test_mae:.2f}, {base.test_mae / mean_mae:.2f}× the mean "
                  f"predictor's {mean_mae:.2f} ({beat} it); R² {base.test_r2:.3f}; {base.latency_ms:.1f} ms per video."]
    names = {"unstructured": "Unstructured (global L1, masks)", "structured": "Structured (L2 channels, masks)",
             "structured_physical": "Structured (L2 channels, removed with Torch-Pruning)",
             "unstructured_random": "Control: unstructured, random weights", "structured_random":
             "Control: structured, random channels"}
    for method, name in names.items():
        rows = models[models.method == method]
        if rows.empty:
            continue
        worse = int((rows.test_mae >= mean_mae).sum())
        text = (f"**{name}.** At ratio{'s' if len(rows) > 1 else ''} {span(rows.ratio, 'g')}, test MAE "
                f"{span(rows.test_mae, '.2f')} ({span(rows.mae_increase_pct, '+.0f')}% vs the baseline); "
                f"{worse} of {len(rows)} no better than the mean predictor. ")
        if method != "structured_physical":
            held = (rows.sparsity - rows.sparsity_before_fine_tune).abs().max()
            text += (f"Sparsity {span(rows.sparsity_before_fine_tune, '.3f')} after pruning and "
                     f"{span(rows.sparsity, '.3f')} after fine-tuning (largest change {held:.4f}). ")
        text += (f"Non-zero parameters {span(rows.params_nonzero / 1e6, '.2f')} M of {base.params / 1e6:.2f} M "
                 f"(compression {span(rows.compression_ratio, '.2f')}×); executed FLOPs "
                 f"{span(rows.flops / 1e9, '.2f')} G of {base.flops / 1e9:.2f} G; measured latency speedup "
                 f"{span(rows.latency_speedup, '.2f')}× against a theoretical {span(rows.theoretical_speedup, '.2f')}×; "
                 f"checkpoint {span(rows.size_mb, '.1f')} MB ({span(rows.gzip_size_mb, '.1f')} MB gzipped) "
                 f"vs {base.size_mb:.1f} MB ({base.gzip_size_mb:.1f} MB).")
        if "onnx_latency_speedup" in rows and rows.onnx_latency_speedup.notna().all():
            text += (f" In ONNX Runtime: speedup {span(rows.onnx_latency_speedup, '.2f')}×, ONNX file "
                     f"{span(rows.onnx_gzip_size_mb, '.1f')} MB gzipped vs {base.onnx_gzip_size_mb:.1f} MB.")
        paragraphs.append(text)
    return paragraphs


FIGURES = [mae_vs_compression, latency, size, sparsity_fine_tune, training_curves, per_layer, onnx, sensitivity]


def draw_all(results_dir, figures_dir):
    os.makedirs(figures_dir, exist_ok=True)
    results, models = load(results_dir)
    return [path for figure in FIGURES for path in figure(results, models, figures_dir)]


if __name__ == "__main__":
    cfg = config.load(sys.argv[1:])
    for path in draw_all(cfg.RESULTS_DIR, cfg.FIGURES_DIR):
        print(path)
