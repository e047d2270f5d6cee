"""run_gpu.sh: one process on one GPU, torchrun with one process a GPU on several, the CPU refused; the
log ends with main.py's exit status and, after a failure, the command that continues the run. Run with a
stand-in python that reports a number of GPUs and exits as told."""
import os
import subprocess
import time

import pytest

from conftest import ROOT

FAKE_PYTHON = """#!/usr/bin/env bash
if [ "$1" = -c ]; then echo "$FAKE_GPUS"; exit 0; fi  # run_gpu.sh asks for the visible GPUs
echo "python ran: $*"
[ "$1" = check_gpu.py ] || exit "$FAKE_STATUS"
"""


def run_gpu_sh(tmp_path, gpus, status, *args, **env):
    python = tmp_path / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    env = {**os.environ, "PYTHON": str(python), "LOG_DIR": str(tmp_path / "logs"), "FAKE_GPUS": str(gpus),
           "FAKE_STATUS": str(status), **env}
    return subprocess.run(["bash", os.path.join(ROOT, "run_gpu.sh"), *args], capture_output=True, text=True,
                          timeout=60, env=env)


def finished_log(tmp_path, seconds=30):
    """The log's lines, once its last line says how main.py ended (it runs in the background)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        logs = list((tmp_path / "logs").glob("*.log"))
        lines = logs[0].read_text().splitlines() if logs else []
        if lines and lines[-1].startswith("main.py exited with status"):
            return lines
        time.sleep(0.1)
    pytest.fail(f"no exit status in the log after {seconds} s: {lines}")


def test_one_gpu_starts_one_process_and_logs_its_exit_status(tmp_path):
    result = run_gpu_sh(tmp_path, 1, 0, "--quick", "--num-epochs", "2")
    assert result.returncode == 0 and "started main.py on 1 GPU(s)" in result.stdout, result.stderr
    lines = finished_log(tmp_path)
    assert lines[0] == "python ran: check_gpu.py"
    assert "python ran: main.py --quick --num-epochs 2" in lines
    assert not any("torch.distributed.run" in line for line in lines)
    assert lines[-1].startswith("main.py exited with status 0 (finished)")


def test_several_gpus_start_torchrun_one_process_each_and_a_failure_says_how_to_continue(tmp_path):
    result = run_gpu_sh(tmp_path, 2, 1, "--data-root", "/data/My Echo", GPU="0,1")
    assert result.returncode == 0, result.stderr
    assert "started main.py on 2 GPU(s) (CUDA_VISIBLE_DEVICES=0,1)" in result.stdout
    lines = finished_log(tmp_path)
    assert ("python ran: -m torch.distributed.run --standalone --nproc_per_node=2 main.py --data-root "
            "/data/My Echo") in lines
    assert lines[-1].startswith("main.py exited with status 1 at ")
    assert lines[-1].endswith("Run the same command again to continue where it stopped: "
                              r"GPU=0,1 ./run_gpu.sh --data-root /data/My\ Echo")


def test_no_gpu_is_refused_unless_allowed_and_then_runs_on_the_cpu(tmp_path):
    refused = run_gpu_sh(tmp_path, 0, 0, "--quick")
    assert refused.returncode == 2 and "error: CUDA is not available here" in refused.stderr
    assert not (tmp_path / "logs").exists()
    allowed = run_gpu_sh(tmp_path, 0, 0, "--quick", ALLOW_CPU="1")
    assert allowed.returncode == 0 and "started main.py on the CPU (ALLOW_CPU=1)" in allowed.stdout
    lines = finished_log(tmp_path)
    assert "python ran: main.py --quick" in lines and lines[-1].startswith("main.py exited with status 0")
