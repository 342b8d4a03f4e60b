//! AbuseFilter's variables for an action, computed lazily: a variable is computed when a filter
//! first reads it and then kept for every other filter of the same check.
//!
//! Which variables an action sets follows AbuseFilter's `RunVariableGenerator`: every action
//! has `action`, `timestamp` and (when `wiki` is sent) `wiki_*`; user variables are set for
//! every action except an account creation by a logged-out user; `page_*` for edits,
//! deletions and uploads; `moved_from_*`/`moved_to_*` for moves; the text variables (diff,
//! sizes, links) for edits and for uploads that send a text; `file_*` for uploads;
//! `accountname` for account creations. A variable an action does not set reads as null.

use std::collections::{HashMap, HashSet};
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
    links: Option<&'a LinkCache>,
}

/// External links of texts seen in earlier checks, so an edit's `old_links` need not parse the
/// old text again: it is usually the text the previous save checked. AbuseFilter likewise reads
/// a page's current links from the database instead of parsing its old text. Only new texts are
/// remembered and only old texts are looked up, so a cache hit always means "the wiki saved
/// this text before". Bounded: the oldest entries go first.
#[derive(Debug)]
pub struct LinkCache {
    capacity: usize,
    /// The texts' keys are SipHash under a key drawn at start-up: an editor who knew the
    /// key could craft a text whose key equals another's and so choose that text's
    /// `old_links` (and hide a link they add).
    hasher: std::collections::hash_map::RandomState,
    inner: std::sync::Mutex<Remembered>,
}

/// The links by text key, and the keys in the order they came (the oldest go first).
#[derive(Debug, Default)]
struct Remembered {
    links: HashMap<u64, Arc<Vec<String>>>,
    order: std::collections::VecDeque<u64>,
}

impl LinkCache {
    /// A cache of at most `capacity` texts' links.
    pub fn new(capacity: usize) -> LinkCache {
        LinkCache {
            capacity: capacity.max(1),
            hasher: std::collections::hash_map::RandomState::new(),
            inner: std::sync::Mutex::new(Remembered::default()),
        }
    }

    fn key(&self, text: &str) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one((text.len(), text))
    }

    fn get(&self, text: &str) -> Option<Arc<Vec<String>>> {
        let key = self.key(text);
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.links.get(&key).cloned()
    }

    fn put(&self, text: &str, links: Arc<Vec<String>>) {
        let key = self.key(text);
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.links.insert(key, links).is_some() {
            return; // already remembered; it keeps its place
        }
        g.order.push_back(key);
        // One key in, at most one out.
        if g.order.len() > self.capacity {
            if let Some(oldest) = g.order.pop_front() {
                g.links.remove(&oldest);
            }
        }
    }

    /// How many texts are remembered.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).links.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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
            links: None,
        }
    }

    /// [`ActionVars::new`], remembering and reusing texts' links in `cache` across checks.
    pub fn with_link_cache(action: &'a Action, now: i64, cache: &'a LinkCache) -> Self {
        ActionVars {
            links: Some(cache),
            ..ActionVars::new(action, now)
        }
    }

    /// The action these variables describe.
    pub fn action(&self) -> &'a Action {
        self.action
    }

    /// A JSON object of the named variables' values (computing them), for the hit log.
    /// Variables the action does not set are left out, as in AbuseFilter's variable dump.
    /// Takes the names by reference (a set of `String`s or of `&str`s), so a caller merging
    /// several filters' names need not copy them.
    pub fn dump<'n, N: AsRef<str> + 'n>(&mut self, names: impl IntoIterator<Item = &'n N>) -> Json {
        let mut out = serde_json::Map::new();
        for name in names {
            let name = name.as_ref();
            let lower = name.to_ascii_lowercase();
            let canonical = wikiguard_filter::vars::canonical(&lower);
            if let Some(v) = self.get(canonical) {
                out.insert(name.to_string(), value_to_json(&v));
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

    /// A text variable's value, shared with the cache (an edit's texts are not copied).
    fn text_of(&mut self, name: &str) -> Arc<str> {
        match self.get(name) {
            Some(Value::Str(s)) => s,
            _ => Arc::from(""),
        }
    }

    /// A list variable's items, shared with the cache.
    fn list_of(&mut self, name: &str) -> Arc<Vec<Value>> {
        match self.get(name) {
            Some(Value::Array(a)) => a,
            _ => Arc::default(),
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
                let n = a
                    .accountname
                    .as_deref()
                    .filter(|n| !n.is_empty())
                    .unwrap_or(a.user_name());
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
                let lines = split_diff(&diff, prefix)
                    .into_iter()
                    .map(Value::from)
                    .collect::<Vec<_>>();
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
                    None => {
                        let text = self.text_of("new_wikitext");
                        let links = Arc::new(extract_links(&text));
                        if let Some(c) = self.links {
                            c.put(&text, links.clone());
                        }
                        strings(&links)
                    }
                })
            }
            "old_links" => {
                let sent = a.links.as_ref().and_then(|l| l.old.as_ref());
                Some(match sent {
                    Some(l) => strings(l),
                    None => {
                        let text = self.text_of("old_wikitext");
                        match self.links.and_then(|c| c.get(&text)) {
                            Some(links) => strings(&links),
                            None => strings(&extract_links(&text)),
                        }
                    }
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
                let minus: HashSet<_> = minus.iter().map(Value::as_php_str).collect();
                let keep = from
                    .iter()
                    .filter(|v| !minus.contains(&v.as_php_str()))
                    .cloned()
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
                    let reg = u
                        .registration
                        .as_deref()
                        .and_then(parse_timestamp)
                        .unwrap_or(DEFAULT_REGISTRATION);
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
            "type" => str_value(user_type(u)),
            "unnamed_ip" => match user_type(u) {
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
fn user_type(u: &User) -> &str {
    if let Some(t) = &u.user_type {
        return t;
    }
    if !u.is_registered() {
        "ip"
    } else if u.temporary == Some(true) || (u.temporary.is_none() && u.name.starts_with('~')) {
        "temp"
    } else if u.name.contains('>') {
        "external"
    } else {
        "named"
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_706_745_599 + 3600; // 2024-02-01T00:59:59Z

    fn action(v: Json) -> Action {
        Action::from_json(&v).unwrap()
    }

    fn get(a: &Action, name: &str) -> Option<Value> {
        ActionVars::new(a, NOW).get(name)
    }

    fn s(v: &str) -> Option<Value> {
        Some(Value::from(v))
    }

    fn arr(items: &[&str]) -> Option<Value> {
        Some(strings(&items.iter().map(|s| s.to_string()).collect::<Vec<_>>()))
    }

    fn edit() -> Action {
        action(json!({
            "action": "edit",
            "wiki": {"name": "testwiki", "language": "en"},
            "user": {"name": "Alice", "id": 5, "editcount": 42, "groups": ["*", "user", "autoconfirmed"],
                     "rights": ["edit", "move"], "registration": "20240131235959", "emailconfirmed": true},
            "page": {"id": 10, "namespace": 1, "title": "Some_page", "created": "2024-01-31T23:59:59Z",
                     "last_edited": "20240201005959", "first_contributor": "Bob",
                     "recent_contributors": ["Bob", "Carol"], "restrictions": {"edit": ["autoconfirmed"]}},
            "summary": "tweak",
            "old_wikitext": "a\nb\nc [http://old.example x]",
            "new_wikitext": "a\nB\nc [http://old.example x]\nsee https://new.example/p.",
            "request": {"ip": "192.0.2.7"}
        }))
    }

    #[test]
    fn generic_and_user_variables() {
        let a = edit();
        assert_eq!(get(&a, "action"), s("edit"));
        assert_eq!(get(&a, "timestamp"), s(&NOW.to_string()));
        assert_eq!(get(&a, "wiki_name"), s("testwiki"));
        assert_eq!(get(&a, "wiki_language"), s("en"));
        assert_eq!(get(&a, "user_name"), s("Alice"));
        assert_eq!(get(&a, "user_editcount"), Some(Value::Int(42)));
        assert_eq!(get(&a, "user_groups"), arr(&["*", "user", "autoconfirmed"]));
        assert_eq!(get(&a, "user_rights"), arr(&["edit", "move"]));
        assert_eq!(get(&a, "user_age"), Some(Value::Int(3600)));
        assert_eq!(get(&a, "user_emailconfirm"), Some(Value::Bool(true)));
        assert_eq!(get(&a, "user_blocked"), Some(Value::Bool(false)));
        assert_eq!(get(&a, "user_type"), s("named"));
        assert_eq!(get(&a, "user_unnamed_ip"), Some(Value::Null));
        assert_eq!(get(&a, "no_such_variable"), None);
        assert_eq!(get(&a, "accountname"), None);
        assert_eq!(get(&a, "moved_to_title"), None);
        assert_eq!(get(&a, "file_sha1"), None);
    }

    #[test]
    fn anonymous_and_temporary_users() {
        let a = action(json!({"action": "edit", "page": {}, "new_wikitext": "",
                              "user": {"name": "192.0.2.7"}, "request": {"ip": "192.0.2.7"}}));
        assert_eq!(get(&a, "user_editcount"), Some(Value::Null));
        assert_eq!(get(&a, "user_age"), Some(Value::Int(0)));
        assert_eq!(get(&a, "user_groups"), arr(&["*"]));
        assert_eq!(get(&a, "user_rights"), arr(&[]));
        assert_eq!(get(&a, "user_emailconfirm"), Some(Value::Null));
        assert_eq!(get(&a, "user_type"), s("ip"));
        assert_eq!(get(&a, "user_unnamed_ip"), s("192.0.2.7"));
        let t = action(json!({"action": "edit", "page": {}, "new_wikitext": "",
                              "user": {"name": "~2024-1", "id": 9}, "request": {"ip": "2001:db8::1"}}));
        assert_eq!(get(&t, "user_type"), s("temp"));
        assert_eq!(get(&t, "user_unnamed_ip"), s("2001:db8::1"));
        assert_eq!(get(&t, "user_groups"), arr(&["*", "user"]));
        // Registered without a registration date: AbuseFilter's 2008-01-15 stand-in.
        assert_eq!(get(&t, "user_age"), Some(Value::Int(NOW - DEFAULT_REGISTRATION)));
        let e = action(json!({"action": "edit", "page": {}, "new_wikitext": "",
                              "user": {"name": "X", "emailconfirmed": "20240101000000", "blocked": true}}));
        assert_eq!(get(&e, "user_emailconfirm"), s("20240101000000"));
        assert_eq!(get(&e, "user_blocked"), Some(Value::Bool(true)));
    }

    #[test]
    fn page_variables() {
        let a = edit();
        assert_eq!(get(&a, "page_id"), Some(Value::Int(10)));
        assert_eq!(get(&a, "page_namespace"), Some(Value::Int(1)));
        assert_eq!(get(&a, "page_title"), s("Some page"));
        assert_eq!(get(&a, "page_prefixedtitle"), s("Talk:Some page"));
        assert_eq!(get(&a, "page_age"), Some(Value::Int(3600)));
        assert_eq!(get(&a, "page_last_edit_age"), Some(Value::Int(0)));
        assert_eq!(get(&a, "page_first_contributor"), s("Bob"));
        assert_eq!(get(&a, "page_recent_contributors"), arr(&["Bob", "Carol"]));
        assert_eq!(get(&a, "page_restrictions_edit"), arr(&["autoconfirmed"]));
        assert_eq!(get(&a, "page_restrictions_move"), arr(&[]));
        assert_eq!(get(&a, "page_restrictions_create"), arr(&[]));
        assert_eq!(get(&a, "page_restrictions_upload"), arr(&[]));
        // A new page: no first revision.
        let n = action(json!({"action": "edit", "page": {"title": "New"}, "new_wikitext": "x"}));
        assert_eq!(get(&n, "page_age"), Some(Value::Int(0)));
        assert_eq!(get(&n, "page_last_edit_age"), Some(Value::Null));
        assert_eq!(get(&n, "page_first_contributor"), s(""));
        assert_eq!(get(&n, "page_id"), Some(Value::Int(0)));
    }

    #[test]
    fn text_variables() {
        let a = edit();
        assert_eq!(get(&a, "summary"), s("tweak"));
        assert_eq!(get(&a, "old_wikitext"), s("a\nb\nc [http://old.example x]"));
        assert_eq!(get(&a, "old_size"), Some(Value::Int(28)));
        assert_eq!(get(&a, "new_size"), Some(Value::Int(55)));
        assert_eq!(get(&a, "edit_delta"), Some(Value::Int(27)));
        assert_eq!(
            get(&a, "edit_diff"),
            s("@@ -1,3 +1,4 @@\n a\n-b\n+B\n c [http://old.example x]\n+see https://new.example/p.\n")
        );
        assert_eq!(get(&a, "added_lines"), arr(&["B", "see https://new.example/p."]));
        assert_eq!(get(&a, "removed_lines"), arr(&["b"]));
        assert_eq!(get(&a, "old_content_model"), s("wikitext"));
        assert_eq!(get(&a, "new_content_model"), s("wikitext"));
        assert_eq!(
            get(&a, "all_links"),
            arr(&["http://old.example", "https://new.example/p"])
        );
        assert_eq!(get(&a, "old_links"), arr(&["http://old.example"]));
        assert_eq!(get(&a, "added_links"), arr(&["https://new.example/p"]));
        assert_eq!(get(&a, "removed_links"), arr(&[]));
        for v in client_side_variables() {
            assert_eq!(get(&a, v), None, "{v}");
        }
        // Byte lengths, not characters.
        let u = action(json!({"action": "edit", "page": {}, "new_wikitext": "é", "old_wikitext": ""}));
        assert_eq!(get(&u, "new_size"), Some(Value::Int(2)));
        assert_eq!(get(&u, "summary"), s(""));
    }

    #[test]
    fn new_page_and_trailing_newlines() {
        let a = action(json!({"action": "edit", "page": {}, "new_wikitext": "one\ntwo\n"}));
        assert_eq!(get(&a, "old_wikitext"), s(""));
        assert_eq!(get(&a, "edit_diff"), s("@@ -1,0 +1,3 @@\n+one\n+two\n+\n"));
        assert_eq!(get(&a, "added_lines"), arr(&["one", "two", ""]));
        assert_eq!(get(&a, "removed_lines"), arr(&[]));
        let b = action(json!({"action": "edit", "page": {}, "old_wikitext": "x", "new_wikitext": "x\n"}));
        assert_eq!(get(&b, "added_lines"), arr(&[""]));
        let c = action(json!({"action": "edit", "page": {}, "old_wikitext": "x", "new_wikitext": "x"}));
        assert_eq!(get(&c, "edit_diff"), s(""));
        assert_eq!(get(&c, "added_lines"), arr(&[]));
    }

    #[test]
    fn sent_client_side_values_and_links() {
        let a = action(
            json!({"action": "edit", "page": {}, "old_wikitext": "a", "new_wikitext": "a\n~~~~",
                              "new_pst": "a\n[[User:A|A]]", "new_html": "<p>a <b>A</b>\r\n</p>\n",
                              "links": {"all": ["http://x.example"], "old": ["http://y.example", "http://x.example"]}}),
        );
        assert_eq!(get(&a, "new_pst"), s("a\n[[User:A|A]]"));
        assert_eq!(get(&a, "edit_diff_pst"), s("@@ -1,1 +1,2 @@\n a\n+[[User:A|A]]\n"));
        assert_eq!(get(&a, "added_lines_pst"), arr(&["[[User:A|A]]"]));
        assert_eq!(get(&a, "new_html"), s("<p>a <b>A</b>\r\n</p>\n"));
        assert_eq!(get(&a, "new_text"), s("a A"));
        assert_eq!(get(&a, "all_links"), arr(&["http://x.example"]));
        assert_eq!(get(&a, "added_links"), arr(&[]));
        assert_eq!(get(&a, "removed_links"), arr(&["http://y.example"]));
        let t = action(json!({"action": "edit", "page": {}, "new_wikitext": "", "new_text": "plain"}));
        assert_eq!(get(&t, "new_text"), s("plain"));
    }

    #[test]
    fn moves() {
        let a = action(json!({"action": "move", "user": {"name": "Alice"}, "summary": "rename",
                              "page": {"id": 3, "namespace": 2, "title": "Alice/Draft"},
                              "target": {"namespace": 0, "title": "Final", "prefixedtitle": "Final"}}));
        assert_eq!(get(&a, "moved_from_id"), Some(Value::Int(3)));
        assert_eq!(get(&a, "moved_from_title"), s("Alice/Draft"));
        assert_eq!(get(&a, "moved_from_prefixedtitle"), s("User:Alice/Draft"));
        assert_eq!(get(&a, "moved_to_namespace"), Some(Value::Int(0)));
        assert_eq!(get(&a, "moved_to_title"), s("Final"));
        assert_eq!(get(&a, "moved_to_age"), Some(Value::Int(0)));
        assert_eq!(get(&a, "summary"), s("rename"));
        assert_eq!(get(&a, "page_title"), None);
        assert_eq!(get(&a, "new_wikitext"), None);
        assert_eq!(get(&a, "added_lines"), None);
        // The deprecated alias reads the same (the evaluator canonicalises names).
        let mut vars = ActionVars::new(&a, NOW);
        let dump = vars.dump(&["moved_from_text", "new_wikitext"]);
        assert_eq!(dump, json!({"moved_from_text": "Alice/Draft"}));
    }

    #[test]
    fn deletions_accounts_uploads() {
        let d = action(json!({"action": "delete", "page": {"title": "X"}, "summary": "spam"}));
        assert_eq!(get(&d, "page_title"), s("X"));
        assert_eq!(get(&d, "summary"), s("spam"));
        assert_eq!(get(&d, "new_wikitext"), None);
        let c = action(json!({"action": "createaccount", "accountname": "Newbie", "user": {"name": "192.0.2.1"}}));
        assert_eq!(get(&c, "accountname"), s("Newbie"));
        assert_eq!(get(&c, "action"), s("createaccount"));
        assert_eq!(
            get(&c, "user_name"),
            None,
            "a logged-out creator sets no user variables"
        );
        let c = action(json!({"action": "createaccount", "accountname": "Sock", "user": {"name": "Alice", "id": 3}}));
        assert_eq!(get(&c, "user_name"), s("Alice"));
        let auto = action(json!({"action": "autocreateaccount", "user": {"name": "Global"}}));
        assert_eq!(get(&auto, "accountname"), s("Global"));
        let u = action(json!({"action": "upload", "page": {"namespace": 6, "title": "X.png"},
                              "file": {"sha1": "ab", "size": 10, "mime": "image/png", "mediatype": "BITMAP",
                                       "width": 2, "height": 3, "bits_per_channel": 8}}));
        assert_eq!(get(&u, "page_prefixedtitle"), s("File:X.png"));
        assert_eq!(get(&u, "file_sha1"), s("ab"));
        assert_eq!(get(&u, "file_size"), Some(Value::Int(10)));
        assert_eq!(get(&u, "file_mime"), s("image/png"));
        assert_eq!(get(&u, "file_mediatype"), s("BITMAP"));
        assert_eq!(get(&u, "file_width"), Some(Value::Int(2)));
        assert_eq!(get(&u, "file_height"), Some(Value::Int(3)));
        assert_eq!(get(&u, "file_bits_per_channel"), Some(Value::Int(8)));
        assert_eq!(get(&u, "new_wikitext"), None, "no text sent: no text variables");
        assert_eq!(get(&u, "summary"), None);
        let ut = action(
            json!({"action": "upload", "page": {"namespace": 6, "title": "X.png"}, "file": {},
                               "summary": "s", "new_wikitext": "desc"}),
        );
        assert_eq!(get(&ut, "added_lines"), arr(&["desc"]));
        assert_eq!(get(&ut, "summary"), s("s"));
        assert_eq!(get(&ut, "file_width"), Some(Value::Null));
        assert_eq!(get(&ut, "new_content_model"), None);
    }

    #[test]
    fn lazy_and_cached() {
        let a = edit();
        let mut vars = ActionVars::new(&a, NOW);
        assert!(vars.cache.is_empty());
        vars.get("user_name");
        assert_eq!(vars.cache.len(), 1, "only what is read is computed");
        vars.get("added_lines");
        assert!(vars.cache.contains_key("edit_diff"));
        assert!(!vars.cache.contains_key("all_links"));
        let n = vars.cache.len();
        vars.get("added_lines");
        assert_eq!(vars.cache.len(), n);
    }

    #[test]
    fn values_as_json() {
        assert_eq!(value_to_json(&Value::Null), Json::Null);
        assert_eq!(value_to_json(&Value::Undefined), Json::Null);
        assert_eq!(value_to_json(&Value::Int(3)), json!(3));
        assert_eq!(value_to_json(&Value::Float(1.5)), json!(1.5));
        assert_eq!(value_to_json(&Value::Float(f64::NAN)), Json::Null);
        assert_eq!(
            value_to_json(&Value::from(vec![Value::from("a"), Value::Bool(true)])),
            json!(["a", true])
        );
        let a = edit();
        let mut vars = ActionVars::new(&a, NOW);
        let d = vars.dump(&["user_name", "added_lines", "ARTICLE_TEXT"]);
        assert_eq!(
            d,
            json!({"user_name": "Alice", "added_lines": ["B", "see https://new.example/p."], "ARTICLE_TEXT": "Some page"})
        );
    }

    #[test]
    fn strips_html() {
        assert_eq!(strip_html("<p>a<br/>b</p>"), "ab");
        assert_eq!(strip_html("a <b>c</b> <unclosed"), "a c <unclosed");
        assert_eq!(strip_html("x\r\ny\rz  \n"), "x\ny\nz");
        assert_eq!(strip_html("a > b"), "a > b");
    }

    #[test]
    fn old_links_come_from_the_previous_save_when_cached() {
        let cache = LinkCache::new(2);
        let first = Action::from_json(
            &json!({"action": "edit", "user": {"name": "A"}, "page": {"namespace": 0, "title": "P"},
            "old_wikitext": "", "new_wikitext": "see http://one.example/"}),
        )
        .unwrap();
        let mut v = ActionVars::with_link_cache(&first, 1, &cache);
        let _ = v.get("added_links");
        assert_eq!(cache.len(), 1, "the saved text's links are remembered");
        let second = Action::from_json(
            &json!({"action": "edit", "user": {"name": "B"}, "page": {"namespace": 0, "title": "P"},
            "old_wikitext": "see http://one.example/", "new_wikitext": "see http://two.example/"}),
        )
        .unwrap();
        let mut v = ActionVars::with_link_cache(&second, 2, &cache);
        assert_eq!(
            v.get("old_links"),
            Some(Value::from(vec![Value::from("http://one.example/")]))
        );
        assert_eq!(
            v.get("added_links"),
            Some(Value::from(vec![Value::from("http://two.example/")]))
        );
        assert_eq!(
            v.get("removed_links"),
            Some(Value::from(vec![Value::from("http://one.example/")]))
        );
        let mut plain = ActionVars::new(&second, 2);
        assert_eq!(
            plain.get("removed_links"),
            v.get("removed_links"),
            "the cache changes nothing but speed"
        );
        // Bounded: the oldest go first; remembering a text again keeps its place.
        for i in 0..5 {
            cache.put(&format!("text {i}"), Arc::new(vec![format!("link {i}")]));
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.get("text 2").is_none());
        assert_eq!(cache.get("text 4").unwrap()[0], "link 4");
        cache.put("text 3", Arc::new(vec!["again".into()]));
        cache.put("text 5", Arc::new(Vec::new()));
        assert!(cache.get("text 3").is_none(), "text 3 was the oldest");
        assert!(cache.get("text 4").is_some() && cache.get("text 5").is_some());
    }

    #[test]
    fn link_cache_keys_are_secret_per_process() {
        // Keys come from a hash under a random key: two caches disagree on the same text, so
        // nobody can compute a key (or a colliding text) from outside.
        let (a, b) = (LinkCache::new(4), LinkCache::new(4));
        assert_ne!(a.key("the same text"), b.key("the same text"));
        assert_eq!(a.key("the same text"), a.key("the same text"));
    }
}
