//! The two error types: [`GateError`] for configuration and policy (a user wrote something
//! wrong: say what and where) and [`ChallengeError`] for a refused challenge answer (a client
//! sent something wrong: answer 4xx with the stable [`ChallengeError::code`]).

/// A configuration or policy error. Nothing changes when one is returned: a bad policy on
/// reload is refused and the old one stays.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    /// A `[gate]` configuration key has a value that cannot work.
    #[error("gate config: {key}: {message}")]
    Config {
        /// The key, e.g. `secret` or `timeouts.idle_ms`.
        key: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// The policy file is not valid TOML, has an unknown key, or means something impossible
    /// (a bad regex, a rule naming a limit that does not exist…).
    #[error("{}", render_policy_error(*.line, *.column, .rule.as_deref(), .message))]
    Policy {
        /// 1-based line of the offending text (0 when unknown).
        line: usize,
        /// 1-based column (0 when unknown).
        column: usize,
        /// The name of the rule the error is in, when it is inside a `[[rules]]` entry.
        rule: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// An IP address or CIDR range that does not parse.
    #[error("invalid IP range {value:?}: {message}")]
    Cidr {
        /// The text as given.
        value: String,
        /// Why it was refused.
        message: String,
    },
}

impl GateError {
    /// A stable, greppable code for the error kind (`config`, `policy`, `cidr`).
    pub fn code(&self) -> &'static str {
        match self {
            GateError::Config { .. } => "config",
            GateError::Policy { .. } => "policy",
            GateError::Cidr { .. } => "cidr",
        }
    }

    pub(crate) fn config(key: &str, message: impl Into<String>) -> Self {
        GateError::Config {
            key: key.to_string(),
            message: message.into(),
        }
    }
}

fn render_policy_error(line: usize, column: usize, rule: Option<&str>, message: &str) -> String {
    let mut out = String::from("policy");
    if line > 0 {
        out.push_str(&format!(" line {line}, column {column}"));
    }
    if let Some(rule) = rule {
        out.push_str(&format!(" (rule {rule:?})"));
    }
    out.push_str(": ");
    out.push_str(message);
    out
}

/// Why a challenge answer (or the slow no-JavaScript path) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// The body is not a form or JSON object with `challenge` and `nonce` (or `slow=1`).
    #[error("malformed challenge answer: {0}")]
    Malformed(String),
    /// The challenge token was not issued by this gate (or by a key no longer accepted).
    #[error("the challenge was not issued by this gate")]
    BadSignature,
    /// The challenge token has expired: load the page again for a new one.
    #[error("the challenge has expired; reload the page")]
    Expired,
    /// The challenge was issued to another client network or user agent.
    #[error("the challenge was issued to another client")]
    WrongClient,
    /// SHA-256(challenge + nonce) does not have enough leading zero bits.
    #[error("the proof of work is not sufficient")]
    InsufficientWork,
    /// The slow (no-JavaScript) path was used before its waiting time had passed.
    #[error("too early: wait {wait_secs} more seconds")]
    TooEarly {
        /// Seconds still to wait.
        wait_secs: u64,
    },
}

impl ChallengeError {
    /// A stable code for the JSON error body `{"error": {"code": ..., "message": ...}}`.
    pub fn code(&self) -> &'static str {
        match self {
            ChallengeError::Malformed(_) => "challenge_malformed",
            ChallengeError::BadSignature => "challenge_forged",
            ChallengeError::Expired => "challenge_expired",
            ChallengeError::WrongClient => "challenge_rebound",
            ChallengeError::InsufficientWork => "challenge_insufficient_work",
            ChallengeError::TooEarly { .. } => "challenge_too_early",
        }
    }

    /// The HTTP status the proxy should answer with (400, or 403 for a forged token).
    pub fn status(&self) -> u16 {
        match self {
            ChallengeError::BadSignature | ChallengeError::WrongClient => 403,
            ChallengeError::TooEarly { .. } => 429,
            _ => 400,
        }
    }
}
