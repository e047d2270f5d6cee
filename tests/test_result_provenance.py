"""Every result file committed in docs/ was made at a clean commit that this branch holds: its numbers come
from code a reader can check out, not from uncommitted changes or a branch that was never merged."""
import glob
import json
import os
import re
import subprocess

import pytest

from conftest import ROOT

RESULT_FILES = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.json")))


def git(*args):
    return subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True)


def made_at(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return json.load(f)["environment"].get("git_commit")


@pytest.mark.parametrize("path", RESULT_FILES)
def test_a_committed_result_names_a_clean_commit(path):
    commit = made_at(path)
    assert re.fullmatch(r"[0-9a-f]{40}", commit or ""), (
        f"{path} was made at {commit!r}: not a clean commit (run it again from a clean checkout of main)")


@pytest.mark.parametrize("path", RESULT_FILES)
def test_a_committed_result_was_made_at_a_commit_this_branch_holds(path):
    commit = made_at(path)
    if git("rev-parse", "--is-inside-work-tree").returncode:
        pytest.skip("not a git checkout")
    if git("cat-file", "-e", f"{commit}^{{commit}}").returncode and git(
            "rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        pytest.skip("a shallow clone holds too little history to tell")
    assert git("merge-base", "--is-ancestor", commit, "HEAD").returncode == 0, (
        f"{path} was made at {commit[:12]}, which this branch does not hold")

