#!/usr/bin/env python3
"""Rotation benchmark: logyard rotate against Debian's logrotate on the same work, one run.

Two cases, each on two identical copies of the files (one per tool), both forced, both
compressing with gzip at its default level:
  many   1,000 files of 256 KiB each (gen_logs.py --format mixed text)
  big    one 2 GiB file (gen_logs.py jsonl output repeated)

    cargo build --release
    python3 bench/rotate.py [--files 1000] [--file-kib 256] [--big-gib 2]

Needs `logrotate` (Debian: apt-get install logrotate).
"""
import argparse
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GEN = os.path.join(os.path.dirname(ROOT), "shared", "bench", "gen_logs.py")
OUT = os.path.join(ROOT, "bench", "out")
BIN = os.path.join(ROOT, "target", "release", "logyard")


def sample(lines, fmt):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, f"{fmt}-{lines}-7.log")
    if not os.path.exists(path):
        subprocess.run([sys.executable, GEN, "--lines", str(lines), "--seed", "7",
                        "--format", fmt, "--out", path + ".tmp"], check=True)
        os.rename(path + ".tmp", path)
    return path


def make_many(dir_, files, kib, text):
    os.makedirs(dir_)
    chunk = text[: kib * 1024]
    for i in range(files):
        with open(os.path.join(dir_, f"app{i:04}.log"), "wb") as f:
            f.write(chunk)


def make_big(dir_, gib, source):
    os.makedirs(dir_)
    want = int(gib * (1 << 30))
    with open(os.path.join(dir_, "big.log"), "wb") as out, open(source, "rb") as src:
        data = src.read()
        written = 0
        while written < want:
            part = data[: want - written]
            out.write(part)
            written += len(part)


def conf(path, logs):
    with open(path, "w") as f:
        f.write(f'"{logs}/*.log" {{\n    rotate 5\n    compress\n    missingok\n}}\n')
    os.chmod(path, 0o644)


def timed(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def check_same(a, b):
    """Both tools left the same names, and the archives decompress to the same bytes."""
    names_a, names_b = sorted(os.listdir(a)), sorted(os.listdir(b))
    if names_a != names_b:
        raise SystemExit(f"different files: {names_a[:5]} vs {names_b[:5]}")
    for name in names_a[:3] + names_a[-3:]:
        pa, pb = os.path.join(a, name), os.path.join(b, name)
        opener = gzip.open if name.endswith(".gz") else open
        with opener(pa, "rb") as fa, opener(pb, "rb") as fb:
            while True:
                x, y = fa.read(1 << 20), fb.read(1 << 20)
                if x != y:
                    raise SystemExit(f"{name}: contents differ")
                if not x:
                    break


def case(name, work, make):
    ours, theirs = os.path.join(work, name, "ours"), os.path.join(work, name, "theirs")
    make(ours)
    make(theirs)
    subprocess.run(["sync"], check=True)
    conf(os.path.join(work, name, "ours.conf"), ours)
    conf(os.path.join(work, name, "theirs.conf"), theirs)
    t_ours = timed([BIN, "rotate", "--force", "--logrotate-conf",
                    os.path.join(work, name, "ours.conf"),
                    "--state", os.path.join(work, name, "ours.state")])
    t_theirs = timed(["logrotate", "--force", "--state", os.path.join(work, name, "theirs.state"),
                      os.path.join(work, name, "theirs.conf")])
    check_same(ours, theirs)
    shutil.rmtree(os.path.join(work, name))
    return t_ours, t_theirs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--file-kib", type=int, default=256)
    ap.add_argument("--big-gib", type=float, default=2)
    args = ap.parse_args()
    if not os.path.exists(BIN):
        raise SystemExit("build first: cargo build --release")
    if not shutil.which("logrotate"):
        raise SystemExit("install logrotate: apt-get install logrotate")

    with open(sample(200_000, "mixed"), "rb") as f:
        text = f.read()
    big_source = sample(2_000_000, "jsonl")
    work = tempfile.mkdtemp(prefix="rotate-bench-", dir=OUT)
    os.chmod(work, 0o755)
    try:
        rows = [
            (f"{args.files} files of {args.file_kib} KiB",
             case("many", work, lambda d: make_many(d, args.files, args.file_kib, text))),
            (f"one file of {args.big_gib:g} GiB",
             case("big", work, lambda d: make_big(d, args.big_gib, big_source))),
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'work':28} {'logyard':>10} {'logrotate':>10} {'ratio':>7}")
    for label, (ours, theirs) in rows:
        print(f"{label:28} {ours:9.2f}s {theirs:9.2f}s {theirs / ours:6.2f}x")


if __name__ == "__main__":
    main()
