"""Which run a file belongs to. A run's identity covers what changes its numbers: the configuration
(all but config.NOT_RESULTS: folders, the data's included), the number of processes and the data
(FileList.csv's bytes, and each listed video's name, size and content, skipped ones included).
results.json, every checkpoint, every training state (an .identity file beside it) and the checkpoint
folder (owner.json) carry it; one that differs is refused with the file named and what to do, never
continued or reused."""
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.distributed as dist

import cli
from storage import folders
from storage import locks


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
    """The run's identity: the result-changing configuration, the data and the number of processes
    (torchrun's: every training step takes processes x BATCH_SIZE videos, so it changes the numbers),
    one id for files to carry."""
    ident = {"config": config_hash(cfg), "data": fingerprint,
             "processes": dist.get_world_size() if dist.is_initialized() else 1}
    ident["id"] = hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    return ident


def claim_checkpoints(cfg, identity, log):
    """A checkpoint folder belongs to one run: stamped with its identity (owner.json); another run's
    folder is refused. Inside the results folder it is under the results lock already; elsewhere it is
    locked too (returns that lock's path, for `unlock`)."""
    os.makedirs(cfg.CHECKPOINT_DIR, exist_ok=True)
    path = os.path.join(cfg.CHECKPOINT_DIR, folders.OWNER_FILE)
    try:
        with open(path) as f:
            owner = json.load(f).get("identity")
    except FileNotFoundError:
        owner = None
    except (OSError, ValueError, AttributeError) as e:
        raise cli.ConfigError(
            f"{path} cannot be read ({type(e).__name__}: {e}); it says which run the checkpoint folder "
            f"{cfg.CHECKPOINT_DIR} belongs to. If that folder holds this run's checkpoints (the same options "
            f"and data), delete {path}: it is written again and every checkpoint is still checked on its "
            f"own. Otherwise choose another --checkpoint-dir.") from None
    if owner is not None and owner != identity["id"]:
        raise cli.ConfigError(
            f"checkpoint folder {cfg.CHECKPOINT_DIR} belongs to another run (its {folders.OWNER_FILE}: "
            f"identity {owner}; this run: {identity['id']}, another configuration or other data). Its "
            f"checkpoints are not reused or overwritten. Choose another --checkpoint-dir, leave it unset "
            f"(checkpoints then live in the results folder), or run with --fresh to archive it.")
    held = None if folders.checkpoints_inside_results(cfg) else locks.lock(cfg.CHECKPOINT_DIR, log)
    if owner is None:
        folders.write_json(path, {"identity": identity["id"], "config": identity["config"],
                                  "data": identity["data"]})
    return held


def identity_path(state_path):
    """The identity of the run a training state belongs to, beside it (train.py writes the state)."""
    return state_path[:-len(".pt")] + ".identity"


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
        except Exception as e:  # torch raises RuntimeError, EOFError, UnpicklingError... on a damaged file
            folders.set_aside(path, f"{type(e).__name__}: {e}", log)
            log(f"{os.path.basename(path)[:-len('.training.pt')]}: its training starts again")
    if os.path.isfile(path):  # intact: continued only by the run that wrote it
        try:
            with open(stamp_path) as f:
                owner = f.read().strip()
        except OSError:
            owner = "unknown (no identity beside it)"
        if owner != identity["id"]:
            raise cli.ConfigError(
                f"{path} is the training state of another run (identity {owner}; this run {identity['id']}: "
                f"another configuration or other data). It is not continued. Run with --fresh to archive it, "
                f"or choose another --results-dir (checkpoints live inside it unless --checkpoint-dir is "
                f"given).")
    folders.write_json(stamp_path, None, text=identity["id"])
