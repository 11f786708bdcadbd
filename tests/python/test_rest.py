"""The REST API's authentication: OIDC bearer tokens, and the identity headers of an auth
sidecar — here a real nginx in front of coffer — believed only from the trusted proxy."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest
import requests

from conftest import STORES, configured_server, free_port
from test_sts import issuer  # noqa: F401  (the OpenID provider fixture)


@pytest.fixture(scope="module", params=STORES)
def rest_server(request, issuer, coffer_bin, tmp_path_factory):
    base = tmp_path_factory.mktemp(f"coffer-rest-{request.param}")
    toml = (
        "[oidc]\n"
        'admin_groups = ["platform-admins"]\n'
        "[[oidc.issuers]]\n"
        f'issuer = "{issuer.url}"\n'
        'audiences = ["coffer"]\n'
        "[oidc.clearances]\n"
        'leads = ["protected-b"]\n'
        "[trusted_headers]\n"
        'proxies = ["127.0.0.2"]\n'
    )
    yield from configured_server(coffer_bin, request.param, base, toml)


@pytest.fixture(scope="module")
def nginx(rest_server, tmp_path_factory):
    """nginx on a free port, proxying to coffer from 127.0.0.2 with a signed-in user's headers."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    assert os.path.exists(binary), "nginx is not installed (scripts/test installs it)"
    d = tmp_path_factory.mktemp("nginx")
    port = free_port()
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (d / sub).mkdir()
    (d / "nginx.conf").write_text(
        f"""
daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{}}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{rest_server.port};
            proxy_bind 127.0.0.2;
            proxy_set_header X-Forwarded-User "alice";
            proxy_set_header X-Forwarded-Email "alice@example.test";
            proxy_set_header X-Forwarded-Groups "analysts,/leads";
        }}
    }}
}}
"""
    )
    proc = subprocess.Popen([binary, "-p", str(d), "-c", str(d / "nginx.conf")], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail(f"nginx did not start: {proc.stderr.read()!r}")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


def me(url: str, **headers) -> requests.Response:
    return requests.get(f"{url}/api/v1/me", headers=headers, timeout=10)


def assert_problem(r: requests.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    p = r.json()
    assert p["status"] == status and p["title"] and p["detail"], p
    return p


def test_sidecar_headers_are_believed_through_the_trusted_proxy(rest_server, nginx):
    r = me(nginx)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "alice"
    assert body["groups"] == ["analysts", "leads"]
    assert body["clearance"] == ["protected-b", "unclassified"]
    assert body["authenticated_by"] == "headers"
    assert r.headers.get("x-request-id")


def test_sidecar_headers_sent_directly_are_ignored_and_logged(rest_server):
    r = me(rest_server.endpoint, **{"X-Forwarded-User": "mallory", "X-Forwarded-Groups": "leads"})
    assert_problem(r, 401)
    assert r.headers["www-authenticate"] == "Bearer"
    deadline = time.monotonic() + 5
    while "identity headers from an untrusted address ignored" not in rest_server.log_text():
        assert time.monotonic() < deadline, "the ignored attempt is not logged"
        time.sleep(0.05)


def test_bearer_tokens(rest_server, issuer):
    token = issuer.token({"aud": "coffer", "sub": "s-bob", "preferred_username": "bob", "groups": ["leads"]})
    r = me(rest_server.endpoint, Authorization=f"Bearer {token}")
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "bob"
    assert r.json()["authenticated_by"] == "bearer"
    assert "protected-b" in r.json()["clearance"]
    expired = issuer.token({"aud": "coffer", "sub": "s", "preferred_username": "bob"}, expires_in=-600)
    assert "expired" in assert_problem(me(rest_server.endpoint, Authorization=f"Bearer {expired}"), 401)["detail"]
    assert_problem(me(rest_server.endpoint, Authorization="Basic Ym9iOnB3"), 401)
    assert_problem(me(rest_server.endpoint), 401)


def api(url: str, method: str, path: str, token: str | None = None, headers=None, **kw) -> requests.Response:
    headers = dict(headers or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, f"{url}/api/v1{path}", headers=headers, timeout=10, **kw)


def test_a_web_app_shares_a_project(rest_server, issuer):
    from test_sts import assume, session_s3

    from conftest import eventually, s3_error, unique

    def tok(user):
        return issuer.token({"aud": "coffer", "sub": f"s-{user}", "preferred_username": user})

    alice, bob, carol = unique("alice"), unique("bob"), unique("carol")
    url = rest_server.endpoint
    project = unique("proj")
    r = api(url, "POST", "/projects", tok(alice), json={"name": project})
    assert r.status_code == 201, r.text
    assert r.json()["buckets"][0]["owner"] == f"project:{project}"
    assert r.json()["role"] == "admin"
    assert project in [b["name"] for b in api(url, "GET", "/buckets", tok(alice)).json()]
    r = api(url, "PUT", f"/buckets/{project}/grants", tok(alice), json={"user": bob, "role": "read"})
    assert r.status_code == 200, r.text
    grants = api(url, "GET", f"/buckets/{project}/grants", tok(alice)).json()
    assert {(g["grantee"]["name"], g["role"]) for g in grants} == {(alice, "admin"), (bob, "read")}

    # alice writes through S3 with a session; bob reads; carol is refused
    session_s3(rest_server, assume(rest_server, tok(alice))).put_object(Bucket=project, Key="result.csv", Body=b"42")
    bob_s3 = session_s3(rest_server, assume(rest_server, tok(bob)))
    assert bob_s3.get_object(Bucket=project, Key="result.csv")["Body"].read() == b"42"
    with s3_error("AccessDenied", 403):
        bob_s3.put_object(Bucket=project, Key="x", Body=b"no")
    carol_s3 = session_s3(rest_server, assume(rest_server, tok(carol)))
    with s3_error("AccessDenied", 403):
        carol_s3.get_object(Bucket=project, Key="result.csv")
    assert_problem(api(url, "GET", f"/buckets/{project}", tok(carol)), 403)
    assert_problem(api(url, "GET", f"/buckets/{project}/grants", tok(bob)), 403)  # read is not admin
    assert_problem(api(url, "PUT", f"/buckets/{project}/grants", tok(bob), json={"user": carol, "role": "admin"}), 403)

    # removing bob takes effect within a second
    assert api(url, "DELETE", f"/buckets/{project}/grants/user/{bob}", tok(alice)).status_code == 204

    def bob_refused():
        try:
            bob_s3.get_object(Bucket=project, Key="result.csv")
            return None
        except Exception:
            return True

    eventually(bob_refused, timeout=1.5)


def test_rest_errors_are_problem_details(rest_server, issuer):
    from conftest import unique

    token = issuer.token({"aud": "coffer", "sub": "s", "preferred_username": unique("dora")})
    url = rest_server.endpoint
    assert_problem(api(url, "POST", "/buckets", token, data="{not json", headers={"content-type": "application/json"}), 400)
    assert_problem(api(url, "POST", "/buckets", token, json={"name": "Bad_Name"}), 400)
    assert_problem(api(url, "GET", f"/buckets/{unique('none')}", token), 404)
    name = unique("dora-b")
    assert api(url, "POST", "/buckets", token, json={"name": name}).status_code == 201
    assert_problem(api(url, "POST", "/buckets", token, json={"name": name}), 409)
    assert_problem(api(url, "PUT", f"/buckets/{name}/grants", token, json={"role": "read"}), 400)
    assert_problem(api(url, "GET", "/no-such-route", token), 404)
    assert api(url, "DELETE", f"/buckets/{name}", token).status_code == 204


def test_objects_through_the_rest_api(rest_server, issuer):
    from conftest import unique

    def tok(user):
        return issuer.token({"aud": "coffer", "sub": f"s-{user}", "preferred_username": user})

    owner, reader, stranger = unique("own"), unique("rd"), unique("st")
    url = rest_server.endpoint
    b = unique("objs")
    assert api(url, "POST", "/buckets", tok(owner), json={"name": b}).status_code == 201
    data = os.urandom(3 * 1024 * 1024 + 5)
    r = api(url, "PUT", f"/buckets/{b}/objects/reports/2026/big%20file.bin", tok(owner),
            data=data, headers={"content-type": "application/x-test"})
    assert r.status_code == 201, r.text
    assert r.json()["key"] == "reports/2026/big file.bin" and r.json()["size"] == len(data)
    for k in ("reports/a.csv", "reports/b.csv", "top.txt"):
        assert api(url, "PUT", f"/buckets/{b}/objects/{k}", tok(owner), data=k.encode()).status_code == 201

    page = api(url, "GET", f"/buckets/{b}/objects", tok(owner), params={"prefix": "reports/", "delimiter": "/"}).json()
    assert [o["key"] for o in page["objects"]] == ["reports/a.csv", "reports/b.csv"]
    assert page["prefixes"] == ["reports/2026/"] and page["next"] is None
    keys, after = [], None
    while True:
        params = {"max_keys": 2, **({"start_after": after} if after else {})}
        page = api(url, "GET", f"/buckets/{b}/objects", tok(owner), params=params).json()
        keys += [o["key"] for o in page["objects"]]
        after = page["next"]
        if after is None:
            break
    assert keys == ["reports/2026/big file.bin", "reports/a.csv", "reports/b.csv", "top.txt"]

    whole = api(url, "GET", f"/buckets/{b}/objects/reports/2026/big%20file.bin", tok(owner))
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-type"] == "application/x-test"
    part = api(url, "GET", f"/buckets/{b}/objects/reports/2026/big%20file.bin", tok(owner), headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
    assert_problem(api(url, "GET", f"/buckets/{b}/objects/top.txt", tok(owner), headers={"Range": "bytes=500-"}), 416)

    r = api(url, "POST", f"/buckets/{b}/copy", tok(owner), json={"from_bucket": b, "from_key": "top.txt", "to_key": "copy.txt"})
    assert r.status_code == 201, r.text
    assert api(url, "GET", f"/buckets/{b}/objects/copy.txt", tok(owner)).content == b"top.txt"

    # a reader downloads but cannot upload or delete; a stranger gets nothing, missing or not
    assert api(url, "PUT", f"/buckets/{b}/grants", tok(owner), json={"user": reader, "role": "read"}).status_code == 200
    assert api(url, "GET", f"/buckets/{b}/objects/top.txt", tok(reader)).content == b"top.txt"
    assert_problem(api(url, "PUT", f"/buckets/{b}/objects/x", tok(reader), data=b"x"), 403)
    assert_problem(api(url, "DELETE", f"/buckets/{b}/objects/top.txt", tok(reader)), 403)
    assert_problem(api(url, "GET", f"/buckets/{b}/objects/top.txt", tok(stranger)), 403)
    assert_problem(api(url, "GET", f"/buckets/{b}/objects/missing", tok(stranger)), 403)
    assert_problem(api(url, "GET", f"/buckets/{b}/objects/missing", tok(owner)), 404)

    assert api(url, "DELETE", f"/buckets/{b}/objects/copy.txt", tok(owner)).status_code == 204
    assert_problem(api(url, "GET", f"/buckets/{b}/objects/copy.txt", tok(owner)), 404)
