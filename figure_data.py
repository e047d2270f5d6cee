"""What the figures read of a run: results.json as a table of models (checkpoint paths made absolute),
whether the latency phase has timed them, each method and ratio's accuracy and speed for the Pareto front,
and how much of each layer a checkpoint keeps."""
import os

import pandas as pd
import torch

import metrics
from model import EFRegressionModel, arch_of


def load(results_dir):
    path = os.path.join(results_dir, "results.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found; run main.py first or pass --results-dir")
    results = pd.read_json(path, typ="series")
    models = pd.DataFrame(results["models"])
    if "checkpoint" in models:  # stored relative to the results folder, so that the run's folders can move
        models["checkpoint"] = [p if not isinstance(p, str) or os.path.isabs(p)
                                else os.path.join(results_dir, p) for p in models["checkpoint"]]
    return results, models


def timed(models, *columns):
    """Latency is timed once every model is trained: a results.json written before has none."""
    return all(c in models and models[c].notna().all() for c in columns)


def accuracy_and_speed(models):
    """Each method and ratio: mean MAE and PyTorch latency over seeds, the range of the rounds pooled over
    them (the Pareto front ranks speed only beyond it, as summary.md does)."""
    rows = models.groupby(["method", "ratio"], sort=False)
    found = rows[["latency_ms", "test_mae"]].mean().rename(columns={"test_mae": "mae"})
    if "latency_low_ms" in models:
        found["latency_ms_low"] = rows.latency_low_ms.min()
        found["latency_ms_high"] = rows.latency_high_ms.max()
    return found.reset_index()


def layer_fractions(checkpoint):
    """Fraction of the dense model's weights kept (non-zero) in every convolution and Linear layer."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    with torch.device("meta"):  # only the shapes: no weights drawn
        dense = {name + ".weight": w.numel()
                 for name, w in metrics.prunable_weights(EFRegressionModel(arch=arch_of(state)))}
    return {name[:-len(".weight")].replace("backbone.", ""): int((state[name] != 0).sum()) / n
            for name, n in dense.items()}

