//! Keys born inside the runtime, the claims that name them, and the evidence bundles that
//! bind those claims to the hardware (REPORT_DATA = SHA-512(claims)).
//!
//! The TLS key and the receipt-signing key are generated in this process at start and
//! never leave it: they are not written to disk, not logged, and not exported by any API.

use crate::platform::{EvidenceSource, PlatformError, TeeKind};
use attestation::binding::{
    spki_sha256, HpkeKey, ReceiptKey, RuntimeClaims, COSE_ALG_EDDSA, HPKE_KEM_X25519_SHA256,
};
use attestation::bundle::{
    EvidenceBundle, CERT_MEDIA_TYPE, CRL_MEDIA_TYPE, IND_ENDORSEMENT, IND_EVIDENCE,
    JSON_MEDIA_TYPE, SNP_REPORT_MEDIA_TYPE, TDX_QUOTE_MEDIA_TYPE,
};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};

/// The runtime's own keys.
pub struct RuntimeKeys {
    /// ECDSA P-256 key of the attested TLS certificate.
    pub tls: rcgen::KeyPair,
    /// Ed25519 key that signs usage receipts.
    pub receipt: Ed25519KeyPair,
}

impl RuntimeKeys {
    pub fn generate() -> Result<Self, String> {
        let tls = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| format!("generating the TLS key: {e}"))?;
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new())
            .map_err(|e| format!("generating the receipt key: {e}"))?;
        let receipt = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map_err(|e| format!("loading the receipt key: {e}"))?;
        Ok(RuntimeKeys { tls, receipt })
    }

    /// SubjectPublicKeyInfo DER of the TLS key (what claim 1 digests).
    pub fn tls_spki_der(&self) -> Vec<u8> {
        rcgen::PublicKeyData::subject_public_key_info(&self.tls)
    }
}

/// What the runtime states about itself, except the per-request nonce.
#[derive(Debug, Clone)]
pub struct ClaimsTemplate {
    pub model_digest: [u8; 32],
    pub launch_config_digest: [u8; 32],
    pub auditor_hpke_public_key: Option<[u8; 32]>,
}

/// Produces evidence bundles for this runtime's keys and claims.
pub struct Attester {
    source: Box<dyn EvidenceSource>,
    /// Certificates and collateral the host handed in, served with every bundle.
    collateral: Vec<(String, Vec<u8>)>,
    claims: RuntimeClaims,
    simulated: bool,
    /// The GPUs' evidence bound in claim 8, served with every bundle.
    gpus: Vec<crate::gpu::GpuEvidence>,
    /// The RIMs served for each GPU (public collateral, not bound by the claims).
    gpu_rims: Vec<crate::gpu::rims::GpuRims>,
    /// OCSP responses for the GPUs' device chains (public collateral, refreshed).
    gpu_ocsp: Option<crate::gpu::ocsp::OcspServer>,
}

impl Attester {
    pub fn new(
        source: Box<dyn EvidenceSource>,
        collateral: Vec<(String, Vec<u8>)>,
        keys: &RuntimeKeys,
        template: &ClaimsTemplate,
        simulated: bool,
    ) -> Self {
        let claims = RuntimeClaims {
            tls_spki_sha256: spki_sha256(&keys.tls_spki_der()),
            receipt_key: ReceiptKey {
                alg: COSE_ALG_EDDSA,
                public_key: keys.receipt.public_key().as_ref().to_vec(),
            },
            auditor_hpke_key: template.auditor_hpke_public_key.map(|k| HpkeKey {
                kem: HPKE_KEM_X25519_SHA256,
                public_key: k.to_vec(),
            }),
            model_digest: template.model_digest,
            runtime_version: crate::RUNTIME_VERSION.to_owned(),
            launch_config_digest: template.launch_config_digest,
            nonce: None,
            gpu_evidence_digest: None,
        };
        Attester {
            source,
            collateral,
            claims,
            simulated,
            gpus: Vec::new(),
            gpu_rims: Vec::new(),
            gpu_ocsp: None,
        }
    }

    /// Ask the GPUs of `source` for evidence answering this runtime's GPU nonce
    /// ([`RuntimeClaims::gpu_nonce`]), check it answers that nonce, and bind the set in
    /// claim 8. No GPU leaves claim 8 absent.
    pub fn bind_gpus(
        &mut self,
        source: &dyn crate::gpu::GpuEvidenceSource,
    ) -> Result<usize, crate::gpu::GpuError> {
        let gpus = crate::gpu::collect_checked(source, self.claims.gpu_nonce())?;
        self.claims.gpu_evidence_digest = crate::gpu::evidence_digest(&gpus);
        self.gpus = gpus;
        Ok(self.gpus.len())
    }

    /// Serve, with every bundle, the RIMs among `rims` whose versions are those the bound
    /// GPUs' evidence states ([`crate::gpu::rims::select`]). Returns a log line for each GPU
    /// and kind left without one.
    pub fn serve_gpu_rims(&mut self, rims: &[crate::gpu::rims::HostRim]) -> Vec<String> {
        let (chosen, notes) = crate::gpu::rims::select(&self.gpus, rims);
        self.gpu_rims = chosen;
        notes
    }

    /// Serve, with every bundle, the OCSP responses in `collateral_dir/nvidia-ocsp/` that
    /// verify for the bound GPUs with `anchors` ([`crate::gpu::ocsp`]), re-read every
    /// minute. Returns the log lines of the first read.
    pub fn serve_gpu_ocsp(
        &mut self,
        collateral_dir: &std::path::Path,
        anchors: attestation::nvidia::NvidiaTrustAnchors,
    ) -> Vec<String> {
        let (server, notes) = crate::gpu::ocsp::OcspServer::open(
            collateral_dir,
            &self.gpus,
            self.claims.gpu_nonce(),
            anchors,
            crate::gpu::ocsp::now(),
        );
        self.gpu_ocsp = Some(server);
        notes
    }

    /// How many RIMs are served (driver and VBIOS, over all GPUs).
    pub fn served_rims(&self) -> usize {
        self.gpu_rims
            .iter()
            .map(|r| usize::from(r.driver.is_some()) + usize::from(r.vbios.is_some()))
            .sum()
    }

    pub fn claims(&self) -> &RuntimeClaims {
        &self.claims
    }

    pub fn kind(&self) -> TeeKind {
        self.source.kind()
    }

    pub fn is_simulated(&self) -> bool {
        self.simulated
    }

    pub fn describe(&self) -> String {
        self.source.describe()
    }

    /// Fresh evidence over the claims, with the caller's nonce when given.
    pub fn bundle(&self, nonce: Option<&[u8]>) -> Result<EvidenceBundle, PlatformError> {
        let claims = RuntimeClaims {
            nonce: nonce.map(<[u8]>::to_vec),
            ..self.claims.clone()
        };
        let claims_bytes = claims.to_cbor();
        let report_data = attestation::binding::report_data_of(&claims_bytes);
        let evidence = self.source.evidence(&report_data)?;
        let mut bundle = EvidenceBundle::new(claims_bytes);
        let (label, media) = match evidence.kind {
            TeeKind::SevSnp => ("report", SNP_REPORT_MEDIA_TYPE),
            TeeKind::Tdx => ("quote", TDX_QUOTE_MEDIA_TYPE),
        };
        bundle.push(label, media, evidence.report, IND_EVIDENCE);
        let mut used: Vec<String> = vec![label.to_owned()];
        for (name, bytes) in evidence.certificates.iter().chain(&self.collateral) {
            // The same certificate may come from the platform and from the host's
            // directory: serve it once.
            if bundle.entries.iter().any(|e| &e.value == bytes) {
                continue;
            }
            let mut label = name.clone();
            let mut n = 1;
            while used.contains(&label) || label == "claims" || label == "__cmwc_t" {
                n += 1;
                label = format!("{name}-{n}");
            }
            used.push(label.clone());
            bundle.push(&label, media_type_of(name), bytes.clone(), IND_ENDORSEMENT);
        }
        crate::gpu::push_entries(&mut bundle, &self.gpus);
        crate::gpu::rims::push_entries(&mut bundle, &self.gpu_rims);
        if let Some(ocsp) = &self.gpu_ocsp {
            ocsp.push_entries(&mut bundle, crate::gpu::ocsp::now());
        }
        Ok(bundle)
    }
}

/// The runtime's side of the launch binding: the digest of the launch configuration it
/// loaded must be what the host put in the hardware's launch data, SEV-SNP HOST_DATA or
/// TDX MRCONFIGID (the digest, then 16 zero bytes), as `veritee-host launch` does. A host
/// that launched the VM with one configuration and handed the runtime another is caught
/// here, before anything is served (clients would refuse it anyway: their policy pins both
/// values, but only the runtime can say at start which of the two is wrong).
pub fn check_launch_binding(
    bundle: &EvidenceBundle,
    launch_digest: &[u8; 32],
) -> Result<(), String> {
    let evidence = bundle
        .entries
        .iter()
        .find(|e| e.indicator == IND_EVIDENCE)
        .ok_or("the evidence bundle has no report or quote")?;
    let (field, carried, expected) = match evidence.media_type.as_str() {
        SNP_REPORT_MEDIA_TYPE => {
            let parsed = attestation::snp::SnpEvidence::parse(&evidence.value)
                .map_err(|e| format!("our own SEV-SNP report does not parse: {e}"))?;
            (
                "SEV-SNP HOST_DATA",
                parsed.report().host_data.to_vec(),
                launch_digest.to_vec(),
            )
        }
        TDX_QUOTE_MEDIA_TYPE => {
            let quote = attestation::tdx::Quote::parse(&evidence.value)
                .map_err(|e| format!("our own TDX quote does not parse: {e}"))?;
            let mut expected = launch_digest.to_vec();
            expected.extend_from_slice(&[0; 16]);
            ("TDX MRCONFIGID", quote.body.mr_config_id.to_vec(), expected)
        }
        other => return Err(format!("evidence of unknown type {other}")),
    };
    if carried == expected {
        return Ok(());
    }
    let unset = if carried.iter().all(|&b| b == 0) {
        " (all zero: the host set none)"
    } else {
        ""
    };
    Err(format!(
        "{field} is {}{unset}, but the launch configuration loaded has SHA-256 {}: the VM was \
         not launched with the configuration it was handed. `veritee-host launch \
         --launch-config FILE` passes FILE to the guest and puts its SHA-256 in {field}; \
         refusing to start",
        hex::encode(&carried),
        hex::encode(launch_digest)
    ))
}

/// A media type from a collateral file's name; the verifier recognises entries by content,
/// so this only helps a human reading the bundle.
fn media_type_of(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".der") || lower.ends_with(".cer") || lower.ends_with(".crt") {
        CERT_MEDIA_TYPE
    } else if lower.ends_with(".crl") {
        CRL_MEDIA_TYPE
    } else if lower.ends_with(".json") {
        JSON_MEDIA_TYPE
    } else if lower.ends_with(".pem") {
        "application/x-pem-file"
    } else {
        "application/octet-stream"
    }
}

/// The simulated SEV-SNP TEE as an evidence source (development only).
#[cfg(feature = "simulate")]
pub mod simulated {
    use super::*;
    use crate::platform::PlatformEvidence;
    use sim::tee::SimulatedSnp;

    pub struct SimulatedSource {
        tee: SimulatedSnp,
        host_data: [u8; 32],
        dir: std::path::PathBuf,
    }

    impl SimulatedSource {
        /// Open (or create) the development chain in `dir`; `host_data` stands for what
        /// the host would place in HOST_DATA (the launch configuration digest).
        pub fn open(dir: &std::path::Path, host_data: [u8; 32]) -> Result<Self, String> {
            let tee = SimulatedSnp::open_or_create(dir)
                .map_err(|e| format!("simulated TEE in {}: {e}", dir.display()))?;
            Ok(SimulatedSource {
                tee,
                host_data,
                dir: dir.to_owned(),
            })
        }

        pub fn tee(&self) -> &SimulatedSnp {
            &self.tee
        }
    }

    impl EvidenceSource for SimulatedSource {
        fn kind(&self) -> TeeKind {
            TeeKind::SevSnp
        }

        fn describe(&self) -> String {
            format!(
                "SIMULATED SEV-SNP (development chain in {})",
                self.dir.display()
            )
        }

        fn evidence(&self, report_data: &[u8; 64]) -> Result<PlatformEvidence, PlatformError> {
            Ok(PlatformEvidence {
                kind: TeeKind::SevSnp,
                report: self.tee.report(report_data, &self.host_data),
                certificates: vec![
                    ("vcek.der".into(), self.tee.vcek_der().to_vec()),
                    ("ask.der".into(), self.tee.ask_der().to_vec()),
                    ("ark.der".into(), self.tee.ark_der().to_vec()),
                    // The ARK's CRL, so a policy can require revocation to be checked.
                    ("ark.crl".into(), self.tee.ark_crl().to_vec()),
                ],
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::PlatformEvidence;
    use attestation::bundle::EvidenceBundle;
    use std::sync::Mutex;

    /// A platform that records the REPORT_DATA it was asked to sign.
    struct Recording(Mutex<Vec<[u8; 64]>>);

    impl EvidenceSource for Recording {
        fn kind(&self) -> TeeKind {
            TeeKind::SevSnp
        }
        fn describe(&self) -> String {
            "recording test platform".into()
        }
        fn evidence(&self, report_data: &[u8; 64]) -> Result<PlatformEvidence, PlatformError> {
            self.0.lock().unwrap().push(*report_data);
            Ok(PlatformEvidence {
                kind: TeeKind::SevSnp,
                report: report_data.to_vec(),
                certificates: vec![("vcek.der".into(), vec![1, 2, 3])],
            })
        }
    }

    /// A bundle around one report or quote, as `Attester::bundle` makes it.
    fn bundle_of(media_type: &str, evidence: Vec<u8>) -> EvidenceBundle {
        let mut bundle = EvidenceBundle::new(vec![0xa0]);
        bundle.push("report", media_type, evidence, IND_EVIDENCE);
        bundle
    }

    #[test]
    fn launch_binding_requires_host_data_or_mrconfigid_to_be_the_launch_digest() {
        use sim::{FakeIntel, FakeProduct, SnpReportBuilder, TdxQuoteBuilder};
        let digest = crate::sha256(b"model_digest = \"...\"\n");
        let other = crate::sha256(b"");

        let snp = |host_data: [u8; 32]| {
            let report = SnpReportBuilder::new(FakeProduct::Genoa)
                .host_data(host_data)
                .build_unsigned();
            bundle_of(SNP_REPORT_MEDIA_TYPE, report)
        };
        check_launch_binding(&snp(digest), &digest).unwrap();
        let err = check_launch_binding(&snp(other), &digest).unwrap_err();
        assert!(
            err.starts_with(&format!("SEV-SNP HOST_DATA is {}, but", hex::encode(other)))
                && err.contains(&hex::encode(digest))
                && err.ends_with("refusing to start"),
            "{err}"
        );
        let err = check_launch_binding(&snp([0; 32]), &digest).unwrap_err();
        assert!(err.contains("(all zero: the host set none)"), "{err}");

        let intel = FakeIntel::new();
        let pck = intel.pck_leaf().build(&intel);
        let tdx = |mr_config_id: [u8; 48]| {
            let quote = TdxQuoteBuilder::new()
                .mr_config_id(mr_config_id)
                .build(&intel, &pck);
            bundle_of(TDX_QUOTE_MEDIA_TYPE, quote)
        };
        let mut mrconfigid = [0u8; 48];
        mrconfigid[..32].copy_from_slice(&digest);
        check_launch_binding(&tdx(mrconfigid), &digest).unwrap();
        // The digest must be followed by zeros, not by anything else.
        let mut trailing = mrconfigid;
        trailing[47] = 1;
        let err = check_launch_binding(&tdx(trailing), &digest).unwrap_err();
        assert!(err.starts_with("TDX MRCONFIGID is "), "{err}");
        let err = check_launch_binding(&tdx([0; 48]), &digest).unwrap_err();
        assert!(err.contains("the host set none"), "{err}");

        // Evidence that does not parse is an error, not a pass.
        let err = check_launch_binding(&bundle_of(SNP_REPORT_MEDIA_TYPE, vec![1; 100]), &digest)
            .unwrap_err();
        assert!(
            err.starts_with("our own SEV-SNP report does not parse"),
            "{err}"
        );
        let err = check_launch_binding(&EvidenceBundle::new(vec![0xa0]), &digest).unwrap_err();
        assert_eq!(err, "the evidence bundle has no report or quote");
    }

    #[test]
    fn bundles_bind_claims_with_and_without_nonce_and_serve_collateral_once() {
        let keys = RuntimeKeys::generate().unwrap();
        let template = ClaimsTemplate {
            model_digest: [3; 32],
            launch_config_digest: [4; 32],
            auditor_hpke_public_key: Some([5; 32]),
        };
        let collateral = vec![
            ("vcek.der".to_string(), vec![1, 2, 3]), // same bytes as the platform's: once
            ("ark.pem".to_string(), b"-----BEGIN".to_vec()),
            ("vcek.der".to_string(), vec![9]), // same name, other bytes: renamed
        ];
        let source = Box::new(Recording(Mutex::new(Vec::new())));
        let attester = Attester::new(source, collateral, &keys, &template, false);
        assert_eq!(
            attester.claims().tls_spki_sha256,
            spki_sha256(&keys.tls_spki_der())
        );
        assert_eq!(
            attester.claims().receipt_key.public_key,
            keys.receipt.public_key().as_ref()
        );

        let plain = attester.bundle(None).unwrap();
        let parsed = EvidenceBundle::from_cbor(&plain.to_cbor()).unwrap();
        let claims = RuntimeClaims::from_cbor(&parsed.claims).unwrap();
        assert_eq!(claims.nonce, None);
        assert_eq!(claims.model_digest, [3; 32]);
        // The platform signed SHA-512 of exactly the claims bytes in the bundle.
        assert_eq!(
            parsed.entries[0].value,
            attestation::binding::report_data_of(&parsed.claims).to_vec()
        );
        let labels: Vec<&str> = parsed.entries.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(labels, ["report", "vcek.der", "ark.pem", "vcek.der-2"]);

        let nonced = attester.bundle(Some(&[7; 16])).unwrap();
        let claims = RuntimeClaims::from_cbor(&nonced.claims).unwrap();
        assert_eq!(claims.nonce.as_deref(), Some(&[7u8; 16][..]));
        assert_ne!(nonced.claims, plain.claims);
    }
}
