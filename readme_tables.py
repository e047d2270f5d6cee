"""The README's and the guides' (docs/*.md) result tables and measured numbers, written from result
files committed in docs/, never typed.

    python readme_tables.py           # rewrites every generated block of README.md and docs/*.md
    python readme_tables.py --check   # exit 1 (naming the blocks) when a document is not what this writes,
                                      # 2 when a result file it names cannot be read

A generated block is

    <!-- generated: TABLE from docs/FILE.json -->
    ...
    <!-- end generated -->

and TABLE one of TABLES below (a table of two runs names both files, comma-separated); each block
ends with the file, commit, machine and date it came from.
To refresh one: copy a run's results/results.json to docs/, then run this script.
"""
import argparse
import glob
import json
import os
import re
import sys

import cli  # noqa: F401 (first: a broken config.py is one message, exit 2)
import answers
import criteria_tables
import network_tables
import quick_run_tables
import recovery_tables
import schedule_tables
import speed_tables
import verdict_tables
from cli import exits
from storage import folders
from bookkeeping import results_parts

ROOT = os.path.dirname(os.path.abspath(__file__))
BLOCK = re.compile(r"(<!-- generated: (\w+) from (\S+) -->\n)(.*?)(<!-- end generated -->)", re.S)

# A block's TABLE, and the function that writes it, in the module of its table family
TABLES = {"quick_run": quick_run_tables.quick_run, "int8": quick_run_tables.int8,
          "phases": quick_run_tables.phases, "claims": verdict_tables.verdicts,
          "schedules": schedule_tables.schedules, "speed": speed_tables.speed_table,
          "headline": verdict_tables.headline, "run_time": quick_run_tables.run_time,
          "recovery": recovery_tables.recovery,
          "distillation_weight": recovery_tables.distillation_weight, "primary": answers.readme,
          "criteria": criteria_tables.criteria, "fine_tune_rate": network_tables.fine_tune_rate,
          "networks": network_tables.networks}


def stamp(results, path):
    env = results["environment"]
    return (f"\n<sub>Written by `python readme_tables.py` from `{path}`: commit "
            f"{env.get('git_commit') or 'none'}, {env.get('device_name') or env['device']} "
            f"({env['cpu_count']} cores, {env['torch_threads']} threads), torch {env['torch']}, "
            f"{results.get('finished', 'date not recorded')}.</sub>\n")


# What a table reads of its result files, beyond results_parts.PARTS (bench.py --output's file for speed)
BENCH_PARTS = {"config": (results_parts.OBJECT, {}), "variants": (
    "a list of variants", {"method": results_parts.TEXT, "ratio": results_parts.NUMBER})}


def read_run(root, path, table, document):
    """A block's result file (`path`, as the block names it, from `root`), parsed and checked against what
    its table reads; Unreadable naming the file (not the document) and what to do."""
    named = f"{path} (the {table} block of {document})"
    try:
        with open(os.path.join(root, path), encoding="utf-8") as f:
            run = json.load(f)
    except OSError as e:
        raise exits.Unreadable(f"{named} cannot be read ({e.strerror or e}); copy a run's results.json "
                               f"there, or fix the block's file name") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise exits.Unreadable(f"{named} is not JSON ({e}): cut off or edited; copy the run's results.json "
                               f"there again") from None
    parts, required = (BENCH_PARTS, ("config", "variants")) if table == "speed" else (
        results_parts.PARTS, results_parts.REQUIRED)
    problems = results_parts.problems(run, parts, required)
    rows = run.get("variants" if table == "speed" else "models") if isinstance(run, dict) else None
    if not problems and not rows:
        problems = ["it holds no model"]
    if problems:
        raise exits.Unreadable(f"{named} is not a result file this table reads ({'; '.join(problems)}); copy "
                               f"the run's results.json there")
    return run


def render(text, root=ROOT, document="the document"):
    """README text with every generated block written again from its result file(s) (comma-separated).
    A block naming an unknown table, a result file that cannot be read, or one its table cannot be made
    from (damaged, or another run's: a tiny run's has no latency rounds) is Unreadable, naming it."""
    def block(match):
        table, paths = match[2], match[3].split(",")
        if table not in TABLES:
            raise exits.Unreadable(f"{document}: a generated block names the table {table!r}, which "
                                   f"readme_tables.py does not write; use one of {', '.join(TABLES)}")
        runs = [read_run(root, path, table, document) for path in paths]
        try:
            return match[1] + TABLES[table](*runs) + "".join(map(stamp, runs, paths)) + match[5]
        except Exception as e:  # noqa: BLE001 (a table reads many fields of many records: any may be off)
            raise exits.Unreadable(f"{', '.join(paths)} (the {table} block of {document}) cannot give its "
                                   f"table ({type(e).__name__}: {e}); it is damaged, or not the result file "
                                   f"of the run this table shows: copy that run's results.json there"
                                   ) from None
    return BLOCK.sub(block, text)


def documents(root=ROOT):
    """README.md and every guide in docs/: the documents a reader meets."""
    guides = sorted(glob.glob(os.path.join(root, "docs", "*.md")))
    return [os.path.join(root, "README.md"), *guides]


def main(argv):
    """0: every document current (or rewritten); exits.STALE (--check): a block is not what its result files
    give; a result file that cannot be read ends through exits.run, exits.BAD_INPUT, naming it."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true",
                   help=f"only check that every document is current (exit {exits.STALE} if not, "
                        f"{exits.BAD_INPUT} if a result file cannot be read)")
    args = p.parse_args(argv)
    stale = []
    for path in documents():
        with open(path, encoding="utf-8") as f:
            text = f.read()
        name = os.path.relpath(path, ROOT)
        new = render(text, root=ROOT, document=name)
        if args.check:
            stale += [f"{name}: {m[2]}" for m, n in zip(BLOCK.finditer(text), BLOCK.finditer(new))
                      if m[0] != n[0]]
        elif new != text:
            folders.write_text(path, new)
            print(f"{name}: {len(BLOCK.findall(text))} generated block(s) written")
    if args.check:
        print("stale: " + ", ".join(stale) if stale else "every generated block is current")
    return exits.STALE if stale else 0


if __name__ == "__main__":
    exits.run(main, sys.argv[1:], again="run the same command again")
