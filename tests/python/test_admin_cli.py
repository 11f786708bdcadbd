"""`coffer admin --json …`: the JSON shapes and the error convention of the admin CLI."""

from __future__ import annotations

import time

from conftest import s3_error, unique


def test_user_create_list_delete(server):
    name = unique("cli-user")
    before = time.time()
    u = server.admin("user", "create", name)
    assert u["name"] == name
    assert u["groups"] == []
    assert u["clearance"] == ["unclassified"]
    assert u["is_admin"] is False
    assert isinstance(u["created_at"], int) and abs(u["created_at"] - before) < 120

    g = server.admin(
        "user", "create", name + "-g", "--group", "team-a", "--group", "team-b", "--clearance", "unclassified,protected-b"
    )
    assert sorted(g["groups"]) == ["team-a", "team-b"]
    assert sorted(g["clearance"]) == ["protected-b", "unclassified"]

    users = {x["name"]: x for x in server.admin("user", "list")}
    assert name in users and name + "-g" in users
    assert users["admin"]["is_admin"] is True

    assert server.admin("user", "delete", name + "-g") == {"deleted": name + "-g"}
    assert name + "-g" not in {x["name"] for x in server.admin("user", "list")}


def test_errors_exit_1_with_error_prefix(server):
    name = unique("dup")
    server.admin("user", "create", name)
    server.admin_fails("user", "create", name)
    server.admin_fails("user", "delete", unique("nobody"))
    server.admin_fails("bucket", "create", unique("b"), "--owner", unique("nobody"))
    server.admin_fails("bucket", "create", "Bad_Name", "--owner", name)
    server.admin_fails("key", "revoke", "AKNOSUCHKEY000000000")
    server.admin_fails("grant", "add", "--bucket", unique("nobucket"), "--user", name, "--role", "read")
    server.admin_fails("explain", "--user", name, "--bucket", unique("nobucket"), "--action", "read")


def test_bucket_create_list_delete(server):
    owner = unique("bo")
    server.admin("user", "create", owner, "--clearance", "unclassified,protected-b")
    name = unique("clib")
    b = server.admin("bucket", "create", name, "--owner", owner)
    assert b["name"] == name and b["owner"] == owner
    assert b["tier"] == "standard" and b["classification"] == "unclassified"
    assert isinstance(b["created_at"], int)
    pb = server.admin("bucket", "create", name + "-pb", "--owner", owner, "--classification", "protected-b")
    assert pb["classification"] == "protected-b"
    listed = {x["name"]: x for x in server.admin("bucket", "list")}
    assert listed[name]["owner"] == owner and listed[name + "-pb"]["classification"] == "protected-b"
    assert server.admin("bucket", "delete", name) == {"deleted": name}
    assert name not in {x["name"] for x in server.admin("bucket", "list")}
    # a user who owns buckets cannot be deleted
    server.admin_fails("user", "delete", owner)


def test_grants(server):
    owner, user = unique("go"), unique("gu")
    server.admin("user", "create", owner)
    server.admin("user", "create", user)
    b = unique("gb")
    server.admin("bucket", "create", b, "--owner", owner)
    g = server.admin("grant", "add", "--bucket", b, "--user", user, "--role", "read")
    assert g["bucket"] == b and g["grantee"] == {"kind": "user", "name": user} and g["role"] == "read"
    assert isinstance(g["created_at"], int)
    gg = server.admin("grant", "add", "--bucket", b, "--group", "auditors", "--role", "write")
    assert gg["grantee"] == {"kind": "group", "name": "auditors"} and gg["role"] == "write"
    # re-granting replaces the role
    server.admin("grant", "add", "--bucket", b, "--user", user, "--role", "admin")
    rows = server.admin("grant", "list", "--bucket", b)
    assert sorted((r["grantee"]["kind"], r["grantee"]["name"], r["role"]) for r in rows) == [
        ("group", "auditors", "write"),
        ("user", user, "admin"),
    ]
    assert any(r["bucket"] == b for r in server.admin("grant", "list"))
    assert server.admin("grant", "remove", "--bucket", b, "--user", user) == {"removed": True}
    server.admin_fails("grant", "remove", "--bucket", b, "--user", user)
    ex = server.admin("explain", "--user", user, "--bucket", b, "--action", "read")
    assert ex["allowed"] is False and ex["rule"]["rule"] == "no-grant"


def test_keys_never_show_secrets(server):
    user = unique("ku")
    server.admin("user", "create", user)
    b = unique("kb")
    server.admin("bucket", "create", b, "--owner", user)
    k1 = server.admin("key", "create", "--user", user)
    assert k1["user"] == user and k1["read_only"] is False and k1["buckets"] is None and k1["expires_at"] is None
    assert k1["access_key_id"] and len(k1["secret_access_key"]) >= 20
    k2 = server.admin("key", "create", "--user", user, "--read-only", "--bucket", b, "--expires-in", "7d")
    assert k2["read_only"] is True and k2["buckets"] == [b]
    assert abs(k2["expires_at"] - (time.time() + 7 * 86400)) < 120
    assert k1["access_key_id"] != k2["access_key_id"]

    keys = server.admin("key", "list", "--user", user)
    assert sorted(k["access_key_id"] for k in keys) == sorted([k1["access_key_id"], k2["access_key_id"]])
    everything = server.admin_raw("key", "list").stdout
    for k in (k1, k2):
        assert k["secret_access_key"] not in everything
    for row in keys:
        assert not [f for f in row if "secret" in f.lower()], row

    assert server.admin("key", "revoke", k1["access_key_id"]) == {"revoked": k1["access_key_id"]}
    c = server.client(k1["access_key_id"], k1["secret_access_key"])
    with s3_error("InvalidAccessKeyId", 403):
        c.list_buckets()


def test_bootstrap_admin_key_works(server, admin_s3):
    b = unique("boot")
    admin_s3.create_bucket(Bucket=b)
    assert b in {x["Name"] for x in admin_s3.list_buckets()["Buckets"]}
    rows = [x for x in server.admin("bucket", "list") if x["name"] == b]
    assert rows and rows[0]["owner"] == "admin"
