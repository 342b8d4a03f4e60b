//! [`GateConfig`]: the `[gate]` section of the wikiguard configuration (or the flags of
//! `wikiguard gate`). Every key has a default that serves a small wiki; unknown keys are
//! refused so a typo is an error, not a silently ignored setting.

use serde::{Deserialize, Serialize};

use crate::{GateError, IpSet};

/// The gate's settings. `Debug` masks the secrets.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GateConfig {
    /// Address the proxy listens on, e.g. `"127.0.0.1:8080"` or `"[::]:80"`.
    pub listen: String,
    /// The MediaWiki server requests are forwarded to, an `http://` or `https://` URL.
    pub upstream: String,
    /// Path of the policy TOML file; `""` means the built-in default policy.
    pub policy: String,
    /// CIDR ranges of reverse proxies / load balancers in front of the gate whose
    /// `X-Forwarded-For` / `Forwarded` entries are believed. Empty: the peer is the client.
    pub trusted_proxies: Vec<String>,
    /// HMAC key for pass cookies, challenges and session hashes: at least 32 characters.
    /// Empty means the caller generates a random key at start-up (passes then do not survive
    /// a restart and are not shared between nodes).
    pub secret: String,
    /// Earlier secrets still accepted when verifying (key rotation); never used to sign.
    pub previous_secrets: Vec<String>,
    /// Shadow mode for the whole policy: decisions are computed, logged and reported, but
    /// every request is let through.
    pub shadow: bool,
    /// Name of the pass cookie set after a solved challenge.
    pub cookie_name: String,
    /// Lifetime of a pass cookie, in seconds.
    pub pass_ttl_seconds: u64,
    /// How long a challenge may take to be solved, in seconds.
    pub challenge_ttl_seconds: u64,
    /// Largest request head (request line and headers) accepted, in bytes.
    pub max_header_bytes: usize,
    /// Concurrent client connections allowed per client IP.
    pub max_connections_per_ip: usize,
    /// Time limits of the proxy.
    pub timeouts: Timeouts,
    /// A cookie whose name ends with one of these is a MediaWiki session cookie
    /// (MediaWiki names it `{$wgCookiePrefix}_session`).
    pub session_cookie_suffixes: Vec<String>,
    /// Fraction (0.0 to 1.0) of allowed requests written to the decision log; denials,
    /// limits and challenges are always logged.
    pub decision_log_sample: f64,
    /// How long a session seen at login stays known-good, in seconds.
    pub session_ttl_seconds: u64,
    /// Most sessions remembered at once (the oldest are forgotten first).
    pub max_sessions: usize,
    /// Most rate-limit keys the in-memory store keeps (idle ones are evicted first).
    pub rate_store_max_keys: usize,
}

/// Time limits of the proxy, in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    /// Time a client has to send the request head.
    pub header_read_ms: u64,
    /// Time to open a connection to MediaWiki.
    pub upstream_connect_ms: u64,
    /// Time MediaWiki has to start answering once the request is sent, and the longest pause
    /// within its answer's body.
    pub upstream_response_ms: u64,
    /// The longest pause within a client's request body (nginx's `client_body_timeout`).
    pub client_body_ms: u64,
    /// A kept-alive connection to MediaWiki unused this long is closed. Below the wiki's own
    /// keep-alive timeout (Apache's is 5 s by default), so that the gate seldom sends a request
    /// on a connection the wiki is closing.
    pub idle_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header_read_ms: 10_000,
            upstream_connect_ms: 5_000,
            upstream_response_ms: 60_000,
            client_body_ms: 60_000,
            idle_ms: 4_000,
        }
    }
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            listen: "127.0.0.1:8080".into(),
            upstream: "http://127.0.0.1:80".into(),
            policy: String::new(),
            trusted_proxies: Vec::new(),
            secret: String::new(),
            previous_secrets: Vec::new(),
            shadow: false,
            cookie_name: "wikiguard_pass".into(),
            pass_ttl_seconds: 86_400,
            challenge_ttl_seconds: 300,
            max_header_bytes: 32 * 1024,
            max_connections_per_ip: 256,
            timeouts: Timeouts::default(),
            session_cookie_suffixes: vec!["_session".into()],
            decision_log_sample: 0.01,
            session_ttl_seconds: 7 * 86_400,
            max_sessions: 100_000,
            rate_store_max_keys: 1_000_000,
        }
    }
}

impl std::fmt::Debug for GateConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let masked = |s: &str| if s.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("GateConfig")
            .field("listen", &self.listen)
            .field("upstream", &self.upstream)
            .field("policy", &self.policy)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("secret", &masked(&self.secret))
            .field(
                "previous_secrets",
                &self.previous_secrets.iter().map(|s| masked(s)).collect::<Vec<_>>(),
            )
            .field("shadow", &self.shadow)
            .field("cookie_name", &self.cookie_name)
            .field("pass_ttl_seconds", &self.pass_ttl_seconds)
            .field("challenge_ttl_seconds", &self.challenge_ttl_seconds)
            .field("max_header_bytes", &self.max_header_bytes)
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .field("timeouts", &self.timeouts)
            .field("session_cookie_suffixes", &self.session_cookie_suffixes)
            .field("decision_log_sample", &self.decision_log_sample)
            .field("session_ttl_seconds", &self.session_ttl_seconds)
            .field("max_sessions", &self.max_sessions)
            .field("rate_store_max_keys", &self.rate_store_max_keys)
            .finish()
    }
}

/// Shortest accepted secret.
pub const MIN_SECRET_LEN: usize = 32;

impl GateConfig {
    /// Checks every key; the first problem found is returned, naming the key.
    pub fn validate(&self) -> Result<(), GateError> {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(GateError::config(
                "listen",
                format!("{:?} is not an address:port", self.listen),
            ));
        }
        validate_upstream(&self.upstream)?;
        IpSet::parse(&self.trusted_proxies).map_err(|e| GateError::config("trusted_proxies", e.to_string()))?;
        if !self.secret.is_empty() && self.secret.chars().count() < MIN_SECRET_LEN {
            return Err(GateError::config(
                "secret",
                format!("must be at least {MIN_SECRET_LEN} characters (or empty to generate one at start-up)"),
            ));
        }
        for (i, s) in self.previous_secrets.iter().enumerate() {
            if s.chars().count() < MIN_SECRET_LEN {
                return Err(GateError::config(
                    &format!("previous_secrets[{i}]"),
                    format!("must be at least {MIN_SECRET_LEN} characters"),
                ));
            }
        }
        if self.cookie_name.is_empty()
            || !self
                .cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        {
            return Err(GateError::config(
                "cookie_name",
                "use letters, digits, '_', '-' or '.' only",
            ));
        }
        let positive = [
            ("pass_ttl_seconds", self.pass_ttl_seconds),
            ("challenge_ttl_seconds", self.challenge_ttl_seconds),
            ("session_ttl_seconds", self.session_ttl_seconds),
            ("timeouts.header_read_ms", self.timeouts.header_read_ms),
            ("timeouts.upstream_connect_ms", self.timeouts.upstream_connect_ms),
            ("timeouts.upstream_response_ms", self.timeouts.upstream_response_ms),
            ("timeouts.client_body_ms", self.timeouts.client_body_ms),
            ("timeouts.idle_ms", self.timeouts.idle_ms),
            ("max_connections_per_ip", self.max_connections_per_ip as u64),
            ("max_sessions", self.max_sessions as u64),
            ("rate_store_max_keys", self.rate_store_max_keys as u64),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(GateError::config(key, "must be greater than 0"));
            }
        }
        if self.max_header_bytes < 1024 {
            return Err(GateError::config("max_header_bytes", "must be at least 1024"));
        }
        if !(0.0..=1.0).contains(&self.decision_log_sample) {
            return Err(GateError::config("decision_log_sample", "must be between 0.0 and 1.0"));
        }
        if self.session_cookie_suffixes.iter().any(|s| s.is_empty()) {
            return Err(GateError::config(
                "session_cookie_suffixes",
                "an empty suffix would match every cookie",
            ));
        }
        Ok(())
    }
}

fn validate_upstream(upstream: &str) -> Result<(), GateError> {
    let bad = |m: &str| GateError::config("upstream", format!("{upstream:?}: {m}"));
    let uri: http::Uri = upstream.parse().map_err(|_| bad("not a URL"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(bad("use an http:// or https:// URL")),
    }
    if uri.authority().is_none() {
        return Err(bad("the URL has no host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_parse_empty() {
        GateConfig::default().validate().unwrap();
        let c: GateConfig = toml::from_str("").unwrap();
        assert_eq!(c, GateConfig::default());
        assert!(toml::from_str::<GateConfig>("secrett = 'x'").is_err());
    }

    #[test]
    fn bad_values_name_the_key() {
        let c = GateConfig {
            secret: "short".into(),
            ..GateConfig::default()
        };
        assert!(matches!(c.validate(), Err(GateError::Config { key, .. }) if key == "secret"));
        let c = GateConfig {
            upstream: "ftp://x".into(),
            ..GateConfig::default()
        };
        assert!(matches!(c.validate(), Err(GateError::Config { key, .. }) if key == "upstream"));
        let c = GateConfig {
            trusted_proxies: vec!["10.0.0.0/99".into()],
            ..GateConfig::default()
        };
        assert!(matches!(c.validate(), Err(GateError::Config { key, .. }) if key == "trusted_proxies"));
        let c = GateConfig {
            decision_log_sample: 2.0,
            ..GateConfig::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn debug_masks_secrets() {
        let c = GateConfig {
            secret: "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t".into(),
            ..GateConfig::default()
        };
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }
}
