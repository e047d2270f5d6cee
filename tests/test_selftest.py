"""check_gpu.py --selftest (gpu_selftest.py, selftest_runs.py): on the CPU with --device cpu, its runs of
main.py (end to end, then continued after a checkpoint is deleted) at tiny sizes; without a GPU, a
refusal before anything long; a part that crashes is its FAIL line and exit status 1; and what each part
calls a PASS, checked on made-up outputs that must fail."""
import json
import time

import pandas as pd
import pytest
import torch

import gpu_selftest
import selftest_runs
from selftest_runs import Failed


def lines(result):
    return result.stdout.splitlines()


def test_the_selftest_runs_end_to_end_and_continues_on_the_cpu(run_here, tmp_path):
    out = tmp_path / "docs" / "selftest.json"
    asked = ["--selftest", "--device", "cpu", "--selftest-skip", "data_path", "--selftest-out", str(out)]
    result = run_here("check_gpu.py", *asked, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    said = lines(result)
    assert any(line.startswith("PASS environment: torch ") and "the CPU (--device cpu" in line
               for line in said)
    assert any(line.startswith("PASS end_to_end: 3 models on cpu") and "INT8, unstructured_0.5" in line
               for line in said)
    assert any(line.startswith("PASS continuation: unstructured_0.5's checkpoint deleted: trained again")
               and "2 models reused with identical test MAE" in line for line in said)
    assert "SKIP gpu_tests: on the CPU: tests/test_gpu.py needs CUDA" in result.stdout
    assert "SKIP data_path: left out (--selftest-skip)" in said
    assert "SKIP torchrun: on the CPU" in result.stdout
    assert said[-1].startswith("selftest PASS on cpu: 3 passed, 3 skipped (gpu_tests, data_path, torchrun), "
                               "0 failed, in ")
    report = json.loads(out.read_text())
    assert [(p["part"], p["verdict"]) for p in report["parts"]] == [
        ("environment", "PASS"), ("end_to_end", "PASS"), ("continuation", "PASS"), ("gpu_tests", "SKIP"),
        ("data_path", "SKIP"), ("torchrun", "SKIP")]
    assert report["parts"][1]["numbers"]["models"] == ["baseline", "dense_control_0", "unstructured_0.5"]
    assert report["parts"][2]["numbers"]["reused"] == ["baseline", "dense_control_0"]
    assert report["verdict"] == "PASS" and report["summary"] == said[-1]
    assert [p.name for p in tmp_path.iterdir()] == ["docs"]  # the runs went to a temporary folder


def test_without_a_gpu_the_selftest_refuses_at_once(run_here, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "selftest.json"
    result = run_here("check_gpu.py", "--selftest", "--selftest-out", str(out), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr and result.stdout == ""
    assert result.stderr.startswith("error: no CUDA GPU here (torch ")
    assert "python check_gpu.py --selftest --device cpu" in result.stderr
    assert json.loads(out.read_text())["verdict"] == "REFUSED"


@pytest.mark.parametrize("args, message", [
    (["--num-epochs", "3"], "--selftest runs its own tiny configuration; of the other options it takes "
                            "--device only (given: --num-epochs)"),
    (["--project"], "(given: --project)"),
    (["--selftest-skip", "end_to_end,nothing"],
     "--selftest-skip: no part nothing; the parts are environment"),
])
def test_options_the_selftest_cannot_use_are_refused(args, message, run_here, tmp_path):
    result = run_here("check_gpu.py", "--selftest", "--device", "cpu", *args, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_a_part_that_crashes_is_its_fail_line_and_the_others_still_run(run_here, tmp_path, monkeypatch):
    def crashes(ctx):
        raise RuntimeError("CUDA error: an illegal memory access was encountered\nmore")
    monkeypatch.setitem(gpu_selftest.PARTS, "environment", crashes)
    result = run_here("check_gpu.py", "--selftest", "--device", "cpu", "--selftest-skip",
                      "end_to_end,gpu_tests,data_path,torchrun", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    said = lines(result)
    assert "FAIL environment: RuntimeError: CUDA error: an illegal memory access was encountered" in said
    assert "SKIP continuation: needs the end-to-end run, which did not pass here" in said
    assert said[-1].startswith("selftest FAIL on cpu: 0 passed, 5 skipped (end_to_end, continuation, "
                               "gpu_tests, data_path, torchrun), 1 failed (environment), in ")


def test_pytest_output_is_a_pass_only_where_gpu_tests_passed():
    passed = gpu_selftest.pytest_verdict(0, "..s..\n========== 12 passed, 1 skipped in 95.31s ==========\n")
    assert passed["verdict"] == "PASS" and passed["numbers"] == {"passed": 12, "skipped": 1}
    assert passed["text"] == "tests/test_gpu.py: 12 passed, 1 skipped in 95.31s"
    with pytest.raises(Failed, match="no GPU test ran"):  # every test skipped: CUDA not seen by pytest
        gpu_selftest.pytest_verdict(0, "sssss\n5 skipped in 0.1s\n")
    with pytest.raises(Failed, match="status 1: 1 failed, 11 passed in 90s; tests/test_gpu.py::test_x"):
        gpu_selftest.pytest_verdict(1, "FAILED tests/test_gpu.py::test_x - AssertionError\n"
                                       "1 failed, 11 passed in 90s\n")


def bench_table(changes=()):
    rows = [{"what": "data path alone, batches (this version)", "x_per_video": 40.0},
            {"what": "training ceiling (batches already on the device)", "x_matmul": 0.1},
            {"what": "training, whole pipeline", "x_ceiling": 0.9, "data_wait_share": 0.02},
            {"what": "evaluation, whole pipeline", "x_ceiling": 0.8}]
    table = pd.DataFrame(rows)
    for what, column, value in changes:
        table.loc[table.what == what, column] = value
    return table


def test_the_data_path_passes_only_with_every_ratio_measured():
    found = gpu_selftest.data_verdict(bench_table(), 3)
    assert found["verdict"] == "PASS" and found["numbers"]["train_x_ceiling"] == 0.9
    assert ("training at 0.90x its ceiling (2% of the steps waiting for data), evaluation at 0.80x"
            in found["text"])
    with pytest.raises(Failed, match="not measured: eval_x_ceiling"):
        gpu_selftest.data_verdict(bench_table([("evaluation, whole pipeline", "x_ceiling", float("nan"))]), 3)
    with pytest.raises(Failed, match="has no 'training, whole pipeline'"):
        gpu_selftest.data_verdict(bench_table().iloc[[0, 1, 3]], 3)


def made_up_run(tmp_path, device="cpu", precision="float32"):
    for name in ("baseline.pt", "baseline.int8.onnx", "pruned.pt", "pruned.int8.onnx"):
        (tmp_path / name).write_text("")
    record = {"test_mae": 6.0, "fp32_onnx_test_mae": 6.0, "int8_test_mae": 6.1, "latency_ms": 2.0,
              "int8_latency_ms": 1.0, "latency_device": device, "latency_precision": precision}
    return {"environment": {"device": device}, "sensitivity": [{"layer": "conv1"}], "clips_on_device": False,
            "models": [{**record, "name": name, "checkpoint": f"{name}.pt", "int8_path": f"{name}.int8.onnx"}
                       for name in ("baseline", "pruned")]}


def test_a_run_passes_only_with_every_model_measured_on_its_device(tmp_path):
    cpu, expected = torch.device("cpu"), ["baseline", "pruned"]
    assert selftest_runs.check_results(made_up_run(tmp_path), expected, cpu, True, str(tmp_path)) == []
    broken = made_up_run(tmp_path)
    del broken["models"][1]["int8_test_mae"]
    broken["models"][0]["latency_device"] = "cuda:0"
    (tmp_path / "pruned.pt").unlink()
    assert selftest_runs.check_results(broken, [*expected, "scratch_0.5"], cpu, True, str(tmp_path)) == [
        "models ['baseline', 'pruned'] where the plan has ['baseline', 'pruned', 'scratch_0.5']",
        "baseline was timed on cuda:0, not cpu", "pruned lacks int8_test_mae",
        "pruned's checkpoint file is not there"]
    no_rows = {**made_up_run(tmp_path), "sensitivity": []}
    assert selftest_runs.check_results(no_rows, expected, cpu, True, str(tmp_path)) == [
        "no layer sensitivity rows"]


def running(pid):
    """Whether process pid runs (a killed one lingers as a zombie until it is reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_a_command_that_runs_too_long_is_killed_with_what_it_started(tmp_path):
    started, start = tmp_path / "pid", time.monotonic()
    with pytest.raises(Failed, match="the sleeper ran longer than 1 s"):
        selftest_runs.finished(["bash", "-c", f"sleep 60 & echo $! > {started}; wait"], str(tmp_path), 1,
                               "the sleeper")
    # not waiting for the sleep, which holds the output pipes: killed with bash
    assert time.monotonic() - start < 30
    pid, deadline = int(started.read_text()), time.monotonic() + 10
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(pid)
