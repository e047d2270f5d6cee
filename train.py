"""One training loop and one evaluation loop, used for the baseline and for every fine-tuning run."""
import copy
import os
import time

import torch
import torch.nn as nn
from tqdm import tqdm

import metrics


def pick_device(name="auto"):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@torch.inference_mode()
def predict(model, loader, device):
    """(predicted EF, true EF) over the whole loader, as 1-D CPU tensors."""
    model.eval()
    predictions, targets = [], []
    for video, ef in loader:
        predictions.append(model(video.to(device, non_blocking=True)).float().cpu())
        targets.append(ef)
    return torch.cat(predictions), torch.cat(targets)


def evaluate(model, loader, device):
    """MAE, RMSE and R^2 of the model's EF on a loader."""
    return metrics.regression_metrics(*predict(model, loader, device))


def train(model, train_loader, val_loader, epochs, lr, device, desc="train", log=print, state_path=None):
    """Adam on MSE; keeps the weights of the epoch with the best validation MAE.
    With state_path, everything needed to continue (weights, optimizer, shuffling RNG, history) is
    saved after every epoch, and a run cut off mid-training continues from its last saved epoch.
    Returns the history: train loss and val MAE per epoch, best epoch, seconds."""
    model.to(device)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    loss_fn = nn.MSELoss()
    history = {"train_loss": [], "val_mae": [], "best_epoch": None, "seconds": 0.0}
    best_mae, best_state, first_epoch = float("inf"), None, 1
    if state_path and os.path.isfile(state_path):
        state = torch.load(state_path, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        train_loader.generator.set_state(state["generator"])
        history, best_mae, best_state = state["history"], state["best_mae"], state["best_state"]
        first_epoch = len(history["val_mae"]) + 1
        log(f"{desc}: continuing after epoch {first_epoch - 1} from {state_path}")
    start = time.perf_counter() - history["seconds"]
    for epoch in range(first_epoch, epochs + 1):
        model.train()
        total, count = 0.0, 0
        bar = tqdm(train_loader, desc=f"{desc} epoch {epoch}/{epochs}", leave=False, dynamic_ncols=True)
        for video, ef in bar:
            video, ef = video.to(device, non_blocking=True), ef.to(device, non_blocking=True)
            loss = loss_fn(model(video), ef)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(ef)
            count += len(ef)
            bar.set_postfix(mse=f"{loss.item():.1f}")
        val_mae = evaluate(model, val_loader, device)["mae"]
        history["train_loss"].append(total / count)
        history["val_mae"].append(val_mae)
        if val_mae < best_mae:
            best_mae, history["best_epoch"] = val_mae, epoch
            best_state = copy.deepcopy(model.state_dict())
        history["seconds"] = time.perf_counter() - start
        if state_path:
            save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "history": history,
                         "generator": train_loader.generator.get_state(), "best_mae": best_mae,
                         "best_state": best_state}, state_path)
        log(f"{desc} epoch {epoch}/{epochs}: train MSE {total / count:.2f}, val MAE {val_mae:.2f}")
    if best_state is not None:
        model.load_state_dict(best_state)
    return history


def save_atomic(obj, path):
    """torch.save to a temporary file, then rename: a kill never leaves a truncated file."""
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)
