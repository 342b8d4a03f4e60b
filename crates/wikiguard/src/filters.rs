//! Filters as data: the JSON an administrator sends (AbuseFilter's vocabulary) to a checked
//! [`FilterSpec`], the compiled set of enabled filters the check door runs, history diffs,
//! testing a draft against recorded actions, and reading AbuseFilter's API export.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{json, Value as Json};
use wikiguard_check::{Action, ActionVars, FilterActions};
use wikiguard_filter::{Engine, Evaluator, Program};
use wikiguard_store::{FilterSpec, RecentAction, Store, StoreError};

use crate::server::ApiError;

/// One enabled filter, compiled.
#[derive(Debug)]
pub struct CompiledFilter {
    /// Id.
    pub id: i64,
    /// Version that is running.
    pub version: i64,
    /// Public description, shown with its messages.
    pub description: String,
    /// The parsed rule.
    pub program: Program,
    /// Its consequences.
    pub actions: FilterActions,
    /// Variables it reads (dumped into its hits).
    pub reads: BTreeSet<String>,
}

/// The enabled filters, in id order (AbuseFilter's order), and the ones that failed to compile.
#[derive(Debug, Default)]
pub struct FilterSet {
    /// Filters that run.
    pub filters: Vec<Arc<CompiledFilter>>,
    /// Enabled filters that do not compile (imported from a wiki with other extensions, or
    /// saved by an older version): id and why.
    pub broken: Vec<(i64, String)>,
    /// Union of the variables the running filters read.
    pub reads: BTreeSet<String>,
}

impl FilterSet {
    /// Loads and compiles every enabled, undeleted filter, reusing the compiled form of
    /// those whose version `previous` already holds (a change recompiles one filter, not all).
    pub fn load(store: &dyn Store, engine: &Engine, previous: Option<&FilterSet>) -> Result<FilterSet, StoreError> {
        let mut set = FilterSet::default();
        for f in store.list_filters(false)? {
            if !f.spec.enabled || f.spec.deleted {
                continue;
            }
            if let Some(old) = previous.and_then(|p| p.filters.iter().find(|c| c.id == f.id && c.version == f.version))
            {
                set.reads.extend(old.reads.iter().cloned());
                set.filters.push(old.clone());
                continue;
            }
            let program = match Program::parse_with(&f.spec.pattern, engine.known_variables()) {
                Ok(p) => p,
                Err(e) => {
                    set.broken.push((f.id, e.to_string()));
                    continue;
                }
            };
            let actions = match FilterActions::from_json(&f.spec.actions).map_err(|e| e.to_string()) {
                Ok(a) => a,
                Err(e) => {
                    set.broken.push((f.id, format!("actions: {e}")));
                    continue;
                }
            };
            let reads = program.analysis().variables.clone();
            set.reads.extend(reads.iter().cloned());
            set.filters.push(Arc::new(CompiledFilter {
                id: f.id,
                version: f.version,
                description: f.spec.description.clone(),
                program,
                actions,
                reads,
            }));
        }
        Ok(set)
    }
}

/// Parses and checks a rule for saving: AbuseFilter's refusals are errors with line and column.
pub fn compile(pattern: &str, engine: &Engine, max_bytes: usize) -> Result<Program, ApiError> {
    if pattern.len() > max_bytes {
        return Err(ApiError::bad(
            "pattern_too_long",
            format!(
                "pattern: {} bytes, more than engine.max_rule_bytes ({max_bytes})",
                pattern.len()
            ),
        )
        .with("field", json!("pattern")));
    }
    if pattern.trim().is_empty() {
        return Err(ApiError::bad("syntax_error", "pattern: the rule is empty").with("field", json!("pattern")));
    }
    Program::parse_with(pattern, engine.known_variables()).map_err(|e| {
        ApiError::bad("syntax_error", format!("pattern: {e}"))
            .with("field", json!("pattern"))
            .with("line", json!(e.position.line))
            .with("column", json!(e.position.column))
            .with("exception", json!(e.code))
    })
}

/// Keys a filter body may hold: the spec, plus what GET returns (so a client can PUT back
/// what it read) and the editor's name.
const KNOWN_KEYS: &[&str] = &[
    "id",
    "description",
    "pattern",
    "enabled",
    "deleted",
    "private",
    "group",
    "comments",
    "actions",
    "editor",
    "version",
    "last_editor",
    "last_edit_time",
    "hits",
    "warnings",
];

fn field_err(field: &str, message: &str) -> ApiError {
    ApiError::bad("invalid_field", format!("{field}: {message}")).with("field", json!(field))
}

fn get_str(
    o: &serde_json::Map<String, Json>,
    k: &str,
    current: Option<&str>,
    required: bool,
) -> Result<String, ApiError> {
    match o.get(k) {
        Some(Json::String(s)) => Ok(s.clone()),
        Some(_) => Err(field_err(k, "expected a string")),
        None => match current {
            Some(c) => Ok(c.to_string()),
            None if required => Err(ApiError::bad("missing_field", format!("{k}: required")).with("field", json!(k))),
            None => Ok(String::new()),
        },
    }
}

fn get_bool(
    o: &serde_json::Map<String, Json>,
    k: &str,
    current: Option<bool>,
    default: bool,
) -> Result<bool, ApiError> {
    match o.get(k) {
        Some(Json::Bool(b)) => Ok(*b),
        Some(_) => Err(field_err(k, "expected true or false")),
        None => Ok(current.unwrap_or(default)),
    }
}

/// A checked spec from a request body; missing fields keep `current` (an update) or take
/// their defaults (a create). Also returns the static-check warnings, which never refuse.
pub fn spec_from_json(
    body: &Json,
    current: Option<&FilterSpec>,
    engine: &Engine,
    max_rule_bytes: usize,
) -> Result<(FilterSpec, Vec<Json>), ApiError> {
    let Some(o) = body.as_object() else {
        return Err(ApiError::bad(
            "invalid_body",
            "a filter is a JSON object: {\"description\", \"pattern\", \"actions\", …}",
        ));
    };
    for k in o.keys() {
        if !KNOWN_KEYS.contains(&k.as_str()) {
            return Err(ApiError::bad(
                "unknown_field",
                format!("{k}: unknown field; a filter has id, description, pattern, enabled, deleted, private, group, comments, actions"),
            )
            .with("field", json!(k)));
        }
    }
    let description = get_str(o, "description", current.map(|c| c.description.as_str()), true)?;
    if description.trim().is_empty() {
        return Err(field_err(
            "description",
            "must not be empty (it is the filter's public name)",
        ));
    }
    if description.chars().count() > 255 {
        return Err(field_err("description", "at most 255 characters, as in AbuseFilter"));
    }
    let pattern = get_str(o, "pattern", current.map(|c| c.pattern.as_str()), true)?;
    let program = compile(&pattern, engine, max_rule_bytes)?;
    let actions_json = match (o.get("actions"), current) {
        (Some(v), _) => v.clone(),
        (None, Some(c)) => c.actions.clone(),
        (None, None) => json!({}),
    };
    let actions = FilterActions::from_json(&actions_json).map_err(|e| {
        ApiError::bad("invalid_actions", format!("actions.{e}")).with("field", json!(format!("actions.{}", e.field)))
    })?;
    let mut group = get_str(o, "group", current.map(|c| c.group.as_str()), false)?;
    if group.is_empty() {
        group = "default".into();
    }
    let deleted = get_bool(o, "deleted", current.map(|c| c.deleted), false)?;
    let spec = FilterSpec {
        description,
        pattern,
        enabled: get_bool(o, "enabled", current.map(|c| c.enabled), true)? && !deleted,
        deleted,
        private: get_bool(o, "private", current.map(|c| c.private), false)?,
        group,
        comments: get_str(o, "comments", current.map(|c| c.comments.as_str()), false)?,
        actions: actions.to_json(),
    };
    let warnings = program
        .analysis()
        .warnings
        .iter()
        .map(|w| json!({ "code": w.code, "message": w.message, "line": w.position.line, "column": w.position.column }))
        .collect();
    Ok((spec, warnings))
}

/// Which fields differ between two versions (all of them for the first).
pub fn changed_fields(prev: Option<&FilterSpec>, cur: &FilterSpec) -> Vec<&'static str> {
    let differs = |same: fn(&FilterSpec, &FilterSpec) -> bool| prev.is_none_or(|p| !same(p, cur));
    [
        ("description", differs(|a, b| a.description == b.description)),
        ("pattern", differs(|a, b| a.pattern == b.pattern)),
        ("enabled", differs(|a, b| a.enabled == b.enabled)),
        ("deleted", differs(|a, b| a.deleted == b.deleted)),
        ("private", differs(|a, b| a.private == b.private)),
        ("group", differs(|a, b| a.group == b.group)),
        ("comments", differs(|a, b| a.comments == b.comments)),
        ("actions", differs(|a, b| a.actions == b.actions)),
    ]
    .into_iter()
    .filter_map(|(name, changed)| changed.then_some(name))
    .collect()
}

/// A unified line diff of two rule texts.
pub fn text_diff(old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(2)
        .header("before", "after")
        .to_string()
}

/// Runs a draft rule over recorded actions (newest first) and says which would match.
pub fn test_against(engine: &Engine, program: &Program, recent: &[RecentAction]) -> Json {
    let mut matches = Vec::new();
    let mut errors = Vec::new();
    let mut skipped = 0usize;
    for r in recent {
        let Ok(action) = Action::from_json(&r.action.body) else {
            skipped += 1;
            continue;
        };
        let mut vars = ActionVars::new(&action, r.action.time);
        let mut ev = Evaluator::new(engine, &mut vars);
        match ev.eval(program) {
            Ok(o) if o.matched => matches.push(json!({
                "id": r.id, "time": r.action.time, "action": r.action.action,
                "user_name": r.action.user_name, "page": r.action.page,
            })),
            Ok(_) => {}
            Err(e) => errors.push(json!({ "id": r.id, "code": e.code, "message": e.to_string() })),
        }
    }
    json!({
        "tested": recent.len() - skipped,
        "matched": matches.len(),
        "matches": matches,
        "errors": errors,
        "skipped": skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_diffs_name_what_changed() {
        let a = FilterSpec {
            description: "a".into(),
            pattern: "1 == 1\n".into(),
            enabled: true,
            deleted: false,
            private: false,
            group: "default".into(),
            comments: String::new(),
            actions: json!({}),
        };
        let mut b = a.clone();
        b.pattern = "1 == 2\n".into();
        b.enabled = false;
        assert_eq!(changed_fields(Some(&a), &b), vec!["pattern", "enabled"]);
        let d = text_diff(&a.pattern, &b.pattern);
        assert!(d.contains("-1 == 1") && d.contains("+1 == 2"), "{d}");
    }
}
