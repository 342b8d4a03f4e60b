//! The recent-actions log's recorder: checked actions are kept for "test against recent
//! actions" (`POST /v1/filters/test`) by one thread of their own, off the check's path.
//!
//! A check hands its action over and answers at once. The recorder takes every action queued
//! since its last write and writes them in one lazy transaction (no fsync of its own): under
//! load the actions of many checks share a commit, where one commit each cost the writer
//! thread as much as a check's hits. The log is test data, so when the queue is full (the
//! store is slower than the checks) an action is left out and counted, never waited for.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use wikiguard_check::Action;
use wikiguard_store::{NewRecentAction, Store};

/// How many checked actions may wait for the recorder.
const QUEUE: usize = 1024;
/// At most this many in one transaction, so that a long batch never holds the writer (and
/// the durable hit writes queued behind it) for long.
const MAX_BATCH: usize = 64;

/// The recorder; dropping it writes what is queued and stops its thread.
pub(crate) struct RecentLog {
    queue: Option<SyncSender<(i64, Action)>>,
    thread: Option<JoinHandle<()>>,
    dropped: Arc<AtomicU64>,
}

impl RecentLog {
    /// Starts the recorder, which keeps the newest `keep` actions in `store`.
    pub(crate) fn start(store: Arc<dyn Store>, keep: usize) -> std::io::Result<RecentLog> {
        let (queue, actions) = mpsc::sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = dropped.clone();
        let thread = std::thread::Builder::new()
            .name("wikiguard-recent".into())
            .spawn(move || record(store.as_ref(), keep, &actions, &counted))?;
        Ok(RecentLog {
            queue: Some(queue),
            thread: Some(thread),
            dropped,
        })
    }

    /// Queues an action checked at `time` (Unix seconds); never blocks.
    pub(crate) fn offer(&self, time: i64, action: Action) {
        let Some(queue) = &self.queue else { return };
        match queue.try_send((time, action)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
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

fn record(store: &dyn Store, keep: usize, actions: &Receiver<(i64, Action)>, dropped: &AtomicU64) {
    let mut batch: Vec<NewRecentAction> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = actions.recv() {
        batch.push(encode(first));
        while batch.len() < MAX_BATCH {
            match actions.try_recv() {
                Ok(next) => batch.push(encode(next)),
                Err(_) => break,
            }
        }
        if let Err(e) = store.record_recent_actions(&batch, keep) {
            dropped.fetch_add(batch.len() as u64, Ordering::Relaxed);
            tracing::warn!(error = %e, actions = batch.len(), "could not keep recent actions");
        }
        batch.clear();
    }
}

fn encode((time, action): (i64, Action)) -> NewRecentAction {
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

    #[test]
    fn a_full_queue_leaves_actions_out_and_counts_them() {
        // A recorder whose thread is not running: nothing drains the queue.
        let (queue, _actions) = mpsc::sync_channel(2);
        let log = RecentLog {
            queue: Some(queue),
            thread: None,
            dropped: Arc::new(AtomicU64::new(0)),
        };
        for n in 0..5 {
            log.offer(n, edit("A"));
        }
        assert_eq!(log.dropped(), 3);
    }
}
