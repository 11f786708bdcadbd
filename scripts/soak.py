#!/usr/bin/env python3
"""Soak test: many concurrent S3 clients on a mixed workload, every byte checked.

    python3 scripts/soak.py --duration 600 --clients 64                 # SQLite, its own server
    python3 scripts/soak.py --duration 600 --clients 64 --database-url postgres://…/db
    python3 scripts/soak.py --endpoint http://127.0.0.1:9000 --access-key … --secret-key … [--pid N]

Without --endpoint it starts `coffer serve` (--coffer-bin, else $COFFER_BIN, else the
release build, else the debug build under $CARGO_TARGET_DIR or target/) on a free port with
a fresh data directory, and a user and key made with `coffer admin`.

The workload, per client (a thread; the clients are spread over --procs processes so that
Python's GIL is not the bottleneck on small machines): PUT of random sizes 0–4 MiB with
Content-MD5 (new keys and overwrites), GET whole and ranged, HEAD, LIST with a prefix and a
delimiter, DELETE, CopyObject, multipart uploads of 6–14 MiB, and GETs of a shared read-only
set. Each client owns its key space, so it knows what every one of its keys must hold (the
content is deterministic per key, version and size); each read is compared with it, each
listing with the keys it must show. At the end every client reads back all its keys.

The summary: operations by type (count, p50 and p99 latency), errors (with samples), bytes
sent and received, verification results, and the server's resident memory (start, peak,
end). The exit code is 1 when anything failed or did not verify.
"""

from __future__ import annotations

import argparse
import base64
import collections
import hashlib
import json
import multiprocessing
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError

MiB = 1024 * 1024
REPO = Path(__file__).resolve().parents[1]
SHARED_OBJECTS = 16
KEYS_PER_CLIENT = 24


def content(key: str, version: int, size: int) -> bytes:
    """The bytes of `version` of `key` at `size`: deterministic, so never stored here."""
    return random.Random(f"{key}|{version}|{size}").randbytes(size)


def md5_hex(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def s3(endpoint: str, access_key: str, secret_key: str, session=None):
    """A client that never retries. Clients made from one session share its parsed service
    models: making 32 of them takes a moment instead of many seconds."""
    return (session or boto3.session.Session()).client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            # no retries: every error the server answers is counted
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=10,
            read_timeout=120,
            max_pool_connections=4,
        ),
    )


class Stats:
    def __init__(self):
        self.ops: dict[str, list[float]] = collections.defaultdict(list)
        self.errors: collections.Counter = collections.Counter()
        self.error_samples: list[str] = []
        self.bytes_up = 0
        self.bytes_down = 0
        self.verified = 0
        self.mismatches: list[str] = []
        self.final_checked = 0
        self.final_reconnects = 0
        self.final_bad: list[str] = []
        self.elapsed = 0.0

    def error(self, op: str, e: BaseException) -> None:
        if isinstance(e, ClientError):
            what = f"{e.response.get('ResponseMetadata', {}).get('HTTPStatusCode')} {e.response.get('Error', {}).get('Code')}"
        else:
            what = type(e).__name__
        self.errors[f"{op}: {what}"] += 1
        if len(self.error_samples) < 20:
            self.error_samples.append(f"{op}: {e}"[:400])

    def mismatch(self, msg: str) -> None:
        if len(self.mismatches) < 50:
            self.mismatches.append(msg)
        else:
            self.mismatches[-1] = f"… and more ({msg})"

    def as_dict(self) -> dict:
        return {
            "ops": {k: v for k, v in self.ops.items()},
            "errors": dict(self.errors),
            "error_samples": self.error_samples,
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
            "verified": self.verified,
            "mismatches": self.mismatches,
            "final_checked": self.final_checked,
            "final_reconnects": self.final_reconnects,
            "final_bad": self.final_bad,
            "elapsed": self.elapsed,
        }


class Client:
    """One client: its keys `c<id>/<dir>/<n>` and what each must hold."""

    def __init__(self, cid: int, args: dict, stats: Stats, lock: threading.Lock, session):
        self.cid = cid
        self.a = args
        self.c = s3(args["endpoint"], args["access_key"], args["secret_key"], session)
        self.bucket = args["bucket"]
        self.rng = random.Random(args["seed"] * 1000 + cid)
        self.stats = stats
        self.lock = lock
        self.prefix = f"c{cid:03d}/"
        self.keys = [f"{self.prefix}d{n % 3}/k{n:02d}" for n in range(KEYS_PER_CLIENT)]
        # key → (source key, version, size, etag or None for multipart): what it holds
        self.expected: dict[str, tuple[str, int, int, str | None]] = {}
        self.version = 0

    # -- bookkeeping --------------------------------------------------------------------

    def timed(self, op: str, fn):
        t = time.monotonic()
        try:
            out = fn()
        except Exception as e:  # noqa: BLE001 - counted
            with self.lock:
                self.stats.error(op, e)
            return None
        with self.lock:
            self.stats.ops[op].append(time.monotonic() - t)
        return out

    def check(self, ok: bool, msg: str) -> None:
        with self.lock:
            if ok:
                self.stats.verified += 1
            else:
                self.stats.mismatch(msg)

    def bytes(self, up: int = 0, down: int = 0) -> None:
        with self.lock:
            self.stats.bytes_up += up
            self.stats.bytes_down += down

    def expected_bytes(self, key: str) -> bytes:
        src, v, size, _ = self.expected[key]
        return content(src, v, size)

    def size(self) -> int:
        r = self.rng.random()
        if r < 0.05:
            return 0
        if r < 0.5:
            return self.rng.randrange(1, 64 * 1024)
        if r < 0.85:
            return self.rng.randrange(64 * 1024, MiB)
        return self.rng.randrange(MiB, 4 * MiB + 1)

    # -- operations ---------------------------------------------------------------------

    def put(self) -> None:
        key = self.rng.choice(self.keys)
        self.version += 1
        size = self.size()
        body = content(key, self.version, size)
        md5 = hashlib.md5(body)
        r = self.timed(
            "put",
            lambda: self.c.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentMD5=base64.b64encode(md5.digest()).decode()
            ),
        )
        if r is not None:
            self.bytes(up=size)
            etag = r.get("ETag", "").strip('"')
            self.check(etag == md5.hexdigest(), f"{key}: PUT of {size} bytes answered ETag {etag!r}")
            self.expected[key] = (key, self.version, size, md5.hexdigest())

    def multipart(self) -> None:
        key = self.rng.choice(self.keys)
        self.version += 1
        size = self.rng.randrange(6 * MiB, 14 * MiB)
        body = content(key, self.version, size)
        part = 5 * MiB

        def run():
            up = self.c.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
            parts = []
            try:
                for n, off in enumerate(range(0, size, part), start=1):
                    chunk = body[off : off + part]
                    e = self.c.upload_part(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=up,
                        PartNumber=n,
                        Body=chunk,
                        ContentMD5=base64.b64encode(hashlib.md5(chunk).digest()).decode(),
                    )["ETag"]
                    parts.append({"PartNumber": n, "ETag": e})
                return self.c.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=up, MultipartUpload={"Parts": parts}
                )
            except Exception:
                self.c.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=up)
                raise

        if self.timed("multipart", run) is not None:
            self.bytes(up=size)
            self.expected[key] = (key, self.version, size, None)

    def get(self) -> None:
        key = self.rng.choice(self.keys)
        if key not in self.expected:
            try:
                self.c.get_object(Bucket=self.bucket, Key=key)
                self.check(False, f"{key}: GET found an object that was deleted or never written")
            except ClientError as e:
                self.check(e.response["Error"]["Code"] == "NoSuchKey", f"{key}: GET of a missing key: {e}")
            return
        r = self.timed("get", lambda: self.c.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        if r is not None:
            self.bytes(down=len(r))
            exp = self.expected_bytes(key)
            self.check(r == exp, f"{key}: GET returned {len(r)} bytes (md5 {md5_hex(r)}), expected {len(exp)} ({md5_hex(exp)})")

    def get_range(self) -> None:
        have = [k for k in self.keys if k in self.expected and self.expected[k][2] > 0]
        if not have:
            return self.put()
        key = self.rng.choice(have)
        size = self.expected[key][2]
        start = self.rng.randrange(size)
        end = min(size - 1, start + self.rng.randrange(1, 256 * 1024))
        r = self.timed(
            "get_range", lambda: self.c.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end}")["Body"].read()
        )
        if r is not None:
            self.bytes(down=len(r))
            self.check(r == self.expected_bytes(key)[start : end + 1], f"{key}: range {start}-{end} differs")

    def head(self) -> None:
        have = [k for k in self.keys if k in self.expected]
        if not have:
            return self.put()
        key = self.rng.choice(have)
        r = self.timed("head", lambda: self.c.head_object(Bucket=self.bucket, Key=key))
        if r is not None:
            _, _, size, etag = self.expected[key]
            got = r.get("ETag", "").strip('"')
            ok = r.get("ContentLength") == size and (etag is None or got == etag)
            self.check(ok, f"{key}: HEAD says {r.get('ContentLength')} bytes, ETag {got!r}; expected {size}, {etag}")

    def list(self) -> None:
        sub = self.rng.choice(["", "d0/", "d1/", "d2/"])
        prefix = self.prefix + sub

        def run():
            out, dirs = {}, set()
            for page in self.c.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, Delimiter="/", PaginationConfig={"PageSize": 7}
            ):
                out.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
                dirs.update(p["Prefix"] for p in page.get("CommonPrefixes", []))
            return out, dirs

        r = self.timed("list", run)
        if r is None:
            return
        listed, dirs = r
        if sub:
            want = {k: v[2] for k, v in self.expected.items() if k.startswith(prefix)}
            self.check(listed == want and not dirs, f"LIST {prefix}: {sorted(listed)} vs expected {sorted(want)}")
        else:
            want_dirs = {k[: len(prefix) + 3] for k in self.expected}
            self.check(not listed and dirs == want_dirs, f"LIST {prefix} /: {sorted(dirs)} vs {sorted(want_dirs)}")

    def delete(self) -> None:
        key = self.rng.choice(self.keys)
        if self.timed("delete", lambda: self.c.delete_object(Bucket=self.bucket, Key=key)) is not None:
            self.expected.pop(key, None)

    def copy(self) -> None:
        dst = self.rng.choice(self.keys)
        own = [k for k in self.keys if k in self.expected and k != dst]
        if own and self.rng.random() < 0.7:
            src = self.rng.choice(own)
            holds = self.expected[src]
        else:
            n = self.rng.randrange(SHARED_OBJECTS)
            src = f"shared/{n:02d}"
            holds = self.a["shared"][src]
        r = self.timed(
            "copy", lambda: self.c.copy_object(Bucket=self.bucket, Key=dst, CopySource={"Bucket": self.bucket, "Key": src})
        )
        if r is not None:
            s, v, size, _ = holds
            etag = r["CopyObjectResult"]["ETag"].strip('"')
            self.expected[dst] = (s, v, size, etag)
            self.check(etag == md5_hex(content(s, v, size)), f"{dst}: copy of {src} answered ETag {etag}")

    def get_shared(self) -> None:
        n = self.rng.randrange(SHARED_OBJECTS)
        key = f"shared/{n:02d}"
        r = self.timed("get_shared", lambda: self.c.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        if r is not None:
            self.bytes(down=len(r))
            s, v, size, _ = self.a["shared"][key]
            self.check(r == content(s, v, size), f"{key}: the shared object differs")

    OPS = [
        ("put", 24), ("get", 15), ("get_range", 10), ("head", 10), ("list", 8), ("delete", 7),
        ("copy", 8), ("multipart", 3), ("get_shared", 15),
    ]

    def run(self, deadline: float) -> None:
        names = [n for n, _ in self.OPS]
        weights = [w for _, w in self.OPS]
        while time.monotonic() < deadline:
            op = self.rng.choices(names, weights)[0]
            try:
                getattr(self, op)()
            except Exception as e:  # noqa: BLE001 - a check that could not run: an error
                with self.lock:
                    self.stats.error(op, e)

    def check_key(self, key: str) -> bool:
        """Is `key` present with exactly its expected bytes, or absent if it should be?"""
        if key in self.expected:
            body = self.c.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            return body == self.expected_bytes(key)
        try:
            self.c.head_object(Bucket=self.bucket, Key=key)
            return False
        except ClientError as e:
            return e.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    def final_check(self) -> None:
        """Every key of this client: present with exactly its bytes, or absent."""
        for key in self.keys:
            try:
                try:
                    ok = self.check_key(key)
                except ConnectionClosedError:
                    # This client's pooled connection sat idle while the others checked their
                    # keys; the server closes an idle keep-alive connection (after its header
                    # timeout), and a request sent at that moment meets the close. Any HTTP
                    # client retries that on a new connection; so does this read-only check,
                    # once. The load phase itself never retries.
                    with self.lock:
                        self.stats.final_reconnects += 1
                    ok = self.check_key(key)
            except Exception as e:  # noqa: BLE001 - counted as bad
                ok = False
                key = f"{key} ({e})"
            with self.lock:
                self.stats.final_checked += 1
                if not ok:
                    self.stats.final_bad.append(key)


def _process(args: dict, cids: list[int], out) -> None:
    """One process: its clients as threads until the deadline, then the final check."""
    stats = Stats()
    lock = threading.Lock()
    session = boto3.session.Session()
    clients = [Client(cid, args, stats, lock, session) for cid in cids]
    # the load lasts `duration` from when this process's clients are ready
    started = time.monotonic()
    threads = [threading.Thread(target=c.run, args=(started + args["duration"],)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats.elapsed = time.monotonic() - started
    checks = [threading.Thread(target=c.final_check) for c in clients]
    for t in checks:
        t.start()
    for t in checks:
        t.join()
    out.put(stats.as_dict())


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def run(endpoint: str, access_key: str, secret_key: str, duration: float, clients: int, procs: int = 2,
        pid: int | None = None, seed: int = 1, log=print) -> dict:
    """Run the soak against a server; return the summary (see `report`)."""
    c = s3(endpoint, access_key, secret_key)
    bucket = f"soak-{uuid.uuid4().hex[:10]}"
    c.create_bucket(Bucket=bucket)
    shared = {}
    rng = random.Random(seed)
    for n in range(SHARED_OBJECTS):
        key = f"shared/{n:02d}"
        size = rng.randrange(0, 2 * MiB)
        c.put_object(Bucket=bucket, Key=key, Body=content(key, 1, size))
        shared[key] = (key, 1, size, None)
    start = time.monotonic()
    args = {
        "endpoint": endpoint, "access_key": access_key, "secret_key": secret_key, "bucket": bucket,
        "shared": shared, "seed": seed, "duration": duration,
    }
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = max(1, min(procs, clients))
    workers = [ctx.Process(target=_process, args=(args, list(range(p, clients, procs)), out)) for p in range(procs)]
    rss = [rss_kib(pid)] if pid else []
    for w in workers:
        w.start()
    results = []
    last_log = start
    while len(results) < len(workers):
        try:
            results.append(out.get(timeout=5))
        except Exception:  # noqa: BLE001 - queue.Empty: sample and wait on
            pass
        if pid:
            rss.append(rss_kib(pid))
        if time.monotonic() - last_log >= 60:
            last_log = time.monotonic()
            log(f"  … {last_log - start:.0f}s, server RSS {rss[-1] if rss else '?'} KiB")
        if time.monotonic() > start + duration + 900:
            raise SystemExit("the clients did not finish within 15 minutes of the deadline")
    for w in workers:
        w.join(60)
    # the load phase as the client processes timed it (their final read-back excluded)
    elapsed = max((r["elapsed"] for r in results), default=time.monotonic() - start)
    ops: dict[str, list[float]] = collections.defaultdict(list)
    errors: collections.Counter = collections.Counter()
    summary = {"duration": elapsed, "clients": clients, "procs": procs, "bytes_up": 0, "bytes_down": 0,
               "verified": 0, "mismatches": [], "final_checked": 0, "final_reconnects": 0, "final_bad": [],
               "error_samples": []}
    for r in results:
        for k, v in r["ops"].items():
            ops[k] += v
        errors.update(r["errors"])
        for f in ("bytes_up", "bytes_down", "verified", "final_checked", "final_reconnects"):
            summary[f] += r[f]
        for f in ("mismatches", "final_bad", "error_samples"):
            summary[f] += r[f]

    def pct(xs, p):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else 0.0

    summary["ops"] = {k: {"count": len(v), "p50_ms": 1000 * pct(v, 0.5), "p99_ms": 1000 * pct(v, 0.99)}
                      for k, v in sorted(ops.items())}
    summary["total_ops"] = sum(len(v) for v in ops.values())
    summary["errors"] = dict(errors)
    rss = [x for x in rss if x]
    summary["rss_kib"] = {"start": rss[0], "peak": max(rss), "end": rss[-1]} if rss else None
    # leave nothing behind
    try:
        for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                c.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        c.delete_bucket(Bucket=bucket)
    except Exception as e:  # noqa: BLE001 - reported, not fatal
        summary["cleanup_error"] = str(e)
    return summary


def failed(summary: dict) -> bool:
    return bool(summary["errors"] or summary["mismatches"] or summary["final_bad"])


def report(s: dict) -> str:
    lines = [
        f"soak: {s['clients']} clients ({s['procs']} processes) for {s['duration']:.0f}s: "
        f"{s['total_ops']} operations, {s['total_ops'] / s['duration']:.1f}/s",
        f"{'operation':<12} {'count':>8} {'p50 ms':>9} {'p99 ms':>9}",
    ]
    for k, v in s["ops"].items():
        lines.append(f"{k:<12} {v['count']:>8} {v['p50_ms']:>9.1f} {v['p99_ms']:>9.1f}")
    lines.append(f"bytes: {s['bytes_up'] / MiB:.0f} MiB sent, {s['bytes_down'] / MiB:.0f} MiB received")
    lines.append(f"errors: {sum(s['errors'].values())} {s['errors'] or ''}")
    for e in s["error_samples"][:10]:
        lines.append(f"  {e}")
    lines.append(f"verification: {s['verified']} reads and answers checked, {len(s['mismatches'])} mismatches")
    for m in s["mismatches"][:10]:
        lines.append(f"  {m}")
    lines.append(
        f"final read-back: {s['final_checked']} keys, {len(s['final_bad'])} lost or corrupted"
        f" ({s['final_reconnects']} read again after an idle connection closed)"
    )
    for m in s["final_bad"][:10]:
        lines.append(f"  {m}")
    if s.get("rss_kib"):
        r = s["rss_kib"]
        lines.append(f"server RSS: {r['start'] / 1024:.0f} MiB at start, {r['peak'] / 1024:.0f} MiB peak, {r['end'] / 1024:.0f} MiB at the end")
    if s.get("cleanup_error"):
        lines.append(f"cleanup: {s['cleanup_error']}")
    lines.append("RESULT: " + ("FAILED" if failed(s) else "ok"))
    return "\n".join(lines)


# -- the standalone mode: a server of its own --------------------------------------------


def _binary(given: str | None) -> Path:
    if given:
        return Path(given)
    if os.environ.get("COFFER_BIN"):
        return Path(os.environ["COFFER_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    for p in (target / "release" / "coffer", target / "debug" / "coffer"):
        if p.is_file():
            return p
    raise SystemExit("no coffer binary: build one (cargo build --release -p coffer) or pass --coffer-bin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=60, help="seconds of load (default 60)")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--procs", type=int, default=os.cpu_count() or 2, help="client processes (default: cores)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--endpoint", help="an existing server (else one is started)")
    ap.add_argument("--access-key")
    ap.add_argument("--secret-key")
    ap.add_argument("--pid", type=int, help="the existing server's process, for its RSS")
    ap.add_argument("--coffer-bin")
    ap.add_argument("--database-url", help="default: a SQLite file in the data directory")
    ap.add_argument("--json", action="store_true", help="print the summary as JSON too")
    a = ap.parse_args()

    if a.endpoint:
        if not (a.access_key and a.secret_key):
            ap.error("--endpoint needs --access-key and --secret-key")
        s = run(a.endpoint, a.access_key, a.secret_key, a.duration, a.clients, a.procs, a.pid, a.seed)
    else:
        binary = _binary(a.coffer_bin)
        base = Path(tempfile.mkdtemp(prefix="coffer-soak-"))
        db = a.database_url or f"sqlite://{base / 'coffer.db'}"
        port = _free_port()
        common = ["--data-dir", str(base / "data"), "--database-url", db]
        env = dict(os.environ, COFFER_ADMIN_ACCESS_KEY="soak-admin", COFFER_ADMIN_SECRET_KEY=uuid.uuid4().hex)
        log = open(base / "server.log", "wb")
        proc = subprocess.Popen([str(binary), "serve", "--listen", f"127.0.0.1:{port}", *common, "--log-format", "json"],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            endpoint = f"http://127.0.0.1:{port}"
            import urllib.request

            for _ in range(300):
                try:
                    if urllib.request.urlopen(endpoint + "/readyz", timeout=2).status == 200:
                        break
                except Exception:  # noqa: BLE001 - not up yet
                    time.sleep(0.1)
            else:
                raise SystemExit(f"coffer did not become ready; see {base / 'server.log'}")

            def admin(*args):
                r = subprocess.run([str(binary), "admin", *common, "--json", *args], capture_output=True, text=True,
                                   env=env, check=True)
                return json.loads(r.stdout)

            admin("user", "create", "soak")
            key = admin("key", "create", "--user", "soak")
            print(f"coffer {binary} on {endpoint}, store {db.split('@')[-1]}, logs in {base / 'server.log'}")
            s = run(endpoint, key["access_key_id"], key["secret_access_key"], a.duration, a.clients, a.procs,
                    proc.pid, a.seed)
            alive = proc.poll() is None
            s["server_alive"] = alive
        finally:
            proc.terminate()
            proc.wait(30)
            log.close()
        text = (base / "server.log").read_text(errors="replace")
        s["server_log"] = {
            "errors": sum('"level":"ERROR"' in line for line in text.splitlines()),
            "warnings": sum('"level":"WARN"' in line for line in text.splitlines()),
            "panics": text.count("panicked"),
        }
        if not alive:
            s["errors"]["server exited"] = 1
        if not failed(s):
            shutil.rmtree(base, ignore_errors=True)
    print(report(s))
    if s.get("server_log"):
        print(f"server log: {s['server_log']}")
    if a.json:
        print(json.dumps({k: v for k, v in s.items() if k not in ("mismatches", "final_bad", "error_samples")}))
    return 1 if failed(s) else 0


if __name__ == "__main__":
    sys.exit(main())
