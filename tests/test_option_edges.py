"""Every option is checked against what it takes (cli/rules.py's one table) before any
data is read: a number finite and in range, a list naming each value once and not empty where a method
measures at its values, every name one the run will use. A refused run has read and written nothing."""
import itertools
import math
import os
from types import SimpleNamespace

import pytest

import cli
import methods
import config
from cli import kinds
from cli import rules

# (options, what the message says): issue 40's cases, then the same kinds in other options
REFUSED = {
    "allocation listed twice": (["--channel-allocations", "global,global"],
                                "--channel-allocations lists global twice"),
    "budget not a number": (["--target-flops-speedups", "nan"],
                            "--target-flops-speedups nan: each value must be a number above 1, and nan is "
                            "not"),
    "budget infinite": (["--target-flops-speedups", "inf"], "and inf is not"),
    "sensitivity without ratios": (["--sensitivity", "true", "--sensitivity-ratios", ""],
                                   "--sensitivity-ratios is empty"),
    "allocation without ratios": (["--sensitivity", "false", "--channel-allocations", "sensitivity",
                                   "--sensitivity-ratios", ""], "--sensitivity-ratios is empty"),
    "round-to 0": (["--physical-round-to", "0"], "--physical-round-to takes a whole number of at least 1, "
                                                 "got 0"),
    "negative split count": (["--num-train-videos", "-2"], "--num-train-videos takes a whole number of at "
                                                           "least 1, got -2"),
    "distilled control not on": (["--distilled-methods", "unstructured_random"],
                                 "--distilled-methods names unstructured_random, which this run does not "
                                 "train (no unstructured_random_kd without it): it needs "
                                 "--random-pruning-control true"),
    "distilled allocation not on": (["--distilled-methods", "structured_physical_global"],
                                    "it needs --channel-allocations global"),
    # the same kinds elsewhere
    "seed listed twice": (["--seeds", "1,1"], "--seeds lists 1 twice"),
    "budget listed twice": (["--target-flops-speedups", "2,2"], "--target-flops-speedups lists 2 twice"),
    "distilled listed twice": (["--distilled-methods", "structured,structured"],
                               "--distilled-methods lists structured twice"),
    "kept part listed twice": (["--int8-keep-fp32", "head,head"], "--int8-keep-fp32 lists head twice"),
    "learning rate not a number": (["--learning-rate", "nan"], "--learning-rate takes a number above 0, "
                                                               "got nan"),
    "weight infinite": (["--distillation-weight", "inf"], "--distillation-weight takes a number from 0 to 1"),
    "ramp not a number": (["--pruning-ramp-end", "nan"], "--pruning-ramp-end takes a number from 0 to below"),
    "ratio infinite": (["--structured-pruning-ratios", "0.5,inf"], "and inf is not"),
    "no seeds": (["--seeds", ""], "--seeds is empty"),
    "no calibration videos": (["--int8-calibration-videos", "0"], "--int8-calibration-videos takes a whole "
                                                                  "number of at least 1"),
    "negative warm-up": (["--latency-warmup-runs", "-1"], "--latency-warmup-runs takes a whole number of at "
                                                         "least 0"),
    "negative recalibration": (["--bn-recalibration-batches", "-1"], "--bn-recalibration-batches takes"),
    "unknown allocation": (["--channel-allocations", "greedy"], "--channel-allocations greedy: each value "
                                                                "must be one of global, sensitivity"),
    "allocation without removed models": (["--channel-allocations", "global", "--structured-pruning-ratios",
                                           ""], "this run removes none: give --structured-pruning-ratios or "
                                                "--target-flops-speedups"),
    "distilled method without ratios": (["--distilled-methods", "unstructured",
                                         "--unstructured-pruning-ratios", ""],
                                        "it needs --unstructured-pruning-ratios"),
    "batches of one 1x1 frame": (["--batch-size", "1", "--num-frames", "1", "--image-size", "32"],
                                 "--batch-size 1 with --num-frames 1 at --image-size 32 or less"),
    "distilled scratch turned off": (["--distilled-methods", "scratch", "--scratch-control", "false"],
                                     "it needs --scratch-control true"),
    "rewound scratch (nothing fine-tuned)": (["--rewound-methods", "scratch"],
                                             "--rewound-methods scratch: each value must be one of"),
    "rewound control not on": (["--rewound-methods", "structured_physical_random",
                                "--random-removal-control", "false"],
                               "--rewound-methods names structured_physical_random, which this run does not "
                               "train (no structured_physical_random_rw without it)"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_a_bad_option_is_refused_naming_it_before_any_data_is_read(case, tmp_path, run_here):
    argv, message = REFUSED[case]
    result = run_here("main.py", *argv, "--data-root", "no_data_here", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert message in result.stderr
    assert result.stdout == "" and not os.listdir(tmp_path)  # nothing read, nothing written


NUMBERS = [name for name, kind in kinds.KIND.items() if kind in ("a number", "a list of numbers")]


@pytest.mark.parametrize("name", NUMBERS)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_every_number_is_finite(name, value):
    dashed = "--" + name.lower().replace("_", "-")
    with pytest.raises(cli.ConfigError, match=f"{dashed} "):
        cli.load([f"{dashed}={value}"])


LISTS = [name for name, kind in kinds.KIND.items()
         if kind.startswith("a list") and name != "NOT_RESULTS"]


@pytest.mark.parametrize("name", LISTS)
def test_every_list_names_each_value_once(name):
    dashed = "--" + name.lower().replace("_", "-")
    value = (cli.defaults()[name] or {"CHANNEL_ALLOCATIONS": ["global"], "TARGET_FLOPS_SPEEDUPS": [2.0],
                                         "IMPORTANCE_CRITERIA": ["taylor"],
                                         "DISTILLED_METHODS": ["structured"],
                                         "REWOUND_METHODS": ["structured"],
                                         "INT8_METHODS": ["baseline"]}[name])[0]
    written = rules.show(value)
    with pytest.raises(cli.ConfigError, match=f"{dashed} lists {written} twice"):
        cli.load([dashed, f"{written},{written}"])


def test_every_option_but_the_booleans_and_the_device_has_a_row_in_the_table():
    """One table says what each option takes: a constant added to config.py without a row fails here."""
    booleans = {name for name, kind in kinds.KIND.items() if kind.startswith("True")}
    internal = {"SAMPLE_DATA_ROOT", "NOT_RESULTS", "DEVICE"}
    assert set(rules.RULES) == set(kinds.KIND) - booleans - internal


def test_the_shipped_configuration_and_the_quick_preset_pass():
    assert cli.load([]).SEEDS == [42] and cli.load(["--quick"]).NUM_EPOCHS == config.QUICK["NUM_EPOCHS"]


def test_a_list_written_as_quoted_text_in_config_py_is_told_to_be_a_list(monkeypatch):
    """CHANNEL_ALLOCATIONS = "global": the fix is ["global"], not the text without its quotes."""
    monkeypatch.setattr(config, "CHANNEL_ALLOCATIONS", "global")
    with pytest.raises(cli.ConfigError) as refused:
        cli.load([])
    assert "write it as a list: CHANNEL_ALLOCATIONS = ['global']" in str(refused.value)
    assert "without the quotes" not in str(refused.value)
    monkeypatch.setattr(config, "CHANNEL_ALLOCATIONS", [])
    monkeypatch.setattr(config, "SEEDS", "42")
    with pytest.raises(cli.ConfigError, match=r"write it as a list, without the quotes: SEEDS = \[42\]"):
        cli.load([])


SWITCHES = {"UNSTRUCTURED_PRUNING_RATIOS": ([], [0.5]), "STRUCTURED_PRUNING_RATIOS": ([], [0.5]),
            "PHYSICAL_STRUCTURED_PRUNING": (False, True), "PRUNING_SCHEDULE": ("oneshot", "gradual"),
            "CHANNEL_ALLOCATIONS": ([], ["global", "sensitivity"]), "RANDOM_PRUNING_CONTROL": (False, True),
            "RANDOM_REMOVAL_CONTROL": (False, True), "SCRATCH_CONTROL": (False, True)}


def test_the_methods_a_distilled_method_may_name_are_main_py_plans():
    """methods.planned, which the options' checks ask whether a distilled method is trained, says
    main.pruning_plan's methods, for every combination of the options that choose them (a budget stands
    for the structured ratios)."""
    import main
    base = vars(cli.load([]))
    for values in itertools.product(*SWITCHES.values()):
        cfg = SimpleNamespace(**{**base, **dict(zip(SWITCHES, values))})
        planned = {step.method for step in main.pruning_plan(cfg)}
        assert {m for m in rules.PRUNED if methods.planned(m, cfg)} == planned, values


def test_ranges_say_their_ends_as_they_test_them():
    assert rules.between(0, 1, above=True, below=True).fits(0.5)
    assert not rules.between(0, 1, above=True, below=True).fits(0)
    assert rules.between(0, 1).fits(1) and not rules.between(1).fits(math.nan)
    assert rules.between(0, 1, below=True).says == "from 0 to below 1"
