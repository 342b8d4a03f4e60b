//! The accounts door through MediaWiki, driven as a bot or user drives a wiki: a sysop's
//! two-step login with an authenticator app and recovery codes (enrolled on
//! Special:WikiGuardSecurity) and the notice when its password seems known; a breached
//! password refused at account creation; a password spray throttled without locking the owner
//! out; an account sprayed from many networks asking for ConfirmEdit's CAPTCHA; a sign-in from
//! a new browser and network noticed on the wiki and by e-mail; and the fail modes when the
//! service is away.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use wikiguard_accounts::totp::{code_at, TotpParams};

use crate::common::{import_passwords, sha1_hex, temp_dir, Server, CHECK};
use crate::harness::{urlencode, Api, Wiki};
use crate::require_mediawiki;

fn wiki(name: &str, service: &Server, settings: &str) -> Wiki {
    Wiki::for_service(name, service, settings)
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Waits until at most `max` seconds of the current 30-second TOTP step have passed, so a
/// few requests fit in the step; returns the time.
fn early_in_step(max: u64) -> u64 {
    loop {
        let t = now();
        if t % 30 <= max {
            return t;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn status(v: &Value) -> &str {
    v["clientlogin"]["status"].as_str().unwrap_or("")
}

fn messagecode(v: &Value) -> &str {
    v["clientlogin"]["messagecode"].as_str().unwrap_or("")
}

/// The field names of every request of a clientlogin answer.
fn fields(v: &Value) -> Vec<String> {
    v["clientlogin"]["requests"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["fields"].as_object().into_iter().flat_map(|f| f.keys().cloned()))
        .collect()
}

/// Whom the wiki sees: the user name, or "" when logged out.
fn user_name(c: &mut Api) -> String {
    let v = c.get(&[("action", "query"), ("meta", "userinfo")]);
    if v["query"]["userinfo"]["anon"] == true {
        return String::new();
    }
    v["query"]["userinfo"]["name"].as_str().unwrap_or("").to_string()
}

/// A page of the wiki as HTML.
fn page(c: &mut Api, title: &str) -> String {
    let path = format!("/index.php?title={}", urlencode(&title.replace(' ', "_")));
    let (status, html) = c.request("GET", &path, None, Vec::new());
    assert_eq!(status, 200, "GET {title}: {html}");
    html
}

/// Posts one of Special:WikiGuardSecurity's forms (with the edit token, as the form does);
/// the page's HTML.
fn security_form(c: &mut Api, action: &str, extra: &[(&str, &str)]) -> String {
    let token = c.token("csrf");
    let mut params = vec![
        ("title", "Special:WikiGuardSecurity"),
        ("wikiguardaction", action),
        ("wpEditToken", token.as_str()),
    ];
    params.extend_from_slice(extra);
    let (status, html) = c.post_form("/index.php", &params);
    assert_eq!(status, 200, "{action}: {html}");
    html
}

/// The text of the first element that starts with `marker` (an attribute such as
/// `id="x"`), up to `end`.
fn inner<'a>(html: &'a str, marker: &str, end: &str) -> Option<&'a str> {
    let at = html.find(marker)?;
    let rest = &html[at..];
    let open = rest.find('>')? + 1;
    let close = rest[open..].find(end)?;
    Some(&rest[open..open + close])
}

/// A six-digit code that is none of the codes valid around `t`.
fn wrong_code(secret: &[u8], t: u64) -> String {
    let valid: Vec<String> = [t - 30, t, t + 30, t + 60]
        .iter()
        .map(|&at| code_at(secret, &TotpParams::default(), at))
        .collect();
    (0..)
        .map(|i: u32| format!("{:06}", (123_456 + i * 7919) % 1_000_000))
        .find(|c| !valid.contains(c))
        .unwrap()
}

const SYSOP: &str = "Sysop One";
const SYSOP_PASS: &str = "a sysop's long passphrase 77";

#[test]
fn accounts_sysop_signs_in_with_an_authenticator_app_and_recovery_codes() {
    require_mediawiki!();
    let s = Server::start("e2e-totp", &[]);
    let w = wiki("totp", &s, "");
    w.create_user(SYSOP, SYSOP_PASS, &["sysop"]);

    // Required for sysops but not set up yet: let in, and reminded on every page.
    let mut c = w.login(SYSOP, SYSOP_PASS);
    let html = page(&mut c, "Main Page");
    assert!(
        html.contains("wikiguard-enrol-reminder") && html.contains("Special:WikiGuardSecurity"),
        "the enrolment reminder is shown: {}",
        w.logs()
    );

    // Enrol on Special:WikiGuardSecurity: the QR code and the secret, then the first code.
    let html = security_form(&mut c, "totp-enroll", &[]);
    // The QR code is an image of the service's SVG, never inlined markup.
    assert!(
        html.contains("src=\"data:image/svg+xml;base64,"),
        "the QR code is shown{}",
        w.logs()
    );
    assert!(!html.contains("<svg"), "the SVG is not inlined into the page");
    let secret_text = inner(&html, "id=\"wikiguard-totp-secret\"", "</code>")
        .unwrap_or_else(|| panic!("the secret is shown as text: {html}"))
        .replace(' ', "");
    let secret = wikiguard_accounts::base32::decode(&secret_text).expect("a base32 secret");
    let t = early_in_step(25);
    // The previous step's code (inside the window), so the current one is still fresh for
    // the login below (and still inside the window if the step ends meanwhile).
    let first = code_at(&secret, &TotpParams::default(), t - 30);
    let html = security_form(&mut c, "totp-confirm", &[("code", &first)]);
    assert!(html.contains("Your authenticator app is set up"), "confirmed: {html}");
    let (_, f) = s.call("GET", "/v1/accounts/Sysop_One/factors?groups=sysop", Some(CHECK), None);
    assert_eq!(f["enrolled"], true, "{f}");
    assert_eq!(f["kinds_enrolled"], json!(["totp"]), "{f}");
    let html = page(&mut c, "Main Page");
    assert!(!html.contains("wikiguard-enrol-reminder"), "no reminder once enrolled");

    // Recovery codes, shown once.
    let html = security_form(&mut c, "recovery-generate", &[]);
    let list = inner(&html, "id=\"wikiguard-recovery-codes\"", "</ul>").expect("the codes are listed");
    let codes: Vec<String> = list
        .split("<code>")
        .skip(1)
        .map(|p| p.split("</code>").next().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10, "{list}");

    // The login asks for the code after the password.
    let current = code_at(&secret, &TotpParams::default(), t);
    let mut c = w.client();
    let v = c.clientlogin(SYSOP, SYSOP_PASS, &[]);
    assert_eq!(status(&v), "UI", "{v}{}", w.logs());
    assert_eq!(messagecode(&v), "wikiguard-2fa-prompt", "{v}");
    assert!(fields(&v).contains(&"wikiguardcode".to_string()), "{v}");
    // A wrong code: asked again, with its reason.
    let v = c.clientlogin_continue(&[("wikiguardcode", &wrong_code(&secret, t))]);
    assert_eq!(status(&v), "UI", "{v}");
    assert_eq!(messagecode(&v), "wikiguard-2fa-wrong-code", "{v}");
    assert_eq!(user_name(&mut c), "", "not logged in yet");
    // The right code.
    let v = c.clientlogin_continue(&[("wikiguardcode", &current)]);
    assert_eq!(status(&v), "PASS", "{v}{}", w.logs());
    assert_eq!(user_name(&mut c), SYSOP);

    // The same code again, in a new login: a replay.
    let mut c = w.client();
    let v = c.clientlogin(SYSOP, SYSOP_PASS, &[]);
    assert_eq!(status(&v), "UI", "{v}");
    let v = c.clientlogin_continue(&[("wikiguardcode", &current)]);
    assert_eq!(status(&v), "UI", "{v}");
    assert_eq!(messagecode(&v), "wikiguard-2fa-replayed", "{v}");
    // Two more failed codes: three after the right password (since the last right code) mean
    // someone else may know the password.
    for _ in 0..2 {
        let v = c.clientlogin_continue(&[("wikiguardcode", &wrong_code(&secret, t))]);
        assert_eq!(messagecode(&v), "wikiguard-2fa-wrong-code", "{v}");
    }
    // A recovery code instead, in the same step.
    let v = c.clientlogin_continue(&[("wikiguardcode", &codes[0])]);
    assert_eq!(status(&v), "PASS", "{v}{}", w.logs());
    assert_eq!(user_name(&mut c), SYSOP);
    let html = page(&mut c, "Main Page");
    assert!(
        html.contains("wikiguard-recovery-used"),
        "told a recovery code was used"
    );
    assert!(
        html.contains("wikiguard-signin-notice") && html.contains("appear to know your password"),
        "told the password seems known{}",
        w.logs()
    );

    // A recovery code works once.
    let mut c = w.client();
    let v = c.clientlogin(SYSOP, SYSOP_PASS, &[]);
    assert_eq!(status(&v), "UI", "{v}");
    let v = c.clientlogin_continue(&[("wikiguardcode", &codes[0])]);
    assert_eq!(status(&v), "UI", "{v}");
    assert_eq!(messagecode(&v), "wikiguard-2fa-wrong-code", "{v}");
    let v = c.clientlogin_continue(&[("wikiguardcode", &codes[1])]);
    assert_eq!(status(&v), "PASS", "{v}");

    // Removing the app: the next login has no second step, and the reminder is back.
    let html = security_form(&mut c, "totp-remove", &[]);
    assert!(html.contains("The authenticator app has been removed"), "{html}");
    let (_, f) = s.call("GET", "/v1/accounts/Sysop_One/factors?groups=sysop", Some(CHECK), None);
    assert_eq!(f["enrolled"], false, "{f}");
    let mut c = w.login(SYSOP, SYSOP_PASS);
    assert!(page(&mut c, "Main Page").contains("wikiguard-enrol-reminder"));

    let log = w.wikiguard_log();
    for secret in [
        current.as_str(),
        codes[0].as_str(),
        codes[1].as_str(),
        SYSOP_PASS,
        "127.0.0.1",
    ] {
        assert!(
            !log.contains(secret),
            "{secret:?} is not in the extension's log:\n{log}"
        );
    }
}

#[test]
fn accounts_a_breached_password_is_refused_at_account_creation() {
    require_mediawiki!();
    const BREACHED: &str = "correct horse battery staple";
    // A small breach list in the Pwned Passwords format: generated hashes plus one password.
    let dir = temp_dir("e2e-breach");
    let mut lines: Vec<String> = wikiguard_accounts::breach::sample_records(2000, 11)
        .iter()
        .map(|(h, n)| format!("{}:{n}", h.iter().map(|b| format!("{b:02X}")).collect::<String>()))
        .collect();
    lines.push(format!("{}:4242", sha1_hex(BREACHED)));
    lines.sort();
    import_passwords(&dir, &(lines.join("\r\n") + "\r\n"));
    let s = Server::start_in(dir, &[]);
    let w = wiki("breach", &s, "");

    let mut visitor = w.client();
    let v = visitor.create_account("Newcomer", BREACHED);
    assert_eq!(v["createaccount"]["status"], "FAIL", "{v}{}", w.logs());
    assert_eq!(v["createaccount"]["messagecode"], "wikiguard-password-breached", "{v}");
    assert!(
        v["createaccount"]["message"].as_str().unwrap().contains("data breach"),
        "{v}"
    );
    let v = visitor.create_account("Newcomer", "Zq9#vX");
    assert_eq!(v["createaccount"]["status"], "FAIL", "{v}");
    assert_eq!(v["createaccount"]["messagecode"], "wikiguard-password-too-short", "{v}");
    let v = visitor.create_account("Newcomer", "a fine unbreached passphrase");
    assert_eq!(v["createaccount"]["status"], "PASS", "{v}{}", w.logs());
    assert!(!w.wikiguard_log().contains(BREACHED), "the password is never logged");
}

#[test]
fn accounts_a_password_spray_is_throttled_without_locking_the_owner_out() {
    require_mediawiki!();
    let s = Server::start("e2e-spray", &[]);
    let w = wiki("spray", &s, "");
    w.create_user("Owner", "the owner's own passphrase", &[]);

    let mut attacker = w.client_from("203.0.113.9");
    let mut throttled = None;
    for i in 0..12 {
        let v = attacker.clientlogin("Owner", &format!("guess number {i}"), &[]);
        assert_eq!(status(&v), "FAIL", "{v}{}", w.logs());
        if messagecode(&v) == "wikiguard-login-throttled" {
            throttled = Some((i, v));
            break;
        }
        assert_eq!(messagecode(&v), "wrongpassword", "{v}");
    }
    let (after, v) = throttled.unwrap_or_else(|| panic!("the spray is throttled{}", w.logs()));
    assert_eq!(after, 5, "after the 5 failures the budget allows: {v}");
    let text = v["clientlogin"]["message"].as_str().unwrap();
    assert!(
        text.contains("wait") && text.contains("second"),
        "names the wait: {text}"
    );
    // Throttled before the password is checked: the right one is refused too, from there.
    let v = attacker.clientlogin("Owner", "the owner's own passphrase", &[]);
    assert_eq!(messagecode(&v), "wikiguard-login-throttled", "{v}");

    // The owner, from their own network, signs in at once.
    let mut owner = w.client_from("198.51.100.7");
    let v = owner.clientlogin("Owner", "the owner's own passphrase", &[]);
    assert_eq!(status(&v), "PASS", "the owner is not locked out: {v}{}", w.logs());
    assert_eq!(user_name(&mut owner), "Owner");
    let log = w.wikiguard_log();
    assert!(log.contains("throttled"), "{log}");
    assert!(!log.contains("203.0.113.9") && !log.contains("guess number"), "{log}");
}

/// The arithmetic of a ConfirmEdit SimpleCaptcha question such as `57+3 =` or `57−3 =`.
fn solve(question: &str) -> String {
    let q = question.trim_end_matches('=').trim();
    let (a, b, minus) = if let Some((a, b)) = q.split_once('+') {
        (a, b, false)
    } else {
        let (a, b) = q.split_once('−').or_else(|| q.split_once('-')).expect("a sum");
        (a, b, true)
    };
    let (a, b): (i64, i64) = (a.trim().parse().unwrap(), b.trim().parse().unwrap());
    (if minus { a - b } else { a + b }).to_string()
}

/// The CAPTCHA the login form now carries (ConfirmEdit's, through meta=authmanagerinfo): its
/// id and answer.
fn captcha(c: &mut Api) -> (String, String) {
    let info = c.get(&[
        ("action", "query"),
        ("meta", "authmanagerinfo"),
        ("amirequestsfor", "login"),
    ]);
    let req = info["query"]["authmanagerinfo"]["requests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["id"].as_str().unwrap_or("").contains("CaptchaAuthenticationRequest"))
        .cloned()
        .unwrap_or_else(|| panic!("the login form has a CAPTCHA: {info}"));
    let id = req["fields"]["captchaId"]["value"].as_str().unwrap().to_string();
    (id, solve(req["fields"]["captchaInfo"]["value"].as_str().unwrap()))
}

#[test]
fn accounts_an_account_sprayed_from_many_networks_asks_for_a_captcha_not_a_lock() {
    require_mediawiki!();
    let s = Server::start("e2e-captcha", &[]);
    // ConfirmEdit with all of its own triggers off: only wikiguard asks for its CAPTCHA.
    let w = wiki(
        "captcha",
        &s,
        "wfLoadExtension( 'ConfirmEdit' );\n$wgCaptchaTriggers = [ 'edit' => false, 'create' => false, 'sendemail' => false, 'addurl' => false, 'createaccount' => false, 'badlogin' => false, 'badloginperuser' => false ];",
    );
    w.create_user("Target", "the target's passphrase", &[]);
    for i in 0..10 {
        let mut c = w.client_from(&format!("192.0.{}.{}", 10 + i, 20 + i));
        let v = c.clientlogin("Target", "not the password", &[]);
        assert_eq!(
            messagecode(&v),
            "wrongpassword",
            "no network is over its own budget: {v}"
        );
    }

    // The owner from a new network is asked for a CAPTCHA, not refused for good.
    let mut owner = w.client_from("198.51.100.44");
    let v = owner.clientlogin("Target", "the target's passphrase", &[]);
    assert_eq!(status(&v), "FAIL", "{v}{}", w.logs());
    assert_eq!(messagecode(&v), "wikiguard-login-challenge", "{v}");
    let (id, _) = captcha(&mut owner);
    let v = owner.clientlogin(
        "Target",
        "the target's passphrase",
        &[("captchaId", &id), ("captchaWord", "999999")],
    );
    assert_eq!(messagecode(&v), "wikiguard-login-challenge", "a wrong answer: {v}");
    let (id, answer) = captcha(&mut owner);
    let v = owner.clientlogin(
        "Target",
        "the target's passphrase",
        &[("captchaId", &id), ("captchaWord", &answer)],
    );
    assert_eq!(
        status(&v),
        "PASS",
        "a solved CAPTCHA lets the owner in: {v}{}",
        w.logs()
    );
    assert_eq!(user_name(&mut owner), "Target");
}

#[test]
fn accounts_a_sign_in_from_a_new_browser_and_network_is_noticed() {
    require_mediawiki!();
    let s = Server::start("e2e-devices", &[]);
    // E-mail on, caught by MediaWiki's AlternateUserMailer hook into the wiki's directory.
    let w = wiki(
        "devices",
        &s,
        "$wgEnableEmail = true;\n$wgHooks['AlternateUserMailer'][] = static function ( $headers, $to, $from, $subject, $body ) { file_put_contents( __DIR__ . '/mail.log', \"$subject\\n$body\\n----\\n\", FILE_APPEND ); return false; };",
    );
    w.create_user("Traveller", "the traveller's passphrase", &[]);
    w.maintenance(
        "resetUserEmail.php",
        &["--no-reset-password", "Traveller", "traveller@example.org"],
    );
    let mail = || std::fs::read_to_string(w.dir.join("mail.log")).unwrap_or_default();

    // The first sign-in ever: no notice, and the browser gets its device cookie.
    let mut home = w.client_from("198.51.100.20");
    let v = home.clientlogin("Traveller", "the traveller's passphrase", &[]);
    assert_eq!(status(&v), "PASS", "{v}{}", w.logs());
    let device = home
        .cookies
        .iter()
        .find(|(k, _)| k.ends_with("wikiguardDevice"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap_or_else(|| panic!("a device cookie is set: {:?}", home.cookies.keys()));

    // The same browser on another network: not news.
    let mut cafe = w.client_from("203.0.113.80");
    cafe.cookies.insert(device.0.clone(), device.1.clone());
    let v = cafe.clientlogin("Traveller", "the traveller's passphrase", &[]);
    assert_eq!(status(&v), "PASS", "{v}");
    assert!(
        !page(&mut home, "Main Page").contains("wikiguard-signin-notice"),
        "no notice yet"
    );
    assert_eq!(mail(), "", "no e-mail yet");

    // A new browser on a new network: every session of the account shows the notice.
    let mut elsewhere = w.client_from("192.0.2.200");
    let v = elsewhere.clientlogin("Traveller", "the traveller's passphrase", &[]);
    assert_eq!(status(&v), "PASS", "{v}");
    let html = page(&mut home, "Main Page");
    assert!(
        html.contains("wikiguard-signin-notice") && html.contains("not used in the last 30 days"),
        "the owner's own browser shows the notice{}",
        w.logs()
    );
    // And by e-mail, since the address is confirmed.
    let sent = mail();
    assert!(
        sent.contains("New sign-in to your E2EWiki account"),
        "the e-mail is sent: {sent:?}{}",
        w.logs()
    );
    assert!(
        sent.contains("Hello Traveller") && sent.contains("Special:ChangePassword"),
        "{sent}"
    );
    assert!(!sent.contains("192.0.2.200"), "no address in the e-mail: {sent}");
    assert_eq!(
        sent.matches("----").count(),
        1,
        "one e-mail, for the one new sign-in: {sent}"
    );
    let html = security_form(&mut home, "notices-dismiss", &[]);
    assert!(html.contains("The notices have been dismissed"), "{html}");
    assert!(
        !page(&mut home, "Main Page").contains("wikiguard-signin-notice"),
        "dismissed"
    );
    let (_, audit) = s.admin("GET", "/v1/accounts/Traveller/audit", None);
    assert!(audit.to_string().contains("new-device-notice"), "{audit}");
}

#[test]
fn accounts_logins_fail_open_or_closed_when_the_service_is_away() {
    require_mediawiki!();
    let s = Server::start("e2e-accounts-down", &[]);
    let w = wiki("accounts-down", &s, "");
    w.create_user("Patient", "a patient user's passphrase", &[]);
    drop(s);

    // Open (the default): the login goes through, and the log says why.
    let mut c = w.client();
    let v = c.clientlogin("Patient", "a patient user's passphrase", &[]);
    assert_eq!(status(&v), "PASS", "fail-open lets the login through: {v}{}", w.logs());
    assert!(w.wikiguard_log().contains("failing open"), "{}", w.logs());

    // Closed: refused with its own message, before the password is checked.
    w.set_runtime("$wgWikiGuardFailMode = [ 'check' => 'open', 'accounts' => 'closed' ];");
    let mut c = w.client();
    let v = c.clientlogin("Patient", "a patient user's passphrase", &[]);
    assert_eq!(status(&v), "FAIL", "{v}{}", w.logs());
    assert_eq!(messagecode(&v), "wikiguard-unavailable-login", "{v}");
    // And a new password cannot be checked, so it is refused.
    let v = c.create_account("Latecomer", "another fine passphrase");
    assert_eq!(v["createaccount"]["status"], "FAIL", "{v}");
    assert_eq!(
        v["createaccount"]["messagecode"], "wikiguard-unavailable-password",
        "{v}"
    );
}
