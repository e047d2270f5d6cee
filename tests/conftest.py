import os
import runpy
import subprocess
import sys
from types import SimpleNamespace

import pytest

# pytest.ini starts one pytest-xdist worker per core. Each worker, and every run it starts in a subprocess,
# computes on its share of the cores (set before torch starts its threads): two workers do not fight over
# the cores, and a run in the test process and one in a subprocess compute with the same threads, so
# their same-seed results are the same.
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // WORKERS))
import torch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from create_sample_data import create_sample_data  # noqa: E402

# A configuration small enough for a test: 2 frames of 32x32, one epoch, one ratio per method, on the
# CPU: on a GPU box "auto" would train on the GPU, where bf16 and cuDNN change the numbers the tests compare
# (tests/test_gpu.py runs the GPU path).
TINY = ["--device", "cpu", "--num-frames", "2", "--image-size", "32", "--batch-size", "4",
        "--num-epochs", "1", "--fine-tune-epochs", "1", "--learning-rate", "1e-3",
        "--fine-tune-learning-rate", "1e-4",
        "--unstructured-pruning-ratios", "0.5", "--structured-pruning-ratios", "0.5",
        "--latency-warmup-runs", "1", "--latency-timed-runs", "2", "--latency-rounds", "3",
        "--pretrained", "false", "--num-train-videos", "8", "--num-val-videos", "4", "--num-test-videos", "4",
        "--sensitivity-ratios", "0.5,0.9"]
# For the runs that test something else than layer sensitivity, INT8, figures and compressed file sizes
# (tiny_run tests those): each costs seconds per model even at this size (a full-size ResNet-18 is
# quantized, drawn and gzipped).
LEAN = ["--sensitivity", "false", "--int8", "false", "--draw-figures", "false", "--gzip-sizes", "false",
        "--random-removal-control", "false", "--scratch-control", "false", "--equal-flops-methods", ""]


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory):
    """A small synthetic EchoNet-Dynamic folder, made once for the whole session."""
    root = str(tmp_path_factory.mktemp("echonet"))
    create_sample_data(root, num_train=8, num_val=4, num_test=4, seed=0, log=lambda *_: None, processes=1)
    return root


def options(**values):
    """Command-line options from keywords: options(data_root=root, num_epochs=2) is
    ["--data-root", root, "--num-epochs", "2"]."""
    return [token for name, value in values.items() for token in ("--" + name.replace("_", "-"), str(value))]


def run_folders(out):
    """The options that put a run's results, checkpoints, figures and cache in the folder `out`."""
    return options(results_dir=out / "results", checkpoint_dir=out / "checkpoints",
                   figures_dir=out / "figures", cache_dir=out / "cache")


def cpu_env(**more):
    """The environment of a subprocess that must compute on the CPU: no GPU visible (torchrun's processes
    would each take one, and a run with --device auto would train on it)."""
    return {**os.environ, "CUDA_VISIBLE_DEVICES": "", **more}


def run_main(*args, cwd, env=None):
    """python main.py in a subprocess, on the CPU (cpu_env)."""
    return subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600, env=cpu_env(**(env or {})))


@pytest.fixture
def run_here(monkeypatch, capsys):
    """`python <script> <args>` in this process (a subprocess imports torch again, ~5 s): its exit
    code and output. An exception that escapes the script's own handling (what would be a bare
    traceback) fails the test. A kill, two runs at once, and a few exit codes as a shell sees them are
    tested in a subprocess (run_main)."""
    def run(script, *args, cwd):
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", [script, *args])
        try:
            runpy.run_path(os.path.join(ROOT, script), run_name="__main__")
            code = 0
        except SystemExit as stopped:
            code = stopped.code or 0
        out = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)
    return run


@pytest.fixture(scope="session")
def tiny_run(sample_root, tmp_path_factory):
    """python main.py on the tiny configuration, with two unstructured ratios; (folder, process)."""
    out = tmp_path_factory.mktemp("run")
    result = run_main(*TINY, *options(data_root=sample_root, unstructured_pruning_ratios="0.5,0.9"),
                      *run_folders(out), cwd=out)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


def pytest_configure(config):
    config.addinivalue_line("markers",
                            "cuda: needs a CUDA GPU (skipped, with the reason, where there is none)")
    config.addinivalue_line("markers", "xdist_group(name): the tests pytest-xdist runs in one worker")


def pytest_itemcollected(item):
    # A worker makes a session or module fixture for itself: under --dist loadgroup a file's tests share
    # one worker, and so do all the tests of tiny_run, so each is made once. A test with a group of its
    # own keeps it.
    if item.get_closest_marker("xdist_group") is None:
        group = "tiny_run" if "tiny_run" in item.fixturenames else item.module.__name__
        item.add_marker(pytest.mark.xdist_group(group))


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU; none here (run on a GPU machine)"))
