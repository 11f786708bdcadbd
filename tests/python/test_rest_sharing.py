"""The REST API as a web app uses it, on SQLite and PostgreSQL: projects and their members,
a user's own access keys, share links, the audit trail, and requests signed with SigV4.
Tokens come from the real OpenID provider of the STS tests."""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest
import requests

from conftest import eventually, s3_client, s3_error, sign_headers, unique
from test_rest import api, assert_problem, rest_server  # noqa: F401  (the server fixture)
from test_sts import assume, issuer, session_s3  # noqa: F401  (the OpenID provider fixture)


@pytest.fixture(scope="module")
def tok(issuer):
    """tok(user, *groups) → a fresh bearer token for that user."""

    def make(user: str, *groups: str) -> str:
        return issuer.token({"aud": "coffer", "sub": f"s-{user}", "preferred_username": user, "groups": list(groups)})

    return make


def ok(r: requests.Response, status: int = 200):
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json() if r.content and r.headers.get("content-type", "").startswith("application/json") else r


def until(check, timeout: float = 2.0):
    """Poll `check` until it returns true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the time limit"
        time.sleep(0.05)


def test_a_web_app_shares_a_project_with_a_colleague(rest_server, tok):
    url = rest_server.endpoint
    alice, bob, carol, dave = (unique(n) for n in ("alice", "bob", "carol", "dave"))
    project = unique("proj")

    created = ok(api(url, "POST", "/projects", tok(alice), json={"name": project}), 201)
    assert created["name"] == project and created["role"] == "admin"
    assert [b["name"] for b in created["buckets"]] == [project]
    ok(api(url, "PUT", f"/buckets/{project}/objects/results/plot.png", tok(alice), data=b"\x89PNG fake",
           headers={"content-type": "image/png"}), 201)

    # the colleague is added read-only and downloads
    member = ok(api(url, "PUT", f"/projects/{project}/members", tok(alice), json={"user": bob, "role": "read"}))
    assert member["grantee"] == {"kind": "user", "name": bob} and member["role"] == "read"
    mine = {p["name"]: p["role"] for p in ok(api(url, "GET", "/projects", tok(bob)))}
    assert mine.get(project) == "read"
    got = api(url, "GET", f"/buckets/{project}/objects/results/plot.png", tok(bob))
    assert got.status_code == 200 and got.content == b"\x89PNG fake"
    assert got.headers["content-type"] == "image/png"
    members = ok(api(url, "GET", f"/projects/{project}/members", tok(bob)))
    assert {(m["grantee"]["name"], m["role"]) for m in members} == {(alice, "admin"), (bob, "read")}
    # ... and can neither write, delete, nor manage members
    assert_problem(api(url, "PUT", f"/buckets/{project}/objects/x", tok(bob), data=b"no"), 403)
    assert_problem(api(url, "DELETE", f"/buckets/{project}/objects/results/plot.png", tok(bob)), 403)
    assert_problem(api(url, "PUT", f"/projects/{project}/members", tok(bob), json={"user": carol, "role": "read"}), 403)

    # a non-member sees nothing and is refused
    assert project not in [p["name"] for p in ok(api(url, "GET", "/projects", tok(carol)))]
    assert project not in [b["name"] for b in ok(api(url, "GET", "/buckets", tok(carol)))]
    assert_problem(api(url, "GET", f"/buckets/{project}/objects/results/plot.png", tok(carol)), 403)
    assert_problem(api(url, "GET", f"/projects/{project}", tok(carol)), 403)
    assert_problem(api(url, "GET", f"/projects/{unique('none')}", tok(carol)), 404)

    # a project keeps an admin; another admin lets the creator go
    assert "at least one admin" in assert_problem(
        api(url, "DELETE", f"/projects/{project}/members/user/{alice}", tok(alice)), 409)["detail"]
    assert_problem(api(url, "PUT", f"/projects/{project}/members", tok(alice), json={"user": alice, "role": "read"}), 409)
    # ... also through the bucket's own grants
    assert_problem(api(url, "DELETE", f"/buckets/{project}/grants/user/{alice}", tok(alice)), 409)
    ok(api(url, "PUT", f"/projects/{project}/members", tok(alice), json={"user": dave, "role": "admin"}))
    assert api(url, "DELETE", f"/projects/{project}/members/user/{alice}", tok(alice)).status_code == 204
    assert_problem(api(url, "GET", f"/projects/{project}/members", tok(alice)), 403)
    assert_problem(api(url, "DELETE", f"/projects/{project}/members/user/{alice}", tok(dave)), 404)
    # a group member
    ok(api(url, "PUT", f"/projects/{project}/members", tok(dave), json={"group": "reviewers", "role": "write"}))
    ok(api(url, "PUT", f"/buckets/{project}/objects/review.txt", tok(carol + "-r", "reviewers"), data=b"ok"), 201)

    # deleting a project needs it empty
    assert_problem(api(url, "DELETE", f"/projects/{project}", tok(dave)), 409)
    for key in ("results/plot.png", "review.txt"):
        assert api(url, "DELETE", f"/buckets/{project}/objects/{key}", tok(dave)).status_code == 204
    assert_problem(api(url, "DELETE", f"/projects/{project}", tok(bob)), 403)
    assert api(url, "DELETE", f"/projects/{project}", tok(dave)).status_code == 204
    assert_problem(api(url, "GET", f"/projects/{project}", tok(dave)), 404)


def test_share_links_work_until_revoked(rest_server, tok):
    url = rest_server.endpoint
    owner, reader = unique("own"), unique("rd")
    b = unique("links")
    ok(api(url, "POST", "/buckets", tok(owner), json={"name": b}), 201)
    data = b"0123456789" * 1000
    ok(api(url, "PUT", f"/buckets/{b}/objects/reports/q3 final.csv", tok(owner), data=data,
           headers={"content-type": "text/csv"}), 201)
    ok(api(url, "PUT", f"/buckets/{b}/objects/reports/2026/a.txt", tok(owner), data=b"a"), 201)
    ok(api(url, "PUT", f"/buckets/{b}/objects/private.txt", tok(owner), data=b"secret"), 201)

    # an object link valid for 30 days (beyond SigV4's 7), opened with no credentials at all
    link = ok(api(url, "POST", f"/buckets/{b}/links", tok(owner),
                  json={"key": "reports/q3 final.csv", "expires_in_seconds": 30 * 86400}), 201)
    assert link["url"].startswith(url + "/api/v1/share/") and link["target"] == {"kind": "object", "path": "reports/q3 final.csv"}
    assert 30 * 86400 - 60 <= link["expires_at"] - time.time() <= 30 * 86400 + 5
    anonymous = requests.Session()
    got = anonymous.get(link["url"], timeout=10)
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"] == "text/csv"
    assert got.headers["content-disposition"] == "inline; filename*=UTF-8''q3%20final.csv"
    part = anonymous.get(link["url"], headers={"Range": "bytes=10-19"}, timeout=10)
    assert part.status_code == 206 and part.content == data[10:20]
    assert anonymous.get(link["url"] + "/other", timeout=10).status_code == 404

    # a prefix link lists and opens what is under its prefix only
    folder = ok(api(url, "POST", f"/buckets/{b}/links", tok(owner), json={"prefix": "reports/"}), 201)
    page = anonymous.get(folder["url"], params={"delimiter": "/"}, timeout=10).json()
    assert [o["key"] for o in page["objects"]] == ["q3 final.csv"] and page["prefixes"] == ["2026/"]
    assert anonymous.get(folder["url"] + "/2026/a.txt", timeout=10).content == b"a"
    assert anonymous.get(folder["url"] + "/" + quote("q3 final.csv"), timeout=10).content == data
    assert_problem(anonymous.get(folder["url"] + "/private.txt", timeout=10), 404)

    # forged or unknown tokens open nothing
    token = link["url"].rsplit("/", 1)[1]
    assert_problem(anonymous.get(f"{url}/api/v1/share/{token[:-3]}abc", timeout=10), 404)
    assert_problem(anonymous.get(f"{url}/api/v1/share/nothing-here", timeout=10), 404)

    # listed for the creator and the bucket's admins; the URL can be copied again
    assert link["url"] in [l["url"] for l in ok(api(url, "GET", "/links", tok(owner)))]
    assert {l["id"] for l in ok(api(url, "GET", f"/buckets/{b}/links", tok(owner)))} == {link["id"], folder["id"]}
    assert_problem(api(url, "GET", f"/buckets/{b}/links", tok(reader)), 403)

    # the server's log names the link, never its secret part
    mac = token.split(".", 1)[1]
    log = rest_server.wait_log(lambda text: link["id"] in text)
    assert mac not in log

    # revoked: answered 410 at once
    assert_problem(api(url, "DELETE", f"/links/{link['id']}", tok(reader)), 403)
    assert api(url, "DELETE", f"/links/{link['id']}", tok(owner)).status_code == 204
    assert "revoked" in assert_problem(anonymous.get(link["url"], timeout=10), 410)["detail"]
    assert anonymous.get(folder["url"] + "/2026/a.txt", timeout=10).status_code == 200

    # bounds: longer than the configured maximum (90 days), shorter than a minute, both targets
    assert_problem(api(url, "POST", f"/buckets/{b}/links", tok(owner), json={"key": "private.txt", "expires_in_seconds": 91 * 86400}), 400)
    assert_problem(api(url, "POST", f"/buckets/{b}/links", tok(owner), json={"key": "private.txt", "expires_in_seconds": 5}), 400)
    assert_problem(api(url, "POST", f"/buckets/{b}/links", tok(owner), json={"key": "a", "prefix": "b"}), 400)
    assert_problem(api(url, "POST", f"/buckets/{b}/links", tok(owner), json={"key": "missing.txt"}), 404)
    assert_problem(api(url, "POST", f"/buckets/{b}/links", tok(reader), json={"key": "private.txt"}), 403)


def test_a_link_acts_as_its_creator_at_every_use(rest_server, tok):
    url = rest_server.endpoint
    owner, reader = unique("own"), unique("rd")
    b = unique("links")
    ok(api(url, "POST", "/buckets", tok(owner), json={"name": b}), 201)
    ok(api(url, "PUT", f"/buckets/{b}/objects/f.txt", tok(owner), data=b"shared"), 201)
    ok(api(url, "PUT", f"/buckets/{b}/grants", tok(owner), json={"user": reader, "role": "read"}))
    link = ok(api(url, "POST", f"/buckets/{b}/links", tok(reader), json={"key": "f.txt"}), 201)
    assert requests.get(link["url"], timeout=10).content == b"shared"
    # the creator loses read: the link stops within a second
    assert api(url, "DELETE", f"/buckets/{b}/grants/user/{reader}", tok(owner)).status_code == 204
    until(lambda: requests.get(link["url"], timeout=10).status_code == 403, timeout=1.5)
    # the bucket's admin may still revoke it
    assert api(url, "DELETE", f"/links/{link['id']}", tok(owner)).status_code == 204


def test_classified_data_is_not_shared_by_link(rest_server, tok):
    url = rest_server.endpoint
    lead = unique("lead")
    b = unique("pb")
    rest_server.admin("bucket", "create", b, "--owner", rest_server.create_user(lead, clearance=["unclassified", "protected-b"])["name"],
                      "--classification", "protected-b")
    ok(api(url, "PUT", f"/buckets/{b}/objects/x.txt", tok(lead, "leads"), data=b"pb"), 201)
    p = assert_problem(api(url, "POST", f"/buckets/{b}/links", tok(lead, "leads"), json={"key": "x.txt"}), 403)
    assert "protected-b" in p["detail"]


def test_my_access_keys(rest_server, tok):
    url = rest_server.endpoint
    alice, bob = unique("alice"), unique("bob")
    b = unique("keys")
    ok(api(url, "POST", "/buckets", tok(alice), json={"name": b}), 201)

    r = api(url, "POST", "/me/keys", tok(alice), json={})
    created = ok(r, 201)
    assert r.headers["cache-control"] == "no-store"
    key_id, secret = created["access_key_id"], created["secret_access_key"]
    assert key_id.startswith("CK") and len(secret) == 40
    s3 = s3_client(url, key_id, secret)
    s3.put_object(Bucket=b, Key="from-key", Body=b"via a key made in the web app")
    assert s3.get_object(Bucket=b, Key="from-key")["Body"].read() == b"via a key made in the web app"

    listed = api(url, "GET", "/me/keys", tok(alice))
    assert [k["access_key_id"] for k in ok(listed)] == [key_id]
    assert secret not in listed.text and "secret" not in listed.text
    assert ok(api(url, "GET", "/me/keys", tok(bob))) == []

    # narrowed keys
    ro = ok(api(url, "POST", "/me/keys", tok(alice), json={"read_only": True, "buckets": [b], "expires_in_seconds": 3600}), 201)
    assert ro["key"]["narrowing"]["read_only"] and ro["key"]["narrowing"]["buckets"] == [b]
    ro_s3 = s3_client(url, ro["access_key_id"], ro["secret_access_key"])
    assert ro_s3.get_object(Bucket=b, Key="from-key")["Body"].read()
    with s3_error("AccessDenied", 403):
        ro_s3.put_object(Bucket=b, Key="no", Body=b"no")
    assert_problem(api(url, "POST", "/me/keys", tok(alice), json={"expires_in_seconds": 5}), 400)
    assert_problem(api(url, "POST", "/me/keys", tok(alice), json={"buckets": ["Not_A_Bucket"]}), 400)
    assert_problem(api(url, "POST", "/me/keys", tok(alice), json={"admin": True}), 400)

    # someone else's key cannot be revoked (or even seen); one's own stops within a second
    assert_problem(api(url, "DELETE", f"/me/keys/{key_id}", tok(bob)), 404)
    assert api(url, "DELETE", f"/me/keys/{key_id}", tok(alice)).status_code == 204
    revoked = {k["access_key_id"]: k["revoked_at"] for k in ok(api(url, "GET", "/me/keys", tok(alice)))}
    assert revoked[key_id] is not None and revoked[ro["access_key_id"]] is None

    def refused():
        try:
            s3.list_buckets()
            return False
        except Exception:
            return True

    until(refused, timeout=1.5)

    # the audit trail holds every change to a key, and the refused revocation
    def changes(user):
        events = rest_server.admin("audit", "list", "--user", user)
        return [(e["action"], e["key"], e["allowed"], e["rule"]) for e in events if e["action"].endswith("-access-key")]

    assert sorted(changes(alice)) == sorted([
        ("create-access-key", key_id, True, "a user's own key"),
        ("create-access-key", ro["access_key_id"], True, "a user's own key"),
        ("revoke-access-key", key_id, True, "a user's own key"),
    ])
    assert changes(bob) == [("revoke-access-key", key_id, False, "the key is another user's")]


def test_a_narrowed_session_makes_only_narrower_keys(rest_server, tok):
    import json

    url = rest_server.endpoint
    user = unique("nar")
    b, other = unique("nar"), unique("nar")
    for name in (b, other):
        ok(api(url, "POST", "/buckets", tok(user), json={"name": name}), 201)
    creds = assume(rest_server, tok(user), Policy=json.dumps({"read_only": True, "buckets": [b]}))

    def signed(method, path, body=b"", content_type=None):
        full = f"{url}/api/v1{path}"
        headers = {"content-type": content_type} if content_type else {}
        headers["x-amz-security-token"] = creds["SessionToken"]
        headers = sign_headers(method, full, creds["AccessKeyId"], creds["SecretAccessKey"], headers, body)
        return requests.request(method, full, headers=headers, data=body, timeout=10)

    me = ok(signed("GET", "/me"))
    assert me["name"] == user and me["authenticated_by"] == "sigv4"
    key = ok(signed("POST", "/me/keys", b"{}", "application/json"), 201)
    assert key["key"]["narrowing"]["read_only"] is True and key["key"]["narrowing"]["buckets"] == [b]
    assert key["key"]["narrowing"]["expires_at"] <= time.time() + 3700
    wider = json.dumps({"buckets": [other]}).encode()
    assert "does not reach" in assert_problem(signed("POST", "/me/keys", wider, "application/json"), 400)["detail"]


def test_requests_signed_with_sigv4(rest_server):
    url = rest_server.endpoint
    ak, sk = rest_server.admin_access_key, rest_server.admin_secret_key

    def call(method, path, body=b"", payload_hash=None, key=(ak, sk), extra=None):
        full = f"{url}/api/v1{path}"
        headers = sign_headers(method, full, key[0], key[1], extra or {}, body, payload_hash=payload_hash)
        return requests.request(method, full, headers=headers, data=body, timeout=10)

    me = ok(call("GET", "/me"))
    assert me["authenticated_by"] == "sigv4" and me["is_admin"] is True
    b = unique("sig")
    ok(call("POST", "/buckets", f'{{"name": "{b}"}}'.encode(), extra={"content-type": "application/json"}), 201)
    ok(call("PUT", f"/buckets/{b}/objects/dir/signed%20file", b"signed body"), 201)
    assert call("GET", f"/buckets/{b}/objects/dir/signed%20file").content == b"signed body"
    # a body that is not the one signed is refused and nothing is stored
    import hashlib

    other = hashlib.sha256(b"another body").hexdigest()
    assert_problem(call("PUT", f"/buckets/{b}/objects/swapped", b"tampered body", payload_hash=other), 400)
    assert_problem(call("GET", f"/buckets/{b}/objects/swapped"), 404)
    ok(call("PUT", f"/buckets/{b}/objects/unsigned", b"x", payload_hash="UNSIGNED-PAYLOAD"), 201)
    # bad signatures, secrets and keys
    good = sign_headers("GET", f"{url}/api/v1/me", ak, sk)
    bad = dict(good, Authorization=good["Authorization"][:-4] + "0000")
    assert_problem(requests.get(f"{url}/api/v1/me", headers=bad, timeout=10), 401)
    assert_problem(call("GET", "/me", key=(ak, sk + "x")), 401)
    assert_problem(call("GET", "/me", key=("CKNOSUCHKEY000000000", sk)), 401)
    signed_for_other_path = sign_headers("GET", f"{url}/api/v1/buckets", ak, sk)
    assert_problem(requests.get(f"{url}/api/v1/me", headers=signed_for_other_path, timeout=10), 401)


def test_the_audit_trail(rest_server, tok):
    url = rest_server.endpoint
    owner, reader, stranger = unique("own"), unique("rd"), unique("st")
    b = unique("aud")
    ok(api(url, "POST", "/buckets", tok(owner), json={"name": b}), 201)
    ok(api(url, "PUT", f"/buckets/{b}/grants", tok(owner), json={"user": reader, "role": "read"}))
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
    assert_problem(api(url, "GET", f"/buckets/{b}/objects/x", tok(stranger)), 403)
    api(url, "GET", f"/buckets/{b}/objects", tok(reader))

    def events(token, **params):
        return api(url, "GET", "/audit", token, params=params)

    # the bucket's admin sees its events (written in batches: poll)
    def denial_listed():
        page = ok(events(tok(owner), bucket=b, decision="deny", since=since))
        return any(e["principal"] == stranger and e["action"] == "read" for e in page["events"])

    until(denial_listed, timeout=5)
    # the reader's request may have gone into the writer's next batch
    until(lambda: ok(events(tok(owner), bucket=b, user=reader))["events"], timeout=5)
    page = ok(events(tok(owner), bucket=b, user=reader))
    assert page["events"] and all(e["principal"] == reader and e["bucket"] == b for e in page["events"])
    assert all(e["allowed"] for e in page["events"])
    assert page["events"][0]["time"].endswith("Z") and page["events"][0]["request_id"]
    # the platform admin (by group) sees everything, page by page
    admin = tok(unique("ops"), "platform-admins")
    first = ok(events(admin, limit=1))
    assert len(first["events"]) == 1 and first["next_until"]
    second = ok(events(admin, limit=1, until=first["next_until"]))
    assert second["events"][0]["time"] <= first["events"][0]["time"]
    # nobody else
    assert_problem(events(tok(owner)), 403)
    assert_problem(events(tok(reader), bucket=b), 403)
    assert_problem(events(tok(owner), bucket=b, since="yesterday"), 400)
    assert_problem(events(tok(owner), bucket=b, decision="maybe"), 400)
