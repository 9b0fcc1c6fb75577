//! Prometheus metrics in the text exposition format (version 0.0.4), kept in atomics.
//! Nothing here carries request content: only counts and durations.

use crate::engine::EngineStats;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds (seconds) of the request-duration histogram buckets.
const BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0];

#[derive(Default)]
pub struct Metrics {
    /// (endpoint, status) -> count. Few distinct keys, so a small vector is enough.
    requests: Mutex<Vec<((&'static str, u16), u64)>>,
    durations: [AtomicU64; BUCKETS.len() + 1],
    duration_sum_micros: AtomicU64,
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
    pub connections_refused: AtomicU64,
    pub connections_evicted: AtomicU64,
    pub tls_handshake_failures: AtomicU64,
    pub attestations: AtomicU64,
    pub receipts: AtomicU64,
    pub receipt_failures: AtomicU64,
}

impl Metrics {
    pub fn record(&self, endpoint: &'static str, status: u16, secs: f64) {
        {
            let mut r = self.requests.lock().expect("metrics lock");
            match r.iter_mut().find(|(k, _)| *k == (endpoint, status)) {
                Some((_, n)) => *n += 1,
                None => r.push(((endpoint, status), 1)),
            }
        }
        let bucket = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.durations[bucket].fetch_add(1, Ordering::Relaxed);
        self.duration_sum_micros
            .fetch_add((secs * 1e6) as u64, Ordering::Relaxed);
    }

    pub fn render(&self, engine: &EngineStats) -> String {
        let mut out = String::new();
        let g = |v: &AtomicU64| v.load(Ordering::Relaxed);
        let gu = |v: &std::sync::atomic::AtomicUsize| v.load(Ordering::Relaxed);
        out.push_str("# HELP veritee_requests_total HTTP requests by endpoint and status.\n");
        out.push_str("# TYPE veritee_requests_total counter\n");
        let mut requests = self.requests.lock().expect("metrics lock").clone();
        requests.sort();
        for ((endpoint, status), n) in requests {
            let _ = writeln!(
                out,
                "veritee_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP veritee_request_duration_seconds Time from request to last byte handed to the connection.\n");
        out.push_str("# TYPE veritee_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += g(&self.durations[i]);
            let _ = writeln!(
                out,
                "veritee_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += g(&self.durations[BUCKETS.len()]);
        let _ = writeln!(
            out,
            "veritee_request_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
        );
        let _ = writeln!(
            out,
            "veritee_request_duration_seconds_sum {}",
            g(&self.duration_sum_micros) as f64 / 1e6
        );
        let _ = writeln!(out, "veritee_request_duration_seconds_count {cumulative}");
        for (name, kind, help, value) in [
            (
                "veritee_jobs_queued",
                "gauge",
                "Jobs waiting for an engine thread.",
                gu(&engine.queued) as u64,
            ),
            (
                "veritee_jobs_active",
                "gauge",
                "Jobs generating now.",
                gu(&engine.active) as u64,
            ),
            (
                "veritee_jobs_completed_total",
                "counter",
                "Jobs finished.",
                gu(&engine.completed) as u64,
            ),
            (
                "veritee_prompt_tokens_total",
                "counter",
                "Prompt tokens processed.",
                gu(&engine.prompt_tokens) as u64,
            ),
            (
                "veritee_completion_tokens_total",
                "counter",
                "Tokens generated.",
                gu(&engine.completion_tokens) as u64,
            ),
            (
                "veritee_receipts_total",
                "counter",
                "Receipts signed and made durable.",
                g(&self.receipts),
            ),
            (
                "veritee_receipt_failures_total",
                "counter",
                "Jobs whose receipt could not be made durable (their result was withheld).",
                g(&self.receipt_failures),
            ),
            (
                "veritee_connections_open",
                "gauge",
                "Open client connections.",
                g(&self.connections_open),
            ),
            (
                "veritee_connections_total",
                "counter",
                "Connections accepted.",
                g(&self.connections_total),
            ),
            (
                "veritee_connections_refused_total",
                "counter",
                "Connections closed at once because the connection limit was reached.",
                g(&self.connections_refused),
            ),
            (
                "veritee_connections_evicted_total",
                "counter",
                "Connections without a request in progress closed at the limit to make room for a new one.",
                g(&self.connections_evicted),
            ),
            (
                "veritee_tls_handshake_failures_total",
                "counter",
                "TLS handshakes that failed or timed out.",
                g(&self.tls_handshake_failures),
            ),
            (
                "veritee_attestations_total",
                "counter",
                "Fresh evidence produced for /v1/attestation.",
                g(&self.attestations),
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_counters_render() {
        let m = Metrics::default();
        m.record("chat", 200, 0.07);
        m.record("chat", 200, 3.0);
        m.record("chat", 400, 500.0);
        let text = m.render(&EngineStats::default());
        assert!(text.contains("veritee_requests_total{endpoint=\"chat\",status=\"200\"} 2"));
        assert!(text.contains("veritee_requests_total{endpoint=\"chat\",status=\"400\"} 1"));
        assert!(text.contains("veritee_request_duration_seconds_bucket{le=\"0.1\"} 1"));
        assert!(text.contains("veritee_request_duration_seconds_bucket{le=\"5\"} 2"));
        assert!(text.contains("veritee_request_duration_seconds_bucket{le=\"+Inf\"} 3"));
        assert!(text.contains("veritee_request_duration_seconds_count 3"));
    }
}
