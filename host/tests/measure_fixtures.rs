//! Every measurement fixture in `testdata/vectors/measure`, recomputed from its inputs.
//!
//! Each folder is classified below: a measurement input is checked case by case against
//! its `MANIFEST.toml`; the other folders (evidence and collateral that other crates test)
//! are listed as such. A folder that is neither fails the test, so a new fixture cannot be
//! skipped silently.

use std::collections::BTreeMap;
use std::path::Path;

use host::measure::hashes::{cmdline_hash, KernelHashes};
use host::measure::ovmf::{Ovmf, SevSection, TdvfSectionType};
use host::measure::snp::{self, SnpError, SnpFirmware, SnpGuest};
use host::measure::tdx::{self, PageAddOrder, RtmrEvent};
use host::measure::vmsa::{vcpu_sig, VmmType};
use host::measure::{sev, Sha384Digest};
use sha2::{Digest as _, Sha256};

/// Folders that hold no launch inputs: tested elsewhere, listed here.
const NOT_MEASUREMENT_INPUTS: &[&str] = &[
    "dstack-nvattest-h100-claims",
    "external-references",
    "intel-pcs-collateral-fmspc-90c06f000000",
    "virtee-sev-snp-report-certs",
];

fn manifest(dir: &Path) -> toml::Table {
    let path = dir.join("MANIFEST.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    let path = dir.join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn str_at<'a>(t: &'a toml::Table, key: &str) -> &'a str {
    t.get(key)
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("no string {key:?} in {t:?}"))
}

fn int_at(t: &toml::Table, key: &str) -> i64 {
    t.get(key)
        .and_then(|v| v.as_integer())
        .unwrap_or_else(|| panic!("no integer {key:?} in {t:?}"))
}

fn table_at<'a>(t: &'a toml::Table, key: &str) -> &'a toml::Table {
    t.get(key)
        .and_then(|v| v.as_table())
        .unwrap_or_else(|| panic!("no table {key:?}"))
}

fn ints(v: &toml::Value) -> Vec<u64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_integer().expect("integer") as u64)
        .collect()
}

fn hex48(s: &str) -> Sha384Digest {
    hex::decode(s).expect("hex").try_into().expect("48 bytes")
}

fn hex32(s: &str) -> [u8; 32] {
    hex::decode(s).expect("hex").try_into().expect("32 bytes")
}

/// Every `[[file]]` with a `sha256` still has it (a changed input would change every value).
fn check_files(dir: &Path, m: &toml::Table, checked: &mut Vec<String>) {
    for f in m
        .get("file")
        .and_then(|f| f.as_array())
        .into_iter()
        .flatten()
    {
        let f = f.as_table().expect("file table");
        let name = str_at(f, "name");
        if let Some(want) = f.get("sha256").and_then(|v| v.as_str()) {
            let got = hex::encode(Sha256::digest(read(dir, name)));
            assert_eq!(got, want, "{}: sha256 of {name}", dir.display());
            checked.push(format!("sha256({name})"));
        }
    }
}

/// The real Debian OVMF: parsed metadata, 12 SNP digests, kernel refusal, both MRTDs.
fn debian_ovmf(dir: &Path) -> Vec<String> {
    let m = manifest(dir);
    let mut checked = Vec::new();
    check_files(dir, &m, &mut checked);
    let fd = read(dir, "OVMF.fd");
    let ovmf = Ovmf::parse(&fd).expect("OVMF.fd parses");

    let parsed = table_at(&m, "parsed");
    let mut want_guids: Vec<String> = parsed["footer_guids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap().split(' ').next().unwrap().to_owned())
        .collect();
    let mut got_guids: Vec<String> = ovmf.entries().iter().map(|e| e.guid.to_string()).collect();
    want_guids.sort();
    got_guids.sort();
    assert_eq!(got_guids, want_guids, "footer GUIDs");
    checked.push("footer_guids".into());

    assert_eq!(
        ovmf.sev_es_reset_eip().unwrap(),
        Some(int_at(parsed, "sev_es_reset_eip") as u32)
    );
    checked.push("sev_es_reset_eip".into());

    // "SEV hash table: gpa 0, size 0 -> unsupported"
    let table = ovmf
        .sev_hashes_table_entry()
        .unwrap()
        .expect("hash table entry");
    assert_eq!((table.gpa, table.size), (0, 0));
    assert_eq!(ovmf.sev_hashes_table().unwrap(), None);
    checked.push("sev_hashes_table unsupported".into());

    let want_sev: Vec<SevSection> = parsed["sev_metadata_sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| match ints(s)[..] {
            [gpa, size, ty] => SevSection::new(gpa as u32, size as u32, ty as u32),
            _ => panic!("sev section {s:?}"),
        })
        .collect();
    assert_eq!(
        ovmf.sev_metadata().unwrap().unwrap(),
        want_sev,
        "SEV metadata"
    );
    checked.push("sev_metadata_sections".into());

    let got_tdvf: Vec<Vec<u64>> = ovmf
        .tdvf_metadata()
        .unwrap()
        .unwrap()
        .iter()
        .map(|s| {
            vec![
                u64::from(s.data_offset),
                u64::from(s.raw_size),
                s.memory_address,
                s.memory_size,
                u64::from(s.section_type.raw()),
                u64::from(s.attributes),
            ]
        })
        .collect();
    let want_tdvf: Vec<Vec<u64>> = parsed["tdvf_sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(ints)
        .collect();
    assert_eq!(got_tdvf, want_tdvf, "TDVF sections");
    let first = ovmf.tdvf_metadata().unwrap().unwrap()[0];
    assert_eq!(first.section_type, TdvfSectionType::Bfv);
    assert!(first.mr_extend() && !first.page_aug());
    checked.push("tdvf_sections".into());

    let exp = table_at(table_at(&m, "expected"), "snp");
    let fw = SnpFirmware::from_ovmf(&ovmf).unwrap();
    assert_eq!(
        hex::encode(fw.ovmf_hash),
        str_at(exp, "ovmf_hash"),
        "OVMF hash"
    );
    checked.push("ovmf_hash".into());

    let sigs = table_at(exp, "vcpu_sigs");
    for (model, sig) in sigs {
        assert_eq!(
            vcpu_sig(model).map(i64::from),
            sig.as_integer(),
            "signature of {model}"
        );
    }
    let mut cases = 0;
    for (key, value) in exp {
        // "EPYC-Milan.4vcpu.gf0x21"
        let Some((model, rest)) = key.split_once('.') else {
            continue;
        };
        let Some(value) = value.as_str() else {
            continue;
        };
        let (vcpus, gf) = rest.split_once('.').unwrap();
        let vcpus: u32 = vcpus.strip_suffix("vcpu").unwrap().parse().unwrap();
        let gf = u64::from_str_radix(gf.strip_prefix("gf0x").unwrap(), 16).unwrap();
        let guest = SnpGuest {
            vcpus,
            vcpu_sig: sigs[model].as_integer().unwrap() as u32,
            guest_features: gf,
            vmm: VmmType::Qemu,
            kernel: None,
        };
        assert_eq!(
            hex::encode(snp::launch_digest(&fw, &guest).unwrap()),
            value,
            "{key}"
        );
        checked.push(key.clone());
        cases += 1;

        // This build has no SNP_KERNEL_HASHES section: a kernel must be refused.
        let with_kernel = SnpGuest {
            kernel: Some(KernelHashes::from_contents(b"", None, None)),
            ..guest
        };
        assert_eq!(
            snp::launch_digest(&fw, &with_kernel),
            Err(SnpError::KernelWithoutHashesSection),
            "{key} with a kernel"
        );
    }
    assert_eq!(cases, 12, "SNP cases in [expected.snp]");
    checked.push("kernel refused (x12)".into());

    let exp = table_at(table_at(&m, "expected"), "tdx");
    assert_eq!(
        hex::encode(tdx::mrtd(&ovmf, PageAddOrder::SinglePass).unwrap()),
        str_at(exp, "mrtd_single_pass"),
        "MRTD, single pass"
    );
    checked.push("mrtd_single_pass".into());
    assert_eq!(
        hex::encode(tdx::mrtd(&ovmf, PageAddOrder::TwoPass).unwrap()),
        str_at(exp, "mrtd_two_pass"),
        "MRTD, two pass"
    );
    checked.push("mrtd_two_pass".into());
    checked
}

/// sev-snp-measure's upstream test vectors: SNP (QEMU, EC2, GCE, seeded, hash-only),
/// SEV-ES, SEV and SVSM.
fn sev_snp_measure(dir: &Path) -> Vec<String> {
    let m = manifest(dir);
    let mut checked = Vec::new();
    check_files(dir, &m, &mut checked);
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut file = |name: &str| {
        files
            .entry(name.to_owned())
            .or_insert_with(|| read(dir, name))
            .clone()
    };

    for case in m["case"].as_array().expect("[[case]]") {
        let case = case.as_table().unwrap();
        let name = str_at(case, "name");
        let mode = str_at(case, "mode");
        let fd = file(str_at(case, "ovmf"));
        let ovmf = Ovmf::parse(&fd).unwrap_or_else(|e| panic!("{name}: {e}"));
        let file_of = |key: &str| match case.get(key).and_then(|v| v.as_str()) {
            Some("empty") => Some(Vec::new()),
            Some(other) => panic!("{name}: {key} = {other:?}: only \"empty\" is used"),
            None => None,
        };
        let kernel = file_of("kernel").map(|k| {
            let initrd = file_of("initrd");
            let append = case.get("append").and_then(|v| v.as_str());
            KernelHashes::from_contents(&k, initrd.as_deref(), append)
        });
        let vmm = case
            .get("vmm")
            .map_or(VmmType::Qemu, |v| v.as_str().unwrap().parse().unwrap());
        let vcpus = || int_at(case, "vcpus") as u32;
        let sig = || int_at(case, "vcpu_sig") as u32;
        let expected = case.get("expected").and_then(|v| v.as_str());

        let got: Result<Vec<u8>, String> = match mode {
            "snp:ovmf-hash" => snp::ovmf_hash(&ovmf)
                .map(|h| h.to_vec())
                .map_err(|e| e.to_string()),
            "snp" => {
                let fw = match case.get("ovmf_hash_seed") {
                    Some(seed) => {
                        let seed = hex48(seed.as_str().unwrap());
                        SnpFirmware::from_ovmf_with_hash(&ovmf, seed).unwrap()
                    }
                    None => SnpFirmware::from_ovmf(&ovmf).unwrap(),
                };
                let guest = SnpGuest {
                    vcpus: vcpus(),
                    vcpu_sig: sig(),
                    guest_features: int_at(case, "guest_features") as u64,
                    vmm,
                    kernel,
                };
                snp::launch_digest(&fw, &guest)
                    .map(|h| h.to_vec())
                    .map_err(|e| e.to_string())
            }
            "seves" => sev::seves_launch_digest(&ovmf, kernel.as_ref(), vcpus(), sig(), vmm)
                .map(|h| h.to_vec())
                .map_err(|e| e.to_string()),
            "sev" => sev::sev_launch_digest(&ovmf, kernel.as_ref())
                .map(|h| h.to_vec())
                .map_err(|e| e.to_string()),
            "snp:svsm" => {
                assert_eq!(vmm, VmmType::Qemu, "{name}");
                assert!(kernel.is_none(), "{name}");
                let svsm_fd = file(str_at(case, "svsm"));
                let svsm = Ovmf::parse(&svsm_fd).unwrap();
                let vars = int_at(case, "ovmf_vars_size") as u64;
                snp::svsm_launch_digest(&ovmf, &svsm, vars, vcpus(), sig())
                    .map(|h| h.to_vec())
                    .map_err(|e| e.to_string())
            }
            other => panic!("{name}: unknown mode {other:?}"),
        };
        match (
            expected,
            case.get("expected_error").and_then(|v| v.as_str()),
        ) {
            (Some(want), None) => {
                assert_eq!(got.map(hex::encode), Ok(want.to_owned()), "{name} ({mode})")
            }
            (None, Some(want)) => assert_eq!(got, Err(want.to_owned()), "{name} ({mode})"),
            _ => panic!("{name}: needs exactly one of expected, expected_error"),
        }
        checked.push(name.to_owned());
    }
    checked
}

/// A hardware-signed SNP measurement (EPYC Milan), reproduced from hash-only inputs.
fn dstack_snp(dir: &Path) -> Vec<String> {
    let m = manifest(dir);
    let mut checked = Vec::new();
    check_files(dir, &m, &mut checked);
    let input: serde_json::Value =
        serde_json::from_slice(&read(dir, "measurement_input.json")).unwrap();
    let s = |k: &str| input[k].as_str().unwrap_or_else(|| panic!("{k}"));
    let n = |k: &str| input[k].as_u64().unwrap_or_else(|| panic!("{k}"));

    // The manifest's summary of the inputs says the same as the JSON.
    let inputs = table_at(&m, "inputs");
    assert_eq!(str_at(inputs, "ovmf_hash"), s("ovmf_hash"));
    assert_eq!(str_at(inputs, "kernel_sha256"), s("kernel_hash"));
    assert_eq!(str_at(inputs, "initrd_sha256"), s("initrd_hash"));
    assert_eq!(
        int_at(inputs, "sev_hashes_table_gpa") as u64,
        n("sev_hashes_table_gpa")
    );
    assert_eq!(
        int_at(inputs, "sev_es_reset_eip") as u64,
        n("sev_es_reset_eip")
    );
    assert_eq!(int_at(inputs, "vcpus") as u64, n("vcpus"));
    assert_eq!(str_at(inputs, "vcpu_type"), s("vcpu_type"));
    assert_eq!(int_at(inputs, "guest_features") as u64, n("guest_features"));
    assert_eq!(str_at(inputs, "vmm"), "QEMU");

    let sections = input["ovmf_sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let f = |k: &str| u32::try_from(x[k].as_u64().unwrap()).unwrap();
            SevSection::new(f("gpa"), f("size"), f("section_type"))
        })
        .collect();
    let fw = SnpFirmware::from_parts(
        hex48(s("ovmf_hash")),
        sections,
        Some(n("sev_es_reset_eip") as u32),
        Some(n("sev_hashes_table_gpa") as u32),
    );
    let guest = SnpGuest {
        vcpus: n("vcpus") as u32,
        vcpu_sig: vcpu_sig(s("vcpu_type")).expect("known vCPU type"),
        guest_features: n("guest_features"),
        vmm: VmmType::Qemu,
        kernel: Some(KernelHashes {
            kernel: hex32(s("kernel_hash")),
            initrd: hex32(s("initrd_hash")),
            // dstack trims the command line, then QEMU hashes it with one NUL.
            cmdline: cmdline_hash(Some(s("base_cmdline").trim())),
        }),
    };
    let got = snp::launch_digest(&fw, &guest).unwrap();
    let want = str_at(table_at(&m, "expected"), "measurement");
    assert_eq!(
        hex::encode(got),
        want,
        "measurement from measurement_input.json"
    );
    checked.push("measurement".into());

    let report = read(dir, "snp_report.bin");
    assert_eq!(report.len(), 0x4a0);
    assert_eq!(
        &report[0x90..0xc0],
        &got[..],
        "MEASUREMENT field of snp_report.bin"
    );
    assert_eq!(
        read(dir, "sev_snp_attestation.bin")[4..4 + 0x4a0],
        report[..],
        "snp_report.bin is bytes [4, 1188) of sev_snp_attestation.bin"
    );
    checked.push("snp_report.bin MEASUREMENT".into());
    checked
}

/// A hardware TDX quote with its CC event log: RTMR replay, and the quote's fields.
fn dstack_tdx(dir: &Path) -> Vec<String> {
    let m = manifest(dir);
    let mut checked = Vec::new();
    check_files(dir, &m, &mut checked);
    let exp = table_at(&m, "expected");
    let log: serde_json::Value = serde_json::from_slice(&read(dir, "event_log.json")).unwrap();
    let events: Vec<RtmrEvent> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let s = |k: &str| {
                e[k].as_str()
                    .unwrap_or_else(|| panic!("event string {k}: {e}"))
            };
            let n = |k: &str| {
                let v = e[k]
                    .as_u64()
                    .unwrap_or_else(|| panic!("event number {k}: {e}"));
                u32::try_from(v).unwrap()
            };
            let rtmr = n("imr");
            let digest = if s("digest").is_empty() {
                // dstack's runtime events (RTMR3) carry no digest: it is derived.
                assert_eq!(rtmr, 3, "only RTMR3 events derive their digest: {e}");
                let payload = hex::decode(s("event_payload")).unwrap();
                tdx::dstack_event_digest(n("event_type"), s("event"), &payload)
            } else {
                hex48(s("digest"))
            };
            RtmrEvent { rtmr, digest }
        })
        .collect();
    assert_eq!(events.len(), 29);
    let rtmrs = tdx::replay_rtmrs(&events).unwrap();

    assert_eq!(int_at(exp, "quote_body_offset"), 48);
    let quote = tdx::quote_measurements(&read(dir, "quote.bin")).unwrap();
    for (i, rtmr) in rtmrs.iter().enumerate() {
        let want = str_at(exp, &format!("rtmr{i}"));
        assert_eq!(hex::encode(rtmr), want, "replayed RTMR{i} vs manifest");
        assert_eq!(quote.rtmrs[i], *rtmr, "replayed RTMR{i} vs quote.bin");
        checked.push(format!("rtmr{i}"));
    }
    // No firmware for this TD: its MRTD is only read, not recomputed.
    assert_eq!(hex::encode(quote.mrtd), str_at(exp, "mrtd"), "quote MRTD");
    checked.push("quote mrtd (read)".into());
    assert_eq!(
        hex::encode(quote.mr_config_id),
        str_at(exp, "mrconfigid"),
        "quote MRCONFIGID"
    );
    assert_eq!(
        hex::encode(quote.report_data),
        str_at(exp, "report_data_hex"),
        "REPORTDATA"
    );
    checked.push("quote mrconfigid, reportdata".into());
    checked
}

#[test]
fn measure_fixtures() {
    let root = sim::vectors::platform_dir("measure");
    let mut dirs: Vec<String> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    dirs.sort();

    let mut checked: Vec<(String, Vec<String>)> = Vec::new();
    let mut others = Vec::new();
    for name in dirs {
        let dir = root.join(&name);
        let cases = match name.as_str() {
            "debian-ovmf-2022.11-ovmfx64" => debian_ovmf(&dir),
            "sev-snp-measure-fixtures" => sev_snp_measure(&dir),
            "dstack-snp-live-milan" => dstack_snp(&dir),
            "dstack-tdx-quote-eventlog" => dstack_tdx(&dir),
            other if NOT_MEASUREMENT_INPUTS.contains(&other) => {
                others.push(name);
                continue;
            }
            other => panic!(
                "{}: new fixture {other:?}: check it here or list it in NOT_MEASUREMENT_INPUTS",
                root.display()
            ),
        };
        checked.push((name, cases));
    }
    assert_eq!(checked.len(), 4, "measurement fixtures checked");
    assert_eq!(
        others.len(),
        NOT_MEASUREMENT_INPUTS.len(),
        "listed non-inputs present"
    );
    let total: usize = checked.iter().map(|(_, c)| c.len()).sum();
    println!(
        "measure fixtures: {} checked ({}; {total} checks); not measurement inputs: {}",
        checked.len(),
        checked
            .iter()
            .map(|(n, c)| format!("{n}: {}", c.len()))
            .collect::<Vec<_>>()
            .join(", "),
        others.join(", ")
    );
    for (name, cases) in &checked {
        println!("  {name}: {}", cases.join(", "));
    }
}

/// The real firmware, truncated or with its footer garbled: typed errors, never a panic.
#[test]
fn garbled_real_firmware_gives_typed_errors() {
    use host::measure::ovmf::{MetadataKind, OvmfError};
    use host::measure::tdx::TdxError;

    let dir = sim::vectors::platform_dir("measure").join("debian-ovmf-2022.11-ovmfx64");
    let fd = read(&dir, "OVMF.fd");
    let n = fd.len();
    let ovmf = Ovmf::parse(&fd).unwrap();

    // Truncated: the footer is no longer 32 bytes from the end.
    for cut in [1, 16, 32, 4096, n - 50] {
        assert!(
            matches!(
                Ovmf::parse(&fd[..n - cut]),
                Err(OvmfError::NoFooterTable { .. })
            ),
            "cut {cut}"
        );
    }
    assert!(matches!(
        Ovmf::parse(&fd[..10]),
        Err(OvmfError::TooSmall { len: 10, .. })
    ));

    // The footer's table length below one entry; and far beyond the real table, so that
    // the walk runs into firmware code.
    let len_at = n - 32 - 18;
    let mut bad = fd.clone();
    bad[len_at..len_at + 2].copy_from_slice(&3u16.to_le_bytes());
    assert!(matches!(
        Ovmf::parse(&bad),
        Err(OvmfError::TableLength { len: 3, .. })
    ));
    bad[len_at..len_at + 2].copy_from_slice(&0xffffu16.to_le_bytes());
    let e = Ovmf::parse(&bad).unwrap_err();
    assert!(
        matches!(
            e,
            OvmfError::EntryLength { .. }
                | OvmfError::TableRemainder { .. }
                | OvmfError::DuplicateEntry { .. }
        ),
        "{e}"
    );

    // A broken ASEV / TDVF signature reaches the SNP and TDX computations as typed errors.
    let sev_at = n - u32::from_le_bytes(
        ovmf.entry(&host::measure::ovmf::SEV_METADATA_GUID).unwrap()[..4]
            .try_into()
            .unwrap(),
    ) as usize;
    let mut bad = fd.clone();
    bad[sev_at] ^= 0x20;
    let e = SnpFirmware::from_ovmf_with_hash(&Ovmf::parse(&bad).unwrap(), [0; 48]).unwrap_err();
    assert!(
        matches!(
            e,
            SnpError::Ovmf(OvmfError::MetadataSignature {
                kind: MetadataKind::Sev,
                ..
            })
        ),
        "{e}"
    );
    let tdvf_at = n - u32::from_le_bytes(
        ovmf.entry(&host::measure::ovmf::TDX_METADATA_GUID).unwrap()[..4]
            .try_into()
            .unwrap(),
    ) as usize;
    let mut bad = fd.clone();
    bad[tdvf_at + 12..tdvf_at + 16].copy_from_slice(&1000u32.to_le_bytes()); // section count
    let e = tdx::mrtd(&Ovmf::parse(&bad).unwrap(), PageAddOrder::SinglePass).unwrap_err();
    assert!(
        matches!(
            e,
            TdxError::Ovmf(OvmfError::MetadataLength {
                kind: MetadataKind::Tdvf,
                ..
            })
        ),
        "{e}"
    );

    // Every byte of the footer table, both metadata headers and their first section, each
    // flipped in turn: parsing and every accessor answer without panicking.
    let regions = [
        n - 32 - 136..n - 32,
        sev_at..sev_at + 28,
        tdvf_at..tdvf_at + 48,
    ];
    let mut errors = 0;
    for at in regions.into_iter().flatten() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = fd.clone();
            bad[at] ^= flip;
            let Ok(o) = Ovmf::parse(&bad) else {
                errors += 1;
                continue;
            };
            let results = [
                o.sev_metadata().err(),
                o.tdvf_metadata().err(),
                o.sev_es_reset_eip().err(),
                o.sev_hashes_table().err(),
                o.sev_secret_block().err(),
            ];
            errors += results.iter().flatten().count();
            // The metadata as SNP reads it (the digest itself would hash up to 4 GiB of
            // zero pages for a garbled section size; its shape checks have unit tests).
            errors += usize::from(SnpFirmware::from_ovmf_with_hash(&o, [0; 48]).is_err());
        }
    }
    assert!(errors > 100, "garbling gave only {errors} errors");

    // The 4 KiB AmdSev suffix carries the real TDVF metadata, whose sections point into
    // the full image: SNP measurement works, TDX says where its data is missing.
    let suffix = read(
        &sim::vectors::platform_dir("measure").join("sev-snp-measure-fixtures"),
        "ovmf_AmdSev_suffix.bin",
    );
    let o = Ovmf::parse(&suffix).unwrap();
    assert!(SnpFirmware::from_ovmf(&o).is_ok());
    assert!(matches!(
        tdx::mrtd(&o, PageAddOrder::TwoPass),
        Err(TdxError::Ovmf(OvmfError::TdvfSection {
            problem: "raw data runs past the end of the image",
            ..
        }))
    ));
}
