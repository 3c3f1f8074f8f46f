"""Browser tests leave docs/screenshots alone unless asked: `SCREENSHOTS_DIR=docs/screenshots bin/test -m browser`."""
from __future__ import annotations

import os
import re

import pytest

from automation.testing import ROOT


@pytest.mark.skipif("SCREENSHOTS_DIR" in os.environ, reason="this run was asked to refresh the screenshots")
def test_a_test_run_saves_screenshots_outside_the_checkout(screenshots_dir):
    assert ROOT not in screenshots_dir.resolve().parents


def test_no_test_writes_into_docs_screenshots_except_through_the_screenshots_dir_fixture():
    docs_screenshots = re.compile(r"""["']docs["']\s*/\s*["']screenshots|docs/screenshots""")
    writers = [str(path.relative_to(ROOT)) for path in ROOT.glob("*/tests/**/*.py")
               if path.name != "test_screenshots.py" and docs_screenshots.search(path.read_text(encoding="utf-8"))]
    assert writers == []
