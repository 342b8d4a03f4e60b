#!/usr/bin/env bash
# Compare wikiguard's filter engine with MediaWiki's AbuseFilter (PHP) on the same filters
# and edits. See bench/README.md.
#
# Usage: bench/filter-vs-php.sh [--no-build] [--iterations N] [--php-iterations N] [--profile N]
#                               [--cpu N|none]
#
# Environment:
#   CARGO_TARGET_DIR   where cargo puts the build (default: <repo>/target)
#   MW_CONFIG_FILE     LocalSettings.php of a MediaWiki with AbuseFilter loaded; when unset a
#                      throwaway wiki is installed (once) under BENCH_WIKI_DIR
#   BENCH_WIKI_DIR     where that wiki lives (default: ${TMPDIR:-/tmp}/wikiguard-bench-wiki)
#   MW_INSTALL_PATH    MediaWiki's code (default: /usr/share/mediawiki, Debian's package)
#
# Both engines run pinned to the same CPU (--cpu, default the first one this process may use;
# `none` lets the scheduler choose), because the cores of a shared VM need not be equally fast.
#
# Exit status: 0 when both engines ran and matched the same filters, 1 when they disagree or
# wikiguard could not run, 2 on a setup error.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/steal.sh"
root=$(dirname "$here")
build=1
iterations=1000     # wikiguard: evaluations of all filters per size (fewer leave a 5 KB run too short to settle)
php_iterations=50   # PHP is slower; 50 keeps the whole PHP side around 3 s
profile=0
cpu=auto
while [ $# -gt 0 ]; do
  case $1 in
    --no-build) build=0 ;;
    --iterations) iterations=${2:?}; shift ;;
    --php-iterations) php_iterations=${2:?}; shift ;;
    --profile) profile=${2:?}; shift ;;
    --cpu) cpu=${2:?}; shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "filter-vs-php.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

die() { echo "filter-vs-php.sh: $*" >&2; exit 2; }
command -v php >/dev/null || die "php is not installed (apt-get install php-cli php-sqlite3 php-intl php-mbstring php-apcu mediawiki)"
command -v python3 >/dev/null || die "python3 is needed to generate the edits"
export MW_INSTALL_PATH=${MW_INSTALL_PATH:-/usr/share/mediawiki}
[ -d "$MW_INSTALL_PATH/extensions/AbuseFilter" ] || die "no AbuseFilter under $MW_INSTALL_PATH (apt-get install mediawiki)"

# One CPU for both engines (see the header).
pin=()
if [ "$cpu" != none ]; then
  command -v taskset >/dev/null || die "taskset is missing (apt-get install util-linux), or pass --cpu none"
  if [ "$cpu" = auto ]; then
    # The first CPU of this process's affinity list ("0-1", "2,5"...).
    cpu=$(taskset -cp $$ | sed 's/.*: *//; s/[-,].*//')
  fi
  case $cpu in ''|*[!0-9]*) die "--cpu takes a CPU number or none, not '$cpu'" ;; esac
  pin=(taskset -c "$cpu")
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/filter-vs-php.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# --- wikiguard -------------------------------------------------------------------------
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$root/$target ;; esac  # cargo reads it relative to the repo root below
if [ "$build" = 1 ]; then
  echo "building wikiguard (release)..." >&2
  (cd "$root" && cargo build --release -p wikiguard) >&2 || die "cargo build failed"
fi
wikiguard=$target/release/wikiguard
[ -x "$wikiguard" ] || die "no binary at $wikiguard (build it, or drop --no-build)"

# --- a MediaWiki for the PHP side ------------------------------------------------------
install_wiki() {  # a throwaway SQLite wiki with AbuseFilter; idempotent
  local dir=$1
  mkdir -p "$dir/conf" "$dir/db"
  if [ ! -f "$dir/conf/LocalSettings.php" ]; then
    MW_CONFIG_FILE="$dir/conf/LocalSettings.php" php "$MW_INSTALL_PATH/maintenance/install.php" \
      --dbtype sqlite --dbpath "$dir/db" --server http://127.0.0.1 --scriptpath "" --lang en \
      --pass 'Bench-pass-12345' --confpath "$dir/conf" BenchWiki Admin >/dev/null
    printf '%s\n' "wfLoadExtension( 'AbuseFilter' );" '$wgMainCacheType = CACHE_NONE;' \
      >> "$dir/conf/LocalSettings.php"
    MW_CONFIG_FILE="$dir/conf/LocalSettings.php" php "$MW_INSTALL_PATH/maintenance/update.php" --quick >/dev/null
  fi
  echo "$dir/conf/LocalSettings.php"
}
if [ -z "${MW_CONFIG_FILE:-}" ]; then
  wiki_dir=${BENCH_WIKI_DIR:-${TMPDIR:-/tmp}/wikiguard-bench-wiki}
  if [ ! -f "$wiki_dir/conf/LocalSettings.php" ]; then
    echo "installing a throwaway MediaWiki in $wiki_dir (once)..." >&2
  fi
  oracle_setup=""
  for s in "$root/../shared/tools/af-oracle/setup.sh" /work/shared/tools/af-oracle/setup.sh; do
    if [ -x "$s" ]; then oracle_setup=$s; break; fi
  done
  if [ -n "$oracle_setup" ]; then
    MW_CONFIG_FILE=$("$oracle_setup" "$wiki_dir") || die "wiki set-up failed ($oracle_setup)"
  else
    MW_CONFIG_FILE=$(install_wiki "$wiki_dir") || die "wiki set-up failed in $wiki_dir"
  fi
fi
export MW_CONFIG_FILE
[ -f "$MW_CONFIG_FILE" ] || die "MW_CONFIG_FILE=$MW_CONFIG_FILE does not exist"

# --- inputs ----------------------------------------------------------------------------
filters=$here/filters
python3 "$here/edits/gen.py" "$tmp/edits"
# 2000 filters: the 200 ten times, each copy marked by a comment so no two files are equal
mkdir -p "$tmp/filters-2000"
for f in "$filters"/*.af; do
  for c in 0 1 2 3 4 5 6 7 8 9; do
    { printf '/* copy %d */\n' "$c"; cat "$f"; } > "$tmp/filters-2000/c$c-$(basename "$f")"
  done
done

# --- runs ------------------------------------------------------------------------------
status=0
run_php() {  # size
  local args=(--filters "$filters" --vars "$tmp/edits/edit-$1.json" --iterations "$php_iterations")
  [ "$profile" = 0 ] || args+=(--profile "$profile")
  "${pin[@]}" php -d opcache.enable_cli=1 "$here/php/run.php" "${args[@]}" > "$tmp/php-$1.json" \
    || die "the PHP runner failed on edit-$1 (see above)"
}
run_wikiguard() {  # size filters-dir out-name
  if ! "${pin[@]}" "$wikiguard" filter bench --filters "$2" --vars "$tmp/edits/edit-$1.json" --iterations "$iterations" \
      > "$tmp/$3.json" 2> "$tmp/$3.err"; then
    echo "warning: wikiguard filter bench failed on edit-$1 ($(basename "$2")):" >&2
    head -n 20 "$tmp/$3.err" | sed 's/^/  /' >&2
    : > "$tmp/$3.json"
    status=1
  fi
}
for size in 5k 50k 100k; do
  echo "edit-$size: AbuseFilter (PHP)..." >&2
  run_php "$size"
  echo "edit-$size: wikiguard..." >&2
  run_wikiguard "$size" "$filters" "wg-$size"
done
echo "edit-50k, 2000 filters: wikiguard..." >&2
run_wikiguard 50k "$tmp/filters-2000" wg-2000

# --- report ----------------------------------------------------------------------------
python3 - "$tmp" <<'PY' || status=1
import json, os, sys
tmp = sys.argv[1]

def load(name):
    try:
        with open(os.path.join(tmp, name + ".json")) as f:
            line = f.read().strip().splitlines()
        return json.loads(line[-1]) if line else None
    except (OSError, ValueError) as e:
        print("warning: cannot read %s output: %s" % (name, e), file=sys.stderr)
        return None

ok = True
rows = []
for size in ("5k", "50k", "100k"):
    php, wg = load("php-" + size), load("wg-" + size)
    if wg is None:
        ok = False
    elif set(php["matched"]) != set(wg["matched"]):
        ok = False
        print("WARNING: edit-%s: the engines matched different filters" % size)
        for name in sorted(set(php["matched"]) - set(wg["matched"])):
            print("  only AbuseFilter (PHP): %s" % name)
        for name in sorted(set(wg["matched"]) - set(php["matched"])):
            print("  only wikiguard:         %s" % name)
    rows.append((size, php, wg))

def ms(r, key="ms_each"):
    return "%.3f" % r[key] if r and key in r else "n/a"

def ratio(php, wg, key):
    return "%.1fx" % (php[key] / wg[key]) if wg and key in php and key in wg and wg[key] > 0 else "n/a"

print()
print("%-24s %12s %14s %16s %28s" % ("edit (200 filters)", "PHP ms", "wikiguard ms", "PHP/wikiguard",
                                     "medians: PHP, wikiguard, ratio"))
for size, php, wg in rows:
    medians = "%s %s %s" % (ms(php, "ms_median"), ms(wg, "ms_median"), ratio(php, wg, "ms_median"))
    print("%-24s %12s %14s %16s %28s" % ("%s (%d matched)" % (size, len(php["matched"])), ms(php), ms(wg),
                                         ratio(php, wg, "ms_each"), medians))
big = load("wg-2000")
print("%-24s %12s %14s %16s" % ("50k, 2000 filters", "-", ms(big), "-"))
if big and rows[1][2] and len(big["matched"]) != 10 * len(rows[1][2]["matched"]):
    ok = False
    print("WARNING: 2000 filters matched %d, expected 10 x %d" % (len(big["matched"]), len(rows[1][2]["matched"])))
print()
print("PHP: %d iterations, wikiguard: %s iterations; ms = mean time to evaluate every filter once;"
      % (rows[0][1]["iterations"], rows[0][2]["iterations"] if rows[0][2] else "n/a"))
print("medians: of the iterations' times, which a burst of the host's noise hardly moves.")
sys.exit(0 if ok else 1)
PY
if [ ${#pin[@]} -gt 0 ]; then echo "CPU: both engines on CPU $cpu"; else echo "CPU: any (not pinned)"; fi
steal_report
exit $status
