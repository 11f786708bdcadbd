"""A bounded soak (scripts/soak.py): 64 concurrent clients on a mixed workload for
COFFER_SOAK_SECONDS (default 60) against SQLite and PostgreSQL — PUTs of 0–4 MiB with
Content-MD5, overwrites, GETs whole and ranged, HEAD, LIST with prefix and delimiter,
DELETE, CopyObject, multipart uploads — with zero errors, every read and every listing
matching what was written, every object read back at the end, and the server still up."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "soak.py"
SECONDS = float(os.environ.get("COFFER_SOAK_SECONDS", "60"))
CLIENTS = int(os.environ.get("COFFER_SOAK_CLIENTS", "64"))


def _soak():
    spec = importlib.util.spec_from_file_location("soak", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_soak(own_server):
    soak = _soak()
    user = own_server.new_user()
    key = user.coffer_key
    summary = soak.run(
        own_server.endpoint,
        key["access_key_id"],
        key["secret_access_key"],
        duration=SECONDS,
        clients=CLIENTS,
        procs=os.cpu_count() or 2,
        pid=own_server.proc.pid,
    )
    text = soak.report(summary)
    print(f"\n[{own_server.store.kind}]\n{text}")
    assert own_server.proc.poll() is None, "coffer exited during the soak"
    assert not summary["errors"], text
    assert not summary["mismatches"], text
    assert not summary["final_bad"], text
    assert summary["final_checked"] == CLIENTS * soak.KEYS_PER_CLIENT
    for op in ("put", "get", "get_range", "head", "list", "delete", "copy", "get_shared"):
        assert summary["ops"].get(op, {}).get("count", 0) > 0, f"no {op} in {SECONDS:.0f}s: {text}"
    assert "panicked" not in own_server.log_text()


if os.environ.get("COFFER_TEST_TIER"):
    pytestmark = pytest.mark.skip(reason="the soak runs on the filesystem tier")
