#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ on the stable toolchain and runs each
# for SECONDS (default 180) with its seed corpus; prints, per target,
# executions, edges covered, time and findings. Exits non-zero when a target
# crashes, leaving the input under target/fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Inputs a run finds interesting are kept in target/fuzz/corpus/<target>/
# and used again by the next run; fuzz/corpus/<target>/ holds the checked-in
# seeds. Reproduce a crash with
#   target/fuzz/x86_64-unknown-linux-gnu/release/<target> <crash file>
set -Eeuo pipefail
cd "$(dirname "$0")/.."

log() { printf '[fuzz] %s\n' "$*" >&2; }

seconds=${1:-180}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS] [TARGET...]  (SECONDS: how long each target runs, a positive integer)" >&2
  exit 2
fi
shift $(($# > 0 ? 1 : 0))

# Every fuzz/fuzz_targets/<name>.rs is a target (and a [[bin]] in fuzz/Cargo.toml).
all_targets=()
for f in fuzz/fuzz_targets/*.rs; do all_targets+=("$(basename "$f" .rs)"); done
targets=("${@:-${all_targets[@]}}")
for t in "${targets[@]}"; do
  [[ -f fuzz/fuzz_targets/$t.rs ]] || { echo "unknown fuzz target $t (have: ${all_targets[*]})" >&2; exit 2; }
done

# Coverage instrumentation without a nightly toolchain or cargo-fuzz. The
# explicit --target keeps RUSTFLAGS off build scripts and proc macros.
triple=x86_64-unknown-linux-gnu
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares"
export CARGO_TARGET_DIR=$PWD/target/fuzz
export RUST_BACKTRACE=${RUST_BACKTRACE:-1}
log "building ${targets[*]}"
bins=()
for t in "${targets[@]}"; do bins+=(--bin "$t"); done
cargo build -q --release --target "$triple" --manifest-path fuzz/Cargo.toml "${bins[@]}"

dict_for() {
  case $1 in
    canonical_scan | metadata | trust) echo fuzz/dict/json.dict ;;
    key_uri | piv_apdu | keyd_config) echo "fuzz/dict/$1.dict" ;;
  esac
}

printf '%-16s %12s %8s %8s  %s\n' target executions edges seconds findings
failed=()
for t in "${targets[@]}"; do
  work=$CARGO_TARGET_DIR/corpus/$t
  artifacts=$CARGO_TARGET_DIR/artifacts/$t
  logfile=$CARGO_TARGET_DIR/logs/$t.log
  mkdir -p "$work" "$artifacts" "$(dirname "$logfile")"
  args=(-max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1
    -artifact_prefix="$artifacts/")
  dict=$(dict_for "$t")
  [[ -n $dict ]] && args+=(-dict="$dict")
  start=$SECONDS
  rc=0
  "$CARGO_TARGET_DIR/$triple/release/$t" "${args[@]}" "$work" "fuzz/corpus/$t" >"$logfile" 2>&1 || rc=$?
  elapsed=$((SECONDS - start))
  # libFuzzer's own figures: units executed, and "cov:", the edges covered.
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logfile" | tail -n 1)
  edges=$(sed -n 's/.* cov: \([0-9]*\) .*/\1/p' "$logfile" | tail -n 1)
  if ((rc == 0)); then
    findings=none
  else
    failed+=("$t")
    artifact=$(sed -n 's/.*Test unit written to //p' "$logfile" | tail -n 1)
    findings="exit $rc: ${artifact:-no input written}; log $logfile"
  fi
  printf '%-16s %12s %8s %8s  %s\n' "$t" "${execs:-?}" "${edges:-?}" "$elapsed" "$findings"
done

if ((${#failed[@]})); then
  log "findings in: ${failed[*]} (each input is under target/fuzz/artifacts/<target>/; the log's end shows the panic)"
  exit 1
fi
