//! The SQLite store: one file in WAL mode, one writer thread, a small pool of readers.
//!
//! Every write is a job sent to the writer thread, which owns the only write connection. The
//! thread takes every job waiting in its queue, runs each inside its own savepoint of one
//! transaction, commits once (group commit: one fsync for many callers under
//! `synchronous=FULL`), and only then answers each caller. A job that fails is rolled back to
//! its savepoint and gets its error; the rest of the batch still commits. A caller is told
//! "ok" only after its rows are committed. Rows whose loss in a power cut costs nothing that
//! matters (the recent-actions log, test data) are written lazily: a batch of only those commits
//! without the fsync, and the next durable commit's fsync covers them too.
//!
//! Reads run on separate connections beside the writer (WAL lets them), taken from a pool.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::types::{ToSql, Value};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};
use sha2::Digest;

use crate::{
    AuditEvent, Change, Filter, FilterSpec, FilterVersion, Hit, HitQuery, HitsCommitted, NewAuditEvent, NewHit,
    NewRecentAction, RecentAction, Store, StoreError, Versioned,
};

/// The schema, one script per version: script `i` takes the database from version `i` to
/// version `i + 1` (kept in `PRAGMA user_version`). Append only; never edit a released one.
const MIGRATIONS: &[&str] = &[
    // 1: filters with their history, hits, recent actions.
    "
    CREATE TABLE filters (
        id             INTEGER PRIMARY KEY,
        version        INTEGER NOT NULL,
        description    TEXT NOT NULL,
        pattern        TEXT NOT NULL,
        enabled        INTEGER NOT NULL,
        deleted        INTEGER NOT NULL,
        private        INTEGER NOT NULL,
        grp            TEXT NOT NULL,
        comments       TEXT NOT NULL,
        actions        TEXT NOT NULL,
        last_editor    TEXT NOT NULL,
        last_edit_time INTEGER NOT NULL,
        hits           INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE filter_versions (
        id          INTEGER NOT NULL REFERENCES filters(id),
        version     INTEGER NOT NULL,
        description TEXT NOT NULL,
        pattern     TEXT NOT NULL,
        enabled     INTEGER NOT NULL,
        deleted     INTEGER NOT NULL,
        private     INTEGER NOT NULL,
        grp         TEXT NOT NULL,
        comments    TEXT NOT NULL,
        actions     TEXT NOT NULL,
        editor      TEXT NOT NULL,
        time        INTEGER NOT NULL,
        change      TEXT NOT NULL,
        PRIMARY KEY (id, version)
    ) WITHOUT ROWID;
    CREATE TABLE hits (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        filter_id      INTEGER NOT NULL REFERENCES filters(id),
        filter_version INTEGER NOT NULL,
        time           INTEGER NOT NULL,
        action         TEXT NOT NULL,
        user_name      TEXT NOT NULL,
        page           TEXT NOT NULL,
        namespace      INTEGER NOT NULL,
        verdict        TEXT NOT NULL,
        actions_taken  TEXT NOT NULL,
        vars           TEXT NOT NULL
    );
    CREATE INDEX hits_filter ON hits (filter_id, id);
    CREATE INDEX hits_user ON hits (user_name, id);
    CREATE INDEX hits_page ON hits (page, id);
    CREATE INDEX hits_time ON hits (time);
    CREATE TABLE recent_actions (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        time      INTEGER NOT NULL,
        action    TEXT NOT NULL,
        user_name TEXT NOT NULL,
        page      TEXT NOT NULL,
        body      TEXT NOT NULL
    );
    ",
    // 2: one variable dump per checked action, shared by its hits (as AbuseFilter's log rows
    // share one dump): an edit that trips twelve filters stores its texts once, not twelve times.
    "
    CREATE TABLE var_dumps (
        id   INTEGER PRIMARY KEY AUTOINCREMENT,
        vars TEXT NOT NULL
    );
    ALTER TABLE hits ADD COLUMN dump_id INTEGER REFERENCES var_dumps(id);
    ",
    // 3: the accounts door: per-user state (versioned for compare-and-swap) and its audit log.
    "
    CREATE TABLE account_state (
        user    TEXT NOT NULL,
        kind    TEXT NOT NULL,
        version INTEGER NOT NULL,
        value   TEXT NOT NULL,
        PRIMARY KEY (user, kind)
    ) WITHOUT ROWID;
    CREATE TABLE audit_events (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        time         INTEGER NOT NULL,
        user         TEXT NOT NULL,
        kind         TEXT NOT NULL,
        ip_pseudonym TEXT NOT NULL,
        details      TEXT NOT NULL
    );
    CREATE INDEX audit_user ON audit_events (user, id);
    ",
    // 4: hits counted in a narrow table of their own. `filters.hits` holds the count as of the
    // filter's last save; the hits since are here, folded back in at the next save. Counting
    // in `filters` itself rewrote a page of rule text per matched filter at every check (a
    // dozen 4 KB pages for an edit that trips a dozen filters); these rows are 16 bytes, so
    // every filter's counter shares a page or two.
    "
    CREATE TABLE filter_hit_counts (
        filter_id INTEGER PRIMARY KEY,
        hits      INTEGER NOT NULL
    );
    ",
    // 5: the recent actions' wikitext stored once per distinct text (by its SHA-256) and
    // referred to: an edit's old text is usually the text the page's previous edit saved, so
    // each text was stored twice, and a 50 KB page's two texts were most of what a check wrote.
    // A text goes when the last recent action that refers to it does.
    "
    CREATE TABLE recent_texts (
        id   INTEGER PRIMARY KEY,
        hash BLOB NOT NULL UNIQUE,
        body TEXT NOT NULL
    );
    ALTER TABLE recent_actions ADD COLUMN old_text INTEGER REFERENCES recent_texts(id);
    ALTER TABLE recent_actions ADD COLUMN new_text INTEGER REFERENCES recent_texts(id);
    CREATE INDEX recent_actions_old_text ON recent_actions (old_text) WHERE old_text IS NOT NULL;
    CREATE INDEX recent_actions_new_text ON recent_actions (new_text) WHERE new_text IS NOT NULL;
    ",
];

/// The action fields kept once per distinct text in `recent_texts` (see migration 5), in the
/// order of the `old_text` and `new_text` columns.
const SHARED_TEXT_FIELDS: [&str; 2] = ["old_wikitext", "new_wikitext"];
/// A shorter text stays in the body. Keeping one apart costs its hash, a lookup, a row and
/// two index entries; with the bench's 5 KB edit that cost more than writing the old text
/// again (1954-2071 against 1892-2028 checks/s at 16 connections), with the 50 KB one less.
const MIN_SHARED_TEXT: usize = 16 * 1024;

/// How long a connection waits for a lock before it reports `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// At most this many writes share one transaction, so one huge queue does not make the first
/// caller wait for all of it.
const MAX_BATCH: usize = 256;
/// Idle read connections kept for reuse; more are opened under load and closed afterwards.
const MAX_IDLE_READERS: usize = 8;
/// `hits()` limits: what 0 means, and the most one call returns.
const DEFAULT_HIT_LIMIT: usize = 100;
const MAX_HIT_LIMIT: usize = 1000;

/// The embedded store: a SQLite file in WAL mode with a single writer thread (see the module
/// doc). Dropping it finishes the queued writes and stops the writer.
pub struct SqliteStore {
    sender: Option<mpsc::Sender<Box<dyn WriteJob>>>,
    writer: Option<JoinHandle<()>>,
    readers: Readers,
    /// How many transactions the writer has committed or tried to (for tests of grouping).
    batches: Arc<AtomicU64>,
    /// The background checkpointer (files only) and its stop flag.
    checkpointer: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

enum Readers {
    /// A file: readers have their own connections.
    Pool {
        path: PathBuf,
        idle: Mutex<Vec<Connection>>,
    },
    /// In memory: there is only one database, behind the writer's own connection.
    Shared(Arc<Mutex<Connection>>),
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = f.debug_struct("SqliteStore");
        match &self.readers {
            Readers::Pool { path, .. } => s.field("path", path),
            Readers::Shared(_) => s.field("path", &":memory:"),
        };
        s.finish_non_exhaustive()
    }
}

/// When a commit is on disk (SQLite's `synchronous` in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every commit is fsynced before the caller hears of it: a committed row survives a power
    /// cut. Costs one fsync per write batch.
    #[default]
    Full,
    /// A commit is in the WAL file (the operating system's cache) before the caller hears of it:
    /// it survives a crash of wikiguard, not of the machine; the database never corrupts.
    Normal,
}

impl SqliteStore {
    /// The schema version this code writes and reads (`PRAGMA user_version`).
    pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

    /// Opens (creating it and its parent directories if needed) the database at `path`, applies
    /// any pending migrations and starts the writer thread. A database whose schema is newer
    /// than this code knows is refused.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        Self::open_with(path, Durability::Full)
    }

    /// [`SqliteStore::open`] with a chosen [`Durability`].
    pub fn open_with(path: &Path, durability: Durability) -> Result<SqliteStore, StoreError> {
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError::Backend(format!("cannot create the directory {}: {e}", parent.display()))
                })?;
            }
        }
        let conn = Connection::open(path)
            .map_err(|e| StoreError::Backend(format!("cannot open the database {}: {e}", path.display())))?;
        configure(&conn, true, durability)
            .map_err(|e| StoreError::Backend(format!("cannot configure the database {}: {e}", path.display())))?;
        migrate(&conn)?;
        let readers = Readers::Pool {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
        };
        // Checkpoints move the write-ahead log into the database. SQLite runs them inside the
        // committing writer by default, which stalls every caller waiting on that commit; a
        // background thread does them here instead (passive: it never blocks the writer), and
        // the writer keeps a high threshold only as a safety net.
        conn.pragma_update(None, "wal_autocheckpoint", 20_000)
            .map_err(|e| StoreError::Backend(format!("cannot configure checkpoints: {e}")))?;
        let mut store = Self::start(Arc::new(Mutex::new(conn)), readers, durability)?;
        store.checkpointer = Some(start_checkpointer(path)?);
        Ok(store)
    }

    /// Opens a fresh database that lives in memory and vanishes with the store. Reads share
    /// the writer's connection, so this is for tests, not for load.
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let conn = Connection::open_in_memory()
            .map_err(|e| StoreError::Backend(format!("cannot open an in-memory database: {e}")))?;
        configure(&conn, false, Durability::Full)
            .map_err(|e| StoreError::Backend(format!("cannot configure the in-memory database: {e}")))?;
        migrate(&conn)?;
        let conn = Arc::new(Mutex::new(conn));
        Self::start(conn.clone(), Readers::Shared(conn), Durability::Full)
    }

    fn start(
        conn: Arc<Mutex<Connection>>,
        readers: Readers,
        durability: Durability,
    ) -> Result<SqliteStore, StoreError> {
        let (sender, receiver) = mpsc::channel::<Box<dyn WriteJob>>();
        let batches = Arc::new(AtomicU64::new(0));
        let counter = batches.clone();
        let writer = std::thread::Builder::new()
            .name("wikiguard-store-writer".into())
            .spawn(move || writer_loop(&conn, &receiver, &counter, durability))
            .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            sender: Some(sender),
            writer: Some(writer),
            readers,
            batches,
            checkpointer: None,
        })
    }

    /// How many write transactions the writer has run so far, committed or not. Beside a count
    /// of writes it shows how well writes are grouped (for metrics).
    pub fn write_batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Queues a write and returns where its answer will arrive (after its batch commits).
    fn submit<T, F>(&self, work: F) -> Result<mpsc::Receiver<Result<T, StoreError>>, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit_job(work, true)
    }

    /// [`Self::submit`], saying whether the write must be on disk before it is answered.
    fn submit_job<T, F>(&self, work: F, durable: bool) -> Result<mpsc::Receiver<Result<T, StoreError>>, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = mpsc::channel();
        self.submit_then(work, durable, move |result| {
            // The caller may have gone away; its rows are committed regardless.
            let _ = reply.send(result);
        })?;
        Ok(answer)
    }

    /// Queues a write whose answer goes to `reply`, called once: on the writer thread when the
    /// write's batch has committed or failed, or here, with the `Err` returned, when the
    /// writer has stopped.
    fn submit_then<T, F, R>(&self, work: F, durable: bool, reply: R) -> Result<(), StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
        R: FnOnce(Result<T, StoreError>) + Send + 'static,
    {
        let job: Box<dyn WriteJob> = Box::new(Job {
            work,
            result: None,
            reply,
            durable,
        });
        let refused = match &self.sender {
            Some(sender) => match sender.send(job) {
                Ok(()) => return Ok(()),
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        refused.finish(Err(WRITER_GONE));
        Err(writer_gone())
    }

    /// Runs a write on the writer thread and waits until it is committed.
    fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(work)?.recv().map_err(|_| writer_gone())?
    }

    /// [`Self::write`] for rows whose loss in a power cut costs nothing that matters (test
    /// data such as the recent-actions log): its batch, when nothing else in it needs to be on
    /// disk, commits without an fsync even under [`Durability::Full`]. It is on disk with the
    /// next durable commit or checkpoint, and a crash of wikiguard alone never loses it.
    fn write_lazily<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit_job(work, false)?.recv().map_err(|_| writer_gone())?
    }

    /// Runs a read on a read connection.
    fn read<T>(&self, work: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        match &self.readers {
            Readers::Shared(conn) => {
                let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
                work(&conn)
            }
            Readers::Pool { path, idle } => {
                let pooled = idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
                let conn = match pooled {
                    Some(conn) => conn,
                    None => open_reader(path)?,
                };
                let result = work(&conn);
                // A connection left inside a transaction by a failed read is not reused.
                if conn.is_autocommit() {
                    let mut idle = idle.lock().unwrap_or_else(PoisonError::into_inner);
                    if idle.len() < MAX_IDLE_READERS {
                        idle.push(conn);
                    }
                }
                result
            }
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the queue lets the writer finish what is queued and return.
        self.sender = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        if let Some((stop, thread)) = self.checkpointer.take() {
            drop(stop);
            let _ = thread.join();
        }
    }
}

/// How often the background checkpointer runs. Often, so each checkpoint has little to copy:
/// what it copies it then fsyncs, and a commit's own fsync waits behind that flush. Under the
/// check benchmark (`bench/check-http.sh`: 160 KB of log per 50 KB edit) every 250 ms meant
/// checkpoints of 20 MB and a p99 of 20–30 ms for a check, one editor alone; every 50 ms,
/// 8–11 ms, with the p50 and the throughput unchanged within the noise.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

fn start_checkpointer(path: &Path) -> Result<(mpsc::Sender<()>, JoinHandle<()>), StoreError> {
    let conn = Connection::open(path).map_err(|e| {
        StoreError::Backend(format!(
            "cannot open the checkpoint connection to {}: {e}",
            path.display()
        ))
    })?;
    conn.busy_timeout(Duration::from_millis(100))
        .map_err(|e| StoreError::Backend(format!("cannot configure the checkpoint connection: {e}")))?;
    // Dropping the sender (the store) stops the thread at once.
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("wikiguard-store-checkpoint".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
                // A busy database just means "next time".
                let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            }
        })
        .map_err(|e| StoreError::Backend(format!("cannot start the checkpoint thread: {e}")))?;
    Ok((stop, thread))
}

const WRITER_GONE: &str = "the store's writer thread has stopped";

fn writer_gone() -> StoreError {
    StoreError::Backend(WRITER_GONE.into())
}

fn sql_error(context: &str, e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(failure, _) = &e {
        if failure.code == rusqlite::ErrorCode::ConstraintViolation {
            return StoreError::Conflict(format!("{context}: {e}"));
        }
    }
    StoreError::Backend(format!("{context}: {e}"))
}

/// Sets the pragmas every connection needs. `file` is false for an in-memory database, which
/// has no WAL.
fn configure(conn: &Connection, file: bool, durability: Durability) -> Result<(), String> {
    let text = |e: rusqlite::Error| e.to_string();
    conn.busy_timeout(BUSY_TIMEOUT).map_err(text)?;
    if file {
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(text)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(format!("journal_mode is {mode}, not wal"));
        }
    }
    let sync = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync).map_err(text)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(text)?;
    Ok(())
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::Backend(format!("cannot open a read connection to {}: {e}", path.display())))?;
    (|| -> rusqlite::Result<()> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Writes go through the writer thread only; a reader that tried one would be a bug.
        conn.pragma_update(None, "query_only", "ON")?;
        Ok(())
    })()
    .map_err(|e| StoreError::Backend(format!("cannot configure a read connection: {e}")))?;
    Ok(conn)
}

/// Brings the schema up to [`SqliteStore::SCHEMA_VERSION`], one transaction per migration.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let current: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| sql_error("cannot read the schema version", e))?;
    if current > SqliteStore::SCHEMA_VERSION {
        return Err(StoreError::Backend(format!(
            "the database has schema version {current}, newer than this wikiguard knows ({}); \
             run a newer wikiguard or restore a backup",
            SqliteStore::SCHEMA_VERSION
        )));
    }
    if current < 0 {
        return Err(StoreError::Backend(format!(
            "the database has an invalid schema version {current}"
        )));
    }
    for (index, script) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let target = index + 1;
        let apply = || -> rusqlite::Result<()> {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            let result = conn
                .execute_batch(script)
                .and_then(|()| conn.pragma_update(None, "user_version", target as i64))
                .and_then(|()| conn.execute_batch("COMMIT"));
            if result.is_err() && !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            result
        };
        apply().map_err(|e| StoreError::Backend(format!("migration to schema version {target} failed: {e}")))?;
    }
    Ok(())
}

/// A write waiting for the writer thread.
trait WriteJob: Send {
    /// Runs the write; returns whether it succeeded (the caller's answer waits for `finish`).
    /// A job may be run again after its transaction was rolled back, and the last run's
    /// outcome is the one its caller hears: so a job only writes through `conn`.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Forgets the outcome of an earlier run, whose transaction was rolled back.
    fn reset(&mut self);
    /// Answers the caller once the batch has committed (`Ok`) or failed (`Err`).
    fn finish(self: Box<Self>, commit: Result<(), &str>);
    /// Whether the caller must not hear "committed" before the rows are on disk.
    fn durable(&self) -> bool;
}

struct Job<T, F, R> {
    work: F,
    result: Option<Result<T, StoreError>>,
    reply: R,
    durable: bool,
}

impl<T, F, R> WriteJob for Job<T, F, R>
where
    T: Send,
    F: FnMut(&Connection) -> Result<T, StoreError> + Send,
    R: FnOnce(Result<T, StoreError>) + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let result = (self.work)(conn);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn reset(&mut self) {
        self.result = None;
    }

    fn finish(self: Box<Self>, commit: Result<(), &str>) {
        let Job { result, reply, .. } = *self;
        reply(match (result, commit) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (Some(Ok(_)), Err(message)) | (None, Err(message)) => Err(StoreError::Backend(message.to_string())),
            (None, Ok(())) => Err(StoreError::Backend("the write was never run".into())),
        });
    }

    fn durable(&self) -> bool {
        self.durable
    }
}

fn writer_loop(
    conn: &Mutex<Connection>,
    queue: &mpsc::Receiver<Box<dyn WriteJob>>,
    batches: &AtomicU64,
    durability: Durability,
) {
    let mut level = SyncLevel {
        durability,
        relaxed: false,
    };
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
        let durable = batch.iter().any(|job| job.durable());
        let answers = match level.prepare(durable, |l| conn.pragma_update(None, "synchronous", l)) {
            Ok(()) => run_jobs(&conn, batch, batches),
            Err(e) => batch.into_iter().map(|job| (job, Err(e.clone()))).collect(),
        };
        // The callers hear their answers with the connection free again.
        drop(conn);
        for (job, answer) in answers {
            job.finish(answer.as_ref().copied().map_err(String::as_str));
        }
    }
}

/// Runs a batch's jobs, in their order, in as few transactions as their failures allow, and
/// returns each job with how its transaction ended.
///
/// All of them share one transaction at first. When job `i` fails, that transaction is rolled
/// back; the jobs before it, which succeeded, run again together, job `i` runs alone (and
/// its caller hears its own error), and the jobs after it are a batch of their own. One
/// failure so costs two more transactions, not one for every job of the batch.
fn run_jobs(
    conn: &Connection,
    batch: Vec<Box<dyn WriteJob>>,
    batches: &AtomicU64,
) -> Vec<(Box<dyn WriteJob>, Result<(), String>)> {
    let mut answers = Vec::with_capacity(batch.len());
    // Segments still to run, the next one last.
    let mut todo = vec![batch];
    while let Some(mut jobs) = todo.pop() {
        if jobs.is_empty() {
            continue;
        }
        batches.fetch_add(1, Ordering::Relaxed);
        match run_batch(conn, &mut jobs) {
            Batch::Committed => answers.extend(jobs.into_iter().map(|job| (job, Ok(())))),
            Batch::Failed(e) => answers.extend(jobs.into_iter().map(|job| (job, Err(e.clone())))),
            // A job alone keeps its own error, which its caller hears.
            Batch::JobFailed(_) if jobs.len() == 1 => {
                answers.extend(jobs.into_iter().map(|job| (job, Err("the write failed".to_string()))));
            }
            Batch::JobFailed(i) => {
                let mut after = jobs.split_off(i);
                let failed = after.remove(0);
                todo.push(after);
                todo.push(vec![failed]);
                todo.push(jobs);
            }
        }
    }
    answers
}

/// The writer connection's `synchronous` level across batches. With [`Durability::Full`], a
/// batch of lazy writes alone commits without an fsync (WAL mode keeps it consistent; the
/// next durable commit's fsync covers its frames too), and a batch with a durable write
/// commits only once FULL is back.
struct SyncLevel {
    durability: Durability,
    /// Whether the connection is at NORMAL for lazy batches.
    relaxed: bool,
}

impl SyncLevel {
    /// Sets the level a batch needs, with `set` (a `PRAGMA synchronous` update). `Err`: the
    /// batch must not run, as its commit would not be durable.
    fn prepare(
        &mut self,
        durable: bool,
        mut set: impl FnMut(&'static str) -> rusqlite::Result<()>,
    ) -> Result<(), String> {
        if self.durability != Durability::Full {
            return Ok(());
        }
        match (durable, self.relaxed) {
            // Still FULL if this fails: the lazy batch is merely durable.
            (false, false) => self.relaxed = set("NORMAL").is_ok(),
            (true, true) => match set("FULL") {
                Ok(()) => self.relaxed = false,
                // Tried again on the next durable batch; lazy ones go on meanwhile.
                Err(e) => return Err(format!("cannot make the commit durable: {e}")),
            },
            _ => {}
        }
        Ok(())
    }
}

/// How a batch's transaction ended.
enum Batch {
    /// Every job ran and the transaction committed.
    Committed,
    /// The transaction could not begin or commit; nothing of it was kept.
    Failed(String),
    /// The job at this index failed and the whole transaction was rolled back; the jobs have
    /// to run again (see [`run_jobs`]).
    JobFailed(usize),
}

/// Runs every job of a batch in one transaction and commits; nothing of the batch is kept
/// unless it is [`Batch::Committed`].
///
/// The jobs share the transaction with no savepoint between them: a savepoint makes SQLite
/// copy every page a job changes into a journal of its own, which cost a check's hit rows
/// a fifth of the writer's time under load. A job that fails is rare (most are inserts),
/// so instead the whole batch is rolled back and its jobs run again (see [`run_jobs`]).
fn run_batch(conn: &Connection, batch: &mut [Box<dyn WriteJob>]) -> Batch {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        return Batch::Failed(format!("cannot begin a write transaction: {e}"));
    }
    // What an earlier, rolled-back run of a job left is not its answer.
    for job in batch.iter_mut() {
        job.reset();
    }
    let mut outcome = Batch::Committed;
    for (i, job) in batch.iter_mut().enumerate() {
        if !job.run(conn) {
            outcome = Batch::JobFailed(i);
            break;
        }
        // SQLite rolls the whole transaction back on some errors (a full disk, say); then
        // the writes before this one are gone too.
        if conn.is_autocommit() {
            outcome = Batch::Failed("the write transaction was rolled back by the database".to_string());
            break;
        }
    }
    if let Batch::Committed = outcome {
        if let Err(e) = conn.execute_batch("COMMIT") {
            outcome = Batch::Failed(format!("cannot commit: {e}"));
        }
    }
    if !matches!(outcome, Batch::Committed) && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    outcome
}

// ---- rows ----

/// A recent action as its columns, its long texts apart under their hashes.
struct RecentRow {
    time: i64,
    action: String,
    user_name: String,
    page: String,
    /// The body's JSON without the texts kept apart.
    body: String,
    /// `old_wikitext` and `new_wikitext` when kept apart: hash and text.
    texts: [Option<([u8; 32], String)>; 2],
}

impl RecentRow {
    fn encode(action: &NewRecentAction) -> Result<RecentRow, StoreError> {
        let mut texts: [Option<([u8; 32], String)>; 2] = [None, None];
        let body = match action.body.as_object() {
            Some(object) => {
                let mut rest = serde_json::Map::new();
                for (key, value) in object {
                    let shared = SHARED_TEXT_FIELDS.iter().position(|f| f == key);
                    match (shared, value.as_str()) {
                        (Some(i), Some(text)) if text.len() >= MIN_SHARED_TEXT => {
                            texts[i] = Some((sha2::Sha256::digest(text.as_bytes()).into(), text.to_string()));
                        }
                        _ => {
                            rest.insert(key.clone(), value.clone());
                        }
                    }
                }
                encode(&rest, "a recent action's body")?
            }
            None => encode(&action.body, "a recent action's body")?,
        };
        Ok(RecentRow {
            time: action.time,
            action: action.action.clone(),
            user_name: action.user_name.clone(),
            page: action.page.clone(),
            body,
            texts,
        })
    }
}

/// A filter's columns as read; its hits are those as of its last save and those since.
const FILTER_COLUMNS: &str = "id, version, description, pattern, enabled, deleted, private, grp, comments, actions, \
                              last_editor, last_edit_time, \
                              hits + COALESCE((SELECT c.hits FROM filter_hit_counts c WHERE c.filter_id = filters.id), 0)";
const VERSION_COLUMNS: &str = "id, version, description, pattern, enabled, deleted, private, grp, comments, actions, \
                               editor, time, change";
const HIT_COLUMNS: &str = "id, filter_id, filter_version, time, action, user_name, page, namespace, verdict, \
                           actions_taken, vars, dump_id";
/// The columns of a hit as read: the shared dump when there is one, else the row's own.
const HIT_SELECT: &str = "hits.id, hits.filter_id, hits.filter_version, hits.time, hits.action, hits.user_name, \
                          hits.page, hits.namespace, hits.verdict, hits.actions_taken, \
                          COALESCE(var_dumps.vars, hits.vars) FROM hits LEFT JOIN var_dumps ON var_dumps.id = hits.dump_id";

/// A value read from a row, or why the row is unreadable (bad JSON, an unknown change kind).
type RowResult<T> = rusqlite::Result<Result<T, String>>;

fn parse_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| format!("unreadable {what} JSON: {e}"))
}

/// The spec columns 2..=9 shared by `filters` and `filter_versions`.
fn spec_from_row(row: &Row<'_>) -> RowResult<FilterSpec> {
    let actions: String = row.get(9)?;
    let actions = match parse_json(&actions, "actions") {
        Ok(actions) => actions,
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok(FilterSpec {
        description: row.get(2)?,
        pattern: row.get(3)?,
        enabled: row.get(4)?,
        deleted: row.get(5)?,
        private: row.get(6)?,
        group: row.get(7)?,
        comments: row.get(8)?,
        actions,
    }))
}

fn filter_from_row(row: &Row<'_>) -> RowResult<Filter> {
    let spec = match spec_from_row(row)? {
        Ok(spec) => spec,
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok(Filter {
        id: row.get(0)?,
        version: row.get(1)?,
        spec,
        last_editor: row.get(10)?,
        last_edit_time: row.get(11)?,
        hits: row.get(12)?,
    }))
}

fn version_from_row(row: &Row<'_>) -> RowResult<FilterVersion> {
    let spec = match spec_from_row(row)? {
        Ok(spec) => spec,
        Err(e) => return Ok(Err(e)),
    };
    let change: String = row.get(12)?;
    let Some(change) = change_from_str(&change) else {
        return Ok(Err(format!("unknown change kind {change:?}")));
    };
    Ok(Ok(FilterVersion {
        id: row.get(0)?,
        version: row.get(1)?,
        spec,
        editor: row.get(10)?,
        time: row.get(11)?,
        change,
    }))
}

fn hit_from_row(row: &Row<'_>) -> RowResult<Hit> {
    let actions_taken: String = row.get(9)?;
    let vars: String = row.get(10)?;
    let (actions_taken, vars) = match (parse_json(&actions_taken, "actions_taken"), parse_json(&vars, "vars")) {
        (Ok(a), Ok(v)) => (a, v),
        (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
    };
    Ok(Ok(Hit {
        id: row.get(0)?,
        hit: NewHit {
            filter_id: row.get(1)?,
            filter_version: row.get(2)?,
            time: row.get(3)?,
            action: row.get(4)?,
            user_name: row.get(5)?,
            page: row.get(6)?,
            namespace: row.get(7)?,
            verdict: row.get(8)?,
            actions_taken,
            vars: Arc::new(vars),
        },
    }))
}

fn recent_from_row(row: &Row<'_>) -> RowResult<RecentAction> {
    let body: String = row.get(5)?;
    let mut body: serde_json::Value = match parse_json(&body, "body") {
        Ok(body) => body,
        Err(e) => return Ok(Err(e)),
    };
    // The texts stored apart go back where they were taken from.
    for (i, field) in SHARED_TEXT_FIELDS.iter().enumerate() {
        if let Some(text) = row.get::<_, Option<String>>(6 + i)? {
            match body.as_object_mut() {
                Some(object) => {
                    object.insert((*field).to_string(), serde_json::Value::String(text));
                }
                None => {
                    return Ok(Err(format!(
                        "a recent action's body with a stored {field} is not an object"
                    )))
                }
            }
        }
    }
    Ok(Ok(RecentAction {
        id: row.get(0)?,
        action: NewRecentAction {
            time: row.get(1)?,
            action: row.get(2)?,
            user_name: row.get(3)?,
            page: row.get(4)?,
            body,
        },
    }))
}

fn change_to_str(change: Change) -> &'static str {
    match change {
        Change::Create => "create",
        Change::Update => "update",
        Change::Delete => "delete",
        Change::Import => "import",
    }
}

fn change_from_str(text: &str) -> Option<Change> {
    match text {
        "create" => Some(Change::Create),
        "update" => Some(Change::Update),
        "delete" => Some(Change::Delete),
        "import" => Some(Change::Import),
        _ => None,
    }
}

/// Runs a query and reads every row with `read`, naming `what` in any error.
fn query_all<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    what: &str,
    read: impl Fn(&Row<'_>) -> RowResult<T>,
) -> Result<Vec<T>, StoreError> {
    let fail = |e| sql_error(&format!("cannot read {what}"), e);
    let mut stmt = conn.prepare_cached(sql).map_err(fail)?;
    let mut rows = stmt.query(params).map_err(fail)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(fail)? {
        match read(row).map_err(fail)? {
            Ok(value) => out.push(value),
            Err(e) => return Err(StoreError::Backend(format!("cannot read {what}: {e}"))),
        }
    }
    Ok(out)
}

fn load_filter(conn: &Connection, id: i64) -> Result<Filter, StoreError> {
    let sql = format!("SELECT {FILTER_COLUMNS} FROM filters WHERE id = ?1");
    query_all(conn, &sql, [id], &format!("filter {id}"), filter_from_row)?
        .pop()
        .ok_or(StoreError::NotFound { what: "filter", id })
}

/// The 13 values both filter tables take: the filter's first twelve columns and `last`
/// (the hit count for `filters`, the change for `filter_versions`), borrowed from the filter.
fn filter_params<'a>(filter: &'a Filter, actions: &'a dyn ToSql, last: &'a dyn ToSql) -> [&'a dyn ToSql; 13] {
    let spec = &filter.spec;
    [
        &filter.id,
        &filter.version,
        &spec.description,
        &spec.pattern,
        &spec.enabled,
        &spec.deleted,
        &spec.private,
        &spec.group,
        &spec.comments,
        actions,
        &filter.last_editor,
        &filter.last_edit_time,
        last,
    ]
}

/// Writes a filter's current state and the version row that records it.
fn save_filter(conn: &Connection, filter: &Filter, change: Change) -> Result<(), StoreError> {
    let fail = |e| sql_error(&format!("cannot save filter {}", filter.id), e);
    let actions = encode(&filter.spec.actions, "a filter's actions")?;
    conn.prepare_cached(
        "INSERT INTO filters (id, version, description, pattern, enabled, deleted, private, grp, comments, actions,
                              last_editor, last_edit_time, hits)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (id) DO UPDATE SET
             version = excluded.version, description = excluded.description, pattern = excluded.pattern,
             enabled = excluded.enabled, deleted = excluded.deleted, private = excluded.private,
             grp = excluded.grp, comments = excluded.comments, actions = excluded.actions,
             last_editor = excluded.last_editor, last_edit_time = excluded.last_edit_time, hits = excluded.hits",
    )
    .and_then(|mut stmt| stmt.execute(filter_params(filter, &actions, &filter.hits)))
    .map_err(fail)?;
    // `filter.hits` is the whole count (as read with the hits since the last save): it is
    // the new baseline.
    conn.prepare_cached("DELETE FROM filter_hit_counts WHERE filter_id = ?1")
        .and_then(|mut stmt| stmt.execute([filter.id]))
        .map_err(fail)?;
    conn.prepare_cached(&format!(
        "INSERT INTO filter_versions ({VERSION_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    ))
    .and_then(|mut stmt| stmt.execute(filter_params(filter, &actions, &change_to_str(change))))
    .map_err(fail)?;
    Ok(())
}

/// A hit as the writer inserts it: its columns with `actions_taken` encoded, and instead of
/// its variables the index of its dump in the batch's list of distinct dumps (shared, not
/// copied per hit).
struct HitRow {
    hit: NewHit,
    actions_taken: String,
    dump: usize,
}

/// Hits of one call with equal variables (the hits of one check) share one dump.
fn encode_hits(hits: &[NewHit]) -> Result<(Vec<HitRow>, Vec<String>), StoreError> {
    let mut dumps: Vec<String> = Vec::new();
    let mut rows = Vec::with_capacity(hits.len());
    let mut previous: Option<&NewHit> = None;
    for hit in hits {
        let same_as_before = previous.is_some_and(|p| Arc::ptr_eq(&p.vars, &hit.vars) || p.vars == hit.vars);
        if !same_as_before {
            let text = encode(&hit.vars, "a hit's vars")?;
            if dumps.last() != Some(&text) {
                dumps.push(text);
            }
        }
        previous = Some(hit);
        rows.push(HitRow {
            hit: hit.clone(),
            actions_taken: encode(&hit.actions_taken, "a hit's actions_taken")?,
            dump: dumps.len().saturating_sub(1),
        });
    }
    Ok((rows, dumps))
}

/// Inserts hits and counts them on their filters (`NotFound` for an unknown filter).
fn insert_hits(conn: &Connection, rows: &[HitRow], dumps: &[String]) -> Result<Vec<i64>, StoreError> {
    let fail = |e| sql_error("cannot record a hit", e);
    let mut dump = conn
        .prepare_cached("INSERT INTO var_dumps (vars) VALUES (?1)")
        .map_err(fail)?;
    let mut dump_ids = Vec::with_capacity(dumps.len());
    for d in dumps {
        dump.execute([d]).map_err(fail)?;
        dump_ids.push(conn.last_insert_rowid());
    }
    // Counts the hit on its filter, if the filter exists (no row changed: it does not).
    let mut count = conn
        .prepare_cached(
            "INSERT INTO filter_hit_counts (filter_id, hits) SELECT id, 1 FROM filters WHERE id = ?1
             ON CONFLICT (filter_id) DO UPDATE SET hits = hits + 1",
        )
        .map_err(fail)?;
    let mut insert = conn
        .prepare_cached(&format!(
            "INSERT INTO hits ({HIT_COLUMNS}) VALUES (NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, '', ?10)"
        ))
        .map_err(fail)?;
    let mut ids = Vec::with_capacity(rows.len());
    for row in rows {
        let hit = &row.hit;
        if count.execute([hit.filter_id]).map_err(fail)? == 0 {
            return Err(StoreError::NotFound {
                what: "filter",
                id: hit.filter_id,
            });
        }
        insert
            .execute(params![
                hit.filter_id,
                hit.filter_version,
                hit.time,
                hit.action,
                hit.user_name,
                hit.page,
                hit.namespace,
                hit.verdict,
                row.actions_taken,
                dump_ids.get(row.dump),
            ])
            .map_err(fail)?;
        ids.push(conn.last_insert_rowid());
    }
    Ok(ids)
}

fn clamp_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Store for SqliteStore {
    fn list_filters(&self, include_deleted: bool) -> Result<Vec<Filter>, StoreError> {
        self.read(|conn| {
            let sql = format!("SELECT {FILTER_COLUMNS} FROM filters WHERE ?1 OR deleted = 0 ORDER BY id");
            query_all(conn, &sql, [include_deleted], "the filter list", filter_from_row)
        })
    }

    fn get_filter(&self, id: i64) -> Result<Filter, StoreError> {
        self.read(|conn| load_filter(conn, id))
    }

    fn create_filter(&self, spec: &FilterSpec, editor: &str, now: i64) -> Result<Filter, StoreError> {
        let spec = spec.clone();
        let editor = editor.to_string();
        self.write(move |conn| {
            // Deleted filters keep their rows, so the maximum never goes back down.
            let id: i64 = conn
                .query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM filters", [], |row| row.get(0))
                .map_err(|e| sql_error("cannot pick a new filter id", e))?;
            let filter = Filter {
                id,
                version: 1,
                spec: spec.clone(),
                last_editor: editor.clone(),
                last_edit_time: now,
                hits: 0,
            };
            save_filter(conn, &filter, Change::Create)?;
            Ok(filter)
        })
    }

    fn update_filter(&self, id: i64, spec: &FilterSpec, editor: &str, now: i64) -> Result<Filter, StoreError> {
        let spec = spec.clone();
        let editor = editor.to_string();
        self.write(move |conn| {
            let old = load_filter(conn, id)?;
            let filter = Filter {
                id,
                version: old.version + 1,
                spec: spec.clone(),
                last_editor: editor.clone(),
                last_edit_time: now,
                hits: old.hits,
            };
            save_filter(conn, &filter, Change::Update)?;
            Ok(filter)
        })
    }

    fn delete_filter(&self, id: i64, editor: &str, now: i64) -> Result<Filter, StoreError> {
        let editor = editor.to_string();
        self.write(move |conn| {
            let old = load_filter(conn, id)?;
            let mut spec = old.spec;
            spec.deleted = true;
            spec.enabled = false;
            let filter = Filter {
                id,
                version: old.version + 1,
                spec: spec.clone(),
                last_editor: editor.clone(),
                last_edit_time: now,
                hits: old.hits,
            };
            save_filter(conn, &filter, Change::Delete)?;
            Ok(filter)
        })
    }

    fn import_filter(
        &self,
        id: i64,
        spec: &FilterSpec,
        editor: &str,
        time: i64,
        hits: i64,
    ) -> Result<Filter, StoreError> {
        let spec = spec.clone();
        let editor = editor.to_string();
        self.write(move |conn| {
            let version = match load_filter(conn, id) {
                Ok(old) => old.version + 1,
                Err(StoreError::NotFound { .. }) => 1,
                Err(e) => return Err(e),
            };
            let filter = Filter {
                id,
                version,
                spec: spec.clone(),
                last_editor: editor.clone(),
                last_edit_time: time,
                hits,
            };
            save_filter(conn, &filter, Change::Import)?;
            Ok(filter)
        })
    }

    fn filter_history(&self, id: i64) -> Result<Vec<FilterVersion>, StoreError> {
        let history = self.read(|conn| {
            let sql = format!("SELECT {VERSION_COLUMNS} FROM filter_versions WHERE id = ?1 ORDER BY version");
            query_all(conn, &sql, [id], &format!("filter {id}'s history"), version_from_row)
        })?;
        // Every stored filter has at least the version that created it.
        if history.is_empty() {
            return Err(StoreError::NotFound { what: "filter", id });
        }
        Ok(history)
    }

    fn record_hits(&self, hits: &[NewHit]) -> Result<Vec<i64>, StoreError> {
        let (reply, answer) = mpsc::channel();
        self.record_hits_then(
            hits,
            Box::new(move |ids| {
                let _ = reply.send(ids);
            }),
        );
        answer.recv().map_err(|_| writer_gone())?
    }

    fn record_hits_then(&self, hits: &[NewHit], done: HitsCommitted) {
        if hits.is_empty() {
            return done(Ok(Vec::new()));
        }
        let (rows, dumps) = match encode_hits(hits) {
            Ok(encoded) => encoded,
            Err(e) => return done(Err(e)),
        };
        // A refusal (the writer stopped) reaches `done` too.
        let _ = self.submit_then(move |conn| insert_hits(conn, &rows, &dumps), true, done);
    }

    fn hits(&self, query: &HitQuery) -> Result<Vec<Hit>, StoreError> {
        let mut sql = format!("SELECT {HIT_SELECT} WHERE 1");
        let mut values: Vec<Value> = Vec::new();
        let mut narrow = |clause: &str, value: Value| {
            values.push(value);
            sql.push_str(&format!(" AND {clause} ?{}", values.len()));
        };
        if let Some(filter) = query.filter {
            narrow("hits.filter_id =", Value::Integer(filter));
        }
        if let Some(user) = &query.user {
            narrow("hits.user_name =", Value::Text(user.clone()));
        }
        if let Some(page) = &query.page {
            narrow("hits.page =", Value::Text(page.clone()));
        }
        if let Some(since) = query.since {
            narrow("hits.time >=", Value::Integer(since));
        }
        if let Some(until) = query.until {
            narrow("hits.time <=", Value::Integer(until));
        }
        if let Some(before) = query.before_id {
            narrow("hits.id <", Value::Integer(before));
        }
        let limit = match query.limit {
            0 => DEFAULT_HIT_LIMIT,
            n => n.min(MAX_HIT_LIMIT),
        };
        values.push(Value::Integer(clamp_i64(limit)));
        sql.push_str(&format!(" ORDER BY hits.id DESC LIMIT ?{}", values.len()));
        self.read(|conn| query_all(conn, &sql, rusqlite::params_from_iter(values), "hits", hit_from_row))
    }

    fn record_recent_actions(&self, actions: &[NewRecentAction], keep: usize) -> Result<Vec<i64>, StoreError> {
        if actions.is_empty() {
            return Ok(Vec::new());
        }
        // Encoded here, on the caller's thread, not on the writer: the long texts go apart,
        // each under its hash.
        let rows = actions.iter().map(RecentRow::encode).collect::<Result<Vec<_>, _>>()?;
        let keep = clamp_i64(keep);
        self.write_lazily(move |conn| {
            let fail = |e| sql_error("cannot record a recent action", e);
            let mut ids = Vec::with_capacity(rows.len());
            for row in &rows {
                let mut texts: [Option<i64>; 2] = [None, None];
                for (slot, text) in row.texts.iter().enumerate() {
                    let Some((hash, text)) = text else { continue };
                    // A text already kept (the old text of an edit, mostly) is looked up, not
                    // written again.
                    let kept: Option<i64> = conn
                        .prepare_cached("SELECT id FROM recent_texts WHERE hash = ?1")
                        .and_then(|mut stmt| stmt.query_row([&hash[..]], |r| r.get(0)).optional())
                        .map_err(fail)?;
                    texts[slot] = Some(match kept {
                        Some(id) => id,
                        None => {
                            conn.prepare_cached("INSERT INTO recent_texts (hash, body) VALUES (?1, ?2)")
                                .and_then(|mut stmt| stmt.execute(params![&hash[..], text]))
                                .map_err(fail)?;
                            conn.last_insert_rowid()
                        }
                    });
                }
                conn.prepare_cached(
                    "INSERT INTO recent_actions (time, action, user_name, page, body, old_text, new_text)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        row.time,
                        row.action,
                        row.user_name,
                        row.page,
                        row.body,
                        texts[0],
                        texts[1]
                    ])
                })
                .map_err(fail)?;
                ids.push(conn.last_insert_rowid());
            }
            // Ids only grow, one per insert, and only the oldest rows are ever deleted, so the
            // newest `keep` rows are those above id - keep. (The OFFSET form stepped over
            // `keep` rows, each a page of its own for a big edit, at every check.) Once for
            // the whole batch.
            let newest = ids.last().copied().unwrap_or_default();
            let cutoff = newest.saturating_sub(keep);
            let mut dropped: Vec<i64> = conn
                .prepare_cached("DELETE FROM recent_actions WHERE id <= ?1 RETURNING old_text, new_text")
                .and_then(|mut stmt| {
                    stmt.query_map([cutoff], |r| {
                        Ok([r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?])
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(fail)?
                .into_iter()
                .flatten()
                .flatten()
                .collect();
            // The texts only the dropped actions referred to go with them.
            dropped.sort_unstable();
            dropped.dedup();
            for text in dropped {
                conn.prepare_cached(
                    "DELETE FROM recent_texts WHERE id = ?1
                     AND NOT EXISTS (SELECT 1 FROM recent_actions WHERE old_text = ?1)
                     AND NOT EXISTS (SELECT 1 FROM recent_actions WHERE new_text = ?1)",
                )
                .and_then(|mut stmt| stmt.execute([text]))
                .map_err(fail)?;
            }
            Ok(ids)
        })
    }

    fn recent_actions(&self, limit: usize) -> Result<Vec<RecentAction>, StoreError> {
        self.read(|conn| {
            query_all(
                conn,
                "SELECT ra.id, ra.time, ra.action, ra.user_name, ra.page, ra.body, o.body, n.body
                 FROM recent_actions ra
                 LEFT JOIN recent_texts o ON o.id = ra.old_text
                 LEFT JOIN recent_texts n ON n.id = ra.new_text
                 ORDER BY ra.id DESC LIMIT ?1",
                [clamp_i64(limit)],
                "recent actions",
                recent_from_row,
            )
        })
    }

    fn account_state(&self, user: &str, kind: &str) -> Result<Option<Versioned>, StoreError> {
        let (user, kind) = (user.to_string(), kind.to_string());
        self.read(move |conn| {
            let row: Option<(i64, String)> = conn
                .query_row(
                    "SELECT version, value FROM account_state WHERE user = ?1 AND kind = ?2",
                    params![user, kind],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(|e| sql_error("cannot read account state", e))?;
            match row {
                None => Ok(None),
                Some((version, text)) => {
                    let value = parse_json(&text, "account state").map_err(StoreError::Backend)?;
                    Ok(Some(Versioned { version, value }))
                }
            }
        })
    }

    fn put_account_state(
        &self,
        user: &str,
        kind: &str,
        expected: i64,
        value: &serde_json::Value,
    ) -> Result<Option<i64>, StoreError> {
        let text = encode(value, "account state")?;
        let (user, kind) = (user.to_string(), kind.to_string());
        self.write(move |conn| {
            let fail = |e| sql_error("cannot write account state", e);
            let changed = if expected == 0 {
                conn.prepare_cached(
                    "INSERT INTO account_state (user, kind, version, value) VALUES (?1, ?2, 1, ?3)
                     ON CONFLICT (user, kind) DO NOTHING",
                )
                .and_then(|mut s| s.execute(params![user, kind, text]))
                .map_err(fail)?
            } else {
                conn.prepare_cached(
                    "UPDATE account_state SET version = version + 1, value = ?4
                     WHERE user = ?1 AND kind = ?2 AND version = ?3",
                )
                .and_then(|mut s| s.execute(params![user, kind, expected, text]))
                .map_err(fail)?
            };
            Ok((changed == 1).then_some(expected + 1))
        })
    }

    fn delete_account_state(&self, user: &str, kind: &str) -> Result<bool, StoreError> {
        let (user, kind) = (user.to_string(), kind.to_string());
        self.write(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM account_state WHERE user = ?1 AND kind = ?2",
                    params![user, kind],
                )
                .map_err(|e| sql_error("cannot delete account state", e))?;
            Ok(n > 0)
        })
    }

    fn record_audit(&self, event: &NewAuditEvent) -> Result<i64, StoreError> {
        let details = encode(&event.details, "an audit event's details")?;
        let e = event.clone();
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO audit_events (time, user, kind, ip_pseudonym, details) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| s.execute(params![e.time, e.user, e.kind, e.ip_pseudonym, details]))
            .map_err(|err| sql_error("cannot record an audit event", err))?;
            Ok(conn.last_insert_rowid())
        })
    }

    fn audit_events(&self, user: Option<&str>, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        let user = user.map(str::to_string);
        let limit = clamp_i64(limit.clamp(1, MAX_HIT_LIMIT));
        self.read(move |conn| {
            let read = |r: &Row<'_>| -> RowResult<AuditEvent> {
                let details: String = r.get(5)?;
                Ok(parse_json(&details, "details").map(|details| AuditEvent {
                    id: r.get(0).unwrap_or_default(),
                    event: NewAuditEvent {
                        time: r.get(1).unwrap_or_default(),
                        user: r.get(2).unwrap_or_default(),
                        kind: r.get(3).unwrap_or_default(),
                        ip_pseudonym: r.get(4).unwrap_or_default(),
                        details,
                    },
                }))
            };
            match user {
                Some(u) => query_all(
                    conn,
                    "SELECT id, time, user, kind, ip_pseudonym, details FROM audit_events WHERE user = ?1
                     ORDER BY id DESC LIMIT ?2",
                    params![u, limit],
                    "audit events",
                    read,
                ),
                None => query_all(
                    conn,
                    "SELECT id, time, user, kind, ip_pseudonym, details FROM audit_events ORDER BY id DESC LIMIT ?1",
                    params![limit],
                    "audit events",
                    read,
                ),
            }
        })
    }

    fn ping(&self) -> Result<(), StoreError> {
        if self.writer.as_ref().is_none_or(JoinHandle::is_finished) {
            return Err(writer_gone());
        }
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))
                .map_err(|e| sql_error("the database does not answer", e))?;
            Ok(())
        })
    }
}

fn encode<T: serde::Serialize>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(format!("cannot encode {what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(description: &str) -> FilterSpec {
        FilterSpec {
            description: description.into(),
            pattern: "true".into(),
            enabled: true,
            deleted: false,
            private: false,
            group: "default".into(),
            comments: String::new(),
            actions: serde_json::json!({}),
        }
    }

    fn hit(filter_id: i64) -> NewHit {
        NewHit {
            filter_id,
            filter_version: 1,
            time: 100,
            action: "edit".into(),
            user_name: "U".into(),
            page: "P".into(),
            namespace: 0,
            verdict: "allow".into(),
            actions_taken: vec![],
            vars: Arc::new(serde_json::json!({})),
        }
    }

    /// Holds the writer inside a job until `release` is sent, so that everything submitted
    /// meanwhile queues up and lands in the next batch.
    fn hold_writer(store: &SqliteStore) -> (mpsc::Receiver<Result<(), StoreError>>, mpsc::Sender<()>) {
        let (started_tx, started_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let gate = store
            .submit(move |_| {
                started_tx.send(()).ok();
                release_rx.recv().ok();
                Ok(())
            })
            .unwrap();
        started_rx.recv().unwrap();
        (gate, release_tx)
    }

    /// A store with one filter, whose writer is kept busy by a first write until [`Held::go`]:
    /// the writes queued meanwhile make the next batch.
    struct Held {
        store: SqliteStore,
        filter: Filter,
        before: u64,
        gate: mpsc::Receiver<Result<(), StoreError>>,
        release: mpsc::Sender<()>,
    }

    impl Held {
        fn new() -> Held {
            let store = SqliteStore::open_in_memory().unwrap();
            let filter = store.create_filter(&spec("f"), "A", 1).unwrap();
            let before = store.write_batches();
            let (gate, release) = hold_writer(&store);
            Held {
                store,
                filter,
                before,
                gate,
                release,
            }
        }

        /// Lets the writer go on, and waits for the first write to commit.
        fn go(&self) {
            self.release.send(()).unwrap();
            self.gate.recv().unwrap().unwrap();
        }

        /// The transactions run since the filter was made, the first write's included.
        fn batches(&self) -> u64 {
            self.store.write_batches() - self.before
        }
    }

    #[test]
    fn account_state_is_a_compare_and_swap() {
        let store = SqliteStore::open_in_memory().unwrap();
        assert_eq!(store.account_state("Alice", "totp").unwrap(), None);
        let v1 = serde_json::json!({"step": 1});
        assert_eq!(store.put_account_state("Alice", "totp", 0, &v1).unwrap(), Some(1));
        assert_eq!(
            store.put_account_state("Alice", "totp", 0, &v1).unwrap(),
            None,
            "already exists"
        );
        let v2 = serde_json::json!({"step": 2});
        assert_eq!(store.put_account_state("Alice", "totp", 1, &v2).unwrap(), Some(2));
        assert_eq!(
            store.put_account_state("Alice", "totp", 1, &v1).unwrap(),
            None,
            "a stale writer loses"
        );
        let got = store.account_state("Alice", "totp").unwrap().unwrap();
        assert_eq!((got.version, got.value), (2, v2));
        assert_eq!(store.account_state("Bob", "totp").unwrap(), None, "per user");
        assert!(store.delete_account_state("Alice", "totp").unwrap());
        assert!(!store.delete_account_state("Alice", "totp").unwrap());
        assert_eq!(store.account_state("Alice", "totp").unwrap(), None);
    }

    #[test]
    fn audit_events_newest_first_per_user() {
        let store = SqliteStore::open_in_memory().unwrap();
        for (i, user) in ["A", "B", "A"].iter().enumerate() {
            let e = NewAuditEvent {
                time: i as i64,
                user: user.to_string(),
                kind: "totp-enrolled".into(),
                ip_pseudonym: "ab12".into(),
                details: serde_json::json!({"n": i}),
            };
            store.record_audit(&e).unwrap();
        }
        let a = store.audit_events(Some("A"), 10).unwrap();
        assert_eq!(a.iter().map(|e| e.event.time).collect::<Vec<_>>(), vec![2, 0]);
        assert_eq!(store.audit_events(None, 10).unwrap().len(), 3);
        assert_eq!(store.audit_events(None, 1).unwrap().len(), 1);
    }

    #[test]
    fn hits_with_equal_variables_share_one_dump() {
        let store = SqliteStore::open_in_memory().unwrap();
        let f = store.create_filter(&spec("f"), "A", 1).unwrap();
        let mut a = hit(f.id);
        a.vars = Arc::new(serde_json::json!({"new_wikitext": "x".repeat(1000)}));
        let mut b = a.clone();
        b.verdict = "warn".into();
        let mut c = a.clone();
        c.vars = Arc::new(serde_json::json!({"user_name": "other"}));
        store.record_hits(&[a.clone(), b.clone(), c.clone()]).unwrap();
        let dumps: i64 = store
            .read(|conn| {
                Ok(conn
                    .query_row("SELECT COUNT(*) FROM var_dumps", [], |r| r.get(0))
                    .unwrap())
            })
            .unwrap();
        assert_eq!(dumps, 2);
        let back = store.hits(&HitQuery::default()).unwrap();
        let vars: Vec<_> = back.iter().rev().map(|h| h.hit.vars.clone()).collect();
        assert_eq!(vars, vec![a.vars, b.vars, c.vars]);
    }

    /// The `synchronous` level the writer's connection has while a write runs (2 is FULL,
    /// 1 NORMAL).
    fn synchronous(conn: &Connection) -> Result<i64, StoreError> {
        conn.query_row("PRAGMA synchronous", [], |r| r.get(0))
            .map_err(|e| sql_error("PRAGMA synchronous", e))
    }

    #[test]
    fn a_durable_batch_waits_for_full_and_lazy_ones_leave_it_be() {
        let mut level = SyncLevel {
            durability: Durability::Full,
            relaxed: false,
        };
        let mut calls = Vec::new();
        let mut ok = |l: &'static str| -> rusqlite::Result<()> {
            calls.push(l);
            Ok(())
        };
        level.prepare(true, &mut ok).unwrap();
        level.prepare(false, &mut ok).unwrap();
        level.prepare(false, &mut ok).unwrap();
        level.prepare(true, &mut ok).unwrap();
        level.prepare(true, &mut ok).unwrap();
        level.prepare(false, &mut ok).unwrap();
        assert_eq!(
            calls,
            ["NORMAL", "FULL", "NORMAL"],
            "one change per switch, none between alike batches"
        );
        // FULL cannot be set back: the durable batch is refused, not committed lazily; lazy
        // batches go on, and a later durable batch that can set FULL runs.
        let busy = || rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), None);
        let err = level.prepare(true, |_| Err(busy()));
        assert!(err.unwrap_err().contains("cannot make the commit durable"));
        assert!(level.relaxed);
        level.prepare(false, |_| panic!("already NORMAL")).unwrap();
        level
            .prepare(true, |l| {
                assert_eq!(l, "FULL");
                Ok(())
            })
            .unwrap();
        assert!(!level.relaxed);
        // NORMAL cannot be set: the lazy batch commits durably.
        level.prepare(false, |_| Err(busy())).unwrap();
        assert!(!level.relaxed);
        // A store that is not durable anyway never changes the level.
        let mut normal = SyncLevel {
            durability: Durability::Normal,
            relaxed: false,
        };
        normal.prepare(false, |_| panic!("no change")).unwrap();
        normal.prepare(true, |_| panic!("no change")).unwrap();
    }

    #[test]
    fn a_durable_write_that_cannot_have_full_is_refused_unrun_and_the_writer_goes_on() {
        // The in-memory store's readers share the writer's connection, so a read can leave a
        // transaction open on it: SQLite then refuses to change `synchronous`.
        let store = SqliteStore::open_in_memory().unwrap();
        assert_eq!(
            store.write_lazily(synchronous).unwrap(),
            1,
            "a lazy batch relaxes to NORMAL"
        );
        store
            .read(|c| c.execute_batch("BEGIN").map_err(|e| sql_error("BEGIN", e)))
            .unwrap();
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let r = ran.clone();
        let refused = store.write(move |_| {
            r.store(true, Ordering::SeqCst);
            Ok(())
        });
        let err = refused.unwrap_err().to_string();
        assert!(err.contains("cannot make the commit durable"), "{err}");
        assert!(
            !ran.load(Ordering::SeqCst),
            "a write that could not be durable never ran"
        );
        store
            .read(|c| c.execute_batch("COMMIT").map_err(|e| sql_error("COMMIT", e)))
            .unwrap();
        // FULL is tried again on the next durable batch, and the writer is still there.
        assert_eq!(store.write(synchronous).unwrap(), 2);
        assert_eq!(store.write_lazily(synchronous).unwrap(), 1);
        assert_eq!(store.write(synchronous).unwrap(), 2);
    }

    #[test]
    fn lazy_writes_alone_commit_without_fsync_and_durable_ones_never_do() {
        let dir = std::env::temp_dir().join(format!("wikiguard-store-lazy-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = SqliteStore::open(&dir.join("db.sqlite3")).unwrap();
        assert_eq!(store.write(synchronous).unwrap(), 2);
        assert_eq!(store.write_lazily(synchronous).unwrap(), 1);
        assert_eq!(store.write(synchronous).unwrap(), 2, "FULL again after a lazy batch");
        // A lazy write that shares its batch with a durable one is committed durably.
        let (gate, release) = hold_writer(&store);
        let lazy = store.submit_job(synchronous, false).unwrap();
        let durable = store.submit(synchronous).unwrap();
        release.send(()).unwrap();
        gate.recv().unwrap().unwrap();
        assert_eq!(lazy.recv().unwrap().unwrap(), 2);
        assert_eq!(durable.recv().unwrap().unwrap(), 2);
        // The recent-actions log is written lazily; its rows are there all the same.
        let action = NewRecentAction {
            time: 1,
            action: "edit".into(),
            user_name: "U".into(),
            page: "P".into(),
            body: serde_json::json!({"action": "edit"}),
        };
        store.record_recent_action(&action, 10).unwrap();
        assert_eq!(store.recent_actions(10).unwrap().len(), 1);
        // A store that is not durable anyway stays as it is.
        drop(store);
        let store = SqliteStore::open_with(&dir.join("db.sqlite3"), Durability::Normal).unwrap();
        assert_eq!(store.write(synchronous).unwrap(), 1);
        assert_eq!(store.write_lazily(synchronous).unwrap(), 1);
        assert_eq!(store.recent_actions(10).unwrap().len(), 1, "kept across reopening");
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn queued_writes_share_a_transaction_and_a_failed_one_is_answered_alone() {
        let held = Held::new();
        let (store, f) = (&held.store, held.filter.clone());

        let ok1 = store.submit(move |conn| {
            save_filter(
                conn,
                &Filter {
                    id: 50,
                    version: 1,
                    spec: spec("a"),
                    last_editor: "A".into(),
                    last_edit_time: 2,
                    hits: 0,
                },
                Change::Create,
            )
        });
        // Writes a hit, then fails: its hit and count must be rolled back.
        let failing = store.submit(move |conn| {
            conn.execute("UPDATE filters SET hits = hits + 1 WHERE id = ?1", [f.id])
                .map_err(|e| sql_error("x", e))?;
            conn.execute_batch("INSERT INTO no_such_table VALUES (1)")
                .map_err(|e| sql_error("on purpose", e))
        });
        let not_found = store.submit(|conn| load_filter(conn, 999));
        let ok2 = store.submit(move |conn| {
            conn.execute("UPDATE filters SET hits = hits + 10 WHERE id = ?1", [f.id])
                .map_err(|e| sql_error("y", e))
        });
        let (ok1, failing, not_found, ok2) = (ok1.unwrap(), failing.unwrap(), not_found.unwrap(), ok2.unwrap());
        held.go();
        ok1.recv().unwrap().unwrap();
        let err = failing.recv().unwrap().unwrap_err();
        assert!(err.to_string().contains("on purpose"), "{err}");
        assert!(matches!(
            not_found.recv().unwrap(),
            Err(StoreError::NotFound {
                what: "filter",
                id: 999
            })
        ));
        assert_eq!(ok2.recv().unwrap().unwrap(), 1);

        // The gate, then the four queued writes together, which the failure of the second
        // rolled back; then the first again, the second alone, and the last two together,
        // which the third's failure rolled back; then the third alone and the fourth.
        assert_eq!(held.batches(), 7);
        assert_eq!(store.get_filter(50).unwrap().spec.description, "a");
        assert_eq!(
            store.get_filter(f.id).unwrap().hits,
            10,
            "the failed write's +1 was rolled back"
        );
    }

    #[test]
    fn queued_writes_that_all_succeed_commit_as_one_transaction() {
        let held = Held::new();
        let (store, f) = (&held.store, held.filter.clone());
        let answers: Vec<_> = (0..3)
            .map(|_| {
                let (rows, dumps) = encode_hits(&[hit(f.id)]).unwrap();
                store.submit(move |conn| insert_hits(conn, &rows, &dumps)).unwrap()
            })
            .collect();
        held.go();
        for a in answers {
            assert_eq!(a.recv().unwrap().unwrap().len(), 1);
        }
        assert_eq!(held.batches(), 2, "the gate, then the three together");
        assert_eq!(store.get_filter(f.id).unwrap().hits, 3);
    }

    #[test]
    fn a_lone_failing_write_leaves_nothing_and_the_next_one_commits() {
        let store = SqliteStore::open_in_memory().unwrap();
        let f = store.create_filter(&spec("f"), "A", 1).unwrap();
        // Alone in its batch (nothing else queued): no savepoint, the transaction rolls back.
        let err = store
            .write(move |conn| {
                conn.execute("UPDATE filters SET hits = hits + 1 WHERE id = ?1", [f.id])
                    .map_err(|e| sql_error("x", e))?;
                conn.execute_batch("INSERT INTO no_such_table VALUES (1)")
                    .map_err(|e| sql_error("on purpose", e))
            })
            .unwrap_err();
        assert!(err.to_string().contains("on purpose"), "{err}");
        assert_eq!(store.get_filter(f.id).unwrap().hits, 0, "the +1 was rolled back");
        let err = store.record_hits(&[hit(404)]).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::NotFound {
                    what: "filter",
                    id: 404
                }
            ),
            "{err}"
        );
        assert_eq!(store.hits(&HitQuery::default()).unwrap().len(), 0);
        assert_eq!(store.record_hits(&[hit(f.id), hit(f.id)]).unwrap().len(), 2);
        assert_eq!(store.get_filter(f.id).unwrap().hits, 2);
        assert_eq!(store.hits(&HitQuery::default()).unwrap().len(), 2);
    }

    #[test]
    fn failing_record_hits_in_a_batch_leaves_no_rows() {
        let held = Held::new();
        let (store, f) = (&held.store, held.filter.clone());
        let answers: Vec<_> = [vec![hit(f.id)], vec![hit(f.id), hit(404)], vec![hit(f.id), hit(f.id)]]
            .into_iter()
            .map(|hits| {
                let (rows, dumps) = encode_hits(&hits).unwrap();
                store.submit(move |conn| insert_hits(conn, &rows, &dumps)).unwrap()
            })
            .collect();
        held.go();
        let results: Vec<_> = answers.into_iter().map(|a| a.recv().unwrap()).collect();
        assert_eq!(
            held.batches(),
            5,
            "gate, the three together (rolled back), the first again, the second alone, the third"
        );
        assert_eq!(results[0].as_ref().unwrap().len(), 1);
        assert!(matches!(
            results[1],
            Err(StoreError::NotFound {
                what: "filter",
                id: 404
            })
        ));
        assert_eq!(results[2].as_ref().unwrap().len(), 2);
        assert_eq!(store.get_filter(f.id).unwrap().hits, 3);
        assert_eq!(store.hits(&HitQuery::default()).unwrap().len(), 3);
    }

    #[test]
    fn hits_sent_without_waiting_are_answered_once_committed_or_refused() {
        let mut store = SqliteStore::open_in_memory().unwrap();
        let f = store.create_filter(&spec("f"), "A", 1).unwrap();
        let (done, answer) = mpsc::channel();
        let sent = done.clone();
        store.record_hits_then(&[hit(f.id), hit(f.id)], Box::new(move |ids| sent.send(ids).unwrap()));
        let ids = answer.recv().unwrap().unwrap();
        assert_eq!(ids.len(), 2);
        assert_eq!(
            store.hits(&HitQuery::default()).unwrap().len(),
            2,
            "committed when answered"
        );
        // A failing write is answered with its error, and leaves nothing.
        let sent = done.clone();
        store.record_hits_then(&[hit(404)], Box::new(move |ids| sent.send(ids).unwrap()));
        assert!(matches!(
            answer.recv().unwrap(),
            Err(StoreError::NotFound {
                what: "filter",
                id: 404
            })
        ));
        // No hits: answered at once.
        let sent = done.clone();
        store.record_hits_then(&[], Box::new(move |ids| sent.send(ids).unwrap()));
        assert_eq!(answer.recv().unwrap().unwrap(), Vec::<i64>::new());
        // With the writer gone the answer is a refusal, not silence.
        store.sender = None;
        store.record_hits_then(&[hit(f.id)], Box::new(move |ids| done.send(ids).unwrap()));
        assert!(matches!(answer.recv().unwrap(), Err(StoreError::Backend(_))));
        assert_eq!(store.get_filter(f.id).unwrap().hits, 2);
    }

    #[test]
    fn writes_after_drop_of_queue_are_refused_not_panicking() {
        let mut store = SqliteStore::open_in_memory().unwrap();
        store.sender = None;
        assert!(matches!(
            store.create_filter(&spec("f"), "A", 1),
            Err(StoreError::Backend(_))
        ));
    }

    #[test]
    fn unreadable_rows_are_errors_not_panics() {
        let store = SqliteStore::open_in_memory().unwrap();
        let f = store.create_filter(&spec("f"), "A", 1).unwrap();
        store
            .write(move |conn| {
                conn.execute("UPDATE filters SET actions = 'not json' WHERE id = ?1", [f.id])
                    .and_then(|_| conn.execute("UPDATE filter_versions SET change = 'weird' WHERE id = ?1", [f.id]))
                    .map_err(|e| sql_error("setup", e))
            })
            .unwrap();
        let err = store.get_filter(f.id).unwrap_err();
        assert!(
            matches!(&err, StoreError::Backend(m) if m.contains("actions JSON")),
            "{err}"
        );
        let err = store.filter_history(f.id).unwrap_err();
        assert!(
            matches!(&err, StoreError::Backend(m) if m.contains("unknown change kind")),
            "{err}"
        );
    }

    #[test]
    fn change_names_round_trip() {
        for change in [Change::Create, Change::Update, Change::Delete, Change::Import] {
            assert_eq!(change_from_str(change_to_str(change)), Some(change));
            // The stored name is the serde name, so the API and the database agree.
            assert_eq!(serde_json::to_value(change).unwrap(), change_to_str(change));
        }
    }
}
