#!/usr/bin/env python3
"""Collection throughput: a followed file, syslog over UDP and TCP, and Elasticsearch `_bulk`.

Each part starts the release binary on a fresh data directory, sends the same
`gen_logs.py` jsonl lines (cached in bench/out/) and waits until the store counts them all
(`* | stats count()`), then prints lines/s and MB/s from the first byte sent to the last
line stored, and the lines lost (syslog over UDP may lose datagrams; nothing else may).

    cargo build --release
    python3 bench/collect.py [--lines 1000000] [--chunk-mib 4] [--parts file,udp,tcp,bulk]
                             [--bin path/to/logyard] [--bulk-clients 2]

- file: the lines are appended to a followed file in chunks of `--chunk-mib` (one write
  each), as a busy application does;
- syslog UDP / TCP: each line is one RFC 5424 message (TCP with newline framing), sent
  as fast as one Python client can;
- `_bulk`: NDJSON of action and document lines, 4 MiB per request (made before the clock
  starts), over `--bulk-clients` connections (default 2).
"""
import argparse
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ingest_query as iq  # noqa: E402


def count(host, port):
    answer = iq.request(host, port, "GET", "/api/query?q=" +
                        iq.urllib.parse.quote("* | stats count()"))
    return answer["rows"][0][0] if answer["rows"] else 0


def wait_count(host, port, want, started, timeout=600):
    """Polls until `want` lines are stored or nothing more arrives for 10 s."""
    last, last_change = -1, time.time()
    while time.time() - started < timeout:
        n = count(host, port)
        if n >= want:
            return n, time.time() - started
        if n != last:
            last, last_change = n, time.time()
        elif time.time() - last_change > 10:
            return n, last_change - started
        time.sleep(0.05)
    return last, time.time() - started


def wait_flushed(host, port, started, timeout=600):
    """Polls until the memtable is empty: every stored line is in a segment."""
    while time.time() - started < timeout:
        if iq.metrics(host, port).get("logyard_store_memtable_rows", 0) == 0:
            break
        time.sleep(0.05)
    return time.time() - started


def run(name, config_text, send, lines, nbytes, prepare=None):
    """Starts a server, calls `prepare(work)` untimed, then times `send(work)` until stored."""
    work = tempfile.mkdtemp(prefix="collect-bench-", dir=iq.OUT)
    try:
        config = os.path.join(work, "logyard.toml")
        with open(config, "w") as f:
            f.write("[store]\nretention_days = 0\n[alerts]\nenabled = false\n" +
                    config_text.replace("@WORK@", work))
        proc, host, port = iq.start_server(os.path.join(work, "data"), config)
        try:
            time.sleep(1.0)  # the collectors open their files and sockets
            if prepare:
                prepare(work)
            started = time.time()
            send(work)
            stored, secs = wait_count(host, port, lines, started)
            flushed = wait_flushed(host, port, started)
            m = iq.metrics(host, port)
        finally:
            proc.terminate()
            proc.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lost = lines - stored
    print(f"{name:12} {stored / secs:>12,.0f} lines/s {nbytes / secs / 1e6:>8.1f} MB/s "
          f"{secs:>7.1f} s   lost {lost:,}   in segments after {flushed:.1f} s "
          f"({m.get('logyard_store_flushes_total', 0):.0f} flushes, "
          f"{m.get('logyard_store_merges_total', 0):.0f} merges, "
          f"{m.get('logyard_store_bytes', 0) / (1 << 20):.1f} MiB)", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--chunk-mib", type=float, default=4)
    ap.add_argument("--parts", default="file,udp,tcp,bulk",
                    help="which parts to run, comma-separated (default: all)")
    ap.add_argument("--bin", default=iq.BIN, help="the logyard binary to run")
    ap.add_argument("--bulk-clients", type=int, default=2,
                    help="concurrent _bulk connections (default 2)")
    args = ap.parse_args()
    iq.BIN = args.bin
    parts = set(args.parts.split(","))
    unknown = parts - {"file", "udp", "tcp", "bulk"}
    if unknown:
        raise SystemExit(f"unknown parts: {', '.join(sorted(unknown))}")
    if not os.path.exists(iq.BIN):
        raise SystemExit("build first: cargo build --release")
    path = iq.generate(args.lines, 42)
    with open(path, "rb") as f:
        data = f.read()
    lines = data.splitlines()
    nbytes = len(data)
    print(f"{len(lines):,} lines, {nbytes / 1e6:.1f} MB\n")

    def file_send(work):
        chunk = int(args.chunk_mib * (1 << 20))
        with open(os.path.join(work, "logs", "app.log"), "ab") as f:
            i = 0
            while i < len(data):
                end = data.find(b"\n", i + chunk)
                end = len(data) if end < 0 else end + 1
                f.write(data[i:end])
                f.flush()
                i = end

    def prepare_file(work):
        os.makedirs(os.path.join(work, "logs"), exist_ok=True)
        open(os.path.join(work, "logs", "app.log"), "wb").close()
        time.sleep(1.0)  # the source finds the new file

    if "file" in parts:
        run("file", '[[sources]]\ntype = "file"\npaths = ["@WORK@/logs/*.log"]\n'
            'start_at = "beginning"\n', file_send, len(lines), nbytes,
            prepare=prepare_file)

    messages = [b"<14>1 2024-01-15T00:00:00Z host app - - - " + line for line in lines]
    udp_port = free_port()

    def udp_send(_work):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        for m in messages:
            s.sendto(m, ("127.0.0.1", udp_port))
        s.close()

    if "udp" in parts:
        run("syslog UDP", f'[[sources]]\ntype = "syslog"\nlisten_udp = "127.0.0.1:{udp_port}"\n',
            udp_send, len(lines), nbytes)

    tcp_port = free_port()

    def tcp_send(_work):
        s = socket.create_connection(("127.0.0.1", tcp_port))
        batch = []
        size = 0
        for m in messages:
            batch.append(m + b"\n")
            size += len(m) + 1
            if size > (1 << 20):
                s.sendall(b"".join(batch))
                batch, size = [], 0
        s.sendall(b"".join(batch))
        s.close()

    if "tcp" in parts:
        run("syslog TCP", f'[[sources]]\ntype = "syslog"\nlisten_tcp = "127.0.0.1:{tcp_port}"\n',
            tcp_send, len(lines), nbytes)

    def bulk_bodies():
        """The requests, made before the clock starts: 4 MiB of action and document lines."""
        bodies, body, size = [], [], 0
        action = b'{"index":{"_index":"logs"}}\n'
        for line in lines:
            body.append(action + line + b"\n")
            size += len(line) + len(action) + 1
            if size > (4 << 20):
                bodies.append(b"".join(body))
                body, size = [], 0
        if body:
            bodies.append(b"".join(body))
        return bodies

    def bulk_send_to(host, port, bodies):
        """Posts the bodies over `--bulk-clients` connections, as a shipper's workers do."""
        def client(mine):
            conn = iq.http.client.HTTPConnection(host, port, timeout=600)
            for body in mine:
                conn.request("POST", "/_bulk", body=body,
                             headers={"content-type": "application/x-ndjson"})
                resp = conn.getresponse()
                answer = resp.read()
                # The answer's head says whether any item failed; the items are not parsed
                # (that would time this client's JSON decoder).
                if resp.status != 200 or b'"errors":false' not in answer[:64]:
                    raise SystemExit(f"_bulk: {resp.status} {answer[:300]!r}")
            conn.close()
        n = max(1, args.bulk_clients)
        threads = [threading.Thread(target=client, args=(bodies[i::n],)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    if "bulk" not in parts:
        return
    # _bulk needs the server's address: run it by hand.
    work = tempfile.mkdtemp(prefix="collect-bench-", dir=iq.OUT)
    try:
        config = os.path.join(work, "logyard.toml")
        with open(config, "w") as f:
            f.write("[store]\nretention_days = 0\n[alerts]\nenabled = false\n")
        bodies = bulk_bodies()
        proc, host, port = iq.start_server(os.path.join(work, "data"), config)
        try:
            started = time.time()
            bulk_send_to(host, port, bodies)
            stored, secs = wait_count(host, port, len(lines), started)
        finally:
            proc.terminate()
            proc.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'_bulk':12} {stored / secs:>12,.0f} lines/s {nbytes / secs / 1e6:>8.1f} MB/s "
          f"{secs:>7.1f} s   lost {len(lines) - stored:,}", flush=True)


if __name__ == "__main__":
    main()
