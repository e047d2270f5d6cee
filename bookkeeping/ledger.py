"""The run's bookkeeping: the earlier results of this run, continued or archived (--fresh), finished
models reused, and paths stored relative to the results folder. Which run a file belongs to is
run_identity.py's; the lock, locks.py's; the folders' checks and archiving, folders.py's.

A model's training is never lost to a kill: its training state stays on disk until its record is in
results.json (`forget_training_state`), so a run cut off while a trained model was being measured
loads the finished training state and only measures the model again.
"""
import json
import os

import cli
from storage import folders
from bookkeeping import results_parts
from bookkeeping import run_identity
from dataset import DataError
from model import load_checkpoint

# A record's files, stored relative to the results folder.
PATH_FIELDS = ("checkpoint", "onnx_path", "int8_path")
SENSITIVITY_ROWS = ("sensitivity", "group_sensitivity")  # results.json's rows per seed, measured once


def relative_paths(record, results_dir):
    """The record's files relative to the results folder, so that moving the run's folders keeps it whole."""
    for field in PATH_FIELDS:
        if record.get(field):
            record[field] = os.path.relpath(record[field], results_dir)
    return record


# --- continuing a run ------------------------------------------------------------------------

def earlier_results(cfg):
    """Before any data is read: the earlier results of this configuration ({} for none or --fresh).
    Another configuration, a damaged results.json, or a --fresh that would move what is not the run's
    stop the run, saying what to do; nothing is moved yet."""
    path = os.path.join(cfg.RESULTS_DIR, "results.json")
    if cfg.FRESH:
        folders.check_archivable(cfg)
        return {}
    if not os.path.isfile(path):
        return {}
    try:
        with open(path) as f:
            previous = json.load(f)
        damage = results_parts.problems(previous)  # every part continuing reads, before any is used
    except ValueError as e:  # not JSON (cut off), or not text
        damage = [f"{type(e).__name__}: {e}"]
    if damage:
        raise DataError(f"{path} is damaged ({'; '.join(damage)}). It is left as it is. Move it away "
                        f"to continue without its records, or run with --fresh to archive this run and start "
                        f"again.") from None
    differences = cli.differences(previous["config"], vars(cfg))
    if differences:
        raise cli.ConfigError(
            f"{path} holds results of another configuration ({'; '.join(differences)}). Run with --fresh to "
            f"archive them and start again, or choose another --results-dir.")
    return previous


def start_or_continue(cfg, previous, identity, skipped, log):
    """After the data is read and checked: archive for --fresh, or continue `previous` when it is this
    run (the same data, the same videos skipped). Results of other data are never mixed in."""
    if cfg.FRESH:
        folders.archive(cfg, log)
        return {}
    if not previous:
        return {}
    path = os.path.join(cfg.RESULTS_DIR, "results.json")
    redo = "Run with --fresh to archive them and start again, or choose another --results-dir."
    before = {s["video"] for s in previous.get("skipped_videos", [])}
    now = {s["video"] for s in skipped}
    if before != now:
        changes = ([f"readable again: {', '.join(sorted(before - now))}"] if before - now else []) + \
                  ([f"now skipped: {', '.join(sorted(now - before))}"] if now - before else [])
        raise DataError(f"{path} was measured on other videos: the skipped videos changed "
                        f"({'; '.join(changes)}), so its models were tested on another test set. {redo}")
    old = previous.get("identity")
    if not old:
        raise DataError(f"{path} was written before runs recorded their data, so it cannot be told whether "
                        f"it used this data. {redo}")
    if old.get("data") != identity["data"]:
        what = ("FileList.csv" if old["data"].get("filelist") != identity["data"]["filelist"]
                else f"the videos in {os.path.join(cfg.DATA_ROOT, 'Videos')} (replaced, added or removed)")
        raise DataError(f"{path} holds results of other data: {what} changed since it was written. {redo}")
    before, now = old.get("processes", 1), identity.get("processes", 1)
    if before != now:
        raise cli.ConfigError(
            f"{path} holds results of {before} process(es) (an effective batch of {before} x "
            f"{cfg.BATCH_SIZE} videos); this run has {now} ({now} x {cfg.BATCH_SIZE}), which changes the "
            f"numbers. Continue it with "
            f"{'python main.py' if before == 1 else f'torchrun --nproc_per_node {before} main.py'} and the "
            f"same options, or run with --fresh to archive it and start again, or choose another "
            f"--results-dir.")
    if old.get("id") != identity["id"]:
        raise cli.ConfigError(f"{path} holds results of another run (identity {old.get('id')}, this run "
                              f"{identity['id']}: the options, the data and the processes are the same, "
                              f"so it was written by an earlier version of ef-prune, which identified "
                              f"runs otherwise). {redo}")
    log(f"continuing the run in {cfg.RESULTS_DIR}/: {len(previous['models'])} finished model(s) are reused")
    return previous


def with_earlier(results, earlier):
    """results as results.json is to hold them now: this run's records and sensitivity rows (layer and
    coupled-group), then every earlier record (and seed's rows) not yet replaced by a newer one of the
    same model and seed. A continued run rewrites results.json after each model it reuses; a stop then
    must lose none of the others, or the next start would train them again and re-time every model."""
    mine = {(r["name"], r["seed"]) for r in results["models"]}
    kept = [r for r in earlier.get("models", []) if (r["name"], r["seed"]) not in mine]
    merged = {**results, "models": results["models"] + kept}
    for key in SENSITIVITY_ROWS:
        rows = results.get(key, [])
        seeds = {r["seed"] for r in rows}
        merged[key] = rows + [r for r in earlier.get(key, []) if r["seed"] not in seeds]
    return merged


def training_state_path(folder, name):
    return os.path.join(folder, f"{name}.training.pt")


def epoch_log_path(folder, name):
    """The model's per-epoch log beside its checkpoint, for `tail -f` and plots while a run goes."""
    return os.path.join(folder, f"{name}_log.csv")


def forget_training_state(folder, name):
    """Once the model's record is in results.json its training state is no longer needed."""
    path = training_state_path(folder, name)
    for leftover in (path, run_identity.identity_path(path)):
        if os.path.isfile(leftover):
            os.remove(leftover)


def reuse(done, name, seed, cfg, folder, *, identity, log, device, main=True):
    """A finished model of this run, if its record and checkpoint are there: (record, model on `device`,
    the run's) or None. The checkpoint is looked for in this run's checkpoint folder (which may have
    moved), and one of another run is refused. A damaged checkpoint is set aside and its model trained
    again, except the baseline's once pruned models were fine-tuned from it: then the run stops and says
    what to do. Only the main process (`main`) moves or deletes a file: under torchrun every process
    reuses, and two of them moving one file race."""
    record = next((r for r in done if r["name"] == name and r["seed"] == seed), None)
    path = os.path.join(folder, f"{name}.pt")
    if record is None or not os.path.isfile(path):
        return None
    try:
        model, info = load_checkpoint(path, device)
    except Exception as e:  # noqa: BLE001 (a truncated or overwritten file)
        problem = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        dependents = [r["name"] for r in done if r["seed"] == seed and r["name"] != "baseline"]
        if name == "baseline" and dependents:
            raise DataError(
                f"the baseline checkpoint {path} is damaged ({problem}). The {len(dependents)} pruned "
                f"model(s) of seed {seed} already in {cfg.RESULTS_DIR}/results.json were fine-tuned from it, "
                f"so it cannot be trained again in their place. Restore {path} from a backup, or run with "
                f"--fresh to archive this run and start again.") from None
        if main:
            folders.set_aside(path, problem, log)
        log(f"{name} (seed {seed}): trained again")
        return None
    if info.get("identity") != identity["id"]:
        raise cli.ConfigError(
            f"checkpoint {path} was saved by another run (identity {info.get('identity')}; this run "
            f"{identity['id']}: another configuration or other data); it is not reused. Run with --fresh to "
            f"archive it, or choose another --results-dir.")
    if main:
        forget_training_state(folder, name)  # left behind by a kill right after results.json was written
    record = dict(record)  # its files where they are now (the folders may have moved)
    record["checkpoint"] = path
    for field, suffix in (("onnx_path", ".onnx"), ("int8_path", ".int8.onnx")):
        if field in record:
            record[field] = path[:-len(".pt")] + suffix
    log(f"{name} (seed {seed}): reusing {path}")
    return record, model
