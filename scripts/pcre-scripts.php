<?php
// Prints, as one JSON object, the code points PHP's PCRE2 puts in each script property the
// filter engine knows: for every script name X of the SCRIPTS table in
// crates/filter/src/pcre.rs, the keys "X" (\p{X}), "sc:X" and "scx:X", each a list of
// [first, last] ranges. The filter crate's ignored test `script_properties_match_php` compares
// them with the engine's translation:
//
//   php scripts/pcre-scripts.php > /tmp/pcre-scripts.json
//   WIKIGUARD_PCRE_SCRIPTS=/tmp/pcre-scripts.json \
//     cargo test -p wikiguard-filter --lib -- --ignored script_properties_match_php
//
// Needs php-cli with mbstring; takes a few seconds.
$src = file_get_contents(__DIR__ . '/../crates/filter/src/pcre.rs');
$start = strpos($src, 'const SCRIPTS: &[(&str, &str)] = &[');
$end = strpos($src, '];', $start);
if ($start === false || $end === false) {
    fwrite(STDERR, "pcre-scripts.php: no SCRIPTS table in crates/filter/src/pcre.rs\n");
    exit(2);
}
preg_match_all('/\("[a-z]+", "([A-Za-z_]+)"\)/', substr($src, $start, $end - $start), $m);
$names = array_values(array_unique($m[1]));
sort($names);

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

$out = [];
foreach ($names as $name) {
    foreach (['', 'sc:', 'scx:'] as $kind) {
        $pattern = '/\p{' . $kind . $name . '}/u';
        $hits = [];
        foreach ($chunks as $chunk) {
            if (preg_match_all($pattern, $chunk, $found) === false) {
                fwrite(STDERR, "pcre-scripts.php: PCRE2 refuses $pattern\n");
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
        $out[$kind . $name] = $ranges;
    }
}
echo json_encode($out), "\n";
