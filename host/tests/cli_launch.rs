//! `veritee-host launch` through the binary. There is no SEV-SNP or TDX host here, so:
//! the dry-run command lines of the three platforms are asserted argument by argument (and
//! their expected measurements against `measure`); the host checks run against a fake
//! `/dev` + `/sys` tree (`VERITEE_HOST_ROOT`), a fake `qemu-system-x86_64` that prints a
//! version and records the arguments it was started with, and a fake `nvidia-smi`. Every
//! refusal is exit 2 with the missing thing named, and the fake QEMU records that it was
//! never started.

mod common;

use base64::Engine as _;
use common::{run, temp_dir, Run};
use serde_json::Value;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn launch_config(dir: &Path) -> PathBuf {
    let path = dir.join("launch.toml");
    std::fs::write(
        &path,
        format!("auditor_hpke_public_key = \"{}\"\n", "ab".repeat(32)),
    )
    .unwrap();
    path
}

fn digest_of(path: &Path) -> [u8; 32] {
    hex::decode(common::sha256_hex(&std::fs::read(path).unwrap()))
        .unwrap()
        .try_into()
        .unwrap()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

/// The value after `flag` each time it appears.
fn values(argv: &[String], flag: &str) -> Vec<String> {
    argv.windows(2)
        .filter(|w| w[0] == flag)
        .map(|w| w[1].clone())
        .collect()
}

fn one(argv: &[String], flag: &str) -> String {
    let v = values(argv, flag);
    assert_eq!(v.len(), 1, "{flag} in {argv:?}");
    v[0].clone()
}

fn canonical(p: &Path) -> String {
    std::fs::canonicalize(p)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn snp_dry_run() {
    let image = common::image_dir("launch-snp", &common::amdsev_suffix());
    let tmp = temp_dir("launch-snp-files");
    let config = launch_config(&tmp);
    let state = tmp.join("state.qcow2");
    std::fs::write(&state, b"QFI\xfb\0\0\0\x03rest").unwrap();
    let collateral = tmp.join("collateral");
    std::fs::create_dir(&collateral).unwrap();
    let args = [
        "launch",
        "--platform",
        "snp",
        "--image",
        image.to_str().unwrap(),
        "--launch-config",
        config.to_str().unwrap(),
        "--vcpus",
        "8",
        "--vcpu-type",
        "EPYC-Milan",
        "--memory",
        "16G",
        "--cbitpos",
        "51",
        "--gpu",
        "41:00.0",
        "--gpu",
        "0000:c1:00.0",
        "--state-disk",
        state.to_str().unwrap(),
        "--collateral-dir",
        collateral.to_str().unwrap(),
        "--listen",
        "127.0.0.1:9443",
        "--dry-run",
    ];
    let v = run(args.iter().copied().chain(["--json"])).ok().json();
    let argv = strs(&v["argv"]);
    assert_eq!(argv[0], "qemu-system-x86_64");
    assert_eq!(
        one(&argv, "-machine"),
        "q35,accel=kvm,confidential-guest-support=sev0,memory-backend=ram0"
    );
    let objects = values(&argv, "-object");
    assert_eq!(
        objects[0],
        "memory-backend-memfd,id=ram0,size=16384M,share=true,prealloc=false"
    );
    let digest = digest_of(&config);
    assert_eq!(
        objects[1],
        format!(
            "sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,kernel-hashes=on,policy=0x30000,host-data={}",
            b64(&digest)
        )
    );
    assert_eq!(one(&argv, "-cpu"), "EPYC-Milan");
    assert_eq!(one(&argv, "-smp"), "8");
    assert_eq!(one(&argv, "-m"), "16384M");
    assert_eq!(one(&argv, "-bios"), canonical(&image.join("OVMF.fd")));
    assert_eq!(one(&argv, "-kernel"), canonical(&image.join("vmlinuz")));
    assert_eq!(one(&argv, "-initrd"), canonical(&image.join("initrd")));
    assert_eq!(
        one(&argv, "-append"),
        common::CMDLINE,
        "the file's trailing newline dropped"
    );
    assert_eq!(
        values(&argv, "-fw_cfg"),
        vec![
            format!("name=opt/veritee/launch-config,file={}", canonical(&config)),
            "name=opt/ovmf/X-PciMmio64Mb,string=262144".to_string(),
        ]
    );
    assert_eq!(
        one(&argv, "-fsdev"),
        format!(
            "local,id=collateral,path={},security_model=none,readonly=on",
            canonical(&collateral)
        )
    );
    assert_eq!(
        one(&argv, "-drive"),
        format!(
            "file={},if=none,id=state,format=qcow2,cache=none",
            canonical(&state)
        )
    );
    assert_eq!(
        one(&argv, "-netdev"),
        "user,id=net0,hostfwd=tcp:127.0.0.1:9443-:8443"
    );
    assert_eq!(
        values(&argv, "-device"),
        vec![
            "virtio-9p-pci,fsdev=collateral,mount_tag=veritee-collateral,disable-legacy=on,iommu_platform=on",
            "virtio-blk-pci,drive=state,serial=veritee-state,disable-legacy=on,iommu_platform=on",
            "virtio-net-pci,netdev=net0,romfile=,disable-legacy=on,iommu_platform=on",
            "pcie-root-port,id=gpu-port0,bus=pcie.0,chassis=1",
            "vfio-pci,host=0000:41:00.0,bus=gpu-port0",
            "pcie-root-port,id=gpu-port1,bus=pcie.0,chassis=2",
            "vfio-pci,host=0000:c1:00.0,bus=gpu-port1",
        ]
    );
    for flag in ["-nodefaults", "-no-user-config"] {
        assert!(argv.contains(&flag.to_string()), "{flag}");
    }

    // The measurement it expects is `measure`'s for the same shape, and HOST_DATA is the
    // launch configuration's digest.
    let measured = run([
        "measure",
        "--platform",
        "snp",
        "--image",
        image.to_str().unwrap(),
        "--vcpus",
        "8",
        "--vcpu-type",
        "EPYC-Milan",
        "--json",
    ])
    .ok()
    .json();
    assert_eq!(v["expected"]["measurement"], measured["measurement"]);
    assert_eq!(v["expected"]["host_data"], hex::encode(digest));
    assert_eq!(v["host_checks"], "not run (--dry-run)");

    // The text form: the same command, one option per line, quoted for a shell.
    let text = run(args).ok().stdout;
    assert!(text.starts_with("# veritee-host launch --platform snp (dry run: host not checked)\n"));
    assert!(text.contains(&format!(
        "# expected measurement: {}\n",
        measured["measurement"].as_str().unwrap()
    )));
    assert!(text.contains(&format!("    -append '{}' \\\n", common::CMDLINE)));
    assert!(text.contains("    -cpu EPYC-Milan \\\n"));
}

#[test]
fn tdx_dry_run() {
    let image = common::image_dir("launch-tdx", &common::amdsev_suffix());
    // The TDX firmware of the image, taking precedence over OVMF.fd for --platform tdx.
    std::fs::copy(common::debian_ovmf(), image.join("OVMF.tdx.fd")).unwrap();
    let tmp = temp_dir("launch-tdx-files");
    let config = launch_config(&tmp);
    let v = run([
        "launch",
        "--platform",
        "tdx",
        "--image",
        image.to_str().unwrap(),
        "--launch-config",
        config.to_str().unwrap(),
        "--vcpus",
        "2",
        "--memory",
        "4096",
        "--qgs",
        "2:4051",
        "--dry-run",
        "--json",
    ])
    .ok()
    .json();
    let argv = strs(&v["argv"]);
    assert_eq!(
        one(&argv, "-machine"),
        "q35,accel=kvm,kernel-irqchip=split,hpet=off,confidential-guest-support=tdx0"
    );
    let object: Value = serde_json::from_str(&one(&argv, "-object")).unwrap();
    let mut mrconfigid = [0u8; 48];
    mrconfigid[..32].copy_from_slice(&digest_of(&config));
    assert_eq!(
        object,
        serde_json::json!({
            "qom-type": "tdx-guest",
            "id": "tdx0",
            "sept-ve-disable": true,
            "mrconfigid": b64(&mrconfigid),
            "quote-generation-socket": {"type": "vsock", "cid": "2", "port": "4051"},
        })
    );
    assert_eq!(one(&argv, "-cpu"), "host");
    assert_eq!(one(&argv, "-m"), "4096M");
    assert_eq!(one(&argv, "-bios"), canonical(&image.join("OVMF.tdx.fd")));
    let m: toml::Table = toml::from_str(
        &std::fs::read_to_string(
            common::fixture("debian-ovmf-2022.11-ovmfx64").join("MANIFEST.toml"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        v["expected"]["mrtd"],
        m["expected"]["tdx"]["mrtd_single_pass"].as_str().unwrap()
    );
    assert_eq!(v["expected"]["mrconfigid"], hex::encode(mrconfigid));
    assert!(v["notes"][0]
        .as_str()
        .unwrap()
        .contains("RTMR0..3 not predicted"));

    // --qgs none: no quote socket.
    let v = run([
        "launch",
        "--platform",
        "tdx",
        "--image",
        image.to_str().unwrap(),
        "--qgs",
        "none",
        "--dry-run",
        "--json",
    ])
    .ok()
    .json();
    let object: Value = serde_json::from_str(&one(&strs(&v["argv"]), "-object")).unwrap();
    assert_eq!(object.get("quote-generation-socket"), None);
}

#[test]
fn none_dry_run() {
    let image = common::image_dir("launch-none", &common::debian_ovmf());
    let v = run([
        "launch",
        "--platform",
        "none",
        "--image",
        image.to_str().unwrap(),
        "--listen",
        "none",
        "--dry-run",
        "--json",
    ])
    .ok()
    .json();
    let argv = strs(&v["argv"]);
    let want: Vec<String> = [
        "qemu-system-x86_64",
        "-name",
        "veritee",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-monitor",
        "none",
        "-machine",
        "q35,accel=tcg",
        "-cpu",
        "max",
        "-smp",
        "4",
        "-m",
        "8192M",
        "-bios",
        &canonical(&image.join("OVMF.fd")),
        "-kernel",
        &canonical(&image.join("vmlinuz")),
        "-initrd",
        &canonical(&image.join("initrd")),
        "-append",
        common::CMDLINE,
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(argv, want);
    assert_eq!(
        v["expected"]["launch_config_digest"],
        common::sha256_hex(b""),
        "no launch configuration: the runtime claims the digest of the empty string"
    );
}

#[test]
fn bad_input_is_refused_even_in_a_dry_run() {
    let suffix_image = common::image_dir("launch-bad", &common::amdsev_suffix());
    let img = suffix_image.to_str().unwrap();
    let debian_image = common::image_dir("launch-bad-debian", &common::debian_ovmf());
    let launch = |extra: &[&str]| -> Run {
        let mut a = vec!["launch", "--dry-run"];
        a.extend_from_slice(extra);
        run(a)
    };

    // The firmware cannot measure the kernel: such a launch could never be attested.
    launch(&["--platform", "snp", "--image", debian_image.to_str().unwrap()])
        .refused("has no SNP_KERNEL_HASHES (0x10) section; this firmware cannot measure a direct boot's kernel");
    launch(&["--platform", "tdx", "--image", img])
        .refused("raw data runs past the end of the image");
    launch(&[
        "--platform",
        "snp",
        "--image",
        img,
        "--vcpu-type",
        "EPYC-Zen9",
    ])
    .refused("unknown vCPU type \"EPYC-Zen9\"");
    launch(&[
        "--platform",
        "tdx",
        "--image",
        img,
        "--vcpu-type",
        "EPYC-v4",
    ])
    .refused("--vcpu-type is for --platform snp");
    launch(&["--platform", "snp", "--image", img, "--qgs", "2:4050"])
        .refused("--qgs is for --platform tdx");
    launch(&["--platform", "none", "--image", img, "--gpu", "41:00"])
        .refused("--gpu \"41:00\": not a PCI address");
    launch(&["--platform", "none", "--image", img, "--memory", "lots"])
        .refused("--memory \"lots\"");
    launch(&["--platform", "none", "--image", img, "--vcpus", "0"])
        .refused("--vcpus 0: a launch needs 1..=4096");
    launch(&[
        "--platform",
        "none",
        "--image",
        img,
        "--state-disk",
        "/nonexistent/state.img",
    ])
    .refused("state disk /nonexistent/state.img");
    launch(&[
        "--platform",
        "none",
        "--image",
        img,
        "--collateral-dir",
        "/nonexistent/dir",
    ])
    .refused("collateral directory /nonexistent/dir");
    launch(&[
        "--platform",
        "none",
        "--image",
        img,
        "--launch-config",
        "/nonexistent/l.toml",
    ])
    .refused("launch configuration /nonexistent/l.toml");
    launch(&[
        "--platform",
        "none",
        "--firmware",
        "/nonexistent/OVMF.fd",
        "--kernel",
        "/etc/hostname",
    ])
    .refused("firmware /nonexistent/OVMF.fd");
    launch(&[
        "--platform",
        "none",
        "--firmware",
        common::debian_ovmf().to_str().unwrap(),
    ])
    .refused("launch boots the image directly");
    let no_kernel = common::image_dir("launch-bad-nokernel", &common::amdsev_suffix());
    std::fs::remove_file(no_kernel.join("vmlinuz")).unwrap();
    launch(&["--platform", "none", "--image", no_kernel.to_str().unwrap()])
        .refused("no file \"vmlinuz\"");
    launch(&["--platform", "xen", "--image", img]).refused("invalid value 'xen'");
}

/// A fake host: `/dev` and `/sys` under one directory, a fake QEMU and nvidia-smi.
struct FakeHost {
    root: PathBuf,
    bin: PathBuf,
    qemu: PathBuf,
    record: PathBuf,
}

impl FakeHost {
    fn new(name: &str, qemu_version: &str) -> Self {
        let dir = temp_dir(name);
        let root = dir.join("root");
        let bin = dir.join("bin");
        std::fs::create_dir_all(root.join("dev")).unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        let record = dir.join("qemu-started-with");
        let qemu = bin.join("qemu-system-x86_64");
        std::fs::write(
            &qemu,
            format!(
                "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'QEMU emulator version {qemu_version} (fake)'; exit 0; fi\nprintf '%s\\n' \"$@\" > '{}'\nexit 0\n",
                record.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&qemu, std::fs::Permissions::from_mode(0o755)).unwrap();
        FakeHost {
            root,
            bin,
            qemu,
            record,
        }
    }

    fn file(&self, path: &str, content: &str) {
        let p = self.root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    fn snp_host(&self) {
        self.file("/dev/kvm", "");
        self.file("/dev/sev", "");
        self.file("/sys/module/kvm_amd/parameters/sev_snp", "Y\n");
    }

    /// A PCI device bound to `driver`, alone in IOMMU group `group`.
    fn pci(&self, addr: &str, driver: &str, group: u32) {
        let dev = self.root.join(format!("sys/bus/pci/devices/{addr}"));
        std::fs::create_dir_all(&dev).unwrap();
        let drivers = self.root.join("sys/bus/pci/drivers").join(driver);
        std::fs::create_dir_all(&drivers).unwrap();
        symlink(&drivers, dev.join("driver")).unwrap();
        let g = self.root.join(format!("sys/kernel/iommu_groups/{group}"));
        std::fs::create_dir_all(g.join("devices")).unwrap();
        symlink(&g, dev.join("iommu_group")).unwrap();
        symlink(&dev, g.join("devices").join(addr)).unwrap();
        self.file(&format!("/dev/vfio/{group}"), "");
    }

    fn nvidia_smi(&self, output: &str) {
        let p = self.bin.join("nvidia-smi");
        std::fs::write(&p, format!("#!/bin/sh\nprintf '{output}\\n'\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn launch(&self, args: &[&str]) -> Run {
        common::bin()
            .args(["launch", "--qemu", self.qemu.to_str().unwrap()])
            .args(args)
            .env("VERITEE_HOST_ROOT", &self.root)
            .env("PATH", format!("{}:/usr/bin:/bin", self.bin.display()))
            .output()
            .unwrap()
            .into()
    }

    fn started(&self) -> Option<Vec<String>> {
        std::fs::read_to_string(&self.record)
            .ok()
            .map(|s| s.lines().map(String::from).collect())
    }
}

#[test]
fn host_checks_refuse_and_name_what_is_missing() {
    let image = common::image_dir("launch-host", &common::amdsev_suffix());
    let img = image.to_str().unwrap();
    let snp = ["--platform", "snp", "--image", img, "--cbitpos", "51"];

    // No QEMU at all.
    let host = FakeHost::new("host-noqemu", "9.2.0");
    host.snp_host();
    let r: Run = common::bin()
        .args(["launch", "--qemu", "/nonexistent/qemu-system-x86_64"])
        .args(snp)
        .env("VERITEE_HOST_ROOT", &host.root)
        .output()
        .unwrap()
        .into();
    r.refused("refusing to launch (nothing was started): 1 prerequisite(s) missing:\n  - QEMU: /nonexistent/qemu-system-x86_64 not found (install qemu-system-x86 9.1.0 or later");

    // QEMU too old for SEV-SNP, and nothing else missing.
    let host = FakeHost::new("host-oldqemu", "8.2.2");
    host.snp_host();
    host.launch(&snp)
        .refused("is too old for --platform snp: it needs 9.1.0 or later");
    assert_eq!(host.started(), None, "QEMU was never started");

    // A host without SEV-SNP: every missing piece named at once.
    let host = FakeHost::new("host-nosnp", "9.2.0");
    let r = host.launch(&snp).refused("3 prerequisite(s) missing");
    for needle in [
        "/dev/kvm is missing",
        "/dev/sev is missing",
        "/sys/module/kvm_amd/parameters/sev_snp is missing: KVM has SEV-SNP off",
    ] {
        assert!(r.stderr.contains(needle), "{needle}: {}", r.stderr);
    }
    host.file("/dev/kvm", "");
    host.file("/dev/sev", "");
    host.file("/sys/module/kvm_amd/parameters/sev_snp", "N\n");
    host.launch(&snp)
        .refused("sev_snp is \"N\": KVM has SEV-SNP off");
    assert_eq!(host.started(), None);

    // TDX off; QEMU 9.2 too old for TDX.
    let host = FakeHost::new("host-notdx", "9.2.0");
    host.file("/dev/kvm", "");
    host.file("/sys/module/kvm_intel/parameters/tdx", "N\n");
    std::fs::copy(common::debian_ovmf(), image.join("OVMF.tdx.fd")).unwrap();
    let r = host
        .launch(&["--platform", "tdx", "--image", img])
        .refused("2 prerequisite(s) missing");
    assert!(
        r.stderr.contains("tdx is \"N\": KVM has TDX off"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("QEMU 9.2.0"), "{}", r.stderr);
    assert!(r
        .stderr
        .contains("too old for --platform tdx: it needs 10.1.0"));
    std::fs::remove_file(image.join("OVMF.tdx.fd")).unwrap();

    // GPUs: not bound to vfio-pci, absent, and CC mode off.
    let host = FakeHost::new("host-gpu", "9.2.0");
    host.snp_host();
    host.pci("0000:41:00.0", "nvidia", 12);
    host.nvidia_smi("CC status: OFF");
    let r = host
        .launch(&[&snp[..], &["--gpu", "41:00.0", "--gpu", "42:00.0"]].concat())
        .refused("3 prerequisite(s) missing");
    for needle in [
        "GPU 0000:41:00.0: bound to driver nvidia, not vfio-pci",
        "GPU 0000:42:00.0: no such PCI device",
        "GPU confidential-computing mode is OFF",
    ] {
        assert!(r.stderr.contains(needle), "{needle}: {}", r.stderr);
    }
    assert_eq!(host.started(), None);
}

#[test]
fn a_ready_host_starts_qemu_with_the_dry_run_command() {
    let image = common::image_dir("launch-ready", &common::amdsev_suffix());
    let img = image.to_str().unwrap();
    let tmp = temp_dir("launch-ready-files");
    let config = launch_config(&tmp);
    let host = FakeHost::new("host-ready", "10.0.2");
    host.snp_host();
    host.pci("0000:41:00.0", "vfio-pci", 12);
    host.nvidia_smi("CC status: ON");
    let args = [
        "--platform",
        "snp",
        "--image",
        img,
        "--launch-config",
        config.to_str().unwrap(),
        "--cbitpos",
        "51",
        "--gpu",
        "41:00.0",
    ];
    let r = host.launch(&args).ok();
    assert!(
        r.stderr.contains("veritee-host: QEMU 10.0.2"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("GPU confidential-computing mode: ON"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("veritee-host: expected measurement: "),
        "{}",
        r.stderr
    );
    let started = host.started().expect("QEMU was started");
    let dry = run(["launch", "--qemu", host.qemu.to_str().unwrap()]
        .iter()
        .chain(args.iter())
        .chain(["--dry-run", "--json"].iter()))
    .ok()
    .json();
    let dry = strs(&dry["argv"]);
    assert_eq!(started[..], dry[1..], "QEMU got the dry run's arguments");

    // Without the GPU's IOMMU group bound to VFIO, the same launch is refused.
    std::fs::remove_file(host.root.join("dev/vfio/12")).unwrap();
    std::fs::remove_file(&host.record).unwrap();
    host.launch(&args)
        .refused("GPU 0000:41:00.0: /dev/vfio/12 is missing");
    assert_eq!(host.started(), None);

    // No TEE: TCG needs neither /dev/kvm nor SEV.
    let bare = FakeHost::new("host-bare", "7.2.15");
    let r = bare.launch(&["--platform", "none", "--image", img]).ok();
    assert!(r.stderr.contains("no TEE: TCG emulation"), "{}", r.stderr);
    assert!(bare
        .started()
        .unwrap()
        .contains(&"q35,accel=tcg".to_string()));
}

/// The directory `scripts/build-image.sh` writes (`NAME.vmlinuz`, `NAME.initrd`,
/// `NAME.cmdline`, `NAME.raw`, no firmware): the same measurement as the plain layout, and
/// the root disk attached read-only.
#[test]
fn build_image_output_directory() {
    let plain = common::image_dir("launch-plain", &common::amdsev_suffix());
    let built = temp_dir("launch-built");
    for (from, to) in [
        ("vmlinuz", "veritee.vmlinuz"),
        ("initrd", "veritee.initrd"),
        ("cmdline", "veritee.cmdline"),
    ] {
        std::fs::copy(plain.join(from), built.join(to)).unwrap();
    }
    std::fs::write(built.join("veritee.raw"), vec![0u8; 8192]).unwrap();
    let fw = common::amdsev_suffix();
    let measure = |dir: &Path, extra: &[&str]| {
        let mut a = vec![
            "measure",
            "--platform",
            "snp",
            "--image",
            dir.to_str().unwrap(),
            "--json",
        ];
        a.extend_from_slice(extra);
        run(a).ok().json()["measurement"].clone()
    };
    assert_eq!(
        measure(&built, &["--firmware", fw.to_str().unwrap()]),
        measure(&plain, &[])
    );
    run([
        "measure",
        "--platform",
        "snp",
        "--image",
        built.to_str().unwrap(),
    ])
    .refused("no file \"OVMF.fd\"");

    let v = run([
        "launch",
        "--platform",
        "snp",
        "--image",
        built.to_str().unwrap(),
        "--firmware",
        fw.to_str().unwrap(),
        "--cbitpos",
        "51",
        "--dry-run",
        "--json",
    ])
    .ok()
    .json();
    let argv = strs(&v["argv"]);
    assert_eq!(
        one(&argv, "-kernel"),
        canonical(&built.join("veritee.vmlinuz"))
    );
    assert_eq!(one(&argv, "-append"), common::CMDLINE);
    assert_eq!(
        one(&argv, "-drive"),
        format!(
            "file={},if=none,id=root,format=raw,readonly=on",
            canonical(&built.join("veritee.raw"))
        )
    );
    assert!(values(&argv, "-device").contains(
        &"virtio-blk-pci,drive=root,serial=veritee-root,disable-legacy=on,iommu_platform=on"
            .to_string()
    ));

    std::fs::copy(built.join("veritee.vmlinuz"), built.join("other.vmlinuz")).unwrap();
    run([
        "measure",
        "--platform",
        "snp",
        "--image",
        built.to_str().unwrap(),
    ])
    .refused("several kernels (other.vmlinuz, veritee.vmlinuz)");
}
