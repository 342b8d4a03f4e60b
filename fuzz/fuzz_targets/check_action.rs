//! Reads arbitrary bytes as a check-API action (JSON), then computes every AbuseFilter
//! variable of it; also as an AbuseFilter API export, and runs the wikitext scanners (links,
//! diff) on the raw bytes. Any panic
//! is a bug: the action comes from the network.

#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use wikiguard_check::{Action, ActionVars};
use wikiguard_filter::Engine;

fn engine() -> &'static Engine {
    static ENGINE: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(Engine::new)
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = wikiguard_check::links::extract_links(&text);
    if let Some((old, new)) = text.split_once('\u{0}') {
        let diff = wikiguard_check::diff::unified_diff(old, new);
        let _ = wikiguard_check::diff::split_diff(&diff, '+');
    }
    let _ = wikiguard_check::import::parse_abusefilter_export(&text, engine());
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let Ok(action) = Action::from_json(&json) else { return };
    let _ = action.stored_body();
    let all: BTreeSet<String> = wikiguard_filter::vars::BUILTIN.iter().map(|s| s.to_string()).collect();
    let mut vars = ActionVars::new(&action, 1_700_000_000);
    let _ = vars.dump(&all);
});
