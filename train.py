"""One training loop and one evaluation loop, used for the baseline and for every fine-tuning run."""
import copy
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


def train(model, train_loader, val_loader, epochs, lr, device, desc="train", log=print):
    """Adam on MSE; keeps the weights of the epoch with the best validation MAE.
    Returns the history: train loss and val MAE per epoch, best epoch, seconds."""
    model.to(device)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    loss_fn = nn.MSELoss()
    history = {"train_loss": [], "val_mae": [], "best_epoch": None, "seconds": 0.0}
    best_mae, best_state = float("inf"), None
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
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
        log(f"{desc} epoch {epoch}/{epochs}: train MSE {total / count:.2f}, val MAE {val_mae:.2f}")
    if best_state is not None:
        model.load_state_dict(best_state)
    history["seconds"] = time.perf_counter() - start
    return history
