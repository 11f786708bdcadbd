"""Cloud storage emulators for the end-to-end suite: moto's S3 server (PyPI `moto[server]`)
and Azurite (npm, `tests/emulators`). With `COFFER_TEST_TIER=moto` or `=azurite` every
server the suite starts keeps its objects on a tier in that emulator instead of the local
disk, so the whole S3 suite runs against the cloud backend.

Each emulator runs once per test session on a free port; each server gets its own S3
bucket or Azure container in it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
AZURITE_ACCOUNT = "devstoreaccount1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with code {proc.returncode}", pytrace=False)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail(f"{what} did not listen on {port} within {timeout:.0f} s", pytrace=False)


def _missing(msg: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


class Emulator:
    """A running emulator; `tier_toml(name)` is a `[tiers.standard]` section on a fresh
    bucket/container of it; `env` the variables the server needs for its credentials."""

    kind = ""
    env: dict[str, str] = {}

    def tier_toml(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    cmd: list[str] = []

    def _spawn(self, what: str) -> None:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, self.proc, what)

    def kill(self, graceful: bool = False) -> None:
        """SIGKILL the emulator (the fault tests), or SIGTERM it with `graceful` (Azurite
        writes its data to disk only every few seconds, and on SIGTERM); `restart` brings it
        back on the same port."""
        if graceful:
            self.proc.terminate()
        else:
            self.proc.kill()
        self.proc.wait(timeout=20)

    def restart(self) -> None:
        """Start it again on the same port (Azurite on the same data; moto starts empty)."""
        assert self.proc.poll() is not None, "the emulator is still running"
        deadline = time.monotonic() + 10
        while True:  # the port may linger for a moment after the kill
            try:
                self._spawn(self.kind)
                return
            except BaseException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Moto(Emulator):
    kind = "moto"

    def __init__(self):
        exe = os.environ.get("COFFER_TEST_MOTO") or shutil.which("moto_server")
        if not exe:
            _missing("moto_server is not installed: pip install -r tests/python/requirements.txt")
        self.port = _free_port()
        self.cmd = [exe, "-H", "127.0.0.1", "-p", str(self.port)]
        self._spawn("moto_server")
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.env = {"COFFER_TIER_S3_ID": "testing", "COFFER_TIER_S3_SECRET": "testing"}

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def tier_toml(self) -> str:
        bucket = f"tier-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=bucket)
        self.bucket = bucket
        return (
            "[tiers.standard]\n"
            'kind = "s3"\n'
            f'bucket = "{bucket}"\n'
            f'endpoint = "{self.endpoint}"\n'
            "path_style = true\n"
            "allow_http = true\n"
            'access_key_id_env = "COFFER_TIER_S3_ID"\n'
            'secret_access_key_env = "COFFER_TIER_S3_SECRET"\n'
        )


class Azurite(Emulator):
    kind = "azurite"

    def __init__(self):
        exe = os.environ.get("COFFER_TEST_AZURITE") or str(ROOT / "tests/emulators/node_modules/.bin/azurite-blob")
        if not os.path.exists(exe):
            _missing("Azurite is not installed: run `npm ci` in tests/emulators")
        self.dir = tempfile.mkdtemp(prefix="azurite-")
        self.port = _free_port()
        self.cmd = [exe, "--blobHost", "127.0.0.1", "--blobPort", str(self.port), "--location", self.dir,
                    "--skipApiVersionCheck", "--loose", "--silent"]
        self._spawn("azurite-blob")
        self.endpoint = f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"
        self.env = {"COFFER_TIER_AZURE_KEY": AZURITE_KEY}

    def tier_toml(self) -> str:
        from azure.storage.blob import BlobServiceClient

        container = f"tier-{uuid.uuid4().hex[:16]}"
        BlobServiceClient(account_url=self.endpoint, credential={"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY}).create_container(container)
        return (
            "[tiers.standard]\n"
            'kind = "azure"\n'
            f'account = "{AZURITE_ACCOUNT}"\n'
            f'container = "{container}"\n'
            f'endpoint = "{self.endpoint}"\n'
            "allow_http = true\n"
            'access_key_env = "COFFER_TIER_AZURE_KEY"\n'
        )

    def close(self) -> None:
        super().close()
        shutil.rmtree(self.dir, ignore_errors=True)


_RUNNING: dict[str, Emulator] = {}


def selected() -> str:
    """The tier the suite runs on: "" (local disk), "moto" or "azurite"."""
    kind = os.environ.get("COFFER_TEST_TIER", "").strip().lower()
    if kind not in ("", "moto", "azurite"):
        print(f"COFFER_TEST_TIER={kind!r}: use moto or azurite", file=sys.stderr)
        raise SystemExit(2)
    return kind


def emulator(kind: str) -> Emulator:
    """The session's emulator of that kind, started on first use."""
    if kind not in _RUNNING:
        _RUNNING[kind] = Moto() if kind == "moto" else Azurite()
    return _RUNNING[kind]


def stop_all() -> None:
    for e in _RUNNING.values():
        e.close()
    _RUNNING.clear()
