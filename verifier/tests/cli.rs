//! End-to-end tests of `veritee-verify evidence`: exit codes and output, text and JSON,
//! on the real evidence under `examples/evidence` (a Genoa SEV-SNP report with its VCEK,
//! and a TDX quote with its dcap-qvl collateral JSON).
//!
//! Expected values (measurement, MRTD) are read from the evidence bytes here, independently
//! of the verifier's parser.

use attestation::policy::{Constraint, Hex, Policy};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

const SNP_AT: &str = "2025-10-01T08:00:00Z";
const TDX_AT: &str = "2025-07-01T00:00:00Z";

fn evidence(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/evidence")
        .join(rel)
}

fn snp_report() -> PathBuf {
    evidence("snp-genoa/report.bin")
}
fn snp_vcek() -> PathBuf {
    evidence("snp-genoa/vcek.der")
}
fn tdx_quote() -> PathBuf {
    evidence("tdx-b0c06f/tdx_quote")
}
fn tdx_collateral() -> PathBuf {
    evidence("tdx-b0c06f/tdx_quote_collateral.json")
}

/// MEASUREMENT of the SNP report: bytes 0x90..0xC0, hex.
fn snp_measurement() -> String {
    let report = std::fs::read(snp_report()).unwrap();
    hex::encode(&report[0x90..0xC0])
}

/// MRTD of the TDX quote: after the 48-byte header, TEE_TCB_SVN (16), MRSEAM (48),
/// MRSIGNERSEAM (48), SEAMATTRIBUTES (8), TDATTRIBUTES (8), XFAM (8): bytes 184..232.
fn tdx_mr_td() -> String {
    let quote = std::fs::read(tdx_quote()).unwrap();
    hex::encode(&quote[184..232])
}

/// A file in the temporary directory, unique to this process and call, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: impl AsRef<[u8]>) -> TempFile {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "veritee-cli-test-{}-{n}-{name}",
            std::process::id()
        ));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl AsRef<std::ffi::OsStr> for TempFile {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Output {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON object ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

fn veritee<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = Command::new(env!("CARGO_BIN_EXE_veritee-verify"))
        .args(args)
        .output()
        .expect("run veritee-verify");
    Output {
        code: out
            .status
            .code()
            .unwrap_or_else(|| panic!("killed by a signal: {:?}", out.status)),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// `evidence FILES... --at AT [extra...]`
fn evidence_cmd(files: &[&dyn AsRef<std::ffi::OsStr>], at: &str, extra: &[&str]) -> Output {
    let mut args: Vec<std::ffi::OsString> = vec!["evidence".into()];
    args.extend(files.iter().map(|f| f.as_ref().to_owned()));
    args.push("--at".into());
    args.push(at.into());
    args.extend(extra.iter().map(Into::into));
    veritee(args)
}

/// Run with `--json`, check the exit code, return the object.
fn evidence_json(
    files: &[&dyn AsRef<std::ffi::OsStr>],
    at: &str,
    extra: &[&str],
    code: i32,
) -> Value {
    let mut extra = extra.to_vec();
    extra.push("--json");
    let out = evidence_cmd(files, at, &extra);
    assert_eq!(
        out.code, code,
        "exit code\nstdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    out.json()
}

fn assert_rejected(v: &Value, reason: &str, class: &str) {
    assert_eq!(v["verdict"], "rejected", "{v:#}");
    assert_eq!(v["reason"], reason, "{v:#}");
    assert_eq!(v["reason_class"], class, "{v:#}");
    assert!(
        v["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "a rejection explains itself: {v:#}"
    );
}

fn policy_with_measurement(measurement: [u8; 48]) -> String {
    let mut policy = Policy::default_verifier();
    policy.snp.as_mut().unwrap().measurement = Constraint::Only(vec![Hex(measurement)]);
    policy.to_toml()
}

// ---------------------------------------------------------------- accepted

#[test]
fn snp_accepted_text() {
    let out = evidence_cmd(&[&snp_report(), &snp_vcek()], SNP_AT, &[]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let s = &out.stdout;
    assert_eq!(s.lines().next(), Some("ACCEPTED"), "{s}");
    assert!(!s.contains("REJECTED"), "{s}");
    // The default policy says what it is.
    assert!(s.contains("pins no measurement, forbids debug"), "{s}");
    // SNP has no TCB status: the default says what it checks instead (issue 13).
    assert!(
        s.contains("TDX: TCB status UpToDate only; SEV-SNP: no TCB minimum"),
        "{s}"
    );
    assert!(!s.contains("up-to-date TCB"), "{s}");
    assert!(s.contains("not pinned by the policy:"), "{s}");
    assert!(s.contains("snp.measurement"), "{s}");
    assert!(
        !s.contains("tdx.mrtd"),
        "only the SNP fields are unpinned-relevant: {s}"
    );
    assert!(s.contains(&format!("verification time: {SNP_AT}")), "{s}");
    // Inputs and what they were recognised as.
    assert!(s.contains("report.bin: SEV-SNP attestation report"), "{s}");
    assert!(s.contains("vcek.der: certificate \"SEV-VCEK\""), "{s}");
    // The checks list.
    assert!(s.contains("\nchecked:\n"), "{s}");
    for check in [
        "ok  report structure",
        "ok  VCEK chain to the pinned AMD ARK-Genoa",
        "ok  report signature: ECDSA P-384",
        "ok  certificate hwID and TCB extensions",
        "ok  policy: every field appraised and accepted",
    ] {
        assert!(s.contains(check), "missing check {check:?}: {s}");
    }
    // The claims.
    assert!(s.contains("\nverified claims:\n"), "{s}");
    let lines: Vec<&str> = s.lines().map(str::trim).collect();
    for claim in [
        "platform: snp".to_string(),
        "product: Genoa".to_string(),
        format!("measurement: {}", snp_measurement()),
        "debug: false".to_string(),
        "signing_key: vcek".to_string(),
    ] {
        assert!(
            lines.contains(&claim.as_str()),
            "missing claim {claim:?}: {s}"
        );
    }
    assert!(out.stderr.is_empty(), "stderr: {}", out.stderr);
}

/// No CRL was given: revocation was not checked, and the text must not mark it "ok".
#[test]
fn snp_unchecked_revocation_is_not_listed_as_ok() {
    let out = evidence_cmd(&[&snp_report(), &snp_vcek()], SNP_AT, &[]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("revocation"))
        .unwrap_or_else(|| panic!("no revocation line: {}", out.stdout));
    assert!(line.contains("not checked"), "{line}");
    assert!(line.trim_start().starts_with("--"), "{line}");
    assert!(!line.trim_start().starts_with("ok"), "{line}");
}

#[test]
fn snp_accepted_json() {
    let v = evidence_json(&[&snp_report(), &snp_vcek()], SNP_AT, &[], 0);
    assert_eq!(v["verdict"], "accepted");
    assert_eq!(v["reason"], Value::Null);
    assert_eq!(v["platform"], "snp");
    // No AMD CRL was given: JSON says so as plainly as the text (issue 13).
    assert_eq!(v["revocation_checked"], false);
    assert_eq!(v["claims"]["revocation_checked"], false);
    assert_eq!(v["claims"]["product"], "Genoa");
    assert_eq!(v["claims"]["measurement"], snp_measurement().as_str());
    assert_eq!(v["claims"]["debug"], false);
    let policy = v["policy"].as_str().unwrap();
    assert!(
        policy.contains("pins no measurement, forbids debug"),
        "{policy}"
    );
    assert!(!v["checks"].as_array().unwrap().is_empty(), "{v:#}");
}

#[test]
fn tdx_accepted_json() {
    let v = evidence_json(&[&tdx_quote(), &tdx_collateral()], TDX_AT, &[], 0);
    assert_eq!(v["verdict"], "accepted", "{v:#}");
    assert_eq!(v["reason"], Value::Null);
    assert_eq!(v["reason_class"], Value::Null);
    assert_eq!(v["platform"], "tdx");
    assert_eq!(v["claims"]["platform"], "tdx");
    assert_eq!(v["claims"]["tcb_status"], "UpToDate");
    assert_eq!(v["claims"]["mr_td"], tdx_mr_td().as_str());
    assert_eq!(v["claims"]["debug"], false);
    assert_eq!(v["at"], TDX_AT);
    let policy = v["policy"].as_str().unwrap();
    assert!(
        policy.contains("pins no measurement, forbids debug"),
        "{policy}"
    );
    assert!(policy.contains("TCB status UpToDate only"), "{policy}");
    let unpinned: Vec<&str> = v["policy_unpinned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(unpinned.contains(&"tdx.mrtd"), "{unpinned:?}");
    assert!(
        !unpinned.iter().any(|f| f.starts_with("snp.")),
        "{unpinned:?}"
    );
    let checks = v["checks"].as_array().unwrap();
    assert!(
        checks
            .iter()
            .any(|c| c.as_str().unwrap().contains("TCB level: UpToDate")),
        "{checks:?}"
    );

    let inputs = v["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 2, "{inputs:?}");
    let kind_of = |path: &Path| -> String {
        let name = path.display().to_string();
        inputs
            .iter()
            .find(|i| i["file"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} not in inputs: {inputs:?}"))["recognised_as"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(kind_of(&tdx_quote()).contains("TDX quote"), "{inputs:?}");
    assert!(
        kind_of(&tdx_collateral()).contains("collateral"),
        "{inputs:?}"
    );
}

#[test]
fn tdx_accepted_text() {
    let out = evidence_cmd(&[&tdx_quote(), &tdx_collateral()], TDX_AT, &[]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let s = &out.stdout;
    assert_eq!(s.lines().next(), Some("ACCEPTED"), "{s}");
    assert!(s.contains("pins no measurement, forbids debug"), "{s}");
    assert!(s.contains("ok  TCB level: UpToDate"), "{s}");
    let lines: Vec<&str> = s.lines().map(str::trim).collect();
    assert!(lines.contains(&"platform: tdx"), "{s}");
    assert!(lines.contains(&"tcb_status: UpToDate"), "{s}");
    assert!(
        lines.contains(&format!("mr_td: {}", tdx_mr_td()).as_str()),
        "{s}"
    );
}

/// Files are recognised by content, not position: reversing them changes nothing but the
/// order of `inputs`.
#[test]
fn order_of_files_does_not_matter() {
    for (files, at) in [
        ([tdx_quote(), tdx_collateral()], TDX_AT),
        ([snp_report(), snp_vcek()], SNP_AT),
    ] {
        let forward = evidence_json(&[&files[0], &files[1]], at, &[], 0);
        let reverse = evidence_json(&[&files[1], &files[0]], at, &[], 0);
        for key in ["verdict", "reason", "platform", "claims", "checks"] {
            assert_eq!(forward[key], reverse[key], "{key} differs for {files:?}");
        }
        let mut fwd_inputs = forward["inputs"].as_array().unwrap().clone();
        let rev_inputs = reverse["inputs"].as_array().unwrap();
        fwd_inputs.reverse();
        assert_eq!(&fwd_inputs, rev_inputs);
    }
}

/// The same quote written as hex text is recognised and verifies the same.
#[test]
fn tdx_quote_as_hex_text() {
    let quote = std::fs::read(tdx_quote()).unwrap();
    let hex_file = TempFile::new("quote.hex", format!("{}\n", hex::encode(&quote)));
    let raw = evidence_json(&[&tdx_quote(), &tdx_collateral()], TDX_AT, &[], 0);
    let v = evidence_json(&[&hex_file, &tdx_collateral()], TDX_AT, &[], 0);
    assert_eq!(v["verdict"], "accepted", "{v:#}");
    assert_eq!(v["claims"], raw["claims"]);
    assert_eq!(v["claims"]["mr_td"], tdx_mr_td().as_str());
    let input = &v["inputs"][0];
    assert_eq!(input["file"], hex_file.0.display().to_string().as_str());
    let kind = input["recognised_as"].as_str().unwrap();
    assert!(kind.contains("TDX quote") && kind.contains("hex"), "{kind}");
}

// ---------------------------------------------------------------- rejected (exit 1)

#[test]
fn tdx_collateral_expired() {
    let v = evidence_json(
        &[&tdx_quote(), &tdx_collateral()],
        "2025-08-01T00:00:00Z",
        &[],
        1,
    );
    assert_rejected(&v, "collateral_expired", "collateral");
    assert_eq!(v["platform"], "tdx");
    assert_eq!(
        v["claims"],
        Value::Null,
        "nothing verified, nothing claimed"
    );

    let out = evidence_cmd(
        &[&tdx_quote(), &tdx_collateral()],
        "2025-08-01T00:00:00Z",
        &[],
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .starts_with("REJECTED: collateral_expired (collateral)"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("ACCEPTED"), "{}", out.stdout);
    assert!(!out.stdout.contains("verified claims"), "{}", out.stdout);
}

#[test]
fn snp_flipped_byte_in_signed_region() {
    let mut report = std::fs::read(snp_report()).unwrap();
    report[0x50] ^= 0x01; // REPORT_DATA: signed, no structural meaning
    let tampered = TempFile::new("tampered-report.bin", &report);
    let v = evidence_json(&[&tampered, &snp_vcek()], SNP_AT, &[], 1);
    assert_rejected(&v, "report_signature_invalid", "signature");
    assert_eq!(v["claims"], Value::Null);

    let out = evidence_cmd(&[&tampered, &snp_vcek()], SNP_AT, &[]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .starts_with("REJECTED: report_signature_invalid (signature)"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("verified claims"), "{}", out.stdout);
}

#[test]
fn snp_without_vcek() {
    let v = evidence_json(&[&snp_report()], SNP_AT, &[], 1);
    assert_rejected(&v, "certificate_missing", "chain");
    assert_eq!(v["platform"], "snp");
    assert_eq!(v["claims"], Value::Null);
}

#[test]
fn tdx_without_collateral() {
    let v = evidence_json(&[&tdx_quote()], TDX_AT, &[], 1);
    assert_rejected(&v, "collateral_missing", "collateral");
    assert_eq!(v["platform"], "tdx");
    assert_eq!(v["claims"], Value::Null);
}

/// Verification passes, appraisal fails: the reason is the policy's and the verified
/// claims are still reported.
#[test]
fn policy_pinning_another_measurement() {
    let policy = TempFile::new("wrong-measurement.toml", policy_with_measurement([0; 48]));
    let policy_arg = policy.0.to_str().unwrap();
    let v = evidence_json(
        &[&snp_report(), &snp_vcek()],
        SNP_AT,
        &["--policy", policy_arg],
        1,
    );
    assert_rejected(&v, "measurement_mismatch", "policy");
    assert_eq!(v["platform"], "snp");
    assert_eq!(v["claims"]["measurement"], snp_measurement().as_str());
    assert_eq!(v["claims"]["product"], "Genoa");
    assert_eq!(v["policy"], policy_arg);
    let checks: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        checks.iter().any(|c| c.starts_with("report signature")),
        "verification passed: {checks:?}"
    );
    assert!(
        !checks.iter().any(|c| c.starts_with("policy:")),
        "appraisal did not: {checks:?}"
    );
    let unpinned = v["policy_unpinned"].as_array().unwrap();
    assert!(
        !unpinned.contains(&Value::from("snp.measurement")),
        "{unpinned:?}"
    );

    let out = evidence_cmd(
        &[&snp_report(), &snp_vcek()],
        SNP_AT,
        &["--policy", policy_arg],
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .starts_with("REJECTED: measurement_mismatch (policy)"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("verified claims"), "{}", out.stdout);
    assert!(
        !out.stdout.contains("pins no measurement"),
        "{}",
        out.stdout
    );
}

#[test]
fn policy_pinning_the_right_measurement() {
    let report = std::fs::read(snp_report()).unwrap();
    let measurement: [u8; 48] = report[0x90..0xC0].try_into().unwrap();
    let policy = TempFile::new(
        "right-measurement.toml",
        policy_with_measurement(measurement),
    );
    let policy_arg = policy.0.to_str().unwrap();
    let v = evidence_json(
        &[&snp_report(), &snp_vcek()],
        SNP_AT,
        &["--policy", policy_arg],
        0,
    );
    assert_eq!(v["verdict"], "accepted", "{v:#}");
    assert_eq!(v["reason"], Value::Null);
    assert_eq!(v["policy"], policy_arg);
    let unpinned = v["policy_unpinned"].as_array().unwrap();
    assert!(
        !unpinned.contains(&Value::from("snp.measurement")),
        "{unpinned:?}"
    );

    let out = evidence_cmd(
        &[&snp_report(), &snp_vcek()],
        SNP_AT,
        &["--policy", policy_arg],
    );
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(out.stdout.starts_with("ACCEPTED"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("policy: {policy_arg}")),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("pins no measurement"),
        "{}",
        out.stdout
    );
}

/// Issue 13: an unrecognised input file was a rejection (exit 1), as if the evidence had
/// failed; it is bad usage (exit 2), like a missing file, naming the file.
#[test]
fn unknown_input_file() {
    // Deterministic "random" bytes: none of the recognised formats starts like this.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let junk: Vec<u8> = (0..777)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let junk = TempFile::new("junk.bin", junk);
    let v = evidence_json(&[&snp_report(), &snp_vcek(), &junk], SNP_AT, &[], 2);
    assert_eq!(v["verdict"], "error", "{v:#}");
    assert_eq!(v["claims"], Value::Null);
    let error = v["error"].as_str().unwrap();
    assert!(
        error.contains(&junk.0.display().to_string()),
        "names the file: {error}"
    );
    assert!(error.contains("not recognised"), "{error}");

    let out = evidence_cmd(&[&junk, &snp_report(), &snp_vcek()], SNP_AT, &[]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.is_empty(), "no verdict: {}", out.stdout);
    assert!(
        out.stderr.contains(&junk.0.display().to_string()),
        "{}",
        out.stderr
    );
}

#[test]
fn two_reports_are_ambiguous() {
    let copy = TempFile::new("report-copy.bin", std::fs::read(snp_report()).unwrap());
    let v = evidence_json(&[&snp_report(), &copy, &snp_vcek()], SNP_AT, &[], 1);
    assert_rejected(&v, "ambiguous_input", "parse");
    assert_eq!(v["claims"], Value::Null);

    // A report and a quote are no better.
    let v = evidence_json(&[&snp_report(), &tdx_quote()], SNP_AT, &[], 1);
    assert_rejected(&v, "ambiguous_input", "parse");
}

// ---------------------------------------------------------------- usage (exit 2)

#[test]
fn missing_at() {
    let out = veritee([
        std::ffi::OsStr::new("evidence"),
        snp_report().as_os_str(),
        snp_vcek().as_os_str(),
    ]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("--at"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

#[test]
fn at_not_rfc3339() {
    let out = evidence_cmd(&[&snp_report(), &snp_vcek()], "yesterday", &[]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("--at"), "{}", out.stderr);
    assert!(out.stderr.contains("yesterday"), "{}", out.stderr);
    assert!(!out.stdout.contains("ACCEPTED") && !out.stdout.contains("REJECTED"));
}

#[test]
fn nonexistent_file() {
    let missing = std::env::temp_dir().join(format!(
        "veritee-cli-test-{}-does-not-exist.bin",
        std::process::id()
    ));
    let out = evidence_cmd(&[&snp_report(), &missing], SNP_AT, &[]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(&missing.display().to_string()),
        "names the file: {}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

#[test]
fn directory_as_input_is_unreadable() {
    let dir = evidence("snp-genoa");
    let out = evidence_cmd(&[&snp_report(), &dir], SNP_AT, &[]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("snp-genoa"), "{}", out.stderr);
}

#[test]
fn policy_with_a_missing_field() {
    let full = Policy::default_verifier().to_toml();
    assert!(full.lines().any(|l| l.starts_with("mrconfigid")), "{full}");
    let text: String = full
        .lines()
        .filter(|l| !l.starts_with("mrconfigid"))
        .map(|l| format!("{l}\n"))
        .collect();
    let policy = TempFile::new("incomplete.toml", text);
    let out = evidence_cmd(
        &[&snp_report(), &snp_vcek()],
        SNP_AT,
        &["--policy", policy.0.to_str().unwrap()],
    );
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("mrconfigid"), "{}", out.stderr);
    assert!(out.stderr.contains("missing field"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&policy.0.display().to_string()),
        "names the policy file: {}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

#[test]
fn nonexistent_policy_file() {
    let missing = std::env::temp_dir().join(format!(
        "veritee-cli-test-{}-no-policy.toml",
        std::process::id()
    ));
    let out = evidence_cmd(
        &[&snp_report(), &snp_vcek()],
        SNP_AT,
        &["--policy", missing.to_str().unwrap()],
    );
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("policy"), "{}", out.stderr);
}

#[test]
fn unknown_subcommand() {
    let out = veritee(["frobnicate", "x"]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("frobnicate"), "{}", out.stderr);
}

#[test]
fn no_files() {
    let out = veritee(["evidence", "--at", SNP_AT]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
}

/// With `--json`, an error found after argument parsing still prints one JSON object.
#[test]
fn json_usage_errors_print_an_error_object() {
    let missing = std::env::temp_dir().join(format!(
        "veritee-cli-test-{}-missing.bin",
        std::process::id()
    ));
    let v = evidence_json(&[&snp_report(), &missing], SNP_AT, &[], 2);
    assert_eq!(v["verdict"], "error", "{v:#}");
    assert_eq!(v["reason"], Value::Null);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains(&missing.display().to_string()),
        "{v:#}"
    );
    // The keys of the contract are present, null.
    for key in ["platform", "claims"] {
        assert!(v.get(key).is_some_and(Value::is_null), "{key}: {v:#}");
    }

    let v = evidence_json(&[&snp_report(), &snp_vcek()], "yesterday", &[], 2);
    assert_eq!(v["verdict"], "error", "{v:#}");
    assert!(v["error"].as_str().unwrap().contains("--at"), "{v:#}");
}

#[test]
fn help() {
    let out = veritee(["--help"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("evidence"), "{}", out.stdout);

    let out = veritee(["evidence", "--help"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for word in ["--at", "--policy", "--json"] {
        assert!(out.stdout.contains(word), "{word}: {}", out.stdout);
    }
}

/// A reader that goes away early (`| head -1`) must not turn the verdict into a panic
/// (exit 101): the exit status is still the verdict's.
#[test]
fn closed_stdout_keeps_the_verdict_exit_code() {
    for (files, code) in [(vec![snp_report(), snp_vcek()], 0), (vec![snp_report()], 1)] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_veritee-verify"))
            .arg("evidence")
            .args(&files)
            .args(["--at", SNP_AT])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Close the read end at once: the verifier's write then fails with EPIPE (or, if
        // it was quicker, lands in the pipe buffer; either way the code must hold).
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn auditor_keygen_writes_the_secret_once_and_prints_its_public_key() {
    use std::ffi::OsStr;
    let file = TempFile::new("auditor.key", "");
    std::fs::remove_file(&file.0).unwrap();
    let out = veritee([
        OsStr::new("auditor-keygen"),
        OsStr::new("--out"),
        file.as_ref(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let secret = std::fs::read_to_string(&file.0).unwrap();
    let secret: [u8; 32] = hex::decode(secret.strip_suffix('\n').unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let public = attestation::transcript::auditor_public_key(&secret);
    assert_eq!(out.stdout, format!("{}\n", hex::encode(public)));

    // A second run never overwrites the key: bad usage, file unchanged.
    let again = veritee([
        OsStr::new("auditor-keygen"),
        OsStr::new("--out"),
        file.as_ref(),
    ]);
    assert_eq!(again.code, 2);
    assert!(again.stdout.is_empty());
    let still: [u8; 32] = hex::decode(std::fs::read_to_string(&file.0).unwrap().trim_end())
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(still, secret);
}

// ---------------------------------------------------------------- issue 13: messages

/// The items of `checks` in a JSON verdict.
fn checks_of(v: &Value) -> Vec<String> {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

/// No month names, no "+00:00": every date is RFC 3339 UTC.
fn assert_one_date_format(text: &str) {
    for month in [
        "Jan ", "Feb ", "Mar ", "Apr ", "May ", "Jun ", "Jul ", "Aug ", "Sep ", "Oct ", "Nov ",
        "Dec ",
    ] {
        assert!(!text.contains(month), "a date not in RFC 3339: {text}");
    }
    assert!(!text.contains("+00:00"), "{text}");
    assert!(!text.contains("UnixTime"), "{text}");
}

/// Issue 13: an expired VCEK was blamed on the report file, with its date in another
/// format than the verification time's, and no word on what to do.
#[test]
fn an_expired_certificate_is_named_with_its_file_date_and_remedy() {
    let at = "2040-01-01T00:00:00Z";
    let v = evidence_json(&[&snp_report(), &snp_vcek()], at, &[], 1);
    assert_rejected(&v, "certificate_expired", "chain");
    let detail = v["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(
            "SEV-VCEK expired 2032-08-07T17:21:41Z; verification time 2040-01-01T00:00:00Z"
        ),
        "{detail}"
    );
    let vcek = snp_vcek().display().to_string();
    assert!(
        detail.contains(&format!("(supplied in {vcek})")),
        "{detail}"
    );
    assert!(
        !detail.contains(&snp_report().display().to_string()),
        "not the report's fault: {detail}"
    );
    assert_one_date_format(detail);
    let advice = v["advice"].as_str().unwrap();
    assert!(advice.contains("AMD KDS"), "{advice}");
    assert!(advice.contains("--at"), "{advice}");

    let out = evidence_cmd(&[&snp_report(), &snp_vcek()], at, &[]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .contains("\n  what to do: fetch a current certificate"),
        "{}",
        out.stdout
    );
    assert_one_date_format(&out.stdout);

    // A built-in certificate is said to be one.
    let v = evidence_json(
        &[&snp_report(), &snp_vcek()],
        "2020-01-01T00:00:00Z",
        &[],
        1,
    );
    assert_rejected(&v, "certificate_not_yet_valid", "chain");
    let detail = v["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("ARK-Genoa is not valid before 2022-01-26T15:34:37Z"),
        "{detail}"
    );
    assert!(detail.ends_with("(built into this verifier)"), "{detail}");
}

/// Issue 13: stale TDX collateral was blamed on the quote file, and the JSON `checks`
/// were empty although the quote's signatures had verified.
#[test]
fn stale_tdx_collateral_names_the_collateral_file_and_lists_the_checks_done() {
    let v = evidence_json(
        &[&tdx_quote(), &tdx_collateral()],
        "2025-08-01T00:00:00Z",
        &[],
        1,
    );
    assert_rejected(&v, "collateral_expired", "collateral");
    let detail = v["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("TCB info nextUpdate 2025-07-19T10:16:03Z is not after the verification time 2025-08-01T00:00:00Z"),
        "{detail}"
    );
    let collateral = tdx_collateral().display().to_string();
    assert!(
        detail.ends_with(&format!("(supplied in {collateral})")),
        "{detail}"
    );
    assert!(
        v["advice"]
            .as_str()
            .unwrap()
            .contains("fetch current collateral"),
        "{v:#}"
    );
    assert!(v["advice"].as_str().unwrap().contains("Intel PCS"), "{v:#}");
    let checks = checks_of(&v);
    for done in [
        "quote structure",
        "PCK chain",
        "QE report signature",
        "quote signature",
    ] {
        assert!(
            checks.iter().any(|c| c.starts_with(done)),
            "{done}: {checks:?}"
        );
    }
    assert!(
        !checks.iter().any(|c| c.starts_with("collateral")),
        "{checks:?}"
    );
    assert!(
        !checks.iter().any(|c| c.starts_with("TCB level")),
        "{checks:?}"
    );
    assert_eq!(v["claims"], Value::Null);

    let out = evidence_cmd(
        &[&tdx_quote(), &tdx_collateral()],
        "2025-08-01T00:00:00Z",
        &[],
    );
    assert!(
        out.stdout
            .contains("\nchecked before the rejection:\n  ok  quote structure"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("what to do: fetch current collateral"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_quote_without_collateral_lists_the_signatures_that_verified() {
    let v = evidence_json(&[&tdx_quote()], TDX_AT, &[], 1);
    assert_rejected(&v, "collateral_missing", "collateral");
    let checks = checks_of(&v);
    assert!(
        checks.iter().any(|c| c.starts_with("quote signature")),
        "{checks:?}"
    );
    assert!(
        checks.iter().any(|c| c.starts_with("PCK chain")),
        "{checks:?}"
    );
    assert!(
        v["advice"]
            .as_str()
            .unwrap()
            .contains("supply the collateral"),
        "{v:#}"
    );
    // A quote whose own signature fails lists nothing as checked.
    let mut quote = std::fs::read(tdx_quote()).unwrap();
    quote[100] ^= 1; // inside the TD report body, which the quote signature covers
    let tampered = TempFile::new("tampered-quote", &quote);
    let v = evidence_json(&[&tampered, &tdx_collateral()], TDX_AT, &[], 1);
    assert_rejected(&v, "quote_signature_invalid", "signature");
    assert_eq!(checks_of(&v), Vec::<String>::new());
}

/// The PCK certificate travels inside the quote: said so, with an RFC 3339 date.
#[test]
fn a_pck_certificate_problem_names_the_quote_as_its_carrier() {
    let v = evidence_json(
        &[&tdx_quote(), &tdx_collateral()],
        "2020-01-01T00:00:00Z",
        &[],
        1,
    );
    assert_rejected(&v, "certificate_not_yet_valid", "chain");
    let detail = v["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("PCK certificate is not valid before 2025-"),
        "{detail}"
    );
    let quote = tdx_quote().display().to_string();
    assert!(
        detail.ends_with(&format!(
            "(carried in the quote's certification data, {quote})"
        )),
        "{detail}"
    );
    assert_one_date_format(detail);
}

/// Issue 13: an expired TCB Signing certificate came out as dcap-qvl's raw
/// `CertExpired { time: UnixTime(..), not_after: UnixTime(..) }`. It is named, dated in
/// RFC 3339, blamed on the collateral file, with what to do. (Fake Intel PKI from the
/// sim crate; the policy trusts its root, given as a file.)
#[test]
fn an_expired_collateral_signer_is_named() {
    use sim::intel::IntelCaKind;
    use sim::{FakeIntel, IntelAuthority, TdxCollateralBuilder, TdxQuoteBuilder, DEFAULT_AT};
    let intel = FakeIntel::new();
    let pck = intel.pck_leaf().build(&intel);
    let quote = TdxQuoteBuilder::new().build(&intel, &pck);
    let expired = intel
        .ca_certificate(IntelCaKind::TcbSigning)
        .validity(sim::DEFAULT_NOT_BEFORE, DEFAULT_AT - 86_400)
        .build(&intel, intel.key(IntelAuthority::TcbSigning));
    let chain = sim::x509::certificates_pem(&[&expired, intel.root_der()]);
    let mut builder = TdxCollateralBuilder::new(&intel);
    builder.tcb_info_issuer_chain = Some(chain.clone());
    builder.qe_identity_issuer_chain = Some(chain);
    let collateral = builder.build(&intel).to_dcap_qvl_json();
    let mut policy = Policy::default_verifier();
    policy.dangerous_trusted_roots = vec![Hex(attestation::x509::sha256(intel.root_der()))];
    let quote_file = TempFile::new("fake-quote", &quote);
    let collateral_file = TempFile::new("fake-collateral.json", &collateral);
    let root_file = TempFile::new("fake-root.der", intel.root_der());
    let policy_file = TempFile::new("fake-root-policy.toml", policy.to_toml());
    let at = sim::rfc3339(DEFAULT_AT);
    let v = evidence_json(
        &[&quote_file, &collateral_file, &root_file],
        &at,
        &["--policy", policy_file.0.to_str().unwrap()],
        1,
    );
    assert_rejected(&v, "certificate_expired", "chain");
    let detail = v["detail"].as_str().unwrap();
    assert!(
        detail
            .starts_with("\"Intel SGX TCB Signing\" certificate (TCB info issuer chain) expired "),
        "{detail}"
    );
    assert!(
        detail.contains(&format!("verification time {at}")),
        "{detail}"
    );
    assert!(!detail.contains("dcap-qvl"), "{detail}");
    assert!(
        detail.ends_with(&format!("(supplied in {})", collateral_file.0.display())),
        "{detail}"
    );
    assert_one_date_format(detail);
    assert!(v["advice"].as_str().unwrap().contains("Intel PCS"), "{v:#}");
    // The quote's own signatures had verified.
    assert!(
        checks_of(&v)
            .iter()
            .any(|c| c.starts_with("quote signature")),
        "{v:#}"
    );
}
