//! Prometheus metrics in the text exposition format, kept in one small registry.
//!
//! Hand-written rather than a metrics crate: the service needs counters and histograms with
//! a few labels, and the exposition format is simple. A check merges its per-filter numbers
//! under one lock, once, so the lock is taken once per request, not once per filter.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Latency buckets, seconds.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];
/// Condition-count buckets.
const CONDITION_BUCKETS: &[f64] = &[10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0];

/// A Prometheus histogram with fixed buckets.
#[derive(Debug, Clone)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    /// Empty, with these upper bounds.
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    /// Sets the state from per-bucket (not cumulative) counts, a sum and a count.
    pub fn load(&mut self, per_bucket: &[u64], sum: f64, count: u64) {
        let mut running = 0;
        for (c, n) in self.counts.iter_mut().zip(per_bucket) {
            running += n;
            *c = running;
        }
        self.sum = sum;
        self.count = count;
    }

    /// Counts one value.
    pub fn observe(&mut self, v: f64) {
        for (b, c) in self.bounds.iter().zip(self.counts.iter_mut()) {
            if v <= *b {
                *c += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    /// Writes the `_bucket`, `_sum` and `_count` lines.
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {c}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", self.count);
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

/// One route's requests: counts by status, and latency.
#[derive(Debug)]
struct RouteStats {
    statuses: BTreeMap<u16, u64>,
    latency: Histogram,
}

#[derive(Debug, Default)]
struct Inner {
    /// By route pattern (looked up by `&str`, so a request allocates nothing once its route
    /// has been seen).
    routes: BTreeMap<String, RouteStats>,
    checks: BTreeMap<(&'static str, &'static str), u64>,
    conditions: Option<Histogram>,
    filter_hits: BTreeMap<i64, u64>,
    filter_evals: BTreeMap<i64, (u64, f64)>,
    filter_errors: BTreeMap<(i64, String), u64>,
    condition_limit_reached: u64,
    filters_loaded: u64,
    filters_broken: u64,
}

/// What one check contributes, merged in one go.
#[derive(Debug, Default)]
pub struct CheckSample {
    /// Action name.
    pub action: &'static str,
    /// Verdict name.
    pub verdict: &'static str,
    /// Conditions used by all filters.
    pub conditions: usize,
    /// Per filter: (id, seconds, matched).
    pub filters: Vec<(i64, f64, bool)>,
    /// Filters that failed to evaluate: (id, error code).
    pub errors: Vec<(i64, &'static str)>,
    /// Whether the condition limit stopped the check early.
    pub limit_reached: bool,
}

/// The registry.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    /// One HTTP request to a route (the route's pattern, not the raw path).
    pub fn request(&self, route: &str, status: u16, seconds: f64) {
        self.with(|m| {
            if !m.routes.contains_key(route) {
                let fresh = RouteStats {
                    statuses: BTreeMap::new(),
                    latency: Histogram::new(LATENCY_BUCKETS),
                };
                m.routes.insert(route.to_string(), fresh);
            }
            if let Some(r) = m.routes.get_mut(route) {
                *r.statuses.entry(status).or_default() += 1;
                r.latency.observe(seconds);
            }
        });
    }

    /// One check.
    pub fn check(&self, s: &CheckSample) {
        self.with(|m| {
            *m.checks.entry((s.action, s.verdict)).or_default() += 1;
            m.conditions
                .get_or_insert_with(|| Histogram::new(CONDITION_BUCKETS))
                .observe(s.conditions as f64);
            // The sample lists the filters in the set's order, by id, and after the first check
            // every one is in the map: one walk along both, not a tree search per filter (200
            // of them under the lock). An id the walk cannot place is added afterwards.
            let mut missed = Vec::new();
            let mut evals = m.filter_evals.iter_mut().peekable();
            for &(id, secs, matched) in &s.filters {
                if matched {
                    *m.filter_hits.entry(id).or_default() += 1;
                }
                while evals.next_if(|(k, _)| **k < id).is_some() {}
                match evals.next_if(|(k, _)| **k == id) {
                    Some((_, e)) => {
                        e.0 += 1;
                        e.1 += secs;
                    }
                    None => missed.push((id, secs)),
                }
            }
            for (id, secs) in missed {
                let e = m.filter_evals.entry(id).or_default();
                e.0 += 1;
                e.1 += secs;
            }
            for &(id, code) in &s.errors {
                *m.filter_errors.entry((id, code.to_string())).or_default() += 1;
            }
            if s.limit_reached {
                m.condition_limit_reached += 1;
            }
        });
    }

    /// The filter set was (re)loaded: how many run, how many failed to compile.
    pub fn filters_loaded(&self, loaded: usize, broken: usize) {
        self.with(|m| {
            m.filters_loaded = loaded as u64;
            m.filters_broken = broken as u64;
        });
    }

    /// The exposition text, with the count of checked actions the recent-actions log left out
    /// (kept by the log itself, [`crate::recent::RecentLog::dropped`]).
    pub fn render(&self, recent_dropped: u64) -> String {
        self.with(|m| {
            let mut out = String::with_capacity(4096);
            out += "# HELP wikiguard_http_requests_total HTTP requests by route and status.\n";
            out += "# TYPE wikiguard_http_requests_total counter\n";
            for (route, r) in &m.routes {
                for (status, n) in &r.statuses {
                    let _ = writeln!(
                        out,
                        "wikiguard_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                        escape(route)
                    );
                }
            }
            out += "# HELP wikiguard_http_request_duration_seconds Request latency by route.\n";
            out += "# TYPE wikiguard_http_request_duration_seconds histogram\n";
            for (route, r) in &m.routes {
                r.latency.render(
                    &mut out,
                    "wikiguard_http_request_duration_seconds",
                    &format!("route=\"{}\"", escape(route)),
                );
            }
            out += "# HELP wikiguard_checks_total Checked actions by action and verdict.\n";
            out += "# TYPE wikiguard_checks_total counter\n";
            for ((action, verdict), n) in &m.checks {
                let _ = writeln!(
                    out,
                    "wikiguard_checks_total{{action=\"{}\",verdict=\"{}\"}} {n}",
                    escape(action),
                    escape(verdict)
                );
            }
            out += "# HELP wikiguard_check_conditions Conditions used per checked action.\n";
            out += "# TYPE wikiguard_check_conditions histogram\n";
            m.conditions
                .clone()
                .unwrap_or_else(|| Histogram::new(CONDITION_BUCKETS))
                .render(&mut out, "wikiguard_check_conditions", "");
            out += "# HELP wikiguard_condition_limit_reached_total Checks stopped by the condition limit.\n";
            out += "# TYPE wikiguard_condition_limit_reached_total counter\n";
            let _ = writeln!(
                out,
                "wikiguard_condition_limit_reached_total {}",
                m.condition_limit_reached
            );
            out += "# HELP wikiguard_recent_actions_dropped_total Checked actions left out of the recent-actions log (its queue full, or the store failing).\n";
            out += "# TYPE wikiguard_recent_actions_dropped_total counter\n";
            let _ = writeln!(out, "wikiguard_recent_actions_dropped_total {}", recent_dropped);
            out += "# HELP wikiguard_filter_hits_total Matches per filter.\n";
            out += "# TYPE wikiguard_filter_hits_total counter\n";
            for (id, n) in &m.filter_hits {
                let _ = writeln!(out, "wikiguard_filter_hits_total{{filter=\"{id}\"}} {n}");
            }
            out += "# HELP wikiguard_filter_eval_seconds Time spent evaluating each filter.\n";
            out += "# TYPE wikiguard_filter_eval_seconds summary\n";
            for (id, (n, secs)) in &m.filter_evals {
                let _ = writeln!(out, "wikiguard_filter_eval_seconds_sum{{filter=\"{id}\"}} {secs}");
                let _ = writeln!(out, "wikiguard_filter_eval_seconds_count{{filter=\"{id}\"}} {n}");
            }
            out += "# HELP wikiguard_filter_errors_total Evaluation errors per filter and error code.\n";
            out += "# TYPE wikiguard_filter_errors_total counter\n";
            for ((id, code), n) in &m.filter_errors {
                let _ = writeln!(
                    out,
                    "wikiguard_filter_errors_total{{filter=\"{id}\",code=\"{}\"}} {n}",
                    escape(code)
                );
            }
            out += "# HELP wikiguard_filters_enabled Enabled filters that compiled.\n";
            out += "# TYPE wikiguard_filters_enabled gauge\n";
            let _ = writeln!(out, "wikiguard_filters_enabled {}", m.filters_loaded);
            out += "# HELP wikiguard_filters_broken Enabled filters that failed to compile and do not run.\n";
            out += "# TYPE wikiguard_filters_broken gauge\n";
            let _ = writeln!(out, "wikiguard_filters_broken {}", m.filters_broken);
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.request("/v1/check", 200, 0.0003);
        m.check(&CheckSample {
            action: "edit",
            verdict: "disallow",
            conditions: 12,
            filters: vec![(3, 0.0001, true), (4, 0.0002, false)],
            errors: vec![(4, "regexfailure")],
            limit_reached: false,
        });
        let text = m.render(0);
        assert!(
            text.contains("wikiguard_http_requests_total{route=\"/v1/check\",status=\"200\"} 1"),
            "{text}"
        );
        assert!(text.contains("wikiguard_http_request_duration_seconds_bucket{route=\"/v1/check\",le=\"0.0005\"} 1"));
        assert!(text.contains("wikiguard_http_request_duration_seconds_bucket{route=\"/v1/check\",le=\"0.0001\"} 0"));
        assert!(text.contains("wikiguard_checks_total{action=\"edit\",verdict=\"disallow\"} 1"));
        assert!(text.contains("wikiguard_filter_hits_total{filter=\"3\"} 1"));
        assert!(!text.contains("wikiguard_filter_hits_total{filter=\"4\"}"));
        assert!(text.contains("wikiguard_filter_eval_seconds_count{filter=\"4\"} 1"));
        assert!(text.contains("wikiguard_filter_errors_total{filter=\"4\",code=\"regexfailure\"} 1"));
        assert!(text.contains("wikiguard_check_conditions_count 1"));
    }

    proptest::proptest! {
        /// Per-filter counts are the same whatever order the samples list their filters in and
        /// whichever ids are new: what a map entry per filter would give.
        #[test]
        fn per_filter_counts_add_up_in_any_order(
            samples in proptest::collection::vec(
                proptest::collection::vec((0i64..40, 0u32..1000, proptest::bool::ANY), 0..12),
                1..8,
            ),
        ) {
            let m = Metrics::default();
            let mut evals: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
            let mut hits: BTreeMap<i64, u64> = BTreeMap::new();
            for filters in &samples {
                // A check evaluates each filter once.
                let mut seen = std::collections::HashSet::new();
                let filters: Vec<(i64, f64, bool)> = filters
                    .iter()
                    .filter(|(id, _, _)| seen.insert(*id))
                    .map(|&(id, us, hit)| (id, f64::from(us) * 1e-6, hit))
                    .collect();
                for &(id, secs, hit) in &filters {
                    let e = evals.entry(id).or_default();
                    e.0 += 1;
                    e.1 += (secs * 1e6).round() as u64;
                    if hit {
                        *hits.entry(id).or_default() += 1;
                    }
                }
                m.check(&CheckSample {
                    action: "edit",
                    verdict: "none",
                    filters,
                    ..CheckSample::default()
                });
            }
            m.with(|inner| {
                let got: BTreeMap<i64, (u64, u64)> = inner
                    .filter_evals
                    .iter()
                    .map(|(id, (n, secs))| (*id, (*n, (secs * 1e6).round() as u64)))
                    .collect();
                proptest::prop_assert_eq!(&got, &evals);
                proptest::prop_assert_eq!(&inner.filter_hits, &hits);
                Ok(())
            })?;
        }
    }
}
