//! Drives a real `wikiguard serve` over HTTP on loopback: filters, checks, warnings,
//! throttles, the hit log, history, import, test-against-recent, access and bad input.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;
use common::{bin, temp_dir, Server, ADMIN, CHECK};

fn edit(user: &str, title: &str, old: &str, new: &str) -> Value {
    json!({
        "action": "edit",
        "user": {"name": user, "id": 42, "editcount": 3, "groups": ["*", "user"], "rights": ["edit"],
                 "registration": "20240101000000", "emailconfirmed": false, "temporary": false},
        "page": {"id": 7, "namespace": 0, "title": title},
        "old_wikitext": old,
        "new_wikitext": new,
        "summary": "test edit",
        "minor": false,
        "request": {"ip": "127.0.0.1", "user_agent": "integration-test"}
    })
}

fn spam_filter() -> Value {
    json!({
        "description": "Pill spam",
        "pattern": "action == 'edit' & user_editcount < 10 & added_lines irlike 'cheap\\s+pills'",
        "enabled": true,
        "actions": {"disallow": {"message": "abusefilter-disallowed"}, "tag": {"tags": ["spam"]}}
    })
}

#[test]
fn filters_check_and_the_hit_log() {
    let s = Server::start("hitlog", &[]);
    let id = s.create(&spam_filter());
    let (status, f) = s.admin("GET", &format!("/v1/filters/{id}"), None);
    assert_eq!(status, 200);
    assert_eq!(f["description"], "Pill spam");
    assert_eq!(f["version"], 1);

    let miss = s.check(&edit("Alice", "Cats", "Cats purr.", "Cats purr.\nThey sleep a lot."));
    assert_eq!(miss["verdict"], "allow", "{miss}");
    assert_eq!(miss["matches"], json!([]));

    let hit = s.check(&edit(
        "Vandal",
        "Cats",
        "Cats purr.",
        "Cats purr.\nBuy CHEAP   pills here",
    ));
    assert_eq!(hit["verdict"], "disallow", "{hit}");
    assert_eq!(hit["matches"], json!([id]));
    assert_eq!(hit["tags"], json!(["spam"]));
    assert_eq!(hit["messages"][0]["key"], "abusefilter-disallowed");
    assert_eq!(hit["messages"][0]["filter"], id);

    let _ = s.check(&edit("Vandal2", "Dogs", "", "cheap pills"));
    let (status, hits) = s.admin("GET", &format!("/v1/hits?filter={id}"), None);
    assert_eq!(status, 200, "{hits}");
    let hits = hits["hits"].as_array().unwrap().clone();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0]["user_name"], "Vandal2", "newest first");
    assert_eq!(hits[1]["user_name"], "Vandal");
    assert_eq!(hits[1]["filter_version"], 1);
    assert_eq!(
        hits[1]["vars"]["user_editcount"], 3,
        "the hit keeps the variables the filter read"
    );
    assert!(hits[1]["vars"]["added_lines"].to_string().contains("CHEAP"));
    let (_, by_user) = s.admin("GET", "/v1/hits?user=Vandal", None);
    assert_eq!(by_user["hits"].as_array().unwrap().len(), 1);
    let (_, by_page) = s.admin("GET", "/v1/hits?page=Dogs", None);
    assert_eq!(by_page["hits"].as_array().unwrap().len(), 1);
    let (_, f) = s.admin("GET", &format!("/v1/filters/{id}"), None);
    assert_eq!(f["hits"], 2);

    // Privacy: the raw IP never reaches the log or the hit log.
    assert!(!s.log().contains("127.0.0.1\""), "an IP in the log: {}", s.log());
    assert!(!serde_json::to_string(&hits).unwrap().contains("integration-test"));

    let (_, metrics) = s.call("GET", "/metrics", None, None);
    let metrics = metrics.as_str().unwrap().to_string();
    assert!(
        metrics.contains("wikiguard_checks_total{action=\"edit\",verdict=\"disallow\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains(&format!("wikiguard_filter_hits_total{{filter=\"{id}\"}} 2")));
    assert!(metrics.contains("wikiguard_http_request_duration_seconds_bucket{route=\"/v1/check\""));
    assert!(
        metrics.contains("wikiguard_recent_actions_dropped_total 0"),
        "the recent-actions log kept up: {metrics}"
    );
    assert_eq!(s.call("GET", "/healthz", None, None).0, 200);
    assert_eq!(s.call("GET", "/readyz", None, None).0, 200);
}

#[test]
fn warn_then_resubmit_passes_and_throttle_acts_past_its_count() {
    let s = Server::start("warn", &[]);
    let warn = s.create(&json!({
        "description": "Blanking",
        "pattern": "new_size < 5 & old_size > 20",
        "actions": {"warn": {"message": "abusefilter-warning-blanking"}, "disallow": {"message": "abusefilter-disallowed"}}
    }));
    let blank = edit("Bob", "Birds", "Birds fly south in the winter.", "");
    let first = s.check(&blank);
    assert_eq!(first["verdict"], "warn", "{first}");
    assert_eq!(first["messages"][0]["key"], "abusefilter-warning-blanking");
    let second = s.check(&blank);
    assert_eq!(
        second["verdict"], "disallow",
        "after the warning, the filter's other actions apply: {second}"
    );
    assert_eq!(second["matches"], json!([warn]));

    let throttled = s.create(&json!({
        "description": "Link flood",
        "pattern": "added_links rlike 'example\\.biz'",
        "actions": {"throttle": {"count": 2, "period": 3600, "groups": ["user"]}, "disallow": {"message": "abusefilter-disallowed"}}
    }));
    let spam = |n: u32| edit("Spammer", &format!("Page {n}"), "", "see http://example.biz/x");
    assert_eq!(s.check(&spam(1))["verdict"], "allow");
    assert_eq!(s.check(&spam(2))["verdict"], "allow");
    let third = s.check(&spam(3));
    assert_eq!(third["verdict"], "disallow", "{third}");
    assert_eq!(third["matches"], json!([throttled]));
    // Another user has a budget of their own.
    assert_eq!(
        s.check(&edit("Other", "Page", "", "http://example.biz/"))["verdict"],
        "allow"
    );
}

#[test]
fn history_update_delete_and_variables() {
    let s = Server::start("history", &[]);
    let id = s.create(&spam_filter());
    let (status, v) = s.admin(
        "PUT",
        &format!("/v1/filters/{id}"),
        Some(&json!({"pattern": "new_html contains 'pills'"})),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["version"], 2);
    assert_eq!(v["description"], "Pill spam", "fields left out keep their values");
    let (_, vars) = s.call("GET", "/v1/check/variables?action=edit", Some(CHECK), None);
    assert_eq!(vars["variables"], json!(["new_html"]), "{vars}");
    let (status, v) = s.admin(
        "PUT",
        &format!("/v1/filters/{id}"),
        Some(&json!({"pattern": "new_html contains ("})),
    );
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["code"], "syntax_error");
    assert_eq!(v["error"]["line"], 1);
    assert!(v["error"]["column"].as_u64().unwrap() > 1);
    let (status, _) = s.admin("DELETE", &format!("/v1/filters/{id}"), None);
    assert_eq!(status, 200);
    let (_, h) = s.admin("GET", &format!("/v1/filters/{id}/history"), None);
    let versions = h["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 3, "{h}");
    assert_eq!(versions[0]["change"], "create");
    assert_eq!(versions[1]["change"], "update");
    assert_eq!(versions[1]["changed"], json!(["pattern"]));
    assert!(versions[1]["pattern_diff"]
        .as_str()
        .unwrap()
        .contains("+new_html contains 'pills'"));
    assert_eq!(versions[2]["change"], "delete");
    assert_eq!(versions[2]["deleted"], true);
    let (_, list) = s.admin("GET", "/v1/filters", None);
    assert_eq!(list["filters"], json!([]), "deleted filters are hidden");
    let (_, list) = s.admin("GET", "/v1/filters?deleted=1", None);
    assert_eq!(list["filters"].as_array().unwrap().len(), 1);
    let (_, vars) = s.call("GET", "/v1/check/variables?action=edit", Some(CHECK), None);
    assert_eq!(vars["variables"], json!([]), "a deleted filter needs nothing rendered");
    assert_eq!(s.admin("GET", "/v1/filters/999/history", None).0, 404);
}

/// The `user_name` of each object in a JSON list of hits or matches, in order.
fn user_names(list: &Value) -> Vec<&str> {
    let rows = list.as_array().map(Vec::as_slice).unwrap_or_default();
    rows.iter().map(|r| r["user_name"].as_str().unwrap_or("?")).collect()
}

/// A long action is evaluated on the blocking pool, a short one on the thread that received it
/// (see `INLINE_CHECK_BYTES`): both answer and log alike.
#[test]
fn long_and_short_actions_are_checked_alike() {
    let s = Server::start("long", &[]);
    let id = s.create(&spam_filter());
    let old = "Cats purr. ".repeat(20_000);
    for (user, new) in [
        ("Short", "Buy cheap pills".to_string()),
        ("Long", format!("{old}\nBuy cheap pills")),
    ] {
        let body = edit(user, "Cats", &old, &new);
        let v = s.check(&body);
        assert_eq!(v["verdict"], "disallow", "{user}: {v}");
        assert_eq!(v["matches"], json!([id]), "{user}");
        assert_eq!(v["hits"].as_array().map(Vec::len), Some(1), "{user}: {v}");
    }
    assert!(edit("Long", "Cats", &old, "").to_string().len() > 128 << 10);
    let (_, hits) = s.admin("GET", &format!("/v1/hits?filter={id}"), None);
    assert_eq!(user_names(&hits["hits"]), ["Long", "Short"]);
}

#[test]
fn test_against_recent_actions() {
    let s = Server::start("recent", &[]);
    for (u, text) in [
        ("A", "hello world"),
        ("B", "buy cheap pills"),
        ("C", "more cheap pills"),
    ] {
        s.check(&edit(u, "Sandbox", "", text));
    }
    // The log is written just after each answer: give the last write a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    let v = loop {
        let (status, v) = s.admin(
            "POST",
            "/v1/filters/test",
            Some(&json!({"pattern": "added_lines contains 'pills'"})),
        );
        assert_eq!(status, 200, "{v}");
        if v["tested"] == 3 || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(v["tested"], 3, "{v}");
    assert_eq!(user_names(&v["matches"]), ["C", "B"]);
    let (status, v) = s.admin(
        "POST",
        "/v1/filters/test",
        Some(&json!({"pattern": "added_lines contains"})),
    );
    assert_eq!(status, 400, "{v}");
    let (_, hits) = s.admin("GET", "/v1/hits", None);
    assert_eq!(hits["hits"], json!([]), "testing a draft writes no hits");
}

#[test]
fn access_is_refused_without_the_right_token() {
    let s = Server::start("auth", &[]);
    let body = edit("A", "B", "", "x").to_string();
    let (status, v) = s.call("POST", "/v1/check", None, Some(body.clone()));
    assert_eq!(status, 401);
    assert_eq!(v["error"]["code"], "unauthorized");
    assert_eq!(
        s.call("POST", "/v1/check", Some("wrong-token-wrong-token"), Some(body.clone()))
            .0,
        401
    );
    assert_eq!(s.call("POST", "/v1/check", Some(ADMIN), Some(body)).0, 401);
    assert_eq!(
        s.call("GET", "/v1/filters", Some(CHECK), None).0,
        401,
        "the check token is not an admin token"
    );
    assert_eq!(s.call("GET", "/v1/filters", None, None).0, 401);
    assert_eq!(s.call("GET", "/v1/hits", None, None).0, 401);
    drop(s);

    let open = Server::start("noadmin", &[("WIKIGUARD_ADMIN_TOKEN", "")]);
    let (status, v) = open.call("GET", "/v1/filters", Some(ADMIN), None);
    assert_eq!(status, 401, "no admin token configured: refused, never open");
    assert_eq!(v["error"]["code"], "admin_disabled");
    let (status, _) = open.call("POST", "/v1/filters", Some(""), Some(spam_filter().to_string()));
    assert_eq!(status, 401);
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let s = Server::start("bad", &[("WIKIGUARD_MAX_BODY_BYTES", "4096")]);
    let post = |path: &str, token: &str, body: &str| s.call("POST", path, Some(token), Some(body.to_string()));

    let (status, v) = post("/v1/check", CHECK, "{\"action\": ");
    assert_eq!(status, 400);
    assert_eq!(v["error"]["code"], "malformed_json");
    assert!(v["error"]["line"].is_number());

    let (status, v) = post("/v1/check", CHECK, &json!({"action": "teleport"}).to_string());
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["field"], "action");

    let mut missing = edit("A", "B", "", "x");
    missing.as_object_mut().unwrap().remove("new_wikitext");
    let (status, v) = post("/v1/check", CHECK, &missing.to_string());
    assert_eq!(status, 400, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("new_wikitext"), "{v}");

    let mut wrong_type = edit("A", "B", "", "x");
    wrong_type["user"]["editcount"] = json!("many");
    let (status, v) = post("/v1/check", CHECK, &wrong_type.to_string());
    assert_eq!(status, 400, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("editcount"), "{v}");

    let huge = edit("A", "B", "", &"x".repeat(10_000)).to_string();
    let (status, v) = post("/v1/check", CHECK, &huge);
    assert_eq!(status, 413, "{v}");
    assert_eq!(v["error"]["code"], "body_too_large");

    let bad_rule = json!({"description": "Broken", "pattern": "user_editcount <"});
    let (status, v) = post("/v1/filters", ADMIN, &bad_rule.to_string());
    assert_eq!(status, 400);
    assert_eq!(v["error"]["code"], "syntax_error");
    assert_eq!(v["error"]["field"], "pattern");
    let bad_actions = json!({"description": "x", "pattern": "1 == 1", "actions": {"explode": {}}});
    let (status, v) = post("/v1/filters", ADMIN, &bad_actions.to_string());
    assert_eq!(status, 400, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("explode"));
    let unknown = json!({"description": "x", "pattern": "1 == 1", "enabeld": true});
    let (status, v) = post("/v1/filters", ADMIN, &unknown.to_string());
    assert_eq!(status, 400);
    assert_eq!(v["error"]["field"], "enabeld");
    let (status, _) = s.admin("GET", "/v1/filters/abc", None);
    assert_eq!(status, 400);
    let (status, _) = s.admin("GET", "/v1/hits?filter=abc", None);
    assert_eq!(status, 400);
    let (status, v) = s.admin("GET", "/v1/filters/12345", None);
    assert_eq!(status, 404);
    assert_eq!(v["error"]["code"], "not_found");

    let (_, list) = s.admin("GET", "/v1/filters?deleted=1", None);
    assert_eq!(list["filters"], json!([]), "nothing was stored");
    let (_, hits) = s.admin("GET", "/v1/hits", None);
    assert_eq!(hits["hits"], json!([]));
}

fn export() -> Value {
    json!({"batchcomplete": "", "query": {"abusefilters": [
        {"id": 12, "description": "Imported blanking", "pattern": "new_size == 0 & old_size > 0",
         "actions": "disallow,tag", "hits": 40, "comments": "from the wiki", "lasteditor": "WikiAdmin",
         "lastedittime": "2023-05-01T10:00:00Z", "enabled": "", "private": ""},
        {"id": 15, "description": "Old and deleted", "pattern": "1 == 1", "actions": "", "hits": 0, "deleted": ""}
    ]}})
}

#[test]
fn import_an_abusefilter_export_then_serve_it() {
    let dir = temp_dir("import");
    let file = dir.join("export.json");
    std::fs::write(&file, export().to_string()).unwrap();
    let out = common::run_in_data_dir(&dir, &["import".as_ref(), "abusefilter".as_ref(), file.as_os_str()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 2 filters (1 enabled)"));

    let s = Server::start_in(dir, &[]);
    let (_, f) = s.admin("GET", "/v1/filters/12", None);
    assert_eq!(f["description"], "Imported blanking");
    assert_eq!(f["hits"], 40);
    assert_eq!(f["last_editor"], "WikiAdmin");
    assert_eq!(f["private"], true);
    let v = s.check(&edit("X", "Y", "some text", ""));
    assert_eq!(v["verdict"], "disallow", "{v}");
    assert_eq!(v["matches"], json!([12]));
    let (_, h) = s.admin("GET", "/v1/filters/12/history", None);
    assert_eq!(h["versions"][0]["change"], "import");
    let (_, f15) = s.admin("GET", "/v1/filters/15", None);
    assert_eq!(f15["deleted"], true);
}

fn run(args: &[&str], dir: &Path) -> (bool, String, String) {
    let out = Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env_clear()
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn filter_test_runs_offline_over_recorded_actions() {
    let dir = temp_dir("offline");
    std::fs::write(
        dir.join("filters.json"),
        json!([spam_filter(), {"id": 9, "pattern": "user_name == 'Carol'"}]).to_string(),
    )
    .unwrap();
    let actions = [
        edit("Alice", "A", "", "nothing"),
        edit("Bob", "B", "", "cheap pills"),
        edit("Carol", "C", "", "cheap pills"),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n");
    std::fs::write(dir.join("actions.jsonl"), actions + "\n").unwrap();
    let (ok, out, err) = run(&["filter", "test", "filters.json", "--against", "actions.jsonl"], &dir);
    assert!(ok, "{err}");
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let hits: Vec<(u64, String)> = lines
        .iter()
        .filter(|l| l.get("filter").is_some())
        .map(|l| (l["line"].as_u64().unwrap(), l["filter"].to_string()))
        .collect();
    assert_eq!(
        hits,
        vec![
            (2, "\"0\"".to_string()),
            (3, "\"0\"".to_string()),
            (3, "\"9\"".to_string())
        ],
        "{out}"
    );
    assert_eq!(lines.last().unwrap()["hits"], 3);

    std::fs::write(dir.join("bad.jsonl"), "{\"action\": \"edit\"}\n").unwrap();
    let (ok, _, err) = run(&["filter", "test", "filters.json", "--against", "bad.jsonl"], &dir);
    assert!(!ok);
    assert!(err.contains("bad.jsonl:1"), "{err}");
}

#[test]
fn filter_bench_on_variables_or_on_an_action() {
    let dir = temp_dir("bench");
    std::fs::create_dir_all(dir.join("filters")).unwrap();
    std::fs::write(dir.join("filters/pills.af"), "added_lines irlike 'cheap\\s+pills'").unwrap();
    std::fs::write(dir.join("filters/links.af"), "count(added_links) > 0").unwrap();
    std::fs::write(
        dir.join("vars.json"),
        json!({"added_lines": ["cheap pills"], "added_links": []}).to_string(),
    )
    .unwrap();
    let action = edit("Bob", "B", "old text", "cheap pills at [https://pills.example shop]");
    std::fs::write(dir.join("action.json"), action.to_string()).unwrap();
    let bench = |input: &[&str]| {
        let mut args = vec!["filter", "bench", "--filters", "filters", "--iterations", "3"];
        args.extend_from_slice(input);
        run(&args, &dir)
    };
    let (ok, out, err) = bench(&["--vars", "vars.json"]);
    assert!(ok, "{err}");
    let line: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(line["matched"], json!(["pills"]), "{out}");
    // On the action, the diff and the links are computed from the texts.
    let (ok, out, err) = bench(&["--action", "action.json"]);
    assert!(ok, "{err}");
    let line: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(line["matched"], json!(["links", "pills"]), "{out}");
    assert!(line["ms_each"].as_f64().unwrap() > 0.0);
    assert!(line["ms_median"].as_f64().unwrap() > 0.0, "{out}");
    // With cold caches (eviction untimed), the same answer, and the setting reported.
    let (ok, out, err) = bench(&["--action", "action.json", "--evict-mib", "1", "--profile", "2"]);
    assert!(ok, "{err}");
    let line: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(line["matched"], json!(["links", "pills"]), "{out}");
    assert_eq!(line["evict_mib"], 1, "{out}");
    assert!(line["ms_each"].as_f64().unwrap() > 0.0);
    assert!(err.contains("pills") && err.contains("links"), "the profile: {err}");

    let (ok, _, err) = bench(&[]);
    assert!(!ok && err.contains("--vars"), "one of them is needed: {err}");
    let (ok, _, err) = bench(&["--vars", "vars.json", "--action", "action.json"]);
    assert!(!ok && err.contains("cannot be used with"), "not both: {err}");
    std::fs::write(dir.join("bad.json"), json!({"action": "fly"}).to_string()).unwrap();
    let (ok, _, err) = bench(&["--action", "bad.json"]);
    assert!(
        !ok && err.contains("bad.json") && err.contains("not an action"),
        "{err}"
    );
}

#[test]
fn config_check_explains() {
    let dir = temp_dir("config");
    std::fs::write(
        dir.join("good.toml"),
        "listen = \"127.0.0.1:9000\"\nadmin_token = \"0123456789abcdef0123\"\n[engine]\ncondition_limit = 2000\n",
    )
    .unwrap();
    let (ok, out, err) = run(&["config", "check", "good.toml"], &dir);
    assert!(ok, "{err}");
    assert!(out.contains("127.0.0.1:9000") && out.contains("2000"), "{out}");
    assert!(!out.contains("0123456789abcdef0123"), "secrets are never printed");
    std::fs::write(dir.join("bad.toml"), "[engine]\ncondition_limt = 5\n").unwrap();
    let (ok, _, err) = run(&["config", "check", "bad.toml"], &dir);
    assert!(!ok);
    assert!(err.contains("condition_limt"), "{err}");
}
