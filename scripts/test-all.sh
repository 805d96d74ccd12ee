#!/usr/bin/env bash
# Runs the whole notary-keyd test suite on a fresh Debian 12 machine:
# installs the system packages the tests need (when missing), then builds
# and tests the workspace. Safe to run again; it only installs what is absent.
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
# systemd-socket-activate for the socket-activation tests), strace (the fault
# tests kill the daemon at an exact system call with it).
packages=(softhsm2 openssl util-linux notary swtpm swtpm-tools libtss2-dev pkg-config tpm2-tools
  pcscd vsmartcard-vpcd libpcsclite-dev systemd strace)
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
log "cargo test"
cargo test --workspace -- --test-threads=4
# The unit's hardening score, for the CI log (the tests hold it at OK or better).
log "$(systemd-analyze security --offline=true --no-pager systemd/notary-keyd.service | tail -n 1)"
