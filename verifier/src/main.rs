//! `veritee-verify`: the auditor's standalone, offline verifier.
//!
//! Exit status: 0 accepted, 1 rejected, 2 bad usage or unreadable input.

mod evidence_cmd;
mod keygen_cmd;

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
    /// Verify one SEV-SNP report or TDX quote with its certificates and collateral.
    ///
    /// Files are recognised by content, in any order: a raw or hex report/quote (an
    /// Azure HCL report too), certificates in PEM or DER (chains included), DER CRLs,
    /// Intel PCS JSON bodies, or one dcap-qvl collateral JSON.
    Evidence {
        /// The evidence and everything needed to verify it.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Verification time (RFC 3339), e.g. 2025-07-01T00:00:00Z. Required: this tool
        /// never reads the clock, so results are reproducible.
        #[arg(long)]
        at: String,
        /// Policy file (TOML). Without it a default applies that pins no measurement,
        /// forbids debug and accepts only an up-to-date TCB.
        #[arg(long)]
        policy: Option<PathBuf>,
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
            json,
        } => evidence_cmd::run(&files, &at, policy.as_deref(), json),
        Command::AuditorKeygen { out } => keygen_cmd::run(&out),
    }
}
