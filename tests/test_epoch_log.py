"""The per-epoch log of a training run (a CSV beside its checkpoint): one row per finished epoch,
written as the epoch ends, so `tail -f` follows a long run; each epoch exactly once however the run
is cut off and continued; and the same numbers as the history the run returns."""
import copy
import csv

import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import metrics
import pruners
import train
from model import EFRegressionModel

COLUMNS = ["epoch", "train_loss", "val_mae", "learning_rate", "sparsity", "seconds"]
EPOCHS, LR, STEPS = 3, 1e-3, 2  # 8 videos in batches of 4: 2 training steps per epoch
CPU = torch.device("cpu")


def loaders():
    """Shuffled by seed and epoch, as main.py does, so a continued run shuffles like an uninterrupted one."""
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(8, 2, 3, 32, 32, generator=g), 55 + 10 * torch.randn(8, generator=g))
    sampler = DistributedSampler(data, num_replicas=1, rank=0, shuffle=True, seed=1)
    return DataLoader(data, batch_size=4, sampler=sampler), DataLoader(data, batch_size=4)


@pytest.fixture(scope="module")
def baseline():
    torch.manual_seed(0)
    return EFRegressionModel(55.0)


def fine_tune(baseline, epoch_log, log=lambda *_: None, state_path=None):
    """Gradual unstructured pruning to 50% in 3 steps over the first half, on the cosine schedule: the
    sparsity and the learning rate change from epoch to epoch. (model, history)"""
    model = copy.deepcopy(baseline)
    pruner = pruners.Pruner(model, "unstructured", 0.5, 2, 32, round_to=8, steps=3, ramp_end=0.5)
    history = train.train(model, *loaders(), epochs=EPOCHS, lr=LR, device=CPU, log=log, state_path=state_path,
                          schedule="cosine", pruner=pruner, epoch_log=str(epoch_log))
    return model, history


def read_log(path):
    """(header, rows as dicts of the header's columns)"""
    with open(path, newline="") as f:
        header, *rows = list(csv.reader(f))
    return header, [dict(zip(header, row)) for row in rows]


def epochs_in(path):
    return [int(row["epoch"]) for row in read_log(path)[1]]


def assert_log_is_the_history(path, history):
    """Every row holds the history's numbers for its epoch, to the last bit (floats written as repr)."""
    header, rows = read_log(path)
    assert header == COLUMNS
    assert epochs_in(path) == list(range(1, len(history["val_mae"]) + 1))
    keys = ("train_loss", "val_mae", "learning_rate", "sparsity", "epoch_seconds")
    for column, key in zip(COLUMNS[1:], keys):
        assert [float(row[column]) for row in rows] == history[key], column


def test_each_epoch_is_a_row_of_the_log_as_soon_as_it_ends(baseline, tmp_path):
    log_path = tmp_path / "model_log.csv"
    # an earlier run's log, whose training state was refused or set aside: this run starts a clean one
    log_path.write_text("epoch,train_loss\n1,99.0\n2,98.0\n")
    logged_by_then = {}

    def log(message):  # the run's line after each epoch: the run is still going
        if " epoch " in message:
            logged_by_then[int(message.split(" epoch ")[1].split("/")[0])] = epochs_in(log_path)
    model, history = fine_tune(baseline, log_path, log)
    assert logged_by_then == {1: [1], 2: [1, 2], 3: [1, 2, 3]}  # the earlier run's rows are gone
    assert_log_is_the_history(log_path, history)
    rows = read_log(log_path)[1]
    # the rate of each epoch's last step, on the cosine schedule
    assert [float(r["learning_rate"]) for r in rows] == [
        LR * train.learning_rate_factor("cosine", epoch - 1 + (STEPS - 1) / STEPS, EPOCHS)
        for epoch in (1, 2, 3)]
    # pruning steps before training steps 0, 2 and 3: the sparsity rises through epoch 2, then stays
    sparsity = [float(r["sparsity"]) for r in rows]
    assert 0 < sparsity[0] < sparsity[1] == sparsity[2] == metrics.sparsity(model)["sparsity"]
    assert sparsity[2] == pytest.approx(0.5, abs=1e-3)
    seconds = [float(r["seconds"]) for r in rows]
    assert all(s > 0 for s in seconds) and sum(seconds) <= history["seconds"]


@pytest.mark.parametrize("cut_off", ["after the epoch's row", "between its training state and its row"])
def test_a_run_cut_off_and_continued_logs_each_epoch_exactly_once(baseline, tmp_path, cut_off):
    log_path, state = tmp_path / "model_log.csv", str(tmp_path / "model.training.pt")

    def killed_after_epoch_2(message):
        if f"epoch 2/{EPOCHS}" in message:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        fine_tune(baseline, log_path, killed_after_epoch_2, state_path=state)
    before = read_log(log_path)[1]
    assert epochs_in(log_path) == [1, 2]
    if cut_off != "after the epoch's row":  # epoch 2 saved in the training state, its row not yet written
        log_path.write_text("".join(log_path.read_text().splitlines(keepends=True)[:-1]))
    messages = []
    _, history = fine_tune(baseline, log_path, messages.append, state_path=state)
    assert "continuing after epoch 2" in messages[0]
    assert_log_is_the_history(log_path, history)  # epochs 1, 2, 3, once each
    assert read_log(log_path)[1][:2] == before  # the restored epochs as the first run logged them
