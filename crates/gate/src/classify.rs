//! MediaWiki-aware request classification: from a method and URL to a [`Class`] and the
//! facts that price it (special page name, api.php module, `limit`).
//!
//! URL forms understood (the defaults of a MediaWiki install, `$wgScriptPath = "/w"`,
//! `$wgArticlePath = "/wiki/$1"`, but any prefix before `index.php`/`api.php` works):
//! `/wiki/Title`, `/w/index.php?title=…&action=…&oldid=…&diff=…`, `/index.php/Title`,
//! `/w/api.php?action=query&list=…&rclimit=…`, `/w/rest.php/…`, `/w/load.php`,
//! `/w/images/…`, `/w/thumb.php`, `/static/…`, skins/resources/extensions assets.
//! Special page names are resolved case-insensitively (as MediaWiki's alias lookup does) to
//! their canonical English names.

use std::borrow::Cow;

use http::{Method, Uri};
use serde::{Deserialize, Serialize};

/// What a request makes the wiki do, coarsely: the unit costs and rules are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// A current page (usually served from the parser or edge cache).
    PageView,
    /// `oldid=` without `diff=`: an old revision, never cached.
    OldRevision,
    /// `diff=`: a comparison of revisions, expensive and never cached.
    Diff,
    /// `action=history`.
    History,
    /// `action=edit` / `action=submit`.
    EditForm,
    /// `action=raw`: wikitext for scripts.
    Raw,
    /// Special:Search or a `search=` parameter.
    Search,
    /// Any other special page (name in [`Classified::special`]).
    Special,
    /// `api.php` (the Action API).
    Api,
    /// `rest.php` (the REST API).
    Rest,
    /// `load.php` (ResourceLoader).
    Load,
    /// Static assets: skins, resources, extensions' files, favicon, robots.txt.
    Static,
    /// Uploaded files and thumbnails.
    Media,
    /// RSS/Atom feeds (`feed=`).
    Feed,
    /// Special:Export.
    Export,
    /// Anything else.
    Other,
}

impl Class {
    /// Every class, in declaration order.
    pub const ALL: [Class; 16] = [
        Class::PageView,
        Class::OldRevision,
        Class::Diff,
        Class::History,
        Class::EditForm,
        Class::Raw,
        Class::Search,
        Class::Special,
        Class::Api,
        Class::Rest,
        Class::Load,
        Class::Static,
        Class::Media,
        Class::Feed,
        Class::Export,
        Class::Other,
    ];

    /// The snake_case name used in policies, metrics and logs (`"page_view"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Class::PageView => "page_view",
            Class::OldRevision => "old_revision",
            Class::Diff => "diff",
            Class::History => "history",
            Class::EditForm => "edit_form",
            Class::Raw => "raw",
            Class::Search => "search",
            Class::Special => "special",
            Class::Api => "api",
            Class::Rest => "rest",
            Class::Load => "load",
            Class::Static => "static",
            Class::Media => "media",
            Class::Feed => "feed",
            Class::Export => "export",
            Class::Other => "other",
        }
    }

    /// Parses [`Class::as_str`] back.
    pub fn from_name(name: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Requests made by programs rather than browsers (api.php, rest.php, feeds,
    /// `action=raw`, Special:Export): they are never served an HTML challenge they could not
    /// solve; they get 429 with an etiquette message instead.
    pub fn is_machine(self) -> bool {
        matches!(
            self,
            Class::Api | Class::Rest | Class::Feed | Class::Raw | Class::Export
        )
    }
}

impl std::fmt::Display for Class {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A classified request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Classified {
    /// The class.
    pub class: Class,
    /// Canonical special page name (`"RecentChanges"`) when the title is a special page.
    pub special: Option<String>,
    /// api.php `action` (`"query"`), when an Action API request.
    pub api_module: Option<String>,
    /// api.php query submodules named by `list`, `prop`, `generator` and `meta`.
    pub api_submodules: Vec<String>,
    /// The largest `limit`-like parameter (`limit`, `rclimit`, …; `max` counts as 5000).
    pub limit: Option<u64>,
    /// The page title as requested (underscores for spaces), when there is one.
    pub title: Option<String>,
}

impl Classified {
    fn new(class: Class) -> Self {
        Classified {
            class,
            special: None,
            api_module: None,
            api_submodules: Vec::new(),
            limit: None,
            title: None,
        }
    }
}

/// Value of `limit=max` (what MediaWiki grants bots; the highest a client can ask for).
pub const LIMIT_MAX: u64 = 5000;

/// Longest title, special page or parameter value kept (longer ones are cut; a title is at
/// most 255 bytes in MediaWiki).
const MAX_KEEP: usize = 512;

/// Classifies a request. Never fails: what is not understood is [`Class::Other`].
pub fn classify(method: &Method, uri: &Uri) -> Classified {
    classify_decoded(method, &decode(uri.path(), false), uri.query().unwrap_or(""))
}

/// [`classify`] of an already percent-decoded path (`decode(uri.path(), false)`) and the raw
/// query, for callers that need the decoded path themselves.
pub(crate) fn classify_decoded(method: &Method, path: &str, query: &str) -> Classified {
    let params = parse_query(query);
    let get = |name: &str| params.iter().rev().find(|(k, _)| k == name).map(|(_, v)| &**v);
    let limit = params
        .iter()
        .filter(|(k, _)| k.ends_with("limit"))
        .filter_map(|(_, v)| {
            if v == "max" {
                Some(LIMIT_MAX)
            } else {
                v.trim().parse::<u64>().ok()
            }
        })
        .max();

    let file = path.rsplit('/').next().unwrap_or("");
    let script_dir = script_in(path);

    if let Some(script) = script_dir {
        match script {
            "api.php" => {
                let mut c = Classified::new(Class::Api);
                c.api_module = get("action")
                    .map(|a| cut(a.to_ascii_lowercase()))
                    .or(Some("help".into()));
                for key in ["list", "prop", "generator", "meta"] {
                    if let Some(v) = get(key) {
                        c.api_submodules
                            .extend(v.split('|').filter(|s| !s.is_empty()).take(50).map(|s| cut(s.into())));
                    }
                }
                c.limit = limit;
                return c;
            }
            "rest.php" => {
                return Classified {
                    limit,
                    ..Classified::new(Class::Rest)
                }
            }
            "load.php" => return Classified::new(Class::Load),
            "thumb.php" | "img_auth.php" | "thumb_handler.php" => return Classified::new(Class::Media),
            "index.php" => {
                // /w/index.php/Title (path info) or ?title=
                let info = path_info(path, "index.php");
                let title = get("title").or(info);
                return classify_title(method, title, &params, limit);
            }
            _ => {}
        }
    }
    if let Some(rest) = path.strip_prefix("/wiki/") {
        return classify_title(method, Some(rest), &params, limit);
    }
    if path == "/wiki" || path == "/" {
        if params.is_empty() {
            return Classified::new(Class::PageView);
        }
        return classify_title(method, get("title"), &params, limit);
    }
    if starts_with_any(path, &["/w/images/", "/images/", "/upload/"]) {
        return Classified::new(Class::Media);
    }
    if starts_with_any(
        path,
        &[
            "/static/",
            "/w/skins/",
            "/skins/",
            "/w/resources/",
            "/resources/",
            "/w/extensions/",
            "/extensions/",
        ],
    ) || matches!(
        file,
        "favicon.ico" | "robots.txt" | "apple-touch-icon.png" | "opensearch_desc.php"
    ) || has_static_extension(file)
    {
        return Classified::new(Class::Static);
    }
    Classified::new(Class::Other)
}

/// If the path names one of MediaWiki's entry points (`…/index.php`, `…/api.php/…`), which.
fn script_in(path: &str) -> Option<&'static str> {
    const SCRIPTS: [&str; 6] = [
        "index.php",
        "api.php",
        "rest.php",
        "load.php",
        "thumb.php",
        "img_auth.php",
    ];
    for segment in path.split('/') {
        if let Some(s) = SCRIPTS.iter().find(|s| segment.eq_ignore_ascii_case(s)) {
            return Some(s);
        }
    }
    None
}

fn path_info<'a>(path: &'a str, script: &str) -> Option<&'a str> {
    let at = path.find(script)?;
    let rest = path.get(at + script.len()..)?.strip_prefix('/')?;
    (!rest.is_empty()).then_some(rest)
}

fn starts_with_any(path: &str, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|p| path.starts_with(p))
}

fn has_static_extension(file: &str) -> bool {
    let Some((_, ext)) = file.rsplit_once('.') else {
        return false;
    };
    const EXT: [&str; 12] = [
        "css", "js", "png", "svg", "ico", "gif", "jpg", "jpeg", "woff", "woff2", "ttf", "webp",
    ];
    EXT.iter().any(|e| ext.eq_ignore_ascii_case(e))
}

fn classify_title(
    _method: &Method,
    title: Option<&str>,
    params: &[(Cow<'_, str>, Cow<'_, str>)],
    limit: Option<u64>,
) -> Classified {
    let get = |name: &str| params.iter().rev().find(|(k, _)| k == name).map(|(_, v)| &**v);
    // One copy of the title, with underscores for spaces.
    let title = title
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| cut(t.replace(' ', "_")));
    let action = get("action").map(|a| a.to_ascii_lowercase());
    let mut c = Classified::new(Class::PageView);
    c.limit = limit;
    let special = title.as_deref().and_then(special_name);
    c.title = title;

    let feed = get("feed").is_some_and(|f| !f.is_empty());
    c.class = match action.as_deref() {
        Some("raw") => Class::Raw,
        Some("edit") | Some("submit") => Class::EditForm,
        Some("history") if feed => Class::Feed,
        Some("history") => Class::History,
        Some("view") | Some("render") | Some("") | None => {
            if let Some(name) = &special {
                match name.as_str() {
                    _ if feed => Class::Feed,
                    "Search" => Class::Search,
                    "Export" => Class::Export,
                    _ => Class::Special,
                }
            } else if get("search").is_some() {
                Class::Search
            } else if get("diff").is_some() {
                Class::Diff
            } else if get("oldid").is_some_and(|o| !o.is_empty()) {
                Class::OldRevision
            } else if feed {
                Class::Feed
            } else {
                Class::PageView
            }
        }
        Some(_) => Class::Other,
    };
    c.special = special;
    c
}

/// Canonical special page names, looked up by their lowercased names and aliases.
const SPECIAL_PAGES: &[(&str, &str)] = &[
    ("recentchanges", "RecentChanges"),
    ("recentchangeslinked", "RecentChangesLinked"),
    ("relatedchanges", "RecentChangesLinked"),
    ("search", "Search"),
    ("export", "Export"),
    ("allpages", "AllPages"),
    ("prefixindex", "PrefixIndex"),
    ("contributions", "Contributions"),
    ("contribs", "Contributions"),
    ("whatlinkshere", "WhatLinksHere"),
    ("log", "Log"),
    ("logs", "Log"),
    ("newpages", "NewPages"),
    ("newfiles", "NewFiles"),
    ("random", "Random"),
    ("randompage", "Random"),
    ("userlogin", "UserLogin"),
    ("login", "UserLogin"),
    ("userlogout", "UserLogout"),
    ("logout", "UserLogout"),
    ("createaccount", "CreateAccount"),
    ("watchlist", "Watchlist"),
    ("listusers", "ListUsers"),
    ("listfiles", "ListFiles"),
    ("allmessages", "AllMessages"),
    ("comparepages", "ComparePages"),
    ("preferences", "Preferences"),
    ("upload", "Upload"),
    ("movepage", "MovePage"),
    ("block", "Block"),
    ("version", "Version"),
    ("statistics", "Statistics"),
    ("specialpages", "SpecialPages"),
    ("categories", "Categories"),
    ("wantedpages", "WantedPages"),
    ("longpages", "LongPages"),
    ("shortpages", "ShortPages"),
    ("ancientpages", "AncientPages"),
    ("uncategorizedpages", "UncategorizedPages"),
    ("lonelypages", "LonelyPages"),
    ("deadendpages", "DeadendPages"),
    ("booksources", "BookSources"),
    ("linksearch", "LinkSearch"),
    ("mostlinked", "MostLinkedPages"),
    ("mostlinkedpages", "MostLinkedPages"),
    ("import", "Import"),
    ("filepath", "FilePath"),
    ("redirect", "Redirect"),
];

/// `Special:Foo/bar` → `Foo` canonicalised; `None` for titles outside the Special namespace.
fn special_name(title: &str) -> Option<String> {
    let (ns, rest) = title.split_once(':')?;
    if !ns.eq_ignore_ascii_case("special") {
        return None;
    }
    let name = rest.split('/').next().unwrap_or("").trim_matches('_');
    if name.is_empty() {
        return None;
    }
    let folded = name.replace('_', "").to_lowercase();
    if let Some((_, canonical)) = SPECIAL_PAGES.iter().find(|(alias, _)| *alias == folded) {
        return Some((*canonical).to_string());
    }
    // Unknown page: MediaWiki's first letter is case-insensitive; keep the rest as given.
    let mut chars = name.chars();
    let first = chars.next()?;
    Some(cut(first.to_uppercase().chain(chars).collect()))
}

fn cut(mut s: String) -> String {
    if s.len() > MAX_KEEP {
        let mut at = MAX_KEEP;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
    }
    s
}

/// Percent-decodes (lossily: invalid UTF-8 becomes U+FFFD); `plus` turns `+` into a space.
/// Borrows `text` when there is nothing to decode.
pub(crate) fn decode(text: &str, plus: bool) -> Cow<'_, str> {
    if plus && text.contains('+') {
        let spaced = text.replace('+', " ");
        return Cow::Owned(
            percent_encoding::percent_decode_str(&spaced)
                .decode_utf8_lossy()
                .into_owned(),
        );
    }
    percent_encoding::percent_decode_str(text).decode_utf8_lossy()
}

/// At most this many query parameters are looked at (a URL with more is still classified).
const MAX_PARAMS: usize = 200;

/// `a=1&b=2` → `[("a","1"),("b","2")]`, names and values decoded.
pub(crate) fn parse_query(query: &str) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .take(MAX_PARAMS)
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k, true), decode(v, true)),
            None => (decode(pair, true), Cow::Borrowed("")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(url: &str) -> Classified {
        classify(&Method::GET, &url.parse().unwrap())
    }

    #[test]
    fn special_names_fold() {
        assert_eq!(
            c("/wiki/special:recentchanges").special.as_deref(),
            Some("RecentChanges")
        );
        assert_eq!(
            c("/wiki/Special:Recent_Changes").special.as_deref(),
            Some("RecentChanges")
        );
        assert_eq!(c("/wiki/Special:myThing/x").special.as_deref(), Some("MyThing"));
        assert_eq!(c("/wiki/Special:").class, Class::PageView);
    }
}
