#!/usr/bin/env bash
# /v1/check end to end over HTTP: a real `wikiguard serve` (release build, SQLite in a temp
# dir, hits logged) with the 200 benchmark filters, on the 5 KB, 50 KB and 100 KB edits.
# wrk drives it from loopback. See bench/README.md.
#
# Usage: bench/check-http.sh [--no-build] [--duration SECONDS] [--connections N]
#
# Prints, per edit: p50/p99 latency with one connection (one check at a time: the latency a
# saving editor sees) and checks per second with N connections (default 4) on 2 threads.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
build=1
duration=10
connections=4
while [ $# -gt 0 ]; do
  case $1 in
    --no-build) build=0 ;;
    --duration) duration=${2:?}; shift ;;
    --connections) connections=${2:?}; shift ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "check-http.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
. "$here/steal.sh"
command -v wrk >/dev/null || { echo "check-http.sh: wrk is not installed (apt-get install wrk)" >&2; exit 2; }
target=${CARGO_TARGET_DIR:-$root/target}
if [ "$build" = 1 ]; then
  (cd "$root" && cargo build --release --quiet -p wikiguard)
fi
wg="$target/release/wikiguard"

work=$(mktemp -d)
trap 'rc=$?; [ $rc = 0 ] || { echo "check-http.sh: the service log:" >&2; tail -20 "$work/serve.log" >&2 2>/dev/null; }; kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
python3 "$root/bench/edits/gen.py" "$work/edits" >/dev/null
python3 "$here/check/make_actions.py" "$work/edits" "$work/actions"

export CHECK_TOKEN=bench-check-token-0123456789
# Every request a different edit of the same page: its new text never seen before, its old
# text the one already stored (see check/post.lua). VARY_NEW_TEXT=0 repeats one edit.
export VARY_NEW_TEXT=${VARY_NEW_TEXT:-1}
admin=bench-admin-token-0123456789
port=$(free_port)
WIKIGUARD_LISTEN=127.0.0.1:$port WIKIGUARD_DATA_DIR="$work/data" WIKIGUARD_CHECK_TOKEN=$CHECK_TOKEN \
  WIKIGUARD_ADMIN_TOKEN=$admin WIKIGUARD_LOG_LEVEL=warn "$wg" serve 2>"$work/serve.log" &
pid=$!
base=http://127.0.0.1:$port
python3 - "$base" "$admin" "$root/bench/filters" <<'PY'
import json, os, sys, time, urllib.request
base, token, folder = sys.argv[1:4]
for _ in range(100):
    try:
        urllib.request.urlopen(base + "/healthz", timeout=1); break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("check-http.sh: the service did not answer /healthz within 10 s (its log follows)")
for name in sorted(os.listdir(folder)):
    if not name.endswith(".af"):
        continue
    body = json.dumps({"description": name[:-3], "pattern": open(os.path.join(folder, name), encoding="utf-8").read(),
                       "actions": {"tag": {"tags": ["bench"]}}}).encode()
    req = urllib.request.Request(base + "/v1/filters", data=body, method="POST",
                                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
PY

# The service's CPU time (user + system, all its threads) per check during the N-connection
# run: less moved than checks/s by time the host takes from the machine (see steal.sh).
printf '%-8s %10s %10s %12s %14s %12s\n' edit "p50 ms" "p99 ms" "checks/s" "(c=$connections)" "CPU ms/check"
for size in 5k 50k 100k; do
  export BODY_FILE="$work/actions/action-$size.json"
  # The save that made the page's current revision went through the check too, as on a wiki
  # running wikiguard: post it once, so the service has seen the old text as a new text (it
  # then reads the old text's links from its link cache instead of scanning it again, as
  # AbuseFilter reads them from the database). The new text is scanned on every check.
  python3 - "$base" "$BODY_FILE" <<'PY'
import json, os, sys, urllib.request
base, body_file = sys.argv[1:3]
a = json.load(open(body_file, encoding="utf-8"))
a["new_wikitext"], a["old_wikitext"] = a["old_wikitext"], ""
req = urllib.request.Request(base + "/v1/check", data=json.dumps(a).encode(), method="POST",
                             headers={"Authorization": "Bearer " + os.environ["CHECK_TOKEN"],
                                      "Content-Type": "application/json"})
urllib.request.urlopen(req).read()
PY
  # Warm up first: the first checks compile every filter's regexes and build the lookup
  # tables, once per process; that is start-up, not the latency of a save.
  RUN=warm-$size wrk -t1 -c1 -d2s -s "$here/check/post.lua" "$base/v1/check" >/dev/null 2>&1
  # One connection: latency as one editor sees it.
  one=$(RUN=one-$size wrk -t1 -c1 -d"${duration}s" --latency -s "$here/check/post.lua" "$base/v1/check" 2>&1)
  p50=$(awk '$1=="50%"{print $2}' <<<"$one")
  p99=$(awk '$1=="99%"{print $2}' <<<"$one")
  cpu0=$(cpu_ticks "$pid")
  many=$(RUN=many-$size wrk -t2 -c"$connections" -d"${duration}s" -s "$here/check/post.lua" "$base/v1/check" 2>&1)
  cpu1=$(cpu_ticks "$pid")
  rps=$(awk '/^Requests\/sec/{print $2}' <<<"$many")
  checks=$(awk '/ requests in /{print $1}' <<<"$many")
  cpu=$(awk -v t="$((cpu1 - cpu0))" -v hz="$ticks_per_second" -v n="${checks:-0}" 'BEGIN { if (n > 0) printf "%.2f", t / hz * 1000 / n; else print "-" }')
  if grep -q "non-200" <<<"$one$many"; then echo "$one$many" >&2; exit 1; fi
  to_ms() { awk -v v="$1" 'BEGIN{ if (v ~ /us$/) printf "%.3f", v/1000; else if (v ~ /ms$/) printf "%.3f", v+0; else printf "%.3f", v*1000 }'; }
  printf '%-8s %10s %10s %12s %14s %12s\n' "$size" "$(to_ms "$p50")" "$(to_ms "$p99")" "$rps" "" "$cpu"
done
hits=$(python3 -c "import json,urllib.request as u; r=u.Request('$base/v1/filters',headers={'Authorization':'Bearer $admin'}); print(sum(f['hits'] for f in json.load(u.urlopen(r))['filters']))")
echo "hits logged: $hits (every check commits its hits before answering; its recent-action row follows, written lazily: no fsync of its own)"
steal_report
