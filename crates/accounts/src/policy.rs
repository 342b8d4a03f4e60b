//! Policy: who must have a second factor, which factors count, and password rules.
//!
//! Password rules follow NIST SP 800-63B §3.1.1.2: a minimum length (8 for everyone, 15 for
//! privileged groups by default), long passwords accepted (up to 4096 characters, well over
//! the 64 NIST asks for), no composition rules, refuse passwords found in a breach list and
//! passwords equal to the user name. The service never sees the password: MediaWiki sends its
//! SHA-1 (the Pwned Passwords key) and its length.

use crate::keys::to_hex;
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

/// A kind of second factor. Non-exhaustive: more kinds may come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FactorKind {
    /// Time-based one-time codes (RFC 6238).
    Totp,
    /// Single-use recovery codes. A backup, not counted as a factor by default.
    RecoveryCodes,
    /// Passkeys (WebAuthn credentials).
    Passkey,
}

impl FactorKind {
    /// The stable name (`totp`, `recovery-codes`, `passkey`).
    pub fn as_str(self) -> &'static str {
        match self {
            FactorKind::Totp => "totp",
            FactorKind::RecoveryCodes => "recovery-codes",
            FactorKind::Passkey => "passkey",
        }
    }
}

fn default_groups() -> Vec<String> {
    ["sysop", "checkuser", "bureaucrat", "interface-admin", "suppress"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Which groups must have a second factor and which kinds count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecondFactorPolicy {
    /// Members of any of these groups must have a second factor. Default: sysop, checkuser,
    /// bureaucrat, interface-admin, suppress.
    pub required_groups: Vec<String>,
    /// Factor kinds that satisfy the requirement. Default: TOTP and passkeys.
    pub accepted_kinds: Vec<FactorKind>,
}

impl Default for SecondFactorPolicy {
    fn default() -> Self {
        SecondFactorPolicy {
            required_groups: default_groups(),
            accepted_kinds: vec![FactorKind::Totp, FactorKind::Passkey],
        }
    }
}

/// The answer for one user (wire form, serialised as JSON for MediaWiki).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    /// A second factor is required for this user's groups.
    pub required: bool,
    /// The user has at least one accepted factor enrolled.
    pub enrolled: bool,
    /// Kinds the user has enrolled (sorted, deduplicated).
    pub kinds_enrolled: Vec<FactorKind>,
    /// Kinds that count.
    pub kinds_accepted: Vec<FactorKind>,
    /// Not required, or required and enrolled.
    pub satisfied: bool,
}

impl SecondFactorPolicy {
    /// Whether a user in `groups` must have a second factor.
    pub fn is_required(&self, groups: &[String]) -> bool {
        groups.iter().any(|g| self.required_groups.iter().any(|r| r == g))
    }

    /// The requirement for a user in `groups` with `enrolled` factor kinds.
    pub fn requirement(&self, groups: &[String], enrolled: &[FactorKind]) -> Requirement {
        let required = self.is_required(groups);
        let mut kinds_enrolled = enrolled.to_vec();
        kinds_enrolled.sort();
        kinds_enrolled.dedup();
        let is_enrolled = kinds_enrolled.iter().any(|k| self.accepted_kinds.contains(k));
        Requirement {
            required,
            enrolled: is_enrolled,
            kinds_enrolled,
            kinds_accepted: self.accepted_kinds.clone(),
            satisfied: !required || is_enrolled,
        }
    }
}

/// Password length rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordPolicy {
    /// Minimum length for everyone. Default 8.
    pub min_length: u32,
    /// Minimum length for members of `privileged_groups`. Default 15.
    pub privileged_min_length: u32,
    /// Groups held to `privileged_min_length`. Default: the same groups that need a second factor.
    pub privileged_groups: Vec<String>,
    /// Maximum length accepted (NIST: at least 64). Default 4096, MediaWiki's own limit.
    pub max_length: u32,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_length: 8,
            privileged_min_length: 15,
            privileged_groups: default_groups(),
            max_length: 4096,
        }
    }
}

/// A stable reason code for a refused password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReasonCode {
    /// Shorter than the user's minimum.
    TooShort,
    /// Longer than the maximum.
    TooLong,
    /// Found in the breach list.
    Breached,
    /// Equal to the user name.
    EqualsUsername,
}

impl ReasonCode {
    /// The code as a string: `too-short`, `too-long`, `breached`, `equals-username`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::TooShort => "too-short",
            ReasonCode::TooLong => "too-long",
            ReasonCode::Breached => "breached",
            ReasonCode::EqualsUsername => "equals-username",
        }
    }
}

/// One reason, with its message for the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// Stable code.
    pub code: ReasonCode,
    /// Human-readable message.
    pub message: String,
}

/// The verdict on a password (wire form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordVerdict {
    /// Acceptable.
    pub ok: bool,
    /// Why not (empty when `ok`).
    pub reasons: Vec<Reason>,
}

/// Bad input to [`PasswordPolicy::check_password`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordInputError {
    /// The SHA-1 is not 40 hex digits.
    #[error("sha1 must be 40 hex digits (the SHA-1 of the UTF-8 password)")]
    BadSha1,
}

/// MediaWiki's canonical form of a user name: underscores as spaces, trimmed, first letter
/// upper case (as `Title` does with `$wgCapitalLinks`, the default).
pub fn mediawiki_normalise(username: &str) -> String {
    let spaced = username.replace('_', " ");
    let trimmed = spaced.trim();
    let mut chars = trimmed.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn sha1_hex(s: &str) -> String {
    to_hex(&Sha1::digest(s.as_bytes()))
}

impl PasswordPolicy {
    /// The minimum length for a user in `groups`.
    pub fn min_length_for(&self, groups: &[String]) -> u32 {
        if groups.iter().any(|g| self.privileged_groups.iter().any(|p| p == g)) {
            self.privileged_min_length.max(self.min_length)
        } else {
            self.min_length
        }
    }

    /// Checks a password known only by its SHA-1 (hex, any case) and length in characters.
    /// `breached` is the breach-list lookup done by the caller: `Some(count)` with the number
    /// of times seen (`Some(0)` = not found), `None` = not checked.
    pub fn check_password(
        &self,
        sha1: &str,
        length: u32,
        username: &str,
        groups: &[String],
        breached: Option<u64>,
    ) -> Result<PasswordVerdict, PasswordInputError> {
        if sha1.len() != 40 || !sha1.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(PasswordInputError::BadSha1);
        }
        let sha1 = sha1.to_ascii_lowercase();
        let mut reasons = Vec::new();
        let min = self.min_length_for(groups);
        if length < min {
            let message = if min > self.min_length {
                format!("Passwords for accounts with administrative rights must be at least {min} characters long.")
            } else {
                format!("Passwords must be at least {min} characters long.")
            };
            reasons.push(Reason {
                code: ReasonCode::TooShort,
                message,
            });
        }
        if length > self.max_length {
            reasons.push(Reason {
                code: ReasonCode::TooLong,
                message: format!("Passwords can be at most {} characters long.", self.max_length),
            });
        }
        if let Some(count) = breached.filter(|c| *c > 0) {
            reasons.push(Reason {
                code: ReasonCode::Breached,
                message: format!(
                    "This password has appeared in a data breach ({count} times) and is known to attackers. Choose another."
                ),
            });
        }
        let candidates = [
            username.to_owned(),
            username.to_lowercase(),
            mediawiki_normalise(username),
        ];
        let mut equal = false;
        for c in &candidates {
            equal |= bool::from(sha1_hex(c).as_bytes().ct_eq(sha1.as_bytes()));
        }
        if equal && !username.is_empty() {
            reasons.push(Reason {
                code: ReasonCode::EqualsUsername,
                message: "Your password must not be the same as your user name.".into(),
            });
        }
        Ok(PasswordVerdict {
            ok: reasons.is_empty(),
            reasons,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn requirement() {
        let p = SecondFactorPolicy::default();
        let r = p.requirement(&g(&["user", "sysop"]), &[]);
        assert_eq!((r.required, r.enrolled, r.satisfied), (true, false, false));
        let r = p.requirement(
            &g(&["sysop"]),
            &[FactorKind::RecoveryCodes, FactorKind::Totp, FactorKind::Totp],
        );
        assert_eq!((r.required, r.enrolled, r.satisfied), (true, true, true));
        assert_eq!(r.kinds_enrolled, vec![FactorKind::Totp, FactorKind::RecoveryCodes]);
        // Recovery codes alone do not count.
        assert!(
            !p.requirement(&g(&["checkuser"]), &[FactorKind::RecoveryCodes])
                .satisfied
        );
        assert!(p.requirement(&g(&["user"]), &[]).satisfied);
        assert_eq!(
            serde_json::to_string(&p.requirement(&g(&["suppress"]), &[FactorKind::Totp])).unwrap(),
            r#"{"required":true,"enrolled":true,"kinds_enrolled":["totp"],"kinds_accepted":["totp","passkey"],"satisfied":true}"#
        );
        let custom: SecondFactorPolicy =
            serde_json::from_str(r#"{"required_groups":["x"],"accepted_kinds":["totp","recovery-codes"]}"#).unwrap();
        assert!(custom.requirement(&g(&["x"]), &[FactorKind::RecoveryCodes]).satisfied);
        // A passkey alone satisfies the default policy.
        assert!(p.requirement(&g(&["sysop"]), &[FactorKind::Passkey]).satisfied);
        assert_eq!(FactorKind::Passkey.as_str(), "passkey");
    }

    fn sha(s: &str) -> String {
        sha1_hex(s)
    }

    #[test]
    fn lengths() {
        let p = PasswordPolicy::default();
        let v = p
            .check_password(&sha("hunter2"), 7, "Alice", &g(&["user"]), Some(0))
            .unwrap();
        assert_eq!(
            v.reasons.iter().map(|r| r.code.as_str()).collect::<Vec<_>>(),
            ["too-short"]
        );
        assert!(
            p.check_password(&sha("correct horse"), 13, "Alice", &g(&["user"]), None)
                .unwrap()
                .ok
        );
        let v = p
            .check_password(&sha("correct horse"), 13, "Alice", &g(&["sysop"]), None)
            .unwrap();
        assert_eq!(v.reasons[0].code, ReasonCode::TooShort);
        assert!(v.reasons[0].message.contains("15"));
        // Long passwords and no composition rules.
        assert!(p.check_password(&sha("x"), 64, "Alice", &[], None).unwrap().ok);
        assert!(p.check_password(&sha("x"), 4096, "Alice", &[], None).unwrap().ok);
        assert_eq!(
            p.check_password(&sha("x"), 4097, "Alice", &[], None).unwrap().reasons[0].code,
            ReasonCode::TooLong
        );
    }

    #[test]
    fn breached_and_username() {
        let p = PasswordPolicy::default();
        let v = p
            .check_password(&sha("password1"), 9, "Bob", &[], Some(2_000_000))
            .unwrap();
        assert!(!v.ok);
        assert_eq!(v.reasons[0].code, ReasonCode::Breached);
        for (typed, user) in [
            ("Some_user", "Some_user"),
            ("some_user", "Some_user"),
            ("Some user", "some_user"),
        ] {
            let v = p
                .check_password(&sha(typed).to_uppercase(), 9, user, &[], Some(0))
                .unwrap();
            assert_eq!(
                v.reasons.iter().map(|r| r.code).collect::<Vec<_>>(),
                [ReasonCode::EqualsUsername],
                "{typed}"
            );
        }
        assert!(
            p.check_password(&sha("Some_user2"), 10, "Some_user", &[], None)
                .unwrap()
                .ok
        );
        assert_eq!(
            p.check_password("abc", 9, "x", &[], None),
            Err(PasswordInputError::BadSha1)
        );
        let json = serde_json::to_string(&p.check_password(&sha("a"), 1, "a", &[], None).unwrap()).unwrap();
        assert!(
            json.starts_with(r#"{"ok":false,"reasons":[{"code":"too-short","message":"#),
            "{json}"
        );
        assert!(json.contains(r#""code":"equals-username""#));
    }

    #[test]
    fn normalisation() {
        assert_eq!(mediawiki_normalise("  élan_vital "), "Élan vital");
        assert_eq!(mediawiki_normalise(""), "");
    }
}
