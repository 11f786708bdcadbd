"""Operations: health and readiness, Prometheus metrics, request ids in the logs, and a
graceful shutdown that lets an in-flight upload finish."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest
import requests

from conftest import SlowPut, files_under, s3_error, unique

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(server) -> list[tuple[str, dict, float]]:
    r = requests.get(server.endpoint + "/metrics", timeout=10)
    assert r.status_code == 200, r.text
    samples = []
    for line in r.text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, f"unparsable metrics line: {line!r}"
        labels = dict(_LABEL.findall(m.group(2) or ""))
        samples.append((m.group(1), labels, float(m.group(3))))
    return samples


def total(samples, name, **labels) -> float:
    return sum(v for n, ls, v in samples if n == name and all(ls.get(k) == want for k, want in labels.items()))


def has(samples, name) -> bool:
    return any(n == name for n, _, _ in samples)


def test_healthz_and_readyz(server):
    r = requests.get(server.endpoint + "/healthz", timeout=5)
    assert r.status_code == 200
    r = requests.get(server.endpoint + "/readyz", timeout=5)
    assert r.status_code == 200


def _wait_for(fn, timeout=2.0):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_metrics_count_requests_and_bytes(server, s3, bucket):
    before = scrape(server)
    for name in ("coffer_http_requests_total", "coffer_bytes_in_total", "coffer_bytes_out_total"):
        assert has(before, name), f"{name} missing from /metrics"

    put_before = total(before, "coffer_http_requests_total", operation="PutObject", status="200")
    get_before = total(before, "coffer_http_requests_total", operation="GetObject", status="200")
    miss_before = total(before, "coffer_http_requests_total", operation="GetObject", status="404")
    in_before = total(before, "coffer_bytes_in_total")
    out_before = total(before, "coffer_bytes_out_total")
    inf_before = total(before, "coffer_http_request_duration_seconds_bucket", le="+Inf")

    body = os.urandom(10_000)
    s3.put_object(Bucket=bucket, Key="m1", Body=body)
    s3.put_object(Bucket=bucket, Key="m2", Body=body)
    assert s3.get_object(Bucket=bucket, Key="m1")["Body"].read() == body
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="missing")

    def settled():
        after = scrape(server)
        ok = total(after, "coffer_http_requests_total", operation="GetObject", status="404") >= miss_before + 1
        return after if ok else None

    after = _wait_for(settled) or scrape(server)
    assert total(after, "coffer_http_requests_total", operation="PutObject", status="200") == put_before + 2
    assert total(after, "coffer_http_requests_total", operation="GetObject", status="200") == get_before + 1
    assert total(after, "coffer_http_requests_total", operation="GetObject", status="404") == miss_before + 1
    assert total(after, "coffer_bytes_in_total") >= in_before + 2 * len(body)
    assert total(after, "coffer_bytes_out_total") >= out_before + len(body)

    # the latency histogram: cumulative buckets ending in +Inf, one observation per request
    buckets = [(ls, v) for n, ls, v in after if n == "coffer_http_request_duration_seconds_bucket"]
    assert buckets, "coffer_http_request_duration_seconds_bucket missing from /metrics"
    assert all("le" in ls for ls, _ in buckets)
    assert total(after, "coffer_http_request_duration_seconds_bucket", le="+Inf") >= inf_before + 4
    series: dict[tuple, list[tuple[float, float]]] = {}
    for ls, v in buckets:
        key = tuple(sorted((k, x) for k, x in ls.items() if k != "le"))
        series.setdefault(key, []).append((float(ls["le"]), v))
    for key, points in series.items():
        points.sort()
        assert points[-1][0] == float("inf"), f"no +Inf bucket for {key}"
        values = [v for _, v in points]
        assert values == sorted(values), f"buckets not cumulative for {key}: {points}"
    put_series = [k for k in series if ("operation", "PutObject") in k]
    assert put_series, "no histogram series labelled operation=PutObject"


def _find_request_id(obj, rid) -> bool:
    if isinstance(obj, dict):
        if obj.get("request_id") == rid:
            return True
        return any(_find_request_id(v, rid) for v in obj.values())
    if isinstance(obj, list):
        return any(_find_request_id(v, rid) for v in obj)
    return False


def _logged(server, rid) -> bool:
    return any(_find_request_id(rec, rid) for rec in server.log_records())


def test_request_id_header_and_logs(server, s3, bucket):
    resp = s3.put_object(Bucket=bucket, Key="logged", Body=b"x")
    rid = resp["ResponseMetadata"]["HTTPHeaders"].get("x-amz-request-id")
    assert rid, "PutObject response has no x-amz-request-id"

    with s3_error("NoSuchKey", 404) as ei:
        s3.get_object(Bucket=bucket, Key="not-there")
    err_rid = ei.value.response["ResponseMetadata"]["HTTPHeaders"].get("x-amz-request-id")
    assert err_rid, "error response has no x-amz-request-id"
    assert err_rid != rid

    head = s3.head_object(Bucket=bucket, Key="logged")
    head_rid = head["ResponseMetadata"]["HTTPHeaders"].get("x-amz-request-id")
    assert head_rid and head_rid not in (rid, err_rid)

    for r in (rid, err_rid, head_rid):
        assert _wait_for(lambda: _logged(server, r), timeout=3.0), (
            f"request id {r} not found in a `request_id` field of the JSON logs"
        )


def test_graceful_shutdown_finishes_in_flight_put(own_server):
    srv = own_server
    client = srv.new_user()
    key = client.coffer_key
    b = unique("grace")
    client.create_bucket(Bucket=b)
    url = client.generate_presigned_url("put_object", Params={"Bucket": b, "Key": "slow"}, ExpiresIn=600)
    chunks = [bytes([65 + i]) * 65536 for i in range(5)]
    put = SlowPut(url, chunks, delay=0.3, signal_after=1)
    put.start()
    assert put.progress.wait(10)
    assert put.error is None, put.error
    time.sleep(0.1)
    srv.signal(signal.SIGTERM)
    put.join(30)
    assert not put.is_alive(), "the slow PUT did not finish"
    assert put.error is None, f"the in-flight PUT failed during graceful shutdown: {put.error!r}"
    assert put.status == 200, f"in-flight PUT got {put.status}: {put.body!r}"
    code = srv.wait(timeout=20)
    assert code == 0, f"coffer exited with {code} after SIGTERM"

    srv.start()
    client = srv.client(key["access_key_id"], key["secret_access_key"])
    assert client.get_object(Bucket=b, Key="slow")["Body"].read() == b"".join(chunks)
    assert files_under(srv.objects_dir / ".tmp") == {}


@pytest.mark.parametrize("own_server", ["postgres"], indirect=True)
def test_readyz_fails_when_the_database_is_gone(own_server):
    srv = own_server
    assert requests.get(srv.endpoint + "/readyz", timeout=5).status_code == 200
    srv.store.drop()  # DROP DATABASE … WITH (FORCE) under the running server
    deadline = time.monotonic() + 20
    status = 200
    slowest = 0.0
    while time.monotonic() < deadline:
        started = time.monotonic()
        status = requests.get(srv.endpoint + "/readyz", timeout=15).status_code
        slowest = max(slowest, time.monotonic() - started)
        if status != 200:
            break
        time.sleep(0.1)
    assert status >= 500, f"/readyz answered {status} with the metadata database gone"
    # a probe must answer within Kubernetes' default probe timeout of 1 s
    assert slowest < 1.0, f"/readyz took {slowest:.2f} s to answer"
    # liveness is not readiness: the process itself is fine
    assert requests.get(srv.endpoint + "/healthz", timeout=5).status_code == 200
