"""The house's layers, read from the imports (lazy ones included): no module imports one that imports it;
config.py is constants only; the run's records (bookkeeping/) stand above the experiment and are used by
the scripts alone; no file is too long to read. And the two edits a student makes most: a new constant is
one line in config.py, a new method one row of methods.py's table and one function."""
import ast
import glob
import os
import shutil
import subprocess
import sys

from conftest import LEAN, ROOT, TINY, cpu_env, options, run_folders

PACKAGES = ("bookkeeping", "cli", "storage")
LONGEST_FILE = 350


def project_modules():
    """{module name: path} of every module outside tests/."""
    paths = glob.glob(os.path.join(ROOT, "*.py"))
    paths += [p for package in PACKAGES for p in glob.glob(os.path.join(ROOT, package, "*.py"))]
    return {os.path.relpath(p, ROOT)[:-3].replace(os.sep, ".").removesuffix(".__init__"): p for p in paths}


MODULES = project_modules()


def imported(path):
    """The project modules a file imports, anywhere in it (a lazy import inside a function too). `from cli
    import kinds` imports the module cli.kinds: a package's __init__ that hands on its modules' names is
    the package's own door, not a cycle."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = {f"{node.module}.{alias.name}" for alias in node.names} & set(MODULES)
            found |= modules or {node.module}
    return {name for name in found if name in MODULES}


GRAPH = {name: imported(path) - {name} for name, path in MODULES.items()}


def reachable(start):
    seen, todo = set(), [start]
    while todo:
        for name in GRAPH[todo.pop()] - seen:
            seen.add(name)
            todo.append(name)
    return seen


def test_no_module_imports_one_that_imports_it():
    cycles = sorted(name for name in GRAPH if name in reachable(name))
    assert not cycles, f"in an import cycle: {', '.join(cycles)}"


def test_config_py_is_constants_only():
    assert GRAPH["config"] == set()
    tree = ast.parse(open(MODULES["config"]).read())
    assert all(isinstance(node, (ast.Assign, ast.Expr)) for node in tree.body)  # the docstring, assignments


def test_the_run_records_are_used_by_the_scripts_never_by_the_experiment():
    """A module that reads or writes the run's records (continuing, reusing, identity, provenance) is a
    script a user runs; the experiment's modules get what they need of the records passed in."""
    users = {name for name, imports in GRAPH.items() if not name.startswith("bookkeeping")
             and any(m.startswith("bookkeeping") for m in imports)}
    scripts = {name for name in users if 'if __name__ == "__main__"' in open(MODULES[name]).read()}
    assert users and users == scripts, f"not scripts: {sorted(users - scripts)}"


def test_no_file_is_longer_than_a_reader_reads_at_once():
    long = {name: n for name, path in MODULES.items() if (n := len(open(path).readlines())) > LONGEST_FILE}
    assert not long, long


def copy_of_the_project(tmp_path):
    """The program alone: no tests, data, results, caches or documents."""
    def not_the_program(folder, names):
        if os.path.samefile(folder, ROOT):
            return [n for n in names if n in ("tests", "data", "cache", "figures", "docs")
                    or n.startswith((".", "results"))]
        return [n for n in names if n == "__pycache__"]
    project = tmp_path / "project"
    shutil.copytree(ROOT, project, ignore=not_the_program)
    return project


def test_a_new_constant_is_one_line_in_config_py(tmp_path):
    """Its kind from its value: an option of every script, in --help with its comment and default."""
    project = copy_of_the_project(tmp_path)
    text = (project / "config.py").read_text()
    anchor = "# --- output"
    new_line = "NEW_KNOB = 3  # turns the new knob\n\n"
    (project / "config.py").write_text(text.replace(anchor, new_line + anchor))
    run = [sys.executable, "-c", "import cli, sys; print(cli.load(sys.argv[1:]).NEW_KNOB)"]
    given = subprocess.run([*run, "--new-knob", "5"], cwd=project, capture_output=True, text=True, timeout=60)
    assert given.returncode == 0 and given.stdout.strip() == "5", given.stderr
    wrong = subprocess.run([*run, "--new-knob", "five"], cwd=project, capture_output=True, text=True,
                           timeout=60)
    assert wrong.returncode == 2 and "--new-knob: invalid int value: 'five'" in wrong.stderr
    shown = subprocess.run([sys.executable, "main.py", "--help"], cwd=project, capture_output=True,
                           text=True, timeout=60)
    help_text = " ".join(shown.stdout.split())
    assert "--new-knob N" in help_text and "turns the new knob (default 3)" in help_text


TOY = """
import sys
sys.path.insert(0, {root!r})
import methods
import prune_utils


def toy_magnitude(model, ratio, setting):
    # the lowest weights of each conv alone (not global): a chooser is a function of the model and ratio
    def prune(target):
        for _, conv in prune_utils.prunable_layers(model, setting.scope):
            prune_utils.prune.l1_unstructured(conv, "weight", amount=target)
    return prune, {{}}


methods.register("toy", methods.Method("toy per-layer magnitude", "Toy: per-layer L1 weights",
                                       kind="unstructured", masked=True, chooser=toy_magnitude,
                                       ratios="unstructured", compared_with=("unstructured",)))
import main  # noqa: E402
from cli import exits  # noqa: E402
exits.run(main.main, sys.argv[1:], again="")
"""


def test_a_new_method_is_one_table_row_and_one_function(sample_root, tmp_path):
    """A toy method registered in methods.py's table, with its chooser, and nothing else: trained at the
    run's unstructured ratios, in Table 2 of summary.md and in the claims against unstructured."""
    script = tmp_path / "toy_run.py"
    script.write_text(TOY.format(root=ROOT))
    args = [*TINY, *LEAN, *options(data_root=sample_root, physical_structured_pruning="false",
                                   structured_pruning_ratios="", onnx_export="false"), *run_folders(tmp_path)]
    result = subprocess.run([sys.executable, str(script), *args], cwd=tmp_path, capture_output=True,
                            text=True, timeout=600, env=cpu_env())
    assert result.returncode == 0, result.stderr[-3000:]
    rows = open(tmp_path / "results" / "results.csv").read()
    assert "toy_0.5," in rows and "unstructured_0.5," in rows
    summary = open(tmp_path / "results" / "summary.md").read()
    table_2 = summary.split("## Table 2.")[1].split("\n## ")[0]
    assert "\n| toy " in table_2
    assert "toy per-layer magnitude 0.5 | unstructured 0.5" in " ".join(summary.split())
