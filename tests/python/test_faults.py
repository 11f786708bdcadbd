"""Faults under load: the metadata store (a private PostgreSQL cluster) or a cloud tier
(moto, Azurite) stopped while clients keep working.

What must hold (docs/S3.md, "Failure behaviour"):
- while a dependency is down, every request that needs it answers 503 — S3
  `ServiceUnavailable`, a REST problem document — with `Retry-After`, within a bounded
  time; never a 500, never a hang, and the server keeps running;
- the metadata cache fails closed: within one second of the database going away, requests
  stop being served from it (a revocation must never outlive a second, DESIGN.md rule 4);
- `/readyz` says not ready;
- within 5 s of the dependency's return, requests succeed again.
"""

from __future__ import annotations

import os
import time

import pytest
import requests

import emulators
from conftest import CofferServer, Store, unique
from loadgen import RestLoad, S3Load, client, content, version_of
from pgcluster import ClusterStore, PrivateCluster

# Requests may still be served from the cache this long after the database went away:
# one revision poll (200 ms) plus its timeout (500 ms), with some slack for a loaded machine.
CACHE_WINDOW = 1.0
# The longest a request may take while a dependency is down.
MAX_DURATION_DB = 3.5  # the pool's connect timeout is 2 s
MAX_DURATION_TIER = 12.0  # connections refused: retries within ~2 s; at worst the 10 s retry budget
RECOVERY = 5.0
OUTAGE = 6.0
# /readyz gives each dependency 0.8 s; the rest is scheduling on a loaded 2-core machine
READYZ_BOUND = 2.5


def _readyz(srv) -> tuple[int, float]:
    t = time.monotonic()
    r = requests.get(srv.endpoint + "/readyz", timeout=10)
    return r.status_code, time.monotonic() - t


def _summary(records, t_down, t_up) -> str:
    during = [r for r in records if t_down <= r.start < t_up]
    after = [r for r in records if r.start >= t_up]
    first_ok = min((r.end for r in after if r.ok), default=None)
    served_from_cache = [r for r in during if r.ok and r.end < t_up]
    slowest = max((r.duration for r in during), default=0.0)
    text = (
        f"{len(records)} requests; during the outage {len(during)} "
        f"({len(served_from_cache)} succeeded, the last starting "
        f"{max((r.start for r in served_from_cache), default=t_down) - t_down:.2f}s in; "
        f"slowest answer {slowest:.2f}s)"
    )
    if first_ok is not None:
        text += f"; first success {first_ok - t_up:.2f}s after the return"
    return text


def _check_outage(records, t_down, t_up, max_duration, what):
    """Every answer: 2xx, or a 503 with Retry-After; the ones after the cache window, 503."""
    problems = []
    for r in records:
        if r.error is not None:
            problems.append(f"no HTTP answer: {r}")
        elif r.status is not None and r.status >= 500 and r.status != 503:
            problems.append(f"a {r.status}: {r}")
        elif r.status == 503 and not r.retry_after:
            problems.append(f"a 503 without Retry-After: {r}")
        elif r.status == 503 and r.code is not None and r.code not in ("ServiceUnavailable", "SlowDown", "503"):
            problems.append(f"a 503 with code {r.code}: {r}")
        elif not r.ok and r.status != 503:
            problems.append(f"unexpected answer: {r}")
        if t_down <= r.start < t_up and r.duration > max_duration:
            problems.append(f"took longer than {max_duration}s while {what} was down: {r}")
        if t_down + CACHE_WINDOW <= r.start and r.end < t_up and r.ok:
            problems.append(f"succeeded {r.start - t_down:.2f}s into the outage of {what}: {r}")
        if r.start < t_down and r.end < t_down and not r.ok:
            problems.append(f"failed before the outage: {r}")
        if r.start >= t_up + RECOVERY and not r.ok:
            problems.append(f"failed {r.start - t_up:.2f}s after {what} came back: {r}")
    assert not problems, f"{len(problems)} bad answers, e.g.:\n" + "\n".join(problems[:15])


@pytest.fixture
def private_pg():
    cluster = PrivateCluster()
    cluster.start()
    yield cluster
    cluster.remove()


def test_postgres_stopped_under_load(coffer_bin, private_pg, tmp_path):
    base = tmp_path
    config = base / "coffer.toml"
    config.write_text('[trusted_headers]\nproxies = ["127.0.0.1/32"]\n')
    srv = CofferServer(coffer_bin, ClusterStore(private_pg), base)
    srv.extra_env["COFFER_CONFIG"] = str(config)
    srv.start()
    try:
        owner = srv.new_user()
        user = owner.coffer_user
        key = owner.coffer_key
        bucket = unique("pgdown")
        owner.create_bucket(Bucket=bucket)
        t0 = time.monotonic()
        make = lambda: client(srv.endpoint, key["access_key_id"], key["secret_access_key"])  # noqa: E731
        load = S3Load(make, bucket, threads=6, t0=t0)
        load.seed()
        rest = RestLoad(srv.endpoint, user, bucket, list(load.state), t0)
        load.start()
        rest.start()
        time.sleep(2.0)
        assert _readyz(srv)[0] == 200

        private_pg.stop("immediate")
        t_down = time.monotonic() - t0
        time.sleep(1.5)
        status, took = _readyz(srv)
        assert status == 503, "/readyz still says ready with the database down"
        assert took < READYZ_BOUND, f"/readyz took {took:.2f}s"
        # a fresh client (nothing of it cached) is refused too
        with pytest.raises(Exception) as ei:
            make().list_buckets()
        assert getattr(ei.value, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode") == 503, ei.value
        time.sleep(max(0.0, t_down + OUTAGE - (time.monotonic() - t0)))
        assert srv.proc.poll() is None, f"coffer exited while the database was down\n{srv.describe_logs()}"

        private_pg.start()
        t_up = time.monotonic() - t0
        time.sleep(RECOVERY + 2.0)
        load.stop()
        rest.stop()
        assert _readyz(srv)[0] == 200
        assert srv.proc.poll() is None

        records = load.records + rest.records
        if os.environ.get("COFFER_FAULT_DEBUG"):
            print(f"\nt_down={t_down:.2f} t_up={t_up:.2f}")
            for r in sorted(records, key=lambda r: r.start):
                if t_down - 0.5 <= r.start <= t_up + 1:
                    print(r)
        print(f"\nPostgreSQL outage ({OUTAGE:.0f}s): " + _summary(records, t_down, t_up))
        assert not load.corrupt, load.corrupt[:5]
        _check_outage(load.records, t_down, t_up, MAX_DURATION_DB, "PostgreSQL")
        _check_outage(rest.records, t_down, t_up, MAX_DURATION_DB, "PostgreSQL")
        for r in rest.records:
            if r.status == 503:
                assert r.content_type == "application/problem+json", r
        assert any(r.status == 503 for r in load.records), "no request saw the outage"
        assert any(r.status == 503 for r in rest.records), "no REST request saw the outage"
        # every object still holds exactly one version that was written
        c = make()
        for k, st in load.state.items():
            body = c.get_object(Bucket=bucket, Key=k)["Body"].read()
            assert version_of(k, body) in st.allowed(), k
        logs = srv.log_text()
        assert "panicked" not in logs
    finally:
        srv.stop()


@pytest.fixture(params=["moto", "azurite"])
def tier_emulator(request):
    """An emulator of the test's own: killing it must not disturb the session's."""
    emu = emulators.Moto() if request.param == "moto" else emulators.Azurite()
    yield emu
    if emu.proc.poll() is None:
        emu.close()
    elif request.param == "azurite":
        emulators.shutil.rmtree(emu.dir, ignore_errors=True)


def test_tier_stopped_under_load(coffer_bin, tier_emulator, tmp_path):
    emu = tier_emulator
    config = tmp_path / "coffer.toml"
    config.write_text(emu.tier_toml())
    srv = CofferServer(coffer_bin, Store("sqlite", tmp_path), tmp_path)
    srv.extra_env.update(emu.env)
    srv.extra_env["COFFER_CONFIG"] = str(config)
    srv.start()
    try:
        owner = srv.new_user()
        key = owner.coffer_key
        bucket = unique("tierdown")
        owner.create_bucket(Bucket=bucket)
        t0 = time.monotonic()
        make = lambda: client(srv.endpoint, key["access_key_id"], key["secret_access_key"])  # noqa: E731
        load = S3Load(make, bucket, threads=6, t0=t0)
        load.seed()
        load.start()
        time.sleep(2.0)
        assert _readyz(srv)[0] == 200

        # moto is killed; Azurite is stopped with SIGTERM, as it saves its data only every
        # few seconds and on SIGTERM (its listener goes at once either way)
        emu.kill(graceful=emu.kind == "azurite")
        t_down = time.monotonic() - t0
        time.sleep(1.5)
        status, took = _readyz(srv)
        assert status == 503, f"/readyz still says ready with {emu.kind} down"
        assert took < READYZ_BOUND, f"/readyz took {took:.2f}s"
        time.sleep(max(0.0, t_down + OUTAGE - (time.monotonic() - t0)))
        assert srv.proc.poll() is None, f"coffer exited while {emu.kind} was down\n{srv.describe_logs()}"
        load.stop()
        t_stopped = time.monotonic() - t0

        emu.restart()
        t_up = time.monotonic() - t0
        if emu.kind == "moto":
            # moto keeps nothing: the tier's bucket and coffer's bucket marker are made again
            # (the objects are gone with it, so only new writes are checked below)
            emu.client().create_bucket(Bucket=emu.bucket)
            emu.client().put_object(Bucket=emu.bucket, Key=f".coffer-buckets/{bucket}", Body=b"")
        # recovery: within RECOVERY seconds, ready again and a new object goes in and out
        c = make()
        deadline = t_up + RECOVERY
        recovered_at = None
        last = None
        while time.monotonic() - t0 < deadline + 5:
            try:
                c.put_object(Bucket=bucket, Key="after/outage", Body=content("after/outage", 1))
                body = c.get_object(Bucket=bucket, Key="after/outage")["Body"].read()
                assert body == content("after/outage", 1)
                if _readyz(srv)[0] == 200:
                    recovered_at = time.monotonic() - t0
                    break
            except Exception as e:  # noqa: BLE001 - retried until the deadline
                last = e
            time.sleep(0.1)
        assert recovered_at is not None, f"{emu.kind} came back but coffer did not recover: {last}"
        print(
            f"\n{emu.kind} stopped ({OUTAGE:.0f}s): "
            + _summary(load.records, t_down, t_stopped)
            + f"; recovered {recovered_at - t_up:.2f}s after the restart"
        )
        assert recovered_at - t_up <= RECOVERY, f"recovered only after {recovered_at - t_up:.2f}s"

        assert not load.corrupt, load.corrupt[:5]
        # nothing after t_stopped was recorded: pass t_up = t_stopped so "after" is empty
        _check_outage(load.records, t_down, t_stopped, MAX_DURATION_TIER, emu.kind)
        assert any(r.status == 503 for r in load.records), "no request saw the outage"
        if emu.kind == "azurite":
            # same data: every object holds one version that was written
            for k, st in load.state.items():
                body = c.get_object(Bucket=bucket, Key=k)["Body"].read()
                assert version_of(k, body) in st.allowed(), k
        assert srv.proc.poll() is None
        assert "panicked" not in srv.log_text()
    finally:
        srv.stop()


if os.environ.get("COFFER_TEST_TIER"):
    # these tests pick their own stores and tiers
    pytestmark = pytest.mark.skip(reason="fault tests run once, not per tier")
