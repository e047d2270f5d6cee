"""The whole experiment on a tiny configuration, as a user runs it: python main.py ..."""
import json
import os
import platform

import pandas as pd
import pytest
import torch

import claims
import cli
import latency
import metrics
from conftest import LEAN, TINY, options, run_main
from model import EFRegressionModel, load_checkpoint, save_checkpoint


def test_writes_every_file_with_one_row_per_model(tiny_run):
    out, result = tiny_run
    results = json.load(open(out / "results" / "results.json"))
    names = [r["name"] for r in results["models"]]
    assert names == ["baseline", "dense_control_0", "unstructured_0.5", "unstructured_0.9", "structured_0.5",
                     "structured_coupled_masked_0.5", "structured_physical_0.5", "unstructured_flops_0.5",
                     "structured_flops_0.5", "structured_physical_random_0.5", "scratch_0.5"]
    assert results["splits"] == {"train": 8, "val": 4, "test": 4}
    assert results["config"]["NUM_FRAMES"] == 2 and results["environment"]["torch"]
    assert results["pretrained"] == {"used": False, "reason": "PRETRAINED is off"}
    assert results["mean_predictor"]["test_mae"] > 0
    csv = pd.read_csv(out / "results" / "results.csv")
    assert csv.name.tolist() == names
    for column in ("test_mae", "test_rmse", "test_r2", "sparsity", "sparsity_before_fine_tune",
                   "params_effective", "flops", "latency_ms", "latency_p90_ms", "size_mb", "mae_increase_pct",
                   "checkpoint"):
        assert csv[column].notna().all(), column
    summary = open(out / "results" / "summary.md").read()
    assert "Table 1" in summary and "Table 2" in summary and "Table 3" in summary
    assert "\r" not in result.stdout + result.stderr  # no progress bars when the output is not a terminal
    assert "baseline epoch 1/1: train MSE" in result.stdout  # one line per epoch instead
    assert results["environment"]["cpu_malloc_thresholds_fixed"] is (platform.libc_ver()[0] == "glibc")
    assert isinstance(results["environment"]["cpu_kernel_flags"], list)  # which oneDNN kernels ran


def test_a_run_ends_in_a_few_lines_the_primary_answers_and_where_the_files_are(tiny_run):
    """The whole summary stays in summary.md (--verbose prints it): at the terminal, after the last model,
    the primary answers at each budget, the phases and the paths."""
    out, result = tiny_run
    lines = result.stdout.splitlines()
    last_model = max(i for i, line in enumerate(lines) if "effective params" in line)
    ending = lines[last_model + 1:]
    assert len(ending) <= 40, "\n".join(ending)
    text = "\n".join(ending)
    assert "removal − unstructured at equal FLOPs" in text and "Table 3" not in text
    assert f"{out / 'results'}/summary.md" in text and "phases: " in text and "done in" in text


def test_masking_and_removal_start_from_one_network_and_every_removal_has_its_controls(tiny_run):
    """Right after pruning the masked twin is the removed model written another way; the small network
    from scratch and random removal stand beside it, each in the claims."""
    out, _ = tiny_run
    records = {r["name"]: r for r in json.load(open(out / "results" / "results.json"))["models"]}
    removed, twin = records["structured_physical_0.5"], records["structured_coupled_masked_0.5"]
    assert twin["test_mae_before_fine_tune"] == pytest.approx(removed["test_mae_before_fine_tune"], abs=0.02)
    assert twin["params_effective"] == pytest.approx(removed["params_effective"], rel=0.02)
    assert twin["params_nonzero"] > removed["params_nonzero"]  # the old count: dead inputs' weights kept
    assert twin["channels"] == removed["channels"] == records["scratch_0.5"]["channels"]
    assert records["structured_physical_random_0.5"]["channels"] == removed["channels"]
    # the baseline's epoch and the fine-tuning's
    assert len(records["scratch_0.5"]["history"]["val_mae"]) == 2
    table = claims.for_run(json.load(open(out / "results" / "results.json")))
    compared = set(zip(table[table.kind == "same ratio"].method, table[table.kind == "same ratio"].reference))
    assert {("structured_physical", "structured_coupled_masked"), ("structured_physical", "scratch"),
            ("structured_physical", "structured_physical_random")} <= compared


def test_saved_checkpoints_reload_and_keep_their_sparsity(tiny_run):
    out, _ = tiny_run
    results = json.load(open(out / "results" / "results.json"))
    baseline_params = results["models"][0]["params"]
    for record in results["models"]:
        model, info = load_checkpoint(str(out / "results" / record["checkpoint"]))
        assert info["method"] == record["method"]
        if record["method"] == "unstructured":
            assert metrics.sparsity(model)["sparsity"] == pytest.approx(record["ratio"], abs=0.005)
            assert record["sparsity_before_fine_tune"] == pytest.approx(record["sparsity"], abs=1e-9)
        if record["method"] == "structured_physical":
            assert metrics.parameter_counts(model)[1] < 0.5 * baseline_params


def test_every_model_has_an_onnx_export_matching_pytorch(tiny_run):
    out, _ = tiny_run
    for record in json.load(open(out / "results" / "results.json"))["models"]:
        assert os.path.getsize(out / "results" / record["onnx_path"]) > 10_000
        assert record["onnx_max_abs_diff"] < 1e-3
        assert record["onnx_latency_ms"] > 0 and record["onnx_gzip_size_mb"] < record["onnx_size_mb"]
    assert "Table 4. ONNX Runtime" in open(out / "results" / "summary.md").read()


def test_every_model_has_an_int8_twin_measured_like_its_fp32_model(tiny_run):
    out, result = tiny_run
    results = json.load(open(out / "results" / "results.json"))
    assert results["config"]["INT8"] is True and "int8_dot_product" in results["environment"]["cpu_int8"]
    dense_ort = results["models"][0]["onnx_latency_ms"]
    for record in results["models"]:
        assert record["int8_path"].endswith(".int8.onnx")
        assert os.path.isfile(out / "results" / record["int8_path"])
        assert record["int8_size_mb"] < 0.5 * record["onnx_size_mb"]  # 8-bit weights against 32-bit
        assert len(record["int8_test_errors"]) == record["test_videos"]  # the whole test split
        # paired against its FP32 ONNX model on the same videos, in the same loop
        assert record["int8_mae_change"] == pytest.approx(record["int8_test_mae"]
                                                          - record["fp32_onnx_test_mae"])
        assert record["fp32_onnx_test_mae"] == pytest.approx(record["test_mae"], abs=1e-3)
        assert (record["int8_mae_change_ci_low"] <= record["int8_mae_change"]
                <= record["int8_mae_change_ci_high"])
        assert record["int8_latency_speedup"] == pytest.approx(dense_ort / record["int8_latency_ms"])
    csv = pd.read_csv(out / "results" / "results.csv")
    assert csv.int8_test_mae.notna().all() and "int8_test_errors" not in csv
    summary = open(out / "results" / "summary.md").read()
    assert "Table 5. INT8 beside pruning" in summary and "**Edge: pruning and INT8 together**" in summary
    assert (out / "figures" / "edge.png").is_file()


def test_missing_data_root_is_a_clear_error(tmp_path, run_here):
    result = run_here("main.py", "--data-root", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert result.returncode == 2
    assert "nowhere' does not exist" in result.stderr and "Traceback" not in result.stderr


def test_latency_compile_reaches_the_latency_phase(tmp_path, monkeypatch):
    """LATENCY_COMPILE goes to PyTorch's runner (which compiles for real: test_metrics), for the model
    loaded from its checkpoint, found relative to the results folder."""
    cfg = cli.load([*TINY, "--latency-compile", "true", "--results-dir", str(tmp_path)])
    save_checkpoint(str(tmp_path / "baseline.pt"), EFRegressionModel())
    calls = []
    monkeypatch.setattr(latency, "pytorch_runner", lambda *a: calls.append(a) or latency.Runner(
        lambda: None, lambda: None, {"latency_compiled": a[-1]}))
    records = [{"name": "baseline", "method": "baseline", "ratio": 0.0, "seed": 42,
                "checkpoint": "baseline.pt"}]
    latency.time_models(records, cfg, torch.device("cpu"), torch.zeros(1, 2, 3, 32, 32), log=lambda *_: None)
    assert len(calls) == 1 and isinstance(calls[0][0], EFRegressionModel) and calls[0][-1] is True
    assert records[0]["latency_compiled"] is True and records[0]["latency_rounds"] == 3


def test_latency_compile_without_a_cpu_compiler_is_a_clear_error(sample_root, tmp_path):
    result = run_main(*TINY, *options(data_root=sample_root, latency_compile="true"), cwd=tmp_path,
                      env={"CXX": str(tmp_path / "no-such-c++")})
    assert result.returncode == 2
    assert "--latency-compile is on but torch.compile does not run" in result.stderr
    assert "install a C++ compiler" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "results").exists()


def test_sample_data_is_generated_when_missing_at_the_default_location(tmp_path, run_here):
    """From a fresh folder, the default DATA_ROOT is created (here with only a few videos)."""
    result = run_here("main.py", *TINY, *LEAN,
                      *options(num_train_videos=2, num_val_videos=1, num_test_videos=1,
                               unstructured_pruning_ratios="", structured_pruning_ratios="",
                               physical_structured_pruning="false"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "generating the built-in synthetic sample data" in result.stdout
    assert os.path.isfile(tmp_path / "data" / "sample_echonet" / "FileList.csv")
    assert len(pd.read_csv(tmp_path / "results" / "results.csv")) == 1


def test_every_model_has_paired_intervals_and_the_head_stays_dense(tiny_run):
    out, _ = tiny_run
    results = json.load(open(out / "results" / "results.json"))
    assert results["config"]["PRUNING_SCOPE"] == "backbone"
    baseline = results["models"][0]
    for record in results["models"]:
        assert record["test_mae_ci_low"] <= record["test_mae"] <= record["test_mae_ci_high"]
        assert record["mae_diff_ci_low"] <= record["mae_diff"] <= record["mae_diff_ci_high"]
        # errors kept to 5 decimals
        assert record["mae_diff"] == pytest.approx(record["test_mae"] - baseline["test_mae"], abs=1e-4)
        assert len(record["test_errors"]) == record["test_videos"] == 4
        model, _ = load_checkpoint(str(out / "results" / record["checkpoint"]))
        assert bool((model.head.weight != 0).all()), record["name"]
    csv = pd.read_csv(out / "results" / "results.csv")
    assert {"mae_diff", "mae_diff_ci_low", "mae_diff_ci_high", "test_mae_ci_low"} <= set(csv.columns)
    assert "test_errors" not in csv.columns
    summary = open(out / "results" / "summary.md").read()
    assert "scope backbone: every Conv2d; the regression head is never pruned itself" in summary
    assert "Comparisons at the same ratio" in summary and "ΔMAE" in summary
    assert "The rule for every claim" in summary


def test_layer_sensitivity_is_written_and_drawn(tiny_run):
    out, result = tiny_run
    rows = pd.read_csv(out / "results" / "sensitivity.csv")
    assert len(rows) == 20 * 2 * 2 and set(rows.criterion) == {"l1_weights", "l2_channels"}
    assert rows.val_mae.notna().all() and (rows.seed == 42).all()
    assert os.path.getsize(out / "figures" / "sensitivity.png") > 10_000
    assert "layer sensitivity (seed 42): 80 single-layer prunings evaluated on validation in" in result.stdout


def test_the_reference_scope_prunes_the_head(sample_root, tmp_path, run_here):
    result = run_here("main.py", *TINY, *LEAN,
                      *options(data_root=sample_root, pruning_scope="all", structured_pruning_ratios="",
                               unstructured_pruning_ratios=0.9, physical_structured_pruning="false",
                               onnx_export="false"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.load(open(tmp_path / "results" / "results.json"))
    unstructured = next(r for r in results["models"] if r["method"] == "unstructured")
    model, _ = load_checkpoint(str(tmp_path / "results" / unstructured["checkpoint"]))
    assert int((model.head.weight == 0).sum()) > 0
    assert unstructured["sparsity"] == pytest.approx(0.9, abs=1e-6)


def test_gradual_pruning_ends_at_the_ratio_in_a_run(sample_root, tmp_path, run_here):
    result = run_here("main.py", *TINY, *LEAN,
                      *options(data_root=sample_root, pruning_schedule="gradual", pruning_steps=2,
                               fine_tune_epochs=2, unstructured_pruning_ratios=0.8, onnx_export="false"),
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    records = json.load(open(tmp_path / "results" / "results.json"))["models"]
    baseline_params = records[0]["params"]
    for record in records[1:]:
        assert record["pruning_steps"] == 2 and len(record["history"]["val_mae"]) == 2
        assert record["sparsity"] == pytest.approx(record["sparsity_before_fine_tune"], abs=1e-12)
        model, _ = load_checkpoint(str(tmp_path / "results" / record["checkpoint"]))
        if record["method"] == "unstructured":
            assert record["sparsity"] == pytest.approx(0.8, abs=1e-4)
        if record["method"] == "structured_physical":
            assert metrics.parameter_counts(model)[1] < 0.5 * baseline_params


def test_where_the_time_goes_is_logged_and_recorded(tiny_run):
    out, result = tiny_run
    results = json.load(open(out / "results" / "results.json"))
    assert set(results["phases"]) == {"data_preparation", "baseline", "sensitivity", "pruned_models",
                                      "latency", "figures"}
    assert all(seconds > 0 for seconds in results["phases"].values()) and results["clips_on_device"] is False
    for record in results["models"]:
        assert record["train_videos_per_s"] > 0 and record["eval_videos_per_s"] > 0
        assert 0 <= record["data_wait_share"] < 1
        assert record["seconds_training"] >= record["seconds_training_steps"] > 0
        assert record["seconds_pytorch"] > 0 and record["seconds_onnx"] > 0 and record["seconds_int8"] > 0
    assert "phases: data preparation" in result.stdout
    assert "latency: 11 models, 33 model-runtime pairs" in result.stdout
    assert "baseline (seed 42): trained in" in result.stdout and "% waiting for data" in result.stdout


def test_every_model_is_timed_at_the_end_in_interleaved_rounds_with_its_spread(tiny_run):
    """Every model in every runtime, in --latency-rounds rounds: the median of the round medians, the lowest
    and highest round; speedups from the baseline of the same seed, with the range both spreads allow."""
    out, _ = tiny_run
    results = json.load(open(out / "results" / "results.json"))
    records, threads = results["models"], results["environment"]["torch_threads"]
    base = records[0]
    for record in records:
        for prefix in ("latency", "onnx_latency", "int8_latency"):
            rounds = record[f"{prefix}_round_ms"]
            assert record[f"{prefix}_rounds"] == len(rounds) == 3, (record["name"], prefix)
            assert record[f"{prefix}_ms"] == sorted(rounds)[1]  # the median of three
            assert (record[f"{prefix}_low_ms"] == min(rounds) <= record[f"{prefix}_ms"] <= max(rounds)
                    == record[f"{prefix}_high_ms"])
            reference = "onnx_latency" if prefix == "int8_latency" else prefix
            assert record[f"{prefix}_speedup"] == pytest.approx(base[f"{reference}_ms"]
                                                                / record[f"{prefix}_ms"])
            assert (record[f"{prefix}_speedup_low"] <= record[f"{prefix}_speedup"]
                    <= record[f"{prefix}_speedup_high"])
        assert record["latency_p90_ms"] > 0 and record["latency_runs"] == 2
        assert record["latency_threads"] == record["onnx_threads"] == record["int8_threads"] == threads
    csv = pd.read_csv(out / "results" / "results.csv")
    # the rounds in results.json only
    assert csv.latency_low_ms.notna().all() and "latency_round_ms" not in csv
    summary = open(out / "results" / "summary.md").read()
    assert "in 3 interleaved rounds" in summary and "the median of 2 runs after 1 warm-up runs" in summary
    cell = f"{base['latency_ms']:.3g} ({base['latency_low_ms']:.3g}–{base['latency_high_ms']:.3g})"
    assert cell in summary and "Speed vs baseline" in summary
