"""One run per folder: the lock a run takes on its results folder (and on a checkpoint folder outside
it), taken over from a dead process on this host, released when main.py ends. Another live run's
lock stops the run with `FolderInUse` (exit status 3), naming that run."""
import json
import os
import socket
import time

LOCK_FILE = "run.lock"


class FolderInUse(RuntimeError):
    """Another live run holds the results folder."""


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
