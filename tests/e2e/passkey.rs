//! Passkeys in a real browser: headless Chromium with a virtual WebAuthn authenticator signs
//! in through Special:UserLogin's form, adds a passkey on Special:WikiGuardSecurity, signs
//! out, signs in again with the password and then the passkey (the login form's second step
//! calls navigator.credentials.get), and removes it. The wiki is served as `localhost`:
//! WebAuthn needs a domain, and `http://localhost` is a secure context.

use std::time::Duration;

use serde_json::{json, Value};

use crate::cdp::{Browser, Page};
use crate::common::{Server, CHECK};
use crate::harness::{Wiki, WikiOptions};
use crate::require_mediawiki;

const USER: &str = "Passkey User";
const PASS: &str = "a passkey user's long passphrase";

/// What the page shows, for failure messages.
fn shown(page: &Page) -> String {
    page.eval("document.title + '\\n' + (document.body ? document.body.innerText.slice(0, 3000) : '')")
        .map(|v| v.as_str().unwrap_or("").to_string())
        .unwrap_or_else(|e| e)
}

fn wait(page: &Page, w: &Wiki, condition: &str, what: &str) {
    if let Err(e) = page.wait_for(condition, Duration::from_secs(30)) {
        panic!("{what}: {e}\n--- page:\n{}\n{}", shown(page), w.logs());
    }
}

/// The first step of Special:UserLogin's form: user name and password, submitted.
fn password_step(page: &Page, w: &Wiki, base: &str) {
    page.navigate(&format!("{base}/index.php?title=Special:UserLogin"))
        .unwrap_or_else(|e| panic!("{e}{}", w.logs()));
    let js = format!(
        "document.getElementById('wpName1').value = {}; document.getElementById('wpPassword1').value = {}; \
         document.getElementById('wpLoginAttempt').click(); true",
        json!(USER),
        json!(PASS)
    );
    page.eval(&js).unwrap_or_else(|e| panic!("{e}\n{}", shown(page)));
}

fn logged_in(user: &str) -> String {
    format!(
        "window.mw && mw.config && mw.config.get('wgUserName') === {}",
        json!(user)
    )
}

#[test]
fn passkey_added_on_the_security_page_signs_in_on_the_login_form() {
    require_mediawiki!();
    if !Browser::available() {
        eprintln!("chromium is not installed (apt-get install chromium); skipped");
        return;
    }
    // The service must know the wiki's origin, and the wiki the service's address: start the
    // wiki first, then the service, then point the wiki at it.
    let w = Wiki::start(
        "passkey",
        WikiOptions {
            host: "localhost",
            service: "http://127.0.0.1:9",
            token: CHECK,
            settings: "",
        },
    );
    let origin = format!("http://localhost:{}", w.port);
    let s = Server::start(
        "e2e-passkey",
        &[
            ("WIKIGUARD_ACCOUNTS_RP_ID", "localhost"),
            ("WIKIGUARD_ACCOUNTS_RP_ORIGINS", origin.as_str()),
            ("WIKIGUARD_ACCOUNTS_RP_NAME", "E2E Wiki"),
        ],
    );
    w.set_runtime(&format!("$wgWikiGuardServiceUrl = '{}';", s.base));
    // A sysop: the passkey is the second factor their group needs.
    w.create_user(USER, PASS, &["sysop"]);

    let browser = Browser::launch().unwrap();
    let page = browser.new_page().unwrap();
    let authenticator = page.add_virtual_authenticator().unwrap();

    // Sign in with the password (no factor yet), then add a passkey.
    password_step(&page, &w, &origin);
    wait(&page, &w, &logged_in(USER), "signed in with the password");
    page.navigate(&format!("{origin}/index.php?title=Special:WikiGuardSecurity"))
        .unwrap();
    wait(
        &page,
        &w,
        "document.querySelector('#wikiguard-passkey-add button') && mw.loader.getState('ext.wikiguard.security') === 'ready'",
        "the security page and its script",
    );
    assert!(
        shown(&page).contains("need a second step"),
        "the page says the sysop needs a second factor: {}",
        shown(&page)
    );
    page.eval(
        "document.getElementById('wikiguard-passkey-name').value = 'Laptop'; \
         document.querySelector('#wikiguard-passkey-add button').click(); true",
    )
    .unwrap();
    wait(
        &page,
        &w,
        // The page reloads to list it: wait for the reloaded page to finish loading too, so
        // the next script does not run while `mw` is still being set up.
        "document.readyState === 'complete' && window.mw && document.querySelector('.wikiguard-passkey-list') && document.querySelector('.wikiguard-passkey-list').textContent.indexOf('Laptop') !== -1",
        "the new passkey is listed",
    );
    let credentials = page.credentials(&authenticator).unwrap();
    assert_eq!(credentials.len(), 1, "{credentials:?}");
    assert_eq!(credentials[0]["rpId"], "localhost");
    assert_eq!(
        credentials[0]["isResidentCredential"], true,
        "a discoverable credential"
    );
    let (_, f) = s.call(
        "GET",
        "/v1/accounts/Passkey_User/factors?groups=sysop",
        Some(CHECK),
        None,
    );
    assert_eq!(f["satisfied"], true, "{f}");

    // Sign out, then in: the password, then the passkey.
    let out = page
        .eval(
            "mw.loader.using('mediawiki.api').then(function () { \
             return new mw.Api().postWithToken('csrf', { action: 'logout' }); }).then(function () { return true; })",
        )
        .unwrap();
    assert_eq!(out, json!(true));
    password_step(&page, &w, &origin);
    wait(
        &page,
        &w,
        "document.getElementById('wikiguard-passkey-login') && !document.getElementById('wikiguard-passkey-login').disabled",
        "the second step offers the passkey",
    );
    assert_eq!(
        page.eval("mw.config.get('wgUserName')").unwrap(),
        Value::Null,
        "not signed in before the second step"
    );
    page.eval("document.getElementById('wikiguard-passkey-login').click(); true")
        .unwrap();
    wait(&page, &w, &logged_in(USER), "signed in with the passkey");

    let (_, list) = s.call("GET", "/v1/accounts/Passkey_User/passkeys", Some(CHECK), None);
    let keys = list["passkeys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{list}");
    assert_eq!(keys[0]["name"], "Laptop", "{list}");
    assert!(keys[0]["last_used"].as_u64().is_some(), "the passkey was used: {list}");
    let (_, audit) = s.admin("GET", "/v1/accounts/Passkey_User/audit", None);
    assert!(audit.to_string().contains("factor-enrolled"), "{audit}");

    // The passkey is listed with its last use, and can be removed.
    page.navigate(&format!("{origin}/index.php?title=Special:WikiGuardSecurity"))
        .unwrap();
    assert!(!shown(&page).contains("never"), "last used is shown: {}", shown(&page));
    page.eval("document.querySelector('.wikiguard-form-passkey-remove button').click(); true")
        .unwrap();
    wait(
        &page,
        &w,
        "document.body.innerText.indexOf('The passkey has been removed') !== -1",
        "the passkey is removed",
    );
    let (_, list) = s.call("GET", "/v1/accounts/Passkey_User/passkeys", Some(CHECK), None);
    assert_eq!(list["passkeys"], json!([]), "{list}");
    page.close().unwrap();
}
