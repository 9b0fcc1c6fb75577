//! FAKE Intel DCAP collateral for TDX: TCB info (id "TDX", version 3) and
//! QE identity (id "TD_QE", version 2) JSON signed by the fake TCB Signing
//! key (hex raw r || s over the exact JSON text), CRLs and issuer chains,
//! output both as dcap-qvl `QuoteCollateralV3` JSON and as PCS-style files.

use crate::intel::{
    FakeIntel, IntelAuthority, IntelCrlBuilder, DEFAULT_FMSPC, DEFAULT_PCESVN, DEFAULT_PCE_ID,
    DEFAULT_SGX_TCB_COMPONENTS,
};
use crate::keys::FakeP256Key;
use crate::{rfc3339, DEFAULT_AT};

/// Intel's TD QE MRSIGNER (public value, reused so fake quotes look real).
pub const DEFAULT_QE_MRSIGNER: [u8; 32] = [
    0xDC, 0x9E, 0x2A, 0x7C, 0x6F, 0x94, 0x8F, 0x17, 0x47, 0x4E, 0x34, 0xA7, 0xFC, 0x43, 0xED, 0x03,
    0x0F, 0x7C, 0x15, 0x63, 0xF1, 0xBA, 0xBD, 0xDF, 0x63, 0x40, 0xC8, 0x2E, 0x0E, 0x54, 0xA8, 0xC5,
];
/// TD QE ISVPRODID.
pub const DEFAULT_QE_ISVPRODID: u16 = 2;
/// TD QE ISVSVN of the fake QE (meets the UpToDate level).
pub const DEFAULT_QE_ISVSVN: u16 = 4;
/// TD QE ATTRIBUTES (INIT | MODE64BIT; debug bit 1 clear).
pub const DEFAULT_QE_ATTRIBUTES: [u8; 16] = [0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
/// QE identity ATTRIBUTES mask (Intel's value).
pub const DEFAULT_QE_ATTRIBUTES_MASK: [u8; 16] = [
    0xFB, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0,
];
/// Default TEE_TCB_SVN of fake quotes: module ISVSVN 6, module version 1
/// (identity "TDX_01"), late microcode 2.
pub const DEFAULT_TEE_TCB_SVN: [u8; 16] = [6, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// One platform TCB level of a TDX TCB info.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdxTcbLevel {
    pub sgx_components: [u8; 16],
    pub pcesvn: u16,
    pub tdx_components: [u8; 16],
    pub tcb_date: String,
    pub tcb_status: String,
    pub advisory_ids: Vec<String>,
}

/// One TCB level of a TDX module identity or of the QE identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsvTcbLevel {
    pub isvsvn: u16,
    pub tcb_date: String,
    pub tcb_status: String,
    pub advisory_ids: Vec<String>,
}

/// A `tdxModuleIdentities` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdxModuleIdentity {
    /// e.g. "TDX_01" (matched against `TEE_TCB_SVN[1]`).
    pub id: String,
    pub mrsigner: [u8; 48],
    pub attributes: [u8; 8],
    pub attributes_mask: [u8; 8],
    pub tcb_levels: Vec<IsvTcbLevel>,
}

/// The `tdxModule` object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdxModule {
    pub mrsigner: [u8; 48],
    pub attributes: [u8; 8],
    pub attributes_mask: [u8; 8],
}

/// How a collateral item gets signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CollateralSigning {
    /// The fake TCB Signing key (valid).
    TcbSigningKey,
    /// A key derived from another label (signature does not verify).
    OtherKey(String),
    /// The TCB Signing key, then one bit flipped.
    Corrupted,
}

fn sign_json(intel: &FakeIntel, text: &str, signing: &CollateralSigning) -> [u8; 64] {
    match signing {
        CollateralSigning::TcbSigningKey => intel
            .key(IntelAuthority::TcbSigning)
            .sign_raw(text.as_bytes()),
        CollateralSigning::OtherKey(label) => {
            FakeP256Key::from_label(label).sign_raw(text.as_bytes())
        }
        CollateralSigning::Corrupted => {
            let mut sig = intel
                .key(IntelAuthority::TcbSigning)
                .sign_raw(text.as_bytes());
            sig[5] ^= 0x01;
            sig
        }
    }
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).expect("strings always serialise")
}

fn advisory_json(ids: &[String]) -> String {
    if ids.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = ids.iter().map(|id| json_string(id)).collect();
        format!(",\"advisoryIDs\":[{}]", list.join(","))
    }
}

fn isv_levels_json(levels: &[IsvTcbLevel]) -> String {
    let items: Vec<String> = levels
        .iter()
        .map(|level| {
            format!(
                "{{\"tcb\":{{\"isvsvn\":{}}},\"tcbDate\":{},\"tcbStatus\":{}{}}}",
                level.isvsvn,
                json_string(&level.tcb_date),
                json_string(&level.tcb_status),
                advisory_json(&level.advisory_ids)
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn components_json(svns: &[u8; 16]) -> String {
    let items: Vec<String> = svns
        .iter()
        .map(|svn| format!("{{\"svn\":{svn}}}"))
        .collect();
    format!("[{}]", items.join(","))
}

/// Builder for the TDX TCB info. Defaults (valid at [`DEFAULT_AT`]): id
/// "TDX", version 3, FMSPC [`DEFAULT_FMSPC`], issueDate 7 days before and
/// nextUpdate 23 days after `DEFAULT_AT`, levels UpToDate (the fake
/// platform's TCB) then OutOfDate, module identity TDX_01 (ISVSVN >= 4
/// UpToDate, >= 2 OutOfDate) and TDX_03, all-zero module MRSIGNER.
#[derive(Clone, Debug)]
pub struct TcbInfoBuilder {
    pub id: String,
    pub version: u32,
    pub issue_date: String,
    pub next_update: String,
    pub fmspc: [u8; 6],
    pub pce_id: [u8; 2],
    pub tcb_type: u32,
    pub tcb_evaluation_data_number: u32,
    pub tdx_module: Option<TdxModule>,
    pub tdx_module_identities: Vec<TdxModuleIdentity>,
    pub tcb_levels: Vec<TdxTcbLevel>,
    pub signing: CollateralSigning,
}

impl Default for TcbInfoBuilder {
    fn default() -> Self {
        let module_levels = vec![
            IsvTcbLevel {
                isvsvn: 4,
                tcb_date: "2025-11-12T00:00:00Z".to_owned(),
                tcb_status: "UpToDate".to_owned(),
                advisory_ids: vec![],
            },
            IsvTcbLevel {
                isvsvn: 2,
                tcb_date: "2023-08-09T00:00:00Z".to_owned(),
                tcb_status: "OutOfDate".to_owned(),
                advisory_ids: vec![],
            },
        ];
        let mut old_sgx = DEFAULT_SGX_TCB_COMPONENTS;
        old_sgx[0] = 2;
        old_sgx[1] = 2;
        TcbInfoBuilder {
            id: "TDX".to_owned(),
            version: 3,
            issue_date: rfc3339(DEFAULT_AT - 7 * 86_400),
            next_update: rfc3339(DEFAULT_AT + 23 * 86_400),
            fmspc: DEFAULT_FMSPC,
            pce_id: DEFAULT_PCE_ID,
            tcb_type: 0,
            tcb_evaluation_data_number: 19,
            tdx_module: Some(TdxModule {
                mrsigner: [0; 48],
                attributes: [0; 8],
                attributes_mask: [0xFF; 8],
            }),
            tdx_module_identities: vec![
                TdxModuleIdentity {
                    id: "TDX_03".to_owned(),
                    mrsigner: [0; 48],
                    attributes: [0; 8],
                    attributes_mask: [0xFF; 8],
                    tcb_levels: vec![IsvTcbLevel {
                        isvsvn: 3,
                        tcb_date: "2025-11-12T00:00:00Z".to_owned(),
                        tcb_status: "UpToDate".to_owned(),
                        advisory_ids: vec![],
                    }],
                },
                TdxModuleIdentity {
                    id: "TDX_01".to_owned(),
                    mrsigner: [0; 48],
                    attributes: [0; 8],
                    attributes_mask: [0xFF; 8],
                    tcb_levels: module_levels,
                },
            ],
            tcb_levels: vec![
                TdxTcbLevel {
                    sgx_components: DEFAULT_SGX_TCB_COMPONENTS,
                    pcesvn: DEFAULT_PCESVN,
                    tdx_components: DEFAULT_TEE_TCB_SVN,
                    tcb_date: "2025-11-12T00:00:00Z".to_owned(),
                    tcb_status: "UpToDate".to_owned(),
                    advisory_ids: vec![],
                },
                TdxTcbLevel {
                    sgx_components: old_sgx,
                    pcesvn: 5,
                    tdx_components: [2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                    tcb_date: "2018-01-04T00:00:00Z".to_owned(),
                    tcb_status: "OutOfDate".to_owned(),
                    advisory_ids: vec!["INTEL-SA-00106".to_owned(), "INTEL-SA-00115".to_owned()],
                },
            ],
            signing: CollateralSigning::TcbSigningKey,
        }
    }
}

impl TcbInfoBuilder {
    /// Set only the status (and advisories) of the first (matching) level.
    pub fn first_level_status(mut self, status: &str, advisory_ids: &[&str]) -> Self {
        if let Some(level) = self.tcb_levels.first_mut() {
            level.tcb_status = status.to_owned();
            level.advisory_ids = advisory_ids.iter().map(|s| (*s).to_owned()).collect();
        }
        self
    }

    /// The exact JSON text of the `tcbInfo` object that gets signed.
    pub fn json(&self) -> String {
        let mut out = format!(
            "{{\"id\":{},\"version\":{},\"issueDate\":{},\"nextUpdate\":{},\"fmspc\":\"{}\",\"pceId\":\"{}\",\"tcbType\":{},\"tcbEvaluationDataNumber\":{}",
            json_string(&self.id),
            self.version,
            json_string(&self.issue_date),
            json_string(&self.next_update),
            hex::encode_upper(self.fmspc),
            hex::encode_upper(self.pce_id),
            self.tcb_type,
            self.tcb_evaluation_data_number
        );
        if let Some(module) = &self.tdx_module {
            out.push_str(&format!(
                ",\"tdxModule\":{{\"mrsigner\":\"{}\",\"attributes\":\"{}\",\"attributesMask\":\"{}\"}}",
                hex::encode_upper(module.mrsigner),
                hex::encode_upper(module.attributes),
                hex::encode_upper(module.attributes_mask)
            ));
        }
        if !self.tdx_module_identities.is_empty() {
            let items: Vec<String> = self
                .tdx_module_identities
                .iter()
                .map(|identity| {
                    format!(
                        "{{\"id\":{},\"mrsigner\":\"{}\",\"attributes\":\"{}\",\"attributesMask\":\"{}\",\"tcbLevels\":{}}}",
                        json_string(&identity.id),
                        hex::encode_upper(identity.mrsigner),
                        hex::encode_upper(identity.attributes),
                        hex::encode_upper(identity.attributes_mask),
                        isv_levels_json(&identity.tcb_levels)
                    )
                })
                .collect();
            out.push_str(&format!(",\"tdxModuleIdentities\":[{}]", items.join(",")));
        }
        let levels: Vec<String> = self
            .tcb_levels
            .iter()
            .map(|level| {
                format!(
                    "{{\"tcb\":{{\"sgxtcbcomponents\":{},\"pcesvn\":{},\"tdxtcbcomponents\":{}}},\"tcbDate\":{},\"tcbStatus\":{}{}}}",
                    components_json(&level.sgx_components),
                    level.pcesvn,
                    components_json(&level.tdx_components),
                    json_string(&level.tcb_date),
                    json_string(&level.tcb_status),
                    advisory_json(&level.advisory_ids)
                )
            })
            .collect();
        out.push_str(&format!(",\"tcbLevels\":[{}]}}", levels.join(",")));
        out
    }

    /// JSON text and its raw r || s signature.
    pub fn sign(&self, intel: &FakeIntel) -> (String, [u8; 64]) {
        let text = self.json();
        let signature = sign_json(intel, &text, &self.signing);
        (text, signature)
    }
}

/// Builder for the TD QE identity. Defaults (valid at [`DEFAULT_AT`]): id
/// "TD_QE", version 2, Intel's TD QE MRSIGNER, ISVPRODID 2, attributes
/// 0x11 with Intel's mask, miscselect 0 / mask FFFFFFFF, levels ISVSVN 4
/// UpToDate and ISVSVN 2 OutOfDate.
#[derive(Clone, Debug)]
pub struct QeIdentityBuilder {
    pub id: String,
    pub version: u32,
    pub issue_date: String,
    pub next_update: String,
    pub tcb_evaluation_data_number: u32,
    pub miscselect: [u8; 4],
    pub miscselect_mask: [u8; 4],
    pub attributes: [u8; 16],
    pub attributes_mask: [u8; 16],
    pub mrsigner: [u8; 32],
    pub isvprodid: u16,
    pub tcb_levels: Vec<IsvTcbLevel>,
    pub signing: CollateralSigning,
}

impl Default for QeIdentityBuilder {
    fn default() -> Self {
        QeIdentityBuilder {
            id: "TD_QE".to_owned(),
            version: 2,
            issue_date: rfc3339(DEFAULT_AT - 7 * 86_400),
            next_update: rfc3339(DEFAULT_AT + 23 * 86_400),
            tcb_evaluation_data_number: 19,
            miscselect: [0; 4],
            miscselect_mask: [0xFF; 4],
            attributes: DEFAULT_QE_ATTRIBUTES,
            attributes_mask: DEFAULT_QE_ATTRIBUTES_MASK,
            mrsigner: DEFAULT_QE_MRSIGNER,
            isvprodid: DEFAULT_QE_ISVPRODID,
            tcb_levels: vec![
                IsvTcbLevel {
                    isvsvn: DEFAULT_QE_ISVSVN,
                    tcb_date: "2025-11-12T00:00:00Z".to_owned(),
                    tcb_status: "UpToDate".to_owned(),
                    advisory_ids: vec![],
                },
                IsvTcbLevel {
                    isvsvn: 2,
                    tcb_date: "2023-08-09T00:00:00Z".to_owned(),
                    tcb_status: "OutOfDate".to_owned(),
                    advisory_ids: vec!["INTEL-SA-00615".to_owned()],
                },
            ],
            signing: CollateralSigning::TcbSigningKey,
        }
    }
}

impl QeIdentityBuilder {
    /// The exact JSON text of the `enclaveIdentity` object that gets signed.
    pub fn json(&self) -> String {
        format!(
            "{{\"id\":{},\"version\":{},\"issueDate\":{},\"nextUpdate\":{},\"tcbEvaluationDataNumber\":{},\"miscselect\":\"{}\",\"miscselectMask\":\"{}\",\"attributes\":\"{}\",\"attributesMask\":\"{}\",\"mrsigner\":\"{}\",\"isvprodid\":{},\"tcbLevels\":{}}}",
            json_string(&self.id),
            self.version,
            json_string(&self.issue_date),
            json_string(&self.next_update),
            self.tcb_evaluation_data_number,
            hex::encode_upper(self.miscselect),
            hex::encode_upper(self.miscselect_mask),
            hex::encode_upper(self.attributes),
            hex::encode_upper(self.attributes_mask),
            hex::encode_upper(self.mrsigner),
            self.isvprodid,
            isv_levels_json(&self.tcb_levels)
        )
    }

    /// JSON text and its raw r || s signature.
    pub fn sign(&self, intel: &FakeIntel) -> (String, [u8; 64]) {
        let text = self.json();
        let signature = sign_json(intel, &text, &self.signing);
        (text, signature)
    }
}

/// All collateral a TDX verifier needs besides the quote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdxCollateral {
    /// PEM: PCK Platform CA, root.
    pub pck_crl_issuer_chain: String,
    /// DER.
    pub root_ca_crl: Vec<u8>,
    /// DER.
    pub pck_crl: Vec<u8>,
    /// PEM: TCB Signing, root.
    pub tcb_info_issuer_chain: String,
    /// Exact signed JSON text of the tcbInfo object.
    pub tcb_info: String,
    pub tcb_info_signature: Vec<u8>,
    /// PEM: TCB Signing, root.
    pub qe_identity_issuer_chain: String,
    /// Exact signed JSON text of the enclaveIdentity object.
    pub qe_identity: String,
    pub qe_identity_signature: Vec<u8>,
}

impl TdxCollateral {
    /// dcap-qvl `QuoteCollateralV3` JSON (byte fields as lowercase hex), the
    /// shape of `tdx_quote_collateral.json` in the shared vectors.
    pub fn to_dcap_qvl_json(&self) -> String {
        format!(
            "{{\"pck_crl_issuer_chain\":{},\"root_ca_crl\":\"{}\",\"pck_crl\":\"{}\",\"tcb_info_issuer_chain\":{},\"tcb_info\":{},\"tcb_info_signature\":\"{}\",\"qe_identity_issuer_chain\":{},\"qe_identity\":{},\"qe_identity_signature\":\"{}\"}}",
            json_string(&self.pck_crl_issuer_chain),
            hex::encode(&self.root_ca_crl),
            hex::encode(&self.pck_crl),
            json_string(&self.tcb_info_issuer_chain),
            json_string(&self.tcb_info),
            hex::encode(&self.tcb_info_signature),
            json_string(&self.qe_identity_issuer_chain),
            json_string(&self.qe_identity),
            hex::encode(&self.qe_identity_signature)
        )
    }

    /// PCS `GET /tdx/certification/v4/tcb` response body.
    pub fn tcb_info_body(&self) -> String {
        format!(
            "{{\"tcbInfo\":{},\"signature\":\"{}\"}}",
            self.tcb_info,
            hex::encode(&self.tcb_info_signature)
        )
    }

    /// PCS `GET /tdx/certification/v4/qe/identity` response body.
    pub fn qe_identity_body(&self) -> String {
        format!(
            "{{\"enclaveIdentity\":{},\"signature\":\"{}\"}}",
            self.qe_identity,
            hex::encode(&self.qe_identity_signature)
        )
    }

    /// PCS-style files: (file name, contents).
    pub fn pcs_files(&self) -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("tcb_info.json", self.tcb_info_body().into_bytes()),
            (
                "tcb_info_issuer_chain.pem",
                self.tcb_info_issuer_chain.clone().into_bytes(),
            ),
            ("qe_identity.json", self.qe_identity_body().into_bytes()),
            (
                "qe_identity_issuer_chain.pem",
                self.qe_identity_issuer_chain.clone().into_bytes(),
            ),
            ("pck_crl.der", self.pck_crl.clone()),
            (
                "pck_crl_issuer_chain.pem",
                self.pck_crl_issuer_chain.clone().into_bytes(),
            ),
            ("root_ca_crl.der", self.root_ca_crl.clone()),
        ]
    }
}

/// Builder for a complete collateral set; each part can be replaced.
#[derive(Clone, Debug)]
pub struct TdxCollateralBuilder {
    pub tcb_info: TcbInfoBuilder,
    pub qe_identity: QeIdentityBuilder,
    pub root_crl: IntelCrlBuilder,
    pub pck_crl: IntelCrlBuilder,
    /// Replace an issuer chain PEM (e.g. with an expired signer).
    pub tcb_info_issuer_chain: Option<String>,
    pub qe_identity_issuer_chain: Option<String>,
    pub pck_crl_issuer_chain: Option<String>,
}

impl TdxCollateralBuilder {
    pub fn new(intel: &FakeIntel) -> Self {
        TdxCollateralBuilder {
            tcb_info: TcbInfoBuilder::default(),
            qe_identity: QeIdentityBuilder::default(),
            root_crl: intel.root_crl(),
            pck_crl: intel.pck_crl(),
            tcb_info_issuer_chain: None,
            qe_identity_issuer_chain: None,
            pck_crl_issuer_chain: None,
        }
    }

    pub fn tcb_info(mut self, tcb_info: TcbInfoBuilder) -> Self {
        self.tcb_info = tcb_info;
        self
    }

    pub fn qe_identity(mut self, qe_identity: QeIdentityBuilder) -> Self {
        self.qe_identity = qe_identity;
        self
    }

    pub fn root_crl(mut self, crl: IntelCrlBuilder) -> Self {
        self.root_crl = crl;
        self
    }

    pub fn pck_crl(mut self, crl: IntelCrlBuilder) -> Self {
        self.pck_crl = crl;
        self
    }

    pub fn build(&self, intel: &FakeIntel) -> TdxCollateral {
        let (tcb_info, tcb_sig) = self.tcb_info.sign(intel);
        let (qe_identity, qe_sig) = self.qe_identity.sign(intel);
        TdxCollateral {
            pck_crl_issuer_chain: self
                .pck_crl_issuer_chain
                .clone()
                .unwrap_or_else(|| intel.pck_crl_issuer_chain_pem()),
            root_ca_crl: self.root_crl.build(intel),
            pck_crl: self.pck_crl.build(intel),
            tcb_info_issuer_chain: self
                .tcb_info_issuer_chain
                .clone()
                .unwrap_or_else(|| intel.tcb_signing_chain_pem()),
            tcb_info,
            tcb_info_signature: tcb_sig.to_vec(),
            qe_identity_issuer_chain: self
                .qe_identity_issuer_chain
                .clone()
                .unwrap_or_else(|| intel.tcb_signing_chain_pem()),
            qe_identity,
            qe_identity_signature: qe_sig.to_vec(),
        }
    }
}
