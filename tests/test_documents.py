"""Every measured number a reader meets in README.md and the guides in docs/ is written by
readme_tables.py from a result file in docs/ (inside a generated block, which test_readme checks is
current); prose outside those blocks states none."""
import glob
import os
import re

import pytest

from conftest import ROOT

# a time, a ratio of speeds, a share, a size, a signed change: what a measurement looks like in prose
MEASURED = re.compile(r"(?<![\w.])(?:[+−-]\d+\.\d+"
                      r"|\d+(?:\.\d+)?\s*(?:(?:ms|min|minutes|seconds|s|MB|GB|M|G)\b|×(?!\s*\d)|%))")
LEVELS = {"95%", "2.5%", "97.5%", "5%"}  # confidence and test levels: chosen, not measured
DOCUMENTS = ["README.md",
             *sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))]


def prose(text):
    """The text without generated blocks and code."""
    text = re.sub(r"<!-- generated:.*?<!-- end generated -->", "", text, flags=re.S)
    return re.sub(r"```.*?```", "", text, flags=re.S)


def typed_numbers(text):
    return [n for n in MEASURED.findall(prose(text)) if n not in LEVELS]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_no_measured_number_is_typed_outside_a_generated_block(document):
    text = open(os.path.join(ROOT, document), encoding="utf-8").read()
    assert typed_numbers(text) == [], f"{document}: move these into a generated block or cut them"


def test_the_check_finds_a_typed_timing_and_a_typed_change():
    assert typed_numbers("The quick run took 5.5 min, masked 0.3 lost +0.29; see the table.") == [
        "5.5 min", "+0.29"]
    assert typed_numbers("<!-- generated: x from docs/a.json -->\n3.2 ms\n<!-- end generated -->\n") == []


def test_the_front_door_is_short():
    assert len(open(os.path.join(ROOT, "README.md"), encoding="utf-8").read().splitlines()) <= 250
