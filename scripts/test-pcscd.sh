#!/usr/bin/env bash
# The one pcscd that the virtual-YubiKey tests share (pcscd is one per
# machine: it owns /run/pcscd/pcscd.comm). Its readers are vpcd ports
# 30000-30007, outside the ephemeral port range, where the tests' virtual
# cards (crate virtual-piv) connect.
#
#   test-pcscd.sh start   start it unless it already runs (idempotent)
#   test-pcscd.sh stop    stop it now, unless a test process still uses it
#
# Users (test processes, scripts/test-all.sh) hold a shared flock on
# $DIR/users.lock while they need pcscd, and take it BEFORE `start`. A
# supervisor started with pcscd stops exactly that pcscd (by pid) once no
# user holds the lock any more, so a test run that dies cannot leave it
# behind.
set -Eeuo pipefail

DIR=${NOTARY_TEST_PCSCD_DIR:-/tmp/notary-keyd-pcscd}
BASE_PORT=30000
READERS=4 # vpcd gives each reader two card slots: ports BASE..BASE+2*READERS-1
SOCKET=/run/pcscd/pcscd.comm
VPCD_DRIVER=/usr/lib/pcsc/drivers/serial/libifdvpcd.so

log() { printf '[test-pcscd] %s\n' "$*" >&2; }

# Whether the pid in file $1 is a live process whose command line holds $2
# (pid files can be stale, and pids get reused).
alive() {
  [[ -s $1 ]] && tr '\0' ' ' <"/proc/$(cat "$1")/cmdline" 2>/dev/null | grep -q -- "$2"
}

ours_running() {
  alive "$DIR/pcscd.pid" pcscd && [[ -S $SOCKET ]]
}

# vpcd keeps its two card slots in globals of the driver library, so each
# reader needs its own copy of the library (pcscd and the dynamic loader
# would share one loaded file between readers).
write_config() {
  mkdir -p "$DIR/reader.conf.d" "$DIR/drivers"
  local i port
  for ((i = 0; i < READERS; i++)); do
    port=$((BASE_PORT + 2 * i))
    cp "$VPCD_DRIVER" "$DIR/drivers/libifdvpcd-$port.so"
    printf 'FRIENDLYNAME "Notary Test PCD %d"\nDEVICENAME /dev/null:%d\nLIBPATH %s\nCHANNELID %d\n' \
      "$port" "$port" "$DIR/drivers/libifdvpcd-$port.so" "$port" >"$DIR/reader.conf.d/vpcd-$port"
  done
}

start() {
  mkdir -p "$DIR"
  exec 8>"$DIR/setup.lock"
  flock -x 8
  if ours_running; then
    exit 0
  fi
  if alive /run/pcscd/pcscd.pid pcscd; then
    log "another pcscd (pid $(cat /run/pcscd/pcscd.pid)) is running without the test readers; stop it first"
    exit 1
  fi
  command -v pcscd >/dev/null || { log "pcscd is not installed (apt-get install pcscd vsmartcard-vpcd)"; exit 1; }
  [[ -e $VPCD_DRIVER ]] || { log "vpcd is not installed (apt-get install vsmartcard-vpcd)"; exit 1; }
  write_config
  rm -f "$DIR/pcscd.pid" "$SOCKET"
  setsid "$0" supervise </dev/null >"$DIR/supervisor.log" 2>&1 &
  local i
  for ((i = 0; i < 200; i++)); do
    if ours_running; then
      log "pcscd $(cat "$DIR/pcscd.pid") serves vpcd ports $BASE_PORT-$((BASE_PORT + 2 * READERS - 1))"
      exit 0
    fi
    sleep 0.05
  done
  log "pcscd did not come up; see $DIR/pcscd.log"
  exit 1
}

supervise() {
  # Inherited descriptors may hold users.lock (a caller's shared lock) or
  # setup.lock; keeping them would stop this supervisor from ever seeing
  # the last user leave.
  local fd
  for fd in /proc/$$/fd/*; do
    fd=${fd##*/}
    if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
  done
  pcscd --foreground --config "$DIR/reader.conf.d" >"$DIR/pcscd.log" 2>&1 &
  local pid=$!
  echo "$$" >"$DIR/supervisor.pid"
  echo "$pid" >"$DIR/pcscd.pid"
  trap 'kill "$pid" 2>/dev/null; wait "$pid"; rm -f "$DIR/pcscd.pid" "$DIR/supervisor.pid"; exit 0' TERM INT
  exec 9>"$DIR/users.lock"
  while sleep 0.5; do
    if ! kill -0 "$pid" 2>/dev/null || grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
      break
    fi
    if flock -n -x 9; then
      break
    fi
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" || true
  rm -f "$DIR/pcscd.pid" "$DIR/supervisor.pid"
}

stop() {
  alive "$DIR/supervisor.pid" test-pcscd.sh || exit 0
  exec 9>"$DIR/users.lock"
  if ! flock -n -x 9; then
    log "pcscd is still in use by another test process; it stops when that one ends"
    exit 0
  fi
  kill -TERM "$(cat "$DIR/supervisor.pid")" 2>/dev/null || true
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -e $DIR/pcscd.pid ]] || exit 0
    sleep 0.1
  done
  log "pcscd did not stop; see $DIR/pcscd.log"
  exit 1
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  supervise) supervise ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
