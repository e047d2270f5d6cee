"""bench.py: the speed claims from random weights, each runtime against its own dense baseline."""
import bench
import metrics

TINY_BENCH = ["--num-frames", "2", "--image-size", "32", "--latency-warmup-runs", "0", "--latency-timed-runs", "1",
              "--unstructured-pruning-ratios", "0.5", "--structured-pruning-ratios", "0.5"]


def test_bench_reports_every_variant_in_every_runtime_over_repeated_passes(monkeypatch, capsys):
    monkeypatch.setattr(metrics, "compile_error", lambda device: "not in this test")  # compiling is slow here
    table = bench.main(TINY_BENCH + ["--repeat", "2"])
    assert list(zip(table.method, table.ratio)) == [("baseline", 0.0), ("unstructured", 0.5), ("structured", 0.5),
                                                    ("structured_physical", 0.5)]
    base, physical = table.iloc[0], table.iloc[-1]
    assert base.latency_speedup == base.onnx_speedup == 1
    assert physical.params_nonzero < base.params_nonzero and physical.flops < base.flops
    out = capsys.readouterr().out
    assert "2 pass(es)" in out and "not in this test" in out
    assert "speedup by runtime" in out and "lowest and highest over the passes" in out
