//! The action the wiki asks about, as the check API receives it, and its validation.
//!
//! The JSON shape (every field but `action` optional unless the action needs it):
//!
//! ```json
//! {
//!   "action": "edit",
//!   "wiki": {"name": "enwiki", "language": "en"},
//!   "user": {"name": "Alice", "id": 7, "registered": true, "type": "named", "editcount": 12,
//!            "groups": ["*", "user"], "rights": ["edit"], "registration": "20240131235959",
//!            "emailconfirmed": true, "blocked": false},
//!   "page": {"id": 1, "namespace": 0, "title": "Main Page", "prefixedtitle": "Main Page",
//!            "created": "2024-01-31T23:59:59Z", "last_edited": "20240201000000",
//!            "first_contributor": "Bob", "recent_contributors": ["Bob"],
//!            "restrictions": {"edit": ["sysop"], "move": [], "create": [], "upload": []}},
//!   "target": {"namespace": 0, "title": "New name"},
//!   "summary": "…", "old_wikitext": "…", "new_wikitext": "…",
//!   "old_content_model": "wikitext", "new_content_model": "wikitext",
//!   "new_pst": "…", "new_html": "…", "new_text": "…",
//!   "links": {"all": ["https://…"], "old": ["https://…"]},
//!   "accountname": "NewUser",
//!   "file": {"sha1": "…", "size": 1024, "mime": "image/png", "mediatype": "BITMAP",
//!            "width": 10, "height": 10, "bits_per_channel": 8},
//!   "request": {"ip": "192.0.2.1", "user_agent": "…", "…": "anything else is kept as is"}
//! }
//! ```
//!
//! Unknown fields are refused everywhere except inside `request`, so a typo surfaces as an
//! error instead of a variable that silently reads as null.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::time::parse_timestamp;

/// The kinds of action AbuseFilter filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    /// A page edit (or creation).
    Edit,
    /// A page move.
    Move,
    /// A page deletion.
    Delete,
    /// An account created by a person.
    CreateAccount,
    /// An account created automatically (central login).
    AutoCreateAccount,
    /// A file upload.
    Upload,
    /// A file uploaded to the stash.
    StashUpload,
}

impl ActionKind {
    /// Every kind, in declaration order.
    pub const ALL: [ActionKind; 7] = [
        ActionKind::Edit,
        ActionKind::Move,
        ActionKind::Delete,
        ActionKind::CreateAccount,
        ActionKind::AutoCreateAccount,
        ActionKind::Upload,
        ActionKind::StashUpload,
    ];

    /// AbuseFilter's name for the action (the `action` variable).
    pub fn as_str(&self) -> &'static str {
        match self {
            ActionKind::Edit => "edit",
            ActionKind::Move => "move",
            ActionKind::Delete => "delete",
            ActionKind::CreateAccount => "createaccount",
            ActionKind::AutoCreateAccount => "autocreateaccount",
            ActionKind::Upload => "upload",
            ActionKind::StashUpload => "stashupload",
        }
    }

    /// The kind with this name, if any.
    pub fn parse(s: &str) -> Option<ActionKind> {
        ActionKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// An invalid action or filter-actions document: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ActionError {
    /// The field's path (`user.editcount`, `throttle.groups[1]`); empty for the document itself.
    pub field: String,
    /// What is wrong, and what is expected.
    pub message: String,
}

impl ActionError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> ActionError {
        ActionError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The wiki the action happens on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wiki {
    /// The wiki id (`wiki_name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The content language code (`wiki_language`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// The user performing the action (for an account creation: the creator).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// The user name; for a logged-out editor, the IP address as MediaWiki names them.
    #[serde(default)]
    pub name: String,
    /// The user id (0 for logged-out editors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// Whether the user has an account (temporary accounts do); derived from `id` or the name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered: Option<bool>,
    /// AbuseFilter master's `user_type` (`named`, `temp`, `ip`, `external`); derived when absent.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
    /// Whether this is a temporary account (MediaWiki 1.41+); it makes `user_type` `temp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temporary: Option<bool>,
    /// The edit count (`user_editcount`; null for logged-out editors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub editcount: Option<i64>,
    /// Effective groups, as MediaWiki gives them (including `*` and `user`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// The user's rights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rights: Option<Vec<String>>,
    /// Registration time (14-digit or ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<String>,
    /// Whether the e-mail address is confirmed, or the confirmation timestamp as AbuseFilter
    /// gives it (`user_emailconfirm` reads whatever is sent: a bool or a string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emailconfirmed: Option<Json>,
    /// Whether the user is blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<bool>,
}

/// Restrictions (protection levels) on a page, per action.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restrictions {
    /// Groups/rights needed to edit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edit: Vec<String>,
    /// … to move.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub r#move: Vec<String>,
    /// … to create.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub create: Vec<String>,
    /// … to upload.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upload: Vec<String>,
}

/// A page (the edited, deleted or uploaded page, a move's source, or a move's target).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// The page id (0 if the page does not exist).
    #[serde(default)]
    pub id: i64,
    /// The namespace number.
    #[serde(default)]
    pub namespace: i64,
    /// The title without the namespace prefix, with spaces (MediaWiki's `getText`).
    #[serde(default)]
    pub title: String,
    /// The title with its localised namespace prefix; built from English names when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefixedtitle: Option<String>,
    /// When the first revision was saved (for `*_age`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// When the latest revision was saved (for `*_last_edit_age`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_edited: Option<String>,
    /// The name of the page's first editor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_contributor: Option<String>,
    /// Recent editors' names (AbuseFilter takes the last 100 revisions' distinct authors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent_contributors: Option<Vec<String>>,
    /// Protection levels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restrictions: Option<Restrictions>,
}

/// External links as MediaWiki's parser registered them, when the wiki sends them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Links {
    /// The links of the new text (`all_links`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<Vec<String>>,
    /// The links of the current revision (`old_links`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<Vec<String>>,
}

/// An uploaded file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    /// SHA-1 in hexadecimal (40 digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha1: Option<String>,
    /// Size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// MIME type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime: Option<String>,
    /// MediaWiki's media type (`BITMAP`, `DRAWING`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mediatype: Option<String>,
    /// Width in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<i64>,
    /// Height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<i64>,
    /// Bit depth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bits_per_channel: Option<i64>,
}

/// The HTTP request behind the action: personal data, never stored with the action.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The client's IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The client's user agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Anything else the extension sends (client hints…), kept for the signals record.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Json>,
}

/// One action to check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// What is being done.
    pub action: ActionKind,
    /// The wiki.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wiki: Option<Wiki>,
    /// Who does it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    /// The page (a move's source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<Page>,
    /// A move's target page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Page>,
    /// The edit summary or reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Whether the editor marked the edit minor. AbuseFilter disabled its `minor_edit`
    /// variable, so no filter reads it; it is kept for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<bool>,
    /// The current text ("" for a new page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_wikitext: Option<String>,
    /// The text being saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_wikitext: Option<String>,
    /// The current content model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_content_model: Option<String>,
    /// The new content model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_content_model: Option<String>,
    /// The new text after pre-save transform (only MediaWiki can compute it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_pst: Option<String>,
    /// The parsed HTML of the new text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_html: Option<String>,
    /// The new text stripped of markup (derived from `new_html` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_text: Option<String>,
    /// External links from the parser.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// The account being created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accountname: Option<String>,
    /// The uploaded file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<File>,
    /// The HTTP request (never stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Request>,
}

/// The type a field must have, for validation with paths in the errors.
enum Ty {
    Str,
    Int,
    Bool,
    StrList,
    Timestamp,
    BoolOrStr,
    Obj(&'static [(&'static str, Ty)]),
    /// An object whose listed fields are typed and whose other fields are free.
    OpenObj(&'static [(&'static str, Ty)]),
}

const WIKI: &[(&str, Ty)] = &[("name", Ty::Str), ("language", Ty::Str)];
const USER: &[(&str, Ty)] = &[
    ("name", Ty::Str),
    ("id", Ty::Int),
    ("registered", Ty::Bool),
    ("type", Ty::Str),
    ("temporary", Ty::Bool),
    ("editcount", Ty::Int),
    ("groups", Ty::StrList),
    ("rights", Ty::StrList),
    ("registration", Ty::Timestamp),
    ("emailconfirmed", Ty::BoolOrStr),
    ("blocked", Ty::Bool),
];
const RESTRICTIONS: &[(&str, Ty)] = &[
    ("edit", Ty::StrList),
    ("move", Ty::StrList),
    ("create", Ty::StrList),
    ("upload", Ty::StrList),
];
const PAGE: &[(&str, Ty)] = &[
    ("id", Ty::Int),
    ("namespace", Ty::Int),
    ("title", Ty::Str),
    ("prefixedtitle", Ty::Str),
    ("created", Ty::Timestamp),
    ("last_edited", Ty::Timestamp),
    ("first_contributor", Ty::Str),
    ("recent_contributors", Ty::StrList),
    ("restrictions", Ty::Obj(RESTRICTIONS)),
];
const LINKS: &[(&str, Ty)] = &[("all", Ty::StrList), ("old", Ty::StrList)];
const FILE: &[(&str, Ty)] = &[
    ("sha1", Ty::Str),
    ("size", Ty::Int),
    ("mime", Ty::Str),
    ("mediatype", Ty::Str),
    ("width", Ty::Int),
    ("height", Ty::Int),
    ("bits_per_channel", Ty::Int),
];
const REQUEST: &[(&str, Ty)] = &[("ip", Ty::Str), ("user_agent", Ty::Str)];
const ACTION: &[(&str, Ty)] = &[
    ("action", Ty::Str),
    ("wiki", Ty::Obj(WIKI)),
    ("user", Ty::Obj(USER)),
    ("page", Ty::Obj(PAGE)),
    ("target", Ty::Obj(PAGE)),
    ("summary", Ty::Str),
    ("minor", Ty::Bool),
    ("old_wikitext", Ty::Str),
    ("new_wikitext", Ty::Str),
    ("old_content_model", Ty::Str),
    ("new_content_model", Ty::Str),
    ("new_pst", Ty::Str),
    ("new_html", Ty::Str),
    ("new_text", Ty::Str),
    ("links", Ty::Obj(LINKS)),
    ("accountname", Ty::Str),
    ("file", Ty::Obj(FILE)),
    ("request", Ty::OpenObj(REQUEST)),
];

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn check(path: &str, v: &Json, ty: &Ty) -> Result<(), ActionError> {
    // null means "not sent" for every optional field, as serde's Option reads it.
    if v.is_null() {
        return Ok(());
    }
    let bad = |what: &str| Err(ActionError::new(path, format!("expected {what}")));
    match ty {
        Ty::Str if !v.is_string() => bad("a string"),
        Ty::Int if !(v.is_i64() || v.is_u64() && v.as_i64().is_some()) => bad("an integer"),
        Ty::Bool if !v.is_boolean() => bad("a boolean"),
        Ty::BoolOrStr if !(v.is_boolean() || v.is_string()) => bad("a boolean or a timestamp string"),
        Ty::Timestamp => match v.as_str() {
            Some(s) if parse_timestamp(s).is_some() => Ok(()),
            _ => bad("a timestamp: 14 digits (20240131235959) or ISO 8601 (2024-01-31T23:59:59Z)"),
        },
        Ty::StrList => match v.as_array() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    if !item.is_string() {
                        return Err(ActionError::new(format!("{path}[{i}]"), "expected a string"));
                    }
                }
                Ok(())
            }
            None => bad("an array of strings"),
        },
        Ty::Obj(fields) | Ty::OpenObj(fields) => {
            let Some(obj) = v.as_object() else {
                return bad("an object");
            };
            for (k, item) in obj {
                match fields.iter().find(|(name, _)| name == k) {
                    Some((_, t)) => check(&join(path, k), item, t)?,
                    None if matches!(ty, Ty::OpenObj(_)) => {}
                    None => {
                        let known: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
                        return Err(ActionError::new(
                            join(path, k),
                            format!("unknown field; expected one of: {}", known.join(", ")),
                        ));
                    }
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn valid_kinds() -> String {
    ActionKind::ALL.map(|k| k.as_str()).join(", ")
}

impl Action {
    /// Validates and reads an action document. Errors name the field (`user.editcount`).
    pub fn from_json(v: &Json) -> Result<Action, ActionError> {
        Action::from_json_value(v.clone())
    }

    /// [`Action::from_json`] taking the JSON by value, so the texts it holds are moved into the
    /// action instead of copied (a 50 KB edit's body is about 100 KB of strings).
    pub fn from_json_value(v: Json) -> Result<Action, ActionError> {
        let Some(obj) = v.as_object() else {
            return Err(ActionError::new("", "expected a JSON object describing the action"));
        };
        let kind = match obj.get("action") {
            None | Some(Json::Null) => {
                return Err(ActionError::new(
                    "action",
                    format!("required; one of: {}", valid_kinds()),
                ))
            }
            Some(Json::String(s)) => ActionKind::parse(s).ok_or_else(|| {
                ActionError::new(
                    "action",
                    format!("unknown action {s:?}; expected one of: {}", valid_kinds()),
                )
            })?,
            Some(_) => {
                return Err(ActionError::new(
                    "action",
                    format!("expected a string, one of: {}", valid_kinds()),
                ))
            }
        };
        check("", &v, &Ty::Obj(ACTION))?;
        let action: Action =
            serde_json::from_value(v).map_err(|e| ActionError::new("", format!("invalid action: {e}")))?;
        let missing = |field: &str, why: &str| Err(ActionError::new(field, format!("required for {why}")));
        let kind_name = kind.as_str();
        match kind {
            ActionKind::Edit => {
                if action.page.is_none() {
                    return missing("page", kind_name);
                }
                if action.new_wikitext.is_none() {
                    return missing("new_wikitext", kind_name);
                }
            }
            ActionKind::Move => {
                if action.page.is_none() {
                    return missing("page", kind_name);
                }
                if action.target.is_none() {
                    return missing("target", kind_name);
                }
            }
            ActionKind::Delete => {
                if action.page.is_none() {
                    return missing("page", kind_name);
                }
            }
            ActionKind::CreateAccount | ActionKind::AutoCreateAccount => {
                let has_user_name = action.user.as_ref().is_some_and(|u| !u.name.is_empty());
                if action.accountname.as_deref().unwrap_or("").is_empty() && !has_user_name {
                    return Err(ActionError::new(
                        "accountname",
                        format!("required for {kind_name} (or user.name)"),
                    ));
                }
            }
            ActionKind::Upload | ActionKind::StashUpload => {
                if action.page.is_none() {
                    return missing("page", kind_name);
                }
                if action.file.is_none() {
                    return missing("file", kind_name);
                }
            }
        }
        Ok(action)
    }

    /// What is being done.
    pub fn kind(&self) -> ActionKind {
        self.action
    }

    /// The acting user's name ("" if none was sent).
    pub fn user_name(&self) -> &str {
        self.user.as_ref().map_or("", |u| u.name.as_str())
    }

    /// The prefixed title of the page (a move's source), "" if none.
    pub fn page_title(&self) -> String {
        self.page.as_ref().map(Page::prefixed_title).unwrap_or_default()
    }

    /// The namespace of the page (a move's source), 0 if none.
    pub fn namespace(&self) -> i64 {
        self.page.as_ref().map_or(0, |p| p.namespace)
    }

    /// The client's IP address (`request.ip`).
    pub fn ip(&self) -> Option<&str> {
        self.request.as_ref().and_then(|r| r.ip.as_deref())
    }

    /// The action as JSON without `request`: what may be stored (IP and user agent never are).
    pub fn stored_body(&self) -> Json {
        let mut v = serde_json::to_value(self).unwrap_or(Json::Null);
        if let Some(obj) = v.as_object_mut() {
            obj.remove("request");
        }
        v
    }

    /// Whether the acting user has an account.
    pub fn is_registered(&self) -> bool {
        self.user.as_ref().is_some_and(User::is_registered)
    }
}

impl User {
    /// Whether the user has an account: `registered` if sent, else `id > 0` if sent, else a
    /// non-empty name that is not an IP address.
    pub fn is_registered(&self) -> bool {
        if let Some(r) = self.registered {
            return r;
        }
        if let Some(id) = self.id {
            return id > 0;
        }
        !self.name.is_empty() && !is_ip(&self.name)
    }
}

/// Whether `s` is an IPv4 or IPv6 address.
pub(crate) fn is_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

/// MediaWiki's canonical (English) namespace names for 0..15.
fn namespace_name(ns: i64) -> Option<&'static str> {
    Some(match ns {
        0 => "",
        1 => "Talk",
        2 => "User",
        3 => "User talk",
        4 => "Project",
        5 => "Project talk",
        6 => "File",
        7 => "File talk",
        8 => "MediaWiki",
        9 => "MediaWiki talk",
        10 => "Template",
        11 => "Template talk",
        12 => "Help",
        13 => "Help talk",
        14 => "Category",
        15 => "Category talk",
        -1 => "Special",
        -2 => "Media",
        _ => return None,
    })
}

impl Page {
    /// The title without prefix, underscores read as spaces (MediaWiki's text form).
    pub fn text(&self) -> String {
        self.title.replace('_', " ")
    }

    /// `prefixedtitle` as sent, else the canonical English namespace name, a colon and the
    /// title (for namespaces beyond the canonical ones, which only the wiki can name,
    /// `Namespace<n>:` is used).
    pub fn prefixed_title(&self) -> String {
        if let Some(p) = &self.prefixedtitle {
            return p.replace('_', " ");
        }
        match namespace_name(self.namespace) {
            Some("") => self.text(),
            Some(name) => format!("{name}:{}", self.text()),
            None => format!("Namespace{}:{}", self.namespace, self.text()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Json) -> ActionError {
        Action::from_json(&v).unwrap_err()
    }

    #[test]
    fn minimal_edit() {
        let a = Action::from_json(&json!({
            "action": "edit", "page": {"namespace": 1, "title": "Foo_bar"}, "new_wikitext": "x",
            "user": {"name": "Alice"}, "request": {"ip": "192.0.2.1", "user_agent": "ua", "sec_ch_ua": "x"}
        }))
        .unwrap();
        assert_eq!(a.kind(), ActionKind::Edit);
        assert_eq!(a.user_name(), "Alice");
        assert_eq!(a.page_title(), "Talk:Foo bar");
        assert_eq!(a.namespace(), 1);
        assert_eq!(a.ip(), Some("192.0.2.1"));
        assert!(a.is_registered());
        let stored = a.stored_body();
        assert!(stored.get("request").is_none());
        assert_eq!(stored["action"], "edit");
        assert_eq!(stored["new_wikitext"], "x");
        // What is stored reads back as the same action, minus the request.
        let back = Action::from_json(&stored).unwrap();
        assert_eq!(back.request, None);
        assert_eq!(back.page, a.page);
    }

    #[test]
    fn errors_name_their_field() {
        let e = err(json!([]));
        assert_eq!(e.field, "");
        let e = err(json!({"page": {}}));
        assert_eq!(e.field, "action");
        assert!(e.message.contains("createaccount"), "{e}");
        let e = err(json!({"action": "edits"}));
        assert_eq!(e.field, "action");
        assert!(e.message.contains("edit, move, delete"), "{e}");
        let e = err(json!({"action": 3}));
        assert_eq!(e.field, "action");
        let e = err(json!({"action": "edit", "page": {}, "new_wikitext": "", "user": {"editcount": "5"}}));
        assert_eq!(e.to_string(), "user.editcount: expected an integer");
        let e = err(json!({"action": "edit", "page": {"title": 5}, "new_wikitext": ""}));
        assert_eq!(e.field, "page.title");
        let e = err(json!({"action": "edit", "page": {}, "new_wikitext": "", "user": {"groups": ["a", 1]}}));
        assert_eq!(e.field, "user.groups[1]");
        let e = err(json!({"action": "edit", "page": {"restrictions": {"edit": "sysop"}}, "new_wikitext": ""}));
        assert_eq!(e.field, "page.restrictions.edit");
        let e = err(json!({"action": "edit", "page": {}, "new_wikitext": "", "user": {"registration": "last week"}}));
        assert_eq!(e.field, "user.registration");
        let e = err(json!({"action": "edit", "page": {}, "new_wikitext": "", "user": {"emailconfirmed": 1}}));
        assert_eq!(e.field, "user.emailconfirmed");
        let e = err(json!({"action": "edit", "page": {}, "new_wikitext": "", "new_wikitxt": ""}));
        assert_eq!(e.field, "new_wikitxt");
        assert!(e.message.contains("unknown field"));
        let e = err(json!({"action": "edit", "page": {"titel": "x"}, "new_wikitext": ""}));
        assert_eq!(e.field, "page.titel");
        let e = err(json!({"action": "edit", "page": {}, "new_wikitext": "", "file": {"size": 1.5}}));
        assert_eq!(e.field, "file.size");
        let e = err(json!({"action": "edit", "page": {}, "new_wikitext": "", "request": {"ip": 1}}));
        assert_eq!(e.field, "request.ip");
        let e = err(json!({"action": "edit", "page": [], "new_wikitext": ""}));
        assert_eq!(e.to_string(), "page: expected an object");
    }

    #[test]
    fn required_fields_per_action() {
        assert_eq!(err(json!({"action": "edit", "new_wikitext": ""})).field, "page");
        assert_eq!(err(json!({"action": "edit", "page": {}})).field, "new_wikitext");
        assert_eq!(err(json!({"action": "move", "page": {}})).field, "target");
        assert_eq!(err(json!({"action": "move", "target": {}})).field, "page");
        assert_eq!(err(json!({"action": "delete"})).field, "page");
        assert_eq!(err(json!({"action": "createaccount"})).field, "accountname");
        assert_eq!(
            err(json!({"action": "autocreateaccount", "accountname": ""})).field,
            "accountname"
        );
        assert!(Action::from_json(&json!({"action": "createaccount", "user": {"name": "New"}})).is_ok());
        assert!(Action::from_json(&json!({"action": "createaccount", "accountname": "New"})).is_ok());
        assert_eq!(err(json!({"action": "upload", "page": {}})).field, "file");
        assert_eq!(err(json!({"action": "stashupload", "file": {}})).field, "page");
        assert!(Action::from_json(&json!({"action": "stashupload", "file": {}, "page": {"namespace": 6}})).is_ok());
        // null reads as absent
        assert_eq!(
            err(json!({"action": "edit", "page": {}, "new_wikitext": null})).field,
            "new_wikitext"
        );
    }

    #[test]
    fn kinds_round_trip() {
        for k in ActionKind::ALL {
            assert_eq!(ActionKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        assert_eq!(ActionKind::parse("Edit"), None);
    }

    #[test]
    fn registration_and_titles() {
        let u = |v: Json| serde_json::from_value::<User>(v).unwrap().is_registered();
        assert!(!u(json!({"name": "192.0.2.1"})));
        assert!(!u(json!({"name": "2001:db8::1"})));
        assert!(u(json!({"name": "Alice"})));
        assert!(!u(json!({"name": "Alice", "id": 0})));
        assert!(u(json!({"name": "192.0.2.1", "registered": true})));
        let p = |v: Json| serde_json::from_value::<Page>(v).unwrap().prefixed_title();
        assert_eq!(p(json!({"title": "Main Page"})), "Main Page");
        assert_eq!(p(json!({"namespace": 3, "title": "Bob"})), "User talk:Bob");
        assert_eq!(p(json!({"namespace": 14, "title": "X"})), "Category:X");
        assert_eq!(p(json!({"namespace": 100, "title": "X"})), "Namespace100:X");
        assert_eq!(
            p(json!({"namespace": 4, "title": "X", "prefixedtitle": "Wikipedia:X"})),
            "Wikipedia:X"
        );
    }
}
