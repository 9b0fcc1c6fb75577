//! `veritee-enclave`: the guest runtime's command line.

use clap::{Args, Parser, Subcommand};
use enclave::config::Config;
use enclave::startup::{self, Options};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "veritee-enclave",
    version,
    about = "Confidential inference runtime: attested TLS, OpenAI-compatible API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the OpenAI-compatible API over attested TLS.
    Serve(Box<ServeArgs>),
    /// Write an audit bundle (evidence, receipts, sealed transcripts of every runtime
    /// instance in the receipt log) for `veritee-verify receipts`. Recovers torn tails
    /// first, as a restart would.
    ExportAudit {
        /// The runtime's state directory (its receipt log is `STATE_DIR/receipts`).
        #[arg(long, value_name = "DIR", default_value = ".veritee")]
        state_dir: PathBuf,
        /// Where to write the bundle (refuses to overwrite).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Use a SIMULATED SEV-SNP TEE (development only; its evidence proves nothing).
    #[arg(long)]
    simulate: bool,
    /// With --simulate: this many SIMULATED NVIDIA GPUs (FAKE chain in the state
    /// directory), bound in the runtime claims and required by the written policy.
    #[cfg(feature = "simulate")]
    #[arg(long, value_name = "N", default_value_t = 0, requires = "simulate")]
    simulate_gpus: usize,
    /// TOML configuration file; flags override its values.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address of the TLS listener [default: 127.0.0.1:8443].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// GGUF model file [default: the bundled SmolLM2 in the models directory].
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// Model name the API reports [default: the file's stem].
    #[arg(long, value_name = "NAME")]
    model_id: Option<String>,
    /// Directory for the simulated TEE's development chain and the written client policy
    /// [default: .veritee].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// The provider's launch configuration (TOML: auditor_hpke_public_key, model_digest).
    #[arg(long, value_name = "FILE", conflicts_with = "launch_config_if_present")]
    launch_config: Option<PathBuf>,
    /// Where the host may have put the launch configuration (the sealed image: QEMU's
    /// fw_cfg); absent, the empty one. Either way its SHA-256 must be the hardware's
    /// HOST_DATA / MRCONFIGID.
    #[arg(long, value_name = "FILE")]
    launch_config_if_present: Option<PathBuf>,
    /// Certificates and collateral from the host, served with the evidence.
    #[arg(long, value_name = "DIR")]
    collateral_dir: Option<PathBuf>,
    /// Jobs in the engine's batch at once (more wait in the queue).
    #[arg(long, value_name = "N")]
    max_batch: Option<usize>,
    /// Memory for the batch's KV caches, in MiB.
    #[arg(long, value_name = "MIB")]
    kv_cache_mib: Option<usize>,
    /// CPU kernels: scalar, avx2 or avx512 [default: the fastest available].
    #[arg(long, value_name = "NAME")]
    cpu_kernel: Option<String>,
    /// Attest this many NVIDIA GPUs through NVML (libnvidia-ml.so.1) and bind them in the
    /// runtime claims; refuses to start unless NVML sees exactly these, in
    /// confidential-computing mode with devtools mode off [default: 0].
    #[arg(long, value_name = "N", conflicts_with = "simulate")]
    gpus: Option<usize>,
    /// Jobs waiting beyond which requests are refused with 503.
    #[arg(long, value_name = "N")]
    queue_depth: Option<usize>,
    /// Largest max_tokens a request may ask for.
    #[arg(long, value_name = "N")]
    max_tokens: Option<usize>,
    /// A request's whole life, queue wait included.
    #[arg(long, value_name = "SECONDS")]
    request_timeout: Option<u64>,
    /// After SIGTERM/SIGINT, how long in-flight requests may take to finish.
    #[arg(long, value_name = "SECONDS")]
    shutdown_grace: Option<u64>,
    /// Sign no receipts and keep no log (benchmarks only: clients then get no proof of
    /// usage, and auditors nothing to check).
    #[arg(long)]
    dangerous_no_receipts: bool,
    /// Serve even when SEV-SNP HOST_DATA / TDX MRCONFIGID is not the SHA-256 of the launch
    /// configuration loaded (a VM launched by a tool that does not set it). Clients that
    /// pin HOST_DATA will refuse such a runtime.
    #[arg(long)]
    dangerous_unbound_launch_config: bool,
    /// DANGEROUS, for testing the auditor only (needs --simulate; absent from release
    /// builds): cheat on jobs in this way and sign their receipts as if honest. One of
    /// model-swap, quantize, truncate, fabricate, inflate-tokens, inflate-time, replay.
    #[cfg(feature = "simulate")]
    #[arg(long, value_name = "MODE")]
    dangerous_cheat: Option<String>,
    /// The fraction of jobs cheated on, in (0, 1] [default: 1].
    #[cfg(feature = "simulate")]
    #[arg(long, value_name = "F", requires = "dangerous_cheat")]
    dangerous_cheat_rate: Option<f64>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Command::Serve(args) => *args,
        Command::ExportAudit { state_dir, out } => return export_audit(&state_dir, &out),
    };
    let mut config = match &args.config {
        Some(path) => match Config::from_file(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("veritee-enclave: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    if let Some(v) = args.listen {
        config.listen = v;
    }
    if let Some(v) = args.model {
        config.model = Some(v);
    }
    if let Some(v) = args.model_id {
        config.model_id = Some(v);
    }
    if let Some(v) = args.state_dir {
        config.state_dir = v;
    }
    if let Some(v) = args.launch_config {
        config.launch_config = Some(v);
        config.launch_config_optional = false;
    }
    if let Some(v) = args.launch_config_if_present {
        config.launch_config = Some(v);
        config.launch_config_optional = true;
    }
    if let Some(v) = args.collateral_dir {
        config.collateral_dir = Some(v);
    }
    if let Some(v) = args.cpu_kernel.clone() {
        config.cpu_kernel = Some(v);
    }
    if let Some(v) = args.gpus {
        config.gpus = v;
    }
    if let Some(v) = args.max_batch {
        config.limits.max_batch = v;
    }
    if let Some(v) = args.kv_cache_mib {
        config.limits.kv_cache_mib = v;
    }
    if let Some(v) = args.queue_depth {
        config.limits.queue_depth = v;
    }
    if let Some(v) = args.max_tokens {
        config.limits.max_tokens = v;
        config.limits.default_max_tokens = config.limits.default_max_tokens.min(v);
    }
    if let Some(v) = args.request_timeout {
        config.limits.request_timeout_secs = v;
    }
    if let Some(v) = args.shutdown_grace {
        config.limits.shutdown_grace_secs = v;
    }
    if let Err(e) = config.check() {
        eprintln!("veritee-enclave: {e}");
        return ExitCode::from(2);
    }
    #[cfg(feature = "simulate")]
    let dangerous_cheat = match &args.dangerous_cheat {
        None => None,
        Some(mode) => match enclave::cheat::CheatMode::parse(mode) {
            Ok(mode) => Some((mode, args.dangerous_cheat_rate.unwrap_or(1.0))),
            Err(e) => {
                eprintln!("veritee-enclave: --dangerous-cheat: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("veritee-io")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("veritee-enclave: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let opts = Options {
            config,
            simulate: args.simulate,
            #[cfg(feature = "simulate")]
            simulate_gpus: args.simulate_gpus,
            #[cfg(not(feature = "simulate"))]
            simulate_gpus: 0,
            dangerous_no_receipts: args.dangerous_no_receipts,
            dangerous_unbound_launch_config: args.dangerous_unbound_launch_config,
            #[cfg(feature = "simulate")]
            dangerous_cheat,
        };
        let rt = match startup::start(opts).await {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("veritee-enclave: {e}");
                return ExitCode::FAILURE;
            }
        };
        let addr = match rt.local_addr() {
            Ok(a) => a,
            Err(e) => {
                eprintln!("veritee-enclave: {e}");
                return ExitCode::FAILURE;
            }
        };
        let model = rt.state.engine.model();
        eprintln!(
            "veritee-enclave: model {} (sha256 {}), {}",
            model.id,
            hex::encode(model.digest),
            rt.state.attester.describe()
        );
        if let Some(p) = &rt.policy_path {
            eprintln!(
                "veritee-enclave: client policy for this simulated launch: {}",
                p.display()
            );
        }
        // The one line on stdout: scripts and tests read the address from it.
        println!("veritee-enclave: listening on https://{addr}");
        let drained = rt.serve(shutdown_signal()).await;
        if drained {
            eprintln!("veritee-enclave: stopped; every in-flight request finished");
            ExitCode::SUCCESS
        } else {
            eprintln!("veritee-enclave: stopped; the grace period ended with requests in flight");
            ExitCode::FAILURE
        }
    })
}

fn export_audit(state_dir: &std::path::Path, out: &std::path::Path) -> ExitCode {
    let root = state_dir.join(startup::RECEIPTS_DIR);
    match enclave::audit_export::export_all(&root, out) {
        Ok(summary) => {
            eprintln!("veritee-enclave: {summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("veritee-enclave: export-audit: {e}");
            ExitCode::FAILURE
        }
    }
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
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
    eprintln!("veritee-enclave: shutting down: no new connections, finishing in-flight requests");
}
