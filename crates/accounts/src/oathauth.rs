//! Import of OATHAuth's stored TOTP enrolments, so a wiki's users keep their apps.
//!
//! Input: the rows of OATHAuth's tables exported as a JSON array (e.g. from
//! `SELECT ... FROM oathauth_devices` with a JSON output mode). Each row is one of:
//!
//! - **`oathauth_devices`** (OATHAuth since MediaWiki 1.41): `oad_user` (central user id),
//!   `oad_type`, `oad_data`, optional `oad_id`, `oad_name`, `oad_created`. `oad_type` is a
//!   foreign key to `oathauth_types` (`oat_id`, `oat_name`): give the name (`"totp"`), or
//!   the number with an `oat_name` column joined in, or the number and
//!   [`ImportOptions::type_names`]. `oad_data` is the key's JSON (as a string, or already
//!   an object): for `totp`, `{"secret": BASE32, "scratch_tokens": [...]}` (scratch tokens
//!   moved out to a `recoverycodes` device in later versions, whose data is
//!   `{"recoverycodekeys": [...]}`).
//! - **`oathauth_users`** (MediaWiki 1.35 to 1.40): `id`, `module` (`"totp"`), `data` =
//!   `{"keys": [{"secret": ..., "scratch_tokens": [...]}]}`; and the older shape with
//!   `secret` and `scratch_tokens` columns on the row itself.
//!
//! Secrets that OATHAuth encrypted with `$wgOATHSecretKey` (data with a `nonce`) cannot be
//! read here and are reported per row, like every other problem: one bad row never stops
//! the import, and no row is half-imported. WebAuthn devices are skipped with a reason
//! (passkeys are not imported yet). OATHAuth codes are fixed at SHA-1, 6 digits, 30 s.

use crate::base32;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Longest secret accepted, in bytes (OATHAuth makes 10; apps rarely exceed 64).
const MAX_SECRET: usize = 128;
/// Most scratch tokens accepted per key.
const MAX_TOKENS: usize = 100;

/// Import settings.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `oathauth_types` rows: `oat_id` → `oat_name`, for exports with numeric `oad_type`.
    pub type_names: HashMap<i64, String>,
}

/// A TOTP enrolment read from OATHAuth.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct ImportedTotp {
    /// Index of the row in the export (0-based).
    pub row: usize,
    /// OATHAuth's user id (the central id; the local user id on a single wiki).
    pub user_id: u64,
    /// The device's name, if it has one.
    pub name: Option<String>,
    /// The raw secret.
    #[serde(skip)]
    pub secret: Vec<u8>,
    /// Unused scratch tokens, to hash as recovery codes ([`crate::recovery::StoredCodes::from_plain`]).
    #[serde(skip)]
    pub scratch_tokens: Vec<String>,
}

impl std::fmt::Debug for ImportedTotp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportedTotp")
            .field("row", &self.row)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("secret", &"***")
            .field("scratch_tokens", &self.scratch_tokens.len())
            .finish()
    }
}

/// Recovery codes read from an OATHAuth `recoverycodes` device.
#[derive(Clone, PartialEq, Eq)]
pub struct ImportedRecoveryCodes {
    /// Index of the row in the export.
    pub row: usize,
    /// OATHAuth's user id.
    pub user_id: u64,
    /// The plain codes, to hash.
    pub codes: Vec<String>,
}

impl std::fmt::Debug for ImportedRecoveryCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportedRecoveryCodes")
            .field("row", &self.row)
            .field("user_id", &self.user_id)
            .field("codes", &self.codes.len())
            .finish()
    }
}

/// What was wrong with one row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowErrorKind {
    /// The row is not a JSON object.
    #[error("row is not an object")]
    NotAnObject,
    /// The row has neither `oad_user` nor `id`.
    #[error("row has neither `oad_user` (oathauth_devices) nor `id` (oathauth_users)")]
    UnknownShape,
    /// A required field is missing.
    #[error("missing field `{0}`")]
    Missing(&'static str),
    /// A field has the wrong type or value.
    #[error("field `{field}`: {why}")]
    Bad {
        /// The field.
        field: &'static str,
        /// What is wrong.
        why: String,
    },
    /// A numeric `oad_type` without a name for it.
    #[error("oad_type {0} is a number; export oat_name with it or pass the oathauth_types table")]
    UnnamedType(i64),
    /// A device type that is not imported.
    #[error("device type `{0}` is not imported")]
    Unsupported(String),
    /// The secret was encrypted by OATHAuth (`$wgOATHSecretKey`).
    #[error("the secret is encrypted with OATHAuth's $wgOATHSecretKey; disable encryption in OATHAuth or re-enrol")]
    Encrypted,
}

/// One refused row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("row {row}{}: {kind}", .user_id.map(|u| format!(" (user {u})")).unwrap_or_default())]
pub struct RowError {
    /// Index of the row (0-based).
    pub row: usize,
    /// The user, when the row got that far.
    pub user_id: Option<u64>,
    /// What was wrong.
    pub kind: RowErrorKind,
}

/// The import as a whole failed (nothing was read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// Not JSON.
    #[error("not valid JSON: {0}")]
    Json(String),
    /// JSON, but not an array of rows.
    #[error("expected a JSON array of rows")]
    NotAnArray,
}

/// Everything read from an export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// TOTP enrolments.
    pub totp: Vec<ImportedTotp>,
    /// Recovery-code sets.
    pub recovery_codes: Vec<ImportedRecoveryCodes>,
    /// Refused or skipped rows.
    pub errors: Vec<RowError>,
}

/// Parses an export (see the module doc).
pub fn parse_export(json: &str, options: &ImportOptions) -> Result<ImportReport, ImportError> {
    let value: Value = serde_json::from_str(json).map_err(|e| ImportError::Json(e.to_string()))?;
    let Value::Array(rows) = value else {
        return Err(ImportError::NotAnArray);
    };
    let mut report = ImportReport::default();
    for (row, v) in rows.iter().enumerate() {
        let mut user_id = None;
        if let Err(kind) = parse_row(row, v, options, &mut user_id, &mut report) {
            report.errors.push(RowError { row, user_id, kind });
        }
    }
    Ok(report)
}

fn bad(field: &'static str, why: &str) -> RowErrorKind {
    RowErrorKind::Bad {
        field,
        why: why.to_owned(),
    }
}

/// A non-negative integer, also from a numeric string (MySQL exports often quote numbers).
fn uint(obj: &Map<String, Value>, field: &'static str) -> Result<u64, RowErrorKind> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(RowErrorKind::Missing(field)),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| bad(field, "not a non-negative integer")),
        Some(Value::String(s)) => s.trim().parse().map_err(|_| bad(field, "not a non-negative integer")),
        Some(_) => Err(bad(field, "not a number")),
    }
}

/// A JSON object stored as a string column, or already an object.
fn json_object(v: Option<&Value>, field: &'static str) -> Result<Map<String, Value>, RowErrorKind> {
    match v {
        None | Some(Value::Null) => Err(RowErrorKind::Missing(field)),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(bad(field, "JSON is not an object")),
            Err(e) => Err(RowErrorKind::Bad {
                field,
                why: format!("invalid JSON: {e}"),
            }),
        },
        Some(_) => Err(bad(field, "not a JSON string or object")),
    }
}

fn string_list(v: Option<&Value>, field: &'static str) -> Result<Vec<String>, RowErrorKind> {
    let list = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a.clone(),
        // The oldest schema stored the list as a JSON string.
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(Vec::new()),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Array(a)) => a,
            _ => return Err(bad(field, "not a list")),
        },
        Some(_) => return Err(bad(field, "not a list")),
    };
    if list.len() > MAX_TOKENS {
        return Err(bad(field, "too many entries"));
    }
    let mut out = Vec::with_capacity(list.len());
    for item in list {
        match item {
            Value::String(s) if s.trim().is_empty() => {} // OATHAuth's marker for "all used".
            Value::String(s) if s.len() <= 64 => out.push(s),
            _ => return Err(bad(field, "entries must be short strings")),
        }
    }
    Ok(out)
}

fn secret(key: &Map<String, Value>) -> Result<Vec<u8>, RowErrorKind> {
    if key.get("nonce").is_some_and(|n| !n.is_null() && n.as_str() != Some("")) {
        return Err(RowErrorKind::Encrypted);
    }
    let s = match key.get("secret") {
        None | Some(Value::Null) => return Err(RowErrorKind::Missing("secret")),
        Some(Value::String(s)) => s,
        Some(_) => return Err(bad("secret", "not a string")),
    };
    let bytes = base32::decode(s).map_err(|e| RowErrorKind::Bad {
        field: "secret",
        why: e.to_string(),
    })?;
    if bytes.is_empty() || bytes.len() > MAX_SECRET {
        return Err(bad("secret", "empty or longer than 128 bytes"));
    }
    Ok(bytes)
}

fn totp_from_key(
    row: usize,
    user_id: u64,
    name: Option<String>,
    key: &Map<String, Value>,
) -> Result<ImportedTotp, RowErrorKind> {
    Ok(ImportedTotp {
        row,
        user_id,
        name,
        secret: secret(key)?,
        scratch_tokens: string_list(key.get("scratch_tokens"), "scratch_tokens")?,
    })
}

fn parse_row(
    row: usize,
    v: &Value,
    options: &ImportOptions,
    user_id: &mut Option<u64>,
    report: &mut ImportReport,
) -> Result<(), RowErrorKind> {
    let Value::Object(obj) = v else {
        return Err(RowErrorKind::NotAnObject);
    };
    if obj.contains_key("oad_user") {
        let user = uint(obj, "oad_user")?;
        *user_id = Some(user);
        let type_name = match obj.get("oad_type") {
            None | Some(Value::Null) => return Err(RowErrorKind::Missing("oad_type")),
            Some(Value::String(s)) if s.trim().parse::<i64>().is_err() => s.trim().to_owned(),
            Some(t) => {
                let n = t.as_i64().or_else(|| t.as_str().and_then(|s| s.trim().parse().ok()));
                let n = n.ok_or_else(|| bad("oad_type", "not a name or number"))?;
                match obj.get("oat_name").and_then(Value::as_str) {
                    Some(name) => name.to_owned(),
                    None => options
                        .type_names
                        .get(&n)
                        .cloned()
                        .ok_or(RowErrorKind::UnnamedType(n))?,
                }
            }
        };
        let name = obj
            .get("oad_name")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .filter(|s| !s.is_empty());
        match type_name.as_str() {
            "totp" => {
                let data = json_object(obj.get("oad_data"), "oad_data")?;
                report.totp.push(totp_from_key(row, user, name, &data)?);
            }
            "recoverycodes" => {
                let data = json_object(obj.get("oad_data"), "oad_data")?;
                if data
                    .get("nonce")
                    .is_some_and(|n| n.as_str().is_some_and(|s| !s.is_empty()))
                {
                    return Err(RowErrorKind::Encrypted);
                }
                if !data.contains_key("recoverycodekeys") {
                    return Err(RowErrorKind::Missing("recoverycodekeys"));
                }
                let codes = string_list(data.get("recoverycodekeys"), "recoverycodekeys")?;
                report.recovery_codes.push(ImportedRecoveryCodes {
                    row,
                    user_id: user,
                    codes,
                });
            }
            other => return Err(RowErrorKind::Unsupported(other.to_owned())),
        }
        return Ok(());
    }
    if obj.contains_key("id") {
        let user = uint(obj, "id")?;
        *user_id = Some(user);
        if obj.contains_key("secret") {
            // The pre-1.35 shape: columns on the row.
            report.totp.push(totp_from_key(row, user, None, obj)?);
            return Ok(());
        }
        match obj.get("module").and_then(Value::as_str) {
            None => return Err(RowErrorKind::Missing("module")),
            Some("totp") => {}
            Some(other) => return Err(RowErrorKind::Unsupported(other.to_owned())),
        }
        let data = json_object(obj.get("data"), "data")?;
        let keys = match data.get("keys") {
            Some(Value::Array(keys)) => keys.clone(),
            // Some versions stored the single key directly.
            _ if data.contains_key("secret") => vec![Value::Object(data.clone())],
            _ => return Err(RowErrorKind::Missing("keys")),
        };
        // All keys of the row or none: no half-imported user.
        let mut parsed = Vec::with_capacity(keys.len());
        for k in &keys {
            let Value::Object(k) = k else {
                return Err(bad("keys", "entries must be objects"));
            };
            parsed.push(totp_from_key(row, user, None, k)?);
        }
        if parsed.is_empty() {
            return Err(bad("keys", "empty"));
        }
        report.totp.extend(parsed);
        return Ok(());
    }
    Err(RowErrorKind::UnknownShape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(json: &str) -> ImportReport {
        parse_export(json, &ImportOptions::default()).unwrap()
    }

    #[test]
    fn devices_table() {
        let r = parse(
            r#"[
            {"oad_id": 1, "oad_user": 5, "oad_type": "totp", "oad_name": "phone",
             "oad_data": "{\"secret\":\"JBSWY3DPEHPK3PXP\",\"scratch_tokens\":[\"ABCDEFGHIJKLMNOP\",\"\"]}"},
            {"oad_user": "6", "oad_type": 2, "oat_name": "recoverycodes",
             "oad_data": {"recoverycodekeys": ["QRSTUVWXYZ234567"]}},
            {"oad_user": 7, "oad_type": "webauthn", "oad_data": "{}"},
            {"oad_user": 8, "oad_type": "totp", "oad_data": "{\"secret\":\"MZXW6\",\"nonce\":\"AAAA\"}"},
            {"oad_user": 9, "oad_type": "totp", "oad_data": "{\"secret\":\"not base32!\"}"},
            {"oad_user": 10, "oad_type": 1, "oad_data": "{}"},
            {"oad_user": -1, "oad_type": "totp"},
            [1, 2]
        ]"#,
        );
        assert_eq!(r.totp.len(), 1);
        let t = &r.totp[0];
        assert_eq!((t.row, t.user_id, t.name.as_deref()), (0, 5, Some("phone")));
        assert_eq!(t.secret, b"Hello!\xde\xad\xbe\xef");
        assert_eq!(t.scratch_tokens, ["ABCDEFGHIJKLMNOP"]);
        assert_eq!(r.recovery_codes[0].user_id, 6);
        assert_eq!(r.recovery_codes[0].codes, ["QRSTUVWXYZ234567"]);
        let kinds: Vec<_> = r.errors.iter().map(|e| (e.row, e.kind.clone())).collect();
        assert_eq!(kinds[0], (2, RowErrorKind::Unsupported("webauthn".into())));
        assert_eq!(kinds[1], (3, RowErrorKind::Encrypted));
        assert!(matches!(kinds[2], (4, RowErrorKind::Bad { field: "secret", .. })));
        assert_eq!(kinds[3], (5, RowErrorKind::UnnamedType(1)));
        assert!(matches!(kinds[4], (6, RowErrorKind::Bad { field: "oad_user", .. })));
        assert_eq!(kinds[5], (7, RowErrorKind::NotAnObject));
        assert_eq!(
            r.errors[3].to_string(),
            "row 5 (user 10): oad_type 1 is a number; export oat_name with it or pass the oathauth_types table"
        );
        // With the types table the numeric type resolves.
        let opts = ImportOptions {
            type_names: HashMap::from([(1, "totp".to_string())]),
        };
        let r = parse_export(
            r#"[{"oad_user": 1, "oad_type": 1, "oad_data": "{\"secret\":\"MZXW6YQ\"}"}]"#,
            &opts,
        )
        .unwrap();
        assert_eq!(r.totp[0].secret, b"foob");
        assert!(format!("{:?}", r.totp[0]).contains("***"));
    }

    #[test]
    fn users_table() {
        let r = parse(
            r#"[
            {"id": 3, "module": "totp", "data": "{\"keys\":[{\"secret\":\"MZXW6YTB\",\"scratch_tokens\":[\"AAAAAAAAAAAAAAAA\"]}]}"},
            {"id": 4, "secret": "MZXW6YTBOI", "scratch_tokens": "[\"BBBBBBBBBBBBBBBB\"]"},
            {"id": 5, "module": "totp", "data": "{\"keys\":[{\"secret\":\"MZXW6YTB\"},{\"secret\":\"1\"}]}"},
            {"id": 6, "module": "webauthn", "data": "{}"},
            {"id": 7, "module": "totp", "data": "{oops"},
            {"something": 1}
        ]"#,
        );
        assert_eq!(r.totp.iter().map(|t| t.user_id).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(r.totp[1].secret, b"foobar");
        assert_eq!(r.totp[1].scratch_tokens, ["BBBBBBBBBBBBBBBB"]);
        assert_eq!(r.errors.len(), 4);
        assert!(
            matches!(r.errors[0].kind, RowErrorKind::Bad { field: "secret", .. }),
            "user 5 not half-imported"
        );
        assert!(matches!(r.errors[2].kind, RowErrorKind::Bad { field: "data", .. }));
        assert_eq!(r.errors[3].kind, RowErrorKind::UnknownShape);
    }

    #[test]
    fn top_level_errors() {
        assert!(matches!(
            parse_export("{", &ImportOptions::default()),
            Err(ImportError::Json(_))
        ));
        assert_eq!(
            parse_export("{}", &ImportOptions::default()),
            Err(ImportError::NotAnArray)
        );
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[A-Z2-7=]{0,20}|\\PC{0,10}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            let keys = prop_oneof![
                Just("oad_user".to_string()),
                Just("oad_type".to_string()),
                Just("oad_data".to_string()),
                Just("oat_name".to_string()),
                Just("id".to_string()),
                Just("module".to_string()),
                Just("data".to_string()),
                Just("keys".to_string()),
                Just("secret".to_string()),
                Just("scratch_tokens".to_string()),
                Just("nonce".to_string()),
                Just("recoverycodekeys".to_string()),
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(keys, inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn rows_never_panic(rows in proptest::collection::vec(arb_json(), 0..6)) {
            let json = Value::Array(rows.clone()).to_string();
            let r = parse_export(&json, &ImportOptions::default()).unwrap();
            // Every row ends up in exactly one place: imported or refused.
            let mut seen: Vec<usize> = r.totp.iter().map(|t| t.row).collect();
            seen.extend(r.recovery_codes.iter().map(|c| c.row));
            seen.dedup();
            seen.extend(r.errors.iter().map(|e| e.row));
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..rows.len()).collect::<Vec<_>>());
        }

        #[test]
        fn text_never_panics(s in "\\PC{0,100}") {
            let _ = parse_export(&s, &ImportOptions::default());
        }
    }
}
