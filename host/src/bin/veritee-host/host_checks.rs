//! What the host must have before `launch` starts QEMU: the QEMU binary and version, KVM
//! with SEV-SNP or TDX enabled, VFIO-bound GPUs in viable IOMMU groups, GPU CC mode.
//!
//! Device nodes and sysfs are read under `VERITEE_HOST_ROOT` (default `/`), so the tests can
//! point the checks at a fake tree. These checks protect the operator from a launch that
//! cannot work or cannot be attested; they are not a trust boundary (the host is untrusted
//! and verifiers check the evidence, not the host).

use std::path::{Path, PathBuf};
use std::process::Command;

use host::qemu::{Platform, QemuVersion};

/// The findings: problems refuse the launch, notes are printed.
#[derive(Default)]
pub struct Findings {
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

/// Where `/dev` and `/sys` are.
pub struct HostRoot(PathBuf);

impl HostRoot {
    pub fn from_env() -> Self {
        HostRoot(
            std::env::var_os("VERITEE_HOST_ROOT")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/")),
        )
    }

    fn path(&self, absolute: &str) -> PathBuf {
        self.0.join(absolute.trim_start_matches('/'))
    }

    fn read_trimmed(&self, absolute: &str) -> Option<String> {
        std::fs::read_to_string(self.path(absolute))
            .ok()
            .map(|s| s.trim().to_owned())
    }
}

/// A program by path, or found on `PATH`.
pub fn find_program(name: &Path) -> Option<PathBuf> {
    if name.components().count() > 1 {
        return name.is_file().then(|| name.to_owned());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// The QEMU binary, resolved, and whether its version is new enough for `platform`.
pub fn check_qemu(qemu: &Path, platform: Platform, f: &mut Findings) -> Option<PathBuf> {
    let Some(path) = find_program(qemu) else {
        f.problems.push(format!(
            "QEMU: {} not found (install qemu-system-x86 {} or later, or pass --qemu PATH)",
            qemu.display(),
            QemuVersion::minimum(platform)
        ));
        return None;
    };
    let out = match Command::new(&path).arg("--version").output() {
        Ok(out) => out,
        Err(e) => {
            f.problems
                .push(format!("QEMU: {} --version: {e}", path.display()));
            return None;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let min = QemuVersion::minimum(platform);
    match QemuVersion::parse(&text) {
        Some(v) if v >= min => {
            f.notes.push(format!("QEMU {v} ({})", path.display()));
        }
        Some(v) => f.problems.push(format!(
            "QEMU {v} ({}) is too old for --platform {platform}: it needs {min} or later",
            path.display()
        )),
        None => f.problems.push(format!(
            "QEMU: {} --version printed no \"QEMU emulator version\": {:?}",
            path.display(),
            text.lines().next().unwrap_or("")
        )),
    }
    Some(path)
}

fn yes(value: Option<&str>) -> bool {
    matches!(value, Some("Y" | "y" | "1"))
}

/// KVM and the platform's host support.
pub fn check_platform(root: &HostRoot, platform: Platform, f: &mut Findings) {
    if platform == Platform::None {
        f.notes
            .push("no TEE: TCG emulation, nothing is confidential or attested".into());
        return;
    }
    if !root.path("/dev/kvm").exists() {
        f.problems
            .push("/dev/kvm is missing: KVM is not available on this host".into());
    }
    match platform {
        Platform::Snp => {
            if !root.path("/dev/sev").exists() {
                f.problems.push(
                    "/dev/sev is missing: the AMD secure processor driver (ccp) is not loaded or this host has no SEV".into(),
                );
            }
            let p = "/sys/module/kvm_amd/parameters/sev_snp";
            let v = root.read_trimmed(p);
            if !yes(v.as_deref()) {
                f.problems.push(format!(
                    "{p} is {}: KVM has SEV-SNP off (enable SNP in the BIOS and load kvm_amd with sev_snp=1 on a host kernel with SNP support)",
                    v.map_or("missing".into(), |v| format!("{v:?}"))
                ));
            }
        }
        Platform::Tdx => {
            let p = "/sys/module/kvm_intel/parameters/tdx";
            let v = root.read_trimmed(p);
            if !yes(v.as_deref()) {
                f.problems.push(format!(
                    "{p} is {}: KVM has TDX off (the TDX module is not loaded and initialised: enable TDX in the BIOS and load kvm_intel with tdx=1 on a host kernel with TDX support)",
                    v.map_or("missing".into(), |v| format!("{v:?}"))
                ));
            }
            f.notes.push(
                "TDX quotes need the host's Quote Generation Service (QGS) listening on the vsock port given to QEMU; not checked here".into(),
            );
        }
        Platform::None => {}
    }
}

/// A GPU passed through with VFIO: present, bound to vfio-pci, its IOMMU group viable.
pub fn check_gpu(root: &HostRoot, addr: &str, f: &mut Findings) {
    let dev = root.path(&format!("/sys/bus/pci/devices/{addr}"));
    if !dev.exists() {
        f.problems.push(format!(
            "GPU {addr}: no such PCI device (/sys/bus/pci/devices/{addr})"
        ));
        return;
    }
    let driver = |d: &Path| {
        std::fs::read_link(d.join("driver"))
            .ok()
            .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
    };
    match driver(&dev).as_deref() {
        Some("vfio-pci") => {}
        other => f.problems.push(format!(
            "GPU {addr}: bound to {}, not vfio-pci (unbind it and bind vfio-pci, e.g. driverctl set-override {addr} vfio-pci)",
            other.map_or("no driver".to_owned(), |d| format!("driver {d}"))
        )),
    }
    let Some(group) = std::fs::read_link(dev.join("iommu_group"))
        .ok()
        .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
    else {
        f.problems.push(format!(
            "GPU {addr}: no IOMMU group: the IOMMU is off (enable it in the BIOS and boot with amd_iommu=on / intel_iommu=on)"
        ));
        return;
    };
    if !root.path(&format!("/dev/vfio/{group}")).exists() {
        f.problems.push(format!(
            "GPU {addr}: /dev/vfio/{group} is missing (IOMMU group {group} is not bound to VFIO)"
        ));
    }
    let members = root.path(&format!("/sys/kernel/iommu_groups/{group}/devices"));
    if let Ok(entries) = std::fs::read_dir(&members) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == addr {
                continue;
            }
            match driver(&e.path()).as_deref() {
                None | Some("vfio-pci") | Some("pcieport") => {}
                Some(d) => f.problems.push(format!(
                    "GPU {addr}: IOMMU group {group} also holds {name}, bound to {d}: every endpoint of the group must be bound to vfio-pci"
                )),
            }
        }
    }
}

/// GPU confidential-computing mode through `nvidia-smi conf-compute -f`, when the host has
/// nvidia-smi. A GPU bound to vfio-pci is invisible to the host driver, so an absent or
/// silent nvidia-smi is a note, not a problem; CC mode reported off is a problem.
pub fn check_gpu_cc_mode(f: &mut Findings) {
    let Some(smi) = find_program(Path::new("nvidia-smi")) else {
        f.notes.push(
            "nvidia-smi not found: GPU confidential-computing mode not checked on the host (the guest's GPU attestation reports it)".into(),
        );
        return;
    };
    let out = Command::new(&smi).args(["conf-compute", "-f"]).output();
    let text = match &out {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(e) => {
            f.notes
                .push(format!("{} conf-compute -f: {e}", smi.display()));
            return;
        }
    };
    let status = text
        .lines()
        .find(|l| l.to_ascii_lowercase().contains("cc status"))
        .and_then(|l| l.rsplit(':').next())
        .map(|s| s.trim().to_ascii_uppercase());
    match status.as_deref() {
        Some("ON") => f.notes.push("GPU confidential-computing mode: ON (nvidia-smi)".into()),
        Some(s) => f.problems.push(format!(
            "GPU confidential-computing mode is {s} (nvidia-smi conf-compute -f): set it on (NVIDIA gpu-admin-tools --set-cc-mode=on) before binding the GPU to vfio-pci"
        )),
        None => f.notes.push(format!(
            "nvidia-smi conf-compute -f gave no CC status ({:?}): GPU CC mode not checked on the host",
            text.lines().next().unwrap_or("")
        )),
    }
}

/// The host's C-bit position (CPUID 0x8000001F EBX[5:0]) when it is an AMD host with
/// SEV-SNP; `None` elsewhere.
pub fn host_cbitpos() -> Option<u32> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::__cpuid;
        // CPUID is always available on x86_64; `unsafe` only for older toolchains.
        #[allow(unused_unsafe)]
        let (max, vendor, leaf) = unsafe {
            let max = __cpuid(0x8000_0000).eax;
            let v = __cpuid(0);
            let leaf = (max >= 0x8000_001f).then(|| __cpuid(0x8000_001f));
            (max, [v.ebx, v.edx, v.ecx], leaf)
        };
        let amd = vendor == [0x6874_7541, 0x6974_6e65, 0x444d_4163]; // "AuthenticAMD"
        let _ = max;
        match leaf {
            // EAX bit 4: SEV-SNP.
            Some(l) if amd && l.eax & (1 << 4) != 0 => Some(l.ebx & 0x3f),
            _ => None,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}
