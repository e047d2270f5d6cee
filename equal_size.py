"""Methods compared at equal size, not at equal ratio: the same ratio leaves masked structured pruning
far larger than physical removal (Torch-Pruning removes coupled channels and the next layers' inputs,
and rounds), so "masks beat removal at 0.7" can be a size effect. Each method's MAE is interpolated
against log size between its own ratios; the dense control (the baseline fine-tuned as the pruned
models are; the baseline where there is none) anchors every method at ratio 0."""
import numpy as np
import pandas as pd

SIZES = {"params_effective": ("effective parameters", 1e6, "M"),
         "effective_flops": ("effective FLOPs", 1e9, "G")}
ANCHORS = ("dense_control", "baseline")


def interpolate(sizes, maes, at):
    """MAE at size `at`, linear in log size between the two nearest points; NaN outside the points'
    range (no extrapolation)."""
    sizes, maes = np.asarray(sizes, float), np.asarray(maes, float)
    order = np.argsort(sizes)
    return float(np.interp(np.log(at), np.log(sizes[order]), maes[order], left=np.nan, right=np.nan))


def curves(models, size):
    """{method: (sizes, MAEs)}, means over seeds per ratio, each method's curve starting at the anchor."""
    means = (models.groupby(["method", "ratio"], sort=False)[["test_mae", size]].mean(numeric_only=True)
             .reset_index())
    anchor = next((means[means.method == a] for a in ANCHORS if (means.method == a).any()), None)
    result = {}
    for method, rows in means[~means.method.isin(ANCHORS)].groupby("method", sort=False):
        rows = pd.concat([anchor, rows]) if anchor is not None else rows
        result[method] = (rows[size].to_numpy(), rows.test_mae.to_numpy())
    return result


def table(models, size):
    """One row per pruned model's size (largest first): every method's MAE interpolated at that size."""
    found = curves(models, size)
    targets = models[~models.method.isin(ANCHORS)].groupby(["method", "ratio"], sort=False)[size].mean()
    rows = []
    for (method, ratio), at in sorted(targets.items(), key=lambda item: -item[1]):
        rows.append({"size of": f"{method} {ratio:g}", "size": at,
                     **{m: interpolate(s, mae, at) for m, (s, mae) in found.items()}})
    return pd.DataFrame(rows)


def paragraphs(models):
    if "effective_flops" not in models or not (~models.method.isin(ANCHORS)).any():
        return []
    lines = ["\n## Equal size: methods at the same effective parameters and effective FLOPs\n",
             "Each method's test MAE (mean over seeds) interpolated linearly in log size between its own "
             "ratios, the dense control anchoring ratio 0; empty where a method does not reach that size (no "
             "extrapolation). Interpolated values are read off the curves, not measured models: they locate "
             "the methods, the claims below test them (figures/equal_size.png).\n"]
    for size, (name, scale, unit) in SIZES.items():
        shown = table(models, size)
        shown["size"] = shown["size"] / scale
        shown = shown.rename(columns={"size": f"{name} ({unit})"}).astype(object)
        shown = shown.where(shown.notna(), None)  # shown empty: tabulate writes None as missingval
        lines += [f"MAE at equal {name}:\n",
                  shown.to_markdown(index=False, floatfmt=".3g", missingval="") + "\n"]
    return lines
