"""Every method of the experiment as the tables, claims and figures show it (prune_utils.py says what
each method chooses): one table, so that a method added is named in one place, beside prune_utils,
with the pairs of methods the claims compare at equal ratios (PAIRS).

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
  in black-and-white print).
"""
from collections import namedtuple

Method = namedtuple("Method", "label title kind masked bar style",
                    defaults=(False, None, ("black", "o", "-")))

METHODS = {
    "baseline": Method("baseline", None, kind="dense", style=("black", "*", "none")),
    "dense_control": Method("dense control", None, kind="dense", style=("gray", "D", "none")),
    "unstructured": Method("unstructured", "Unstructured (global L1, masks)",
                           kind="unstructured", masked=True, bar="unstr.", style=("#1b6ca8", "o", "-")),
    "structured": Method("per-layer L2 channels (masks)",
                         "Per-layer L2 channels (each conv's own norms, masks)",
                         kind="structured", masked=True, bar="struct.", style=("#d1495b", "s", "--")),
    "structured_coupled_masked": Method("coupled channels (masks)",
                                        "Coupled channels, masked (Torch-Pruning's choice, masks)",
                                        kind="structured", masked=True, style=("#8e6bbf", "v", "--")),
    "structured_physical": Method("coupled channels (removed)", "Coupled channels, removed (Torch-Pruning)",
                                  kind="structured", style=("#2e8540", "^", ":")),
    "structured_physical_global": Method("coupled channels, global allocation (removed)",
                                         "Coupled channels, removed, allocated by Torch-Pruning's global "
                                         "ranking at the uniform model's FLOPs",
                                         kind="structured", style=("#0b6e4f", "<", ":")),
    "structured_physical_sensitivity": Method("coupled channels, sensitivity allocation (removed)",
                                              "Coupled channels, removed, allocated by the layer sensitivity "
                                              "at the uniform model's FLOPs",
                                              kind="structured", style=("#5a8f29", ">", ":")),
    "unstructured_flops": Method("unstructured at removal's FLOPs",
                                 "Unstructured (global L1, masks) at coupled removal's effective FLOPs",
                                 kind="unstructured", masked=True, style=("#14426b", "d", (0, (5, 1)))),
    "structured_flops": Method("per-layer L2 channels (masks) at removal's FLOPs",
                               "Per-layer L2 channels (masks) at coupled removal's effective FLOPs",
                               kind="structured", masked=True, style=("#8c1c2b", "X", (0, (3, 1, 1, 1)))),
    "unstructured_random": Method("random unstructured", "Control: unstructured, random weights",
                                  kind="unstructured", masked=True, bar="unstr.\nrand.",
                                  style=("#7fa7c9", "x", "-.")),
    "structured_random": Method("random per-layer channels (masks)", "Control: per-layer channels, random",
                                kind="structured", masked=True, bar="struct.\nrand.",
                                style=("#e89aa5", "+", "-.")),
    "structured_physical_random": Method("random coupled channels (removed)",
                                         "Control: coupled channels, random, removed",
                                         kind="structured", style=("#9cc9a4", "1", "-.")),
    "scratch": Method("small net from scratch",
                      "Control: structured_physical's architecture trained from scratch",
                      kind="structured", style=("#c28f2c", "P", ":")),
}
# Every method but the baseline, fine-tuned (the small net: trained) with distillation from the dense
# baseline: its name with prune_utils.DISTILLED, its colour and marker with a line of its own.
def distilled(row):
    line = "none" if row.style[2] == "none" else (0, (1, 1))
    return row._replace(label=row.label + " + distillation", bar=None, style=(row.style[0], "h", line),
                        title=row.title and row.title + ", distilled from the dense model")


METHODS.update({f"{method}_kd": distilled(row) for method, row in list(METHODS.items())
                if method != "baseline"})
LABELS = {method: row.label for method, row in METHODS.items()}
DENSE = [method for method, row in METHODS.items() if row.kind == "dense"]

# Method pairs compared at equal ratios (claims.py): masking against removal of the same channels; the
# criterion and structure (coupled groups against per-layer norms, both masked); each criterion against
# its random control; pruning the trained baseline against training its small architecture from scratch;
# each channel allocation against the uniform one, at the same FLOPs.
# The study's primary questions, stated before any run (Holm over them alone, claims.py): at each ratio of
# coupled removal, that is at each FLOP budget, is removal as accurate as unstructured and per-layer masks at
# its effective FLOPs, and as the small net trained from scratch; and what does each of the four lose
# against the dense baseline. Every other comparison is exploratory, a Holm family of its own.
PRIMARY_PAIRS = [("structured_physical", "unstructured_flops"), ("structured_physical", "structured_flops"),
                 ("structured_physical", "scratch")]
PRIMARY_METHODS = ("structured_physical", "unstructured_flops", "structured_flops", "scratch")  # vs baseline
PAIRS = PRIMARY_PAIRS + [
         ("structured_physical", "structured_coupled_masked"), ("structured_coupled_masked", "structured"),
         ("unstructured", "unstructured_random"), ("structured", "structured_random"),
         ("structured_physical", "structured_physical_random"),
         ("structured_physical", "unstructured"), ("structured", "unstructured"),
         ("structured_physical_global", "structured_physical"),
         ("structured_physical_sensitivity", "structured_physical")]
# ... and every distilled model against the same method fine-tuned on the labels alone
PAIRS += [(method, method[:-len("_kd")]) for method in METHODS if method.endswith("_kd")]


def label(method):
    """A method's label; a method not in the table (a results.json from another version) by its own name."""
    return METHODS[method].label if method in METHODS else method


def of_kind(kind):
    """The methods of one kind ("dense", "unstructured", "structured"), in the table's order."""
    return [method for method, row in METHODS.items() if row.kind == kind]
