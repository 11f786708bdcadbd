"""The audit trail: every authorization decision is stored with the principal, action,
bucket, key, decision, rule, request id and source address, and listed by
`coffer admin audit list`."""

from __future__ import annotations

import time

from botocore.exceptions import ClientError

from conftest import unique


def stored(fn, timeout: float = 5.0):
    """Call fn until it finds something: the audit writer stores decisions in batches, a
    moment after the request (crates/gateway/src/audit.rs, `LINGER`)."""
    deadline = time.monotonic() + timeout
    while True:
        found = fn()
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(0.05)


def test_decisions_are_stored_and_listed(server, s3, bucket, make_user):
    s3.put_object(Bucket=bucket, Key="report.csv", Body=b"x")
    stranger = make_user()
    try:
        stranger.get_object(Bucket=bucket, Key="report.csv")
        raise AssertionError("the stranger must be refused")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "AccessDenied"
        request_id = e.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]

    def denied_event():
        events = server.admin("audit", "list", "--user", stranger.coffer_user, "--decision", "deny")
        return next((e for e in events if e["request_id"] == request_id), None)

    e = stored(denied_event)
    assert e is not None, f"no stored denial for request {request_id}"
    assert e["bucket"] == bucket
    assert e["key"] == "report.csv"
    assert e["action"] == "read"
    assert e["allowed"] is False
    assert e["rule"] == "no ownership and no grant (deny by default)"
    assert e["access_key_id"] == stranger.coffer_key["access_key_id"]
    assert e["source"].startswith("127.0.0.1:")

    allowed = stored(
        lambda: [x for x in server.admin("audit", "list", "--bucket", bucket, "--decision", "allow") if x["key"] == "report.csv"]
    )
    assert all(x["principal"] == s3.coffer_user for x in allowed)
    assert {x["action"] for x in allowed} >= {"write"}
    # filters: another bucket has none of these; --limit bounds the answer
    assert server.admin("audit", "list", "--bucket", unique("none")) == []
    assert len(server.admin("audit", "list", "--limit", "1")) == 1


def test_key_changes_by_the_operator_are_stored(server, make_user):
    """`coffer admin key create` and `key revoke` are in the audit trail, by "coffer admin"."""
    user = make_user()
    key_id = user.coffer_key["access_key_id"]
    server.admin("key", "revoke", key_id)
    events = [e for e in server.admin("audit", "list", "--user", "coffer admin") if e["key"] == key_id]
    assert [(e["action"], e["allowed"], e["bucket"]) for e in events] == [
        ("revoke-access-key", True, ""),
        ("create-access-key", True, ""),
    ], "newest first"
    assert events[1]["rule"] == f"the operator, for user {user.coffer_user}"
    assert events[0]["rule"] == "the operator"
