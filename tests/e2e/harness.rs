//! A real wiki for the end-to-end tests: Debian's MediaWiki (`/usr/share/mediawiki`) installed
//! with SQLite into a temp dir, its own `LocalSettings.php` chosen with `MW_CONFIG_FILE` (the
//! system install is never touched), the WikiGuard extension loaded from this checkout, served
//! by PHP's built-in server on 127.0.0.1; and an Action API client with its own cookie jar.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const MW: &str = "/usr/share/mediawiki";
pub const ADMIN_USER: &str = "Admin";
pub const ADMIN_PASS: &str = "Admin-pass-e2e-12345";

/// Whether this machine has what the tests need (Debian's MediaWiki and PHP's CLI).
pub fn available() -> bool {
    Path::new(MW).join("maintenance/install.php").exists()
        && Command::new("php")
            .arg("-v")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// Skips the calling test with a message when MediaWiki is not installed (scripts/test
/// installs it; a plain `cargo test` on a machine without it still passes).
#[macro_export]
macro_rules! require_mediawiki {
    () => {
        if !$crate::harness::available() {
            eprintln!("MediaWiki or PHP not installed (scripts/test installs them); skipped");
            return;
        }
    };
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// One test wiki and its PHP server, stopped on drop.
pub struct Wiki {
    pub dir: PathBuf,
    pub base: String,
    pub port: u16,
    php: Child,
}

/// How to set a wiki up.
pub struct WikiOptions<'a> {
    /// Host name in `$wgServer` (WebAuthn wants `localhost`, not an IP).
    pub host: &'a str,
    /// The wikiguard service's address.
    pub service: &'a str,
    /// The check token.
    pub token: &'a str,
    /// More PHP appended to LocalSettings.php.
    pub settings: &'a str,
}

impl Wiki {
    pub fn start(name: &str, opts: WikiOptions<'_>) -> Wiki {
        Wiki::start_with(name, opts, true)
    }

    /// A wiki on 127.0.0.1 with the extension talking to `service`, plus `settings`.
    pub fn for_service(name: &str, service: &crate::common::Server, settings: &str) -> Wiki {
        Wiki::start(
            name,
            WikiOptions {
                host: "127.0.0.1",
                service: &service.base,
                token: crate::common::CHECK,
                settings,
            },
        )
    }

    /// A wiki that loads WikiGuard only if `extension` (else its settings are still there,
    /// unused, so `runtime.php` can load it, or another extension, per request).
    pub fn start_with(name: &str, opts: WikiOptions<'_>, extension: bool) -> Wiki {
        let dir = std::env::temp_dir().join(format!("wikiguard-e2e-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("db")).unwrap();
        std::fs::create_dir_all(dir.join("images")).unwrap();
        let port = free_port();
        let server = format!("http://{}:{port}", opts.host);
        let conf = dir.join("LocalSettings.php");
        let out = Command::new("php")
            .arg(format!("{MW}/maintenance/install.php"))
            .args(["--dbtype", "sqlite", "--dbpath"])
            .arg(dir.join("db"))
            .args([
                "--server",
                &server,
                "--scriptpath",
                "",
                "--lang",
                "en",
                "--pass",
                ADMIN_PASS,
            ])
            .arg("--confpath")
            .arg(&dir)
            .args(["E2EWiki", ADMIN_USER])
            .env("MW_CONFIG_FILE", &conf)
            .output()
            .expect("php runs");
        assert!(
            out.status.success() && conf.exists(),
            "install.php failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let ext = checkout().join("mediawiki/WikiGuard/extension.json");
        let mut ls = std::fs::read_to_string(&conf).unwrap();
        ls.push_str(&format!(
            r#"
# --- wikiguard e2e ---
$wgMainCacheType = CACHE_ACCEL;
$wgSessionCacheType = CACHE_DB;
$wgCdnServers = [ '127.0.0.1' ];
$wgEnableUploads = true;
$wgUploadDirectory = '{images}';
$wgUploadPath = '/e2e-images';
$wgFileExtensions[] = 'svg';
$wgSVGNativeRendering = true;
$wgShowExceptionDetails = true;
$wgDebugLogGroups['WikiGuard'] = '{dir}/wikiguard.log';
$wgDebugLogGroups['exception'] = '{dir}/exception.log';
$wgDebugLogGroups['error'] = '{dir}/exception.log';
$wgEnableEmail = false;
$wgRateLimits = [];
$wgAccountCreationThrottle = [];
$wgPasswordAttemptThrottle = [];
$wgGroupPermissions['*']['createaccount'] = true;
$wgGroupPermissions['*']['edit'] = true;
{load}wfLoadExtension( 'WikiGuard', '{ext}' );
$wgWikiGuardServiceUrl = '{service}';
$wgWikiGuardToken = '{token}';
$wgWikiGuardTimeoutMs = 2000;
$wgWikiGuardVariablesCacheSeconds = 0;
{settings}
# Read anew on every request: eval, because opcache would serve a stale copy of a require.
if ( is_file( '{dir}/runtime.php' ) ) {{ eval( '?>' . file_get_contents( '{dir}/runtime.php' ) ); }}
"#,
            images = dir.join("images").display(),
            dir = dir.display(),
            ext = ext.display(),
            load = if extension { "" } else { "# " },
            service = opts.service,
            token = opts.token,
            settings = opts.settings,
        ));
        std::fs::write(&conf, ls).unwrap();
        let php = Command::new("php")
            .args(["-d", "apc.enable_cli=1", "-d", "variables_order=EGPCS", "-S"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-t")
            .arg(MW)
            .env("MW_CONFIG_FILE", &conf)
            .env("PHP_CLI_SERVER_WORKERS", "4")
            // Its own process group: the workers it forks die with it (see Drop).
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("php-server.log")).unwrap())
            .spawn()
            .expect("php -S starts");
        let wiki = Wiki {
            dir,
            base: format!("http://127.0.0.1:{port}"),
            port,
            php,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = ureq::get(&format!("{}/api.php?action=query&meta=siteinfo&format=json", wiki.base))
                .call()
                .is_ok();
            if ok {
                break;
            }
            assert!(Instant::now() < deadline, "the wiki did not come up; {}", wiki.logs());
            std::thread::sleep(Duration::from_millis(100));
        }
        wiki
    }

    /// Replaces the settings read on every request after LocalSettings.php (the PHP server
    /// reads files anew for each request).
    pub fn set_runtime(&self, php: &str) {
        std::fs::write(self.dir.join("runtime.php"), format!("<?php\n{php}\n")).unwrap();
    }

    /// Runs a maintenance script of this wiki.
    pub fn maintenance(&self, script: &str, args: &[&str]) -> String {
        let out = Command::new("php")
            .arg(format!("{MW}/maintenance/{script}"))
            .args(args)
            .env("MW_CONFIG_FILE", self.dir.join("LocalSettings.php"))
            .output()
            .expect("php runs");
        assert!(
            out.status.success(),
            "{script} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Creates an account from the command line (with groups), as an operator would.
    pub fn create_user(&self, name: &str, password: &str, groups: &[&str]) {
        let mut args: Vec<String> = vec!["--force".into()];
        let mut custom = Vec::new();
        for g in groups {
            match *g {
                "sysop" | "bureaucrat" | "bot" | "interface-admin" => args.push(format!("--{g}")),
                other => custom.push(other),
            }
        }
        if !custom.is_empty() {
            args.push(format!("--custom-groups={}", custom.join(",")));
        }
        args.push(name.into());
        args.push(password.into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.maintenance("createAndPromote.php", &args);
    }

    /// The extension's log channel and PHP's errors, for failure messages.
    pub fn logs(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        format!(
            "\n--- wikiguard.log\n{}\n--- exception.log\n{}\n--- php-server.log (tail)\n{}",
            read("wikiguard.log"),
            read("exception.log"),
            read("php-server.log")
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .join("\n")
        )
    }

    pub fn wikiguard_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("wikiguard.log")).unwrap_or_default()
    }

    /// A client with no cookies (a logged-out visitor), from 127.0.0.1.
    pub fn client(&self) -> Api {
        Api {
            base: self.base.clone(),
            cookies: BTreeMap::new(),
            forwarded_for: None,
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .timeout_global(Some(Duration::from_secs(60)))
                .build()
                .into(),
        }
    }

    /// A client that MediaWiki sees at `ip` (sent as X-Forwarded-For from a trusted proxy).
    pub fn client_from(&self, ip: &str) -> Api {
        let mut c = self.client();
        c.forwarded_for = Some(ip.to_string());
        c
    }

    /// A client logged in (clientlogin) as `user`.
    pub fn login(&self, user: &str, password: &str) -> Api {
        self.login_as(self.client(), user, password)
    }

    /// A client at `ip` logged in as `user`.
    pub fn login_from(&self, ip: &str, user: &str, password: &str) -> Api {
        self.login_as(self.client_from(ip), user, password)
    }

    fn login_as(&self, mut c: Api, user: &str, password: &str) -> Api {
        let v = c.clientlogin(user, password, &[]);
        assert_eq!(
            v["clientlogin"]["status"],
            "PASS",
            "login as {user}: {v}{}",
            self.logs()
        );
        c
    }
}

impl Drop for Wiki {
    fn drop(&mut self) {
        // The whole group: killing the parent alone leaves PHP_CLI_SERVER_WORKERS running.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.php.id())])
            .status();
        let _ = self.php.kill();
        let _ = self.php.wait();
        if std::env::var_os("WIKIGUARD_E2E_KEEP").is_none() && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// An Action API client: form posts, JSON answers, its own cookies.
pub struct Api {
    pub base: String,
    pub cookies: BTreeMap<String, String>,
    pub forwarded_for: Option<String>,
    agent: ureq::Agent,
}

fn form(params: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (k, v) in params {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&urlencode(k));
        out.push('=');
        out.push_str(&urlencode(v));
    }
    out
}

pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl Api {
    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, resp: &ureq::http::Response<ureq::Body>) {
        for h in resp.headers().get_all("set-cookie") {
            let Ok(h) = h.to_str() else { continue };
            let first = h.split(';').next().unwrap_or("");
            if let Some((k, v)) = first.split_once('=') {
                let expired = h.to_ascii_lowercase().contains("expires=thu, 01 jan 1970") || v == "deleted";
                if expired || v.is_empty() {
                    self.cookies.remove(k.trim());
                } else {
                    self.cookies.insert(k.trim().to_string(), v.trim().to_string());
                }
            }
        }
    }

    /// A raw request to any path of the wiki: (status, headers, body).
    pub fn request(&mut self, method: &str, path: &str, content_type: Option<&str>, body: Vec<u8>) -> (u16, String) {
        let url = format!("{}{}", self.base, path);
        let cookie = self.cookie_header();
        let resp = if method == "GET" {
            let mut r = self.agent.get(&url).header("User-Agent", "wikiguard-e2e/1.0");
            if !cookie.is_empty() {
                r = r.header("Cookie", &cookie);
            }
            if let Some(ip) = &self.forwarded_for {
                r = r.header("X-Forwarded-For", ip);
            }
            r.call()
        } else {
            let mut r = self.agent.post(&url).header("User-Agent", "wikiguard-e2e/1.0");
            if !cookie.is_empty() {
                r = r.header("Cookie", &cookie);
            }
            if let Some(ip) = &self.forwarded_for {
                r = r.header("X-Forwarded-For", ip);
            }
            if let Some(ct) = content_type {
                r = r.header("Content-Type", ct);
            }
            r.send(&body[..])
        };
        let mut resp = resp.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        self.keep_cookies(&resp);
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        (status, text)
    }

    fn json(text: &str) -> Value {
        serde_json::from_str(text).unwrap_or_else(|_| panic!("not JSON from the API: {text}"))
    }

    /// GET api.php with these parameters (format=json added).
    pub fn get(&mut self, params: &[(&str, &str)]) -> Value {
        let mut p = params.to_vec();
        p.push(("format", "json"));
        p.push(("formatversion", "2"));
        let (_, text) = self.request("GET", &format!("/api.php?{}", form(&p)), None, Vec::new());
        Self::json(&text)
    }

    /// POST api.php with these parameters (format=json added).
    pub fn post(&mut self, params: &[(&str, &str)]) -> Value {
        let mut p = params.to_vec();
        p.push(("format", "json"));
        p.push(("formatversion", "2"));
        let (_, text) = self.post_form("/api.php", &p);
        Self::json(&text)
    }

    /// POSTs a form (`application/x-www-form-urlencoded`) to any path, as a browser submits
    /// one: (status, body).
    pub fn post_form(&mut self, path: &str, params: &[(&str, &str)]) -> (u16, String) {
        self.request(
            "POST",
            path,
            Some("application/x-www-form-urlencoded"),
            form(params).into_bytes(),
        )
    }

    /// A token of this type (`csrf`, `login`, `createaccount`).
    pub fn token(&mut self, kind: &str) -> String {
        let v = self.get(&[("action", "query"), ("meta", "tokens"), ("type", kind)]);
        v["query"]["tokens"][format!("{kind}token")]
            .as_str()
            .unwrap_or_else(|| panic!("no {kind} token: {v}"))
            .to_string()
    }

    /// action=clientlogin, first step; `extra` adds fields.
    pub fn clientlogin(&mut self, user: &str, password: &str, extra: &[(&str, &str)]) -> Value {
        let token = self.token("login");
        let mut p = vec![
            ("action", "clientlogin"),
            ("username", user),
            ("password", password),
            ("loginreturnurl", "http://127.0.0.1/"),
            ("logintoken", token.as_str()),
        ];
        p.extend_from_slice(extra);
        self.post(&p)
    }

    /// action=clientlogin, a continuation step with these fields.
    pub fn clientlogin_continue(&mut self, fields: &[(&str, &str)]) -> Value {
        let token = self.token("login");
        let mut p = vec![
            ("action", "clientlogin"),
            ("logincontinue", "1"),
            ("logintoken", token.as_str()),
        ];
        p.extend_from_slice(fields);
        self.post(&p)
    }

    /// action=createaccount.
    pub fn create_account(&mut self, user: &str, password: &str) -> Value {
        let token = self.token("createaccount");
        self.post(&[
            ("action", "createaccount"),
            ("username", user),
            ("password", password),
            ("retype", password),
            ("createreturnurl", "http://127.0.0.1/"),
            ("createtoken", &token),
        ])
    }

    /// action=edit; `extra` adds parameters (minor, …).
    pub fn edit(&mut self, title: &str, text: &str, summary: &str) -> Value {
        self.edit_with(title, text, summary, &[])
    }

    pub fn edit_with(&mut self, title: &str, text: &str, summary: &str, extra: &[(&str, &str)]) -> Value {
        let token = self.token("csrf");
        let mut p = vec![
            ("action", "edit"),
            ("title", title),
            ("text", text),
            ("summary", summary),
            ("token", token.as_str()),
        ];
        p.extend_from_slice(extra);
        self.post(&p)
    }

    /// action=move.
    pub fn move_page(&mut self, from: &str, to: &str, reason: &str) -> Value {
        let token = self.token("csrf");
        self.post(&[
            ("action", "move"),
            ("from", from),
            ("to", to),
            ("reason", reason),
            ("token", &token),
        ])
    }

    /// action=delete.
    pub fn delete(&mut self, title: &str, reason: &str) -> Value {
        let token = self.token("csrf");
        self.post(&[
            ("action", "delete"),
            ("title", title),
            ("reason", reason),
            ("token", &token),
        ])
    }

    /// action=upload of one file (multipart/form-data).
    pub fn upload(&mut self, filename: &str, bytes: &[u8], text: &str, comment: &str) -> Value {
        let token = self.token("csrf");
        let boundary = "----wikiguard-e2e-boundary-7d1f";
        let mut body = Vec::new();
        let fields = [
            ("action", "upload"),
            ("filename", filename),
            ("text", text),
            ("comment", comment),
            ("ignorewarnings", "1"),
            ("format", "json"),
            ("formatversion", "2"),
            ("token", token.as_str()),
        ];
        for (k, v) in fields {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let (_, text) = self.request(
            "POST",
            "/api.php",
            Some(&format!("multipart/form-data; boundary={boundary}")),
            body,
        );
        Self::json(&text)
    }
}
