#!/usr/bin/env python3
"""Throughput and memory benchmark: PUT and GET of a large object through coffer, against
copying the same bytes on the same disk.

    python3 scripts/bench.py [--size-mib 1024] [--runs 3] [--dir DIR]

It builds nothing: run `cargo build --release -p coffer` first (or set COFFER_BIN). The
server runs on its embedded defaults (SQLite + local disk) in a fresh data directory under
--dir (default: a temporary directory on the disk that holds this checkout). Requests are
sent by curl to SigV4 presigned URLs, so the client adds as little as possible. coffer's PUT
fsyncs before it answers; so does the baseline copy. GETs read from the page cache in both
cases. The server's peak RSS is its VmHWM from /proc.
"""

import argparse
import hashlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def coffer_bin():
    if os.environ.get("COFFER_BIN"):
        return os.environ["COFFER_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "coffer")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mbps(nbytes, seconds):
    return nbytes / seconds / 1e6


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default=None, help="where the data lives (default: beside the checkout)")
    args = ap.parse_args()
    binary = coffer_bin()
    if not os.path.exists(binary):
        sys.exit(f"no coffer binary at {binary}: run `cargo build --release -p coffer` first")
    import boto3
    from botocore.config import Config

    work = tempfile.mkdtemp(prefix="coffer-bench-", dir=args.dir or os.path.dirname(ROOT))
    size = args.size_mib * 1024 * 1024
    src = os.path.join(work, "source.bin")
    print(f"writing {args.size_mib} MiB of random data to {src}", flush=True)
    md5 = hashlib.md5()
    with open(src, "wb") as f:
        chunk = os.urandom(8 * 1024 * 1024)
        for i in range(size // len(chunk)):
            # vary each chunk so nothing downstream can deduplicate
            block = chunk[:-8] + i.to_bytes(8, "little")
            md5.update(block)
            f.write(block)
    expected_etag = md5.hexdigest()

    data_dir = os.path.join(work, "data")
    port = free_port()
    env = dict(os.environ, COFFER_ADMIN_ACCESS_KEY="bench-admin", COFFER_ADMIN_SECRET_KEY="bench-secret-key",
               RUST_LOG="warn")
    server = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz").status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id="bench-admin",
                          aws_secret_access_key="bench-secret-key", region_name="us-east-1",
                          config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
        s3.create_bucket(Bucket="bench")
        put_url = s3.generate_presigned_url("put_object", Params={"Bucket": "bench", "Key": "big"}, ExpiresIn=3600)
        get_url = s3.generate_presigned_url("get_object", Params={"Bucket": "bench", "Key": "big"}, ExpiresIn=3600)
        out = os.path.join(work, "out.bin")
        copy = os.path.join(work, "copy.bin")

        def put():
            subprocess.run(["curl", "-sf", "-o", "/dev/null", "-T", src, put_url], check=True)

        def get():
            subprocess.run(["curl", "-sf", "-o", out, get_url], check=True)

        def copy_fsync():
            shutil.copyfile(src, copy)
            fd = os.open(copy, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)

        def read_file():
            with open(copy, "rb") as f, open(out, "wb") as o:
                shutil.copyfileobj(f, o, 1024 * 1024)

        results = {"coffer PUT": [], "coffer GET": [], "cp + fsync": [], "file read + write": []}
        for run in range(args.runs):
            results["coffer PUT"].append(mbps(size, timed(put)))
            head = s3.head_object(Bucket="bench", Key="big")
            assert head["ETag"].strip('"') == expected_etag, "ETag differs from the MD5 of the bytes"
            results["coffer GET"].append(mbps(size, timed(get)))
            assert os.path.getsize(out) == size
            results["cp + fsync"].append(mbps(size, timed(copy_fsync)))
            results["file read + write"].append(mbps(size, timed(read_file)))
            print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:.0f} MB/s" for k, v in results.items()), flush=True)
        rss = peak_rss_mib(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nobject: {args.size_mib} MiB, runs: {args.runs} (median, min-max)")
    for k, v in results.items():
        print(f"  {k:<18} {statistics.median(v):7.0f} MB/s   ({min(v):.0f}-{max(v):.0f})")
    print(f"  coffer peak RSS    {rss:7.1f} MiB")


if __name__ == "__main__":
    main()
