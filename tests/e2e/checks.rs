//! The check door through MediaWiki: edits, warnings, tags, blocks, throttles, account
//! creation, moves, uploads, and what happens when the service is away.

use serde_json::{json, Value};

use crate::common::Server;
use crate::harness::{Api, Wiki};
use crate::require_mediawiki;

fn wiki(name: &str, service: &Server, settings: &str) -> Wiki {
    Wiki::for_service(name, service, settings)
}

fn filter(s: &Server, description: &str, pattern: &str, actions: Value) -> i64 {
    s.create(&json!({"description": description, "pattern": pattern, "enabled": true, "actions": actions}))
}

fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

fn saved(v: &Value) -> bool {
    v["edit"]["result"] == "Success"
}

fn hits(s: &Server, filter: i64) -> Vec<Value> {
    let (status, v) = s.admin("GET", &format!("/v1/hits?filter={filter}"), None);
    assert_eq!(status, 200, "{v}");
    v["hits"].as_array().cloned().unwrap_or_default()
}

fn editor(w: &Wiki, name: &str) -> Api {
    w.create_user(name, "Editor-pass-12345", &[]);
    w.login(name, "Editor-pass-12345")
}

#[test]
fn edits_are_disallowed_warned_tagged_and_let_through() {
    require_mediawiki!();
    let s = Server::start("e2e-edits", &[]);
    let w = wiki("edits", &s, "");
    let pills = filter(
        &s,
        "Pill spam",
        r#"action == "edit" & added_lines irlike "cheap\s+pills""#,
        json!({"disallow": {"message": "abusefilter-disallowed"}}),
    );
    let shout = filter(
        &s,
        "Shouting",
        r#"action == "edit" & added_lines rlike "[A-Z]{12,}""#,
        json!({"warn": {"message": "abusefilter-warning"}}),
    );
    let links = filter(
        &s,
        "Adds a link to example.com",
        r#"action == "edit" & "example.com" in added_links"#,
        json!({"tag": {"tags": ["wikiguard-external-link"]}}),
    );
    let bold = filter(
        &s,
        "Bold forbidden word",
        r#"action == "edit" & new_html contains "<b>forbidden</b>""#,
        json!({"disallow": {"message": "abusefilter-disallowed"}}),
    );
    let anon = filter(
        &s,
        "Edits from one address",
        r#"action == "edit" & user_name == "192.0.2.55""#,
        json!({"disallow": {"message": "abusefilter-disallowed"}}),
    );
    let mut alice = editor(&w, "Alice");

    // A filter reading new_html: the wiki renders the text because the service asks for it.
    let v = alice.edit("Bold", "Say '''forbidden''' here.", "bold");
    assert_eq!(v["error"]["wikiguard"]["id"], bold, "{v}{}", w.logs());
    let v = alice.edit("Bold", "Say ''forbidden'' here.", "italic");
    assert!(saved(&v), "{v}");

    // A logged-out editor is named by the address MediaWiki resolved (X-Forwarded-For from a
    // trusted proxy here).
    let v = w.client_from("192.0.2.55").edit("Anon page", "hello", "");
    assert_eq!(v["error"]["wikiguard"]["id"], anon, "{v}{}", w.logs());
    assert!(saved(&w.client_from("192.0.2.56").edit("Anon page", "hello", "")));

    // Disallowed: the API names the filter; nothing is saved.
    let v = alice.edit("Sandbox", "Buy cheap  pills now", "spam");
    assert_eq!(error_code(&v), "wikiguard-disallowed", "{v}{}", w.logs());
    assert_eq!(v["error"]["wikiguard"]["id"], pills, "{v}");
    assert_eq!(v["error"]["wikiguard"]["description"], "Pill spam", "{v}");
    assert_eq!(v["error"]["wikiguard"]["actions"], json!(["disallow"]), "{v}");
    assert!(v["error"]["info"].as_str().unwrap().contains("Pill spam"), "{v}");
    let q = alice.get(&[("action", "query"), ("titles", "Sandbox")]);
    assert_eq!(q["query"]["pages"][0]["missing"], true, "nothing saved: {q}");

    // A harmless edit goes through.
    let v = alice.edit("Sandbox", "Hello, world.", "first");
    assert!(saved(&v), "{v}{}", w.logs());

    // Warned, then the same edit resubmitted goes through.
    let v = alice.edit("Sandbox", "Hello, world. STOPSHOUTINGNOW", "shout");
    assert_eq!(error_code(&v), "wikiguard-warning", "{v}");
    assert_eq!(v["error"]["wikiguard"]["id"], shout, "{v}");
    let v = alice.edit("Sandbox", "Hello, world. STOPSHOUTINGNOW", "shout");
    assert!(saved(&v), "resubmitted after the warning: {v}{}", w.logs());

    // Tagged: the tag is on the revision in recentchanges.
    let v = alice.edit("Sandbox", "See [http://example.com/x the site].", "link");
    assert!(saved(&v), "{v}");
    let rev = v["edit"]["newrevid"].as_i64().unwrap();
    let rc = alice.get(&[
        ("action", "query"),
        ("list", "recentchanges"),
        ("rcprop", "ids|tags|title"),
        ("rclimit", "10"),
    ]);
    let change = rc["query"]["recentchanges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["revid"] == rev)
        .cloned()
        .unwrap_or_else(|| panic!("revision {rev} in recentchanges: {rc}"));
    assert_eq!(change["tags"], json!(["wikiguard-external-link"]), "{change}");
    // MediaWiki lists the filter's tag as defined by an extension.
    let tags = alice.get(&[
        ("action", "query"),
        ("list", "tags"),
        ("tgprop", "defined|source|active"),
        ("tglimit", "max"),
    ]);
    let tag = tags["query"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "wikiguard-external-link")
        .cloned()
        .unwrap_or_else(|| panic!("tag listed: {tags}"));
    assert_eq!(tag["source"], json!(["extension"]), "{tag}");

    // The hit log holds each hit, with the variables the filter read.
    let h = hits(&s, pills);
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(h[0]["user_name"], "Alice");
    assert_eq!(h[0]["page"], "Sandbox");
    assert_eq!(h[0]["actions_taken"], json!(["disallow"]));
    assert_eq!(hits(&s, shout).len(), 2, "warned once, passed once");
    assert_eq!(hits(&s, links).len(), 1);
    assert!(!w.wikiguard_log().contains("127.0.0.1"), "no IP in the extension's log");
}

#[test]
fn block_throttle_and_account_creation() {
    require_mediawiki!();
    let s = Server::start("e2e-block", &[]);
    let w = wiki("block", &s, "");
    let throttled = filter(
        &s,
        "Fast page creation",
        r#"action == "edit" & page_id == 0 & summary == "burst""#,
        json!({"throttle": {"count": 2, "period": 300, "groups": ["user"]},
               "disallow": {"message": "abusefilter-disallowed"}}),
    );
    let vandal = filter(
        &s,
        "Page blanking with insults",
        r#"action == "edit" & new_size < 20 & old_size > 50 & summary contains "idiot""#,
        json!({"block": {"duration": "1 day", "anon_duration": "2 hours", "talk": false}}),
    );
    let names = filter(
        &s,
        "Spammer account names",
        r#"action == "createaccount" & accountname irlike "casino|viagra""#,
        json!({"disallow": {"message": "abusefilter-disallowed"}}),
    );
    // Bob and the visitors come from different addresses: Bob's block autoblocks his.
    w.create_user("Bob", "Editor-pass-12345", &[]);
    let mut bob = w.login_from("192.0.2.10", "Bob", "Editor-pass-12345");

    // Throttle: the first two creations pass, the third trips it.
    for i in 1..=2 {
        let v = bob.edit(&format!("Burst {i}"), "text", "burst");
        assert!(saved(&v), "creation {i} is under the throttle's count: {v}{}", w.logs());
    }
    let v = bob.edit("Burst 3", "text", "burst");
    assert_eq!(error_code(&v), "wikiguard-disallowed", "{v}");
    assert_eq!(v["error"]["wikiguard"]["id"], throttled);

    // Block: the user is blocked in MediaWiki by the WikiGuard system user.
    let long = "This article has a long enough text to be blanked by a vandal.";
    assert!(saved(&bob.edit("Target", long, "create")));
    let v = bob.edit("Target", "gone", "you idiot");
    assert_eq!(error_code(&v), "wikiguard-disallowed", "{v}");
    assert_eq!(v["error"]["wikiguard"]["id"], vandal);
    assert_eq!(v["error"]["wikiguard"]["actions"], json!(["block"]));
    let blocks = bob.get(&[
        ("action", "query"),
        ("list", "blocks"),
        ("bkusers", "Bob"),
        ("bkprop", "user|by|expiry|reason"),
    ]);
    let b = &blocks["query"]["blocks"][0];
    assert_eq!(b["user"], "Bob", "{blocks}{}", w.logs());
    assert_eq!(b["by"], "WikiGuard", "{b}");
    assert!(b["reason"].as_str().unwrap().contains("Page blanking"), "{b}");
    let v = bob.edit("Other", "any text", "x");
    assert_eq!(error_code(&v), "blocked", "a blocked user cannot edit: {v}");

    // Account creation: the name filter refuses; another name is fine.
    let mut visitor = w.client_from("198.51.100.20");
    let v = visitor.create_account("Best Casino Deals", "Visitor-pass-12345");
    assert_eq!(v["createaccount"]["status"], "FAIL", "{v}{}", w.logs());
    assert_eq!(v["createaccount"]["messagecode"], "wikiguard-disallowed", "{v}");
    let mut visitor = w.client_from("198.51.100.20");
    let v = visitor.create_account("Honest Newcomer", "Visitor-pass-12345");
    assert_eq!(v["createaccount"]["status"], "PASS", "{v}{}", w.logs());
    let h = hits(&s, names);
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(h[0]["action"], "createaccount");
}

#[test]
fn moves_and_uploads_are_checked() {
    require_mediawiki!();
    let s = Server::start("e2e-move", &[]);
    let w = wiki("move", &s, "");
    let moves = filter(
        &s,
        "Moves to attack titles",
        r#"action == "move" & moved_to_title contains "Stupid""#,
        json!({"disallow": {"message": "abusefilter-disallowed"}}),
    );
    let uploads = filter(
        &s,
        "Tiny uploads named Forbidden",
        r#"action == "upload" & file_size < 1000 & page_title contains "Forbidden""#,
        json!({"disallow": {"message": "abusefilter-disallowed"}}),
    );
    let mut admin = w.login(crate::harness::ADMIN_USER, crate::harness::ADMIN_PASS);
    assert!(saved(&admin.edit("Article", "Some text.", "create")));
    let v = admin.move_page("Article", "Stupid article", "rename");
    assert_eq!(error_code(&v), "wikiguard-disallowed", "{v}{}", w.logs());
    assert_eq!(v["error"]["wikiguard"]["id"], moves, "{v}");
    let v = admin.move_page("Article", "Better article", "rename");
    assert_eq!(v["move"]["to"], "Better article", "{v}{}", w.logs());

    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>"#;
    let v = admin.upload("Forbidden.svg", svg, "a square", "upload");
    assert_eq!(error_code(&v), "wikiguard-disallowed", "{v}{}", w.logs());
    let v = admin.upload("Allowed.svg", svg, "a square", "upload");
    assert_eq!(v["upload"]["result"], "Success", "{v}{}", w.logs());
    assert_eq!(hits(&s, moves).len(), 1);
    let h = hits(&s, uploads);
    assert_eq!(h.len(), 1);
    assert_eq!(h[0]["vars"]["file_size"], svg.len(), "{h:?}");
}

#[test]
fn service_down_fails_open_or_closed_as_configured() {
    require_mediawiki!();
    let s = Server::start("e2e-down", &[]);
    let w = wiki("down", &s, "");
    let mut carol = editor(&w, "Carol");
    assert!(saved(&carol.edit("Page", "one", "x")));
    drop(s);

    // Open (the default): the edit goes through, and the log says why.
    let v = carol.edit("Page", "two", "x");
    assert!(saved(&v), "fail-open lets the edit through: {v}{}", w.logs());
    assert!(w.wikiguard_log().contains("failing open"), "{}", w.logs());

    // Closed: refused with a clear message and its own API code; nothing saved.
    w.set_runtime("$wgWikiGuardFailMode = [ 'check' => 'closed', 'accounts' => 'open' ];");
    let v = carol.edit("Page", "three", "x");
    assert_eq!(error_code(&v), "wikiguard-unavailable", "{v}{}", w.logs());
    assert!(
        v["error"]["info"].as_str().unwrap().contains("cannot be checked"),
        "{v}"
    );
    let q = carol.get(&[
        ("action", "query"),
        ("titles", "Page"),
        ("prop", "revisions"),
        ("rvprop", "content"),
        ("rvslots", "main"),
    ]);
    assert_eq!(
        q["query"]["pages"][0]["revisions"][0]["slots"]["main"]["content"], "two",
        "{q}"
    );
}

#[test]
fn deletions_and_degroup() {
    require_mediawiki!();
    let s = Server::start("e2e-degroup", &[]);
    let w = wiki("degroup", &s, "");
    let deletes = filter(
        &s,
        "Deleting the main page",
        r#"action == "delete" & page_title == "Main Page""#,
        json!({"disallow": {"message": "abusefilter-disallowed"}}),
    );
    let compromised = filter(
        &s,
        "Sysop account blanking the main page",
        r#"action == "edit" & page_title == "Main Page" & new_size == 0 & "sysop" in user_groups"#,
        json!({"degroup": {}}),
    );
    w.create_user("Mallory", "Mallory-pass-12345", &["sysop"]);
    let mut mallory = w.login_from("192.0.2.30", "Mallory", "Mallory-pass-12345");
    assert!(saved(&mallory.edit("Scratch", "to be deleted", "x")));

    let v = mallory.delete("Main Page", "cleanup");
    assert_eq!(error_code(&v), "wikiguard-disallowed", "{v}{}", w.logs());
    assert_eq!(v["error"]["wikiguard"]["id"], deletes, "{v}");
    let v = mallory.delete("Scratch", "cleanup");
    assert_eq!(
        v["delete"]["title"],
        "Scratch",
        "another page can be deleted: {v}{}",
        w.logs()
    );

    // Degroup: the edit is refused and the account loses its groups, logged in the rights log.
    let v = mallory.edit("Main Page", "", "blank");
    assert_eq!(error_code(&v), "wikiguard-disallowed", "{v}{}", w.logs());
    assert_eq!(v["error"]["wikiguard"]["id"], compromised);
    assert_eq!(v["error"]["wikiguard"]["actions"], json!(["degroup"]));
    let u = mallory.get(&[
        ("action", "query"),
        ("list", "users"),
        ("ususers", "Mallory"),
        ("usprop", "groups"),
    ]);
    let groups = u["query"]["users"][0]["groups"].as_array().unwrap();
    assert!(!groups.iter().any(|g| g == "sysop"), "{u}");
    let log = mallory.get(&[
        ("action", "query"),
        ("list", "logevents"),
        ("letype", "rights"),
        ("leprop", "user|title|comment"),
    ]);
    let entry = &log["query"]["logevents"][0];
    assert_eq!(entry["title"], "User:Mallory", "{log}");
    assert_eq!(entry["user"], "WikiGuard", "{log}");
    assert!(
        entry["comment"].as_str().unwrap().contains("Sysop account blanking"),
        "{log}"
    );
}

/// Posts MediaWiki's edit form (index.php?action=submit) as a browser would.
fn form_edit(api: &mut Api, title: &str, text: &str, summary: &str) -> (u16, String) {
    let token = api.token("csrf");
    api.post_form(
        &format!("/index.php?title={}&action=submit", crate::harness::urlencode(title)),
        &[
            ("wpTextbox1", text),
            ("wpSummary", summary),
            ("wpEditToken", token.as_str()),
            ("wpUnicodeCheck", "ℳ𝒲♥𝓊𝓃𝒾𝒸ℴ𝒹ℯ"),
            ("wpStarttime", "20260101000000"),
            ("wpEdittime", ""),
            ("model", "wikitext"),
            ("format", "text/x-wiki"),
            ("wpSave", "Save page"),
            ("wpUltimateParam", "1"),
        ],
    )
}

#[test]
fn the_edit_form_shows_the_warning_then_saves_on_resubmit() {
    require_mediawiki!();
    let s = Server::start("e2e-form", &[]);
    let w = wiki("form", &s, "");
    filter(
        &s,
        "Unsourced claims about living people",
        r#"action == "edit" & added_lines contains "is a criminal""#,
        json!({"warn": {"message": "abusefilter-warning"}}),
    );
    let mut dana = editor(&w, "Dana");
    let (status, html) = form_edit(&mut dana, "Someone", "Someone is a criminal.", "claim");
    assert_eq!(status, 200, "the form comes back with the warning");
    assert!(
        html.contains("automatically identified as harmful"),
        "{html}{}",
        w.logs()
    );
    assert!(
        html.contains("Unsourced claims about living people"),
        "the filter's description is shown"
    );
    assert!(html.contains("id=\"wpTextbox1\""), "the edit form is shown again");
    // Saving again goes through: a redirect to the page.
    let (status, _) = form_edit(&mut dana, "Someone", "Someone is a criminal.", "claim");
    assert_eq!(status, 302, "{}", w.logs());
    let q = dana.get(&[("action", "query"), ("titles", "Someone")]);
    assert!(q["query"]["pages"][0]["missing"].is_null(), "saved: {q}");
}

#[test]
fn blockautopromote_holds_back_automatic_groups() {
    require_mediawiki!();
    let s = Server::start("e2e-autopromote", &[]);
    // Every account is autoconfirmed at once, so holding the promotion back is visible.
    let w = wiki("autopromote", &s, "$wgAutoConfirmAge = 0; $wgAutoConfirmCount = 0;");
    let hold = filter(
        &s,
        "Suspicious new account",
        r#"action == "edit" & summary == "sneaky""#,
        json!({"blockautopromote": {"duration": 86400}}),
    );
    let mut erin = editor(&w, "Erin");
    let groups = |api: &mut Api| -> Vec<Value> {
        let v = api.get(&[("action", "query"), ("meta", "userinfo"), ("uiprop", "groups")]);
        v["query"]["userinfo"]["groups"].as_array().cloned().unwrap_or_default()
    };
    assert!(
        groups(&mut erin).contains(&json!("autoconfirmed")),
        "autopromoted before"
    );

    let v = erin.edit("Page", "text", "sneaky");
    assert_eq!(error_code(&v), "wikiguard-disallowed", "{v}{}", w.logs());
    assert_eq!(v["error"]["wikiguard"]["id"], hold);
    assert_eq!(v["error"]["wikiguard"]["actions"], json!(["blockautopromote"]));
    assert!(
        !groups(&mut erin).contains(&json!("autoconfirmed")),
        "no automatic promotion while the hold lasts: {:?}{}",
        groups(&mut erin),
        w.logs()
    );
    // Explicit groups are untouched, and others are still promoted.
    let mut frank = editor(&w, "Frank");
    assert!(groups(&mut frank).contains(&json!("autoconfirmed")));
}
