"""bench.py: the speed claims from random weights, each runtime against its own dense baseline."""
import json

import pytest

import bench
import latency
import readme_tables

TINY_BENCH = ["--device", "cpu", "--num-frames", "2", "--image-size", "32", "--latency-warmup-runs", "0",
              "--latency-timed-runs", "1", "--unstructured-pruning-ratios", "0.5",
              "--structured-pruning-ratios", "0.5"]


def test_bench_times_every_variant_in_every_runtime_in_interleaved_rounds(monkeypatch, capsys, tmp_path):
    # torch.compile takes minutes for every variant: only --latency-compile true asks for it
    monkeypatch.setattr(latency, "compile_error", lambda device: pytest.fail("compiled without being asked"))
    output = tmp_path / "docs" / "bench.json"
    table = bench.main(TINY_BENCH + ["--repeat", "2", "--output", str(output)])
    assert list(zip(table.method, table.ratio)) == [("baseline", 0.0), ("unstructured", 0.5),
                                                    ("structured", 0.5), ("structured_coupled_masked", 0.5),
                                                    ("structured_physical", 0.5),
                                                    ("unstructured_flops", 0.5), ("structured_flops", 0.5)]
    base, physical = table.iloc[0], table[table.method == "structured_physical"].iloc[0]
    assert base.latency_speedup == base.onnx_speedup == 1
    assert physical.params_nonzero < base.params_nonzero and physical.flops < base.flops
    assert (table.latency_low_ms <= table.latency_ms).all()
    assert (table.latency_ms <= table.latency_high_ms).all()
    assert (table.latency_rounds == 2).all() and (table.onnx_latency_rounds == 2).all()
    out = capsys.readouterr().out
    assert "2 interleaved round(s)" in out and "compiled_latency_ms" not in table
    assert "speedup by runtime" in out and "lowest and highest over the rounds" in out
    # the README's speed table is written from that file, not typed
    text = readme_tables.render("<!-- generated: speed from docs/bench.json -->\n<!-- end generated -->\n",
                                root=str(tmp_path))
    written = json.loads(output.read_text())
    assert written["rounds"] == 2 and written["config"]["NUM_FRAMES"] == 2 and written["environment"]["torch"]
    physical_row = next(line for line in text.splitlines()
                        if line.startswith("| coupled channels (removed) 0.5 |"))
    assert (f"{physical.latency_ms:.1f} [{physical.latency_low_ms:.1f}–{physical.latency_high_ms:.1f}]"
            in physical_row)
    assert "2 interleaved rounds" in text and "from `docs/bench.json`" in text


def test_bench_compiles_only_when_asked_and_says_why_it_cannot(monkeypatch, capsys):
    asked = []
    monkeypatch.setattr(latency, "compile_error", lambda device: asked.append(device) or "not in this test")
    only_the_baseline = ["--unstructured-pruning-ratios", "", "--structured-pruning-ratios", "",
                         "--onnx-export", "false", "--repeat", "1"]
    table = bench.main(TINY_BENCH + only_the_baseline + ["--latency-compile", "true"])
    assert len(asked) == 1 and "not in this test): eager PyTorch only" in capsys.readouterr().out
    assert list(table.method) == ["baseline"] and "compiled_latency_ms" not in table


def test_bench_data_measures_check_and_cache_the_data_path_and_both_ceilings_in_one_run(sample_root, tmp_path,
                                                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    table = bench.main(["--data", "--device", "cpu", "--data-root", sample_root, "--num-frames", "2",
                        "--image-size", "32", "--batch-size", "4", "--steps", "2",
                        "--repeat", "1"]).set_index("what")
    rows = table.index.tolist()
    assert rows[0] == "check and cache, 1 thread(s)" and rows[1].startswith("check and cache")
    assert table.videos.iloc[0] == table.videos.iloc[1] == 16  # every video of the three splits, both times
    assert table.loc["data path alone, batches (this version)", "x_per_video"] > 0
    matmul = "matrix product 2048x2048, float32 (arithmetic ceiling)"
    for what in ("training, whole pipeline", "evaluation, whole pipeline"):
        assert 0 < table.loc[what, "x_ceiling"] and (table.videos_per_s.drop(matmul) > 0).all()
    assert 0 <= table.loc["training, whole pipeline", "data_wait_share"] < 1
    # the training ceiling as a share of the device's arithmetic: FLOPs counted, a matrix product timed
    ceiling = table.loc["training ceiling (batches already on the device)"]
    assert ceiling.gflop_per_s == pytest.approx(ceiling.x_matmul * table.loc[matmul, "gflop_per_s"])
    assert 0 < ceiling.x_matmul < 1  # two frames of 32x32 run far below a large product's rate
