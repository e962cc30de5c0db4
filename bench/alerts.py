#!/usr/bin/env python3
"""What alert rules cost ingest: the same data sent with alerting off and with 50 rules.

Runs bench/ingest_query.py's ingest twice per round, alternating, on fresh data
directories: once with `[alerts] enabled = false`, once with 50 rules (immediate, threshold
and pattern rules over levels, agents, words and regexes) whose notifications go to a
closed local port. Prints lines/s of each and the ratio.

    cargo build --release
    python3 bench/alerts.py [--lines 2000000] [--rounds 2]
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ingest_query as iq  # noqa: E402

AGENTS = ["api-server", "nginx", "HERMES", "auth-service", "db-proxy", "web-app"]


def rules_config(n):
    out = ["[[alerts.notifiers]]", 'name = "sink"', 'type = "webhook"',
           'url = "http://127.0.0.1:9/"', ""]
    kinds = [
        ("immediate", "level:>=CRITICAL", None),
        ("threshold", "level:ERROR agent:{agent}", 5),
        ("pattern", '~"connection (refused|reset)"', None),
        ("threshold", '"timeout" agent:{agent}', 20),
        ("pattern", '~"response_time: [0-9]{{5,}}ms"', None),
    ]
    for i in range(n):
        kind, query, count = kinds[i % len(kinds)]
        query = query.format(agent=AGENTS[i % len(AGENTS)])
        out += ["[[alerts.rules]]", f'name = "rule-{i}"', f"kind = \"{kind}\"",
                f"query = '{query}'", 'notify = ["sink"]']
        if count:
            out += [f"count = {count}", 'window = "5m"', 'group_by = ["agent"]']
        out.append("")
    return "\n".join(out)


def run_once(path, lines, config_text):
    work = tempfile.mkdtemp(prefix="alerts-bench-", dir=iq.OUT)
    try:
        config = os.path.join(work, "logyard.toml")
        with open(config, "w") as f:
            f.write("[store]\nretention_days = 0\n" + config_text)
        proc, host, port = iq.start_server(os.path.join(work, "data"), config)
        try:
            accepted, secs = iq.ingest(host, port, path, 1, 4 << 20)
            assert accepted == lines, (accepted, lines)
            return lines / secs
        finally:
            proc.terminate()
            proc.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--rules", type=int, default=50)
    args = ap.parse_args()
    if not os.path.exists(iq.BIN):
        raise SystemExit("build first: cargo build --release")
    path = iq.generate(args.lines, 42)
    off, on = [], []
    for r in range(args.rounds):
        off.append(run_once(path, args.lines, "[alerts]\nenabled = false\n"))
        on.append(run_once(path, args.lines, rules_config(args.rules)))
        print(f"round {r + 1}: no rules {off[-1]:,.0f} lines/s, "
              f"{args.rules} rules {on[-1]:,.0f} lines/s", file=sys.stderr)
    a, b = statistics.median(off), statistics.median(on)
    print(f"\n{args.lines} lines, median of {args.rounds} rounds, one stream")
    print(f"alerting off:   {a:,.0f} lines/s")
    print(f"{args.rules} rules:       {b:,.0f} lines/s ({(1 - b / a) * 100:+.1f}% cost)")


if __name__ == "__main__":
    main()
