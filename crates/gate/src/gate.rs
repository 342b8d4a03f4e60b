//! [`Gate`]: from a request to a [`Decision`], in phases (pingora style): classify → price
//! → tier → rules → budgets → decision, with shadow mode applied last.
//!
//! ```text
//!   request ─▶ classify ─▶ cost ─▶ tier ──────────────▶ deciding rules (in order)
//!                                   │ known-good: pass     │ allow ─▶ Allow (no budget)
//!                                   │   cookie, session    │ deny  ─▶ Deny
//!                                   │   seen at login,     │ challenge ─▶ browser: Challenge
//!                                   │   good bot           │            (Deny once the tier's
//!                                   │ else score from      │            challenge_limit is spent)
//!                                   │   weight rules:      │          machine: [machine] limit,
//!                                   │   unknown <          │            429 + etiquette message
//!                                   │   suspicious <       │ limit ─▶ over: Limit; else ↓
//!                                   │   abusive            ▼
//!                                   └────────────▶ tier budgets (cost-weighted GCRA)
//!                                                    within: Allow; over: tier's over_budget
//! ```

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use http::{HeaderMap, Method, Uri};
use serde::{Deserialize, Serialize};

use crate::challenge::{self, PassStatus};
use crate::classify::{classify_decoded, decode};
use crate::crypto::{hex, HmacKey, Keys};
use crate::policy::{Effect, MatchInput, OverBudget};
use crate::session::request_cookies;
use crate::{
    client_prefix, ChallengeError, Class, Classified, GateConfig, GateError, IpSet, KeyPart, Policy, RateLimit,
    RateStore, SessionRegistry,
};

/// How much the gate trusts a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// A session seen at login, a listed good bot, or a valid pass cookie: never challenged.
    KnownGood,
    /// Nothing known either way.
    Unknown,
    /// The suspicion score reached `[scores] suspicious`.
    Suspicious,
    /// The suspicion score reached `[scores] abusive`.
    Abusive,
}

impl Tier {
    /// All tiers, most trusted first.
    pub const ALL: [Tier; 4] = [Tier::KnownGood, Tier::Unknown, Tier::Suspicious, Tier::Abusive];

    /// `"known_good"`, `"unknown"`, `"suspicious"`, `"abusive"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::KnownGood => "known_good",
            Tier::Unknown => "unknown",
            Tier::Suspicious => "suspicious",
            Tier::Abusive => "abusive",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Tier::KnownGood => 0,
            Tier::Unknown => 1,
            Tier::Suspicious => 2,
            Tier::Abusive => 3,
        }
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The parts of a request the decision looks at. `client_ip` is the result of
/// [`crate::client_ip`] (never a header value the client chose).
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// The method.
    pub method: &'a Method,
    /// The request target (path and query; scheme/authority ignored).
    pub uri: &'a Uri,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The client address.
    pub client_ip: IpAddr,
}

/// A decision's reference id: twelve lowercase hex digits, quoted on refusal pages and found in
/// the decision log. Kept inline (it is made for every request, shown for few).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reference([u8; 12]);

impl Reference {
    fn from_mac(mac: &[u8]) -> Reference {
        let mut out = [b'0'; 12];
        crate::crypto::hex_into(&mut out, mac);
        Reference(out)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("000000000000")
    }
}

impl std::ops::Deref for Reference {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum Decision {
    /// Proxy it.
    Allow {
        /// The client's tier.
        tier: Tier,
        /// Reference id (for the decision log).
        reference: Reference,
    },
    /// 403 with a short explanation ([`crate::deny_page`]).
    Deny {
        /// Why, for the page.
        reason: String,
        /// Reference id to show.
        reference: Reference,
    },
    /// The challenge page ([`Gate::challenge_page`]), status 403 (not 200: crawlers must not
    /// index it).
    Challenge {
        /// Leading zero bits required.
        difficulty: u8,
        /// Reference id to show.
        reference: Reference,
    },
    /// 429 with `Retry-After` and `RateLimit-*` headers ([`Decision::headers`]).
    Limit {
        /// Seconds until the request would be allowed.
        retry_after_secs: u64,
        /// The budget size (burst) of the limit hit.
        limit: u64,
        /// Units left (0 or close to it).
        remaining: u64,
        /// Seconds until the budget is full again.
        reset_secs: u64,
        /// The limit's name.
        policy_name: String,
        /// For machine clients: the API etiquette message to put in the body.
        machine_message: Option<String>,
        /// Reference id to show.
        reference: Reference,
    },
}

impl Decision {
    /// The reference id.
    pub fn reference(&self) -> &Reference {
        match self {
            Decision::Allow { reference, .. }
            | Decision::Deny { reference, .. }
            | Decision::Challenge { reference, .. }
            | Decision::Limit { reference, .. } => reference,
        }
    }

    /// `"allow"`, `"deny"`, `"challenge"`, `"limit"` (metrics label).
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::Allow { .. } => "allow",
            Decision::Deny { .. } => "deny",
            Decision::Challenge { .. } => "challenge",
            Decision::Limit { .. } => "limit",
        }
    }

    /// The HTTP status of the gate's own answer (`None`: proxy the request).
    pub fn status(&self) -> Option<u16> {
        match self {
            Decision::Allow { .. } => None,
            Decision::Deny { .. } | Decision::Challenge { .. } => Some(403),
            Decision::Limit { .. } => Some(429),
        }
    }

    /// Headers for the gate's answer: for a Limit, `Retry-After`, `RateLimit-Limit`,
    /// `RateLimit-Remaining`, `RateLimit-Reset` and `RateLimit-Policy`; for every refusal,
    /// `X-Wikiguard-Reference`.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Decision::Limit {
            retry_after_secs,
            limit,
            remaining,
            reset_secs,
            policy_name,
            ..
        } = self
        {
            out.push(("retry-after", retry_after_secs.to_string()));
            out.push(("ratelimit-limit", limit.to_string()));
            out.push(("ratelimit-remaining", remaining.to_string()));
            out.push(("ratelimit-reset", reset_secs.to_string()));
            out.push(("ratelimit-policy", format!("{limit};name=\"{policy_name}\"")));
        }
        if !matches!(self, Decision::Allow { .. }) {
            out.push(("x-wikiguard-reference", self.reference().to_string()));
        }
        out
    }
}

/// A decision with what led to it (for logs and metrics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// What to do (Allow in shadow mode).
    pub decision: Decision,
    /// What the policy decided; differs from `decision` only in shadow mode.
    pub would_be: Decision,
    /// True when shadow mode (config, policy file or the deciding rule) turned it into Allow.
    pub shadow: bool,
    /// The rule that decided, `"budget:NAME"` for a tier budget, or `None` (allowed by default).
    pub rule: Option<String>,
    /// Shadow rules that matched (would have decided).
    pub shadow_rules: Vec<String>,
    /// The classified request.
    pub classified: Classified,
    /// Its cost in budget units.
    pub cost: u32,
    /// The tier.
    pub tier: Tier,
    /// The suspicion score.
    pub score: i64,
}

/// One rule as seen by [`Gate::explain`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleTrace {
    /// Rule name.
    pub name: String,
    /// Its action (`allow`, `deny`, `challenge`, `limit`, `weight`).
    pub action: String,
    /// Whether its conditions held (`false` for rules after the deciding one: not evaluated).
    pub matched: bool,
    /// Whether it was reached (rules after the deciding one are not).
    pub evaluated: bool,
    /// A shadow rule.
    pub shadow: bool,
    /// Weight added, for weight rules.
    pub weight: Option<i64>,
    /// A note, e.g. "skipped: known-good clients are not challenged".
    pub note: Option<String>,
}

/// One limit as seen by [`Gate::explain`] (state peeked, nothing charged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitTrace {
    /// Limit name.
    pub name: String,
    /// The counter key (contains the client IP or prefix: investigator-only data).
    pub key: String,
    /// Cost this request would be charged.
    pub cost: u32,
    /// Whether it would fit.
    pub allowed: bool,
    /// Units available now.
    pub remaining: u64,
    /// The budget size.
    pub limit: u64,
    /// Milliseconds until the budget is full again.
    pub reset_ms: u64,
    /// When it would not fit: milliseconds until it would.
    pub retry_after_ms: u64,
}

/// What [`Gate::explain`] returns: everything that went into a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The classified request.
    pub classified: Classified,
    /// The class name.
    pub class: Class,
    /// The request's cost.
    pub cost: u32,
    /// The client's network (/24 or /64).
    pub client_prefix: String,
    /// The tier.
    pub tier: Tier,
    /// Why that tier (`"pass cookie"`, `"session seen at login"`, `"good bot NAME"`, `"score"`).
    pub tier_reason: String,
    /// The pass cookie's state.
    pub pass: PassStatus,
    /// The suspicion score.
    pub score: i64,
    /// Every rule in order.
    pub rules: Vec<RuleTrace>,
    /// Every limit consulted.
    pub limits: Vec<LimitTrace>,
    /// The rule that decided (see [`Outcome::rule`]).
    pub deciding_rule: Option<String>,
    /// The policy's decision.
    pub decision: Decision,
    /// The effective decision (Allow when in shadow mode).
    pub effective: Decision,
    /// Whether shadow mode applied.
    pub shadow: bool,
}

/// A solved challenge: the cookie to set and where to send the client back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengePass {
    /// The `Set-Cookie` header value.
    pub set_cookie: String,
    /// A local path to redirect to (303).
    pub return_to: String,
}

/// The policy in force, swapped whole on reload. Every request reads it, so a worker keeps the
/// `Arc` it last saw in a thread-local and only checks a generation number that changes at a
/// reload: no lock word or reference count bounces between the cores on each request.
struct PolicyCell {
    /// Names the policy in `current`: numbers come from one counter for all cells, so no two
    /// policies of any gate in the process share one.
    generation: AtomicU64,
    current: RwLock<Arc<Policy>>,
}

/// The next policy generation number.
static GENERATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// (generation, policy) last read on this thread.
    static SEEN_POLICY: std::cell::RefCell<Option<(u64, Arc<Policy>)>> = const { std::cell::RefCell::new(None) };
}

impl PolicyCell {
    fn new(policy: Policy) -> Self {
        PolicyCell {
            generation: AtomicU64::new(GENERATIONS.fetch_add(1, Ordering::Relaxed)),
            current: RwLock::new(Arc::new(policy)),
        }
    }

    fn set(&self, policy: Policy) {
        let mut guard = match self.current.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *guard = Arc::new(policy);
        drop(guard);
        // After the swap: a reader that sees the new generation then reads the new policy.
        self.generation
            .store(GENERATIONS.fetch_add(1, Ordering::Relaxed), Ordering::Release);
    }

    fn load(&self) -> Arc<Policy> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// Runs `f` on the policy in force.
    fn with<R>(&self, f: impl FnOnce(&Policy) -> R) -> R {
        let generation = self.generation.load(Ordering::Acquire);
        SEEN_POLICY.with(|seen| {
            if let Ok(s) = seen.try_borrow() {
                if let Some((g, p)) = &*s {
                    if *g == generation {
                        return f(p);
                    }
                }
            }
            // Read after the generation, so this policy is at least that new; cached under the
            // older number at worst, which only costs one more refresh.
            let fresh = self.load();
            if let Ok(mut s) = seen.try_borrow_mut() {
                *s = Some((generation, Arc::clone(&fresh)));
            }
            f(&fresh)
        })
    }
}

static THREADS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's number and its next sequence number.
    static SEQUENCE: std::cell::Cell<(u64, u64)> = std::cell::Cell::new((THREADS.fetch_add(1, Ordering::Relaxed), 0));
}

thread_local! {
    /// This thread's buffer for counter keys, kept from one decision to the next.
    static KEY_SCRATCH: std::cell::Cell<String> = const { std::cell::Cell::new(String::new()) };
}

/// A (thread, sequence) pair no other call in this process returns.
fn thread_sequence() -> (u64, u64) {
    SEQUENCE.with(|c| {
        let (t, n) = c.get();
        c.set((t, n.wrapping_add(1)));
        (t, n)
    })
}

/// The gate's decision engine. Cheap to share (`Arc<Gate>`); all methods take `&self`.
pub struct Gate {
    keys: Keys,
    ref_key: HmacKey,
    nonce_key: HmacKey,
    policy: PolicyCell,
    store: Arc<dyn RateStore>,
    sessions: SessionRegistry,
    trusted: IpSet,
    cookie_name: String,
    pass_ttl_s: u64,
    challenge_ttl_s: u64,
    shadow: bool,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("cookie_name", &self.cookie_name)
            .field("shadow", &self.shadow)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Charge,
    Peek,
}

struct Ctx<'a> {
    req: &'a RequestFacts<'a>,
    classified: &'a Classified,
    user_agent: &'a str,
    cost: u32,
    tier: Tier,
    now_ms: u64,
    mode: Mode,
    limits: Vec<LimitTrace>,
    /// Scratch for counter keys.
    key: String,
}

impl Gate {
    /// Builds a gate. The secret must be set (generate one when the config leaves it empty).
    pub fn new(config: &GateConfig, policy: Policy, store: Arc<dyn RateStore>) -> Result<Gate, GateError> {
        config.validate()?;
        if config.secret.is_empty() {
            return Err(GateError::config(
                "secret",
                "empty: generate a random secret of at least 32 characters",
            ));
        }
        let keys = Keys::new(&config.secret, &config.previous_secrets);
        let sessions = SessionRegistry::new(
            keys.derive(b"session"),
            config.session_cookie_suffixes.clone(),
            config.session_ttl_seconds.saturating_mul(1000),
            config.max_sessions,
        );
        Ok(Gate {
            ref_key: HmacKey::new(&keys.derive(b"reference")),
            nonce_key: HmacKey::new(&keys.derive(b"nonce")),
            keys,
            policy: PolicyCell::new(policy),
            store,
            sessions,
            trusted: IpSet::parse(&config.trusted_proxies)?,
            cookie_name: config.cookie_name.clone(),
            pass_ttl_s: config.pass_ttl_seconds,
            challenge_ttl_s: config.challenge_ttl_seconds,
            shadow: config.shadow,
        })
    }

    /// Replaces the policy atomically: requests being decided finish with the old one.
    pub fn set_policy(&self, policy: Policy) {
        self.policy.set(policy);
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.load()
    }

    /// The logged-in session registry.
    pub fn sessions(&self) -> &SessionRegistry {
        &self.sessions
    }

    /// The rate store.
    pub fn store(&self) -> &Arc<dyn RateStore> {
        &self.store
    }

    /// The trusted proxies from the config.
    pub fn trusted_proxies(&self) -> &IpSet {
        &self.trusted
    }

    /// [`crate::client_ip`] with the configured trusted proxies.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        crate::client_ip(peer, headers, &self.trusted)
    }

    /// The pass cookie's name.
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// Feeds MediaWiki's answer to the session registry (see [`SessionRegistry`]). Of the
    /// request it needs only the headers, and of those only the cookies.
    pub fn observe_response(
        &self,
        request_headers: &HeaderMap,
        status: u16,
        response_headers: &HeaderMap,
        now_ms: u64,
    ) {
        self.sessions
            .observe_response(request_headers, status, response_headers, now_ms);
    }

    /// The decision for a request, charging its cost to the budgets.
    pub fn decide(&self, req: &RequestFacts<'_>, now_ms: u64) -> Decision {
        self.evaluate(req, now_ms).decision
    }

    /// [`Gate::decide`] with what led to the decision.
    pub fn evaluate(&self, req: &RequestFacts<'_>, now_ms: u64) -> Outcome {
        self.run(req, now_ms, Mode::Charge).0
    }

    /// What [`Gate::decide`] would do and why, without charging any budget.
    pub fn explain(&self, req: &RequestFacts<'_>, now_ms: u64) -> Explanation {
        let (o, x) = self.run(req, now_ms, Mode::Peek);
        Explanation {
            class: o.classified.class,
            classified: o.classified,
            cost: o.cost,
            client_prefix: client_prefix(req.client_ip),
            tier: o.tier,
            tier_reason: x.tier_reason,
            pass: x.pass,
            score: o.score,
            rules: x.rules,
            limits: x.limits,
            deciding_rule: o.rule,
            decision: o.would_be,
            effective: o.decision,
            shadow: o.shadow,
        }
    }

    fn reference(&self, now_ms: u64) -> Reference {
        // (thread, sequence) is unique in the process without a counter every worker bumps.
        let (thread, n) = thread_sequence();
        let mac = self
            .ref_key
            .mac(&[&now_ms.to_be_bytes(), &thread.to_be_bytes(), &n.to_be_bytes()]);
        Reference::from_mac(&mac)
    }

    fn pass_status(&self, headers: &HeaderMap, ip: IpAddr, user_agent: &str, now_ms: u64) -> PassStatus {
        let mut status = PassStatus::Absent;
        for (name, value) in request_cookies(headers) {
            if name == self.cookie_name {
                status = challenge::check_pass(&self.keys, value, ip, user_agent, self.pass_ttl_s, now_ms);
                if status == PassStatus::Valid {
                    return status;
                }
            }
        }
        status
    }

    fn run(&self, req: &RequestFacts<'_>, now_ms: u64, mode: Mode) -> (Outcome, Extra) {
        self.policy.with(|policy| self.run_with(policy, req, now_ms, mode))
    }

    fn run_with(&self, policy: &Policy, req: &RequestFacts<'_>, now_ms: u64, mode: Mode) -> (Outcome, Extra) {
        let path = decode(req.uri.path(), false);
        let raw_query = req.uri.query().unwrap_or("");
        let classified = classify_decoded(req.method, &path, raw_query);
        let cost = policy.cost(&classified);
        let user_agent = user_agent(req.headers);
        let query = decode(raw_query, true);
        let ua_hits = policy.ua_hits(user_agent);
        let mut input = MatchInput {
            method: req.method.as_str(),
            path: &path,
            query: &query,
            user_agent,
            ua_hits: ua_hits.as_deref(),
            headers: req.headers,
            ip: req.client_ip,
            classified: &classified,
            tier: None,
        };

        // Phase: score.
        // Rule traces are for `explain`; a charged decision does not build them.
        let mut traces = Traces {
            record: mode == Mode::Peek,
            items: Vec::new(),
        };
        let mut score = 0i64;
        for rule in &policy.rules {
            if let Effect::Weight { weight } = rule.effect {
                let matched = rule.matches(&input);
                if matched && !rule.shadow {
                    score = score.saturating_add(weight);
                }
                traces.push(|| trace(rule, matched, true, Some(weight), None));
            }
        }

        // Phase: tier. The reason is for `explain`; a charged decision does not spell it out.
        let pass = self.pass_status(req.headers, req.client_ip, user_agent, now_ms);
        let (tier, tier_reason) = if pass == PassStatus::Valid {
            (Tier::KnownGood, TierReason::Pass)
        } else if self.session_known(req.headers, now_ms, mode) {
            (Tier::KnownGood, TierReason::Session)
        } else if let Some(bot) = policy.good_bot(user_agent, req.client_ip) {
            (Tier::KnownGood, TierReason::GoodBot(&bot.name))
        } else if score >= policy.abusive_score {
            (Tier::Abusive, TierReason::Score)
        } else if score >= policy.suspicious_score {
            (Tier::Suspicious, TierReason::Score)
        } else {
            (Tier::Unknown, TierReason::Score)
        };
        let tier_reason = match mode {
            Mode::Peek => tier_reason.to_string(),
            Mode::Charge => String::new(),
        };
        input.tier = Some(tier);

        let mut ctx = Ctx {
            req,
            classified: &classified,
            user_agent,
            cost,
            tier,
            now_ms,
            mode,
            limits: Vec::new(),
            key: KEY_SCRATCH.take(),
        };

        // Phase: deciding rules.
        let mut decided: Option<(Decision, String)> = None;
        let mut shadow_rules = Vec::new();
        for rule in &policy.rules {
            if matches!(rule.effect, Effect::Weight { .. }) {
                continue;
            }
            if decided.is_some() {
                traces.push(|| trace(rule, false, false, None, None));
                continue;
            }
            let matched = rule.matches(&input);
            if !matched {
                traces.push(|| trace(rule, false, true, None, None));
                continue;
            }
            if tier == Tier::KnownGood && matches!(rule.effect, Effect::Challenge { .. }) {
                traces.push(|| {
                    trace(
                        rule,
                        true,
                        true,
                        None,
                        Some("skipped: known-good clients are not challenged"),
                    )
                });
                continue;
            }
            // A shadow rule only reports what it would have decided: nothing is charged.
            if rule.shadow {
                traces.push(|| trace(rule, true, true, None, Some("shadow: would decide")));
                shadow_rules.push(rule.name.clone());
                continue;
            }
            let d = match &rule.effect {
                Effect::Allow => Some(Decision::Allow {
                    tier,
                    reference: self.reference(now_ms),
                }),
                Effect::Deny { reason } => Some(Decision::Deny {
                    reason: reason.clone(),
                    reference: self.reference(now_ms),
                }),
                Effect::Challenge { difficulty } => {
                    let difficulty = difficulty.unwrap_or(policy.tier(tier).difficulty);
                    match self.challenge_or_machine(policy, &mut ctx, difficulty, None) {
                        Some(d) => Some(d),
                        None => {
                            traces.push(|| trace(rule, true, true, None, Some("machine client within its limit")));
                            break;
                        }
                    }
                }
                Effect::Limit { limit } => match policy.limit(limit) {
                    Some(l) => match self.charge(&mut ctx, l, cost) {
                        Some(over) => Some(self.limit_decision(policy, &ctx, l, over)),
                        None => {
                            traces.push(|| trace(rule, true, true, None, Some("within the limit")));
                            break;
                        }
                    },
                    None => None,
                },
                Effect::Weight { .. } => None,
            };
            traces.push(|| trace(rule, true, true, None, None));
            if let Some(d) = d {
                decided = Some((d, rule.name.clone()));
            }
        }

        // Phase: tier budgets.
        let (would_be, rule) = match decided {
            Some((d, name)) => (d, Some(name)),
            None => self.budgets(policy, &mut ctx),
        };

        let shadow = self.shadow || policy.shadow;
        let decision = if shadow && !matches!(would_be, Decision::Allow { .. }) {
            Decision::Allow {
                tier,
                reference: *would_be.reference(),
            }
        } else {
            would_be.clone()
        };
        KEY_SCRATCH.set(ctx.key);
        let extra = Extra {
            tier_reason,
            pass,
            rules: traces.items,
            limits: ctx.limits,
        };
        let outcome = Outcome {
            decision,
            shadow: shadow && !matches!(would_be, Decision::Allow { .. }),
            would_be,
            rule,
            shadow_rules,
            classified,
            cost,
            tier,
            score,
        };
        (outcome, extra)
    }

    fn session_known(&self, headers: &HeaderMap, now_ms: u64, mode: Mode) -> bool {
        match mode {
            Mode::Charge => self.sessions.is_known(headers, now_ms),
            Mode::Peek => self.sessions.peek(headers, now_ms),
        }
    }

    /// Charges the tier's budgets; the first exhausted one decides by the tier's over_budget.
    fn budgets(&self, policy: &Policy, ctx: &mut Ctx<'_>) -> (Decision, Option<String>) {
        let tp = policy.tier(ctx.tier);
        for name in &tp.limits {
            let Some(limit) = policy.limit(name) else { continue };
            let Some(over) = self.charge(ctx, limit, ctx.cost) else {
                continue;
            };
            let rule = Some(format!("budget:{name}"));
            let over_budget = if ctx.tier == Tier::KnownGood && tp.over_budget == OverBudget::Challenge {
                OverBudget::Limit // a pass holder solving again would gain nothing
            } else {
                tp.over_budget
            };
            let d = match over_budget {
                OverBudget::Limit => self.limit_decision(policy, ctx, limit, over),
                OverBudget::Deny => Decision::Deny {
                    reason: "This client has made too many requests.".into(),
                    reference: self.reference(ctx.now_ms),
                },
                OverBudget::Challenge => {
                    if ctx.classified.class.is_machine() {
                        self.limit_decision(policy, ctx, limit, over)
                    } else {
                        let difficulty = tp.difficulty;
                        match self.challenge_or_machine(policy, ctx, difficulty, Some((limit, over))) {
                            Some(d) => d,
                            None => self.limit_decision(policy, ctx, limit, over),
                        }
                    }
                }
            };
            return (d, rule);
        }
        (
            Decision::Allow {
                tier: ctx.tier,
                reference: self.reference(ctx.now_ms),
            },
            None,
        )
    }

    /// A challenge for a browser (or Deny once the tier's challenge_limit is spent); for a
    /// machine client a 429 from the `[machine]` limit, or `None` when within it.
    fn challenge_or_machine(
        &self,
        policy: &Policy,
        ctx: &mut Ctx<'_>,
        difficulty: u8,
        over: Option<(&RateLimit, crate::GcraOutcome)>,
    ) -> Option<Decision> {
        if ctx.classified.class.is_machine() {
            if let Some((l, o)) = over {
                return Some(self.limit_decision(policy, ctx, l, o));
            }
            return match policy.machine_limit.as_deref().and_then(|n| policy.limit(n)) {
                Some(l) => {
                    let cost = ctx.cost.max(1);
                    self.charge(ctx, l, cost)
                        .map(|o| self.limit_decision(policy, ctx, l, o))
                }
                None => Some(Decision::Limit {
                    retry_after_secs: 60,
                    limit: 0,
                    remaining: 0,
                    reset_secs: 60,
                    policy_name: "machine".into(),
                    machine_message: Some(policy.machine_message.clone()),
                    reference: self.reference(ctx.now_ms),
                }),
            };
        }
        if let Some(name) = policy.tier(ctx.tier).challenge_limit.as_deref() {
            if let Some(l) = policy.limit(name) {
                if self.charge(ctx, l, 1).is_some() {
                    return Some(Decision::Deny {
                        reason: "This client was asked to prove it is a browser many times without answering.".into(),
                        reference: self.reference(ctx.now_ms),
                    });
                }
            }
        }
        Some(Decision::Challenge {
            difficulty,
            reference: self.reference(ctx.now_ms),
        })
    }

    fn limit_decision(&self, policy: &Policy, ctx: &Ctx<'_>, limit: &RateLimit, o: crate::GcraOutcome) -> Decision {
        Decision::Limit {
            retry_after_secs: o.retry_after_ms.div_ceil(1000).max(1),
            limit: limit.burst,
            remaining: o.remaining,
            reset_secs: o.reset_ms.div_ceil(1000),
            policy_name: limit.name.clone(),
            machine_message: ctx
                .classified
                .class
                .is_machine()
                .then(|| policy.machine_message.clone()),
            reference: self.reference(ctx.now_ms),
        }
    }

    /// Charges (or, explaining, peeks) `cost` against a limit; `Some(outcome)` when over.
    fn charge(&self, ctx: &mut Ctx<'_>, limit: &RateLimit, cost: u32) -> Option<crate::GcraOutcome> {
        // One buffer for all of a request's counter keys.
        let mut key = std::mem::take(&mut ctx.key);
        key.clear();
        self.limit_key(&mut key, limit, ctx);
        let out = match ctx.mode {
            Mode::Charge => self.store.gcra(&key, limit, cost, ctx.now_ms),
            Mode::Peek => {
                let peek = self.store.gcra(&key, limit, 0, ctx.now_ms);
                let capped = u64::from(cost).min(limit.burst.max(1));
                if capped <= peek.remaining {
                    crate::GcraOutcome {
                        allowed: true,
                        remaining: peek.remaining - capped,
                        ..peek
                    }
                } else {
                    let t_us = limit.emission_interval_us();
                    let retry = (capped - peek.remaining).saturating_mul(t_us).div_ceil(1000);
                    crate::GcraOutcome {
                        allowed: false,
                        retry_after_ms: retry,
                        ..peek
                    }
                }
            }
        };
        // Limit traces are for `explain`; a charged decision does not build them.
        if ctx.mode == Mode::Peek {
            ctx.limits.push(LimitTrace {
                name: limit.name.clone(),
                key: key.clone(),
                cost,
                allowed: out.allowed,
                remaining: out.remaining,
                limit: limit.burst,
                reset_ms: out.reset_ms,
                retry_after_ms: out.retry_after_ms,
            });
        }
        ctx.key = key;
        (!out.allowed).then_some(out)
    }

    /// The counter's name for `limit` and this request, written into `key`.
    fn limit_key(&self, key: &mut String, limit: &RateLimit, ctx: &Ctx<'_>) {
        key.reserve(limit.name.len() + 48 * limit.key.len());
        key.push_str(&limit.name);
        for part in &limit.key {
            key.push('|');
            match part {
                KeyPart::Ip => crate::ipset::push_ip(key, crate::ipset::canonical(ctx.req.client_ip)),
                KeyPart::Prefix => crate::ipset::write_client_prefix(key, ctx.req.client_ip),
                KeyPart::UserAgent => challenge::push_ua_hash(key, ctx.user_agent),
                KeyPart::Session => key.push_str(&self.sessions.session_key(ctx.req.headers)),
                KeyPart::Class => key.push_str(ctx.classified.class.as_str()),
            }
        }
    }

    /// The challenge page for a [`Decision::Challenge`] (serve it with status 403,
    /// `Content-Type: text/html; charset=utf-8`, `Cache-Control: no-store`).
    pub fn challenge_page(&self, req: &RequestFacts<'_>, difficulty: u8, reference: &str, now_ms: u64) -> String {
        let slow_s = self.policy.with(|p| slow_seconds(p, difficulty));
        let ua = user_agent(req.headers);
        let random = {
            let (thread, n) = thread_sequence();
            let mac = self.nonce_key.mac(&[
                &now_ms.to_be_bytes(),
                &thread.to_be_bytes(),
                &n.to_be_bytes(),
                reference.as_bytes(),
            ]);
            hex(&mac[..8])
        };
        let token = challenge::issue(
            &self.keys,
            req.client_ip,
            ua,
            difficulty,
            slow_s,
            self.challenge_ttl_s,
            &random,
            now_ms,
        );
        let expires = now_ms / 1000 + self.challenge_ttl_s.max(slow_s + 120);
        let return_to = challenge::safe_return(req.uri.path_and_query().map(|pq| pq.as_str()));
        challenge::render_page(&token, difficulty, slow_s, expires, &return_to, reference)
    }

    /// Checks an answer to the challenge and returns the pass cookie's `Set-Cookie` value.
    /// `body` is the POST body (form or JSON); for the slow GET path pass the query string
    /// (an empty body falls back to the request's query string).
    pub fn verify_challenge(&self, body: &[u8], req: &RequestFacts<'_>, now_ms: u64) -> Result<String, ChallengeError> {
        self.verify_challenge_pass(body, req, now_ms).map(|p| p.set_cookie)
    }

    /// [`Gate::verify_challenge`] with the return path.
    pub fn verify_challenge_pass(
        &self,
        body: &[u8],
        req: &RequestFacts<'_>,
        now_ms: u64,
    ) -> Result<ChallengePass, ChallengeError> {
        let body = if body.is_empty() {
            req.uri.query().unwrap_or("").as_bytes()
        } else {
            body
        };
        let answer = challenge::parse_answer(body)?;
        let ua = user_agent(req.headers);
        let token = challenge::check_token(&self.keys, &answer.challenge, req.client_ip, ua, now_ms)?;
        if answer.slow {
            let ready = token.issued_s.saturating_add(token.slow_s);
            let now_s = now_ms / 1000;
            if now_s < ready {
                return Err(ChallengeError::TooEarly {
                    wait_secs: ready - now_s,
                });
            }
        } else {
            let nonce = answer.nonce.as_deref().unwrap_or("");
            if !challenge::work_is_sufficient(&answer.challenge, nonce, token.difficulty) {
                return Err(ChallengeError::InsufficientWork);
            }
        }
        Ok(ChallengePass {
            set_cookie: self.pass_cookie(req, now_ms),
            return_to: challenge::safe_return(answer.return_to.as_deref()),
        })
    }

    /// A fresh pass cookie (`Set-Cookie` value) for this client.
    pub fn pass_cookie(&self, req: &RequestFacts<'_>, now_ms: u64) -> String {
        let expires = now_ms / 1000 + self.pass_ttl_s;
        let value = challenge::pass_value(&self.keys, req.client_ip, user_agent(req.headers), expires);
        let https = req.uri.scheme_str() == Some("https")
            || req
                .headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("https"));
        format!(
            "{}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{}",
            self.cookie_name,
            self.pass_ttl_s,
            if https { "; Secure" } else { "" }
        )
    }

    /// The state of the request's pass cookie.
    pub fn pass(&self, req: &RequestFacts<'_>, now_ms: u64) -> PassStatus {
        self.pass_status(req.headers, req.client_ip, user_agent(req.headers), now_ms)
    }
}

/// Why a client got its tier ([`Explanation::tier_reason`]).
enum TierReason<'a> {
    Pass,
    Session,
    GoodBot(&'a str),
    Score,
}

impl std::fmt::Display for TierReason<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TierReason::Pass => f.write_str("pass cookie"),
            TierReason::Session => f.write_str("session seen at login"),
            TierReason::GoodBot(name) => write!(f, "good bot {name}"),
            TierReason::Score => f.write_str("score"),
        }
    }
}

struct Extra {
    /// Empty unless explaining.
    tier_reason: String,
    pass: PassStatus,
    rules: Vec<RuleTrace>,
    limits: Vec<LimitTrace>,
}

/// Rule traces, collected only when `record` (explain).
struct Traces {
    record: bool,
    items: Vec<RuleTrace>,
}

impl Traces {
    fn push(&mut self, make: impl FnOnce() -> RuleTrace) {
        if self.record {
            self.items.push(make());
        }
    }
}

fn trace(
    rule: &crate::policy::Rule,
    matched: bool,
    evaluated: bool,
    weight: Option<i64>,
    note: Option<&str>,
) -> RuleTrace {
    RuleTrace {
        name: rule.name.clone(),
        action: rule.effect.name().to_string(),
        matched,
        evaluated,
        shadow: rule.shadow,
        weight,
        note: note.map(str::to_string),
    }
}

/// The request's User-Agent (`""` when absent or not visible ASCII).
pub(crate) fn user_agent(headers: &HeaderMap) -> &str {
    headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The no-JavaScript wait for a difficulty: that of the tier with the greatest difficulty not
/// above it (the least trusted tier wins ties), else the most trusted tier's.
fn slow_seconds(policy: &Policy, difficulty: u8) -> u64 {
    let mut best: Option<(u8, u64)> = None;
    for t in Tier::ALL {
        let tp = policy.tier(t);
        if tp.difficulty <= difficulty && best.is_none_or(|(d, _)| tp.difficulty >= d) {
            best = Some((tp.difficulty, tp.slow_seconds));
        }
    }
    best.map_or(policy.tier(Tier::KnownGood).slow_seconds, |(_, s)| s)
}
