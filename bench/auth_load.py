#!/usr/bin/env python3
"""What authentication costs ingest, and the server under a mixed load with abuse.

`cost`: the HTTP ingest of `bench/ingest_query.py` (`--lines` lines of `gen_logs.py`, seed 42,
NDJSON batches of 4 MiB, one stream) into a server without tokens and into one whose every
request presents a Bearer token (four tokens configured, the one presented last), alternated
for `--rounds` rounds in one run; the median lines/s of each and their ratio.

`load`: for `--seconds`, `--ingesters` connections send batches of 200 entries with an ingest
token, `--readers` connections run queries (`/api/query`, `/api/histogram`, `/api/sql`) with
a read token, `--attackers` connections send requests with wrong tokens, and `--slow`
connections trickle their headers a byte a second (slowloris). Reported: requests and errors
by kind, p50/p99 latencies, the entries acknowledged against those stored (every
acknowledged entry must be there), and the server's peak RSS.

    cargo build --release
    python3 bench/auth_load.py cost [--lines 1000000] [--rounds 3]
    python3 bench/auth_load.py load [--seconds 120]
"""
import argparse
import hashlib
import http.client
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ingest_query as iq  # noqa: E402

INGEST = "bench-ingest-token-0123456789"
READ = "bench-read-token-0123456789ab"
ADMIN = "bench-admin-token-0123456789a"


def token_config(extra=""):
    def entry(name, role, secret):
        digest = hashlib.sha256(secret.encode()).hexdigest()
        return f'[[auth.tokens]]\nname = "{name}"\nrole = "{role}"\nhash = "sha256:{digest}"\n\n'
    return ("[auth]\npublic_metrics = true\n\n"
            + entry("other", "read", "bench-other-token-0123456789")
            + entry("admin", "admin", ADMIN)
            + entry("reader", "read", READ)
            + entry("shipper", "ingest", INGEST)
            + extra)


def cost(args, work):
    plain = os.path.join(work, "plain.toml")
    with open(plain, "w") as f:
        f.write("[store]\nretention_days = 0\n")
    tokened = os.path.join(work, "tokened.toml")
    with open(tokened, "w") as f:
        f.write("[store]\nretention_days = 0\n" + token_config())
    path = iq.generate(args.lines, 42)
    rates = {"without a token": [], "with a token": []}
    for r in range(args.rounds):
        for label, config, headers in [
            ("without a token", plain, None),
            ("with a token", tokened, {"Authorization": f"Bearer {INGEST}"}),
        ]:
            data = os.path.join(work, f"cost-{r}-{label.replace(' ', '-')}")
            proc, host, port = iq.start_server(data, config)
            try:
                accepted, secs = iq.ingest(host, port, path, 1, 4 << 20, headers)
                assert accepted == args.lines, accepted
                rates[label].append(accepted / secs)
                print(f"round {r + 1}: {label}: {accepted / secs:,.0f} lines/s", flush=True)
            finally:
                proc.terminate()
                proc.wait()
                shutil.rmtree(data, ignore_errors=True)
    a = statistics.median(rates["without a token"])
    b = statistics.median(rates["with a token"])
    print()
    print("| ingest over HTTP, 1 stream | median lines/s |")
    print("| --- | ---: |")
    print(f"| without a token | {a:,.0f} |")
    print(f"| with a token (Bearer, 4 configured) | {b:,.0f} |")
    print(f"| cost | {(1 - b / a) * 100:+.1f}% |")


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.latency = {}
        self.codes = {}
        self.acknowledged = 0

    def add(self, kind, status, secs):
        with self.lock:
            self.latency.setdefault(kind, []).append(secs)
            key = (kind, status)
            self.codes[key] = self.codes.get(key, 0) + 1


def timed(conn, method, path, body, headers):
    started = time.perf_counter()
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, data, time.perf_counter() - started
    except (OSError, http.client.HTTPException) as e:
        return type(e).__name__, b"", time.perf_counter() - started


def load(args, work):
    config = os.path.join(work, "load.toml")
    with open(config, "w") as f:
        f.write("[store]\nretention_days = 0\n[server]\nmax_connections = 1024\n"
                + token_config())
    data = os.path.join(work, "load-data")
    proc, host, port = iq.start_server(data, config)
    stats = Stats()
    stop = threading.Event()

    def connect():
        return http.client.HTTPConnection(host, port, timeout=60)

    def ingester(n):
        conn = connect()
        seq = 0
        while not stop.is_set():
            batch = "\n".join(json.dumps({"agent": f"load-{n}", "message": f"entry {seq + i}",
                                          "level": "INFO"}) for i in range(200))
            status, body, secs = timed(conn, "POST", "/api/logs", batch, {
                "Content-Type": "application/x-ndjson", "Authorization": f"Bearer {INGEST}"})
            stats.add("ingest", status, secs)
            if status == 200:
                with stats.lock:
                    stats.acknowledged += json.loads(body)["accepted"]
                seq += 200
            elif not isinstance(status, int):
                conn.close()
                conn = connect()

    def reader(n):
        conn = connect()
        queries = [
            ("GET", "/api/query?q=level:INFO%20%7C%20stats%20count()%20by%20(agent)", None),
            ("GET", "/api/histogram?q=entry&start=10m", None),
            ("POST", "/api/sql", json.dumps({"sql": "SELECT agent, count(*) FROM logs GROUP BY agent"})),
            ("GET", "/api/query?q=%22entry%2042%22&limit=10", None),
        ]
        i = n
        while not stop.is_set():
            method, path, body = queries[i % len(queries)]
            i += 1
            headers = {"Authorization": f"Bearer {READ}"}
            if body:
                headers["Content-Type"] = "application/json"
            status, _, secs = timed(conn, method, path, body, headers)
            stats.add("query", status, secs)
            if not isinstance(status, int):
                conn.close()
                conn = connect()

    def attacker(n):
        conn = connect()
        i = 0
        while not stop.is_set():
            i += 1
            status, _, secs = timed(conn, "GET", "/api/logs", None,
                                    {"Authorization": f"Bearer wrong-{n}-{i}"})
            stats.add("bad token", status, secs)
            if not isinstance(status, int):
                conn.close()
                conn = connect()

    def slowloris(_):
        while not stop.is_set():
            try:
                s = socket.create_connection((host, port), timeout=60)
                s.sendall(b"GET /api/logs HTTP/1.1\r\nHost: x\r\n")
                while not stop.is_set():
                    s.sendall(b"X")
                    time.sleep(1)
            except OSError:
                with stats.lock:
                    stats.codes[("slowloris", "cut by the server")] = \
                        stats.codes.get(("slowloris", "cut by the server"), 0) + 1
                time.sleep(0.5)

    roles = ([ingester] * args.ingesters + [reader] * args.readers
             + [attacker] * args.attackers + [slowloris] * args.slow)
    threads = [threading.Thread(target=f, args=(i,), daemon=True) for i, f in enumerate(roles)]
    started = time.time()
    for t in threads:
        t.start()
    while time.time() - started < args.seconds:
        time.sleep(1)
    stop.set()
    for t in threads:
        t.join(timeout=70)
    rss = iq.peak_rss_mib(proc.pid)
    conn = connect()
    _, body, _ = timed(conn, "GET", "/api/query?q=agent:load-*%20%7C%20stats%20count()", None,
                       {"Authorization": f"Bearer {ADMIN}"})
    stored = json.loads(body)["rows"][0][0]
    proc.terminate()
    proc.wait()
    print(f"\n{args.seconds} s, {args.ingesters} ingest + {args.readers} query + "
          f"{args.attackers} bad-token + {args.slow} slowloris connections\n")
    print("| requests | count | p50 | p99 |")
    print("| --- | ---: | ---: | ---: |")
    for kind, lat in sorted(stats.latency.items()):
        lat.sort()
        p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1e3  # noqa: E731
        print(f"| {kind} | {len(lat):,} | {p(0.5):.1f} ms | {p(0.99):.1f} ms |")
    print("\n| kind | answer | count |")
    print("| --- | --- | ---: |")
    for (kind, status), n in sorted(stats.codes.items(), key=lambda x: (x[0][0], str(x[0][1]))):
        print(f"| {kind} | {status} | {n:,} |")
    print(f"\nentries acknowledged {stats.acknowledged:,}, stored {stored:,}; "
          f"peak RSS {rss:,.0f} MiB")
    if stored != stats.acknowledged:
        raise SystemExit("acknowledged entries are missing")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    c = sub.add_parser("cost")
    c.add_argument("--lines", type=int, default=1_000_000)
    c.add_argument("--rounds", type=int, default=3)
    ld = sub.add_parser("load")
    ld.add_argument("--seconds", type=int, default=120)
    ld.add_argument("--ingesters", type=int, default=50)
    ld.add_argument("--readers", type=int, default=50)
    ld.add_argument("--attackers", type=int, default=100)
    ld.add_argument("--slow", type=int, default=100)
    args = ap.parse_args()
    if not os.path.exists(iq.BIN):
        raise SystemExit("build first: cargo build --release")
    os.makedirs(iq.OUT, exist_ok=True)
    work = tempfile.mkdtemp(prefix="auth-load-", dir=iq.OUT)
    try:
        (cost if args.what == "cost" else load)(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
