//! Runs the CDP client's self-test (headless Chromium, a virtual WebAuthn authenticator).

#[path = "cdp.rs"]
mod cdp;

#[test]
fn cdp_self_test() {
    if !cdp::Browser::available() {
        eprintln!("chromium missing; skipped");
        return;
    }
    cdp::self_test().unwrap();
}
