#!/usr/bin/env python3
"""Queries over segments in a bucket, side by side with the same data on the local disk.

Generates data with ../shared/bench/gen_logs.py (cached under bench/out/, as
bench/ingest_query.py does), starts an S3 API server (moto_server) on 127.0.0.1, then for
each storage in one run: starts the release binary on a fresh data directory, ingests the
file over HTTP, waits until every segment is written (and, for the bucket, uploaded, with
`local_days = 1` so that no local copy of the data's days, in 2024, is left), restarts the
server (nothing in its cache of decoded columns; how long it takes to start, every segment
opened, is printed), and times Q1-Q8 of
../shared/bench/PEERS.md: the first run (cold: for the bucket, every byte read comes over
HTTP, counted by `logyard_storage_downloaded_bytes_total`) and the median of 5 after it.
The bucket's server is then restarted once more and each query run once: what the first
runs fetched is now read from the local disk (`range-cache/`), the decoded columns are
gone. With `--no-range-cache`, `local_cache_bytes = 0`: nothing is kept on the disk. Every
answer is checked against the truth computed from the file.

    cargo build --release
    python3 bench/bucket.py [--lines 2000000]

Needs `moto_server` and boto3 (pip install 'moto[server]'). moto is a Python server made
for tests: the bucket's figures measure it as much as logyard; MinIO is what production
runs.
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ingest_query as iq  # noqa: E402  (the generator, the server and the queries)

QUERIES = [
    ("Q1 needle", "NEEDLE-42-5", lambda a, w: a["total"] == w["needle"]),
    ("Q2 count ERROR", "level:ERROR | stats count()",
     lambda a, w: a["rows"] == [[w["levels"]["ERROR"]]]),
    ("Q3 phrase count", '"connection refused" | stats count()',
     lambda a, w: a["rows"] == [[w["refused"]]]),
    ("Q4 count by level", "* | stats count() by (level)",
     lambda a, w: {r[0]: r[1] for r in a["rows"]} == w["levels"]),
    ("Q5 count by agent", "* | stats count() by (agent)",
     lambda a, w: {r[0]: r[1] for r in a["rows"]} == w["agents"]),
    ("Q6 ERROR per hour", "level:ERROR | histogram 1h",
     lambda a, w: {r[0][:13]: r[-1] for r in a["rows"] if r[-1]} == w["error_hours"]),
    ("Q7 regex count", '~"response_time: [0-9]{4,}ms" | stats count()',
     lambda a, w: a["rows"] == [[w["slow"]]]),
    ("Q8 newest 100 of HERMES", "agent:HERMES | limit 100",
     lambda a, w: len(a["logs"]) == 100 and all(e["agent"] == "HERMES" for e in a["logs"])),
]


def start_moto():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    import boto3
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="logs")
    return proc, endpoint


def timed(host, port, query, want, ok, label):
    """One run of a query: (ms, bytes read from the bucket), its answer checked."""
    before = iq.metrics(host, port).get("logyard_storage_downloaded_bytes_total", 0)
    started = time.perf_counter()
    answer = iq.request(host, port, "GET", "/api/query?limit=100&q=" + urllib.parse.quote(query))
    ms = (time.perf_counter() - started) * 1000
    if not ok(answer, want):
        raise SystemExit(f"{label}: wrong answer to {query!r}")
    return ms, iq.metrics(host, port).get("logyard_storage_downloaded_bytes_total", 0) - before


def run(storage, path, want, lines, work, endpoint, range_cache):
    data_dir = os.path.join(work, storage, "data")
    config = os.path.join(work, storage + ".toml")
    with open(config, "w") as f:
        f.write('[store]\nretention_days = 0\n')
        if storage == "bucket":
            f.write(f'\n[storage]\ntype = "s3"\nbucket = "logs"\nprefix = "bench"\n'
                    f'endpoint = "{endpoint}"\nregion = "us-east-1"\n')
            f.write('local_cache_bytes = "10GiB"\nlocal_days = 1\n' if range_cache
                    else 'local_cache_bytes = 0\n')
    proc, host, port = iq.start_server(data_dir, config)
    try:
        print(f"{storage}: ingesting {lines} lines", file=sys.stderr)
        accepted, secs = iq.ingest(host, port, path, 1, 4 << 20)
        assert accepted == lines, (accepted, lines)
        iq.wait_flushed(host, port)
        upload = None
        if storage == "bucket":
            started = time.perf_counter()
            while iq.metrics(host, port).get("logyard_storage_upload_pending_files", 1) > 0:
                time.sleep(0.1)
            m = iq.metrics(host, port)
            upload = (m["logyard_storage_uploaded_bytes_total"],
                      m["logyard_storage_uploaded_files_total"],
                      time.perf_counter() - started)
    finally:
        proc.terminate()
        proc.wait()
    local = iq.dir_bytes(os.path.join(data_dir, "parts"))
    started = time.perf_counter()
    proc, host, port = iq.start_server(data_dir, config)
    start_s = time.perf_counter() - started
    rows = []
    try:
        enc = urllib.parse.quote
        for name, query, ok in QUERIES:
            def q(query=query):
                return iq.request(host, port, "GET", "/api/query?limit=100&q=" + enc(query))
            first_ms, fetched = timed(host, port, query, want, ok, f"{storage} {name}")
            rows.append((name, first_ms, iq.median_ms(q), fetched))
    finally:
        proc.terminate()
        proc.wait()
    again, again_start_s = [], None
    if storage == "bucket":
        started = time.perf_counter()
        proc, host, port = iq.start_server(data_dir, config)
        again_start_s = time.perf_counter() - started
        try:
            again = [timed(host, port, query, want, ok, f"{storage} again {name}")
                     for name, query, ok in QUERIES]
        finally:
            proc.terminate()
            proc.wait()
    return {"ingest_s": secs, "upload": upload, "local_parts": local, "rows": rows,
            "again": again, "start_s": start_s, "again_start_s": again_start_s, "range_cache": iq.dir_bytes(os.path.join(data_dir, "range-cache"))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-range-cache", action="store_true",
                    help="local_cache_bytes = 0: every read of the bucket goes over HTTP")
    args = ap.parse_args()
    if not os.path.exists(iq.BIN):
        raise SystemExit("build first: cargo build --release")
    path = iq.generate(args.lines, args.seed)
    want = iq.truth(path)
    # moto takes any credentials; the server and boto3 read them from the environment.
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"})
    moto, endpoint = start_moto()
    work = tempfile.mkdtemp(prefix="logyard-bucket-", dir=iq.OUT)
    try:
        results = {s: run(s, path, want, args.lines, work, endpoint, not args.no_range_cache)
                   for s in ("local", "bucket")}
    finally:
        moto.terminate()
        moto.wait()
        shutil.rmtree(work, ignore_errors=True)

    local, bucket = results["local"], results["bucket"]
    sent, files, secs = bucket["upload"]
    print(f"\n{args.lines} lines; ingest {args.lines / local['ingest_s']:,.0f} lines/s local, "
          f"{args.lines / bucket['ingest_s']:,.0f} lines/s with the bucket")
    print(f"upload: {sent / (1 << 20):.1f} MiB in {files:.0f} files, done {secs:.1f} s after "
          f"the last segment was written; parts/ then holds {bucket['local_parts'] / (1 << 20):.1f} MiB "
          f"(local: {local['local_parts'] / (1 << 20):.1f} MiB)")
    print(f"start (every segment opened): local {local['start_s']:.2f} s, bucket "
          f"{bucket['start_s']:.2f} s, bucket with its ranges on the disk {bucket['again_start_s']:.2f} s")
    print(f"\n{'query':26} {'local first':>12} {'local':>9} {'bucket first':>13} {'bucket':>9} "
          f"{'read (first)':>13} {'restarted':>10} {'read':>9}")
    for (name, lf, lm, _), (_, bf, bm, fetched), (af, afetched) in zip(
            local["rows"], bucket["rows"], bucket["again"]):
        print(f"{name:26} {lf:10.1f}ms {lm:7.1f}ms {bf:11.1f}ms {bm:7.1f}ms "
              f"{fetched / (1 << 20):9.2f} MiB {af:8.1f}ms {afetched / (1 << 20):5.2f} MiB")
    print(f"(the bucket's segment files: {sent / (1 << 20):.1f} MiB; range-cache/ then held "
          f"{bucket['range_cache'] / (1 << 20):.1f} MiB)")


if __name__ == "__main__":
    main()
