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


BAR_EVERY = 20  # steps between the progress bar's loss readings, each a wait for the GPU


def init_distributed():
    """Under torchrun (WORLD_SIZE > 1): one process per GPU with NCCL, or per CPU process with gloo."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


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
def predict(model, batches, device, amp=False):
    """(predicted EF, true EF) over the whole split, as 1-D CPU tensors in the split's order, each video
    exactly once: every process predicts its own shard (batches.order says which videos), and the
    shards are gathered and put back in order. batches: a batches.Batches, or any iterable of
    (video, ef) batches (one process, in order)."""
    model.eval()
    if dist.is_initialized():  # every process evaluates the model the main process saves: after the last
        for buffer in model.buffers():  # step each updated BatchNorm's statistics from its own batch
            dist.broadcast(buffer, 0)
    dtype = precision(device, amp)
    predictions, targets = [torch.empty(0, device=device)], [torch.empty(0, device=device)]
    for video, ef in batches:
        with autocast(device, dtype):
            predictions.append(model(video.to(device, non_blocking=True)).float())
        targets.append(ef.to(device).float())
    predicted, target = torch.cat(predictions).cpu(), torch.cat(targets).cpu()  # one copy back, at the end
    order = getattr(batches, "order", None)
    if order is None or not dist.is_initialized():
        return predicted, target
    order = gather(order)
    return gather(predicted)[order.argsort()], gather(target)[order.argsort()]


def evaluate(model, batches, device, amp=False):
    """MAE, RMSE and R^2 of the model's EF on a split, how many videos they cover, and how fast."""
    start = time.perf_counter()
    predicted, target = predict(model, batches, device, amp)
    seconds = time.perf_counter() - start
    return {**metrics.regression_metrics(predicted, target), "videos": len(target), "seconds": seconds}


def set_epoch(batches, epoch):
    """Training batches are drawn from the seed and the epoch: batches.Batches, or a DataLoader's sampler."""
    for owner in (batches, getattr(batches, "sampler", None)):
        if hasattr(owner, "set_epoch"):
            return owner.set_epoch(epoch)


def learning_rate_factor(schedule, progress, epochs):
    """constant: the reference's; cosine: decays to zero over the epochs, step by step (progress is
    in epochs), so the last steps barely move the weights and BatchNorm's running statistics settle
    on them (a per-epoch cosine left 4 fine-tuning epochs' last epoch at 15% of the rate)."""
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"unknown learning-rate schedule {schedule!r}: constant or cosine")
    return 1.0 if schedule == "constant" else 0.5 * (1 + math.cos(math.pi * progress / epochs))


def train(model, train_loader, val_loader, epochs, lr, device, desc="train", log=print, state_path=None,
          amp=False, schedule="constant", pruner=None, channels_last=False):
    """Adam on MSE; keeps the weights of the epoch with the best validation MAE.
    pruner (prune_utils.Pruner): each pruning step is taken before the training step pruner.due(all
    steps) names, then the optimizer starts afresh (Torch-Pruning replaces the parameters). The best
    epoch is chosen among the epochs that end after the last step only, so the model returned has the
    final sparsity; the model right after the last step competes as well (best_epoch = the fractional
    epoch it was taken at, e.g. 1.5), so fine-tuning never returns a model worse on validation than
    pruning alone left it.
    With state_path, everything needed to continue (weights and masks, optimizer, history) is saved
    after every epoch, and a run cut off mid-training continues from its last saved epoch: the
    pruning steps taken in the finished epochs are replayed first (they fix the masks' and tensors'
    shapes; the saved weights and masks then replace the replayed ones). The shuffling depends only on
    the batches' seed and the epoch, so it continues exactly.
    channels_last: the memory format for training (faster convolutions on CPU and GPU), again after
    every pruning step, since Torch-Pruning builds new tensors.
    train_loader, val_loader: batches.Batches (or any iterables of (video, ef) batches).
    Returns the history: train loss and val MAE per epoch, best epoch, seconds, and where the time went
    (training and validation seconds and videos, the seconds the steps waited for their batches)."""
    layout = torch.channels_last if channels_last else torch.preserve_format
    model.to(device, memory_format=layout)
    dtype = precision(device, amp)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    loss_fn = nn.MSELoss()
    history = {"train_loss": [], "val_mae": [], "best_epoch": None, "seconds": 0.0, "train_seconds": 0.0,
               "data_wait_seconds": 0.0, "train_videos": 0, "eval_seconds": 0.0, "eval_videos": 0}
    best_mae, best_state, first_epoch, saved = float("inf"), None, 1, None
    steps = len(train_loader)
    due = pruner.due(epochs * steps) if pruner is not None else []  # the training step of each pruning step
    if state_path and os.path.isfile(state_path):
        saved = torch.load(state_path, map_location=device, weights_only=True)
        history, best_mae, best_state = saved["history"], saved["best_mae"], saved["best_state"]
        first_epoch = len(history["val_mae"]) + 1
        while pruner is not None and not pruner.finished and due[pruner.done] < (first_epoch - 1) * steps:
            pruner.step()
        model.to(device, memory_format=layout).load_state_dict(saved["model"])
        log(f"{desc}: continuing after epoch {first_epoch - 1} from {state_path}")

    def fresh_optimizer():
        """The optimizer (and DDP wrapper) for the parameters as they are from this epoch on."""
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
            if dist.is_initialized() else model
        return net, torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    net, optimizer = fresh_optimizer()
    if saved is not None:
        optimizer.load_state_dict(saved["optimizer"])
    start = time.perf_counter() - history["seconds"]
    for epoch in range(first_epoch, epochs + 1):
        set_epoch(train_loader, epoch)
        total, videos = torch.zeros((), dtype=torch.float64, device=device), 0  # summed squared error, videos
        # a bar on a terminal only: in a log file (run_gpu.sh, CI) the one line per epoch below says it all
        bar = tqdm(train_loader, desc=f"{desc} epoch {epoch}/{epochs}", leave=False, dynamic_ncols=True,
                   disable=None if is_main() else True)
        net.train()
        epoch_start = ready = time.perf_counter()
        for step, (video, ef) in enumerate(bar):
            history["data_wait_seconds"] += time.perf_counter() - ready  # the step waited for this batch
            while pruner is not None and not pruner.finished and due[pruner.done] <= (epoch - 1) * steps + step:
                pruning = time.perf_counter()
                pruner.step()
                model.to(device, memory_format=layout)
                net, optimizer = fresh_optimizer()
                best_mae, best_state = float("inf"), None  # what came before had a lower sparsity
                if pruner.finished:  # the model as pruned, before fine-tuning at the final sparsity, competes too
                    best_mae = evaluate(model, val_loader, device, amp)["mae"]
                    best_state = copy.deepcopy(model.state_dict())
                    history["best_epoch"], history["val_mae_after_pruning"] = epoch - 1 + step / steps, best_mae
                net.train()
                epoch_start += time.perf_counter() - pruning  # the training steps' time, not the pruning's
            for group in optimizer.param_groups:
                group["lr"] = lr * learning_rate_factor(schedule, epoch - 1 + step / steps, epochs)
            video, ef = video.to(device, non_blocking=True), ef.to(device, non_blocking=True)
            with autocast(device, dtype):
                predicted = net(video)
            loss = loss_fn(predicted.float(), ef)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            total += loss.detach().double() * len(ef)  # stays on the device: no wait for the GPU here
            videos += len(ef)
            if not bar.disable and step % BAR_EVERY == 0:
                bar.set_postfix(mse=f"{loss.item():.1f}")  # .item() waits for the GPU: every BAR_EVERY steps only
            ready = time.perf_counter()
        total = torch.stack([total, torch.tensor(float(videos), dtype=torch.float64, device=device)])
        if dist.is_initialized():
            dist.all_reduce(total)
        train_mse = (total[0] / total[1]).item()  # waits for the epoch's last step: the time below is the GPU's too
        history["train_seconds"] += time.perf_counter() - epoch_start
        history["train_videos"] += int(total[1].item())  # every process's videos
        validation = evaluate(model, val_loader, device, amp)
        val_mae = validation["mae"]
        history["eval_seconds"] += validation["seconds"]
        history["eval_videos"] += validation["videos"]
        history["train_loss"].append(train_mse)
        history["val_mae"].append(val_mae)
        if val_mae < best_mae:
            best_mae, history["best_epoch"] = val_mae, epoch
            best_state = copy.deepcopy(model.state_dict())
        history["seconds"] = time.perf_counter() - start
        if state_path and is_main():
            save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "history": history,
                         "best_mae": best_mae, "best_state": best_state}, state_path)
        barrier()
        log(f"{desc} epoch {epoch}/{epochs}: train MSE {train_mse:.2f}, val MAE {val_mae:.2f}")
    while pruner is not None and not pruner.finished:  # no fine-tuning epochs: pruned all the same
        pruner.step()
        best_state = None
    history["best_val_mae"] = best_mae if best_state is not None else None
    if best_state is not None:
        model.load_state_dict(best_state)
    return history
