"""The web console's server side, end to end with a real OpenID provider (oauth2-mock-server,
tests/oidc/issuer.mjs): sign-in by the authorization code flow with PKCE into the session
cookie, the cookie as a REST credential with its CSRF token, forged, tampered and expired
cookies, sign-out, refused callbacks (a wrong state, a replayed code, a wrong nonce or
audience), multipart uploads through the REST API, the users' list for the platform admin,
and the console's pages — on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import time
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests

from conftest import MiB, STORES, configured_server, unique
from test_sts import issuer  # noqa: F401  (the OpenID provider fixture)

CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'"
)


@pytest.fixture(scope="module", params=STORES)
def console_server(request, issuer, coffer_bin, tmp_path_factory):
    base = tmp_path_factory.mktemp(f"coffer-console-{request.param}")
    toml = (
        "[oidc]\n"
        'admin_groups = ["platform-admins"]\n'
        "[[oidc.issuers]]\n"
        f'issuer = "{issuer.url}"\n'
        'audiences = ["coffer"]\n'
        "[oidc.clearances]\n"
        'leads = ["protected-b"]\n'
        "[console]\n"
        f'issuer = "{issuer.url}"\n'
        "session_hours = 1\n"
    )
    yield from configured_server(coffer_bin, request.param, base, toml)


def sign_in(server, issuer, user: str, groups=()) -> tuple[requests.Session, requests.Response]:
    """A browser (a requests.Session) signed in as `user` through /console/login."""
    issuer.login_as({"preferred_username": user, "groups": list(groups), "email": f"{user}@example.test"})
    s = requests.Session()
    r = s.get(f"{server.endpoint}/console/login", timeout=10)
    assert r.status_code == 200, r.text
    assert r.url == f"{server.endpoint}/console", [h.headers.get("location") for h in r.history]
    assert [h.status_code for h in r.history] == [302, 302, 302]
    assert s.cookies.get("coffer_session") and s.cookies.get("coffer_csrf")
    return s, r


def api(s: requests.Session, server, method: str, path: str, csrf: bool = True, headers=None, **kw):
    headers = dict(headers or {})
    if csrf:
        headers["X-CSRF-Token"] = s.cookies.get("coffer_csrf")
    return s.request(method, f"{server.endpoint}/api/v1{path}", headers=headers, timeout=30, **kw)


def assert_problem(r: requests.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    return r.json()


def set_cookies(r: requests.Response) -> list[str]:
    return r.raw.headers.getlist("Set-Cookie")


def cookie_header(r: requests.Response, name: str) -> str:
    found = [c for c in set_cookies(r) if c.startswith(f"{name}=")]
    assert len(found) == 1, set_cookies(r)
    return found[0]


def test_signing_in_through_the_provider_gives_a_session(console_server, issuer):
    user = unique("alice")
    s, r = sign_in(console_server, issuer, user, ["analysts", "/leads"])
    # To the provider: the authorization code flow, PKCE S256, state and nonce.
    to_provider = urlsplit(r.history[0].headers["location"])
    assert f"{to_provider.scheme}://{to_provider.netloc}" == issuer.url
    q = {k: v[0] for k, v in parse_qs(to_provider.query).items()}
    assert q["response_type"] == "code" and q["client_id"] == "coffer-console"
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43
    assert q["redirect_uri"] == f"{console_server.endpoint}/console/callback"
    assert q["scope"] == "openid profile email"
    assert len(q["state"]) == 43 and len(q["nonce"]) == 43
    login = cookie_header(r.history[0], "coffer_login")
    assert "Path=/console" in login and "HttpOnly" in login and "Max-Age=600" in login
    # Back from the provider: the session and CSRF cookies, the login cookie gone.
    callback = r.history[2]
    assert callback.headers["location"] == "/console"
    assert callback.headers["cache-control"] == "no-store"
    session = cookie_header(callback, "coffer_session")
    for attribute in ("Path=/", "HttpOnly", "SameSite=Lax", "Max-Age=3600"):
        assert attribute in session, session
    assert "Secure" not in session  # plain http, no https public_url
    csrf = cookie_header(callback, "coffer_csrf")
    assert "HttpOnly" not in csrf and "SameSite=Lax" in csrf
    assert "Max-Age=0" in cookie_header(callback, "coffer_login")
    assert s.cookies.get("coffer_login") is None
    # The REST API takes the cookie.
    me = api(s, console_server, "GET", "/me", csrf=False)
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["name"] == user and body["authenticated_by"] == "session"
    assert body["groups"] == ["analysts", "leads"]
    assert body["clearance"] == ["protected-b", "unclassified"]
    assert body["is_admin"] is False
    # The console's page, with its security headers.
    assert "/console/app.js" in r.text
    assert r.headers["content-security-policy"] == CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"
    js = s.get(f"{console_server.endpoint}/console/app.js", timeout=10)
    assert js.status_code == 200 and js.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "X-CSRF-Token" in js.text
    again = s.get(f"{console_server.endpoint}/console/app.js", headers={"If-None-Match": js.headers["etag"]}, timeout=10)
    assert again.status_code == 304
    assert s.get(f"{console_server.endpoint}/console/buckets/x", timeout=10).text == r.text  # app routes
    assert s.get(f"{console_server.endpoint}/console/missing.js", timeout=10).status_code == 404


def test_state_changes_need_the_csrf_token(console_server, issuer):
    s, _ = sign_in(console_server, issuer, unique("bob"))
    bucket = unique("b")
    # Without X-CSRF-Token (or with a wrong one) nothing changes; reads need none.
    r = api(s, console_server, "POST", "/buckets", csrf=False, json={"name": bucket})
    assert assert_problem(r, 403)["detail"] == "missing or wrong CSRF token"
    r = api(s, console_server, "POST", "/buckets", csrf=False, json={"name": bucket}, headers={"X-CSRF-Token": "x" * 43})
    assert assert_problem(r, 403)["detail"] == "missing or wrong CSRF token"
    assert api(s, console_server, "GET", f"/buckets/{bucket}", csrf=False).status_code == 404
    r = api(s, console_server, "POST", "/buckets", json={"name": bucket})
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "owned" and r.json()["role"] == "admin"
    key = "docs/page.html"
    body = b"<script>alert(document.cookie)</script>"
    r = api(s, console_server, "PUT", f"/buckets/{bucket}/objects/{key}", csrf=False, data=body)
    assert_problem(r, 403)
    r = api(s, console_server, "PUT", f"/buckets/{bucket}/objects/{key}", data=body, headers={"Content-Type": "text/html"})
    assert r.status_code == 201, r.text
    # Read back: sandboxed, never a page of this origin; as an attachment when asked.
    r = api(s, console_server, "GET", f"/buckets/{bucket}/objects/{key}", csrf=False)
    assert r.status_code == 200 and r.content == body
    assert r.headers["content-security-policy"] == "sandbox"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "content-disposition" not in r.headers
    r = api(s, console_server, "GET", f"/buckets/{bucket}/objects/{key}?download=1", csrf=False)
    assert r.headers["content-disposition"] == "attachment; filename=\"page.html\"; filename*=UTF-8''page.html"
    assert_problem(api(s, console_server, "GET", f"/buckets/{bucket}/objects/{key}?download=maybe", csrf=False), 400)
    buckets = {b["name"]: b for b in api(s, console_server, "GET", "/buckets", csrf=False).json()}
    assert buckets[bucket]["kind"] == "owned"
    r = api(s, console_server, "DELETE", f"/buckets/{bucket}/objects/{key}", csrf=False)
    assert_problem(r, 403)
    assert api(s, console_server, "DELETE", f"/buckets/{bucket}/objects/{key}").status_code == 204
    # The console's own name is no bucket's.
    assert_problem(api(s, console_server, "POST", "/buckets", json={"name": "console"}), 400)


def server_key(server) -> bytes:
    text = os.environ.get("COFFER_SERVER_KEY") or (server.data_dir / "server.key").read_text()
    return base64.b64decode(text.strip())


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def seal_session(server, **fields) -> str:
    """A session cookie made as docs/API.md describes: `v1.<payload>.<mac>`, the MAC an
    HMAC-SHA256 under HMAC-SHA256(server key, "coffer/console-session/v1")."""
    subkey = hmac.new(server_key(server), b"coffer/console-session/v1", hashlib.sha256).digest()
    now = int(time.time())
    session = {"user": unique("u"), "groups": [], "source": "test", "csrf": "t" * 43, "issued_at": now,
               "expires_at": now + 600}
    session.update(fields)
    signed = "v1." + b64url(json.dumps(session).encode())
    return signed + "." + b64url(hmac.new(subkey, signed.encode(), hashlib.sha256).digest())


def test_forged_tampered_and_expired_cookies_are_refused(console_server, issuer):
    url = f"{console_server.endpoint}/api/v1/me"

    def me(cookie: str) -> requests.Response:
        return requests.get(url, cookies={"coffer_session": cookie}, timeout=10)

    # A cookie signed as documented works (any replica with the server key could make it) …
    made = seal_session(console_server, user="carol", groups=["analysts"])
    r = me(made)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "carol" and r.json()["authenticated_by"] == "session"
    # … an expired one does not.
    expired = seal_session(console_server, expires_at=int(time.time()) - 1)
    assert "expired" in assert_problem(me(expired), 401)["detail"]
    # Tampered: another user (or admin groups) under the old MAC.
    s, _ = sign_in(console_server, issuer, unique("dave"))
    real = s.cookies.get("coffer_session")
    assert me(real).status_code == 200
    version, payload, tag = real.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["groups"] = ["platform-admins"]
    tampered = f"{version}.{b64url(json.dumps(claims).encode())}.{tag}"
    assert "signature" in assert_problem(me(tampered), 401)["detail"]
    # Forged: garbage, or signed with another key.
    assert_problem(me("v1.eyJ1c2VyIjoiYWRtaW4ifQ.AAAA"), 401)
    other_key = hmac.new(b"not the server key", b"coffer/console-session/v1", hashlib.sha256).digest()
    signed = "v1." + b64url(json.dumps({**claims, "user": "admin"}).encode())
    forged = signed + "." + b64url(hmac.new(other_key, signed.encode(), hashlib.sha256).digest())
    r = me(forged)
    assert_problem(r, 401)
    assert r.headers["www-authenticate"] == "Bearer"


def test_signing_out_clears_the_session(console_server, issuer):
    s, _ = sign_in(console_server, issuer, unique("erin"))
    r = s.post(f"{console_server.endpoint}/console/logout", timeout=10)
    # Through the provider's end_session_endpoint and back to the console.
    assert r.status_code == 200 and r.url == f"{console_server.endpoint}/console", r.url
    out = r.history[0]
    assert out.status_code == 302
    to = urlsplit(out.headers["location"])
    assert f"{to.scheme}://{to.netloc}" == issuer.url
    q = parse_qs(to.query)
    assert q["post_logout_redirect_uri"] == [f"{console_server.endpoint}/console"]
    assert q["client_id"] == ["coffer-console"]
    for name in ("coffer_session", "coffer_csrf"):
        assert "Max-Age=0" in cookie_header(out, name)
        assert s.cookies.get(name) is None
    assert_problem(api(s, console_server, "GET", "/me", csrf=False), 401)
    # A GET cannot sign anyone out (no cross-site <img> logouts).
    assert requests.get(f"{console_server.endpoint}/console/logout", timeout=10).status_code == 405


def start_sign_in(server) -> tuple[str, str]:
    """Start a sign-in and let the provider approve it, without following the callback:
    the callback URL (with code and state) and the login cookie."""
    r = requests.get(f"{server.endpoint}/console/login", allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text
    login = r.cookies["coffer_login"]
    at_provider = requests.get(r.headers["location"], allow_redirects=False, timeout=10)
    assert at_provider.status_code == 302, at_provider.text
    callback = at_provider.headers["location"]
    assert callback.startswith(f"{server.endpoint}/console/callback?")
    return callback, login


def with_query(url: str, **changes) -> str:
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    q.update(changes)
    return urlunsplit(parts._replace(query=urlencode(q)))


def callback(url: str, login: str | None) -> requests.Response:
    headers = {"Cookie": f"coffer_login={login}"} if login else {}
    return requests.get(url, headers=headers, allow_redirects=False, timeout=10)


def refused(r: requests.Response, says: str) -> None:
    assert r.status_code == 400, (r.status_code, r.text)
    assert says in r.text, r.text
    assert not any(c.startswith("coffer_session=") for c in set_cookies(r)), set_cookies(r)
    assert "Max-Age=0" in cookie_header(r, "coffer_login")


def test_callbacks_with_a_wrong_state_or_a_replayed_code_are_refused(console_server, issuer):
    user = unique("frank")
    issuer.login_as({"preferred_username": user})
    url, login = start_sign_in(console_server)
    refused(callback(with_query(url, state="not-the-state"), login), "state does not match")
    refused(callback(url, None), "not started here")
    # Another sign-in's cookie does not fit this answer either.
    other_url, other_login = start_sign_in(console_server)
    refused(callback(url, other_login), "state does not match")
    # The right state and cookie: signed in, once.
    before = issuer.sign_ins()
    ok = callback(url, login)
    assert ok.status_code == 302 and ok.headers["location"] == "/console", ok.text
    assert cookie_header(ok, "coffer_session")
    # The same answer again (a replayed code, even with its cookie): the provider refuses it.
    refused(callback(url, login), "refused the sign-in")
    assert issuer.sign_ins() == before + 1
    # An error from the provider is shown, not followed.
    refused(callback(with_query(other_url, error="access_denied", error_description="no"), other_login), "access_denied")


def test_id_tokens_with_a_wrong_nonce_or_audience_are_refused(console_server, issuer):
    issuer.login_as({"preferred_username": unique("gina"), "nonce": "injected"})
    url, login = start_sign_in(console_server)
    refused(callback(url, login), "nonce")
    issuer.login_as({"preferred_username": unique("gina"), "aud": "coffer"})
    url, login = start_sign_in(console_server)
    refused(callback(url, login), "audience")
    issuer.login_as({"preferred_username": "project:atlas"})
    url, login = start_sign_in(console_server)
    r = callback(url, login)
    assert r.status_code == 403 and "reserved" in r.text


def test_a_multipart_upload_through_the_rest_api(console_server, issuer):
    s, _ = sign_in(console_server, issuer, unique("hugo"))
    bucket = unique("b")
    assert api(s, console_server, "POST", "/buckets", json={"name": bucket}).status_code == 201
    key = "big/data.bin"
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(123_457)]
    r = api(s, console_server, "POST", f"/buckets/{bucket}/uploads", csrf=False, json={"key": key})
    assert_problem(r, 403)
    r = api(s, console_server, "POST", f"/buckets/{bucket}/uploads", json={"key": key, "content_type": "application/x-test"})
    assert r.status_code == 201, r.text
    upload = r.json()
    assert upload["key"] == key
    uid = upload["upload_id"]
    listed = api(s, console_server, "GET", f"/buckets/{bucket}/uploads", csrf=False).json()
    assert [(u["key"], u["upload_id"]) for u in listed["uploads"]] == [(key, uid)]
    done = []
    for n, data in enumerate(parts, start=1):
        path = f"/buckets/{bucket}/uploads/{uid}/parts/{n}"
        assert_problem(api(s, console_server, "PUT", path, csrf=False, params={"key": key}, data=data), 403)
        r = api(s, console_server, "PUT", path, params={"key": key}, data=data)
        assert r.status_code == 200, r.text
        part = r.json()
        assert part["part_number"] == n and part["size"] == len(data) and part["etag"]
        done.append({"part_number": n, "etag": part["etag"]})
    r = api(s, console_server, "GET", f"/buckets/{bucket}/uploads/{uid}/parts", csrf=False, params={"key": key})
    assert [p["part_number"] for p in r.json()["parts"]] == [1, 2, 3] and r.json()["next"] is None
    r = api(s, console_server, "GET", f"/buckets/{bucket}/uploads/{uid}/parts", csrf=False,
            params={"key": key, "max_parts": 2})
    assert [p["part_number"] for p in r.json()["parts"]] == [1, 2] and r.json()["next"] == 2
    # A part for another key, an unknown upload, a bad part number.
    assert_problem(api(s, console_server, "PUT", f"/buckets/{bucket}/uploads/{uid}/parts/1", params={"key": "other"},
                       data=b"x"), 404)
    assert_problem(api(s, console_server, "PUT", f"/buckets/{bucket}/uploads/{'0' * 32}/parts/1", params={"key": key},
                       data=b"x"), 404)
    assert_problem(api(s, console_server, "PUT", f"/buckets/{bucket}/uploads/{uid}/parts/0", params={"key": key},
                       data=b"x"), 400)
    r = api(s, console_server, "POST", f"/buckets/{bucket}/uploads/{uid}/complete", json={"key": key, "parts": done})
    assert r.status_code == 201, r.text
    obj = r.json()
    whole = b"".join(parts)
    assert obj["key"] == key and obj["size"] == len(whole)
    got = api(s, console_server, "GET", f"/buckets/{bucket}/objects/{key}", csrf=False)
    assert got.status_code == 200 and got.content == whole
    assert got.headers["content-type"] == "application/x-test"
    assert api(s, console_server, "GET", f"/buckets/{bucket}/uploads", csrf=False).json()["uploads"] == []
    # Abandoned: its parts go, the key stays as it was.
    uid2 = api(s, console_server, "POST", f"/buckets/{bucket}/uploads", json={"key": key}).json()["upload_id"]
    assert api(s, console_server, "PUT", f"/buckets/{bucket}/uploads/{uid2}/parts/1", params={"key": key},
               data=b"abc").status_code == 200
    assert_problem(api(s, console_server, "DELETE", f"/buckets/{bucket}/uploads/{uid2}", csrf=False,
                       params={"key": key}), 403)
    assert api(s, console_server, "DELETE", f"/buckets/{bucket}/uploads/{uid2}", params={"key": key}).status_code == 204
    assert_problem(api(s, console_server, "POST", f"/buckets/{bucket}/uploads/{uid2}/complete",
                       json={"key": key, "parts": [{"part_number": 1, "etag": "x"}]}), 404)
    assert api(s, console_server, "GET", f"/buckets/{bucket}/objects/{key}", csrf=False).content == whole
    # Someone without write access cannot start one.
    other, _ = sign_in(console_server, issuer, unique("ida"))
    assert_problem(api(other, console_server, "POST", f"/buckets/{bucket}/uploads", json={"key": "x"}), 403)


def test_the_platform_admin_lists_users_with_quotas(console_server, issuer):
    name = unique("user")
    console_server.admin("user", "create", name, "--group", "analysts")
    console_server.admin("quota", "set", "--user", name, "--max-bytes", "5000", "--max-objects", "7")
    admin, _ = sign_in(console_server, issuer, unique("root"), ["platform-admins"])
    assert api(admin, console_server, "GET", "/me", csrf=False).json()["is_admin"] is True
    r = api(admin, console_server, "GET", "/users", csrf=False)
    assert r.status_code == 200, r.text
    users = {u["name"]: u for u in r.json()}
    u = users[name]
    assert u["groups"] == ["analysts"] and u["clearance"] == ["unclassified"] and u["is_admin"] is False
    assert (u["max_bytes"], u["max_objects"], u["bytes"], u["objects"]) == (5000, 7, 0, 0)
    assert users["admin"]["is_admin"] is True and users["admin"]["max_bytes"] is None
    # Everyone else: refused.
    plain, _ = sign_in(console_server, issuer, unique("jo"))
    assert "platform admin" in assert_problem(api(plain, console_server, "GET", "/users", csrf=False), 403)["detail"]


@contextlib.contextmanager
def started(coffer_bin, kind: str, base, toml: str):
    """A server of this test's own, configured with `toml`."""
    base.mkdir(parents=True, exist_ok=True)
    gen = configured_server(coffer_bin, kind, base, toml)
    try:
        yield next(gen)
    finally:
        gen.close()


@pytest.mark.parametrize("kind", STORES)
def test_without_a_console_section(kind, coffer_bin, tmp_path):
    # Nothing configured: /console says how to enable it.
    with started(coffer_bin, kind, tmp_path / "bare", "") as server:
        r = requests.get(f"{server.endpoint}/console", timeout=10)
        assert r.status_code == 404
        assert "not enabled" in r.text and "[console]" in r.text
        assert requests.get(f"{server.endpoint}/console/login", timeout=10).status_code == 404
        # Everything else on the origin is sandboxed (the S3 API included).
        r = requests.get(f"{server.endpoint}/no-such-bucket/key", timeout=10)
        assert r.status_code in (403, 404) and r.headers["content-security-policy"] == "sandbox"
    # Behind an auth sidecar ([trusted_headers]): the app is served, and signing in is the
    # sidecar's — /console/login goes straight back to /console.
    with started(coffer_bin, kind, tmp_path / "sidecar", '[trusted_headers]\nproxies = ["127.0.0.2"]\n') as server:
        r = requests.get(f"{server.endpoint}/console", timeout=10)
        assert r.status_code == 200 and "/console/app.js" in r.text
        assert r.headers["content-security-policy"] == CSP
        r = requests.get(f"{server.endpoint}/console/login", allow_redirects=False, timeout=10)
        assert r.status_code == 302 and r.headers["location"] == "/console"
