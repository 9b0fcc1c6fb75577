//! `veritee-host measure`.

use clap::Args;
use serde_json::{json, Value};
use std::path::PathBuf;

use crate::boot::{self, DirectBoot, Firmware, Shape};
use crate::{
    emit, BootArgs, MeasurePlatform, Vmm, DEFAULT_GUEST_FEATURES, DEFAULT_VCPUS, DEFAULT_VCPU_TYPE,
};

#[derive(Args, Debug)]
pub struct MeasureArgs {
    /// The TEE the image is launched on.
    #[arg(long, value_enum)]
    platform: MeasurePlatform,
    #[command(flatten)]
    boot: BootArgs,
    /// SEV-SNP: measure the firmware alone (no `-kernel`; the kernel-hashes page, if the
    /// firmware has one, is measured as a zero page).
    #[arg(long)]
    firmware_only: bool,
    /// SEV-SNP: number of vCPUs (one VMSA each).
    #[arg(long, default_value_t = DEFAULT_VCPUS)]
    vcpus: u32,
    /// SEV-SNP: QEMU CPU model (`-cpu`), e.g. EPYC-v4, EPYC-Milan, EPYC-Genoa.
    #[arg(long, default_value = DEFAULT_VCPU_TYPE)]
    vcpu_type: String,
    /// SEV-SNP: guest features (SEV_FEATURES of the VMSA), hexadecimal.
    #[arg(long, value_name = "HEX", default_value_t = format!("{DEFAULT_GUEST_FEATURES:#x}"))]
    guest_features: String,
    /// SEV-SNP: the VMM whose initial register state is measured.
    #[arg(long, value_enum, default_value_t = Vmm::Qemu)]
    vmm: Vmm,
    /// TDX: replay this CC event log (JSON: imr, event_type, digest, event, event_payload)
    /// into RTMR0..3.
    #[arg(long, value_name = "FILE")]
    event_log: Option<PathBuf>,
    /// Print one JSON object (what `policy --measurement-json` reads).
    #[arg(long)]
    json: bool,
}

fn boot_json(boot: Option<&DirectBoot>) -> Value {
    match boot {
        None => Value::Null,
        Some(b) => {
            let h = b.hashes();
            json!({
                "kernel": {"path": b.kernel.path, "sha256": hex::encode(h.kernel)},
                "initrd": {
                    "path": b.initrd.as_ref().map(|i| &i.path),
                    "sha256": hex::encode(h.initrd),
                },
                "cmdline": {"text": b.cmdline, "sha256": hex::encode(h.cmdline)},
            })
        }
    }
}

fn boot_text(out: &mut String, boot: Option<&DirectBoot>) {
    let Some(b) = boot else {
        return;
    };
    let h = b.hashes();
    out.push_str(&format!(
        "kernel          {} sha256 {}\n",
        b.kernel.path.display(),
        hex::encode(h.kernel)
    ));
    match &b.initrd {
        Some(i) => out.push_str(&format!(
            "initrd          {} sha256 {}\n",
            i.path.display(),
            hex::encode(h.initrd)
        )),
        None => out.push_str(&format!(
            "initrd          (none) sha256 {} (of the empty string)\n",
            hex::encode(h.initrd)
        )),
    }
    out.push_str(&format!(
        "cmdline         {:?} sha256 {} (of the text and one NUL)\n",
        b.cmdline.as_deref().unwrap_or(""),
        hex::encode(h.cmdline)
    ));
}

fn firmware_json(fw: &Firmware) -> Value {
    json!({"path": fw.path, "sha256": hex::encode(fw.sha256)})
}

pub fn run(args: &MeasureArgs) -> Result<(), String> {
    let platform = args.platform;
    let resolved = args.boot.resolve(Some(platform))?;
    match platform {
        MeasurePlatform::Snp => {
            if args.event_log.is_some() {
                return Err("--event-log is for --platform tdx".into());
            }
            if args.firmware_only && resolved.kernel.is_some() {
                return Err(
                    "--firmware-only measures no kernel: give only --firmware, not a kernel or an --image".into(),
                );
            }
            if !args.firmware_only && resolved.kernel.is_none() {
                return Err(
                    "SEV-SNP: give the kernel (--kernel or --image) for a direct boot with kernel hashes, or --firmware-only for a firmware-only launch".into(),
                );
            }
        }
        MeasurePlatform::Tdx => {
            if args.firmware_only {
                return Err(
                    "--firmware-only is for --platform snp (MRTD never covers the kernel)".into(),
                );
            }
        }
    }
    let fw = resolved.firmware()?;
    let boot = resolved.direct_boot()?;

    match platform {
        MeasurePlatform::Snp => {
            let gf = boot::parse_hex_u64(&args.guest_features)
                .map_err(|e| format!("--guest-features: {e}"))?;
            let shape = Shape::new(args.vcpus, &args.vcpu_type, gf, args.vmm.into())?;
            let parsed = boot::snp_firmware(&fw)?;
            let digest = boot::snp_digest(&fw, &parsed, &shape, boot.as_ref())?;
            if args.json {
                let v = json!({
                    "platform": "snp",
                    "measurement": hex::encode(digest),
                    "vmm": shape.vmm.to_string(),
                    "vcpus": shape.vcpus,
                    "vcpu_type": shape.vcpu_type,
                    "vcpu_sig": format!("{:#x}", shape.vcpu_sig),
                    "guest_features": format!("{:#x}", shape.guest_features),
                    "firmware": firmware_json(&fw),
                    "boot": if boot.is_some() { "direct" } else { "firmware_only" },
                    "kernel_hashes": boot_json(boot.as_ref()),
                });
                emit(&format!("{v:#}\n"));
            } else {
                let mut out = String::new();
                out.push_str("platform        snp\n");
                out.push_str(&format!("measurement     {}\n", hex::encode(digest)));
                out.push_str(&format!("vmm             {}\n", shape.vmm));
                out.push_str(&format!("vcpus           {}\n", shape.vcpus));
                out.push_str(&format!(
                    "vcpu_type       {} (CPUID signature {:#x})\n",
                    shape.vcpu_type, shape.vcpu_sig
                ));
                out.push_str(&format!("guest_features  {:#x}\n", shape.guest_features));
                out.push_str(&format!(
                    "firmware        {} sha256 {}\n",
                    fw.path.display(),
                    hex::encode(fw.sha256)
                ));
                match &boot {
                    Some(_) => out.push_str("boot            direct, kernel-hashes=on\n"),
                    None => out.push_str(
                        "boot            firmware only: no kernel, initrd or command line is measured\n",
                    ),
                }
                boot_text(&mut out, boot.as_ref());
                emit(&out);
            }
        }
        MeasurePlatform::Tdx => {
            let mrtds = boot::tdx_mrtds(&fw)?;
            let replay = args
                .event_log
                .as_deref()
                .map(|p| boot::replay_event_log(p).map(|(r, n)| (r, n, p)))
                .transpose()?;
            if args.json {
                let v = json!({
                    "platform": "tdx",
                    "mrtd": hex::encode(mrtds.single_pass),
                    "mrtd_single_pass": hex::encode(mrtds.single_pass),
                    "mrtd_two_pass": hex::encode(mrtds.two_pass),
                    "firmware": firmware_json(&fw),
                    "kernel_hashes": boot_json(boot.as_ref()),
                    "rtmrs": replay.as_ref().map(|(r, _, _)| r.iter().map(hex::encode).collect::<Vec<_>>()),
                    "event_log": replay.as_ref().map(|(_, n, p)| json!({"path": p, "events": n})),
                    "rtmr_note": if replay.is_none() && boot.is_some() { Some(boot::RTMR_NOTE) } else { None },
                });
                emit(&format!("{v:#}\n"));
            } else {
                let mut out = String::new();
                out.push_str("platform        tdx\n");
                out.push_str(&format!(
                    "mrtd            {} (single pass: each page added, then extended; QEMU 9+ with upstream KVM, the default)\n",
                    hex::encode(mrtds.single_pass)
                ));
                out.push_str(&format!(
                    "mrtd_two_pass   {} (every page added, then every page extended; older QEMU 8.x TDX trees)\n",
                    hex::encode(mrtds.two_pass)
                ));
                out.push_str(&format!(
                    "firmware        {} sha256 {}\n",
                    fw.path.display(),
                    hex::encode(fw.sha256)
                ));
                boot_text(&mut out, boot.as_ref());
                match &replay {
                    Some((rtmrs, n, path)) => {
                        for (i, r) in rtmrs.iter().enumerate() {
                            out.push_str(&format!("rtmr{i}           {}\n", hex::encode(r)));
                        }
                        out.push_str(&format!(
                            "rtmrs from      {} ({n} events replayed)\n",
                            path.display()
                        ));
                    }
                    None if boot.is_some() => {
                        out.push_str(&format!(
                            "rtmrs           not computed: {}\n",
                            boot::RTMR_NOTE
                        ));
                    }
                    None => {}
                }
                emit(&out);
            }
        }
    }
    Ok(())
}
