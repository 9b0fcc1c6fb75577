//! `veritee-host measure` through the binary, on every measurement fixture a command line
//! can express; the rest (hash-only inputs, seeded OVMF hashes, SEV, SEV-ES, SVSM) have no
//! such command and are checked through the library in `measure_fixtures.rs`. Each
//! fixture's cases are counted, so a new case is either run here or listed as library-only.

mod common;

use common::{fixture, run, temp_dir};
use std::path::Path;

fn manifest(dir: &Path) -> toml::Table {
    toml::from_str(&std::fs::read_to_string(dir.join("MANIFEST.toml")).unwrap()).unwrap()
}

fn measure_snp_json(args: &[&str]) -> common::Run {
    let mut all = vec!["measure", "--platform", "snp", "--json"];
    all.extend_from_slice(args);
    run(all)
}

/// Debian's OVMF: the 12 SNP digests (firmware only), a kernel refused, both MRTDs.
#[test]
fn debian_ovmf_through_the_cli() {
    let dir = fixture("debian-ovmf-2022.11-ovmfx64");
    let m = manifest(&dir);
    let fw = dir.join("OVMF.fd");
    let fw = fw.to_str().unwrap();
    let snp = m["expected"]["snp"].as_table().unwrap();
    let mut cases = 0;
    for (key, want) in snp {
        let (Some((model, rest)), Some(want)) = (key.split_once('.'), want.as_str()) else {
            continue;
        };
        let (vcpus, gf) = rest.split_once('.').unwrap();
        let vcpus = vcpus.strip_suffix("vcpu").unwrap();
        let gf = gf.strip_prefix("gf").unwrap();
        let r = measure_snp_json(&[
            "--firmware",
            fw,
            "--firmware-only",
            "--vcpus",
            vcpus,
            "--vcpu-type",
            model,
            "--guest-features",
            gf,
        ])
        .ok();
        let v = r.json();
        assert_eq!(v["measurement"], want, "{key}");
        assert_eq!(v["boot"], "firmware_only");
        assert_eq!(v["kernel_hashes"], serde_json::Value::Null);
        assert_eq!(
            v["firmware"]["sha256"],
            common::sha256_hex(&std::fs::read(fw).unwrap())
        );
        cases += 1;
    }
    assert_eq!(cases, 12);

    // The text form says the same digest.
    let text = run([
        "measure",
        "--platform",
        "snp",
        "--firmware",
        fw,
        "--firmware-only",
        "--vcpus",
        "4",
        "--vcpu-type",
        "EPYC-Milan",
        "--guest-features",
        "0x21",
    ])
    .ok();
    assert!(text.stdout.contains(&format!(
        "measurement     {}\n",
        snp["EPYC-Milan.4vcpu.gf0x21"].as_str().unwrap()
    )));
    assert!(text.stdout.contains("firmware only"));

    // No SNP kernel-hashes section: a kernel is refused, with the reason and what to use.
    let tmp = temp_dir("debian-kernel");
    let kernel = tmp.join("vmlinuz");
    std::fs::write(&kernel, b"kernel").unwrap();
    measure_snp_json(&["--firmware", fw, "--kernel", kernel.to_str().unwrap()])
        .refused("kernel given but OVMF metadata has no SNP_KERNEL_HASHES (0x10) section");

    let tdx = m["expected"]["tdx"].as_table().unwrap();
    let v = run(["measure", "--platform", "tdx", "--firmware", fw, "--json"])
        .ok()
        .json();
    assert_eq!(
        v["mrtd_single_pass"],
        tdx["mrtd_single_pass"].as_str().unwrap()
    );
    assert_eq!(v["mrtd_two_pass"], tdx["mrtd_two_pass"].as_str().unwrap());
    assert_eq!(
        v["mrtd"], v["mrtd_single_pass"],
        "single pass is the default"
    );
    let text = run(["measure", "--platform", "tdx", "--firmware", fw])
        .ok()
        .stdout;
    assert!(text.contains(&format!(
        "mrtd            {} (single pass",
        tdx["mrtd_single_pass"].as_str().unwrap()
    )));
    assert!(text.contains(&format!(
        "mrtd_two_pass   {} (every page added",
        tdx["mrtd_two_pass"].as_str().unwrap()
    )));
}

/// sev-snp-measure's vectors whose inputs a command line can give: every `snp` case
/// without a seeded OVMF hash (QEMU, EC2, GCE; with and without a kernel; refusals).
#[test]
fn sev_snp_measure_vectors_through_the_cli() {
    let dir = fixture("sev-snp-measure-fixtures");
    let m = manifest(&dir);
    let tmp = temp_dir("ssm-vectors");
    let empty = tmp.join("empty");
    std::fs::write(&empty, b"").unwrap();
    let empty = empty.to_str().unwrap();

    let (mut via_cli, mut library_only) = (Vec::new(), Vec::new());
    for case in m["case"].as_array().unwrap() {
        let case = case.as_table().unwrap();
        let name = case["name"].as_str().unwrap();
        let mode = case["mode"].as_str().unwrap();
        if mode != "snp" || case.contains_key("ovmf_hash_seed") {
            // snp:ovmf-hash, seeded digests, sev, seves, snp:svsm: no veritee-host command.
            library_only.push(name);
            continue;
        }
        let fw = dir.join(case["ovmf"].as_str().unwrap());
        let mut args: Vec<String> = vec!["--firmware".into(), fw.to_str().unwrap().into()];
        let sig = case["vcpu_sig"].as_integer().unwrap();
        // EPYC-v4 is 0x800f12; EC2 and GCE put 0x600 in rdx whatever the model (sig 0).
        let vmm = case.get("vmm").and_then(|v| v.as_str()).unwrap_or("qemu");
        assert!(sig == 0x800f12 || vmm != "qemu", "{name}");
        args.extend(["--vcpu-type".into(), "EPYC-v4".into()]);
        args.extend(["--vmm".into(), vmm.into()]);
        args.extend([
            "--vcpus".into(),
            case["vcpus"].as_integer().unwrap().to_string(),
        ]);
        args.extend([
            "--guest-features".into(),
            format!("{:#x}", case["guest_features"].as_integer().unwrap()),
        ]);
        match case.get("kernel").and_then(|v| v.as_str()) {
            Some("empty") => {
                args.extend(["--kernel".into(), empty.into()]);
                if case.get("initrd").and_then(|v| v.as_str()) == Some("empty") {
                    args.extend(["--initrd".into(), empty.into()]);
                }
                if let Some(append) = case.get("append").and_then(|v| v.as_str()) {
                    args.extend(["--cmdline".into(), append.into()]);
                }
            }
            None => args.push("--firmware-only".into()),
            Some(other) => panic!("{name}: kernel {other:?}"),
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = measure_snp_json(&args);
        match (case.get("expected"), case.get("expected_error")) {
            (Some(want), None) => {
                assert_eq!(
                    r.ok().json()["measurement"],
                    want.as_str().unwrap(),
                    "{name}"
                )
            }
            (None, Some(err)) => {
                r.refused(err.as_str().unwrap());
            }
            _ => panic!("{name}"),
        }
        via_cli.push(name);
    }
    assert_eq!(via_cli.len(), 13, "through the CLI: {via_cli:?}");
    assert_eq!(library_only.len(), 10, "library only: {library_only:?}");
    println!("through the CLI: {}", via_cli.join(", "));
    println!(
        "library only (measure_fixtures.rs): {}",
        library_only.join(", ")
    );
}

/// The dstack TD's CC event log replayed through the CLI: the RTMRs its quote carries.
#[test]
fn tdx_event_log_through_the_cli() {
    let dir = fixture("dstack-tdx-quote-eventlog");
    let m = manifest(&dir);
    let log = dir.join("event_log.json");
    let fw = common::debian_ovmf();
    let v = run([
        "measure",
        "--platform",
        "tdx",
        "--firmware",
        fw.to_str().unwrap(),
        "--event-log",
        log.to_str().unwrap(),
        "--json",
    ])
    .ok()
    .json();
    let quote =
        host::measure::tdx::quote_measurements(&std::fs::read(dir.join("quote.bin")).unwrap())
            .unwrap();
    for i in 0..4 {
        let want = m["expected"][&format!("rtmr{i}")].as_str().unwrap();
        assert_eq!(v["rtmrs"][i], want, "RTMR{i}");
        assert_eq!(want, hex::encode(quote.rtmrs[i]), "RTMR{i} in quote.bin");
    }
    assert_eq!(v["event_log"]["events"], 29);

    let text = run([
        "measure",
        "--platform",
        "tdx",
        "--firmware",
        fw.to_str().unwrap(),
        "--event-log",
        log.to_str().unwrap(),
    ])
    .ok()
    .stdout;
    assert!(text.contains(&format!(
        "rtmr3           {}\n",
        m["expected"]["rtmr3"].as_str().unwrap()
    )));

    // A damaged log: a digest cut short.
    let tmp = temp_dir("bad-log");
    let bad = tmp.join("log.json");
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(
        &bad,
        text.replacen("\"digest\": \"0b8772", "\"digest\": \"", 1),
    )
    .unwrap();
    run([
        "measure",
        "--platform",
        "tdx",
        "--firmware",
        fw.to_str().unwrap(),
        "--event-log",
        bad.to_str().unwrap(),
    ])
    .refused("event 0: digest");
}

/// A direct boot on TDX: MRTD plus the boot hashes, and the RTMRs not guessed.
#[test]
fn tdx_direct_boot_says_why_rtmrs_are_not_computed() {
    let dir = common::image_dir("tdx-direct", &common::debian_ovmf());
    let r = run([
        "measure",
        "--platform",
        "tdx",
        "--image",
        dir.to_str().unwrap(),
    ])
    .ok();
    assert!(r
        .stdout
        .contains("rtmrs           not computed: RTMR0..2 of a direct boot"));
    assert!(
        r.stdout.contains(&format!("{:?}", common::CMDLINE)),
        "{}",
        r.stdout
    );
    let v = run([
        "measure",
        "--platform",
        "tdx",
        "--image",
        dir.to_str().unwrap(),
        "--json",
    ])
    .ok()
    .json();
    assert_eq!(v["rtmrs"], serde_json::Value::Null);
    assert!(v["rtmr_note"].as_str().unwrap().contains("--event-log"));
    assert_eq!(
        v["kernel_hashes"]["kernel"]["sha256"],
        common::sha256_hex(&common::synthetic(300_000, 1))
    );
}

/// Bad input: each refused with exit 2 and a message naming it.
#[test]
fn bad_input_is_refused() {
    let fw = common::amdsev_suffix();
    let fw = fw.to_str().unwrap();
    let tmp = temp_dir("measure-bad");
    let kernel = tmp.join("k");
    std::fs::write(&kernel, b"k").unwrap();
    let kernel = kernel.to_str().unwrap();

    measure_snp_json(&[
        "--firmware",
        fw,
        "--kernel",
        kernel,
        "--vcpu-type",
        "EPYC-Zen9",
    ])
    .refused("unknown vCPU type \"EPYC-Zen9\"; known: EPYC, ");
    measure_snp_json(&["--firmware", fw, "--kernel", "/nonexistent/vmlinuz"])
        .refused("kernel /nonexistent/vmlinuz: No such file");
    measure_snp_json(&["--firmware", "/nonexistent/OVMF.fd", "--firmware-only"])
        .refused("firmware /nonexistent/OVMF.fd");
    measure_snp_json(&["--firmware", fw]).refused("or --firmware-only");
    measure_snp_json(&["--firmware", fw, "--kernel", kernel, "--firmware-only"])
        .refused("--firmware-only measures no kernel");
    measure_snp_json(&["--firmware", fw, "--kernel", kernel, "--vcpus", "0"])
        .refused("0 vCPUs: a launch needs 1..=4096");
    measure_snp_json(&[
        "--firmware",
        fw,
        "--kernel",
        kernel,
        "--guest-features",
        "xyz",
    ])
    .refused("--guest-features: \"xyz\" is not a hexadecimal number");
    measure_snp_json(&["--firmware", fw, "--initrd", kernel, "--firmware-only"])
        .refused("an initrd or command line needs a kernel");
    measure_snp_json(&["--firmware", kernel, "--firmware-only"])
        .refused("the OVMF footer table needs at least");
    run(["measure", "--platform", "tdx", "--firmware", fw])
        .refused("raw data runs past the end of the image");
    run(["measure", "--platform", "sgx", "--firmware", fw]).refused("invalid value 'sgx'");

    // An image directory without one of its files.
    let image = common::image_dir("measure-missing", &common::amdsev_suffix());
    std::fs::remove_file(image.join("initrd")).unwrap();
    measure_snp_json(&["--image", image.to_str().unwrap()]).refused("no file \"initrd\"");
    // A command line with a line break inside.
    std::fs::write(image.join("initrd"), b"").unwrap();
    std::fs::write(image.join("cmdline"), "a\nb\n").unwrap();
    measure_snp_json(&["--image", image.to_str().unwrap()])
        .refused("a line break or NUL inside it");
}
