#!/usr/bin/env bash
# Builds the plain tarball of logyard from a built binary:
#
#   packaging/tarball.sh BINARY [VERSION] [OUTDIR]
#
# writes OUTDIR/logyard-VERSION-ARCH.tar.gz (VERSION: Cargo.toml's by default; OUTDIR: the
# current folder) holding one folder logyard-VERSION-ARCH/ with bin/logyard (stripped),
# logyard.service, logyard.toml (the default configuration), README.md and docs/install.md,
# which says how to install it by hand. The last line printed is the tarball's path.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
  echo "usage: $0 BINARY [VERSION] [OUTDIR]" >&2
  exit 2
fi
binary="$1"
version="${2:-$(awk -F'"' '/^version = "/ { print $2; exit }' "$root/Cargo.toml")}"
outdir="${3:-.}"
if [ ! -x "$binary" ]; then
  echo "error: $binary is not an executable file; build it first: cargo build --release" >&2
  exit 1
fi
if [ -z "$version" ]; then
  echo "error: no VERSION given and none found in $root/Cargo.toml" >&2
  exit 1
fi
# The machine's name for the architecture: dpkg's on Debian, uname's elsewhere.
arch="$(dpkg --print-architecture 2>/dev/null || uname -m)"
mkdir -p "$outdir"
outdir="$(cd "$outdir" && pwd)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
name="logyard-$version-$arch"
top="$work/$name"
install -d -m 0755 "$top/bin" "$top/docs"
if command -v strip >/dev/null 2>&1; then
  strip --strip-unneeded -o "$top/bin/logyard" "$binary"
  chmod 0755 "$top/bin/logyard"
else
  install -m 0755 "$binary" "$top/bin/logyard"
fi
install -m 0644 "$root/packaging/logyard.service" "$top/logyard.service"
install -m 0644 "$root/packaging/logyard.toml" "$top/logyard.toml"
install -m 0644 "$root/README.md" "$top/README.md"
install -m 0644 "$root/docs/install.md" "$top/docs/install.md"

tarball="$outdir/$name.tar.gz"
tar -C "$work" --owner=0 --group=0 --numeric-owner -czf "$tarball" "$name"
echo "$tarball"
