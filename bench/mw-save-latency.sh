#!/usr/bin/env bash
# The added latency of a save on a real MediaWiki (Debian's 1.39, SQLite, PHP's built-in
# server with opcache) with 200 filters: no filter extension vs the WikiGuard extension +
# `wikiguard serve` vs Debian's bundled AbuseFilter running the same filters, interleaved
# on the same wiki in one run. See bench/README.md.
#
# Usage: bench/mw-save-latency.sh [--edits N] [--durability full|normal]
#        (default 50 edits each way; the service's store durability, default full)
#
# Needs: apt-get install mediawiki php-cli php-sqlite3 php-apcu php-intl php-mbstring
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
edits=50
while [ $# -gt 0 ]; do
  case $1 in
    --edits) edits=${2:?}; shift ;;
    --durability) export WIKIGUARD_BENCH_DURABILITY=${2:?}; shift ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "mw-save-latency.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
cd "$here/.."
WIKIGUARD_BENCH_EDITS=$edits cargo test --release -p wikiguard --test e2e -- \
  --ignored --exact bench::save_latency_with_200_filters --nocapture 2>&1 \
  | grep -v -e '^running' -e '^test result' -e '^$'
