"""What a run writes for people to read: results.json (everything), the CSV tables and summary.md.
Rewritten atomically after every finished model, so a run cut off at any moment leaves complete files.
"""
import json
import os

import pandas as pd

import claims
import edge
import equal_size
from storage import folders
import methods
import speed


TIMED = [f"{p}{s}" for p in speed.RUNTIMES
         for s in ("_ms", "_low_ms", "_high_ms", "_speedup", "_speedup_low", "_speedup_high")]
AGGREGATED = ["test_mae", "test_rmse", "test_r2", "mae_diff", "mae_diff_ci_low", "mae_diff_ci_high",
              "mae_increase_pct", "sparsity", "sparsity_before_fine_tune",
              "params_effective", "compression_ratio", "flops", "effective_flops", "theoretical_speedup",
              *TIMED,
              "size_mb", "gzip_size_mb", "onnx_size_mb", "onnx_gzip_size_mb", "onnx_max_abs_diff",
              "fp32_onnx_test_mae", "int8_test_mae", "int8_test_rmse",
              "int8_test_r2", "int8_mae_change", "int8_mae_change_ci_low", "int8_mae_change_ci_high",
              "int8_size_mb", "int8_gzip_size_mb", "int8_max_abs_diff_vs_fp32"]
PER_VIDEO = ("history", "test_errors", "int8_test_errors", "fp32_onnx_test_errors",  # in results.json only
             "channels",
             *(f"{p}_round_ms" for p in speed.RUNTIMES))

# summary.md's tables, each with the essentials only (about ten columns, to fit a page): results.csv holds
# every column. (title, the methods' kind in methods.py or None for every method, {column: header}).
TABLES = [
    ("Table 1. Baseline and dense control", "dense",
     {"method": "Model", "test_mae": "MAE", "mae_diff_cell": "ΔMAE",
      "test_mae_before_fine_tune": "MAE after recal.", "test_mae_ci": "MAE 95% interval", "test_r2": "R²",
      "params": "Params", "flops": "FLOPs",
      "latency_cell": "Latency (ms)", "latency_vs_baseline": "Speed vs baseline"}),
    ("Table 2. Unstructured pruning (global L1)", "unstructured",
     {"method": "Method", "ratio": "Ratio", "sparsity": "Sparsity", "test_mae": "MAE",
      "mae_diff_cell": "ΔMAE", "verdict_baseline": "vs baseline", "verdict_control": "vs control",
      "params_effective": "Params (effective)", "effective_flops": "Effective FLOPs",
      "latency_cell": "Latency (ms)"}),
    ("Table 3. Structured pruning: per-layer L2 channels (masks); coupled channels masked and removed "
     "(the same channels); their controls", "structured",
     {"method": "Method", "ratio": "Ratio", "test_mae": "MAE", "mae_diff_cell": "ΔMAE",
      "verdict_baseline": "vs baseline", "verdict_control": "vs control",
      "params_effective": "Params (effective)", "flops": "FLOPs", "latency_cell": "Latency (ms)",
      "size_mb": "Size (MB)"}),
]
ONNX_TABLE = ("Table 4. ONNX Runtime (CPU execution provider)", None,
              {"method": "Method", "ratio": "Ratio", "onnx_latency_cell": "ORT latency (ms)",
               "onnx_latency_speedup_cell": "ORT speedup",
               "onnx_latency_vs_baseline": "ORT speed vs baseline",
               "latency_speedup_cell": "PyTorch speedup", "onnx_size_mb": "ONNX (MB)",
               "onnx_gzip_size_mb": "ONNX gzip (MB)", "onnx_max_abs_diff": "max |ORT − PyTorch| (EF %)"})
INT8_TABLE = ("Table 5. INT8 beside pruning (ONNX Runtime static quantization)", None,
              {"method": "Method", "ratio": "Ratio", "fp32_onnx_test_mae": "FP32 ORT MAE",
               "int8_test_mae": "INT8 MAE",
               "int8_change_cell": "INT8 − FP32 MAE", "onnx_latency_cell": "FP32 ORT (ms)",
               "int8_latency_cell": "INT8 ORT (ms)", "int8_latency_vs_baseline": "INT8 vs FP32 dense",
               "int8_vs_own_fp32": "INT8 vs own FP32", "int8_size_mb": "INT8 ONNX (MB)"})


def by_ratio(models):
    """Mean, sample std and n over seeds for every method and ratio."""
    columns = [c for c in AGGREGATED if c in models]
    grouped = models.groupby(["method", "ratio"], sort=False)[columns]
    table = grouped.agg(["mean", "std"])
    table.columns = [f"{c}_{stat}" for c, stat in table.columns]
    table.insert(0, "n", grouped.size())
    return table.reset_index()


def write_results(results, results_dir, figures=(), summary=True):
    """results.json (everything), results.csv (one row per model and seed), results_by_ratio.csv
    (mean ± std over seeds), sensitivity.csv (one row per layer, criterion, ratio and seed) and, with
    `summary`, summary.md (its claims compare every pair of models: a run writes it as each seed ends,
    not after every model). Returns summary.md's text, or None."""
    folders.write_text(os.path.join(results_dir, "results.json"), json.dumps(results, indent=2))
    rows = pd.DataFrame([{k: v for k, v in r.items() if k not in PER_VIDEO}
                         for r in results["models"]])
    folders.write_text(os.path.join(results_dir, "results.csv"), rows.to_csv(index=False))
    folders.write_text(os.path.join(results_dir, "results_by_ratio.csv"),
                       by_ratio(rows).to_csv(index=False))
    if results.get("sensitivity"):
        folders.write_text(os.path.join(results_dir, "sensitivity.csv"),
                     pd.DataFrame(results["sensitivity"]).to_csv(index=False))
    if not summary:
        return None
    text = summary_markdown(results, [os.path.relpath(f, results_dir) for f in figures])
    folders.write_text(os.path.join(results_dir, "summary.md"), text)
    return text


def file_sizes(rows, base, prefix=""):
    """'11.3 MB (10.4 MB gzipped) vs 44.8 MB (41.5 MB)': the files' sizes against the baseline's, gzipped
    where the run measured it (GZIP_SIZES)."""
    size, gzipped = rows[f"{prefix}size_mb"], rows.get(f"{prefix}gzip_size_mb")
    if gzipped is None:
        return f"{span(size, '.1f')} MB vs {base[f'{prefix}size_mb']:.1f} MB"
    return (f"{span(size, '.1f')} MB ({span(gzipped, '.1f')} MB gzipped) vs "
            f"{base[f'{prefix}size_mb']:.1f} MB ({base[f'{prefix}gzip_size_mb']:.1f} MB)")


def skipped_line(skipped):
    """The videos left out (unreadable), named: the splits above count without them."""
    if not skipped:
        return []
    named = ", ".join(f"{s['video']} ({s['split'].lower()})" for s in skipped[:20])
    return [f"Skipped videos ({len(skipped)}, unreadable; not in the counts above): {named}"
            f"{', ...' if len(skipped) > 20 else ''}. Their reasons are in results.json under "
            f"skipped_videos.\n"]


def summary_markdown(results, figures=()):
    models = pd.DataFrame(results["models"])
    floor = results["mean_predictor"]
    lines = header_lines(results, models)
    table = claims.for_run(results, models)
    cells = speed.with_cells(with_interval_cells(models, seeds=models.seed.nunique()),
                             alpha=results["config"].get("ALPHA"))
    models = with_verdicts(cells, table)
    if "int8_test_mae" in models:
        lines.append(int8_line(results))
    seeds = models.seed.nunique()
    if seeds > 1:
        lines.append(f"Each cell is the mean ± sample std over {seeds} seeds "
                     f"({', '.join(map(str, models.seed.unique()))}).\n")
    lines += table_lines(models, seeds)
    lines += [p + "\n" for p in equal_size.paragraphs(models)]
    lines += ["\n## What the numbers show\n"]
    lines += [p + "\n" for p in method_paragraphs(models, floor["test_mae"])]
    lines += [p + "\n" for p in claims.paragraphs(results, table)]
    lines += [p + "\n" for p in edge.paragraph(models)]
    lines += [p + "\n" for p in sensitivity_paragraph(results)]
    if figures:
        lines += ["\n## Figures\n"]
        lines += [f"- [{os.path.basename(f)}]({f})" for f in figures if f.endswith(".png")]
    return "\n".join(lines)


def header_lines(results, models):
    """summary.md's opening paragraphs: the data, the environment, how latency was timed, the mean
    predictor, the pruning protocol, and what the tables' columns mean."""
    cfg, splits, env = results["config"], results["splits"], results["environment"]
    floor = results["mean_predictor"]
    return ["# ef-prune results\n",
            f"Data: {cfg['DATA_ROOT']}, {splits['train']}/{splits['val']}/{splits['test']} train/val/test "
            f"videos of {cfg['NUM_FRAMES']} frames {cfg['IMAGE_SIZE']}×{cfg['IMAGE_SIZE']}. ImageNet "
            f"weights: {'yes' if results['pretrained']['used'] else 'no'} "
            f"({results['pretrained']['reason']}).\n",
            f"Environment: {env['device']} ({env['device_name']}), {env['torch_threads']} threads, "
            f"python {env['python']}, torch {env['torch']}, torchvision {env['torchvision']}, "
            f"torch-pruning {env['torch_pruning']}, commit {env['git_commit'] or 'none'}.\n",
            speed.protocol(results, models),
            *skipped_line(results.get("skipped_videos")),
            f"Mean predictor (always the training mean, EF {floor['ef']:.1f}): test MAE "
            f"{floor['test_mae']:.2f}.\n",
            protocol_line(cfg),
            "ΔMAE: the model's test MAE minus its baseline's (same seed), with the 95% paired bootstrap "
            "interval over the test videos in brackets (one seed) or mean ± std over seeds, descriptive: the "
            "verdicts rest on the rule's own interval (below). \"vs "
            "baseline\", \"vs control\": the verdict of the rule below against the baseline and against the "
            "dense control (the baseline fine-tuned exactly as the pruned models are). \"MAE after recal.\": "
            "test MAE right after BatchNorm recalibration, before fine-tuning.\n",
            "The tables show the essentials of each model; results.csv (one row per model and seed) holds "
            "every column, among them the sparsity before fine-tuning, the test MAE right after pruning "
            "(test_mae_before_fine_tune), RMSE, the compression, the theoretical and measured speedups with "
            "their ranges over the rounds and the size of every file, and results_by_ratio.csv their mean "
            "and std over seeds. The pruned models' PyTorch speed verdicts are in \"What the numbers "
            "show\".\n"]


def table_lines(models, seeds):
    """summary.md's Tables 1–5, each with the columns the run has; a table without rows left out."""
    found = TABLES + [ONNX_TABLE] * ("onnx_path" in models) + [INT8_TABLE] * ("int8_test_mae" in models)
    tables = [(title, methods.of_kind(kind) if kind else list(models.method.unique()), dict(columns))
              for title, kind, columns in found]  # copies: the headers change with the seeds
    if seeds > 1:  # the interval's width, as mean ± std over seeds
        tables[0][2]["test_mae_ci"] = "MAE 95% interval width"
    lines = []
    for title, shown_methods, columns in tables:
        rows = models[models.method.isin(shown_methods)]
        if rows.empty:
            continue
        columns = {k: v for k, v in columns.items() if k in rows}
        shown = (rows[list(columns)] if seeds == 1 else mean_std_cells(rows, columns)).rename(columns=columns)
        lines += [f"\n## {title}\n", shown.to_markdown(index=False, floatfmt=".4g") + "\n"]
    return lines


def protocol_line(cfg):
    scope = ("backbone: every Conv2d; the regression head is never pruned itself, but channels pruned from "
             "the last convolutions leave its inputs (zero with masks, removed with Torch-Pruning)"
             if cfg.get("PRUNING_SCOPE", "all") == "backbone"
             else "all: every Conv2d and Linear, the regression head included (the reference's unstructured "
                  "scope)")
    schedule = ("one-shot" if cfg.get("PRUNING_SCHEDULE", "oneshot") == "oneshot" else
                f"gradual, cubic ramp in {cfg['PRUNING_STEPS']} steps over the first "
                f"{cfg.get('PRUNING_RAMP_END', 0.5):.0%} of fine-tuning")
    recal = cfg.get("BN_RECALIBRATION_BATCHES", 0)
    recal = (f"BatchNorm statistics re-estimated on {recal} training batches after every pruning step"
             if recal else "BatchNorm statistics not re-estimated after pruning")
    return (f"Pruning: scope {scope}; schedule {schedule}; {recal}; every model fine-tuned "
            f"{cfg['FINE_TUNE_EPOCHS']} epochs at lr {cfg['FINE_TUNE_LEARNING_RATE']:g} "
            f"({cfg['LR_SCHEDULE']}), masks held, best validation epoch at the final sparsity.\n")


def with_interval_cells(models, seeds):
    """Text cells for the tables: the MAE's and ΔMAE's 95% intervals (one seed), else numbers for mean ±
    std."""
    models = models.copy()
    if "mae_diff" not in models:
        return models.assign(test_mae_ci="", mae_diff_cell=models.get("mae_increase_pct"))
    if "int8_mae_change" in models:
        models["int8_change_cell"] = models.int8_mae_change if seeds > 1 else [
            f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]" for d, lo, hi in
            zip(models.int8_mae_change, models.int8_mae_change_ci_low, models.int8_mae_change_ci_high)]
    if seeds > 1:
        return models.assign(test_mae_ci=models.test_mae_ci_high - models.test_mae_ci_low,
                             mae_diff_cell=models.mae_diff)
    models["test_mae_ci"] = [f"{lo:.2f}–{hi:.2f}"
                             for lo, hi in zip(models.test_mae_ci_low, models.test_mae_ci_high)]
    models["mae_diff_cell"] = [f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]"
                               for d, lo, hi in zip(models.mae_diff, models.mae_diff_ci_low,
                                                    models.mae_diff_ci_high)]
    return models


def with_verdicts(models, table):
    """The verdicts of claims.claims against the baseline and the dense control, as table cells."""
    for kind, column in (("vs baseline", "verdict_baseline"), ("vs dense control", "verdict_control")):
        found = ({(r.method, r.ratio): r.verdict for r in table.itertuples() if r.kind == kind}
                 if len(table) else {})
        models[column] = [found.get((m, r), "") for m, r in zip(models.method, models.ratio)]
    return models


def sensitivity_paragraph(results):
    if not results.get("sensitivity"):
        return []
    rows = pd.DataFrame(list(results["sensitivity"]))
    rows = rows.groupby(["criterion", "layer", "ratio"], sort=False).val_mae_increase.mean().reset_index()
    top = rows[rows.ratio == rows.ratio.max()].sort_values("val_mae_increase", ascending=False)
    parts = []
    for criterion, label in (("l1_weights", "L1 weights"), ("l2_channels", "L2 channels")):
        worst = top[top.criterion == criterion].head(3)
        least = top[top.criterion == criterion].tail(3)
        if worst.empty:
            continue
        parts.append(f"{label} at {top.ratio.iloc[0]:g}: most sensitive "
                     + ", ".join(f"{r.layer} (+{r.val_mae_increase:.2f})" for r in worst.itertuples())
                     + "; least "
                     + ", ".join(f"{r.layer} (+{r.val_mae_increase:.2f})" for r in least.itertuples()))
    return ["**Layer sensitivity** (one layer pruned alone, no fine-tuning, validation MAE increase; "
            "results/sensitivity.csv, figures/sensitivity.png): " + "; ".join(parts) + "."]


def mean_std_cells(rows, columns):
    """'mean ± std' strings per method and ratio, for tables over several seeds."""
    cells = []
    for (method, ratio), group in rows.groupby(["method", "ratio"], sort=False):
        cell = {}
        for c in columns:
            if c in ("method", "ratio") or group[c].dtype == object:  # names, verdicts: one per model
                cell[c] = group[c].iloc[0]
            elif not pd.api.types.is_numeric_dtype(group[c]):  # a verdict: one per method and ratio
                cell[c] = group[c].iloc[0]
            else:
                cell[c] = f"{group[c].mean():.4g} ± {group[c].std():.2g}"
        cells.append(cell)
    return pd.DataFrame(cells)


def span(values, fmt):
    low, high = min(values), max(values)
    return format(low, fmt) if format(low, fmt) == format(high, fmt) else f"{low:{fmt}}–{high:{fmt}}"


def known(rows, column):
    """Every row has the column: latency is timed only once every model is trained."""
    return column in rows and rows[column].notna().all()


def speedup_words(rows, verdicts, prefix):
    """'1.2–3.4× (faster than the baseline at 0.5; not distinguishable from the baseline at 0.3)'."""
    found = [verdicts.get(prefix, {}).get((m, r), "") for m, r in zip(rows.method, rows.ratio)]
    said = speed.words(rows.ratio, found)
    return f"{span(rows[f'{prefix}_speedup'], '.2f')}×" + (f" ({said})" if said else "")


def method_paragraphs(models, mean_mae):
    """One paragraph per method, every statement computed from the rows; speed ranked by speed.py."""
    verdicts = {p: models.groupby(["method", "ratio"], sort=False)[f"{p}_vs_baseline"].first().to_dict()
                for p in ("latency", "onnx_latency") if f"{p}_vs_baseline" in models}
    base_spread = speed.spread(models[models.method == "baseline"], "latency")
    models = models.groupby(["method", "ratio"], sort=False).mean(numeric_only=True).reset_index()
    base = models[models.method == "baseline"].iloc[0]
    beat = "below" if base.test_mae < mean_mae else "not below"
    timing = (f"{base.latency_ms:.3g} ms per video in PyTorch"
              + (" (rounds {:.3g}–{:.3g})".format(*base_spread) if base_spread else "")
              if known(models, "latency_ms") else "latency not timed yet")
    paragraphs = [f"**Baseline.** Test MAE {base.test_mae:.2f}, {base.test_mae / mean_mae:.2f}× the mean "
                  f"predictor's {mean_mae:.2f} ({beat} it); R² {base.test_r2:.3f}; {timing}."]
    for method, row in methods.METHODS.items():
        rows = models[models.method == method]
        if rows.empty or row.title is None:
            continue
        worse = int((rows.test_mae >= mean_mae).sum())
        text = (f"**{row.title}.** At ratio{'s' if len(rows) > 1 else ''} {span(rows.ratio, 'g')}, test MAE "
                f"{span(rows.test_mae, '.2f')} ({span(rows.mae_increase_pct, '+.0f')}% vs the baseline); "
                f"{worse} of {len(rows)} no better than the mean predictor. ")
        if row.masked:
            held = (rows.sparsity - rows.sparsity_before_fine_tune).abs().max()
            text += (f"Sparsity {span(rows.sparsity_before_fine_tune, '.3f')} after pruning and "
                     f"{span(rows.sparsity, '.3f')} after fine-tuning (largest change {held:.4f}). ")
        measured = (f"measured latency speedup {speedup_words(rows, verdicts, 'latency')} against a "
                    f"theoretical "
                    if known(rows, "latency_speedup") else "theoretical speedup ")
        text += (f"Effective parameters {span(rows.params_effective / 1e6, '.2f')} M of "
                 f"{base.params / 1e6:.2f} M "
                 f"(compression {span(rows.compression_ratio, '.2f')}×); executed FLOPs "
                 f"{span(rows.flops / 1e9, '.2f')} G of {base.flops / 1e9:.2f} G; {measured}"
                 f"{span(rows.theoretical_speedup, '.2f')}×; checkpoint {file_sizes(rows, base)}.")
        if "onnx_size_mb" in rows:
            onnx_speed = (f"speedup {speedup_words(rows, verdicts, 'onnx_latency')}, "
                          if known(rows, "onnx_latency_speedup") else "")
            text += f" In ONNX Runtime: {onnx_speed}ONNX file {file_sizes(rows, base, 'onnx_')}."
        paragraphs.append(text)
    return paragraphs


def int8_line(results):
    cfg, cpu = results["config"], results["environment"].get("cpu_int8", {})
    return (f"INT8: every model's ONNX file quantized by ONNX Runtime (QDQ, per-channel int8 weights"
            f"{' in 7 bits' if cfg.get('INT8_REDUCE_RANGE') else ''}, uint8 activations, "
            f"{cfg.get('INT8_CALIBRATION_METHOD')} "
            f"calibration on {cfg.get('INT8_CALIBRATION_VIDEOS')} training videos; kept in FP32: "
            f"{', '.join(cfg.get('INT8_KEEP_FP32') or []) or 'nothing'}). Test MAE through ONNX Runtime; "
            f"speedups "
            f"against the FP32 dense model in ONNX Runtime. The CPU's int8 dot-product instructions: "
            f"{cpu.get('int8_dot_product', 'unknown')} ({cpu.get('cpu_model', 'model unknown')}); INT8 speed "
            f"depends "
            f"on them (VNNI, AMX or ARM dot products run int8 far faster than AVX2 alone).\n")
