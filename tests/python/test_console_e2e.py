"""The web console end to end in headless Chromium: the browser tests of tests/console
(node's test runner driving the system's /usr/bin/chromium with playwright-core) against a
real coffer with `[console]` signing people in through the real OpenID provider
(tests/oidc/issuer.mjs). This module starts both, plus a small control endpoint through which
the browser tests choose who the next sign-in is (`issuer.login_as`) and run
`coffer admin --json …`; then it runs every `tests/console/*.test.mjs` one file at a time
and `tests/console/check-requests.mjs`, which holds every request the browser made to the
OpenAPI document served at /api/v1/openapi.json. Screenshots land in tests/console/artifacts/
(gitignored)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import configured_server
from test_sts import issuer  # noqa: F401  (the OpenID provider fixture)

ROOT = Path(__file__).resolve().parents[2]
CONSOLE_TESTS = ROOT / "tests" / "console"
ARTIFACTS = CONSOLE_TESTS / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
TIMEOUT = int(os.environ.get("COFFER_CONSOLE_TEST_TIMEOUT", "900"))


def missing(what: str) -> None:
    """Skip — or, under CI=true, fail — when a tool the browser tests need is absent."""
    if os.environ.get("CI") == "true":
        pytest.fail(what)
    pytest.skip(what)


@pytest.fixture(scope="module")
def console_server(issuer, coffer_bin, tmp_path_factory):
    base = tmp_path_factory.mktemp("coffer-console-e2e")
    toml = (
        "[oidc]\n"
        'admin_groups = ["platform-admins"]\n'
        "[[oidc.issuers]]\n"
        f'issuer = "{issuer.url}"\n'
        'audiences = ["coffer"]\n'
        "[oidc.clearances]\n"
        'leads = ["protected-b"]\n'
        "[personal_buckets]\n"
        'template = "home-{user}"\n'
        "[console]\n"
        f'issuer = "{issuer.url}"\n'
    )
    yield from configured_server(coffer_bin, "sqlite", base, toml)


class Control(BaseHTTPRequestHandler):
    """POST /login-as {claims}; POST /admin {args}. One request at a time (the issuer is
    driven over a pipe)."""

    lock = threading.Lock()
    issuer = None
    server_ = None

    def do_POST(self):  # noqa: N802 (the handler's name is http.server's)
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            with self.lock:
                if self.path == "/login-as":
                    self.issuer.login_as(body["claims"])
                    answer = {"ok": True}
                elif self.path == "/admin":
                    answer = self.server_.admin(*[str(a) for a in body["args"]])
                else:
                    self.send_error(404)
                    return
            data = json.dumps(answer).encode()
            self.send_response(200)
        except Exception as e:  # reported to the browser test, which fails with it
            data = json.dumps({"error": str(e)}).encode()
            self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def control(issuer, console_server):
    handler = type("BoundControl", (Control,), {"issuer": issuer, "server_": console_server})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def node(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["node", *args], cwd=CONSOLE_TESTS, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )


def test_the_console_in_a_browser(console_server, issuer, control, tmp_path):
    if not Path(CHROMIUM).exists():
        missing(f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
    if not (CONSOLE_TESTS / "node_modules" / "playwright-core").exists():
        missing(f"playwright-core is not installed: run `npm ci` in {CONSOLE_TESTS}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "COFFER_URL": console_server.endpoint,
        "COFFER_ISSUER_URL": issuer.url,
        "COFFER_CONTROL_URL": control,
        "COFFER_ARTIFACTS": str(ARTIFACTS),
        "COFFER_REQUEST_LOGS": str(tmp_path / "requests"),
        "CHROMIUM": CHROMIUM,
    }
    # COFFER_CONSOLE_TESTS="console.test.mjs" runs only the files named (space-separated).
    only = os.environ.get("COFFER_CONSOLE_TESTS", "").split()
    files = only or sorted(p.name for p in CONSOLE_TESTS.glob("*.test.mjs"))
    assert files, f"no browser tests in {CONSOLE_TESTS}"
    # One file at a time: a sign-in takes the claims the provider was last given.
    run = node(["--test", "--test-concurrency=1", "--test-reporter=spec", *files], env)
    report = f"node --test {' '.join(files)} exited {run.returncode}\n{run.stdout}\n{run.stderr}"
    print(report)
    assert run.returncode == 0, report
    check = node(["check-requests.mjs"], env)
    print(check.stdout, check.stderr)
    assert check.returncode == 0, f"requests outside the documented REST API:\n{check.stdout}\n{check.stderr}"
