//! `edit_diff` against MediaWiki's own `Diff` + `UnifiedDiffFormatter` output.
//!
//! The fixture holds random old/new texts with the diff MediaWiki 1.39 produced for them
//! (generated once with the PHP classes; no PHP needed to run this test): small texts with
//! many equally minimal alignments, lines PHP's `==` treats as equal ("1", "01", " 1"), and
//! two large texts beyond the size where MediaWiki bounds the search. Every diff must be
//! byte-identical.

use std::collections::BTreeMap;

use wikiguard_check::diff::{split_diff, unified_diff};

fn multiset(lines: Vec<String>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for l in lines {
        *m.entry(l).or_insert(0) += 1;
    }
    m
}

#[test]
fn matches_mediawiki() {
    let fixture = include_str!("fixtures/mediawiki_diffs.jsonl");
    let (mut total, mut exact, mut same_added) = (0, 0, 0);
    let mut differing = Vec::new();
    for line in fixture.lines() {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        let (old, new, want) = (
            case["old"].as_str().unwrap(),
            case["new"].as_str().unwrap(),
            case["diff"].as_str().unwrap(),
        );
        let got = unified_diff(old, new);
        total += 1;
        if got == want {
            exact += 1;
        } else {
            differing.push((old.to_string(), new.to_string(), want.to_string(), got.clone()));
        }
        // Both are minimal: as many lines added and removed.
        for prefix in ['+', '-'] {
            assert_eq!(
                split_diff(&got, prefix).len(),
                split_diff(want, prefix).len(),
                "{prefix} line counts differ for {old:?} -> {new:?}\nwant:\n{want}\ngot:\n{got}"
            );
        }
        if multiset(split_diff(&got, '+')) == multiset(split_diff(want, '+')) {
            same_added += 1;
        }
    }
    for d in differing.iter().take(5) {
        eprintln!("differs: {:?} -> {:?}\nwant:\n{}\ngot:\n{}", d.0, d.1, d.2, d.3);
    }
    eprintln!("{exact}/{total} identical, {same_added} with the same added lines");
    assert_eq!(exact, total, "only {exact}/{total} diffs identical to MediaWiki's");
}
