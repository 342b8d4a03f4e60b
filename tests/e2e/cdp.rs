//! A minimal Chrome DevTools Protocol client for the end-to-end tests.
//!
//! It drives Debian's Chromium headless over `--remote-debugging-pipe`: Chromium reads CDP
//! messages (JSON, each terminated by a NUL byte) from fd 3 and writes replies and events the
//! same way on fd 4. The workspace forbids `unsafe`, so the fds cannot be set up with
//! `pre_exec`/`dup2`; instead two FIFOs are created in a temporary directory and a shell opens
//! them onto fds 3 and 4 before `exec`ing Chromium.
//!
//! FIFO ordering: this side opens the input FIFO read-write (on Linux that never blocks, and it
//! lets the shell's read-only open of it return at once), then a reader thread opens the output
//! FIFO read-only, which blocks only until the shell has opened it for writing. Nothing here
//! waits on the shell, so a Chromium that fails to start shows up as a timed-out or closed
//! connection (with the tail of its log) rather than a hang.
//!
//! Everything waits at most [`DEFAULT_TIMEOUT`] unless told otherwise, and every failure is a
//! `String` that says what was being done.

use serde_json::{json, Value};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long any single wait lasts unless a caller passes its own timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// How often [`Page::wait_for`] and [`Page::navigate`] re-check their condition.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Chromium binaries tried in order (after `$WIKIGUARD_CHROMIUM`). The real binary comes first:
/// Debian's `/usr/bin/chromium` wrapper adds extension and GPU flags the tests do not want.
const CHROMIUM_CANDIDATES: &[&str] = &["/usr/lib/chromium/chromium", "/usr/bin/chromium"];

/// A headless Chromium with a CDP connection to it. Dropping it closes Chromium (politely, then
/// by killing its process group) and removes its temporary directory.
pub struct Browser {
    conn: Arc<Conn>,
    child: Child,
    dir: PathBuf,
}

/// One tab, attached with a flattened CDP session. It holds its own handle on the connection, so
/// it may outlive borrows of the [`Browser`]; once the browser is dropped its calls fail.
pub struct Page {
    conn: Arc<Conn>,
    session_id: String,
    target_id: String,
}

/// The connection shared by a browser and its pages.
struct Conn {
    state: Mutex<ConnState>,
    /// False once Chromium's output closed or the browser is being dropped.
    alive: AtomicBool,
    log: PathBuf,
}

struct ConnState {
    /// The write side of Chromium's fd 3 (opened read-write so the open never blocks).
    input: File,
    /// Messages parsed by the reader thread.
    messages: Receiver<Incoming>,
    next_id: u64,
}

enum Incoming {
    Message(Value),
    /// Chromium's output closed (it exited) or sent something unreadable.
    Closed(String),
}

impl Browser {
    /// Whether a Chromium binary is installed; tests skip (with a printed message) when not.
    pub fn available() -> bool {
        chromium_binary().is_some()
    }

    /// Starts headless Chromium on a fresh profile in a temporary directory and checks the CDP
    /// connection with `Browser.getVersion`.
    pub fn launch() -> Result<Browser, String> {
        let binary = chromium_binary().ok_or("no Chromium binary found (apt-get install chromium)")?;
        let dir = temp_dir()?;
        match Self::launch_in(&binary, &dir) {
            Ok(browser) => Ok(browser),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    fn launch_in(binary: &Path, dir: &Path) -> Result<Browser, String> {
        let (in_fifo, out_fifo) = (dir.join("cdp-in"), dir.join("cdp-out"));
        for fifo in [&in_fifo, &out_fifo] {
            let status = Command::new("mkfifo")
                .arg(fifo)
                .status()
                .map_err(|e| format!("running mkfifo: {e}"))?;
            if !status.success() {
                return Err(format!("mkfifo {} failed: {status}", fifo.display()));
            }
        }
        // Read-write: does not block, and gives the shell's `3<cdp-in` a writer to find.
        let input = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&in_fifo)
            .map_err(|e| format!("opening {}: {e}", in_fifo.display()))?;
        let log = dir.join("chromium.log");
        let log_file = File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        let profile = dir.join("profile");

        let mut command = Command::new("sh");
        command
            .current_dir(dir)
            .arg("-c")
            .arg(r#"exec "$@" 3<cdp-in 4>cdp-out"#)
            .arg("sh")
            .arg(binary)
            .args([
                "--headless=new",
                "--remote-debugging-pipe",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--disable-features=Translate,MediaRouter,OptimizationHints",
                "--password-store=basic",
                "--use-mock-keychain",
                "--mute-audio",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(
                log_file
                    .try_clone()
                    .map_err(|e| format!("duplicating the log fd: {e}"))?,
            )
            .stderr(log_file)
            // Its own process group, so that Drop can kill Chromium's helper processes too.
            .process_group(0);
        let child = command
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;

        let (sender, messages) = mpsc::channel();
        let reader_fifo = out_fifo.clone();
        thread::Builder::new()
            .name("cdp-reader".into())
            .spawn(move || read_messages(&reader_fifo, &sender))
            .map_err(|e| format!("starting the CDP reader thread: {e}"))?;

        let conn = Arc::new(Conn {
            state: Mutex::new(ConnState {
                input,
                messages,
                next_id: 1,
            }),
            alive: AtomicBool::new(true),
            log,
        });
        let browser = Browser {
            conn,
            child,
            dir: dir.to_path_buf(),
        };
        // Dropping `browser` on failure kills Chromium and (via `launch`) removes the directory.
        browser
            .call(None, "Browser.getVersion", json!({}))
            .map_err(|e| format!("Chromium did not answer: {e}"))?;
        Ok(browser)
    }

    /// Sends a CDP command (to the browser, or to a page's flattened session) and waits up to
    /// [`DEFAULT_TIMEOUT`] for its reply; returns the reply's `result`. Events that arrive
    /// meanwhile are dropped (nothing here waits for one: pages are polled).
    pub fn call(&self, session: Option<&str>, method: &str, params: Value) -> Result<Value, String> {
        self.conn.call(session, method, params, DEFAULT_TIMEOUT)
    }

    /// Opens a new tab on `about:blank`, attaches to it and enables its Page and Runtime domains.
    pub fn new_page(&self) -> Result<Page, String> {
        let created = self.call(None, "Target.createTarget", json!({"url": "about:blank"}))?;
        let target_id = str_field(&created, "targetId", "Target.createTarget")?;
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        )?;
        let session_id = str_field(&attached, "sessionId", "Target.attachToTarget")?;
        let page = Page {
            conn: Arc::clone(&self.conn),
            session_id,
            target_id,
        };
        page.call("Page.enable", json!({}))?;
        page.call("Runtime.enable", json!({}))?;
        Ok(page)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if self.conn.alive.load(Ordering::SeqCst) {
            self.conn.send_only(None, "Browser.close", json!({}));
        }
        self.conn.alive.store(false, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) => thread::sleep(Duration::from_millis(20)),
            }
        }
        // Whatever is left of Chromium's process group (renderers, zygote), then Chromium itself.
        let group = self.child.id();
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -KILL -- -{group} 2>/dev/null"))
            .stdin(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        // If the reader thread never connected, give its blocked open a writer so it ends.
        if let Ok(unblock) = OpenOptions::new().read(true).write(true).open(self.dir.join("cdp-out")) {
            drop(unblock);
        }
        if std::env::var_os("WIKIGUARD_CDP_KEEP").is_some() {
            eprintln!("cdp: keeping {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Page {
    /// Sends a CDP command in this page's session; see [`Browser::call`].
    pub fn call(&self, method: &str, params: Value) -> Result<Value, String> {
        self.conn.call(Some(&self.session_id), method, params, DEFAULT_TIMEOUT)
    }

    /// Navigates to `url` and waits (up to [`DEFAULT_TIMEOUT`]) until the new document has
    /// loaded (`document.readyState === 'complete'`). Fails on a network error such as
    /// `net::ERR_CONNECTION_REFUSED`.
    pub fn navigate(&self, url: &str) -> Result<(), String> {
        self.navigate_timeout(url, DEFAULT_TIMEOUT)
    }

    /// [`Page::navigate`] with its own timeout.
    pub fn navigate_timeout(&self, url: &str, timeout: Duration) -> Result<(), String> {
        // A marker on the old document's window tells it apart from the new one, whose
        // readyState is the one to wait for (about:blank's is 'complete' right away).
        self.eval("window.__cdpOldDocument = true")?;
        let reply = self.call("Page.navigate", json!({"url": url}))?;
        if let Some(error) = reply.get("errorText").and_then(Value::as_str) {
            if !error.is_empty() {
                return Err(format!("navigating to {url}: {error}"));
            }
        }
        if reply.get("loaderId").is_none() {
            return Ok(()); // A same-document navigation (only the fragment changed).
        }
        self.wait_for(
            "!window.__cdpOldDocument && document.readyState === 'complete'",
            timeout,
        )
        .map_err(|e| format!("navigating to {url}: {e}"))
    }

    /// Evaluates `js` in the page (promises are awaited) and returns its value as JSON
    /// (`Null` for `undefined`). A thrown exception or rejected promise is an error carrying
    /// the exception's text.
    pub fn eval(&self, js: &str) -> Result<Value, String> {
        self.eval_timeout(js, DEFAULT_TIMEOUT)
    }

    /// [`Page::eval`] with its own timeout.
    pub fn eval_timeout(&self, js: &str, timeout: Duration) -> Result<Value, String> {
        let params = json!({
            "expression": js,
            "returnByValue": true,
            "awaitPromise": true,
            "userGesture": true,
        });
        let reply = self
            .conn
            .call(Some(&self.session_id), "Runtime.evaluate", params, timeout)?;
        if let Some(details) = reply.get("exceptionDetails") {
            return Err(format!(
                "evaluating `{}`: {}",
                shorten(js, 200),
                exception_text(details)
            ));
        }
        Ok(reply
            .get("result")
            .and_then(|r| r.get("value"))
            .cloned()
            .unwrap_or(Value::Null))
    }

    /// Polls the JavaScript expression `condition` until it is truthy. Errors while polling
    /// (an exception, a document that is being replaced) count as "not yet"; the last one is
    /// reported if time runs out.
    pub fn wait_for(&self, condition: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let expression = format!("!!({condition})");
        let mut last_error = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.eval_timeout(&expression, left.max(Duration::from_millis(500))) {
                Ok(Value::Bool(true)) => return Ok(()),
                Ok(_) => {}
                Err(e) if !self.conn.alive.load(Ordering::SeqCst) => return Err(e),
                Err(e) => last_error = Some(e),
            }
            if Instant::now() >= deadline {
                let last = last_error.map(|e| format!(" (last error: {e})")).unwrap_or_default();
                return Err(format!(
                    "timed out after {timeout:?} waiting for `{}`{last}",
                    shorten(condition, 200)
                ));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Enables the WebAuthn domain and adds a virtual CTAP2 platform authenticator that holds
    /// resident keys, verifies the user and answers without any prompt; returns its id.
    pub fn add_virtual_authenticator(&self) -> Result<String, String> {
        self.call("WebAuthn.enable", json!({}))?;
        let reply = self.call(
            "WebAuthn.addVirtualAuthenticator",
            json!({"options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserVerified": true,
                "automaticPresenceSimulation": true,
            }}),
        )?;
        str_field(&reply, "authenticatorId", "WebAuthn.addVirtualAuthenticator")
    }

    /// The credentials a virtual authenticator holds (`WebAuthn.getCredentials`): objects with
    /// `credentialId`, `isResidentCredential`, `rpId`, `userHandle`, `signCount`, ….
    pub fn credentials(&self, authenticator_id: &str) -> Result<Vec<Value>, String> {
        let reply = self.call("WebAuthn.getCredentials", json!({"authenticatorId": authenticator_id}))?;
        match reply.get("credentials") {
            Some(Value::Array(credentials)) => Ok(credentials.clone()),
            _ => Err(format!("WebAuthn.getCredentials: no credentials array in {reply}")),
        }
    }

    /// Closes this tab.
    pub fn close(self) -> Result<(), String> {
        self.conn.call(
            None,
            "Target.closeTarget",
            json!({"targetId": self.target_id}),
            DEFAULT_TIMEOUT,
        )?;
        Ok(())
    }
}

impl Conn {
    fn call(&self, session: Option<&str>, method: &str, params: Value, timeout: Duration) -> Result<Value, String> {
        let mut state = self.lock();
        if !self.alive.load(Ordering::SeqCst) {
            return Err(format!("{method}: Chromium is gone{}", self.log_tail()));
        }
        let id = write_command(&mut state, session, method, params)
            .map_err(|e| format!("{method}: writing to Chromium: {e}"))?;

        let deadline = Instant::now() + timeout;
        loop {
            let message = self.next_message(&mut state, method, deadline, timeout)?;
            if message.get("id").and_then(Value::as_u64) != Some(id) {
                continue; // an event, or a late reply to a call that timed out
            }
            if let Some(error) = message.get("error") {
                let text = error.get("message").and_then(Value::as_str).unwrap_or("unknown error");
                let data = error
                    .get("data")
                    .and_then(Value::as_str)
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default();
                let code = error.get("code").map(Value::to_string).unwrap_or_default();
                return Err(format!("{method}: CDP error {code}: {text}{data}"));
            }
            return Ok(message.get("result").cloned().unwrap_or(Value::Null));
        }
    }

    /// Sends a command without waiting for its reply (which is later discarded).
    fn send_only(&self, session: Option<&str>, method: &str, params: Value) {
        let mut state = self.lock();
        let _ = write_command(&mut state, session, method, params);
    }

    /// The next message from Chromium, or an error naming `what` at the deadline or if
    /// Chromium went away.
    fn next_message(
        &self,
        state: &mut ConnState,
        what: &str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Value, String> {
        let left = deadline.saturating_duration_since(Instant::now());
        match state.messages.recv_timeout(left) {
            Ok(Incoming::Message(message)) => Ok(message),
            Ok(Incoming::Closed(why)) => {
                self.alive.store(false, Ordering::SeqCst);
                Err(format!("{what}: {why}{}", self.log_tail()))
            }
            Err(RecvTimeoutError::Timeout) => Err(format!("{what}: no answer within {timeout:?}")),
            Err(RecvTimeoutError::Disconnected) => {
                self.alive.store(false, Ordering::SeqCst);
                Err(format!("{what}: Chromium's connection is closed{}", self.log_tail()))
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ConnState> {
        // A panic elsewhere while holding the lock leaves the state usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The end of Chromium's log, for error messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        // Headless Chromium without a D-Bus complains about it at length; that is never the cause.
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.contains(":ERROR:dbus/"))
            .collect();
        if lines.is_empty() {
            return String::new();
        }
        let tail = lines[lines.len().saturating_sub(15)..].join("\n  ");
        format!("\nChromium's log ({}) ends:\n  {tail}", self.log.display())
    }
}

/// The reader thread: opens Chromium's output FIFO and forwards each NUL-terminated message.
fn read_messages(fifo: &Path, sender: &mpsc::Sender<Incoming>) {
    let file = match File::open(fifo) {
        Ok(file) => file,
        Err(e) => {
            let _ = sender.send(Incoming::Closed(format!("opening {}: {e}", fifo.display())));
            return;
        }
    };
    let mut reader = BufReader::new(file);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match reader.read_until(0, &mut buffer) {
            Ok(0) => {
                let _ = sender.send(Incoming::Closed("Chromium closed its CDP pipe (it exited)".into()));
                return;
            }
            Ok(_) => {
                if buffer.last() == Some(&0) {
                    buffer.pop();
                }
                let incoming = match serde_json::from_slice(&buffer) {
                    Ok(message) => Incoming::Message(message),
                    Err(e) => Incoming::Closed(format!(
                        "unreadable CDP message ({e}): {}",
                        shorten(&String::from_utf8_lossy(&buffer), 200)
                    )),
                };
                if sender.send(incoming).is_err() {
                    return; // The browser is gone.
                }
            }
            Err(e) => {
                let _ = sender.send(Incoming::Closed(format!("reading Chromium's CDP pipe: {e}")));
                return;
            }
        }
    }
}

/// Writes one NUL-terminated command and returns its id.
fn write_command(state: &mut ConnState, session: Option<&str>, method: &str, params: Value) -> std::io::Result<u64> {
    let id = state.next_id;
    state.next_id += 1;
    let mut message = json!({"id": id, "method": method, "params": params});
    if let Some(session) = session {
        message["sessionId"] = json!(session);
    }
    let mut bytes = message.to_string().into_bytes();
    bytes.push(0);
    state.input.write_all(&bytes)?;
    Ok(id)
}

fn chromium_binary() -> Option<PathBuf> {
    let from_env = std::env::var_os("WIKIGUARD_CHROMIUM").map(PathBuf::from);
    from_env
        .into_iter()
        .chain(CHROMIUM_CANDIDATES.iter().map(PathBuf::from))
        .find(|path| path.is_file())
}

fn temp_dir() -> Result<PathBuf, String> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = format!(
        "wikiguard-cdp-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    let dir = std::env::temp_dir().join(name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok(dir)
}

fn str_field(value: &Value, field: &str, method: &str) -> Result<String, String> {
    value
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("{method}: no {field} in {value}"))
}

/// The text of a `Runtime.ExceptionDetails`: the exception's description (message and stack)
/// when there is one, else CDP's summary.
fn exception_text(details: &Value) -> String {
    let exception = details.get("exception");
    let described = exception.and_then(|e| e.get("description")).and_then(Value::as_str);
    let value = exception.and_then(|e| e.get("value")).map(|v| v.to_string());
    let text = details.get("text").and_then(Value::as_str).unwrap_or("exception");
    described
        .map(str::to_owned)
        .or(value)
        .unwrap_or_else(|| text.to_owned())
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{cut}…")
}
