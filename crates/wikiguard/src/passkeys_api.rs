//! Passkeys (WebAuthn) over HTTP (check token, for MediaWiki): registration, sign-in with a
//! username or without one (discoverable credentials), listing and removal. Ceremonies are
//! `wikiguard_accounts::passkey`'s; state is the store's, written with compare-and-swap:
//!
//! | user | kind | value |
//! |---|---|---|
//! | the account | `passkeys` | the user handle and credentials ([`UserPasskeys`]) |
//! | the account | `passkey-reg` | the registration between begin and finish (one at a time, expires) |
//! | the account | `passkey-auth` | sign-ins between begin and finish, by challenge (a few at a time, expire) |
//! | `#passkeys` | `handle:<uuid>` | `{"user": NAME}`: whose user handle this is (for sign-in without a username) |
//! | `#passkeys` | `discoverable` | sign-ins without a username between begin and finish, by challenge |
//!
//! `#passkeys` cannot be a MediaWiki user name (`#` is not allowed in titles), so the
//! directory never collides with an account. A finish finds its pending ceremony by the
//! challenge the browser signed (in its client data), so several tabs may sign in at once and
//! a ceremony is used once.

use std::collections::BTreeMap;
use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use wikiguard_accounts::audit::EventKind;
use wikiguard_accounts::passkey::{
    self, Failed, PendingDiscoverable, PendingLogin, PendingRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, RelyingParty, UserPasskeys,
};
use wikiguard_accounts::policy::FactorKind;

use crate::accounts_api::{accounts, answer, blocking, door, internal, ip_of, unix_now, Accounts};
use crate::server::{json_body, require_check, ApiError, AppState};

const PASSKEYS: &str = "passkeys";
const REGISTRATION: &str = "passkey-reg";
const LOGINS: &str = "passkey-auth";
const DIRECTORY: &str = "#passkeys";
const DISCOVERABLE: &str = "discoverable";
/// Pending sign-ins kept per user, and without a username (the oldest are dropped).
const MAX_PENDING_USER: usize = 8;
const MAX_PENDING_DISCOVERABLE: usize = 1000;

/// The passkey routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/accounts/{user}/passkeys", get(list))
        .route("/v1/accounts/{user}/passkeys/{id}", delete(remove))
        .route("/v1/accounts/{user}/passkeys/register/begin", post(register_begin))
        .route("/v1/accounts/{user}/passkeys/register/finish", post(register_finish))
        .route("/v1/accounts/{user}/passkeys/login/begin", post(login_begin))
        .route("/v1/accounts/{user}/passkeys/login/finish", post(login_finish))
        .route("/v1/passkeys/login/begin", post(discoverable_begin))
        .route("/v1/passkeys/login/finish", post(discoverable_finish))
}

/// Whether `user` has a usable passkey (for `/v1/accounts/{user}/factors`).
pub(crate) fn has_passkey(acc: &Accounts, user: &str) -> Result<bool, ApiError> {
    Ok(load::<UserPasskeys>(acc, user, PASSKEYS)?.1.usable().next().is_some())
}

fn relying_party(acc: &Accounts) -> Result<RelyingParty, ApiError> {
    let c = acc.config();
    RelyingParty::new(&c.rp_id, &c.rp_origins, &c.rp_name).map_err(|e| {
        tracing::error!(error = %e, "accounts: passkeys are misconfigured");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "passkeys_unavailable",
            format!("passkeys are misconfigured: {e}"),
        )
    })
}

/// A state value and its version (0 and the default when there is none).
fn load<T: DeserializeOwned + Default>(acc: &Accounts, user: &str, kind: &str) -> Result<(i64, T), ApiError> {
    match acc.store().account_state(user, kind)? {
        Some(v) => Ok((
            v.version,
            serde_json::from_value(v.value).map_err(|e| internal("reading passkey state", e))?,
        )),
        None => Ok((0, T::default())),
    }
}

/// Compare-and-swap write; `false` when someone else wrote first.
fn save<T: Serialize>(acc: &Accounts, user: &str, kind: &str, version: i64, value: &T) -> Result<bool, ApiError> {
    let v = serde_json::to_value(value).map_err(|e| internal("encoding passkey state", e))?;
    Ok(acc.store().put_account_state(user, kind, version, &v)?.is_some())
}

fn conflict() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "conflict",
        "the passkeys changed at the same time; try again",
    )
}

fn refused(reason: &str, message: impl std::fmt::Display) -> Response {
    answer(json!({"ok": false, "reason": reason, "message": message.to_string()}))
}

/// Pending ceremonies by challenge, each with its expiry.
type Pending<T> = BTreeMap<String, T>;

trait Expiring {
    fn expires_at(&self) -> u64;
}
impl Expiring for PendingLogin {
    fn expires_at(&self) -> u64 {
        self.expires_at
    }
}
impl Expiring for PendingDiscoverable {
    fn expires_at(&self) -> u64 {
        self.expires_at
    }
}

/// Adds a pending ceremony, dropping expired ones and the oldest beyond `max`.
fn push_pending<T: Expiring + Serialize + DeserializeOwned>(
    acc: &Accounts,
    user: &str,
    kind: &str,
    challenge: &str,
    item: T,
    max: usize,
    now: u64,
) -> Result<(), ApiError> {
    let mut item = Some(item);
    for _ in 0..5 {
        let (version, mut map): (i64, Pending<T>) = load(acc, user, kind)?;
        map.retain(|_, p| p.expires_at() >= now);
        while map.len() >= max {
            let oldest = map.iter().min_by_key(|(_, p)| p.expires_at()).map(|(k, _)| k.clone());
            match oldest {
                Some(k) => map.remove(&k),
                None => break,
            };
        }
        let Some(it) = item.take() else { break };
        map.insert(challenge.to_string(), it);
        if save(acc, user, kind, version, &map)? {
            return Ok(());
        }
        item = map.remove(challenge);
    }
    Err(conflict())
}

/// Takes (removes) the pending ceremony for `challenge`: a ceremony is finished at most once.
fn take_pending<T: Serialize + DeserializeOwned>(
    acc: &Accounts,
    user: &str,
    kind: &str,
    challenge: &str,
) -> Result<Option<T>, ApiError> {
    for _ in 0..5 {
        let (version, mut map): (i64, Pending<T>) = load(acc, user, kind)?;
        let Some(item) = map.remove(challenge) else {
            return Ok(None);
        };
        if save(acc, user, kind, version, &map)? {
            return Ok(Some(item));
        }
    }
    Err(conflict())
}

/// The browser's credential: the body itself, or its `credential` member.
fn credential<T: DeserializeOwned>(body: &Value) -> Result<T, ApiError> {
    let v = body.get("credential").unwrap_or(body);
    serde_json::from_value(v.clone()).map_err(|e| {
        ApiError::bad(
            "invalid_credential",
            format!("the body must be the browser's credential JSON: {e}"),
        )
    })
}

fn list_entry(c: &passkey::StoredPasskey) -> Value {
    json!({
        "id": c.id,
        "name": c.name,
        "created": c.created,
        "last_used": c.last_used,
        "backup_eligible": c.backup_eligible,
        "backed_up": c.backed_up,
        "suspected_clone": c.suspected_clone,
    })
}

async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    UrlPath(user): UrlPath<String>,
) -> Result<Response, ApiError> {
    let (acc, user) = door(&state, &headers, &user)?;
    blocking(move || {
        let (_, keys): (_, UserPasskeys) = load(&acc, &user, PASSKEYS)?;
        Ok(answer(
            json!({"passkeys": keys.credentials.iter().map(list_entry).collect::<Vec<_>>()}),
        ))
    })
    .await
}

async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    UrlPath((user, id)): UrlPath<(String, String)>,
) -> Result<Response, ApiError> {
    let (acc, user) = door(&state, &headers, &user)?;
    let ip = ip_of(&headers, &Value::Null);
    blocking(move || {
        for _ in 0..5 {
            let (version, mut keys): (_, UserPasskeys) = load(&acc, &user, PASSKEYS)?;
            if !keys.remove(&id) {
                return Ok(answer(json!({"ok": false, "reason": "unknown-credential"})));
            }
            if save(&acc, &user, PASSKEYS, version, &keys)? {
                acc.audit(
                    unix_now(),
                    &user,
                    ip,
                    EventKind::FactorRemoved {
                        factor: FactorKind::Passkey,
                    },
                );
                return Ok(answer(json!({"ok": true, "remaining": keys.credentials.len()})));
            }
        }
        Err(conflict())
    })
    .await
}

async fn register_begin(
    State(state): State<AppState>,
    headers: HeaderMap,
    UrlPath(user): UrlPath<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (acc, user) = door(&state, &headers, &user)?;
    let body = json_body(body)?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("Passkey")
        .chars()
        .take(100)
        .collect::<String>();
    blocking(move || {
        let rp = relying_party(&acc)?;
        let now = unix_now();
        let (_, keys): (_, UserPasskeys) = load(&acc, &user, PASSKEYS)?;
        let mut rng = crate::config::os_random;
        let (ccr, pending) = match rp.begin_registration(&user, &keys, &name, &mut rng, now) {
            Ok(x) => x,
            Err(r) => return Err(ApiError::new(StatusCode::CONFLICT, r.code(), r.to_string())),
        };
        // One registration at a time: a new begin replaces an unfinished one.
        let _ = acc.store().delete_account_state(&user, REGISTRATION)?;
        if !save(&acc, &user, REGISTRATION, 0, &pending)? {
            return Err(conflict());
        }
        Ok(answer(
            serde_json::to_value(&ccr).map_err(|e| internal("encoding options", e))?,
        ))
    })
    .await
}

async fn register_finish(
    State(state): State<AppState>,
    headers: HeaderMap,
    UrlPath(user): UrlPath<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (acc, user) = door(&state, &headers, &user)?;
    let body = json_body(body)?;
    let ip = ip_of(&headers, &body);
    let response: RegisterPublicKeyCredential = credential(&body)?;
    blocking(move || {
        let rp = relying_party(&acc)?;
        let now = unix_now();
        let Some(pending) = acc.store().account_state(&user, REGISTRATION)? else {
            return Ok(refused("expired", passkey::Refusal::Expired));
        };
        let pending: PendingRegistration =
            serde_json::from_value(pending.value).map_err(|e| internal("reading passkey state", e))?;
        // Used once: a finish consumes the ceremony whatever its outcome (of two racing
        // finishes, only the one that deletes it goes on).
        if !acc.store().delete_account_state(&user, REGISTRATION)? {
            return Ok(refused("expired", passkey::Refusal::Expired));
        }
        for _ in 0..5 {
            let (version, mut keys): (_, UserPasskeys) = load(&acc, &user, PASSKEYS)?;
            let first = keys.handle.is_none();
            let id = match rp.finish_registration(&mut keys, &pending, &response, now) {
                Ok(id) => id,
                Err(r) => {
                    acc.audit(
                        now,
                        &user,
                        ip,
                        EventKind::SecondFactorFailed {
                            factor: FactorKind::Passkey,
                            reason: format!("registration: {}", r.code()),
                        },
                    );
                    return Ok(refused(r.code(), &r));
                }
            };
            if first {
                // The directory entry first: a handle is never stored without its owner.
                let kind = format!("handle:{}", pending.handle);
                let owner = json!({ "user": user });
                let existing = acc.store().account_state(DIRECTORY, &kind)?;
                match existing {
                    Some(v) if v.value != owner => {
                        return Err(internal("registering a passkey", "user handle collision"))
                    }
                    Some(_) => {}
                    None => {
                        if acc.store().put_account_state(DIRECTORY, &kind, 0, &owner)?.is_none() {
                            return Err(conflict());
                        }
                    }
                }
            }
            if save(&acc, &user, PASSKEYS, version, &keys)? {
                acc.audit(
                    now,
                    &user,
                    ip,
                    EventKind::FactorEnrolled {
                        factor: FactorKind::Passkey,
                        imported: false,
                    },
                );
                return Ok(answer(json!({"ok": true, "id": id})));
            }
        }
        Err(conflict())
    })
    .await
}

async fn login_begin(
    State(state): State<AppState>,
    headers: HeaderMap,
    UrlPath(user): UrlPath<String>,
) -> Result<Response, ApiError> {
    let (acc, user) = door(&state, &headers, &user)?;
    blocking(move || {
        let rp = relying_party(&acc)?;
        let now = unix_now();
        let (_, keys): (_, UserPasskeys) = load(&acc, &user, PASSKEYS)?;
        let (rcr, pending) = match rp.begin_login(&keys, now) {
            Ok(x) => x,
            Err(r) => return Ok(refused(r.code(), &r)),
        };
        let challenge = passkey::request_challenge(&rcr);
        push_pending(&acc, &user, LOGINS, &challenge, pending, MAX_PENDING_USER, now)?;
        Ok(answer(
            serde_json::to_value(&rcr).map_err(|e| internal("encoding options", e))?,
        ))
    })
    .await
}

/// Records a failed sign-in (and a suspected clone) in the audit log and the throttle.
fn failed(acc: &Accounts, user: &str, ip: Option<IpAddr>, f: &Failed, now: u64) -> Response {
    acc.audit(
        now,
        user,
        ip,
        EventKind::SecondFactorFailed {
            factor: FactorKind::Passkey,
            reason: f.refusal.code().into(),
        },
    );
    if f.refusal == passkey::Refusal::PossibleClone {
        acc.audit(
            now,
            user,
            ip,
            EventKind::PasskeyCloneSuspected {
                credential: f.credential.clone().unwrap_or_default(),
            },
        );
        tracing::warn!(user, credential = ?f.credential, "passkey counter went backwards: possibly a cloned authenticator; credential flagged");
    }
    answer(
        json!({"ok": false, "reason": f.refusal.code(), "message": f.refusal.to_string(),
        "suspected_clone": f.refusal == passkey::Refusal::PossibleClone}),
    )
}

async fn login_finish(
    State(state): State<AppState>,
    headers: HeaderMap,
    UrlPath(user): UrlPath<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (acc, user) = door(&state, &headers, &user)?;
    let body = json_body(body)?;
    let ip = ip_of(&headers, &body);
    let response: PublicKeyCredential = credential(&body)?;
    blocking(move || {
        let rp = relying_party(&acc)?;
        let now = unix_now();
        let Some(challenge) = passkey::response_challenge(&response) else {
            return Ok(refused("invalid", "the response carries no readable client data"));
        };
        let Some(pending) = take_pending::<PendingLogin>(&acc, &user, LOGINS, &challenge)? else {
            return Ok(refused("expired", passkey::Refusal::Expired));
        };
        finish_and_save(&acc, &user, ip, now, |keys| {
            rp.finish_login(keys, &pending, &response, now)
        })
    })
    .await
}

/// Runs a finish against the user's credentials and stores them (counter, flags, last use, a
/// clone flag) whatever the outcome; answers for the wire.
fn finish_and_save(
    acc: &Accounts,
    user: &str,
    ip: Option<IpAddr>,
    now: u64,
    mut finish: impl FnMut(&mut UserPasskeys) -> Result<passkey::SignedIn, Failed>,
) -> Result<Response, ApiError> {
    for _ in 0..5 {
        let (version, mut keys): (_, UserPasskeys) = load(acc, user, PASSKEYS)?;
        let outcome = finish(&mut keys);
        let changed = match &outcome {
            Ok(_) => true,
            Err(f) => f.refusal == passkey::Refusal::PossibleClone,
        };
        if changed && !save(acc, user, PASSKEYS, version, &keys)? {
            continue;
        }
        return Ok(match outcome {
            Ok(s) => {
                answer(json!({"ok": true, "user": user, "id": s.id, "name": s.name, "user_verified": s.user_verified}))
            }
            Err(f) => failed(acc, user, ip, &f, now),
        });
    }
    Err(conflict())
}

async fn discoverable_begin(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    require_check(&state, &headers)?;
    let acc = accounts(&state)?;
    blocking(move || {
        let rp = relying_party(&acc)?;
        let now = unix_now();
        let (rcr, pending) = rp
            .begin_discoverable(now)
            .map_err(|e| internal("starting a passkey sign-in", e))?;
        let challenge = passkey::request_challenge(&rcr);
        push_pending(
            &acc,
            DIRECTORY,
            DISCOVERABLE,
            &challenge,
            pending,
            MAX_PENDING_DISCOVERABLE,
            now,
        )?;
        Ok(answer(
            serde_json::to_value(&rcr).map_err(|e| internal("encoding options", e))?,
        ))
    })
    .await
}

async fn discoverable_finish(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_check(&state, &headers)?;
    let acc = accounts(&state)?;
    let body = json_body(body)?;
    let ip = ip_of(&headers, &body);
    let response: PublicKeyCredential = credential(&body)?;
    blocking(move || {
        let rp = relying_party(&acc)?;
        let now = unix_now();
        let Some(challenge) = passkey::response_challenge(&response) else {
            return Ok(refused("invalid", "the response carries no readable client data"));
        };
        let Some(pending) = take_pending::<PendingDiscoverable>(&acc, DIRECTORY, DISCOVERABLE, &challenge)? else {
            return Ok(refused("expired", passkey::Refusal::Expired));
        };
        let Some(handle) = passkey::response_handle(&response) else {
            return Ok(refused(
                "no-user-handle",
                "the passkey did not say whose it is (not a discoverable credential)",
            ));
        };
        let owner = acc.store().account_state(DIRECTORY, &format!("handle:{handle}"))?;
        let Some(user) = owner.and_then(|v| v.value.get("user").and_then(Value::as_str).map(str::to_string)) else {
            return Ok(refused("unknown-credential", passkey::Refusal::UnknownCredential));
        };
        finish_and_save(&acc, &user, ip, now, |keys| {
            rp.finish_discoverable(keys, pending.clone(), &response, now)
        })
    })
    .await
}
