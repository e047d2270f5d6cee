"""One training loop and one evaluation loop, used for the baseline and for every fine-tuning run.
Both run unchanged in one process or under torchrun (DistributedDataParallel, one process per GPU)."""
import contextlib
import copy
import math
import os
import time

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

import metrics
from model import save_atomic


def rank():
    return dist.get_rank() if dist.is_initialized() else 0


def world_size():
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main():
    return rank() == 0


def barrier():
    if dist.is_initialized():
        dist.barrier()


def pick_device(name="auto"):
    """cuda (this process's GPU under torchrun) when available, else cpu."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def precision(device, amp):
    """The autocast dtype: bf16 where the GPU supports it, else fp16; fp32 on CPU or with AMP off."""
    if not amp or device.type != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device, dtype):
    return torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else contextlib.nullcontext()


def gather(tensor):
    """Concatenate a 1-D CPU tensor over all processes (each holds a disjoint shard)."""
    if not dist.is_initialized():
        return tensor
    parts = [None] * world_size()
    dist.all_gather_object(parts, tensor)
    return torch.cat(parts)


@torch.inference_mode()
def predict(model, loader, device, amp=False):
    """(predicted EF, true EF) over the whole split, as 1-D CPU tensors, each video exactly once:
    every process predicts its own shard and the shards are gathered."""
    model.eval()
    dtype = precision(device, amp)
    predictions, targets = [torch.empty(0)], [torch.empty(0)]
    for video, ef in loader:
        with autocast(device, dtype):
            predictions.append(model(video.to(device, non_blocking=True)).float().cpu())
        targets.append(ef.float())
    return gather(torch.cat(predictions)), gather(torch.cat(targets))


def evaluate(model, loader, device, amp=False):
    """MAE, RMSE and R^2 of the model's EF on a split, and how many videos they cover."""
    predicted, target = predict(model, loader, device, amp)
    return {**metrics.regression_metrics(predicted, target), "videos": len(target)}


def train(model, train_loader, val_loader, epochs, lr, device, desc="train", log=print, state_path=None,
          amp=False, schedule="constant"):
    """Adam on MSE; keeps the weights of the epoch with the best validation MAE.
    With state_path, everything needed to continue (weights, optimizer, history) is saved after
    every epoch, and a run cut off mid-training continues from its last saved epoch; the shuffling
    depends only on the sampler's seed and the epoch, so it continues exactly.
    schedule "cosine" decays the learning rate to zero over the epochs (settles BatchNorm statistics
    at the end of short, high-rate runs); "constant" keeps it, as the reference did.
    Returns the history: train loss and val MAE per epoch, best epoch, seconds."""
    model.to(device)
    net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
        if dist.is_initialized() else model
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"unknown learning-rate schedule {schedule!r}: constant or cosine")
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda e: 1.0 if schedule == "constant" else 0.5 * (1 + math.cos(math.pi * e / epochs)))
    dtype = precision(device, amp)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    loss_fn = nn.MSELoss()
    history = {"train_loss": [], "val_mae": [], "best_epoch": None, "seconds": 0.0,
               "train_seconds": 0.0, "data_wait_seconds": 0.0, "train_videos": 0}
    best_mae, best_state, first_epoch = float("inf"), None, 1
    if state_path and os.path.isfile(state_path):
        state = torch.load(state_path, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, best_mae, best_state = state["history"], state["best_mae"], state["best_state"]
        first_epoch = len(history["val_mae"]) + 1
        log(f"{desc}: continuing after epoch {first_epoch - 1} from {state_path}")
    start = time.perf_counter() - history["seconds"]
    for epoch in range(first_epoch, epochs + 1):
        net.train()
        if hasattr(train_loader.sampler, "set_epoch"):
            train_loader.sampler.set_epoch(epoch)
        total = torch.zeros(2, dtype=torch.float64, device=device)  # summed squared error, videos
        bar = tqdm(train_loader, desc=f"{desc} epoch {epoch}/{epochs}", leave=False, dynamic_ncols=True,
                   disable=not is_main())
        epoch_start = ready = time.perf_counter()
        for video, ef in bar:
            history["data_wait_seconds"] += time.perf_counter() - ready  # the step waited for this batch
            video, ef = video.to(device, non_blocking=True), ef.to(device, non_blocking=True)
            with autocast(device, dtype):
                predicted = net(video)
            loss = loss_fn(predicted.float(), ef)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            total += torch.stack([loss.detach().double() * len(ef), torch.tensor(len(ef), device=device)])
            bar.set_postfix(mse=f"{loss.item():.1f}")  # .item() also waits for the GPU to finish the step
            history["train_videos"] += len(ef)
            ready = time.perf_counter()
        history["train_seconds"] += time.perf_counter() - epoch_start
        scheduler.step()
        if dist.is_initialized():
            dist.all_reduce(total)
        val_mae = evaluate(model, val_loader, device, amp)["mae"]
        train_mse = (total[0] / total[1]).item()
        history["train_loss"].append(train_mse)
        history["val_mae"].append(val_mae)
        if val_mae < best_mae:
            best_mae, history["best_epoch"] = val_mae, epoch
            best_state = copy.deepcopy(model.state_dict())
        history["seconds"] = time.perf_counter() - start
        if state_path and is_main():
            save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict(), "history": history,
                         "best_mae": best_mae, "best_state": best_state}, state_path)
        barrier()
        log(f"{desc} epoch {epoch}/{epochs}: train MSE {train_mse:.2f}, val MAE {val_mae:.2f}")
    if best_state is not None:
        model.load_state_dict(best_state)
    return history
