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
            Some(format!(
                "{}/{}",
                std::net::Ipv4Addr::from(u32::from(a) & mask),
                bits4.min(32)
            ))
        }
        std::net::IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - bits6.min(128)).unwrap_or(0);
            Some(format!(
                "{}/{}",
                std::net::Ipv6Addr::from(u128::from(a) & mask),
                bits6.min(128)
            ))
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
pub fn decide(matched: &[Matched<'_>], action: &Action, counters: &dyn Counters, now: i64, warn_ttl: u64) -> Verdict {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Counters as the contract says: fixed windows from the first event; flags with a TTL.
    #[derive(Default)]
    struct TestCounters {
        hits: Mutex<HashMap<String, (i64, u64)>>,
        flags: Mutex<HashMap<String, i64>>,
    }

    impl Counters for TestCounters {
        fn hit(&self, key: &str, period: u64, now: i64) -> u64 {
            let mut h = self.hits.lock().unwrap();
            let e = h.entry(key.to_string()).or_insert((now, 0));
            if now - e.0 >= period as i64 {
                *e = (now, 0);
            }
            e.1 += 1;
            e.1
        }
        fn take_or_set_flag(&self, key: &str, ttl: u64, now: i64) -> bool {
            let mut f = self.flags.lock().unwrap();
            match f.get(key) {
                Some(&t) if now - t < ttl as i64 => {
                    f.remove(key);
                    true
                }
                _ => {
                    f.insert(key.to_string(), now);
                    false
                }
            }
        }
    }

    fn acts(v: Json) -> FilterActions {
        FilterActions::from_json(&v).unwrap()
    }

    fn edit(user: Json) -> Action {
        Action::from_json(
            &json!({"action": "edit", "user": user, "page": {"namespace": 0, "title": "P"},
                                  "new_wikitext": "x", "request": {"ip": "198.51.100.7"}}),
        )
        .unwrap()
    }

    fn alice() -> Action {
        edit(json!({"name": "Alice", "id": 1, "editcount": 3}))
    }

    fn run(filters: &[(i64, &FilterActions)], action: &Action, c: &TestCounters, now: i64) -> Verdict {
        let matched: Vec<Matched<'_>> = filters
            .iter()
            .map(|(id, a)| Matched {
                filter_id: *id,
                description: "desc",
                actions: a,
            })
            .collect();
        decide(&matched, action, c, now, 3600)
    }

    fn keys(v: &Verdict) -> Vec<&str> {
        v.messages.iter().map(|m| m.key.as_str()).collect()
    }

    #[test]
    fn nothing_matched_allows() {
        let v = run(&[], &alice(), &TestCounters::default(), 0);
        assert_eq!(v.verdict, VerdictKind::Allow);
        assert_eq!(v.actions, json!({}));
        assert!(!v.prevents());
        let j = serde_json::to_value(&v).unwrap();
        assert_eq!(
            j,
            json!({"verdict": "allow", "matches": [], "actions": {}, "messages": [], "tags": []})
        );
    }

    #[test]
    fn precedence() {
        let c = TestCounters::default();
        let tag = acts(json!({"tag": {"tags": ["t"]}}));
        let dis = acts(json!({"disallow": {"message": "no"}}));
        let blk = acts(json!({"block": {"duration": "1 day"}}));
        let v = run(&[(1, &tag)], &alice(), &c, 0);
        assert_eq!((v.verdict, v.tags.clone()), (VerdictKind::Allow, vec!["t".to_string()]));
        assert_eq!(v.actions, json!({"tag": {"tags": ["t"]}}));
        let v = run(&[(1, &tag), (2, &dis)], &alice(), &c, 0);
        assert_eq!(v.verdict, VerdictKind::Disallow);
        assert_eq!(v.matches, [1, 2]);
        assert_eq!(
            v.messages,
            [Message {
                key: "no".into(),
                filter: 2,
                description: "desc".into()
            }]
        );
        let v = run(&[(2, &dis), (3, &blk)], &alice(), &c, 0);
        assert_eq!(v.verdict, VerdictKind::Block);
        assert_eq!(keys(&v), ["no", "abusefilter-blocked-display"]);
        assert_eq!(v.actions["block"]["expiry"], "1 day");
        assert!(v.prevents());
        for (a, kind) in [
            (json!({"warn": {}}), VerdictKind::Warn),
            (json!({"degroup": {}}), VerdictKind::Disallow),
            (json!({"blockautopromote": {}}), VerdictKind::Disallow),
            (json!({"rangeblock": {}}), VerdictKind::Block),
        ] {
            let fa = acts(a.clone());
            let v = run(&[(9, &fa)], &alice(), &TestCounters::default(), 0);
            assert_eq!(v.verdict, kind, "{a}");
        }
    }

    #[test]
    fn block_replaces_disallow_message() {
        let a = acts(
            json!({"disallow": {}, "block": {"duration": "3 hours", "anon_duration": "1 day", "talk": true},
                            "tag": {"tags": ["b", "a"]}}),
        );
        let v = run(&[(4, &a)], &alice(), &TestCounters::default(), 0);
        assert_eq!(v.verdict, VerdictKind::Block);
        assert_eq!(keys(&v), ["abusefilter-blocked-display"]);
        assert!(v.actions.get("disallow").is_none());
        assert_eq!(
            v.actions["block"],
            json!({"duration": "3 hours", "anon_duration": "1 day", "expiry": "3 hours", "talk": true, "filter": 4})
        );
        assert_eq!(v.taken, [(4, vec!["block".to_string(), "tag".to_string()])]);
        assert_eq!(v.tags, ["a", "b"]);
        // A logged-out editor gets the anonymous expiry.
        let anon = edit(json!({"name": "198.51.100.7"}));
        let v = run(&[(4, &a)], &anon, &TestCounters::default(), 0);
        assert_eq!(v.actions["block"]["expiry"], "1 day");
        // Degroup also hides the disallow message; for logged-out users it does nothing.
        let d = acts(json!({"disallow": {}, "degroup": {}}));
        let v = run(&[(5, &d)], &alice(), &TestCounters::default(), 0);
        assert_eq!(keys(&v), ["abusefilter-degrouped"]);
        let v = run(&[(5, &d)], &anon, &TestCounters::default(), 0);
        assert_eq!(v.verdict, VerdictKind::Allow);
        assert!(v.messages.is_empty());
        let bp = acts(json!({"blockautopromote": {"duration": 60}}));
        let v = run(&[(6, &bp)], &alice(), &TestCounters::default(), 0);
        assert_eq!(keys(&v), ["abusefilter-autopromote-blocked"]);
        assert_eq!(v.actions["blockautopromote"], json!({"duration": 60, "filter": 6}));
    }

    #[test]
    fn longest_block_wins() {
        let short = acts(json!({"block": {"duration": "1 day"}, "disallow": {}}));
        let long = acts(json!({"block": {"duration": "indefinite"}}));
        let v = run(&[(1, &short), (2, &long)], &alice(), &TestCounters::default(), 0);
        assert_eq!(v.actions["block"]["filter"], 2);
        // Filter 1's block was dropped, so its disallow shows again.
        assert_eq!(
            v.taken,
            [(1, vec!["disallow".to_string()]), (2, vec!["block".to_string()])]
        );
        assert_eq!(keys(&v), ["abusefilter-disallowed", "abusefilter-blocked-display"]);
    }

    #[test]
    fn throttle_below_and_above() {
        let c = TestCounters::default();
        let a = acts(
            json!({"throttle": {"count": 2, "period": 60, "groups": ["user"]}, "disallow": {}, "tag": {"tags": ["t"]}}),
        );
        let me = alice();
        for now in [0, 1] {
            let v = run(&[(7, &a)], &me, &c, now);
            assert_eq!(v.verdict, VerdictKind::Allow, "hit at {now} is within the limit");
            assert!(v.tags.is_empty(), "throttled consequences (tags too) do not apply");
            assert_eq!(v.taken, [(7, vec![])]);
        }
        let v = run(&[(7, &a)], &me, &c, 2);
        assert_eq!(v.verdict, VerdictKind::Disallow, "third hit exceeds count 2");
        assert_eq!(
            v.taken,
            [(
                7,
                vec!["throttle".to_string(), "disallow".to_string(), "tag".to_string()]
            )]
        );
        assert_eq!(v.tags, ["t"]);
        // Another user has their own count.
        let bob = edit(json!({"name": "Bob", "id": 2}));
        assert_eq!(run(&[(7, &a)], &bob, &c, 3).verdict, VerdictKind::Allow);
        // The window restarts after the period.
        assert_eq!(run(&[(7, &a)], &me, &c, 61).verdict, VerdictKind::Allow);
        assert_eq!(run(&[(7, &a)], &me, &c, 62).verdict, VerdictKind::Allow);
        assert_eq!(run(&[(7, &a)], &me, &c, 63).verdict, VerdictKind::Disallow);
    }

    #[test]
    fn throttle_alone_and_groups() {
        let c = TestCounters::default();
        let a = acts(json!({"throttle": {"count": 1, "period": 10, "groups": ["ip", "user,page"]}}));
        assert_eq!(run(&[(8, &a)], &alice(), &c, 0).verdict, VerdictKind::Allow);
        assert_eq!(run(&[(8, &a)], &alice(), &c, 1).verdict, VerdictKind::Throttle);
        assert_eq!(
            c.hits
                .lock()
                .unwrap()
                .keys()
                .cloned()
                .collect::<std::collections::BTreeSet<_>>(),
            ["throttle:8:ip:198.51.100.7", "throttle:8:user,page:Alice|0:P"]
                .map(String::from)
                .into()
        );
        // Any one group over the limit trips it: same IP, different user and page.
        let other = Action::from_json(
            &json!({"action": "edit", "user": {"name": "Zed"}, "page": {"title": "Q"},
                                              "new_wikitext": "", "request": {"ip": "198.51.100.7"}}),
        )
        .unwrap();
        assert_eq!(run(&[(8, &a)], &other, &c, 2).verdict, VerdictKind::Throttle);
    }

    #[test]
    fn throttle_keys() {
        let a = Action::from_json(&json!({"action": "edit", "new_wikitext": "",
            "user": {"name": "Alice", "editcount": 12, "registration": "20240131235959"},
            "page": {"namespace": 1, "title": "T", "first_contributor": "Bob"},
            "request": {"ip": "2001:db8:1:2:3:4:5:6"}}))
        .unwrap();
        assert_eq!(throttle_key(1, "range", &a), "throttle:1:range:2001:db8:1:2::/64");
        assert_eq!(throttle_key(1, "site", &a), "throttle:1:site:");
        assert_eq!(
            throttle_key(1, "creator,editcount", &a),
            "throttle:1:creator,editcount:Bob|12"
        );
        assert_eq!(
            throttle_key(1, "creationdate", &a),
            "throttle:1:creationdate:1706659200"
        );
        assert_eq!(throttle_key(1, "page", &a), "throttle:1:page:1:T");
        assert_eq!(ip_range("198.51.100.7", 16, 64).as_deref(), Some("198.51.0.0/16"));
        assert_eq!(ip_range("not an ip", 16, 64), None);
        assert_eq!(warn_key(3, &a), "warn:3:Alice:Talk:T:edit");
    }

    #[test]
    fn warn_then_resubmit_then_warn_again() {
        let c = TestCounters::default();
        let a = acts(json!({"warn": {"message": "careful"}, "disallow": {}, "tag": {"tags": ["w"]}}));
        let me = alice();
        let v = run(&[(3, &a)], &me, &c, 0);
        assert_eq!(v.verdict, VerdictKind::Warn);
        assert_eq!(keys(&v), ["careful"]);
        assert_eq!(v.actions, json!({"warn": {"message": "careful", "filter": 3}}));
        assert!(v.tags.is_empty(), "only the warning applies on the first attempt");
        assert_eq!(v.taken, [(3, vec!["warn".to_string()])]);
        let v = run(&[(3, &a)], &me, &c, 10);
        assert_eq!(
            v.verdict,
            VerdictKind::Disallow,
            "resubmitted: the other consequences apply"
        );
        assert_eq!(keys(&v), ["abusefilter-disallowed"]);
        assert_eq!(v.tags, ["w"]);
        let v = run(&[(3, &a)], &me, &c, 20);
        assert_eq!(v.verdict, VerdictKind::Warn, "the next attempt is warned again");
        // A warning alone: the resubmission is allowed.
        let w = acts(json!({"warn": {}}));
        let c = TestCounters::default();
        assert_eq!(run(&[(4, &w)], &me, &c, 0).verdict, VerdictKind::Warn);
        let v = run(&[(4, &w)], &me, &c, 1);
        assert_eq!(v.verdict, VerdictKind::Allow);
        assert_eq!(v.taken, [(4, vec![])]);
        // The flag expires.
        assert_eq!(run(&[(4, &w)], &me, &c, 2).verdict, VerdictKind::Warn);
        assert_eq!(run(&[(4, &w)], &me, &c, 2 + 3600).verdict, VerdictKind::Warn);
    }

    #[test]
    fn throttle_before_warn() {
        let c = TestCounters::default();
        let a = acts(json!({"throttle": {"count": 1, "period": 100}, "warn": {}}));
        let me = alice();
        assert_eq!(run(&[(5, &a)], &me, &c, 0).verdict, VerdictKind::Allow);
        assert!(
            c.flags.lock().unwrap().is_empty(),
            "an untripped throttle leaves the warning unchecked"
        );
        assert_eq!(run(&[(5, &a)], &me, &c, 1).verdict, VerdictKind::Warn);
        // Resubmitted: throttle still exceeded, warning dropped, nothing else: throttle.
        assert_eq!(run(&[(5, &a)], &me, &c, 2).verdict, VerdictKind::Throttle);
    }

    #[test]
    fn tags_union_sorted() {
        let a = acts(json!({"tag": {"tags": ["spam", "bot"]}}));
        let b = acts(json!({"tag": {"tags": ["bot", "new"]}, "warn": {}}));
        let c = TestCounters::default();
        let v = run(&[(1, &a), (2, &b)], &alice(), &c, 0);
        assert_eq!(v.tags, ["bot", "spam"], "filter 2 only warned");
        let v = run(&[(1, &a), (2, &b)], &alice(), &c, 1);
        assert_eq!(v.tags, ["bot", "new", "spam"]);
        assert_eq!(v.actions["tag"], json!({"tags": ["bot", "new", "spam"]}));
        assert_eq!(v.verdict, VerdictKind::Allow);
    }

    #[test]
    fn rangeblock_needs_an_ip() {
        let a = acts(json!({"rangeblock": {}}));
        let v = run(&[(1, &a)], &alice(), &TestCounters::default(), 0);
        assert_eq!(
            v.actions["rangeblock"],
            json!({"duration": "1 week", "range": "198.51.0.0/16", "filter": 1})
        );
        let no_ip = Action::from_json(&json!({"action": "delete", "page": {}})).unwrap();
        let v = run(&[(1, &a)], &no_ip, &TestCounters::default(), 0);
        assert_eq!(v.verdict, VerdictKind::Allow);
    }

    #[test]
    fn kind_names() {
        for k in [
            VerdictKind::Allow,
            VerdictKind::Throttle,
            VerdictKind::Warn,
            VerdictKind::Disallow,
            VerdictKind::Block,
        ] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
    }
}
