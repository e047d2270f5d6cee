"""Every method of the experiment, each declared once in one table (METHODS): what chooses its weights or
channels, which ratios the plan prunes it at and which options put it there, what it is a random control
of, the methods it is compared with, and how the tables, claims and figures show it. The pruner
(pruners.py), the plan (main.pruning_plan), the options' choices and checks (cli/rules.py), the claims'
pairs (claims.py) and the reports read it here. A new method is one row and its chooser function; a row
added at run time goes through `register`. No torch here: every script reads this table.

A method's row:
- label: its name in the claims, the figures' legends and the README ("coupled channels (removed)");
  summary.md's Tables 1-5 name it by its key, the `method` column of results.csv;
- title: the heading of its paragraph in summary.md's "What the numbers show" (None: the dense models,
  which have paragraphs of their own or none);
- kind: "dense" (nothing pruned: named without a ratio, no line of its own in the figures against the
  ratio, summary.md's Table 1), "unstructured" (Table 2) or "structured" (Table 3);
- masked: pruned by masks, zeros kept in dense tensors (its sparsity is reported); False where channels
  are removed, or the small network is trained as it is;
- bar: its label in figures/sparsity_fine_tune.png (None: not drawn there);
- style: (colour, marker, line style) in every figure (a marker and a line style of its own, readable
  in black-and-white print);
- chooser: "module.function" (imported when a model is pruned, so that this table needs no torch), or the
  function itself: chooser(model, ratio, setting) -> (prune(target), what it reached) (pruners.py);
  None: not pruned (the baseline; the small net, trained from scratch: seed_models.run_scratch);
- ratios: the ratios the plan prunes it at: "unstructured" (UNSTRUCTURED_PRUNING_RATIOS), "channels"
  (STRUCTURED_PRUNING_RATIOS) or "removed" (those and the FLOP budgets' ratios, with
  PHYSICAL_STRUCTURED_PRUNING); None: not in the plan by ratio;
- switch: ((constant, value), ...) that must all hold for the plan to train it: a list constant naming
  the value, or a switch that is True;
- removes: channels removed by Torch-Pruning, a smaller network (else masks, or nothing);
- one_shot: its choice is made in one step, so not in a gradual run;
- control_of: the method whose choice it makes at random (ShrinkBench's control);
- compared_with: the methods it is compared with at equal ratios (claims.py's exploratory pairs).
"""
from dataclasses import dataclass, replace

CONTROL = "dense_control"  # the baseline fine-tuned as the pruned models are: nothing pruned
SCRATCH = "scratch"  # structured_physical's architecture trained from scratch (seed_models.run_scratch)
SCRATCH_B = "scratch_b"  # the same, trained for the dense baseline's compute (seed_models.scratch_epochs)
DISTILLED = "_kd"  # a method's name with this suffix: the method, fine-tuned with distillation (main.py)
REWOUND = "_rw"  # the method, fine-tuned by learning-rate rewinding (seed_models.fine_tuning)
VARIANTS = {DISTILLED: "DISTILLED_METHODS", REWOUND: "REWOUND_METHODS"}  # suffix: the constant naming them


@dataclass(frozen=True)
class Method:
    label: str
    title: str = None
    kind: str = "structured"
    masked: bool = False
    bar: str = None
    style: tuple = ("black", "o", "-")
    chooser: object = None
    ratios: str = None
    switch: tuple = ()
    removes: bool = False
    one_shot: bool = False
    control_of: str = None
    compared_with: tuple = ()


REMOVAL = ("PHYSICAL_STRUCTURED_PRUNING", True)
# The importance criteria of coupled removal besides group L2 (criteria.py): (name in IMPORTANCE_CRITERIA,
# words, colour, marker); each structured_physical_<name>, compared with group L2 at the same ratio.
CRITERIA = [("taylor", "first-order Taylor", "#1f5f3a", "p"), ("hessian", "Hessian (OBD)", "#4f7942", "8"),
            ("bnscale", "BatchNorm scale", "#6b8e23", "H"),
            ("fpgm", "geometric median (FPGM)", "#2f4f4f", "2"),
            ("lamp", "LAMP", "#3cb371", "3")]
METHODS = {
    "baseline": Method("baseline", None, kind="dense", style=("black", "*", "none")),
    CONTROL: Method("dense control", None, kind="dense", style=("gray", "D", "none"),
                    chooser="prune_utils.keep_all"),
    "unstructured": Method("unstructured", "Unstructured (global L1, masks)",
                           kind="unstructured", masked=True, bar="unstr.", style=("#1b6ca8", "o", "-"),
                           chooser="prune_utils.global_l1", ratios="unstructured"),
    "structured": Method("per-layer L2 channels (masks)",
                         "Per-layer L2 channels (each conv's own norms, masks)",
                         kind="structured", masked=True, bar="struct.", style=("#d1495b", "s", "--"),
                         chooser="prune_utils.per_layer_l2", ratios="channels",
                         compared_with=("unstructured",)),
    "structured_coupled_masked": Method("coupled channels (masks)",
                                        "Coupled channels, masked (Torch-Pruning's choice, masks)",
                                        kind="structured", masked=True, style=("#8e6bbf", "v", "--"),
                                        chooser="prune_utils.coupled_masked", ratios="channels",
                                        switch=(REMOVAL,), one_shot=True, compared_with=("structured",)),
    "structured_physical": Method("coupled channels (removed)", "Coupled channels, removed (Torch-Pruning)",
                                  kind="structured", style=("#2e8540", "^", ":"),
                                  chooser="prune_utils.coupled_removed", ratios="removed", removes=True,
                                  compared_with=("structured_coupled_masked", "unstructured")),
    "structured_physical_global": Method("coupled channels, global allocation (removed)",
                                         "Coupled channels, removed, allocated by Torch-Pruning's global "
                                         "ranking at the uniform model's FLOPs",
                                         kind="structured", style=("#0b6e4f", "<", ":"),
                                         chooser="allocation.global_allocation", ratios="removed",
                                         switch=(("CHANNEL_ALLOCATIONS", "global"),), removes=True,
                                         one_shot=True, compared_with=("structured_physical",)),
    "structured_physical_sensitivity": Method("coupled channels, sensitivity allocation (removed)",
                                              "Coupled channels, removed, allocated by the layer sensitivity "
                                              "at the uniform model's FLOPs",
                                              kind="structured", style=("#5a8f29", ">", ":"),
                                              chooser="allocation.sensitivity_allocation", ratios="removed",
                                              switch=(("CHANNEL_ALLOCATIONS", "sensitivity"),), removes=True,
                                              one_shot=True, compared_with=("structured_physical",)),
    **{f"structured_physical_{name}": Method(f"coupled channels, {words} (removed)",
                                             f"Coupled channels, removed, by {words} importance "
                                             f"(Torch-Pruning)",
                                             kind="structured", style=(colour, marker, ":"),
                                             chooser=f"criteria.{name}_removed", ratios="removed",
                                             switch=(("IMPORTANCE_CRITERIA", name),), removes=True,
                                             compared_with=("structured_physical",))
       for name, words, colour, marker in CRITERIA},
    "unstructured_lamp": Method("unstructured, LAMP", "Unstructured (layer-adaptive magnitude, LAMP, masks)",
                                kind="unstructured", masked=True, style=("#3d7ea6", "4", (0, (2, 2))),
                                chooser="criteria.lamp_weights", ratios="unstructured",
                                switch=(("IMPORTANCE_CRITERIA", "lamp"),), compared_with=("unstructured",)),
    "unstructured_flops": Method("unstructured at removal's FLOPs",
                                 "Unstructured (global L1, masks) at coupled removal's effective FLOPs",
                                 kind="unstructured", masked=True, style=("#14426b", "d", (0, (5, 1))),
                                 chooser="allocation.unstructured_at_removal_flops", ratios="removed",
                                 switch=(("EQUAL_FLOPS_METHODS", "unstructured"),), one_shot=True),
    "structured_flops": Method("per-layer L2 channels (masks) at removal's FLOPs",
                               "Per-layer L2 channels (masks) at coupled removal's effective FLOPs",
                               kind="structured", masked=True, style=("#8c1c2b", "X", (0, (3, 1, 1, 1))),
                               chooser="allocation.per_layer_at_removal_flops", ratios="removed",
                               switch=(("EQUAL_FLOPS_METHODS", "structured"),), one_shot=True),
    "unstructured_random": Method("random unstructured", "Control: unstructured, random weights",
                                  kind="unstructured", masked=True, bar="unstr.\nrand.",
                                  style=("#7fa7c9", "x", "-."), chooser="prune_utils.random_weights",
                                  ratios="unstructured", switch=(("RANDOM_PRUNING_CONTROL", True),),
                                  control_of="unstructured"),
    "structured_random": Method("random per-layer channels (masks)", "Control: per-layer channels, random",
                                kind="structured", masked=True, bar="struct.\nrand.",
                                style=("#e89aa5", "+", "-."), chooser="prune_utils.random_channels",
                                ratios="channels", switch=(("RANDOM_PRUNING_CONTROL", True),),
                                control_of="structured"),
    "structured_physical_random": Method("random coupled channels (removed)",
                                         "Control: coupled channels, random, removed",
                                         kind="structured", style=("#9cc9a4", "1", "-."),
                                         chooser="prune_utils.random_coupled_removed", ratios="removed",
                                         switch=(("RANDOM_REMOVAL_CONTROL", True),), removes=True,
                                         control_of="structured_physical"),
    SCRATCH: Method("small net from scratch",
                    "Control: structured_physical's architecture trained from scratch",
                    kind="structured", style=("#c28f2c", "P", ":"), ratios="removed",
                    switch=(("SCRATCH_CONTROL", True),)),
    SCRATCH_B: Method("small net from scratch, the dense model's compute",
                      "Control: structured_physical's architecture trained from scratch for the dense "
                      "baseline's training compute (Scratch-B)",
                      kind="structured", style=("#a0522d", "|", (0, (3, 1))), ratios="removed",
                      switch=(("SCRATCH_B_CONTROL", True),), compared_with=("structured_physical", SCRATCH)),
}
# The study's primary questions, stated before any run (Holm over them alone, claims.py): at each ratio of
# coupled removal, that is at each FLOP budget, is removal as accurate as unstructured and per-layer masks at
# its effective FLOPs, and as the small net trained from scratch; and what does each of the four lose
# against the dense baseline. Every other comparison (the rows' compared_with, each random control against
# its method, each distilled model against the same method fine-tuned on the labels alone) is exploratory,
# a Holm family of its own.
PRIMARY_PAIRS = [("structured_physical", "unstructured_flops"), ("structured_physical", "structured_flops"),
                 ("structured_physical", SCRATCH)]
PRIMARY_METHODS = ("structured_physical", "unstructured_flops", "structured_flops", SCRATCH)  # vs baseline
# The criteria study's questions, stated before its run, a Holm family of their own (claims.py): each
# importance criterion against group L2 removal at the same ratio, so at the same FLOP budget.
# And each method fine-tuned by learning-rate rewinding against the same method fine-tuned plainly (the view
# CRITERIA_PAIRS holds both).
CRITERION_PAIRS = [(f"structured_physical_{name}", "structured_physical") for name, *_ in CRITERIA]
# Views of the table, kept in step by register (lists and dicts: a module holding one sees a row added).
LABELS, DENSE, PAIRS, REMOVED, ALLOCATED, FLOPS_MATCHED, ONE_SHOT_ONLY, RANDOM, CRITERIA_PAIRS = (
    {}, [], [], [], [], [], [], [], [])


def distilled(row):
    """A method fine-tuned (the small net: trained) with distillation from the dense baseline: its name with
    DISTILLED, its colour and marker with a line of its own."""
    line = "none" if row.style[2] == "none" else (0, (1, 1))
    return replace(row, label=row.label + " + distillation", bar=None, style=(row.style[0], "h", line),
                   title=row.title and row.title + ", distilled from the dense model", ratios=None,
                   compared_with=(), control_of=None)


def rewound(row):
    """A method fine-tuned by learning-rate rewinding: its name with REWOUND, a line of its own."""
    return replace(row, label=row.label + " + LR rewinding", bar=None, style=(row.style[0], "*", (0, (4, 1))),
                   title=row.title and row.title + ", fine-tuned by learning-rate rewinding", ratios=None,
                   compared_with=(), control_of=None)


def register(name, row):
    """Add a method (and its distilled and rewound twins) to the table and to every view of it."""
    METHODS[name] = row
    if name != "baseline":
        METHODS[name + DISTILLED] = distilled(row)
        METHODS[name + REWOUND] = rewound(row)
    _views()


def _views():
    pairs = PRIMARY_PAIRS + [(m, other) for m, row in METHODS.items() for other in row.compared_with]
    pairs += [(row.control_of, m) for m, row in METHODS.items() if row.control_of]
    pairs += [(m, base_method(m)) for m in METHODS if variant(m)]
    plain = {m: row for m, row in METHODS.items() if not variant(m)}
    views = {"LABELS": {m: row.label for m, row in METHODS.items()},
             "DENSE": [m for m, row in METHODS.items() if row.kind == "dense"],
             "PAIRS": list(dict.fromkeys(pairs)),
             "REMOVED": [m for m, row in plain.items() if row.removes],
             "ALLOCATED": [m for m, row in plain.items() if row.chooser in ALLOCATION_CHOOSERS],
             "FLOPS_MATCHED": [m for m, row in plain.items() if row.chooser in FLOPS_CHOOSERS],
             "ONE_SHOT_ONLY": [m for m, row in plain.items() if row.one_shot],
             "RANDOM": [m for m, row in METHODS.items() if row.control_of],
             "CRITERIA_PAIRS": CRITERION_PAIRS + [(m, base_method(m)) for m in METHODS
                                                  if variant(m) == REWOUND]}
    for name, value in views.items():  # in place: claims.PAIRS is this module's PAIRS
        held = globals()[name]
        held.clear()
        if isinstance(held, dict):
            held.update(value)
        else:
            held.extend(value)


# The channel allocations at the uniform model's FLOPs, and the masked methods at removal's FLOPs (their
# records say what the allocation reached: allocation.py).
ALLOCATION_CHOOSERS = ("allocation.global_allocation", "allocation.sensitivity_allocation")
FLOPS_CHOOSERS = ("allocation.unstructured_at_removal_flops", "allocation.per_layer_at_removal_flops")


def from_scratch(method):
    """Whether `method`'s model is trained from a fresh initialisation (seed_models.run_scratch)."""
    row = METHODS[base_method(method)]
    return row.chooser is None and row.ratios is not None


def variant(method):
    """A method's retraining suffix (DISTILLED, REWOUND), or "" for a method fine-tuned as configured."""
    return next((suffix for suffix in VARIANTS if method.endswith(suffix)), "")


def base_method(method):
    """The method a distilled or rewound method retrains (structured_physical_kd -> structured_physical)."""
    return method[:-len(variant(method))] if variant(method) else method


def choices(constant):
    """The values of a list constant that put a method in the plan (CHANNEL_ALLOCATIONS: global,
    sensitivity), for its option's check."""
    return [value for row in METHODS.values() for name, value in row.switch if name == constant]


def planned(method, cfg):
    """Whether this run's plan trains `method` (the dense control: whenever a pruned model is trained;
    a distilled or rewound method: when its method is planned and named in DISTILLED_METHODS or
    REWOUND_METHODS)."""
    if method == CONTROL:
        return any(planned(m, cfg) for m in METHODS if m != CONTROL and not variant(m))
    if variant(method):
        return (base_method(method) in getattr(cfg, VARIANTS[variant(method)])
                and planned(base_method(method), cfg))
    row = METHODS[method]
    switched = all(value in getattr(cfg, name) if isinstance(getattr(cfg, name), list)
                   else getattr(cfg, name) == value for name, value in row.switch)
    one_step = not row.one_shot or cfg.PRUNING_SCHEDULE == "oneshot"
    given = {"unstructured": cfg.UNSTRUCTURED_PRUNING_RATIOS, "channels": cfg.STRUCTURED_PRUNING_RATIOS,
             "removed": cfg.PHYSICAL_STRUCTURED_PRUNING and (cfg.STRUCTURED_PRUNING_RATIOS
                                                             or cfg.TARGET_FLOPS_SPEEDUPS),
             None: False}[row.ratios]
    return bool(switched and one_step and given)


def needs(method):
    """The options that put `method` in the plan, as a refusal names them."""
    row = METHODS[method]
    given = {"unstructured": ["--unstructured-pruning-ratios"], "channels": ["--structured-pruning-ratios"],
             "removed": ["--physical-structured-pruning true", "--structured-pruning-ratios or "
                         "--target-flops-speedups"], None: []}[row.ratios]
    switches = [f"--{name.lower().replace('_', '-')} {str(value).lower()}" for name, value in row.switch
                if (name, value) != REMOVAL]
    return " and ".join(switches + ["--pruning-schedule oneshot"] * row.one_shot + given)


def label(method):
    """A method's label; a method not in the table (a results.json from another version) by its own name."""
    return METHODS[method].label if method in METHODS else method


def of_kind(kind):
    """The methods of one kind ("dense", "unstructured", "structured"), in the table's order."""
    return [method for method, row in METHODS.items() if row.kind == kind]


for _name, _row in list(METHODS.items()):
    register(_name, _row)
