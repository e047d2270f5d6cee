"""The run's bookkeeping: one run per results folder (a lock), which configuration a folder holds,
continuing a run, reusing finished models, and setting damaged files aside.

A model's training is never lost to a kill: its training state stays on disk until its record is in
results.json (`forget_training_state`), so a run cut off while a trained model was being measured
loads the finished training state and only measures the model again.
"""
import hashlib
import json
import os
import shutil
import socket
import time

import torch

import config
from dataset import DataError
from model import load_checkpoint

LOCK_FILE = "run.lock"


class FolderInUse(RuntimeError):
    """Another live run holds the results folder."""


def config_hash(cfg):
    """Identifies the configuration that produced a checkpoint (constants that change results only)."""
    relevant = {k: v for k, v in sorted(vars(cfg).items()) if k not in cfg.NOT_RESULTS}
    return hashlib.sha1(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


def stamp():
    return time.strftime("%Y%m%d-%H%M%S")


def set_aside(path, problem, log):
    """Rename a damaged file out of the way (never delete it: it may still be worth a look)."""
    aside = f"{path}.damaged-{stamp()}"
    try:
        os.replace(path, aside)
    except FileNotFoundError:  # another process of the same torchrun run moved it first
        return aside
    log(f"{path} is damaged ({problem}); moved it to {aside}")
    return aside


# --- one run per results folder ---------------------------------------------------------------

def process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def lock(results_dir, log):
    """Take results_dir for this run, or raise FolderInUse naming the run that holds it. A lock left
    by a dead process on this host is taken over. Returns the lock's path (for `unlock`)."""
    os.makedirs(results_dir, exist_ok=True)
    path = os.path.join(results_dir, LOCK_FILE)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(me, f)
    try:
        for _ in range(3):
            try:
                os.link(tmp, path)  # atomic: fails if the lock exists, and a lock is never half written
                return path
            except FileExistsError:
                pass
            try:
                with open(path) as f:
                    holder = json.load(f)
            except (OSError, ValueError):
                holder = None
            if holder is None:
                raise FolderInUse(f"{results_dir}/ is locked by {path}, which cannot be read. If no other main.py "
                                  f"is writing to {results_dir}/, delete {path} and start again.")
            if holder.get("host") == me["host"] and not process_alive(holder.get("pid", -1)):
                os.remove(path)
                log(f"{path}: the run that locked {results_dir}/ (pid {holder['pid']}, started {holder['started']}) "
                    f"is no longer running; taking over")
                continue
            raise FolderInUse(
                f"{results_dir}/ is in use by another run: pid {holder.get('pid')} on {holder.get('host')}, started "
                f"{holder.get('started')}. Wait for it to finish, or choose another --results-dir. If that run is "
                f"gone (e.g. on another machine sharing this folder), delete {path}.")
        raise FolderInUse(f"could not lock {results_dir}/ ({path} keeps coming back)")
    finally:
        os.remove(tmp)


def unlock(path):
    """Remove the lock if it is still this process's."""
    try:
        with open(path) as f:
            if json.load(f).get("pid") == os.getpid():
                os.remove(path)
    except (OSError, ValueError):
        pass


# --- continuing a run ------------------------------------------------------------------------

def archive(cfg, log):
    """--fresh: move the earlier results (all but the lock) and checkpoints to folders named by the time."""
    suffix = f".old-{stamp()}"
    for folder in (cfg.RESULTS_DIR, cfg.CHECKPOINT_DIR):
        entries = [e for e in os.listdir(folder) if e != LOCK_FILE] if os.path.isdir(folder) else []
        if not entries:
            continue
        old = folder.rstrip("/") + suffix
        os.makedirs(old)
        for entry in entries:
            shutil.move(os.path.join(folder, entry), old)
        log(f"--fresh: moved the earlier {folder}/ to {old}/")


def start_or_continue(cfg, log):
    """The results of an earlier run of this configuration, to continue it; {} for a new run.
    A different configuration is never mixed in, and a damaged results.json is never overwritten:
    the run stops and says what to do."""
    path = os.path.join(cfg.RESULTS_DIR, "results.json")
    if cfg.FRESH:
        archive(cfg, log)
        return {}
    if not os.path.isfile(path):
        return {}
    try:
        with open(path) as f:
            previous = json.load(f)
        previous["config"], previous["models"]  # noqa: B018 (both must be there)
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"{path} is damaged ({type(e).__name__}: {e}). It is left as it is. Move it away to "
                        f"continue without its records, or run with --fresh to archive this run and start again.") from None
    differences = config.differences(previous["config"], vars(cfg))
    if differences:
        raise config.ConfigError(
            f"{path} holds results of another configuration ({'; '.join(differences)}). Run with --fresh to "
            f"archive them and start again, or choose another --results-dir.")
    log(f"continuing the run in {cfg.RESULTS_DIR}/: {len(previous['models'])} finished model(s) are reused")
    return previous


def training_state_path(folder, name):
    return os.path.join(folder, f"{name}.training.pt")


def forget_training_state(folder, name):
    """Once the model's record is in results.json its training state is no longer needed."""
    path = training_state_path(folder, name)
    if os.path.isfile(path):
        os.remove(path)


def check_training_state(path, log):
    """A training state that cannot be loaded is set aside; that model's training starts again."""
    if not os.path.isfile(path):
        return
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        missing = {"model", "optimizer", "history", "best_mae", "best_state"} - set(saved)
        if missing:
            raise KeyError(f"missing {', '.join(sorted(missing))}")
    except Exception as e:  # noqa: BLE001 (torch raises RuntimeError, EOFError, UnpicklingError... on a damaged file)
        set_aside(path, f"{type(e).__name__}: {e}", log)
        log(f"{os.path.basename(path)[:-len('.training.pt')]}: its training starts again")


def reuse(done, name, seed, cfg, folder, log):
    """A finished model of this run, if its record and checkpoint are there: (record, model) or None.
    A damaged checkpoint is set aside and its model trained again, except the baseline's once pruned
    models were fine-tuned from it: then the run stops and says what to do."""
    record = next((r for r in done if r["name"] == name and r["seed"] == seed), None)
    if record is None or not os.path.isfile(record["checkpoint"]):
        return None
    path = record["checkpoint"]
    try:
        model, info = load_checkpoint(path)
    except Exception as e:  # noqa: BLE001 (a truncated or overwritten file)
        problem = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        dependents = [r["name"] for r in done if r["seed"] == seed and r["name"] != "baseline"]
        if name == "baseline" and dependents:
            raise DataError(
                f"the baseline checkpoint {path} is damaged ({problem}). The {len(dependents)} pruned model(s) of seed "
                f"{seed} already in {cfg.RESULTS_DIR}/results.json were fine-tuned from it, so it cannot be trained "
                f"again in their place. Restore {path} from a backup, or run with --fresh to archive this run and "
                f"start again.") from None
        set_aside(path, problem, log)
        log(f"{name} (seed {seed}): trained again")
        return None
    if info.get("config_hash") != config_hash(cfg):
        raise config.ConfigError(f"checkpoint {path} was saved by another configuration; run with --fresh or "
                                 f"remove it")
    forget_training_state(folder, name)  # left behind by a kill right after results.json was written
    log(f"{name} (seed {seed}): reusing {path}")
    return record, model
