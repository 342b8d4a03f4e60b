#!/usr/bin/env bash
# Breached-password index benchmark (see "Breached-password index" in bench/README.md).
#
#   bench/passwords/run.sh                 # 100M hashes, 2M lookups per case, 10M-line text lists
#   bench/passwords/run.sh --small         # 1M hashes: a quick check that it works
#   RECORDS=50000000 TEXT_RECORDS=0 bench/passwords/run.sh
#
# Needs about 24 bytes of free disk per hash (2.4 GB for 100M), plus 70 bytes per text line;
# scales the hash count down when the disk is short. Everything goes to a fresh temp dir
# (BENCH_DIR's parent, default $TMPDIR or /tmp) that is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

RECORDS=${RECORDS:-100000000}
LOOKUPS=${LOOKUPS:-2000000}
TEXT_RECORDS=${TEXT_RECORDS:-10000000}
if [[ "${1:-}" == "--small" ]]; then
  RECORDS=1000000 LOOKUPS=200000 TEXT_RECORDS=1000000
fi

PARENT=${BENCH_DIR:-${TMPDIR:-/tmp}}
DIR=$(mktemp -d "$PARENT/wikiguard-pw-bench.XXXXXX")
trap 'rm -rf "$DIR"' EXIT

avail_kb=$(df -Pk "$DIR" | awk 'NR == 2 { print $4 }')
need_kb() { echo $(( ($1 * 24 + TEXT_RECORDS * 70) / 1024 * 12 / 10 + 65536 )); }
df -h "$DIR" | sed 's/^/# /'
while (( $(need_kb "$RECORDS") > avail_kb )) && (( RECORDS > 1000000 )); do
  RECORDS=$(( RECORDS / 2 ))
  echo "# not enough free disk: scaling down to $RECORDS hashes" >&2
done
if (( $(need_kb "$RECORDS") > avail_kb )); then
  echo "not enough free disk in $PARENT even for $RECORDS hashes; set BENCH_DIR" >&2
  exit 1
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/root/.cache/wikiguard/target}
cargo build --release -q -p wikiguard-accounts --example breach_bench
echo "# $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), $(rustc --version)"
# Bounded: 100M hashes take about a minute or two on a 2-core machine; stop at 10 minutes.
timeout 600 "$CARGO_TARGET_DIR/release/examples/breach_bench" \
  --records "$RECORDS" --lookups "$LOOKUPS" --text-records "$TEXT_RECORDS" --dir "$DIR/run"
