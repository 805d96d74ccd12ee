#!/usr/bin/env bash
# Runs the whole notary-keyd test suite on a fresh Debian 12 machine:
# installs the system packages the tests need (when missing), then builds
# and tests the workspace, then runs each fuzz target briefly. Safe to run
# again; it only installs what is absent.
set -Eeuo pipefail
cd "$(dirname "$0")/.."

log() { printf '[test-all] %s\n' "$*" >&2; }

# Packages: softhsm2 (PKCS#11 token), openssl (independent verifier in the
# tests), util-linux (setpriv, to call the daemon as another uid), notary
# (Debian's notary-server, notary-signer and notary CLI for interop tests),
# swtpm + libtss2-dev + pkg-config (TPM backend and its tests; tpm2-tools to
# read and set the TPM's dictionary-attack counters in them), pcscd +
# vsmartcard-vpcd + libpcsclite-dev (YubiKey backend against the project's
# virtual PIV card), systemd (systemd-analyze verify/security on the units,
# systemd-socket-activate for the socket-activation tests), systemd-container
# + debootstrap (systemd_pid1 and deb_package boot a Debian 12 container with
# systemd as PID 1; its root is cached in /var/cache/notary-keyd-tests),
# dpkg-dev (dpkg-shlibdeps for scripts/build-deb.sh), curl and iproute2 (the
# ceremony tests upload by hand to notary-server, and give an `unshare -n`
# namespace a link and a default route), g++ (libfuzzer-sys compiles
# libFuzzer for the fuzz step), strace (the fault tests kill the daemon at an
# exact system call with it).
packages=(softhsm2 openssl util-linux notary swtpm swtpm-tools libtss2-dev pkg-config tpm2-tools
  pcscd vsmartcard-vpcd libpcsclite-dev systemd systemd-container debootstrap dpkg-dev curl iproute2 g++
  strace)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing: ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

export CARGO_TERM_COLOR=never
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings
log "building binaries (the end-to-end tests run the real notary-keyd and notaryctl)"
cargo build --workspace --bins
log "starting the test pcscd (vpcd readers for the virtual YubiKeys)"
# One pcscd for the whole run. The shared lock on users.lock keeps it up
# between test binaries; at the end we let go and stop exactly the pcscd
# scripts/test-pcscd.sh started (it stays if another test run still uses it).
pcscd_dir=${NOTARY_TEST_PCSCD_DIR:-/tmp/notary-keyd-pcscd}
mkdir -p "$pcscd_dir"
exec {pcscd_user}>"$pcscd_dir/users.lock"
flock -s "$pcscd_user"
scripts/test-pcscd.sh start
stop_test_pcscd() {
  exec {pcscd_user}>&-
  scripts/test-pcscd.sh stop
}
trap stop_test_pcscd EXIT
# The container tests fail on a machine that cannot boot one (not root, no
# nspawn) unless NOTARY_KEYD_ALLOW_NO_CONTAINER=1 is set; their first run
# debootstraps the cached root (about 1-2 minutes). deb_package installs the
# package built here, once per run (a release build).
log "building the Debian package (scripts/build-deb.sh)"
NOTARY_KEYD_DEB=$(scripts/build-deb.sh | tail -n 1)
export NOTARY_KEYD_DEB
log "cargo test"
# --no-fail-fast: one run names every failing test, not just the first binary.
cargo test --workspace --no-fail-fast -- --test-threads=4
# Every fuzz target for a bounded time from its corpus; a crash fails the run
# and leaves its input under target/fuzz/artifacts/ (docs/reliability.md).
log "fuzzing each target for ${NOTARY_FUZZ_SECONDS:=25} s"
scripts/fuzz.sh "$NOTARY_FUZZ_SECONDS"
# The unit's hardening score, for the CI log (the tests hold it at OK or better).
log "$(systemd-analyze security --offline=true --no-pager systemd/notary-keyd.service | tail -n 1)"
