"""A killed INT8 calibration leaves its working folder (43 MB a model, ONNX Runtime's own temporary files
in it) in the temporary folder; the next calibration removes every such folder whose process is gone,
and none of a live one."""
import os
import signal
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime.quantization.shape_inference
import pytest

import quantize
from storage import folders
from conftest import ROOT

HOLD = f"""
import sys, time
sys.path.insert(0, {ROOT!r})
from storage import folders
with folders.work_folder("int8-") as work:
    open(work + "/pre.onnx", "wb").write(b"x" * 1000)
    print(work, flush=True)
    time.sleep(600)
"""


def test_the_folder_of_a_killed_calibration_is_removed_at_the_next_start_and_a_live_ones_kept():
    killed = subprocess.Popen([sys.executable, "-c", HOLD], stdout=subprocess.PIPE, text=True)
    live = subprocess.Popen([sys.executable, "-c", HOLD], stdout=subprocess.PIPE, text=True)
    try:
        left, running = killed.stdout.readline().strip(), live.stdout.readline().strip()
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
        assert os.path.isfile(os.path.join(left, "pre.onnx"))  # what a kill leaves
        with folders.work_folder("int8-") as work:
            assert not os.path.exists(left) and os.path.isdir(running)
            assert tempfile.gettempdir() == work and os.path.basename(work).startswith(f"int8-{os.getpid()}-")
        assert not os.path.exists(work) and tempfile.gettempdir() != work
    finally:
        live.kill()
        live.wait()
    folders.remove_killed("int8-")
    assert not os.path.exists(running)


def test_onnx_runtimes_temporary_files_are_made_inside_the_calibrations_folder(tmp_path, monkeypatch):
    seen = []

    def pre_process(*args, **kwargs):  # where quant_pre_process (and quantize_static) would write
        seen.append(tempfile.gettempdir())
        raise RuntimeError("stopped here")
    monkeypatch.setattr(onnxruntime.quantization.shape_inference, "quant_pre_process", pre_process)
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(quantize.QuantizationError, match="stopped here"):
        quantize.int8_export(str(tmp_path / "model.onnx"), np.zeros((1, 2, 3, 32, 32), np.float32),
                             str(tmp_path / "model.int8.onnx"))
    assert os.path.basename(seen[0]).startswith(f"int8-{os.getpid()}-") and not os.path.exists(seen[0])
    assert tempfile.gettempdir() != seen[0]
