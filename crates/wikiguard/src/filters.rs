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
            if let Some(old) = previous.and_then(|p| p.filters.iter().find(|c| c.id == f.id && c.version == f.version)) {
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
            let actions = match crate::server::stored_actions(&f.spec.actions) {
                Ok(a) => a,
                Err(e) => {
                    set.broken.push((f.id, format!("actions: {e}")));
                    continue;
                }
            };
            let reads = crate::server::reads(&program);
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
    let Some(p) = prev else {
        return vec![
            "description",
            "pattern",
            "enabled",
            "deleted",
            "private",
            "group",
            "comments",
            "actions",
        ];
    };
    let mut out = Vec::new();
    let pairs: [(&'static str, bool); 8] = [
        ("description", p.description != cur.description),
        ("pattern", p.pattern != cur.pattern),
        ("enabled", p.enabled != cur.enabled),
        ("deleted", p.deleted != cur.deleted),
        ("private", p.private != cur.private),
        ("group", p.group != cur.group),
        ("comments", p.comments != cur.comments),
        ("actions", p.actions != cur.actions),
    ];
    for (name, differs) in pairs {
        if differs {
            out.push(name);
        }
    }
    out
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

/// One filter read from AbuseFilter's `list=abusefilters` API answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedFilter {
    /// AbuseFilter's id.
    pub id: i64,
    /// The spec, actions with AbuseFilter's default parameters.
    pub spec: FilterSpec,
    /// Last editor.
    pub editor: String,
    /// Last edit time, Unix seconds.
    pub time: i64,
    /// Hit count.
    pub hits: i64,
}

/// An AbuseFilter flag: `formatversion=2` gives booleans, the default format gives `""` when
/// set and leaves the key out when not.
fn af_flag(o: &serde_json::Map<String, Json>, k: &str) -> bool {
    match o.get(k) {
        Some(Json::Bool(b)) => *b,
        Some(Json::String(_)) => true,
        Some(Json::Number(n)) => n.as_i64().is_some_and(|n| n != 0),
        _ => false,
    }
}

/// MediaWiki's API timestamps: ISO 8601 (`2024-01-31T23:59:59Z`) or the 14-digit form.
pub fn parse_mw_time(s: &str) -> Option<i64> {
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 14 {
        return None;
    }
    let n = |a: usize, b: usize| digits.get(a..b).and_then(|x| x.parse::<i64>().ok());
    let (y, mo, d, h, mi, se) = (n(0, 4)?, n(4, 6)?, n(6, 8)?, n(8, 10)?, n(10, 12)?, n(12, 14)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

/// Reads AbuseFilter's API answer (`{"query": {"abusefilters": [...]}}`, either format
/// version) or a bare array of its entries. Every entry must have an id and a pattern (the
/// export must be made by a user who may see patterns, `abusefilter-view-private` for private
/// ones); an entry that fails is reported with its index and id, and nothing is imported.
pub fn parse_abusefilter_export(text: &str, engine: &Engine) -> anyhow::Result<(Vec<ImportedFilter>, Vec<String>)> {
    let v: Json = serde_json::from_str(text).map_err(|e| anyhow::anyhow!("not JSON: {e}"))?;
    let list = match &v {
        Json::Array(a) => a.clone(),
        Json::Object(o) => o
            .get("query")
            .and_then(|q| q.get("abusefilters"))
            .and_then(Json::as_array)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("expected {{\"query\": {{\"abusefilters\": [...]}}}} as api.php?action=query&list=abusefilters returns"))?,
        _ => anyhow::bail!("expected a JSON object or array"),
    };
    let mut out = Vec::with_capacity(list.len());
    let mut warnings = Vec::new();
    let mut problems = Vec::new();
    for (i, e) in list.iter().enumerate() {
        let Some(o) = e.as_object() else {
            problems.push(format!("entry {i}: not an object"));
            continue;
        };
        let Some(id) = o
            .get("id")
            .and_then(|x| x.as_i64().or_else(|| x.as_str().and_then(|s| s.parse().ok())))
        else {
            problems.push(format!("entry {i}: no numeric `id`"));
            continue;
        };
        let Some(pattern) = o.get("pattern").and_then(Json::as_str) else {
            problems.push(format!(
                "entry {i} (filter {id}): no `pattern`; export with abfprop=…|pattern as a user who may view it"
            ));
            continue;
        };
        // A wiki's existing filters must load unchanged: refuse only what AbuseFilter refuses
        // (an unknown variable from an extension we do not know, say), and keep it disabled.
        let broken = match Program::parse_with(pattern, engine.known_variables()) {
            Ok(_) => false,
            Err(err) => {
                warnings.push(format!("filter {id}: {err}; imported disabled"));
                true
            }
        };
        let actions = o.get("actions").and_then(Json::as_str).unwrap_or_default();
        let mut actions = FilterActions::from_names(actions).to_json();
        // The export names actions without their parameters; a tag action needs its tag
        // names, which the API does not give, so it cannot be carried over.
        if actions
            .get("tag")
            .and_then(|t| t.get("tags"))
            .and_then(Json::as_array)
            .is_some_and(Vec::is_empty)
        {
            if let Some(o) = actions.as_object_mut() {
                o.remove("tag");
            }
            warnings.push(format!(
                "filter {id}: the export does not name its tags; set them with PUT /v1/filters/{id}"
            ));
        }
        let deleted = af_flag(o, "deleted");
        let spec = FilterSpec {
            description: o
                .get("description")
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_string(),
            pattern: pattern.to_string(),
            enabled: af_flag(o, "enabled") && !deleted && !broken,
            deleted,
            private: af_flag(o, "private"),
            group: "default".into(),
            comments: o.get("comments").and_then(Json::as_str).unwrap_or_default().to_string(),
            actions,
        };
        out.push(ImportedFilter {
            id,
            spec,
            editor: o
                .get("lasteditor")
                .and_then(Json::as_str)
                .unwrap_or("AbuseFilter import")
                .to_string(),
            time: o
                .get("lastedittime")
                .and_then(Json::as_str)
                .and_then(parse_mw_time)
                .unwrap_or(0),
            hits: o
                .get("hits")
                .and_then(|h| h.as_i64().or_else(|| h.as_str().and_then(|s| s.parse().ok())))
                .unwrap_or(0),
        });
    }
    if !problems.is_empty() {
        anyhow::bail!("nothing imported:\n  {}", problems.join("\n  "));
    }
    Ok((out, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mediawiki_times() {
        assert_eq!(parse_mw_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_mw_time("20240131235959"), Some(1_706_745_599));
        assert_eq!(parse_mw_time("2024-01-31T23:59:59Z"), Some(1_706_745_599));
        assert_eq!(parse_mw_time("2000-02-29T12:00:00Z"), Some(951_825_600));
        assert_eq!(parse_mw_time("yesterday"), None);
        assert_eq!(parse_mw_time("20241331000000"), None);
    }

    #[test]
    fn reads_both_api_formats() {
        let engine = Engine::new();
        let v1 = r#"{"batchcomplete":"","query":{"abusefilters":[
            {"id":3,"description":"Page blanking","pattern":"new_size < 10","actions":"warn,tag","hits":12,
             "lasteditor":"Admin","lastedittime":"2024-01-31T23:59:59Z","enabled":"","private":""},
            {"id":"7","description":"Old","pattern":"1 == 1","actions":"","hits":"0","deleted":""}]}}"#;
        let (fs, warnings) = parse_abusefilter_export(v1, &engine).unwrap();
        assert_eq!(fs.len(), 2);
        assert_eq!(fs[0].id, 3);
        assert!(fs[0].spec.enabled && fs[0].spec.private && !fs[0].spec.deleted);
        assert_eq!(fs[0].hits, 12);
        assert_eq!(fs[0].time, 1_706_745_599);
        assert!(fs[0].spec.actions.get("warn").is_some());
        assert!(
            fs[0].spec.actions.get("tag").is_none(),
            "tag names are not in the export"
        );
        assert_eq!(warnings.len(), 1);
        assert!(fs[1].spec.deleted && !fs[1].spec.enabled);
        let v2 = r#"{"query":{"abusefilters":[{"id":3,"description":"d","pattern":"x := ;","actions":"disallow","enabled":true,"private":false,"deleted":false}]}}"#;
        let (fs, warnings) = parse_abusefilter_export(v2, &engine).unwrap();
        assert!(
            !fs[0].spec.enabled,
            "a rule AbuseFilter itself would refuse is imported disabled"
        );
        assert_eq!(warnings.len(), 1);
        let missing = r#"[{"id":1,"description":"hidden"}]"#;
        let e = parse_abusefilter_export(missing, &engine).unwrap_err().to_string();
        assert!(e.contains("filter 1") && e.contains("pattern"), "{e}");
    }

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
