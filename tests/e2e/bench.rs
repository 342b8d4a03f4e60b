//! What a save costs with wikiguard on a real wiki, against the same save with no filter
//! extension and with Debian's bundled AbuseFilter running the same 200 filters
//! (`bench/filters/*.af`). Ignored by default: `bench/mw-save-latency.sh` runs it (release
//! build) and its numbers go into the notes, never into an assertion about speed.

use std::time::Instant;

use serde_json::{json, Value};

use crate::common::{Server, CHECK};
use crate::harness::{Wiki, WikiOptions};
use crate::require_mediawiki;

/// The 200 benchmark filters: (description, pattern).
fn bench_filters() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/filters");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "af"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let pattern = std::fs::read_to_string(p).unwrap();
            let description = pattern
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("/*"))
                .and_then(|l| l.strip_suffix("*/"))
                .map(|l| l.trim().chars().take(60).collect())
                .unwrap_or_else(|| p.file_stem().unwrap().to_string_lossy().into_owned());
            (description, pattern)
        })
        .collect()
}

/// An article of about 8 KB: paragraphs, links, a reference, categories.
fn article(seed: usize) -> String {
    let words: Vec<&str> = "river valley history century population the of and town was founded by settlers in region economy based on agriculture railway station church school bridge council mayor district"
        .split_whitespace()
        .collect();
    let mut out = String::from("{{Infobox settlement|name=Example|population=1234}}\n'''Example''' is a town.\n\n");
    let mut x = seed as u64 * 2_654_435_761 + 1;
    for p in 0..24 {
        if p % 6 == 0 {
            out.push_str(&format!("== Section {p} ==\n"));
        }
        for _ in 0..50 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            out.push_str(words[(x >> 33) as usize % words.len()]);
            out.push(' ');
        }
        out.push_str("[[Neighbouring town]] near the [[river]].<ref>{{cite book|title=History}}</ref>\n\n");
    }
    out.push_str("== References ==\n{{reflist}}\n[[Category:Towns]]\n");
    out
}

fn stats(mut ms: Vec<f64>) -> (f64, f64, f64) {
    ms.sort_by(f64::total_cmp);
    let pick = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    (pick(0.5), pick(0.9), mean)
}

#[test]
#[ignore = "a benchmark; bench/mw-save-latency.sh runs it"]
fn save_latency_with_200_filters() {
    require_mediawiki!();
    let edits: usize = std::env::var("WIKIGUARD_BENCH_EDITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    // The same budget for both engines, high enough that all 200 filters run.
    let limit = "100000";
    // `full` (the default: a hit is on disk before the answer) or `normal`.
    let durability = std::env::var("WIKIGUARD_BENCH_DURABILITY").unwrap_or_else(|_| "full".into());
    let s = Server::start(
        "bench-save",
        &[
            ("WIKIGUARD_ENGINE_CONDITION_LIMIT", limit),
            ("WIKIGUARD_STORE_DURABILITY", &durability),
        ],
    );
    let filters = bench_filters();
    assert_eq!(filters.len(), 200, "bench/filters holds the 200 filters");
    // Plus one that every edit matches, so both engines log a hit per save (and so prove
    // they ran): a wiki's filters do match some edits.
    let mut filters = filters;
    filters.push((
        "Bench marker".into(),
        r#"action == "edit" & summary == "copy-edit""#.into(),
    ));
    for (description, pattern) in &filters {
        s.create(&json!({"description": description, "pattern": pattern, "enabled": true, "actions": {}}));
    }
    let w = Wiki::start_with(
        "bench-save",
        WikiOptions {
            host: "127.0.0.1",
            service: &s.base,
            token: CHECK,
            settings: "$wgWikiGuardVariablesCacheSeconds = 30;",
        },
        false,
    );
    let ext = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../mediawiki/WikiGuard/extension.json")
        .canonicalize()
        .unwrap();
    let abusefilter = format!("wfLoadExtension( 'AbuseFilter' ); $wgAbuseFilterConditionLimit = {limit};");
    let wikiguard = format!("wfLoadExtension( 'WikiGuard', '{}' );", ext.display());

    // AbuseFilter's tables, and the same 200 filters in them (log-only, as in wikiguard).
    w.set_runtime(&abusefilter);
    w.maintenance("update.php", &["--quick"]);
    let rows: Vec<Value> = filters
        .iter()
        .map(|(description, pattern)| json!([pattern, description]))
        .collect();
    std::fs::write(w.dir.join("filters.json"), Value::Array(rows).to_string()).unwrap();
    // sql.php splits statements at every `;`, patterns included, so insert with PHP's SQLite3.
    std::fs::write(
        w.dir.join("filters.php"),
        r#"<?php
$db = new SQLite3( $argv[1] );
$st = $db->prepare( "INSERT INTO abuse_filter (af_pattern, af_user, af_user_text, af_timestamp, af_enabled,
  af_comments, af_public_comments, af_hidden, af_hit_count, af_throttled, af_deleted, af_actions, af_global,
  af_group) VALUES (:p, 1, 'Admin', '20260101000000', 1, '', :d, 0, 0, 0, 0, '', 0, 'default')" );
foreach ( json_decode( file_get_contents( $argv[2] ), true ) as [ $p, $d ] ) {
  $st->bindValue( ':p', $p ); $st->bindValue( ':d', $d ); $st->execute(); $st->reset();
}
echo $db->querySingle( 'SELECT COUNT(*) FROM abuse_filter' ), "
";
"#,
    )
    .unwrap();
    let out = std::process::Command::new("php")
        .arg(w.dir.join("filters.php"))
        .arg(w.dir.join("db/my_wiki.sqlite"))
        .arg(w.dir.join("filters.json"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "201", "{out:?}");

    w.create_user("Bencher", "Bench-pass-12345", &[]);
    let mut api = w.login("Bencher", "Bench-pass-12345");
    let modes = [
        ("none", String::new()),
        ("wikiguard", wikiguard),
        ("abusefilter", abusefilter),
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    for round in 0..edits + 3 {
        // Interleaved, so drift (caches, the disk) hits every mode alike.
        for (m, (name, settings)) in modes.iter().enumerate() {
            w.set_runtime(settings);
            let mut text = article(7);
            text.push_str(&format!(
                "\nEdit {round}: a new sentence about the town's {name} bridge.\n"
            ));
            let title = format!("Bench {name}");
            let token = api.token("csrf");
            let started = Instant::now();
            let v: Value = api.post(&[
                ("action", "edit"),
                ("title", &title),
                ("text", &text),
                ("summary", "copy-edit"),
                ("token", &token),
            ]);
            let took = started.elapsed();
            assert_eq!(v["edit"]["result"], "Success", "{name}: {v}{}", w.logs());
            if round >= 3 {
                times[m].push(took.as_secs_f64() * 1000.0);
            }
        }
    }
    // Both engines really ran: hits in each log.
    let (_, hits) = s.admin("GET", "/v1/hits?limit=1", None);
    assert!(
        !hits["hits"].as_array().unwrap().is_empty(),
        "wikiguard logged hits: {hits}"
    );
    w.set_runtime(&modes[2].1);
    let log = api.get(&[("action", "query"), ("list", "abuselog"), ("afllimit", "1")]);
    assert!(
        !log["query"]["abuselog"].as_array().is_none_or(Vec::is_empty),
        "AbuseFilter logged hits: {log}"
    );

    let (base, _, _) = stats(times[0].clone());
    println!(
        "save latency, {edits} edits each, 200 filters (+1 marker), ~{} KB article:",
        article(7).len() / 1024
    );
    println!(
        "{:<12} {:>9} {:>9} {:>9} {:>14}",
        "extension", "p50 ms", "p90 ms", "mean ms", "added p50 ms"
    );
    for (m, (name, _)) in modes.iter().enumerate() {
        let (p50, p90, mean) = stats(times[m].clone());
        println!("{name:<12} {p50:>9.1} {p90:>9.1} {mean:>9.1} {:>14.1}", p50 - base);
    }
}
