//! `wikiguard gate` (the gate alone) and `wikiguard gate explain`; also the gate that
//! `wikiguard serve` starts beside the API when the configuration has a `[gate]` section.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use wikiguard_gate::{GateConfig, MemoryRateStore, Policy, RateStore};

use crate::config::{RawConfig, Secret, Settings};
use crate::gate_proxy::{self, GateState};
use crate::gate_redis::RedisRateStore;

/// Command-line settings that override the `[gate]` section.
#[derive(Debug, Default, Clone)]
pub struct GateFlags {
    /// `--listen`.
    pub listen: Option<String>,
    /// `--upstream`.
    pub upstream: Option<String>,
    /// `--policy`.
    pub policy: Option<String>,
    /// `--trusted-proxy`, repeated.
    pub trusted_proxies: Vec<String>,
    /// `--redis`.
    pub redis: Option<String>,
    /// `--shadow`.
    pub shadow: bool,
}

/// The `[gate]` section with the flags applied; a missing secret is generated.
pub fn gate_config(raw: &RawConfig, flags: &GateFlags) -> Result<GateConfig> {
    let mut g = raw.gate.clone().unwrap_or_default();
    if let Some(v) = &flags.listen {
        g.listen = v.clone();
    }
    if let Some(v) = &flags.upstream {
        g.upstream = v.clone();
    }
    if let Some(v) = &flags.policy {
        g.policy = v.clone();
    }
    if !flags.trusted_proxies.is_empty() {
        g.trusted_proxies = flags.trusted_proxies.clone();
    }
    if flags.shadow {
        g.shadow = true;
    }
    if g.secret.is_empty() {
        // Passes then last until a restart and are not shared between nodes: say so.
        g.secret = crate::config::random_token()?;
        tracing::warn!("gate.secret is not set: a random one is used, so pass cookies end with this process");
    }
    g.validate().map_err(|e| anyhow::anyhow!("gate: {e}"))?;
    Ok(g)
}

/// Reads the policy file, or the built-in default.
pub fn load_policy(path: &str) -> Result<Policy> {
    if path.is_empty() {
        return Ok(Policy::default_policy());
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the gate policy {path}"))?;
    Policy::from_toml(&text).map_err(|e| anyhow::anyhow!("{path}: {e}"))
}

type Stores = (Arc<dyn RateStore>, Option<Arc<RedisRateStore>>);

fn rate_store(g: &GateConfig, redis: &str) -> Result<Stores> {
    let local = Arc::new(MemoryRateStore::new(g.rate_store_max_keys.max(1)));
    if redis.is_empty() {
        return Ok((local, None));
    }
    let r = Arc::new(RedisRateStore::new(redis, Duration::from_millis(50), local)?);
    Ok((r.clone(), Some(r)))
}

/// Builds a running gate's state.
pub fn state(settings: &Settings, raw: &RawConfig, flags: &GateFlags) -> Result<(Arc<GateState>, GateConfig)> {
    let g = gate_config(raw, flags)?;
    let policy = load_policy(&g.policy)?;
    let redis = flags.redis.clone().unwrap_or_else(|| raw.redis.clone());
    let (store, redis) = rate_store(&g, &redis)?;
    let admin: Option<Secret> = settings.admin_token.clone();
    let st = GateState::new(g.clone(), policy, store, redis, admin)?;
    Ok((st, g))
}

/// `wikiguard gate`: the gate alone, until SIGINT/SIGTERM.
pub fn run(config_file: Option<&Path>, flags: &GateFlags) -> Result<()> {
    let raw = crate::config::load_raw(config_file, &crate::config::process_env)?;
    let settings = raw.validate(false)?;
    crate::serve::init_logging(&settings);
    let (state, g) = state(&settings, &raw, flags)?;
    let (bound, workers) = gate_proxy::spawn_workers(state, &g.listen, workers())?;
    tracing::info!(listen = %bound, upstream = %g.upstream, workers = workers.len(), "wikiguard gate serving");
    for w in workers {
        w.join().map_err(|_| anyhow::anyhow!("a gate worker panicked"))??;
    }
    Ok(())
}

/// One worker per core.
pub fn workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// `wikiguard gate explain`: one request through the policy, printed as JSON.
pub fn explain(
    config_file: Option<&Path>,
    flags: &GateFlags,
    method: &str,
    url: &str,
    headers: &[String],
    client_ip: &str,
) -> Result<String> {
    let raw = crate::config::load_raw(config_file, &crate::config::process_env)?;
    let mut g = raw.gate.clone().unwrap_or_default();
    if let Some(p) = &flags.policy {
        g.policy = p.clone();
    }
    if g.secret.is_empty() {
        g.secret = crate::config::random_token()?;
    }
    if g.upstream.is_empty() {
        g.upstream = "http://127.0.0.1:80".into();
    }
    let policy = load_policy(&g.policy)?;
    let gate = wikiguard_gate::Gate::new(&g, policy, Arc::new(MemoryRateStore::new(1024)))
        .map_err(|e| anyhow::anyhow!("gate: {e}"))?;
    let mut hmap = serde_json::Map::new();
    for h in headers {
        let (k, v) = h
            .split_once(':')
            .with_context(|| format!("--header {h:?}: expected `Name: value`"))?;
        hmap.insert(k.trim().to_string(), serde_json::Value::String(v.trim().to_string()));
    }
    let body = serde_json::json!({ "method": method, "url": url, "headers": hmap, "client_ip": client_ip });
    let v = gate_proxy::explain_json(&gate, body.to_string().as_bytes(), gate_proxy::now_ms())?;
    Ok(serde_json::to_string_pretty(&v)? + "\n")
}
