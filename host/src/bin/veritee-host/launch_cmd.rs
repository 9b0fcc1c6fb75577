//! `veritee-host launch`.

use clap::Args;
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use host::measure::snp::MAX_VCPUS;
use host::qemu::{self, DiskFormat, LaunchPlan, Platform, SnpLaunch, TdxLaunch, SNP_GUEST_POLICY};

use crate::boot::{self, Shape};
use crate::host_checks::{self, Findings, HostRoot};
use crate::policy_cmd::load_launch_config;
use crate::{
    emit, BootArgs, LaunchPlatform, MeasurePlatform, DEFAULT_GUEST_FEATURES, DEFAULT_VCPUS,
    DEFAULT_VCPU_TYPE,
};

/// The C-bit position of every SEV-SNP EPYC so far (Milan, Genoa, Turin), assumed by a dry
/// run on a host without SEV-SNP.
const TYPICAL_CBITPOS: u32 = 51;

#[derive(Args, Debug)]
pub struct LaunchArgs {
    /// snp: AMD SEV-SNP; tdx: Intel TDX; none: no TEE, TCG emulation (tests, development).
    #[arg(long, value_enum)]
    platform: LaunchPlatform,
    #[command(flatten)]
    boot: BootArgs,
    /// The launch configuration handed to the runtime (fw_cfg opt/veritee/launch-config);
    /// its SHA-256 goes to HOST_DATA / MRCONFIGID.
    #[arg(long, value_name = "FILE")]
    launch_config: Option<PathBuf>,
    /// A GPU to pass through with VFIO, by PCI address (repeatable).
    #[arg(long, value_name = "PCI_ADDR")]
    gpu: Vec<String>,
    /// The image's root disk (read-only; default: NAME.raw of a build-image.sh directory).
    #[arg(long, value_name = "FILE")]
    root_disk: Option<PathBuf>,
    /// The runtime's state disk (receipt log), a raw or qcow2 image, as a virtio disk.
    #[arg(long, value_name = "FILE")]
    state_disk: Option<PathBuf>,
    /// Certificates and collateral for the runtime (`--collateral-dir` in the guest),
    /// shared read-only over virtio-9p with mount tag veritee-collateral.
    #[arg(long, value_name = "DIR")]
    collateral_dir: Option<PathBuf>,
    /// vCPUs (must be a shape the policy accepts).
    #[arg(long, default_value_t = DEFAULT_VCPUS)]
    vcpus: u32,
    /// Guest memory: MiB, or with a suffix M, G or T.
    #[arg(long, value_name = "SIZE", default_value = "8G")]
    memory: String,
    /// SEV-SNP: QEMU CPU model (the measurement depends on it).
    #[arg(long)]
    vcpu_type: Option<String>,
    /// SEV-SNP: the SEV features the host's KVM sets, hexadecimal, for the expected
    /// measurement printed (QEMU/KVM decide them, not this flag).
    #[arg(long, value_name = "HEX")]
    guest_features: Option<String>,
    /// SEV-SNP: the host's C-bit position (default: CPUID 0x8000001F).
    #[arg(long)]
    cbitpos: Option<u32>,
    /// TDX: the host's Quote Generation Service as vsock CID:PORT, or "none".
    #[arg(long, value_name = "CID:PORT")]
    qgs: Option<String>,
    /// Host address forwarded to the runtime's TLS port (guest 8443), or "none".
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8443")]
    listen: String,
    /// The QEMU binary.
    #[arg(long, value_name = "PATH", default_value = "qemu-system-x86_64")]
    qemu: PathBuf,
    /// Print the command (and the expected measurement) instead of checking the host and
    /// starting it.
    #[arg(long)]
    dry_run: bool,
    /// With --dry-run: print one JSON object.
    #[arg(long, requires = "dry_run")]
    json: bool,
}

/// `8G`, `512M`, `4096` (MiB), `1T`.
pub fn parse_memory(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&t[..i], &t[i..]),
        None => (t, ""),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("--memory {s:?}: expected a size such as 8G, 512M or 4096"))?;
    let mib = match unit.to_ascii_uppercase().as_str() {
        "" | "M" | "MB" | "MIB" => Some(n),
        "G" | "GB" | "GIB" => n.checked_mul(1024),
        "T" | "TB" | "TIB" => n.checked_mul(1024 * 1024),
        _ => None,
    }
    .ok_or_else(|| format!("--memory {s:?}: expected a size such as 8G, 512M or 4096"))?;
    if mib < 128 {
        return Err(format!("--memory {s:?}: at least 128M"));
    }
    Ok(mib)
}

fn absolute(p: &Path, what: &str) -> Result<PathBuf, String> {
    std::fs::canonicalize(p).map_err(|e| format!("{what} {}: {e}", p.display()))
}

fn qgs(arg: Option<&str>) -> Result<Option<(u32, u32)>, String> {
    match arg {
        None => Ok(Some((2, 4050))),
        Some("none") => Ok(None),
        Some(s) => {
            let bad = || format!("--qgs {s:?}: expected vsock CID:PORT (e.g. 2:4050) or none");
            let (cid, port) = s.split_once(':').ok_or_else(bad)?;
            Ok(Some((
                cid.parse().map_err(|_| bad())?,
                port.parse().map_err(|_| bad())?,
            )))
        }
    }
}

/// The command for a shell: arguments quoted where needed, one option per line.
fn shell_lines(argv: &[String]) -> String {
    let quote = |a: &str| {
        if !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c))
        {
            a.to_owned()
        } else {
            format!("'{}'", a.replace('\'', r"'\''"))
        }
    };
    let mut lines: Vec<String> = Vec::new();
    let mut i = 0;
    while i < argv.len() {
        let a = &argv[i];
        let takes_value =
            i > 0 && a.starts_with('-') && !matches!(a.as_str(), "-nodefaults" | "-no-user-config");
        if takes_value && i + 1 < argv.len() {
            lines.push(format!("{} {}", quote(a), quote(&argv[i + 1])));
            i += 2;
        } else {
            lines.push(quote(a));
            i += 1;
        }
    }
    lines.join(" \\\n    ") + "\n"
}

pub fn run(args: &LaunchArgs) -> Result<(), String> {
    let platform = match args.platform {
        LaunchPlatform::Snp => Platform::Snp,
        LaunchPlatform::Tdx => Platform::Tdx,
        LaunchPlatform::None => Platform::None,
    };
    let snp_only = [
        ("--vcpu-type", args.vcpu_type.is_some()),
        ("--guest-features", args.guest_features.is_some()),
        ("--cbitpos", args.cbitpos.is_some()),
    ];
    if platform != Platform::Snp {
        if let Some((flag, _)) = snp_only.iter().find(|f| f.1) {
            return Err(format!("{flag} is for --platform snp"));
        }
    }
    if platform != Platform::Tdx && args.qgs.is_some() {
        return Err("--qgs is for --platform tdx".into());
    }
    if args.vcpus == 0 || args.vcpus > MAX_VCPUS {
        return Err(format!(
            "--vcpus {}: a launch needs 1..={MAX_VCPUS}",
            args.vcpus
        ));
    }
    let memory_mib = parse_memory(&args.memory)?;

    let resolved = args.boot.resolve(match platform {
        Platform::Snp => Some(MeasurePlatform::Snp),
        Platform::Tdx => Some(MeasurePlatform::Tdx),
        Platform::None => None,
    })?;
    if resolved.kernel.is_none() {
        return Err("launch boots the image directly: give --image DIR or --kernel FILE".into());
    }
    let fw = resolved.firmware()?;
    let direct = resolved
        .direct_boot()?
        .ok_or("launch boots the image directly: give --image DIR or --kernel FILE")?;
    let launch = load_launch_config(args.launch_config.as_deref())?;

    // What the evidence of this launch will carry, computed before anything starts: a
    // launch whose measurement cannot be computed could never be attested.
    let mut expected: Vec<(&str, String)> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let (snp, tdx) = match platform {
        Platform::Snp => {
            let vcpu_type = args.vcpu_type.as_deref().unwrap_or(DEFAULT_VCPU_TYPE);
            let gf = match &args.guest_features {
                Some(g) => boot::parse_hex_u64(g).map_err(|e| format!("--guest-features: {e}"))?,
                None => DEFAULT_GUEST_FEATURES,
            };
            let shape = Shape::new(
                args.vcpus,
                vcpu_type,
                gf,
                host::measure::vmsa::VmmType::Qemu,
            )?;
            let parsed = boot::snp_firmware(&fw)?;
            let digest = boot::snp_digest(&fw, &parsed, &shape, Some(&direct))?;
            expected.push(("measurement", hex::encode(digest)));
            expected.push(("host_data", hex::encode(launch.host_data())));
            let cbitpos = match args.cbitpos.or_else(host_checks::host_cbitpos) {
                Some(c) => c,
                None if args.dry_run => {
                    notes.push(format!("cbitpos {TYPICAL_CBITPOS} assumed: this host reports no SEV-SNP C-bit (pass --cbitpos)"));
                    TYPICAL_CBITPOS
                }
                None => {
                    return Err("refusing to launch: this host reports no SEV-SNP C-bit position (CPUID 0x8000001F): not an SEV-SNP host (or pass --cbitpos)".into());
                }
            };
            (
                Some(SnpLaunch {
                    cpu_model: vcpu_type.to_owned(),
                    cbitpos,
                    reduced_phys_bits: 1,
                    policy: SNP_GUEST_POLICY,
                    host_data: launch.host_data(),
                }),
                None,
            )
        }
        Platform::Tdx => {
            let mrtds = boot::tdx_mrtds(&fw)?;
            expected.push(("mrtd", hex::encode(mrtds.single_pass)));
            expected.push(("mrconfigid", hex::encode(launch.mr_config_id())));
            notes.push(format!("RTMR0..3 not predicted: {}", boot::RTMR_NOTE));
            (
                None,
                Some(TdxLaunch {
                    mr_config_id: launch.mr_config_id(),
                    quote_socket: qgs(args.qgs.as_deref())?,
                }),
            )
        }
        Platform::None => (None, None),
    };
    expected.push(("launch_config_digest", hex::encode(launch.digest)));

    let gpus = args
        .gpu
        .iter()
        .map(|g| {
            qemu::normalize_pci_address(g)
                .ok_or_else(|| format!("--gpu {g:?}: not a PCI address (e.g. 0000:41:00.0)"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let state_disk = match &args.state_disk {
        None => None,
        Some(p) => {
            let path = absolute(p, "state disk")?;
            let meta = std::fs::metadata(&path)
                .map_err(|e| format!("state disk {}: {e}", path.display()))?;
            if meta.is_dir() {
                return Err(format!(
                    "state disk {}: a directory, not a disk image",
                    path.display()
                ));
            }
            let mut head = [0u8; 4];
            let n = std::fs::File::open(&path)
                .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
                .map_err(|e| format!("state disk {}: {e}", path.display()))?;
            Some((path, DiskFormat::detect(&head[..n])))
        }
    };
    let collateral_dir = match &args.collateral_dir {
        None => None,
        Some(d) => {
            let path = absolute(d, "collateral directory")?;
            if !path.is_dir() {
                return Err(format!(
                    "collateral directory {}: not a directory",
                    path.display()
                ));
            }
            Some(path)
        }
    };
    let listen: Option<SocketAddr> = match args.listen.as_str() {
        "none" => None,
        s => Some(
            s.parse()
                .map_err(|_| format!("--listen {s:?}: expected ADDR:PORT or none"))?,
        ),
    };

    let mut plan = LaunchPlan {
        platform,
        qemu: args.qemu.clone(),
        firmware: absolute(&fw.path, "firmware")?,
        kernel: absolute(&direct.kernel.path, "kernel")?,
        initrd: direct
            .initrd
            .as_ref()
            .map(|i| absolute(&i.path, "initrd"))
            .transpose()?,
        cmdline: direct.cmdline.clone(),
        vcpus: args.vcpus,
        memory_mib,
        snp,
        tdx,
        launch_config: args
            .launch_config
            .as_deref()
            .map(|p| absolute(p, "launch configuration"))
            .transpose()?,
        root_disk: args
            .root_disk
            .clone()
            .or_else(|| resolved.root_disk.clone())
            .map(|p| absolute(&p, "root disk"))
            .transpose()?,
        gpus,
        state_disk,
        collateral_dir,
        listen,
    };

    if args.dry_run {
        let argv = plan.argv();
        if args.json {
            let v = json!({
                "platform": platform.to_string(),
                "argv": argv,
                "expected": expected.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
                "notes": notes,
                "host_checks": "not run (--dry-run)",
            });
            emit(&format!("{v:#}\n"));
        } else {
            let mut out = format!(
                "# veritee-host launch --platform {platform} (dry run: host not checked)\n"
            );
            for (k, v) in &expected {
                out.push_str(&format!("# expected {k}: {v}\n"));
            }
            for n in &notes {
                out.push_str(&format!("# note: {n}\n"));
            }
            out.push_str(&shell_lines(&argv));
            emit(&out);
        }
        return Ok(());
    }

    let root = HostRoot::from_env();
    let mut f = Findings::default();
    if let Some(path) = host_checks::check_qemu(&args.qemu, platform, &mut f) {
        plan.qemu = path;
    }
    host_checks::check_platform(&root, platform, &mut f);
    for gpu in &plan.gpus {
        host_checks::check_gpu(&root, gpu, &mut f);
    }
    if !plan.gpus.is_empty() && platform != Platform::None {
        host_checks::check_gpu_cc_mode(&mut f);
    }
    if !f.problems.is_empty() {
        return Err(format!(
            "refusing to launch (nothing was started): {} prerequisite(s) missing:\n  - {}",
            f.problems.len(),
            f.problems.join("\n  - ")
        ));
    }
    for n in f.notes.iter().chain(&notes) {
        eprintln!("veritee-host: {n}");
    }
    for (k, v) in &expected {
        eprintln!("veritee-host: expected {k}: {v}");
    }
    let argv = plan.argv();
    eprint!("veritee-host: starting\n{}", shell_lines(&argv));
    exec(&argv)
}

#[cfg(unix)]
fn exec(argv: &[String]) -> Result<(), String> {
    use std::os::unix::process::CommandExt as _;
    let e = std::process::Command::new(&argv[0]).args(&argv[1..]).exec();
    Err(format!("starting {}: {e}", argv[0]))
}

#[cfg(not(unix))]
fn exec(argv: &[String]) -> Result<(), String> {
    Err(format!("launching {} needs a Unix host", argv[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("8G"), Ok(8192));
        assert_eq!(parse_memory("512m"), Ok(512));
        assert_eq!(parse_memory("4096"), Ok(4096));
        assert_eq!(parse_memory("1T"), Ok(1 << 20));
        assert!(parse_memory("64M").is_err());
        assert!(parse_memory("8X").is_err());
        assert!(parse_memory("G").is_err());
    }

    #[test]
    fn shell_quoting() {
        let argv: Vec<String> = ["qemu", "-nodefaults", "-append", "a b'c", "-m", "8M"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            shell_lines(&argv),
            "qemu \\\n    -nodefaults \\\n    -append 'a b'\\''c' \\\n    -m 8M\n"
        );
    }
}
