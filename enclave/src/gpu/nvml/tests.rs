//! [`collect_with`] against a fake NVML that replays real H100 evidence (the nvtrust sample
//! and trustee's CoCo CI report, with their attestation chains as NVML returns them: PEM,
//! leaf first, root last), and the `#[repr(C)]` layouts against nvml.h.

use super::sys::*;
use super::*;
use crate::gpu::{collect_checked, GpuEvidenceSource};
use std::mem::{offset_of, size_of};
use std::sync::Mutex;

const SAMPLE_REPORT: &str = include_str!(
    "../../../../testdata/vectors/nvidia/nvtrust-hopper-h100-sample/hopperAttestationReport.txt"
);
const SAMPLE_CHAIN: &[u8] = include_bytes!(
    "../../../../testdata/vectors/nvidia/nvtrust-hopper-h100-sample/hopperCertChain.txt"
);
/// The nvtrust sample's requester nonce (its MANIFEST's `request_nonce`).
const SAMPLE_NONCE: &str = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb";
const COCO_REPORT: &str = include_str!(
    "../../../../testdata/vectors/nvidia/trustee-hopper-h100-coco-ci/hopper_coco_report1.txt"
);
const COCO_CHAIN: &[u8] = include_bytes!(
    "../../../../testdata/vectors/nvidia/trustee-hopper-h100-coco-ci/hopper_coco_certs1.txt"
);

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text.trim()).unwrap()
}

fn sample_nonce() -> [u8; 32] {
    unhex(SAMPLE_NONCE).try_into().unwrap()
}

/// One fake device: what NVML would answer for it.
#[derive(Clone)]
struct FakeGpu {
    report: Vec<u8>,
    chain: Vec<u8>,
    /// Overrides the size fields NVML writes (lies and overflows).
    report_size: Option<u32>,
    chain_size: Option<u32>,
    fail_report: Option<NvmlReturn>,
}

impl FakeGpu {
    fn new(report: Vec<u8>, chain: &[u8]) -> Self {
        FakeGpu {
            report,
            chain: chain.to_vec(),
            report_size: None,
            chain_size: None,
            fail_report: None,
        }
    }
}

struct FakeNvml {
    state: ConfComputeSystemState,
    gpus: Vec<FakeGpu>,
    /// The nonces the caller put in the report structures, by call.
    nonces: Mutex<Vec<[u8; 32]>>,
}

impl FakeNvml {
    fn new(gpus: Vec<FakeGpu>) -> Self {
        FakeNvml {
            state: ConfComputeSystemState {
                environment: NVML_CC_SYSTEM_ENVIRONMENT_PROD,
                cc_feature: NVML_CC_SYSTEM_FEATURE_ENABLED,
                dev_tools_mode: NVML_CC_SYSTEM_DEVTOOLS_MODE_OFF,
            },
            gpus,
            nonces: Mutex::new(Vec::new()),
        }
    }

    fn gpu(&self, index: u32, call: &'static str) -> Result<&FakeGpu, NvmlCallError> {
        self.gpus.get(index as usize).ok_or(NvmlCallError {
            call,
            code: 2,
            message: "Invalid Argument".into(),
        })
    }
}

impl NvmlApi for FakeNvml {
    fn cc_state(&self) -> Result<ConfComputeSystemState, NvmlCallError> {
        Ok(self.state)
    }

    fn device_count(&self) -> Result<u32, NvmlCallError> {
        Ok(self.gpus.len() as u32)
    }

    fn attestation_report(
        &self,
        index: u32,
        report: &mut ConfComputeGpuAttestationReport,
    ) -> Result<(), NvmlCallError> {
        let call = "nvmlDeviceGetConfComputeGpuAttestationReport";
        let gpu = self.gpu(index, call)?;
        self.nonces.lock().unwrap().push(report.nonce);
        if let Some(code) = gpu.fail_report {
            return Err(NvmlCallError {
                call,
                code,
                message: "Not Supported".into(),
            });
        }
        report.attestation_report[..gpu.report.len()].copy_from_slice(&gpu.report);
        report.attestation_report_size = gpu.report_size.unwrap_or(gpu.report.len() as u32);
        Ok(())
    }

    fn certificate(
        &self,
        index: u32,
        cert: &mut ConfComputeGpuCertificate,
    ) -> Result<(), NvmlCallError> {
        let gpu = self.gpu(index, "nvmlDeviceGetConfComputeGpuCertificate")?;
        cert.attestation_cert_chain[..gpu.chain.len()].copy_from_slice(&gpu.chain);
        cert.attestation_cert_chain_size = gpu.chain_size.unwrap_or(gpu.chain.len() as u32);
        Ok(())
    }
}

/// A source over the fake, so that [`collect_checked`] (what the runtime calls) runs on it.
struct FakeSource(FakeNvml, usize);

impl GpuEvidenceSource for FakeSource {
    fn describe(&self) -> String {
        "fake NVML".into()
    }
    fn collect(&self, nonce: [u8; 32]) -> Result<Vec<GpuEvidence>, GpuError> {
        collect_with(&self.0, self.1, nonce)
    }
}

#[test]
fn repr_c_layouts_are_nvml_h_s() {
    // sizeof/offsetof printed by a C compiler for nvml.h (NVIDIA/go-nvml pkg/nvml/nvml.h
    // at 2f9e261): state 12; certificate 9224, attestationCertChain at 4104; report
    // 12332, nonce at 12, attestationReport at 44, cecAttestationReport at 8236.
    assert_eq!(size_of::<ConfComputeSystemState>(), 12);
    assert_eq!(size_of::<ConfComputeGpuCertificate>(), 9224);
    assert_eq!(
        offset_of!(ConfComputeGpuCertificate, attestation_cert_chain),
        4104
    );
    assert_eq!(size_of::<ConfComputeGpuAttestationReport>(), 12332);
    assert_eq!(offset_of!(ConfComputeGpuAttestationReport, nonce), 12);
    assert_eq!(
        offset_of!(ConfComputeGpuAttestationReport, attestation_report),
        44
    );
    assert_eq!(
        offset_of!(ConfComputeGpuAttestationReport, cec_attestation_report),
        8236
    );
    assert_eq!(size_of::<NvmlReturn>(), 4);
}

#[test]
fn replayed_real_evidence_is_collected_byte_for_byte_and_verifies() {
    let report = unhex(SAMPLE_REPORT);
    assert_eq!(report.len(), 4117);
    let nvml = FakeNvml::new(vec![FakeGpu::new(report.clone(), SAMPLE_CHAIN)]);
    let source = FakeSource(nvml, 1);
    let gpus = collect_checked(&source, sample_nonce()).unwrap();
    assert_eq!(gpus.len(), 1);
    assert_eq!(gpus[0].evidence, report);
    assert_eq!(gpus[0].chain_pem, SAMPLE_CHAIN);
    // The nonce went to NVML in the structure.
    assert_eq!(*source.0.nonces.lock().unwrap(), vec![sample_nonce()]);
    // What was collected is what the verifiers accept: the chain as NVML gives it (root
    // included) to NVIDIA's pinned root, the signature, and the nonce.
    let chain = attestation::nvidia::chain_from_pem(&gpus[0].chain_pem).unwrap();
    assert_eq!(chain.len(), 5);
    let v = attestation::nvidia::verify(
        &gpus[0].evidence,
        &chain,
        attestation::nvidia::ExpectedNonce::Exactly(sample_nonce()),
        &attestation::nvidia::NvidiaTrustAnchors::nvidia(),
        attestation::time::Timestamp::from_unix(1_735_689_600),
    )
    .unwrap();
    assert_eq!(v.claims().driver_version.as_deref(), Some("550.90.07"));
}

#[test]
fn two_gpus_in_nvml_order_each_asked_with_the_nonce() {
    let nvml = FakeNvml::new(vec![
        FakeGpu::new(unhex(SAMPLE_REPORT), SAMPLE_CHAIN),
        FakeGpu::new(unhex(COCO_REPORT), COCO_CHAIN),
    ]);
    let nonce = [7; 32];
    let gpus = collect_with(&nvml, 2, nonce).unwrap();
    assert_eq!(gpus[0].evidence, unhex(SAMPLE_REPORT));
    assert_eq!(gpus[1].evidence, unhex(COCO_REPORT));
    assert_eq!(gpus[1].chain_pem, COCO_CHAIN);
    assert_eq!(*nvml.nonces.lock().unwrap(), vec![nonce, nonce]);
    // The replayed evidence answers the vectors' nonces, not this one: the runtime's own
    // check refuses to bind it.
    let err = collect_checked(&FakeSource(nvml, 2), nonce).unwrap_err();
    assert!(matches!(err, GpuError::Device { index: 0, .. }), "{err}");
}

#[test]
fn cc_off_devtools_and_simulation_environments_are_refused() {
    let gpu = FakeGpu::new(unhex(SAMPLE_REPORT), SAMPLE_CHAIN);
    let mut nvml = FakeNvml::new(vec![gpu]);
    nvml.state.cc_feature = 0;
    assert_eq!(
        collect_with(&nvml, 1, sample_nonce()).unwrap_err(),
        GpuError::CcOff { cc_feature: 0 }
    );
    nvml.state.cc_feature = NVML_CC_SYSTEM_FEATURE_ENABLED;
    nvml.state.dev_tools_mode = 1;
    assert_eq!(
        collect_with(&nvml, 1, sample_nonce()).unwrap_err(),
        GpuError::CcDevTools { dev_tools_mode: 1 }
    );
    nvml.state.dev_tools_mode = NVML_CC_SYSTEM_DEVTOOLS_MODE_OFF;
    nvml.state.environment = 1;
    assert_eq!(
        collect_with(&nvml, 1, sample_nonce()).unwrap_err(),
        GpuError::CcNotProduction { environment: 1 }
    );
    // No device was asked for evidence while the state was wrong.
    assert!(nvml.nonces.lock().unwrap().is_empty());
}

#[test]
fn another_gpu_count_than_asked_is_refused() {
    let gpu = FakeGpu::new(unhex(SAMPLE_REPORT), SAMPLE_CHAIN);
    let nvml = FakeNvml::new(vec![gpu.clone(), gpu]);
    assert_eq!(
        collect_with(&nvml, 1, sample_nonce()).unwrap_err(),
        GpuError::Count {
            expected: 1,
            found: 2
        }
    );
    assert_eq!(
        collect_with(&nvml, 3, sample_nonce()).unwrap_err(),
        GpuError::Count {
            expected: 3,
            found: 2
        }
    );
}

#[test]
fn size_fields_beyond_their_arrays_or_zero_are_refused() {
    let base = FakeGpu::new(unhex(SAMPLE_REPORT), SAMPLE_CHAIN);
    let cases = [
        (
            FakeGpu {
                report_size: Some(0x2001),
                ..base.clone()
            },
            "attestationReportSize",
            0x2001,
            0x2000,
        ),
        (
            FakeGpu {
                report_size: Some(0),
                ..base.clone()
            },
            "attestationReportSize",
            0,
            0x2000,
        ),
        (
            FakeGpu {
                chain_size: Some(u32::MAX),
                ..base.clone()
            },
            "attestationCertChainSize",
            u32::MAX,
            0x1400,
        ),
    ];
    for (gpu, field, size, capacity) in cases {
        let nvml = FakeNvml::new(vec![gpu]);
        assert_eq!(
            collect_with(&nvml, 1, sample_nonce()).unwrap_err(),
            GpuError::SizeOutOfRange {
                index: 0,
                field,
                size,
                capacity
            }
        );
    }
}

#[test]
fn a_failing_nvml_call_is_reported_with_its_gpu_call_and_code() {
    let mut gpu = FakeGpu::new(unhex(SAMPLE_REPORT), SAMPLE_CHAIN);
    gpu.fail_report = Some(NVML_ERROR_NOT_SUPPORTED);
    let nvml = FakeNvml::new(vec![gpu]);
    let err = collect_with(&nvml, 1, sample_nonce()).unwrap_err();
    assert_eq!(
        err,
        GpuError::Nvml {
            index: Some(0),
            call: "nvmlDeviceGetConfComputeGpuAttestationReport",
            code: 3,
            message: "Not Supported".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "GPU 0: nvmlDeviceGetConfComputeGpuAttestationReport failed: Not Supported (NVML code 3)"
    );
}

#[test]
fn the_chain_is_taken_as_pem_or_converted_from_der_and_garbage_is_refused() {
    // PEM with NUL padding after it (size field covering the padding).
    let mut padded = SAMPLE_CHAIN.to_vec();
    padded.extend_from_slice(&[0; 16]);
    assert_eq!(chain_to_pem(&padded).unwrap(), SAMPLE_CHAIN);
    // Concatenated DER: converted, and the same certificates come back.
    let ders = attestation::nvidia::chain_from_pem(SAMPLE_CHAIN).unwrap();
    let der: Vec<u8> = ders.concat();
    let pem = chain_to_pem(&der).unwrap();
    assert_eq!(attestation::nvidia::chain_from_pem(&pem).unwrap(), ders);
    let mut der_padded = der.clone();
    der_padded.extend_from_slice(&[0; 16]);
    assert_eq!(chain_to_pem(&der_padded).unwrap(), pem);
    // A DER chain cut short, or neither form.
    assert!(chain_to_pem(&der[..der.len() - 1])
        .unwrap_err()
        .contains("malformed element"));
    assert!(chain_to_pem(b"hello")
        .unwrap_err()
        .contains("neither PEM nor DER"));
    assert!(chain_to_pem(&[0; 8])
        .unwrap_err()
        .contains("neither PEM nor DER"));
    // Through collection: a DER chain from NVML becomes PEM in the evidence.
    let nvml = FakeNvml::new(vec![FakeGpu::new(unhex(SAMPLE_REPORT), &der)]);
    let gpus = collect_with(&nvml, 1, sample_nonce()).unwrap();
    assert_eq!(
        attestation::nvidia::chain_from_pem(&gpus[0].chain_pem).unwrap(),
        ders
    );
    let nvml = FakeNvml::new(vec![FakeGpu::new(unhex(SAMPLE_REPORT), b"garbage")]);
    assert!(matches!(
        collect_with(&nvml, 1, sample_nonce()).unwrap_err(),
        GpuError::Device { index: 0, .. }
    ));
}
