//! From the filters that matched an action to what MediaWiki must do, following AbuseFilter's
//! `ConsequencesExecutor`:
//!
//! 1. Per filter, a throttle is counted first (a hit for each of its groups); while no group's
//!    count exceeds the limit, the filter's other consequences are disabled.
//! 2. Then a warning: on the first attempt (no warned flag for this filter, user, page and
//!    action) only the warning applies and the flag is set; on the resubmission the flag is
//!    taken, the warning dropped and the other consequences apply; the attempt after that
//!    warns again.
//! 3. Of all blocks, only the longest is kept (the first of equally long ones); a filter that
//!    blocks, range-blocks, degroups or blocks autopromotion does not also show its disallow
//!    message.
//! 4. Degroup and autopromotion blocks do nothing to logged-out users, as in AbuseFilter.
//!
//! One difference: AbuseFilter counts a throttle hit only when the throttle itself runs, so a
//! first-attempt warning (which disables the throttle too) does not count; here every match of
//! a throttled filter counts, because [`Counters`] only offers "count and read".

use serde::Serialize;
use serde_json::{json, Map, Value as Json};
use wikiguard_store::Counters;

use crate::action::Action;
use crate::actions::FilterActions;
use crate::time::parse_duration;

/// The overall outcome, from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VerdictKind {
    /// Nothing prevents the action.
    Allow,
    /// A throttle tripped, and nothing else prevents the action.
    Throttle,
    /// A warning is shown; resubmitting goes through (unless something else stops it).
    Warn,
    /// The action is refused.
    Disallow,
    /// The action is refused and the user (or range) blocked.
    Block,
}

impl VerdictKind {
    /// The lowercase name.
    pub fn as_str(&self) -> &'static str {
        match self {
            VerdictKind::Allow => "allow",
            VerdictKind::Throttle => "throttle",
            VerdictKind::Warn => "warn",
            VerdictKind::Disallow => "disallow",
            VerdictKind::Block => "block",
        }
    }
}

/// A filter that matched the action.
#[derive(Debug, Clone, Copy)]
pub struct Matched<'a> {
    /// The filter id.
    pub filter_id: i64,
    /// The filter's public description.
    pub description: &'a str,
    /// Its consequences.
    pub actions: &'a FilterActions,
}

/// A message MediaWiki shows the user (a system message key, with the filter it comes from).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// The system message key.
    pub key: String,
    /// The filter id.
    pub filter: i64,
    /// The filter's description (a parameter of AbuseFilter's messages).
    pub description: String,
}

/// The answer to a check.
///
/// Wire JSON: `verdict`, `matches`, `actions`, `messages`, `tags`; `taken` is for the hit log
/// and left out of the JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The most severe outcome.
    pub verdict: VerdictKind,
    /// Every matched filter id, in the order given.
    pub matches: Vec<i64>,
    /// What MediaWiki must do, keyed by consequence: `warn` and `disallow` (`{"message", "filter"}`,
    /// the first such filter), `block` (`{"duration", "anon_duration", "expiry", "talk", "filter"}`,
    /// `expiry` being the one for this user), `rangeblock` (`{"duration", "range", "filter"}`),
    /// `degroup` (`{"filter"}`), `blockautopromote` (`{"duration", "filter"}`), `tag` (`{"tags"}`).
    pub actions: Json,
    /// The messages to show, in filter order.
    pub messages: Vec<Message>,
    /// Change tags to add (sorted, each once).
    pub tags: Vec<String>,
    /// Per matched filter, the consequences it took (`throttle` meaning its throttle tripped).
    #[serde(skip)]
    pub taken: Vec<(i64, Vec<String>)>,
}

impl Verdict {
    /// Whether MediaWiki must stop the action.
    pub fn prevents(&self) -> bool {
        self.verdict >= VerdictKind::Warn
    }
}

/// The IP's network of `bits4` (IPv4) or `bits6` (IPv6) bits in CIDR form (`192.0.0.0/16`).
pub fn ip_range(ip: &str, bits4: u32, bits6: u32) -> Option<String> {
    match ip.trim().parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - bits4.min(32)).unwrap_or(0);
            Some(format!("{}/{}", std::net::Ipv4Addr::from(u32::from(a) & mask), bits4.min(32)))
        }
        std::net::IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - bits6.min(128)).unwrap_or(0);
            Some(format!("{}/{}", std::net::Ipv6Addr::from(u128::from(a) & mask), bits6.min(128)))
        }
    }
}

/// The identifier of one throttle token for this action.
fn token_value(token: &str, action: &Action) -> String {
    let user = action.user.as_ref();
    match token {
        "ip" => action.ip().unwrap_or("").to_string(),
        "user" => action.user_name().to_string(),
        "range" => action.ip().and_then(|ip| ip_range(ip, 16, 64)).unwrap_or_default(),
        "creationdate" => {
            let reg = user
                .and_then(|u| u.registration.as_deref())
                .and_then(crate::time::parse_timestamp)
                .unwrap_or(0);
            (reg - reg.rem_euclid(86_400)).to_string()
        }
        "creator" => action
            .page
            .as_ref()
            .and_then(|p| p.first_contributor.clone())
            .unwrap_or_default(),
        "editcount" => user.and_then(|u| u.editcount).unwrap_or(0).to_string(),
        "page" => format!(
            "{}:{}",
            action.namespace(),
            action.page.as_ref().map(|p| p.text()).unwrap_or_default()
        ),
        _ => String::new(),
    }
}

/// The counter key of a throttle group: `throttle:{filter}:{group}:{values}`, the values of
/// the group's tokens joined by `|` (a character no IP, user name or title contains).
pub fn throttle_key(filter_id: i64, group: &str, action: &Action) -> String {
    let values: Vec<String> = group.split(',').map(|t| token_value(t, action)).collect();
    format!("throttle:{filter_id}:{group}:{}", values.join("|"))
}

/// The flag key of a warning: `warn:{filter}:{user}:{prefixed title}:{action}`.
pub fn warn_key(filter_id: i64, action: &Action) -> String {
    format!(
        "warn:{filter_id}:{}:{}:{}",
        action.user_name(),
        action.page_title(),
        action.kind().as_str()
    )
}

/// What one filter does after its throttle and warning had their say.
#[derive(Default)]
struct Effective {
    throttle_tripped: bool,
    warn: bool,
    disallow: bool,
    block: bool,
    rangeblock: bool,
    degroup: bool,
    blockautopromote: bool,
    tag: bool,
}

fn effective(m: &Matched<'_>, action: &Action, counters: &dyn Counters, now: i64, warn_ttl: u64) -> Effective {
    let a = m.actions;
    let mut e = Effective {
        throttle_tripped: false,
        warn: a.warn.is_some(),
        disallow: a.disallow.is_some(),
        block: a.block.is_some(),
        rangeblock: a.rangeblock.is_some(),
        degroup: a.degroup.is_some(),
        blockautopromote: a.blockautopromote.is_some(),
        tag: a.tag.is_some(),
    };
    if let Some(t) = &a.throttle {
        let mut tripped = false;
        for group in &t.groups {
            // Every group counts, even after one has tripped (AbuseFilter counts them all).
            let n = counters.hit(&throttle_key(m.filter_id, group, action), t.period, now);
            tripped |= n > t.count;
        }
        if !tripped {
            return Effective::default();
        }
        e.throttle_tripped = true;
    }
    if a.warn.is_some() {
        let resubmitted = counters.take_or_set_flag(&warn_key(m.filter_id, action), warn_ttl, now);
        if !resubmitted {
            return Effective {
                warn: true,
                ..Effective::default()
            };
        }
        e.warn = false;
    }
    e
}

/// Decides what to do about an action that the `matched` filters matched, counting throttles
/// and warnings in `counters` at `now` (Unix seconds); a warning flag lives `warn_ttl` seconds.
pub fn decide(
    matched: &[Matched<'_>],
    action: &Action,
    counters: &dyn Counters,
    now: i64,
    warn_ttl: u64,
) -> Verdict {
    let registered = action.is_registered();
    let mut effs: Vec<Effective> = matched
        .iter()
        .map(|m| effective(m, action, counters, now, warn_ttl))
        .collect();

    // Only the longest block is kept.
    let mut longest: Option<(usize, u64)> = None;
    for (i, (m, e)) in matched.iter().zip(&effs).enumerate() {
        if let (true, Some(b)) = (e.block, &m.actions.block) {
            let expiry = if registered { &b.duration } else { &b.anon_duration };
            let secs = parse_duration(expiry).map_or(0, |d| d.seconds_from(now));
            if longest.is_none_or(|(_, best)| secs > best) {
                longest = Some((i, secs));
            }
        }
    }
    for (i, e) in effs.iter_mut().enumerate() {
        if e.block && longest.is_some_and(|(j, _)| j != i) {
            e.block = false;
        }
        if e.block || e.rangeblock || e.degroup || e.blockautopromote {
            e.disallow = false;
        }
    }

    let mut kind = VerdictKind::Allow;
    let mut actions = Map::new();
    let mut messages = Vec::new();
    let mut tags: Vec<String> = Vec::new();
    let mut taken = Vec::new();
    for (m, e) in matched.iter().zip(&effs) {
        let mut took: Vec<String> = Vec::new();
        let mut message = |key: &str| {
            messages.push(Message {
                key: key.to_string(),
                filter: m.filter_id,
                description: m.description.to_string(),
            })
        };
        let a = m.actions;
        if e.throttle_tripped {
            took.push("throttle".into());
            kind = kind.max(VerdictKind::Throttle);
        }
        if let (true, Some(w)) = (e.warn, &a.warn) {
            took.push("warn".into());
            message(&w.message);
            kind = kind.max(VerdictKind::Warn);
            actions
                .entry("warn")
                .or_insert_with(|| json!({"message": w.message, "filter": m.filter_id}));
        }
        if let (true, Some(d)) = (e.disallow, &a.disallow) {
            took.push("disallow".into());
            message(&d.message);
            kind = kind.max(VerdictKind::Disallow);
            actions
                .entry("disallow")
                .or_insert_with(|| json!({"message": d.message, "filter": m.filter_id}));
        }
        if let (true, Some(b)) = (e.block, &a.block) {
            took.push("block".into());
            message("abusefilter-blocked-display");
            kind = kind.max(VerdictKind::Block);
            let expiry = if registered { &b.duration } else { &b.anon_duration };
            actions.insert(
                "block".into(),
                json!({"duration": b.duration, "anon_duration": b.anon_duration, "expiry": expiry,
                       "talk": b.talk, "filter": m.filter_id}),
            );
        }
        if let (true, Some(r)) = (e.rangeblock, &a.rangeblock) {
            // Without the request's IP there is no range to block.
            if let Some(range) = action.ip().and_then(|ip| ip_range(ip, 16, 19)) {
                took.push("rangeblock".into());
                message("abusefilter-blocked-display");
                kind = kind.max(VerdictKind::Block);
                actions
                    .entry("rangeblock")
                    .or_insert_with(|| json!({"duration": r.duration, "range": range, "filter": m.filter_id}));
            }
        }
        if e.degroup && registered {
            took.push("degroup".into());
            message("abusefilter-degrouped");
            kind = kind.max(VerdictKind::Disallow);
            actions
                .entry("degroup")
                .or_insert_with(|| json!({"filter": m.filter_id}));
        }
        if let (true, true, Some(bp)) = (e.blockautopromote, registered, &a.blockautopromote) {
            took.push("blockautopromote".into());
            message("abusefilter-autopromote-blocked");
            kind = kind.max(VerdictKind::Disallow);
            let entry = actions
                .entry("blockautopromote")
                .or_insert_with(|| json!({"duration": bp.duration, "filter": m.filter_id}));
            // Of several, the longest hold applies.
            if entry["duration"].as_u64().is_some_and(|d| d < bp.duration) {
                *entry = json!({"duration": bp.duration, "filter": m.filter_id});
            }
        }
        if let (true, Some(t)) = (e.tag, &a.tag) {
            if !t.tags.is_empty() {
                took.push("tag".into());
                tags.extend(t.tags.iter().cloned());
            }
        }
        taken.push((m.filter_id, took));
    }
    tags.sort();
    tags.dedup();
    if !tags.is_empty() {
        actions.insert("tag".into(), json!({"tags": tags}));
    }
    Verdict {
        verdict: kind,
        matches: matched.iter().map(|m| m.filter_id).collect(),
        actions: Json::Object(actions),
        messages,
        tags,
        taken,
    }
}
