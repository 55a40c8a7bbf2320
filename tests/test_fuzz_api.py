"""Schemathesis (a property-based fuzzer driven by the OpenAPI document)
against a running server over real HTTP, as an admin, an annotator and an
anonymous caller: no 5xx, and every documented response keeps to its schema.

The number of examples per operation is bounded here
(``ASSAY_FUZZ_EXAMPLES``, default 8) so that CI stays fast; the full run's
figures are in docs/security.md. The server runs on a seeded workspace
(datasets, a project with gold, members) so that generated ids often hit
real rows.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from _server import LiveServer
from factories import item_ids, text_dataset

EXAMPLES = int(os.environ.get("ASSAY_FUZZ_EXAMPLES", "8"))
CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance"


def _schemathesis() -> list[str]:
    exe = shutil.which("schemathesis") or os.path.join(os.path.dirname(sys.executable), "schemathesis")
    if not os.path.exists(exe):
        pytest.fail("schemathesis is not installed: pip install -e '.[test]'")
    return [exe]


@pytest.fixture
def seeded(ws):
    ds = text_dataset(ws, "texts", [f"text {i}" for i in range(30)], meta=[{"ref": f"r{i}"} for i in range(30)])
    p = ws.create_project("fuzz", ds["id"], ["pos", "neg"], overlap=2)
    ws.import_gold(p["id"], [{"item_id": i, "label": "pos"} for i in item_ids(ws, ds["id"])[:5]])
    _, admin = ws.add_user("root", "admin", "correct horse battery")
    ann, annotator = ws.add_user("ann", "annotator", "correct horse battery")
    ws.add_member(p["id"], ann["id"])
    return {"admin": admin, "annotator": annotator, "anonymous": None}


@pytest.mark.slow
@pytest.mark.parametrize("role", ["admin", "annotator", "anonymous"])
def test_fuzzed_api_never_fails_and_keeps_to_its_schema(ws, seeded, role, tmp_path):
    token = seeded[role]
    with LiveServer(ws) as srv:
        cmd = _schemathesis() + [
            "run", f"{srv.base}/openapi.json", "--checks", CHECKS, "-n", str(EXAMPLES), "--seed", "1",
            "--no-color", "--generation-database", "none", "--workers", "1", "--request-timeout", "20",
            "--report", "junit", "--report-junit-path", str(tmp_path / "junit.xml"),
        ]
        if token:
            cmd += ["-H", f"Authorization: Bearer {token}",
                    # keep the session: logging out or revoking tokens is fuzzed anonymously
                    "--exclude-path", "/api/auth/logout", "--exclude-path-regex", "^/api/tokens/"]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                             env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", out)
    assert generated is not None and generated.group(1) == generated.group(2), out[-3000:]
    assert int(generated.group(1)) >= 40 * min(EXAMPLES, 8), out[-3000:]  # it really ran
    print(f"schemathesis as {role}: {generated.group(0)}")
    assert "Server error" not in out and (tmp_path / "junit.xml").exists()
