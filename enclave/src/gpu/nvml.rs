//! GPU evidence through NVML, NVIDIA's management library (`libnvidia-ml.so.1`), loaded at
//! run time with `libloading`: no C build dependency, and a guest without the library (or
//! with a driver too old for the confidential-computing calls) gets a typed
//! [`GpuError::NoInterface`] naming what is missing, so a launch asking for GPUs fails
//! closed.
//!
//! Layers:
//! - [`sys`]: the `#[repr(C)]` structures and constants of `nvml.h` (NVIDIA, as vendored
//!   in NVIDIA/go-nvml `pkg/nvml/nvml.h` at commit 2f9e261; sizes and offsets checked
//!   against that header with a C compiler, see the tests),
//! - [`NvmlApi`]: the four confidential-computing queries the runtime needs, by device
//!   index; [`LoadedNvml`] is the real one (the only `unsafe` in this module), tests use a
//!   fake that replays real evidence vectors,
//! - [`collect_with`]: everything above the raw calls: the system's CC state (CC feature
//!   on, production environment, devtools mode off, else a typed refusal), the device
//!   count, and per GPU the attestation report (the SPDM GET_MEASUREMENTS request ||
//!   MEASUREMENTS response answering our nonce) and the attestation certificate chain
//!   (PEM, leaf first, NVIDIA's root last), with every size field checked against its
//!   array before a byte is read.
//!
//! What NVML reports about CC state is read inside the TEE by the runtime, which refuses to
//! serve otherwise; it is not in the signed evidence (see the README, "GPU binding").

use super::{GpuError, GpuEvidence};
use std::ffi::{c_char, c_uint, c_void, CStr};

/// The library's file name (the versioned soname NVIDIA's driver package installs).
pub const LIBRARY: &str = "libnvidia-ml.so.1";

/// `nvml.h` structures and constants (see the module docs for the revision).
pub mod sys {
    use std::ffi::c_uint;

    /// `nvmlReturn_t` (a C enum: 4 bytes).
    pub type NvmlReturn = c_uint;
    pub const NVML_SUCCESS: NvmlReturn = 0;
    pub const NVML_ERROR_NOT_SUPPORTED: NvmlReturn = 3;

    pub const NVML_CC_SYSTEM_DEVTOOLS_MODE_OFF: c_uint = 0;
    pub const NVML_CC_SYSTEM_ENVIRONMENT_PROD: c_uint = 2;
    pub const NVML_CC_SYSTEM_FEATURE_ENABLED: c_uint = 1;

    pub const NVML_GPU_CERT_CHAIN_SIZE: usize = 0x1000;
    pub const NVML_GPU_ATTESTATION_CERT_CHAIN_SIZE: usize = 0x1400;
    pub const NVML_CC_GPU_CEC_NONCE_SIZE: usize = 0x20;
    pub const NVML_CC_GPU_ATTESTATION_REPORT_SIZE: usize = 0x2000;
    pub const NVML_CC_GPU_CEC_ATTESTATION_REPORT_SIZE: usize = 0x1000;

    /// `nvmlConfComputeSystemState_t`.
    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct ConfComputeSystemState {
        /// `NVML_CC_SYSTEM_ENVIRONMENT_*`: 0 unavailable, 1 simulation, 2 production.
        pub environment: c_uint,
        /// `NVML_CC_SYSTEM_FEATURE_*`: 0 disabled, 1 enabled.
        pub cc_feature: c_uint,
        /// `NVML_CC_SYSTEM_DEVTOOLS_MODE_*`: 0 off, 1 on.
        pub dev_tools_mode: c_uint,
    }

    /// `nvmlConfComputeGpuCertificate_t`.
    #[repr(C)]
    pub struct ConfComputeGpuCertificate {
        pub cert_chain_size: c_uint,
        pub attestation_cert_chain_size: c_uint,
        /// The device identity chain (not used: the attestation chain below contains it).
        pub cert_chain: [u8; NVML_GPU_CERT_CHAIN_SIZE],
        /// The attestation chain: leaf ("GSP FMC LF") first, PEM.
        pub attestation_cert_chain: [u8; NVML_GPU_ATTESTATION_CERT_CHAIN_SIZE],
    }

    /// `nvmlConfComputeGpuAttestationReport_t`.
    #[repr(C)]
    pub struct ConfComputeGpuAttestationReport {
        pub is_cec_attestation_report_present: c_uint,
        pub attestation_report_size: c_uint,
        pub cec_attestation_report_size: c_uint,
        /// Input: the SPDM requester nonce.
        pub nonce: [u8; NVML_CC_GPU_CEC_NONCE_SIZE],
        /// Output: SPDM GET_MEASUREMENTS request || MEASUREMENTS response.
        pub attestation_report: [u8; NVML_CC_GPU_ATTESTATION_REPORT_SIZE],
        /// Output: the CEC (ConnectX) report, when present (not used).
        pub cec_attestation_report: [u8; NVML_CC_GPU_CEC_ATTESTATION_REPORT_SIZE],
    }

    impl ConfComputeGpuCertificate {
        pub fn zeroed() -> Box<Self> {
            Box::new(ConfComputeGpuCertificate {
                cert_chain_size: 0,
                attestation_cert_chain_size: 0,
                cert_chain: [0; NVML_GPU_CERT_CHAIN_SIZE],
                attestation_cert_chain: [0; NVML_GPU_ATTESTATION_CERT_CHAIN_SIZE],
            })
        }
    }

    impl ConfComputeGpuAttestationReport {
        pub fn zeroed() -> Box<Self> {
            Box::new(ConfComputeGpuAttestationReport {
                is_cec_attestation_report_present: 0,
                attestation_report_size: 0,
                cec_attestation_report_size: 0,
                nonce: [0; NVML_CC_GPU_CEC_NONCE_SIZE],
                attestation_report: [0; NVML_CC_GPU_ATTESTATION_REPORT_SIZE],
                cec_attestation_report: [0; NVML_CC_GPU_CEC_ATTESTATION_REPORT_SIZE],
            })
        }
    }
}

use sys::{ConfComputeGpuAttestationReport, ConfComputeGpuCertificate, ConfComputeSystemState};

/// An NVML call that did not return `NVML_SUCCESS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvmlCallError {
    /// The NVML function, e.g. "nvmlDeviceGetConfComputeGpuAttestationReport".
    pub call: &'static str,
    /// Its `nvmlReturn_t`.
    pub code: u32,
    /// `nvmlErrorString(code)`.
    pub message: String,
}

/// The NVML queries GPU evidence collection needs. Devices are named by NVML index.
pub trait NvmlApi {
    /// `nvmlSystemGetConfComputeState`.
    fn cc_state(&self) -> Result<ConfComputeSystemState, NvmlCallError>;
    /// `nvmlDeviceGetCount_v2`.
    fn device_count(&self) -> Result<u32, NvmlCallError>;
    /// `nvmlDeviceGetConfComputeGpuAttestationReport` of device `index`; `report.nonce` is
    /// the input.
    fn attestation_report(
        &self,
        index: u32,
        report: &mut ConfComputeGpuAttestationReport,
    ) -> Result<(), NvmlCallError>;
    /// `nvmlDeviceGetConfComputeGpuCertificate` of device `index`.
    fn certificate(
        &self,
        index: u32,
        cert: &mut ConfComputeGpuCertificate,
    ) -> Result<(), NvmlCallError>;
}

/// Collect the evidence of exactly `expected` GPUs answering `nonce`, refusing unless the
/// system is in confidential-computing mode, in production, with devtools mode off.
pub fn collect_with(
    api: &dyn NvmlApi,
    expected: usize,
    nonce: [u8; 32],
) -> Result<Vec<GpuEvidence>, GpuError> {
    let state = api.cc_state().map_err(|e| nvml_error(None, e))?;
    if state.cc_feature != sys::NVML_CC_SYSTEM_FEATURE_ENABLED {
        return Err(GpuError::CcOff {
            cc_feature: state.cc_feature,
        });
    }
    if state.dev_tools_mode != sys::NVML_CC_SYSTEM_DEVTOOLS_MODE_OFF {
        return Err(GpuError::CcDevTools {
            dev_tools_mode: state.dev_tools_mode,
        });
    }
    if state.environment != sys::NVML_CC_SYSTEM_ENVIRONMENT_PROD {
        return Err(GpuError::CcNotProduction {
            environment: state.environment,
        });
    }
    let found = api.device_count().map_err(|e| nvml_error(None, e))?;
    let found = usize::try_from(found).unwrap_or(usize::MAX);
    if found != expected {
        return Err(GpuError::Count { expected, found });
    }
    let mut gpus = Vec::with_capacity(expected);
    for index in 0..expected {
        // `index < found`, which came from a u32.
        let nvml_index = u32::try_from(index).unwrap_or(u32::MAX);
        let mut report = ConfComputeGpuAttestationReport::zeroed();
        report.nonce = nonce;
        api.attestation_report(nvml_index, &mut report)
            .map_err(|e| nvml_error(Some(index), e))?;
        let evidence = sized(
            index,
            "attestationReportSize",
            report.attestation_report_size,
            &report.attestation_report,
        )?
        .to_vec();
        let mut cert = ConfComputeGpuCertificate::zeroed();
        api.certificate(nvml_index, &mut cert)
            .map_err(|e| nvml_error(Some(index), e))?;
        let chain = sized(
            index,
            "attestationCertChainSize",
            cert.attestation_cert_chain_size,
            &cert.attestation_cert_chain,
        )?;
        let chain_pem = chain_to_pem(chain).map_err(|detail| GpuError::Device { index, detail })?;
        gpus.push(GpuEvidence {
            evidence,
            chain_pem,
        });
    }
    Ok(gpus)
}

fn nvml_error(index: Option<usize>, e: NvmlCallError) -> GpuError {
    GpuError::Nvml {
        index,
        call: e.call,
        code: e.code,
        message: e.message,
    }
}

/// The first `size` bytes of `array`; a size of 0 or larger than the array is refused.
fn sized<'a>(
    index: usize,
    field: &'static str,
    size: c_uint,
    array: &'a [u8],
) -> Result<&'a [u8], GpuError> {
    usize::try_from(size)
        .ok()
        .filter(|&n| n > 0)
        .and_then(|n| array.get(..n))
        .ok_or(GpuError::SizeOutOfRange {
            index,
            field,
            size,
            capacity: array.len(),
        })
}

/// The attestation chain as PEM. NVML returns PEM (NVIDIA's verifiers split it at
/// "-----END CERTIFICATE-----"); concatenated DER certificates are converted. NUL padding
/// after the last certificate is dropped; anything else is refused.
pub fn chain_to_pem(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let text_start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    match text_start.map(|i| &bytes[i..]) {
        Some(rest) if rest.starts_with(b"-----BEGIN CERTIFICATE-----") => {
            let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            Ok(bytes[..end].to_vec())
        }
        Some(rest) if rest.first() == Some(&0x30) => der_chain_to_pem(rest),
        _ => Err(format!(
            "its attestation certificate chain ({} bytes) is neither PEM nor DER",
            bytes.len()
        )),
    }
}

/// Concatenated DER certificates (each a SEQUENCE with a definite length), then
/// optionally NUL padding, as PEM.
fn der_chain_to_pem(mut der: &[u8]) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let mut pem = String::new();
    while der.iter().any(|&b| b != 0) {
        let len = der_element_len(der).ok_or_else(|| {
            format!(
                "its DER attestation certificate chain has a malformed element ({} bytes left)",
                der.len()
            )
        })?;
        let (cert, rest) = der.split_at(len);
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert);
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        der = rest;
    }
    Ok(pem.into_bytes())
}

/// Total length (header + content) of the DER SEQUENCE at the start of `der`, if it fits.
fn der_element_len(der: &[u8]) -> Option<usize> {
    if *der.first()? != 0x30 {
        return None;
    }
    let first = usize::from(*der.get(1)?);
    let (header, content) = if first < 0x80 {
        (2, first)
    } else {
        let n = first - 0x80;
        if n == 0 || n > 4 {
            return None;
        }
        let len = der
            .get(2..2 + n)?
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (2 + n, len)
    };
    let total = header.checked_add(content)?;
    (total <= der.len()).then_some(total)
}

// ---------------------------------------------------------------------------------------
// The real library.

type InitFn = unsafe extern "C" fn() -> sys::NvmlReturn;
type ShutdownFn = unsafe extern "C" fn() -> sys::NvmlReturn;
type ErrorStringFn = unsafe extern "C" fn(sys::NvmlReturn) -> *const c_char;
type CcStateFn = unsafe extern "C" fn(*mut ConfComputeSystemState) -> sys::NvmlReturn;
type CountFn = unsafe extern "C" fn(*mut c_uint) -> sys::NvmlReturn;
/// `nvmlDevice_t` is an opaque pointer (`struct nvmlDevice_st *`).
type Device = *mut c_void;
type HandleByIndexFn = unsafe extern "C" fn(c_uint, *mut Device) -> sys::NvmlReturn;
type ReportFn =
    unsafe extern "C" fn(Device, *mut ConfComputeGpuAttestationReport) -> sys::NvmlReturn;
type CertificateFn =
    unsafe extern "C" fn(Device, *mut ConfComputeGpuCertificate) -> sys::NvmlReturn;

/// NVML loaded and initialised (`nvmlInit_v2`); dropped, it calls `nvmlShutdown`.
pub struct LoadedNvml {
    shutdown: ShutdownFn,
    error_string: ErrorStringFn,
    cc_state: CcStateFn,
    count: CountFn,
    handle_by_index: HandleByIndexFn,
    report: ReportFn,
    certificate: CertificateFn,
    /// Kept last: the function pointers above point into it.
    _library: libloading::Library,
}

impl LoadedNvml {
    /// Load `library` (normally [`LIBRARY`]), resolve every function and initialise NVML.
    pub fn open(library: &str) -> Result<LoadedNvml, GpuError> {
        // SAFETY: loading runs the library's initialisers. The library is NVIDIA's
        // driver library found by the dynamic loader in the guest image (which the CPU
        // evidence measures); loading it is what NVIDIA's own tools do.
        let lib = unsafe { libloading::Library::new(library) }.map_err(|e| {
            GpuError::NoInterface(format!(
                "cannot load {library} (NVIDIA's NVML, installed with the GPU driver): {e}"
            ))
        })?;
        macro_rules! symbol {
            ($name:literal, $ty:ty) => {{
                // SAFETY: the type is the function's prototype in nvml.h (see `sys`); the
                // pointer is used only while `lib` is alive (it is stored with them).
                let sym = unsafe { lib.get::<$ty>(concat!($name, "\0").as_bytes()) };
                *sym.map_err(|e| {
                    GpuError::NoInterface(format!(
                        "{library} has no {} (a driver without confidential-computing support?): {e}",
                        $name
                    ))
                })?
            }};
        }
        let init: InitFn = symbol!("nvmlInit_v2", InitFn);
        let shutdown: ShutdownFn = symbol!("nvmlShutdown", ShutdownFn);
        let error_string: ErrorStringFn = symbol!("nvmlErrorString", ErrorStringFn);
        let cc_state: CcStateFn = symbol!("nvmlSystemGetConfComputeState", CcStateFn);
        let count: CountFn = symbol!("nvmlDeviceGetCount_v2", CountFn);
        let handle_by_index: HandleByIndexFn =
            symbol!("nvmlDeviceGetHandleByIndex_v2", HandleByIndexFn);
        let report: ReportFn = symbol!("nvmlDeviceGetConfComputeGpuAttestationReport", ReportFn);
        let certificate: CertificateFn =
            symbol!("nvmlDeviceGetConfComputeGpuCertificate", CertificateFn);
        // SAFETY: nvmlInit_v2 takes no arguments and may be called more than once
        // (reference counted); a successful call is paired with the nvmlShutdown in
        // Drop, and the value that drops exists only after it succeeded.
        let ret = unsafe { init() };
        if ret != sys::NVML_SUCCESS {
            // Not initialised: no LoadedNvml (whose Drop would shut down) exists.
            return Err(GpuError::NoInterface(format!(
                "{library} loaded but nvmlInit_v2 failed: {} (code {ret})",
                error_message(error_string, ret)
            )));
        }
        Ok(LoadedNvml {
            shutdown,
            error_string,
            cc_state,
            count,
            handle_by_index,
            report,
            certificate,
            _library: lib,
        })
    }

    fn call_error(&self, call: &'static str, code: sys::NvmlReturn) -> NvmlCallError {
        NvmlCallError {
            call,
            code,
            message: error_message(self.error_string, code),
        }
    }

    fn check(&self, call: &'static str, ret: sys::NvmlReturn) -> Result<(), NvmlCallError> {
        if ret == sys::NVML_SUCCESS {
            Ok(())
        } else {
            Err(self.call_error(call, ret))
        }
    }

    fn device(&self, index: u32) -> Result<Device, NvmlCallError> {
        let mut device: Device = std::ptr::null_mut();
        // SAFETY: `device` is a valid out-pointer for one nvmlDevice_t.
        let ret = unsafe { (self.handle_by_index)(index, &mut device) };
        self.check("nvmlDeviceGetHandleByIndex_v2", ret)?;
        Ok(device)
    }
}

/// `nvmlErrorString(code)`.
fn error_message(error_string: ErrorStringFn, code: sys::NvmlReturn) -> String {
    // SAFETY: nvmlErrorString accepts any code (no initialisation needed) and returns a
    // pointer to a static, NUL-terminated string, or NULL (handled).
    let ptr = unsafe { error_string(code) };
    if ptr.is_null() {
        return format!("NVML error {code}");
    }
    // SAFETY: non-NULL, NUL-terminated and static (see above).
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

impl NvmlApi for LoadedNvml {
    fn cc_state(&self) -> Result<ConfComputeSystemState, NvmlCallError> {
        let mut state = ConfComputeSystemState::default();
        // SAFETY: `state` is a valid, writable nvmlConfComputeSystemState_t (repr(C),
        // layout checked against nvml.h).
        let ret = unsafe { (self.cc_state)(&mut state) };
        self.check("nvmlSystemGetConfComputeState", ret)?;
        Ok(state)
    }

    fn device_count(&self) -> Result<u32, NvmlCallError> {
        let mut count: c_uint = 0;
        // SAFETY: `count` is a valid out-pointer for one unsigned int.
        let ret = unsafe { (self.count)(&mut count) };
        self.check("nvmlDeviceGetCount_v2", ret)?;
        Ok(count)
    }

    fn attestation_report(
        &self,
        index: u32,
        report: &mut ConfComputeGpuAttestationReport,
    ) -> Result<(), NvmlCallError> {
        let device = self.device(index)?;
        // SAFETY: `device` came from NVML for this session; `report` is a valid, writable
        // nvmlConfComputeGpuAttestationReport_t (repr(C), size and offsets checked).
        let ret = unsafe { (self.report)(device, report) };
        self.check("nvmlDeviceGetConfComputeGpuAttestationReport", ret)
    }

    fn certificate(
        &self,
        index: u32,
        cert: &mut ConfComputeGpuCertificate,
    ) -> Result<(), NvmlCallError> {
        let device = self.device(index)?;
        // SAFETY: as above, for nvmlConfComputeGpuCertificate_t.
        let ret = unsafe { (self.certificate)(device, cert) };
        self.check("nvmlDeviceGetConfComputeGpuCertificate", ret)
    }
}

impl Drop for LoadedNvml {
    fn drop(&mut self) {
        // SAFETY: pairs the successful nvmlInit_v2 of `open`; the library is still
        // loaded (the field is dropped after this).
        let _ = unsafe { (self.shutdown)() };
    }
}

#[cfg(test)]
mod tests;
