"""Retraining as the field compares it: learning-rate rewinding (Renda et al. 2020) replays the baseline's
own rates, so where they equal plain fine-tuning's it is plain fine-tuning, bit for bit; the small network
from scratch gets Scratch-E's epochs (the pruned model's training in all) or Scratch-B's (the dense
baseline's training compute, in FLOPs, at most SCRATCH_B_MAX_FACTOR times Scratch-E's)."""
import json

import pytest

import cli
import flop_budgets
import seed_models
from conftest import LEAN, TINY, options, run_folders, run_main


def test_rewinding_replays_the_last_epochs_of_the_baselines_schedule():
    cfg = cli.load(["--num-epochs", "10", "--fine-tune-epochs", "3", "--fine-tune-schedule", "rewind"])
    assert seed_models.fine_tuning(cfg) == {"epochs": 3, "lr": cfg.LEARNING_RATE, "rewind": (7, 10)}
    plain = cli.load(["--num-epochs", "10", "--fine-tune-epochs", "3"])
    assert seed_models.fine_tuning(plain) == {"epochs": 3, "lr": plain.FINE_TUNE_LEARNING_RATE}
    with pytest.raises(cli.ConfigError, match="--fine-tune-schedule rewind"):
        cli.load(["--num-epochs", "2", "--fine-tune-epochs", "3", "--fine-tune-schedule", "rewind"])


@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.7])
def test_scratch_b_trains_for_the_dense_baselines_compute_within_its_cap(ratio):
    cfg = cli.load(["--quick"])
    scratch_e = cfg.NUM_EPOCHS + cfg.FINE_TUNE_EPOCHS
    fewer = (flop_budgets.uniform_flops(0.0, cfg.IMAGE_SIZE, cfg.PHYSICAL_ROUND_TO)
             / flop_budgets.uniform_flops(ratio, cfg.IMAGE_SIZE, cfg.PHYSICAL_ROUND_TO))
    epochs = seed_models.scratch_epochs(cfg, "scratch_b", ratio)
    assert epochs == max(scratch_e, min(round(cfg.NUM_EPOCHS * fewer), round(2 * scratch_e)))
    assert seed_models.scratch_epochs(cfg, "scratch", ratio) == scratch_e
    assert seed_models.scratch_epochs(cfg, "scratch_b_kd", ratio) == epochs


def tiny(sample_root, out, *more):
    result = run_main(*TINY, *LEAN, *options(data_root=sample_root, lr_schedule="cosine",
                                             fine_tune_learning_rate=1e-3, unstructured_pruning_ratios="",
                                             onnx_export="false"), *more, *run_folders(out), cwd=out)
    assert result.returncode == 0, result.stderr[-3000:]
    return {r["name"]: r for r in json.load(open(out / "results" / "results.json"))["models"]}


def test_rewinding_with_plain_fine_tunings_rates_is_plain_fine_tuning_bit_for_bit(sample_root, tmp_path):
    """TINY: one baseline epoch and one fine-tuning epoch; with the fine-tuning rate the baseline's, the
    rewound rates (the baseline's last epoch) are plain fine-tuning's, for the whole run
    (--fine-tune-schedule rewind) or one method's rewound twin (--rewound-methods). The small net trains
    for Scratch-B's epochs beside."""
    (tmp_path / "plain").mkdir()
    (tmp_path / "rewound").mkdir()
    plain = tiny(sample_root, tmp_path / "plain", "--rewound-methods", "structured_physical")
    rewound = tiny(sample_root, tmp_path / "rewound", "--fine-tune-schedule", "rewind",
                   "--scratch-b-control", "true")
    assert set(plain) - set(rewound) == {"structured_physical_rw_0.5"} and "scratch_b_0.5" in rewound
    for name, record in rewound.items():
        if name in plain:
            for field in ("test_mae", "val_mae", "test_errors", "params_effective"):
                assert record[field] == plain[name][field], (name, field)
    # the rewound twin of one method, in a run fine-tuned plainly: the same model, said to be rewound
    twin, method = plain["structured_physical_rw_0.5"], plain["structured_physical_0.5"]
    assert twin["test_errors"] == method["test_errors"]
    assert (twin["fine_tune_schedule"], method["fine_tune_schedule"]) == ("rewind", "plain")
    assert rewound["structured_0.5"]["fine_tune_schedule"] == "rewind"
    cfg = cli.load([*TINY, "--scratch-b-control", "true"])
    assert len(rewound["scratch_b_0.5"]["history"]["val_mae"]) == seed_models.scratch_epochs(cfg, "scratch_b",
                                                                                              0.5)
