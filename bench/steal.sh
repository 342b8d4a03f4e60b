# Sourced by the benchmarks. On a virtual machine the host may take CPU time from it ("steal"
# in /proc/stat): seen here from none to 18 s in a 70 s run, which moves throughput by a
# quarter. Each benchmark prints how much was taken, so that a noisy run can be told from a
# quiet one and set aside.
steal_ticks() { awk '$1 == "cpu" { print $9; found = 1; exit } END { if (!found) print 0 }' /proc/stat 2>/dev/null || echo 0; }
# Clock ticks a second, the unit of /proc's CPU times.
ticks_per_second=$(getconf CLK_TCK 2>/dev/null || echo 100)
# cpu_ticks PID...: the CPU time (user + system, all threads, in clock ticks) the processes have
# used so far. A service's cost per request, which steal moves far less than requests/s.
cpu_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done; echo "$t"; }
steal_begin=$(steal_ticks)
steal_report() {
  local now
  now=$(steal_ticks)
  awk -v t="$((now - steal_begin))" -v hz="$ticks_per_second" \
    'BEGIN { printf "CPU time the host took from this machine during the run (steal): %.1f s\n", t / hz }'
}
# free_port: a loopback port the kernel has just handed out as free, for a server a benchmark
# starts (a random one could be the local end of a connection still open).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
