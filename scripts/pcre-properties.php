<?php
// Prints, as one JSON object, the code points PHP's PCRE2 puts in each Unicode property the
// filter engine knows, read from the tables of crates/filter/src/pcre.rs: for every script
// name X of SCRIPTS the keys "X" (\p{X}), "sc:X" and "scx:X", and for every name of
// GENERAL_CATEGORIES and BOOL_PROPS the key of that name, and the escapes (\w…) and POSIX
// classes ([[:alpha:]]…) under their own text; each a list of [first, last] ranges.
// The filter crate's ignored test `unicode_properties_match_php` compares them with the
// engine's translation:
//
//   php scripts/pcre-properties.php > /tmp/pcre-properties.json
//   WIKIGUARD_PCRE_PROPERTIES=/tmp/pcre-properties.json \
//     cargo test -p wikiguard-filter --lib -- --ignored unicode_properties_match_php
//
// Needs php-cli with mbstring; takes a few seconds.
$src = file_get_contents(__DIR__ . '/../crates/filter/src/pcre.rs');
// The strings a table of the source holds: `("loose", "Name")` pairs (their names), or a list.
function table(string $src, string $head, string $item): array {
    $start = strpos($src, $head);
    $end = $start === false ? false : strpos($src, '];', $start);
    if ($end === false) {
        fwrite(STDERR, "pcre-properties.php: no $head in crates/filter/src/pcre.rs\n");
        exit(2);
    }
    preg_match_all($item, substr($src, $start, $end - $start), $m);
    $names = array_values(array_unique($m[1]));
    sort($names);
    return $names;
}
$pair = '/\("[a-z]+", "([A-Za-z_]+)"\)/';
$scripts = table($src, 'const SCRIPTS: &[(&str, &str)] = &[', $pair);
$others = array_merge(
    table($src, 'const GENERAL_CATEGORIES', '/"([A-Za-z&]+)"/'),
    table($src, 'const BOOL_PROPS', $pair)
);

// Every code point but the surrogates, in strings of 4096 characters.
$chunks = [];
$s = '';
$count = 0;
for ($c = 0; $c <= 0x10FFFF; $c++) {
    if ($c >= 0xD800 && $c <= 0xDFFF) {
        continue;
    }
    $s .= mb_chr($c, 'UTF-8');
    if (++$count === 4096) {
        $chunks[] = $s;
        $s = '';
        $count = 0;
    }
}
$chunks[] = $s;

// The escapes and POSIX classes, by the pattern text that holds them alone.
$keys = ['\\w', '\\W', '\\d', '\\D', '\\s', '\\S', '\\h', '\\H', '\\v', '\\V'];
foreach (['alpha', 'lower', 'upper', 'alnum', 'ascii', 'blank', 'cntrl', 'digit', 'graph', 'print',
          'punct', 'space', 'word', 'xdigit'] as $posix) {
    $keys[] = "[[:$posix:]]";
    $keys[] = "[[:^$posix:]]";
}
$keys = array_merge($keys, $others);
foreach ($scripts as $name) {
    foreach (['', 'sc:', 'scx:'] as $kind) {
        $keys[] = $kind . $name;
    }
}
$out = [];
foreach ($keys as $key) {
    $pattern = ($key[0] === '\\' || $key[0] === '[') ? "/$key/u" : '/\p{' . $key . '}/u';
    $hits = [];
    foreach ($chunks as $chunk) {
        if (preg_match_all($pattern, $chunk, $found) === false) {
            fwrite(STDERR, "pcre-properties.php: PCRE2 refuses $pattern\n");
            exit(1);
        }
        foreach ($found[0] as $ch) {
            $hits[] = mb_ord($ch, 'UTF-8');
        }
    }
    $ranges = [];
    foreach ($hits as $c) {
        $last = count($ranges) - 1;
        if ($last >= 0 && $ranges[$last][1] + 1 === $c) {
            $ranges[$last][1] = $c;
        } else {
            $ranges[] = [$c, $c];
        }
    }
    $out[$key] = $ranges;
}
echo json_encode($out), "\n";
