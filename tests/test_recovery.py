"""Nothing breaks a run: a kill at any step after training loses no training, damaged files are set
aside or rebuilt (or stop the run with a message saying what to do), and one run holds a results
folder at a time."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from bookkeeping import ledger
import latency
from storage import locks
import main
import metrics
import onnx_runtime
import reports
import seed_models
from conftest import LEAN, ROOT, TINY, options, run_main

# the baseline and one pruned model, exported to ONNX: only what the bookkeeping needs
ARGS = [*TINY, *LEAN, "--unstructured-pruning-ratios", "0.5", "--structured-pruning-ratios", "",
        "--physical-structured-pruning", "false"]
KEYS = ["name", "seed", "test_mae", "test_rmse", "sparsity", "params_nonzero", "flops"]


def args(sample_root, *more):
    return [*ARGS, "--data-root", sample_root, *more]


def baseline_only(sample_root):
    """For the cases about the baseline's training: the pruned model would only add time."""
    return args(sample_root, "--unstructured-pruning-ratios", "")


def rows(folder):
    with open(os.path.join(folder, "results", "results.json")) as f:
        return [{k: r[k] for k in KEYS} for r in json.load(f)["models"]]


@pytest.fixture(scope="module")
def finished_run(sample_root, tmp_path_factory):
    """An uninterrupted run, with relative folders so a copy of it is a run of its own."""
    out = tmp_path_factory.mktemp("finished")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(out)
        main.main(args(sample_root))
    return out


def copy_of(finished_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    return out


class Killed(BaseException):
    """What a SIGKILL leaves behind: the files as they are at that moment, no clean-up code run."""


def killed_at(monkeypatch, module, name):
    real = getattr(module, name)

    def kill(*a, **k):
        monkeypatch.setattr(module, name, real)
        raise Killed
    monkeypatch.setattr(module, name, kill)


# The steps between the baseline's last training epoch and its record in results.json, then its latency.
STEPS = {
    "before its checkpoint is saved": (seed_models, "save_checkpoint"),
    "while its FLOPs are counted": (metrics, "flops"),
    "during its ONNX export": (onnx_runtime, "export"),
    "before results.json is written": (reports, "write_results"),
    "after results.json, before its training state is removed": (ledger, "forget_training_state"),
    "during the latency phase, after every model was trained": (latency, "rounds"),
}


@pytest.mark.parametrize("step", STEPS)
def test_a_kill_after_the_last_epoch_loses_no_training(step, sample_root, finished_run, tmp_path, monkeypatch,
                                                       capsys):
    monkeypatch.chdir(tmp_path)
    killed_at(monkeypatch, *STEPS[step])
    with pytest.raises(Killed):
        main.main(baseline_only(sample_root))
    capsys.readouterr()

    main.main(baseline_only(sample_root))
    log = capsys.readouterr().out
    assert "baseline epoch 1/1" not in log  # not trained again: continued from its state, or reused
    assert "baseline: continuing after epoch 1" in log or "baseline (seed 42): reusing" in log
    assert rows(tmp_path) == rows(finished_run)[:1]
    assert not list((tmp_path / "results" / "checkpoints").rglob("*.training.pt"))
    # timed in full
    assert all(r["latency_rounds"] == r["onnx_latency_rounds"] == 3 for r in saved_records(tmp_path))


def saved_records(folder):
    with open(os.path.join(folder, "results", "results.json")) as f:
        return json.load(f)["models"]


def test_records_without_round_latencies_are_timed_on_restart_and_a_timed_run_is_not(sample_root,
                                                                                    finished_run, tmp_path,
                                                                                    run_here):
    """A run stopped before its latency phase wrote records without latency: the same command times every
    model (nothing is trained again); started once more, the finished run is left as it is."""
    out = copy_of(finished_run, tmp_path)
    results = json.loads((out / "results" / "results.json").read_text())
    for record in results["models"]:
        for key in [k for k in record if "latency" in k]:
            del record[key]
    (out / "results" / "results.json").write_text(json.dumps(results))
    again = run_here("main.py", *args(sample_root), cwd=out)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "epoch 1/1" not in again.stdout and "latency: 3 models, 6 model-runtime pairs in 3" in again.stdout
    timed = saved_records(out)
    assert rows(out) == rows(finished_run)
    assert all(r["latency_rounds"] == 3 and r["latency_low_ms"] <= r["latency_ms"] <= r["latency_high_ms"]
               and "onnx_latency_speedup" in r for r in timed)
    once_more = run_here("main.py", *args(sample_root), cwd=out)
    assert once_more.returncode == 0 and "latency:" not in once_more.stdout
    assert saved_records(out) == timed


def test_killed_by_sigkill_after_the_baseline_the_run_continues_without_retraining(sample_root, finished_run,
                                                                                     tmp_path, run_here):
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "main.py"), *args(sample_root)],
                               cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = tmp_path / "results" / "results.json"
    deadline = time.time() + 300
    while not (results.is_file() and results.stat().st_size) and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert [r["name"] for r in rows(tmp_path)] == ["baseline"]

    again = run_here("main.py", *args(sample_root), cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "baseline (seed 42): reusing" in again.stdout and "baseline epoch" not in again.stdout
    assert "is no longer running; taking over" in again.stdout  # the killed run's lock
    assert rows(tmp_path) == rows(finished_run)  # every row once, same numbers
    assert not list((tmp_path / "results" / "checkpoints").rglob("*.tmp"))


def test_fresh_archives_earlier_results_and_starts_again(sample_root, finished_run, tmp_path, run_here):
    out = copy_of(finished_run, tmp_path)
    first = (out / "results" / "results.json").read_bytes()
    result = run_here("main.py", *baseline_only(sample_root), "--fresh", cwd=out)
    assert result.returncode == 0 and "--fresh: moved the earlier results/" in result.stdout
    archived = [p for p in out.iterdir() if p.name.startswith("results.old-")]
    assert len(archived) == 1 and (archived[0] / "results.json").read_bytes() == first
    assert "baseline epoch 1/1" in result.stdout and rows(out) == rows(finished_run)[:1]


def test_another_run_pointed_at_this_runs_checkpoints_is_refused(sample_root, finished_run, tmp_path,
                                                                  run_here):
    """Another fine-tuning learning rate, another results folder, this run's checkpoint folder: refused
    before any training, and nothing of the first run is continued, reused or overwritten."""
    out = copy_of(finished_run, tmp_path)
    checkpoints = out / "results" / "checkpoints"
    before = {p: p.read_bytes() for p in checkpoints.rglob("*") if p.is_file()}
    result = run_here("main.py", *args(sample_root),
                      *options(fine_tune_learning_rate="1e-3", results_dir="other",
                               checkpoint_dir="results/checkpoints"), cwd=out)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "epoch 1/1" not in result.stdout
    assert "checkpoint folder results/checkpoints belongs to another run (its owner.json" in result.stderr
    assert {p: p.read_bytes() for p in checkpoints.rglob("*") if p.is_file()} == before


def test_moved_folders_keep_the_run_whole(sample_root, finished_run, tmp_path, run_here):
    """The results folder (checkpoints inside it) moved: the run continues, nothing retrained."""
    out = copy_of(finished_run, tmp_path)
    (out / "results").rename(out / "moved")
    result = run_here("main.py", *args(sample_root), "--results-dir", "moved", cwd=out)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "epoch 1/1" not in result.stdout
    assert "unstructured_0.5 (seed 42): reusing moved/checkpoints" in result.stdout
    records = json.loads((out / "moved" / "results.json").read_text())["models"]
    assert [r["checkpoint"] for r in records] == ["checkpoints/seed42/baseline.pt",
                                                   "checkpoints/seed42/dense_control_0.pt",
                                                   "checkpoints/seed42/unstructured_0.5.pt"]


def test_a_damaged_results_json_stops_the_run_and_is_left_as_it_is(sample_root, finished_run, tmp_path):
    out = copy_of(finished_run, tmp_path)
    damaged = (out / "results" / "results.json").read_bytes()[:200]
    (out / "results" / "results.json").write_bytes(damaged)
    result = run_main(*args(sample_root), cwd=out)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "results/results.json is damaged" in result.stderr and "--fresh" in result.stderr
    assert (out / "results" / "results.json").read_bytes() == damaged


def test_a_damaged_baseline_checkpoint_with_pruned_models_from_it_stops_the_run(sample_root, finished_run,
                                                                                 tmp_path):
    out = copy_of(finished_run, tmp_path)
    path = out / "results" / "checkpoints" / "seed42" / "baseline.pt"
    path.write_bytes(path.read_bytes()[:1000])
    before = (out / "results" / "results.json").read_bytes()
    result = run_main(*args(sample_root), cwd=out)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "the baseline checkpoint results/checkpoints/seed42/baseline.pt is damaged" in result.stderr
    assert ("Restore results/checkpoints/seed42/baseline.pt from a backup, or run with --fresh"
            in result.stderr)
    assert (out / "results" / "results.json").read_bytes() == before


def test_a_damaged_pruned_checkpoint_is_set_aside_and_its_model_trained_again(sample_root, finished_run,
                                                                             tmp_path, run_here):
    out = copy_of(finished_run, tmp_path)
    path = out / "results" / "checkpoints" / "seed42" / "unstructured_0.5.pt"
    path.write_bytes(path.read_bytes()[:1000])
    result = run_here("main.py", *args(sample_root), cwd=out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "checkpoints/seed42/unstructured_0.5.pt is damaged" in result.stdout
    assert "unstructured_0.5 (seed 42): trained again" in result.stdout
    assert "unstructured_0.5 epoch 1/1" in result.stdout and "baseline epoch" not in result.stdout
    assert len(list(path.parent.glob("unstructured_0.5.pt.damaged-*"))) == 1
    assert rows(out) == rows(finished_run)


def test_a_damaged_training_state_is_set_aside_and_training_starts_again(sample_root, tmp_path, run_here):
    state = tmp_path / "results" / "checkpoints" / "seed42" / "baseline.training.pt"
    state.parent.mkdir(parents=True)
    state.write_bytes(b"PK\x03\x04 cut off by a full disk")
    result = run_here("main.py", *baseline_only(sample_root), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "checkpoints/seed42/baseline.training.pt is damaged" in result.stdout
    assert "baseline: its training starts again" in result.stdout and "baseline epoch 1/1" in result.stdout
    assert len(list(state.parent.glob("baseline.training.pt.damaged-*"))) == 1


def test_a_damaged_cache_file_is_rebuilt_from_its_video(sample_root, finished_run, tmp_path, run_here):
    out = copy_of(finished_run, tmp_path)
    cached = sorted((out / "cache").glob("*.npy"))[0]
    intact = np.load(cached)
    cached.write_bytes(cached.read_bytes()[:100])
    result = run_here("main.py", *args(sample_root), cwd=out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"cache file cache/{cached.name} cannot be read" in result.stdout
    assert "rebuilding it from" in result.stdout
    assert np.array_equal(np.load(cached), intact)
    assert rows(out) == rows(finished_run)


def test_a_second_run_on_the_same_folder_stops_at_once_and_the_first_completes(sample_root, finished_run,
                                                                               tmp_path, run_here):
    first = subprocess.Popen([sys.executable, os.path.join(ROOT, "main.py"), *args(sample_root)],
                             cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = tmp_path / "results" / locks.LOCK_FILE
    deadline = time.time() + 120
    while not lock.is_file() and time.time() < deadline:
        time.sleep(0.05)
    second = run_here("main.py", *args(sample_root), cwd=tmp_path)
    assert second.returncode == 3 and "Traceback" not in second.stderr
    assert f"results/ is in use by another run: pid {first.pid} on {socket.gethostname()}" in second.stderr
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-3000:]
    assert rows(tmp_path) == rows(finished_run) and not lock.exists()


def test_a_lock_left_by_a_dead_process_is_taken_over(sample_root, finished_run, tmp_path, capsys,
                                                     monkeypatch):
    out = copy_of(finished_run, tmp_path)
    monkeypatch.chdir(out)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / "results" / locks.LOCK_FILE).write_text(
        json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": "2026-01-01 00:00:00"}))
    main.main(args(sample_root))
    assert (f"(pid {dead.pid}, started 2026-01-01 00:00:00) is no longer running; taking over"
            in capsys.readouterr().out)
    assert not (out / "results" / locks.LOCK_FILE).exists()


@pytest.mark.parametrize("writes", [1, 2])
def test_a_continued_run_stopped_while_it_reuses_its_models_loses_no_record(writes, sample_root, finished_run,
                                                                            tmp_path, monkeypatch, capsys):
    """Started again on a finished run, stopped after its 1st or 2nd rewrite of results.json (while it
    reuses): every record is still there, and the next start trains nothing and times nothing again."""
    out = copy_of(finished_run, tmp_path)
    before = saved_records(out)
    monkeypatch.chdir(out)
    real, count = reports.write_results, []

    def write_then_stop(*a, **k):
        real(*a, **k)
        count.append(1)
        if len(count) == writes:
            raise Killed
    monkeypatch.setattr(reports, "write_results", write_then_stop)
    with pytest.raises(Killed):
        main.main(args(sample_root))
    assert saved_records(out) == before
    monkeypatch.setattr(reports, "write_results", real)
    capsys.readouterr()
    main.main(args(sample_root))
    log = capsys.readouterr().out
    assert "epoch 1/1" not in log and "latency:" not in log and "3 finished model(s) are reused" in log
    assert saved_records(out) == before


def test_earlier_records_and_sensitivity_rows_stay_until_replaced():
    earlier = {"models": [{"name": "baseline", "seed": 1, "v": 0}, {"name": "x", "seed": 1, "v": 0}],
               "sensitivity": [{"seed": 1, "v": 0}, {"seed": 2, "v": 0}]}
    now = {"models": [{"name": "baseline", "seed": 1, "v": 1}], "sensitivity": [{"seed": 1, "v": 1}]}
    merged = ledger.with_earlier(now, earlier)
    assert merged["models"] == [{"name": "baseline", "seed": 1, "v": 1}, {"name": "x", "seed": 1, "v": 0}]
    assert merged["sensitivity"] == [{"seed": 1, "v": 1}, {"seed": 2, "v": 0}]
    assert now["models"] == [{"name": "baseline", "seed": 1, "v": 1}]  # this run's own list is left as it is


RACER = """
import os, sys, time
sys.path.insert(0, {root!r})
from storage import locks
alive = locks.process_alive
locks.process_alive = lambda pid: time.sleep(0.05) or alive(pid)  # slow: the others read the lock meanwhile
while not os.path.exists({go!r}):
    time.sleep(0.001)
try:
    locks.lock({folder!r}, print)
except locks.FolderInUse as e:
    print("refused:", e)
    sys.exit(3)
print("held")
time.sleep(1.0)  # holding it while the others try
"""


def test_a_stale_lock_is_taken_over_by_exactly_one_of_several_starts(tmp_path):
    """A dead process's lock and four starts released together, four times: one takes it over, the
    others are refused (exit 3), none removes the winner's lock, and nothing else goes wrong."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for trial in range(4):
        folder, go = tmp_path / f"results{trial}", tmp_path / f"go{trial}"
        folder.mkdir()
        (folder / locks.LOCK_FILE).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(),
                                                          "started": "2026-01-01 00:00:00"}))
        code = RACER.format(root=ROOT, go=str(go), folder=str(folder))
        racers = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True) for _ in range(4)]
        time.sleep(0.3)
        go.write_text("")
        done = [(p.wait(timeout=60), *p.communicate()) for p in racers]
        assert sorted(code for code, _, _ in done) == [0, 3, 3, 3], done
        assert all("Traceback" not in err and "in use by another run" in out
                   for code, out, err in done if code == 3)
        winner = next(p for p, (code, _, _) in zip(racers, done) if code == 0)
        assert json.loads((folder / locks.LOCK_FILE).read_text())["pid"] == winner.pid


@pytest.mark.parametrize("text", ["[1, 2]", '{"pid": "abc", "host": "x"}', "garbled"])
def test_a_lock_that_is_not_a_lock_is_one_message(text, tmp_path):
    (tmp_path / locks.LOCK_FILE).write_text(text)
    with pytest.raises(locks.FolderInUse, match="delete .*run.lock"):
        locks.lock(str(tmp_path), print)
    assert (tmp_path / locks.LOCK_FILE).read_text() == text


def untimed_copy(finished_run, tmp_path):
    """A copy of the finished run stopped before its latency phase: every record without latency."""
    out = copy_of(finished_run, tmp_path)
    results = json.loads((out / "results" / "results.json").read_text())
    for record in results["models"]:
        for key in [k for k in record if "latency" in k]:
            del record[key]
    (out / "results" / "results.json").write_text(json.dumps(results))
    return out


@pytest.mark.parametrize("damage", ["missing"])  # "garbled" takes the same path (ONNX Runtime cannot load it)
def test_an_onnx_export_missing_before_the_latency_phase_is_exported_again(damage, sample_root, finished_run,
                                                                           tmp_path, run_here):
    out = untimed_copy(finished_run, tmp_path)
    onnx = out / "results" / "checkpoints" / "seed42" / "unstructured_0.5.onnx"
    intact = saved_records(finished_run)[2]["onnx_size_mb"]
    onnx.unlink() if damage == "missing" else onnx.write_bytes(b"not an onnx model")
    result = run_here("main.py", *args(sample_root), cwd=out)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert ("exporting unstructured_0.5 (seed 42) to ONNX again from "
            "results/checkpoints/seed42/unstructured_0.5.pt") in result.stdout
    assert "epoch 1/1" not in result.stdout
    record = saved_records(out)[2]
    assert record["onnx_latency_rounds"] == 3 and record["onnx_size_mb"] == pytest.approx(intact, rel=1e-3)
    assert rows(out) == rows(finished_run)


def test_an_int8_export_missing_before_the_latency_phase_is_refused_with_the_remedy(tmp_path):
    import cli
    import quantize
    cfg = cli.load(["--results-dir", str(tmp_path)])
    record = {"name": "structured_0.5", "seed": 42, "checkpoint": "checkpoints/seed42/structured_0.5.pt"}
    path = str(tmp_path / "checkpoints" / "seed42" / "structured_0.5.int8.onnx")
    with pytest.raises(quantize.QuantizationError) as refused:
        latency.session_or_export(record, "int8_latency", path, cfg, None, print)
    message = str(refused.value)
    assert message.startswith(f"{path} is missing. It is the INT8 export of structured_0.5 (seed 42)")
    assert (f"Restore it from a backup, or move {tmp_path}/checkpoints/seed42/structured_0.5.pt aside"
            in message)
