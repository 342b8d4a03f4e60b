//! The harness the integration tests share: a real `wikiguard serve` process on loopback and
//! an HTTP client for it.
#![allow(dead_code)] // each test binary uses a part

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const CHECK: &str = "check-token-0123456789abcdef";
pub const ADMIN: &str = "admin-token-0123456789abcdef";

pub struct Server {
    pub child: Child,
    pub base: String,
    pub dir: PathBuf,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_wikiguard")
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wikiguard-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Server {
    pub fn start(name: &str, env: &[(&str, &str)]) -> Server {
        Server::start_in(temp_dir(name), env)
    }

    pub fn start_in(dir: PathBuf, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(bin());
        cmd.arg("serve")
            .env_clear()
            .env("WIKIGUARD_LISTEN", "127.0.0.1:0")
            .env("WIKIGUARD_DATA_DIR", dir.join("data"))
            .env("WIKIGUARD_CHECK_TOKEN", CHECK)
            .env("WIKIGUARD_ADMIN_TOKEN", ADMIN)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            if v.is_empty() {
                cmd.env_remove(k);
            } else {
                cmd.env(k, v);
            }
        }
        let mut child = cmd.spawn().expect("wikiguard serve starts");
        let addr = listen_address(&mut child, "wikiguard serving", &dir.join("stderr.log"));
        Server {
            child,
            base: format!("http://{addr}"),
            dir,
        }
    }

    pub fn agent() -> ureq::Agent {
        ureq::Agent::config_builder().http_status_as_error(false).build().into()
    }

    pub fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<String>) -> (u16, Value) {
        let url = format!("{}{}", self.base, path);
        let agent = Self::agent();
        let auth = token.map(|t| format!("Bearer {t}"));
        let resp = match (method, body) {
            ("GET", _) => {
                let mut r = agent.get(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            ("DELETE", _) => {
                let mut r = agent.delete(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            (m, body) => {
                let mut r = if m == "PUT" { agent.put(&url) } else { agent.post(&url) };
                r = r.header("Content-Type", "application/json");
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.send(body.unwrap_or_default())
            }
        };
        let mut resp = resp.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    pub fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.call(method, path, Some(ADMIN), body.map(Value::to_string))
    }

    pub fn check(&self, action: &Value) -> Value {
        let (status, v) = self.call("POST", "/v1/check", Some(CHECK), Some(action.to_string()));
        assert_eq!(status, 200, "{v}");
        v
    }

    pub fn create(&self, filter: &Value) -> i64 {
        let (status, v) = self.admin("POST", "/v1/filters", Some(filter));
        assert_eq!(status, 201, "{v}");
        v["id"].as_i64().unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A password's SHA-1 in upper-case hex, as Pwned Passwords lists and `/v1/passwords/check`
/// take it.
pub fn sha1_hex(s: &str) -> String {
    use sha1::Digest;
    sha1::Sha1::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// Runs `wikiguard ARGS…` with a clean environment and `dir/data` as its data directory, as
/// an operator runs the offline commands before starting the service there; panics with the
/// command's stderr when it fails, and returns its output.
pub fn run_in_data_dir<S: AsRef<std::ffi::OsStr>>(dir: &std::path::Path, args: &[S]) -> std::process::Output {
    let out = Command::new(bin())
        .args(args)
        .env_clear()
        .env("WIKIGUARD_DATA_DIR", dir.join("data"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Writes `text` (a Pwned Passwords list) to `dir/pwned.txt` and runs `wikiguard passwords
/// import` on it into `dir/data`.
pub fn import_passwords(dir: &std::path::Path, text: &str) -> std::process::Output {
    std::fs::write(dir.join("pwned.txt"), text).unwrap();
    run_in_data_dir(
        dir,
        &[
            std::ffi::OsStr::new("passwords"),
            "import".as_ref(),
            dir.join("pwned.txt").as_os_str(),
        ],
    )
}

/// Reads the child's stderr (JSON log lines) until the line whose message is `serving`, and
/// returns its `listen` address; then keeps draining stderr into `log` (so the child never
/// blocks on a full pipe, and tests can read what it logged), one appended line at a time.
pub fn listen_address(child: &mut Child, serving: &str, log: &std::path::Path) -> String {
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    let addr = loop {
        assert!(
            Instant::now() < deadline,
            "no {serving:?} line; stderr so far: {seen:?}"
        );
        let Some(Ok(line)) = lines.next() else {
            panic!("the process exited before {serving:?}; stderr: {seen:?}");
        };
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            if v["message"] == serving {
                break v["listen"].as_str().unwrap().to_string();
            }
        }
        seen.push(line);
    };
    let mut file = std::fs::File::create(log).expect("the log file can be created");
    std::thread::spawn(move || {
        use std::io::Write;
        for l in lines.map_while(Result::ok) {
            let _ = writeln!(file, "{l}");
        }
    });
    addr
}

/// A real `redis-server` on a free loopback port, stopped on drop.
pub struct RedisProc {
    pub child: Child,
    pub port: u16,
}

impl Drop for RedisProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts one, or `None` when redis-server is not installed.
pub fn start_redis() -> Option<RedisProc> {
    let bin = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new(bin)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(RedisProc { child, port })
}

/// `v` is a refusal (`"ok": false`) for `reason`.
#[track_caller]
pub fn assert_refused(v: &Value, reason: &str) {
    assert_eq!(
        (v["ok"].clone(), v["reason"].clone()),
        (Value::Bool(false), Value::from(reason)),
        "{v}"
    );
}
