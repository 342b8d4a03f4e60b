//! The gate's HTTP front: accepts clients (HTTP/1.1 and HTTP/2), asks `wikiguard-gate` for a
//! decision, and either answers itself (403, 429, the challenge page) or proxies to the wiki
//! over a keep-alive pool, streaming both bodies. Also the gate's own endpoints under
//! `/.wikiguard/`: the challenge answer, forward-auth for nginx `auth_request`, explain,
//! policy reload and metrics.
//!
//! Phases, as in pingora: accept (per-IP connection limit) → read head (header timeout and
//! size limit, by hyper) → client IP (trusted proxies) → decide → answer or proxy → observe the
//! upstream response (logins) → log (sampled decision log).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use serde_json::json;
use subtle::ConstantTimeEq;
use wikiguard_gate::{Class, Decision, Gate, GateConfig, IpSet, Policy, RequestFacts, X_FORWARDED_FOR};

use crate::config::Secret;
use crate::gate_upstream::{UpstreamBody, UpstreamError, UpstreamPool, UpstreamTimeouts};
use crate::metrics::{Histogram, LATENCY_BUCKETS};

const DECISIONS: [&str; 4] = ["allow", "deny", "challenge", "limit"];

/// A histogram every worker updates without a lock.
struct AtomicHistogram {
    bounds: &'static [f64],
    /// The first `bounds.len()` are used. Inline, not on the heap: a stripe's buckets then lie
    /// in the stripe's own cache lines, not next to another stripe's allocation.
    counts: [AtomicU64; MAX_BUCKETS],
    sum_ns: AtomicU64,
    count: AtomicU64,
}

/// Buckets a gate histogram has at most.
const MAX_BUCKETS: usize = 16;

impl AtomicHistogram {
    fn new(bounds: &'static [f64]) -> Self {
        assert!(
            bounds.len() <= MAX_BUCKETS,
            "a gate histogram has at most {MAX_BUCKETS} buckets"
        );
        AtomicHistogram {
            bounds,
            counts: Default::default(),
            sum_ns: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|b| secs <= *b) {
            if let Some(c) = self.counts.get(i) {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_ns.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// A cumulative snapshot of several histograms (one per stripe) for rendering.
    fn snapshot<'a>(bounds: &'static [f64], parts: impl Iterator<Item = &'a AtomicHistogram>) -> Histogram {
        let mut per_bucket = vec![0u64; bounds.len()];
        let (mut sum_ns, mut count) = (0u64, 0u64);
        for part in parts {
            for (total, c) in per_bucket.iter_mut().zip(&part.counts) {
                *total += c.load(Ordering::Relaxed);
            }
            sum_ns += part.sum_ns.load(Ordering::Relaxed);
            count += part.count.load(Ordering::Relaxed);
        }
        let mut h = Histogram::new(bounds);
        h.load(&per_bucket, sum_ns as f64 / 1e9, count);
        h
    }
}

/// Decision-time buckets, seconds: deciding should take microseconds.
const DECISION_BUCKETS: &[f64] = &[
    0.000_005, 0.00001, 0.000_025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005,
];

/// A response body: the gate's own page, or the wiki's, streamed (an enum, not a boxed trait
/// object, so a proxied response costs no allocation for its body's type).
type Body = Either<Full<Bytes>, UpstreamBody>;

fn full(text: impl Into<Bytes>) -> Body {
    Either::Left(Full::new(text.into()))
}

/// Unix milliseconds, as the gate counts time.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One stripe of the counters for `/.wikiguard/metrics`.
#[repr(align(128))]
struct GateMetrics {
    /// Per class (in `Class::ALL` order) and decision (allow, deny, challenge, limit): lock-free,
    /// since every request counts.
    decisions: [[AtomicU64; 4]; 16],
    upstream_errors: AtomicU64,
    challenges_issued: AtomicU64,
    challenges_solved: AtomicU64,
    challenges_failed: AtomicU64,
    decision_seconds: AtomicHistogram,
    upstream_seconds: AtomicHistogram,
}

impl Default for GateMetrics {
    fn default() -> Self {
        GateMetrics {
            decisions: Default::default(),
            upstream_errors: AtomicU64::new(0),
            challenges_issued: AtomicU64::new(0),
            challenges_solved: AtomicU64::new(0),
            challenges_failed: AtomicU64::new(0),
            decision_seconds: AtomicHistogram::new(DECISION_BUCKETS),
            upstream_seconds: AtomicHistogram::new(LATENCY_BUCKETS),
        }
    }
}

/// The gate's counters, striped: each worker thread counts into its own stripe (its own cache
/// lines), and a scrape sums the stripes. Counters every request bumps would otherwise bounce
/// between the cores on each one.
struct StripedMetrics {
    stripes: Box<[GateMetrics]>,
}

const METRIC_STRIPES: usize = 8;

static METRIC_THREADS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static METRIC_STRIPE: usize = METRIC_THREADS.fetch_add(1, Ordering::Relaxed) as usize % METRIC_STRIPES;
}

impl StripedMetrics {
    fn new() -> Self {
        StripedMetrics {
            stripes: (0..METRIC_STRIPES).map(|_| GateMetrics::default()).collect(),
        }
    }

    /// This thread's stripe, to count into.
    fn local(&self) -> &GateMetrics {
        &self.stripes[METRIC_STRIPE.with(|i| *i)]
    }

    /// A counter summed over the stripes.
    fn total(&self, counter: impl Fn(&GateMetrics) -> &AtomicU64) -> u64 {
        self.stripes.iter().map(|m| counter(m).load(Ordering::Relaxed)).sum()
    }

    fn histogram(&self, which: impl Fn(&GateMetrics) -> &AtomicHistogram) -> Histogram {
        let bounds = which(&self.stripes[0]).bounds;
        AtomicHistogram::snapshot(bounds, self.stripes.iter().map(which))
    }
}

impl GateMetrics {
    fn decision(&self, class: Class, decision: &'static str) {
        let c = Class::ALL
            .iter()
            .position(|k| *k == class)
            .unwrap_or(Class::ALL.len() - 1);
        let d = DECISIONS.iter().position(|k| *k == decision).unwrap_or(0);
        if let Some(slot) = self.decisions.get(c).and_then(|row| row.get(d)) {
            slot.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn time(slot: &AtomicHistogram, d: Duration) {
        slot.observe(d);
    }
}

/// Shared state of a running gate.
pub struct GateState {
    gate: Gate,
    redis: Option<Arc<crate::gate_redis::RedisRateStore>>,
    config: GateConfig,
    upstream: Uri,
    admin_token: Option<Secret>,
    policy_path: Option<std::path::PathBuf>,
    metrics: StripedMetrics,
    connections: Mutex<HashMap<IpAddr, usize>>,
}

impl GateState {
    /// Builds the state: the gate (policy, trusted proxies) and the upstream.
    pub fn new(
        config: GateConfig,
        policy: Policy,
        store: Arc<dyn wikiguard_gate::RateStore>,
        redis: Option<Arc<crate::gate_redis::RedisRateStore>>,
        admin_token: Option<Secret>,
    ) -> Result<Arc<GateState>> {
        config.validate().map_err(|e| anyhow::anyhow!("gate: {e}"))?;
        let upstream: Uri = config
            .upstream
            .parse()
            .with_context(|| format!("gate.upstream = {:?}", config.upstream))?;
        if upstream.scheme_str() != Some("http") || upstream.host().is_none() {
            anyhow::bail!("gate.upstream = {:?}: expected http://host:port (TLS to the wiki is not supported yet; terminate TLS in front)", config.upstream);
        }
        let gate = Gate::new(&config, policy, store).map_err(|e| anyhow::anyhow!("gate: {e}"))?;
        let policy_path = (!config.policy.is_empty()).then(|| std::path::PathBuf::from(&config.policy));
        Ok(Arc::new(GateState {
            gate,
            redis,
            config,
            upstream,
            admin_token,
            policy_path,
            metrics: StripedMetrics::new(),
            connections: Mutex::new(HashMap::new()),
        }))
    }

    /// Reads the policy file again; a bad policy is refused and the old one stays.
    pub fn reload(&self) -> Result<String> {
        let Some(path) = &self.policy_path else {
            self.gate.set_policy(Policy::default_policy());
            return Ok("built-in default policy reloaded".into());
        };
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let policy = Policy::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        self.gate.set_policy(policy);
        Ok(format!("policy reloaded from {}", path.display()))
    }

    fn admin_ok(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = &self.admin_token else {
            return false;
        };
        let Some(v) = headers.get(header::AUTHORIZATION).map(HeaderValue::as_bytes) else {
            return false;
        };
        let Some(t) = v.strip_prefix(b"Bearer ") else {
            return false;
        };
        bool::from(expected.expose().ct_eq(t))
    }

    fn render_metrics(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        out += "# HELP wikiguard_gate_decisions_total Requests by class and decision.\n# TYPE wikiguard_gate_decisions_total counter\n";
        let mut rows = Vec::new();
        for (c, row) in self.metrics.stripes[0].decisions.iter().enumerate() {
            for d in 0..row.len() {
                let n = self.metrics.total(|m| &m.decisions[c][d]);
                if n > 0 {
                    let class = Class::ALL.get(c).map_or("other", |k| k.as_str());
                    rows.push((class, DECISIONS.get(d).copied().unwrap_or("allow"), n));
                }
            }
        }
        for (class, decision, n) in rows {
            let _ = writeln!(
                out,
                "wikiguard_gate_decisions_total{{class=\"{class}\",decision=\"{decision}\"}} {n}"
            );
        }

        out += "# HELP wikiguard_gate_decision_seconds Time to decide a request.\n# TYPE wikiguard_gate_decision_seconds histogram\n";
        self.metrics
            .histogram(|m| &m.decision_seconds)
            .render(&mut out, "wikiguard_gate_decision_seconds", "");
        out += "# HELP wikiguard_gate_upstream_seconds Time until the wiki's response head.\n# TYPE wikiguard_gate_upstream_seconds histogram\n";
        self.metrics
            .histogram(|m| &m.upstream_seconds)
            .render(&mut out, "wikiguard_gate_upstream_seconds", "");
        let _ = writeln!(
            out,
            "# TYPE wikiguard_gate_upstream_errors_total counter\nwikiguard_gate_upstream_errors_total {}",
            self.metrics.total(|m| &m.upstream_errors)
        );
        for (name, n) in [
            ("issued", self.metrics.total(|m| &m.challenges_issued)),
            ("solved", self.metrics.total(|m| &m.challenges_solved)),
            ("failed", self.metrics.total(|m| &m.challenges_failed)),
        ] {
            let _ = writeln!(out, "wikiguard_gate_challenges_total{{outcome=\"{name}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# TYPE wikiguard_gate_limiter_keys gauge\nwikiguard_gate_limiter_keys {}",
            self.gate.store().key_count()
        );
        if let Some(r) = &self.redis {
            let _ = writeln!(out, "# HELP wikiguard_gate_redis_up Whether the last rate-limit step reached Redis.\n# TYPE wikiguard_gate_redis_up gauge\nwikiguard_gate_redis_up {}", u8::from(r.up()));
            let _ = writeln!(out, "# HELP wikiguard_gate_redis_fallbacks_total Rate-limit steps served by local counters while Redis was down.\n# TYPE wikiguard_gate_redis_fallbacks_total counter\nwikiguard_gate_redis_fallbacks_total {}", r.fallbacks());
        }
        out
    }
}

/// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded.
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const X_WIKIGUARD_REFERENCE: HeaderName = HeaderName::from_static("x-wikiguard-reference");
const X_WIKIGUARD_DECISION: HeaderName = HeaderName::from_static("x-wikiguard-decision");

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none or only `Connection`: one look at each name present says which
    // of the listed names to remove (a removal of an absent name still hashes it).
    let mut present = 0u16;
    for name in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|h| h == name) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    // Connection (the first listed) names more headers to drop. The usual options
    // ("keep-alive", "close", "upgrade") are listed anyway or name no header, so they cost no
    // allocation.
    if present & 1 != 0 {
        let listed: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|n| {
                !n.eq_ignore_ascii_case("close") && !HOP_BY_HOP.iter().any(|h| n.eq_ignore_ascii_case(h.as_str()))
            })
            .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
            .collect();
        for n in listed {
            headers.remove(n);
        }
    }
    for (i, n) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(n);
        }
    }
}

fn simple_page(status: StatusCode, title: &str, text: &str, reference: &str) -> Response<Body> {
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>\
         <body><main><h1>{t}</h1><p>{x}</p><p>Reference: <code>{r}</code>. Quote it if you contact the wiki's \
         administrators.</p></main></body></html>\n",
        t = wikiguard_gate::escape_html(title),
        x = wikiguard_gate::escape_html(text),
        r = wikiguard_gate::escape_html(reference)
    );
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(reference) {
        h.insert(X_WIKIGUARD_REFERENCE, v);
    }
    resp
}

fn text_response(status: StatusCode, content_type: &'static str, text: String) -> Response<Body> {
    let mut resp = Response::new(full(text));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    text_response(status, "application/json", value.to_string())
}

/// `{"error": {"code", "message"}}`.
fn json_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json_response(status, &json!({"error": {"code": code, "message": message}}))
}

/// The answer for a decision that is not "proxy it": the gate crate's pages and headers.
fn refusal(state: &GateState, decision: &Decision, facts: &RequestFacts<'_>, now: u64) -> Option<Response<Body>> {
    const HTML: &str = "text/html; charset=utf-8";
    let (status, content_type, body) = match decision {
        Decision::Allow { .. } => return None,
        Decision::Deny { reason, reference } => (
            StatusCode::FORBIDDEN,
            HTML,
            wikiguard_gate::deny_page(reason, reference),
        ),
        Decision::Challenge { difficulty, reference } => {
            state.metrics.local().challenges_issued.fetch_add(1, Ordering::Relaxed);
            (
                StatusCode::FORBIDDEN,
                HTML,
                state.gate.challenge_page(facts, *difficulty, reference, now),
            )
        }
        // Machine clients get plain text they can log, with the API etiquette.
        Decision::Limit {
            machine_message: Some(m),
            reference,
            ..
        } => (
            StatusCode::TOO_MANY_REQUESTS,
            "text/plain; charset=utf-8",
            format!("{m}\nReference: {reference}\n"),
        ),
        Decision::Limit {
            retry_after_secs,
            reference,
            ..
        } => (
            StatusCode::TOO_MANY_REQUESTS,
            HTML,
            wikiguard_gate::limit_page(*retry_after_secs, reference),
        ),
    };
    let mut resp = text_response(status, content_type, body);
    for (name, value) in decision.headers() {
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, v);
        }
    }
    Some(resp)
}

async fn read_body_limited(body: Incoming, limit: usize) -> Option<Bytes> {
    let collected = http_body_util::Limited::new(body, limit).collect().await.ok()?;
    Some(collected.to_bytes())
}

type Upstream = Arc<UpstreamPool>;

/// One worker's pool of connections to the wiki.
fn upstream_client(config: &GateConfig, upstream: &Uri) -> Upstream {
    Arc::new(UpstreamPool::new(
        upstream.host().unwrap_or("127.0.0.1"),
        upstream.port_u16().unwrap_or(80),
        UpstreamTimeouts {
            connect: Duration::from_millis(config.timeouts.upstream_connect_ms),
            response: Duration::from_millis(config.timeouts.upstream_response_ms),
            client_body_pause: Duration::from_millis(config.timeouts.client_body_ms),
            idle: Duration::from_millis(config.timeouts.idle_ms),
        },
    ))
}

/// Handles one request.
async fn handle(
    state: Arc<GateState>,
    client: Upstream,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let now = now_ms();
    let client_ip = state.gate.client_ip(peer.ip(), req.headers());

    if let Some(rest) = req.uri().path().strip_prefix("/.wikiguard/") {
        let rest = rest.to_string();
        return Ok(own_endpoint(&state, &rest, client_ip, req, now).await);
    }

    let (mut parts, body) = req.into_parts();
    let facts = RequestFacts {
        method: &parts.method,
        uri: &parts.uri,
        headers: &parts.headers,
        client_ip,
    };
    let outcome = state.gate.evaluate(&facts, now);
    let metrics = state.metrics.local();
    GateMetrics::time(&metrics.decision_seconds, started.elapsed());
    let class = outcome.classified.class.as_str();
    metrics.decision(outcome.classified.class, outcome.would_be.kind());
    log_decision(&state, &outcome, class, &parts.method, parts.uri.path());
    if let Some(resp) = refusal(&state, &outcome.decision, &facts, now) {
        return Ok(resp);
    }
    // Only the cookies are needed to follow sessions through a login or logout.
    let mut cookies = HeaderMap::new();
    for v in parts.headers.get_all(header::COOKIE) {
        cookies.append(header::COOKIE, v.clone());
    }

    // Proxy: forward the client's facts, strip hop-by-hop headers, rewrite the target.
    let original_host = parts.headers.get(header::HOST).cloned();
    strip_hop_by_hop(&mut parts.headers);
    forward_headers(
        &mut parts.headers,
        peer.ip(),
        client_ip,
        state.gate.trusted_proxies(),
        original_host.as_ref(),
    );
    if !parts.headers.contains_key(header::HOST) {
        // HTTP/2 clients name the host in `:authority`; HTTP/1.1 to the wiki needs `Host`.
        let authority = parts.uri.authority().or(state.upstream.authority());
        if let Some(v) = authority.and_then(|a| HeaderValue::from_str(a.as_str()).ok()) {
            parts.headers.insert(header::HOST, v);
        }
    }
    if !to_origin_form(&mut parts.uri) {
        return Ok(simple_page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The request target is not valid.",
            "-",
        ));
    }
    let upstream_req = Request::from_parts(parts, body);
    let t = Instant::now();
    let response = client.request(upstream_req).await;
    GateMetrics::time(&metrics.upstream_seconds, t.elapsed());
    let mut resp = match response {
        Ok(r) => r.map(Either::Right),
        Err(e) => {
            // (status, title, text, whether the wiki is at fault)
            let (status, title, text, wiki) = match &e {
                UpstreamError::Timeout => (
                    StatusCode::GATEWAY_TIMEOUT,
                    "The wiki is slow",
                    "The wiki did not answer in time. Please try again in a moment.",
                    true,
                ),
                UpstreamError::ClientBodyTimeout => (
                    StatusCode::REQUEST_TIMEOUT,
                    "Request timeout",
                    "Your browser stopped sending the request. Please try again.",
                    false,
                ),
                UpstreamError::ClientBody(_) => (
                    StatusCode::BAD_REQUEST,
                    "Bad request",
                    "The request's body could not be read.",
                    false,
                ),
                UpstreamError::Wiki(_) => (
                    StatusCode::BAD_GATEWAY,
                    "The wiki is not answering",
                    "The wiki behind this gate could not be reached. Please try again in a moment.",
                    true,
                ),
            };
            if wiki {
                metrics.upstream_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "upstream request failed");
            }
            return Ok(simple_page(status, title, text, "-"));
        }
    };
    // Remember sessions MediaWiki hands out at a successful login (keyed hashes only).
    state
        .gate
        .observe_response(&cookies, resp.status().as_u16(), resp.headers(), now);
    strip_hop_by_hop(resp.headers_mut());
    Ok(resp)
}

/// Puts the request target in origin form (`/path?query`), as a client sends it over
/// HTTP/1.1 (the client's Host stays); false when it cannot be.
fn to_origin_form(uri: &mut Uri) -> bool {
    if uri.scheme().is_none() && uri.authority().is_none() {
        // Already `/path?query` (or `*`): parsing its path and query again would give it back.
        return true;
    }
    let pq = uri.path_and_query().map_or("/", |p| p.as_str());
    match Uri::try_from(pq) {
        Ok(origin) => {
            *uri = origin;
            true
        }
        Err(_) => false,
    }
}

/// X-Forwarded-For / -Proto / -Host and Forwarded for the upstream: a trusted peer's chain is
/// extended, an untrusted client's is replaced (never passed on).
fn forward_headers(headers: &mut HeaderMap, peer: IpAddr, client: IpAddr, trusted: &IpSet, host: Option<&HeaderValue>) {
    let trusted_peer = trusted.contains(peer);
    // One buffer holds the three new values; each header value is a slice of it.
    let mut text = String::with_capacity(128);
    if trusted_peer {
        for prior in headers.get_all(&X_FORWARDED_FOR).iter().filter_map(|v| v.to_str().ok()) {
            text.push_str(prior);
            text.push_str(", ");
        }
    }
    wikiguard_gate::push_ip(&mut text, peer);
    let chain_end = text.len();
    // A visible-ASCII value (what to_str accepts) is a valid header value as it is.
    let proto = trusted_peer
        .then(|| headers.get(&X_FORWARDED_PROTO))
        .flatten()
        .filter(|v| v.to_str().is_ok())
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("http"));
    let proto_text = proto.to_str().unwrap_or("http");
    wikiguard_gate::push_ip(&mut text, client);
    let real_ip_end = text.len();
    // RFC 7239: an IPv6 address is quoted and in brackets.
    let (open, close) = if client.is_ipv4() {
        ("for=", "")
    } else {
        ("for=\"[", "]\"")
    };
    text.push_str(open);
    wikiguard_gate::push_ip(&mut text, client);
    text.push_str(close);
    text.push_str(";proto=");
    text.push_str(proto_text);
    let shared = Bytes::from(text);
    let value = |r: std::ops::Range<usize>| HeaderValue::from_maybe_shared(shared.slice(r));
    let chain = value(0..chain_end);
    let real_ip = value(chain_end..real_ip_end);
    let forwarded = value(real_ip_end..shared.len());
    headers.remove(&X_FORWARDED_FOR);
    headers.remove(header::FORWARDED);
    headers.remove(&X_REAL_IP);
    if let Ok(v) = chain {
        headers.insert(X_FORWARDED_FOR.clone(), v);
    }
    headers.insert(X_FORWARDED_PROTO.clone(), proto);
    if let Ok(v) = real_ip {
        headers.insert(X_REAL_IP.clone(), v);
    }
    if let Ok(v) = forwarded {
        headers.insert(header::FORWARDED, v);
    }
    if let Some(h) = host {
        headers.insert(X_FORWARDED_HOST, h.clone());
    }
}

thread_local! {
    static DECISIONS_SEEN: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn log_decision(state: &GateState, outcome: &wikiguard_gate::Outcome, class: &str, method: &Method, path: &str) {
    let name = outcome.would_be.kind();
    let reference = outcome.would_be.reference();
    // Refusals are always logged (their reference must find the line); allows are sampled.
    let sample = state.config.decision_log_sample.clamp(0.0, 1.0);
    let every = if sample <= 0.0 {
        u64::MAX
    } else {
        (1.0 / sample).round().max(1.0) as u64
    };
    // Counted per worker thread, so no counter bounces between cores on every request: each
    // worker logs every `every`-th allow it decides.
    let n = DECISIONS_SEEN.with(|c| {
        let n = c.get().wrapping_add(1);
        c.set(n);
        n
    });
    if name != "allow" || n.is_multiple_of(every) {
        // The path only (no query: it may hold tokens), never the IP or cookies.
        tracing::info!(
            decision = name,
            reference = %reference,
            shadow = outcome.shadow,
            rule = outcome.rule.as_deref().unwrap_or("-"),
            tier = outcome.tier.as_str(),
            class,
            %method,
            path,
            "gate decision"
        );
    }
}

/// `/.wikiguard/…`.
async fn own_endpoint(
    state: &GateState,
    rest: &str,
    client_ip: IpAddr,
    req: Request<Incoming>,
    now: u64,
) -> Response<Body> {
    match (req.method().clone(), rest) {
        (_, "challenge/verify") => {
            let (parts, body) = req.into_parts();
            let mut bytes = parts
                .uri
                .query()
                .map(|q| Bytes::copy_from_slice(q.as_bytes()))
                .unwrap_or_default();
            if parts.method == Method::POST {
                match read_body_limited(body, 16 * 1024).await {
                    Some(b) => bytes = b,
                    None => {
                        return simple_page(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "Too large",
                            "The answer is too large.",
                            "-",
                        )
                    }
                }
            }
            let facts = RequestFacts {
                method: &parts.method,
                uri: &parts.uri,
                headers: &parts.headers,
                client_ip,
            };
            match state.gate.verify_challenge_pass(&bytes, &facts, now) {
                Ok(verified) => {
                    state.metrics.local().challenges_solved.fetch_add(1, Ordering::Relaxed);
                    let mut resp = Response::new(full("Verified; continue to the wiki.\n"));
                    *resp.status_mut() = StatusCode::SEE_OTHER;
                    let h = resp.headers_mut();
                    if let Ok(v) = HeaderValue::from_str(&verified.set_cookie) {
                        h.insert(header::SET_COOKIE, v);
                    }
                    let location = wikiguard_gate::safe_return(Some(&verified.return_to));
                    if let Ok(v) = HeaderValue::from_str(&location) {
                        h.insert(header::LOCATION, v);
                    }
                    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                    resp
                }
                Err(e) => {
                    state.metrics.local().challenges_failed.fetch_add(1, Ordering::Relaxed);
                    simple_page(
                        StatusCode::FORBIDDEN,
                        "Check failed",
                        &format!("The check did not pass: {e}. Reload the page to try again."),
                        "-",
                    )
                }
            }
        }
        (_, "auth") => forward_auth(state, client_ip, req, now),
        (Method::POST, "admin/explain" | "admin/reload") if !state.admin_ok(req.headers()) => json_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send Authorization: Bearer <admin token>",
        ),
        (Method::POST, "admin/explain") => {
            let Some(body) = read_body_limited(req.into_body(), 64 * 1024).await else {
                return json_error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "at most 64 KiB");
            };
            match explain_json(&state.gate, &body, now) {
                Ok(v) => json_response(StatusCode::OK, &v),
                Err(e) => json_error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string()),
            }
        }
        (Method::POST, "admin/reload") => match state.reload() {
            Ok(msg) => {
                tracing::info!("{msg}");
                json_response(StatusCode::OK, &json!({"ok": true, "message": msg}))
            }
            Err(e) => {
                tracing::warn!(error = %e, "policy refused; the old one stays");
                json_error(
                    StatusCode::BAD_REQUEST,
                    "bad_policy",
                    &format!("{e:#}; the old policy stays"),
                )
            }
        },
        (Method::GET, "metrics") if client_ip.is_loopback() || state.admin_ok(req.headers()) => text_response(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            state.render_metrics(),
        ),
        (Method::GET, "healthz") => text_response(StatusCode::OK, "text/plain; charset=utf-8", "ok\n".into()),
        _ => json_error(StatusCode::NOT_FOUND, "not_found", "no such gate endpoint"),
    }
}

/// nginx `auth_request`: the original request's method and URI come in `X-Original-Method` and
/// `X-Original-URI`. 204 allow; 401 challenge (serve the challenge page from
/// `error_page 401`); 403 deny; 429 limit (with Retry-After). The decision and reference are in
/// `X-WikiGuard-Decision` and `X-WikiGuard-Reference`.
fn forward_auth(state: &GateState, client_ip: IpAddr, req: Request<Incoming>, now: u64) -> Response<Body> {
    let headers = req.headers();
    let method = headers
        .get("x-original-method")
        .and_then(|v| Method::from_bytes(v.as_bytes()).ok())
        .unwrap_or(Method::GET);
    let uri: Uri = headers
        .get("x-original-uri")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| Uri::from_static("/"));
    let facts = RequestFacts {
        method: &method,
        uri: &uri,
        headers,
        client_ip,
    };
    let outcome = state.gate.evaluate(&facts, now);
    state
        .metrics
        .local()
        .decision(outcome.classified.class, outcome.would_be.kind());
    let decision = outcome.decision;
    let reference = *decision.reference();
    let status = match &decision {
        Decision::Allow { .. } => StatusCode::NO_CONTENT,
        Decision::Challenge { .. } => StatusCode::UNAUTHORIZED,
        Decision::Deny { .. } => StatusCode::FORBIDDEN,
        Decision::Limit { .. } => StatusCode::TOO_MANY_REQUESTS,
    };
    let mut resp = match refusal(state, &decision, &facts, now) {
        Some(mut r) if status != StatusCode::NO_CONTENT => {
            *r.status_mut() = status;
            r
        }
        _ => {
            let mut r = Response::new(full(Bytes::new()));
            *r.status_mut() = status;
            r
        }
    };
    let h = resp.headers_mut();
    h.insert(X_WIKIGUARD_DECISION, HeaderValue::from_static(decision.kind()));
    if let Ok(v) = HeaderValue::from_str(&reference) {
        h.insert(X_WIKIGUARD_REFERENCE, v);
    }
    resp
}

/// `{"method", "url", "headers": {name: value}, "client_ip"}` → the gate's explanation.
pub fn explain_json(gate: &Gate, body: &[u8], now: u64) -> Result<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(body).context("the body is not JSON")?;
    let method = v.get("method").and_then(|m| m.as_str()).unwrap_or("GET");
    let method = Method::from_bytes(method.as_bytes()).context("method: not an HTTP method")?;
    let url = v
        .get("url")
        .and_then(|u| u.as_str())
        .context("url: required, e.g. \"/w/index.php?title=X&action=history\"")?;
    let uri: Uri = url.parse().context("url: not a valid request target")?;
    let ip: IpAddr = v
        .get("client_ip")
        .and_then(|u| u.as_str())
        .unwrap_or("127.0.0.1")
        .parse()
        .context("client_ip: not an IP address")?;
    let mut headers = HeaderMap::new();
    if let Some(h) = v.get("headers").and_then(|h| h.as_object()) {
        for (k, val) in h {
            let name =
                HeaderName::from_bytes(k.as_bytes()).with_context(|| format!("headers.{k}: not a header name"))?;
            let val = val
                .as_str()
                .map(HeaderValue::from_str)
                .transpose()
                .with_context(|| format!("headers.{k}: not a header value"))?;
            if let Some(val) = val {
                headers.insert(name, val);
            }
        }
    }
    let facts = RequestFacts {
        method: &method,
        uri: &uri,
        headers: &headers,
        client_ip: ip,
    };
    serde_json::to_value(gate.explain(&facts, now)).context("serializing the explanation")
}

/// Binds `listen` and runs one single-threaded runtime per worker thread: the first also runs
/// the accept loop, which hands each connection to the worker with the fewest open ones, and
/// a connection stays on its worker, so a request never crosses threads between the client's
/// connection, the decision and the upstream connection. Returns the bound address and the
/// workers; they end at SIGINT/SIGTERM.
pub fn spawn_workers(
    state: Arc<GateState>,
    listen: &str,
    workers: usize,
) -> Result<(SocketAddr, Vec<std::thread::JoinHandle<Result<()>>>)> {
    let addr: SocketAddr = listen
        .parse()
        .with_context(|| format!("gate.listen = {listen:?}: expected address:port"))?;
    let bind = |addr: SocketAddr| -> Result<std::net::TcpListener> {
        let sock = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
        sock.set_reuse_address(true)?;
        sock.set_nonblocking(true)?;
        sock.bind(&addr.into())?;
        sock.listen(1024)?;
        Ok(sock.into())
    };
    let listener = bind(addr).with_context(|| format!("gate: listening on {addr}"))?;
    let bound = listener.local_addr().context("reading the gate's address")?;
    let n = workers.max(1);
    let loads: Arc<[AtomicUsize]> = (0..n).map(|_| AtomicUsize::new(0)).collect();
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..n).map(|_| tokio::sync::mpsc::unbounded_channel()).unzip();
    let mut acceptor = Some(Acceptor {
        listener,
        workers: senders,
        loads,
    });
    let mut handles = Vec::new();
    for (i, connections) in receivers.into_iter().enumerate() {
        let st = state.clone();
        let acceptor = acceptor.take();
        let h = std::thread::Builder::new()
            .name(format!("wikiguard-gate-{i}"))
            .spawn(move || -> Result<()> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("gate runtime")?;
                rt.block_on(run(st, Worker { connections }, acceptor))
            })
            .context("starting a gate worker")?;
        handles.push(h);
    }
    Ok((bound, handles))
}

/// A connection handed to a worker: the socket, the peer, and its place in the counts.
type Handoff = (std::net::TcpStream, SocketAddr, Ticket);

/// A connection's place in its client's per-IP count and in its worker's load. Dropping it
/// gives both back, however the connection ends: closed, failed, its task panicked or was
/// cancelled at shutdown, or never served because it was still queued for a worker.
struct Ticket {
    state: Arc<GateState>,
    ip: IpAddr,
    loads: Arc<[AtomicUsize]>,
    worker: usize,
}

impl Ticket {
    /// Counts a new connection from `ip` and against `worker`'s load; `None` when `ip` already
    /// has as many open connections as allowed (the connection is then to be closed).
    fn take(state: &Arc<GateState>, ip: IpAddr, loads: &Arc<[AtomicUsize]>, worker: usize) -> Option<Ticket> {
        {
            let mut conns = state.connections.lock().unwrap_or_else(|p| p.into_inner());
            let n = conns.entry(ip).or_default();
            if state.config.max_connections_per_ip > 0 && *n >= state.config.max_connections_per_ip {
                return None;
            }
            *n += 1;
        }
        loads[worker].fetch_add(1, Ordering::Relaxed);
        Some(Ticket {
            state: Arc::clone(state),
            ip,
            loads: Arc::clone(loads),
            worker,
        })
    }

    /// Moves the connection's load to another worker.
    fn move_to(&mut self, worker: usize) {
        self.loads[self.worker].fetch_sub(1, Ordering::Relaxed);
        self.loads[worker].fetch_add(1, Ordering::Relaxed);
        self.worker = worker;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.loads[self.worker].fetch_sub(1, Ordering::Relaxed);
        let mut conns = self.state.connections.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = conns.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                conns.remove(&self.ip);
            }
        }
    }
}

/// The one accept loop: it gives each new connection to the worker with the fewest open ones.
/// (One listener per worker with SO_REUSEPORT spreads connections by a hash of their
/// addresses, which left one worker with 20 of 32 keep-alive clients and the other idle half
/// the time; the busy one's queue set the p99.)
struct Acceptor {
    listener: std::net::TcpListener,
    workers: Vec<tokio::sync::mpsc::UnboundedSender<Handoff>>,
    loads: Arc<[AtomicUsize]>,
}

/// One worker's share: the connections it is handed.
struct Worker {
    connections: tokio::sync::mpsc::UnboundedReceiver<Handoff>,
}

impl Acceptor {
    /// Accepts until no worker is left to serve (or the task is aborted at shutdown).
    async fn run(self, state: Arc<GateState>) -> Result<()> {
        let listener = tokio::net::TcpListener::from_std(self.listener).context("gate listener")?;
        // A worker whose thread ended stops taking connections; the others go on.
        let mut alive = vec![true; self.workers.len()];
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
            let Some(first) = least_loaded(&self.loads, &alive) else {
                break;
            };
            // From here on the ticket gives the counts back on every path.
            let Some(ticket) = Ticket::take(&state, peer.ip(), &self.loads, first) else {
                // Over the per-IP connection limit: close at once.
                drop(stream);
                continue;
            };
            let stream = match stream.into_std() {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "could not hand a connection to a worker");
                    continue;
                }
            };
            let mut handoff = (stream, peer, ticket);
            loop {
                let worker = handoff.2.worker;
                match self.workers[worker].send(handoff) {
                    Ok(()) => break,
                    Err(tokio::sync::mpsc::error::SendError(back)) => {
                        tracing::error!(worker, "gate: a worker has stopped; its share goes to the others");
                        alive[worker] = false;
                        handoff = back;
                        match least_loaded(&self.loads, &alive) {
                            Some(next) => handoff.2.move_to(next),
                            None => break, // dropped with its ticket
                        }
                    }
                }
            }
        }
        anyhow::bail!("every gate worker has stopped")
    }
}

/// The live worker with the fewest open connections.
fn least_loaded(loads: &[AtomicUsize], alive: &[bool]) -> Option<usize> {
    (0..loads.len())
        .filter(|i| alive.get(*i).copied().unwrap_or(false))
        .min_by_key(|i| loads[*i].load(Ordering::Relaxed))
}

/// Serves the connections handed to this worker until SIGINT/SIGTERM. The worker that runs
/// the acceptor also reloads the policy on SIGHUP.
async fn run(state: Arc<GateState>, mut worker: Worker, acceptor: Option<Acceptor>) -> Result<()> {
    let client = upstream_client(&state.config, &state.upstream);
    UpstreamPool::reap_idle(&client);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(state.config.timeouts.header_read_ms))
        .max_buf_size(state.config.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(state.config.max_header_bytes as u32);
    let builder = Arc::new(builder);
    // Tokio wakes its driver through an eventfd (a write, then one more epoll_wait) whenever a
    // timer is set earlier than the driver's next planned wake-up. Each proxied request sets
    // hyper's header-read timer for the connection's next request after the upstream wait,
    // during which the driver planned to wake only at the upstream timeout, far later: two
    // extra syscalls per request. A timer that always fires within the next half second keeps
    // that planned wake-up close, so the request timers never come earlier than it.
    let anchor = tokio::spawn(async {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    // The worker that accepts also owns the signals: at SIGINT/SIGTERM it stops accepting, which
    // closes every worker's queue; the others serve what was already handed to them, then
    // finish their open connections too.
    let owns_signals = acceptor.is_some();
    let accepting = acceptor.map(|a| {
        let st = state.clone();
        tokio::spawn(async move {
            if let Err(e) = a.run(st).await {
                tracing::error!(error = %format!("{e:#}"), "gate: the accept loop stopped");
            }
        })
    });
    let mut shutdown = std::pin::pin!(crate::serve::shutdown_signal());
    #[cfg(unix)]
    let mut hup = if owns_signals {
        Some(tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).context("listening for SIGHUP")?)
    } else {
        None
    };
    loop {
        #[cfg(unix)]
        let hup_recv = async {
            match hup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hup_recv = std::future::pending::<Option<()>>();
        tokio::select! {
            handed = worker.connections.recv() => {
                let Some((stream, peer, ticket)) = handed else { break };
                let stream = match tokio::net::TcpStream::from_std(stream) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "gate: could not take over a connection");
                        continue; // the ticket gives the places back
                    }
                };
                let _ = stream.set_nodelay(true);
                let st = state.clone();
                let up = client.clone();
                let service = hyper::service::service_fn(move |req| handle(st.clone(), up.clone(), peer, req));
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    // hyper's header-read timeout also bounds the wait for the next request on
                    // a kept-alive connection: an idle client is closed by it.
                    let _ticket = ticket;
                    let _ = conn.await;
                });
            }
            _ = hup_recv => {
                match state.reload() {
                    Ok(msg) => tracing::info!("SIGHUP: {msg}"),
                    Err(e) => tracing::warn!(error = %format!("{e:#}"), "SIGHUP: policy refused; the old one stays"),
                }
            }
            () = &mut shutdown, if owns_signals => break,
        }
    }
    if let Some(a) = accepting {
        a.abort();
    }
    anchor.abort();
    tracing::info!("gate: finishing open connections");
    tokio::select! {
        () = graceful.shutdown() => {},
        () = tokio::time::sleep(Duration::from_secs(10)) => tracing::warn!("gate: connections still open after 10 s; closing"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        h
    }

    fn names(h: &HeaderMap) -> Vec<&str> {
        let mut n: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        n.sort_unstable();
        n
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_lists_are_stripped() {
        let mut h = map(&[
            ("accept", "text/html"),
            ("connection", "close, keep-alive, X-Trace"),
            ("connection", "Upgrade"),
            ("keep-alive", "timeout=5"),
            ("x-trace", "1"),
            ("upgrade", "h2c"),
            ("te", "trailers"),
            ("proxy-connection", "keep-alive"),
            ("transfer-encoding", "chunked"),
            ("cookie", "a=b"),
        ]);
        strip_hop_by_hop(&mut h);
        assert_eq!(names(&h), ["accept", "cookie"]);
        // Only a hop-by-hop name makes the strip look at Connection's list.
        let mut h = map(&[
            ("accept", "text/html"),
            ("x-trace", "1"),
            ("proxy-authorization", "Basic x"),
        ]);
        strip_hop_by_hop(&mut h);
        assert_eq!(names(&h), ["accept", "x-trace"]);
        let mut h = map(&[("accept", "text/html"), ("x-trace", "1")]);
        strip_hop_by_hop(&mut h);
        assert_eq!(names(&h), ["accept", "x-trace"]);
    }
}
