//! Prometheus metrics in the text exposition format (version 0.0.4), kept in atomics.
//! Nothing here carries request content: only counts and durations.

use crate::engine::EngineStats;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds (seconds) of the request-duration histogram buckets.
const BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0];

/// A Prometheus histogram of durations (seconds) over [`BUCKETS`].
#[derive(Default)]
pub struct Histogram {
    /// Per bucket (not cumulative); the last one is above every bound.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, secs: f64) {
        let bucket = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((secs * 1e6) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.counts[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
    }
}

#[derive(Default)]
pub struct Metrics {
    /// (endpoint, status) -> count. Few distinct keys, so a small vector is enough.
    requests: Mutex<Vec<((&'static str, u16), u64)>>,
    durations: Histogram,
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
        self.durations.observe(secs);
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
        self.durations.render(
            &mut out,
            "veritee_request_duration_seconds",
            "Time from request to last byte handed to the connection.",
        );
        engine.time_to_first_token.render(
            &mut out,
            "veritee_time_to_first_token_seconds",
            "Time from a job's arrival (queue wait included) to its first generated token.",
        );
        let steps = engine.steps.load(Ordering::Relaxed);
        let step_jobs = engine.step_jobs.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP veritee_batch_occupancy_mean Mean number of jobs per engine step since start.\n\
             # TYPE veritee_batch_occupancy_mean gauge\n\
             veritee_batch_occupancy_mean {}",
            if steps == 0 { 0.0 } else { step_jobs as f64 / steps as f64 }
        );
        for (name, kind, help, value) in [
            (
                "veritee_jobs_queued",
                "gauge",
                "Jobs waiting to join the engine's batch.",
                gu(&engine.queued) as u64,
            ),
            (
                "veritee_jobs_active",
                "gauge",
                "Jobs in the engine's batch now (prefilling or decoding).",
                gu(&engine.active) as u64,
            ),
            (
                "veritee_batch_max_jobs",
                "gauge",
                "Most jobs the batch may hold (limits.max_batch).",
                gu(&engine.max_batch) as u64,
            ),
            (
                "veritee_engine_steps_total",
                "counter",
                "Engine steps (one pass of the batch through the weights).",
                engine.steps.load(Ordering::Relaxed),
            ),
            (
                "veritee_engine_step_jobs_total",
                "counter",
                "Sum over steps of the jobs in them (occupancy = this / steps).",
                engine.step_jobs.load(Ordering::Relaxed),
            ),
            (
                "veritee_engine_device_microseconds_total",
                "counter",
                "Device time the engine's steps used, in microseconds (the jobs' metered device times add up to it).",
                engine.device_micros.load(Ordering::Relaxed),
            ),
            (
                "veritee_kv_cache_budget_tokens",
                "gauge",
                "KV-cache positions the batch may reserve (limits.kv_cache_mib).",
                gu(&engine.kv_budget_tokens) as u64,
            ),
            (
                "veritee_kv_cache_reserved_tokens",
                "gauge",
                "KV-cache positions reserved by the jobs in the batch (prompt + max_tokens each).",
                gu(&engine.kv_reserved_tokens) as u64,
            ),
            (
                "veritee_kv_cache_used_tokens",
                "gauge",
                "KV-cache positions filled in the batch after the last step.",
                gu(&engine.kv_used_tokens) as u64,
            ),
            (
                "veritee_kv_cache_used_bytes",
                "gauge",
                "Bytes of KV cache filled in the batch after the last step.",
                (gu(&engine.kv_used_tokens) * gu(&engine.kv_bytes_per_token)) as u64,
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
