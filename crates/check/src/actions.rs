//! A filter's consequences, in AbuseFilter's vocabulary, with their validation.
//!
//! JSON form (each key optional, each value an object of parameters that all have defaults):
//!
//! ```json
//! {"warn": {"message": "abusefilter-warning"},
//!  "disallow": {"message": "abusefilter-disallowed"},
//!  "throttle": {"count": 3, "period": 60, "groups": ["user", "ip,page"]},
//!  "block": {"duration": "1 day", "anon_duration": "3 hours", "talk": false},
//!  "rangeblock": {"duration": "1 week"},
//!  "degroup": {}, "blockautopromote": {"duration": 432000},
//!  "tag": {"tags": ["spam"]}}
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::action::ActionError;
use crate::time::parse_duration;

/// Show a warning; the user may resubmit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Warn {
    /// The system message key shown.
    #[serde(default = "default_warn")]
    pub message: String,
}

/// Refuse the action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disallow {
    /// The system message key shown.
    #[serde(default = "default_disallow")]
    pub message: String,
}

/// Apply the filter's other consequences only when it matches more than `count` times in
/// `period` seconds for one of the groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Throttle {
    /// Matches allowed in the window before the throttle trips.
    pub count: u64,
    /// The window, in seconds.
    pub period: u64,
    /// Groups, each one or more of `ip`, `user`, `range`, `creationdate`, `creator`,
    /// `editcount`, `site`, `page` joined by commas (`user,page` counts per user and page).
    #[serde(default = "default_groups")]
    pub groups: Vec<String>,
}

/// Block the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    /// The block's expiry for registered users.
    #[serde(default = "default_block")]
    pub duration: String,
    /// The block's expiry for logged-out users.
    #[serde(default = "default_block")]
    pub anon_duration: String,
    /// Whether the block also prevents editing one's own talk page.
    #[serde(default)]
    pub talk: bool,
}

/// Block the IP range the request comes from (/16 for IPv4, /19 for IPv6, AbuseFilter's defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeBlock {
    /// The block's expiry.
    #[serde(default = "default_rangeblock")]
    pub duration: String,
}

/// Remove the user from all groups they may be removed from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Degroup {}

/// Prevent the user's automatic promotion (autoconfirmed) for a while.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockAutopromote {
    /// Seconds.
    #[serde(default = "default_autopromote")]
    pub duration: u64,
}

/// Tag the change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tag {
    /// The change tags to add.
    #[serde(default)]
    pub tags: Vec<String>,
}

fn default_warn() -> String {
    "abusefilter-warning".to_string()
}
fn default_disallow() -> String {
    "abusefilter-disallowed".to_string()
}
fn default_groups() -> Vec<String> {
    vec!["user".to_string()]
}
fn default_block() -> String {
    "indefinite".to_string()
}
fn default_rangeblock() -> String {
    "1 week".to_string()
}
fn default_autopromote() -> u64 {
    5 * 86_400
}

impl Default for Warn {
    fn default() -> Self {
        Warn {
            message: default_warn(),
        }
    }
}
impl Default for Disallow {
    fn default() -> Self {
        Disallow {
            message: default_disallow(),
        }
    }
}
impl Default for Throttle {
    /// AbuseFilter's edit form's defaults: 3 matches in 60 seconds, per user.
    fn default() -> Self {
        Throttle {
            count: 3,
            period: 60,
            groups: default_groups(),
        }
    }
}
impl Default for Block {
    fn default() -> Self {
        Block {
            duration: default_block(),
            anon_duration: default_block(),
            talk: false,
        }
    }
}
impl Default for RangeBlock {
    fn default() -> Self {
        RangeBlock {
            duration: default_rangeblock(),
        }
    }
}
impl Default for BlockAutopromote {
    fn default() -> Self {
        BlockAutopromote {
            duration: default_autopromote(),
        }
    }
}

/// What a filter does when it matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterActions {
    /// Warn first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn: Option<Warn>,
    /// Refuse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disallow: Option<Disallow>,
    /// Only act above a rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<Throttle>,
    /// Block the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<Block>,
    /// Remove the user's groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degroup: Option<Degroup>,
    /// Hold back autopromotion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blockautopromote: Option<BlockAutopromote>,
    /// Tag the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<Tag>,
    /// Block the IP range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rangeblock: Option<RangeBlock>,
}

/// The action names, in the order [`FilterActions::names`] lists them.
pub const ACTION_NAMES: [&str; 8] = [
    "throttle",
    "warn",
    "disallow",
    "block",
    "rangeblock",
    "degroup",
    "blockautopromote",
    "tag",
];

/// The tokens a throttle group is made of.
pub const THROTTLE_TOKENS: [&str; 8] = [
    "ip",
    "user",
    "range",
    "creationdate",
    "creator",
    "editcount",
    "site",
    "page",
];

type Params<'v> = &'v serde_json::Map<String, Json>;

fn params<'v>(name: &str, v: &'v Json, known: &[&str]) -> Result<Params<'v>, ActionError> {
    let obj = match v {
        Json::Object(o) => o,
        _ => {
            return Err(ActionError::new(
                name,
                "expected an object of parameters ({} for the defaults)",
            ))
        }
    };
    for k in obj.keys() {
        if !known.contains(&k.as_str()) {
            let expected = if known.is_empty() {
                "it takes no parameters".to_string()
            } else {
                format!("expected one of: {}", known.join(", "))
            };
            return Err(ActionError::new(
                format!("{name}.{k}"),
                format!("unknown parameter; {expected}"),
            ));
        }
    }
    Ok(obj)
}

fn message(name: &str, p: Params<'_>, default: fn() -> String) -> Result<String, ActionError> {
    match p.get("message") {
        None | Some(Json::Null) => Ok(default()),
        Some(Json::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(_) => Err(ActionError::new(
            format!("{name}.message"),
            "expected a non-empty system message key",
        )),
    }
}

fn positive(name: &str, field: &str, p: Params<'_>, default: Option<u64>) -> Result<u64, ActionError> {
    let path = format!("{name}.{field}");
    match p.get(field) {
        None | Some(Json::Null) => default.ok_or_else(|| ActionError::new(path, "required: an integer >= 1")),
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => Ok(n),
            _ => Err(ActionError::new(path, "expected an integer >= 1")),
        },
    }
}

fn duration(name: &str, field: &str, p: Params<'_>, default: fn() -> String) -> Result<String, ActionError> {
    match p.get(field) {
        None | Some(Json::Null) => Ok(default()),
        Some(Json::String(s)) if parse_duration(s).is_some() => Ok(s.trim().to_string()),
        Some(_) => Err(ActionError::new(
            format!("{name}.{field}"),
            "expected a duration: \"indefinite\", \"infinite\", a relative time such as \"1 day\" or \"3 hours\", or a timestamp",
        )),
    }
}

fn check_group(group: &str) -> bool {
    !group.is_empty() && group.split(',').all(|t| THROTTLE_TOKENS.contains(&t))
}

/// MediaWiki refuses tag names with `,`, `|` or `/`, and empty ones.
fn valid_tag(t: &str) -> bool {
    !t.trim().is_empty() && !t.contains([',', '|', '/']) && t.len() <= 255
}

/// The items of a list parameter at `path`, each a string that `read` accepts (and maybe
/// rewrites); the first it refuses is reported at `path[i]` as `expected`.
fn read_items(
    path: &str,
    items: &[Json],
    expected: &str,
    read: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ActionError> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.as_str()
                .and_then(&read)
                .ok_or_else(|| ActionError::new(format!("{path}[{i}]"), expected))
        })
        .collect()
}

impl FilterActions {
    /// Validates a filter's actions object; the error names the offending field (`throttle.count`).
    pub fn from_json(v: &Json) -> Result<FilterActions, ActionError> {
        let Some(obj) = v.as_object() else {
            return Err(ActionError::new(
                "",
                "expected an object keyed by action name (warn, disallow, throttle, block, …)",
            ));
        };
        let mut out = FilterActions::default();
        for (name, value) in obj {
            let n = name.as_str();
            match n {
                "warn" => {
                    let p = params(n, value, &["message"])?;
                    out.warn = Some(Warn {
                        message: message(n, p, default_warn)?,
                    });
                }
                "disallow" => {
                    let p = params(n, value, &["message"])?;
                    out.disallow = Some(Disallow {
                        message: message(n, p, default_disallow)?,
                    });
                }
                "throttle" => {
                    let p = params(n, value, &["count", "period", "groups"])?;
                    let defaults = Throttle::default();
                    let count = positive(n, "count", p, Some(defaults.count))?;
                    let period = positive(n, "period", p, Some(defaults.period))?;
                    let groups = match p.get("groups") {
                        None | Some(Json::Null) => defaults.groups,
                        Some(Json::Array(items)) if !items.is_empty() => read_items(
                            "throttle.groups",
                            items,
                            &format!(
                                "expected a group of {} joined by commas (\"user,page\")",
                                THROTTLE_TOKENS.join(", ")
                            ),
                            |g| {
                                let g = g.replace(' ', "");
                                check_group(&g).then_some(g)
                            },
                        )?,
                        Some(_) => {
                            return Err(ActionError::new(
                                "throttle.groups",
                                "expected a non-empty array of groups such as [\"user\", \"ip,page\"]",
                            ))
                        }
                    };
                    out.throttle = Some(Throttle { count, period, groups });
                }
                "block" => {
                    let p = params(n, value, &["duration", "anon_duration", "talk"])?;
                    let talk = match p.get("talk") {
                        None | Some(Json::Null) => false,
                        Some(Json::Bool(b)) => *b,
                        Some(_) => return Err(ActionError::new("block.talk", "expected a boolean")),
                    };
                    out.block = Some(Block {
                        duration: duration(n, "duration", p, default_block)?,
                        anon_duration: duration(n, "anon_duration", p, default_block)?,
                        talk,
                    });
                }
                "rangeblock" => {
                    let p = params(n, value, &["duration"])?;
                    out.rangeblock = Some(RangeBlock {
                        duration: duration(n, "duration", p, default_rangeblock)?,
                    });
                }
                "degroup" => {
                    params(n, value, &[])?;
                    out.degroup = Some(Degroup {});
                }
                "blockautopromote" => {
                    let p = params(n, value, &["duration"])?;
                    out.blockautopromote = Some(BlockAutopromote {
                        duration: positive(n, "duration", p, Some(default_autopromote()))?,
                    });
                }
                "tag" => {
                    let p = params(n, value, &["tags"])?;
                    let tags = match p.get("tags") {
                        Some(Json::Array(items)) if !items.is_empty() => read_items(
                            "tag.tags",
                            items,
                            "expected a tag name (non-empty, without , | or /)",
                            |t| valid_tag(t).then(|| t.trim().to_string()),
                        )?,
                        _ => return Err(ActionError::new("tag.tags", "required: a non-empty array of tag names")),
                    };
                    out.tag = Some(Tag { tags });
                }
                _ => {
                    return Err(ActionError::new(
                        n,
                        format!("unknown action; expected one of: {}", ACTION_NAMES.join(", ")),
                    ))
                }
            }
        }
        Ok(out)
    }

    /// Actions from a comma-separated list of names (AbuseFilter's API gives only names),
    /// each with default parameters; unknown names are ignored. A `tag` action from names
    /// has no tags (it then tags nothing): the export does not say which.
    pub fn from_names(names: &str) -> FilterActions {
        let mut out = FilterActions::default();
        for name in names.split(',').map(str::trim) {
            match name {
                "warn" => out.warn = Some(Warn::default()),
                "disallow" => out.disallow = Some(Disallow::default()),
                "throttle" => out.throttle = Some(Throttle::default()),
                "block" => out.block = Some(Block::default()),
                "rangeblock" => out.rangeblock = Some(RangeBlock::default()),
                "degroup" => out.degroup = Some(Degroup {}),
                "blockautopromote" => out.blockautopromote = Some(BlockAutopromote::default()),
                "tag" => out.tag = Some(Tag::default()),
                _ => {}
            }
        }
        out
    }

    /// The JSON form (every parameter written out).
    pub fn to_json(&self) -> Json {
        serde_json::to_value(self).unwrap_or(Json::Null)
    }

    /// The names of the actions set, in [`ACTION_NAMES`] order.
    pub fn names(&self) -> Vec<&'static str> {
        let set = [
            self.throttle.is_some(),
            self.warn.is_some(),
            self.disallow.is_some(),
            self.block.is_some(),
            self.rangeblock.is_some(),
            self.degroup.is_some(),
            self.blockautopromote.is_some(),
            self.tag.is_some(),
        ];
        ACTION_NAMES
            .iter()
            .zip(set)
            .filter(|(_, s)| *s)
            .map(|(n, _)| *n)
            .collect()
    }

    /// Whether nothing is set (a filter that only logs).
    pub fn is_empty(&self) -> bool {
        self.names().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Json) -> ActionError {
        FilterActions::from_json(&v).unwrap_err()
    }

    #[test]
    fn defaults() {
        let a = FilterActions::from_json(&json!({
            "warn": {}, "disallow": {}, "throttle": {}, "block": {}, "degroup": {},
            "blockautopromote": {}, "rangeblock": {}, "tag": {"tags": ["x"]}
        }))
        .unwrap();
        assert_eq!(a.warn.as_ref().unwrap().message, "abusefilter-warning");
        assert_eq!(a.disallow.as_ref().unwrap().message, "abusefilter-disallowed");
        assert_eq!(a.throttle.as_ref().unwrap().groups, ["user"]);
        assert_eq!(a.block.as_ref().unwrap().duration, "indefinite");
        assert_eq!(a.block.as_ref().unwrap().anon_duration, "indefinite");
        assert!(!a.block.as_ref().unwrap().talk);
        assert_eq!(a.blockautopromote.as_ref().unwrap().duration, 432_000);
        assert_eq!(a.rangeblock.as_ref().unwrap().duration, "1 week");
        assert_eq!(
            a.names(),
            [
                "throttle",
                "warn",
                "disallow",
                "block",
                "rangeblock",
                "degroup",
                "blockautopromote",
                "tag"
            ]
        );
        // The JSON form reads back the same.
        assert_eq!(FilterActions::from_json(&a.to_json()).unwrap(), a);
        assert!(FilterActions::from_json(&json!({})).unwrap().is_empty());
    }

    #[test]
    fn explicit_parameters() {
        let a = FilterActions::from_json(&json!({
            "throttle": {"count": 5, "period": 3600, "groups": ["user,page", "ip"]},
            "block": {"duration": "1 day", "anon_duration": "3 hours", "talk": true},
            "warn": {"message": "my-warning"}
        }))
        .unwrap();
        let t = a.throttle.unwrap();
        assert_eq!((t.count, t.period), (5, 3600));
        assert_eq!(t.groups, ["user,page", "ip"]);
        assert_eq!(a.block.unwrap().anon_duration, "3 hours");
        assert_eq!(a.warn.unwrap().message, "my-warning");
    }

    #[test]
    fn errors_name_their_field() {
        assert_eq!(err(json!([])).field, "");
        assert_eq!(err(json!({"ban": {}})).field, "ban");
        assert_eq!(err(json!({"warn": "x"})).field, "warn");
        assert_eq!(err(json!({"warn": {"msg": "x"}})).field, "warn.msg");
        assert_eq!(err(json!({"warn": {"message": ""}})).field, "warn.message");
        assert_eq!(err(json!({"disallow": {"message": 3}})).field, "disallow.message");
        assert_eq!(err(json!({"throttle": {"count": 0}})).field, "throttle.count");
        assert_eq!(err(json!({"throttle": {"count": "3"}})).field, "throttle.count");
        assert_eq!(err(json!({"throttle": {"period": 0}})).field, "throttle.period");
        assert_eq!(err(json!({"throttle": {"groups": []}})).field, "throttle.groups");
        assert_eq!(err(json!({"throttle": {"groups": "user"}})).field, "throttle.groups");
        let e = err(json!({"throttle": {"groups": ["user", "user,planet"]}}));
        assert_eq!(e.field, "throttle.groups[1]");
        assert!(e.message.contains("creationdate"), "{e}");
        assert_eq!(
            err(json!({"throttle": {"groups": ["user,"]}})).field,
            "throttle.groups[0]"
        );
        assert_eq!(
            err(json!({"block": {"duration": "forever and ever"}})).field,
            "block.duration"
        );
        assert_eq!(err(json!({"block": {"anon_duration": 5}})).field, "block.anon_duration");
        assert_eq!(err(json!({"block": {"talk": "yes"}})).field, "block.talk");
        assert_eq!(
            err(json!({"rangeblock": {"duration": "soon"}})).field,
            "rangeblock.duration"
        );
        assert_eq!(err(json!({"degroup": {"x": 1}})).field, "degroup.x");
        assert_eq!(
            err(json!({"blockautopromote": {"duration": -1}})).field,
            "blockautopromote.duration"
        );
        assert_eq!(err(json!({"tag": {}})).field, "tag.tags");
        assert_eq!(err(json!({"tag": {"tags": []}})).field, "tag.tags");
        assert_eq!(err(json!({"tag": {"tags": ["ok", "a,b"]}})).field, "tag.tags[1]");
        assert_eq!(err(json!({"tag": {"tags": [""]}})).field, "tag.tags[0]");
        assert_eq!(err(json!({"ban": {}})).to_string().split(':').next(), Some("ban"));
    }

    #[test]
    fn durations_accepted() {
        for d in [
            "indefinite",
            "infinite",
            "1 day",
            "3 hours",
            "2 weeks",
            "20300101000000",
            "2030-01-01T00:00:00Z",
        ] {
            assert!(
                FilterActions::from_json(&json!({"block": {"duration": d}})).is_ok(),
                "{d}"
            );
        }
    }

    #[test]
    fn from_names() {
        let a = FilterActions::from_names("warn,disallow,tag,frobnicate");
        assert_eq!(a.names(), ["warn", "disallow", "tag"]);
        assert_eq!(a.warn.unwrap().message, "abusefilter-warning");
        assert!(FilterActions::from_names("").is_empty());
        let t = FilterActions::from_names("throttle").throttle.unwrap();
        assert_eq!((t.count, t.period), (3, 60));
    }
}
