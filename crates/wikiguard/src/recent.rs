//! The recent-actions log's recorder: checked actions are kept for "test against recent
//! actions" (`POST /v1/filters/test`) by one thread of their own, off the check's path.
//!
//! A check hands its action over and answers at once. The recorder takes every action queued
//! since its last write and writes them in one lazy transaction (no fsync of its own): under
//! load the actions of many checks share a commit. (A task and a transaction for each check
//! cost a 5 KB check 0.43 ms of its 2.0 ms of CPU.) The log is test data, so when the queue is full (the
//! store is slower than the checks) an action is left out and counted, never waited for.
//! The queue is bounded by count and by the size of the texts it holds.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wikiguard_check::Action;
use wikiguard_store::{NewRecentAction, Store};

/// How many checked actions may wait for the recorder.
const QUEUE: usize = 1024;
/// And how many bytes of wikitext they may hold between them (an action may carry up to
/// `max_body_bytes` of it).
const QUEUE_BYTES: usize = 64 << 20;
/// At most this many in one transaction, so that a long batch never holds the writer (and
/// the durable hit writes queued behind it) for long.
const MAX_BATCH: usize = 64;
/// After a write the recorder lets this long pass before the next, gathering what arrives
/// meanwhile into one transaction: under load one write (and one wake-up of the recorder
/// and of the store's writer) per interval instead of one per check. An action after a quiet
/// spell is written at once, and so is the next batch after a full one.
const GATHER: Duration = Duration::from_millis(20);

/// The recorder; dropping it writes what is queued and stops its thread.
pub(crate) struct RecentLog {
    queue: Option<SyncSender<Queued>>,
    thread: Option<JoinHandle<()>>,
    dropped: Arc<AtomicU64>,
    /// The [`size`] of the queued actions.
    queued_bytes: Arc<AtomicUsize>,
}

/// A queued action, with when it was checked (Unix seconds).
type Queued = (i64, Action);

/// What an action weighs in the queue: its texts, and a little for the rest.
fn size(action: &Action) -> usize {
    let text = |t: &Option<String>| t.as_ref().map_or(0, String::len);
    1024 + text(&action.old_wikitext) + text(&action.new_wikitext)
}

impl RecentLog {
    /// Starts the recorder, which keeps the newest `keep` actions in `store`.
    pub(crate) fn start(store: Arc<dyn Store>, keep: usize) -> std::io::Result<RecentLog> {
        let (queue, actions) = mpsc::sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let (counted, weighed) = (dropped.clone(), queued_bytes.clone());
        let thread = std::thread::Builder::new()
            .name("wikiguard-recent".into())
            .spawn(move || record(store.as_ref(), keep, &actions, &counted, &weighed))?;
        Ok(RecentLog {
            queue: Some(queue),
            thread: Some(thread),
            dropped,
            queued_bytes,
        })
    }

    /// Queues an action checked at `time` (Unix seconds); never blocks.
    pub(crate) fn offer(&self, time: i64, action: Action) {
        let Some(queue) = &self.queue else { return };
        let size = size(&action);
        let before = self.queued_bytes.fetch_add(size, Ordering::Relaxed);
        let refused = before + size > QUEUE_BYTES
            || matches!(
                queue.try_send((time, action)),
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_))
            );
        if refused {
            self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many actions were left out so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for RecentLog {
    fn drop(&mut self) {
        // The thread writes what is still queued, then sees the queue closed.
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn record(store: &dyn Store, keep: usize, actions: &Receiver<Queued>, dropped: &AtomicU64, queued_bytes: &AtomicUsize) {
    let mut batch: Vec<NewRecentAction> = Vec::with_capacity(MAX_BATCH);
    let take = |(time, action): Queued| {
        queued_bytes.fetch_sub(size(&action), Ordering::Relaxed);
        encode(time, action)
    };
    while let Ok(first) = actions.recv() {
        let started = Instant::now();
        batch.push(take(first));
        while batch.len() < MAX_BATCH {
            match actions.try_recv() {
                Ok(next) => batch.push(take(next)),
                Err(_) => break,
            }
        }
        // A full batch means more is waiting: the next write follows at once.
        let full = batch.len() == MAX_BATCH;
        if let Err(e) = store.record_recent_actions(&batch, keep) {
            dropped.fetch_add(batch.len() as u64, Ordering::Relaxed);
            tracing::warn!(error = %e, actions = batch.len(), "could not keep recent actions");
        }
        batch.clear();
        if let Some(rest) = GATHER.checked_sub(started.elapsed()).filter(|_| !full) {
            std::thread::sleep(rest);
        }
    }
}

fn encode(time: i64, action: Action) -> NewRecentAction {
    NewRecentAction {
        time,
        action: action.kind().as_str().to_string(),
        user_name: action.user_name().to_string(),
        page: action.page_title(),
        body: action.stored_body(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wikiguard_store::SqliteStore;

    fn edit(user: &str) -> Action {
        Action::from_json(&serde_json::json!({
            "action": "edit",
            "user": {"name": user},
            "page": {"namespace": 0, "title": "Sandbox"},
            "old_wikitext": "",
            "new_wikitext": format!("text by {user}"),
        }))
        .unwrap()
    }

    #[test]
    fn every_offered_action_is_written_in_order_by_the_time_the_log_is_dropped() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
        let log = RecentLog::start(store.clone(), 3).unwrap();
        for n in 0..5 {
            log.offer(100 + n, edit(&format!("U{n}")));
        }
        drop(log);
        let kept = store.recent_actions(10).unwrap();
        let users: Vec<&str> = kept.iter().map(|a| a.action.user_name.as_str()).collect();
        assert_eq!(users, ["U4", "U3", "U2"], "the newest three, newest first");
        assert_eq!(kept[0].action.time, 104);
        assert_eq!(kept[0].action.body["new_wikitext"], "text by U4");
    }

    /// A recorder whose thread is not running, with room for `capacity` actions: nothing
    /// drains its queue (the receiver is kept so that the queue stays open).
    fn stalled(capacity: usize) -> (RecentLog, Receiver<Queued>) {
        let (queue, actions) = mpsc::sync_channel(capacity);
        let log = RecentLog {
            queue: Some(queue),
            thread: None,
            dropped: Arc::new(AtomicU64::new(0)),
            queued_bytes: Arc::new(AtomicUsize::new(0)),
        };
        (log, actions)
    }

    #[test]
    fn a_full_queue_leaves_actions_out_and_counts_them() {
        let (log, _actions) = stalled(2);
        for n in 0..5 {
            log.offer(n, edit("A"));
        }
        assert_eq!(log.dropped(), 3);
        assert_eq!(log.queued_bytes.load(Ordering::Relaxed), 2 * size(&edit("A")));
    }

    #[test]
    fn texts_beyond_the_queue_s_byte_budget_are_left_out() {
        let (log, _actions) = stalled(QUEUE);
        let mut big = edit("A");
        big.new_wikitext = Some("x".repeat(QUEUE_BYTES / 3));
        for n in 0..4 {
            log.offer(n, big.clone());
        }
        assert_eq!(log.dropped(), 2, "two fit in the budget, the rest do not");
        log.offer(9, edit("B"));
        assert_eq!(log.dropped(), 2, "a small one still fits");
    }
}
