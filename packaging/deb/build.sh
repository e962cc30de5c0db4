#!/usr/bin/env bash
# Builds the Debian package of logyard from a built binary, with dpkg-deb alone (no
# cargo-deb, no debhelper):
#
#   packaging/deb/build.sh BINARY [VERSION] [OUTDIR]
#
# BINARY is the logyard binary to ship (target/release/logyard; it is stripped of its
# symbols in the package), VERSION the package's version (default: Cargo.toml's), OUTDIR
# where logyard_VERSION_ARCH.deb is written (default: the current folder). The last line
# printed is the package's path. dpkg-deb's own DPKG_DEB_COMPRESSOR_TYPE and
# DPKG_DEB_COMPRESSOR_LEVEL choose the compression (default xz). Needs dpkg-deb and binutils
# (strip, objdump). See docs/install.md.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

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
for tool in dpkg-deb dpkg strip objdump; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "error: $tool is missing: apt-get install dpkg binutils" >&2
    exit 1
  fi
done
arch="$(dpkg --print-architecture)"
mkdir -p "$outdir"
outdir="$(cd "$outdir" && pwd)"

tree="$(mktemp -d)"
trap 'rm -rf "$tree"' EXIT
chmod 0755 "$tree"

# The files.
install -d -m 0755 "$tree/usr/bin" "$tree/lib/systemd/system" "$tree/etc/logyard" \
  "$tree/usr/share/doc/logyard" "$tree/DEBIAN"
strip --strip-unneeded -o "$tree/usr/bin/logyard" "$binary"
chmod 0755 "$tree/usr/bin/logyard"
install -m 0644 "$root/packaging/logyard.service" "$tree/lib/systemd/system/logyard.service"
install -m 0644 "$root/packaging/logyard.toml" "$tree/etc/logyard/logyard.toml"
install -m 0644 "$root/README.md" "$tree/usr/share/doc/logyard/README.md"
for doc in install configuration sources; do
  install -m 0644 "$root/docs/$doc.md" "$tree/usr/share/doc/logyard/$doc.md"
done
install -m 0644 "$here/copyright" "$tree/usr/share/doc/logyard/copyright"

# Depends: the package of each shared library the binary links (as dpkg-shlibdeps finds
# them), libc6 at least the newest glibc symbol version it uses.
glibc="$(objdump -T "$tree/usr/bin/logyard" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' \
  | sort -uV | tail -n1 || true)"
packages=(libc6)
for lib in $(objdump -p "$tree/usr/bin/logyard" | awk '$1 == "NEEDED" { print $2 }'); do
  # awk reads all of ldconfig's output (no early exit), so pipefail never sees SIGPIPE.
  path="$(ldconfig -p | awk -v lib="$lib" '$1 == lib && !found { print $NF; found = 1 }')"
  if [ -z "$path" ]; then
    echo "error: $binary needs $lib, which is not on this machine" >&2
    exit 1
  fi
  pkg="$(dpkg -S "$(readlink -f "$path")" 2>/dev/null || dpkg -S "$path" 2>/dev/null || true)"
  if [ -z "$pkg" ]; then
    echo "error: no Debian package holds $path (linked by $binary)" >&2
    exit 1
  fi
  packages+=("${pkg%%:*}")
done
depends_line=""
for pkg in $(printf '%s\n' "${packages[@]}" | sort -u); do
  if [ "$pkg" = libc6 ] && [ -n "$glibc" ]; then pkg="libc6 (>= $glibc)"; fi
  depends_line="$depends_line$pkg, "
done
# The maintainer scripts create the user with adduser, or useradd (passwd) without it.
depends_line="${depends_line}adduser | passwd"

installed_size="$(du -k -s --exclude=DEBIAN "$tree" | cut -f1)"

cat >"$tree/DEBIAN/control" <<EOF
Package: logyard
Version: $version
Architecture: $arch
Maintainer: logyard maintainers <logyard@localhost>
Installed-Size: $installed_size
Depends: $depends_line
Section: admin
Priority: optional
Description: log management server in one binary
 logyard collects logs from files, syslog, the journal and the shippers' protocols,
 keeps them in an embedded columnar store, and finds any line from a web UI, an HTTP
 API and a CLI. It raises alerts, rotates log files and writes reports.
 .
 The package runs it as the systemd service logyard (user logyard, data in
 /var/lib/logyard, configuration in /etc/logyard/logyard.toml).
EOF
echo /etc/logyard/logyard.toml >"$tree/DEBIAN/conffiles"
for script in postinst prerm postrm; do
  install -m 0755 "$here/$script" "$tree/DEBIAN/$script"
done

deb="$outdir/logyard_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$tree" "$deb" >&2
echo "$deb"
