//! Audit events: every enrolment, removal, failed second factor, recovery-code use,
//! throttle decision, stolen-password notice and new-device notice.
//!
//! An event carries the time, the user, a **pseudonymised** IP address and what happened.
//! The raw address never enters an [`Event`]: the only way to put an address in is through
//! an [`IpPseudonymiser`], which stores HMAC-SHA256(key, address) truncated to 16 hex digits
//! (64 bits). The same address gives the same pseudonym under one key, so investigators can
//! see that two events came from one place; without the key nobody can test a guess, and
//! rotating the key unlinks old events from new ones.

use crate::keys::{to_hex, HmacKey};
use crate::net::canonical;
use crate::policy::FactorKind;
use crate::throttle::{AttemptDecision, Scope};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Turns IP addresses into stable pseudonyms.
#[derive(Debug, Clone)]
pub struct IpPseudonymiser {
    key: HmacKey,
}

impl IpPseudonymiser {
    /// A pseudonymiser with its own key (do not reuse the recovery-code or cookie key).
    pub fn new(key: HmacKey) -> Self {
        IpPseudonymiser { key }
    }

    /// The pseudonym of `ip`: 16 lower-case hex digits.
    pub fn pseudonymise(&self, ip: IpAddr) -> String {
        let ip = canonical(ip);
        let text = ip.to_string();
        let mac = self.key.mac(b"wikiguard ip pseudonym v1", &[text.as_bytes()]);
        to_hex(mac.get(..8).unwrap_or(&mac))
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum EventKind {
    /// A second factor was enrolled (TOTP confirmed, codes generated, factor imported).
    FactorEnrolled {
        /// Which kind.
        factor: FactorKind,
        /// Imported from OATHAuth rather than enrolled here.
        imported: bool,
    },
    /// A second factor was removed.
    FactorRemoved {
        /// Which kind.
        factor: FactorKind,
    },
    /// A second-factor code was refused.
    SecondFactorFailed {
        /// Which kind.
        factor: FactorKind,
        /// The stable reason (`wrong-code`, `replayed`, `locked`, …).
        reason: String,
    },
    /// A recovery code was used.
    RecoveryCodeUsed {
        /// Unused codes left.
        remaining: usize,
    },
    /// A new set of recovery codes replaced the old one.
    RecoveryCodesRegenerated {
        /// Codes in the new set.
        count: usize,
    },
    /// The login throttle answered something other than allow.
    ThrottleDecision {
        /// `require-challenge` or `throttle`.
        decision: String,
        /// The challenge reason or throttled scope.
        detail: String,
        /// For a throttle: seconds until retry.
        retry_after_secs: Option<u64>,
    },
    /// Second factors are blocked after too many failures following a right password.
    SecondFactorBlocked {
        /// Seconds the block lasts.
        retry_after_secs: u64,
    },
    /// The owner is told someone knows their password.
    StolenPasswordNotice {
        /// Failed second factors after the right password in the current sequence.
        failures: u64,
    },
    /// A passkey's signature counter did not increase: possibly a cloned authenticator. The
    /// sign-in was refused and the credential flagged.
    PasskeyCloneSuspected {
        /// The credential id (base64url).
        credential: String,
    },
    /// A sign-in from a new device and network was notified.
    NewDeviceNotice {
        /// The human-readable reason given to the user.
        reason: String,
    },
}

/// One audit event (stored and wire form: JSON with `kind` flattened in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Unix time.
    pub at: u64,
    /// The account.
    pub user: String,
    /// The pseudonymised address, if the event came from a request.
    pub ip: Option<String>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    /// An event; `ip` is pseudonymised here.
    pub fn new(at: u64, user: &str, ip: Option<IpAddr>, pseudonymiser: &IpPseudonymiser, kind: EventKind) -> Self {
        Event {
            at,
            user: user.to_owned(),
            ip: ip.map(|ip| pseudonymiser.pseudonymise(ip)),
            kind,
        }
    }

    /// The event for a throttle decision, or `None` for `Allow` (not worth a record).
    pub fn for_decision(
        at: u64,
        user: &str,
        ip: IpAddr,
        pseudonymiser: &IpPseudonymiser,
        decision: &AttemptDecision,
    ) -> Option<Self> {
        let kind = match decision {
            AttemptDecision::Allow => return None,
            AttemptDecision::RequireChallenge { reason } => EventKind::ThrottleDecision {
                decision: "require-challenge".into(),
                detail: reason.as_str().into(),
                retry_after_secs: None,
            },
            AttemptDecision::Throttle {
                retry_after_secs,
                scope,
            } => EventKind::ThrottleDecision {
                decision: "throttle".into(),
                detail: scope_name(*scope).into(),
                retry_after_secs: Some(*retry_after_secs),
            },
        };
        Some(Event::new(at, user, Some(ip), pseudonymiser, kind))
    }
}

fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Ip => "ip",
        Scope::Prefix => "prefix",
        Scope::AccountPrefix => "account-prefix",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_never_raw() {
        let p = IpPseudonymiser::new(HmacKey::new([3; 32]));
        let ip: IpAddr = "203.0.113.77".parse().unwrap();
        let e = Event::new(10, "Alice", Some(ip), &p, EventKind::RecoveryCodeUsed { remaining: 9 });
        let json = serde_json::to_string(&e).unwrap();
        assert!(!json.contains("203.0.113"), "{json}");
        let pseud = e.ip.clone().unwrap();
        assert_eq!(pseud.len(), 16);
        assert_eq!(
            json,
            format!(r#"{{"at":10,"user":"Alice","ip":"{pseud}","kind":"recovery-code-used","remaining":9}}"#)
        );
        // Stable per key, mapped addresses the same, another key unrelated.
        assert_eq!(p.pseudonymise("::ffff:203.0.113.77".parse().unwrap()), pseud);
        assert_ne!(IpPseudonymiser::new(HmacKey::new([4; 32])).pseudonymise(ip), pseud);
        let back: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn decision_events() {
        let p = IpPseudonymiser::new(HmacKey::new([3; 32]));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(Event::for_decision(1, "A", ip, &p, &AttemptDecision::Allow), None);
        let e = Event::for_decision(
            1,
            "A",
            ip,
            &p,
            &AttemptDecision::Throttle {
                retry_after_secs: 60,
                scope: Scope::Ip,
            },
        )
        .unwrap();
        assert!(matches!(
            e.kind,
            EventKind::ThrottleDecision {
                retry_after_secs: Some(60),
                ..
            }
        ));
    }
}
