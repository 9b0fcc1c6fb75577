//! `veritee-host`: the provider's tool on the (untrusted) host that launches the runtime's
//! confidential VM.
//!
//! - `measure`: the launch measurement of an image (SEV-SNP launch digest, TDX MRTD and
//!   replayed RTMRs), offline.
//! - `policy`: the client policy that accepts exactly this image under one launch
//!   configuration.
//! - `launch`: checks the host and starts QEMU with the command line the measurement
//!   assumes (`--dry-run` prints it).
//!
//! Exit status: 0 done; 2 bad usage, bad input or a missing host prerequisite (nothing was
//! launched). No subcommand has a "refused" verdict of its own (the other binaries' 1);
//! `launch` replaces itself with QEMU, whose exit status is then the command's.

mod boot;
mod host_checks;
mod launch_cmd;
mod measure_cmd;
mod policy_cmd;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

use host::measure::vmsa::VmmType;

/// vCPUs when none are given: the shape `launch` starts and `policy` accepts by default.
pub(crate) const DEFAULT_VCPUS: u32 = 4;
/// The QEMU CPU model of an SEV-SNP launch when none is given.
pub(crate) const DEFAULT_VCPU_TYPE: &str = "EPYC-v4";
/// QEMU's `sev-snp-guest` default SEV features: SNP active, nothing else (QEMU 9.1+ on a
/// kernel with KVM_SEV_INIT2). Older KVM turned on DebugSwap too (0x21).
pub(crate) const DEFAULT_GUEST_FEATURES: u64 = 0x1;
/// The runtime this workspace builds (claim 5), the version a policy accepts by default.
pub(crate) const RUNTIME_VERSION: &str = concat!("veritee-enclave ", env!("CARGO_PKG_VERSION"));

#[derive(Parser)]
#[command(
    name = "veritee-host",
    version,
    about = "Measure, publish a policy for, and launch the veritee confidential VM"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The image: a directory in the `images/` layout, or each file named.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct BootArgs {
    /// Image directory: `vmlinuz`, `initrd`, `cmdline` (the kernel command line; trailing
    /// line breaks are dropped) and `OVMF.fd`, or `OVMF.snp.fd` / `OVMF.tdx.fd` for one
    /// platform. The flags below override single files.
    #[arg(long, value_name = "DIR")]
    pub image: Option<PathBuf>,
    /// Firmware (OVMF, AmdSev or IntelTdx build), loaded with `-bios`.
    #[arg(long, value_name = "FILE")]
    pub firmware: Option<PathBuf>,
    /// Kernel for a direct boot (`-kernel`).
    #[arg(long, value_name = "FILE")]
    pub kernel: Option<PathBuf>,
    /// Initrd (`-initrd`).
    #[arg(long, value_name = "FILE")]
    pub initrd: Option<PathBuf>,
    /// Kernel command line (`-append`), byte for byte.
    #[arg(long, value_name = "TEXT", conflicts_with = "cmdline_file")]
    pub cmdline: Option<String>,
    /// Kernel command line from a file (trailing line breaks dropped).
    #[arg(long, value_name = "FILE")]
    pub cmdline_file: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum MeasurePlatform {
    Snp,
    Tdx,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LaunchPlatform {
    Snp,
    Tdx,
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Vmm {
    Qemu,
    Ec2,
    Gce,
}

impl From<Vmm> for VmmType {
    fn from(v: Vmm) -> Self {
        match v {
            Vmm::Qemu => VmmType::Qemu,
            Vmm::Ec2 => VmmType::Ec2,
            Vmm::Gce => VmmType::Gce,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum MrtdOrder {
    /// Per page: add, then extend (QEMU 9+ with upstream KVM; what `launch` runs).
    SinglePass,
    /// Every page added, then every page extended (older QEMU 8.x TDX trees).
    TwoPass,
    Both,
}

#[derive(Subcommand)]
enum Command {
    /// Compute an image's launch measurement offline.
    ///
    /// SEV-SNP: the launch digest (the report's MEASUREMENT) for one vCPU shape, of a
    /// direct boot with kernel hashes (`--kernel` / `--image`) or of the firmware alone
    /// (`--firmware-only`). TDX: MRTD in both page-add orders (single pass is what current
    /// QEMU does), and RTMR0..3 replayed from a CC event log with `--event-log`.
    Measure(measure_cmd::MeasureArgs),
    /// Write the client policy (TOML) that accepts exactly this image under one launch
    /// configuration: SNP measurements for the accepted vCPU shapes and HOST_DATA, TDX
    /// MRTD / RTMRs and MRCONFIGID, and the [runtime] section (model, runtime version,
    /// launch configuration digest, auditor key).
    Policy(policy_cmd::PolicyArgs),
    /// Check the host and start the image in QEMU (SEV-SNP, TDX, or no TEE under TCG).
    Launch(launch_cmd::LaunchArgs),
}

/// Print to stdout; a reader that went away early (`| head`) is not an error.
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
    let result = match cli.command {
        Command::Measure(args) => measure_cmd::run(&args),
        Command::Policy(args) => policy_cmd::run(&args),
        Command::Launch(args) => launch_cmd::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("veritee-host: {message}");
            ExitCode::from(2)
        }
    }
}
