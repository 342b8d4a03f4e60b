//! New-device notices.
//!
//! A browser that signed in gets a long-lived **device cookie**: `v1.{id}.{sig}` where `id`
//! is 16 random bytes in hex and `sig` is HMAC-SHA256(key, id) in hex, checked in constant
//! time. The cookie proves nothing about the user (it is not a session); it only lets us
//! recognise "this browser again" without fingerprinting.
//!
//! On each successful sign-in [`DeviceNotifier::login_succeeded`] looks up, for that account,
//! when the device and the network prefix (/24 or /64) were last seen. With the default rule
//! the owner is notified only when **both** are new within the window (30 days): a known
//! browser on a new network is travel, a new browser on the home network is a new laptop;
//! both new at once is what a stranger with the password looks like. An account with no
//! history at all (first sign-in since wikiguard was installed) is not notified, or every
//! user would get a notice on day one.
//!
//! The function only reads history; it returns the [`Sighting`] for the caller to record.

use crate::keys::{to_hex, HmacKey};
use crate::net::network_prefix;
use crate::policy::mediawiki_normalise;
use crate::random::RandomSource;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use subtle::ConstantTimeEq;

const CONTEXT: &[u8] = b"wikiguard device cookie v1";

/// Where sign-ins were seen before.
pub trait DeviceHistory {
    /// When `device_id` last signed in to `user`, if ever.
    fn device_last_seen(&self, user: &str, device_id: &str) -> Option<u64>;
    /// When `user` last signed in from network `prefix`, if ever.
    fn prefix_last_seen(&self, user: &str, prefix: &str) -> Option<u64>;
    /// Whether `user` has any recorded sign-in.
    fn has_history(&self, user: &str) -> bool;
}

/// A sign-in to record in the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sighting {
    /// The account (MediaWiki-normalised).
    pub user: String,
    /// The device id from the cookie.
    pub device_id: String,
    /// The network prefix, e.g. `192.0.2.0/24`.
    pub prefix: String,
    /// Unix time.
    pub at: u64,
}

/// When to notify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyRule {
    /// Both the browser and the network are new (default).
    #[default]
    DeviceAndNetwork,
    /// Either is new.
    DeviceOrNetwork,
}

/// The answer to [`DeviceNotifier::login_succeeded`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginNotice {
    /// Tell the owner about this sign-in.
    pub notify: bool,
    /// Why, for the user, e.g. "first sign-in from this browser and network in 30 days".
    pub reason: Option<String>,
    /// Set this cookie (the request had none or an invalid one).
    pub new_cookie: Option<String>,
    /// To record in the history.
    pub sighting: Sighting,
}

/// Issues and checks device cookies and decides on notices.
#[derive(Debug, Clone)]
pub struct DeviceNotifier {
    key: HmacKey,
    /// History window in days (default 30).
    pub window_days: u64,
    /// When to notify.
    pub rule: NotifyRule,
}

impl DeviceNotifier {
    /// A notifier with the cookie key, a 30-day window and the default rule.
    pub fn new(key: HmacKey) -> Self {
        DeviceNotifier {
            key,
            window_days: 30,
            rule: NotifyRule::default(),
        }
    }

    fn sign(&self, id: &str) -> String {
        to_hex(&self.key.mac(CONTEXT, &[id.as_bytes()]))
    }

    /// A new cookie value and its device id.
    pub fn issue(&self, rng: &mut dyn RandomSource) -> (String, String) {
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        let id = to_hex(&bytes);
        (format!("v1.{id}.{}", self.sign(&id)), id)
    }

    /// The device id of a genuine cookie, `None` for a forged or malformed one.
    pub fn verify(&self, cookie: &str) -> Option<String> {
        let mut parts = cookie.trim().split('.');
        let (Some("v1"), Some(id), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return None;
        };
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let expected = self.sign(id);
        bool::from(expected.as_bytes().ct_eq(sig.as_bytes())).then(|| id.to_owned())
    }

    /// A successful sign-in of `user` from `ip`, with the device cookie the request carried.
    #[allow(clippy::too_many_arguments)] // Each is a distinct fact of the sign-in; a struct would only rename them.
    pub fn login_succeeded(
        &self,
        user: &str,
        device_cookie: Option<&str>,
        ip: IpAddr,
        user_agent: &str,
        seen: &dyn DeviceHistory,
        rng: &mut dyn RandomSource,
        now: u64,
    ) -> LoginNotice {
        let user = mediawiki_normalise(user);
        let prefix = network_prefix(ip).to_string();
        let since = now.saturating_sub(self.window_days.saturating_mul(86_400));
        let (device_id, new_cookie) = match device_cookie.and_then(|c| self.verify(c)) {
            Some(id) => (id, None),
            None => {
                let (cookie, id) = self.issue(rng);
                (id, Some(cookie))
            }
        };
        let recent = |t: Option<u64>| t.is_some_and(|t| t >= since);
        let device_new = new_cookie.is_some() || !recent(seen.device_last_seen(&user, &device_id));
        let network_new = !recent(seen.prefix_last_seen(&user, &prefix));
        let days = self.window_days;
        let browser = browser_family(user_agent);
        let what = match (device_new, network_new) {
            (true, true) => Some(format!(
                "first sign-in from this browser{browser} and network in {days} days"
            )),
            (true, false) if self.rule == NotifyRule::DeviceOrNetwork => {
                Some(format!("first sign-in from this browser{browser} in {days} days"))
            }
            (false, true) if self.rule == NotifyRule::DeviceOrNetwork => {
                Some(format!("first sign-in from this network in {days} days"))
            }
            _ => None,
        };
        let notify = what.is_some() && seen.has_history(&user);
        LoginNotice {
            notify,
            reason: if notify { what } else { None },
            new_cookie,
            sighting: Sighting {
                user,
                device_id,
                prefix,
                at: now,
            },
        }
    }
}

/// A coarse browser name for the message (" (Firefox)"), or nothing. Only a handful of
/// families: the message should help the owner recognise their own sign-in, not fingerprint.
fn browser_family(ua: &str) -> &'static str {
    if ua.contains("Edg/") {
        " (Edge)"
    } else if ua.contains("Firefox/") {
        " (Firefox)"
    } else if ua.contains("Chrome/") {
        " (Chrome)"
    } else if ua.contains("Safari/") {
        " (Safari)"
    } else {
        ""
    }
}

/// A bounded in-memory [`DeviceHistory`] for tests and single-node use.
#[derive(Debug)]
pub struct InMemoryDeviceHistory {
    max_entries: usize,
    map: Mutex<HashMap<(String, bool, String), u64>>,
}

impl InMemoryDeviceHistory {
    /// A history of at most `max_entries` (user, device or prefix) pairs; the oldest go first.
    pub fn new(max_entries: usize) -> Self {
        InMemoryDeviceHistory {
            max_entries: max_entries.max(2),
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, bool, String), u64>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a sighting.
    pub fn record(&self, s: &Sighting) {
        let mut map = self.lock();
        while map.len() + 2 > self.max_entries {
            let oldest = map.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone());
            match oldest {
                Some(k) => map.remove(&k),
                None => break,
            };
        }
        map.insert((s.user.clone(), true, s.device_id.clone()), s.at);
        map.insert((s.user.clone(), false, s.prefix.clone()), s.at);
    }
}

impl DeviceHistory for InMemoryDeviceHistory {
    fn device_last_seen(&self, user: &str, device_id: &str) -> Option<u64> {
        self.lock().get(&(user.to_owned(), true, device_id.to_owned())).copied()
    }

    fn prefix_last_seen(&self, user: &str, prefix: &str) -> Option<u64> {
        self.lock().get(&(user.to_owned(), false, prefix.to_owned())).copied()
    }

    fn has_history(&self, user: &str) -> bool {
        self.lock().keys().any(|(u, _, _)| u == user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::TestRandom;
    use proptest::prelude::*;

    const DAY: u64 = 86_400;
    const FF: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

    fn notifier() -> DeviceNotifier {
        DeviceNotifier::new(HmacKey::new([8; 32]))
    }

    #[test]
    fn cookies() {
        let n = notifier();
        let (c, id) = n.issue(&mut TestRandom::new(1));
        assert_eq!(n.verify(&c), Some(id.clone()));
        let forged = format!("v1.{id}.{}", "0".repeat(64));
        assert_eq!(n.verify(&forged), None);
        assert_eq!(DeviceNotifier::new(HmacKey::new([9; 32])).verify(&c), None);
        assert_eq!(n.verify(&format!("{c}.x")), None);
        assert_eq!(n.verify(""), None);
    }

    #[test]
    fn notices() {
        let n = notifier();
        let h = InMemoryDeviceHistory::new(1000);
        let mut rng = TestRandom::new(2);
        let home: IpAddr = "192.0.2.10".parse().unwrap();
        let mut now = 100 * DAY;
        // First sign-in ever: no notice, but a cookie.
        let first = n.login_succeeded("Alice", None, home, FF, &h, &mut rng, now);
        assert!(!first.notify);
        let cookie = first.new_cookie.clone().unwrap();
        h.record(&first.sighting);
        // Same browser, same network: nothing.
        now += DAY;
        let again = n.login_succeeded(
            "alice",
            Some(&cookie),
            "192.0.2.99".parse().unwrap(),
            FF,
            &h,
            &mut rng,
            now,
        );
        assert_eq!((again.notify, again.new_cookie.as_deref()), (false, None));
        h.record(&again.sighting);
        // Same browser from a hotel: travel, no notice by default.
        let hotel: IpAddr = "2001:db8:5::1".parse().unwrap();
        assert!(
            !n.login_succeeded("Alice", Some(&cookie), hotel, FF, &h, &mut rng, now)
                .notify
        );
        // New browser at home: no notice by default.
        assert!(!n.login_succeeded("Alice", None, home, FF, &h, &mut rng, now).notify);
        // New browser on a new network: notice.
        let stranger = n.login_succeeded("Alice", Some("v1.forged.sig"), hotel, FF, &h, &mut rng, now);
        assert!(stranger.notify);
        assert_eq!(
            stranger.reason.as_deref(),
            Some("first sign-in from this browser (Firefox) and network in 30 days")
        );
        assert!(stranger.new_cookie.is_some());
        // Known browser and network, but last seen 31 days ago: notice again.
        now += 31 * DAY;
        let late = n.login_succeeded("Alice", Some(&cookie), home, "", &h, &mut rng, now);
        assert_eq!(
            late.reason.as_deref(),
            Some("first sign-in from this browser and network in 30 days")
        );
        // The stricter rule notifies on either.
        let strict = DeviceNotifier {
            rule: NotifyRule::DeviceOrNetwork,
            ..notifier()
        };
        h.record(&late.sighting);
        let r = strict.login_succeeded("Alice", Some(&cookie), hotel, FF, &h, &mut rng, now);
        assert_eq!(r.reason.as_deref(), Some("first sign-in from this network in 30 days"));
    }

    #[test]
    fn history_is_bounded() {
        let h = InMemoryDeviceHistory::new(10);
        for i in 0..100 {
            h.record(&Sighting {
                user: format!("u{i}"),
                device_id: "d".into(),
                prefix: "p".into(),
                at: i,
            });
            assert!(h.lock().len() <= 10);
        }
        assert!(h.has_history("u99") && !h.has_history("u0"));
    }

    proptest! {
        #[test]
        fn verify_never_panics(s in "\\PC{0,120}") {
            let _ = notifier().verify(&s);
        }
    }
}
