//! Property tests: `ActionVars` never panics on arbitrary actions, and the diff's added and
//! removed lines turn the old text's lines into the new text's (as multisets).

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{json, Value as Json};
use wikiguard_check::{vars::client_side_variables, Action, ActionVars};
use wikiguard_filter::{vars::BUILTIN, Value, Variables};

fn text() -> impl Strategy<Value = String> {
    // Few distinct lines, so that diffs have both equal and changed runs.
    prop::collection::vec(
        prop_oneof![
            Just(String::new()),
            Just("a".to_string()),
            Just("b".to_string()),
            Just("http://x.example/p".to_string()),
            Just("[//y.example t]".to_string()),
            "[ -~é\\[\\]<>]{0,12}",
        ],
        0..12,
    )
    .prop_map(|lines| lines.join("\n"))
}

fn timestamp() -> impl Strategy<Value = Json> {
    prop_oneof![
        Just(Json::Null),
        Just(json!("20240131235959")),
        Just(json!("2024-01-31T23:59:59Z")),
        Just(json!("19700101000000")),
    ]
}

fn page() -> impl Strategy<Value = Json> {
    (any::<i64>(), -2i64..20, "[ -~]{0,10}", timestamp(), prop::option::of("[a-z]{0,5}"))
        .prop_map(|(id, ns, title, created, first)| {
            json!({"id": id, "namespace": ns, "title": title, "created": created, "first_contributor": first})
        })
}

fn action() -> impl Strategy<Value = Json> {
    (
        prop::sample::select(vec![
            "edit",
            "move",
            "delete",
            "createaccount",
            "autocreateaccount",
            "upload",
            "stashupload",
        ]),
        (
            "[ -~]{0,10}",
            prop::option::of(any::<i64>()),
            prop::option::of(any::<i64>()),
            timestamp(),
        ),
        page(),
        page(),
        text(),
        text(),
        prop::option::of(text()),
        prop::option::of("[ -~<>]{0,20}"),
        prop::option::of(prop_oneof![
            Just("192.0.2.1".to_string()),
            Just("2001:db8::1".to_string()),
            "[ -~]{0,8}"
        ]),
    )
        .prop_map(
            |(kind, (name, id, editcount, reg), p, target, old, new, pst, html, ip)| {
                json!({
                    "action": kind,
                    "user": {"name": name, "id": id, "editcount": editcount, "registration": reg},
                    "page": p, "target": target,
                    "old_wikitext": old, "new_wikitext": new, "new_pst": pst, "new_html": html,
                    "accountname": "Acct", "file": {"size": 1},
                    "request": {"ip": ip},
                })
            },
        )
}

fn lines(v: Option<Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().map(|x| x.to_php_string()).collect(),
        other => panic!("expected an array, got {other:?}"),
    }
}

fn multiset<'a>(it: impl IntoIterator<Item = &'a str>) -> BTreeMap<&'a str, i64> {
    let mut m = BTreeMap::new();
    for l in it {
        *m.entry(l).or_insert(0) += 1;
    }
    m
}

fn split(text: &str) -> Vec<&str> {
    if text.is_empty() {
        Vec::new()
    } else {
        text.split('\n').collect()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn never_panics(v in action(), now in any::<i64>()) {
        let a = Action::from_json(&v).unwrap();
        let mut vars = ActionVars::new(&a, now);
        for name in BUILTIN.iter().chain(client_side_variables()) {
            let _ = vars.get(name);
        }
        let all: std::collections::BTreeSet<String> = BUILTIN.iter().map(|s| s.to_string()).collect();
        prop_assert!(vars.dump(&all).is_object());
        let _ = a.stored_body();
        let _ = a.page_title();
    }

    #[test]
    fn diff_rebuilds_new_lines(old in text(), new in text()) {
        let a = Action::from_json(&json!({"action": "edit", "page": {}, "old_wikitext": old, "new_wikitext": new})).unwrap();
        let mut vars = ActionVars::new(&a, 0);
        let added = lines(vars.get("added_lines"));
        let removed = lines(vars.get("removed_lines"));
        let mut m = multiset(split(&old));
        for r in &removed {
            *m.entry(r.as_str()).or_insert(0) -= 1;
        }
        for l in &added {
            *m.entry(l.as_str()).or_insert(0) += 1;
        }
        m.retain(|_, n| *n != 0);
        prop_assert_eq!(m, multiset(split(&new)));
        if old == new {
            prop_assert!(added.is_empty() && removed.is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn link_scan_never_panics(text in "([ -~]|é|\u{a0}|\u{200b}|\n|&amp;|&#[0-9x]{1,4};|%[0-9a-fA-F]{0,2}|\\[\\[|\\]\\]|\\{\\{|\\}\\}|'''|==|http://|//|mailto:){0,40}") {
        for link in wikiguard_check::links::extract_links(&text) {
            // What MediaWiki stores is ASCII once normalised (IPv6 brackets and all).
            prop_assert!(link.is_ascii(), "{link:?}");
        }
    }

    #[test]
    fn timestamps_and_durations_never_panic(s in "[0-9TZ:+ .,-]{0,30}|[a-z0-9 ]{0,20}") {
        let _ = wikiguard_check::time::parse_timestamp(&s);
        let _ = wikiguard_check::time::parse_duration(&s);
    }
}
