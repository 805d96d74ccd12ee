#!/usr/bin/env bash
# Builds the Debian package notary-keyd_VERSION_ARCH.deb from the release
# binaries, with dpkg-deb (no debhelper needed):
#   scripts/build-deb.sh [OUT_DIR]      (default: TARGET_DIR/debian)
# Prints the absolute path of the .deb on its last line. Contents: the binaries, the
# units, sysusers and tmpfiles snippets, a working /etc/notary-keyd/keyd.toml
# (a conffile), the annotated example config, the drop-in examples and the
# docs, man pages and bash/zsh/fish completions; maintainer scripts in debian/. Depends: from dpkg-shlibdeps on the
# binaries, plus what the units run (procps: ExecReload=/bin/kill; systemd:
# sysusers, tmpfiles, credentials).
set -Eeuo pipefail
cd "$(dirname "$0")/.."

log() { printf '[build-deb] %s\n' "$*" >&2; }

target_dir=${CARGO_TARGET_DIR:-target}
out=${1:-$target_dir/debian}
log "cargo build --release (notary-keyd, notaryctl, docgen)"
cargo build --release --locked -p notary-keyd -p notaryctl -p docgen >&2
bin=$target_dir/release

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/notary-keyd
doc=$root/usr/share/doc/notary-keyd

install -D -m 0755 "$bin/notary-keyd" "$root/usr/bin/notary-keyd"
install -D -m 0755 "$bin/notaryctl" "$root/usr/bin/notaryctl"
strip --strip-unneeded "$root/usr/bin/notary-keyd" "$root/usr/bin/notaryctl"
install -D -m 0644 systemd/notary-keyd.service "$root/usr/lib/systemd/system/notary-keyd.service"
install -D -m 0644 systemd/notary-keyd.socket "$root/usr/lib/systemd/system/notary-keyd.socket"
install -D -m 0644 systemd/notary-keyd.sysusers "$root/usr/lib/sysusers.d/notary-keyd.conf"
install -D -m 0644 systemd/notary-keyd.tmpfiles "$root/usr/lib/tmpfiles.d/notary-keyd.conf"
install -D -m 0644 debian/keyd.toml "$root/etc/notary-keyd/keyd.toml"
install -D -m 0644 docs/notary-keyd.example.toml "$doc/examples/keyd.toml"
for drop_in in systemd/drop-ins/*.conf; do
  install -D -m 0644 "$drop_in" "$doc/examples/drop-ins/$(basename "$drop_in")"
done
install -m 0644 README.md docs/*.md "$doc/"
install -m 0644 debian/copyright "$doc/copyright"

# Man pages and shell completions, made by docgen from the clap trees and
# the example config into a fresh folder; installed where man and the
# shells look.
generated=$stage/generated
"$bin/docgen" "$generated" >&2
shopt -s nullglob
for page in "$generated"/man/*.[1-8]; do
  section=${page##*.}
  install -D -m 0644 "$page" "$root/usr/share/man/man$section/$(basename "$page")"
  gzip -9n "$root/usr/share/man/man$section/$(basename "$page")"
done
for file in "$generated"/completions/bash/*; do
  install -D -m 0644 "$file" "$root/usr/share/bash-completion/completions/$(basename "$file")"
done
for file in "$generated"/completions/zsh/*; do
  install -D -m 0644 "$file" "$root/usr/share/zsh/vendor-completions/$(basename "$file")"
done
for file in "$generated"/completions/fish/*; do
  install -D -m 0644 "$file" "$root/usr/share/fish/vendor_completions.d/$(basename "$file")"
done
shopt -u nullglob

# Shared-library dependencies of the binaries, as dpkg-shlibdeps sees them
# (it wants a debian/control to exist).
mkdir -p "$stage/debian"
printf 'Source: notary-keyd\n\nPackage: notary-keyd\nArchitecture: any\n' >"$stage/debian/control"
shlibs=$(cd "$stage" && dpkg-shlibdeps -O -e notary-keyd/usr/bin/notary-keyd -e notary-keyd/usr/bin/notaryctl 2>/dev/null |
  sed -n 's/^shlibs:Depends=//p')
[[ -n $shlibs ]] || { log "dpkg-shlibdeps found no dependencies"; exit 1; }

mkdir -p "$root/DEBIAN"
install -m 0755 debian/postinst debian/prerm debian/postrm "$root/DEBIAN/"
echo /etc/notary-keyd/keyd.toml >"$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<EOF
Package: notary-keyd
Version: $version
Architecture: $arch
Maintainer: notary-keyd maintainers <notary-keyd@example.invalid>
Installed-Size: $size
Depends: $shlibs, procps, systemd
Suggests: softhsm2, pcscd, tpm-udev
Section: admin
Priority: optional
Homepage: https://example.invalid/notary-keyd
Description: signing daemon that keeps Notary (TUF) keys in hardware
 notary-keyd keeps Notary signing keys in PKCS#11 tokens, YubiKey PIV
 slots, the host's TPM 2.0 or an encrypted software keystore, and signs
 for local callers its policy allows, over a Unix socket, with every
 decision in an fsync'd audit log. notaryctl is its client and a drop-in
 for the notary CLI's repository commands. A notary-server can keep its
 timestamp and snapshot keys in it through the notary-signer API.
 .
 The service is socket-activated (notary-keyd.socket); members of the
 notary-keyd group may connect. Removing or purging the package keeps
 the keys (/var/lib/notary-keyd) and the audit log.
EOF

mkdir -p "$out"
deb=$out/notary-keyd_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
log "built $deb"
realpath "$deb"
