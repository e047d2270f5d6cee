"""What every figure of visualize_results.py shares: each method's label, colour, marker and line style (so
that a figure reads in black-and-white print), the width of a paper column, one line per method with its
spread over seeds, the legend under the panels, and the PNG and PDF files."""
import os

import matplotlib

matplotlib.use("Agg")  # no display on servers
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

import methods  # noqa: E402

# (label, colour, marker, line style) of every method, in methods.py's order: its table's style columns
STYLE = {method: (row.label, *row.style) for method, row in methods.METHODS.items()}
COLUMN_WIDTH = 3.5  # inches: one column of a two-column paper
plt.rcParams.update({"font.size": 8, "axes.titlesize": 8, "legend.fontsize": 7, "figure.dpi": 150,
                     "savefig.bbox": "tight", "axes.grid": True, "grid.alpha": 0.3})


def summarise(models, column):
    """Mean and sample std of a column per method and ratio (std is NaN for a single seed), by ratio."""
    return (models.groupby(["method", "ratio"])[column].agg(["mean", "std"]).reset_index()
            .sort_values("ratio"))


def plot_methods(ax, models, x, y, with_baseline=True):
    """One line per pruning method (mean, with error bars when there are several seeds)."""
    for method, (label, colour, marker, line) in STYLE.items():
        rows = models[models.method == method]
        if rows.empty or (method == "baseline" and not with_baseline):
            continue
        xs, ys = summarise(rows, x), summarise(rows, y)
        ax.errorbar(xs["mean"], ys["mean"], yerr=ys["std"].fillna(0), xerr=xs["std"].fillna(0),
                    label=label, color=colour, marker=marker, linestyle=line,
                    markersize=9 if method == "baseline" else 5, capsize=2,
                    zorder=3 if method == "baseline" else 2)


def legend_below(fig, ax, ncol=3):
    """One legend under the panels, where it covers no data."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=ncol, frameon=False)


def from_baseline(models):
    """Every pruning method's rows plus the baseline as its ratio-0 point, so each line starts there."""
    base = models[models.method == "baseline"]
    pruned = [m for m in STYLE if m not in methods.DENSE and (models.method == m).any()]
    return pd.concat([models] + [base.assign(method=m) for m in pruned])


def save(fig, figures_dir, name):
    paths = [os.path.join(figures_dir, f"{name}.{ext}") for ext in ("png", "pdf")]
    for path in paths:
        fig.savefig(path)
    plt.close(fig)
    return paths
