"""Every figure is written as PNG and PDF, and shows one point per model."""
import json
import os
import re

import matplotlib.pyplot as plt
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.container import ErrorbarContainer

import reports
import visualize_model_architecture
import visualize_results

FIGURES = ["mae_vs_compression", "latency", "params_flops", "equal_size", "sparsity_fine_tune",
           "training_curves", "per_layer_unstructured", "per_layer_structured",
           "per_layer_structured_physical", "architecture", "onnx"]


def test_main_draws_every_figure_as_png_and_pdf(tiny_run):
    out, _ = tiny_run
    for name in FIGURES:
        for ext in ("png", "pdf"):
            path = out / "figures" / f"{name}.{ext}"
            assert path.is_file() and path.stat().st_size > 1000, path
    summary = open(out / "results" / "summary.md").read()
    assert "](../figures/mae_vs_compression.png)" in summary
    assert "What the numbers show" in summary
    assert "**Unstructured (global L1, masks).** At ratios 0.5–0.9" in summary


@pytest.fixture(scope="module")
def drawn(tiny_run, tmp_path_factory):
    """Each figure's axes, captured where it would be saved (drawn once for the tests below; the files
    themselves: test_main_draws_every_figure_as_png_and_pdf)."""
    out, _ = tiny_run
    axes = {}

    def capture(fig, figures_dir, name):
        axes[name] = fig.axes
        plt.close(fig)
        return []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(visualize_results, "save", capture)
        visualize_results.draw_all(str(out / "results"), str(tmp_path_factory.mktemp("drawn")))
    return axes, json.load(open(out / "results" / "results.json"))["models"]


def points(ax):
    """Data points of the per-method series (each an errorbar: mean, with the spread over seeds)."""
    return sum(len(c.lines[0].get_xdata()) for c in ax.containers if isinstance(c, ErrorbarContainer))


def test_trade_off_figures_have_one_point_per_model(drawn):
    axes, models = drawn
    assert points(axes["mae_vs_compression"][0]) == len(models)
    latency_vs_ratio, mae_vs_latency = axes["latency"][:2]
    assert points(mae_vs_latency) == len(models)
    # each pruning method's line starts at the baseline (ratio 0)
    lines = len({m["method"] for m in models} - {"baseline", "dense_control"})
    assert points(latency_vs_ratio) == len(models) - 1 + lines
    params, flops = axes["params_flops"][:2]
    assert points(params) == points(flops) == len(models) - 1 + lines


def test_sparsity_and_training_figures_cover_every_model(drawn):
    axes, models = drawn
    masked = [m for m in models if m["method"] in ("unstructured", "structured")]
    bars = axes["sparsity_fine_tune"][0].patches
    assert len(bars) == 2 * len(masked)
    assert [round(b.get_height(), 6) for b in bars[len(masked):]] == [round(m["sparsity"], 6) for m in masked]
    fine_tuning = axes["training_curves"][1]
    assert len([line for line in fine_tuning.lines if len(line.get_xdata())]) == len(models) - 1


def test_per_layer_figure_has_one_line_per_ratio(drawn):
    axes, models = drawn
    unstructured = [m for m in models if m["method"] == "unstructured"]
    lines = [line for line in axes["per_layer_unstructured"][0].lines if len(line.get_xdata())]
    assert len(lines) == len(unstructured)
    assert all(len(line.get_xdata()) == 21 for line in lines)   # 20 convs and the head


def test_architecture_shows_reduced_channels_of_a_physically_pruned_checkpoint(tiny_run, tmp_path):
    out, _ = tiny_run
    path = str(out / "checkpoints" / "seed42" / "structured_physical_0.5.pt")
    from model import load_checkpoint
    model, _ = load_checkpoint(path)
    assert visualize_model_architecture.stage_channels(model)[-1][1][0] == 256
    paths = visualize_model_architecture.draw_checkpoints([path], str(tmp_path))
    assert all(os.path.getsize(p) > 1000 for p in paths)


def test_equal_size_figure_has_one_line_per_pruning_method(drawn):
    axes, models = drawn
    methods = {m["method"] for m in models} - {"baseline", "dense_control"}
    for ax in axes["equal_size"][:2]:
        lines = [line for line in ax.lines if not line.get_label().startswith(("mean predictor", "_"))]
        assert len(lines) == len(methods)
        assert all(len(line.get_xdata()) >= 2 for line in lines)  # from the control


def tick_labels(axis):
    """(text, extent on the canvas) of every tick label an axis shows, major and minor, in its view
    (on either side: a colour bar's are on the right)."""
    canvas = FigureCanvasAgg(axis.axes.figure)  # the figure is closed once saved: drawn again
    canvas.draw()
    low, high = sorted(axis.get_view_interval())
    return [(label.get_text(), label.get_window_extent(canvas.get_renderer()))
            for tick in axis.get_major_ticks() + axis.get_minor_ticks() if low <= tick.get_loc() <= high
            for label in (tick.label1, tick.label2) if label.get_visible() and label.get_text()]


def test_log_axes_are_labelled_in_plain_numbers_that_do_not_overlap(drawn):
    """edge.png's latency axis printed 2×10⁰ 3×10⁰ 4×10⁰ 6×10⁰ (mathtext powers) on top of each other:
    every log axis, the sensitivity colour bar's included, shows plain numbers (0.5, 1, 2 ms; 8×), two at
    least, none over its neighbour."""
    axes, _ = drawn
    checked = []
    for name, found in axes.items():
        for ax in found:
            for axis in (ax.xaxis, ax.yaxis):
                if axis.get_scale() != "log":
                    continue
                labels = tick_labels(axis)
                texts = [text for text, _ in labels]
                assert len(texts) >= 2, (name, texts)
                assert all(re.fullmatch(r"\d+(\.\d+)?×?", text) for text in texts), (name, texts)
                boxes = sorted((box for _, box in labels), key=lambda box: (box.x0, box.y0))
                assert not any(a.overlaps(b) for a, b in zip(boxes, boxes[1:])), (name, texts)
                checked.append(name)
    assert {"mae_vs_compression", "equal_size", "edge", "sensitivity"} <= set(checked), checked


def test_a_run_without_gzip_sizes_draws_and_reports_its_files_plain_sizes(tiny_run, tmp_path):
    """GZIP_SIZES off: no compressed size anywhere; the ONNX figure and summary.md show the sizes on disk."""
    results, models = visualize_results.load(str(tiny_run[0] / "results"))
    plain = models.drop(columns=["gzip_size_mb", "onnx_gzip_size_mb", "int8_gzip_size_mb"])
    captured = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(visualize_results, "save", lambda fig, _, name: captured.setdefault(name, fig.axes))
        visualize_results.onnx(results, plain, str(tmp_path))
    assert captured["onnx"][1].get_ylabel() == "ONNX file (MB)" and points(captured["onnx"][1]) > 0
    records = json.load(open(tiny_run[0] / "results" / "results.json"))
    for record in records["models"]:
        for key in ("gzip_size_mb", "onnx_gzip_size_mb", "int8_gzip_size_mb"):
            del record[key]
    summary = reports.summary_markdown(records)
    assert "gzip" not in summary and "MB vs " in summary
