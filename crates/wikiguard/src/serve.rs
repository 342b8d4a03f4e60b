//! `wikiguard serve`, `wikiguard import abusefilter` and `wikiguard filter test`: load the
//! settings, open the store, wire the engine, run.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use wikiguard_check::{Action, ActionVars};
use wikiguard_filter::{Engine, Evaluator, Program};
use wikiguard_store::{MemoryCounters, SqliteStore, Store};

use crate::config::{self, Settings, TokenSource};
use crate::server::{self, AppState};

/// The engine as the settings describe it.
pub fn engine(settings: &config::EngineConfig) -> Result<Engine> {
    let equivset = (!settings.equivset.is_empty()).then(|| Path::new(&settings.equivset));
    let engine = crate::filter_cmd::engine(equivset)?;
    let limit = (settings.condition_limit > 0).then_some(settings.condition_limit);
    Ok(engine
        .with_condition_limit(limit)
        .with_known_variables(wikiguard_filter::vars::KnownVariables::with_extra(
            &settings.extra_variables,
        )))
}

/// Sets up the JSON (or text) log on stderr.
pub fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = if settings.log.format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.with_ansi(false).try_init()
    };
}

/// Opens the store in the data directory.
pub fn open_store(settings: &Settings) -> Result<SqliteStore> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating the data directory {}", settings.data_dir.display()))?;
    // The hit log and the accounts' state are personal data: only the service's user reads them.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&settings.data_dir, std::fs::Permissions::from_mode(0o700));
    }
    let path = settings.data_dir.join("wikiguard.sqlite3");
    SqliteStore::open_with(&path, settings.durability).with_context(|| format!("opening {}", path.display()))
}

/// Loads and validates the configuration (file, then environment).
pub fn settings(config_file: Option<&Path>, generate: bool) -> Result<Settings> {
    config::load_raw(config_file, &config::process_env)?.validate(generate)
}

/// `wikiguard serve`.
pub fn serve(config_file: Option<&Path>) -> Result<()> {
    let raw = config::load_raw(config_file, &config::process_env)?;
    let settings = raw.validate(true)?;
    init_logging(&settings);
    let gate = match raw.gate {
        Some(_) => Some(crate::gate_cmd::state(
            &settings,
            &raw,
            &crate::gate_cmd::GateFlags::default(),
        )?),
        None => None,
    };
    let store: Arc<dyn Store> = Arc::new(open_store(&settings)?);
    let counters = Arc::new(MemoryCounters::new(settings.engine.counters_max_keys.max(1)));
    let engine = engine(&settings.engine)?;
    let listen = settings.listen;
    match &settings.check_token_source {
        TokenSource::Generated(p) => {
            tracing::info!(file = %p.display(), "check token is in this file (generated on first start)")
        }
        TokenSource::File(p) => tracing::info!(file = %p.display(), "check token read from file"),
        TokenSource::Config => tracing::info!("check token from the configuration"),
    }
    if settings.admin_token.is_none() {
        tracing::warn!("no admin_token: the admin API (filters, hits) refuses every request");
    }
    let data_dir = settings.data_dir.clone();
    let accounts =
        match crate::accounts_api::Accounts::new(&settings.accounts, &settings.data_dir, store.clone(), &raw.redis) {
            Ok(a) => Some(Arc::new(a)),
            Err(e) => {
                // The other doors still serve; the accounts endpoints answer 503 and say why here.
                tracing::error!(error = %format!("{e:#}"), "the accounts door did not start");
                None
            }
        };
    let state = AppState::new(settings, store, counters, engine, accounts).context("loading the filters")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let local = listener.local_addr().context("reading the bound address")?;
        tracing::info!(listen = %local, data_dir = %data_dir.display(), "wikiguard serving");
        if let Some((gate_state, g)) = gate {
            // The gate's own single-threaded workers, beside the API's runtime.
            let (gate_addr, workers) =
                crate::gate_proxy::spawn_workers(gate_state, &g.listen, crate::gate_cmd::workers())?;
            tracing::info!(listen = %gate_addr, upstream = %g.upstream, workers = workers.len(), "wikiguard gate serving");
            drop(workers);
        }
        axum::serve(listener, server::router(state))
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("serving")?;
        tracing::info!("wikiguard stopped");
        Ok(())
    })
}

/// Resolves at SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// `wikiguard import abusefilter FILE`.
pub fn import_abusefilter(config_file: Option<&Path>, file: &Path) -> Result<String> {
    let settings = settings(config_file, false)?;
    let engine = engine(&settings.engine)?;
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let (imported, warnings) = wikiguard_check::import::parse_abusefilter_export(&text, &engine)
        .with_context(|| format!("{}", file.display()))?;
    let store = open_store(&settings)?;
    let mut out = String::new();
    for f in &imported {
        store
            .import_filter(f.id, &f.spec, &f.editor, f.time, f.hits)
            .with_context(|| format!("storing filter {}", f.id))?;
    }
    for w in &warnings {
        out += &format!("warning: {w}\n");
    }
    out += &format!(
        "imported {} filters ({} enabled) into {}\n",
        imported.len(),
        imported.iter().filter(|f| f.spec.enabled).count(),
        settings.data_dir.display()
    );
    Ok(out)
}

/// `wikiguard filter test FILTER_FILE --against ACTIONS.jsonl`: every filter of the file over
/// every recorded action; one JSON line per hit, then a summary line.
///
/// FILTER_FILE is a rule (plain text), a filter JSON object, an array of them, or an
/// AbuseFilter API export.
pub fn filter_test(filter_file: &Path, against: &Path, equivset: Option<&Path>) -> Result<String> {
    let engine = crate::filter_cmd::engine(equivset)?;
    let text = std::fs::read_to_string(filter_file).with_context(|| format!("reading {}", filter_file.display()))?;
    let mut rules: Vec<(String, String)> = Vec::new();
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(o)) if o.contains_key("query") => {
            for f in wikiguard_check::import::parse_abusefilter_export(&text, &engine)?.0 {
                rules.push((f.id.to_string(), f.spec.pattern));
            }
        }
        Ok(v @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) => {
            let list = match v {
                serde_json::Value::Array(a) => a,
                other => vec![other],
            };
            for (i, f) in list.iter().enumerate() {
                let pattern = f
                    .get("pattern")
                    .and_then(|p| p.as_str())
                    .with_context(|| format!("{}: filter {i} has no \"pattern\"", filter_file.display()))?;
                let name = f
                    .get("id")
                    .map_or_else(|| i.to_string(), |id| id.to_string().trim_matches('"').to_string());
                rules.push((name, pattern.to_string()));
            }
        }
        _ => rules.push((
            filter_file
                .file_stem()
                .map_or_else(|| "rule".into(), |s| s.to_string_lossy().into_owned()),
            text,
        )),
    }
    let mut programs = Vec::with_capacity(rules.len());
    for (name, pattern) in &rules {
        let p = Program::parse_with(pattern, engine.known_variables())
            .map_err(|e| anyhow::anyhow!("filter {name}: {}", e.render(pattern)))?;
        programs.push((name.clone(), p));
    }
    let actions = std::fs::read_to_string(against).with_context(|| format!("reading {}", against.display()))?;
    let mut out = String::new();
    let (mut n, mut hits) = (0usize, 0usize);
    for (lineno, line) in actions.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let where_ = format!("{}:{}", against.display(), lineno + 1);
        let v: serde_json::Value = serde_json::from_str(line).with_context(|| format!("{where_}: not JSON"))?;
        let action = Action::from_json(&v).map_err(|e| anyhow::anyhow!("{where_}: {e}"))?;
        n += 1;
        let mut vars = ActionVars::new(&action, server::unix_now());
        let mut ev = Evaluator::new(&engine, &mut vars);
        for (name, p) in &programs {
            match ev.eval(p) {
                Ok(o) if o.matched => {
                    hits += 1;
                    out += &serde_json::json!({
                        "line": lineno + 1, "filter": name, "action": action.kind().as_str(),
                        "user": action.user_name(), "page": action.page_title(),
                    })
                    .to_string();
                    out.push('\n');
                }
                Ok(_) => {}
                Err(e) => {
                    out += &serde_json::json!({ "line": lineno + 1, "filter": name, "error": e.code, "message": e.to_string() })
                        .to_string();
                    out.push('\n');
                }
            }
        }
    }
    out += &serde_json::json!({ "actions": n, "filters": programs.len(), "hits": hits }).to_string();
    out.push('\n');
    Ok(out)
}
