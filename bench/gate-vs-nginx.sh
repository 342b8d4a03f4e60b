#!/usr/bin/env bash
# The gate's overhead against nginx as a reverse proxy, on loopback: the same upstream (nginx
# serving a 2 KB wiki-like page), (a) nginx proxying to it, (b) `wikiguard gate` with the
# default policy proxying to it. wrk drives each for a bounded time. See bench/README.md.
#
# Usage: bench/gate-vs-nginx.sh [--no-build] [--duration SECONDS] [--connections N] [--rounds N]
#                               [--pace-ms MS]
#
# Each round runs nginx, then the gate, twice: flat out (throughput, and the p99 of a saturated
# machine, mostly time spent queueing for a core) and paced (each connection waits MS ms,
# default 1, between a response and its next request: the same offered load below saturation
# for both, where the difference in p99 is the latency the gate adds). The summary takes the
# median of the rounds, because on a shared 2-core machine one run of either can be 10% off.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/steal.sh"
root=$(dirname "$here")
build=1
duration=10
connections=32
rounds=3
pace_ms=1
while [ $# -gt 0 ]; do
  case $1 in
    --no-build) build=0 ;;
    --duration) duration=${2:?}; shift ;;
    --connections) connections=${2:?}; shift ;;
    --rounds) rounds=${2:?}; shift ;;
    --pace-ms) pace_ms=${2:?}; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gate-vs-nginx.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
for n in "$duration" "$connections" "$rounds" "$pace_ms"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "gate-vs-nginx.sh: --duration, --connections, --rounds and --pace-ms take a positive whole number, not '$n'" >&2; exit 2; }
done
for tool in wrk nginx; do
  command -v $tool >/dev/null || [ -x /usr/sbin/$tool ] || { echo "gate-vs-nginx.sh: $tool is not installed (apt-get install wrk nginx)" >&2; exit 2; }
done
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
target=${CARGO_TARGET_DIR:-$root/target}
if [ "$build" = 1 ]; then
  (cd "$root" && cargo build --release --quiet -p wikiguard)
fi
wg="$target/release/wikiguard"
[ -x "$wg" ] || { echo "gate-vs-nginx.sh: no binary at $wg (build it, drop --no-build, or set CARGO_TARGET_DIR)" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in nginx upstream; do
    [ -f "$work/$f.pid" ] && kill "$(cat "$work/$f.pid")" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
up=$(free_port); np=$(free_port); gp=$(free_port)
mkdir -p "$work/html/wiki" "$work/logs"
# nginx workers run as an unprivileged user: let them read the page.
chmod 755 "$work"
python3 -c "print('<!DOCTYPE html><html><body>' + 'Lorem ipsum dolor sit amet. ' * 70 + '</body></html>')" > "$work/html/wiki/Main_Page"
# The upstream and the nginx proxy are two nginx instances, so each one's CPU time can be read
# apart (see cpu_us below).
tmp_paths="client_body_temp_path $work/tmp_body; proxy_temp_path $work/tmp_proxy; fastcgi_temp_path $work/tmp_fcgi;
  uwsgi_temp_path $work/tmp_uwsgi; scgi_temp_path $work/tmp_scgi;"
# nginx_conf NAME SERVERS: an nginx of two workers with its pid file NAME.pid and these
# http-level lines (upstreams and servers).
nginx_conf() {
  cat > "$work/$1.conf" <<CONF
worker_processes 2;
pid $work/$1.pid;
error_log $work/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  default_type text/html;
  $tmp_paths
  $2
}
CONF
}
nginx_conf upstream "server { listen 127.0.0.1:$up; root $work/html; }"
nginx_conf nginx "upstream wiki { server 127.0.0.1:$up; keepalive 64; }
  server {
    listen 127.0.0.1:$np;
    location / { proxy_pass http://wiki; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_set_header X-Forwarded-For \$remote_addr; }
  }"
"$nginx_bin" -c "$work/upstream.conf" -p "$work" 2>/dev/null
"$nginx_bin" -c "$work/nginx.conf" -p "$work" 2>/dev/null
# Loopback is the trusted "load balancer" whose X-Forwarded-For (set by the wrk script) names
# the client, so the default policy sees many readers, not one address hammering the wiki.
WIKIGUARD_LOG_LEVEL=warn "$wg" gate --listen 127.0.0.1:$gp --upstream http://127.0.0.1:$up --trusted-proxy 127.0.0.1/32 2>"$work/gate.log" &
pids+=($!)
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$gp/wiki/Main_Page" 2>/dev/null && break; sleep 0.1; done

gate_pid=${pids[0]}
workers_of() { pgrep -P "$(cat "$work/$1.pid")" | tr '\n' ' '; }
nginx_workers=$(workers_of nginx)
upstream_workers=$(workers_of upstream)
run() {  # URL [PROXY-PIDS...]: wrk's report, then "cpu_us PROXY UPSTREAM" per request
  local url=$1 out p0 u0 p1 u1 n
  shift
  p0=$(cpu_ticks "$@"); u0=$(cpu_ticks $upstream_workers)
  # The page view that dominates wiki traffic, from many readers' browsers.
  # wrk needs at least one connection per thread.
  out=$(wrk -t"$(( connections < 2 ? connections : 2 ))" -c"$connections" -d"${duration}s" --latency -s "$here/gate-clients.lua" "$url" 2>&1)
  p1=$(cpu_ticks "$@"); u1=$(cpu_ticks $upstream_workers)
  n=$(awk '/ requests in /{ print $1 }' <<<"$out")
  printf '%s\ncpu_us %s\n' "$out" "$(awk -v p="$((p1 - p0))" -v u="$((u1 - u0))" -v hz="$ticks_per_second" -v n="${n:-0}" -v procs=$# \
    'BEGIN { if (n > 0 && procs > 0) printf "%.1f ", p / hz * 1e6 / n; else printf "- "; if (n > 0) printf "%.1f", u / hz * 1e6 / n; else printf "-" }')"
}
paced() { WRK_PACE_MS=$pace_ms run "$@"; }
nginx_run() { "$1" "http://127.0.0.1:$np/wiki/Main_Page" $nginx_workers; }
gate_run() { "$1" "http://127.0.0.1:$gp/wiki/Main_Page" "$gate_pid"; }
cpu() { awk -v f="$2" '$1=="cpu_us"{ print $(f) }' <<<"$1"; }  # OUTPUT FIELD: 2 the proxy's, 3 the upstream's
p50() { awk '$1=="50%"{print $2}' <<<"$1"; }
rps() { awk '/^Requests\/sec/{print $2}' <<<"$1"; }
p99() { awk '$1=="99%"{print $2}' <<<"$1"; }
non2xx() { awk '/Non-2xx/{n=$NF} END{print n+0}' <<<"$1"; }
# wrk prints 404.00us, 2.85ms or 1.02s; in microseconds:
us() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); print v+0} else if (v ~ /ms$/) {sub(/ms$/,"",v); print v*1000} else {sub(/s$/,"",v); print v*1000000}}' <<<"$1"; }
# One result line: a label, then the run's requests/s, p99, non-2xx count and CPU time per
# request (us) of the proxy and of the upstream, then any note.
row() { printf '%-22s %12s %10s %10s %9s %9s%s\n' "$1" "$(rps "$2")" "$(p99 "$2")" "$(non2xx "$2")" "$(cpu "$2" 2)" "$(cpu "$2" 3)" "${3:-}"; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{ if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }

direct=$(run "http://127.0.0.1:$up/wiki/Main_Page")
printf '%-22s %12s %10s %10s %9s %9s\n' "" "requests/s" "p99" "non-2xx" "proxy us" "wiki us"
row "upstream directly" "$direct"
nginx_rps=(); nginx_p99=(); gate_rps=(); gate_p99=(); nginx_cpu=(); gate_cpu=()
paced_rps=(); nginx_pp50=(); nginx_pp99=(); gate_pp50=(); gate_pp99=()
for round in $(seq "$rounds"); do
  nginx=$(nginx_run run)
  gate=$(gate_run run)
  row "nginx proxy ($round)" "$nginx"
  row "wikiguard gate ($round)" "$gate"
  nginx_rps+=("$(rps "$nginx")"); nginx_p99+=("$(us "$(p99 "$nginx")")")
  gate_rps+=("$(rps "$gate")"); gate_p99+=("$(us "$(p99 "$gate")")")
  nginx_cpu+=("$(cpu "$nginx" 2)"); gate_cpu+=("$(cpu "$gate" 2)")
  nginx=$(nginx_run paced)
  gate=$(gate_run paced)
  row "nginx proxy ($round)" "$nginx" "   (paced, p50 $(p50 "$nginx"))"
  row "wikiguard gate ($round)" "$gate" "   (paced, p50 $(p50 "$gate"))"
  paced_rps+=("$(rps "$nginx")")
  nginx_pp50+=("$(us "$(p50 "$nginx")")"); nginx_pp99+=("$(us "$(p99 "$nginx")")")
  gate_pp50+=("$(us "$(p50 "$gate")")"); gate_pp99+=("$(us "$(p99 "$gate")")")
done
n_rps=$(median "${nginx_rps[@]}"); g_rps=$(median "${gate_rps[@]}")
n_p99=$(median "${nginx_p99[@]}"); g_p99=$(median "${gate_p99[@]}")
printf '%-22s %12.0f %8.0fus\n' "nginx proxy (median)" "$n_rps" "$n_p99"
printf '%-22s %12.0f %8.0fus\n' "wikiguard gate (median)" "$g_rps" "$g_p99"
awk -v g="$g_rps" -v n="$n_rps" -v gp="$g_p99" -v np="$n_p99" 'BEGIN{ printf "gate/nginx throughput: %.0f%%   p99 added by the gate at saturation: %.0f us\n", 100*g/n, gp-np }'
n_cpu=$(median "${nginx_cpu[@]}"); g_cpu=$(median "${gate_cpu[@]}")
awk -v g="$g_cpu" -v n="$n_cpu" 'BEGIN{ printf "CPU per request flat out (median): nginx %.1f us, gate %.1f us (%.0f%% of nginx)\n", n, g, 100*g/n }'
p_rps=$(median "${paced_rps[@]}")
n_pp50=$(median "${nginx_pp50[@]}"); n_pp99=$(median "${nginx_pp99[@]}")
g_pp50=$(median "${gate_pp50[@]}"); g_pp99=$(median "${gate_pp99[@]}")
awk -v r="$p_rps" -v n50="$n_pp50" -v n99="$n_pp99" -v g50="$g_pp50" -v g99="$g_pp99" -v ms="$pace_ms" 'BEGIN{
  printf "paced (%d ms between requests, ~%.0f requests/s): p50 nginx %.0f us, gate %.0f us; p99 nginx %.0f us, gate %.0f us\n", ms, r, n50, g50, n99, g99
  printf "latency added by the gate below saturation: p50 %.0f us, p99 %.0f us\n", g50-n50, g99-n99 }'
steal_report
