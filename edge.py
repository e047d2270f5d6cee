"""Pruning and INT8 together on an edge CPU: every model in FP32 and INT8 through ONNX Runtime, the
fastest and the smallest at each accuracy level (summary.md's "Edge" paragraph, figures/edge.png)."""
import pandas as pd

import speed


def points(models):
    """Every model in FP32 and in INT8 as (label, MAE, ORT latency with its range over the rounds, ONNX
    size), means over seeds, the range pooled over them; latency NaN where not timed yet."""
    columns = ["precision", "method", "ratio", "label", "mae", "latency_ms", "latency_ms_low",
               "latency_ms_high", "size_mb"]
    found = []
    groups = models.groupby(["method", "ratio"], sort=False) if "onnx_size_mb" in models else []
    for (method, ratio), rows in groups:
        name = "dense" if method == "baseline" else f"{method} {ratio:g}"
        for precision, mae, prefix, size in (("FP32", "test_mae", "onnx_latency", "onnx_size_mb"),
                                             ("INT8", "int8_test_mae", "int8_latency", "int8_size_mb")):
            if mae not in rows or rows[mae].isna().any():
                continue
            ms = rows[f"{prefix}_ms"].mean() if f"{prefix}_ms" in rows else float("nan")
            low, high = speed.spread(rows, prefix) or (ms, ms)  # a run from before the rounds: one reading
            found.append((precision, method, ratio, f"{name}, {precision}", rows[mae].mean(), ms, low, high,
                          rows[size].mean()))
    return pd.DataFrame(found, columns=columns)


def pareto(found, cost):
    """The cheapest point at each accuracy level, cheapest first. From the most accurate point on, a point
    is kept only where it is cheaper than every more accurate point kept, beyond both spreads (its highest
    reading below their lowest; columns `cost`_low and _high, else the value itself). A cheaper point
    within a more accurate one's spread is not distinguishable from it: that one stands for both. A
    description, not speed.py's test, which compares each model with its reference in one runtime."""
    found = found.dropna(subset=[cost])
    low, high = found.get(f"{cost}_low", found[cost]), found.get(f"{cost}_high", found[cost])
    kept = []
    for i in found.sort_values(["mae", cost]).index:
        if all(high[i] < low[j] for j in kept):
            kept.append(i)
    return found.loc[kept].sort_values(cost)


def listed(front, unit):
    def value(p):
        if unit == "MB":
            return f"{p.size_mb:.1f} MB"
        return f"{p.latency_ms:.3g} ms" + (f" ({p.latency_ms_low:.3g}–{p.latency_ms_high:.3g})"
                                           if p.latency_ms_low < p.latency_ms_high else "")
    return "; ".join(f"{p.label} (MAE {p.mae:.2f}, {value(p)})" for p in front.itertuples())


def paragraph(models):
    """The fastest and the smallest model at each accuracy level, over FP32 and INT8 of every method."""
    found = points(models)
    if "INT8" not in set(found.precision):
        return []
    fastest = (f"Fastest at each accuracy level, from the fastest to the most accurate (each faster than "
               f"every more accurate one listed, beyond the rounds' spread; a model within a more accurate "
               f"one's spread is not distinguishable from it and left out): "
               f"{listed(pareto(found, 'latency_ms'), 'ms')}. "
               if found.latency_ms.notna().all() else "Fastest at each accuracy level: not timed yet. ")
    return [f"**Edge: pruning and INT8 together** (ONNX Runtime, mean over seeds). {fastest}"
            f"Smallest ONNX file at each accuracy level: {listed(pareto(found, 'size_mb'), 'MB')}. "
            f"Differences in MAE smaller than the spread over seeds (or the paired intervals) do not rank "
            f"models."]
