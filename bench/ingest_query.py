#!/usr/bin/env python3
"""Ingest and search benchmark of logyard, side by side with ripgrep on the raw file.

Generates data with ../shared/bench/gen_logs.py (cached under bench/out/), starts the
release binary on a fresh data directory, sends the file over HTTP as NDJSON batches
from one or more parallel streams, then times queries (the first run, which fills the
server's cache of decoded columns, and the median of 5 after it, data warm) and the same
searches with `rg` on the raw file, in the same run. Every count is checked against the
truth computed from the file.

    cargo build --release
    python3 bench/ingest_query.py [--lines 2000000] [--streams 1] [--batch-mib 4]
                                  [--cache-bytes 256MiB] [--bin PATH] [--ui]

Needs `rg` (Debian: apt-get install ripgrep) for the comparison column.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GEN = os.path.join(os.path.dirname(ROOT), "shared", "bench", "gen_logs.py")
OUT = os.path.join(ROOT, "bench", "out")
BIN = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"),
                   "release", "logyard")


def generate(lines, seed):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, f"jsonl-{lines}-{seed}.jsonl")
    if not os.path.exists(path):
        print(f"generating {lines} lines into {path}", file=sys.stderr)
        subprocess.run([sys.executable, GEN, "--lines", str(lines), "--seed", str(seed),
                        "--format", "jsonl", "--needles", "10", "--out", path + ".tmp"],
                       check=True)
        os.rename(path + ".tmp", path)
    return path


def truth(path):
    levels, agents, refused, needle, slow, hours = {}, {}, 0, 0, 0, {}
    status_500, methods, slow_field = 0, {}, 0
    slow_re = re.compile(r"response_time: [0-9]{4,}ms")
    with open(path, encoding="utf-8") as f:
        for line in f:
            e = json.loads(line)
            levels[e["level"]] = levels.get(e["level"], 0) + 1
            agents[e["agent"]] = agents.get(e["agent"], 0) + 1
            if "connection refused" in e["message"]:
                refused += 1
            if "NEEDLE-42-5" in line:
                needle += 1
            if slow_re.search(e["message"]):
                slow += 1
            if e["level"] == "ERROR":
                hour = e["timestamp"][:13]
                hours[hour] = hours.get(hour, 0) + 1
            if e.get("status") == 500:
                status_500 += 1
            if "method" in e:
                methods[e["method"]] = methods.get(e["method"], 0) + 1
            if isinstance(e.get("response_time_ms"), (int, float)) and e["response_time_ms"] > 1000:
                slow_field += 1
    return {"levels": levels, "agents": agents, "refused": refused, "needle": needle,
            "slow": slow, "error_hours": hours, "status_500": status_500, "methods": methods,
            "slow_field": slow_field}


def chunks(path, size):
    """Yields byte chunks of whole lines, about `size` bytes each."""
    with open(path, "rb") as f:
        rest = b""
        while True:
            block = f.read(size)
            if not block:
                if rest:
                    yield rest
                return
            block = rest + block
            cut = block.rfind(b"\n") + 1
            rest = block[cut:]
            yield block[:cut]


def start_server(data_dir, config, binary=BIN):
    proc = subprocess.Popen([binary, "--config", config, "serve", "--data", data_dir,
                             "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:
        if line.startswith("listening on "):
            url = urllib.parse.urlparse(line.split()[-1])
            return proc, url.hostname, url.port
    raise SystemExit("the server did not start")


def request(host, port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection(host, port, timeout=600)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    if resp.status >= 300:
        raise SystemExit(f"{method} {path}: {resp.status} {data[:300]!r}")
    return json.loads(data) if data else None


def metrics(host, port):
    conn = http.client.HTTPConnection(host, port, timeout=60)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def wait_flushed(host, port):
    """Waits until the memtable is in segments and no small-segment merge is pending."""
    last = None
    for _ in range(600):
        m = metrics(host, port)
        now = (m.get("logyard_store_memtable_rows"), m.get("logyard_store_segments"))
        if now[0] == 0 and now == last:
            return
        last = now
        time.sleep(1)


def ingest(host, port, path, streams, batch, headers=None):
    queue = list(chunks(path, batch))
    lock = threading.Lock()
    accepted = [0]

    def worker():
        conn = http.client.HTTPConnection(host, port, timeout=600)
        while True:
            with lock:
                if not queue:
                    break
                body = queue.pop(0)
            conn.request("POST", "/api/logs", body=body,
                         headers={"Content-Type": "application/x-ndjson", **(headers or {})})
            resp = conn.getresponse()
            answer = json.loads(resp.read())
            if resp.status != 200 or answer["rejected"]:
                raise SystemExit(f"ingest failed: {resp.status} {answer}")
            with lock:
                accepted[0] += answer["accepted"]
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return accepted[0], time.perf_counter() - started


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(root, name))
    return total


def median_ms(fn, runs=5):
    fn()  # warm
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--streams", type=int, default=1)
    ap.add_argument("--batch-mib", type=float, default=4)
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    ap.add_argument("--cache-bytes", default="256MiB",
                    help="[store] cache_bytes of the server (0: no cache of decoded columns)")
    ap.add_argument("--bin", default=BIN,
                    help="the logyard binary (default: the release build of this checkout); "
                         "another build, to compare two side by side")
    ap.add_argument("--ui", action="store_true",
                    help="also time the web UI's first results (bench/ui_first_results.mjs)")
    args = ap.parse_args()
    if not os.path.exists(args.bin):
        raise SystemExit(f"{args.bin} not found: build first (cargo build --release)")

    path = generate(args.lines, args.seed)
    raw_bytes = os.path.getsize(path)
    print("computing the truth from the file", file=sys.stderr)
    want = truth(path)

    work = tempfile.mkdtemp(prefix="logyard-bench-", dir=OUT)
    data_dir = os.path.join(work, "data")
    config = os.path.join(work, "logyard.toml")
    with open(config, "w") as f:
        f.write(f'[store]\nretention_days = 0\ncache_bytes = "{args.cache_bytes}"\n')
    proc, host, port = start_server(data_dir, config, args.bin)
    try:
        print(f"ingesting {args.lines} lines over {args.streams} stream(s)", file=sys.stderr)
        accepted, secs = ingest(host, port, path, args.streams, int(args.batch_mib * (1 << 20)))
        assert accepted == args.lines, (accepted, args.lines)
        rss_ingest = peak_rss_mib(proc.pid)
        wait_flushed(host, port)
        disk = dir_bytes(data_dir)

        def q(path):
            return request(host, port, "GET", path)

        enc = urllib.parse.quote
        rows = []

        queries = [
            ("Q1 needle", "NEEDLE-42-5",
             lambda a: a["total"] == want["needle"], ["rg", "-c", "NEEDLE-42-5", path]),
            ("Q2 count ERROR", "level:ERROR | stats count()",
             lambda a: a["rows"] == [[want["levels"]["ERROR"]]],
             ["rg", "-c", '"level":"ERROR"', path]),
            ("Q3 phrase count", '"connection refused" | stats count()',
             lambda a: a["rows"] == [[want["refused"]]], ["rg", "-c", "connection refused", path]),
            ("Q4 count by level", "* | stats count() by (level)",
             lambda a: {r[0]: r[1] for r in a["rows"]} == want["levels"], None),
            ("Q5 count by agent", "* | stats count() by (agent)",
             lambda a: {r[0]: r[1] for r in a["rows"]} == want["agents"], None),
            ("Q6 ERROR per hour", "level:ERROR | histogram 1h",
             lambda a: {r[0][:13]: r[-1] for r in a["rows"] if r[-1]} == want["error_hours"], None),
            ("Q7 regex count", '~"response_time: [0-9]{4,}ms" | stats count()',
             lambda a: a["rows"] == [[want["slow"]]],
             ["rg", "-c", "response_time: [0-9]{4,}ms", path]),
            ("Q8 newest 100 of HERMES", "agent:HERMES | limit 100",
             lambda a: len(a["logs"]) == 100 and all(e["agent"] == "HERMES" for e in a["logs"]),
             None),
            # Queries of the entries' fields (not in PEERS.md).
            ("F1 count of a field's value", "status:500 | stats count()",
             lambda a: a["rows"] == [[want["status_500"]]], None),
            ("F2 count by a field", "* | stats count() by (method)",
             lambda a: {r[0]: r[1] for r in a["rows"] if r[0] is not None} == want["methods"],
             None),
            ("F3 field compared as a number", "response_time_ms:>1000 | stats count()",
             lambda a: a["rows"] == [[want["slow_field"]]], None),
        ]
        for name, query, ok, rg_cmd in queries:
            started = time.perf_counter()
            answer = q("/api/query?limit=100&q=" + enc(query))
            first_ms = (time.perf_counter() - started) * 1000
            if not ok(answer):
                raise SystemExit(f"{name}: wrong answer to {query!r}: {json.dumps(answer)[:500]}")
            ms = median_ms(lambda: q("/api/query?limit=100&q=" + enc(query)))
            rows.append((name, ms, rg_cmd, first_ms))
        # The same counts in SQL over the `logs` table.
        sql_queries = [
            ("S2 count ERROR (SQL)", "SELECT count(*) FROM logs WHERE level = 'ERROR'",
             lambda a: a["rows"] == [[want["levels"]["ERROR"]]]),
            ("S4 count by level (SQL)", "SELECT level, count(*) FROM logs GROUP BY level",
             lambda a: {r[0]: r[1] for r in a["rows"]} == want["levels"]),
            ("S5 count by agent (SQL)", "SELECT agent, count(*) FROM logs GROUP BY agent",
             lambda a: {r[0]: r[1] for r in a["rows"]} == want["agents"]),
        ]
        for name, sql, ok in sql_queries:
            body = json.dumps({"sql": sql})

            def run_sql(body=body):
                return request(host, port, "POST", "/api/sql", body,
                               {"Content-Type": "application/json"})
            answer = run_sql()
            if not ok(answer):
                raise SystemExit(f"{name}: wrong answer to {sql!r}: {json.dumps(answer)[:500]}")
            rows.append((name, median_ms(run_sql), None, None))
        rss_all = peak_rss_mib(proc.pid)
        if args.ui:
            print(f"\nweb UI, time to first results over {args.lines} lines (median of 5):")
            subprocess.run(["node", os.path.join(ROOT, "bench", "ui_first_results.mjs"),
                            f"http://{host}:{port}"], check=True)
    finally:
        proc.terminate()
        proc.wait()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    rg = shutil.which("rg")
    mib = raw_bytes / (1 << 20)
    print(f"\n{args.lines} lines, {mib:.1f} MiB raw, {args.streams} stream(s), "
          f"{args.batch_mib} MiB batches")
    print(f"ingest: {args.lines / secs:,.0f} lines/s, {mib / secs:.1f} MiB/s ({secs:.1f} s)")
    print(f"on disk: {disk / (1 << 20):.1f} MiB ({raw_bytes / disk:.1f}x smaller than raw)")
    print(f"peak RSS: {rss_ingest:.0f} MiB during ingest, {rss_all:.0f} MiB after queries")
    print(f"cache of decoded columns: {args.cache_bytes}")
    print(f"\n{'query':34} {'first run':>10} {'logyard':>10} {'rg':>10} {'ratio':>8}")
    for name, ms, rg_cmd, first_ms in rows:
        first = f"{first_ms:8.1f}ms" if first_ms is not None else f"{'-':>10}"
        if rg and rg_cmd:
            rg_ms = median_ms(lambda: subprocess.run(rg_cmd, stdout=subprocess.DEVNULL, check=False))
            print(f"{name:34} {first} {ms:9.1f}ms {rg_ms:9.1f}ms {rg_ms / ms:7.1f}x")
        else:
            print(f"{name:34} {first} {ms:9.1f}ms {'-':>10} {'-':>8}")


if __name__ == "__main__":
    main()
