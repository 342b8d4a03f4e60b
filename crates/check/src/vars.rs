//! AbuseFilter's variables for an action, computed lazily: a variable is computed when a filter
//! first reads it and then kept for every other filter of the same check.
//!
//! Which variables an action sets follows AbuseFilter's `RunVariableGenerator`: every action
//! has `action`, `timestamp` and (when `wiki` is sent) `wiki_*`; user variables are set for
//! every action except an account creation by a logged-out user; `page_*` for edits,
//! deletions and uploads; `moved_from_*`/`moved_to_*` for moves; the text variables (diff,
//! sizes, links) for edits and for uploads that send a text; `file_*` for uploads;
//! `accountname` for account creations. A variable an action does not set reads as null.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value as Json;
use wikiguard_filter::{Value, Variables};

use crate::action::{is_ip, Action, ActionKind, Page, User};
use crate::diff::{split_diff, unified_diff};
use crate::links::extract_links;
use crate::time::parse_timestamp;

/// AbuseFilter's stand-in registration date for accounts without one (T243469).
const DEFAULT_REGISTRATION: i64 = 1_200_355_200; // 2008-01-15T00:00:00Z

/// Variables only MediaWiki can compute (they need its parser): they read as null unless the
/// wiki sends them. `edit_diff_pst` and `added_lines_pst` are derived here when `new_pst` is
/// sent, and `new_text` from `new_html`.
pub fn client_side_variables() -> &'static [&'static str] {
    &["new_html", "new_text", "new_pst", "added_lines_pst", "edit_diff_pst"]
}

/// The variables of one action, for [`wikiguard_filter::Evaluator`].
#[derive(Debug)]
pub struct ActionVars<'a> {
    action: &'a Action,
    now: i64,
    cache: HashMap<String, Option<Value>>,
}

fn strings(v: &[String]) -> Value {
    Value::from(v.iter().map(|s| Value::from(s.as_str())).collect::<Vec<_>>())
}

fn str_value(s: &str) -> Value {
    Value::Str(Arc::from(s))
}

/// Which page a `page_*`, `moved_from_*` or `moved_to_*` variable reads, and the rest of its name.
fn page_prefix(name: &str) -> Option<(&'static str, &str)> {
    for prefix in ["page_", "moved_from_", "moved_to_"] {
        if let Some(rest) = name.strip_prefix(prefix) {
            return Some((prefix, rest));
        }
    }
    None
}

impl<'a> ActionVars<'a> {
    /// The variables of `action`, checked at `now` (Unix seconds).
    pub fn new(action: &'a Action, now: i64) -> Self {
        ActionVars {
            action,
            now,
            cache: HashMap::new(),
        }
    }

    /// The action these variables describe.
    pub fn action(&self) -> &'a Action {
        self.action
    }

    /// A JSON object of the named variables' values (computing them), for the hit log.
    /// Variables the action does not set are left out, as in AbuseFilter's variable dump.
    pub fn dump(&mut self, names: &BTreeSet<String>) -> Json {
        let mut out = serde_json::Map::new();
        for name in names {
            let lower = name.to_ascii_lowercase();
            let canonical = wikiguard_filter::vars::canonical(&lower).to_string();
            if let Some(v) = self.get(&canonical) {
                out.insert(name.clone(), value_to_json(&v));
            }
        }
        Json::Object(out)
    }

    fn user(&self) -> Option<&'a User> {
        let a = self.action;
        match a.action {
            // AbuseFilter records the creator only when logged in (else the IP would be the "user").
            ActionKind::CreateAccount | ActionKind::AutoCreateAccount if !a.is_registered() => None,
            _ => a.user.as_ref(),
        }
    }

    fn page_for(&self, prefix: &str) -> Option<&'a Page> {
        let a = self.action;
        match (prefix, a.action) {
            ("page_", ActionKind::Edit | ActionKind::Delete | ActionKind::Upload | ActionKind::StashUpload) => {
                a.page.as_ref()
            }
            ("moved_from_", ActionKind::Move) => a.page.as_ref(),
            ("moved_to_", ActionKind::Move) => a.target.as_ref(),
            _ => None,
        }
    }

    /// Whether the text variables apply: edits, and uploads that send the page text.
    fn has_text(&self) -> bool {
        let a = self.action;
        match a.action {
            ActionKind::Edit => true,
            ActionKind::Upload | ActionKind::StashUpload => a.new_wikitext.is_some(),
            _ => false,
        }
    }

    fn age(&self, ts: Option<&str>) -> Option<i64> {
        ts.and_then(parse_timestamp).map(|t| self.now.saturating_sub(t))
    }

    fn text_of(&mut self, name: &str) -> String {
        match self.get(name) {
            Some(Value::Str(s)) => s.to_string(),
            _ => String::new(),
        }
    }

    fn list_of(&mut self, name: &str) -> Vec<Value> {
        match self.get(name) {
            Some(Value::Array(a)) => a.as_ref().clone(),
            _ => Vec::new(),
        }
    }

    fn compute(&mut self, name: &str) -> Option<Value> {
        let a = self.action;
        match name {
            "action" => return Some(str_value(a.action.as_str())),
            // AbuseFilter sets the Unix time as a string (wfTimestamp( TS_UNIX )).
            "timestamp" => return Some(Value::from(self.now.to_string())),
            "wiki_name" => return a.wiki.as_ref()?.name.as_deref().map(str_value),
            "wiki_language" => return a.wiki.as_ref()?.language.as_deref().map(str_value),
            "accountname" => {
                if !matches!(a.action, ActionKind::CreateAccount | ActionKind::AutoCreateAccount) {
                    return None;
                }
                let n = a.accountname.as_deref().filter(|n| !n.is_empty()).unwrap_or(a.user_name());
                return Some(str_value(n));
            }
            "summary" => {
                return match a.action {
                    ActionKind::Edit | ActionKind::Move | ActionKind::Delete => {
                        Some(str_value(a.summary.as_deref().unwrap_or("")))
                    }
                    _ if self.has_text() => Some(str_value(a.summary.as_deref().unwrap_or(""))),
                    _ => None,
                }
            }
            _ => {}
        }
        if let Some(rest) = name.strip_prefix("user_") {
            return self.user_var(rest);
        }
        if let Some(rest) = name.strip_prefix("file_") {
            if !matches!(a.action, ActionKind::Upload | ActionKind::StashUpload) {
                return None;
            }
            let f = a.file.as_ref()?;
            let int = |v: Option<i64>| Some(v.map_or(Value::Null, Value::Int));
            let s = |v: &Option<String>| Some(v.as_deref().map_or(Value::Null, str_value));
            return match rest {
                "sha1" => s(&f.sha1),
                "size" => int(f.size),
                "mime" => s(&f.mime),
                "mediatype" => s(&f.mediatype),
                "width" => int(f.width),
                "height" => int(f.height),
                "bits_per_channel" => int(f.bits_per_channel),
                _ => None,
            };
        }
        if let Some((prefix, rest)) = page_prefix(name) {
            let page = self.page_for(prefix)?;
            return self.page_var(page, rest);
        }
        if !self.has_text() {
            return None;
        }
        match name {
            "old_wikitext" => Some(str_value(a.old_wikitext.as_deref().unwrap_or(""))),
            "new_wikitext" => Some(str_value(a.new_wikitext.as_deref().unwrap_or(""))),
            "old_content_model" | "new_content_model" => {
                if a.action != ActionKind::Edit {
                    return None;
                }
                let sent = if name == "old_content_model" {
                    &a.old_content_model
                } else {
                    &a.new_content_model
                };
                Some(str_value(sent.as_deref().unwrap_or("wikitext")))
            }
            "old_size" => Some(Value::Int(self.text_of("old_wikitext").len() as i64)),
            "new_size" => Some(Value::Int(self.text_of("new_wikitext").len() as i64)),
            "edit_delta" => {
                let n = self.text_of("new_wikitext").len() as i64;
                let o = self.text_of("old_wikitext").len() as i64;
                Some(Value::Int(n - o))
            }
            "edit_diff" => {
                let (o, n) = (self.text_of("old_wikitext"), self.text_of("new_wikitext"));
                Some(Value::from(unified_diff(&o, &n)))
            }
            "edit_diff_pst" => {
                let pst = a.new_pst.as_deref()?;
                let o = self.text_of("old_wikitext");
                Some(Value::from(unified_diff(&o, pst)))
            }
            "added_lines" | "removed_lines" | "added_lines_pst" => {
                let (diff_var, prefix) = match name {
                    "added_lines" => ("edit_diff", '+'),
                    "removed_lines" => ("edit_diff", '-'),
                    _ => ("edit_diff_pst", '+'),
                };
                let diff = match self.get(diff_var)? {
                    Value::Str(s) => s,
                    _ => return None,
                };
                let lines = split_diff(&diff, prefix).into_iter().map(Value::from).collect::<Vec<_>>();
                Some(Value::from(lines))
            }
            "new_pst" => a.new_pst.as_deref().map(str_value),
            "new_html" => a.new_html.as_deref().map(str_value),
            "new_text" => match (&a.new_text, &a.new_html) {
                (Some(t), _) => Some(str_value(t)),
                (None, Some(html)) => Some(Value::from(strip_html(html))),
                (None, None) => None,
            },
            "all_links" => {
                let sent = a.links.as_ref().and_then(|l| l.all.as_ref());
                Some(match sent {
                    Some(l) => strings(l),
                    None => strings(&extract_links(&self.text_of("new_wikitext"))),
                })
            }
            "old_links" => {
                let sent = a.links.as_ref().and_then(|l| l.old.as_ref());
                Some(match sent {
                    Some(l) => strings(l),
                    None => strings(&extract_links(&self.text_of("old_wikitext"))),
                })
            }
            "added_links" | "removed_links" => {
                let (from, minus) = if name == "added_links" {
                    ("all_links", "old_links")
                } else {
                    ("old_links", "all_links")
                };
                let from = self.list_of(from);
                let minus = self.list_of(minus);
                // PHP's array_diff compares string forms and keeps duplicates and order.
                let keep = from
                    .into_iter()
                    .filter(|v| !minus.iter().any(|m| m.to_php_string() == v.to_php_string()))
                    .collect::<Vec<_>>();
                Some(Value::from(keep))
            }
            _ => None,
        }
    }

    fn user_var(&mut self, rest: &str) -> Option<Value> {
        let u = self.user()?;
        let registered = u.is_registered();
        Some(match rest {
            "name" => str_value(&u.name),
            "editcount" => match (registered, u.editcount) {
                (true, Some(n)) => Value::Int(n),
                _ => Value::Null,
            },
            "age" => {
                if registered {
                    let reg = u.registration.as_deref().and_then(parse_timestamp).unwrap_or(DEFAULT_REGISTRATION);
                    Value::Int(self.now.saturating_sub(reg))
                } else {
                    Value::Int(0)
                }
            }
            "groups" => match &u.groups {
                Some(g) => strings(g),
                None if registered => strings(&["*".to_string(), "user".to_string()]),
                None => strings(&["*".to_string()]),
            },
            "rights" => strings(u.rights.as_deref().unwrap_or(&[])),
            "emailconfirm" => match &u.emailconfirmed {
                Some(Json::Bool(b)) => Value::Bool(*b),
                Some(Json::String(s)) => str_value(s),
                _ => Value::Null,
            },
            "blocked" => Value::Bool(u.blocked.unwrap_or(false)),
            "type" => str_value(&user_type(u)),
            "unnamed_ip" => match user_type(u).as_str() {
                "ip" if is_ip(&u.name) => str_value(&u.name),
                "ip" | "temp" => self.action.ip().map_or(Value::Null, str_value),
                _ => Value::Null,
            },
            _ => return None,
        })
    }

    fn page_var(&self, page: &Page, rest: &str) -> Option<Value> {
        let restrictions = |pick: fn(&crate::action::Restrictions) -> &Vec<String>| {
            strings(page.restrictions.as_ref().map_or(&[][..], |r| pick(r).as_slice()))
        };
        Some(match rest {
            "id" => Value::Int(page.id),
            "namespace" => Value::Int(page.namespace),
            "title" => Value::from(page.text()),
            "prefixedtitle" => Value::from(page.prefixed_title()),
            "age" => Value::Int(self.age(page.created.as_deref()).unwrap_or(0)),
            "last_edit_age" => self.age(page.last_edited.as_deref()).map_or(Value::Null, Value::Int),
            "first_contributor" => str_value(page.first_contributor.as_deref().unwrap_or("")),
            "recent_contributors" => strings(page.recent_contributors.as_deref().unwrap_or(&[])),
            "restrictions_edit" => restrictions(|r| &r.edit),
            "restrictions_move" => restrictions(|r| &r.r#move),
            "restrictions_create" => restrictions(|r| &r.create),
            "restrictions_upload" => restrictions(|r| &r.upload),
            _ => return None,
        })
    }
}

/// `user_type` as AbuseFilter master defines it: what the wiki says, else `ip` for logged-out
/// users, `temp` for temporary accounts (names starting with `~`, MediaWiki's default
/// pattern), `external` for imported names (`prefix>Name`), `named` for the rest.
fn user_type(u: &User) -> String {
    if let Some(t) = &u.user_type {
        return t.clone();
    }
    if !u.is_registered() {
        "ip"
    } else if u.name.starts_with('~') {
        "temp"
    } else if u.name.contains('>') {
        "external"
    } else {
        "named"
    }
    .to_string()
}

/// AbuseFilter's `strip-html`: drops `<…>` spans (nested ones whole, an unclosed `<` and what
/// follows kept) and normalises line endings (`\r\n`/`\r` to `\n`, trailing whitespace trimmed).
fn strip_html(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut depth = 0usize;
    let mut pending = String::new();
    for c in html.chars() {
        match c {
            '<' => {
                depth += 1;
                pending.push(c);
            }
            '>' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    pending.clear();
                } else {
                    pending.push(c);
                }
            }
            _ if depth > 0 => pending.push(c),
            _ => out.push(c),
        }
    }
    out.push_str(&pending);
    let out = out.replace("\r\n", "\n").replace('\r', "\n");
    out.trim_end().to_string()
}

impl Variables for ActionVars<'_> {
    fn get(&mut self, name: &str) -> Option<Value> {
        if let Some(v) = self.cache.get(name) {
            return v.clone();
        }
        let v = self.compute(name);
        self.cache.insert(name.to_string(), v.clone());
        v
    }
}

/// A filter value as JSON (for the hit log and API answers): arrays as arrays, non-finite
/// floats and the internal undefined value as null.
pub fn value_to_json(v: &Value) -> Json {
    match v {
        Value::Undefined | Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) | Value::Tagged(_, f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Str(s) => Json::String(s.to_string()),
        Value::Array(items) => Json::Array(items.iter().map(value_to_json).collect()),
    }
}
