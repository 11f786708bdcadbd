"""Rego policies for externally governed ("FDI") buckets: the policy gives group
`fdi-readers` read and group `fdi-writers` write on `fdi-census`; everyone else is denied;
the built-in clearance check still comes first; a change to the policy file is picked up
without a restart; `coffer admin explain` shows the verdict. Both stores."""

from __future__ import annotations

import time

import pytest

from conftest import STORES, configured_server, eventually, s3_error, unique

POLICY_V1 = """
package coffer

import rego.v1

roles := {"fdi-readers": "read", "fdi-writers": "write"}

# The highest role any of the caller's groups has on a governed bucket.
granted contains roles[g] if {
    some g in input.principal.groups
    roles[g]
    input.bucket.name in data.fdi.buckets
}

decision := {"allow": true, "role": "write"} if "write" in granted
else := {"allow": true, "role": "read"} if "read" in granted
else := {"allow": false}
"""

POLICY_V2 = POLICY_V1.replace('"fdi-readers": "read", ', '"fdi-readers": "read", "auditors": "read", ')


@pytest.fixture(scope="module", params=STORES)
def governed(request, coffer_bin, tmp_path_factory):
    base = tmp_path_factory.mktemp(f"coffer-policy-{request.param}")
    pdir = base / "policy"
    pdir.mkdir()
    (pdir / "fdi.rego").write_text(POLICY_V1)
    (pdir / "data.json").write_text('{"fdi": {"buckets": ["fdi-census", "fdi-health"]}}')
    toml = f'[policy]\npaths = ["{pdir}"]\nbuckets = ["fdi-*"]\n'
    for srv in configured_server(coffer_bin, request.param, base, toml):
        srv.policy_dir = pdir
        owner = srv.create_user(unique("steward"))["name"]
        srv.admin("bucket", "create", "fdi-census", "--owner", owner)
        srv.admin("bucket", "create", "fdi-health", "--owner", owner, "--classification", "protected-b")
        yield srv


def test_readers_read_writers_write_everyone_else_is_denied(governed):
    reader = governed.new_user(unique("r"), groups=["fdi-readers"])
    writer = governed.new_user(unique("w"), groups=["fdi-writers"])
    other = governed.new_user(unique("o"), groups=["analysts"])

    writer.put_object(Bucket="fdi-census", Key="2026/pop.csv", Body=b"region,pop\n")
    assert writer.get_object(Bucket="fdi-census", Key="2026/pop.csv")["Body"].read() == b"region,pop\n"
    # RO
    assert reader.get_object(Bucket="fdi-census", Key="2026/pop.csv")["Body"].read() == b"region,pop\n"
    assert [o["Key"] for o in reader.list_objects_v2(Bucket="fdi-census")["Contents"]] == ["2026/pop.csv"]
    with s3_error("AccessDenied", 403):
        reader.put_object(Bucket="fdi-census", Key="x", Body=b"no")
    with s3_error("AccessDenied", 403):
        reader.delete_object(Bucket="fdi-census", Key="2026/pop.csv")
    # RW, but not admin: the policy gives write at most
    with s3_error("AccessDenied", 403):
        writer.delete_bucket(Bucket="fdi-census")
    # everyone else
    with s3_error("AccessDenied", 403):
        other.get_object(Bucket="fdi-census", Key="2026/pop.csv")
    with s3_error("AccessDenied", 403):
        other.list_objects_v2(Bucket="fdi-census")
    assert "fdi-census" not in [b["Name"] for b in other.list_buckets()["Buckets"]]
    assert "fdi-census" in [b["Name"] for b in reader.list_buckets()["Buckets"]]
    # grants do not apply to a governed bucket: the policy decides
    governed.admin("grant", "add", "--bucket", "fdi-census", "--user", other.coffer_user, "--role", "admin")
    time.sleep(0.6)
    with s3_error("AccessDenied", 403):
        other.get_object(Bucket="fdi-census", Key="2026/pop.csv")


def test_built_in_clearance_comes_first(governed):
    writer = governed.new_user(unique("w"), groups=["fdi-writers"])
    with s3_error("AccessDenied", 403):  # protected-b: the policy would say write, the clearance says no
        writer.put_object(Bucket="fdi-health", Key="x", Body=b"x")
    cleared = governed.new_user(unique("wc"), groups=["fdi-writers"], clearance=["unclassified", "protected-b"])
    cleared.put_object(Bucket="fdi-health", Key="x", Body=b"x")
    d = governed.admin("explain", "--user", writer.coffer_user, "--bucket", "fdi-health", "--action", "write")
    assert d["allowed"] is False and "clearance" in d["reason"]


def test_explain_shows_the_policys_verdict(governed):
    reader = governed.create_user(unique("r"), groups=["fdi-readers"])["name"]
    other = governed.create_user(unique("o"))["name"]
    d = governed.admin("explain", "--user", reader, "--bucket", "fdi-census", "--action", "read")
    assert d == {"allowed": True, "rule": {"rule": "policy", "role": "read"}, "reason": "the bucket's policy gives the role read"}
    d = governed.admin("explain", "--user", reader, "--bucket", "fdi-census", "--action", "write")
    assert d["allowed"] is False and d["reason"] == "the effective role read is below the required write"
    d = governed.admin("explain", "--user", other, "--bucket", "fdi-census", "--action", "read")
    assert d["allowed"] is False and d["reason"] == "the bucket's policy gives no role"


def test_a_policy_change_is_picked_up_without_a_restart(governed):
    auditor = governed.new_user(unique("a"), groups=["auditors"])
    with s3_error("AccessDenied", 403):
        auditor.list_objects_v2(Bucket="fdi-census")
    runs = governed.runs
    # a ConfigMap update: the new file replaces the old one
    new = governed.policy_dir / "fdi.rego.new"
    new.write_text(POLICY_V2)
    new.replace(governed.policy_dir / "fdi.rego")
    eventually(lambda: auditor.list_objects_v2(Bucket="fdi-census"), timeout=5)
    assert governed.runs == runs and governed.proc.poll() is None  # the same process
    # a broken policy is refused; the last good one stays in force
    (governed.policy_dir / "broken.rego").write_text("package coffer\nthis is not rego")
    time.sleep(1.5)
    auditor.list_objects_v2(Bucket="fdi-census")
    governed.wait_records(
        lambda records: any(
            r.get("message") == "the changed policy is invalid; the last policy stays in force" for r in records
        )
    )
    (governed.policy_dir / "broken.rego").unlink()
