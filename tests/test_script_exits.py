"""Every script beside main.py ends a project error in one line naming the file and what to do, with an
exit code of its kind (cli/exits.py): readme_tables.py --check tells a stale document (1) from a
result file it cannot read (2); check_gpu.py --project names the user's files, never its temporary copy."""
import json
import os

import pandas as pd
import pytest

import quick_run_tables
import readme_tables
import cli
from cli import exits
from conftest import ROOT, options

QUICK = json.load(open(os.path.join(ROOT, "docs", "quick_results.json")))


def without(field, results=QUICK):
    """results with `field` taken from every record: a run that did not measure it (a tiny run's)."""
    return {**results, "models": [{k: v for k, v in r.items() if k != field} for r in results["models"]]}


def with_null_mae(results=QUICK):
    return {**results, "models": [results["models"][0], {**results["models"][1], "test_mae": None}]}


# (the block's table, what docs/r.json holds, what the message says); text: written as it is
BROKEN = {
    "a list": ("quick_run", [], "docs/r.json (the quick_run block of README.md) is not a result file this "
                                "table reads (it holds a list, not a results object)"),
    "no config": ("quick_run", {"models": []}, "it has no config"),
    "no model": ("headline", {"config": {}, "models": []}, "it holds no model"),
    "a null MAE": ("quick_run", with_null_mae(), "models[1] has test_mae null, not a number"),
    "a run without gzip sizes": ("quick_run", without("gzip_size_mb"),
                                 "docs/r.json (the quick_run block of README.md) cannot give its table "
                                 "(KeyError: 'gzip_size_mb'); it is damaged, or not the result file of the "
                                 "run this table shows"),
    "a run without INT8": ("int8", without("int8_test_mae"), "cannot give its table (IndexError"),
    "cut off": ("quick_run", "text:" + json.dumps(QUICK)[:500],
                "docs/r.json (the quick_run block of README.md) is not JSON ("),
    "an unknown table": ("quick_runs", QUICK, "README.md: a generated block names the table 'quick_runs', "
                                              "which readme_tables.py does not write; use one of "
                                              "quick_run, "),
    "a bench file for a run's table": ("quick_run", json.load(open(os.path.join(ROOT, "docs",
                                                                                "bench_results.json"))),
                                       "it has no models"),
    "a run's file for the bench table": ("speed", QUICK, "it has no variants"),
}


def check(tmp_path, monkeypatch, capsys, table, content, block="old\n"):
    """python readme_tables.py --check on a project whose README has one block of `table` from docs/r.json
    holding `content`, the block reading `block`: (exit code, stdout, stderr)."""
    (tmp_path / "docs").mkdir(exist_ok=True)
    text = content[5:] if isinstance(content, str) else json.dumps(content)
    (tmp_path / "docs" / "r.json").write_text(text)
    readme = tmp_path / "README.md"
    readme.write_text(f"<!-- generated: {table} from docs/r.json -->\n{block}<!-- end generated -->\n")
    monkeypatch.setattr(readme_tables, "ROOT", str(tmp_path))
    monkeypatch.setattr(readme_tables, "documents", lambda: [str(readme)])
    with pytest.raises(SystemExit) as ended:
        exits.run(readme_tables.main, ["--check"], again="")
    out = capsys.readouterr()
    return ended.value.code, out.out, out.err


@pytest.mark.parametrize("case", BROKEN)
def test_readme_tables_check_tells_an_unreadable_result_file_from_a_stale_document(case, tmp_path,
                                                                                  monkeypatch, capsys):
    table, content, message = BROKEN[case]
    code, _, err = check(tmp_path, monkeypatch, capsys, table, content)
    assert code == exits.BAD_INPUT and message in err and "Traceback" not in err, err


def test_readme_tables_check_says_stale_with_1_and_current_with_0(tmp_path, monkeypatch, capsys):
    code, out, _ = check(tmp_path, monkeypatch, capsys, "phases", QUICK)
    assert code == exits.STALE == 1 and "stale: README.md: phases" in out
    current = quick_run_tables.phases(QUICK) + readme_tables.stamp(QUICK, "docs/r.json")
    code, out, _ = check(tmp_path, monkeypatch, capsys, "phases", QUICK, block=current)
    assert code == 0 and "every generated block is current" in out


def no_val(filelist):
    return filelist.assign(Split=filelist.Split.replace("VAL", "TRAIN"))


def bad_ef(filelist):
    return filelist.astype({"EF": object}).assign(EF=["abc"] + list(filelist.EF[1:]))


@pytest.mark.parametrize("case", ["missing root", "a file as root", "a bad EF", "no VAL rows",
                                  "an unreachable budget", "an option out of range"])
def test_check_gpu_project_ends_bad_input_in_one_line_naming_the_users_file(case, sample_root, tmp_path,
                                                                            run_here):
    root = str(tmp_path / "echonet")
    if case == "a file as root":
        (tmp_path / "echonet").write_text("not a folder")
    elif case in ("a bad EF", "no VAL rows"):
        os.symlink(os.path.join(sample_root, "Videos"), os.path.join(tmp_path, "Videos"))
        os.makedirs(root)
        os.symlink(os.path.join(sample_root, "Videos"), os.path.join(root, "Videos"))
        filelist = pd.read_csv(os.path.join(sample_root, "FileList.csv"))
        (no_val if case == "no VAL rows" else bad_ef)(filelist).to_csv(os.path.join(root, "FileList.csv"),
                                                                       index=False)
    argv = {"an unreachable budget": ["--target-flops-speedups", "1000"],
            "an option out of range": ["--target-flops-speedups", "inf"]}.get(case, [])
    result = run_here("check_gpu.py", "--project", *options(data_root=root, image_size=32), *argv,
                      cwd=tmp_path)
    expected = {"missing root": f"data folder {root!r} does not exist",
                "a file as root": f"data folder {root!r} is a file, not a folder",
                "a bad EF": f"{root}/FileList.csv: row 2",
                "no VAL rows": f"split VAL of {root}/FileList.csv is empty",
                "an unreachable budget": "target-flops-speedups 1000: the nearest structured_physical model",
                "an option out of range": "--target-flops-speedups inf: each value must be a number above 1"}
    assert result.returncode == exits.BAD_INPUT and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.count("error: ") == 1 and expected[case] in result.stderr
    assert "check-gpu-" not in result.stderr  # never the temporary copy


@pytest.mark.parametrize("content", ["[]", '{"models": []}', '{"config": {}, "models": [{"method": 1}]}',
                                     '{"config": '])
def test_figures_from_a_foreign_or_damaged_results_json_are_one_message(content, tmp_path, run_here):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "results.json").write_text(content)
    result = run_here("visualize_results.py", cwd=tmp_path)
    assert result.returncode == exits.BAD_INPUT and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "error: results/results.json cannot be drawn from" in result.stderr


def test_sample_data_into_a_file_names_the_path(tmp_path, run_here):
    (tmp_path / "afile").write_text("x")
    result = run_here("create_sample_data.py", "--data-root", "afile", cwd=tmp_path)
    assert result.returncode == exits.BAD_INPUT and "Traceback" not in result.stderr
    assert "error: Not a directory: afile/Videos (check the path" in result.stderr


def test_every_kind_of_end_has_a_code_of_its_own():
    import dataset
    import flop_budgets
    import quantize
    from storage import folders, locks
    ends = {cli.ConfigError("x"): 2, dataset.DataError("x"): 2, flop_budgets.AllocationError("x"): 2,
            quantize.QuantizationError("x"): 2, exits.Unreadable("x"): 2, OSError(28, "No space", "f"): 2,
            locks.FolderInUse("x"): 3, RuntimeError("a bug"): None}
    assert [exits.code_of(e) for e in ends] == list(ends.values())
    assert folders.WriteFailed.__mro__ and len({exits.STALE, exits.BAD_INPUT, exits.IN_USE, exits.MACHINE,
                                                exits.INTERRUPTED}) == 5


def test_a_gpu_that_cannot_be_used_ends_with_the_machines_code(capsys):
    def main(argv):
        raise RuntimeError("CUDA error: out of memory\nmore lines")
    with pytest.raises(SystemExit) as ended:
        exits.run(main, [], again="", machine=(RuntimeError,))
    assert ended.value.code == exits.MACHINE
    assert capsys.readouterr().err == "error: CUDA error: out of memory\n"
    with pytest.raises(RuntimeError):  # elsewhere, a RuntimeError is a bug: its traceback stays
        exits.run(main, [], again="")
