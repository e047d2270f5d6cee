"""Constants come from config.py and are overridden by their dashed names."""
import pytest

import config


def test_defaults_reproduce_the_reference():
    cfg = config.load([])
    assert (cfg.NUM_FRAMES, cfg.IMAGE_SIZE, cfg.BATCH_SIZE, cfg.NUM_EPOCHS, cfg.LEARNING_RATE) == (32, 112, 16, 50, 1e-4)
    assert (cfg.FINE_TUNE_EPOCHS, cfg.FINE_TUNE_LEARNING_RATE, cfg.SEED) == (2, 1e-5, 42)
    assert cfg.UNSTRUCTURED_PRUNING_RATIOS == [0.5, 0.8, 0.9]
    assert cfg.STRUCTURED_PRUNING_RATIOS == [0.3, 0.5, 0.7]
    assert not cfg.REMOVE_MASKS_BEFORE_FINE_TUNE
    # the same layers for every method, the head left dense; one-shot pruning, as the reference
    assert (cfg.PRUNING_SCOPE, cfg.PRUNING_SCHEDULE) == ("backbone", "oneshot")


def test_overrides_by_dashed_name_with_lists_booleans_and_none():
    cfg = config.load(["--num-epochs", "3", "--data-root", "/data/echonet", "--results-dir=out",
                       "--structured-pruning-ratios", "0.5", "--pretrained", "false", "--pretrained-path", "none"])
    assert cfg.NUM_EPOCHS == 3 and cfg.DATA_ROOT == "/data/echonet" and cfg.RESULTS_DIR == "out"
    assert cfg.STRUCTURED_PRUNING_RATIOS == [0.5] and cfg.PRETRAINED is False and cfg.PRETRAINED_PATH is None


def test_quick_preset_and_explicit_overrides_win():
    quick = config.load(["--quick"])
    assert quick.NUM_EPOCHS == config.QUICK["NUM_EPOCHS"]
    assert config.load(["--num-epochs", "2", "--quick"]).NUM_EPOCHS == 2


@pytest.mark.parametrize("argv, message", [
    (["--num-epoch", "3"], "unknown option '--num-epoch'"),
    (["--num-epochs"], "needs a value"),
    (["--num-epochs", "three"], "--num-epochs 'three'"),
    (["--unstructured-pruning-ratios", "0.5,1.2"], "ratio 1.2 is outside"),
    (["--num-epochs", "0"], "num-epochs must be at least 1"),
    (["--batch-size", "-4"], "batch-size must be at least 1"),
    (["--num-frames", "0"], "num-frames must be at least 1"),
    (["--pruning-scope", "head"], "pruning-scope must be backbone or all"),
    (["--pruning-schedule", "cubic"], "pruning-schedule must be oneshot or gradual"),
    (["--pruning-steps", "0"], "pruning-steps must be at least 1"),
    (["--sensitivity-ratios", "0.5,1"], "sensitivity-ratios must lie in"),
])
def test_bad_overrides_are_clear_errors(argv, message):
    with pytest.raises(config.ConfigError, match=message):
        config.load(argv)
