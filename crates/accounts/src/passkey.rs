//! Passkeys (WebAuthn): registration and authentication ceremonies, with a known user or
//! without a username (discoverable credentials), on top of `webauthn-rs`.
//!
//! The caller keeps everything here as values in its store: a user's [`UserPasskeys`] (their
//! user handle and credentials, each with a name, created and last-used time, sign counter and
//! backup flags) and the pending ceremony between begin and finish ([`PendingRegistration`],
//! [`PendingLogin`], [`PendingDiscoverable`], each with an expiry). No clock: `now` (Unix
//! seconds) is an argument; the random user handle comes from the caller's [`RandomSource`].
//!
//! Registration asks for a **discoverable** (resident) credential: `webauthn-rs`'s plain
//! passkey registration asks for a non-discoverable one (`requireResidentKey: false`), so
//! [`RelyingParty::begin_registration`] sets `residentKey: "required"` in the options sent to
//! the browser. (The registration state does not depend on it: `webauthn-rs` does not check
//! residency at finish, and cannot, since browsers report it only as an unsigned hint.)
//!
//! Sign counters follow WebAuthn §7.2 step 21: when the authenticator's counter or the stored
//! one is non-zero, a counter that does not increase means a possibly cloned authenticator.
//! The assertion is refused ([`Refusal::PossibleClone`]) and the credential is flagged
//! (`suspected_clone`); a flagged credential is not offered or accepted again until the user
//! removes it and registers a new one. Synchronised passkeys usually report 0 always, which
//! is allowed.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
pub use webauthn_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse,
};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication, PasskeyRegistration, Url, Uuid,
    Webauthn, WebauthnBuilder, WebauthnError,
};
use webauthn_rs_proto::ResidentKeyRequirement;

use crate::RandomSource;

/// How long a ceremony may take between begin and finish (WebAuthn's recommended timeout).
pub const CEREMONY_SECS: u64 = 300;

/// Most credentials one user may register.
pub const MAX_CREDENTIALS: usize = 20;

/// A misconfigured relying party.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No origin is configured.
    #[error("rp_origins: at least one origin (https://wiki.example.org) is needed")]
    NoOrigin,
    /// An origin is not a URL.
    #[error("rp_origins: {0:?} is not a URL")]
    BadOrigin(String),
    /// `webauthn-rs` refused the settings (e.g. an origin outside `rp_id`).
    #[error("rp_id {rp_id:?} with these origins: {error} (each origin must be rp_id or a subdomain of it)")]
    Refused {
        /// The relying-party id.
        rp_id: String,
        /// What `webauthn-rs` said.
        error: String,
    },
}

/// Why a ceremony was refused (stable codes for the wire).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No ceremony was started, or it expired.
    #[error("the passkey ceremony expired or was not started; start again")]
    Expired,
    /// The user has no (usable) passkey.
    #[error("no passkey is registered")]
    NoCredentials,
    /// The credential is not one of this user's.
    #[error("this passkey is not registered for this account")]
    UnknownCredential,
    /// The credential is already registered.
    #[error("this passkey is already registered")]
    Duplicate,
    /// Too many passkeys.
    #[error("too many passkeys; remove one first")]
    TooMany,
    /// The credential was flagged as possibly cloned and is not accepted.
    #[error("this passkey was flagged as possibly cloned; remove it and register a new one")]
    Suspended,
    /// The sign counter did not increase: a possibly cloned authenticator.
    #[error("the passkey's signature counter went backwards: possibly a cloned authenticator")]
    PossibleClone,
    /// The browser's origin is not one of the configured origins.
    #[error("the passkey was used from an origin this wiki does not accept")]
    WrongOrigin,
    /// Anything else `webauthn-rs` refused (bad signature, wrong challenge, no user
    /// verification, malformed data…).
    #[error("the passkey response was refused: {0}")]
    Invalid(String),
}

impl Refusal {
    /// The stable reason code (`expired`, `no-credentials`, `unknown-credential`, `duplicate`,
    /// `too-many`, `suspended`, `possible-clone`, `wrong-origin`, `invalid`).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Expired => "expired",
            Refusal::NoCredentials => "no-credentials",
            Refusal::UnknownCredential => "unknown-credential",
            Refusal::Duplicate => "duplicate",
            Refusal::TooMany => "too-many",
            Refusal::Suspended => "suspended",
            Refusal::PossibleClone => "possible-clone",
            Refusal::WrongOrigin => "wrong-origin",
            Refusal::Invalid(_) => "invalid",
        }
    }
}

fn refusal(e: WebauthnError) -> Refusal {
    match e {
        WebauthnError::CredentialPossibleCompromise => Refusal::PossibleClone,
        WebauthnError::InvalidRPOrigin => Refusal::WrongOrigin,
        WebauthnError::MismatchedChallenge => Refusal::Expired,
        other => Refusal::Invalid(other.to_string()),
    }
}

/// A registered credential.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredPasskey {
    /// The credential id, base64url without padding (as browsers show it).
    pub id: String,
    /// The name the user gave it ("Laptop").
    pub name: String,
    /// Unix time of registration.
    pub created: u64,
    /// Unix time of the last successful sign-in, if any.
    pub last_used: Option<u64>,
    /// The credential may be synchronised (backed up) to other devices (WebAuthn BE flag).
    pub backup_eligible: bool,
    /// The credential is currently backed up (WebAuthn BS flag); may change over time.
    pub backed_up: bool,
    /// The last signature counter seen (0 for most synchronised passkeys).
    pub sign_count: u32,
    /// A non-increasing counter was seen: refused until removed.
    pub suspected_clone: bool,
    /// The credential itself (public key, counter, flags), as `webauthn-rs` keeps it.
    pub passkey: Passkey,
}

impl StoredPasskey {
    /// Refreshes the counter and backup flags from `webauthn-rs`'s credential (read through its
    /// stable serialised form: it offers no accessors without `danger-credential-internals`).
    fn refresh_flags(&mut self) {
        if let Ok(v) = serde_json::to_value(&self.passkey) {
            let cred = &v["cred"];
            self.backup_eligible = cred["backup_eligible"].as_bool().unwrap_or(self.backup_eligible);
            self.backed_up = cred["backup_state"].as_bool().unwrap_or(self.backed_up);
            self.sign_count = cred["counter"]
                .as_u64()
                .and_then(|c| u32::try_from(c).ok())
                .unwrap_or(self.sign_count);
        }
    }
}

/// One user's passkeys and user handle (the opaque id the authenticator stores with a
/// discoverable credential and returns on sign-in).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UserPasskeys {
    /// The WebAuthn user handle; fixed at the first registration.
    pub handle: Option<Uuid>,
    /// The credentials, oldest first.
    pub credentials: Vec<StoredPasskey>,
}

impl UserPasskeys {
    /// Credentials that may be used to sign in (not flagged as cloned).
    pub fn usable(&self) -> impl Iterator<Item = &StoredPasskey> {
        self.credentials.iter().filter(|c| !c.suspected_clone)
    }

    /// Removes the credential `id`; whether it was there.
    pub fn remove(&mut self, id: &str) -> bool {
        let before = self.credentials.len();
        self.credentials.retain(|c| c.id != id);
        self.credentials.len() != before
    }

    fn find_mut(&mut self, raw_id: &[u8]) -> Option<&mut StoredPasskey> {
        let id = URL_SAFE_NO_PAD.encode(raw_id);
        self.credentials.iter_mut().find(|c| c.id == id)
    }
}

/// A registration between begin and finish.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingRegistration {
    /// The name the credential will get.
    pub name: String,
    /// The user handle the options carry (new users get theirs here).
    pub handle: Uuid,
    /// Unix time after which finish is refused.
    pub expires_at: u64,
    state: PasskeyRegistration,
}

/// A sign-in of a known user between begin and finish.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    /// Unix time after which finish is refused.
    pub expires_at: u64,
    state: PasskeyAuthentication,
}

/// A sign-in without a username between begin and finish.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingDiscoverable {
    /// Unix time after which finish is refused.
    pub expires_at: u64,
    state: DiscoverableAuthentication,
}

/// A successful sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// The credential used.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The user verified themselves to the authenticator (PIN, biometrics).
    pub user_verified: bool,
}

/// A failed sign-in: why, and the credential it concerned when known (so a possible clone can
/// be flagged and audited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    /// Why.
    pub refusal: Refusal,
    /// The credential's id when the response named one of the user's credentials.
    pub credential: Option<String>,
}

impl From<Refusal> for Failed {
    fn from(refusal: Refusal) -> Self {
        Failed {
            refusal,
            credential: None,
        }
    }
}

/// The relying party: the wiki (or wiki farm) passkeys are bound to.
pub struct RelyingParty {
    webauthn: Webauthn,
}

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelyingParty")
            .field("origins", &self.webauthn.get_allowed_origins())
            .finish()
    }
}

/// The challenge of a begin answer, as a key to find its pending state at finish (base64url,
/// no padding).
pub fn request_challenge(rcr: &RequestChallengeResponse) -> String {
    URL_SAFE_NO_PAD.encode(&rcr.public_key.challenge)
}

/// The challenge a browser's response signed (from its client data), in the same form as
/// [`request_challenge`]; `None` when the client data is not readable.
pub fn response_challenge(response: &PublicKeyCredential) -> Option<String> {
    let data: serde_json::Value = serde_json::from_slice(&response.response.client_data_json).ok()?;
    let text = data.get("challenge")?.as_str()?.trim_end_matches('=');
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

/// The user handle a discoverable sign-in's response carries.
pub fn response_handle(response: &PublicKeyCredential) -> Option<Uuid> {
    response.get_user_unique_id().and_then(|b| Uuid::from_slice(b).ok())
}

impl RelyingParty {
    /// A relying party for `rp_id` (the registrable domain, `example.org`) accepting
    /// ceremonies from each of `origins` (`https://en.example.org`, …).
    pub fn new(rp_id: &str, origins: &[String], name: &str) -> Result<RelyingParty, ConfigError> {
        let parse = |o: &String| Url::parse(o).map_err(|_| ConfigError::BadOrigin(o.clone()));
        let first = parse(origins.first().ok_or(ConfigError::NoOrigin)?)?;
        let refused = |e: WebauthnError| ConfigError::Refused {
            rp_id: rp_id.to_string(),
            error: e.to_string(),
        };
        let mut builder = WebauthnBuilder::new(rp_id, &first).map_err(refused)?;
        for o in origins.iter().skip(1) {
            builder = builder.append_allowed_origin(&parse(o)?);
        }
        if !name.is_empty() {
            builder = builder.rp_name(name);
        }
        let webauthn = builder.build().map_err(refused)?;
        Ok(RelyingParty { webauthn })
    }

    /// Begins registering a discoverable passkey named `name` for `user` (`existing` are the
    /// user's passkeys, excluded so one authenticator is not registered twice). A user's
    /// first registration draws their user handle from `rng`.
    pub fn begin_registration(
        &self,
        user: &str,
        existing: &UserPasskeys,
        name: &str,
        rng: &mut impl RandomSource,
        now: u64,
    ) -> Result<(CreationChallengeResponse, PendingRegistration), Refusal> {
        if existing.credentials.len() >= MAX_CREDENTIALS {
            return Err(Refusal::TooMany);
        }
        let handle = existing.handle.unwrap_or_else(|| {
            let mut b = [0u8; 16];
            rng.fill_bytes(&mut b);
            // A random (version 4) UUID.
            b[6] = (b[6] & 0x0f) | 0x40;
            b[8] = (b[8] & 0x3f) | 0x80;
            Uuid::from_bytes(b)
        });
        let exclude: Vec<_> = existing
            .credentials
            .iter()
            .map(|c| c.passkey.cred_id().clone())
            .collect();
        let (mut ccr, state) = self
            .webauthn
            .start_passkey_registration(handle, user, user, Some(exclude))
            .map_err(refusal)?;
        // Ask for a discoverable credential (see the module documentation).
        if let Some(sel) = ccr.public_key.authenticator_selection.as_mut() {
            sel.require_resident_key = true;
            sel.resident_key = Some(ResidentKeyRequirement::Required);
        }
        Ok((
            ccr,
            PendingRegistration {
                name: name.to_string(),
                handle,
                expires_at: now + CEREMONY_SECS,
                state,
            },
        ))
    }

    /// Finishes a registration: verifies the browser's response and adds the credential to
    /// `passkeys` (setting its user handle on a first registration). Returns the new id.
    pub fn finish_registration(
        &self,
        passkeys: &mut UserPasskeys,
        pending: &PendingRegistration,
        response: &RegisterPublicKeyCredential,
        now: u64,
    ) -> Result<String, Refusal> {
        if now > pending.expires_at || passkeys.handle.is_some_and(|h| h != pending.handle) {
            return Err(Refusal::Expired);
        }
        if passkeys.credentials.len() >= MAX_CREDENTIALS {
            return Err(Refusal::TooMany);
        }
        let passkey = self
            .webauthn
            .finish_passkey_registration(response, &pending.state)
            .map_err(refusal)?;
        let id = URL_SAFE_NO_PAD.encode(passkey.cred_id());
        if passkeys.credentials.iter().any(|c| c.id == id) {
            return Err(Refusal::Duplicate);
        }
        let mut stored = StoredPasskey {
            id: id.clone(),
            name: pending.name.clone(),
            created: now,
            last_used: None,
            backup_eligible: false,
            backed_up: false,
            sign_count: 0,
            suspected_clone: false,
            passkey,
        };
        stored.refresh_flags();
        passkeys.handle = Some(pending.handle);
        passkeys.credentials.push(stored);
        Ok(id)
    }

    /// Begins a sign-in of a user whose name is known, offering their usable passkeys.
    pub fn begin_login(
        &self,
        passkeys: &UserPasskeys,
        now: u64,
    ) -> Result<(RequestChallengeResponse, PendingLogin), Refusal> {
        let creds: Vec<Passkey> = passkeys.usable().map(|c| c.passkey.clone()).collect();
        if creds.is_empty() {
            return Err(Refusal::NoCredentials);
        }
        let (rcr, state) = self.webauthn.start_passkey_authentication(&creds).map_err(refusal)?;
        Ok((
            rcr,
            PendingLogin {
                expires_at: now + CEREMONY_SECS,
                state,
            },
        ))
    }

    /// Finishes a sign-in of a known user. On success the credential's counter, backup flags
    /// and last-used time are updated in `passkeys`; on a possible clone it is flagged there.
    /// Either way the caller stores `passkeys` again.
    pub fn finish_login(
        &self,
        passkeys: &mut UserPasskeys,
        pending: &PendingLogin,
        response: &PublicKeyCredential,
        now: u64,
    ) -> Result<SignedIn, Failed> {
        if now > pending.expires_at {
            return Err(Refusal::Expired.into());
        }
        let result = self.webauthn.finish_passkey_authentication(response, &pending.state);
        apply(passkeys, response, result, now)
    }

    /// Begins a sign-in without a username: the browser offers the user's discoverable
    /// passkeys for this site (the options carry `mediation: "conditional"`, for the login
    /// form's autofill; a page with a "Sign in with a passkey" button may drop it).
    pub fn begin_discoverable(&self, now: u64) -> Result<(RequestChallengeResponse, PendingDiscoverable), Refusal> {
        let (rcr, state) = self.webauthn.start_discoverable_authentication().map_err(refusal)?;
        Ok((
            rcr,
            PendingDiscoverable {
                expires_at: now + CEREMONY_SECS,
                state,
            },
        ))
    }

    /// Finishes a sign-in without a username, once the caller has found the user by the
    /// response's user handle ([`response_handle`]) and loaded their `passkeys`.
    pub fn finish_discoverable(
        &self,
        passkeys: &mut UserPasskeys,
        pending: PendingDiscoverable,
        response: &PublicKeyCredential,
        now: u64,
    ) -> Result<SignedIn, Failed> {
        if now > pending.expires_at {
            return Err(Refusal::Expired.into());
        }
        if passkeys.handle.is_none() || response_handle(response) != passkeys.handle {
            return Err(Refusal::UnknownCredential.into());
        }
        let Some(cred) = passkeys.find_mut(response.get_credential_id()) else {
            return Err(Refusal::UnknownCredential.into());
        };
        if cred.suspected_clone {
            return Err(Failed {
                refusal: Refusal::Suspended,
                credential: Some(cred.id.clone()),
            });
        }
        let key = DiscoverableKey::from(&cred.passkey);
        let result = self
            .webauthn
            .finish_discoverable_authentication_v2(response, pending.state, &key);
        apply(passkeys, response, result, now)
    }
}

/// Applies an authentication result to the user's credentials.
fn apply(
    passkeys: &mut UserPasskeys,
    response: &PublicKeyCredential,
    result: Result<webauthn_rs::prelude::AuthenticationResult, WebauthnError>,
    now: u64,
) -> Result<SignedIn, Failed> {
    let cred = passkeys.find_mut(response.get_credential_id());
    match (result, cred) {
        (Ok(_), None) => Err(Refusal::UnknownCredential.into()),
        (Ok(res), Some(cred)) => {
            if cred.suspected_clone {
                return Err(Failed {
                    refusal: Refusal::Suspended,
                    credential: Some(cred.id.clone()),
                });
            }
            // webauthn-rs compares the counter with the copy of the credential taken at begin;
            // compare with the stored one too, or two ceremonies begun together (or a clone
            // used between begin and finish) would slip through.
            let counter = res.counter();
            if (counter > 0 || cred.sign_count > 0) && counter <= cred.sign_count {
                cred.suspected_clone = true;
                return Err(Failed {
                    refusal: Refusal::PossibleClone,
                    credential: Some(cred.id.clone()),
                });
            }
            cred.passkey.update_credential(&res);
            cred.refresh_flags();
            cred.last_used = Some(now);
            Ok(SignedIn {
                id: cred.id.clone(),
                name: cred.name.clone(),
                user_verified: res.user_verified(),
            })
        }
        (Err(e), cred) => {
            let refusal = refusal(e);
            let credential = cred.map(|c| {
                if refusal == Refusal::PossibleClone {
                    c.suspected_clone = true;
                }
                c.id.clone()
            });
            Err(Failed { refusal, credential })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::TestRandom;

    fn rp() -> RelyingParty {
        RelyingParty::new(
            "example.org",
            &["https://en.example.org".into(), "https://de.example.org".into()],
            "Example Wiki",
        )
        .unwrap()
    }

    #[test]
    fn config_is_checked() {
        assert!(matches!(
            RelyingParty::new("example.org", &[], "x"),
            Err(ConfigError::NoOrigin)
        ));
        assert!(matches!(
            RelyingParty::new("example.org", &["not a url".into()], "x"),
            Err(ConfigError::BadOrigin(_))
        ));
        assert!(RelyingParty::new("example.org", &["https://evil.test".into()], "x").is_err());
        assert!(format!("{:?}", rp()).contains("de.example.org"));
    }

    #[test]
    fn registration_asks_for_a_discoverable_credential_and_a_stable_handle() {
        let rp = rp();
        let mut rng = TestRandom::new(1);
        let (ccr, pending) = rp
            .begin_registration("Alice", &UserPasskeys::default(), "Laptop", &mut rng, 1000)
            .unwrap();
        let v = serde_json::to_value(&ccr).unwrap();
        let sel = &v["publicKey"]["authenticatorSelection"];
        assert_eq!(sel["residentKey"], "required", "{v}");
        assert_eq!(sel["requireResidentKey"], true);
        assert_eq!(sel["userVerification"], "required");
        assert_eq!(v["publicKey"]["rp"]["id"], "example.org");
        assert_eq!(pending.expires_at, 1000 + CEREMONY_SECS);
        assert_eq!(pending.handle.get_version_num(), 4);
        // The pending state survives the store (JSON).
        let back: PendingRegistration = serde_json::from_value(serde_json::to_value(&pending).unwrap()).unwrap();
        assert_eq!(back.handle, pending.handle);
        // A known user keeps their handle.
        let existing = UserPasskeys {
            handle: Some(pending.handle),
            credentials: vec![],
        };
        let (_, again) = rp
            .begin_registration("Alice", &existing, "Phone", &mut rng, 1000)
            .unwrap();
        assert_eq!(again.handle, pending.handle);
    }

    #[test]
    fn no_credentials_no_login_and_challenges_are_keys() {
        let rp = rp();
        assert_eq!(
            rp.begin_login(&UserPasskeys::default(), 0).unwrap_err(),
            Refusal::NoCredentials
        );
        let (rcr, pending) = rp.begin_discoverable(5).unwrap();
        assert_eq!(pending.expires_at, 5 + CEREMONY_SECS);
        let key = request_challenge(&rcr);
        assert_eq!(URL_SAFE_NO_PAD.decode(&key).unwrap().len(), 32);
        let v = serde_json::to_value(&rcr).unwrap();
        assert_eq!(v["publicKey"]["challenge"], key.as_str());
        assert!(v["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(|a| a.is_empty()));
    }

    #[test]
    fn refusal_codes_are_stable() {
        assert_eq!(
            refusal(WebauthnError::CredentialPossibleCompromise).code(),
            "possible-clone"
        );
        assert_eq!(refusal(WebauthnError::InvalidRPOrigin).code(), "wrong-origin");
        assert_eq!(Refusal::Invalid("x".into()).code(), "invalid");
        let mut u = UserPasskeys::default();
        assert!(!u.remove("nope"));
        assert_eq!(u.usable().count(), 0);
    }
}
