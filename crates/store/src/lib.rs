//! Persistence for wikiguard: filters with their full version history, the hit log, the
//! bounded log of recent actions, and the counters behind throttles and warnings.
//!
//! [`Store`] is the interface the service uses; [`SqliteStore`] is the embedded default (one
//! file, WAL mode, migrations applied at open, one writer thread that commits in groups, so a
//! caller returns only once its rows are durable). A PostgreSQL implementation can follow
//! behind the same trait without touching callers. [`Counters`] is the interface for
//! short-lived counters; [`MemoryCounters`] keeps them in memory with bounded size.
//!
//! Times are Unix seconds, passed in by the caller: the store reads no clock, so tests can
//! say what "now" is.

#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod counters;
mod sqlite;

pub use counters::MemoryCounters;
pub use sqlite::{Durability, SqliteStore};

use serde::{Deserialize, Serialize};

/// What went wrong in the store. `NotFound` is apart from the rest: callers answer it with 404.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such filter (or hit).
    #[error("{what} {id} does not exist")]
    NotFound {
        /// What was looked up ("filter").
        what: &'static str,
        /// Its id.
        id: i64,
    },
    /// A write conflicted with the stored state (for example an id that is already taken).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database failed or holds something this version cannot read.
    #[error("storage error: {0}")]
    Backend(String),
}

/// A filter as an administrator writes it, in AbuseFilter's vocabulary. `actions` is kept as
/// JSON here (`{"disallow": {"message": "…"}, "tag": {"tags": ["…"]}, …}`); the check crate
/// owns its meaning and validates it before anything is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilterSpec {
    /// The public description (AbuseFilter's "name").
    pub description: String,
    /// The rule text.
    pub pattern: String,
    /// Whether the filter runs.
    pub enabled: bool,
    /// Deleted filters never run and are hidden from the default listing.
    pub deleted: bool,
    /// Private filters hide their pattern from non-admins and their hits' details.
    pub private: bool,
    /// AbuseFilter's filter group (`default` unless the wiki defines others).
    pub group: String,
    /// Notes for other administrators.
    pub comments: String,
    /// The consequences, as a JSON object keyed by action name.
    pub actions: serde_json::Value,
}

/// A stored filter: its current version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    /// The filter id (AbuseFilter's number; kept on import).
    pub id: i64,
    /// The version number, 1 for the first, one more for every change.
    pub version: i64,
    /// The current text of the filter.
    #[serde(flatten)]
    pub spec: FilterSpec,
    /// Who made the last change.
    pub last_editor: String,
    /// When (Unix seconds).
    pub last_edit_time: i64,
    /// How many hits the filter has (imported counts included).
    pub hits: i64,
}

/// Why a version was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// The filter was created.
    Create,
    /// The filter was changed.
    Update,
    /// The filter was deleted (its spec then has `deleted: true, enabled: false`).
    Delete,
    /// The filter came from an AbuseFilter export.
    Import,
}

/// One entry of a filter's history: the filter as it was after that change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilterVersion {
    /// The filter id.
    pub id: i64,
    /// The version number.
    pub version: i64,
    /// The filter's text at that version.
    #[serde(flatten)]
    pub spec: FilterSpec,
    /// Who made the change.
    pub editor: String,
    /// When (Unix seconds).
    pub time: i64,
    /// What kind of change it was.
    pub change: Change,
}

/// A hit to write: a filter matched an action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewHit {
    /// The filter that matched.
    pub filter_id: i64,
    /// The filter's version when it matched.
    pub filter_version: i64,
    /// When (Unix seconds).
    pub time: i64,
    /// The action (`edit`, `move`, `createaccount`…).
    pub action: String,
    /// The user's name (for an anonymous editor MediaWiki's name for them).
    pub user_name: String,
    /// The page's prefixed title (empty for actions without a page).
    pub page: String,
    /// The page's namespace number.
    pub namespace: i64,
    /// The verdict of the whole check (`allow`, `warn`, `disallow`, `throttle`, `block`).
    pub verdict: String,
    /// The consequences that this filter's hit took (`["warn"]`, `["disallow", "tag"]`…).
    pub actions_taken: Vec<String>,
    /// The variables the filter could read, as a JSON object (AbuseFilter's variable dump).
    /// Shared: the hits of one check point at one dump, which the store writes once.
    pub vars: std::sync::Arc<serde_json::Value>,
}

/// A stored hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// The hit's id, increasing with time.
    pub id: i64,
    /// What was written.
    #[serde(flatten)]
    pub hit: NewHit,
}

/// Which hits to list, newest first. Every field narrows; `None` does not.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HitQuery {
    /// Only hits of this filter.
    pub filter: Option<i64>,
    /// Only hits by this user name (exact).
    pub user: Option<String>,
    /// Only hits on this prefixed title (exact).
    pub page: Option<String>,
    /// Only hits at or after this time.
    pub since: Option<i64>,
    /// Only hits at or before this time.
    pub until: Option<i64>,
    /// Only hits with an id below this one (the next page after a listing).
    pub before_id: Option<i64>,
    /// At most this many (the store caps it at 1000; 0 means 100).
    pub limit: usize,
}

/// An action kept for "test against recent actions": the action as the wiki sent it (minus
/// the request's IP and user agent, which are never kept here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewRecentAction {
    /// When it was checked (Unix seconds).
    pub time: i64,
    /// The action name.
    pub action: String,
    /// The user's name.
    pub user_name: String,
    /// The page's prefixed title.
    pub page: String,
    /// The action's JSON as the check API received it, without `request`.
    pub body: serde_json::Value,
}

/// A stored recent action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecentAction {
    /// Its id, increasing with time.
    pub id: i64,
    /// What was written.
    #[serde(flatten)]
    pub action: NewRecentAction,
}

/// Where [`Store::record_hits_then`] sends the hits' ids once they are committed.
pub type HitsCommitted = Box<dyn FnOnce(Result<Vec<i64>, StoreError>) + Send>;

/// The service's persistent state. Every method is blocking; async callers run them on a
/// blocking thread. A write returns only after it is committed.
pub trait Store: Send + Sync + 'static {
    /// Every filter, by id; deleted ones only when asked.
    fn list_filters(&self, include_deleted: bool) -> Result<Vec<Filter>, StoreError>;
    /// One filter, deleted or not.
    fn get_filter(&self, id: i64) -> Result<Filter, StoreError>;
    /// Stores a new filter under the next free id, as version 1.
    fn create_filter(&self, spec: &FilterSpec, editor: &str, now: i64) -> Result<Filter, StoreError>;
    /// Replaces a filter's text, as a new version (`NotFound` if there is no such filter).
    /// Writing the same spec again still records a version: the history shows every save.
    fn update_filter(&self, id: i64, spec: &FilterSpec, editor: &str, now: i64) -> Result<Filter, StoreError>;
    /// Marks a filter deleted and disabled, as a new version. Its history and hits stay.
    fn delete_filter(&self, id: i64, editor: &str, now: i64) -> Result<Filter, StoreError>;
    /// Creates or updates the filter with this id from an AbuseFilter export, as a version
    /// with `Change::Import`, taking the export's editor, time and hit count.
    fn import_filter(
        &self,
        id: i64,
        spec: &FilterSpec,
        editor: &str,
        time: i64,
        hits: i64,
    ) -> Result<Filter, StoreError>;
    /// Every version of a filter, oldest first (`NotFound` if there is no such filter).
    fn filter_history(&self, id: i64) -> Result<Vec<FilterVersion>, StoreError>;
    /// Writes hits in one transaction, adds them to their filters' hit counts, and returns
    /// their ids once committed.
    fn record_hits(&self, hits: &[NewHit]) -> Result<Vec<i64>, StoreError>;
    /// [`Self::record_hits`] without waiting for the commit: `done` hears what `record_hits`
    /// would answer, once, when it is known. A store may call it on a thread of its own, so
    /// it should only hand the answer on (to a channel). This default waits for the commit.
    fn record_hits_then(&self, hits: &[NewHit], done: HitsCommitted) {
        done(self.record_hits(hits));
    }
    /// Lists hits, newest first.
    fn hits(&self, query: &HitQuery) -> Result<Vec<Hit>, StoreError>;
    /// Appends actions to the recent-actions log, oldest first, in one transaction, and drops
    /// the oldest beyond `keep`; returns their ids (those of actions already dropped again,
    /// when there are more than `keep`, included).
    fn record_recent_actions(&self, actions: &[NewRecentAction], keep: usize) -> Result<Vec<i64>, StoreError>;
    /// [`Self::record_recent_actions`] for one action.
    fn record_recent_action(&self, action: &NewRecentAction, keep: usize) -> Result<i64, StoreError> {
        let ids = self.record_recent_actions(std::slice::from_ref(action), keep)?;
        ids.first()
            .copied()
            .ok_or_else(|| StoreError::Backend("a recent action was written without an id".into()))
    }
    /// The newest `limit` recent actions, newest first.
    fn recent_actions(&self, limit: usize) -> Result<Vec<RecentAction>, StoreError>;
    /// Whether the store answers (for `/readyz`).
    fn ping(&self) -> Result<(), StoreError>;
    /// A user's state of one kind (`totp`, `recovery`, `devices`…) with its version, or
    /// `None` when there is none. The accounts door owns the JSON's meaning.
    fn account_state(&self, user: &str, kind: &str) -> Result<Option<Versioned>, StoreError>;
    /// Writes a user's state if its version is still `expected` (`0`: there must be none
    /// yet), and returns the new version; `Ok(None)` when someone else wrote first (the caller
    /// reads again and retries). This is what makes a TOTP code usable once even when two
    /// logins race.
    fn put_account_state(
        &self,
        user: &str,
        kind: &str,
        expected: i64,
        value: &serde_json::Value,
    ) -> Result<Option<i64>, StoreError>;
    /// Removes a user's state of one kind; whether there was any.
    fn delete_account_state(&self, user: &str, kind: &str) -> Result<bool, StoreError>;
    /// Appends an audit event.
    fn record_audit(&self, event: &NewAuditEvent) -> Result<i64, StoreError>;
    /// A user's audit events (all users' with `None`), newest first.
    fn audit_events(&self, user: Option<&str>, limit: usize) -> Result<Vec<AuditEvent>, StoreError>;
}

/// A stored value and the version that a compare-and-swap must name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versioned {
    /// Starts at 1, one more per write.
    pub version: i64,
    /// The value.
    pub value: serde_json::Value,
}

/// An audit event to write (enrolments, removals, failed second factors, recovery-code uses,
/// throttle decisions…). The IP is pseudonymised by the caller; the raw IP never gets here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAuditEvent {
    /// Unix seconds.
    pub time: i64,
    /// The user the event is about.
    pub user: String,
    /// What happened (`totp-enrolled`, `recovery-code-used`…).
    pub kind: String,
    /// A keyed hash of the client's IP, or empty.
    pub ip_pseudonym: String,
    /// Details, as JSON.
    pub details: serde_json::Value,
}

/// A stored audit event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Increasing with time.
    pub id: i64,
    /// What was written.
    #[serde(flatten)]
    pub event: NewAuditEvent,
}

/// Short-lived counters: throttles and "already warned" flags. Implementations may forget
/// (a restart, an eviction under memory pressure); nothing durable lives here.
pub trait Counters: Send + Sync + 'static {
    /// Counts one event for `key` in a window of `period` seconds that starts at the key's
    /// first event (AbuseFilter's throttle window) and returns the count in the window,
    /// this event included.
    fn hit(&self, key: &str, period: u64, now: i64) -> u64;
    /// AbuseFilter's warning flag: if `key` is set (and younger than `ttl` seconds), clears
    /// it and returns `true` (the user was warned and resubmitted); otherwise sets it and
    /// returns `false` (warn now).
    fn take_or_set_flag(&self, key: &str, ttl: u64, now: i64) -> bool;
}
