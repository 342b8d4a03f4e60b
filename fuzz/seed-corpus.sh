#!/bin/sh
# Fills fuzz/corpus/parse_eval with seeds: AbuseFilter's parser test rules, read at run time
# (they are GPL: never commit them; fuzz/corpus is git-ignored).
#   fuzz/seed-corpus.sh [DIR...]   default: /work/shared/conformance/abusefilter-parser/*
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/corpus/parse_eval"
mkdir -p "$out"
[ $# -gt 0 ] || set -- /work/shared/conformance/abusefilter-parser/parserTests \
    /work/shared/conformance/abusefilter-parser/parserTestsEquivset
n=0
for dir in "$@"; do
    for t in "$dir"/*.t; do
        [ -f "$t" ] || continue
        cp "$t" "$out/seed-$(basename "$(dirname "$t")")-$(basename "$t" .t)"
        n=$((n + 1))
    done
done
echo "$n seeds in $out"
