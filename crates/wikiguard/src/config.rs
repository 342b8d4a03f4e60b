//! `wikiguard.toml`: every key with a default that serves a small wiki, `WIKIGUARD_…`
//! environment overrides, and the validation that turns the raw file into ready settings.
//!
//! [`RawConfig`] is what the file says (serde, unknown keys refused); [`Settings`] is what the
//! service runs with (tokens read from their files, paths resolved). `wikiguard config check`
//! runs the same path and prints what it found.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// The configuration file as written. Every field has a default; see `docs/configuration.md`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    /// Address the HTTP API listens on.
    pub listen: String,
    /// Directory for the SQLite database (and a generated check token).
    pub data_dir: String,
    /// Bearer token MediaWiki sends to the check API. Empty: read `check_token_file`, else a
    /// random token is generated into `<data_dir>/check_token` on first start.
    pub check_token: String,
    /// File holding the check token (first line).
    pub check_token_file: String,
    /// Bearer token for filter management and the hit log. Empty and no file: the admin API
    /// answers 401 to everyone (it is never open).
    pub admin_token: String,
    /// File holding the admin token (first line).
    pub admin_token_file: String,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// How many recent actions to keep for "test against recent actions".
    pub recent_actions: usize,
    /// The filter engine.
    pub engine: EngineConfig,
    /// The database.
    pub store: StoreConfig,
    /// The accounts door (second factors, passwords, login throttling).
    pub accounts: crate::accounts_api::AccountsConfig,
    /// Redis URL (`redis://127.0.0.1:6379/0`) for counters shared by several nodes (the gate's
    /// rate limits); empty: counters live in this process's memory.
    pub redis: String,
    /// The gate (bot defence in front of MediaWiki); absent: `serve` runs no gate. See
    /// `docs/gate.md` for its keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<wikiguard_gate::GateConfig>,
    /// Logging.
    pub log: LogConfig,
}

/// `[store]`: the SQLite database under `data_dir`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `full`: every commit (a check's hits) is fsynced before the answer, and survives a power
    /// cut. `normal`: committed to the write-ahead log before the answer; survives a crash of
    /// wikiguard, not of the machine, and is several times faster on slow disks.
    pub durability: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            durability: "full".into(),
        }
    }
}

/// `[engine]`: how filters are evaluated.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// AbuseFilter's condition limit per action (`$wgAbuseFilterConditionLimit`); 0 turns it off.
    pub condition_limit: usize,
    /// Wikimedia's Equivset JSON file for `ccnorm`/`norm`; empty: the built-in table.
    pub equivset: String,
    /// Variables other extensions provide (e.g. `global_user_groups`), accepted in rules.
    pub extra_variables: Vec<String>,
    /// Longest filter pattern accepted, in bytes.
    pub max_rule_bytes: usize,
    /// How long a warning stays "shown" for the resubmission to pass it, in seconds.
    pub warn_ttl_seconds: u64,
    /// Most throttle/warning counters kept in memory (oldest evicted first).
    pub counters_max_keys: usize,
}

/// `[log]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug` or `trace` (or a tracing filter such as `wikiguard=debug`).
    pub level: String,
    /// `json` (one object a line) or `text`.
    pub format: String,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            listen: "127.0.0.1:8750".into(),
            data_dir: "wikiguard-data".into(),
            check_token: String::new(),
            check_token_file: String::new(),
            admin_token: String::new(),
            admin_token_file: String::new(),
            max_body_bytes: 4 * 1024 * 1024,
            recent_actions: 1000,
            engine: EngineConfig::default(),
            store: StoreConfig::default(),
            accounts: crate::accounts_api::AccountsConfig::default(),
            redis: String::new(),
            gate: None,
            log: LogConfig::default(),
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            condition_limit: 1000,
            equivset: String::new(),
            extra_variables: Vec::new(),
            max_rule_bytes: 64 * 1024,
            warn_ttl_seconds: 3600,
            counters_max_keys: 100_000,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: "json".into(),
        }
    }
}

/// A secret that never prints.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    /// The secret's bytes, for a constant-time comparison.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where the check token came from, for the start-up log line (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `check_token` / `WIKIGUARD_CHECK_TOKEN`.
    Config,
    /// A token file.
    File(PathBuf),
    /// Generated on first start into this file.
    Generated(PathBuf),
}

/// Ready-to-run settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// The check API's token.
    pub check_token: Secret,
    /// Where it came from.
    pub check_token_source: TokenSource,
    /// The admin token; `None`: admin API refused.
    pub admin_token: Option<Secret>,
    /// Body limit.
    pub max_body_bytes: usize,
    /// Recent actions kept.
    pub recent_actions: usize,
    /// Engine settings as written.
    pub engine: EngineConfig,
    /// Store durability.
    pub durability: wikiguard_store::Durability,
    /// The accounts door's settings.
    pub accounts: crate::accounts_api::AccountsConfig,
    /// Log settings.
    pub log: LogConfig,
}

/// Environment variable names, the key paths they override and the keys' default values,
/// built from the defaults so every key has one: `WIKIGUARD_LISTEN`,
/// `WIKIGUARD_ENGINE_CONDITION_LIMIT`…
fn overrides_of(defaults: &toml::Table) -> Vec<(String, Vec<String>, &toml::Value)> {
    fn walk<'a>(prefix: &[String], table: &'a toml::Table, out: &mut Vec<(String, Vec<String>, &'a toml::Value)>) {
        for (k, v) in table {
            let mut path = prefix.to_vec();
            path.push(k.clone());
            if let toml::Value::Table(t) = v {
                walk(&path, t, out);
            } else {
                out.push((format!("WIKIGUARD_{}", path.join("_").to_ascii_uppercase()), path, v));
            }
        }
    }
    let mut out = Vec::new();
    walk(&[], defaults, &mut out);
    out
}

/// Reads the file (if any), applies the environment, and parses the result.
pub fn load_raw(file: Option<&Path>, env: &dyn Fn(&str) -> Option<String>) -> Result<RawConfig> {
    let mut table = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            text.parse::<toml::Table>()
                .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e))?
        }
        None => toml::Table::new(),
    };
    let defaults = toml::Table::try_from(RawConfig::default()).context("serializing the defaults")?;
    for (var, path, default) in overrides_of(&defaults) {
        let Some(text) = env(&var) else { continue };
        let value = match default {
            toml::Value::Integer(_) => toml::Value::Integer(
                text.trim()
                    .parse()
                    .with_context(|| format!("{var}={text:?}: expected a whole number"))?,
            ),
            toml::Value::Boolean(_) => toml::Value::Boolean(match text.trim() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => bail!("{var}={text:?}: expected true or false"),
            }),
            toml::Value::Array(_) => toml::Value::Array(
                text.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.to_string()))
                    .collect(),
            ),
            _ => toml::Value::String(text),
        };
        let (last, parents) = path.split_last().context("empty key path")?;
        let mut t = &mut table;
        for p in parents {
            let entry = t
                .entry(p.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            t = entry
                .as_table_mut()
                .with_context(|| format!("`{p}` must be a table to apply {var}"))?;
        }
        t.insert(last.clone(), value);
    }
    let where_ = file.map_or_else(|| "the environment".to_string(), |p| p.display().to_string());
    toml::Value::Table(table)
        .try_into::<RawConfig>()
        .map_err(|e| anyhow::anyhow!("{where_}: {}", e.message()))
}

fn read_token_file(path: &str, key: &str) -> Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{key}: reading {path}"))?;
    let token = text.lines().next().unwrap_or_default().trim().to_string();
    if token.is_empty() {
        bail!("{key}: {path} is empty; put the token on its first line");
    }
    Ok(token)
}

fn check_token_strength(token: &str, key: &str) -> Result<()> {
    if token.len() < 16 {
        bail!(
            "{key} is {} characters; use at least 16 random characters (e.g. `openssl rand -hex 32`)",
            token.len()
        );
    }
    Ok(())
}

/// The token `key` sets, else the one its file (`<key>_file`) holds, checked for strength;
/// `None` when neither is set.
fn configured_token(value: &str, file: &str, key: &str) -> Result<Option<(String, TokenSource)>> {
    if !value.is_empty() {
        check_token_strength(value, key)?;
        return Ok(Some((value.to_string(), TokenSource::Config)));
    }
    if !file.is_empty() {
        let file_key = format!("{key}_file");
        let t = read_token_file(file, &file_key)?;
        check_token_strength(&t, &file_key)?;
        return Ok(Some((t, TokenSource::File(PathBuf::from(file)))));
    }
    Ok(None)
}

/// Fills `buf` from the operating system's CSPRNG. Best effort, for callers that take an
/// infallible random source; key material is checked by its makers (`random_token`, the
/// accounts keys), which refuse all-zero output.
pub(crate) fn os_random(buf: &mut [u8]) {
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, buf);
    }
}

/// A random token from the operating system (32 bytes, hex).
pub(crate) fn random_token() -> Result<String> {
    let mut buf = [0u8; 32];
    os_random(&mut buf);
    if buf.iter().all(|&b| b == 0) {
        bail!("could not read random bytes from /dev/urandom");
    }
    Ok(wikiguard_accounts::keys::to_hex(&buf))
}

impl RawConfig {
    /// Checks every key and resolves tokens. `generate` allows writing a new check token into
    /// the data dir (the server does; `config check` only reports that it would).
    pub fn validate(&self, generate: bool) -> Result<Settings> {
        let listen: SocketAddr = self.listen.parse().with_context(|| {
            format!(
                "listen = {:?}: expected an address and port such as 127.0.0.1:8750",
                self.listen
            )
        })?;
        if self.data_dir.trim().is_empty() {
            bail!("data_dir is empty: name a directory wikiguard may write");
        }
        let data_dir = PathBuf::from(&self.data_dir);
        if self.max_body_bytes < 1024 {
            bail!("max_body_bytes = {}: must be at least 1024", self.max_body_bytes);
        }
        if self.engine.max_rule_bytes == 0 {
            bail!("engine.max_rule_bytes must be at least 1");
        }
        let durability = match self.store.durability.as_str() {
            "full" => wikiguard_store::Durability::Full,
            "normal" => wikiguard_store::Durability::Normal,
            other => bail!("store.durability = {other:?}: expected \"full\" or \"normal\""),
        };
        if !matches!(self.log.format.as_str(), "json" | "text") {
            bail!("log.format = {:?}: expected \"json\" or \"text\"", self.log.format);
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            bail!(
                "log.level = {:?}: expected error, warn, info, debug or trace",
                self.log.level
            );
        }
        if !self.engine.equivset.is_empty() && !Path::new(&self.engine.equivset).is_file() {
            bail!("engine.equivset = {:?}: no such file", self.engine.equivset);
        }
        let (check_token, check_token_source) =
            if let Some(given) = configured_token(&self.check_token, &self.check_token_file, "check_token")? {
                given
            } else {
                let path = data_dir.join("check_token");
                if path.is_file() {
                    (
                        read_token_file(&path.to_string_lossy(), "check_token")?,
                        TokenSource::Generated(path),
                    )
                } else if generate {
                    std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
                    let token = random_token()?;
                    write_private(&path, &token)?;
                    (token, TokenSource::Generated(path))
                } else {
                    (String::new(), TokenSource::Generated(path))
                }
            };
        let admin_token = configured_token(&self.admin_token, &self.admin_token_file, "admin_token")?.map(|(t, _)| t);
        if admin_token.is_some() && admin_token.as_deref() == Some(check_token.as_str()) {
            bail!("admin_token equals the check token: use two different secrets");
        }
        Ok(Settings {
            listen,
            data_dir,
            check_token: Secret(check_token),
            check_token_source,
            admin_token: admin_token.map(Secret),
            max_body_bytes: self.max_body_bytes,
            recent_actions: self.recent_actions,
            engine: self.engine.clone(),
            durability,
            accounts: self.accounts.clone(),
            log: self.log.clone(),
        })
    }
}

#[cfg(unix)]
pub(crate) fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(f, "{text}").with_context(|| format!("writing {}", path.display()))
}

#[cfg(not(unix))]
pub(crate) fn write_private(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, format!("{text}\n")).with_context(|| format!("writing {}", path.display()))
}

/// The process environment, for [`load_raw`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// `wikiguard config check FILE`: validates and explains; the text it prints.
pub fn check_command(file: &Path) -> Result<String> {
    let raw = load_raw(Some(file), &process_env)?;
    let s = raw.validate(false)?;
    let mut out = format!("{}: ok\n", file.display());
    out += &format!("  listen           {}\n", s.listen);
    out += &format!("  data_dir         {}\n", s.data_dir.display());
    out += &format!(
        "  check token      {}\n",
        match &s.check_token_source {
            TokenSource::Config => "set".to_string(),
            TokenSource::File(p) => format!("from {}", p.display()),
            TokenSource::Generated(p) if s.check_token.expose().is_empty() =>
                format!("none set: one will be generated into {} at start", p.display()),
            TokenSource::Generated(p) => format!("generated earlier, in {}", p.display()),
        }
    );
    out += &format!(
        "  admin token      {}\n",
        if s.admin_token.is_some() {
            "set"
        } else {
            "not set: the admin API refuses every request"
        }
    );
    out += &format!(
        "  condition limit  {}\n",
        if s.engine.condition_limit == 0 {
            "off".to_string()
        } else {
            s.engine.condition_limit.to_string()
        }
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(map: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = map.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    fn write(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wikiguard-config-test-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("wikiguard.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn defaults_serve_a_small_wiki() {
        let raw = load_raw(None, &env(&[])).unwrap();
        assert_eq!(raw.listen, "127.0.0.1:8750");
        assert_eq!(raw.engine.condition_limit, 1000);
        let s = raw.validate(false).unwrap();
        assert!(s.admin_token.is_none());
    }

    #[test]
    fn every_key_has_an_environment_override() {
        let defaults = toml::Table::try_from(RawConfig::default()).unwrap();
        let names: Vec<String> = overrides_of(&defaults).into_iter().map(|(n, ..)| n).collect();
        for n in [
            "WIKIGUARD_LISTEN",
            "WIKIGUARD_DATA_DIR",
            "WIKIGUARD_CHECK_TOKEN",
            "WIKIGUARD_ADMIN_TOKEN",
            "WIKIGUARD_ENGINE_CONDITION_LIMIT",
            "WIKIGUARD_LOG_FORMAT",
            "WIKIGUARD_ENGINE_EXTRA_VARIABLES",
        ] {
            assert!(names.contains(&n.to_string()), "{n} missing from {names:?}");
        }
        let raw = load_raw(
            None,
            &env(&[
                ("WIKIGUARD_LISTEN", "127.0.0.1:9999"),
                ("WIKIGUARD_ENGINE_CONDITION_LIMIT", "5"),
                ("WIKIGUARD_ENGINE_EXTRA_VARIABLES", "global_user_groups, x"),
            ]),
        )
        .unwrap();
        assert_eq!(raw.listen, "127.0.0.1:9999");
        assert_eq!(raw.engine.condition_limit, 5);
        assert_eq!(raw.engine.extra_variables, vec!["global_user_groups", "x"]);
    }

    #[test]
    fn environment_beats_the_file() {
        let p = write("envfile", "listen = \"127.0.0.1:1\"\n[engine]\ncondition_limit = 7\n");
        let raw = load_raw(Some(&p), &env(&[("WIKIGUARD_LISTEN", "127.0.0.1:2")])).unwrap();
        assert_eq!(raw.listen, "127.0.0.1:2");
        assert_eq!(raw.engine.condition_limit, 7);
    }

    #[test]
    fn bad_files_say_what_and_where() {
        let p = write("unknown", "listn = \"x\"\n");
        let e = load_raw(Some(&p), &env(&[])).unwrap_err().to_string();
        assert!(e.contains("unknown field `listn`"), "{e}");
        let p = write("syntax", "listen = \n");
        let e = load_raw(Some(&p), &env(&[])).unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
        let e = load_raw(None, &env(&[("WIKIGUARD_ENGINE_CONDITION_LIMIT", "lots")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("WIKIGUARD_ENGINE_CONDITION_LIMIT") && e.contains("whole number"),
            "{e}"
        );
        let raw = load_raw(None, &env(&[("WIKIGUARD_LISTEN", "nowhere")])).unwrap();
        let e = raw.validate(false).unwrap_err().to_string();
        assert!(e.contains("listen"), "{e}");
        let raw = load_raw(None, &env(&[("WIKIGUARD_ADMIN_TOKEN", "short")])).unwrap();
        assert!(raw.validate(false).unwrap_err().to_string().contains("at least 16"));
    }

    #[test]
    fn a_check_token_is_generated_once_and_never_printed() {
        let dir = std::env::temp_dir().join(format!("wikiguard-config-gen-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let raw = load_raw(None, &env(&[("WIKIGUARD_DATA_DIR", dir.to_str().unwrap())])).unwrap();
        let a = raw.validate(true).unwrap();
        let b = raw.validate(true).unwrap();
        assert_eq!(a.check_token.expose(), b.check_token.expose());
        assert_eq!(a.check_token.expose().len(), 64);
        assert_eq!(format!("{:?}", a.check_token), "Secret(***)");
    }

    proptest::proptest! {
        // Whatever the file and environment say, loading answers Ok or a clear error.
        #[test]
        fn loading_never_panics(text in "[ -~\n]{0,200}", limit in "[0-9a-z-]{0,8}") {
            let p = write("prop", &text);
            let env = env(&[("WIKIGUARD_ENGINE_CONDITION_LIMIT", limit.as_str())]);
            if let Ok(raw) = load_raw(Some(&p), &env) {
                let _ = raw.validate(false);
            }
        }

        #[test]
        fn numbers_from_the_environment_round_trip(n in 0usize..1_000_000) {
            let raw = load_raw(None, &env(&[("WIKIGUARD_RECENT_ACTIONS", &n.to_string())])).unwrap();
            proptest::prop_assert_eq!(raw.recent_actions, n);
        }
    }
}
