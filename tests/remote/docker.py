#!/usr/bin/env python3
"""A stand-in for the Docker CLI on the test's SSH host: answers `docker ps`, `logs`,
`inspect` and `stats` in Docker's own output formats from the files of a folder laid out
as the test writes it, and records each call in calls.log there.

  <data>/ps.jsonl                  lines of `docker ps --format '{{json .}}'`
  <data>/stats.jsonl               lines of `docker stats --no-stream --format '{{json .}}'`
  <data>/inspect/<name>.json       one object of `docker inspect`
  <data>/containers/<name>.log     the json-file log driver's file: {"log","stream","time"}
  <data>/break-<name>              `docker logs <name>` prints two lines, then drops the
                                   SSH connection (the file is removed)
  <data>/hang-<name>               `docker logs <name>` prints one line and hangs

<data> is the folder `docker-data` beside the folder of this script.
"""
import calendar
import json
import os
import signal
import sys
import time

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "docker-data")


def ns(stamp):
    """RFC 3339 UTC with up to nine fraction digits -> nanoseconds since the epoch."""

    stamp = stamp.rstrip("Z")
    main, _, frac = stamp.partition(".")
    secs = calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S"))
    return secs * 10**9 + int((frac + "000000000")[:9])


def fail(text, code=1):
    sys.stderr.write(text + "\n")
    sys.exit(code)


def drop_connection():
    """Kills the sshd process serving this session: the client sees the connection end."""
    pid = os.getppid()
    while pid > 1:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/comm") as f:
            comm = f.read().strip()
        if comm.startswith("sshd"):
            os.kill(pid, signal.SIGKILL)
            return
        pid = int(fields[1])


def logs(args):
    since, timestamps, tail, name = None, False, None, None
    it = iter(args)
    for a in it:
        if a in ("-t", "--timestamps"):
            timestamps = True
        elif a == "--since":
            since = ns(next(it))
        elif a in ("-n", "--tail"):
            tail = int(next(it))
        elif a.startswith("-"):
            fail(f"unknown flag: {a}")
        else:
            name = a
    path = os.path.join(DATA, "containers", f"{name}.log")
    if not os.path.exists(path):
        fail(f"Error response from daemon: No such container: {name}")
    with open(path) as f:
        entries = [json.loads(l) for l in f if l.strip()]
    if since is not None:
        entries = [e for e in entries if ns(e["time"]) >= since]
    if tail is not None:
        entries = entries[-tail:] if tail > 0 else []
    brk = os.path.join(DATA, f"break-{name}")
    hang = os.path.exists(os.path.join(DATA, f"hang-{name}"))
    for i, e in enumerate(entries):
        out = sys.stdout if e["stream"] == "stdout" else sys.stderr
        stamp = e["time"]
        out.write((stamp + " " if timestamps else "") + e["log"])
        out.flush()
        if hang:
            time.sleep(15)
        if i == 1 and os.path.exists(brk):
            os.remove(brk)
            # Let sshd pass the lines on before the connection goes.
            time.sleep(0.5)
            drop_connection()


def main():
    args = sys.argv[1:]
    with open(os.path.join(DATA, "calls.log"), "a") as f:
        f.write(json.dumps(args) + "\n")
    if not args:
        fail("Usage:  docker [OPTIONS] COMMAND")
    cmd, rest = args[0], args[1:]
    if cmd == "ps":
        with open(os.path.join(DATA, "ps.jsonl")) as f:
            sys.stdout.write(f.read())
    elif cmd == "logs":
        logs(rest)
    elif cmd == "inspect":
        out = []
        for name in rest:
            p = os.path.join(DATA, "inspect", f"{name}.json")
            if not os.path.exists(p):
                print("[]")
                fail(f"Error: No such object: {name}")
            with open(p) as f:
                out.append(json.load(f))
        print(json.dumps(out, indent=4))
    elif cmd == "stats":
        names = [a for a in rest if not a.startswith("-") and a != "{{json .}}"]
        if "--no-stream" not in rest:
            fail("this stand-in only answers --no-stream")
        with open(os.path.join(DATA, "stats.jsonl")) as f:
            for line in f:
                if not names or json.loads(line)["Name"] in names:
                    sys.stdout.write(line)
    else:
        fail(f'docker: \'{cmd}\' is not a docker command.')


main()
