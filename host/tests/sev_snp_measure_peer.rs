//! `veritee-host measure` against sev-snp-measure (virtee's reference implementation, from
//! PyPI, pinned) in the same test run: the same inputs through both tools, the same digest
//! out, for many vCPU shapes on the real Debian OVMF (firmware only: that build has no SNP
//! kernel-hashes section), and for direct boots with a synthetic kernel, initrd and command
//! line on the AmdSev build's suffix (which has one). Both must also refuse the same input.
//!
//! sev-snp-measure is a peer for this test only, never a dependency of veritee: the test
//! makes a venv under the target's temporary directory and pip-installs it there. Without
//! python3 or pip the test fails; it never skips.

mod common;

use common::{run, synthetic, temp_dir};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Pinned peer version.
const PEER: &str = "sev-snp-measure==0.0.13";

/// The venv's `sev-snp-measure`, installed on first use, or why it could not be made.
fn peer() -> Result<PathBuf, String> {
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sev-snp-measure-venv");
    let tool = venv.join("bin/sev-snp-measure");
    let version = PEER.trim_start_matches("sev-snp-measure==");
    let have = Command::new(&tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(version));
    if have {
        return Ok(tool);
    }
    let made = Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&venv)
        .status();
    if !made.is_ok_and(|s| s.success()) {
        return Err("python3 -m venv failed".into());
    }
    let installed = Command::new(venv.join("bin/python"))
        .args(["-m", "pip", "install", "--quiet", PEER])
        .status();
    if !installed.is_ok_and(|s| s.success()) {
        return Err(format!("pip install {PEER} failed"));
    }
    Ok(tool)
}

/// One launch, as both tools' arguments.
struct Launch<'a> {
    firmware: &'a Path,
    vcpus: u32,
    vcpu_type: &'a str,
    guest_features: u64,
    vmm: &'a str,
    kernel: Option<&'a Path>,
    initrd: Option<&'a Path>,
    cmdline: Option<&'a str>,
}

impl Launch<'_> {
    fn describe(&self) -> String {
        format!(
            "{} {} x {} gf {:#x} {} kernel={:?} initrd={:?} cmdline={:?}",
            self.firmware.file_name().unwrap().to_string_lossy(),
            self.vcpus,
            self.vcpu_type,
            self.guest_features,
            self.vmm,
            self.kernel.map(|k| k.file_name().unwrap().to_owned()),
            self.initrd.map(|k| k.file_name().unwrap().to_owned()),
            self.cmdline
        )
    }

    /// sev-snp-measure's digest, or its error.
    fn peer(&self, tool: &Path) -> Result<String, String> {
        let mut c = Command::new(tool);
        c.args(["--mode", "snp", "--output-format", "hex"])
            .arg("--ovmf")
            .arg(self.firmware)
            .args(["--vcpus", &self.vcpus.to_string()])
            .args(["--vcpu-type", self.vcpu_type])
            .args(["--guest-features", &format!("{:#x}", self.guest_features)])
            .args([
                "--vmm-type",
                if self.vmm == "qemu" { "QEMU" } else { self.vmm },
            ]);
        if let Some(k) = self.kernel {
            c.arg("--kernel").arg(k);
        }
        if let Some(i) = self.initrd {
            c.arg("--initrd").arg(i);
        }
        if let Some(a) = self.cmdline {
            c.args(["--append", a]);
        }
        let out = c.output().expect("sev-snp-measure runs");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Ours, through the binary.
    fn ours(&self) -> Result<String, String> {
        let mut args: Vec<String> = vec![
            "measure".into(),
            "--platform".into(),
            "snp".into(),
            "--json".into(),
            "--firmware".into(),
            self.firmware.to_str().unwrap().into(),
            "--vcpus".into(),
            self.vcpus.to_string(),
            "--vcpu-type".into(),
            self.vcpu_type.into(),
            "--guest-features".into(),
            format!("{:#x}", self.guest_features),
            "--vmm".into(),
            self.vmm.into(),
        ];
        match self.kernel {
            Some(k) => args.extend(["--kernel".into(), k.to_str().unwrap().into()]),
            None => args.push("--firmware-only".into()),
        }
        if let Some(i) = self.initrd {
            args.extend(["--initrd".into(), i.to_str().unwrap().into()]);
        }
        if let Some(a) = self.cmdline {
            args.extend(["--cmdline".into(), a.into()]);
        }
        let r = run(&args);
        match r.code {
            0 => Ok(r.json()["measurement"].as_str().unwrap().to_owned()),
            2 => Err(r.stderr),
            other => panic!("exit {other}: {}", r.stderr),
        }
    }
}

#[test]
fn digests_equal_sev_snp_measure() {
    let tool = peer().unwrap_or_else(|why| {
        panic!("the sev-snp-measure comparison needs its venv (python3, pip, {PEER}): {why}")
    });
    let debian = common::debian_ovmf();
    let suffix = common::amdsev_suffix();
    let tmp = temp_dir("peer");
    let kernel = tmp.join("vmlinuz");
    let initrd = tmp.join("initrd");
    std::fs::write(&kernel, synthetic(1 << 20, 11)).unwrap();
    std::fs::write(&initrd, synthetic(300_001, 12)).unwrap();

    let mut launches = Vec::new();
    // The real Debian OVMF, firmware only, across vCPU shapes and SEV features.
    for (vcpus, vcpu_type, gf) in [
        (1, "EPYC-v4", 0x1),
        (2, "EPYC-v4", 0x21),
        (8, "EPYC-v4", 0x1),
        (1, "EPYC-Rome", 0x1),
        (3, "EPYC-Milan", 0x1),
        (16, "EPYC-Milan", 0x21),
        (2, "EPYC-Genoa", 0x1),
        (64, "EPYC-Genoa", 0x21),
        (4, "EPYC-Turin", 0x1),
        (4, "EPYC", 0x1),
    ] {
        launches.push(Launch {
            firmware: &debian,
            vcpus,
            vcpu_type,
            guest_features: gf,
            vmm: "qemu",
            kernel: None,
            initrd: None,
            cmdline: None,
        });
    }
    for vmm in ["ec2", "gce"] {
        launches.push(Launch {
            firmware: &debian,
            vcpus: 4,
            vcpu_type: "EPYC-v4",
            guest_features: 0x1,
            vmm,
            kernel: None,
            initrd: None,
            cmdline: None,
        });
    }
    // Direct boots on the AmdSev build (kernel-hashes section), synthetic inputs.
    for (vcpus, vcpu_type, gf, with_initrd, cmdline) in [
        (1, "EPYC-v4", 0x1, true, Some(common::CMDLINE)),
        (4, "EPYC-Milan", 0x21, true, Some(common::CMDLINE)),
        (
            8,
            "EPYC-Genoa",
            0x1,
            true,
            Some("root=/dev/vda ro 'quoted arg' é"),
        ),
        (2, "EPYC-Genoa", 0x1, false, Some("console=ttyS0")),
        (2, "EPYC-v4", 0x1, true, None),
        (1, "EPYC-Turin", 0x21, false, None),
    ] {
        launches.push(Launch {
            firmware: &suffix,
            vcpus,
            vcpu_type,
            guest_features: gf,
            vmm: "qemu",
            kernel: Some(&kernel),
            initrd: with_initrd.then_some(initrd.as_path()),
            cmdline,
        });
    }
    for vmm in ["ec2", "gce"] {
        launches.push(Launch {
            firmware: &suffix,
            vcpus: 2,
            vcpu_type: "EPYC-v4",
            guest_features: 0x1,
            vmm,
            kernel: Some(&kernel),
            initrd: Some(&initrd),
            cmdline: Some(common::CMDLINE),
        });
    }

    let mut lines = Vec::new();
    for l in &launches {
        let theirs = l
            .peer(&tool)
            .unwrap_or_else(|e| panic!("{}: peer: {e}", l.describe()));
        let ours = l
            .ours()
            .unwrap_or_else(|e| panic!("{}: ours: {e}", l.describe()));
        assert_eq!(ours, theirs, "{}", l.describe());
        lines.push(format!("  {} = {}", l.describe(), &ours[..16]));
    }

    // A kernel on a firmware without the kernel-hashes section: both refuse.
    let refused = Launch {
        firmware: &debian,
        vcpus: 1,
        vcpu_type: "EPYC-v4",
        guest_features: 0x1,
        vmm: "qemu",
        kernel: Some(&kernel),
        initrd: Some(&initrd),
        cmdline: Some("x"),
    };
    let theirs = refused.peer(&tool).unwrap_err();
    assert!(theirs.contains("SNP_KERNEL_HASHES"), "{theirs}");
    let ours = refused.ours().unwrap_err();
    assert!(ours.contains("SNP_KERNEL_HASHES"), "{ours}");

    println!(
        "{} launches, the same digest from veritee-host and {PEER}; both refuse a kernel on Debian's OVMF:\n{}",
        launches.len(),
        lines.join("\n")
    );
}
