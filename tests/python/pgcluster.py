"""A private PostgreSQL cluster for the tests that stop and restart the database.

The shared server (COFFER_TEST_PG_URL, 127.0.0.1:5432) is used by every other test, so it
is never stopped: a fault test gets a cluster of its own, made with the server binaries of
the `postgresql` package (`/usr/lib/postgresql/<version>/bin/initdb`, `pg_ctl`) in a
temporary directory, on a free port, with trust authentication, listening on 127.0.0.1
only. PostgreSQL refuses to run as root: as root, the cluster's directory is given to the
`postgres` system user (created by the package) and the commands run as that user
(`runuser`). `pg_ctlcluster` cannot be used: it only knows the clusters under /etc.

Unavailable (no server binaries, no `postgres` user as root): the test is skipped, or
fails when CI=true.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unavailable(msg: str) -> None:
    msg += " (scripts/test installs the `postgresql` package)"
    if os.environ.get("CI") == "true":
        pytest.fail(msg + " — CI=true, so this fails instead of skipping", pytrace=False)
    pytest.skip(msg)


def server_bin_dir() -> Path | None:
    """The newest installed PostgreSQL server's bin directory."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


class PrivateCluster:
    """initdb + pg_ctl start/stop on a port of its own; `url` names its `postgres` database."""

    def __init__(self):
        bindir = server_bin_dir()
        if bindir is None:
            _unavailable("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
        self.bin = bindir
        self.as_user: list[str] = []
        self.dir = Path(tempfile.mkdtemp(prefix="coffer-pg-"))
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.dir, ignore_errors=True)
                _unavailable("running as root and there is no `postgres` user to run PostgreSQL as")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.port = _free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"
        r = self._run(
            [str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]
        )
        if r.returncode != 0:
            self.remove()
            _unavailable(f"initdb failed: {r.stderr.strip() or r.stdout.strip()}")

    def _run(self, cmd: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(self.as_user + cmd, capture_output=True, text=True, timeout=timeout)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
        r = self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start"])
        if r.returncode != 0:
            raise AssertionError(f"pg_ctl start failed: {r.stdout} {r.stderr}\n{self.log_text()}")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"PostgreSQL did not listen on {self.port}\n{self.log_text()}")

    def stop(self, mode: str = "immediate") -> None:
        """`pg_ctl stop -m MODE`: `immediate` is a crash (no checkpoint, connections cut)."""
        r = self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])
        if r.returncode != 0:
            raise AssertionError(f"pg_ctl stop failed: {r.stdout} {r.stderr}")

    def running(self) -> bool:
        r = self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "status"])
        return r.returncode == 0

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return "<no log>"

    def remove(self) -> None:
        if self.data.exists() and self.running():
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class ClusterStore:
    """A `conftest.Store` look-alike for a server on a private cluster."""

    kind = "postgres"

    def __init__(self, cluster: PrivateCluster):
        self.url = cluster.url

    def drop(self) -> None:
        pass
