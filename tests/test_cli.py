"""Every script's command line: argparse's --help, built from config.py, and its errors (exit code 2)."""
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGURED = ["main.py", "create_sample_data.py", "visualize_results.py", "visualize_model_architecture.py",
              "bench.py"]


@pytest.mark.parametrize("script", CONFIGURED + ["check_gpu.py"])
def test_help_exits_0_with_the_docstring_and_every_section(script, tmp_path, run_here):
    result = run_here(script, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    text = " ".join(result.stdout.split())
    with open(os.path.join(ROOT, script)) as f:
        first_line = f.readline().strip('"\n')
    assert " ".join(first_line.split()) in text  # the description is the script's docstring
    if script == "check_gpu.py":
        return
    if script == "create_sample_data.py":  # its own options only, not main.py's
        assert "--seed" in text and "--num-train-videos N" in text and "--echonet-size" in text
        assert "--num-epochs" not in text and "pruning:" not in text
        return
    assert "model and training:" in text and "pruning:" in text
    assert ("--num-frames N frames per video, evenly spaced over the whole video (default 32; --quick 16)"
            in text)
    assert "--not-results" not in text
    assert "--latency-rounds N Every model's latency is timed once all models are trained" in text
    assert "Holm-adjusted over the run's models (speed.py). (default 5; --quick 8)" in text
    if script == "bench.py":
        assert "--data " in text and "--repeat N rounds" in text
    if script == "visualize_model_architecture.py":
        assert "[CHECKPOINT.pt ...]" in text


@pytest.mark.parametrize("script, args, message", [
    ("main.py", ["--num-epochs", "abc"], "main.py: error: argument --num-epochs: invalid int value: 'abc'"),
    ("main.py", ["--num-epoch", "3"], "main.py: error: unrecognized arguments: --num-epoch 3"),
    ("main.py", ["--pruning-scope", "head"],
     "error: bad configuration: --pruning-scope takes one of backbone, all, got 'head'"),
    ("bench.py", ["--repeat", "0"], "bench.py: error: --repeat must be at least 1"),
    ("visualize_model_architecture.py", ["--no-such-option"], "unrecognized arguments: --no-such-option"),
])
def test_bad_command_lines_exit_2_with_a_message(script, args, message, tmp_path, run_here):
    result = run_here(script, *args, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert not os.listdir(tmp_path)  # stopped before writing anything
