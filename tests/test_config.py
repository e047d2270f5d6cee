"""Constants come from config.py and are overridden by their dashed names."""
import pytest

import cli
import config


def test_defaults_reproduce_the_reference():
    cfg = cli.load([])
    assert (cfg.NUM_FRAMES, cfg.IMAGE_SIZE, cfg.BATCH_SIZE) == (32, 112, 16)
    assert (cfg.NUM_EPOCHS, cfg.LEARNING_RATE) == (50, 1e-4)
    assert (cfg.FINE_TUNE_EPOCHS, cfg.FINE_TUNE_LEARNING_RATE, cfg.SEED) == (2, 1e-5, 42)
    assert cfg.UNSTRUCTURED_PRUNING_RATIOS == [0.5, 0.8, 0.9]
    assert cfg.STRUCTURED_PRUNING_RATIOS == [0.3, 0.5, 0.7]
    assert not cfg.REMOVE_MASKS_BEFORE_FINE_TUNE
    # the same layers for every method, the head left dense; one-shot pruning, as the reference
    assert (cfg.PRUNING_SCOPE, cfg.PRUNING_SCHEDULE) == ("backbone", "oneshot")


def test_overrides_by_dashed_name_with_lists_booleans_and_none():
    cfg = cli.load(["--num-epochs", "3", "--data-root", "/data/echonet", "--results-dir=out",
                       "--structured-pruning-ratios", "0.5", "--pretrained", "false",
                       "--pretrained-path", "none"])
    assert cfg.NUM_EPOCHS == 3 and cfg.DATA_ROOT == "/data/echonet" and cfg.RESULTS_DIR == "out"
    assert cfg.STRUCTURED_PRUNING_RATIOS == [0.5] and cfg.PRETRAINED is False and cfg.PRETRAINED_PATH is None


def test_quick_preset_and_explicit_overrides_win():
    quick = cli.load(["--quick"])
    assert quick.NUM_EPOCHS == config.QUICK["NUM_EPOCHS"]
    assert cli.load(["--num-epochs", "2", "--quick"]).NUM_EPOCHS == 2


@pytest.mark.parametrize("argv, message", [
    (["--num-epoch", "3"], "unrecognized arguments: --num-epoch 3"),  # no abbreviations
    (["--num-epochs"], "argument --num-epochs: expected one argument"),
    (["--num-epochs", "three"], "argument --num-epochs: invalid int value: 'three'"),
    (["--num-epochs", "none"], "invalid int value: 'none'"),  # only a None default takes none
    (["--pretrained", "maybe"], "argument --pretrained: invalid bool value: 'maybe'"),
    (["--seeds", "42,x"], "argument --seeds: invalid comma-separated int list value: '42,x'"),
    # internal constants are not options
    (["--not-results", "FRESH"], "unrecognized arguments: --not-results"),
    (["--sample-data-root", "x"], "unrecognized arguments: --sample-data-root"),
    (["--fresh", "true"], "unrecognized arguments: true"),  # a flag
])
def test_bad_options_are_argparse_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit:
        cli.load(argv)
    assert exit.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--unstructured-pruning-ratios", "0.5,1.2"], "strictly between 0 and 1, and 1.2 is not"),
    (["--num-epochs", "0"], "--num-epochs takes a whole number of at least 1, got 0"),
    (["--batch-size", "-4"], "--batch-size takes a whole number of at least 1, got -4"),
    (["--num-frames", "0"], "--num-frames takes a whole number of at least 1"),
    (["--pruning-scope", "head"], "--pruning-scope takes one of backbone, all, got 'head'"),
    (["--pruning-schedule", "cubic"], "--pruning-schedule takes one of oneshot, gradual"),
    (["--pruning-steps", "0"], "--pruning-steps takes a whole number of at least 1"),
    (["--pruning-ramp-end", "1"], "--pruning-ramp-end takes a number from 0 to below 1, got 1"),
    (["--sensitivity-ratios", "0.5,1"], "--sensitivity-ratios 0.5,1: each value must be a number strictly"),
    (["--unstructured-pruning-ratios", "0.5,0.5"], "--unstructured-pruning-ratios lists 0.5 twice"),
    (["--seed", "-1"], "--seed takes a whole number of at least 0, got -1"),
    (["--seeds", "42,-7"], "--seeds 42,-7: each value must be a whole number of at least 0, and -7 is not"),
    (["--cache-dir", ""], "--cache-dir takes a path, not empty, got ''"),
    (["--results-dir", " "], "--results-dir takes a path, not empty, got ''"),
    (["--device", "tpu"], "device 'tpu' is not a device"),
    (["--device", "mps"], "device 'mps' is not supported; use auto, cpu, cuda or cuda:N"),
])
def test_bad_configurations_are_config_errors(argv, message):
    with pytest.raises(cli.ConfigError, match=message):
        cli.load(argv)


def test_option_types_follow_the_defaults():
    cfg = cli.load(["--seeds", "1, 2,3", "--sensitivity-ratios=0.4,0.6", "--amp", "false",
                       "--sensitivity", "TRUE", "--clips-on-device", "0.25", "--onnx-export", "false",
                       "--learning-rate", "3e-4", "--fresh"])
    assert cfg.SEEDS == [1, 2, 3] and cfg.SENSITIVITY_RATIOS == [0.4, 0.6]
    assert cfg.AMP is False and cfg.SENSITIVITY is True and cfg.LEARNING_RATE == 3e-4 and cfg.FRESH is True
    # a None default takes the most specific type that fits, or none; a share of the GPU as a number
    assert cfg.CLIPS_ON_DEVICE == 0.25 and cfg.ONNX_EXPORT is False
    assert cli.load(["--int8", "none"]).INT8 is None
    assert cli.load([]).CLIPS_ON_DEVICE == "auto"
    assert cli.load(["--pretrained-path", "w.pt"]).PRETRAINED_PATH == "w.pt"
    # the namespace holds every constant, the internal ones too, and nothing else
    # (CHECKPOINT_DIR's None is resolved: inside the results folder)
    assert vars(cli.load([])) == {**cli.defaults(), "CHECKPOINT_DIR": "results/checkpoints"}
    assert cli.load([]).FRESH is False


def test_quick_values_then_explicit_options_in_any_order():
    cfg = cli.load(["--image-size", "48", "--quick", "--sensitivity-ratios", "0.3"])
    assert (cfg.IMAGE_SIZE, cfg.SENSITIVITY_RATIOS, cfg.NUM_FRAMES) == (48, [0.3], config.QUICK["NUM_FRAMES"])


def test_a_script_adds_its_own_arguments():
    p = cli.parser("a script")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("paths", nargs="*")
    cfg = cli.load(["a.pt", "--repeat", "3", "--quick"], p)
    assert cfg.repeat == 3 and cfg.paths == ["a.pt"] and cfg.NUM_EPOCHS == config.QUICK["NUM_EPOCHS"]


def test_help_groups_every_option_under_its_section_with_its_comment_default_and_quick_value():
    text = cli.parser().format_help()
    for heading in ("data:", "model and training:", "pruning:", "measurement:", "output:"):
        assert "\n" + heading in text
    flat = " ".join(text.split())
    assert ("--num-frames N frames per video, evenly spaced over the whole video (default 32; --quick 16)"
            in flat)
    # a comment block above a constant, with constants and Python values as written on the command line
    assert ("n = --pruning-steps, the steps evenly spaced from the start of fine-tuning to --pruning-ramp-end"
            in flat)
    assert "--clips-on-device TEXT Where a split's decoded clips live during the run" in flat
    assert "--seeds N,..." in flat and "(default 0.3,0.5,0.7,0.9; --quick 0.5,0.9)" in flat
    for name in set(cli.defaults()) - {"SAMPLE_DATA_ROOT", "FRESH", "NOT_RESULTS"}:
        assert f"--{name.lower().replace('_', '-')} " in text
    assert "--not-results" not in text and "--sample-data-root" not in text


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a GPU is here")
def test_a_gpu_asked_for_without_one_is_refused_with_the_options():
    refused = "device 'cuda' asks for a GPU but CUDA is not available here"
    with pytest.raises(cli.ConfigError, match=refused):
        cli.load(["--device", "cuda"])


# --- issue 26: config.py edits are checked like options ----------------------------------------------

import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from cli import kinds  # noqa: E402
from conftest import ROOT  # noqa: E402

EDITS = {  # what a user writes in config.py: what the message says
    ("PHYSICAL_STRUCTURED_PRUNING", "false"): "PHYSICAL_STRUCTURED_PRUNING = 'false'; "
                                              "PHYSICAL_STRUCTURED_PRUNING takes True or False; "
                                              "write it without the quotes",
    ("BATCH_SIZE", "16"): "BATCH_SIZE = '16'; BATCH_SIZE takes a whole number; write it without the quotes",
    ("STRUCTURED_PRUNING_RATIOS", 0.5): "STRUCTURED_PRUNING_RATIOS = 0.5; STRUCTURED_PRUNING_RATIOS takes a "
                                        "list of numbers; write it as a list: "
                                        "STRUCTURED_PRUNING_RATIOS = [0.5]",
    ("SEEDS", 42): "SEEDS = 42; SEEDS takes a list of whole numbers; write it as a list: SEEDS = [42]",
    ("NUM_EPOCHS", 1.5): "NUM_EPOCHS = 1.5; NUM_EPOCHS takes a whole number; e.g. NUM_EPOCHS = 2",
}


@pytest.mark.parametrize("edit", EDITS, ids=[name for name, _ in EDITS])
def test_a_config_py_value_of_the_wrong_kind_is_one_message_before_any_data(edit, tmp_path, run_here,
                                                                            monkeypatch):
    name, value = edit
    monkeypatch.setattr(config, name, value)
    result = run_here("main.py", "--data-root", "no_data_here", cwd=tmp_path)
    line = kinds.lines()[name]
    assert result.returncode == 2 and "Traceback" not in result.stderr + result.stdout
    assert f"config.py line {line}: {EDITS[edit]}" in result.stderr
    assert result.stdout == "" and not os.listdir(tmp_path)  # nothing read, nothing written


def test_a_renamed_constant_is_named_with_the_one_it_replaced(monkeypatch):
    monkeypatch.delattr(config, "NUM_EPOCHS")
    monkeypatch.setattr(config, "NUM_EPOCH", 5, raising=False)
    with pytest.raises(cli.ConfigError) as refused:
        cli.load([])
    assert ("NUM_EPOCH is not a constant of the experiment; did you mean NUM_EPOCHS (missing from config.py)?"
            in str(refused.value))
    assert str(refused.value).count("NUM_EPOCHS") == 1  # said once


def test_the_shipped_config_fits_and_every_constant_has_a_kind():
    values = {k: v for k, v in vars(config).items() if k.isupper()}
    assert kinds.problems(dict(values)) == [] and set(kinds.KIND) == set(cli.defaults())
    assert cli.load(["--amp", "FALSE", "--sensitivity", "True"]).AMP is False


@pytest.mark.parametrize("word", ["yes", "no", "1", "0", "on", "off"])
def test_booleans_take_true_or_false_and_nothing_else(word):
    with pytest.raises(SystemExit):
        cli.load(["--amp", word])


@pytest.mark.parametrize("edit, expected", [
    ("NUM_EPOCHS = 50 +", "config.py line {n}: invalid syntax: NUM_EPOCHS = 50 +"),
    ("NUM_EPOCHS = FIFTY", "config.py line {n}: NameError: name 'FIFTY' is not defined (NUM_EPOCHS = FIFTY"),
])
def test_a_syntax_error_or_unknown_name_in_config_py_is_one_message(edit, expected, tmp_path):
    project = tmp_path / "project"
    not_the_program = ["tests", "data", "results*", ".*", "cache", "figures", "__pycache__", "docs"]
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(*not_the_program))
    text = (project / "config.py").read_text()
    n = text.splitlines().index("NUM_EPOCHS = 50           # epochs of baseline training") + 1
    (project / "config.py").write_text(text.replace("NUM_EPOCHS = 50 ", edit + " ", 1))
    result = subprocess.run([sys.executable, "main.py"], cwd=project, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr and result.stdout == ""
    assert expected.format(n=n) in result.stderr
    assert "Fix that line: NAME = value, text in quotes" in result.stderr
