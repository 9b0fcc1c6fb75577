//! `veritee-host policy`.

use clap::Args;
use serde_json::Value;
use std::path::{Path, PathBuf};

use host::launch_config::LaunchConfig;
use host::measure::Sha384Digest;
use host::policy::{policy_file, ImagePolicy};

use crate::boot::{self, Shape};
use crate::{
    emit, BootArgs, MeasurePlatform, MrtdOrder, Vmm, DEFAULT_GUEST_FEATURES, DEFAULT_VCPUS,
    DEFAULT_VCPU_TYPE, RUNTIME_VERSION,
};

#[derive(Args, Debug)]
pub struct PolicyArgs {
    /// Measurements written by `veritee-host measure --json` (one object, or an array of
    /// them, per file), instead of measuring an image here.
    #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with_all = ["image", "firmware", "kernel", "initrd", "cmdline", "cmdline_file"])]
    measurement_json: Vec<PathBuf>,
    #[command(flatten)]
    boot: BootArgs,
    /// The launch configuration the host will hand the runtime (its SHA-256 becomes
    /// HOST_DATA / MRCONFIGID and the runtime's launch configuration digest). Without it:
    /// no launch configuration (the digest of the empty string).
    #[arg(long, value_name = "FILE")]
    launch_config: Option<PathBuf>,
    /// Platforms to accept (repeatable). Default: every platform this image can be
    /// measured for.
    #[arg(long, value_enum, value_delimiter = ',')]
    platform: Vec<MeasurePlatform>,
    /// SEV-SNP vCPU counts to accept (repeatable or comma-separated).
    #[arg(long, value_delimiter = ',')]
    vcpus: Vec<u32>,
    /// SEV-SNP vCPU types to accept (repeatable or comma-separated).
    #[arg(long, value_delimiter = ',')]
    vcpu_type: Vec<String>,
    /// SEV-SNP guest features to accept, hexadecimal (repeatable or comma-separated).
    #[arg(long, value_name = "HEX", value_delimiter = ',')]
    guest_features: Vec<String>,
    /// SEV-SNP: the VMM whose initial register state is measured.
    #[arg(long, value_enum, default_value_t = Vmm::Qemu)]
    vmm: Vmm,
    /// TDX: which MRTD page-add order(s) to accept.
    #[arg(long, value_enum, default_value_t = MrtdOrder::SinglePass)]
    mrtd_order: MrtdOrder,
    /// TDX: pin RTMR0..2 to this reference boot's CC event log (JSON), replayed.
    #[arg(long, value_name = "FILE")]
    event_log: Option<PathBuf>,
    /// Accept measurements that do not cover the kernel, initrd and command line: an
    /// SEV-SNP firmware-only measurement, or TDX without a reference event log (RTMR0..2
    /// "any"). Such a policy accepts any OS this firmware boots.
    #[arg(long)]
    dangerous_unmeasured_boot: bool,
    /// The model the runtime must serve: SHA-256, 64 hex digits (default: the launch
    /// configuration's model_digest).
    #[arg(long, value_name = "HEX", conflicts_with = "model")]
    model_digest: Option<String>,
    /// The model the runtime must serve: a GGUF file, hashed here (SHA-256 of the file).
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// The runtime version to accept (claim 5).
    #[arg(long, default_value = RUNTIME_VERSION)]
    runtime_version: String,
    /// NVIDIA GPUs the runtime must bind (claim 8), each verified to NVIDIA's root and
    /// answering the runtime's nonce (the [gpu] section's count; 0: none required).
    #[arg(long, value_name = "N", default_value_t = 0)]
    gpus: u32,
    /// GPU architectures to accept (repeatable or comma-separated) [default: hopper].
    #[arg(long, value_name = "ARCH", value_delimiter = ',', value_parser = parse_gpu_arch, requires = "gpus")]
    gpu_arch: Vec<attestation::policy::GpuArchitecture>,
    /// Minimum GPU driver version, e.g. 570.124.06 [default: any].
    #[arg(long, value_name = "VERSION", value_parser = parse_driver_version, requires = "gpus")]
    gpu_min_driver: Option<attestation::policy::DriverVersion>,
    /// Minimum GPU VBIOS version, e.g. 96.00.9f.00.01 (hex parts) [default: any].
    #[arg(long, value_name = "VERSION", value_parser = parse_vbios_version, requires = "gpus")]
    gpu_min_vbios: Option<attestation::policy::VbiosVersion>,
    /// Require each GPU's measurements to match NVIDIA's driver and VBIOS reference
    /// manifests served in the bundle (rim = "require"); without it the policy says
    /// rim = "dangerous_skip" and the GPU measurements are not appraised.
    #[arg(long, requires = "gpus")]
    gpu_require_rims: bool,
    /// Write the policy here instead of to standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// What went into the policy, for its header.
#[derive(Default)]
struct Collected {
    snp: Vec<(String, Sha384Digest)>,
    tdx_mrtds: Vec<(String, Sha384Digest)>,
    tdx_rtmrs: Option<([Sha384Digest; 3], String)>,
    /// Every direct boot's (kernel, initrd, cmdline) hashes, by source.
    boot_hashes: Vec<(String, Option<[String; 3]>)>,
    firmware: Vec<(MeasurePlatform, String, String)>,
    skipped: Vec<String>,
}

fn hex32(s: &str, what: &str) -> Result<[u8; 32], String> {
    hex::decode(s.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| format!("{what}: expected 64 hex digits, got {s:?}"))
}

fn hex48(v: &Value, what: &str) -> Result<Sha384Digest, String> {
    v.as_str()
        .and_then(|s| hex::decode(s).ok())
        .and_then(|b| <[u8; 48]>::try_from(b).ok())
        .ok_or_else(|| format!("{what}: expected 96 hex digits, got {v}"))
}

fn platform_name(p: MeasurePlatform) -> &'static str {
    match p {
        MeasurePlatform::Snp => "snp",
        MeasurePlatform::Tdx => "tdx",
    }
}

fn rtmrs3(all: &[Sha384Digest; 4]) -> [Sha384Digest; 3] {
    [all[0], all[1], all[2]]
}

fn accepts_order(order: MrtdOrder, pass: &str) -> bool {
    matches!(
        (order, pass),
        (MrtdOrder::Both, _)
            | (MrtdOrder::SinglePass, "single pass")
            | (MrtdOrder::TwoPass, "two pass")
    )
}

impl PolicyArgs {
    fn wants(&self, p: MeasurePlatform) -> bool {
        self.platform.is_empty() || self.platform.contains(&p)
    }

    fn shapes(&self) -> Result<Vec<Shape>, String> {
        let vcpus = if self.vcpus.is_empty() {
            vec![DEFAULT_VCPUS]
        } else {
            self.vcpus.clone()
        };
        let types = if self.vcpu_type.is_empty() {
            vec![DEFAULT_VCPU_TYPE.to_owned()]
        } else {
            self.vcpu_type.clone()
        };
        let features = if self.guest_features.is_empty() {
            vec![DEFAULT_GUEST_FEATURES]
        } else {
            self.guest_features
                .iter()
                .map(|g| boot::parse_hex_u64(g).map_err(|e| format!("--guest-features: {e}")))
                .collect::<Result<_, _>>()?
        };
        let mut shapes = Vec::new();
        for t in &types {
            for &n in &vcpus {
                for &gf in &features {
                    shapes.push(Shape::new(n, t, gf, self.vmm.into())?);
                }
            }
        }
        Ok(shapes)
    }

    fn event_log_rtmrs(&self) -> Result<Option<([Sha384Digest; 3], String)>, String> {
        self.event_log
            .as_deref()
            .map(|p| {
                let (rtmrs, n) = boot::replay_event_log(p)?;
                Ok((rtmrs3(&rtmrs), format!("{} ({n} events)", p.display())))
            })
            .transpose()
    }
}

/// SEV-SNP and TDX measured from the image here.
fn from_image(args: &PolicyArgs, c: &mut Collected) -> Result<(), String> {
    let mut failures = Vec::new();
    if args.wants(MeasurePlatform::Snp) {
        match snp_from_image(args, c) {
            Ok(()) => {}
            Err(e) if args.platform.is_empty() => failures.push(format!("snp: {e}")),
            Err(e) => return Err(e),
        }
    }
    if args.wants(MeasurePlatform::Tdx) {
        match tdx_from_image(args, c) {
            Ok(()) => {}
            Err(e) if args.platform.is_empty() => failures.push(format!("tdx: {e}")),
            Err(e) => return Err(e),
        }
    }
    if c.snp.is_empty() && c.tdx_mrtds.is_empty() {
        return Err(format!(
            "this image can be measured for no platform:\n  {}",
            failures.join("\n  ")
        ));
    }
    c.skipped = failures;
    Ok(())
}

fn snp_from_image(args: &PolicyArgs, c: &mut Collected) -> Result<(), String> {
    let resolved = args.boot.resolve(Some(MeasurePlatform::Snp))?;
    let fw = resolved.firmware()?;
    let direct = resolved.direct_boot()?;
    if direct.is_none() && !args.dangerous_unmeasured_boot {
        return Err("no kernel: a firmware-only SEV-SNP measurement does not cover the kernel, initrd or command line (give --kernel / --image, or --dangerous-unmeasured-boot)".into());
    }
    let parsed = boot::snp_firmware(&fw)?;
    for shape in args.shapes()? {
        let digest = boot::snp_digest(&fw, &parsed, &shape, direct.as_ref())?;
        c.snp.push((shape.describe(), digest));
    }
    c.firmware.push((
        MeasurePlatform::Snp,
        fw.path.display().to_string(),
        hex::encode(fw.sha256),
    ));
    c.boot_hashes.push((
        "snp".into(),
        direct.map(|d| {
            let h = d.hashes();
            [h.kernel, h.initrd, h.cmdline].map(hex::encode)
        }),
    ));
    Ok(())
}

fn tdx_from_image(args: &PolicyArgs, c: &mut Collected) -> Result<(), String> {
    let resolved = args.boot.resolve(Some(MeasurePlatform::Tdx))?;
    let rtmrs = args.event_log_rtmrs()?;
    if rtmrs.is_none() && !args.dangerous_unmeasured_boot {
        return Err("RTMR0..2 of a direct boot are not computed here (see `veritee-host measure --platform tdx`): pass --event-log FILE from a reference boot to pin them, or --dangerous-unmeasured-boot to leave them \"any\" (the policy would then accept any kernel this firmware boots)".into());
    }
    let fw = resolved.firmware()?;
    let mrtds = boot::tdx_mrtds(&fw)?;
    for (pass, v) in [
        ("single pass", mrtds.single_pass),
        ("two pass", mrtds.two_pass),
    ] {
        if accepts_order(args.mrtd_order, pass) {
            c.tdx_mrtds.push((pass.into(), v));
        }
    }
    c.tdx_rtmrs = rtmrs;
    c.firmware.push((
        MeasurePlatform::Tdx,
        fw.path.display().to_string(),
        hex::encode(fw.sha256),
    ));
    let direct = resolved.direct_boot()?;
    c.boot_hashes.push((
        "tdx".into(),
        direct.map(|d| {
            let h = d.hashes();
            [h.kernel, h.initrd, h.cmdline].map(hex::encode)
        }),
    ));
    Ok(())
}

fn boot_hashes_of(entry: &Value, what: &str) -> Result<Option<[String; 3]>, String> {
    let k = &entry["kernel_hashes"];
    if k.is_null() {
        return Ok(None);
    }
    let get = |field: &str| {
        k[field]["sha256"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("{what}: kernel_hashes.{field}.sha256 missing"))
    };
    Ok(Some([get("kernel")?, get("initrd")?, get("cmdline")?]))
}

/// Measurements read from `measure --json` output.
fn from_json(args: &PolicyArgs, c: &mut Collected) -> Result<(), String> {
    let shape_flags = !args.vcpus.is_empty()
        || !args.vcpu_type.is_empty()
        || !args.guest_features.is_empty()
        || args.vmm != Vmm::Qemu;
    if shape_flags {
        return Err("--vcpus, --vcpu-type, --guest-features and --vmm measure an image; with --measurement-json the shapes are the files'".into());
    }
    let log_rtmrs = args.event_log_rtmrs()?;
    let mut tdx_rtmrs: Vec<([Sha384Digest; 3], String)> = Vec::new();
    for path in &args.measurement_json {
        let bytes = boot::read(path, "measurement file")?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("measurement file {}: not JSON: {e}", path.display()))?;
        let entries = match v {
            Value::Array(a) => a,
            other => vec![other],
        };
        for (i, e) in entries.iter().enumerate() {
            let what = format!("{} entry {i}", path.display());
            let platform = match e["platform"].as_str() {
                Some("snp") => MeasurePlatform::Snp,
                Some("tdx") => MeasurePlatform::Tdx,
                other => {
                    return Err(format!(
                        "{what}: platform {other:?}; expected \"snp\" or \"tdx\" (the output of veritee-host measure --json)"
                    ))
                }
            };
            if !args.wants(platform) {
                continue;
            }
            let firmware = e["firmware"]["sha256"]
                .as_str()
                .ok_or_else(|| format!("{what}: firmware.sha256 missing"))?;
            c.firmware.push((
                platform,
                e["firmware"]["path"].as_str().unwrap_or("?").to_owned(),
                firmware.to_owned(),
            ));
            let hashes = boot_hashes_of(e, &what)?;
            match platform {
                MeasurePlatform::Snp => {
                    if hashes.is_none() && !args.dangerous_unmeasured_boot {
                        return Err(format!("{what}: a firmware-only SEV-SNP measurement does not cover the kernel, initrd or command line (measure with --kernel / --image, or pass --dangerous-unmeasured-boot)"));
                    }
                    let digest = hex48(&e["measurement"], &format!("{what}: measurement"))?;
                    let shape = format!(
                        "{} x {}, guest features {}, {}",
                        e["vcpus"],
                        e["vcpu_type"].as_str().unwrap_or("?"),
                        e["guest_features"].as_str().unwrap_or("?"),
                        e["vmm"].as_str().unwrap_or("?"),
                    );
                    c.snp
                        .push((format!("{shape} ({})", path.display()), digest));
                }
                MeasurePlatform::Tdx => {
                    for (pass, key) in [
                        ("single pass", "mrtd_single_pass"),
                        ("two pass", "mrtd_two_pass"),
                    ] {
                        if accepts_order(args.mrtd_order, pass) {
                            let v = hex48(&e[key], &format!("{what}: {key}"))?;
                            c.tdx_mrtds
                                .push((format!("{pass} ({})", path.display()), v));
                        }
                    }
                    if log_rtmrs.is_none() {
                        match e["rtmrs"].as_array() {
                            Some(r) if r.len() == 4 => {
                                let mut out = [[0u8; 48]; 4];
                                for (j, x) in r.iter().enumerate() {
                                    out[j] = hex48(x, &format!("{what}: rtmrs[{j}]"))?;
                                }
                                let source = e["event_log"]["path"]
                                    .as_str()
                                    .map_or(what.clone(), |p| format!("{p} (via {what})"));
                                tdx_rtmrs.push((rtmrs3(&out), source));
                            }
                            _ if args.dangerous_unmeasured_boot => {}
                            _ => {
                                return Err(format!("{what}: no RTMRs (measured without --event-log): RTMR1/2 would be left \"any\", so the policy would accept any kernel this firmware boots. Measure with --event-log, give --event-log here, or pass --dangerous-unmeasured-boot"));
                            }
                        }
                    }
                }
            }
            c.boot_hashes.push((what, hashes));
        }
    }
    if let Some((first, rest)) = tdx_rtmrs.split_first() {
        if let Some(other) = rest.iter().find(|r| r.0 != first.0) {
            return Err(format!(
                "the measurement files replay different RTMRs ({} and {}): one policy pins one boot",
                first.1, other.1
            ));
        }
        c.tdx_rtmrs = Some(first.clone());
    }
    if log_rtmrs.is_some() {
        c.tdx_rtmrs = log_rtmrs;
    }
    if c.snp.is_empty() && c.tdx_mrtds.is_empty() {
        return Err("the measurement files hold no measurement for the platforms asked for".into());
    }
    Ok(())
}

/// One image: the same kernel, initrd and command line everywhere, one firmware per platform.
fn check_one_image(c: &Collected) -> Result<(), String> {
    let mut direct: Option<&(String, Option<[String; 3]>)> = None;
    for entry in &c.boot_hashes {
        if let Some(h) = &entry.1 {
            match direct {
                Some(first) if first.1.as_ref() != Some(h) => {
                    return Err(format!(
                        "{} and {} measure different kernels, initrds or command lines: one policy is for one image",
                        first.0, entry.0
                    ))
                }
                None => direct = Some(entry),
                _ => {}
            }
        }
    }
    for p in [MeasurePlatform::Snp, MeasurePlatform::Tdx] {
        let mut seen = c.firmware.iter().filter(|f| f.0 == p);
        if let Some(first) = seen.next() {
            if let Some(other) = seen.find(|f| f.2 != first.2) {
                return Err(format!(
                    "{}: firmware {} and {} differ: one policy is for one image",
                    platform_name(p),
                    first.1,
                    other.1
                ));
            }
        }
    }
    Ok(())
}

fn model_digest(args: &PolicyArgs, launch: &LaunchConfig) -> Result<[u8; 32], String> {
    let mut sources: Vec<([u8; 32], String)> = Vec::new();
    if let Some(d) = launch.model_digest {
        sources.push((d, "the launch configuration's model_digest".into()));
    }
    if let Some(h) = &args.model_digest {
        sources.push((hex32(h, "--model-digest")?, "--model-digest".into()));
    }
    if let Some(p) = &args.model {
        let bytes = boot::read(p, "model")?;
        sources.push((boot::sha256(&bytes), format!("--model {}", p.display())));
    }
    let Some((first, rest)) = sources.split_first() else {
        return Err("the policy must name the model: put model_digest in the launch configuration, or pass --model-digest HEX or --model FILE".into());
    };
    if let Some(other) = rest.iter().find(|s| s.0 != first.0) {
        return Err(format!(
            "{} ({}) and {} ({}) name different models",
            first.1,
            hex::encode(first.0),
            other.1,
            hex::encode(other.0)
        ));
    }
    Ok(first.0)
}

pub fn load_launch_config(path: Option<&Path>) -> Result<LaunchConfig, String> {
    match path {
        None => Ok(LaunchConfig::none()),
        Some(p) => {
            let bytes = boot::read(p, "launch configuration")?;
            let config =
                LaunchConfig::parse(&bytes).map_err(|e| format!("{}: {e}", p.display()))?;
            for key in &config.other_keys {
                eprintln!(
                    "veritee-host: note: launch configuration {}: key {key:?} is the runtime's to check (this tool reads {}); the runtime refuses keys it does not know",
                    p.display(),
                    host::launch_config::KNOWN_KEYS.join(", ")
                );
            }
            Ok(config)
        }
    }
}

fn parse_gpu_arch(text: &str) -> Result<attestation::policy::GpuArchitecture, String> {
    match text.to_ascii_lowercase().as_str() {
        "hopper" => Ok(attestation::policy::GpuArchitecture::Hopper),
        _ => Err(format!(
            "{text:?} is not a GPU architecture this verifier knows (hopper)"
        )),
    }
}

fn parse_driver_version(text: &str) -> Result<attestation::policy::DriverVersion, String> {
    attestation::policy::DriverVersion::parse(text)
        .ok_or_else(|| format!("{text:?} is not a driver version (decimal parts: 570.124.06)"))
}

fn parse_vbios_version(text: &str) -> Result<attestation::policy::VbiosVersion, String> {
    attestation::policy::VbiosVersion::parse(text)
        .ok_or_else(|| format!("{text:?} is not a VBIOS version (hex parts: 96.00.9f.00.01)"))
}

/// The [gpu] section the flags ask for ([`GpuPolicy::none`] without --gpus).
fn gpu_policy(args: &PolicyArgs) -> attestation::policy::GpuPolicy {
    use attestation::policy::{Constraint, GpuArchitecture, GpuPolicy, GpuRim};
    if args.gpus == 0 {
        return GpuPolicy::none();
    }
    GpuPolicy {
        count: args.gpus,
        architectures: if args.gpu_arch.is_empty() {
            vec![GpuArchitecture::Hopper]
        } else {
            args.gpu_arch.clone()
        },
        min_driver_version: args
            .gpu_min_driver
            .clone()
            .map_or(Constraint::Any, Constraint::Only),
        min_vbios_version: args
            .gpu_min_vbios
            .clone()
            .map_or(Constraint::Any, Constraint::Only),
        rim: if args.gpu_require_rims {
            GpuRim::Require
        } else {
            GpuRim::DangerousSkip
        },
        dangerous_trusted_roots: Vec::new(),
        dangerous_trusted_rim_roots: Vec::new(),
        // The runtime serves no OCSP responses yet: revocation cannot be required.
        revocation: attestation::policy::GpuRevocation::DangerousSkip,
    }
}

pub fn run(args: &PolicyArgs) -> Result<(), String> {
    let launch = load_launch_config(args.launch_config.as_deref())?;
    let model = model_digest(args, &launch)?;
    let mut c = Collected::default();
    if !args.measurement_json.is_empty() {
        from_json(args, &mut c)?;
    } else if args.boot.is_empty() {
        return Err(
            "give the image (--image DIR, or --firmware/--kernel/...) or --measurement-json FILE"
                .into(),
        );
    } else {
        from_image(args, &mut c)?;
    }
    check_one_image(&c)?;

    let image = ImagePolicy {
        snp_measurements: c.snp.iter().map(|s| s.1).collect(),
        tdx_mrtds: c.tdx_mrtds.iter().map(|s| s.1).collect(),
        tdx_rtmrs: c.tdx_rtmrs.as_ref().map(|r| r.0),
        launch_config: launch.clone(),
        model_digest: model,
        runtime_version: args.runtime_version.clone(),
        gpu: gpu_policy(args),
    };
    let file = policy_file(&image).map_err(|e| e.to_string())?;

    let mut head = vec![format!(
        "Client policy for one veritee image, written by veritee-host {}.",
        env!("CARGO_PKG_VERSION")
    )];
    for (shape, d) in &c.snp {
        head.push(format!("snp: {shape}: measurement {}", hex::encode(d)));
    }
    for (pass, d) in &c.tdx_mrtds {
        head.push(format!("tdx: MRTD ({pass}) {}", hex::encode(d)));
    }
    if !c.tdx_mrtds.is_empty() {
        head.push(match &c.tdx_rtmrs {
            Some((_, source)) => format!("tdx: RTMR0..2 replayed from {source}; RTMR3 \"any\" (runtime events)"),
            None => "tdx: RTMR0..2 \"any\" (--dangerous-unmeasured-boot): the kernel, initrd and command line are NOT pinned".into(),
        });
    }
    for (p, path, sha) in &c.firmware {
        head.push(format!(
            "{} firmware {path} sha256 {sha}",
            platform_name(*p)
        ));
    }
    match c.boot_hashes.iter().find_map(|b| b.1.as_ref()) {
        Some([k, i, cmd]) => head.push(format!(
            "kernel sha256 {k}, initrd sha256 {i}, command line sha256 {cmd}"
        )),
        None => head.push(
            "no kernel measured (--dangerous-unmeasured-boot): any OS this firmware boots is accepted"
                .into(),
        ),
    }
    head.push(format!(
        "launch configuration {} sha256 {} (= SNP HOST_DATA, TDX MRCONFIGID)",
        args.launch_config
            .as_deref()
            .map_or("(none)".into(), |p| p.display().to_string()),
        hex::encode(launch.digest)
    ));
    for s in &c.skipped {
        head.push(format!("not accepted: {s}"));
    }
    if file.gpu.count > 0 && file.gpu.rim != attestation::policy::GpuRim::Require {
        head.push(format!(
            "gpu: {} NVIDIA GPU(s) required; their measurements are NOT appraised against NVIDIA's reference manifests (rim = \"dangerous_skip\"; --gpu-require-rims to require them)",
            file.gpu.count
        ));
    }
    let mut text: String = head
        .iter()
        .flat_map(|l| l.lines())
        .map(|l| format!("# {l}\n"))
        .collect();
    text.push_str(&file.to_toml());

    let platforms: Vec<&str> = file.evidence.platforms.iter().map(|p| p.as_str()).collect();
    match &args.out {
        Some(out) => {
            std::fs::write(out, &text).map_err(|e| format!("writing {}: {e}", out.display()))?;
            eprintln!(
                "veritee-host: wrote {}: accepts {} ({} SNP measurement(s), {} TDX MRTD(s))",
                out.display(),
                platforms.join(", "),
                c.snp.len(),
                c.tdx_mrtds.len()
            );
        }
        None => emit(&text),
    }
    for s in &c.skipped {
        eprintln!("veritee-host: not in the policy: {s}");
    }
    if !c.tdx_mrtds.is_empty() && c.tdx_rtmrs.is_none() {
        eprintln!("veritee-host: WARNING: TDX RTMR0..2 are \"any\": the policy does not pin the kernel, initrd or command line");
    }
    Ok(())
}
