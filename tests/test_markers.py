"""The test suite's own switches (conftest): ``-m "not postgres"`` leaves
exactly the PostgreSQL instances out, ``-m "not browser"`` the Chromium
tests, and ``slow`` tests are left out locally unless named, ``--slow`` or
CI. Checked by collecting in subprocesses (nothing runs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = ("tests/test_handout.py", "tests/test_browser_quality.py", "tests/test_concurrency.py")
NAMED_SLOW = "tests/test_crash.py::test_sweep_never_touches_a_running_import"


def collect(*args: str, ci: bool = False) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "ASSAY_REQUIRE_POSTGRES", "ASSAY_REQUIRE_BROWSER")}
    if ci:
        env["CI"] = "true"
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode in (0, 5), out.stdout + out.stderr
    return [line for line in out.stdout.splitlines() if "::" in line]


def of(ids: list[str], file: str) -> list[str]:
    return sorted(i for i in ids if i.startswith(file + "::"))


def test_markers_select_what_they_say():
    local = collect(*FILES, NAMED_SLOW)
    ci = collect(*FILES, "-m", "not postgres and not browser", ci=True)
    handout, browser, slow = FILES

    # postgres: every PostgreSQL instance carries it, and only those.
    assert any("[postgres" in i for i in of(local, handout))
    assert of(ci, handout) == [i for i in of(local, handout) if "postgres" not in i] != []
    # browser: the Chromium tests carry it.
    assert of(local, browser) != [] and of(ci, browser) == []
    # slow: left out locally unless named; collected in CI.
    assert of(local, slow) == [] and of(ci, slow) != []
    assert of(local, NAMED_SLOW.split("::")[0]) != []
    assert all("postgres" not in i for i in of(ci, slow))


def test_the_slow_flag_collects_the_slow_tests():
    assert collect(FILES[2], "--slow", "-m", "not postgres") != []
