"""The run's bookkeeping: one run per results folder (a lock), which run a folder holds (its identity),
continuing a run, reusing finished models, and setting damaged files aside.

A run's identity covers what changes its numbers: the configuration (all but config.NOT_RESULTS) and
the data (FileList.csv's bytes, and each listed video's name, size and content, skipped ones included).
results.json, every checkpoint, every training state and the checkpoint folder (owner.json) carry it;
one that differs is refused with the file named and what to do, never continued or reused.

A model's training is never lost to a kill: its training state stays on disk until its record is in
results.json (`forget_training_state`), so a run cut off while a trained model was being measured
loads the finished training state and only measures the model again.
"""
import hashlib
import json
import os
import re
import shutil
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import torch

import config
from dataset import DataError
from model import load_checkpoint

LOCK_FILE = "run.lock"
OWNER_FILE = "owner.json"  # the identity of the run a checkpoint folder belongs to
# What a run writes into its results folder; --fresh archives a folder holding nothing else.
RESULTS_FILES = {"results.json", "results.csv", "results_by_ratio.csv", "sensitivity.csv", "summary.md", LOCK_FILE,
                 OWNER_FILE}
RUN_FILE = re.compile(r"(seed-?\d+|.*\.damaged-\d{8}-\d{6}|.*\.tmp(\.\w+)?)$")  # seed folders, set aside, half written
PATH_FIELDS = ("checkpoint", "onnx_path", "int8_path")  # a record's files, stored relative to the results folder


class FolderInUse(RuntimeError):
    """Another live run holds the results folder."""


def config_hash(cfg):
    """Identifies the configuration that produced a checkpoint (constants that change results only)."""
    relevant = {k: v for k, v in sorted(vars(cfg).items()) if k not in cfg.NOT_RESULTS}
    return hashlib.sha1(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_digest(path):
    """(size, sha1) of a file; None for a file that is not there."""
    try:
        h = hashlib.sha1()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return os.path.getsize(path), h.hexdigest()
    except OSError:
        return None


def data_fingerprint(root, names):
    """FileList.csv's bytes, and each video's name, size and content hash (names: every video the run
    read, skipped ones included: a replaced video changes the data). hashlib releases the GIL, so the
    threads read and hash in parallel."""
    paths = [os.path.join(root, "Videos", f"{name}.avi") for name in sorted(set(names))]
    with ThreadPoolExecutor(min(16, (os.cpu_count() or 1) + 4)) as pool:
        digests = list(pool.map(file_digest, paths))
    videos = hashlib.sha1("\n".join(f"{os.path.basename(p)}|{d}" for p, d in zip(paths, digests)).encode())
    listed = file_digest(os.path.join(root, "FileList.csv"))
    return {"filelist": listed and listed[1], "videos": videos.hexdigest(), "video_count": len(paths)}


def run_identity(cfg, fingerprint):
    """The run's identity: the result-changing configuration and the data, one id for files to carry."""
    ident = {"config": config_hash(cfg), "data": fingerprint}
    ident["id"] = hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    return ident


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
                HELD.append(path)
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


HELD = []  # this process's locks, released by unlock_all when main.py ends


def unlock_all():
    while HELD:
        unlock(HELD.pop())


def unlock(path):
    """Remove the lock if it is still this process's."""
    try:
        with open(path) as f:
            if json.load(f).get("pid") == os.getpid():
                os.remove(path)
    except (OSError, ValueError):
        pass


# --- folders --------------------------------------------------------------------------------

def check_writable(cfg):
    """Every folder the run writes to, created and written to now, not after an epoch of training."""
    folders = [("--results-dir", cfg.RESULTS_DIR), ("--checkpoint-dir", cfg.CHECKPOINT_DIR)]
    folders += [("--figures-dir", cfg.FIGURES_DIR)] if cfg.DRAW_FIGURES else []
    folders += [("--cache-dir", cfg.CACHE_DIR)] if cfg.CACHE_FRAMES else []
    for option, folder in folders:
        probe = os.path.join(folder, f".write-test.{os.getpid()}.tmp")
        try:
            os.makedirs(folder, exist_ok=True)
            with open(probe, "w") as f:
                f.write("ok")
            os.remove(probe)
        except OSError as e:
            raise config.ConfigError(f"{option} {folder}: cannot write there ({e.strerror or e}); choose a folder "
                                     f"this user can write to") from None


def inside(path, folder):
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def checkpoints_inside_results(cfg):
    return inside(cfg.CHECKPOINT_DIR, cfg.RESULTS_DIR)


def foreign_entries(folder, cfg):
    """What in `folder` a run did not write (--fresh archives a folder only when this is empty)."""
    if not os.path.isdir(folder):
        return []
    own = set(RESULTS_FILES)
    for other in (cfg.CHECKPOINT_DIR, cfg.FIGURES_DIR, cfg.CACHE_DIR):  # the run's folders placed inside it
        if os.path.realpath(os.path.dirname(os.path.normpath(other))) == os.path.realpath(folder):
            own.add(os.path.basename(os.path.normpath(other)))
    return sorted(e for e in os.listdir(folder) if e not in own and not RUN_FILE.fullmatch(e))


def check_archivable(cfg):
    """--fresh never moves what is not the run's: the working directory, the project, a folder above
    them, or a folder holding other files. Checked before anything is read or moved."""
    project = os.path.dirname(os.path.abspath(__file__))
    for option, folder in (("--results-dir", cfg.RESULTS_DIR), ("--checkpoint-dir", cfg.CHECKPOINT_DIR)):
        if not os.path.isdir(folder):
            continue
        for what, place in (("the working directory", os.getcwd()), ("the project", project),
                            ("your home folder", os.path.expanduser("~"))):
            if inside(place, folder):
                raise config.ConfigError(f"--fresh would archive {option} {folder}, which is (or holds) {what}; "
                                         f"nothing was moved. Give the run a folder of its own, e.g. "
                                         f"{option} results_new.")
        others = foreign_entries(folder, cfg)
        if others:
            raise config.ConfigError(
                f"--fresh would archive {option} {folder}, but it holds files that are not this run's "
                f"({', '.join(others[:5])}{', ...' if len(others) > 5 else ''}); nothing was moved. Move them "
                f"away, or give the run a folder of its own ({option}).")


def claim_checkpoints(cfg, identity, log):
    """A checkpoint folder belongs to one run: stamped with its identity (owner.json); another run's
    folder is refused. Inside the results folder it is under the results lock already; elsewhere it is
    locked too (returns that lock's path, for `unlock`)."""
    os.makedirs(cfg.CHECKPOINT_DIR, exist_ok=True)
    path = os.path.join(cfg.CHECKPOINT_DIR, OWNER_FILE)
    try:
        with open(path) as f:
            owner = json.load(f).get("identity")
    except FileNotFoundError:
        owner = None
    except (OSError, ValueError, AttributeError):
        owner = "unreadable"
    if owner is not None and owner != identity["id"]:
        raise config.ConfigError(
            f"checkpoint folder {cfg.CHECKPOINT_DIR} belongs to another run (its {OWNER_FILE}: identity {owner}; this "
            f"run: {identity['id']}, another configuration or other data). Its checkpoints are not reused or "
            f"overwritten. Choose another --checkpoint-dir, leave it unset (checkpoints then live in the results "
            f"folder), or run with --fresh to archive it.")
    held = None if checkpoints_inside_results(cfg) else lock(cfg.CHECKPOINT_DIR, log)
    if owner is None:
        write_json(path, {"identity": identity["id"], "config": identity["config"], "data": identity["data"]})
    return held


def write_json(path, value):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=2)
    os.replace(tmp, path)


def relative_paths(record, results_dir):
    """The record's files relative to the results folder, so that moving the run's folders keeps it whole."""
    for field in PATH_FIELDS:
        if record.get(field):
            record[field] = os.path.relpath(record[field], results_dir)
    return record


def resolve(results_dir, path):
    """A path stored in results.json (relative to its folder) as a path from here."""
    return path if os.path.isabs(path) else os.path.join(results_dir, path)


# --- continuing a run ------------------------------------------------------------------------

def archive(cfg, log):
    """--fresh: move the earlier results (all but the lock) and checkpoints to folders named by the time.
    check_archivable has made sure they hold nothing but this run's files."""
    suffix = f".old-{stamp()}"
    folders = [cfg.RESULTS_DIR] + ([] if checkpoints_inside_results(cfg) else [cfg.CHECKPOINT_DIR])
    for folder in folders:
        entries = [e for e in os.listdir(folder) if e != LOCK_FILE] if os.path.isdir(folder) else []
        if not entries:
            continue
        old = os.path.normpath(folder) + suffix
        os.makedirs(old)
        for entry in entries:
            shutil.move(os.path.join(folder, entry), old)
        log(f"--fresh: moved the earlier {folder}/ to {old}/")


def earlier_results(cfg):
    """Before any data is read: the earlier results of this configuration ({} for none or --fresh).
    Another configuration, a damaged results.json, or a --fresh that would move what is not the run's
    stop the run, saying what to do; nothing is moved yet."""
    path = os.path.join(cfg.RESULTS_DIR, "results.json")
    if cfg.FRESH:
        check_archivable(cfg)
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
    return previous


def start_or_continue(cfg, previous, identity, skipped, log):
    """After the data is read and checked: archive for --fresh, or continue `previous` when it is this
    run (the same data, the same videos skipped). Results of other data are never mixed in."""
    if cfg.FRESH:
        archive(cfg, log)
        return {}
    if not previous:
        return {}
    path = os.path.join(cfg.RESULTS_DIR, "results.json")
    redo = f"Run with --fresh to archive them and start again, or choose another --results-dir."
    before = {s["video"] for s in previous.get("skipped_videos", [])}
    now = {s["video"] for s in skipped}
    if before != now:
        changes = ([f"readable again: {', '.join(sorted(before - now))}"] if before - now else []) + \
                  ([f"now skipped: {', '.join(sorted(now - before))}"] if now - before else [])
        raise DataError(f"{path} was measured on other videos: the skipped videos changed ({'; '.join(changes)}), so "
                        f"its models were tested on another test set. {redo}")
    old = previous.get("identity")
    if not old:
        raise DataError(f"{path} was written before runs recorded their data, so it cannot be told whether it "
                        f"used this data. {redo}")
    if old.get("data") != identity["data"]:
        what = ("FileList.csv" if old["data"].get("filelist") != identity["data"]["filelist"]
                else f"the videos in {os.path.join(cfg.DATA_ROOT, 'Videos')} (replaced, added or removed)")
        raise DataError(f"{path} holds results of other data: {what} changed since it was written. {redo}")
    if old.get("id") != identity["id"]:
        raise config.ConfigError(f"{path} holds results of another run (identity {old.get('id')}, this run "
                                 f"{identity['id']}). {redo}")
    log(f"continuing the run in {cfg.RESULTS_DIR}/: {len(previous['models'])} finished model(s) are reused")
    return previous


def training_state_path(folder, name):
    return os.path.join(folder, f"{name}.training.pt")


def identity_path(state_path):
    """The identity of the run a training state belongs to, beside it (train.py writes the state)."""
    return state_path[:-len(".pt")] + ".identity"


def forget_training_state(folder, name):
    """Once the model's record is in results.json its training state is no longer needed."""
    path = training_state_path(folder, name)
    for leftover in (path, identity_path(path)):
        if os.path.isfile(leftover):
            os.remove(leftover)


def check_training_state(path, identity, log):
    """A training state of another run is refused; one that cannot be loaded is set aside and that
    model's training starts again. Then the state to come is stamped with this run's identity."""
    stamp_path = identity_path(path)
    if os.path.isfile(path):
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            missing = {"model", "optimizer", "history", "best_mae", "best_state"} - set(saved)
            if missing:
                raise KeyError(f"missing {', '.join(sorted(missing))}")
        except Exception as e:  # noqa: BLE001 (torch raises RuntimeError, EOFError, UnpicklingError... on a damaged file)
            set_aside(path, f"{type(e).__name__}: {e}", log)
            log(f"{os.path.basename(path)[:-len('.training.pt')]}: its training starts again")
    if os.path.isfile(path):  # intact: continued only by the run that wrote it
        try:
            with open(stamp_path) as f:
                owner = f.read().strip()
        except OSError:
            owner = "unknown (no identity beside it)"
        if owner != identity["id"]:
            raise config.ConfigError(
                f"{path} is the training state of another run (identity {owner}; this run {identity['id']}: another "
                f"configuration or other data). It is not continued. Run with --fresh to archive it, or choose "
                f"another --results-dir (checkpoints live inside it unless --checkpoint-dir is given).")
    tmp = f"{stamp_path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(identity["id"])
    os.replace(tmp, stamp_path)


def reuse(done, name, seed, cfg, folder, identity, log):
    """A finished model of this run, if its record and checkpoint are there: (record, model) or None.
    The checkpoint is looked for in this run's checkpoint folder (which may have moved), and one of
    another run is refused. A damaged checkpoint is set aside and its model trained again, except the
    baseline's once pruned models were fine-tuned from it: then the run stops and says what to do."""
    record = next((r for r in done if r["name"] == name and r["seed"] == seed), None)
    path = os.path.join(folder, f"{name}.pt")
    if record is None or not os.path.isfile(path):
        return None
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
    if info.get("identity") != identity["id"]:
        raise config.ConfigError(
            f"checkpoint {path} was saved by another run (identity {info.get('identity')}; this run {identity['id']}: "
            f"another configuration or other data); it is not reused. Run with --fresh to archive it, or choose "
            f"another --results-dir.")
    forget_training_state(folder, name)  # left behind by a kill right after results.json was written
    record = dict(record)  # its files where they are now (the folders may have moved)
    record["checkpoint"] = path
    for field, suffix in (("onnx_path", ".onnx"), ("int8_path", ".int8.onnx")):
        if field in record:
            record[field] = path[:-len(".pt")] + suffix
    log(f"{name} (seed {seed}): reusing {path}")
    return record, model
