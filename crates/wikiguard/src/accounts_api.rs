//! The accounts door over HTTP (check token, for MediaWiki): TOTP enrolment and
//! verification, recovery codes, the second-factor policy, password checks against the
//! breach list, login throttling, and the audit log. Decisions are `wikiguard-accounts`';
//! state is the store's (`account_state`, compare-and-swap, so a code is used once even when
//! two logins race).

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use wikiguard_accounts::audit::{Event, EventKind, IpPseudonymiser};
use wikiguard_accounts::device::{DeviceHistory, DeviceNotifier, LoginNotice};
use wikiguard_accounts::keys::HmacKey;
use wikiguard_accounts::policy::{FactorKind, PasswordPolicy, SecondFactorPolicy};
use wikiguard_accounts::recovery::{self, StoredCodes};
use wikiguard_accounts::secretbox::{Keyring, NamedKey};
use wikiguard_accounts::throttle::{InMemoryCounters, Throttle, ThrottleConfig};
use wikiguard_accounts::totp::{self, PendingEnrollment, TotpParams, TotpState, VerifyConfig, VerifyOutcome};
use wikiguard_store::{NewAuditEvent, Store};

pub(crate) use crate::server::{blocking, internal};
use crate::server::{json_body, require_check, ApiError, AppState};
use wikiguard_accounts::keys::to_hex;

/// `[accounts]`: keys and policy of the accounts door.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsConfig {
    /// Shown in authenticator apps (`otpauth://totp/ISSUER:user`).
    pub issuer: String,
    /// A file of the door's keys (TOTP secret keys, recovery-code and IP-pseudonym keys);
    /// generated, mode 0600, on first start when missing. Empty: `<data_dir>/accounts_keys.json`.
    pub keys_file: String,
    /// Accepted TOTP steps on each side of now (OATHAuth accepts 4; every step widens a
    /// guesser's odds).
    pub totp_window: u64,
    /// Wrong TOTP codes before the factor locks for a while.
    pub totp_max_failures: u32,
    /// Groups that must have a second factor.
    pub required_groups: Vec<String>,
    /// Minimum password length for everyone (NIST SP 800-63B: 8).
    pub min_password_length: u32,
    /// Minimum password length for privileged groups.
    pub privileged_min_password_length: u32,
    /// The breach-list index `wikiguard passwords import` builds; empty: `<data_dir>/breach.idx`
    /// when it exists.
    pub breach_index: String,
    /// WebAuthn relying-party id: the wiki's registrable domain (`example.org`).
    pub rp_id: String,
    /// The origins passkeys may be used from (several for a wiki farm sharing one account
    /// system), e.g. `["https://en.example.org", "https://de.example.org"]`.
    pub rp_origins: Vec<String>,
    /// The relying party's name, shown by the browser.
    pub rp_name: String,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        let policy = PasswordPolicy::default();
        AccountsConfig {
            issuer: "MediaWiki".into(),
            keys_file: String::new(),
            totp_window: VerifyConfig::default().window,
            totp_max_failures: VerifyConfig::default().max_failures,
            required_groups: SecondFactorPolicy::default().required_groups,
            min_password_length: policy.min_length,
            privileged_min_password_length: policy.privileged_min_length,
            breach_index: String::new(),
            rp_id: "localhost".into(),
            rp_origins: vec!["http://localhost".into()],
            rp_name: "MediaWiki".into(),
        }
    }
}

/// The keys file: named TOTP keys (the first is current), recovery and pseudonym keys (hex).
#[derive(Serialize, Deserialize)]
struct KeysFile {
    totp_keys: Vec<(String, String)>,
    recovery_key: String,
    ip_key: String,
    device_key: String,
}

/// Where login-throttle counters live: this process, or Redis shared by every node (the
/// top-level `redis` key, as for the gate).
pub enum LoginCounters {
    /// In memory, bounded.
    Memory(InMemoryCounters),
    /// In Redis, with a local fallback.
    Redis(Box<crate::gate_redis::RedisThrottleCounters>),
}

fn login_counters(redis: &str) -> Result<LoginCounters> {
    Ok(if redis.is_empty() {
        LoginCounters::Memory(InMemoryCounters::new(100_000))
    } else {
        LoginCounters::Redis(Box::new(crate::gate_redis::RedisThrottleCounters::new(
            redis,
            std::time::Duration::from_millis(50),
            100_000,
        )?))
    })
}

impl wikiguard_accounts::throttle::ThrottleCounters for LoginCounters {
    fn get(&self, key: &str, now: u64) -> Option<wikiguard_accounts::throttle::CounterValue> {
        match self {
            LoginCounters::Memory(m) => m.get(key, now),
            LoginCounters::Redis(r) => r.get(key, now),
        }
    }
    fn increment(&self, key: &str, window_secs: u64, now: u64) -> wikiguard_accounts::throttle::CounterValue {
        match self {
            LoginCounters::Memory(m) => m.increment(key, window_secs, now),
            LoginCounters::Redis(r) => r.increment(key, window_secs, now),
        }
    }
    fn expire_at(&self, key: &str, at: u64, now: u64) {
        match self {
            LoginCounters::Memory(m) => m.expire_at(key, at, now),
            LoginCounters::Redis(r) => r.expire_at(key, at, now),
        }
    }
    fn remove(&self, key: &str) {
        match self {
            LoginCounters::Memory(m) => m.remove(key),
            LoginCounters::Redis(r) => r.remove(key),
        }
    }
}

/// Everything the door needs at run time.
pub struct Accounts {
    config: AccountsConfig,
    store: Arc<dyn Store>,
    keyring: Keyring,
    recovery_key: HmacKey,
    pseudonyms: IpPseudonymiser,
    verify: VerifyConfig,
    second_factor: SecondFactorPolicy,
    passwords: PasswordPolicy,
    throttle: Throttle<LoginCounters>,
    breach: Option<wikiguard_accounts::breach::BreachIndex>,
    devices: DeviceNotifier,
}

/// Where a user has signed in from (device ids and network prefixes, with when), kept in the
/// store as the user's `devices` state.
#[derive(Debug, Default, Serialize, Deserialize)]
struct DeviceRecord {
    devices: std::collections::BTreeMap<String, u64>,
    prefixes: std::collections::BTreeMap<String, u64>,
}

/// One user's record, as the notifier asks about it.
struct UserDevices(String, DeviceRecord);

impl DeviceHistory for UserDevices {
    fn device_last_seen(&self, user: &str, device_id: &str) -> Option<u64> {
        (self.0 == user)
            .then(|| self.1.devices.get(device_id).copied())
            .flatten()
    }
    fn prefix_last_seen(&self, user: &str, prefix: &str) -> Option<u64> {
        (self.0 == user).then(|| self.1.prefixes.get(prefix).copied()).flatten()
    }
    fn has_history(&self, user: &str) -> bool {
        self.0 == user && !self.1.devices.is_empty()
    }
}

/// Most devices and networks remembered per user (the oldest are forgotten).
const MAX_SIGHTINGS: usize = 50;

fn open_keys(path: &Path) -> Result<KeysFile> {
    if path.is_file() {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return serde_json::from_str(&text).with_context(|| format!("{} is not a wikiguard keys file", path.display()));
    }
    let mut k = [0u8; 128];
    crate::config::os_random(&mut k);
    if k.iter().all(|&b| b == 0) {
        anyhow::bail!("could not read random bytes from /dev/urandom to make the accounts keys");
    }
    let file = KeysFile {
        totp_keys: vec![("k1".into(), to_hex(&k[..32]))],
        recovery_key: to_hex(&k[32..64]),
        ip_key: to_hex(&k[64..96]),
        device_key: to_hex(&k[96..]),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(&file).context("encoding the keys")?;
    crate::config::write_private(path, &text)?;
    tracing::info!(file = %path.display(), "accounts keys generated (back this file up: TOTP secrets cannot be read without it)");
    Ok(file)
}

impl Accounts {
    /// Loads (or generates) the keys and opens the breach index when there is one.
    pub fn new(config: &AccountsConfig, data_dir: &Path, store: Arc<dyn Store>, redis: &str) -> Result<Accounts> {
        let keys_path = if config.keys_file.is_empty() {
            data_dir.join("accounts_keys.json")
        } else {
            config.keys_file.clone().into()
        };
        let keys = open_keys(&keys_path)?;
        let named = keys
            .totp_keys
            .iter()
            .map(|(id, k)| {
                NamedKey::parse(id, k).map_err(|e| anyhow::anyhow!("{}: totp key {id}: {e}", keys_path.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        let current = keys
            .totp_keys
            .first()
            .map(|(id, _)| id.clone())
            .context("the keys file lists no TOTP key")?;
        let keyring = Keyring::new(&current, named).map_err(|e| anyhow::anyhow!("{}: {e}", keys_path.display()))?;
        let recovery_key = HmacKey::parse(&keys.recovery_key).map_err(|e| anyhow::anyhow!("recovery_key: {e}"))?;
        let ip_key = HmacKey::parse(&keys.ip_key).map_err(|e| anyhow::anyhow!("ip_key: {e}"))?;
        let breach_path = if config.breach_index.is_empty() {
            data_dir.join("breach.idx")
        } else {
            config.breach_index.clone().into()
        };
        let breach = if breach_path.is_file() {
            Some(
                wikiguard_accounts::breach::BreachIndex::open(&breach_path)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", breach_path.display()))?,
            )
        } else {
            if !config.breach_index.is_empty() {
                anyhow::bail!(
                    "accounts.breach_index = {:?}: no such file (build it with `wikiguard passwords import`)",
                    config.breach_index
                );
            }
            None
        };
        let passwords = PasswordPolicy {
            min_length: config.min_password_length,
            privileged_min_length: config.privileged_min_password_length,
            ..PasswordPolicy::default()
        };
        Ok(Accounts {
            config: config.clone(),
            store,
            keyring,
            recovery_key,
            pseudonyms: IpPseudonymiser::new(ip_key),
            verify: VerifyConfig {
                window: config.totp_window,
                max_failures: config.totp_max_failures,
                ..VerifyConfig::default()
            },
            second_factor: SecondFactorPolicy {
                required_groups: config.required_groups.clone(),
                ..SecondFactorPolicy::default()
            },
            passwords,
            throttle: Throttle::new(ThrottleConfig::default(), login_counters(redis)?),
            breach,
            devices: DeviceNotifier::new(
                HmacKey::parse(&keys.device_key).map_err(|e| anyhow::anyhow!("device_key: {e}"))?,
            ),
        })
    }

    /// The store the door keeps its state in.
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The door's settings as configured.
    pub(crate) fn config(&self) -> &AccountsConfig {
        &self.config
    }

    /// Writes an audit event (the IP is pseudonymised here).
    pub(crate) fn audit(&self, now: u64, user: &str, ip: Option<IpAddr>, kind: EventKind) {
        let e = Event::new(now, user, ip, &self.pseudonyms, kind);
        let details = serde_json::to_value(&e.kind).unwrap_or(Value::Null);
        let kind = details
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("event")
            .to_string();
        let row = NewAuditEvent {
            time: now as i64,
            user: e.user,
            kind,
            ip_pseudonym: e.ip.unwrap_or_default(),
            details,
        };
        if let Err(err) = self.store.record_audit(&row) {
            tracing::error!(error = %err, "could not write an audit event");
        }
    }

    fn seal(&self, v: &impl Serialize) -> Result<Value, ApiError> {
        let plain = serde_json::to_vec(v).map_err(|e| internal("encoding a secret", e))?;
        let mut rng = crate::config::os_random;
        let sealed = self
            .keyring
            .seal(&plain, &mut rng)
            .map_err(|e| internal("sealing a secret", e))?;
        Ok(Value::String(to_hex(&sealed)))
    }

    fn open<T: serde::de::DeserializeOwned>(&self, v: &Value) -> Result<T, ApiError> {
        let text = v.as_str().ok_or_else(|| internal("reading a secret", "not a string"))?;
        let bytes = (0..text.len() / 2)
            .map(|i| text.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| internal("reading a secret", "not hex"))?;
        let plain = self
            .keyring
            .open(&bytes)
            .map_err(|e| internal("opening a secret (is the keys file the right one?)", e))?;
        serde_json::from_slice(&plain).map_err(|e| internal("decoding a secret", e))
    }
}

/// Unix seconds, as the accounts door counts time.
pub(crate) fn unix_now() -> u64 {
    crate::server::unix_now().max(0) as u64
}

pub(crate) fn accounts(state: &AppState) -> Result<Arc<Accounts>, ApiError> {
    state.accounts().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "accounts_unavailable",
            "the accounts door did not start; see the service log",
        )
    })
}

/// The door's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/accounts/{user}/totp/enroll", post(totp_enroll))
        .route("/v1/accounts/{user}/totp/confirm", post(totp_confirm))
        .route("/v1/accounts/{user}/totp/verify", post(totp_verify))
        .route("/v1/accounts/{user}/totp", axum::routing::delete(totp_remove))
        .route("/v1/accounts/{user}/recovery", post(recovery_generate))
        .route("/v1/accounts/{user}/recovery/verify", post(recovery_verify))
        .route("/v1/accounts/{user}/factors", get(factors))
        .route("/v1/accounts/{user}/audit", get(audit_log))
        .route("/v1/passwords/check", post(password_check))
        .route("/v1/login/attempt", post(login_attempt))
        .route("/v1/login/result", post(login_result))
        .route("/range/{prefix}", get(range))
}

/// What every per-user endpoint starts with: the check token, the door, the user's name.
pub(crate) fn door(state: &AppState, headers: &HeaderMap, user: &str) -> Result<(Arc<Accounts>, String), ApiError> {
    require_check(state, headers)?;
    Ok((accounts(state)?, user_name(user)?))
}

/// The user path segment: MediaWiki's canonical name (first letter upper-case, spaces).
pub(crate) fn user_name(raw: &str) -> Result<String, ApiError> {
    let name = wikiguard_accounts::policy::mediawiki_normalise(raw);
    if name.is_empty() || name.chars().count() > 255 {
        return Err(
            ApiError::bad("invalid_user", "user: a MediaWiki user name of 1 to 255 characters")
                .with("field", json!("user")),
        );
    }
    Ok(name)
}

pub(crate) fn ip_of(headers: &HeaderMap, body: &Value) -> Option<IpAddr> {
    body.get("ip")
        .and_then(Value::as_str)
        .or_else(|| headers.get("x-wikiguard-client-ip").and_then(|v| v.to_str().ok()))
        .and_then(|s| s.parse().ok())
}

fn code_of(body: &Value) -> Result<String, ApiError> {
    body.get("code")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError::bad("missing_field", "code: a string with the code the user typed").with("field", json!("code"))
        })
}

pub(crate) fn answer(v: Value) -> Response {
    Json(v).into_response()
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
enum TotpRecord {
    Pending { sealed: Value },
    Enrolled { sealed: Value },
}

const TOTP: &str = "totp";
const RECOVERY: &str = "recovery";
const DEVICES: &str = "devices";

async fn totp_enroll(
    State(state): State<AppState>,
    headers: HeaderMap,
    UrlPath(user): UrlPath<String>,
) -> Result<Response, ApiError> {
    let (acc, user) = door(&state, &headers, &user)?;
    blocking(move || {
        let now = unix_now();
        let current = acc.store.account_state(&user, TOTP)?;
        if let Some(v) = &current {
            if matches!(
                serde_json::from_value::<TotpRecord>(v.value.clone()),
                Ok(TotpRecord::Enrolled { .. })
            ) {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "already_enrolled",
                    "this user already has an authenticator app; remove it first (DELETE …/totp)",
                ));
            }
        }
        let mut rng = crate::config::os_random;
        let e = totp::begin_enrollment(&mut rng, &acc.config.issuer, &user, TotpParams::default(), now)
            .map_err(|e| internal("starting an enrolment", e))?;
        let record = serde_json::to_value(TotpRecord::Pending {
            sealed: acc.seal(&e.pending)?,
        })
        .unwrap_or(Value::Null);
        let expected = current.map_or(0, |c| c.version);
        if acc.store.put_account_state(&user, TOTP, expected, &record)?.is_none() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "another enrolment started at the same time; try again",
            ));
        }
        Ok(answer(
            json!({ "secret": e.secret, "uri": e.uri, "qr_svg": e.qr_svg, "expires": e.pending.expires_at }),
        ))
    })
    .await
}

async fn totp_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    UrlPath(user): UrlPath<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (acc, user) = door(&state, &headers, &user)?;
    let body = json_body(body)?;
    let code = code_of(&body)?;
    let ip = ip_of(&headers, &body);
    blocking(move || {
        let now = unix_now();
        let Some(current) = acc.store.account_state(&user, TOTP)? else {
            return Ok(answer(json!({"ok": false, "reason": "not-enrolling", "message": "Start the enrolment first."})));
        };
        let pending: PendingEnrollment = match serde_json::from_value::<TotpRecord>(current.value.clone()) {
            Ok(TotpRecord::Pending { sealed }) => acc.open(&sealed)?,
            _ => return Ok(answer(json!({"ok": false, "reason": "already-enrolled", "message": "The authenticator is already set up."}))),
        };
        match totp::confirm_enrollment(&pending, &code, now, &acc.verify) {
            Ok(state) => {
                let record = serde_json::to_value(TotpRecord::Enrolled { sealed: acc.seal(&state)? }).unwrap_or(Value::Null);
                if acc.store.put_account_state(&user, TOTP, current.version, &record)?.is_none() {
                    return Ok(answer(json!({"ok": false, "reason": "conflict", "message": "Try again."})));
                }
                acc.audit(now, &user, ip, EventKind::FactorEnrolled { factor: FactorKind::Totp, imported: false });
                Ok(answer(json!({"ok": true})))
            }
            Err(totp::TotpError::Refused(r)) => Ok(answer(json!({"ok": false, "reason": r.code(), "message": r.message()}))),
            Err(e) => Ok(answer(json!({"ok": false, "reason": "expired", "message": e.to_string()}))),
        }
    })
    .await
}

async fn totp_verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    UrlPath(user): UrlPath<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (acc, user) = door(&state, &headers, &user)?;
    let body = json_body(body)?;
    let code = code_of(&body)?;
    let ip = ip_of(&headers, &body);
    blocking(move || {
        let now = unix_now();
        if let Some(retry) = acc.throttle.second_factor_blocked(&user, now) {
            return Ok(answer(json!({"ok": false, "reason": "blocked", "retry_after": retry,
                "message": format!("Too many failed second factors. Try again in {retry} seconds.")})));
        }
        // Compare-and-swap: a code accepted by one request is a replay for a racing one.
        for _ in 0..5 {
            let Some(current) = acc.store.account_state(&user, TOTP)? else {
                return Ok(answer(json!({"ok": false, "reason": "not-enrolled", "message": "No authenticator app is set up."})));
            };
            let st: TotpState = match serde_json::from_value::<TotpRecord>(current.value.clone()) {
                Ok(TotpRecord::Enrolled { sealed }) => acc.open(&sealed)?,
                _ => return Ok(answer(json!({"ok": false, "reason": "not-enrolled", "message": "The enrolment is not finished."}))),
            };
            let (outcome, next) = totp::verify(&st, &code, now, &acc.verify);
            let record = serde_json::to_value(TotpRecord::Enrolled { sealed: acc.seal(&next)? }).unwrap_or(Value::Null);
            if acc.store.put_account_state(&user, TOTP, current.version, &record)?.is_none() {
                continue;
            }
            return Ok(match outcome {
                VerifyOutcome::Accepted { .. } => {
                    acc.throttle.second_factor_succeeded(&user);
                    answer(json!({"ok": true}))
                }
                VerifyOutcome::Rejected(r) => {
                    acc.audit(now, &user, ip, EventKind::SecondFactorFailed { factor: FactorKind::Totp, reason: r.code().into() });
                    let sf = acc.throttle.second_factor_failed(&user, ip.unwrap_or(IpAddr::from([0, 0, 0, 0])), now);
                    if sf.notify_owner {
                        acc.audit(now, &user, ip, EventKind::StolenPasswordNotice { failures: sf.failures });
                    }
                    answer(json!({"ok": false, "reason": r.code(), "message": r.message(), "notify_owner": sf.notify_owner}))
                }
            });
        }
        Err(ApiError::new(StatusCode::CONFLICT, "conflict", "the factor changed under us five times; try again"))
    })
    .await
}

async fn totp_remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    UrlPath(user): UrlPath<String>,
) -> Result<Response, ApiError> {
    let (acc, user) = door(&state, &headers, &user)?;
    blocking(move || {
        let removed = acc.store.delete_account_state(&user, TOTP)?;
        if removed {
            acc.audit(
                unix_now(),
                &user,
                None,
                EventKind::FactorRemoved {
                    factor: FactorKind::Totp,
                },
            );
        }
        Ok(answer(json!({"ok": removed})))
    })
    .await
}

async fn recovery_generate(
    State(state): State<AppState>,
    headers: HeaderMap,
    UrlPath(user): UrlPath<String>,
) -> Result<Response, ApiError> {
    let (acc, user) = door(&state, &headers, &user)?;
    blocking(move || {
        let now = unix_now();
        let mut rng = crate::config::os_random;
        let codes = recovery::generate(&mut rng, &acc.recovery_key, now);
        let value = serde_json::to_value(&codes.stored).unwrap_or(Value::Null);
        // Regenerating replaces the old set whatever it was.
        let _ = acc.store.delete_account_state(&user, RECOVERY)?;
        if acc.store.put_account_state(&user, RECOVERY, 0, &value)?.is_none() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "codes were made at the same time; try again",
            ));
        }
        acc.audit(
            now,
            &user,
            None,
            EventKind::RecoveryCodesRegenerated {
                count: codes.plain.len(),
            },
        );
        Ok(answer(json!({"codes": codes.plain})))
    })
    .await
}

async fn recovery_verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    UrlPath(user): UrlPath<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (acc, user) = door(&state, &headers, &user)?;
    let body = json_body(body)?;
    let code = code_of(&body)?;
    let ip = ip_of(&headers, &body);
    blocking(move || {
        let now = unix_now();
        for _ in 0..5 {
            let Some(current) = acc.store.account_state(&user, RECOVERY)? else {
                return Ok(answer(
                    json!({"ok": false, "reason": "no-codes", "message": "No recovery codes were made."}),
                ));
            };
            let stored: StoredCodes =
                serde_json::from_value(current.value.clone()).map_err(|e| internal("reading recovery codes", e))?;
            match recovery::use_code(&stored, &acc.recovery_key, &code, now) {
                Ok((next, used)) => {
                    let value = serde_json::to_value(&next).unwrap_or(Value::Null);
                    if acc
                        .store
                        .put_account_state(&user, RECOVERY, current.version, &value)?
                        .is_none()
                    {
                        continue;
                    }
                    acc.audit(
                        now,
                        &user,
                        ip,
                        EventKind::RecoveryCodeUsed {
                            remaining: used.remaining,
                        },
                    );
                    return Ok(answer(json!({"ok": true, "remaining": used.remaining, "notify": true})));
                }
                Err(e) => {
                    acc.audit(
                        now,
                        &user,
                        ip,
                        EventKind::SecondFactorFailed {
                            factor: FactorKind::RecoveryCodes,
                            reason: e.to_string(),
                        },
                    );
                    return Ok(answer(
                        json!({"ok": false, "reason": "wrong-code", "message": e.to_string()}),
                    ));
                }
            }
        }
        Err(ApiError::new(StatusCode::CONFLICT, "conflict", "try again"))
    })
    .await
}

#[derive(Deserialize)]
struct FactorsQuery {
    groups: Option<String>,
}

async fn factors(
    State(state): State<AppState>,
    headers: HeaderMap,
    UrlPath(user): UrlPath<String>,
    Query(q): Query<FactorsQuery>,
) -> Result<Response, ApiError> {
    let (acc, user) = door(&state, &headers, &user)?;
    let groups: Vec<String> = q
        .groups
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(String::from)
        .collect();
    blocking(move || {
        let mut enrolled = Vec::new();
        if let Some(v) = acc.store.account_state(&user, TOTP)? {
            if matches!(
                serde_json::from_value::<TotpRecord>(v.value),
                Ok(TotpRecord::Enrolled { .. })
            ) {
                enrolled.push(FactorKind::Totp);
            }
        }
        if let Some(v) = acc.store.account_state(&user, RECOVERY)? {
            if serde_json::from_value::<StoredCodes>(v.value).is_ok_and(|c| c.remaining() > 0) {
                enrolled.push(FactorKind::RecoveryCodes);
            }
        }
        if crate::passkeys_api::has_passkey(&acc, &user)? {
            enrolled.push(FactorKind::Passkey);
        }
        let r = acc.second_factor.requirement(&groups, &enrolled);
        Ok(answer(serde_json::to_value(r).unwrap_or(Value::Null)))
    })
    .await
}

async fn audit_log(
    State(state): State<AppState>,
    headers: HeaderMap,
    UrlPath(user): UrlPath<String>,
) -> Result<Response, ApiError> {
    crate::server::require_admin(&state, &headers)?;
    let acc = accounts(&state)?;
    let user = user_name(&user)?;
    blocking(move || Ok(answer(json!({"events": acc.store.audit_events(Some(&user), 200)?})))).await
}

async fn password_check(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_check(&state, &headers)?;
    let acc = accounts(&state)?;
    let body = json_body(body)?;
    let field = |k: &str| {
        body.get(k)
            .ok_or_else(|| ApiError::bad("missing_field", format!("{k}: required")).with("field", json!(k)))
    };
    let sha1 = field("sha1")?
        .as_str()
        .ok_or_else(|| ApiError::bad("invalid_field", "sha1: 40 hex characters").with("field", json!("sha1")))?
        .to_string();
    let length = field("length")?
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            ApiError::bad("invalid_field", "length: the password's length in characters").with("field", json!("length"))
        })?;
    if sha1.len() != 40 || !sha1.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad(
            "invalid_field",
            "sha1: the SHA-1 of the password, 40 hex characters (never the password)",
        )
        .with("field", json!("sha1")));
    }
    let username = body
        .get("username")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let groups: Vec<String> = body
        .get("groups")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default();
    blocking(move || {
        let breached = match &acc.breach {
            Some(idx) => Some(u64::from(
                idx.lookup_hex(&sha1)
                    .map_err(|e| internal("reading the breach list", e))?
                    .unwrap_or(0),
            )),
            None => None,
        };
        let verdict = acc
            .passwords
            .check_password(&sha1, length, &username, &groups, breached)
            .map_err(|e| ApiError::bad("invalid_field", format!("sha1: {e}")).with("field", json!("sha1")))?;
        let mut v = serde_json::to_value(verdict).unwrap_or(Value::Null);
        if let Some(o) = v.as_object_mut() {
            o.insert("breach_list".into(), json!(acc.breach.is_some()));
        }
        Ok(answer(v))
    })
    .await
}

fn login_fields(headers: &HeaderMap, body: &Value) -> Result<(String, IpAddr, String), ApiError> {
    let username = body
        .get("username")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad("missing_field", "username: required").with("field", json!("username")))?;
    let ip = ip_of(headers, body)
        .ok_or_else(|| ApiError::bad("missing_field", "ip: the client's IP address").with("field", json!("ip")))?;
    let ua = body
        .get("user_agent")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Ok((user_name(username)?, ip, ua))
}

async fn login_attempt(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_check(&state, &headers)?;
    let acc = accounts(&state)?;
    let body = json_body(body)?;
    let (user, ip, ua) = login_fields(&headers, &body)?;
    let now = unix_now();
    let decision = acc.throttle.attempt(&user, ip, &ua, now);
    if let Some(e) = Event::for_decision(now, &user, ip, &acc.pseudonyms, &decision) {
        let acc2 = acc.clone();
        let user2 = user.clone();
        tokio::task::spawn_blocking(move || acc2.audit(now, &user2, Some(ip), e.kind));
    }
    Ok(answer(serde_json::to_value(decision).unwrap_or(Value::Null)))
}

async fn login_result(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_check(&state, &headers)?;
    let acc = accounts(&state)?;
    let body = json_body(body)?;
    let (user, ip, ua) = login_fields(&headers, &body)?;
    let success = body
        .get("success")
        .and_then(Value::as_bool)
        .ok_or_else(|| ApiError::bad("missing_field", "success: true or false").with("field", json!("success")))?;
    let device = body.get("device").and_then(Value::as_str).map(str::to_string);
    let now = unix_now();
    let effect = acc.throttle.result(&user, ip, success, now);
    let mut out = serde_json::to_value(effect).unwrap_or(Value::Null);
    if success {
        let notice = blocking(move || new_device(&acc, &user, device.as_deref(), ip, &ua, now)).await?;
        if let Some(o) = out.as_object_mut() {
            o.insert("notify".into(), json!(notice.notify));
            o.insert("reason".into(), json!(notice.reason));
            o.insert("device_cookie".into(), json!(notice.new_cookie));
        }
    }
    Ok(answer(out))
}

/// A successful sign-in: is this device and network new for the account? Records the sighting.
fn new_device(
    acc: &Accounts,
    user: &str,
    cookie: Option<&str>,
    ip: IpAddr,
    ua: &str,
    now: u64,
) -> Result<LoginNotice, ApiError> {
    for _ in 0..5 {
        let current = acc.store.account_state(user, DEVICES)?;
        let (version, record) = match &current {
            Some(v) => (v.version, serde_json::from_value(v.value.clone()).unwrap_or_default()),
            None => (0, DeviceRecord::default()),
        };
        let history = UserDevices(user.to_string(), record);
        let mut rng = crate::config::os_random;
        let notice = acc
            .devices
            .login_succeeded(user, cookie, ip, ua, &history, &mut rng, now);
        let mut record = history.1;
        record.devices.insert(notice.sighting.device_id.clone(), now);
        record.prefixes.insert(notice.sighting.prefix.clone(), now);
        for map in [&mut record.devices, &mut record.prefixes] {
            while map.len() > MAX_SIGHTINGS {
                let oldest = map.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone());
                match oldest {
                    Some(k) => map.remove(&k),
                    None => break,
                };
            }
        }
        let value = serde_json::to_value(&record).unwrap_or(Value::Null);
        if acc.store.put_account_state(user, DEVICES, version, &value)?.is_some() {
            if notice.notify {
                acc.audit(
                    now,
                    user,
                    Some(ip),
                    EventKind::NewDeviceNotice {
                        reason: notice.reason.clone().unwrap_or_default(),
                    },
                );
            }
            return Ok(notice);
        }
    }
    Err(ApiError::new(StatusCode::CONFLICT, "conflict", "try again"))
}

#[derive(Deserialize)]
struct RangeQuery {
    padding: Option<String>,
}

/// The k-anonymity range API, compatible with the public one: `SUFFIX:COUNT` lines.
async fn range(
    State(state): State<AppState>,
    headers: HeaderMap,
    UrlPath(prefix): UrlPath<String>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    require_check(&state, &headers)?;
    let acc = accounts(&state)?;
    if prefix.len() != 5 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad(
            "invalid_prefix",
            "the range is the first 5 hex characters of a SHA-1",
        ));
    }
    let padded =
        q.padding.as_deref() == Some("true") || headers.get("add-padding").is_some_and(|v| v.as_bytes() == b"true");
    blocking(move || {
        let Some(idx) = &acc.breach else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "no_breach_list",
                "no breach list is installed (wikiguard passwords import)",
            ));
        };
        let rows = if padded {
            idx.range_padded(&prefix, 800)
        } else {
            idx.range(&prefix)
        }
        .map_err(|e| internal("reading the breach list", e))?;
        let mut out = String::with_capacity(rows.len() * 40);
        for (suffix, count) in rows {
            out.push_str(&suffix);
            out.push(':');
            out.push_str(&count.to_string());
            out.push_str("\r\n");
        }
        Ok(([(axum::http::header::CONTENT_TYPE, "text/plain")], out).into_response())
    })
    .await
}

/// `wikiguard passwords import FILE`: builds the breach-list index in the data directory.
pub fn import_passwords(settings: &crate::config::Settings, input: &Path) -> Result<String> {
    let out = settings.data_dir.join("breach.idx");
    std::fs::create_dir_all(&settings.data_dir).with_context(|| format!("creating {}", settings.data_dir.display()))?;
    let mut last = std::time::Instant::now();
    let stats = wikiguard_accounts::breach::build_index(input, &out, |n| {
        if last.elapsed().as_secs() >= 5 {
            eprintln!("wikiguard: {n} hashes…");
            last = std::time::Instant::now();
        }
    })
    .map_err(|e| anyhow::anyhow!("{}: {e}", input.display()))?;
    Ok(format!(
        "indexed {} hashes into {} ({} bytes)\n",
        stats.records,
        out.display(),
        stats.bytes
    ))
}

/// `wikiguard import oathauth FILE --users USERS`: OATHAuth's TOTP enrolments (and scratch
/// tokens, as recovery codes) into the accounts door, so users keep their authenticator apps.
/// OATHAuth keys rows by user id; USERS maps ids to names (`[{"user_id": 1, "user_name":
/// "Admin"}]`, as `SELECT user_id, user_name FROM user` exports, or `{"1": "Admin"}`).
pub fn import_oathauth(settings: &crate::config::Settings, file: &Path, users: Option<&Path>) -> Result<String> {
    let (text, users_json, users_name) = if is_sqlite(file) {
        let (rows, users) = read_wiki_sqlite(file)?;
        (rows.to_string(), users, file.display().to_string())
    } else {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let users = users.context(
            "--users: the wiki's user ids and names, to match OATHAuth's rows (or give the wiki's SQLite file)",
        )?;
        let users_text = std::fs::read_to_string(users).with_context(|| format!("reading {}", users.display()))?;
        let users_json: Value =
            serde_json::from_str(&users_text).with_context(|| format!("{} is not JSON", users.display()))?;
        (text, users_json, users.display().to_string())
    };
    let report = wikiguard_accounts::oathauth::parse_export(&text, &Default::default())
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let mut names = std::collections::HashMap::new();
    match &users_json {
        Value::Array(rows) => {
            for r in rows {
                let id = r
                    .get("user_id")
                    .and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())));
                let name = r.get("user_name").and_then(Value::as_str);
                if let (Some(id), Some(name)) = (id, name) {
                    names.insert(id, name.to_string());
                }
            }
        }
        Value::Object(o) => {
            for (k, v) in o {
                if let (Ok(id), Some(name)) = (k.parse::<u64>(), v.as_str()) {
                    names.insert(id, name.to_string());
                }
            }
        }
        _ => anyhow::bail!("{users_name}: expected [{{\"user_id\", \"user_name\"}}] or {{\"ID\": \"name\"}}"),
    }
    let store: Arc<dyn Store> = Arc::new(crate::serve::open_store(settings)?);
    let acc = Accounts::new(&settings.accounts, &settings.data_dir, store.clone(), "")?;
    let now = unix_now();
    let mut out = String::new();
    let mut imported = 0usize;
    for e in &report.errors {
        out += &format!("skipped: {e}\n");
    }
    for t in &report.totp {
        let Some(name) = names.get(&t.user_id) else {
            out += &format!("skipped: row {}: user {} is not in {users_name}\n", t.row, t.user_id);
            continue;
        };
        let user = wikiguard_accounts::policy::mediawiki_normalise(name);
        let state = TotpState::new(t.secret.clone(), TotpParams::default());
        let record = serde_json::to_value(TotpRecord::Enrolled {
            sealed: acc.seal(&state).map_err(|e| anyhow::anyhow!("{e}"))?,
        })?;
        let version = store.account_state(&user, TOTP)?.map_or(0, |v| v.version);
        if store.put_account_state(&user, TOTP, version, &record)?.is_none() {
            out += &format!("skipped: row {}: {user} changed during the import\n", t.row);
            continue;
        }
        acc.audit(
            now,
            &user,
            None,
            EventKind::FactorEnrolled {
                factor: FactorKind::Totp,
                imported: true,
            },
        );
        imported += 1;
    }
    let mut code_sets = 0usize;
    let scratch = report.totp.iter().map(|t| (t.user_id, &t.scratch_tokens));
    let sets = report.recovery_codes.iter().map(|r| (r.user_id, &r.codes));
    for (user_id, codes) in scratch.chain(sets) {
        let Some(name) = names.get(&user_id) else { continue };
        let user = wikiguard_accounts::policy::mediawiki_normalise(name);
        let stored = StoredCodes::from_plain(&acc.recovery_key, codes, now);
        if stored.codes.is_empty() {
            continue;
        }
        let _ = store.delete_account_state(&user, RECOVERY)?;
        if store
            .put_account_state(&user, RECOVERY, 0, &serde_json::to_value(&stored)?)?
            .is_some()
        {
            code_sets += 1;
        }
    }
    out += &format!(
        "imported {imported} TOTP enrolments and {code_sets} recovery-code sets into {}\n",
        settings.data_dir.display()
    );
    Ok(out)
}

fn is_sqlite(path: &Path) -> bool {
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok()
        && &head == b"SQLite format 3\0"
}

/// A MediaWiki SQLite database (read-only): OATHAuth's `oathauth_devices` rows (type names
/// joined from `oathauth_types`) or its older `oathauth_users`, and the `user` table.
fn read_wiki_sqlite(path: &Path) -> Result<(Value, Value)> {
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {}", path.display()))?;
    let has = |table: &str| -> bool {
        conn.query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |_| Ok(()),
        )
        .is_ok()
    };
    let text = |r: &rusqlite::Row<'_>, i: usize| -> String {
        match r.get_ref(i) {
            Ok(rusqlite::types::ValueRef::Text(t)) | Ok(rusqlite::types::ValueRef::Blob(t)) => {
                String::from_utf8_lossy(t).into_owned()
            }
            Ok(rusqlite::types::ValueRef::Integer(n)) => n.to_string(),
            _ => String::new(),
        }
    };
    let mut rows = Vec::new();
    if has("oathauth_devices") {
        let join = has("oathauth_types");
        let sql = if join {
            "SELECT oad_user, COALESCE(oat_name, oad_type), oad_data, oad_name FROM oathauth_devices \
             LEFT JOIN oathauth_types ON oat_id = oad_type"
        } else {
            "SELECT oad_user, oad_type, oad_data, oad_name FROM oathauth_devices"
        };
        let mut st = conn
            .prepare(sql)
            .with_context(|| format!("{}: reading oathauth_devices", path.display()))?;
        let mut q = st.query([])?;
        while let Some(r) = q.next()? {
            rows.push(json!({"oad_user": r.get::<_, i64>(0)?, "oad_type": text(r, 1), "oad_data": text(r, 2), "oad_name": text(r, 3)}));
        }
    } else if has("oathauth_users") {
        let mut st = conn
            .prepare("SELECT id, module, data FROM oathauth_users")
            .with_context(|| format!("{}: reading oathauth_users", path.display()))?;
        let mut q = st.query([])?;
        while let Some(r) = q.next()? {
            rows.push(json!({"id": r.get::<_, i64>(0)?, "module": text(r, 1), "data": text(r, 2)}));
        }
    } else {
        anyhow::bail!(
            "{}: neither oathauth_devices nor oathauth_users is there (is OATHAuth installed on this wiki?)",
            path.display()
        );
    }
    let mut users = Vec::new();
    let mut st = conn
        .prepare("SELECT user_id, user_name FROM user")
        .with_context(|| format!("{}: reading the user table", path.display()))?;
    let mut q = st.query([])?;
    while let Some(r) = q.next()? {
        users.push(json!({"user_id": r.get::<_, i64>(0)?, "user_name": text(r, 1)}));
    }
    Ok((Value::Array(rows), Value::Array(users)))
}
