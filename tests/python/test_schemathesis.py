"""Schemathesis (PyPI) against the REST API's own OpenAPI document, on SQLite and
PostgreSQL, signed in with a bearer token from the real OpenID provider: every phase
(examples, coverage, fuzzing, stateful), positive and negative data. The run must find no
5xx, no undocumented status or content type, and no response that violates its schema."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from test_rest import rest_server  # noqa: F401  (the server fixture)
from test_sts import issuer  # noqa: F401  (the OpenID provider fixture)

from conftest import unique

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)


def schemathesis() -> list[str]:
    exe = shutil.which("schemathesis") or shutil.which("st")
    return [exe] if exe else [sys.executable, "-m", "schemathesis.cli"]


def test_schemathesis_finds_no_server_error_and_no_schema_violation(rest_server, issuer, tmp_path):
    url = rest_server.endpoint
    token = issuer.token(
        {"aud": "coffer", "sub": "s-fuzz", "preferred_username": unique("fuzz"), "groups": []}, expires_in=3600
    )
    seed = os.environ.get("COFFER_SCHEMATHESIS_SEED", "20261127")
    cmd = [
        *schemathesis(),
        "run",
        f"{url}/api/v1/openapi.json",
        "--url",
        f"{url}/api/v1",
        "-H",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        "--max-examples",
        os.environ.get("COFFER_SCHEMATHESIS_EXAMPLES", "40"),
        "--seed",
        seed,
        "--request-timeout",
        "20",
        "--workers",
        "2",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"schemathesis failed (seed {seed}):\n{out[-20000:]}"
    assert "passed" in out and "generated" in out, out[-4000:]
    # Belt and braces: the server's own log shows no 5xx for any request of the run.
    errors = [
        rec
        for rec in rest_server.log_records()
        if rec.get("message") == "request" and int(rec.get("status", 0)) >= 500
    ]
    assert not errors, errors[:5]
