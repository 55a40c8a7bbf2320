"""The test suite's own switches (tests/conftest.py): ``-m "not postgres"``
leaves out exactly the PostgreSQL instances, ``-m "not browser"`` the
Chromium tests; ``slow`` tests are left out of a run of the suite or a folder
unless ``--slow``, ``-m slow`` or CI, and run when their file or id is named.

Checked on a sample suite that uses this conftest, by collecting in a
subprocess (nothing runs, no server needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = '''
import pytest

@pytest.fixture
def browser():
    yield "chromium"

def test_plain():
    pass

def test_on_both(ws):
    pass

def test_in_a_browser(browser):
    pass

@pytest.mark.slow
def test_slow_on_both(db_url):
    pass
'''
ALL = {"test_plain", "test_on_both[sqlite]", "test_on_both[postgres]", "test_in_a_browser",
       "test_slow_on_both[sqlite]", "test_slow_on_both[postgres]"}
SLOW = {"test_slow_on_both[sqlite]", "test_slow_on_both[postgres]"}


@pytest.fixture(scope="module")
def suite(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("suite")
    (root / "tests").mkdir()
    shutil.copyfile(Path(__file__).with_name("conftest.py"), root / "tests" / "conftest.py")
    (root / "tests" / "test_sample.py").write_text(SAMPLE)
    (root / "pytest.ini").write_text("[pytest]\ntestpaths = tests\nmarkers =\n    postgres\n    browser\n    slow\n")
    return root


def collect(suite: Path, *args: str, ci: bool = False) -> set[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "ASSAY_REQUIRE_POSTGRES", "ASSAY_REQUIRE_BROWSER")}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # the sample needs no plugin (hypothesis, schemathesis…)
    if ci:
        env["CI"] = "true"
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                         cwd=suite, env=env, capture_output=True, text=True)
    assert out.returncode in (0, 5), out.stdout + out.stderr
    return {line.split("::", 1)[1] for line in out.stdout.splitlines() if "::" in line}


def test_the_suite_leaves_slow_tests_out_locally(suite):
    assert collect(suite) == ALL - SLOW


def test_ci_and_the_slow_flag_collect_everything(suite):
    assert collect(suite, ci=True) == ALL
    assert collect(suite, "--slow") == ALL
    assert collect(suite, "-m", "slow") == SLOW


def test_a_named_file_or_test_runs_whole(suite):
    assert collect(suite, "tests/test_sample.py") == ALL
    assert collect(suite, "tests/test_sample.py::test_slow_on_both") == SLOW


def test_postgres_and_browser_markers(suite):
    assert collect(suite, "-m", "not postgres", "--slow") == {t for t in ALL if "postgres" not in t}
    assert collect(suite, "-m", "postgres", "--slow") == {t for t in ALL if "postgres" in t}
    assert collect(suite, "-m", "not browser", ci=True) == ALL - {"test_in_a_browser"}
