//! Intel TDX DCAP quotes (v4 with a TD10 body; v5 with a TD10 or TD15
//! body) signed by a deterministic fake attestation key, with a QE report
//! signed by the fake PCK leaf and a PEM certification chain.

use crate::collateral::{
    DEFAULT_QE_ATTRIBUTES, DEFAULT_QE_ISVPRODID, DEFAULT_QE_ISVSVN, DEFAULT_QE_MRSIGNER,
    DEFAULT_TEE_TCB_SVN,
};
use crate::intel::{FakeIntel, FakePckLeaf};
use crate::keys::FakeP256Key;
use crate::x509;
use sha2::{Digest, Sha256};

/// Intel's QE vendor id, which verifiers require in the header.
pub const INTEL_QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9A, 0x72, 0x33, 0xF7, 0x9C, 0x4C, 0xA9, 0x94, 0x0A, 0x0D, 0xB3, 0x95, 0x7F, 0x06, 0x07,
];
/// TD attributes bit 0: TD under debug.
pub const TD_ATTR_DEBUG: u64 = 1 << 0;
/// TD attributes bit 28: SEPT_VE_DISABLE (dcap-qvl requires it set).
pub const TD_ATTR_SEPT_VE_DISABLE: u64 = 1 << 28;
/// TD attributes bit 29: migratable.
pub const TD_ATTR_MIGRATABLE: u64 = 1 << 29;
/// Label of the default attestation key.
pub const DEFAULT_ATTESTATION_KEY_LABEL: &str = "intel-tdx-attestation-key";

/// Quote version and report body layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TdxQuoteFormat {
    /// Version 4, TD 1.0 report body (584 bytes).
    V4Td10,
    /// Version 5, body type 2 (TD 1.0 report, 584 bytes).
    V5Td10,
    /// Version 5, body type 3 (TD 1.5 report, 648 bytes).
    V5Td15,
}

/// The SGX enclave report of the quoting enclave (384 bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QeReport {
    pub cpu_svn: [u8; 16],
    pub misc_select: u32,
    pub attributes: [u8; 16],
    pub mr_enclave: [u8; 32],
    pub mr_signer: [u8; 32],
    pub isv_prod_id: u16,
    pub isv_svn: u16,
    /// `None`: SHA-256(attestation key || QE auth data) || 32 zero bytes.
    pub report_data: Option<[u8; 64]>,
}

impl Default for QeReport {
    fn default() -> Self {
        QeReport {
            cpu_svn: crate::intel::DEFAULT_SGX_TCB_COMPONENTS,
            misc_select: 0,
            attributes: DEFAULT_QE_ATTRIBUTES,
            mr_enclave: [0x3E; 32],
            mr_signer: DEFAULT_QE_MRSIGNER,
            isv_prod_id: DEFAULT_QE_ISVPRODID,
            isv_svn: DEFAULT_QE_ISVSVN,
            report_data: None,
        }
    }
}

impl QeReport {
    /// The 384-byte SGX REPORT body.
    pub fn to_bytes(&self, report_data: &[u8; 64]) -> Vec<u8> {
        let mut out = Vec::with_capacity(384);
        out.extend_from_slice(&self.cpu_svn);
        out.extend_from_slice(&self.misc_select.to_le_bytes());
        out.extend_from_slice(&[0u8; 28]);
        out.extend_from_slice(&self.attributes);
        out.extend_from_slice(&self.mr_enclave);
        out.extend_from_slice(&[0u8; 32]);
        out.extend_from_slice(&self.mr_signer);
        out.extend_from_slice(&[0u8; 96]);
        out.extend_from_slice(&self.isv_prod_id.to_le_bytes());
        out.extend_from_slice(&self.isv_svn.to_le_bytes());
        out.extend_from_slice(&[0u8; 60]);
        out.extend_from_slice(report_data);
        debug_assert_eq!(out.len(), 384);
        out
    }
}

/// Builder for TDX quotes. Defaults give a quote that dcap-qvl accepts
/// with status UpToDate at [`crate::DEFAULT_AT`] together with the default
/// [`crate::collateral::TdxCollateralBuilder`]: version 4, TEE_TCB_SVN
/// [`DEFAULT_TEE_TCB_SVN`], zero MRSIGNERSEAM and SEAMATTRIBUTES,
/// TD attributes SEPT_VE_DISABLE only, XFAM 0x61AE7, QE report matching the
/// default QE identity, 32-byte QE auth data 0..31, certification data
/// type 5 with the chain PCK leaf, PCK Platform CA, root.
#[derive(Clone, Debug)]
pub struct TdxQuoteBuilder {
    pub format: TdxQuoteFormat,
    /// Header overrides.
    pub version: Option<u16>,
    pub attestation_key_type: u16,
    pub tee_type: u32,
    pub qe_svn: u16,
    pub pce_svn: u16,
    pub qe_vendor_id: [u8; 16],
    pub user_data: [u8; 20],
    /// v5 body type / size overrides.
    pub body_type: Option<u16>,
    pub body_size: Option<u32>,
    /// TD report body.
    pub tee_tcb_svn: [u8; 16],
    pub mr_seam: [u8; 48],
    pub mr_signer_seam: [u8; 48],
    pub seam_attributes: [u8; 8],
    pub td_attributes: u64,
    pub xfam: u64,
    pub mr_td: [u8; 48],
    pub mr_config_id: [u8; 48],
    pub mr_owner: [u8; 48],
    pub mr_owner_config: [u8; 48],
    pub rtmr: [[u8; 48]; 4],
    pub report_data: [u8; 64],
    /// TD 1.5 only.
    pub tee_tcb_svn2: Option<[u8; 16]>,
    pub mr_service_td: [u8; 48],
    /// Signature data.
    pub attestation_key_label: String,
    pub qe_report: QeReport,
    pub qe_auth_data: Vec<u8>,
    /// Outer certification data type (6 = QE report certification data).
    pub outer_cert_type: u16,
    /// Inner certification data type (5 = PEM PCK chain).
    pub inner_cert_type: u16,
    /// Replace the PEM chain (default: PCK leaf, PCK Platform CA, root).
    pub cert_chain_pem: Option<String>,
    pub break_qe_report_binding: bool,
    pub corrupt_quote_signature: bool,
    pub corrupt_qe_report_signature: bool,
    /// Sign the QE report with a key from this label instead of the PCK key.
    pub qe_report_signer_label: Option<String>,
    pub trailing_bytes: Vec<u8>,
}

impl Default for TdxQuoteBuilder {
    fn default() -> Self {
        let mut user_data = [0u8; 20];
        user_data[..16].copy_from_slice(&Sha256::digest(b"veritee-fake/qe-id")[..16]);
        TdxQuoteBuilder {
            format: TdxQuoteFormat::V4Td10,
            version: None,
            attestation_key_type: 2,
            tee_type: 0x81,
            qe_svn: 0,
            pce_svn: 0,
            qe_vendor_id: INTEL_QE_VENDOR_ID,
            user_data,
            body_type: None,
            body_size: None,
            tee_tcb_svn: DEFAULT_TEE_TCB_SVN,
            mr_seam: [0x5E; 48],
            mr_signer_seam: [0; 48],
            seam_attributes: [0; 8],
            td_attributes: TD_ATTR_SEPT_VE_DISABLE,
            xfam: 0x0006_1AE7,
            mr_td: [0x7D; 48],
            mr_config_id: [0; 48],
            mr_owner: [0; 48],
            mr_owner_config: [0; 48],
            rtmr: [[0x01; 48], [0x02; 48], [0x03; 48], [0; 48]],
            report_data: [0; 64],
            tee_tcb_svn2: None,
            mr_service_td: [0; 48],
            attestation_key_label: DEFAULT_ATTESTATION_KEY_LABEL.to_owned(),
            qe_report: QeReport::default(),
            qe_auth_data: (0u8..32).collect(),
            outer_cert_type: 6,
            inner_cert_type: 5,
            cert_chain_pem: None,
            break_qe_report_binding: false,
            corrupt_quote_signature: false,
            corrupt_qe_report_signature: false,
            qe_report_signer_label: None,
            trailing_bytes: Vec::new(),
        }
    }
}

impl TdxQuoteBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn format(mut self, format: TdxQuoteFormat) -> Self {
        self.format = format;
        self
    }

    pub fn report_data(mut self, data: [u8; 64]) -> Self {
        self.report_data = data;
        self
    }

    pub fn mr_td(mut self, mr_td: [u8; 48]) -> Self {
        self.mr_td = mr_td;
        self
    }

    pub fn mr_config_id(mut self, mr_config_id: [u8; 48]) -> Self {
        self.mr_config_id = mr_config_id;
        self
    }

    pub fn rtmr(mut self, index: usize, value: [u8; 48]) -> Self {
        self.rtmr[index] = value;
        self
    }

    pub fn tee_tcb_svn(mut self, svn: [u8; 16]) -> Self {
        self.tee_tcb_svn = svn;
        self
    }

    pub fn td_attributes(mut self, attributes: u64) -> Self {
        self.td_attributes = attributes;
        self
    }

    /// Set or clear the TD debug attribute (bit 0).
    pub fn debug(mut self, on: bool) -> Self {
        self.td_attributes = if on {
            self.td_attributes | TD_ATTR_DEBUG
        } else {
            self.td_attributes & !TD_ATTR_DEBUG
        };
        self
    }

    pub fn qe_report(mut self, qe_report: QeReport) -> Self {
        self.qe_report = qe_report;
        self
    }

    pub fn break_qe_report_binding(mut self) -> Self {
        self.break_qe_report_binding = true;
        self
    }

    pub fn corrupt_quote_signature(mut self) -> Self {
        self.corrupt_quote_signature = true;
        self
    }

    pub fn corrupt_qe_report_signature(mut self) -> Self {
        self.corrupt_qe_report_signature = true;
        self
    }

    pub fn trailing_bytes(mut self, bytes: &[u8]) -> Self {
        self.trailing_bytes = bytes.to_vec();
        self
    }

    /// The deterministic attestation key this builder signs with.
    pub fn attestation_key(&self) -> FakeP256Key {
        FakeP256Key::from_label(&self.attestation_key_label)
    }

    fn header(&self) -> Vec<u8> {
        let version = self.version.unwrap_or(match self.format {
            TdxQuoteFormat::V4Td10 => 4,
            _ => 5,
        });
        let mut out = Vec::with_capacity(48);
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&self.attestation_key_type.to_le_bytes());
        out.extend_from_slice(&self.tee_type.to_le_bytes());
        out.extend_from_slice(&self.qe_svn.to_le_bytes());
        out.extend_from_slice(&self.pce_svn.to_le_bytes());
        out.extend_from_slice(&self.qe_vendor_id);
        out.extend_from_slice(&self.user_data);
        out
    }

    /// The TD report body (584 bytes for TD10, 648 for TD15).
    pub fn body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(648);
        out.extend_from_slice(&self.tee_tcb_svn);
        out.extend_from_slice(&self.mr_seam);
        out.extend_from_slice(&self.mr_signer_seam);
        out.extend_from_slice(&self.seam_attributes);
        out.extend_from_slice(&self.td_attributes.to_le_bytes());
        out.extend_from_slice(&self.xfam.to_le_bytes());
        out.extend_from_slice(&self.mr_td);
        out.extend_from_slice(&self.mr_config_id);
        out.extend_from_slice(&self.mr_owner);
        out.extend_from_slice(&self.mr_owner_config);
        for rtmr in &self.rtmr {
            out.extend_from_slice(rtmr);
        }
        out.extend_from_slice(&self.report_data);
        if self.format == TdxQuoteFormat::V5Td15 {
            out.extend_from_slice(&self.tee_tcb_svn2.unwrap_or(self.tee_tcb_svn));
            out.extend_from_slice(&self.mr_service_td);
        }
        out
    }

    /// Assemble and sign the quote with `pck` as the QE report signer.
    pub fn build(&self, intel: &FakeIntel, pck: &FakePckLeaf) -> Vec<u8> {
        let attestation_key = self.attestation_key();
        let body = self.body();
        let mut signed = self.header();
        if self.format != TdxQuoteFormat::V4Td10 {
            let body_type = self.body_type.unwrap_or(match self.format {
                TdxQuoteFormat::V5Td15 => 3,
                _ => 2,
            });
            signed.extend_from_slice(&body_type.to_le_bytes());
            let size = self.body_size.unwrap_or(body.len() as u32);
            signed.extend_from_slice(&size.to_le_bytes());
        }
        signed.extend_from_slice(&body);

        let mut quote_signature = attestation_key.sign_raw(&signed);
        if self.corrupt_quote_signature {
            quote_signature[5] ^= 0x01;
        }
        let attest_xy = attestation_key.public_xy();

        let qe_report_data = self.qe_report.report_data.unwrap_or_else(|| {
            let mut hasher = Sha256::new();
            hasher.update(attest_xy);
            hasher.update(&self.qe_auth_data);
            let mut data = [0u8; 64];
            data[..32].copy_from_slice(&hasher.finalize());
            data
        });
        let mut qe_report_data = qe_report_data;
        if self.break_qe_report_binding {
            qe_report_data[0] ^= 0x01;
        }
        let qe_report = self.qe_report.to_bytes(&qe_report_data);
        let qe_signer = self
            .qe_report_signer_label
            .as_deref()
            .map(FakeP256Key::from_label)
            .unwrap_or_else(|| pck.key.clone());
        let mut qe_report_signature = qe_signer.sign_raw(&qe_report);
        if self.corrupt_qe_report_signature {
            qe_report_signature[5] ^= 0x01;
        }

        let chain = self.cert_chain_pem.clone().unwrap_or_else(|| {
            x509::certificates_pem(&[&pck.der, intel.pck_platform_ca_der(), intel.root_der()])
        });

        let mut inner = Vec::new();
        inner.extend_from_slice(&qe_report);
        inner.extend_from_slice(&qe_report_signature);
        inner.extend_from_slice(&(self.qe_auth_data.len() as u16).to_le_bytes());
        inner.extend_from_slice(&self.qe_auth_data);
        inner.extend_from_slice(&self.inner_cert_type.to_le_bytes());
        inner.extend_from_slice(&(chain.len() as u32).to_le_bytes());
        inner.extend_from_slice(chain.as_bytes());

        let mut signature_data = Vec::new();
        signature_data.extend_from_slice(&quote_signature);
        signature_data.extend_from_slice(&attest_xy);
        signature_data.extend_from_slice(&self.outer_cert_type.to_le_bytes());
        signature_data.extend_from_slice(&(inner.len() as u32).to_le_bytes());
        signature_data.extend_from_slice(&inner);

        let mut quote = signed;
        quote.extend_from_slice(&(signature_data.len() as u32).to_le_bytes());
        quote.extend_from_slice(&signature_data);
        quote.extend_from_slice(&self.trailing_bytes);
        quote
    }
}
