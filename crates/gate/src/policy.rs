//! [`Policy`]: the operator's rules, limits, tiers, costs and good bots, parsed from TOML and
//! checked before use (a policy that parses is one the gate can run; reload swaps it whole).
//!
//! Evaluation, per request (see `docs/gate-policy.md`):
//! 1. every *weight* rule that matches adds its weight to the suspicion score; the score
//!    against `[scores]` thresholds gives the tier, unless the client is known-good (valid
//!    pass cookie, session seen at login, listed good bot);
//! 2. the *deciding* rules are tried in file order; the first that matches and is not
//!    `shadow` decides (a matching shadow rule is reported as a would-be decision only);
//! 3. without a deciding rule, the tier's budgets are charged the request's cost.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use crate::{Class, Classified, GateError, IpSet, KeyPart, RateLimit, Tier};

/// The built-in default policy, as shipped in `crates/gate/default-policy.toml`.
pub const DEFAULT_POLICY_TOML: &str = include_str!("../default-policy.toml");

/// Largest compiled regex accepted in a policy (bytes of the compiled program).
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Largest policy text accepted.
pub const MAX_POLICY_BYTES: usize = 16 << 20;
/// Highest challenge difficulty (leading zero bits) a policy may ask for.
pub const MAX_DIFFICULTY: u8 = 32;

/// What a deciding rule does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Effect {
    /// Let the request through without charging any budget.
    Allow,
    /// 403 with this reason.
    Deny {
        /// Shown on the 403 page.
        reason: String,
    },
    /// The proof-of-work challenge (browsers), 429 (machine clients); skipped for known-good
    /// clients.
    Challenge {
        /// Difficulty instead of the tier's.
        difficulty: Option<u8>,
    },
    /// Charge the named limit; over it → 429, within it → go on to the tier budgets.
    Limit {
        /// The `[limits.NAME]`.
        limit: String,
    },
    /// Add to the suspicion score (does not decide).
    Weight {
        /// Added when the rule matches (may be negative).
        weight: i64,
    },
}

impl Effect {
    /// `"allow"`, `"deny"`, `"challenge"`, `"limit"` or `"weight"`.
    pub fn name(&self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny { .. } => "deny",
            Effect::Challenge { .. } => "challenge",
            Effect::Limit { .. } => "limit",
            Effect::Weight { .. } => "weight",
        }
    }
}

/// One header condition of a rule.
#[derive(Debug, Clone)]
pub(crate) struct HeaderMatch {
    pub(crate) name: http::HeaderName,
    pub(crate) regex: Option<Regex>,
    pub(crate) absent: bool,
}

/// A compiled rule. All conditions given must hold (an empty rule matches everything).
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule's unique name (reported in decisions, logs and explanations).
    pub name: String,
    /// What it does.
    pub effect: Effect,
    /// Report only: never decides, never adds weight.
    pub shadow: bool,
    pub(crate) classes: Vec<Class>,
    pub(crate) special: Vec<String>,
    pub(crate) methods: Vec<String>,
    pub(crate) path: Option<Regex>,
    pub(crate) query: Option<Regex>,
    pub(crate) user_agent: Option<Regex>,
    /// This rule's pattern's index in the policy's user-agent `RegexSet` (`ua_set`), when it has one.
    pub(crate) ua_slot: Option<usize>,
    pub(crate) headers: Vec<HeaderMatch>,
    pub(crate) ips: Option<IpSet>,
    pub(crate) tiers: Vec<Tier>,
}

/// What a rule's conditions are tested against.
pub(crate) struct MatchInput<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) query: &'a str,
    pub(crate) user_agent: &'a str,
    /// Which of the policy's user-agent patterns match `user_agent`, found in one pass.
    pub(crate) ua_hits: Option<&'a regex::SetMatches>,
    pub(crate) headers: &'a http::HeaderMap,
    pub(crate) ip: std::net::IpAddr,
    pub(crate) classified: &'a Classified,
    pub(crate) tier: Option<Tier>,
}

impl Rule {
    pub(crate) fn matches(&self, m: &MatchInput<'_>) -> bool {
        if !self.classes.is_empty() && !self.classes.contains(&m.classified.class) {
            return false;
        }
        if !self.special.is_empty() && !m.classified.special.as_ref().is_some_and(|s| self.special.contains(s)) {
            return false;
        }
        if !self.methods.is_empty() && !self.methods.iter().any(|x| x == m.method) {
            return false;
        }
        if let Some(ips) = &self.ips {
            if !ips.contains(m.ip) {
                return false;
            }
        }
        if !self.tiers.is_empty() && !m.tier.is_some_and(|t| self.tiers.contains(&t)) {
            return false;
        }
        if self.path.as_ref().is_some_and(|r| !r.is_match(m.path)) {
            return false;
        }
        if self.query.as_ref().is_some_and(|r| !r.is_match(m.query)) {
            return false;
        }
        if let Some(r) = &self.user_agent {
            let hit = match (self.ua_slot, m.ua_hits) {
                (Some(i), Some(hits)) => hits.matched(i),
                _ => r.is_match(m.user_agent),
            };
            if !hit {
                return false;
            }
        }
        self.headers.iter().all(|h| match &h.regex {
            _ if h.absent => !m.headers.contains_key(&h.name),
            None => m.headers.contains_key(&h.name),
            Some(r) => m
                .headers
                .get_all(&h.name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| r.is_match(v)),
        })
    }
}

/// What happens when a tier's budget is exhausted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverBudget {
    /// 429 with Retry-After.
    Limit,
    /// The challenge for browsers (429 for machine clients).
    Challenge,
    /// 403.
    Deny,
}

/// A trust tier's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TierPolicy {
    /// Budgets charged for every request of this tier (names of `[limits.*]`).
    pub limits: Vec<String>,
    /// Challenge difficulty in leading zero bits.
    pub difficulty: u8,
    /// Seconds the no-JavaScript path makes a human wait.
    pub slow_seconds: u64,
    /// What an exhausted budget leads to.
    pub over_budget: OverBudget,
    /// Each challenge issued in this tier charges 1 unit of this limit; when it is exhausted
    /// (challenges issued but not solved) the client is denied instead.
    pub challenge_limit: Option<String>,
}

/// Well-behaved crawler: both the user agent and the address must match.
#[derive(Debug, Clone)]
pub struct GoodBot {
    /// Its name (reported as the tier reason).
    pub name: String,
    pub(crate) user_agent: Regex,
    pub(crate) ips: IpSet,
}

/// Cost units per request class and the modifiers on top.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Costs {
    /// Cost of each class, indexed like [`Class::ALL`].
    pub by_class: BTreeMap<Class, u32>,
    /// Special pages costing other than `special` (canonical names).
    pub special: BTreeMap<String, u32>,
    /// api.php modules or query submodules costing more than `api` (the largest applies).
    pub api: BTreeMap<String, u32>,
    /// Every `limit_step` of a `limit`-like parameter adds one unit.
    pub limit_step: u64,
    /// No request costs more than this.
    pub max: u32,
}

impl Costs {
    /// The cost of a classified request.
    pub fn cost(&self, c: &Classified) -> u32 {
        let mut cost = self.by_class.get(&c.class).copied().unwrap_or(1);
        if let Some(special) = &c.special {
            if matches!(c.class, Class::Special | Class::Feed) {
                if let Some(v) = self.special.get(special) {
                    cost = *v;
                }
            }
        }
        if c.class == Class::Api {
            let modules = c.api_module.iter().chain(c.api_submodules.iter());
            if let Some(extra) = modules.filter_map(|m| self.api.get(m)).max() {
                cost = cost.max(*extra);
            }
        }
        if let Some(limit) = c.limit {
            if cost > 0 && self.limit_step > 0 {
                cost = cost.saturating_add(u32::try_from(limit / self.limit_step).unwrap_or(u32::MAX));
            }
        }
        cost.min(self.max)
    }
}

/// The API etiquette message machine clients get with their 429.
pub const DEFAULT_MACHINE_MESSAGE: &str = "Too many requests from your client. Please slow down, make requests one \
at a time, and send a descriptive User-Agent with contact information (see \
https://meta.wikimedia.org/wiki/User-Agent_policy). Clients with a descriptive User-Agent get larger budgets.";

/// A checked policy, ready to run.
#[derive(Debug, Clone)]
pub struct Policy {
    pub(crate) rules: Vec<Rule>,
    pub(crate) limits: HashMap<String, RateLimit>,
    pub(crate) tiers: [TierPolicy; 4],
    /// Score at or above which a client is suspicious.
    pub suspicious_score: i64,
    /// Score at or above which a client is abusive.
    pub abusive_score: i64,
    pub(crate) costs: Costs,
    pub(crate) good_bots: Vec<GoodBot>,
    pub(crate) machine_limit: Option<String>,
    pub(crate) machine_message: String,
    pub(crate) shadow: bool,
    /// Every rule's user-agent pattern in one set: most requests test them all (the default
    /// policy's weight rules are user-agent rules), and one pass over the header answers for
    /// every pattern instead of a search per rule.
    pub(crate) ua_set: Option<UaSet>,
}

/// The rules' user-agent patterns in one set, with a number for the per-thread cache of its
/// answers ([`Policy::ua_hits`]).
#[derive(Debug, Clone)]
pub(crate) struct UaSet {
    set: regex::RegexSet,
    /// Unique in the process: a set built at a reload never answers from an older one's cache.
    id: u64,
}

static UA_SETS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Slots of each thread's cache of user-agent answers, and the longest header kept there.
const UA_CACHE_SLOTS: usize = 64;
const UA_CACHE_MAX_LEN: usize = 512;

/// A cache slot: the set's id, the header, its answer.
type UaCacheEntry = Option<(u64, Box<str>, Rc<regex::SetMatches>)>;

thread_local! {
    /// The answers for the user agents this thread saw last, by a hash of the header. A wiki's
    /// readers send a few hundred distinct browser headers for most of its traffic, and one
    /// pass of the set over a 100-byte header costs about 3,000 instructions (a quarter of a
    /// decision's); a hit costs a hash and a comparison.
    static UA_CACHE: std::cell::RefCell<Vec<UaCacheEntry>> =
        std::cell::RefCell::new((0..UA_CACHE_SLOTS).map(|_| None).collect());
}

/// FNV-1a of `text`, for picking a cache slot.
fn slot_hash(text: &str) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h as usize
}

// ---- the TOML form ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    version: Option<u32>,
    #[serde(default)]
    shadow: bool,
    #[serde(default)]
    scores: RawScores,
    #[serde(default)]
    costs: RawCosts,
    #[serde(default)]
    limits: BTreeMap<String, toml::Spanned<RawLimit>>,
    #[serde(default)]
    tiers: RawTiers,
    #[serde(default)]
    machine: RawMachine,
    #[serde(default)]
    good_bots: Vec<toml::Spanned<RawGoodBot>>,
    #[serde(default)]
    rules: Vec<toml::Spanned<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawScores {
    suspicious: i64,
    abusive: i64,
}

impl Default for RawScores {
    fn default() -> Self {
        RawScores {
            suspicious: 50,
            abusive: 100,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMachine {
    limit: Option<String>,
    message: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCosts {
    page_view: Option<u32>,
    old_revision: Option<u32>,
    diff: Option<u32>,
    history: Option<u32>,
    edit_form: Option<u32>,
    raw: Option<u32>,
    search: Option<u32>,
    special: Option<u32>,
    api: Option<u32>,
    rest: Option<u32>,
    load: Option<u32>,
    #[serde(rename = "static")]
    static_: Option<u32>,
    media: Option<u32>,
    feed: Option<u32>,
    export: Option<u32>,
    other: Option<u32>,
    limit_step: Option<u64>,
    max: Option<u32>,
    #[serde(default)]
    special_pages: BTreeMap<String, u32>,
    #[serde(default)]
    api_modules: BTreeMap<String, u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimit {
    rate: u64,
    #[serde(default = "sixty")]
    period_seconds: u64,
    burst: Option<u64>,
    #[serde(default = "ip_key")]
    key: Vec<KeyPart>,
}

fn sixty() -> u64 {
    60
}

fn ip_key() -> Vec<KeyPart> {
    vec![KeyPart::Ip]
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTiers {
    known_good: Option<RawTier>,
    unknown: Option<RawTier>,
    suspicious: Option<RawTier>,
    abusive: Option<RawTier>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTier {
    limits: Option<Vec<String>>,
    difficulty: Option<u8>,
    slow_seconds: Option<u64>,
    over_budget: Option<OverBudget>,
    challenge_limit: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGoodBot {
    name: String,
    user_agent: String,
    ips: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    name: String,
    regex: Option<String>,
    #[serde(default)]
    absent: bool,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum RawAction {
    Allow,
    Deny,
    Challenge,
    Limit,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    #[serde(default)]
    #[allow(dead_code)] // documentation for humans, kept so the key is accepted
    description: String,
    #[serde(default)]
    class: Vec<Class>,
    #[serde(default)]
    special: Vec<String>,
    #[serde(default)]
    method: Vec<String>,
    path: Option<String>,
    query: Option<String>,
    user_agent: Option<String>,
    #[serde(default)]
    headers: Vec<RawHeader>,
    #[serde(default)]
    ip: Vec<String>,
    #[serde(default)]
    tier: Vec<Tier>,
    action: Option<RawAction>,
    limit: Option<String>,
    weight: Option<i64>,
    reason: Option<String>,
    difficulty: Option<u8>,
    #[serde(default)]
    shadow: bool,
}

/// Tier defaults: budgets, difficulty, slow-path wait, what exhaustion leads to.
fn tier_default(tier: Tier) -> TierPolicy {
    let (limits, difficulty, slow, over): (&[&str], u8, u64, OverBudget) = match tier {
        Tier::KnownGood => (&["known-good"], 12, 5, OverBudget::Limit),
        Tier::Unknown => (&["unknown"], 12, 10, OverBudget::Challenge),
        Tier::Suspicious => (&["suspicious"], 16, 30, OverBudget::Challenge),
        Tier::Abusive => (&["abusive"], 20, 60, OverBudget::Challenge),
    };
    TierPolicy {
        limits: limits.iter().map(|s| s.to_string()).collect(),
        difficulty,
        slow_seconds: slow,
        over_budget: over,
        challenge_limit: None,
    }
}

/// The budgets tiers use when a policy does not define them.
fn builtin_limit(name: &str) -> Option<RateLimit> {
    let (rate, burst, key) = match name {
        "known-good" => (3000, 1000, KeyPart::Ip),
        "unknown" => (600, 300, KeyPart::Ip),
        "suspicious" => (120, 60, KeyPart::Prefix),
        "abusive" => (30, 20, KeyPart::Prefix),
        _ => return None,
    };
    Some(RateLimit {
        name: name.to_string(),
        rate,
        period_seconds: 60,
        burst,
        key: vec![key],
    })
}

struct Located<'a> {
    src: &'a str,
}

impl Located<'_> {
    fn err(&self, offset: Option<usize>, rule: Option<String>, message: impl Into<String>) -> GateError {
        let (line, column) = offset.map_or((0, 0), |o| line_col(self.src, o));
        let rule = rule.or_else(|| offset.and_then(|o| rule_at(self.src, o)));
        GateError::Policy {
            line,
            column,
            rule,
            message: message.into(),
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut at = offset.min(src.len());
    while !src.is_char_boundary(at) {
        at -= 1;
    }
    let before = &src[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The `name` of the `[[rules]]` entry the byte offset falls in, found in the text (serde's
/// errors do not say which array element they came from).
fn rule_at(src: &str, offset: usize) -> Option<String> {
    let mut start = None;
    let mut pos = 0;
    for line in src.split_inclusive('\n') {
        if pos > offset {
            break;
        }
        let t = line.trim();
        if t.starts_with("[[rules]]") {
            start = Some(pos);
        } else if t.starts_with('[') && !t.starts_with("[rules.") && !t.starts_with("[[rules.") {
            start = None;
        }
        pos += line.len();
    }
    let start = start?;
    let mut first = true;
    for line in src.get(start..)?.lines() {
        let t = line.trim();
        if !first && t.starts_with("[[rules]]") {
            break;
        }
        first = false;
        if let Some(rest) = t.strip_prefix("name") {
            if let Some(value) = rest.trim_start().strip_prefix('=') {
                let v = value.trim();
                let parsed: Result<toml::Value, _> = toml::from_str(&format!("v = {v}"));
                if let Ok(toml::Value::Table(t)) = parsed {
                    if let Some(toml::Value::String(s)) = t.get("v") {
                        return Some(s.clone());
                    }
                }
            }
        }
    }
    None
}

fn compile_regex(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("invalid regex {pattern:?}: {e}"))
}

/// The set of the rules' user-agent patterns, numbering each rule's slot in it. Each pattern
/// already compiled alone; should their union exceed the size limits, the rules keep testing
/// their own regexes (same answers, one search each).
fn ua_set(rules: &mut [Rule]) -> Option<UaSet> {
    let patterns: Vec<&str> = rules
        .iter()
        .filter_map(|r| r.user_agent.as_ref().map(Regex::as_str))
        .collect();
    if patterns.is_empty() {
        return None;
    }
    let set = regex::RegexSetBuilder::new(&patterns)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .ok()?;
    for (slot, r) in rules.iter_mut().filter(|r| r.user_agent.is_some()).enumerate() {
        r.ua_slot = Some(slot);
    }
    Some(UaSet {
        set,
        id: UA_SETS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
    })
}

impl Policy {
    /// Which user-agent patterns match `user_agent` (None: the rules test their own), from
    /// this thread's cache when it answered the same header for the same set last.
    pub(crate) fn ua_hits(&self, user_agent: &str) -> Option<Rc<regex::SetMatches>> {
        let ua = self.ua_set.as_ref()?;
        let fresh = || Rc::new(ua.set.matches(user_agent));
        if user_agent.len() > UA_CACHE_MAX_LEN {
            return Some(fresh());
        }
        let slot = slot_hash(user_agent) % UA_CACHE_SLOTS;
        Some(UA_CACHE.with(|cache| {
            let Ok(mut cache) = cache.try_borrow_mut() else {
                return fresh();
            };
            if let Some((id, text, hits)) = &cache[slot] {
                if *id == ua.id && **text == *user_agent {
                    return Rc::clone(hits);
                }
            }
            let hits = fresh();
            cache[slot] = Some((ua.id, user_agent.into(), Rc::clone(&hits)));
            hits
        }))
    }

    /// Parses and checks a policy. Errors give the line and column and, inside `[[rules]]`,
    /// the rule's name.
    pub fn from_toml(src: &str) -> Result<Policy, GateError> {
        let loc = Located { src };
        if src.len() > MAX_POLICY_BYTES {
            return Err(loc.err(
                None,
                None,
                format!("the policy is larger than {MAX_POLICY_BYTES} bytes"),
            ));
        }
        let raw: RawPolicy = toml::from_str(src).map_err(|e| {
            let offset = e.span().map(|s| s.start);
            loc.err(offset, None, e.message().trim().to_string())
        })?;
        if let Some(v) = raw.version {
            if v != 1 {
                return Err(loc.err(
                    None,
                    None,
                    format!("unsupported policy version {v}; this gate reads version 1"),
                ));
            }
        }
        if raw.scores.abusive < raw.scores.suspicious {
            return Err(loc.err(None, None, "[scores] abusive must be at least suspicious"));
        }

        let mut limits = HashMap::new();
        for (name, spanned) in &raw.limits {
            let at = Some(spanned.span().start);
            let l = spanned.get_ref();
            if l.rate == 0 || l.period_seconds == 0 || l.burst == Some(0) {
                return Err(loc.err(
                    at,
                    None,
                    format!("limit {name:?}: rate, period_seconds and burst must be > 0"),
                ));
            }
            if l.key.is_empty() {
                return Err(loc.err(at, None, format!("limit {name:?}: key must name at least one part")));
            }
            limits.insert(
                name.clone(),
                RateLimit {
                    name: name.clone(),
                    rate: l.rate,
                    period_seconds: l.period_seconds,
                    burst: l.burst.unwrap_or(l.rate),
                    key: l.key.clone(),
                },
            );
        }

        let mut tiers = Tier::ALL.map(tier_default);
        let raw_tiers = [
            &raw.tiers.known_good,
            &raw.tiers.unknown,
            &raw.tiers.suspicious,
            &raw.tiers.abusive,
        ];
        // A tier that does not list its budgets uses the budget named after it; when the policy
        // does not define that limit either, the built-in one is used (so an empty policy
        // still has per-tier budgets).
        for (i, raw_tier) in raw_tiers.iter().enumerate() {
            if raw_tier.as_ref().is_some_and(|t| t.limits.is_some()) {
                continue;
            }
            for name in &tiers[i].limits {
                if !limits.contains_key(name) {
                    if let Some(l) = builtin_limit(name) {
                        limits.insert(name.clone(), l);
                    }
                }
            }
        }
        let need_limit = |name: &str, at: Option<usize>, rule: Option<String>, what: &str| {
            if limits.contains_key(name) {
                Ok(())
            } else {
                Err(loc.err(
                    at,
                    rule,
                    format!("{what} names limit {name:?}, which is not defined in [limits]"),
                ))
            }
        };

        for (i, raw_tier) in raw_tiers.iter().enumerate() {
            let Some(rt) = raw_tier else { continue };
            let t = &mut tiers[i];
            if let Some(l) = &rt.limits {
                t.limits = l.clone();
            }
            if let Some(d) = rt.difficulty {
                t.difficulty = d;
            }
            if let Some(s) = rt.slow_seconds {
                t.slow_seconds = s;
            }
            if let Some(o) = rt.over_budget {
                t.over_budget = o;
            }
            t.challenge_limit = rt.challenge_limit.clone();
        }
        for (i, t) in tiers.iter().enumerate() {
            let what = format!("[tiers.{}]", Tier::ALL[i].as_str());
            if t.difficulty > MAX_DIFFICULTY {
                return Err(loc.err(
                    None,
                    None,
                    format!("{what} difficulty must be at most {MAX_DIFFICULTY}"),
                ));
            }
            for l in &t.limits {
                need_limit(l, None, None, &what)?;
            }
            if let Some(l) = &t.challenge_limit {
                need_limit(l, None, None, &what)?;
            }
        }
        if let Some(l) = &raw.machine.limit {
            need_limit(l, None, None, "[machine]")?;
        }

        let mut by_class = BTreeMap::new();
        let c = &raw.costs;
        let given = [
            (Class::PageView, c.page_view, 1),
            (Class::OldRevision, c.old_revision, 10),
            (Class::Diff, c.diff, 20),
            (Class::History, c.history, 10),
            (Class::EditForm, c.edit_form, 5),
            (Class::Raw, c.raw, 5),
            (Class::Search, c.search, 20),
            (Class::Special, c.special, 5),
            (Class::Api, c.api, 2),
            (Class::Rest, c.rest, 2),
            (Class::Load, c.load, 0),
            (Class::Static, c.static_, 0),
            (Class::Media, c.media, 1),
            (Class::Feed, c.feed, 10),
            (Class::Export, c.export, 50),
            (Class::Other, c.other, 1),
        ];
        for (class, value, default) in given {
            by_class.insert(class, value.unwrap_or(default));
        }
        let costs = Costs {
            by_class,
            special: c.special_pages.clone(),
            api: c
                .api_modules
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), *v))
                .collect(),
            limit_step: c.limit_step.unwrap_or(50),
            max: c.max.unwrap_or(500),
        };

        let mut good_bots = Vec::new();
        for spanned in &raw.good_bots {
            let at = Some(spanned.span().start);
            let b = spanned.get_ref();
            let ctx = |m: String| loc.err(at, None, format!("good bot {:?}: {m}", b.name));
            if b.ips.is_empty() {
                return Err(ctx(
                    "list the bot's IP ranges in ips (a user agent alone is trivially spoofed)".into(),
                ));
            }
            good_bots.push(GoodBot {
                name: b.name.clone(),
                user_agent: compile_regex(&b.user_agent).map_err(ctx)?,
                ips: IpSet::parse(&b.ips).map_err(|e| ctx(e.to_string()))?,
            });
        }

        let mut rules = Vec::with_capacity(raw.rules.len());
        let mut names = HashSet::new();
        for spanned in &raw.rules {
            let at = Some(spanned.span().start);
            let r = spanned.get_ref();
            let rule_err = |m: String| loc.err(at, Some(r.name.clone()), m);
            if r.name.trim().is_empty() {
                return Err(rule_err("a rule needs a non-empty name".into()));
            }
            if !names.insert(r.name.clone()) {
                return Err(rule_err("another rule has the same name".into()));
            }
            let effect = match (r.action, r.weight) {
                (Some(_), Some(_)) => return Err(rule_err("give either action or weight, not both".into())),
                (None, None) => {
                    return Err(rule_err(
                        "give an action (allow, deny, challenge, limit) or a weight".into(),
                    ))
                }
                (None, Some(w)) => {
                    if !r.tier.is_empty() {
                        return Err(rule_err(
                            "a weight rule cannot match on tier (the tier comes from the weights)".into(),
                        ));
                    }
                    Effect::Weight { weight: w }
                }
                (Some(RawAction::Allow), None) => Effect::Allow,
                (Some(RawAction::Deny), None) => Effect::Deny {
                    reason: r
                        .reason
                        .clone()
                        .unwrap_or_else(|| "Access denied by the wiki's policy.".into()),
                },
                (Some(RawAction::Challenge), None) => {
                    if r.difficulty.is_some_and(|d| d > MAX_DIFFICULTY) {
                        return Err(rule_err(format!("difficulty must be at most {MAX_DIFFICULTY}")));
                    }
                    Effect::Challenge {
                        difficulty: r.difficulty,
                    }
                }
                (Some(RawAction::Limit), None) => {
                    let Some(l) = &r.limit else {
                        return Err(rule_err("action = \"limit\" needs limit = \"NAME\"".into()));
                    };
                    need_limit(l, at, Some(r.name.clone()), "the rule")?;
                    Effect::Limit { limit: l.clone() }
                }
            };
            if r.limit.is_some() && !matches!(effect, Effect::Limit { .. }) {
                return Err(rule_err("limit is only meaningful with action = \"limit\"".into()));
            }
            let regex = |p: &Option<String>| p.as_deref().map(compile_regex).transpose().map_err(rule_err);
            let mut headers = Vec::new();
            for h in &r.headers {
                let name = http::HeaderName::from_bytes(h.name.as_bytes())
                    .map_err(|_| rule_err(format!("{:?} is not a header name", h.name)))?;
                if h.absent && h.regex.is_some() {
                    return Err(rule_err(format!(
                        "header {:?}: give regex or absent = true, not both",
                        h.name
                    )));
                }
                headers.push(HeaderMatch {
                    name,
                    regex: regex(&h.regex)?,
                    absent: h.absent,
                });
            }
            let mut methods = Vec::new();
            for m in &r.method {
                let m = m.to_ascii_uppercase();
                if m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphabetic()) {
                    return Err(rule_err(format!("{m:?} is not an HTTP method")));
                }
                methods.push(m);
            }
            let ips = if r.ip.is_empty() {
                None
            } else {
                Some(IpSet::parse(&r.ip).map_err(|e| rule_err(e.to_string()))?)
            };
            rules.push(Rule {
                name: r.name.clone(),
                effect,
                shadow: r.shadow,
                classes: r.class.clone(),
                special: r.special.clone(),
                methods,
                path: regex(&r.path)?,
                query: regex(&r.query)?,
                user_agent: regex(&r.user_agent)?,
                ua_slot: None,
                headers,
                ips,
                tiers: r.tier.clone(),
            });
        }

        let ua_set = ua_set(&mut rules);
        Ok(Policy {
            rules,
            ua_set,
            limits,
            tiers,
            suspicious_score: raw.scores.suspicious,
            abusive_score: raw.scores.abusive,
            costs,
            good_bots,
            machine_limit: raw.machine.limit.clone(),
            machine_message: raw
                .machine
                .message
                .clone()
                .unwrap_or_else(|| DEFAULT_MACHINE_MESSAGE.to_string()),
            shadow: raw.shadow,
        })
    }

    /// The built-in default policy (`crates/gate/default-policy.toml`, documented in
    /// `docs/gate-policy.md`).
    pub fn default_policy() -> Policy {
        // The file is pinned by a test; should it ever fail, a policy with only the tier
        // budgets is a safe fallback rather than a panic.
        Policy::from_toml(DEFAULT_POLICY_TOML).unwrap_or_else(|_| Policy::minimal())
    }

    /// A policy with no rules and generous per-tier budgets.
    pub fn minimal() -> Policy {
        let limits = ["known-good", "unknown", "suspicious", "abusive"]
            .iter()
            .filter_map(|n| builtin_limit(n).map(|l| (n.to_string(), l)))
            .collect();
        Policy {
            rules: Vec::new(),
            ua_set: None,
            limits,
            tiers: Tier::ALL.map(tier_default),
            suspicious_score: 50,
            abusive_score: 100,
            costs: Costs {
                by_class: Class::ALL.iter().map(|c| (*c, 1)).collect(),
                special: BTreeMap::new(),
                api: BTreeMap::new(),
                limit_step: 50,
                max: 500,
            },
            good_bots: Vec::new(),
            machine_limit: None,
            machine_message: DEFAULT_MACHINE_MESSAGE.to_string(),
            shadow: false,
        }
    }

    /// The rules in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// A named limit.
    pub fn limit(&self, name: &str) -> Option<&RateLimit> {
        self.limits.get(name)
    }

    /// A tier's settings.
    pub fn tier(&self, tier: Tier) -> &TierPolicy {
        &self.tiers[tier.index()]
    }

    /// The cost table.
    pub fn costs(&self) -> &Costs {
        &self.costs
    }

    /// The cost of a classified request.
    pub fn cost(&self, c: &Classified) -> u32 {
        self.costs.cost(c)
    }

    /// The etiquette message machine clients get with a 429.
    pub fn machine_message(&self) -> &str {
        &self.machine_message
    }

    /// True when the policy file says `shadow = true` (report only, as a whole).
    pub fn is_shadow(&self) -> bool {
        self.shadow
    }

    /// Names of the good bots.
    pub fn good_bot_names(&self) -> Vec<&str> {
        self.good_bots.iter().map(|b| b.name.as_str()).collect()
    }

    pub(crate) fn good_bot(&self, user_agent: &str, ip: std::net::IpAddr) -> Option<&GoodBot> {
        self.good_bots
            .iter()
            .find(|b| b.ips.contains(ip) && b.user_agent.is_match(user_agent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGENTS: &[&str] = &[
        "",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0 Safari/537.36",
        "python-requests/2.31.0",
        "curl/8.5.0",
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
        "MyWikiTool/1.0 (https://example.org/tool; tool@example.org)",
        "Scrapy/2.11 (+https://scrapy.org)",
        "ruby",
        "rubygems",
    ];

    #[test]
    fn the_user_agent_set_answers_as_each_rules_own_regex() {
        let p = Policy::default_policy();
        assert!(p.ua_set.is_some());
        let ua_rules: Vec<&Rule> = p.rules.iter().filter(|r| r.user_agent.is_some()).collect();
        assert!(ua_rules.len() >= 5);
        for ua in AGENTS {
            let hits = p.ua_hits(ua).unwrap();
            for r in &ua_rules {
                let own = r.user_agent.as_ref().unwrap().is_match(ua);
                assert_eq!(hits.matched(r.ua_slot.unwrap()), own, "rule {} on {ua:?}", r.name);
            }
        }
        // Every listed agent hits something different from the plain browser.
        let browser = p.ua_hits(AGENTS[1]).unwrap();
        assert!(AGENTS[2..]
            .iter()
            .all(|ua| p.ua_hits(ua).unwrap().iter().ne(browser.iter())));
    }

    /// The per-thread cache answers for the set that asked: a policy loaded after another (a
    /// reload) with the same header in the same slot gets its own answer, and the first
    /// policy's answer is still its own.
    #[test]
    fn cached_user_agent_answers_belong_to_their_set() {
        let rule = |pattern: &str| {
            Policy::from_toml(&format!(
                "[[rules]]\nname = \"r\"\nuser_agent = \"{pattern}\"\nweight = 10\n"
            ))
            .unwrap()
        };
        let (bots, crawlers) = (rule("(?i)bot"), rule("(?i)crawler"));
        for _ in 0..3 {
            assert!(bots.ua_hits("ExampleBot/1.0").unwrap().matched(0));
            assert!(!crawlers.ua_hits("ExampleBot/1.0").unwrap().matched(0));
            assert!(crawlers.ua_hits("ExampleCrawler/2").unwrap().matched(0));
            assert!(!bots.ua_hits("ExampleCrawler/2").unwrap().matched(0));
        }
        // A header too long for the cache is answered all the same.
        let long = format!("{}bot", "x".repeat(UA_CACHE_MAX_LEN));
        assert!(bots.ua_hits(&long).unwrap().matched(0));
        assert!(!crawlers.ua_hits(&long).unwrap().matched(0));
    }

    proptest::proptest! {
        #[test]
        fn the_user_agent_set_agrees_on_generated_agents(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "Mozilla/", "5.0", " ", "(", ")", "curl/", "Python-Requests", "gptbot", "GPTBot",
                    "headless", "Chrome", "http://", "mailto:", "@", "example", ".", "org", "ruby", "-", "é",
                ]),
                0..8,
            )
        ) {
            static P: std::sync::LazyLock<Policy> = std::sync::LazyLock::new(Policy::default_policy);
            let ua: String = parts.concat();
            let p = &*P;
            let hits = p.ua_hits(&ua).unwrap();
            for r in p.rules.iter().filter(|r| r.user_agent.is_some()) {
                proptest::prop_assert_eq!(hits.matched(r.ua_slot.unwrap()), r.user_agent.as_ref().unwrap().is_match(&ua));
            }
        }
    }

    #[test]
    fn default_policy_parses() {
        let p = Policy::from_toml(DEFAULT_POLICY_TOML).unwrap();
        assert!(p.rules().iter().any(|r| r.name == "challenge-suspicious-expensive"));
        assert_eq!(p.tier(Tier::Unknown).difficulty, 12);
    }
}
