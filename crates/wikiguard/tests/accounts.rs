//! The accounts door over HTTP on a real `wikiguard serve`: TOTP enrolment, verification,
//! replay, window and failure cap; recovery codes; the second-factor policy; password checks
//! against an imported breach list; login throttling, including one account sprayed from many
//! addresses; the audit log.

use std::ffi::OsStr;
use std::path::Path;

use serde_json::{json, Value};
use sha1::{Digest, Sha1};
use wikiguard_accounts::totp::{code_at, TotpParams};

mod common;
use common::{import_passwords, sha1_hex, temp_dir, Server, ADMIN, CHECK};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn post(s: &Server, path: &str, body: Value) -> (u16, Value) {
    s.call("POST", path, Some(CHECK), Some(body.to_string()))
}

fn secret_of(enrol: &Value) -> Vec<u8> {
    wikiguard_accounts::base32::decode(enrol["secret"].as_str().unwrap()).unwrap()
}

/// A code for `at`, avoiding the boundary of a step so the test never straddles two.
fn code(secret: &[u8], at: u64) -> String {
    code_at(secret, &TotpParams::default(), at)
}

fn settle_into_step() -> u64 {
    loop {
        let t = now();
        if t % 30 < 25 {
            return t;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// One address failing sign-ins to `PREFIX0`, `PREFIX1`, … (at most 200), round-robin over
/// `nodes`, until it is throttled: that attempt's number and decision.
fn guess_accounts_until_throttled(nodes: &[&Server], prefix: &str, ip: &str) -> Option<(usize, Value)> {
    for i in 0..200 {
        let node = nodes[i % nodes.len()];
        let user = format!("{prefix}{i}");
        let (_, d) = post(
            node,
            "/v1/login/attempt",
            json!({"username": user, "ip": ip, "user_agent": "x"}),
        );
        post(
            node,
            "/v1/login/result",
            json!({"username": user, "ip": ip, "success": false}),
        );
        if d["decision"] == "throttle" {
            return Some((i, d));
        }
    }
    None
}

/// `wikiguard import oathauth ARGS…` into `dir/data`; its output, once it succeeded.
fn import_oathauth(dir: &Path, args: &[&OsStr]) -> String {
    let mut all: Vec<&OsStr> = vec!["import".as_ref(), "oathauth".as_ref()];
    all.extend_from_slice(args);
    String::from_utf8_lossy(&common::run_in_data_dir(dir, &all).stdout).into_owned()
}

#[test]
fn totp_enrol_verify_replay_window_and_cap() {
    let s = Server::start("totp", &[]);
    let (status, e) = post(&s, "/v1/accounts/Alice/totp/enroll", json!({}));
    assert_eq!(status, 200, "{e}");
    assert!(e["uri"].as_str().unwrap().starts_with("otpauth://totp/"), "{e}");
    assert!(e["qr_svg"].as_str().unwrap().contains("<svg"));
    let secret = secret_of(&e);

    // Not enrolled until a first valid code.
    let (_, v) = post(
        &s,
        "/v1/accounts/Alice/totp/verify",
        json!({"code": code(&secret, now())}),
    );
    assert_eq!(v["ok"], false, "{v}");
    let (_, v) = post(&s, "/v1/accounts/Alice/totp/confirm", json!({"code": "000000"}));
    assert_eq!(v["ok"], false);
    let t = settle_into_step();
    let (_, v) = post(
        &s,
        "/v1/accounts/Alice/totp/confirm",
        json!({"code": code(&secret, t - 30)}),
    );
    assert_eq!(v["ok"], true, "the previous step is inside the window: {v}");
    let (status, _) = post(&s, "/v1/accounts/Alice/totp/enroll", json!({}));
    assert_eq!(status, 409, "one authenticator at a time");

    // The current code works once; the same code again is a replay.
    let current = code(&secret, t);
    let (_, v) = post(&s, "/v1/accounts/Alice/totp/verify", json!({"code": current}));
    assert_eq!(v["ok"], true, "{v}");
    let (_, v) = post(&s, "/v1/accounts/Alice/totp/verify", json!({"code": current}));
    common::assert_refused(&v, "replayed");
    // Two steps away is outside the default ±1 window.
    let (_, v) = post(
        &s,
        "/v1/accounts/Alice/totp/verify",
        json!({"code": code(&secret, t + 60)}),
    );
    common::assert_refused(&v, "wrong-code");
    // The failure cap locks the factor.
    let mut locked = false;
    for _ in 0..8 {
        let (_, v) = post(&s, "/v1/accounts/Alice/totp/verify", json!({"code": "123456"}));
        assert_eq!(v["ok"], false);
        if v["reason"] == "locked" || v["reason"] == "blocked" {
            locked = true;
            break;
        }
    }
    assert!(locked, "wrong codes are capped");

    let (status, v) = s.admin("GET", "/v1/accounts/Alice/audit", None);
    assert_eq!(status, 200, "{v}");
    let kinds: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"factor-enrolled") && kinds.contains(&"second-factor-failed"),
        "{kinds:?}"
    );
    assert!(!v.to_string().contains("127.0.0.1"), "no raw IP in the audit log");

    let (_, f) = s.call("GET", "/v1/accounts/Alice/factors?groups=sysop,user", Some(CHECK), None);
    assert_eq!(f["required"], true, "{f}");
    assert_eq!(f["enrolled"], true, "{f}");
    let (_, v) = s.call("DELETE", "/v1/accounts/Alice/totp", Some(CHECK), None);
    assert_eq!(v["ok"], true);
    let (_, f) = s.call("GET", "/v1/accounts/Alice/factors?groups=sysop", Some(CHECK), None);
    assert_eq!(f["enrolled"], false, "{f}");
    let (_, f) = s.call("GET", "/v1/accounts/Bob/factors?groups=user", Some(CHECK), None);
    assert_eq!(f["required"], false, "{f}");

    assert_eq!(
        s.call("POST", "/v1/accounts/Alice/totp/enroll", None, Some("{}".into()))
            .0,
        401
    );
}

#[test]
fn recovery_codes_are_single_use_and_regenerating_invalidates() {
    let s = Server::start("recovery", &[]);
    let (status, v) = post(&s, "/v1/accounts/Carol/recovery", json!({}));
    assert_eq!(status, 200, "{v}");
    let codes: Vec<String> = v["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    let (_, v) = post(
        &s,
        "/v1/accounts/Carol/recovery/verify",
        json!({"code": codes[3].to_lowercase()}),
    );
    assert_eq!(v["ok"], true, "case and dashes do not matter: {v}");
    assert_eq!(v["remaining"], 9);
    let (_, v) = post(&s, "/v1/accounts/Carol/recovery/verify", json!({"code": codes[3]}));
    assert_eq!(v["ok"], false, "a used code is gone");
    let (_, v) = post(&s, "/v1/accounts/Carol/recovery", json!({}));
    let fresh = v["codes"][0].as_str().unwrap().to_string();
    let (_, v) = post(&s, "/v1/accounts/Carol/recovery/verify", json!({"code": codes[4]}));
    assert_eq!(v["ok"], false, "the old set is invalid after regenerating");
    let (_, v) = post(&s, "/v1/accounts/Carol/recovery/verify", json!({"code": fresh}));
    assert_eq!(v["ok"], true);
}

#[test]
fn passwords_are_checked_against_an_imported_breach_list() {
    let dir = temp_dir("passwords");
    // A breach list in the Pwned Passwords format (sorted SHA1:COUNT lines, CRLF): a million
    // generated hashes plus one known password, built here, never committed.
    let mut records = wikiguard_accounts::breach::sample_records(1_000_000, 7);
    let known: [u8; 20] = Sha1::digest(b"correct horse battery staple").into();
    records.push((known, 12345));
    records.sort_unstable_by_key(|r| r.0);
    let mut text = String::with_capacity(records.len() * 48);
    for (h, n) in &records {
        for b in h {
            text.push_str(&format!("{b:02X}"));
        }
        text.push_str(&format!(":{n}\r\n"));
    }
    let out = import_passwords(&dir, &text);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("indexed 1000001 hashes"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let s = Server::start_in(dir, &[]);
    let check = |pw: &str, user: &str, groups: Value| {
        post(
            &s,
            "/v1/passwords/check",
            json!({"sha1": sha1_hex(pw), "length": pw.chars().count(), "username": user, "groups": groups}),
        )
    };
    let (status, v) = check("correct horse battery staple", "Dave", json!(["user"]));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["ok"], false);
    assert!(v.to_string().contains("breached"), "{v}");
    let (_, v) = check("a perfectly fine unique passphrase", "Dave", json!(["user"]));
    assert_eq!(v["ok"], true, "{v}");
    let (_, v) = check("short1", "Dave", json!(["user"]));
    assert!(v.to_string().contains("too-short"), "{v}");
    let (_, v) = check("elevenchars", "Dave", json!(["sysop"]));
    assert!(
        v.to_string().contains("too-short"),
        "administrators need longer passwords: {v}"
    );
    let (_, v) = check("Dave the user", "Dave the user", json!(["user"]));
    assert!(v.to_string().contains("equals-username"), "{v}");
    let (status, _) = post(&s, "/v1/passwords/check", json!({"sha1": "nothex", "length": 10}));
    assert_eq!(status, 400);

    // The k-anonymity range endpoint.
    let h = sha1_hex("correct horse battery staple");
    let (status, body) = s.call("GET", &format!("/range/{}", &h[..5]), Some(CHECK), None);
    assert_eq!(status, 200);
    assert!(body.as_str().unwrap().contains(&format!("{}:12345", &h[5..])), "{body}");
}

#[test]
fn login_throttling_does_not_let_a_spray_lock_the_owner_out() {
    let s = Server::start("login", &[]);
    // One account, wrong passwords from many networks: the owner gets a challenge, not a lock.
    let mut last = Value::Null;
    for i in 0..60 {
        let ip = format!("198.51.{}.{}", i, i % 250 + 1);
        let (status, d) = post(
            &s,
            "/v1/login/attempt",
            json!({"username": "Erin", "ip": ip, "user_agent": "x"}),
        );
        assert_eq!(status, 200, "{d}");
        post(
            &s,
            "/v1/login/result",
            json!({"username": "Erin", "ip": ip, "success": false}),
        );
        last = d;
    }
    assert_eq!(last["decision"], "require-challenge", "{last}");
    let (_, owner) = post(
        &s,
        "/v1/login/attempt",
        json!({"username": "Erin", "ip": "203.0.113.77", "user_agent": "x"}),
    );
    assert_ne!(
        owner["decision"], "throttle",
        "the owner from their own network is never locked out: {owner}"
    );

    // One address guessing many accounts is throttled.
    let (_, d) =
        guess_accounts_until_throttled(&[&s], "User", "192.0.2.9").expect("an address over its budget is throttled");
    assert!(d["retry_after_secs"].as_u64().unwrap() > 0, "{d}");
    let (status, _) = post(&s, "/v1/login/attempt", json!({"username": "Erin"}));
    assert_eq!(status, 400, "the IP is required");
}

#[test]
fn the_audit_log_is_for_the_admin_token_only() {
    let s = Server::start("audit", &[]);
    assert_eq!(s.call("GET", "/v1/accounts/Alice/audit", Some(CHECK), None).0, 401);
    assert_eq!(s.admin("GET", "/v1/accounts/Alice/audit", None).0, 200);
    let _ = ADMIN;
}

#[test]
fn a_new_device_and_network_is_news() {
    let s = Server::start("devices", &[]);
    let login = |ip: &str, device: Option<&str>| {
        let mut b = json!({"username": "Frank", "ip": ip, "user_agent": "Mozilla/5.0 Firefox/128.0", "success": true});
        if let Some(d) = device {
            b["device"] = json!(d);
        }
        post(&s, "/v1/login/result", b).1
    };
    let first = login("198.51.100.10", None);
    assert_eq!(first["notify"], false, "no notice on the first sign-in ever: {first}");
    let cookie = first["device_cookie"]
        .as_str()
        .expect("a device cookie is issued")
        .to_string();
    let again = login("198.51.100.11", Some(&cookie));
    assert_eq!(again["notify"], false, "same device, same network: {again}");
    assert!(again["device_cookie"].is_null(), "a valid cookie is kept");
    let elsewhere = login("203.0.113.50", None);
    assert_eq!(elsewhere["notify"], true, "a new browser on a new network: {elsewhere}");
    assert!(
        elsewhere["reason"].as_str().unwrap().contains("first sign-in"),
        "{elsewhere}"
    );
    let forged = login("203.0.113.51", Some("v1.00000000000000000000000000000000.bad"));
    assert!(
        forged["device_cookie"].is_string(),
        "a forged cookie is replaced: {forged}"
    );
    let (_, audit) = s.admin("GET", "/v1/accounts/Frank/audit", None);
    assert!(audit.to_string().contains("new-device-notice"), "{audit}");
}

#[test]
fn oathauth_enrolments_are_imported_so_users_keep_their_apps() {
    let dir = temp_dir("oathauth");
    let secret_b32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    let rows = json!([
        {"oad_user": 5, "oad_type": "totp", "oad_name": "phone",
         "oad_data": format!("{{\"secret\":\"{secret_b32}\",\"scratch_tokens\":[\"JBSWY3DPEHPK3PXP\"]}}")},
        {"oad_user": 6, "oad_type": "webauthn", "oad_data": "{}"}
    ]);
    std::fs::write(dir.join("devices.json"), rows.to_string()).unwrap();
    std::fs::write(
        dir.join("users.json"),
        json!([{"user_id": 5, "user_name": "Grace"}, {"user_id": 6, "user_name": "Heidi"}]).to_string(),
    )
    .unwrap();
    let stdout = import_oathauth(
        &dir,
        &[
            dir.join("devices.json").as_os_str(),
            "--users".as_ref(),
            dir.join("users.json").as_os_str(),
        ],
    );
    assert!(
        stdout.contains("imported 1 TOTP enrolments and 1 recovery-code sets"),
        "{stdout}"
    );
    assert!(stdout.contains("skipped"), "the WebAuthn row is reported: {stdout}");

    let s = Server::start_in(dir, &[]);
    let secret = wikiguard_accounts::base32::decode(secret_b32).unwrap();
    let t = settle_into_step();
    let (_, v) = post(&s, "/v1/accounts/Grace/totp/verify", json!({"code": code(&secret, t)}));
    assert_eq!(v["ok"], true, "the app the user already has works: {v}");
    let (_, v) = post(
        &s,
        "/v1/accounts/Grace/recovery/verify",
        json!({"code": "JBSW-Y3DP-EHPK-3PXP"}),
    );
    assert_eq!(v["ok"], true, "OATHAuth's scratch token became a recovery code: {v}");
}

#[test]
fn login_throttles_are_shared_by_nodes_through_redis() {
    let Some(redis) = common::start_redis() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install redis-server (scripts/test does)"
        );
        println!("SKIPPED: redis-server is not installed");
        return;
    };
    let url = format!("redis://127.0.0.1:{}/0", redis.port);
    let a = Server::start("redis-login-a", &[("WIKIGUARD_REDIS", url.as_str())]);
    let b = Server::start("redis-login-b", &[("WIKIGUARD_REDIS", url.as_str())]);
    // One address guessing many accounts, half through each node: throttled as one.
    let throttled_at = guess_accounts_until_throttled(&[&a, &b], "Target", "192.0.2.50").map(|(i, _)| i);
    let shared = throttled_at.expect("the address is throttled");
    // Alone, one node would have seen half the failures: the budget was spent across both.
    let single = Server::start("redis-login-single", &[]);
    let alone = guess_accounts_until_throttled(&[&single], "Target", "192.0.2.51").map(|(i, _)| i);
    assert_eq!(
        Some(shared),
        alone,
        "two nodes sharing Redis throttle exactly like one node"
    );
    // Redis goes away: the nodes keep answering on their own counters.
    drop(redis);
    let (status, d) = post(
        &a,
        "/v1/login/attempt",
        json!({"username": "Someone", "ip": "198.51.100.200", "user_agent": "x"}),
    );
    assert_eq!(status, 200);
    assert_eq!(d["decision"], "allow", "{d}");
}

#[test]
fn oathauth_import_reads_the_wikis_sqlite_database() {
    let dir = temp_dir("oathauth-sqlite");
    let db = dir.join("my_wiki.sqlite");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE user (user_id INTEGER PRIMARY KEY, user_name TEXT);
         CREATE TABLE oathauth_types (oat_id INTEGER PRIMARY KEY, oat_name TEXT);
         CREATE TABLE oathauth_devices (oad_id INTEGER PRIMARY KEY, oad_user INTEGER, oad_type INTEGER, oad_name TEXT, oad_data BLOB);
         INSERT INTO user VALUES (7, 'Ivan');
         INSERT INTO oathauth_types VALUES (1, 'totp');
         INSERT INTO oathauth_devices (oad_user, oad_type, oad_name, oad_data)
             VALUES (7, 1, 'phone', '{\"secret\":\"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\",\"scratch_tokens\":[]}');",
    )
    .unwrap();
    drop(conn);
    let stdout = import_oathauth(&dir, &[db.as_os_str()]);
    assert!(stdout.contains("imported 1 TOTP enrolments"), "{stdout}");
    let s = Server::start_in(dir, &[]);
    let secret = wikiguard_accounts::base32::decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
    let t = settle_into_step();
    let (_, v) = post(&s, "/v1/accounts/Ivan/totp/verify", json!({"code": code(&secret, t)}));
    assert_eq!(v["ok"], true, "{v}");
}
