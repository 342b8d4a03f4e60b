//! A real filter, parsed and evaluated by wikiguard-filter over an action's variables, then
//! decided into a verdict.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::json;
use wikiguard_check::{decide, Action, ActionVars, FilterActions, Matched, VerdictKind};
use wikiguard_filter::{Engine, Evaluator, Program};
use wikiguard_store::Counters;

#[derive(Default)]
struct Flags(Mutex<HashMap<String, u64>>);

impl Counters for Flags {
    fn hit(&self, key: &str, _period: u64, _now: i64) -> u64 {
        let mut m = self.0.lock().unwrap();
        let n = m.entry(key.to_string()).or_insert(0);
        *n += 1;
        *n
    }
    fn take_or_set_flag(&self, key: &str, _ttl: u64, _now: i64) -> bool {
        let mut m = self.0.lock().unwrap();
        m.remove(key).is_some() || {
            m.insert(key.to_string(), 1);
            false
        }
    }
}

const SPAM_FILTER: &str = r#"
/* New users adding links to a known spam host */
action == "edit"
& !("autoconfirmed" in user_groups)
& user_editcount < 10
& page_namespace == 0
& added_links irlike "casino\.example"
& !(removed_lines irlike "casino")
& edit_delta > 0
"#;

fn spam_edit(user: serde_json::Value) -> Action {
    Action::from_json(&json!({
        "action": "edit",
        "user": user,
        "page": {"id": 4, "namespace": 0, "title": "Gambling"},
        "old_wikitext": "Gambling is a game.\n",
        "new_wikitext": "Gambling is a game.\nPlay at [https://www.casino.example/ Best casino]!\n",
        "summary": "add link",
        "request": {"ip": "203.0.113.9"}
    }))
    .unwrap()
}

#[test]
fn spam_filter_end_to_end() {
    let engine = Engine::new();
    let program = Program::parse(SPAM_FILTER).unwrap();
    let actions =
        FilterActions::from_json(&json!({"warn": {}, "disallow": {}, "tag": {"tags": ["spam-link"]}})).unwrap();
    let counters = Flags::default();

    let newbie = spam_edit(json!({"name": "Newbie", "id": 77, "editcount": 2, "groups": ["*", "user"]}));
    let mut vars = ActionVars::new(&newbie, 1_700_000_000);
    let outcome = Evaluator::new(&engine, &mut vars).eval(&program).unwrap();
    assert!(outcome.matched);
    let dump = vars.dump(&program.analysis().variables);
    assert_eq!(dump["added_links"], json!(["https://www.casino.example/"]));
    assert_eq!(dump["user_editcount"], 2);

    let matched = [Matched {
        filter_id: 12,
        description: "casino spam",
        actions: &actions,
    }];
    let first = decide(&matched, &newbie, &counters, 1_700_000_000, 600);
    assert_eq!(first.verdict, VerdictKind::Warn);
    assert_eq!(first.messages[0].key, "abusefilter-warning");
    assert_eq!(first.messages[0].description, "casino spam");
    let second = decide(&matched, &newbie, &counters, 1_700_000_010, 600);
    assert_eq!(second.verdict, VerdictKind::Disallow);
    assert_eq!(second.tags, ["spam-link"]);

    // An autoconfirmed user does not match; neither does a plain edit.
    let regular =
        spam_edit(json!({"name": "Regular", "id": 5, "editcount": 2, "groups": ["*", "user", "autoconfirmed"]}));
    let outcome = Evaluator::new(&engine, ActionVars::new(&regular, 1_700_000_000))
        .eval(&program)
        .unwrap();
    assert!(!outcome.matched);
    let plain = Action::from_json(&json!({"action": "edit", "user": {"name": "Newbie", "editcount": 1},
        "page": {"title": "Gambling"}, "old_wikitext": "a", "new_wikitext": "a\nb"}))
    .unwrap();
    let outcome = Evaluator::new(&engine, ActionVars::new(&plain, 1_700_000_000))
        .eval(&program)
        .unwrap();
    assert!(!outcome.matched);
}

#[test]
fn anonymous_editor_and_deprecated_names() {
    let engine = Engine::new();
    // user_editcount is null for logged-out editors; article_text is page_title's old name.
    let program = Program::parse(
        r#"user_editcount === null & user_age == 0 & article_text == "Gambling" & timestamp == "1700000000""#,
    )
    .unwrap();
    let anon = spam_edit(json!({"name": "203.0.113.9"}));
    let outcome = Evaluator::new(&engine, ActionVars::new(&anon, 1_700_000_000))
        .eval(&program)
        .unwrap();
    assert!(outcome.matched);
}
