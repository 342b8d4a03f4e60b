//! The HTTP API: the check door MediaWiki calls at save time, filter management, the hit
//! log, metrics and health. Handlers parse, call the library crates, and map errors; the
//! decisions live in `wikiguard-check`, the rows in `wikiguard-store`.
//!
//! Blocking work (evaluation, SQLite) runs on tokio's blocking pool so the reactor threads
//! only move bytes.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value as Json_};
use subtle::ConstantTimeEq;
use wikiguard_check::{Action, ActionKind, ActionVars, Matched};
use wikiguard_filter::{Engine, Evaluator};
use wikiguard_store::{Counters, FilterSpec, HitQuery, NewHit, Store, StoreError};

use crate::config::Settings;
use crate::filters::{self, FilterSet};
use crate::metrics::{CheckSample, Metrics};

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    store: Arc<dyn Store>,
    counters: Arc<dyn Counters>,
    engine: Arc<Engine>,
    filters: RwLock<Arc<FilterSet>>,
    metrics: Metrics,
    links: wikiguard_check::LinkCache,
    accounts: Option<Arc<crate::accounts_api::Accounts>>,
    /// The recent-actions log's recorder; none when the log is off (`recent_actions = 0`).
    recent: Option<crate::recent::RecentLog>,
}

impl AppState {
    /// Builds the state and loads the enabled filters.
    pub fn new(
        settings: Settings,
        store: Arc<dyn Store>,
        counters: Arc<dyn Counters>,
        engine: Engine,
        accounts: Option<Arc<crate::accounts_api::Accounts>>,
    ) -> Result<AppState, StoreError> {
        let engine = Arc::new(engine);
        let set = FilterSet::load(store.as_ref(), &engine, None)?;
        let recent = match settings.recent_actions {
            0 => None,
            keep => Some(
                crate::recent::RecentLog::start(store.clone(), keep)
                    .map_err(|e| StoreError::Backend(format!("cannot start the recent-actions recorder: {e}")))?,
            ),
        };
        let state = AppState {
            inner: Arc::new(Inner {
                settings,
                store,
                counters,
                engine,
                filters: RwLock::new(Arc::new(FilterSet::default())),
                metrics: Metrics::default(),
                links: wikiguard_check::LinkCache::new(4096),
                accounts,
                recent,
            }),
        };
        state.install(set);
        Ok(state)
    }

    fn install(&self, set: FilterSet) {
        for (id, err) in &set.broken {
            tracing::warn!(filter = id, error = %err, "enabled filter does not compile and will not run");
        }
        self.inner.metrics.filters_loaded(set.filters.len(), set.broken.len());
        *self.inner.filters.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(set);
    }

    /// The accounts door, when it started.
    pub(crate) fn accounts(&self) -> Option<Arc<crate::accounts_api::Accounts>> {
        self.inner.accounts.clone()
    }

    fn filters(&self) -> Arc<FilterSet> {
        self.inner.filters.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reloads the filter set from the store (after a change).
    fn reload(&self) -> Result<(), ApiError> {
        let previous = self.filters();
        let set = FilterSet::load(self.inner.store.as_ref(), &self.inner.engine, Some(&previous))?;
        self.install(set);
        Ok(())
    }
}

/// The API's routes.
pub fn router(state: AppState) -> Router {
    let limit = state.inner.settings.max_body_bytes;
    Router::new()
        .route("/v1/check", post(check))
        .route("/v1/check/variables", get(check_variables))
        .route("/v1/check/tags", get(check_tags))
        .route("/v1/filters", get(list_filters).post(create_filter))
        .route("/v1/filters/test", post(test_filter))
        .route(
            "/v1/filters/{id}",
            get(get_filter).put(update_filter).delete(delete_filter),
        )
        .route("/v1/filters/{id}/history", get(filter_history))
        .route("/v1/hits", get(list_hits))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .merge(crate::accounts_api::routes())
        .merge(crate::passkeys_api::routes())
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint; see docs/http-api.md",
            )
        })
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Request metrics and a debug log line per request (route and status only: no bodies, no IPs).
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = req.method().clone();
    let started = Instant::now();
    let resp = next.run(req).await;
    let secs = started.elapsed().as_secs_f64();
    state.inner.metrics.request(route, resp.status().as_u16(), secs);
    tracing::debug!(%method, route, status = resp.status().as_u16(), micros = (secs * 1e6) as u64, "request");
    resp
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// An error answer: `{"error": {"code", "message", …}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: String,
    message: String,
    extra: serde_json::Map<String, Json_>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            extra: serde_json::Map::new(),
        }
    }

    pub(crate) fn bad(code: &str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn with(mut self, key: &str, value: Json_) -> Self {
        self.extra.insert(key.to_string(), value);
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.status.as_u16(), self.code, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::Map::new();
        body.insert("code".into(), Json_::String(self.code));
        body.insert("message".into(), Json_::String(self.message));
        body.extend(self.extra);
        let mut resp = (self.status, Json(json!({ "error": body }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what, id } => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{what} {id} does not exist"),
            ),
            StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            StoreError::Backend(m) => {
                // The cause goes to the log; the caller learns only that it was ours.
                tracing::error!(error = %m, "storage failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "storage failed; see the service log",
                )
            }
        }
    }
}

/// A 500 whose cause goes to the log only.
pub(crate) fn internal(what: &str, e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "{what}");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("{what}; see the service log"),
    )
}

/// Runs blocking work (evaluation, SQLite) off the reactor threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| internal("a worker failed", e))?
}

// ---------------------------------------------------------------------------------------------
// Access
// ---------------------------------------------------------------------------------------------

fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let v = headers.get(header::AUTHORIZATION)?.as_bytes();
    let rest = v.strip_prefix(b"Bearer ").or_else(|| v.strip_prefix(b"bearer "))?;
    Some(rest)
}

fn same(a: &[u8], b: &[u8]) -> bool {
    !a.is_empty() && bool::from(a.ct_eq(b))
}

pub(crate) fn require_check(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let expected = state.inner.settings.check_token.expose();
    match bearer(headers) {
        Some(t) if same(expected, t) => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the bearer token is not the check token",
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send `Authorization: Bearer <check token>` (see check_token in wikiguard.toml)",
        )),
    }
}

pub(crate) fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = &state.inner.settings.admin_token else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "admin_disabled",
            "the admin API is off: set admin_token (or WIKIGUARD_ADMIN_TOKEN) to use it",
        ));
    };
    match bearer(headers) {
        Some(t) if same(expected.expose(), t) => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send `Authorization: Bearer <admin token>`",
        )),
    }
}

/// Parses a JSON body, with the position of a syntax error.
pub(crate) fn json_body(body: Result<Bytes, BytesRejection>) -> Result<Json_, ApiError> {
    let bytes = body.map_err(|rej| {
        let status = rej.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                "body_too_large",
                "the request body is larger than max_body_bytes",
            )
        } else {
            ApiError::new(status, "bad_body", rej.body_text())
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad("malformed_json", format!("the body is not valid JSON: {e}"))
            .with("line", json!(e.line()))
            .with("column", json!(e.column()))
    })
}

/// Unix seconds, as the store keeps times.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

// ---------------------------------------------------------------------------------------------
// The check door
// ---------------------------------------------------------------------------------------------

/// A check whose request body is at most this long is evaluated on the runtime thread that
/// received it; a longer one on the blocking pool. Handing every check to the pool cost a
/// 5 KB check three of its eight context switches and a tenth of its CPU time (and its CPU
/// caches, which another thread then starts cold), while the check itself holds the thread
/// only briefly: its work is bounded by the condition limit and the regex match limits, it
/// does no I/O (counters are in memory, hits go to the store's writer thread), and it takes
/// about 2 ms at this size (a 50 KB edit; see `bench/check-http.sh`). A longer one could
/// hold the thread for tens of milliseconds and would delay the requests queued behind it.
const INLINE_CHECK_BYTES: usize = 128 << 10;

async fn check(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_check(&state, &headers)?;
    let received = Instant::now();
    let inline = body.as_ref().is_ok_and(|b| b.len() <= INLINE_CHECK_BYTES);
    let value = json_body(body)?;
    let action = Action::from_json_value(value)
        .map_err(|e| ApiError::bad("invalid_action", e.to_string()).with("field", json!(e.field)))?;
    let parsed = received.elapsed();
    let now = unix_now();
    let (checked, action) = if inline {
        (run_check(&state, &action, now)?, action)
    } else {
        let st = state.clone();
        blocking(move || run_check(&st, &action, now).map(|c| (c, action))).await?
    };
    // The hits are committed on the store's writer thread; the answer waits for that here,
    // holding no thread.
    let mut out = checked.answer;
    let waiting = Instant::now();
    if let Some(committed) = checked.hits {
        let ids = committed
            .await
            .map_err(|e| internal("the store dropped a write", e))?
            .map_err(ApiError::from)?;
        out["hits"] = json!(ids);
    }
    state.inner.metrics.check(&checked.sample);
    tracing::debug!(
        parse_us = parsed.as_micros() as u64,
        commit_wait_us = waiting.elapsed().as_micros() as u64,
        handler_us = received.elapsed().as_micros() as u64,
        "check handled"
    );
    // The recent-actions log is test data, not a verdict's record: the action is recorded
    // after the answer, by a thread of its own, lazily (no fsync): a save never waits for it.
    if let Some(log) = &state.inner.recent {
        log.offer(now, action);
    }
    Ok(Json(out).into_response())
}

/// A check's answer, and the commit of its hits when it has any.
pub(crate) struct Checked {
    /// The answer; its `hits` (the ids) are filled in once they are committed.
    answer: Json_,
    /// The hits' ids, once committed.
    hits: Option<tokio::sync::oneshot::Receiver<Result<Vec<i64>, StoreError>>>,
    /// The check's metrics, counted once its hits are committed (a check that fails there
    /// answers an error and is not counted as checked).
    sample: CheckSample,
}

/// Evaluates every enabled filter against one action, decides, sends the hits to the store,
/// and answers.
pub(crate) fn run_check(state: &AppState, action: &Action, now: i64) -> Result<Checked, ApiError> {
    let inner = &state.inner;
    let started = Instant::now();
    let set = state.filters();
    let mut vars = ActionVars::with_link_cache(action, now, &inner.links);
    let mut sample = CheckSample {
        action: action.kind().as_str(),
        ..CheckSample::default()
    };
    let mut matched_filters = Vec::new();
    let mut errors = Vec::new();
    let conditions;
    {
        let mut ev = Evaluator::new(&inner.engine, &mut vars);
        for f in &set.filters {
            let t = Instant::now();
            let r = ev.eval(&f.program);
            let secs = t.elapsed().as_secs_f64();
            match r {
                Ok(o) => {
                    sample.filters.push((f.id, secs, o.matched));
                    if o.matched {
                        matched_filters.push(f.as_ref());
                    }
                }
                Err(e) if e.code == "conditionlimit" => {
                    // AbuseFilter stops here too: the remaining filters are not checked.
                    sample.limit_reached = true;
                    tracing::warn!(filter = f.id, "condition limit reached; remaining filters skipped");
                    break;
                }
                Err(e) => {
                    sample.filters.push((f.id, secs, false));
                    sample.errors.push((f.id, e.code));
                    errors.push(json!({ "filter": f.id, "code": e.code }));
                }
            }
        }
        conditions = ev.conditions();
    }
    let evaluated = started.elapsed();
    sample.conditions = conditions;
    let matched: Vec<Matched<'_>> = matched_filters
        .iter()
        .map(|f| Matched {
            filter_id: f.id,
            description: &f.description,
            actions: &f.actions,
        })
        .collect();
    let verdict = wikiguard_check::decide(
        &matched,
        action,
        inner.counters.as_ref(),
        now,
        inner.settings.engine.warn_ttl_seconds,
    );
    sample.verdict = verdict.verdict.as_str();

    // One dump for the action, shared by all its hits (AbuseFilter logs one dump per action):
    // the variables any matched filter reads.
    let mut reads: BTreeSet<&str> = BTreeSet::new();
    for f in &matched_filters {
        reads.extend(f.reads.iter().map(String::as_str));
    }
    let dump = Arc::new(if matched_filters.is_empty() {
        Json_::Null
    } else {
        vars.dump(&reads)
    });
    let mut hits = Vec::with_capacity(matched_filters.len());
    for f in &matched_filters {
        let taken = verdict
            .taken
            .iter()
            .find(|(id, _)| *id == f.id)
            .map(|(_, t)| t.clone())
            .unwrap_or_default();
        hits.push(NewHit {
            filter_id: f.id,
            filter_version: f.version,
            time: now,
            action: action.kind().as_str().to_string(),
            user_name: action.user_name().to_string(),
            page: action.page_title(),
            namespace: action.namespace(),
            verdict: verdict.verdict.as_str().to_string(),
            actions_taken: taken,
            vars: Arc::clone(&dump),
        });
    }
    let dumped = started.elapsed();
    let committed = (!hits.is_empty()).then(|| {
        let (done, committed) = tokio::sync::oneshot::channel();
        inner.store.record_hits_then(
            &hits,
            Box::new(move |ids| {
                // The check may have gone away (its client left); the hits stay committed.
                let _ = done.send(ids);
            }),
        );
        committed
    });
    tracing::debug!(
        eval_us = evaluated.as_micros() as u64,
        dump_us = (dumped - evaluated).as_micros() as u64,
        "check timings"
    );
    if !verdict.matches.is_empty() {
        tracing::info!(
            action = action.kind().as_str(),
            verdict = verdict.verdict.as_str(),
            matches = ?verdict.matches,
            "filters matched"
        );
    }
    let answer = json!({
        "verdict": verdict.verdict,
        "matches": verdict.matches,
        "actions": verdict.actions,
        "messages": verdict.messages,
        "tags": verdict.tags,
        "conditions": conditions,
        "condition_limit_reached": sample.limit_reached,
        "errors": errors,
        "hits": [],
        "taken": verdict.taken.iter().map(|(filter, actions)| json!({"filter": filter, "actions": actions})).collect::<Vec<_>>(),
    });
    Ok(Checked {
        answer,
        hits: committed,
        sample,
    })
}

#[derive(Deserialize)]
struct VariablesQuery {
    action: Option<String>,
}

async fn check_variables(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<VariablesQuery>,
) -> Result<Response, ApiError> {
    require_check(&state, &headers)?;
    let action = q.action.ok_or_else(|| {
        ApiError::bad(
            "missing_parameter",
            "action: give ?action=edit (or move, delete, createaccount, autocreateaccount, upload, stashupload)",
        )
    })?;
    let kind = ActionKind::parse(&action).ok_or_else(|| {
        ApiError::bad("unknown_action", format!("action: `{action}` is not one of edit, move, delete, createaccount, autocreateaccount, upload, stashupload")).with("field", json!("action"))
    })?;
    let set = state.filters();
    let wanted: Vec<&str> = wikiguard_check::client_side_variables()
        .iter()
        .copied()
        .filter(|v| set.reads.contains(*v))
        .collect();
    Ok(Json(json!({ "action": kind.as_str(), "variables": wanted })).into_response())
}

/// The change tags enabled filters can put on changes, so MediaWiki lists them as defined
/// by the extension (Special:Tags) and active.
async fn check_tags(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    require_check(&state, &headers)?;
    let set = state.filters();
    let tags: BTreeSet<&str> = set
        .filters
        .iter()
        .filter_map(|f| f.actions.tag.as_ref())
        .flat_map(|t| t.tags.iter().map(String::as_str))
        .collect();
    Ok(Json(json!({ "tags": tags })).into_response())
}

// ---------------------------------------------------------------------------------------------
// Filters
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct ListQuery {
    deleted: Option<String>,
}

fn truthy(s: Option<&str>) -> bool {
    matches!(s, Some("1" | "true" | "yes"))
}

async fn list_filters(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let st = state.clone();
    let include_deleted = truthy(q.deleted.as_deref());
    let filters = blocking(move || Ok(st.inner.store.list_filters(include_deleted)?)).await?;
    Ok(Json(json!({ "filters": filters })).into_response())
}

async fn get_filter(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let id = filter_id(&id)?;
    let st = state.clone();
    let f = blocking(move || Ok(st.inner.store.get_filter(id)?)).await?;
    Ok(Json(f).into_response())
}

fn filter_id(s: &str) -> Result<i64, ApiError> {
    s.parse::<i64>()
        .ok()
        .filter(|&i| i > 0)
        .ok_or_else(|| ApiError::bad("bad_id", format!("`{s}` is not a filter id (a positive whole number)")))
}

fn editor(headers: &HeaderMap, body: &Json_) -> String {
    body.get("editor")
        .and_then(Json_::as_str)
        .or_else(|| headers.get("x-wikiguard-editor").and_then(|v| v.to_str().ok()))
        .map(|s| s.chars().take(255).collect())
        .unwrap_or_else(|| "admin-api".to_string())
}

async fn create_filter(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let body = json_body(body)?;
    let who = editor(&headers, &body);
    let (spec, warnings) = filters::spec_from_json(
        &body,
        None,
        &state.inner.engine,
        state.inner.settings.engine.max_rule_bytes,
    )?;
    let st = state.clone();
    let f = blocking(move || {
        let f = st.inner.store.create_filter(&spec, &who, unix_now())?;
        st.reload()?;
        tracing::info!(filter = f.id, editor = %who, "filter created");
        Ok(f)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(with_warnings(&f, &warnings))).into_response())
}

fn with_warnings(f: &wikiguard_store::Filter, warnings: &[Json_]) -> Json_ {
    let mut v = serde_json::to_value(f).unwrap_or_else(|_| json!({}));
    if let Some(o) = v.as_object_mut() {
        o.insert("warnings".into(), Json_::Array(warnings.to_vec()));
    }
    v
}

async fn update_filter(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let id = filter_id(&id)?;
    let body = json_body(body)?;
    if let Some(given) = body.get("id") {
        if given.as_i64() != Some(id) {
            return Err(
                ApiError::bad("id_mismatch", format!("id: the body says {given}, the URL says {id}"))
                    .with("field", json!("id")),
            );
        }
    }
    let who = editor(&headers, &body);
    let st = state.clone();
    let (f, warnings) = blocking(move || {
        let current = st.inner.store.get_filter(id)?;
        let (spec, warnings) = filters::spec_from_json(
            &body,
            Some(&current.spec),
            &st.inner.engine,
            st.inner.settings.engine.max_rule_bytes,
        )?;
        let f = st.inner.store.update_filter(id, &spec, &who, unix_now())?;
        st.reload()?;
        tracing::info!(filter = f.id, version = f.version, editor = %who, "filter updated");
        Ok((f, warnings))
    })
    .await?;
    Ok(Json(with_warnings(&f, &warnings)).into_response())
}

async fn delete_filter(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let id = filter_id(&id)?;
    let who = editor(&headers, &Json_::Null);
    let st = state.clone();
    let f = blocking(move || {
        let f = st.inner.store.delete_filter(id, &who, unix_now())?;
        st.reload()?;
        tracing::info!(filter = f.id, editor = %who, "filter deleted");
        Ok(f)
    })
    .await?;
    Ok(Json(f).into_response())
}

async fn filter_history(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let id = filter_id(&id)?;
    let st = state.clone();
    let versions = blocking(move || Ok(st.inner.store.filter_history(id)?)).await?;
    // Each version with what changed from the one before, so the history reads as a diff.
    let mut out = Vec::with_capacity(versions.len());
    let mut prev: Option<&FilterSpec> = None;
    for v in &versions {
        let mut j = serde_json::to_value(v).unwrap_or_else(|_| json!({}));
        if let Some(o) = j.as_object_mut() {
            o.insert("changed".into(), json!(filters::changed_fields(prev, &v.spec)));
            if let Some(p) = prev {
                if p.pattern != v.spec.pattern {
                    o.insert(
                        "pattern_diff".into(),
                        json!(filters::text_diff(&p.pattern, &v.spec.pattern)),
                    );
                }
            }
        }
        out.push(j);
        prev = Some(&v.spec);
    }
    Ok(Json(json!({ "id": id, "versions": out })).into_response())
}

async fn test_filter(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let body = json_body(body)?;
    let Some(obj) = body.as_object() else {
        return Err(ApiError::bad(
            "invalid_body",
            "the body must be a JSON object: {\"pattern\": \"…\", \"limit\": 100}",
        ));
    };
    for k in obj.keys() {
        if !matches!(k.as_str(), "pattern" | "limit") {
            return Err(
                ApiError::bad("unknown_field", format!("{k}: unknown field; expected pattern, limit"))
                    .with("field", json!(k)),
            );
        }
    }
    let pattern = obj
        .get("pattern")
        .and_then(Json_::as_str)
        .ok_or_else(|| {
            ApiError::bad("missing_field", "pattern: a string holding the draft rule").with("field", json!("pattern"))
        })?
        .to_string();
    let limit = match obj.get("limit") {
        None => 100,
        Some(v) => v.as_u64().filter(|&n| n >= 1).ok_or_else(|| {
            ApiError::bad("invalid_field", "limit: a whole number of at least 1").with("field", json!("limit"))
        })? as usize,
    };
    let program = filters::compile(
        &pattern,
        &state.inner.engine,
        state.inner.settings.engine.max_rule_bytes,
    )?;
    let st = state.clone();
    let out = blocking(move || {
        let recent = st
            .inner
            .store
            .recent_actions(limit.min(st.inner.settings.recent_actions.max(1)))?;
        Ok(filters::test_against(&st.inner.engine, &program, &recent))
    })
    .await?;
    Ok(Json(out).into_response())
}

// ---------------------------------------------------------------------------------------------
// Hits, metrics, health
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct HitsQuery {
    filter: Option<String>,
    user: Option<String>,
    page: Option<String>,
    since: Option<String>,
    until: Option<String>,
    before: Option<String>,
    limit: Option<String>,
}

fn num_param(name: &str, v: Option<&str>) -> Result<Option<i64>, ApiError> {
    v.map(|s| {
        s.parse::<i64>().map_err(|_| {
            ApiError::bad("invalid_parameter", format!("{name}: `{s}` is not a whole number"))
                .with("field", json!(name))
        })
    })
    .transpose()
}

async fn list_hits(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HitsQuery>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let query = HitQuery {
        filter: num_param("filter", q.filter.as_deref())?,
        user: q.user,
        page: q.page,
        since: num_param("since", q.since.as_deref())?,
        until: num_param("until", q.until.as_deref())?,
        before_id: num_param("before", q.before.as_deref())?,
        limit: num_param("limit", q.limit.as_deref())?.unwrap_or(100).clamp(1, 1000) as usize,
    };
    let st = state.clone();
    let hits = blocking(move || Ok(st.inner.store.hits(&query)?)).await?;
    Ok(Json(json!({ "hits": hits })).into_response())
}

async fn metrics(State(state): State<AppState>) -> Response {
    let recent_dropped = state.inner.recent.as_ref().map_or(0, crate::recent::RecentLog::dropped);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.inner.metrics.render(recent_dropped),
    )
        .into_response()
}

async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    let st = state.clone();
    blocking(move || {
        st.inner.store.ping().map_err(|e| {
            tracing::error!(error = %e, "store not ready");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "the store does not answer",
            )
        })
    })
    .await?;
    Ok("ready\n")
}
