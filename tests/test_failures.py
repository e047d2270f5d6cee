"""Every failure a user can cause ends in one message and a non-zero exit, never a traceback: folders
that cannot be written, Ctrl-C, a damaged results.json for the figures, a missing data root for bench.py."""
import concurrent.futures

import pytest

import cli
from conftest import LEAN, TINY, options


def no_traceback(result):
    return "Traceback" not in result.stderr and "Traceback" not in result.stdout


@pytest.mark.parametrize("option", ["--results-dir", "--checkpoint-dir", "--cache-dir"])
def test_a_folder_that_cannot_be_written_stops_the_run_at_once_naming_it(option, sample_root, tmp_path,
                                                                         run_here):
    (tmp_path / "a_file").write_text("not a folder")
    blocked = str(tmp_path / "a_file" / "sub")
    result = run_here("main.py", *TINY, *LEAN, *options(data_root=sample_root), option, blocked, cwd=tmp_path)
    assert result.returncode == 2 and no_traceback(result)
    assert f"error: {option} {blocked}: cannot write there" in result.stderr
    assert "epoch" not in result.stdout  # before any training


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path, run_here, monkeypatch):
    def interrupted(*_, **__):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "load", interrupted)
    for script in ("main.py", "visualize_results.py", "visualize_model_architecture.py", "bench.py"):
        result = run_here(script, cwd=tmp_path)
        assert result.returncode == 130 and no_traceback(result)
        assert result.stderr.strip().count("\n") == 0
        assert "interrupted; run the same command again" in result.stderr


def test_ctrl_c_during_sample_generation_prints_one_line(tmp_path, run_here, monkeypatch):
    class Interrupted:
        def __init__(self, *_, **__):
            raise KeyboardInterrupt
    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", Interrupted)
    result = run_here("create_sample_data.py", "--data-root", "sample", cwd=tmp_path)
    assert result.returncode == 130 and no_traceback(result)
    assert result.stderr.strip() == "interrupted; run the same command again to write the sample data"


def test_sample_generation_workers_leave_ctrl_c_to_the_main_process():
    import signal
    import create_sample_data
    before = signal.getsignal(signal.SIGINT)
    try:
        create_sample_data.ignore_sigint()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def test_figures_from_a_damaged_results_json_are_a_message(tmp_path, run_here):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "results.json").write_text('{"models": [{"name": ')
    result = run_here("visualize_results.py", cwd=tmp_path)
    assert result.returncode == 2 and no_traceback(result)
    assert "results/results.json cannot be drawn from (ValueError" in result.stderr
    assert "Run main.py again" in result.stderr


def test_bench_data_on_a_missing_data_root_is_a_message(tmp_path, run_here):
    result = run_here("bench.py", "--data", "--data-root", "no_such_folder", cwd=tmp_path)
    assert result.returncode == 2 and no_traceback(result)
    assert "data folder 'no_such_folder' does not exist" in result.stderr


def test_an_unknown_device_is_refused_with_the_options(tmp_path, run_here):
    result = run_here("main.py", "--device", "gpu0", cwd=tmp_path)
    assert result.returncode == 2 and no_traceback(result)
    assert "device 'gpu0' is not a device" in result.stderr


# --- messages name the cell as written, its row, and options ---------------------------------------------

def filelist(tmp_path, text):
    (tmp_path / "FileList.csv").write_text(text)
    from dataset import read_filelist
    return lambda: read_filelist(str(tmp_path))


def test_a_bad_ef_is_shown_as_written_with_its_row(tmp_path):
    from dataset import DataError
    read = filelist(tmp_path, "FileName,EF,Split\n0XA,55.5,TRAIN\n0XB,150.0,TEST\n")
    with pytest.raises(DataError) as bad:
        read()
    assert "row 3 (0XB) has EF '150.0'; EF must be a number in 0-100" in str(bad.value)
    assert "np.float64" not in str(bad.value)


def test_avi_in_any_case_is_stripped_and_an_empty_split_is_located(tmp_path):
    from dataset import DataError
    names = filelist(tmp_path, "FileName,EF,Split\n0XA.AVI,55.5,TRAIN\n0XB.Avi,60,test\n")().FileName.tolist()
    assert names == ["0XA", "0XB"]
    read = filelist(tmp_path, "FileName,EF,Split\n0XA,55.5,TRAIN\n0XB,60,\n")
    with pytest.raises(DataError, match=r"row 3 \(0XB\) has Split ''; use TRAIN, VAL or TEST"):
        read()


# and leaves out ONNX Runtime when it is off: test_resume's skipped run
def test_summary_names_skipped_videos():
    import reports
    lines = reports.skipped_line([{"split": "TEST", "video": "0XBAD", "reason": "0 frames"}])
    assert len(lines) == 1 and "Skipped videos (1, unreadable" in lines[0] and "0XBAD (test)" in lines[0]
    assert reports.skipped_line([]) == []


# --- issue 26: a full disk is one line ------------------------------------------------------------------

import errno  # noqa: E402
import os  # noqa: E402

import torch  # noqa: E402

from storage import folders  # noqa: E402


@pytest.mark.parametrize("failure", [
    OSError(errno.ENOSPC, "No space left on device"),
    RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64")])
def test_a_write_that_fails_removes_its_temporary_file_and_names_the_file(failure, tmp_path):
    path = str(tmp_path / "baseline.pt")

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half a checkpoint")
        raise failure
    with pytest.raises(folders.WriteFailed) as failed:
        folders.write_atomic(path, write, failures=(OSError, RuntimeError))
    message = str(failed.value)
    assert message.startswith(f"cannot write {path} (")
    assert f"{tmp_path} has " in message and "MB free" in message
    assert "run the same command again to continue" in message and os.listdir(tmp_path) == []


def test_a_full_disk_during_training_is_one_line_and_the_run_continues(sample_root, tmp_path, run_here,
                                                                        monkeypatch):
    """torch.save raises RuntimeError on a full disk, leaving a half-written file: exit 2, the file and
    the free space named, no temporary file left; once space is back the same command finishes."""
    real = torch.save

    def full_disk(obj, f, *a, **k):
        with open(f, "wb") as out:
            out.write(b"PK\x03\x04 cut off")
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0")
    monkeypatch.setattr(torch, "save", full_disk)
    command = [*TINY, *LEAN, "--unstructured-pruning-ratios", "", "--structured-pruning-ratios", "",
               "--data-root", sample_root, "--onnx-export", "false"]
    result = run_here("main.py", *command, cwd=tmp_path)
    state = os.path.join("results", "checkpoints", "seed42", "baseline.training.pt")
    assert result.returncode == 2 and no_traceback(result)
    assert result.stderr.startswith(f"error: cannot write {state} (torch.save failed: [enforce fail")
    assert "MB free. Free space there" in result.stderr and result.stderr.count("\n") == 1
    assert not list(tmp_path.rglob("*.tmp*"))
    monkeypatch.setattr(torch, "save", real)
    again = run_here("main.py", *command, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]


# --- issue 26: messages that say what is true and what to do ---------------------------------------------

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from bookkeeping import ledger  # noqa: E402
from bookkeeping import run_identity  # noqa: E402
from conftest import ROOT  # noqa: E402
from dataset import DataError, read_filelist, require_video  # noqa: E402


@pytest.mark.parametrize("text", ["{garbled", "[1, 2]"])
def test_a_garbled_owner_json_says_to_delete_it_not_to_archive_the_run(text, tmp_path):
    cfg = cli.load(["--results-dir", str(tmp_path / "results")])
    os.makedirs(cfg.CHECKPOINT_DIR)
    owner = os.path.join(cfg.CHECKPOINT_DIR, "owner.json")
    with open(owner, "w") as f:
        f.write(text)
    with pytest.raises(cli.ConfigError) as refused:
        run_identity.claim_checkpoints(cfg, {"id": "a" * 16, "config": "c", "data": {}}, print)
    message = str(refused.value)
    assert message.startswith(f"{owner} cannot be read (")
    assert f"delete {owner}: it is written again" in message
    assert "--fresh" not in message and "another run" not in message


def test_a_video_in_upper_case_is_named_with_the_rename(tmp_path):
    (tmp_path / "Videos").mkdir()
    (tmp_path / "Videos" / "0XA.AVI").write_bytes(b"")
    with pytest.raises(DataError) as missing:
        require_video(str(tmp_path / "Videos" / "0XA.avi"))
    assert f"but {tmp_path}/Videos/0XA.AVI does: the videos are read as <FileName>.avi, in lower case" in \
        str(missing.value)


def test_a_data_folder_that_is_a_file_is_said_to_be_one(tmp_path):
    (tmp_path / "echonet.zip").write_bytes(b"PK")
    with pytest.raises(DataError, match="echonet.zip' is a file, not a folder. Pass --data-root the EchoNet"):
        read_filelist(str(tmp_path / "echonet.zip"))


@pytest.mark.parametrize("models", [{"baseline": {}}, [{"name": "baseline", "seed": 42}]])
def test_results_json_with_records_that_are_not_records_is_damaged_not_a_traceback(models, tmp_path):
    cfg = cli.load(["--results-dir", str(tmp_path)])
    (tmp_path / "results.json").write_text(json.dumps({"config": vars(cfg), "models": models}))
    with pytest.raises(DataError, match="results.json is damaged .*(an object, not a list of records|lacks "
                                        "method, ratio, test_errors, test_mae).* Move it away"):
        ledger.earlier_results(cfg)


def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path, run_here):
    (tmp_path / "empty.pt").write_bytes(b"")
    result = run_here("visualize_model_architecture.py", "empty.pt", cwd=tmp_path)
    assert result.returncode == 2 and no_traceback(result)
    assert "error: empty.pt is not a checkpoint main.py saved (EOFError" in result.stderr


def test_run_gpu_sh_without_cuda_refuses_and_starts_nothing(tmp_path):
    result = subprocess.run(["bash", os.path.join(ROOT, "run_gpu.sh"), "--quick"], capture_output=True,
                            text=True, timeout=120,
                            env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHON": sys.executable})
    assert result.returncode == 2 and "started main.py" not in result.stdout
    assert "error: CUDA is not available here" in result.stderr and "set ALLOW_CPU=1" in result.stderr
