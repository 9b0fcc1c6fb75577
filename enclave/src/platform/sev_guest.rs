//! SEV-SNP evidence through the guest driver's `/dev/sev-guest` ioctl, for kernels without
//! configfs-tsm (before 6.7).
//!
//! **Why `libc` and not the `sev` crate.** sev 8 (`default-features = false`, `snp`) needs
//! no OpenSSL and is not heavy (uuid, bitfield with a second `syn` major, dirs, iocuddle),
//! but its guest `Firmware::open()` hard-codes `/dev/sev-guest`, its ioctl cannot be
//! substituted in a test, and its extended-report path walks the certificate buffer through
//! a raw pointer with its own table parser. We need a configurable device path, a bounds-
//! checked table parser shared with configfs-tsm's `auxblob` ([`super::parse_cert_table`]),
//! and request/response encoding plus error mapping tested without a device. The ABI is
//! four small `repr(C)` structures (`include/uapi/linux/sev-guest.h`) and one `ioctl`, so
//! we call it directly with `libc`, behind [`SevIoctl`] so tests can play the driver.
//!
//! We always use `SNP_GET_EXT_REPORT`: with no certificates from the host it returns the
//! same report as `SNP_GET_REPORT` and a zeroed certificate buffer.

use super::cert_table::parse_cert_table;
use super::error::{PlatformError, PlatformErrorKind};
use super::{check_report, EvidenceSource, PlatformEvidence, TeeKind};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `struct snp_report_req`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct ReportReq {
    pub user_data: [u8; 64],
    pub vmpl: u32,
    pub rsvd: [u8; 28],
}

/// `struct snp_report_resp`: MSG_REPORT_RSP (status, report_size, 24 reserved, report).
#[repr(C)]
pub(crate) struct ReportResp {
    pub data: [u8; 4000],
}

/// `struct snp_ext_report_req`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct ExtReportReq {
    pub data: ReportReq,
    pub certs_address: u64,
    pub certs_len: u32,
}

/// `struct snp_guest_request_ioctl`; `exitinfo2` is `fw_error` (low 32 bits) and
/// `vmm_error` (high 32 bits).
#[repr(C)]
pub(crate) struct GuestRequestIoctl {
    pub msg_version: u8,
    pub req_data: u64,
    pub resp_data: u64,
    pub exitinfo2: u64,
}

const _: () = assert!(std::mem::size_of::<ReportReq>() == 96);
const _: () = assert!(std::mem::size_of::<ReportResp>() == 4000);
const _: () = assert!(std::mem::size_of::<ExtReportReq>() == 112);
const _: () = assert!(std::mem::size_of::<GuestRequestIoctl>() == 32);

/// `_IOWR('S', nr, struct snp_guest_request_ioctl)`.
const fn snp_ioctl(nr: u64) -> u64 {
    const IOC_READ_WRITE: u64 = 3;
    (IOC_READ_WRITE << 30)
        | ((std::mem::size_of::<GuestRequestIoctl>() as u64) << 16)
        | ((b'S' as u64) << 8)
        | nr
}

#[cfg(test)]
pub(crate) const SNP_GET_REPORT: u64 = snp_ioctl(0);
pub(crate) const SNP_GET_EXT_REPORT: u64 = snp_ioctl(2);

/// The message version the kernel passes to the firmware (must be non-zero).
const MSG_VERSION: u8 = 1;
/// The certificate buffer we start with (the driver's SEV_FW_BLOB_MAX_SIZE, 16 KiB); its
/// length must be a multiple of the page size.
const INITIAL_CERTS_LEN: usize = 4 * PAGE;
const PAGE: usize = 4096;
/// Largest certificate buffer we grow to when the host asks for more.
const MAX_CERTS_LEN: usize = 1 << 20;
/// MSG_REPORT_RSP header: status u32, report_size u32, 24 reserved bytes.
const RESP_HEADER: usize = 32;

/// vmm_error values (`SNP_GUEST_VMM_ERR_*`).
const VMM_ERR_INVALID_LEN: u32 = 1;
const VMM_ERR_BUSY: u32 = 2;
/// fw_error the driver leaves when the request never reached the firmware (older kernels
/// preset exitinfo2 to 0xff, newer ones to SEV_RET_NO_FW_CALL = -1).
const FW_ERR_NOT_CALLED: [u32; 2] = [0xff, u32::MAX];

/// The raw ioctl on the guest device. `arg` points at the request and response buffers
/// (`req_data`, `resp_data`, and for an extended report the certificate buffer); the driver
/// writes into them and into `arg.exitinfo2`, and may update `certs_len` in the request.
pub(crate) trait SevIoctl: Send + Sync {
    fn ioctl(&self, request: u64, arg: &mut GuestRequestIoctl) -> io::Result<()>;
}

/// The real device.
struct DeviceIoctl {
    path: PathBuf,
}

impl SevIoctl for DeviceIoctl {
    fn ioctl(&self, request: u64, arg: &mut GuestRequestIoctl) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let file = fs::OpenOptions::new().read(true).open(&self.path)?;
        // SAFETY: `arg` is a valid, exclusively borrowed snp_guest_request_ioctl whose
        // req_data/resp_data (and certs_address inside an extended request) point at live
        // buffers of the sizes the driver expects; the caller keeps them alive across this
        // call, and the driver writes only within them.
        let rc = unsafe {
            libc::ioctl(
                file.as_raw_fd(),
                request as _,
                arg as *mut GuestRequestIoctl,
            )
        };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

/// What one extended-report ioctl gave: the response and certificate buffer, or the
/// certificate-buffer length the host asked for.
enum ExtOutcome {
    Done(Box<ReportResp>, Vec<u8>),
    NeedCerts(usize),
}

/// `/dev/sev-guest` as an [`EvidenceSource`].
pub struct SevGuest {
    device: PathBuf,
    vmpl: u32,
    ioctl: Arc<dyn SevIoctl>,
}

impl SevGuest {
    /// Use the SNP guest device at `device` (normally `/dev/sev-guest`); checks that it
    /// opens. Reports are requested at VMPL 0 unless [`SevGuest::with_vmpl`] says otherwise.
    pub fn open(device: &Path) -> Result<Self, PlatformError> {
        match fs::OpenOptions::new().read(true).open(device) {
            Ok(_) => Ok(Self::with_ioctl(
                device,
                Arc::new(DeviceIoctl {
                    path: device.to_owned(),
                }),
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(PlatformError::new(
                PlatformErrorKind::NoTee,
                format!(
                    "{} does not exist (is this an SEV-SNP guest with the sev-guest driver?)",
                    device.display()
                ),
            )),
            Err(e) => Err(PlatformError::io("open", device, &e)),
        }
    }

    pub(crate) fn with_ioctl(device: &Path, ioctl: Arc<dyn SevIoctl>) -> Self {
        SevGuest {
            device: device.to_owned(),
            vmpl: 0,
            ioctl,
        }
    }

    /// Request reports at this VMPL (0-3).
    pub fn with_vmpl(mut self, vmpl: u32) -> Result<Self, PlatformError> {
        if vmpl > 3 {
            return Err(PlatformError::new(
                PlatformErrorKind::InvalidArgument,
                format!("VMPL {vmpl} (SEV-SNP has 0-3)"),
            ));
        }
        self.vmpl = vmpl;
        Ok(self)
    }

    fn source(&self) -> String {
        format!("{} SNP_GET_EXT_REPORT", self.device.display())
    }

    /// One extended-report ioctl with a certificate buffer of `certs_len` bytes.
    fn ext_report(
        &self,
        report_data: &[u8; 64],
        certs_len: usize,
    ) -> Result<ExtOutcome, PlatformError> {
        let mut certs = vec![0u8; certs_len];
        let mut req = ExtReportReq {
            data: ReportReq {
                user_data: *report_data,
                vmpl: self.vmpl,
                rsvd: [0; 28],
            },
            certs_address: certs.as_mut_ptr() as u64,
            certs_len: certs_len as u32,
        };
        let mut resp = Box::new(ReportResp { data: [0; 4000] });
        let mut arg = GuestRequestIoctl {
            msg_version: MSG_VERSION,
            req_data: &mut req as *mut ExtReportReq as u64,
            resp_data: &mut *resp as *mut ReportResp as u64,
            exitinfo2: 0,
        };
        let result = self.ioctl.ioctl(SNP_GET_EXT_REPORT, &mut arg);
        let fw_error = arg.exitinfo2 as u32;
        let vmm_error = (arg.exitinfo2 >> 32) as u32;
        match result {
            Ok(()) => Ok(ExtOutcome::Done(resp, certs)),
            Err(_) if vmm_error == VMM_ERR_INVALID_LEN => {
                Ok(ExtOutcome::NeedCerts(req.certs_len as usize))
            }
            Err(e) => Err(map_ioctl_error(&self.source(), &e, fw_error, vmm_error)),
        }
    }
}

impl EvidenceSource for SevGuest {
    fn kind(&self) -> TeeKind {
        TeeKind::SevSnp
    }

    fn describe(&self) -> String {
        format!(
            "SNP guest device {} (SNP_GET_EXT_REPORT, VMPL {})",
            self.device.display(),
            self.vmpl
        )
    }

    fn evidence(&self, report_data: &[u8; 64]) -> Result<PlatformEvidence, PlatformError> {
        let source = self.source();
        let (resp, certs) = match self.ext_report(report_data, INITIAL_CERTS_LEN)? {
            ExtOutcome::Done(resp, certs) => (resp, certs),
            ExtOutcome::NeedCerts(wanted) => {
                // The host has more certificates than fit: the driver told us how much room
                // it needs. Retry once with that (page-rounded, capped).
                let len = wanted.div_ceil(PAGE) * PAGE;
                if len <= INITIAL_CERTS_LEN || len > MAX_CERTS_LEN {
                    return Err(PlatformError::new(
                        PlatformErrorKind::Hypervisor,
                        format!(
                            "{source}: the host's certificates need {wanted} bytes (we allow \
                             {INITIAL_CERTS_LEN}..={MAX_CERTS_LEN})"
                        ),
                    ));
                }
                match self.ext_report(report_data, len)? {
                    ExtOutcome::Done(resp, certs) => (resp, certs),
                    ExtOutcome::NeedCerts(again) => {
                        return Err(PlatformError::new(
                            PlatformErrorKind::Hypervisor,
                            format!(
                                "{source}: the host asked for {wanted} bytes of certificate \
                                 buffer, then for {again} after we gave it {len}"
                            ),
                        ))
                    }
                }
            }
        };
        let report = decode_response(&resp.data, &source)?;
        check_report(TeeKind::SevSnp, &report, report_data, &source)?;
        let certificates = parse_cert_table(&certs, &format!("{source} certificates"))?;
        Ok(PlatformEvidence {
            kind: TeeKind::SevSnp,
            report,
            certificates,
        })
    }
}

/// The report inside MSG_REPORT_RSP, after checking its status and size.
pub(crate) fn decode_response(data: &[u8; 4000], source: &str) -> Result<Vec<u8>, PlatformError> {
    let u32_at =
        |off: usize| u32::from_le_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]]);
    let status = u32_at(0);
    if status != 0 {
        return Err(PlatformError::new(
            PlatformErrorKind::Firmware,
            format!(
                "{source}: report response status {status:#x} ({})",
                fw_error_text(status)
            ),
        ));
    }
    let size = u32_at(4) as usize;
    match data.get(RESP_HEADER..RESP_HEADER.saturating_add(size)) {
        Some(report) if size > 0 => Ok(report.to_vec()),
        _ => Err(PlatformError::new(
            PlatformErrorKind::UnexpectedEvidence,
            format!(
                "{source}: report response claims a {size}-byte report; the response holds at \
                 most {}",
                data.len() - RESP_HEADER
            ),
        )),
    }
}

/// A failed ioctl as a typed error: firmware code first, then hypervisor code, then errno.
pub(crate) fn map_ioctl_error(
    source: &str,
    err: &io::Error,
    fw_error: u32,
    vmm_error: u32,
) -> PlatformError {
    if vmm_error != 0 && vmm_error != u32::MAX {
        let what = match vmm_error {
            VMM_ERR_INVALID_LEN => "certificate buffer too small".to_owned(),
            VMM_ERR_BUSY => "the host is busy or throttling guest requests; retry later".to_owned(),
            other => format!("hypervisor error {other:#x}"),
        };
        return PlatformError::new(
            PlatformErrorKind::Hypervisor,
            format!("{source}: {what} (vmm_error {vmm_error}; {err})"),
        );
    }
    if fw_error != 0 && !FW_ERR_NOT_CALLED.contains(&fw_error) {
        return PlatformError::new(
            PlatformErrorKind::Firmware,
            format!(
                "{source}: firmware error {fw_error:#x} ({}); {err}",
                fw_error_text(fw_error)
            ),
        );
    }
    let hint = match err.raw_os_error() {
        Some(libc::ENOTTY) => {
            "; the driver refuses guest requests after a failed one (VMPCK disabled to avoid IV \
             reuse) or does not know this ioctl: restart the guest"
        }
        Some(libc::EACCES) | Some(libc::EPERM) => "; the runtime needs access to the device",
        Some(libc::ETIMEDOUT) => "; the host did not answer in time",
        _ => "",
    };
    let reached = if FW_ERR_NOT_CALLED.contains(&fw_error) {
        " before reaching the firmware"
    } else {
        ""
    };
    PlatformError::new(
        PlatformErrorKind::Device,
        format!("{source}: ioctl failed{reached}: {err}{hint}"),
    )
}

/// SEV firmware status codes (`sev_ret_code`, include/uapi/linux/psp-sev.h).
pub(crate) fn fw_error_text(code: u32) -> &'static str {
    match code {
        0x00 => "success",
        0x01 => "invalid platform state",
        0x02 => "invalid guest state",
        0x03 => "invalid configuration",
        0x04 => "invalid buffer length",
        0x05 => "platform already owned",
        0x06 => "invalid certificate",
        0x07 => "request not allowed by guest policy",
        0x08 => "guest is inactive",
        0x09 => "invalid address",
        0x0a => "bad signature",
        0x0b => "bad measurement",
        0x0c => "ASID already owned",
        0x0d => "invalid ASID",
        0x0e => "WBINVD required",
        0x0f => "DF_FLUSH required",
        0x10 => "invalid guest handle",
        0x11 => "invalid command",
        0x12 => "guest is active",
        0x13 => "hardware platform error",
        0x14 => "hardware unsafe",
        0x15 => "feature not supported",
        0x16 => "invalid parameter (e.g. a VMPL below the guest's own)",
        0x17 => "firmware resource limit reached",
        0x18 => "part-specific integrity check failed",
        0x19 => "invalid page size",
        0x1a => "invalid page state",
        0x1b => "invalid metadata entry",
        0x1c => "invalid page owner",
        0x1d => "AEAD overflow",
        0x1f => "exit ring buffer",
        0x20 => "RMP initialisation required",
        0x21 => "bad security version",
        0x22 => "bad version",
        0x23 => "shutdown required",
        0x24 => "update failed",
        0x25 => "restore required",
        0x26 => "RMP initialisation failed",
        0x27 => "invalid key (e.g. no VLEK loaded)",
        _ => "unknown firmware error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::cert_table::{build_cert_table, ARK_GUID, ASK_GUID, VCEK_GUID};
    use crate::platform::test_evidence::snp_report;
    use std::sync::Mutex;

    const RD: [u8; 64] = [0xc3; 64];

    /// What the fake driver does with one call.
    #[derive(Clone)]
    enum Answer {
        /// Succeed with this report and certificate table (INVALID_LEN if it doesn't fit).
        Report { report: Vec<u8>, table: Vec<u8> },
        /// Fail with this errno and exitinfo2.
        Fail { errno: i32, exitinfo2: u64 },
        /// Succeed, but with this MSG_REPORT_RSP status.
        Status(u32),
    }

    /// Plays the sev-guest driver: decodes the request the way the kernel does (through
    /// the addresses in `arg`) and writes the response the way the kernel does.
    struct FakeDriver {
        answer: Answer,
        calls: Mutex<Vec<(u64, u8, ExtReportReq)>>,
    }

    impl FakeDriver {
        fn new(answer: Answer) -> Arc<Self> {
            Arc::new(FakeDriver {
                answer,
                calls: Mutex::new(Vec::new()),
            })
        }
    }

    impl SevIoctl for FakeDriver {
        fn ioctl(&self, request: u64, arg: &mut GuestRequestIoctl) -> io::Result<()> {
            // SAFETY: the code under test passes pointers to its live ExtReportReq and
            // ReportResp, as it would to the kernel.
            let req = unsafe { &mut *(arg.req_data as *mut ExtReportReq) };
            let resp = unsafe { &mut *(arg.resp_data as *mut ReportResp) };
            self.calls
                .lock()
                .unwrap()
                .push((request, arg.msg_version, *req));
            match &self.answer {
                Answer::Fail { errno, exitinfo2 } => {
                    arg.exitinfo2 = *exitinfo2;
                    Err(io::Error::from_raw_os_error(*errno))
                }
                Answer::Status(status) => {
                    resp.data[..4].copy_from_slice(&status.to_le_bytes());
                    Ok(())
                }
                Answer::Report { report, table } => {
                    let needed = table.len().div_ceil(PAGE) * PAGE;
                    if (req.certs_len as usize) < needed {
                        // As the driver does: report the size needed, vmm_error INVALID_LEN, EIO.
                        req.certs_len = needed as u32;
                        arg.exitinfo2 = (VMM_ERR_INVALID_LEN as u64) << 32;
                        return Err(io::Error::from_raw_os_error(libc::EIO));
                    }
                    assert_eq!(req.certs_len as usize % PAGE, 0, "driver rejects unaligned");
                    // SAFETY: certs_address/certs_len describe the caller's live buffer.
                    let certs = unsafe {
                        std::slice::from_raw_parts_mut(
                            req.certs_address as *mut u8,
                            req.certs_len as usize,
                        )
                    };
                    certs[..table.len()].copy_from_slice(table);
                    resp.data[4..8].copy_from_slice(&(report.len() as u32).to_le_bytes());
                    resp.data[RESP_HEADER..RESP_HEADER + report.len()].copy_from_slice(report);
                    Ok(())
                }
            }
        }
    }

    fn source(driver: Arc<FakeDriver>) -> SevGuest {
        SevGuest::with_ioctl(Path::new("/dev/sev-guest"), driver)
    }

    /// A report that echoes the request's user_data and VMPL, like the firmware.
    fn echo_report(req: &ExtReportReq) -> Vec<u8> {
        sim::SnpReportBuilder::new(sim::FakeProduct::Milan)
            .report_data(req.data.user_data)
            .vmpl(req.data.vmpl)
            .build_unsigned()
    }

    #[test]
    fn ioctl_numbers_match_the_uapi_header() {
        // _IOWR('S', 0x0 / 0x2, struct snp_guest_request_ioctl) on x86-64.
        assert_eq!(SNP_GET_REPORT, 0xC020_5300);
        assert_eq!(SNP_GET_EXT_REPORT, 0xC020_5302);
    }

    #[test]
    fn request_encoding_and_report_with_certificates() {
        let table =
            build_cert_table(&[(VCEK_GUID, b"vcek"), (ASK_GUID, b"ask"), (ARK_GUID, b"ark")]);
        let driver = FakeDriver::new(Answer::Report {
            report: snp_report(RD),
            table,
        });
        let evidence = source(driver.clone())
            .with_vmpl(2)
            .unwrap()
            .evidence(&RD)
            .unwrap();
        assert_eq!(evidence.kind, TeeKind::SevSnp);
        assert_eq!(evidence.report, snp_report(RD));
        let names: Vec<&str> = evidence
            .certificates
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(names, ["vcek.der", "ask.der", "ark.der"]);

        let calls = driver.calls.lock().unwrap();
        assert_eq!(calls.len(), 1);
        let (request, msg_version, req) = calls[0];
        assert_eq!(request, SNP_GET_EXT_REPORT);
        assert_eq!(msg_version, 1);
        assert_eq!(req.data.user_data, RD);
        assert_eq!(req.data.vmpl, 2);
        assert_eq!(req.data.rsvd, [0; 28]);
        assert_eq!(req.certs_len as usize, INITIAL_CERTS_LEN);
    }

    #[test]
    fn report_data_and_vmpl_reach_the_firmware() {
        // A driver whose report is built from the request bytes it decoded.
        struct Echo;
        impl SevIoctl for Echo {
            fn ioctl(&self, _: u64, arg: &mut GuestRequestIoctl) -> io::Result<()> {
                // SAFETY: as in FakeDriver.
                let req = unsafe { &*(arg.req_data as *const ExtReportReq) };
                let resp = unsafe { &mut *(arg.resp_data as *mut ReportResp) };
                let report = echo_report(req);
                resp.data[4..8].copy_from_slice(&(report.len() as u32).to_le_bytes());
                resp.data[RESP_HEADER..RESP_HEADER + report.len()].copy_from_slice(&report);
                Ok(())
            }
        }
        let guest = SevGuest::with_ioctl(Path::new("/dev/x"), Arc::new(Echo))
            .with_vmpl(1)
            .unwrap();
        let evidence = guest.evidence(&RD).unwrap();
        assert_eq!(&evidence.report[0x50..0x90], &RD);
        assert_eq!(evidence.report[0x30], 1, "VMPL field");
        assert!(evidence.certificates.is_empty(), "zeroed buffer: no certs");
    }

    #[test]
    fn a_large_certificate_table_gets_a_second_call_with_the_size_asked() {
        let big = vec![0xab; 20_000];
        let table = build_cert_table(&[(VCEK_GUID, &big)]);
        let driver = FakeDriver::new(Answer::Report {
            report: snp_report(RD),
            table,
        });
        let evidence = source(driver.clone()).evidence(&RD).unwrap();
        assert_eq!(evidence.certificates[0].1, big);
        let calls = driver.calls.lock().unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[1].2.certs_len as usize, 5 * PAGE);
    }

    #[test]
    fn firmware_errors_are_named() {
        let driver = FakeDriver::new(Answer::Fail {
            errno: libc::EIO,
            exitinfo2: 0x16,
        });
        let e = source(driver).evidence(&RD).unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::Firmware);
        assert!(e.detail().contains("invalid parameter"), "{e}");
        assert!(e.detail().contains("/dev/sev-guest"), "{e}");

        let e = source(FakeDriver::new(Answer::Status(0x27)))
            .evidence(&RD)
            .unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::Firmware);
        assert!(
            e.detail().contains("0x27") && e.detail().contains("invalid key"),
            "{e}"
        );
    }

    #[test]
    fn hypervisor_errors_are_named() {
        let driver = FakeDriver::new(Answer::Fail {
            errno: libc::EAGAIN,
            exitinfo2: (VMM_ERR_BUSY as u64) << 32,
        });
        let e = source(driver).evidence(&RD).unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::Hypervisor);
        assert!(e.detail().contains("busy"), "{e}");
    }

    #[test]
    fn errno_only_failures_are_device_errors_with_hints() {
        for (exitinfo2, reached) in [(0xff, true), (u64::MAX, true), (0, false)] {
            let driver = FakeDriver::new(Answer::Fail {
                errno: libc::ENOTTY,
                exitinfo2,
            });
            let e = source(driver).evidence(&RD).unwrap_err();
            assert_eq!(e.kind(), PlatformErrorKind::Device, "{e}");
            assert!(e.detail().contains("VMPCK"), "{e}");
            assert_eq!(
                e.detail().contains("before reaching the firmware"),
                reached,
                "{e}"
            );
        }
    }

    #[test]
    fn a_wrong_report_is_typed() {
        let driver = FakeDriver::new(Answer::Report {
            report: vec![2; 1000],
            table: Vec::new(),
        });
        let e = source(driver).evidence(&RD).unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::UnexpectedEvidence);

        let driver = FakeDriver::new(Answer::Report {
            report: snp_report([0; 64]),
            table: Vec::new(),
        });
        let e = source(driver).evidence(&RD).unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::ReportDataMismatch);
    }

    #[test]
    fn response_sizes_are_bounds_checked() {
        let mut data = [0u8; 4000];
        data[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = decode_response(&data, "x").unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::UnexpectedEvidence);
        data[4..8].copy_from_slice(&0u32.to_le_bytes());
        assert!(decode_response(&data, "x").is_err());
    }

    #[test]
    fn vmpl_above_three_is_refused() {
        let e = source(FakeDriver::new(Answer::Status(0)))
            .with_vmpl(4)
            .err()
            .unwrap();
        assert_eq!(e.kind(), PlatformErrorKind::InvalidArgument);
    }

    #[test]
    fn open_names_a_missing_device() {
        let dir = tempfile::tempdir().unwrap();
        let e = SevGuest::open(&dir.path().join("sev-guest")).err().unwrap();
        assert_eq!(e.kind(), PlatformErrorKind::NoTee);
        assert!(e.detail().contains("sev-guest"), "{e}");
    }
}
