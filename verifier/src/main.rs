//! `veritee-verify`: the auditor's standalone, offline verifier.
//!
//! Exit status: 0 accepted, 1 rejected, 2 bad usage or unreadable input.

mod audit_cmd;
mod cost_model;
mod evidence_cmd;
mod fraud_proof;
mod fraud_proof_cmd;
mod gpu_evidence;
mod inputs;
mod keygen_cmd;
mod receipts_cmd;
mod reexec;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "veritee-verify",
    version,
    about = "Verify confidential-computing evidence offline"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify one SEV-SNP report or TDX quote with its certificates and collateral, and/or
    /// one NVIDIA GPU's evidence with its certificate chain.
    ///
    /// Files are recognised by content, in any order: a raw or hex report/quote (an
    /// Azure HCL report too), certificates in PEM or DER (chains included), DER CRLs,
    /// Intel PCS JSON bodies, or one dcap-qvl collateral JSON; NVIDIA GPU evidence (SPDM
    /// GET_MEASUREMENTS request + MEASUREMENTS response, binary or hex text), its device
    /// certificate chain (PEM, leaf first) and, optionally, NVIDIA's driver and VBIOS
    /// reference integrity manifests (RIM XML: verified to NVIDIA's RIM root, versions
    /// and active measurements held against the evidence).
    Evidence {
        /// The evidence and everything needed to verify it.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Verification time (RFC 3339), e.g. 2025-07-01T00:00:00Z. Required: this tool
        /// never reads the clock, so results are reproducible.
        #[arg(long)]
        at: String,
        /// Policy file (TOML). Without it a default applies that pins no measurement,
        /// forbids debug, accepts only the TDX TCB status UpToDate, sets no SEV-SNP TCB
        /// minimum (SNP has no TCB status) and checks SNP revocation only if an AMD CRL is
        /// given (the output then says revocation was not checked).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// The requester nonce (64 hex digits) the GPU evidence must carry. Without it the
        /// nonce is not checked, and the output says so.
        #[arg(long)]
        gpu_nonce: Option<String>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Generate an auditor HPKE key pair (X25519) for sealed transcripts.
    ///
    /// Writes the secret key as 64 hex digits to a new file (mode 0600; an existing file
    /// is never overwritten) and prints the public key in hex, for the launch config's
    /// `auditor_hpke_public_key` and the policy's `auditor_hpke_keys`.
    AuditorKeygen {
        /// Where to write the secret key; must not exist yet.
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify an audit bundle (`veritee-enclave export-audit` or `GET /v1/audit/bundle`):
    /// each runtime instance's evidence, every receipt's key binding and authenticity, the
    /// chain (gaps, forks, reordering, duplicates), the transcripts; then print the
    /// verified totals (jobs, tokens, device-seconds) per hour and overall.
    Receipts {
        /// The audit bundle file.
        bundle: PathBuf,
        #[command(flatten)]
        trust: TrustArgs,
        /// The auditor's X25519 secret key (64 hex digits; `veritee-verify auditor-keygen`):
        /// decrypt every transcript and check it against its receipt.
        #[arg(long, value_name = "FILE")]
        auditor_key: Option<PathBuf>,
        /// Check every receipt's signature. By default only the signatures the hash chain
        /// needs are checked (each instance's last receipt, and every 1,024th): each
        /// receipt names the SHA-256 of the one before, so a verified signature
        /// authenticates every receipt chained into it.
        #[arg(long)]
        every_signature: bool,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Re-execute a random sample of the audited jobs and look for fraud.
    ///
    /// First everything `receipts` checks; then each sampled job's transcript is opened
    /// and re-executed with the model file in one teacher-forced pass: the prompt against
    /// the request the client sent, the token counts, every output token against the
    /// seeded sampler, the activation fingerprint, where the answer stopped and (with
    /// --cost-model) the device time. Exit 0: no fraud found; 1: fraud found (or the
    /// receipts rejected); 2: bad usage or input.
    Audit {
        /// The audit bundle file.
        bundle: PathBuf,
        /// The model file (GGUF) the receipts name; its digest must be theirs.
        #[arg(long)]
        model: PathBuf,
        /// The auditor's X25519 secret key (64 hex digits) that opens the transcripts.
        #[arg(long, value_name = "FILE")]
        auditor_key: PathBuf,
        #[command(flatten)]
        trust: TrustArgs,
        /// Re-execute this fraction of the audited jobs, in (0, 1] (default 0.05).
        #[arg(long, conflicts_with = "sample")]
        sample_rate: Option<f64>,
        /// Re-execute this many audited jobs (all when fewer).
        #[arg(long)]
        sample: Option<usize>,
        /// Seed of the random sample (hex, up to 32 bytes); default fresh randomness,
        /// printed so that the run can be repeated.
        #[arg(long)]
        seed: Option<String>,
        /// The auditor's cost model (TOML, `veritee-verify cost-model`) for the device-time
        /// check; without it time is not checked, and the report says so.
        #[arg(long, value_name = "FILE")]
        cost_model: Option<PathBuf>,
        /// Write one self-contained fraud proof per failing job into this directory.
        #[arg(long, value_name = "DIR")]
        fraud_dir: Option<PathBuf>,
        /// Verify every receipt's signature, not only those the chain needs.
        #[arg(long)]
        every_signature: bool,
        /// Re-execute this many sampled jobs at once, each on one thread (default: the
        /// number of CPUs; results do not depend on it).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        jobs: Option<u16>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Re-check one fraud proof (`audit --fraud-dir`) independently: the evidence, the
    /// receipt's signature, the transcript's commitment, then the job's re-execution.
    /// Exit 1: fraud confirmed; 0: not confirmed; 2: the proof is malformed or its signed
    /// parts do not verify (refused).
    FraudProof {
        /// The fraud proof file.
        proof: PathBuf,
        /// The model file (GGUF) the receipt names.
        #[arg(long)]
        model: PathBuf,
        /// Check the evidence with this policy instead of the one in the proof.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Fit a cost model (device time per job) on an honest bundle from the reference
    /// platform, for `audit --cost-model`.
    CostModel {
        /// An audit bundle of honest jobs on the reference platform.
        bundle: PathBuf,
        #[command(flatten)]
        trust: TrustArgs,
        /// What the platform is (CPU model, GPU, TEE), written into the model.
        #[arg(long)]
        platform: String,
        /// Where to write the cost model (TOML); must not exist yet.
        #[arg(long)]
        out: PathBuf,
    },
}

/// What an audit bundle is checked against: shared by `receipts`, `audit` and
/// `cost-model`.
#[derive(clap::Args)]
struct TrustArgs {
    /// Verification time (RFC 3339) for the evidence's certificates and collateral.
    #[arg(long)]
    at: String,
    /// Policy file (TOML, with a [runtime] section), e.g. the one `veritee-host policy`
    /// writes for an image or a simulated launch writes to STATE_DIR/policy.toml.
    /// Required, unless --dangerous-any-runtime.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Instead of --policy: the default evidence policy and ANY runtime claims (any
    /// model, launch configuration, runtime version and auditor key), so receipts from
    /// any code in any genuine CVM are accepted. For inspecting a bundle, not auditing.
    #[arg(long, conflicts_with = "policy")]
    dangerous_any_runtime: bool,
}

/// Write the whole output to stdout. A reader that went away early (`| head`) is not an
/// error of the verification: the exit status must still be the verdict's, not a panic.
pub(crate) fn emit(text: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Evidence {
            files,
            at,
            policy,
            gpu_nonce,
            json,
        } => evidence_cmd::run(&files, &at, policy.as_deref(), gpu_nonce.as_deref(), json),
        Command::AuditorKeygen { out } => keygen_cmd::run(&out),
        Command::Receipts {
            bundle,
            trust,
            auditor_key,
            every_signature,
            json,
        } => receipts_cmd::run(&receipts_cmd::Args {
            bundle: &bundle,
            at: &trust.at,
            policy: trust.policy.as_deref(),
            dangerous_any_runtime: trust.dangerous_any_runtime,
            auditor_key: auditor_key.as_deref(),
            every_signature,
            json,
        }),
        Command::Audit {
            bundle,
            model,
            auditor_key,
            trust,
            sample_rate,
            sample,
            seed,
            cost_model,
            fraud_dir,
            every_signature,
            jobs,
            json,
        } => audit_cmd::run(&audit_cmd::Args {
            bundle: &bundle,
            model: &model,
            auditor_key: &auditor_key,
            policy: trust.policy.as_deref(),
            dangerous_any_runtime: trust.dangerous_any_runtime,
            at: &trust.at,
            sample: match (sample, sample_rate) {
                (Some(n), _) => audit_cmd::Sample::Count(n),
                (None, rate) => audit_cmd::Sample::Rate(rate.unwrap_or(0.05)),
            },
            seed: seed.as_deref(),
            cost_model: cost_model.as_deref(),
            fraud_dir: fraud_dir.as_deref(),
            every_signature,
            parallel_jobs: jobs.map_or_else(
                || std::thread::available_parallelism().map_or(1, |n| n.get()),
                usize::from,
            ),
            json,
        }),
        Command::FraudProof {
            proof,
            model,
            policy,
            json,
        } => fraud_proof_cmd::run(&proof, &model, policy.as_deref(), json),
        Command::CostModel {
            bundle,
            trust,
            platform,
            out,
        } => cost_model::run(
            &bundle,
            trust.policy.as_deref(),
            trust.dangerous_any_runtime,
            &trust.at,
            &platform,
            &out,
        ),
    }
}
