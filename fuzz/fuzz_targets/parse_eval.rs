//! Parses, checks and evaluates arbitrary input against a small fixed set of variables, with
//! AbuseFilter's default condition limit on. Any panic (or stack overflow, or timeout) is a bug:
//! rules come from wiki administrators and must never take the service down.

#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use wikiguard_filter::{Engine, Evaluator, Program, Value};

/// AbuseFilter stores a rule in a BLOB column (64 KiB); anything longer cannot be saved.
const MAX_RULE: usize = 65_535;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new().with_condition_limit(Some(1000)))
}

fn variables() -> &'static HashMap<String, Value> {
    static VARS: OnceLock<HashMap<String, Value>> = OnceLock::new();
    VARS.get_or_init(|| {
        let strings = |v: &[&str]| Value::from(v.iter().map(|s| Value::from(*s)).collect::<Vec<_>>());
        let mut vars = HashMap::new();
        vars.insert("added_lines".into(), strings(&["Buy NOW!!! http://spam.example", "ＢＵＹ ｃｈｅａｐ", "", "[[Category:X]]"]));
        vars.insert("removed_lines".into(), strings(&["Some text.", "{{cite web|url=x}}"]));
        vars.insert("user_editcount".into(), Value::Int(7));
        vars.insert("user_groups".into(), strings(&["*", "user", "autoconfirmed"]));
        vars.insert("user_name".into(), Value::from("192.0.2.17"));
        vars.insert("user_age".into(), Value::Int(0));
        vars.insert("action".into(), Value::from("edit"));
        vars.insert("summary".into(), Value::from("/* Section */ fix"));
        vars.insert("page_namespace".into(), Value::Int(0));
        vars.insert("page_title".into(), Value::from("Main Page"));
        vars.insert("new_wikitext".into(), Value::from("Hello wörld! Visit http://spam.example today.\n\nBye."));
        vars.insert("new_size".into(), Value::Int(52));
        vars.insert("old_size".into(), Value::Int(12));
        vars.insert("edit_delta".into(), Value::Int(40));
        vars.insert("timestamp".into(), Value::from("1700000000"));
        vars
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_RULE {
        return;
    }
    let src = String::from_utf8_lossy(data);
    let engine = engine();
    let Ok(program) = Program::parse_with(&src, engine.known_variables()) else {
        return;
    };
    // Errors (division by zero, bad regex, condition limit…) are fine; panics are not.
    let _ = Evaluator::new(engine, variables().clone()).eval(&program);
});
