#!/usr/bin/env python3
"""Peak memory of the server under hostile requests: ingest bombs and heavy SQL statements.

Each case starts a fresh server (so that its peak RSS, VmHWM, belongs to that case alone),
sends one request (or three at once), and reports the answer's status, the time it took,
the longest a `/health` request waited meanwhile, and the server's peak RSS. With
`--before OLD_BINARY` the same cases run against another build, side by side, case by case.

The ingest cases are bodies under the default 16 MiB body limit that decode to millions of
entries: NDJSON `{}` lines, an OTLP protobuf of empty log records, and a snappy Loki push of
empty entries. The SQL cases run over `--lines` lines of `gen_logs.py` (seed 42) with a
5 s query timeout and the default 256 MiB budget: a self-join, `repeat`, `lpad`, a
recursive CTE and a 2,000-term sum.

    cargo build --release
    python3 bench/edge_rss.py [--lines 300000] [--before /path/to/older/logyard]
"""
import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
import http.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ingest_query as iq  # noqa: E402

BODY = (16 << 20) - 1024


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def len_field(tag, payload):
    return bytes([(tag << 3) | 2]) + varint(len(payload)) + payload


def snappy_raw(data):
    """The snappy block format: 60-byte literals where bytes differ, 64-byte copies of the
    previous 64 bytes where they repeat (enough for the repetitive bodies here)."""
    out = bytearray(varint(len(data)))
    i = 0
    while i < len(data):
        if i >= 64 and data[i:i + 64] == data[i - 64:i]:
            out += bytes([(63 << 2) | 2]) + (64).to_bytes(2, "little")
            i += 64
        else:
            chunk = data[i:i + 60]
            out += bytes([(len(chunk) - 1) << 2]) + chunk
            i += len(chunk)
    return bytes(out)


def ingest_cases():
    ndjson = b"{}\n" * (BODY // 3)
    otlp = len_field(1, len_field(2, b"\x12\x00" * ((BODY - 16) // 2)))
    stream = len_field(1, b'{job="bomb"}') + b"\x12\x00" * ((BODY - 64) // 2)
    loki = snappy_raw(len_field(1, stream))
    return [
        ("NDJSON, 5.6M `{}` entries (16 MiB)", [("/api/logs", "application/x-ndjson", ndjson)]),
        ("the same, three at once", [("/api/logs", "application/x-ndjson", ndjson)] * 3),
        ("OTLP protobuf, 8.4M empty records (16 MiB)",
         [("/v1/logs", "application/x-protobuf", otlp)]),
        (f"Loki snappy protobuf, 8.4M empty entries ({len(loki) // 1024} KiB)",
         [("/loki/api/v1/push", "application/x-protobuf", loki)]),
    ]


def sql_cases():
    deep = "SELECT " + "+".join(["1"] * 2000)
    cte = ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 100000000) "
           "SELECT count(*) FROM r")
    return [
        ("self-join on agent", "SELECT count(*) FROM logs a JOIN logs b ON a.agent = b.agent"),
        ("repeat(message, 2000)", "SELECT sum(length(repeat(message, 2000))) FROM logs"),
        ("lpad('x', 1e9)", "SELECT length(lpad('x', 1000000000))"),
        ("recursive CTE to 1e8", cte),
        ("a sum of 2,000 terms", deep),
    ]


def send(host, port, path, content_type, body, headers=None):
    """POSTs a body; returns the status, or the error's name when the connection broke."""
    try:
        conn = http.client.HTTPConnection(host, port, timeout=600)
        conn.request("POST", path, body=body,
                     headers={"content-type": content_type, **(headers or {})})
        resp = conn.getresponse()
        resp.read()
        conn.close()
        return str(resp.status)
    except Exception as e:  # noqa: BLE001 - a crash or reset is a result here
        return type(e).__name__


class HealthWatch:
    """Polls /health every 100 ms and keeps the longest wait (a wait still open counts)."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.longest = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=300)
                conn.request("GET", "/health")
                conn.getresponse().read()
                conn.close()
            except Exception:  # noqa: BLE001 - a dead server ends the watch
                self.longest = max(self.longest, time.monotonic() - started)
                return
            self.longest = max(self.longest, time.monotonic() - started)
            time.sleep(0.1)

    def finish(self):
        self.stop.set()
        self.thread.join(timeout=1)
        return self.longest


def run_case(binary, data_dir, config, requests):
    iq.BIN = binary
    proc, host, port = iq.start_server(data_dir, config)
    try:
        watch = HealthWatch(host, port)
        started = time.monotonic()
        statuses = [None] * len(requests)

        def one(i, r):
            path, content_type, body, *headers = r
            statuses[i] = send(host, port, path, content_type, body,
                               headers[0] if headers else None)

        threads = [threading.Thread(target=one, args=(i, r)) for i, r in enumerate(requests)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        secs = time.monotonic() - started
        health = watch.finish()
        alive = proc.poll() is None
        rss = iq.peak_rss_mib(proc.pid) if alive else None
        status = ",".join(sorted(set(statuses))) + ("" if alive else " (server died)")
        return status, secs, health, rss
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=300_000)
    ap.add_argument("--before", help="another logyard binary to measure beside this one")
    args = ap.parse_args()
    binaries = [("after", iq.BIN)]
    if args.before:
        binaries.insert(0, ("before", args.before))
    os.makedirs(iq.OUT, exist_ok=True)
    work = tempfile.mkdtemp(prefix="edge-rss-", dir=iq.OUT)
    try:
        config = os.path.join(work, "logyard.toml")
        with open(config, "w") as f:
            f.write('[store]\nretention_days = 0\n[query]\ntimeout = "5s"\n')
        path = iq.generate(args.lines, 42)
        rows = []
        for name, requests in ingest_cases():
            for label, binary in binaries:
                data = os.path.join(work, f"ingest-{label}")
                shutil.rmtree(data, ignore_errors=True)
                rows.append((name, label, *run_case(binary, data, config, requests)))
                print(rows[-1], flush=True)
        for label, binary in binaries:
            iq.BIN = binary
            data = os.path.join(work, f"sql-{label}")
            proc, host, port = iq.start_server(data, config)
            try:
                accepted, _ = iq.ingest(host, port, path, 1, 4 << 20)
                assert accepted == args.lines, (accepted, args.lines)
                iq.wait_flushed(host, port)
            finally:
                proc.terminate()
                proc.wait()
        for name, sql in sql_cases():
            for label, binary in binaries:
                data = os.path.join(work, f"sql-{label}")
                request = ("/api/sql", "application/json",
                           ('{"sql": %s}' % iq.json.dumps(sql)).encode())
                rows.append((name, label, *run_case(binary, data, config, [request])))
                print(rows[-1], flush=True)
        print()
        print("| case | build | status | time | longest /health | peak RSS |")
        print("| --- | --- | --- | ---: | ---: | ---: |")
        for name, label, status, secs, health, rss in rows:
            rss_text = f"{rss:,.0f} MiB" if rss is not None else "—"
            print(f"| {name} | {label} | {status} | {secs:.1f} s | {health:.2f} s | {rss_text} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
