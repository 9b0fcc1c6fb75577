//! The auditor's cost model: how much device time a job may claim on one platform and
//! model, for the audit's time check.
//!
//! `device_ms ≈ overhead_ms + prefill_ms_per_token · prompt_tokens + decode_ms_per_token ·
//! output_tokens`, fitted (least squares, coefficients kept non-negative) on receipts
//! from honest runs on the reference platform (`veritee-verify cost-model`). A job may
//! claim up to `tolerance ×` the prediction `+ slack_ms`; the fit sets the tolerance to
//! the worst honest ratio with a quarter more on top, so the honest runs it saw all pass,
//! and the slack absorbs the clock granularity of very short jobs. Device time is a claim
//! the runtime signs: the model bounds how far it can be inflated, not whether a job
//! took a few percent longer than it needed.
//!
//! ```toml
//! model_digest = "<64 hex digits>"
//! platform = "<free text: CPU model, GPU, TEE>"
//! overhead_ms = 2.0
//! prefill_ms_per_token = 0.9
//! decode_ms_per_token = 11.5
//! tolerance = 2.1
//! slack_ms = 40.0
//! calibrated_from = "<free text: which runs>"
//! ```

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostModel {
    /// The model the figures are for (hex SHA-256, as in the receipts).
    pub model_digest: String,
    pub platform: String,
    pub overhead_ms: f64,
    pub prefill_ms_per_token: f64,
    pub decode_ms_per_token: f64,
    /// A job may claim at most `tolerance ×` the prediction (`+ slack_ms`).
    pub tolerance: f64,
    pub slack_ms: f64,
    pub calibrated_from: String,
}

/// Least-squares fits below this many jobs say little.
pub const MIN_JOBS: usize = 8;

impl CostModel {
    pub fn from_toml(text: &str) -> Result<CostModel, String> {
        let m: CostModel =
            toml::from_str(text).map_err(|e| format!("the cost model is not valid: {e}"))?;
        let finite = [
            ("overhead_ms", m.overhead_ms),
            ("prefill_ms_per_token", m.prefill_ms_per_token),
            ("decode_ms_per_token", m.decode_ms_per_token),
            ("tolerance", m.tolerance),
            ("slack_ms", m.slack_ms),
        ];
        for (name, v) in finite {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!(
                    "the cost model's {name} must be a non-negative number, got {v}"
                ));
            }
        }
        if m.tolerance < 1.0 {
            return Err(format!(
                "the cost model's tolerance must be at least 1, got {}",
                m.tolerance
            ));
        }
        match hex::decode(&m.model_digest) {
            Ok(d) if d.len() == 32 => Ok(m),
            _ => Err(format!(
                "the cost model's model_digest must be 64 hex digits, got '{}'",
                m.model_digest
            )),
        }
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a cost model serializes")
    }

    pub fn predict_ms(&self, prompt_tokens: u64, output_tokens: u64) -> f64 {
        self.overhead_ms
            + self.prefill_ms_per_token * prompt_tokens as f64
            + self.decode_ms_per_token * output_tokens as f64
    }

    pub fn allowed_ms(&self, prompt_tokens: u64, output_tokens: u64) -> f64 {
        self.tolerance * self.predict_ms(prompt_tokens, output_tokens) + self.slack_ms
    }

    /// Fit on honest jobs: `(prompt_tokens, output_tokens, device_ms)`.
    pub fn fit(
        jobs: &[(u64, u64, u64)],
        model_digest: [u8; 32],
        platform: &str,
        calibrated_from: &str,
    ) -> Result<CostModel, String> {
        if jobs.len() < MIN_JOBS {
            return Err(format!(
                "{} jobs are too few to fit a cost model (at least {MIN_JOBS})",
                jobs.len()
            ));
        }
        let coef = fit_nonnegative(jobs);
        let mut model = CostModel {
            model_digest: hex::encode(model_digest),
            platform: platform.to_owned(),
            overhead_ms: coef[0],
            prefill_ms_per_token: coef[1],
            decode_ms_per_token: coef[2],
            tolerance: 1.0,
            slack_ms: 0.0,
            calibrated_from: calibrated_from.to_owned(),
        };
        // Slack: the millisecond clock and scheduling noise of jobs too short for a ratio
        // to mean anything; then the tolerance covers every honest job with a margin.
        let mut residuals: Vec<f64> = jobs
            .iter()
            .map(|&(p, n, d)| (d as f64 - model.predict_ms(p, n)).abs())
            .collect();
        residuals.sort_by(f64::total_cmp);
        model.slack_ms = (3.0 * residuals[residuals.len() / 2]).max(20.0);
        let worst = jobs
            .iter()
            .map(|&(p, n, d)| {
                (d as f64 - model.slack_ms).max(0.0) / model.predict_ms(p, n).max(1.0)
            })
            .fold(1.0f64, f64::max);
        model.tolerance = (worst * 1.25).max(1.5);
        Ok(model)
    }
}

/// Least squares for `d ≈ a + b·p + c·n` with a, b, c ≥ 0: the unconstrained fit, then
/// refits with each negative coefficient pinned at 0 (three unknowns: try every subset).
fn fit_nonnegative(jobs: &[(u64, u64, u64)]) -> [f64; 3] {
    let rows: Vec<([f64; 3], f64)> = jobs
        .iter()
        .map(|&(p, n, d)| ([1.0, p as f64, n as f64], d as f64))
        .collect();
    let mut best: Option<([f64; 3], f64)> = None;
    for mask in 1u8..8 {
        let Some(coef) = solve_subset(&rows, mask) else {
            continue;
        };
        if coef.iter().any(|c| *c < 0.0) {
            continue;
        }
        let err: f64 = rows
            .iter()
            .map(|(x, y)| {
                let pred: f64 = (0..3).map(|k| x[k] * coef[k]).sum();
                (pred - y).powi(2)
            })
            .sum();
        if best.is_none_or(|(_, e)| err < e) {
            best = Some((coef, err));
        }
    }
    best.map(|(c, _)| c).unwrap_or([0.0; 3])
}

/// Normal equations over the columns in `mask` (others 0); `None` when singular.
fn solve_subset(rows: &[([f64; 3], f64)], mask: u8) -> Option<[f64; 3]> {
    let cols: Vec<usize> = (0..3).filter(|k| mask & (1 << k) != 0).collect();
    let m = cols.len();
    let mut a = vec![vec![0.0f64; m + 1]; m];
    for (x, y) in rows {
        for i in 0..m {
            for j in 0..m {
                a[i][j] += x[cols[i]] * x[cols[j]];
            }
            a[i][m] += x[cols[i]] * y;
        }
    }
    // Gauss-Jordan with partial pivoting.
    for i in 0..m {
        let pivot = (i..m).max_by(|&r, &s| a[r][i].abs().total_cmp(&a[s][i].abs()))?;
        if a[pivot][i].abs() < 1e-9 {
            return None;
        }
        a.swap(i, pivot);
        let pivot_row = a[i].clone();
        for (r, row) in a.iter_mut().enumerate() {
            if r != i {
                let f = row[i] / pivot_row[i];
                for (x, p) in row.iter_mut().zip(&pivot_row).skip(i) {
                    *x -= f * p;
                }
            }
        }
    }
    let mut coef = [0.0; 3];
    for (i, &c) in cols.iter().enumerate() {
        coef[c] = a[i][m] / a[i][i];
    }
    Some(coef)
}

/// `veritee-verify cost-model`: verify an honest bundle as `receipts` does and fit its
/// receipts' device time.
pub fn run(
    bundle: &std::path::Path,
    policy: Option<&std::path::Path>,
    dangerous_any_runtime: bool,
    at: &str,
    platform: &str,
    out: &std::path::Path,
) -> std::process::ExitCode {
    match fit_bundle(bundle, policy, dangerous_any_runtime, at, platform) {
        Ok(model) => {
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(out)
                .and_then(|mut f| std::io::Write::write_all(&mut f, model.to_toml().as_bytes()));
            if let Err(e) = written {
                eprintln!("veritee-verify: {}: {e}", out.display());
                return std::process::ExitCode::from(2);
            }
            crate::emit(&format!(
                "cost model written to {}:\n{}",
                out.display(),
                model.to_toml()
            ));
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("veritee-verify: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

fn fit_bundle(
    bundle: &std::path::Path,
    policy: Option<&std::path::Path>,
    dangerous_any_runtime: bool,
    at: &str,
    platform: &str,
) -> Result<CostModel, String> {
    use attestation::audit::{verify_bundle_detailed, AuditBundle, VerifyOptions};
    let at = crate::inputs::time(at)?;
    let (policy, _) = crate::inputs::policy(policy, dangerous_any_runtime)?;
    let bytes = crate::inputs::bounded_file(bundle, 4 << 30)?;
    let parsed = AuditBundle::from_cbor(&bytes)
        .map_err(|r| format!("{}: {}", bundle.display(), r.detail))?;
    let verified = verify_bundle_detailed(&parsed, &policy, at, None, &VerifyOptions::default())
        .map_err(|r| {
            format!(
                "{}: rejected: {} ({})",
                bundle.display(),
                r.detail,
                r.reason.code()
            )
        })?;
    let digest = match verified.report.sections.as_slice() {
        [first, rest @ ..] if rest.iter().all(|s| s.model_digest == first.model_digest) => {
            first.model_digest
        }
        _ => {
            return Err(
                "the bundle's instances serve different models: fit one model at a time".into(),
            )
        }
    };
    let jobs: Vec<(u64, u64, u64)> = verified
        .receipts
        .iter()
        .flatten()
        .map(|r| {
            let c = r.claims();
            (c.prompt_tokens, c.output_tokens, c.device_ms)
        })
        .collect();
    CostModel::fit(
        &jobs,
        digest,
        platform,
        &format!("{} honest jobs in {}", jobs.len(), bundle.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_recovers_a_linear_cost_and_covers_every_job() {
        // device = 5 + 0.5 p + 10 n, with ±10% noise.
        let jobs: Vec<(u64, u64, u64)> = (0..40u64)
            .map(|i| {
                let (p, n) = (20 + i * 13 % 200, 1 + i * 7 % 90);
                let noise = 1.0 + ((i % 5) as f64 - 2.0) * 0.05;
                (
                    p,
                    n,
                    ((5.0 + 0.5 * p as f64 + 10.0 * n as f64) * noise) as u64,
                )
            })
            .collect();
        let m = CostModel::fit(&jobs, [1; 32], "test", "synthetic").unwrap();
        assert!((m.decode_ms_per_token - 10.0).abs() < 1.0, "{m:?}");
        assert!((m.prefill_ms_per_token - 0.5).abs() < 0.2, "{m:?}");
        for &(p, n, d) in &jobs {
            assert!((d as f64) <= m.allowed_ms(p, n), "{p} {n} {d}: {m:?}");
        }
        // Four times the work claimed is refused for any job of some length.
        assert!(4.0 * m.predict_ms(100, 50) > m.allowed_ms(100, 50), "{m:?}");
        let back = CostModel::from_toml(&m.to_toml()).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn bad_models_are_refused_with_the_field() {
        let good = CostModel::fit(
            &(0..10u64)
                .map(|i| (10 + i, 5 + i, 100 + 10 * i))
                .collect::<Vec<_>>(),
            [2; 32],
            "p",
            "c",
        )
        .unwrap()
        .to_toml();
        assert!(CostModel::from_toml(&good).is_ok());
        for (from, to, field) in [
            ("tolerance = ", "tolerance = -", "tolerance"),
            ("model_digest = \"", "model_digest = \"zz", "model_digest"),
            ("slack_ms = ", "unknown = 1\nslack_ms = ", "unknown"),
        ] {
            let bad = good.replacen(from, to, 1);
            let e = CostModel::from_toml(&bad).unwrap_err();
            assert!(e.contains(field), "{field}: {e}");
        }
        assert!(CostModel::fit(&[(1, 1, 1)], [0; 32], "p", "c")
            .unwrap_err()
            .contains("too few"));
    }
}
