//! [`SessionRegistry`]: which MediaWiki sessions belong to a user who logged in.
//!
//! The gate watches responses: when MediaWiki answers a request with a status below 400 and
//! sets a cookie whose name ends in `UserID` or `UserName` (with a non-empty value) together
//! with a session cookie (name ending in one of `session_cookie_suffixes`, `_session` by
//! default), that is a successful login (Special:UserLogin, `api.php?action=login` or
//! `clientlogin`), and the new session cookie value is remembered. Also remembered: a new
//! session cookie set in answer to a request that already carried a known session
//! (MediaWiki renews the session id). A response that clears the `UserID` cookie (empty
//! value, `deleted`, `Max-Age=0`) to a known session is a logout: that session is forgotten.
//!
//! Only a keyed hash (HMAC-SHA-256 with a key derived from the gate secret, truncated to
//! 128 bits) is stored, never the cookie: a memory dump does not hand out sessions. The
//! registry is bounded (`max` entries; the ones expiring soonest go first) and every entry
//! expires `ttl` after it was last seen.

use std::collections::HashMap;
use std::sync::Mutex;

use http::HeaderMap;

use crate::crypto::HmacKey;

type Digest = [u8; 16];

/// The remembered logged-in sessions.
pub struct SessionRegistry {
    key: HmacKey,
    suffixes: Vec<String>,
    ttl_ms: u64,
    max: usize,
    entries: Mutex<HashMap<Digest, u64>>,
}

impl std::fmt::Debug for SessionRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRegistry")
            .field("len", &self.len())
            .field("max", &self.max)
            .finish()
    }
}

impl SessionRegistry {
    /// A registry hashing with `key`, recognising session cookies by `suffixes`, keeping a
    /// session `ttl_ms` after it was last seen, and at most `max` sessions.
    pub fn new(key: [u8; 32], suffixes: Vec<String>, ttl_ms: u64, max: usize) -> Self {
        SessionRegistry {
            key: HmacKey::new(&key),
            suffixes,
            ttl_ms,
            max: max.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn digest(&self, value: &str) -> Digest {
        let mac = self.key.mac(&[b"wikiguard-session", value.as_bytes()]);
        let mut d = [0u8; 16];
        d.copy_from_slice(&mac[..16]);
        d
    }

    fn is_session_name(&self, name: &str) -> bool {
        self.suffixes.iter().any(|s| name.ends_with(s.as_str()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, u64>> {
        match self.entries.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Session cookie values in a request's `Cookie` headers, hashed.
    fn session_digests<'h>(&'h self, headers: &'h HeaderMap) -> impl Iterator<Item = Digest> + 'h {
        request_cookies(headers)
            .filter(|(n, v)| self.is_session_name(n) && !v.is_empty())
            .map(|(_, v)| self.digest(v))
    }

    fn request_sessions(&self, headers: &HeaderMap) -> Vec<Digest> {
        self.session_digests(headers).collect()
    }

    /// A keyed hash of the request's session cookie, hex, for rate-limit keys (`"none"`
    /// without one). Not proof of anything: anyone can make up a cookie.
    pub fn session_key(&self, headers: &HeaderMap) -> String {
        match self.session_digests(headers).next() {
            Some(d) => crate::crypto::hex(&d[..8]),
            None => "none".into(),
        }
    }

    /// Looks at MediaWiki's answer to a request (see the module documentation for the rule).
    pub fn observe_response(
        &self,
        request_headers: &HeaderMap,
        status: u16,
        response_headers: &HeaderMap,
        now_ms: u64,
    ) {
        let mut new_sessions = Vec::new();
        let mut user_set = false;
        let mut user_cleared = false;
        for value in response_headers.get_all(http::header::SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let Some(sc) = parse_set_cookie(text) else { continue };
            if sc.name.ends_with("UserID") || sc.name.ends_with("UserName") {
                if sc.cleared {
                    user_cleared = true;
                } else {
                    user_set = true;
                }
            } else if self.is_session_name(sc.name) && !sc.cleared {
                new_sessions.push(self.digest(sc.value));
            }
        }
        if user_cleared && !user_set {
            let ds = self.request_sessions(request_headers);
            let mut map = self.lock();
            for d in ds {
                map.remove(&d);
            }
            return;
        }
        // Most answers set no session cookie: they need neither the request's sessions hashed
        // nor the registry's lock.
        if status >= 400 || new_sessions.is_empty() {
            return;
        }
        if !user_set && !self.any_known(request_headers, now_ms) {
            return;
        }
        let expires = now_ms.saturating_add(self.ttl_ms);
        let mut map = self.lock();
        for d in new_sessions {
            if map.len() >= self.max && !map.contains_key(&d) {
                prune(&mut map, self.max, now_ms);
            }
            map.insert(d, expires);
        }
    }

    /// Whether the request carries a session that is known and not expired (changes nothing).
    fn any_known(&self, headers: &HeaderMap, now_ms: u64) -> bool {
        let ds = self.request_sessions(headers);
        if ds.is_empty() {
            return false;
        }
        let map = self.lock();
        ds.iter().any(|d| map.get(d).is_some_and(|exp| *exp > now_ms))
    }

    /// True when the request carries a session cookie seen at a login and not expired. A
    /// known session's lifetime is extended (sliding expiry).
    pub fn is_known(&self, headers: &HeaderMap, now_ms: u64) -> bool {
        let ds = self.request_sessions(headers);
        if ds.is_empty() {
            return false;
        }
        let mut map = self.lock();
        let mut known = false;
        for d in ds {
            if let Some(exp) = map.get_mut(&d) {
                if *exp > now_ms {
                    *exp = now_ms.saturating_add(self.ttl_ms);
                    known = true;
                } else {
                    map.remove(&d);
                }
            }
        }
        known
    }

    /// Like [`SessionRegistry::is_known`] but changes nothing (for explanations).
    pub fn peek(&self, headers: &HeaderMap, now_ms: u64) -> bool {
        self.any_known(headers, now_ms)
    }

    /// How many sessions are remembered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no session is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Drops expired entries, then the eighth expiring soonest.
fn prune(map: &mut HashMap<Digest, u64>, max: usize, now_ms: u64) {
    map.retain(|_, exp| *exp > now_ms);
    let target = max - (max / 8).max(1).min(max);
    if map.len() > target {
        let mut exps: Vec<u64> = map.values().copied().collect();
        let drop = map.len() - target;
        let (_, cutoff, _) = exps.select_nth_unstable(drop - 1);
        let cutoff = *cutoff;
        let mut dropped = 0;
        map.retain(|_, exp| {
            if dropped < drop && *exp <= cutoff {
                dropped += 1;
                false
            } else {
                true
            }
        });
    }
}

/// `name=value` pairs of every `Cookie` header.
pub(crate) fn request_cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            let (n, v) = pair.split_once('=')?;
            Some((n.trim(), v.trim().trim_matches('"')))
        })
}

struct SetCookie<'a> {
    name: &'a str,
    value: &'a str,
    cleared: bool,
}

fn parse_set_cookie(text: &str) -> Option<SetCookie<'_>> {
    let mut parts = text.split(';');
    let (name, value) = parts.next()?.split_once('=')?;
    let (name, value) = (name.trim(), value.trim().trim_matches('"'));
    let mut cleared = value.is_empty() || value == "deleted";
    for attr in parts {
        let attr = attr.trim();
        if let Some((k, v)) = attr.split_once('=') {
            if k.trim().eq_ignore_ascii_case("max-age") && v.trim().parse::<i64>().is_ok_and(|n| n <= 0) {
                cleared = true;
            }
            if k.trim().eq_ignore_ascii_case("expires") && v.contains("1970") {
                cleared = true;
            }
        }
    }
    Some(SetCookie { name, value, cleared })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn reg() -> SessionRegistry {
        SessionRegistry::new([7; 32], vec!["_session".into()], 1000, 4)
    }

    fn cookie(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, HeaderValue::from_str(v).unwrap());
        h
    }

    fn login_response(session: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.append(
            http::header::SET_COOKIE,
            HeaderValue::from_str(&format!("my_wiki_session={session}; path=/; HttpOnly")).unwrap(),
        );
        h.append(
            http::header::SET_COOKIE,
            HeaderValue::from_static("my_wiki_UserID=3; path=/"),
        );
        h.append(
            http::header::SET_COOKIE,
            HeaderValue::from_static("my_wiki_UserName=Alice; path=/"),
        );
        h
    }

    #[test]
    fn login_then_known_then_expired() {
        let r = reg();
        r.observe_response(&HeaderMap::new(), 302, &login_response("abc"), 0);
        assert!(r.is_known(&cookie("my_wiki_session=abc"), 10));
        assert!(!r.is_known(&cookie("my_wiki_session=abd"), 10));
        assert!(!r.is_known(&cookie("other=abc"), 10));
        assert!(r.is_known(&cookie("x=1; my_wiki_session=abc"), 900)); // slides to 1900
        assert!(r.is_known(&cookie("my_wiki_session=abc"), 1800));
        assert!(!r.is_known(&cookie("my_wiki_session=abc"), 5000));
    }

    #[test]
    fn session_without_login_is_not_remembered() {
        let r = reg();
        let mut h = HeaderMap::new();
        h.append(
            http::header::SET_COOKIE,
            HeaderValue::from_static("my_wiki_session=anon; path=/"),
        );
        r.observe_response(&HeaderMap::new(), 200, &h, 0);
        assert!(!r.is_known(&cookie("my_wiki_session=anon"), 1));
        // a failed login does not count either
        r.observe_response(&HeaderMap::new(), 403, &login_response("bad"), 0);
        assert!(!r.is_known(&cookie("my_wiki_session=bad"), 1));
    }

    #[test]
    fn renewal_and_logout() {
        let r = reg();
        r.observe_response(&HeaderMap::new(), 200, &login_response("one"), 0);
        let mut renew = HeaderMap::new();
        renew.append(
            http::header::SET_COOKIE,
            HeaderValue::from_static("my_wiki_session=two; path=/"),
        );
        r.observe_response(&cookie("my_wiki_session=one"), 200, &renew, 1);
        assert!(r.is_known(&cookie("my_wiki_session=two"), 2));
        let mut logout = HeaderMap::new();
        logout.append(
            http::header::SET_COOKIE,
            HeaderValue::from_static("my_wiki_UserID=deleted; expires=Thu, 01 Jan 1970 00:00:01 GMT"),
        );
        r.observe_response(&cookie("my_wiki_session=two"), 200, &logout, 3);
        assert!(!r.is_known(&cookie("my_wiki_session=two"), 4));
    }

    #[test]
    fn bounded() {
        let r = reg();
        for i in 0..100 {
            r.observe_response(&HeaderMap::new(), 200, &login_response(&format!("s{i}")), i);
            assert!(r.len() <= 4);
        }
        assert!(r.is_known(&cookie("my_wiki_session=s99"), 100));
    }
}
