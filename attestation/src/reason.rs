//! Stable, typed reason codes for every rejection.
//!
//! Tests and callers match on [`Reason`], never on messages. The snake_case string from
//! [`Reason::code`] is part of the public interface (the CLI prints it in `--json`), so a
//! variant's code never changes once released; new variants may be added.

use std::fmt;

/// Why evidence was rejected. Grouped by the layer that found the problem.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    // ---- parse: the bytes are not well-formed evidence ----
    /// The input ends before the structure it claims to hold.
    Truncated,
    /// Bytes follow the structure where none are allowed.
    TrailingData,
    /// A version field names a format we do not support.
    UnsupportedVersion,
    /// A field holds a value outside its allowed set (enum, algorithm, TEE type, ...).
    InvalidField,
    /// A reserved or must-be-zero field is not zero.
    ReservedNotZero,
    /// The input is not recognised as any evidence, certificate, CRL or collateral.
    UnknownInput,
    /// A certificate could not be parsed.
    MalformedCertificate,
    /// A CRL could not be parsed.
    MalformedCrl,
    /// Collateral (TCB info, QE identity, collateral JSON) could not be parsed.
    MalformedCollateral,
    /// The set of inputs is not one piece of evidence (none, or several).
    AmbiguousInput,

    // ---- signature: a signature over received bytes does not verify ----
    /// The SEV-SNP report signature does not verify with the VCEK/VLEK.
    ReportSignatureInvalid,
    /// The SEV-SNP report says MASK_CHIP_KEY (key_info bit 1): the firmware was told not
    /// to sign with the chip key and wrote zeros where the signature goes.
    ReportChipKeyMasked,
    /// The TDX quote signature does not verify with the attestation key.
    QuoteSignatureInvalid,
    /// The QE report signature does not verify with the PCK certificate.
    QeReportSignatureInvalid,
    /// QE report data does not bind the attestation key and QE authentication data.
    QeBindingMismatch,
    /// A certificate's signature does not verify with its issuer's key.
    CertificateSignatureInvalid,
    /// A CRL's signature does not verify with its issuer's key.
    CrlSignatureInvalid,
    /// TCB info or QE identity signature does not verify over the received JSON bytes.
    CollateralSignatureInvalid,
    /// The signature algorithm is not the one the format mandates.
    UnsupportedAlgorithm,

    // ---- chain: certificates do not lead to a pinned root ----
    /// A certificate the chain needs was not supplied and is not built in.
    CertificateMissing,
    /// The chain ends in a root that is not pinned (or not trusted by this verifier).
    UntrustedRoot,
    /// A certificate's issuer is not the next certificate in the chain.
    IssuerMismatch,
    /// A certificate is past its notAfter at the verification time.
    CertificateExpired,
    /// A certificate is before its notBefore at the verification time.
    CertificateNotYetValid,
    /// A certificate is listed on a CRL, or an OCSP response says it is revoked.
    CertificateRevoked,
    /// The chain belongs to another product (e.g. a Genoa VCEK under the Milan ARK).
    ProductMismatch,
    /// The report names one signing-key type (VCEK/VLEK) and the certificate is the other.
    SigningKeyMismatch,
    /// The VCEK hwID extension does not equal the report's CHIP_ID.
    HwIdMismatch,
    /// The VCEK/VLEK TCB extensions do not equal the report's REPORTED_TCB.
    TcbExtensionMismatch,

    // ---- collateral: TDX collateral missing, stale or for another platform ----
    /// No collateral was supplied, so the TCB cannot be evaluated.
    CollateralMissing,
    /// Collateral (or a CRL) is past its nextUpdate at the verification time.
    CollateralExpired,
    /// Collateral (or a CRL) is issued after the verification time.
    CollateralNotYetValid,
    /// TCB info is for another FMSPC / TEE type than the PCK certificate.
    CollateralMismatch,

    // ---- tcb: evaluation of the platform's TCB level ----
    /// No TCB level in the collateral matches the platform (Intel: TCB not supported).
    TcbLevelNotFound,
    /// The platform's TCB level is revoked.
    TcbRevoked,
    /// The TDX module identity is unknown or does not match the collateral.
    TdxModuleMismatch,
    /// The quoting enclave does not match its QE identity.
    QeIdentityMismatch,

    // ---- policy: verified claims that the policy does not accept ----
    /// The policy itself is malformed or incomplete.
    PolicyInvalid,
    /// The platform (snp/tdx) is not accepted by the policy.
    PlatformNotAllowed,
    /// The product (Milan/Genoa/Turin) is not accepted.
    ProductNotAllowed,
    /// Debug is enabled and the policy forbids it.
    DebugNotAllowed,
    /// A migration agent is allowed and the policy forbids it.
    MigrationAgentNotAllowed,
    /// SMT is allowed and the policy forbids it.
    SmtNotAllowed,
    /// The VMPL is not one the policy accepts.
    VmplNotAllowed,
    /// The signing key type (VCEK/VLEK) is not accepted.
    SigningKeyNotAllowed,
    /// A TCB component is below the policy minimum.
    TcbBelowMinimum,
    /// The TCB status (Intel's name) is not in the policy's allowed list.
    TcbStatusNotAllowed,
    /// An advisory id the policy forbids applies to the platform.
    AdvisoryNotAllowed,
    /// SNP MEASUREMENT or TDX MRTD is not one the policy accepts.
    MeasurementMismatch,
    /// A TDX RTMR is not one the policy accepts.
    RtmrMismatch,
    /// SNP HOST_DATA or TDX MRCONFIGID is not one the policy accepts.
    HostDataMismatch,
    /// REPORT_DATA is not the value the policy (or the binding) expects.
    ReportDataMismatch,
    /// The evidence is signed by the simulated (development) root.
    SimulatedRootNotTrusted,
    /// The runtime claims name a model digest the policy does not list.
    ModelNotAllowed,
    /// The runtime claims name a launch configuration digest the policy does not list.
    LaunchConfigNotAllowed,
    /// The runtime claims name a runtime version the policy does not list.
    RuntimeVersionNotAllowed,
    /// The runtime encrypts transcripts to an auditor key the policy does not name.
    AuditorKeyNotAllowed,

    // ---- binding: report data, runtime claims, TLS key, nonce ----
    /// An evidence bundle (CMW collection) is not well-formed.
    BundleMalformed,
    /// The runtime claims are not well-formed canonical CBOR of a known version.
    ClaimsMalformed,
    /// REPORT_DATA is not SHA-512 of the runtime claims carried with the evidence.
    ClaimsNotBound,
    /// The TLS key the server presented is not the one named in the bound claims.
    TlsKeyNotBound,
    /// A freshness nonce was asked for and the bound claims carry another one, or none.
    NonceMismatch,

    // ---- receipts: usage receipts and their log ----
    /// A usage receipt is not a well-formed canonical COSE_Sign1 over known, canonical
    /// receipt claims.
    ReceiptMalformed,
    /// A receipt's signature does not verify with the bound receipt key (or it names another
    /// algorithm than the key's).
    ReceiptSignatureInvalid,
    /// A receipt names another evidence bundle than the one that binds its signing key.
    ReceiptKeyNotBound,
    /// A receipt names another model than the one its attested runtime serves.
    ReceiptModelMismatch,
    /// A receipt does not describe the exchange it came with (request or response hash).
    ReceiptMismatch,
    /// An answer that should carry a receipt came without one.
    ReceiptMissing,
    /// An audited job's receipt has no transcript beside it in an audit bundle.
    TranscriptMissing,
    /// Receipts are missing from a log: the sequence skips numbers.
    ReceiptGap,
    /// A receipt appears twice in a log, byte for byte.
    ReceiptDuplicate,
    /// Receipts of a log are out of order.
    ReceiptReordered,
    /// Two different receipts claim one place in the log (same sequence number, or a hash
    /// link to another receipt than the one before).
    ReceiptFork,
    /// A receipt comes from another runtime instance (or names other evidence) than the log.
    ReceiptInstanceMismatch,
    /// A transcript, or its sealed envelope, is not well-formed canonical CBOR of the known
    /// layout (or the sealed and the inner job ids differ).
    TranscriptMalformed,
    /// A sealed transcript does not decrypt: another auditor key, or a tampered ciphertext,
    /// encapsulated key or job id (the AEAD's associated data).
    TranscriptUndecryptable,
    /// A transcript disagrees with the receipt of its job (job id, model, commitment, token
    /// counts or sampling parameters).
    TranscriptMismatch,

    // ---- appended: catch-all of the TDX verifier ----
    /// dcap-qvl rejected a TDX quote for a reason no other code names (its message is in
    /// the detail).
    TdxVerificationFailed,

    // ---- appended: evidence policy fields (issue 13) ----
    /// The policy requires a current AMD CRL signed by the ARK (`revocation =
    /// "require_crl"`) and none was supplied, so revocation of the ASK/ASVK was not checked.
    CrlMissing,
    /// SEV-SNP LAUNCH_TCB (the TCB the guest was launched on) is below the policy minimum.
    LaunchTcbBelowMinimum,
    /// SEV-SNP COMMITTED_TCB (the TCB the platform cannot roll back below) is below the
    /// policy minimum.
    CommittedTcbBelowMinimum,
    /// A SEV-SNP guest-policy bit (SINGLE_SOCKET, CXL_ALLOW, MEM_AES_256_XTS, RAPL_DIS,
    /// CIPHERTEXT_HIDING, PAGE_SWAP_DISABLE) is set where the policy forbids it, or clear
    /// where it requires it.
    GuestPolicyNotAllowed,
    /// The SEV-SNP guest policy's ABI major.minor is below the policy minimum.
    GuestAbiBelowMinimum,
    /// A SEV-SNP PLATFORM_INFO bit (SMT_EN, TSME_EN, ...) is not what the policy says.
    PlatformInfoNotAllowed,
    /// SEV-SNP GUEST_SVN is below the policy minimum.
    GuestSvnBelowMinimum,
    /// SEV-SNP ID_KEY_DIGEST (the key that signed the ID block) is not one the policy lists.
    IdKeyNotAllowed,
    /// SEV-SNP AUTHOR_KEY_DIGEST is not one the policy lists.
    AuthorKeyNotAllowed,
    /// SEV-SNP FAMILY_ID is not one the policy lists.
    FamilyIdMismatch,
    /// SEV-SNP IMAGE_ID is not one the policy lists.
    ImageIdMismatch,
    /// TDX MRSEAM (the TDX module's measurement) is not one the policy lists.
    MrSeamMismatch,
    /// TDX MRSIGNERSEAM (the TDX module's signer) is not one the policy lists.
    MrSignerSeamMismatch,
    /// TDX XFAM (the extended features the TD may use) is not one the policy lists.
    XfamNotAllowed,
    /// TDX MROWNER is not one the policy lists.
    MrOwnerMismatch,
    /// TDX MROWNERCONFIG is not one the policy lists.
    MrOwnerConfigMismatch,
    /// The TDX collateral's tcbEvaluationDataNumber (TCB info or QE identity) is below the
    /// policy minimum: it predates a TCB recovery the policy requires.
    TcbEvaluationDataNumberBelowMinimum,
    /// The TDX collateral (TCB info or QE identity) was issued longer before the
    /// verification time than the policy's `max_collateral_age_days`.
    CollateralTooOld,
    /// A platform flag of the TDX PCK certificate (dynamic platform, cached keys, SMT
    /// enabled) is not what the policy says, or the certificate does not state it.
    PckPlatformFlagNotAllowed,

    // ---- appended: NVIDIA GPU evidence and reference manifests (issue 15) ----
    /// The SPDM MEASUREMENTS signature of GPU evidence does not verify with the leaf
    /// certificate's key over the request and the response up to the signature.
    GpuSignatureInvalid,
    /// The leaf certificate of the GPU chain carries no FWID (TCG DICE TcbInfo extension
    /// 2.23.133.5.4.1), so it is not the per-boot attestation certificate, or the evidence's
    /// opaque data carries no FWID.
    GpuFwidMissing,
    /// The FWID in the GPU leaf certificate is not the FWID in the evidence's opaque data.
    GpuFwidMismatch,
    /// The requester nonce in the GPU evidence is not the nonce the caller expects.
    GpuNonceMismatch,
    /// A certificate is used beyond its constraints: an issuer that is not a CA or lacks
    /// keyCertSign, a path longer than an issuer's pathLenConstraint, a signing certificate
    /// without digitalSignature.
    CertificateConstraintViolated,
    /// A reference integrity manifest (SWID tag XML with enveloped XMLDSig) is not
    /// well-formed or not in the subset of XML and XMLDSig this crate reads.
    RimMalformed,
    /// A reference integrity manifest's XMLDSig does not verify: the digest of the
    /// canonicalized document is not its DigestValue, or the signature over the
    /// canonicalized SignedInfo does not verify with the signing certificate's key.
    RimSignatureInvalid,
    /// A GPU measurement is not one of the values the reference integrity manifest allows
    /// at that index.
    GpuMeasurementMismatch,

    // ---- appended: GPU evidence bound to the runtime (issue 15, part 2) ----
    /// The GPU evidence the bundle serves is not the set claim 8 (`gpu_evidence_digest`)
    /// names: claim 8 is present and the evidence is missing or different, or GPU
    /// evidence is served that no claim 8 binds.
    GpuEvidenceNotBound,
    /// Fewer GPUs are bound to the runtime than the policy's `[gpu] count` requires.
    GpuCountBelowMinimum,
    /// A GPU's architecture is not in the policy's `[gpu] architectures`.
    GpuArchitectureNotAllowed,
    /// A GPU's driver version is below the policy's `[gpu] min_driver_version`, or the
    /// evidence states none.
    GpuDriverBelowMinimum,
    /// A GPU's VBIOS version is below the policy's `[gpu] min_vbios_version`, or the
    /// evidence states none.
    GpuVbiosBelowMinimum,
    /// The policy requires RIM appraisal (`[gpu] rim = "require"`) and the bundle carries
    /// no driver or no VBIOS reference integrity manifest for a GPU.
    GpuRimMissing,
    /// A GPU's signed evidence states a mode in which the GPU's own confidential-computing
    /// mode is off (opaque FEATURE_FLAG = PPCIE, protected PCIe).
    GpuCcModeOff,
    /// A reference integrity manifest is for another version than the GPU runs: the
    /// driver RIM's colloquialVersion is not the evidence's driver version (opaque field
    /// 3), or the VBIOS RIM's not its VBIOS version (opaque field 6), compared as
    /// NVIDIA's verifier does (exact text, case-insensitive).
    GpuRimVersionMismatch,

    // ---- appended: OCSP for the GPU device chain (issue 15, revocation) ----
    /// An OCSP response (RFC 6960, DER) could not be parsed, or is not a basic response.
    MalformedOcsp,
    /// An OCSP response's responseStatus is not `successful` (0): it carries no status.
    OcspUnsuccessful,
    /// An OCSP response's signature over its tbsResponseData does not verify with the
    /// responder's key.
    OcspSignatureInvalid,
    /// An OCSP response's signer is not authorized for the certificate it speaks of: neither
    /// its issuer nor a certificate with the id-kp-OCSPSigning EKU issued by a certificate
    /// of the chain (up to the pinned root), valid at the verification time; or the
    /// responderID does not name the signer.
    OcspResponderUntrusted,
    /// An OCSP response answers for no certificate of the chain (CertID: issuer name hash,
    /// issuer key hash, serial).
    OcspCertIdMismatch,
    /// An OCSP response says the responder does not know the certificate (`unknown`).
    OcspStatusUnknown,
    /// The policy requires the GPU device chain's revocation to be checked (`[gpu]
    /// revocation = "require"`) and no current OCSP response covered every certificate of
    /// the chain below the root (the per-boot leaf excepted).
    OcspMissing,
}

/// The layer a [`Reason`] belongs to; test vectors name the class they expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReasonClass {
    Parse,
    Signature,
    Chain,
    Collateral,
    Tcb,
    Policy,
    /// The evidence is genuine and accepted, but not bound to this key, claims or nonce.
    Binding,
    /// A usage receipt or receipt log is malformed, unsigned, unbound or inconsistent.
    Receipt,
}

impl ReasonClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonClass::Parse => "parse",
            ReasonClass::Signature => "signature",
            ReasonClass::Chain => "chain",
            ReasonClass::Collateral => "collateral",
            ReasonClass::Tcb => "tcb",
            ReasonClass::Policy => "policy",
            ReasonClass::Binding => "binding",
            ReasonClass::Receipt => "receipt",
        }
    }
}

impl Reason {
    /// The stable snake_case code printed by the CLI.
    pub fn code(self) -> &'static str {
        use Reason::*;
        match self {
            Truncated => "truncated",
            TrailingData => "trailing_data",
            UnsupportedVersion => "unsupported_version",
            InvalidField => "invalid_field",
            ReservedNotZero => "reserved_not_zero",
            UnknownInput => "unknown_input",
            MalformedCertificate => "malformed_certificate",
            MalformedCrl => "malformed_crl",
            MalformedCollateral => "malformed_collateral",
            AmbiguousInput => "ambiguous_input",
            ReportSignatureInvalid => "report_signature_invalid",
            ReportChipKeyMasked => "report_chip_key_masked",
            QuoteSignatureInvalid => "quote_signature_invalid",
            QeReportSignatureInvalid => "qe_report_signature_invalid",
            QeBindingMismatch => "qe_binding_mismatch",
            CertificateSignatureInvalid => "certificate_signature_invalid",
            CrlSignatureInvalid => "crl_signature_invalid",
            CollateralSignatureInvalid => "collateral_signature_invalid",
            UnsupportedAlgorithm => "unsupported_algorithm",
            CertificateMissing => "certificate_missing",
            UntrustedRoot => "untrusted_root",
            IssuerMismatch => "issuer_mismatch",
            CertificateExpired => "certificate_expired",
            CertificateNotYetValid => "certificate_not_yet_valid",
            CertificateRevoked => "certificate_revoked",
            ProductMismatch => "product_mismatch",
            SigningKeyMismatch => "signing_key_mismatch",
            HwIdMismatch => "hwid_mismatch",
            TcbExtensionMismatch => "tcb_extension_mismatch",
            CollateralMissing => "collateral_missing",
            CollateralExpired => "collateral_expired",
            CollateralNotYetValid => "collateral_not_yet_valid",
            CollateralMismatch => "collateral_mismatch",
            TcbLevelNotFound => "tcb_level_not_found",
            TcbRevoked => "tcb_revoked",
            TdxModuleMismatch => "tdx_module_mismatch",
            QeIdentityMismatch => "qe_identity_mismatch",
            PolicyInvalid => "policy_invalid",
            PlatformNotAllowed => "platform_not_allowed",
            ProductNotAllowed => "product_not_allowed",
            DebugNotAllowed => "debug_not_allowed",
            MigrationAgentNotAllowed => "migration_agent_not_allowed",
            SmtNotAllowed => "smt_not_allowed",
            VmplNotAllowed => "vmpl_not_allowed",
            SigningKeyNotAllowed => "signing_key_not_allowed",
            TcbBelowMinimum => "tcb_below_minimum",
            TcbStatusNotAllowed => "tcb_status_not_allowed",
            AdvisoryNotAllowed => "advisory_not_allowed",
            MeasurementMismatch => "measurement_mismatch",
            RtmrMismatch => "rtmr_mismatch",
            HostDataMismatch => "host_data_mismatch",
            ReportDataMismatch => "report_data_mismatch",
            SimulatedRootNotTrusted => "simulated_root_not_trusted",
            ModelNotAllowed => "model_not_allowed",
            LaunchConfigNotAllowed => "launch_config_not_allowed",
            RuntimeVersionNotAllowed => "runtime_version_not_allowed",
            AuditorKeyNotAllowed => "auditor_key_not_allowed",
            TdxVerificationFailed => "tdx_verification_failed",
            BundleMalformed => "bundle_malformed",
            ClaimsMalformed => "claims_malformed",
            ClaimsNotBound => "claims_not_bound",
            TlsKeyNotBound => "tls_key_not_bound",
            NonceMismatch => "nonce_mismatch",
            ReceiptMalformed => "receipt_malformed",
            ReceiptSignatureInvalid => "receipt_signature_invalid",
            ReceiptKeyNotBound => "receipt_key_not_bound",
            ReceiptModelMismatch => "receipt_model_mismatch",
            ReceiptMismatch => "receipt_mismatch",
            ReceiptMissing => "receipt_missing",
            TranscriptMissing => "transcript_missing",
            ReceiptGap => "receipt_gap",
            ReceiptDuplicate => "receipt_duplicate",
            ReceiptReordered => "receipt_reordered",
            ReceiptFork => "receipt_fork",
            ReceiptInstanceMismatch => "receipt_instance_mismatch",
            TranscriptMalformed => "transcript_malformed",
            TranscriptUndecryptable => "transcript_undecryptable",
            TranscriptMismatch => "transcript_mismatch",
            CrlMissing => "crl_missing",
            LaunchTcbBelowMinimum => "launch_tcb_below_minimum",
            CommittedTcbBelowMinimum => "committed_tcb_below_minimum",
            GuestPolicyNotAllowed => "guest_policy_not_allowed",
            GuestAbiBelowMinimum => "guest_abi_below_minimum",
            PlatformInfoNotAllowed => "platform_info_not_allowed",
            GuestSvnBelowMinimum => "guest_svn_below_minimum",
            IdKeyNotAllowed => "id_key_not_allowed",
            AuthorKeyNotAllowed => "author_key_not_allowed",
            FamilyIdMismatch => "family_id_mismatch",
            ImageIdMismatch => "image_id_mismatch",
            MrSeamMismatch => "mrseam_mismatch",
            MrSignerSeamMismatch => "mrsignerseam_mismatch",
            XfamNotAllowed => "xfam_not_allowed",
            MrOwnerMismatch => "mrowner_mismatch",
            MrOwnerConfigMismatch => "mrownerconfig_mismatch",
            TcbEvaluationDataNumberBelowMinimum => "tcb_evaluation_data_number_below_minimum",
            CollateralTooOld => "collateral_too_old",
            PckPlatformFlagNotAllowed => "pck_platform_flag_not_allowed",
            GpuSignatureInvalid => "gpu_signature_invalid",
            GpuFwidMissing => "gpu_fwid_missing",
            GpuFwidMismatch => "gpu_fwid_mismatch",
            GpuNonceMismatch => "gpu_nonce_mismatch",
            CertificateConstraintViolated => "certificate_constraint_violated",
            RimMalformed => "rim_malformed",
            RimSignatureInvalid => "rim_signature_invalid",
            GpuMeasurementMismatch => "gpu_measurement_mismatch",
            GpuEvidenceNotBound => "gpu_evidence_not_bound",
            GpuCountBelowMinimum => "gpu_count_below_minimum",
            GpuArchitectureNotAllowed => "gpu_architecture_not_allowed",
            GpuDriverBelowMinimum => "gpu_driver_below_minimum",
            GpuVbiosBelowMinimum => "gpu_vbios_below_minimum",
            GpuRimMissing => "gpu_rim_missing",
            GpuCcModeOff => "gpu_cc_mode_off",
            GpuRimVersionMismatch => "gpu_rim_version_mismatch",
            MalformedOcsp => "malformed_ocsp",
            OcspUnsuccessful => "ocsp_unsuccessful",
            OcspSignatureInvalid => "ocsp_signature_invalid",
            OcspResponderUntrusted => "ocsp_responder_untrusted",
            OcspCertIdMismatch => "ocsp_cert_id_mismatch",
            OcspStatusUnknown => "ocsp_status_unknown",
            OcspMissing => "ocsp_missing",
        }
    }

    /// The layer that produces this reason.
    pub fn class(self) -> ReasonClass {
        use Reason::*;
        match self {
            Truncated | TrailingData | UnsupportedVersion | InvalidField | ReservedNotZero
            | UnknownInput | MalformedCertificate | MalformedCrl | MalformedCollateral
            | AmbiguousInput | RimMalformed | MalformedOcsp => ReasonClass::Parse,
            ReportSignatureInvalid
            | ReportChipKeyMasked
            | QuoteSignatureInvalid
            | QeReportSignatureInvalid
            | QeBindingMismatch
            | CertificateSignatureInvalid
            | CrlSignatureInvalid
            | CollateralSignatureInvalid
            | UnsupportedAlgorithm
            | TdxVerificationFailed
            | GpuSignatureInvalid
            | RimSignatureInvalid
            | OcspSignatureInvalid => ReasonClass::Signature,
            CertificateMissing
            | UntrustedRoot
            | IssuerMismatch
            | CertificateExpired
            | CertificateNotYetValid
            | CertificateRevoked
            | ProductMismatch
            | SigningKeyMismatch
            | HwIdMismatch
            | TcbExtensionMismatch
            | SimulatedRootNotTrusted
            | GpuFwidMissing
            | GpuFwidMismatch
            | CertificateConstraintViolated
            | OcspResponderUntrusted
            | OcspStatusUnknown => ReasonClass::Chain,
            CollateralMissing
            | CollateralExpired
            | CollateralNotYetValid
            | CollateralMismatch
            | CrlMissing
            | TcbEvaluationDataNumberBelowMinimum
            | CollateralTooOld
            | GpuRimMissing
            | OcspUnsuccessful
            | OcspCertIdMismatch
            | OcspMissing => ReasonClass::Collateral,
            TcbLevelNotFound | TcbRevoked | TdxModuleMismatch | QeIdentityMismatch => {
                ReasonClass::Tcb
            }
            PolicyInvalid
            | PlatformNotAllowed
            | ProductNotAllowed
            | DebugNotAllowed
            | MigrationAgentNotAllowed
            | SmtNotAllowed
            | VmplNotAllowed
            | SigningKeyNotAllowed
            | TcbBelowMinimum
            | TcbStatusNotAllowed
            | AdvisoryNotAllowed
            | MeasurementMismatch
            | RtmrMismatch
            | HostDataMismatch
            | ReportDataMismatch
            | ModelNotAllowed
            | LaunchConfigNotAllowed
            | RuntimeVersionNotAllowed
            | AuditorKeyNotAllowed
            | LaunchTcbBelowMinimum
            | CommittedTcbBelowMinimum
            | GuestPolicyNotAllowed
            | GuestAbiBelowMinimum
            | PlatformInfoNotAllowed
            | GuestSvnBelowMinimum
            | IdKeyNotAllowed
            | AuthorKeyNotAllowed
            | FamilyIdMismatch
            | ImageIdMismatch
            | MrSeamMismatch
            | MrSignerSeamMismatch
            | XfamNotAllowed
            | MrOwnerMismatch
            | MrOwnerConfigMismatch
            | PckPlatformFlagNotAllowed
            | GpuMeasurementMismatch
            | GpuCountBelowMinimum
            | GpuArchitectureNotAllowed
            | GpuDriverBelowMinimum
            | GpuVbiosBelowMinimum
            | GpuCcModeOff
            | GpuRimVersionMismatch => ReasonClass::Policy,
            BundleMalformed | ClaimsMalformed => ReasonClass::Parse,
            ClaimsNotBound | TlsKeyNotBound | NonceMismatch | GpuNonceMismatch
            | GpuEvidenceNotBound => ReasonClass::Binding,
            ReceiptMalformed
            | ReceiptSignatureInvalid
            | ReceiptKeyNotBound
            | ReceiptModelMismatch
            | ReceiptMismatch
            | ReceiptMissing
            | TranscriptMissing
            | ReceiptGap
            | ReceiptDuplicate
            | ReceiptReordered
            | ReceiptFork
            | ReceiptInstanceMismatch
            | TranscriptMalformed
            | TranscriptUndecryptable
            | TranscriptMismatch => ReasonClass::Receipt,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A rejection: the stable [`Reason`] plus a human explanation of what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Rejection {
    pub reason: Reason,
    pub detail: String,
}

impl Rejection {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Rejection {
            reason,
            detail: detail.into(),
        }
    }
}

/// Shorthand for building an `Err(Rejection)`.
pub fn reject<T>(reason: Reason, detail: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection::new(reason, detail))
}
