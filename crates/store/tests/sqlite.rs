//! The SQLite store through its public interface, on real files.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use proptest::prelude::*;
use serde_json::json;
use wikiguard_store::{Change, FilterSpec, HitQuery, NewHit, NewRecentAction, SqliteStore, Store, StoreError};

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "wikiguard-store-test-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn db(&self) -> PathBuf {
        self.0.join("nested").join("dir").join("wikiguard.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open(dir: &TempDir) -> SqliteStore {
    SqliteStore::open(&dir.db()).unwrap()
}

fn spec(description: &str) -> FilterSpec {
    FilterSpec {
        description: description.into(),
        pattern: "added_lines irlike 'spam'".into(),
        enabled: true,
        deleted: false,
        private: false,
        group: "default".into(),
        comments: "notes".into(),
        actions: json!({"disallow": {"message": "abusefilter-disallowed"}, "tag": {"tags": ["spam"]}}),
    }
}

fn hit(filter_id: i64, time: i64, user: &str, page: &str) -> NewHit {
    NewHit {
        filter_id,
        filter_version: 1,
        time,
        action: "edit".into(),
        user_name: user.into(),
        page: page.into(),
        namespace: 0,
        verdict: "disallow".into(),
        actions_taken: vec!["disallow".into(), "tag".into()],
        vars: json!({"added_lines": ["spam"], "user_name": user}).into(),
    }
}

fn user_version(path: &Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_query_value(None, "user_version", |row| row.get(0)).unwrap()
}

mod filters {
    use super::*;

    #[test]
    fn create_get_list() {
        let dir = TempDir::new();
        let store = open(&dir);
        assert!(store.list_filters(true).unwrap().is_empty());
        let a = store.create_filter(&spec("a"), "Alice", 100).unwrap();
        let b = store.create_filter(&spec("b"), "Bob", 200).unwrap();
        assert_eq!((a.id, a.version, a.hits), (1, 1, 0));
        assert_eq!((a.last_editor.as_str(), a.last_edit_time), ("Alice", 100));
        assert_eq!(b.id, 2);
        assert_eq!(store.get_filter(1).unwrap(), a);
        assert_eq!(store.list_filters(false).unwrap(), vec![a, b]);
    }

    #[test]
    fn unknown_ids_are_not_found() {
        let dir = TempDir::new();
        let store = open(&dir);
        let not_found = |r: Result<_, StoreError>| matches!(r, Err(StoreError::NotFound { what: "filter", id: 7 }));
        assert!(not_found(store.get_filter(7).map(|_| ())));
        assert!(not_found(store.update_filter(7, &spec("x"), "A", 1).map(|_| ())));
        assert!(not_found(store.delete_filter(7, "A", 1).map(|_| ())));
        assert!(not_found(store.filter_history(7).map(|_| ())));
        assert!(not_found(store.record_hits(&[hit(7, 1, "U", "P")]).map(|_| ())));
        assert_eq!(store.get_filter(7).unwrap_err().to_string(), "filter 7 does not exist");
        // Nothing was written by the failures.
        assert!(store.list_filters(true).unwrap().is_empty());
        assert!(store.hits(&HitQuery::default()).unwrap().is_empty());
    }

    #[test]
    fn history_after_create_update_delete_import() {
        let dir = TempDir::new();
        let store = open(&dir);
        let f = store.create_filter(&spec("v1"), "Alice", 100).unwrap();
        let mut changed = spec("v2");
        changed.private = true;
        changed.actions = json!({"warn": {"message": "abusefilter-warning"}});
        let u = store.update_filter(f.id, &changed, "Bob", 200).unwrap();
        assert_eq!(
            (u.version, u.spec.clone(), u.last_editor.as_str(), u.last_edit_time),
            (2, changed.clone(), "Bob", 200)
        );
        // The same spec again is still a version.
        let again = store.update_filter(f.id, &changed, "Bob", 250).unwrap();
        assert_eq!(again.version, 3);
        let d = store.delete_filter(f.id, "Carol", 300).unwrap();
        assert_eq!(d.version, 4);
        assert!(d.spec.deleted && !d.spec.enabled);
        assert_eq!(d.spec.description, "v2", "delete keeps the text");
        let i = store.import_filter(f.id, &spec("imported"), "Dave", 400, 77).unwrap();
        assert_eq!(
            (i.version, i.hits, i.last_editor.as_str(), i.last_edit_time),
            (5, 77, "Dave", 400)
        );
        assert_eq!(store.get_filter(f.id).unwrap(), i);

        let history = store.filter_history(f.id).unwrap();
        let summary: Vec<_> = history
            .iter()
            .map(|v| (v.version, v.change, v.editor.as_str(), v.time))
            .collect();
        assert_eq!(
            summary,
            vec![
                (1, Change::Create, "Alice", 100),
                (2, Change::Update, "Bob", 200),
                (3, Change::Update, "Bob", 250),
                (4, Change::Delete, "Carol", 300),
                (5, Change::Import, "Dave", 400),
            ]
        );
        assert_eq!(history[0].spec, spec("v1"));
        assert_eq!(history[1].spec, changed);
        assert!(history[3].spec.deleted && !history[3].spec.enabled);
        assert_eq!(history[4].spec, spec("imported"));
        assert!(history.iter().all(|v| v.id == f.id));
    }

    #[test]
    fn deleted_filters_are_hidden_unless_asked_and_keep_their_id() {
        let dir = TempDir::new();
        let store = open(&dir);
        let a = store.create_filter(&spec("a"), "A", 1).unwrap();
        let b = store.create_filter(&spec("b"), "A", 1).unwrap();
        store.delete_filter(b.id, "A", 2).unwrap();
        assert_eq!(
            store
                .list_filters(false)
                .unwrap()
                .iter()
                .map(|f| f.id)
                .collect::<Vec<_>>(),
            vec![a.id]
        );
        assert_eq!(store.list_filters(true).unwrap().len(), 2);
        assert!(
            store.get_filter(b.id).unwrap().spec.deleted,
            "a deleted filter can still be read"
        );
        // The highest id was deleted; it is still not given out again.
        let c = store.create_filter(&spec("c"), "A", 3).unwrap();
        assert_eq!(c.id, 3);
    }

    #[test]
    fn import_creates_with_the_given_id_and_create_continues_above_it() {
        let dir = TempDir::new();
        let store = open(&dir);
        let i = store
            .import_filter(42, &spec("from export"), "Old admin", 1_500_000_000, 1234)
            .unwrap();
        assert_eq!((i.id, i.version, i.hits), (42, 1, 1234));
        let history = store.filter_history(42).unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(
            (history[0].change, history[0].editor.as_str(), history[0].time),
            (Change::Import, "Old admin", 1_500_000_000)
        );
        assert_eq!(store.create_filter(&spec("new"), "A", 1).unwrap().id, 43);
    }

    #[test]
    fn record_hits_counts_on_filters() {
        let dir = TempDir::new();
        let store = open(&dir);
        let a = store.create_filter(&spec("a"), "A", 1).unwrap();
        let b = store.create_filter(&spec("b"), "A", 1).unwrap();
        let ids = store
            .record_hits(&[
                hit(a.id, 10, "U", "P"),
                hit(b.id, 10, "U", "P"),
                hit(a.id, 11, "V", "Q"),
            ])
            .unwrap();
        assert_eq!(ids.len(), 3);
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(store.get_filter(a.id).unwrap().hits, 2);
        assert_eq!(store.get_filter(b.id).unwrap().hits, 1);
        // Updating keeps the count; import replaces it with the export's.
        assert_eq!(store.update_filter(a.id, &spec("a2"), "A", 2).unwrap().hits, 2);
        assert_eq!(store.import_filter(a.id, &spec("a3"), "A", 3, 9).unwrap().hits, 9);
        assert_eq!(store.record_hits(&[]).unwrap(), Vec::<i64>::new());
        // A batch with one unknown filter writes nothing.
        assert!(store
            .record_hits(&[hit(a.id, 12, "U", "P"), hit(99, 12, "U", "P")])
            .is_err());
        assert_eq!(store.get_filter(a.id).unwrap().hits, 9);
        assert_eq!(store.hits(&HitQuery::default()).unwrap().len(), 3);
        // Hits after a save add to the count it saved, through saves, deletion and reopening.
        store.record_hits(&[hit(a.id, 13, "U", "P")]).unwrap();
        assert_eq!(store.get_filter(a.id).unwrap().hits, 10);
        assert_eq!(store.update_filter(a.id, &spec("a4"), "A", 4).unwrap().hits, 10);
        store
            .record_hits(&[hit(a.id, 14, "U", "P"), hit(a.id, 14, "V", "P")])
            .unwrap();
        let listed = store.list_filters(true).unwrap();
        assert_eq!(listed.iter().find(|f| f.id == a.id).map(|f| f.hits), Some(12));
        assert_eq!(store.delete_filter(a.id, "A", 5).unwrap().hits, 12);
        drop(store);
        let store = open(&dir);
        assert_eq!(store.get_filter(a.id).unwrap().hits, 12);
        assert_eq!(store.get_filter(b.id).unwrap().hits, 1);
    }
}

mod hits {
    use super::*;

    fn fixture() -> (TempDir, SqliteStore, Vec<i64>) {
        let dir = TempDir::new();
        let store = open(&dir);
        for name in ["a", "b"] {
            store.create_filter(&spec(name), "A", 1).unwrap();
        }
        let ids = store
            .record_hits(&[
                hit(1, 100, "Alice", "Main Page"),
                hit(2, 200, "Bob", "Main Page"),
                hit(1, 300, "Bob", "Talk:X"),
                hit(1, 400, "Alice", "Talk:X"),
                hit(2, 500, "Alice", "Main Page"),
            ])
            .unwrap();
        (dir, store, ids)
    }

    fn ids(store: &SqliteStore, query: HitQuery) -> Vec<i64> {
        store.hits(&query).unwrap().iter().map(|h| h.id).collect()
    }

    #[test]
    fn round_trip_newest_first() {
        let (_dir, store, ids_written) = fixture();
        let all = store.hits(&HitQuery::default()).unwrap();
        assert_eq!(all.iter().map(|h| h.id).rev().collect::<Vec<_>>(), ids_written);
        assert_eq!(all[4].hit, hit(1, 100, "Alice", "Main Page"));
    }

    /// The default query with one field set.
    fn narrowed(set: impl FnOnce(&mut HitQuery)) -> HitQuery {
        let mut query = HitQuery::default();
        set(&mut query);
        query
    }

    #[test]
    fn each_field_narrows() {
        let (_dir, store, i) = fixture();
        assert_eq!(ids(&store, narrowed(|q| q.filter = Some(1))), vec![i[3], i[2], i[0]]);
        assert_eq!(ids(&store, narrowed(|q| q.user = Some("Bob".into()))), vec![i[2], i[1]]);
        assert_eq!(
            ids(&store, narrowed(|q| q.page = Some("Talk:X".into()))),
            vec![i[3], i[2]]
        );
        assert_eq!(ids(&store, narrowed(|q| q.since = Some(300))), vec![i[4], i[3], i[2]]);
        assert_eq!(ids(&store, narrowed(|q| q.until = Some(200))), vec![i[1], i[0]]);
        assert_eq!(ids(&store, narrowed(|q| q.before_id = Some(i[2]))), vec![i[1], i[0]]);
        assert_eq!(ids(&store, narrowed(|q| q.limit = 2)), vec![i[4], i[3]]);
        let combined = HitQuery {
            filter: Some(1),
            user: Some("Alice".into()),
            page: Some("Talk:X".into()),
            since: Some(400),
            until: Some(400),
            before_id: Some(i[4]),
            limit: 10,
        };
        assert_eq!(ids(&store, combined), vec![i[3]]);
        assert!(
            ids(&store, narrowed(|q| q.user = Some("alice".into()))).is_empty(),
            "exact match"
        );
    }

    #[test]
    fn pages_with_before_id() {
        let dir = TempDir::new();
        let store = open(&dir);
        store.create_filter(&spec("a"), "A", 1).unwrap();
        let batch: Vec<_> = (0..250).map(|t| hit(1, t, "U", "P")).collect();
        let mut written = store.record_hits(&batch).unwrap();
        written.reverse();
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = ids(
                &store,
                HitQuery {
                    before_id: before,
                    limit: 60,
                    ..Default::default()
                },
            );
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 60);
            before = page.last().copied();
            seen.extend(page);
        }
        assert_eq!(seen, written);
    }

    #[test]
    fn limit_defaults_to_100_and_caps_at_1000() {
        let dir = TempDir::new();
        let store = open(&dir);
        store.create_filter(&spec("a"), "A", 1).unwrap();
        let batch: Vec<_> = (0..1100).map(|t| hit(1, t, "U", "P")).collect();
        store.record_hits(&batch).unwrap();
        assert_eq!(store.hits(&HitQuery::default()).unwrap().len(), 100);
        assert_eq!(
            store
                .hits(&HitQuery {
                    limit: 5000,
                    ..Default::default()
                })
                .unwrap()
                .len(),
            1000
        );
        assert_eq!(store.get_filter(1).unwrap().hits, 1100);
    }
}

mod recent {
    use super::*;

    fn action(n: i64) -> NewRecentAction {
        NewRecentAction {
            time: n,
            action: "edit".into(),
            user_name: format!("User{n}"),
            page: "Sandbox".into(),
            body: json!({"action": "edit", "n": n}),
        }
    }

    #[test]
    fn keeps_only_the_newest() {
        let dir = TempDir::new();
        let store = open(&dir);
        let ids: Vec<_> = (0..10)
            .map(|n| store.record_recent_action(&action(n), 4).unwrap())
            .collect();
        let kept = store.recent_actions(100).unwrap();
        assert_eq!(
            kept.iter().map(|a| a.id).collect::<Vec<_>>(),
            ids[6..].iter().rev().copied().collect::<Vec<_>>()
        );
        assert_eq!(kept[0].action, action(9));
        assert_eq!(store.recent_actions(2).unwrap().len(), 2);
        assert!(store.recent_actions(0).unwrap().is_empty());
        // A smaller `keep` later trims further; a bigger one lets the log grow again.
        store.record_recent_action(&action(10), 2).unwrap();
        assert_eq!(store.recent_actions(100).unwrap().len(), 2);
        store.record_recent_action(&action(11), 100).unwrap();
        assert_eq!(store.recent_actions(100).unwrap().len(), 3);
        // Reopened, the log goes on from where it was and stays bounded.
        drop(store);
        let store = open(&dir);
        for n in 12..20 {
            store.record_recent_action(&action(n), 5).unwrap();
        }
        let kept = store.recent_actions(100).unwrap();
        assert_eq!(
            kept.iter().map(|a| a.action.time).collect::<Vec<_>>(),
            [19, 18, 17, 16, 15]
        );
    }

    #[test]
    fn a_batch_is_kept_in_order_and_trimmed_as_a_whole() {
        let dir = TempDir::new();
        let store = open(&dir);
        store.record_recent_action(&action(0), 4).unwrap();
        let batch: Vec<_> = (1..=5).map(action).collect();
        let ids = store.record_recent_actions(&batch, 4).unwrap();
        assert_eq!(ids.len(), 5);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        let kept = store.recent_actions(100).unwrap();
        assert_eq!(
            kept.iter().map(|a| a.action.time).collect::<Vec<_>>(),
            [5, 4, 3, 2],
            "the newest four of all six, newest first"
        );
        // A batch larger than `keep` keeps its own newest.
        let ids = store
            .record_recent_actions(&(6..=9).map(action).collect::<Vec<_>>(), 2)
            .unwrap();
        assert_eq!(ids.len(), 4);
        let kept = store.recent_actions(100).unwrap();
        assert_eq!(kept.iter().map(|a| a.id).collect::<Vec<_>>(), [ids[3], ids[2]]);
        assert!(store.record_recent_actions(&[], 2).unwrap().is_empty());
    }

    /// A page text long enough to be kept apart (`k` tells them apart).
    fn text(k: u64) -> String {
        format!("== Revision {k} ==\n{}", "Some article text. ".repeat(900))
    }

    fn edit(n: i64, old: Option<&str>, new: &str) -> NewRecentAction {
        let mut body = json!({"action": "edit", "n": n, "new_wikitext": new, "summary": "s"});
        if let Some(old) = old {
            body["old_wikitext"] = json!(old);
        }
        NewRecentAction {
            time: n,
            action: "edit".into(),
            user_name: "U".into(),
            page: "P".into(),
            body,
        }
    }

    /// How many texts the store keeps apart.
    fn stored_texts(dir: &TempDir) -> i64 {
        let conn = rusqlite::Connection::open(dir.db()).unwrap();
        conn.query_row("SELECT COUNT(*) FROM recent_texts", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn long_texts_are_kept_once_and_go_with_the_last_action_that_needs_them() {
        let dir = TempDir::new();
        let store = open(&dir);
        // Successive edits of one page: each one's old text is the previous one's new text.
        let edits: Vec<NewRecentAction> = (0..6)
            .map(|n| edit(n, (n > 0).then(|| text(n as u64)).as_deref(), &text(n as u64 + 1)))
            .collect();
        for e in &edits {
            store.record_recent_action(e, 3).unwrap();
        }
        let kept = store.recent_actions(10).unwrap();
        let bodies: Vec<_> = kept.iter().map(|a| a.action.clone()).collect();
        assert_eq!(
            bodies,
            edits[3..].iter().rev().cloned().collect::<Vec<_>>(),
            "read back whole"
        );
        // Edits 3, 4 and 5 need texts 3 to 6, each once; texts 1 and 2 went with edits 0 to 2.
        assert_eq!(stored_texts(&dir), 4);
        // Short texts stay in the body, as does a field that is not a string.
        let short = edit(6, Some("tiny"), "tinier");
        let mut odd = edit(7, None, &text(99));
        odd.body["old_wikitext"] = json!(null);
        store.record_recent_action(&short, 3).unwrap();
        store.record_recent_action(&odd, 3).unwrap();
        let kept = store.recent_actions(2).unwrap();
        assert_eq!(kept[0].action, odd);
        assert_eq!(kept[1].action, short);
        // Kept: edits 5, 6 and 7, which need texts 5, 6 and 99.
        assert_eq!(stored_texts(&dir), 3);
    }

    #[test]
    fn a_text_twice_in_one_batch_is_kept_once() {
        let dir = TempDir::new();
        let store = open(&dir);
        // Two edits of one page in one batch: the second one's old text is the first one's
        // new text, written earlier in the same transaction.
        let batch = [edit(0, Some(&text(1)), &text(2)), edit(1, Some(&text(2)), &text(3))];
        store.record_recent_actions(&batch, 10).unwrap();
        assert_eq!(stored_texts(&dir), 3);
        let kept = store.recent_actions(10).unwrap();
        assert_eq!(kept[0].action, batch[1]);
        assert_eq!(kept[1].action, batch[0]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Whatever texts a run of actions shares, the newest `keep` read back as they were
        /// written, and exactly the long texts they hold are kept, each once.
        #[test]
        fn the_log_reads_back_as_written_and_keeps_just_the_texts_it_needs(
            steps in prop::collection::vec((prop::option::of(0u64..5), 0u64..5, any::<bool>()), 1..14),
            keep in 1usize..6,
        ) {
            let dir = TempDir::new();
            let store = open(&dir);
            let mut written = Vec::new();
            for (n, (old, new, short)) in steps.iter().enumerate() {
                let new = if *short { format!("short {new}") } else { text(*new) };
                let e = edit(n as i64, old.map(text).as_deref(), &new);
                store.record_recent_action(&e, keep).unwrap();
                written.push(e);
            }
            let newest: Vec<NewRecentAction> = written.iter().rev().take(keep).cloned().collect();
            let kept: Vec<NewRecentAction> = store.recent_actions(100).unwrap().into_iter().map(|a| a.action).collect();
            prop_assert_eq!(&kept, &newest);
            let mut needed: Vec<String> = newest
                .iter()
                .flat_map(|e| ["old_wikitext", "new_wikitext"].map(|f| e.body[f].as_str().map(str::to_string)))
                .flatten()
                .filter(|t| t.len() >= 16 * 1024)
                .collect();
            needed.sort();
            needed.dedup();
            prop_assert_eq!(stored_texts(&dir), needed.len() as i64);
        }
    }
}

mod lifecycle {
    use super::*;

    #[test]
    fn ping_answers() {
        let dir = TempDir::new();
        open(&dir).ping().unwrap();
        SqliteStore::open_in_memory().unwrap().ping().unwrap();
    }

    #[test]
    fn reopening_keeps_data_and_does_not_rerun_migrations() {
        let dir = TempDir::new();
        {
            let store = open(&dir);
            store.create_filter(&spec("kept"), "A", 1).unwrap();
            store.record_hits(&[hit(1, 5, "U", "P")]).unwrap();
        }
        assert_eq!(user_version(&dir.db()), SqliteStore::SCHEMA_VERSION);
        // A migration re-run would fail on CREATE TABLE of an existing table.
        let store = open(&dir);
        assert_eq!(store.get_filter(1).unwrap().spec.description, "kept");
        assert_eq!(store.hits(&HitQuery::default()).unwrap().len(), 1);
        assert_eq!(store.create_filter(&spec("next"), "A", 2).unwrap().id, 2);
        drop(store);
        assert_eq!(user_version(&dir.db()), SqliteStore::SCHEMA_VERSION);
    }

    #[test]
    fn wal_mode_is_set() {
        let dir = TempDir::new();
        let _store = open(&dir);
        let conn = rusqlite::Connection::open(dir.db()).unwrap();
        let mode: String = conn.pragma_query_value(None, "journal_mode", |row| row.get(0)).unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = TempDir::new();
        drop(open(&dir));
        let conn = rusqlite::Connection::open(dir.db()).unwrap();
        conn.pragma_update(None, "user_version", SqliteStore::SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        let err = SqliteStore::open(&dir.db()).unwrap_err();
        let StoreError::Backend(message) = &err else {
            panic!("{err:?}")
        };
        assert!(message.contains("newer than this wikiguard knows"), "{message}");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_an_error() {
        let dir = TempDir::new();
        let path = dir.0.join("garbage.db");
        std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
        assert!(matches!(SqliteStore::open(&path), Err(StoreError::Backend(_))));
    }

    #[test]
    fn many_threads_all_commit() {
        let dir = TempDir::new();
        let store = Arc::new(open(&dir));
        let threads = 16;
        let per_thread = 25;
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..per_thread)
                        .map(|n| {
                            let f = store.create_filter(&spec(&format!("t{t} n{n}")), "A", n).unwrap();
                            store.record_hits(&[hit(f.id, n, &format!("t{t}"), "P")]).unwrap();
                            // Readers run beside the writer.
                            assert_eq!(store.get_filter(f.id).unwrap().hits, 1);
                            f.id
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut ids: Vec<i64> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        ids.sort_unstable();
        let total = threads * per_thread;
        assert_eq!(ids, (1..=total).collect::<Vec<_>>(), "every create got its own id");
        assert_eq!(store.list_filters(false).unwrap().len(), total as usize);
        assert_eq!(
            store
                .hits(&HitQuery {
                    limit: 1000,
                    ..Default::default()
                })
                .unwrap()
                .len(),
            total as usize
        );
        // How many writes share a batch depends on timing (the unit tests pin grouping down);
        // what is certain is that there are never more batches than writes.
        assert!(store.write_batches() <= 2 * total as u64);
        drop(store);
        // All of it is on disk.
        let store = open(&dir);
        assert_eq!(store.list_filters(true).unwrap().len(), total as usize);
    }

    #[test]
    fn concurrent_writes_with_failures_mixed_in() {
        let dir = TempDir::new();
        let store = Arc::new(open(&dir));
        store.create_filter(&spec("a"), "A", 1).unwrap();
        let handles: Vec<_> = (0..16)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    let mut ok = 0;
                    for n in 0..20 {
                        // Every third request names an unknown filter after a good hit.
                        let result = if (t + n) % 3 == 0 {
                            store.record_hits(&[hit(1, n, "U", "P"), hit(1000 + t, n, "U", "P")])
                        } else {
                            store.record_hits(&[hit(1, n, "U", "P")])
                        };
                        match result {
                            Ok(ids) => {
                                assert_eq!(ids.len(), 1);
                                ok += 1;
                            }
                            Err(StoreError::NotFound { id, .. }) => assert_eq!(id, 1000 + t),
                            Err(e) => panic!("{e}"),
                        }
                    }
                    ok
                })
            })
            .collect();
        let ok: i64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(store.get_filter(1).unwrap().hits, ok);
        assert_eq!(
            store
                .hits(&HitQuery {
                    limit: 1000,
                    ..Default::default()
                })
                .unwrap()
                .len() as i64,
            ok
        );
    }
}

// "Every field narrows" means: the store returns exactly what a naive filter over every row
// returns, newest first, cut at the limit.
proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn hit_queries_match_a_naive_filter(
        rows in proptest::collection::vec((1i64..4, 0i64..20, 0usize..3, 0usize..3), 0..60),
        filter in proptest::option::of(1i64..4),
        user in proptest::option::of(0usize..3),
        page in proptest::option::of(0usize..3),
        since in proptest::option::of(0i64..20),
        until in proptest::option::of(0i64..20),
        before in proptest::option::of(0i64..70),
        limit in 0usize..30,
    ) {
        let users = ["Alice", "Bob", "127.0.0.1"];
        let pages = ["Main Page", "Talk:Main Page", ""];
        let store = SqliteStore::open_in_memory().unwrap();
        for name in ["a", "b", "c"] {
            store.create_filter(&spec(name), "A", 0).unwrap();
        }
        let written: Vec<NewHit> = rows.iter().map(|&(f, t, u, p)| hit(f, t, users[u], pages[p])).collect();
        let ids = store.record_hits(&written).unwrap();
        let query = HitQuery {
            filter,
            user: user.map(|u| users[u].to_string()),
            page: page.map(|p| pages[p].to_string()),
            since,
            until,
            before_id: before,
            limit,
        };
        let mut expected: Vec<(i64, &NewHit)> = ids
            .iter()
            .copied()
            .zip(&written)
            .filter(|(id, h)| {
                query.filter.is_none_or(|f| h.filter_id == f)
                    && query.user.as_ref().is_none_or(|u| &h.user_name == u)
                    && query.page.as_ref().is_none_or(|p| &h.page == p)
                    && query.since.is_none_or(|s| h.time >= s)
                    && query.until.is_none_or(|u| h.time <= u)
                    && query.before_id.is_none_or(|b| *id < b)
            })
            .collect();
        expected.reverse();
        expected.truncate(if limit == 0 { 100 } else { limit });
        let got = store.hits(&query).unwrap();
        prop_assert_eq!(got.len(), expected.len());
        for (g, (id, h)) in got.iter().zip(expected) {
            prop_assert_eq!(g.id, id);
            prop_assert_eq!(&g.hit, h);
        }
    }
}
