//! Reading a wiki's existing filters from AbuseFilter's API (`list=abusefilters` with
//! `abfprop=id|description|pattern|actions|hits|comments|lasteditor|lastedittime|status|private`),
//! so `wikiguard import abusefilter` can bring them over with their ids.

use serde_json::Value as Json;
use wikiguard_filter::{Engine, Program};
use wikiguard_store::FilterSpec;

use crate::FilterActions;

/// Why an export could not be read; nothing is imported then.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ImportError(pub String);

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

/// An AbuseFilter number: `formatversion=2` gives numbers, the default format strings.
fn af_int(o: &serde_json::Map<String, Json>, k: &str) -> Option<i64> {
    let v = o.get(k)?;
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// Reads AbuseFilter's API answer (`{"query": {"abusefilters": [...]}}`, either format
/// version) or a bare array of its entries. Every entry must have an id and a pattern (the
/// export must be made by a user who may see patterns, `abusefilter-view-private` for private
/// ones); an entry that fails is reported with its index and id, and nothing is imported.
pub fn parse_abusefilter_export(
    text: &str,
    engine: &Engine,
) -> Result<(Vec<ImportedFilter>, Vec<String>), ImportError> {
    let v: Json = serde_json::from_str(text).map_err(|e| ImportError(format!("not JSON: {e}")))?;
    let list = match &v {
        Json::Array(a) => a,
        Json::Object(o) => o
            .get("query")
            .and_then(|q| q.get("abusefilters"))
            .and_then(Json::as_array)
            .ok_or_else(|| {
                ImportError(
                    "expected {\"query\": {\"abusefilters\": [...]}} as api.php?action=query&list=abusefilters returns"
                        .into(),
                )
            })?,
        _ => return Err(ImportError("expected a JSON object or array".into())),
    };
    let mut out = Vec::with_capacity(list.len());
    let mut warnings = Vec::new();
    let mut problems = Vec::new();
    for (i, e) in list.iter().enumerate() {
        let Some(o) = e.as_object() else {
            problems.push(format!("entry {i}: not an object"));
            continue;
        };
        let Some(id) = af_int(o, "id") else {
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
                .and_then(crate::time::parse_timestamp)
                .unwrap_or(0),
            hits: af_int(o, "hits").unwrap_or(0),
        });
    }
    if !problems.is_empty() {
        return Err(ImportError(format!("nothing imported:\n  {}", problems.join("\n  "))));
    }
    Ok((out, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    proptest::proptest! {
        #[test]
        fn never_panics_and_refuses_or_reads_every_entry(
            entries in proptest::collection::vec(
                (proptest::option::of(0i64..1000), proptest::option::of("[ -~]{0,20}"), "[a-z,]{0,20}", proptest::bool::ANY),
                0..8,
            )
        ) {
            let list: Vec<Json> = entries
                .iter()
                .map(|(id, pattern, actions, enabled)| {
                    let mut o = serde_json::Map::new();
                    if let Some(id) = id { o.insert("id".into(), serde_json::json!(id)); }
                    if let Some(p) = pattern { o.insert("pattern".into(), serde_json::json!(p)); }
                    o.insert("actions".into(), serde_json::json!(actions));
                    if *enabled { o.insert("enabled".into(), serde_json::json!("")); }
                    Json::Object(o)
                })
                .collect();
            let text = serde_json::json!({"query": {"abusefilters": list}}).to_string();
            let complete = entries.iter().all(|(id, p, _, _)| id.is_some() && p.is_some());
            match parse_abusefilter_export(&text, &Engine::new()) {
                Ok((fs, _)) => {
                    proptest::prop_assert!(complete);
                    proptest::prop_assert_eq!(fs.len(), entries.len());
                    for f in &fs {
                        // Imported filters that AbuseFilter itself would refuse never run.
                        if f.spec.enabled {
                            proptest::prop_assert!(Program::parse(&f.spec.pattern).is_ok());
                        }
                    }
                }
                Err(_) => proptest::prop_assert!(!complete),
            }
        }
    }
}
