"""A run's decoded clips shared by the processes of one torchrun run on one machine: the main process
decodes every split once and writes each to one file, every process maps that file (its pages shared
through the page cache, not copied per process: EchoNet-Dynamic's clips are 11 GiB at 32 frames of
112 px, and 8 processes that each decoded their own would hold 90 GiB), and the files are unlinked once
all have mapped them (the space is freed when the last process ends). One process: nothing changes."""
import contextlib
import glob
import os

import numpy as np
import torch
import torch.distributed as dist

import processes
from storage import folders

PREFIX = "shared-clips-"  # then the split, the main process's id, .npy


def share(splits, skipped, folder, log):
    """Under torchrun, once the main process has decoded `splits` (and `skipped`, its skipped-video
    records): every process's splits hold the same clips, mapped from one file per split in `folder`,
    and every process gets the skipped records. Returns them."""
    if processes.world_size() == 1:
        return skipped
    paths = None
    if processes.is_main():
        remove_leftovers(folder, log)
        paths = {name: write(split.clips, folder, name) for name, split in splits.items()}
    message = [paths, skipped]
    dist.broadcast_object_list(message, src=0)
    paths, skipped = message
    for name, split in splits.items():
        if not processes.is_main():  # the main process dropped them while decoding
            split.drop({s["video"] for s in skipped if s["split"] == split.split})
        split.clips = mapped(paths[name])
    processes.barrier()  # every process has mapped every file
    if processes.is_main():
        for path in paths.values():
            os.remove(path)
    return skipped


def write(clips, folder, split):
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{PREFIX}{split}-{os.getpid()}.npy")
    folders.write_atomic(path, lambda tmp: np.save(tmp, clips.numpy()), tmp=f"{path}.tmp.npy")
    return path


def mapped(path):
    """The clips in `path` as a tensor over a copy-on-write mapping: read from the shared pages, never
    written (a write would copy the page into this process alone)."""
    return torch.from_numpy(np.load(path, mmap_mode="c"))


def remove_leftovers(folder, log):
    """Files of a run that was killed before it unlinked them (their process is gone): each is as large
    as a split's clips."""
    for path in glob.glob(os.path.join(folder, f"{PREFIX}*.npy")):
        pid = path[len(os.path.join(folder, PREFIX)):].split("-")[-1].split(".")[0]
        if pid.isdigit() and not alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):  # another run's cleanup came first
                os.remove(path)
            log(f"removed {path}, left behind by a run that was killed")


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
