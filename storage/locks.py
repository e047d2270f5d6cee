"""One run per folder: the lock a run takes on its results folder (and on a checkpoint folder outside
it), taken over from a dead process on this host, released when main.py ends. Another live run's
lock stops the run with `FolderInUse` (exit status 3), naming that run."""
import fcntl
import json
import os
import socket
import time

LOCK_FILE = "run.lock"


class FolderInUse(RuntimeError):
    """Another live run holds the results folder."""


def process_alive(pid):
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:  # not a pid: never taken over
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def lock(results_dir, log):
    """Take results_dir for this run, or raise FolderInUse naming the run that holds it. A lock left
    by a dead process on this host is taken over (`take_over`: by one process only). Returns the
    lock's path (for `unlock`)."""
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
            holder = read(path)
            if holder is GONE:  # released in between: try again
                continue
            if holder is None:
                raise FolderInUse(f"{results_dir}/ is locked by {path}, which cannot be read (not a "
                                  f"lock main.py writes). If no other main.py is writing to {results_dir}/, "
                                  f"delete {path} and start again.")
            if holder.get("host") == me["host"] and not process_alive(holder.get("pid", -1)):
                if take_over(results_dir, path, holder, tmp):
                    log(f"{path}: the run that locked {results_dir}/ (pid {holder.get('pid')}, started "
                        f"{holder.get('started')}) is no longer running; taking over")
                    HELD.append(path)
                    return path
                continue  # another start took it over first: its lock is read again
            raise FolderInUse(
                f"{results_dir}/ is in use by another run: pid {holder.get('pid')} on {holder.get('host')}, "
                f"started {holder.get('started')}. Wait for it to finish, or choose another --results-dir. "
                f"If that run is gone (e.g. on another machine sharing this folder), delete {path}.")
        raise FolderInUse(f"could not lock {results_dir}/ ({path} keeps changing: is another run starting "
                          f"there?). Start again once the other run is going, or choose another "
                          f"--results-dir.")
    finally:
        os.remove(tmp)


GONE = object()  # read(): the lock is no longer there


def read(path):
    """The lock's holder (a dict), GONE, or None for a file that is not a lock main.py writes."""
    try:
        with open(path) as f:
            holder = json.load(f)
    except FileNotFoundError:
        return GONE
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def take_over(folder, path, stale, tmp):
    """Replace a dead process's lock by ours, one process at a time: under an flock on the folder
    (released by the kernel should this process die too) the lock is read again, so of several starts
    only the first still finds the dead one's lock, and none removes the lock of a live run. True when
    this process holds the lock now."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if read(path) != stale:
            return False
        os.remove(path)
        try:
            os.link(tmp, path)  # a start that is not taking over may link first: then it holds the lock
        except FileExistsError:
            return False
        return True
    finally:
        os.close(fd)  # releases the flock


HELD = []  # this process's locks, released by unlock_all when main.py ends


def unlock_all():
    while HELD:
        unlock(HELD.pop())


def unlock(path):
    """Remove the lock if it is still this process's."""
    try:
        with open(path) as f:
            holder = json.load(f)
            if isinstance(holder, dict) and holder.get("pid") == os.getpid():
                os.remove(path)
    except (OSError, ValueError):
        pass
