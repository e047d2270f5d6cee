"""What only the model can tell a configuration cannot give is refused before any data is read or any
model trained (plan_checks.py), naming the option: two FLOP budgets that one model meets, an allocation
that cannot come down to the uniform model's FLOPs, sensitivity ratios that remove no channel of a group.
A well-formed configuration passes and trains as before."""
import os

import numpy as np
import pytest

import allocation
import cli
import flop_budgets
import plan_checks

REFUSED = {  # issue 40's cases 2, 16 and 4, and their kin
    "two budgets, one model": (["--target-flops-speedups", "2,2.05"],
                               "target-flops-speedups 2 and 2.05 come to the same structured_physical ratio "
                               "0.251 (channels rounded to 8), one model; list one of them"),
    "allocation past its floor": (["--structured-pruning-ratios", "0.95", "--physical-round-to", "1",
                                   "--channel-allocations", "global"],
                                  "--channel-allocations global at ratio 0.95: no group may lose more than "
                                  "90% of its channels"),
    "sensitivity allocation past its floor": (["--structured-pruning-ratios", "0.95", "--physical-round-to",
                                               "1", "--channel-allocations", "sensitivity"],
                                              "--channel-allocations sensitivity at ratio 0.95"),
    "ratio that removes nothing": (["--channel-allocations", "sensitivity", "--sensitivity-ratios", "0.05"],
                                   "--sensitivity-ratios 0.05 removes no channel of 6 coupled group(s)"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_what_the_model_cannot_give_is_refused_before_any_data_is_read(case, tmp_path, run_here):
    argv, message = REFUSED[case]
    result = run_here("main.py", *argv, "--image-size", "32", "--data-root", "no_data_here", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert message in result.stderr
    assert result.stdout == "" and not os.listdir(tmp_path)  # nothing read, nothing written


def test_the_quick_allocations_pass():
    plan_checks.refuse(cli.load(["--quick", "--channel-allocations", "global,sensitivity"]))


def test_the_sensitivity_ratios_that_remove_a_channel_of_every_group_pass():
    """At round-to 8 the smallest groups (64 channels) lose 8 at 0.125 and none below it; at round-to 64
    they lose none at any ratio (at least round-to channels are kept)."""
    cfg = cli.load(["--image-size", "32", "--channel-allocations", "sensitivity"])
    cfg.SENSITIVITY_RATIOS = [0.125]
    assert plan_checks.sensitivity_problems(cfg) == []
    cfg.SENSITIVITY_RATIOS = [0.12]
    assert "use ratios of at least 0.125" in plan_checks.sensitivity_problems(cfg)[0]
    cfg.SENSITIVITY_RATIOS, cfg.PHYSICAL_ROUND_TO = [0.9], 64
    assert "at --physical-round-to 64" in plan_checks.sensitivity_problems(cfg)[0]


def test_a_loss_curve_takes_a_share_measured_twice_once_and_refuses_a_group_measured_at_none():
    """Two ratios rounded to one channel count measure one pruning: the curve is finite, not NaN. A group
    whose every row removed nothing has no loss to allocate from: refused, not allocated at random."""
    plan = plan_checks.channel_plan(32)
    rows = [{"group": g, "ratio": r, "channels": c, "removed": removed, "val_mae_increase": 0.1 * removed}
            for g, c in plan.channels.items() for r, removed in ((0.5, c // 2), (0.55, c // 2))]
    curves = allocation.loss_curves(plan, rows)
    assert all(np.isfinite(curve(share)) for curve in curves.values() for share in (0.25, 0.5, 0.9))
    for row in rows:
        row["removed"] = 0
    with pytest.raises(flop_budgets.AllocationError, match="no measured loss for the coupled group"):
        allocation.loss_curves(plan, rows)
