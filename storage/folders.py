"""The run's folders: every one writable before anything starts, what in them is the run's, archiving
them for --fresh (never a folder holding what is not the run's), and setting a damaged file aside."""
import contextlib
import errno
import glob
import json
import os
import re
import shutil
import tempfile
import time

import cli
from storage import locks

OWNER_FILE = "owner.json"  # the identity of the run a checkpoint folder belongs to
# What a run writes into its results folder; --fresh archives a folder holding nothing else.
RESULTS_FILES = {"results.json", "results.csv", "results_by_ratio.csv", "sensitivity.csv", "summary.md",
                 locks.LOCK_FILE, OWNER_FILE}
# What else in a run's folders is the run's: seed folders, files set aside, files half written.
RUN_FILE = re.compile(r"(seed-?\d+|.*\.damaged-\d{8}-\d{6}|.*\.tmp(\.\w+)?)$")


# A write that failed for lack of space or permission (quantize.py tells these from its own failures).
SPACE_OR_PERMISSION = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}


class WriteFailed(Exception):
    """A file of the run could not be written (a full disk, a folder made read-only): exit 2, naming it."""


def write_failed(path, error):
    """The one message for a write that failed: the file, why, the folder's free space, what to do."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        free = f"{shutil.disk_usage(folder).free / 1e6:,.0f} MB free"
    except OSError:
        free = "an unknown amount of free space"
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    saving = isinstance(error, RuntimeError)
    reason = getattr(error, "strerror", None) or (f"torch.save failed: {text}" if saving else text)
    return WriteFailed(f"cannot write {path} ({reason}); {folder} has {free}. Free space there (or fix the "
                       f"folder's permissions), then run the same command again to continue: nothing "
                       f"finished is lost.")


def write_atomic(path, write, tmp=None, failures=(OSError,)):
    """write(tmp), then rename it to path, so a kill never leaves a half-written file. A write that fails
    (`failures`: torch.save raises RuntimeError on a full disk, not OSError) removes tmp, which would
    otherwise fill the disk for good, and raises WriteFailed naming the file."""
    tmp = tmp or f"{path}.tmp"
    try:
        write(tmp)
        os.replace(tmp, path)
    except failures as e:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise write_failed(path, e) from None


def write_text(path, text, tmp=None):
    """write_atomic for text: results, tables, JSON and CSV files."""
    def write(name):
        with open(name, "w", encoding="utf-8") as f:
            f.write(text)
    write_atomic(path, write, tmp=tmp)


def stamp():
    return time.strftime("%Y%m%d-%H%M%S")


def set_aside(path, problem, log):
    """Rename a damaged file out of the way (never delete it: it may still be worth a look)."""
    aside = f"{path}.damaged-{stamp()}"
    try:
        os.rename(path, aside)  # a rename, not a write: write_atomic is the one write
    except FileNotFoundError:  # another process of the same torchrun run moved it first
        return aside
    log(f"{path} is damaged ({problem}); moved it to {aside}")
    return aside


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
            raise cli.ConfigError(f"{option} {folder}: cannot write there ({e.strerror or e}); "
                                  f"choose a folder this user can write to") from None


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
    project = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # bookkeeping/ is in the project
    for option, folder in (("--results-dir", cfg.RESULTS_DIR), ("--checkpoint-dir", cfg.CHECKPOINT_DIR)):
        if not os.path.isdir(folder):
            continue
        for what, place in (("the working directory", os.getcwd()), ("the project", project),
                            ("your home folder", os.path.expanduser("~"))):
            if inside(place, folder):
                raise cli.ConfigError(
                    f"--fresh would archive {option} {folder}, which is (or holds) {what}; nothing was "
                    f"moved. Give the run a folder of its own, e.g. {option} results_new.")
        others = foreign_entries(folder, cfg)
        if others:
            raise cli.ConfigError(
                f"--fresh would archive {option} {folder}, but it holds files that are not this run's "
                f"({', '.join(others[:5])}{', ...' if len(others) > 5 else ''}); nothing was moved. "
                f"Move them away, or give the run a folder of its own ({option}).")


def archive(cfg, log):
    """--fresh: move the earlier results (all but the lock) and checkpoints to folders named by the time.
    check_archivable has made sure they hold nothing but this run's files."""
    suffix = f".old-{stamp()}"
    folders = [cfg.RESULTS_DIR] + ([] if checkpoints_inside_results(cfg) else [cfg.CHECKPOINT_DIR])
    for folder in folders:
        entries = [e for e in os.listdir(folder) if e != locks.LOCK_FILE] if os.path.isdir(folder) else []
        if not entries:
            continue
        old = os.path.normpath(folder) + suffix
        os.makedirs(old)
        for entry in entries:
            shutil.move(os.path.join(folder, entry), old)
        log(f"--fresh: moved the earlier {folder}/ to {old}/")


# --- working folders in the system's temporary folder ------------------------------------------------

@contextlib.contextmanager
def work_folder(prefix):
    """A folder in the temporary folder, named <prefix><pid>-..., and the temporary folder of everything
    made inside the block (a library's own temporary files among them: ONNX Runtime's quantization makes
    its own), removed at the block's end. A process killed inside it (INT8 calibration: 43 MB a model)
    leaves it behind; the next one removes it at its start (remove_killed)."""
    remove_killed(prefix)
    saved = tempfile.tempdir
    with tempfile.TemporaryDirectory(prefix=f"{prefix}{os.getpid()}-") as work:
        tempfile.tempdir = work
        try:
            yield work
        finally:
            tempfile.tempdir = saved


def remove_killed(prefix):
    """Remove the work folders of `prefix` whose process is gone (the temporary folder is this host's)."""
    for path in glob.glob(os.path.join(tempfile.gettempdir(), f"{glob.escape(prefix)}*-*")):
        found = re.match(rf"{re.escape(prefix)}(\d+)-", os.path.basename(path))
        if found and os.path.isdir(path) and not locks.process_alive(int(found[1])):
            shutil.rmtree(path, ignore_errors=True)


def resolve(results_dir, path):
    """A path stored in results.json (relative to its folder) as a path from here."""
    return path if os.path.isabs(path) else os.path.join(results_dir, path)


def write_json(path, value, text=None):
    """value as JSON (or `text` as it is), written atomically; a full disk is WriteFailed."""
    write_text(path, json.dumps(value, indent=2) if text is None else text,
                       tmp=f"{path}.{os.getpid()}.tmp")
