//! Passkeys (WebAuthn) over HTTP on a real `wikiguard serve`, with webauthn-authenticator-rs's
//! software passkey as the browser and authenticator: registration, sign-in with a username
//! and without one, several credentials and removal, several origins and a wrong origin, and a
//! sign counter that goes backwards (what a cloned authenticator looks like) refused and
//! audited.

use serde_json::{json, Value};
use webauthn_authenticator_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Url,
    WebauthnAuthenticator, WebauthnCError,
};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::AuthenticatorBackendHashedClientData;
use webauthn_rs_proto::{
    PublicKeyCredentialCreationOptions, PublicKeyCredentialRequestOptions, ResidentKeyRequirement,
};

mod common;
use common::{assert_refused, Server, CHECK};

/// SoftPasskey with resident-key storage on top: SoftPasskey refuses `requireResidentKey` and
/// returns no user handle, so this wrapper remembers each credential's user handle (what a
/// real authenticator stores with a discoverable credential), offers its credential when the
/// site asks without an allow-list, and returns the handle. The signature is SoftPasskey's.
struct ResidentPasskey {
    inner: SoftPasskey,
    /// Credential id → user handle, in registration order.
    resident: Vec<(Vec<u8>, Vec<u8>)>,
}

impl ResidentPasskey {
    fn new() -> Self {
        ResidentPasskey {
            inner: SoftPasskey::new(true),
            resident: Vec::new(),
        }
    }
}

impl AuthenticatorBackendHashedClientData for ResidentPasskey {
    fn perform_register(
        &mut self,
        client_data_hash: Vec<u8>,
        mut options: PublicKeyCredentialCreationOptions,
        timeout_ms: u32,
    ) -> Result<RegisterPublicKeyCredential, WebauthnCError> {
        let sel = options
            .authenticator_selection
            .as_mut()
            .expect("authenticatorSelection");
        assert!(
            sel.require_resident_key,
            "the site must ask for a discoverable credential"
        );
        assert_eq!(sel.resident_key, Some(ResidentKeyRequirement::Required));
        sel.require_resident_key = false; // kept by this wrapper instead
        let handle = options.user.id.clone();
        let r = self.inner.perform_register(client_data_hash, options, timeout_ms)?;
        self.resident.push((r.raw_id.clone(), handle));
        Ok(r)
    }

    fn perform_auth(
        &mut self,
        client_data_hash: Vec<u8>,
        mut options: PublicKeyCredentialRequestOptions,
        timeout_ms: u32,
    ) -> Result<PublicKeyCredential, WebauthnCError> {
        let discoverable = options.allow_credentials.is_empty();
        if discoverable {
            let (id, _) = self.resident.last().expect("a resident credential");
            options.allow_credentials = vec![webauthn_rs_proto::AllowCredentials {
                type_: "public-key".into(),
                id: id.clone(),
                transports: None,
            }];
        }
        let mut r = self.inner.perform_auth(client_data_hash, options, timeout_ms)?;
        if discoverable {
            let handle = self
                .resident
                .iter()
                .find(|(id, _)| *id == r.raw_id)
                .map(|(_, h)| h.clone());
            r.response.user_handle = handle;
        }
        Ok(r)
    }
}

fn post(s: &Server, path: &str, body: Value) -> (u16, Value) {
    s.call("POST", path, Some(CHECK), Some(body.to_string()))
}

fn origin(o: &str) -> Url {
    Url::parse(o).unwrap()
}

/// Registers a passkey named `name` for `user` from `from`; the finish answer.
fn register(s: &Server, key: &mut ResidentPasskey, user: &str, name: &str, from: &str) -> Value {
    let (status, options) = post(
        s,
        &format!("/v1/accounts/{user}/passkeys/register/begin"),
        json!({ "name": name }),
    );
    assert_eq!(status, 200, "{options}");
    let ccr: CreationChallengeResponse = serde_json::from_value(options).unwrap();
    let cred = key
        .do_registration(origin(from), ccr)
        .expect("the soft passkey registers");
    let (status, v) = post(
        s,
        &format!("/v1/accounts/{user}/passkeys/register/finish"),
        serde_json::to_value(&cred).unwrap(),
    );
    assert_eq!(status, 200, "{v}");
    v
}

fn sign(key: &mut ResidentPasskey, options: Value, from: &str) -> Value {
    let rcr: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let cred = key
        .do_authentication(origin(from), rcr)
        .expect("the soft passkey signs");
    serde_json::to_value(&cred).unwrap()
}

fn login_begin(s: &Server, user: &str) -> Value {
    let (status, options) = post(s, &format!("/v1/accounts/{user}/passkeys/login/begin"), json!({}));
    assert_eq!(status, 200, "{options}");
    options
}

fn login_finish(s: &Server, user: &str, signed: Value) -> Value {
    let (status, v) = post(s, &format!("/v1/accounts/{user}/passkeys/login/finish"), signed);
    assert_eq!(status, 200, "{v}");
    v
}

fn login(s: &Server, key: &mut ResidentPasskey, user: &str, from: &str) -> Value {
    let options = login_begin(s, user);
    let signed = sign(key, options, from);
    login_finish(s, user, signed)
}

fn list(s: &Server, user: &str) -> Vec<Value> {
    let (status, v) = s.call("GET", &format!("/v1/accounts/{user}/passkeys"), Some(CHECK), None);
    assert_eq!(status, 200, "{v}");
    v["passkeys"].as_array().unwrap().clone()
}

fn audit_kinds(s: &Server, user: &str) -> Vec<String> {
    let (status, v) = s.admin("GET", &format!("/v1/accounts/{user}/audit"), None);
    assert_eq!(status, 200, "{v}");
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {}", e["kind"].as_str().unwrap_or(""), e["details"]))
        .collect()
}

const LOCAL: &str = "http://localhost";

#[test]
fn register_and_sign_in_with_and_without_a_username() {
    let s = Server::start("passkeys", &[]);
    let mut laptop = ResidentPasskey::new();

    // Before: no passkey, nothing to sign in with.
    let (_, v) = post(&s, "/v1/accounts/Alice/passkeys/login/begin", json!({}));
    assert_refused(&v, "no-credentials");
    let (_, f) = s.call("GET", "/v1/accounts/Alice/factors?groups=sysop", Some(CHECK), None);
    assert_eq!(f["satisfied"], false, "{f}");

    // Registration: the options ask for a discoverable credential (the wrapper asserts it).
    let (_, options) = post(
        &s,
        "/v1/accounts/Alice/passkeys/register/begin",
        json!({"name": "Laptop"}),
    );
    assert_eq!(
        options["publicKey"]["authenticatorSelection"]["residentKey"], "required",
        "{options}"
    );
    assert_eq!(options["publicKey"]["user"]["name"], "Alice");
    let reg = register(&s, &mut laptop, "alice", "Laptop", LOCAL);
    assert_eq!(reg["ok"], true, "{reg}");
    let laptop_id = reg["id"].as_str().unwrap().to_string();

    // A finished registration cannot be finished again.
    let (_, v) = post(
        &s,
        "/v1/accounts/Alice/passkeys/register/finish",
        json!({"id": "x", "rawId": "eA", "type": "public-key", "response": {"attestationObject": "", "clientDataJSON": ""}}),
    );
    assert_eq!(v["ok"], false, "{v}");

    // The passkey counts as a second factor for a sysop.
    let (_, f) = s.call("GET", "/v1/accounts/Alice/factors?groups=sysop", Some(CHECK), None);
    assert_eq!(f["satisfied"], true, "{f}");
    assert!(
        f["kinds_enrolled"].as_array().unwrap().contains(&json!("passkey")),
        "{f}"
    );

    // Sign-in with the user name.
    let v = login(&s, &mut laptop, "Alice", LOCAL);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["id"], laptop_id.as_str());

    // Sign-in without a user name: the user handle says who it is.
    let (status, options) = post(&s, "/v1/passkeys/login/begin", json!({}));
    assert_eq!(status, 200, "{options}");
    let signed = sign(&mut laptop, options, LOCAL);
    let (_, v) = post(&s, "/v1/passkeys/login/finish", signed.clone());
    assert_eq!(
        (v["ok"].clone(), v["user"].clone()),
        (json!(true), json!("Alice")),
        "{v}"
    );
    // The same response again: the ceremony is used.
    let (_, v) = post(&s, "/v1/passkeys/login/finish", signed);
    assert_refused(&v, "expired");

    // A second credential on another authenticator; the list has both, with names and times.
    let mut phone = ResidentPasskey::new();
    let reg = register(&s, &mut phone, "Alice", "Phone", LOCAL);
    assert_eq!(reg["ok"], true, "{reg}");
    let phone_id = reg["id"].as_str().unwrap().to_string();
    let keys = list(&s, "Alice");
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!(keys[0]["name"], "Laptop");
    assert!(keys[0]["last_used"].as_u64().is_some(), "{keys:?}");
    assert!(keys[0]["created"].as_u64().is_some());
    assert_eq!(keys[1]["name"], "Phone");
    assert!(keys[1]["last_used"].is_null());
    assert_eq!(keys[1]["backup_eligible"], false);
    assert_eq!(keys[1]["backed_up"], false);
    assert_eq!(login(&s, &mut phone, "Alice", LOCAL)["ok"], true);

    // Another user cannot use Alice's passkey.
    assert_eq!(
        register(&s, &mut ResidentPasskey::new(), "Bob", "Key", LOCAL)["ok"],
        true
    );
    let options = login_begin(&s, "Bob");
    let signed = key_sign_err(&mut laptop, options);
    assert!(
        signed,
        "Bob's options do not list Alice's credential, so the authenticator has nothing to sign with"
    );

    // Removal: the laptop no longer signs in, the phone does.
    let (status, v) = s.call(
        "DELETE",
        &format!("/v1/accounts/Alice/passkeys/{laptop_id}"),
        Some(CHECK),
        None,
    );
    assert_eq!((status, v["ok"].clone()), (200, json!(true)), "{v}");
    let (_, v) = s.call(
        "DELETE",
        &format!("/v1/accounts/Alice/passkeys/{laptop_id}"),
        Some(CHECK),
        None,
    );
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(list(&s, "Alice").len(), 1);
    let options = login_begin(&s, "Alice");
    assert!(
        key_sign_err(&mut laptop, options),
        "the removed credential is not offered"
    );
    let (_, options) = post(&s, "/v1/passkeys/login/begin", json!({}));
    let signed = sign(&mut laptop, options, LOCAL);
    let (_, v) = post(&s, "/v1/passkeys/login/finish", signed);
    assert_refused(&v, "unknown-credential");
    assert_eq!(login(&s, &mut phone, "Alice", LOCAL)["ok"], true);
    assert_eq!(list(&s, "Alice")[0]["id"], phone_id.as_str());

    // The audit log has the enrolments, the removal and the failure.
    let audit = audit_kinds(&s, "Alice").join("\n");
    assert_eq!(
        audit.lines().filter(|l| l.starts_with("factor-enrolled")).count(),
        2,
        "{audit}"
    );
    assert!(audit.contains("factor-removed"), "{audit}");
    assert!(audit.contains("second-factor-failed"), "{audit}");
    assert!(audit.contains("passkey"), "{audit}");
}

/// The authenticator refuses to sign (it holds none of the listed credentials).
fn key_sign_err(key: &mut ResidentPasskey, options: Value) -> bool {
    let rcr: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    key.do_authentication(origin(LOCAL), rcr).is_err()
}

#[test]
fn several_origins_and_a_wrong_origin() {
    let s = Server::start(
        "passkeys-origins",
        &[
            ("WIKIGUARD_ACCOUNTS_RP_ID", "example.org"),
            (
                "WIKIGUARD_ACCOUNTS_RP_ORIGINS",
                "https://en.example.org,https://de.example.org",
            ),
            ("WIKIGUARD_ACCOUNTS_RP_NAME", "Example Wikis"),
        ],
    );
    let mut key = ResidentPasskey::new();
    // Registered on one wiki of the farm, used on another.
    assert_eq!(
        register(&s, &mut key, "Alice", "Laptop", "https://de.example.org")["ok"],
        true
    );
    assert_eq!(login(&s, &mut key, "Alice", "https://en.example.org")["ok"], true);

    // A page on another origin under the same domain (not configured) is refused.
    let v = login(&s, &mut key, "Alice", "https://evil.example.org");
    assert_refused(&v, "wrong-origin");
    let v = register(
        &s,
        &mut ResidentPasskey::new(),
        "Alice",
        "Other",
        "https://evil.example.org",
    );
    assert_refused(&v, "wrong-origin");
    assert_eq!(list(&s, "Alice").len(), 1);
    let audit = audit_kinds(&s, "Alice").join("\n");
    assert!(audit.contains("wrong-origin"), "{audit}");
}

#[test]
fn a_sign_counter_that_goes_backwards_is_refused_and_audited() {
    let s = Server::start("passkeys-clone", &[]);
    let mut key = ResidentPasskey::new();
    assert_eq!(register(&s, &mut key, "Alice", "Laptop", LOCAL)["ok"], true);
    assert_eq!(login(&s, &mut key, "Alice", LOCAL)["ok"], true); // counter 1

    // Two sign-ins begin; the authenticator signs the first (counter 2) and the second
    // (counter 3). The second arrives first; the first then carries a counter below the
    // stored one, exactly what the server sees from a copy of the key that lags behind.
    let first = login_begin(&s, "Alice");
    let second = login_begin(&s, "Alice");
    let lagging = sign(&mut key, first, LOCAL);
    let current = sign(&mut key, second, LOCAL);
    assert_eq!(login_finish(&s, "Alice", current)["ok"], true);
    let v = login_finish(&s, "Alice", lagging);
    assert_refused(&v, "possible-clone");
    assert_eq!(v["suspected_clone"], true);

    // Flagged: listed as such, no longer offered, no longer counted as a factor.
    let keys = list(&s, "Alice");
    assert_eq!(keys[0]["suspected_clone"], true, "{keys:?}");
    let (_, v) = post(&s, "/v1/accounts/Alice/passkeys/login/begin", json!({}));
    assert_eq!(v["reason"], "no-credentials", "{v}");
    let (_, options) = post(&s, "/v1/passkeys/login/begin", json!({}));
    let signed = sign(&mut key, options, LOCAL);
    let (_, v) = post(&s, "/v1/passkeys/login/finish", signed);
    assert_refused(&v, "suspended");
    let (_, f) = s.call("GET", "/v1/accounts/Alice/factors?groups=sysop", Some(CHECK), None);
    assert_eq!(f["satisfied"], false, "{f}");

    let audit = audit_kinds(&s, "Alice").join("\n");
    assert!(audit.contains("passkey-clone-suspected"), "{audit}");
    assert!(audit.contains("possible-clone"), "{audit}");
    assert!(s.log().contains("possibly a cloned authenticator"), "{}", s.log());

    // Removing it and registering again works.
    let id = keys[0]["id"].as_str().unwrap();
    let (_, v) = s.call(
        "DELETE",
        &format!("/v1/accounts/Alice/passkeys/{id}"),
        Some(CHECK),
        None,
    );
    assert_eq!(v["ok"], true);
    let mut fresh = ResidentPasskey::new();
    assert_eq!(register(&s, &mut fresh, "Alice", "New laptop", LOCAL)["ok"], true);
    assert_eq!(login(&s, &mut fresh, "Alice", LOCAL)["ok"], true);
}
