"""What tiers allow (classifications, read-only) and the read-only endpoint: every write
refused with AccessDenied, reads served — for read-only mounts. Both stores."""

from __future__ import annotations

import pytest
import requests

from conftest import STORES, configured_server, eventually, free_port, s3_client, s3_error, unique


@pytest.fixture(scope="module", params=STORES)
def tiered(request, coffer_bin, tmp_path_factory):
    base = tmp_path_factory.mktemp(f"coffer-tiers-{request.param}")
    ro_port = free_port()
    toml = (
        f'read_only_listen = "127.0.0.1:{ro_port}"\n'
        "[tiers.standard]\n"
        'kind = "filesystem"\n'
        'path = "objects"\n'
        "[tiers.premium]\n"
        'kind = "filesystem"\n'
        'path = "premium"\n'
        'classifications = ["protected-b"]\n'
        "[tiers.archive]\n"
        'kind = "filesystem"\n'
        'path = "archive"\n'
        "read_only = true\n"
    )
    for srv in configured_server(coffer_bin, request.param, base, toml):
        srv.read_only_endpoint = f"http://127.0.0.1:{ro_port}"
        yield srv


def test_the_read_only_endpoint_refuses_every_write(tiered):
    user = tiered.new_user(unique("ro"))
    b = unique("rob")
    user.create_bucket(Bucket=b)
    user.put_object(Bucket=b, Key="k", Body=b"data")
    key = user.coffer_key
    ro = s3_client(tiered.read_only_endpoint, key["access_key_id"], key["secret_access_key"])
    assert ro.get_object(Bucket=b, Key="k")["Body"].read() == b"data"
    assert [o["Key"] for o in ro.list_objects_v2(Bucket=b)["Contents"]] == ["k"]
    with s3_error("AccessDenied", 403):
        ro.put_object(Bucket=b, Key="k2", Body=b"x")
    with s3_error("AccessDenied", 403):
        ro.delete_object(Bucket=b, Key="k")
    with s3_error("AccessDenied", 403):
        ro.copy_object(Bucket=b, Key="k3", CopySource={"Bucket": b, "Key": "k"})
    with s3_error("AccessDenied", 403):
        ro.create_multipart_upload(Bucket=b, Key="mp")
    with s3_error("AccessDenied", 403):
        ro.create_bucket(Bucket=unique("nob"))
    with s3_error("AccessDenied", 403):
        ro.delete_bucket(Bucket=b)
    assert user.get_object(Bucket=b, Key="k")["Body"].read() == b"data"  # nothing changed
    # the same through the REST API on that listener
    from conftest import sign_headers

    url = f"{tiered.read_only_endpoint}/api/v1/buckets/{b}/objects/k"
    h = sign_headers("GET", url, key["access_key_id"], key["secret_access_key"])
    assert requests.get(url, headers=h, timeout=10).content == b"data"
    h = sign_headers("PUT", url, key["access_key_id"], key["secret_access_key"], body=b"new")
    r = requests.put(url, headers=h, data=b"new", timeout=10)
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    # the decision says why
    def denied(records: list[dict]) -> list[dict]:
        return [
            e for e in records
            if e.get("message") == "authorization decision" and e.get("bucket") == b and e.get("allowed") is False
        ]

    tiered.wait_records(lambda records: any(e.get("rule") == "this endpoint is read-only" for e in denied(records)))


def test_tiers_hold_only_their_classifications(tiered):
    lead = tiered.create_user(unique("lead"), clearance=["unclassified", "protected-b"])["name"]
    client = tiered.key_client(lead)
    with s3_error("AccessDenied", 403):  # user buckets are unclassified; premium holds protected-b only
        client.create_bucket(Bucket=unique("pre"), CreateBucketConfiguration={"LocationConstraint": "premium"})
    pb = unique("pb")
    tiered.admin("bucket", "create", pb, "--owner", lead, "--tier", "premium", "--classification", "protected-b")
    msg = tiered.admin_fails("bucket", "create", unique("x"), "--owner", lead, "--tier", "premium")
    assert "does not hold unclassified" in msg
    eventually(lambda: client.put_object(Bucket=pb, Key="k", Body=b"pb data"))
    assert client.get_bucket_location(Bucket=pb)["LocationConstraint"] == "premium"


def test_a_read_only_tier_serves_reads_only(tiered):
    owner = tiered.create_user(unique("arc"))["name"]
    client = tiered.key_client(owner)
    with s3_error("AccessDenied", 403):
        client.create_bucket(Bucket=unique("arcb"), CreateBucketConfiguration={"LocationConstraint": "archive"})
    b = unique("arcb")
    tiered.admin("bucket", "create", b, "--owner", owner, "--tier", "archive")
    # data placed there by its governor (here: straight onto the tier's directory)
    d = tiered.data_dir / "archive"
    assert d.exists()
    with s3_error("AccessDenied", 403):
        client.put_object(Bucket=b, Key="k", Body=b"x")
    assert client.list_objects_v2(Bucket=b)["KeyCount"] == 0
    explain = tiered.admin("explain", "--user", owner, "--bucket", b, "--action", "write")
    assert explain["allowed"] is False and explain["reason"] == "tier archive is read-only"
    assert tiered.admin("explain", "--user", owner, "--bucket", b, "--action", "read")["allowed"] is True
