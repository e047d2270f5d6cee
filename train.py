"""One training loop and one evaluation loop, used for the baseline and for every fine-tuning run.
Both run unchanged in one process or under torchrun (DistributedDataParallel, one process per GPU)."""
import copy
import csv
import math
import os
import time

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

import metrics
from processes import autocast, barrier, gather, is_main, precision
import small_maps
from storage import folders
from model import memory_format, save_atomic


BAR_EVERY = 20  # steps between the progress bar's loss readings, each a wait for the GPU
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


# The per-epoch log's columns, and the history's lists they come from (one value per finished epoch).
EPOCH_LOG_COLUMNS = ("epoch", "train_loss", "val_mae", "learning_rate", "sparsity", "seconds")
EPOCH_LOG_KEYS = ("train_loss", "val_mae", "learning_rate", "sparsity", "epoch_seconds")


def epoch_log_row(history, epoch):
    return [epoch] + [history[key][epoch - 1] for key in EPOCH_LOG_KEYS]


def start_epoch_log(path, history):
    """The log holds the epochs the history already has (none on a fresh start), written whole and
    atomically: a continued run neither repeats nor loses a row, and a run that starts again (its
    training state refused or set aside) starts a clean log."""
    def write(tmp):
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(EPOCH_LOG_COLUMNS)
            writer.writerows(epoch_log_row(history, epoch) for epoch in range(1, len(history["val_mae"]) + 1))
    folders.write_atomic(path, write)


def append_epoch_log(path, history):
    """The row of the epoch just finished, flushed at once, so `tail -f` follows a long run."""
    with open(path, "a", newline="") as f:
        csv.writer(f).writerow(epoch_log_row(history, len(history["val_mae"])))


class Training:
    """One call of train(): its settings, and what changes as it goes: the DDP wrapper and the
    optimizer (new after every pruning step), the best validation MAE and weights so far, the history."""

    def __init__(self, model, train_loader, val_loader, *, epochs, lr, device, amp, schedule, pruner,
                 channels_last, distillation_weight=None, rewind=None):
        self.model, self.train_loader, self.val_loader = model, train_loader, val_loader
        self.epochs, self.lr, self.device = epochs, lr, device
        self.span = rewind or (0, epochs)  # (first epoch, epochs) of the schedule these epochs replay
        self.amp, self.schedule, self.pruner = amp, schedule, pruner
        self.distillation_weight = distillation_weight
        self.layout = memory_format(model, channels_last)
        model.to(device, memory_format=self.layout)
        self.dtype = precision(device, amp)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.dtype == torch.float16)
        self.loss_fn = nn.MSELoss()
        self.history = {"train_loss": [], "val_mae": [], "best_epoch": None, "seconds": 0.0,
                        "train_seconds": 0.0, "data_wait_seconds": 0.0, "train_videos": 0,
                        "eval_seconds": 0.0, "eval_videos": 0,
                        "learning_rate": [], "sparsity": [], "epoch_seconds": []}
        self.best_mae, self.best_state = float("inf"), None
        self.steps = len(train_loader)
        # the training step of each pruning step
        self.due = pruner.due(epochs * self.steps) if pruner is not None else []
        self.net = self.optimizer = None

    def fresh_optimizer(self):
        """The optimizer (and DDP wrapper) for the parameters as they are from this step on."""
        ddp = dist.is_initialized()
        self.net = DistributedDataParallel(self.model, device_ids=[self.device.index]
                                           if self.device.type == "cuda" else None) if ddp else self.model
        # fused: one kernel for every parameter, on the CPU as on a GPU (the per-tensor loop was a tenth of a
        # quick run's training); the same update to float rounding
        self.optimizer = torch.optim.Adam([p for p in self.model.parameters() if p.requires_grad], lr=self.lr,
                                          fused=True)

    def next_pruning_due(self, step):
        """Whether the next pruning step is taken before training step `step` (0-based over all epochs)."""
        return self.pruner is not None and not self.pruner.finished and self.due[self.pruner.done] <= step

    def resume(self, state_path, log, desc):
        """Continues from the last epoch saved at state_path; returns the first epoch still to train.
        The pruning steps taken in the finished epochs are replayed first (they fix the masks' and
        tensors' shapes; the saved weights and masks then replace the replayed ones). The shuffling
        depends only on the batches' seed and the epoch, so it continues exactly."""
        saved = torch.load(state_path, map_location=self.device, weights_only=True)
        self.history, self.best_mae = saved["history"], saved["best_mae"]
        self.best_state = copy.deepcopy(saved["model"]) if saved.get("best_is_model") else saved["best_state"]
        first_epoch = len(self.history["val_mae"]) + 1
        while self.next_pruning_due((first_epoch - 1) * self.steps - 1):
            self.pruner.step()
        self.model.to(self.device, memory_format=self.layout).load_state_dict(saved["model"])
        log(f"{desc}: continuing after epoch {first_epoch - 1} from {state_path}")
        self.fresh_optimizer()
        self.optimizer.load_state_dict(saved["optimizer"])
        for key in EPOCH_LOG_KEYS:  # a state saved before the epoch log existed: its epochs log empty cells
            self.history.setdefault(key, [None] * (first_epoch - 1))
        return first_epoch

    def take_due_pruning_steps(self, epoch, step):
        """Each pruning step is taken before the training step pruner.due(all steps) names, then the
        optimizer starts afresh (Torch-Pruning replaces the parameters). The best epoch is chosen among
        the epochs that end after the last step only, so the model returned has the final sparsity;
        the model right after the last step competes as well (best_epoch = the fractional epoch it was
        taken at, e.g. 1.5), so fine-tuning never returns a model worse on validation than pruning
        alone left it. Returns the seconds the pruning steps took, which are not the training's."""
        seconds = 0.0
        while self.next_pruning_due((epoch - 1) * self.steps + step):
            pruning = time.perf_counter()
            self.pruner.step()
            self.model.to(self.device, memory_format=self.layout)  # Torch-Pruning builds new tensors
            self.fresh_optimizer()
            self.best_mae, self.best_state = float("inf"), None  # what came before had a lower sparsity
            if self.pruner.finished:
                self.best_mae = evaluate(self.model, self.val_loader, self.device, self.amp)["mae"]
                self.best_state = copy.deepcopy(self.model.state_dict())
                self.history["best_epoch"] = epoch - 1 + step / self.steps
                self.history["val_mae_after_pruning"] = self.best_mae
            self.net.train()
            seconds += time.perf_counter() - pruning
        return seconds

    def training_step(self, video, ef, progress):
        """One step of Adam on MSE at the schedule's rate for `progress` (in epochs); returns the loss."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr * learning_rate_factor(self.schedule, self.span[0] + progress, self.span[1])
        video, ef = video.to(self.device, non_blocking=True), ef.to(self.device, non_blocking=True)
        with autocast(self.device, self.dtype), small_maps.on_cpu(self.device):
            predicted = self.net(video)
        loss = self.loss(predicted.float(), ef)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss

    def loss(self, predicted, target):
        """MSE to the label; with distillation, whose targets are (label, the dense model's prediction),
        (1 - w) x MSE to the label + w x MSE to the dense model's prediction."""
        if self.distillation_weight is None:
            return self.loss_fn(predicted, target)
        label, teacher = target.unbind(1)
        w = self.distillation_weight
        return (1 - w) * self.loss_fn(predicted, label) + w * self.loss_fn(predicted, teacher)

    def train_epoch(self, epoch, desc):
        """One epoch's training steps, with the pruning steps due among them; returns the train MSE
        over every process's videos."""
        set_epoch(self.train_loader, epoch)
        total = torch.zeros((), dtype=torch.float64, device=self.device)  # summed squared error
        videos = 0
        # a bar on a terminal only: in a log file (run_gpu.sh, CI) the one line per epoch says it all
        bar = tqdm(self.train_loader, desc=f"{desc} epoch {epoch}/{self.epochs}", leave=False,
                   dynamic_ncols=True, disable=None if is_main() else True)
        self.net.train()
        epoch_start = ready = time.perf_counter()
        for step, (video, ef) in enumerate(bar):
            self.history["data_wait_seconds"] += time.perf_counter() - ready  # the step waited for this batch
            epoch_start += self.take_due_pruning_steps(epoch, step)  # the training steps' time only
            loss = self.training_step(video, ef, epoch - 1 + step / self.steps)
            total += loss.detach().double() * len(ef)  # stays on the device: no wait for the GPU here
            videos += len(ef)
            if not bar.disable and step % BAR_EVERY == 0:
                bar.set_postfix(mse=f"{loss.item():.1f}")  # .item() waits for the GPU: every BAR_EVERY steps
            ready = time.perf_counter()
        total = torch.stack([total, torch.tensor(float(videos), dtype=torch.float64, device=self.device)])
        if dist.is_initialized():
            dist.all_reduce(total)
        train_mse = (total[0] / total[1]).item()  # waits for the last step: the time below is the GPU's too
        self.history["train_seconds"] += time.perf_counter() - epoch_start
        self.history["train_videos"] += int(total[1].item())  # every process's videos
        return train_mse

    def record_epoch(self, train_mse, validation, seconds):
        """The epoch's numbers in the history: the learning rate of its last step, the sparsity it ends at."""
        self.history["eval_seconds"] += validation["seconds"]
        self.history["eval_videos"] += validation["videos"]
        self.history["train_loss"].append(train_mse)
        self.history["val_mae"].append(validation["mae"])
        self.history["learning_rate"].append(self.optimizer.param_groups[0]["lr"])
        self.history["sparsity"].append(metrics.sparsity(self.model)["sparsity"])
        self.history["epoch_seconds"].append(seconds)

    def run_epochs(self, first_epoch, *, desc, log, state_path, epoch_log):
        """Train and validate epoch by epoch, keeping the weights of the best validation MAE; after
        each epoch the training state is saved and the epoch logged."""
        start = time.perf_counter() - self.history["seconds"]
        for epoch in range(first_epoch, self.epochs + 1):
            epoch_start = time.perf_counter()
            train_mse = self.train_epoch(epoch, desc)
            validation = evaluate(self.model, self.val_loader, self.device, self.amp)
            self.record_epoch(train_mse, validation, seconds=time.perf_counter() - epoch_start)
            best_now = validation["mae"] < self.best_mae
            if best_now:
                self.best_mae, self.history["best_epoch"] = validation["mae"], epoch
                self.best_state = copy.deepcopy(self.model.state_dict())
            self.history["seconds"] = time.perf_counter() - start
            if state_path and is_main():  # the best weights, where they are this epoch's, not saved twice
                save_atomic({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                             "history": self.history, "best_mae": self.best_mae, "best_is_model": best_now,
                             "best_state": None if best_now else self.best_state}, state_path)
            if epoch_log and is_main():
                append_epoch_log(epoch_log, self.history)
            barrier()
            log(f"{desc} epoch {epoch}/{self.epochs}: train MSE {train_mse:.2f}, "
                f"val MAE {validation['mae']:.2f}")

    def finish(self):
        """The best weights put back; returns the history."""
        # no fine-tuning epochs: pruned all the same
        while self.pruner is not None and not self.pruner.finished:
            self.pruner.step()
            self.best_state = None
        self.history["best_val_mae"] = self.best_mae if self.best_state is not None else None
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return self.history


def train(model, train_loader, val_loader, epochs, lr, device, desc="train", log=print, state_path=None,
          amp=False, schedule="constant", pruner=None, channels_last=False, epoch_log=None,
          distillation_weight=None, rewind=None):
    """Adam on MSE; keeps the weights of the epoch with the best validation MAE.
    pruner (pruners.Pruner): pruned step by step during training (Training.take_due_pruning_steps);
    the model returned has the final sparsity.
    With state_path, everything needed to continue (weights and masks, optimizer, history) is saved
    after every epoch, and a run cut off mid-training continues from its last saved epoch
    (Training.resume).
    channels_last: the memory format for training (faster convolutions on CPU and GPU), again after
    every pruning step, since Torch-Pruning builds new tensors.
    epoch_log: a CSV path, one row per finished epoch (EPOCH_LOG_COLUMNS), appended as each ends;
    seconds is the epoch's wall time, its pruning steps, training and validation.
    train_loader, val_loader: batches.Batches (or any iterables of (video, ef) batches).
    distillation_weight w: the training targets are (label, the dense model's prediction) pairs, and the
    loss (1 - w) x MSE to the label + w x MSE to the prediction (train loss is that mixed loss).
    rewind (first epoch, epochs): the rates of another training's schedule replayed from that epoch on
    (learning-rate rewinding, Renda et al. 2020); None: the schedule runs over these `epochs`.
    Returns the history: train loss, val MAE, learning rate (at the epoch's last step), sparsity and
    seconds per epoch, best epoch, seconds, and where the time went (training and validation seconds
    and videos, the seconds the steps waited for their batches)."""
    run = Training(model, train_loader, val_loader, epochs=epochs, lr=lr, device=device, amp=amp,
                   schedule=schedule, pruner=pruner, channels_last=channels_last,
                   distillation_weight=distillation_weight, rewind=rewind)
    if state_path and os.path.isfile(state_path):
        first_epoch = run.resume(state_path, log, desc)
    else:
        run.fresh_optimizer()
        first_epoch = 1
    if epoch_log and is_main():
        start_epoch_log(epoch_log, run.history)
    run.run_epochs(first_epoch, desc=desc, log=log, state_path=state_path, epoch_log=epoch_log)
    return run.finish()
