//! TDX DCAP quote layout (versions 4 and 5): typed parsing by declared lengths.
//!
//! Parsing checks structure only (versions, types, sizes); signatures are checked in
//! [`super::verify`]. Every read is bounds-checked and names the field and offset it
//! needed, so a truncated or lying quote gives a precise `Truncated`/`InvalidField`.

use crate::reason::{reject, Reason, Rejection};
use crate::x509;

/// Quote header length (all versions).
pub const HEADER_LEN: usize = 48;
/// TD 1.0 report body length.
pub const TD10_BODY_LEN: usize = 584;
/// TD 1.5 report body length (TD 1.0 + TEE_TCB_SVN2 + MRSERVICETD).
pub const TD15_BODY_LEN: usize = 648;
/// SGX enclave report (the QE report) length.
pub const QE_REPORT_LEN: usize = 384;
/// Attestation key type 2: ECDSA-256 with P-256.
pub const ATT_KEY_TYPE_ECDSA_P256: u16 = 2;
/// TEE type of TDX quotes.
pub const TEE_TYPE_TDX: u32 = 0x81;

const BODY_TYPE_TD10: u16 = 2;
const BODY_TYPE_TD15: u16 = 3;
const CERT_TYPE_PCK_CHAIN: u16 = 5;
const CERT_TYPE_QE_REPORT: u16 = 6;

/// The quote header (48 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteHeader {
    pub version: u16,
    pub att_key_type: u16,
    pub tee_type: u32,
    /// Bytes 8..12: reserved in v4/v5 (QE SVN and PCE SVN in v3); signed, not interpreted.
    pub reserved: [u8; 4],
    pub qe_vendor_id: [u8; 16],
    pub user_data: [u8; 20],
}

/// Which TD report body the quote carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    /// TD 1.0 report (584 bytes): every v4 quote, v5 body type 2.
    Td10,
    /// TD 1.5 report (648 bytes): v5 body type 3.
    Td15,
}

impl BodyType {
    pub fn as_str(self) -> &'static str {
        match self {
            BodyType::Td10 => "TD10",
            BodyType::Td15 => "TD15",
        }
    }
}

/// The TD report body. `tee_tcb_svn2` and `mr_service_td` are present for TD 1.5 only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdReport {
    pub tee_tcb_svn: [u8; 16],
    pub mr_seam: [u8; 48],
    pub mr_signer_seam: [u8; 48],
    pub seam_attributes: [u8; 8],
    pub td_attributes: [u8; 8],
    pub xfam: [u8; 8],
    pub mr_td: [u8; 48],
    pub mr_config_id: [u8; 48],
    pub mr_owner: [u8; 48],
    pub mr_owner_config: [u8; 48],
    pub rtmr: [[u8; 48]; 4],
    pub report_data: [u8; 64],
    pub tee_tcb_svn2: Option<[u8; 16]>,
    pub mr_service_td: Option<[u8; 48]>,
}

impl TdReport {
    /// TD_ATTRIBUTES bit 0 (DEBUG): the host can read the TD's state and memory.
    pub fn debug(&self) -> bool {
        self.td_attributes[0] & 0x01 != 0
    }

    /// Any TUD bit (TD_ATTRIBUTES bits 7:0: debug, profiling) set: Intel calls such a TD
    /// untrusted, so a strict policy should treat this like `debug()`.
    pub fn under_debug(&self) -> bool {
        self.td_attributes[0] != 0
    }

    /// TD_ATTRIBUTES bit 28 (SEPT_VE_DISABLE).
    pub fn sept_ve_disable(&self) -> bool {
        u64::from_le_bytes(self.td_attributes) & (1 << 28) != 0
    }

    /// The TDX module version (`TEE_TCB_SVN[1]`); 0 means none is reported (TDX 1.0 style).
    pub fn tdx_module_version(&self) -> u8 {
        self.tee_tcb_svn[1]
    }

    /// The TDX module SVN (`TEE_TCB_SVN[0]`).
    pub fn tdx_module_isvsvn(&self) -> u8 {
        self.tee_tcb_svn[0]
    }
}

/// The quoting enclave's SGX report (384 bytes), signed by the PCK key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QeReport {
    pub cpu_svn: [u8; 16],
    pub misc_select: u32,
    pub attributes: [u8; 16],
    pub mr_enclave: [u8; 32],
    pub mr_signer: [u8; 32],
    pub isv_prod_id: u16,
    pub isv_svn: u16,
    pub report_data: [u8; 64],
    /// The 384 bytes as received: the QE report signature covers exactly these.
    pub raw: [u8; QE_REPORT_LEN],
}

/// The quote's signature data (certification data type 6 with a nested type 5 PEM chain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteSignatureData {
    /// ECDSA P-256 signature (raw r||s) over header || [v5 body descriptor] || body.
    pub signature: [u8; 64],
    /// The attestation public key (raw x||y).
    pub attestation_key: [u8; 64],
    pub qe_report: QeReport,
    /// ECDSA P-256 signature (raw r||s) of the QE report by the PCK leaf key.
    pub qe_report_signature: [u8; 64],
    pub qe_auth_data: Vec<u8>,
    /// The PCK chain PEM exactly as carried (may end with NUL padding).
    pub pck_chain_pem: Vec<u8>,
    /// The PCK chain as DER, in quote order (leaf, PCK Platform/Processor CA, root).
    pub pck_chain_der: Vec<Vec<u8>>,
}

/// A parsed TDX quote (v4 or v5, TD 1.0 or TD 1.5 body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub header: QuoteHeader,
    pub body: TdReport,
    pub signature: QuoteSignatureData,
    body_type: BodyType,
    /// header || [v5 descriptor] || body, as received: the quote signature's message.
    signed: Vec<u8>,
    /// Bytes after the signature data (zero padding in real quotes).
    trailing: usize,
}

/// Cheap sniffing for input recognition: version 4/5, attestation key type 2, TEE type 0x81.
pub fn looks_like_tdx_quote(bytes: &[u8]) -> bool {
    let mut r = Reader::new(bytes, 0);
    matches!(
        (r.u16("version"), r.u16("att_key_type"), r.u32("tee_type")),
        (Ok(4 | 5), Ok(ATT_KEY_TYPE_ECDSA_P256), Ok(TEE_TYPE_TDX))
    ) && bytes.len() >= HEADER_LEN
}

impl Quote {
    /// Parse a TDX quote. Bytes after the signature data are tolerated (real quotes are
    /// zero-padded, one public sample has text appended) and counted in
    /// [`Quote::trailing_bytes`]; they are covered by no signature.
    pub fn parse(bytes: &[u8]) -> Result<Quote, Rejection> {
        let mut r = Reader::new(bytes, 0);
        let version = r.u16("header.version")?;
        if version != 4 && version != 5 {
            return reject(
                Reason::UnsupportedVersion,
                format!("TDX quote version {version} (supported: 4, 5)"),
            );
        }
        let att_key_type = r.u16("header.att_key_type")?;
        if att_key_type != ATT_KEY_TYPE_ECDSA_P256 {
            return reject(
                Reason::InvalidField,
                format!("attestation key type {att_key_type} (only 2 = ECDSA P-256)"),
            );
        }
        let tee_type = r.u32("header.tee_type")?;
        if tee_type != TEE_TYPE_TDX {
            return reject(
                Reason::InvalidField,
                format!("TEE type {tee_type:#x} is not TDX (0x81)"),
            );
        }
        let header = QuoteHeader {
            version,
            att_key_type,
            tee_type,
            reserved: r.array("header.reserved")?,
            qe_vendor_id: r.array("header.qe_vendor_id")?,
            user_data: r.array("header.user_data")?,
        };

        let body_type = if version == 5 {
            let body_type = r.u16("v5 body descriptor type")?;
            let body_size = r.u32("v5 body descriptor size")?;
            let (kind, expected) = match body_type {
                BODY_TYPE_TD10 => (BodyType::Td10, TD10_BODY_LEN),
                BODY_TYPE_TD15 => (BodyType::Td15, TD15_BODY_LEN),
                other => {
                    return reject(
                        Reason::InvalidField,
                        format!("v5 body type {other} (supported: 2 = TD10, 3 = TD15)"),
                    )
                }
            };
            if usize::try_from(body_size).ok() != Some(expected) {
                return reject(
                    Reason::InvalidField,
                    format!(
                        "v5 body size {body_size} does not match body type {body_type} ({expected} bytes)"
                    ),
                );
            }
            kind
        } else {
            BodyType::Td10
        };
        let body = parse_body(&mut r, body_type)?;
        let signed_len = r.pos;
        let signed = bytes
            .get(..signed_len)
            .ok_or_else(|| Rejection::new(Reason::Truncated, "signed region"))?
            .to_vec();

        let sig_len = r.u32("signature data length")?;
        let sig_offset = r.pos;
        let sig_data = r.take(to_usize(sig_len), "signature data")?;
        let signature = parse_signature_data(sig_data, sig_offset)?;
        let trailing = bytes.len().saturating_sub(r.pos);

        Ok(Quote {
            header,
            body,
            signature,
            body_type,
            signed,
            trailing,
        })
    }

    /// TD 1.0 or TD 1.5 body.
    pub fn body_type(&self) -> BodyType {
        self.body_type
    }

    /// The exact bytes the quote signature covers: header || [v5 descriptor] || body.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.signed
    }

    /// Length of [`Quote::signed_bytes`] (632 for v4, 638 or 702 for v5).
    pub fn signed_len(&self) -> usize {
        self.signed.len()
    }

    /// Number of bytes after the signature data (covered by no signature).
    pub fn trailing_bytes(&self) -> usize {
        self.trailing
    }

    /// The PCK certificate chain (DER), in quote order: leaf, PCK CA, root.
    pub fn pck_chain_der(&self) -> Vec<Vec<u8>> {
        self.signature.pck_chain_der.clone()
    }
}

fn parse_body(r: &mut Reader<'_>, kind: BodyType) -> Result<TdReport, Rejection> {
    let mut body = TdReport {
        tee_tcb_svn: r.array("body.tee_tcb_svn")?,
        mr_seam: r.array("body.mr_seam")?,
        mr_signer_seam: r.array("body.mr_signer_seam")?,
        seam_attributes: r.array("body.seam_attributes")?,
        td_attributes: r.array("body.td_attributes")?,
        xfam: r.array("body.xfam")?,
        mr_td: r.array("body.mr_td")?,
        mr_config_id: r.array("body.mr_config_id")?,
        mr_owner: r.array("body.mr_owner")?,
        mr_owner_config: r.array("body.mr_owner_config")?,
        rtmr: [
            r.array("body.rtmr0")?,
            r.array("body.rtmr1")?,
            r.array("body.rtmr2")?,
            r.array("body.rtmr3")?,
        ],
        report_data: r.array("body.report_data")?,
        tee_tcb_svn2: None,
        mr_service_td: None,
    };
    if kind == BodyType::Td15 {
        body.tee_tcb_svn2 = Some(r.array("body.tee_tcb_svn2")?);
        body.mr_service_td = Some(r.array("body.mr_service_td")?);
    }
    Ok(body)
}

/// Signature data: sig | attestation key | cert data type 6 { QE report | QE report sig |
/// QE auth data | cert data type 5 { PEM chain } }. Each declared size must be filled
/// exactly: bytes inside a signed-over length that no field claims are rejected.
fn parse_signature_data(data: &[u8], base: usize) -> Result<QuoteSignatureData, Rejection> {
    let mut r = Reader::new(data, base);
    let signature = r.array("quote signature")?;
    let attestation_key = r.array("attestation key")?;
    let cert_type = r.u16("certification data type")?;
    if cert_type != CERT_TYPE_QE_REPORT {
        return reject(
            Reason::InvalidField,
            format!(
                "certification data type {cert_type} at offset {} (only 6 = QE report certification data)",
                r.pos_abs() - 2
            ),
        );
    }
    let cert_size = r.u32("certification data size")?;
    let cert_offset = r.pos_abs();
    let cert_data = r.take(to_usize(cert_size), "QE report certification data")?;
    r.finish("signature data")?;

    let mut c = Reader::new(cert_data, cert_offset);
    let qe_raw: [u8; QE_REPORT_LEN] = c.array("QE report")?;
    let qe_report = parse_qe_report(qe_raw)?;
    let qe_report_signature = c.array("QE report signature")?;
    let auth_len = c.u16("QE auth data length")?;
    let qe_auth_data = c.take(usize::from(auth_len), "QE auth data")?.to_vec();
    let inner_type = c.u16("PCK certification data type")?;
    if inner_type != CERT_TYPE_PCK_CHAIN {
        return reject(
            Reason::InvalidField,
            format!(
                "nested certification data type {inner_type} at offset {} (only 5 = PCK chain PEM)",
                c.pos_abs() - 2
            ),
        );
    }
    let pem_size = c.u32("PCK chain size")?;
    let pck_chain_pem = c.take(to_usize(pem_size), "PCK chain PEM")?.to_vec();
    c.finish("QE report certification data")?;

    let pck_chain_der = x509::certs_from_pem(&pck_chain_pem)?;
    if pck_chain_der.is_empty() {
        return reject(
            Reason::CertificateMissing,
            "the quote's PCK chain holds no PEM certificate",
        );
    }
    Ok(QuoteSignatureData {
        signature,
        attestation_key,
        qe_report,
        qe_report_signature,
        qe_auth_data,
        pck_chain_pem,
        pck_chain_der,
    })
}

fn parse_qe_report(raw: [u8; QE_REPORT_LEN]) -> Result<QeReport, Rejection> {
    // SGX REPORT body layout; reserved ranges are skipped (the signature covers them).
    let mut r = Reader::new(&raw, 0);
    let cpu_svn = r.array("QE report cpu_svn")?;
    let misc_select = r.u32("QE report misc_select")?;
    r.take(28, "QE report reserved")?;
    let attributes = r.array("QE report attributes")?;
    let mr_enclave = r.array("QE report mr_enclave")?;
    r.take(32, "QE report reserved")?;
    let mr_signer = r.array("QE report mr_signer")?;
    r.take(96, "QE report reserved")?;
    let isv_prod_id = r.u16("QE report isv_prod_id")?;
    let isv_svn = r.u16("QE report isv_svn")?;
    r.take(60, "QE report reserved")?;
    let report_data = r.array("QE report report_data")?;
    Ok(QeReport {
        cpu_svn,
        misc_select,
        attributes,
        mr_enclave,
        mr_signer,
        isv_prod_id,
        isv_svn,
        report_data,
        raw,
    })
}

fn to_usize(n: u32) -> usize {
    // u32 always fits in usize on the 32/64-bit targets we build for.
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Bounds-checked little-endian reader; `base` is the absolute offset of `bytes[0]`.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], base: usize) -> Self {
        Reader {
            bytes,
            pos: 0,
            base,
        }
    }

    fn pos_abs(&self) -> usize {
        self.base + self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], Rejection> {
        let slice = self
            .pos
            .checked_add(n)
            .and_then(|end| self.bytes.get(self.pos..end));
        match slice {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => reject(
                Reason::Truncated,
                format!(
                    "{what}: needs {n} bytes at offset {}, {} left",
                    self.pos_abs(),
                    self.bytes.len().saturating_sub(self.pos)
                ),
            ),
        }
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], Rejection> {
        let s = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    fn u16(&mut self, what: &str) -> Result<u16, Rejection> {
        self.array(what).map(u16::from_le_bytes)
    }

    fn u32(&mut self, what: &str) -> Result<u32, Rejection> {
        self.array(what).map(u32::from_le_bytes)
    }

    /// Reject bytes left inside a length-delimited region.
    fn finish(&self, what: &str) -> Result<(), Rejection> {
        let left = self.bytes.len().saturating_sub(self.pos);
        if left == 0 {
            Ok(())
        } else {
            reject(
                Reason::TrailingData,
                format!(
                    "{what}: {left} unclaimed bytes at offset {} inside its declared size",
                    self.pos_abs()
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reports_offsets() {
        let mut r = Reader::new(&[1, 0, 2], 10);
        assert_eq!(r.u16("a").unwrap(), 1);
        let err = r.u32("b").unwrap_err();
        assert_eq!(err.reason, Reason::Truncated);
        assert!(err.detail.contains("offset 12"), "{}", err.detail);
    }

    #[test]
    fn sniffing_needs_a_full_header() {
        let mut h = [0u8; 48];
        h[0] = 4;
        h[2] = 2;
        h[4] = 0x81;
        assert!(looks_like_tdx_quote(&h));
        assert!(!looks_like_tdx_quote(&h[..47]));
        h[4] = 0;
        assert!(!looks_like_tdx_quote(&h));
        h[4] = 0x81;
        h[0] = 3;
        assert!(!looks_like_tdx_quote(&h));
    }
}
