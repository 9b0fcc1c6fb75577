//! The fourth layer: runtime claims and their binding to REPORT_DATA.
//!
//! The guest runtime states what it is (its TLS key, receipt-signing key, the auditor's
//! HPKE key it encrypts transcripts to, the model it serves, its version, its launch
//! configuration, and optionally a caller's nonce) in a small CBOR map, and asks the
//! hardware to sign `REPORT_DATA = SHA-512(claims bytes)`. All 64 bytes are compared.
//!
//! The encoding is canonical and strict so that one set of claims has exactly one byte
//! string: a map with unsigned integer keys in ascending order, definite lengths,
//! shortest-form integers, no unknown keys. [`RuntimeClaims::from_cbor`] re-encodes what
//! it parsed and refuses input that differs, so two verifiers never disagree about what
//! was bound.
//!
//! | key | claim | CBOR |
//! |---|---|---|
//! | 0 | version (1) | uint |
//! | 1 | SHA-256 of the TLS SubjectPublicKeyInfo | bstr .size 32 |
//! | 2 | receipt-signing key | [COSE alg (int), public key (bstr)] |
//! | 3 | auditor HPKE key (absent: no auditing configured) | [KEM id (uint), public key (bstr)] |
//! | 4 | model digest (SHA-256 of the weight files) | bstr .size 32 |
//! | 5 | runtime version | tstr |
//! | 6 | launch configuration digest (SHA-256) | bstr .size 32 |
//! | 7 | client nonce (absent: none asked for) | bstr, 8..=64 bytes |
//! | 8 | GPU evidence digest (absent: no GPU evidence) | bstr .size 32 |
//!
//! Claim 8 is [`gpu_evidence_digest`] of the GPUs the bundle serves; each GPU's evidence
//! answers the SPDM nonce [`RuntimeClaims::gpu_nonce`], derived from the other claims.

use crate::crypto::digest;
use crate::evidence::VerifiedEvidence;
use crate::policy::{Appraised, Constraint, GpuPolicy, Hex, Policy};
use crate::reason::{reject, Reason, Rejection};
use ciborium::value::{Integer, Value};
use serde::Serialize;

/// The claims format version this crate writes and accepts.
pub const CLAIMS_VERSION: u64 = 1;
/// COSE algorithm identifier for EdDSA (RFC 9053).
pub const COSE_ALG_EDDSA: i64 = -8;
/// COSE algorithm identifier for ECDSA P-256 with SHA-256 (RFC 9053).
pub const COSE_ALG_ES256: i64 = -7;
/// HPKE KEM identifier for DHKEM(X25519, HKDF-SHA256) (RFC 9180).
pub const HPKE_KEM_X25519_SHA256: u16 = 0x0020;
/// Bounds on a client nonce: at least 64 bits of freshness, at most what fits the claims.
pub const NONCE_LEN: std::ops::RangeInclusive<usize> = 8..=64;
/// Upper bound on the encoded claims: keys and digests are small.
const MAX_CLAIMS_LEN: usize = 4096;

/// A public key with the algorithm it is used with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceiptKey {
    /// COSE algorithm: [`COSE_ALG_EDDSA`] (32-byte Ed25519 key) or [`COSE_ALG_ES256`]
    /// (65-byte uncompressed P-256 point).
    pub alg: i64,
    #[serde(with = "hex_bytes")]
    pub public_key: Vec<u8>,
}

/// The auditor's HPKE public key that transcripts are encrypted to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HpkeKey {
    pub kem: u16,
    #[serde(with = "hex_bytes")]
    pub public_key: Vec<u8>,
}

/// What the runtime states about itself, bound into REPORT_DATA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuntimeClaims {
    #[serde(with = "hex_bytes")]
    pub tls_spki_sha256: [u8; 32],
    pub receipt_key: ReceiptKey,
    pub auditor_hpke_key: Option<HpkeKey>,
    #[serde(with = "hex_bytes")]
    pub model_digest: [u8; 32],
    pub runtime_version: String,
    #[serde(with = "hex_bytes")]
    pub launch_config_digest: [u8; 32],
    #[serde(with = "opt_hex")]
    pub nonce: Option<Vec<u8>>,
    #[serde(with = "opt_hex")]
    pub gpu_evidence_digest: Option<[u8; 32]>,
}

impl RuntimeClaims {
    /// The canonical CBOR encoding. Panics only on claims that break this type's own
    /// invariants (a nonce outside [`NONCE_LEN`] or an unknown key algorithm): the
    /// runtime builds claims from values it generated.
    pub fn to_cbor(&self) -> Vec<u8> {
        self.check().expect("runtime claims are well-formed");
        let mut map: Vec<(Value, Value)> = vec![
            (key(0), Value::Integer(CLAIMS_VERSION.into())),
            (key(1), Value::Bytes(self.tls_spki_sha256.to_vec())),
            (
                key(2),
                Value::Array(vec![
                    Value::Integer(self.receipt_key.alg.into()),
                    Value::Bytes(self.receipt_key.public_key.clone()),
                ]),
            ),
        ];
        if let Some(hpke) = &self.auditor_hpke_key {
            map.push((
                key(3),
                Value::Array(vec![
                    Value::Integer(hpke.kem.into()),
                    Value::Bytes(hpke.public_key.clone()),
                ]),
            ));
        }
        map.push((key(4), Value::Bytes(self.model_digest.to_vec())));
        map.push((key(5), Value::Text(self.runtime_version.clone())));
        map.push((key(6), Value::Bytes(self.launch_config_digest.to_vec())));
        if let Some(nonce) = &self.nonce {
            map.push((key(7), Value::Bytes(nonce.clone())));
        }
        if let Some(gpu) = &self.gpu_evidence_digest {
            map.push((key(8), Value::Bytes(gpu.to_vec())));
        }
        let mut out = Vec::new();
        ciborium::into_writer(&Value::Map(map), &mut out).expect("writing to a Vec");
        out
    }

    /// Parse claims bytes strictly: known version, known keys in canonical order, right
    /// types and sizes, and exactly the bytes [`Self::to_cbor`] would write.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, Rejection> {
        let bad = |detail: String| Rejection::new(Reason::ClaimsMalformed, detail);
        if bytes.len() > MAX_CLAIMS_LEN {
            return Err(bad(format!(
                "runtime claims are {} bytes, more than the {MAX_CLAIMS_LEN} allowed",
                bytes.len()
            )));
        }
        let value: Value = ciborium::from_reader(bytes)
            .map_err(|e| bad(format!("runtime claims are not CBOR: {e}")))?;
        let Value::Map(entries) = value else {
            return Err(bad("runtime claims are not a CBOR map".into()));
        };
        let mut fields: [Option<Value>; 9] = Default::default();
        let mut last: Option<u64> = None;
        for (k, v) in entries {
            let k = match k {
                Value::Integer(i) => u64::try_from(i128::from(i)).ok(),
                _ => None,
            }
            .ok_or_else(|| bad("runtime claims key is not an unsigned integer".into()))?;
            if last.is_some_and(|l| k <= l) {
                return Err(bad(format!(
                    "runtime claims key {k} is out of canonical order or repeated"
                )));
            }
            last = Some(k);
            let slot = fields
                .get_mut(k as usize)
                .ok_or_else(|| bad(format!("runtime claims key {k} is unknown")))?;
            *slot = Some(v);
        }
        let [version, tls, receipt, hpke, model, runtime, launch, nonce, gpu] = fields;
        let version = uint(version, "version (key 0)")?;
        if version != CLAIMS_VERSION {
            return reject(
                Reason::UnsupportedVersion,
                format!("runtime claims version {version}; this verifier knows {CLAIMS_VERSION}"),
            );
        }
        let (alg, public_key) = pair(receipt, "receipt key (key 2)")?;
        let claims = RuntimeClaims {
            tls_spki_sha256: digest32(tls, "TLS key digest (key 1)")?,
            receipt_key: ReceiptKey {
                alg: i64::try_from(alg)
                    .map_err(|_| bad("receipt key algorithm out of range".into()))?,
                public_key,
            },
            auditor_hpke_key: match hpke {
                None => None,
                Some(v) => {
                    let (kem, public_key) = pair(Some(v), "auditor HPKE key (key 3)")?;
                    Some(HpkeKey {
                        kem: u16::try_from(kem)
                            .map_err(|_| bad("auditor HPKE KEM id out of range".into()))?,
                        public_key,
                    })
                }
            },
            model_digest: digest32(model, "model digest (key 4)")?,
            runtime_version: match runtime {
                Some(Value::Text(t)) => t,
                _ => return Err(bad("runtime version (key 5) missing or not text".into())),
            },
            launch_config_digest: digest32(launch, "launch config digest (key 6)")?,
            nonce: match nonce {
                None => None,
                Some(Value::Bytes(b)) => Some(b),
                Some(_) => return Err(bad("nonce (key 7) is not a byte string".into())),
            },
            gpu_evidence_digest: match gpu {
                None => None,
                v => Some(digest32(v, "GPU evidence digest (key 8)")?),
            },
        };
        claims.check()?;
        if claims.to_cbor() != bytes {
            return Err(bad(
                "runtime claims are not in canonical CBOR (shortest integers, definite lengths)"
                    .into(),
            ));
        }
        Ok(claims)
    }

    /// REPORT_DATA for these claims: SHA-512 of their canonical encoding.
    pub fn report_data(&self) -> [u8; 64] {
        report_data_of(&self.to_cbor())
    }

    fn check(&self) -> Result<(), Rejection> {
        let bad = |detail: String| Rejection::new(Reason::ClaimsMalformed, detail);
        let want = match self.receipt_key.alg {
            COSE_ALG_EDDSA => 32,
            COSE_ALG_ES256 => 65,
            other => {
                return Err(bad(format!(
                    "receipt key algorithm {other} is not supported"
                )))
            }
        };
        if self.receipt_key.public_key.len() != want {
            return Err(bad(format!(
                "receipt public key is {} bytes; algorithm {} needs {want}",
                self.receipt_key.public_key.len(),
                self.receipt_key.alg
            )));
        }
        if let Some(hpke) = &self.auditor_hpke_key {
            if hpke.kem != HPKE_KEM_X25519_SHA256 || hpke.public_key.len() != 32 {
                return Err(bad(format!(
                    "auditor HPKE key: KEM 0x{:04x} with a {}-byte key; only X25519 (0x0020, 32 bytes) is supported",
                    hpke.kem,
                    hpke.public_key.len()
                )));
            }
        }
        if let Some(nonce) = &self.nonce {
            if !NONCE_LEN.contains(&nonce.len()) {
                return Err(bad(format!(
                    "nonce is {} bytes; {}..={} allowed",
                    nonce.len(),
                    NONCE_LEN.start(),
                    NONCE_LEN.end()
                )));
            }
        }
        Ok(())
    }
}

/// Domain-separation label of the GPU nonce ([`RuntimeClaims::gpu_nonce`]).
pub const GPU_NONCE_LABEL: &[u8] = b"veritee/gpu-nonce/v1\0";
/// Domain-separation label of claim 8 ([`gpu_evidence_digest`]).
pub const GPU_EVIDENCE_SET_LABEL: &[u8] = b"veritee/gpu-evidence-set/v1\0";

impl RuntimeClaims {
    /// The SPDM requester nonce the runtime asks each of its GPUs to sign:
    ///
    /// `SHA-256(GPU_NONCE_LABEL || to_cbor(claims without claim 7 and claim 8))`
    ///
    /// The claims without the per-request client nonce (7) and without the GPU digest (8)
    /// (which is computed from the evidence, so cannot go into its own nonce): the TLS
    /// key, receipt key, auditor key, model, version and launch configuration. GPU
    /// evidence carrying this nonce was produced after these keys existed and for them.
    pub fn gpu_nonce(&self) -> [u8; 32] {
        let base = RuntimeClaims {
            nonce: None,
            gpu_evidence_digest: None,
            ..self.clone()
        };
        let mut input = GPU_NONCE_LABEL.to_vec();
        input.extend(base.to_cbor());
        crate::x509::sha256(&input)
    }
}

/// Claim 8 for a set of GPUs, each given as (evidence bytes, device chain PEM bytes)
/// exactly as the bundle serves them, in bundle order (`gpu0`, `gpu1`, ...):
///
/// `SHA-256(GPU_EVIDENCE_SET_LABEL || u32be(N) || SHA-256(evidence_0) || SHA-256(chain_0)
/// || ... || SHA-256(evidence_N-1) || SHA-256(chain_N-1))`
///
/// Every part has a fixed length, so one digest names one ordered set.
pub fn gpu_evidence_digest<E: AsRef<[u8]>, C: AsRef<[u8]>>(gpus: &[(E, C)]) -> [u8; 32] {
    let mut input = GPU_EVIDENCE_SET_LABEL.to_vec();
    input.extend(u32::try_from(gpus.len()).unwrap_or(u32::MAX).to_be_bytes());
    for (evidence, chain) in gpus {
        input.extend(crate::x509::sha256(evidence.as_ref()));
        input.extend(crate::x509::sha256(chain.as_ref()));
    }
    crate::x509::sha256(&input)
}

/// SHA-512 of the claims bytes as received: the value REPORT_DATA must hold.
pub fn report_data_of(claims_bytes: &[u8]) -> [u8; 64] {
    let d = digest::digest(&digest::SHA512, claims_bytes);
    let mut out = [0u8; 64];
    out.copy_from_slice(d.as_ref());
    out
}

/// SHA-256 of a DER SubjectPublicKeyInfo, as named in claim 1.
pub fn spki_sha256(spki_der: &[u8]) -> [u8; 32] {
    crate::x509::sha256(spki_der)
}

/// Evidence that verified, passed the policy and is bound to these runtime claims. Only
/// [`bind`] constructs it.
#[derive(Debug)]
pub struct Bound<'a> {
    evidence: &'a VerifiedEvidence,
    claims: RuntimeClaims,
}

/// Bind appraised evidence to the claims bytes that came with it: all 64 bytes of
/// REPORT_DATA must equal SHA-512 of exactly those bytes, and the bytes must parse.
pub fn bind<'a>(appraised: Appraised<'a>, claims_bytes: &[u8]) -> Result<Bound<'a>, Rejection> {
    let evidence = appraised.evidence();
    let expected = report_data_of(claims_bytes);
    let actual = evidence.report_data();
    if expected != actual {
        return reject(
            Reason::ClaimsNotBound,
            format!(
                "REPORT_DATA {} is not SHA-512 of the runtime claims ({})",
                hex::encode(actual),
                hex::encode(expected)
            ),
        );
    }
    let claims = RuntimeClaims::from_cbor(claims_bytes)?;
    Ok(Bound { evidence, claims })
}

impl<'a> Bound<'a> {
    pub fn evidence(&self) -> &'a VerifiedEvidence {
        self.evidence
    }

    pub fn claims(&self) -> &RuntimeClaims {
        &self.claims
    }

    /// The TLS key a server presented (its SubjectPublicKeyInfo DER) must be the bound one.
    pub fn require_tls_key(&self, spki_der: &[u8]) -> Result<(), Rejection> {
        require_tls_key(&self.claims, spki_der)
    }

    /// The claims must carry exactly `nonce` (the caller's fresh challenge).
    pub fn require_nonce(&self, nonce: &[u8]) -> Result<(), Rejection> {
        require_nonce(&self.claims, nonce)
    }
}

pub(crate) fn require_tls_key(claims: &RuntimeClaims, spki_der: &[u8]) -> Result<(), Rejection> {
    let presented = spki_sha256(spki_der);
    if presented != claims.tls_spki_sha256 {
        return reject(
            Reason::TlsKeyNotBound,
            format!(
                "the TLS key presented (SPKI SHA-256 {}) is not the attested one ({})",
                hex::encode(presented),
                hex::encode(claims.tls_spki_sha256)
            ),
        );
    }
    Ok(())
}

pub(crate) fn require_nonce(claims: &RuntimeClaims, nonce: &[u8]) -> Result<(), Rejection> {
    match &claims.nonce {
        Some(n) if n.as_slice() == nonce => Ok(()),
        Some(n) => reject(
            Reason::NonceMismatch,
            format!(
                "the evidence answers nonce {}, not the one sent ({})",
                hex::encode(n),
                hex::encode(nonce)
            ),
        ),
        None => reject(
            Reason::NonceMismatch,
            "a fresh nonce was asked for and the evidence carries none",
        ),
    }
}

/// What a client requires of the runtime's claims, beyond what the evidence policy checks
/// of the hardware: the `[runtime]` section of a policy file. Every field is mandatory;
/// `"any"` is explicit.
///
/// ```toml
/// [runtime]
/// model_digests = ["<64 hex digits>"]        # "any" | [...]
/// launch_config_digests = "any"              # "any" | ["<64 hex digits>", ...]
/// runtime_versions = "any"                   # "any" | ["veritee-enclave 0.1.0", ...]
/// auditor_hpke_keys = ["<64 hex digits>"]    # [...] | "none" | "dangerous_any"
/// ```
///
/// `auditor_hpke_keys` has no plain `"any"`: the auditor key is named by the launch
/// configuration, which the host hands the genuine image, so "any auditor key" lets the
/// host name its own key and read every audited transcript. A policy pins the auditor's
/// key(s) (the runtime must carry one of them), says `"none"` (the runtime must carry no
/// auditor key, so it seals no transcript), or says `"dangerous_any"`. In the type,
/// `Constraint::Only(vec![])` is `"none"` and `Constraint::Any` is `"dangerous_any"`; an
/// `"any"` in a file is a policy error that says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimePolicy {
    pub model_digests: Constraint<Vec<Hex<32>>>,
    pub launch_config_digests: Constraint<Vec<Hex<32>>>,
    pub runtime_versions: Constraint<Vec<String>>,
    #[serde(with = "auditor_keys")]
    pub auditor_hpke_keys: Constraint<Vec<Hex<32>>>,
}

/// `auditor_hpke_keys`: `"none"` / `[]` → `Only([])`, a list → `Only(list)`,
/// `"dangerous_any"` → `Any`; `"any"` is refused with what to write instead.
mod auditor_keys {
    use super::{Constraint, Hex};
    use serde::de::{self, Deserialize, Deserializer};
    use serde::{Serialize, Serializer};

    pub(super) const ANY_REFUSED: &str = "auditor_hpke_keys = \"any\" is not accepted: the host names the auditor key in the launch configuration, so \"any\" would let it read every audited transcript. Write the auditor's public key(s) as a list ([\"<64 hex digits>\"]), \"none\" to refuse runtimes that seal transcripts, or \"dangerous_any\" to accept any auditor key knowingly";

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Constraint<Vec<Hex<32>>>, D::Error> {
        let value = toml::Value::deserialize(deserializer)?;
        match value.as_str() {
            Some("none") => return Ok(Constraint::Only(Vec::new())),
            Some("dangerous_any") => return Ok(Constraint::Any),
            Some("any") => return Err(de::Error::custom(ANY_REFUSED)),
            _ => {}
        }
        Vec::<Hex<32>>::deserialize(value)
            .map(Constraint::Only)
            .map_err(|e| {
                de::Error::custom(format!(
                    "expected a list of auditor keys, \"none\" or \"dangerous_any\": {e}"
                ))
            })
    }

    pub fn serialize<S: Serializer>(
        keys: &Constraint<Vec<Hex<32>>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match keys {
            Constraint::Any => serializer.serialize_str("dangerous_any"),
            Constraint::Only(list) if list.is_empty() => serializer.serialize_str("none"),
            Constraint::Only(list) => list.serialize(serializer),
        }
    }
}

impl RuntimePolicy {
    /// Accepts any claims, including any auditor key (so a transcript may be sealed to a
    /// key the host chose): `veritee-verify receipts --dangerous-any-runtime` only.
    pub fn dangerous_any() -> Self {
        RuntimePolicy {
            model_digests: Constraint::Any,
            launch_config_digests: Constraint::Any,
            runtime_versions: Constraint::Any,
            auditor_hpke_keys: Constraint::Any,
        }
    }

    /// The same as [`RuntimePolicy::dangerous_any`] (kept for existing callers; new code
    /// names the danger).
    #[doc(hidden)]
    pub fn any() -> Self {
        Self::dangerous_any()
    }

    /// Appraise bound claims, in a fixed order.
    pub fn appraise(&self, claims: &RuntimeClaims) -> Result<(), Rejection> {
        let listed = |c: &Constraint<Vec<Hex<32>>>, v: &[u8; 32]| match c {
            Constraint::Any => true,
            Constraint::Only(list) => list.iter().any(|h| &h.0 == v),
        };
        if !listed(&self.model_digests, &claims.model_digest) {
            return reject(
                Reason::ModelNotAllowed,
                format!(
                    "model digest {} is not in the policy's model_digests",
                    hex::encode(claims.model_digest)
                ),
            );
        }
        if !listed(&self.launch_config_digests, &claims.launch_config_digest) {
            return reject(
                Reason::LaunchConfigNotAllowed,
                format!(
                    "launch configuration digest {} is not in the policy's launch_config_digests",
                    hex::encode(claims.launch_config_digest)
                ),
            );
        }
        if let Constraint::Only(versions) = &self.runtime_versions {
            if !versions.contains(&claims.runtime_version) {
                return reject(
                    Reason::RuntimeVersionNotAllowed,
                    format!(
                        "runtime version {:?} is not in the policy's runtime_versions",
                        claims.runtime_version
                    ),
                );
            }
        }
        if let Constraint::Only(keys) = &self.auditor_hpke_keys {
            match (&claims.auditor_hpke_key, keys.is_empty()) {
                (None, true) => {}
                (None, false) => {
                    return reject(
                        Reason::AuditorKeyNotAllowed,
                        "the runtime names no auditor key (it seals no transcript); the policy's auditor_hpke_keys requires one of its keys",
                    )
                }
                (Some(k), true) => {
                    return reject(
                        Reason::AuditorKeyNotAllowed,
                        format!(
                            "the runtime seals transcripts to auditor key {}; the policy says auditor_hpke_keys = \"none\"",
                            hex::encode(&k.public_key)
                        ),
                    )
                }
                (Some(k), false) => {
                    if !keys.iter().any(|h| h.0[..] == k.public_key[..]) {
                        return reject(
                            Reason::AuditorKeyNotAllowed,
                            format!(
                                "the runtime seals transcripts to auditor key {}, which is not in the policy's auditor_hpke_keys",
                                hex::encode(&k.public_key)
                            ),
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

/// A complete policy file: the evidence policy ([`Policy`]) at the top level and the
/// runtime claims policy in `[runtime]`. Both are mandatory. The GPU policy in `[gpu]`
/// is optional: without it, [`GpuPolicy::none`] (no GPU required; bound GPU evidence is
/// still verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFile {
    pub evidence: Policy,
    pub runtime: RuntimePolicy,
    pub gpu: GpuPolicy,
}

impl PolicyFile {
    pub fn from_toml(text: &str) -> Result<Self, Rejection> {
        let mut table: toml::Table = toml::from_str(text)
            .map_err(|e| Rejection::new(Reason::PolicyInvalid, e.to_string()))?;
        let runtime = table.remove("runtime").ok_or_else(|| {
            Rejection::new(
                Reason::PolicyInvalid,
                "missing [runtime] section (model_digests, launch_config_digests, runtime_versions, auditor_hpke_keys)",
            )
        })?;
        let runtime: RuntimePolicy = runtime
            .try_into()
            .map_err(|e| Rejection::new(Reason::PolicyInvalid, format!("[runtime]: {e}")))?;
        let gpu: GpuPolicy = match table.remove("gpu") {
            None => GpuPolicy::none(),
            Some(gpu) => gpu
                .try_into()
                .map_err(|e| Rejection::new(Reason::PolicyInvalid, format!("[gpu]: {e}")))?,
        };
        gpu.check()?;
        let evidence: Policy = toml::Value::Table(table)
            .try_into()
            .map_err(|e| Rejection::new(Reason::PolicyInvalid, e.to_string()))?;
        evidence.check()?;
        Ok(PolicyFile {
            evidence,
            runtime,
            gpu,
        })
    }

    pub fn to_toml(&self) -> String {
        #[derive(Serialize)]
        struct Runtime<'a> {
            runtime: &'a RuntimePolicy,
        }
        #[derive(Serialize)]
        struct Gpu<'a> {
            gpu: &'a GpuPolicy,
        }
        let mut out = format!(
            "{}\n{}",
            self.evidence.to_toml(),
            toml::to_string(&Runtime {
                runtime: &self.runtime
            })
            .expect("a runtime policy serialises")
        );
        // Written whenever it differs from what its absence means.
        if self.gpu != GpuPolicy::none() {
            out.push('\n');
            out.push_str(
                &toml::to_string(&Gpu { gpu: &self.gpu }).expect("a GPU policy serialises"),
            );
        }
        out
    }
}

fn key(k: u64) -> Value {
    Value::Integer(Integer::from(k))
}

fn uint(v: Option<Value>, what: &str) -> Result<u64, Rejection> {
    match v {
        Some(Value::Integer(i)) => u64::try_from(i128::from(i)).ok(),
        _ => None,
    }
    .ok_or_else(|| {
        Rejection::new(
            Reason::ClaimsMalformed,
            format!("{what} missing or not an unsigned integer"),
        )
    })
}

fn digest32(v: Option<Value>, what: &str) -> Result<[u8; 32], Rejection> {
    match v {
        Some(Value::Bytes(b)) => <[u8; 32]>::try_from(b.as_slice()).ok(),
        _ => None,
    }
    .ok_or_else(|| {
        Rejection::new(
            Reason::ClaimsMalformed,
            format!("{what} missing or not a 32-byte string"),
        )
    })
}

/// `[int, bstr]`
fn pair(v: Option<Value>, what: &str) -> Result<(i128, Vec<u8>), Rejection> {
    if let Some(Value::Array(items)) = v {
        if let [Value::Integer(i), Value::Bytes(b)] = items.as_slice() {
            return Ok((i128::from(*i), b.clone()));
        }
    }
    reject(
        Reason::ClaimsMalformed,
        format!("{what} missing or not [integer, byte string]"),
    )
}

/// Serialises byte strings and arrays as hex (JSON output of claims and receipts).
pub(crate) mod hex_bytes {
    pub fn serialize<S: serde::Serializer, T: AsRef<[u8]>>(b: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }
}

mod opt_hex {
    pub fn serialize<S: serde::Serializer, T: AsRef<[u8]>>(
        b: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match b {
            Some(b) => s.serialize_some(&hex::encode(b)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_policy_appraises_each_claim_with_its_reason() {
        let c = sample();
        let text = format!(
            "{}\n[runtime]\nmodel_digests = [\"{}\"]\nlaunch_config_digests = \"any\"\nruntime_versions = [\"veritee-enclave 0.1.0\"]\nauditor_hpke_keys = [\"{}\"]\n",
            Policy::default_verifier().to_toml(),
            hex::encode([4u8; 32]),
            hex::encode([3u8; 32]),
        );
        let file = PolicyFile::from_toml(&text).unwrap();
        assert_eq!(PolicyFile::from_toml(&file.to_toml()).unwrap(), file);
        file.runtime.appraise(&c).unwrap();
        let reason = |c: RuntimeClaims| file.runtime.appraise(&c).unwrap_err().reason;
        assert_eq!(
            reason(RuntimeClaims {
                model_digest: [9; 32],
                ..sample()
            }),
            Reason::ModelNotAllowed
        );
        assert_eq!(
            reason(RuntimeClaims {
                runtime_version: "other".into(),
                ..sample()
            }),
            Reason::RuntimeVersionNotAllowed
        );
        assert_eq!(
            reason(RuntimeClaims {
                auditor_hpke_key: None,
                ..sample()
            }),
            Reason::AuditorKeyNotAllowed
        );
        // launch_config_digests: the pinned digest passes, any other is refused.
        let pinned = |digest: [u8; 32]| {
            PolicyFile::from_toml(&text.replace(
                "launch_config_digests = \"any\"",
                &format!("launch_config_digests = [\"{}\"]", hex::encode(digest)),
            ))
            .unwrap()
        };
        pinned([5; 32]).runtime.appraise(&c).unwrap();
        assert_eq!(
            pinned([7; 32]).runtime.appraise(&c).unwrap_err().reason,
            Reason::LaunchConfigNotAllowed
        );
        // Missing section, missing field, unknown field: policy errors.
        let evidence_only = Policy::default_verifier().to_toml();
        assert_eq!(
            PolicyFile::from_toml(&evidence_only).unwrap_err().reason,
            Reason::PolicyInvalid
        );
        let partial = format!("{evidence_only}\n[runtime]\nmodel_digests = \"any\"\n");
        assert_eq!(
            PolicyFile::from_toml(&partial).unwrap_err().reason,
            Reason::PolicyInvalid
        );
        assert_eq!(
            PolicyFile::from_toml(&text.replace("runtime_versions", "runtime_version"))
                .unwrap_err()
                .reason,
            Reason::PolicyInvalid
        );
    }

    /// Issue 13: `auditor_hpke_keys = "any"` let the host name its own auditor key in the
    /// launch configuration of the genuine image and read every audited transcript. A
    /// policy now pins the keys, says "none", or says "dangerous_any"; "any" fails closed
    /// with what to write instead.
    #[test]
    fn auditor_keys_are_pinned_none_or_dangerous_any_never_plain_any() {
        let with = |keys: &str| {
            format!(
                "{}\n[runtime]\nmodel_digests = \"any\"\nlaunch_config_digests = \"any\"\nruntime_versions = \"any\"\nauditor_hpke_keys = {keys}\n",
                Policy::default_verifier().to_toml()
            )
        };
        let err = PolicyFile::from_toml(&with("\"any\"")).unwrap_err();
        assert_eq!(err.reason, Reason::PolicyInvalid);
        for hint in ["\"none\"", "\"dangerous_any\"", "list", "transcript"] {
            assert!(err.detail.contains(hint), "{hint}: {}", err.detail);
        }
        let sealing = sample();
        let not_sealing = RuntimeClaims {
            auditor_hpke_key: None,
            ..sample()
        };
        let appraise = |keys: &str, c: &RuntimeClaims| {
            let file = PolicyFile::from_toml(&with(keys)).unwrap();
            assert_eq!(PolicyFile::from_toml(&file.to_toml()).unwrap(), file);
            file.runtime.appraise(c).map_err(|r| r.reason)
        };
        let pinned = format!("[\"{}\"]", hex::encode([3u8; 32]));
        let other = format!("[\"{}\"]", hex::encode([8u8; 32]));
        let refused = Err(Reason::AuditorKeyNotAllowed);
        // Pinned: the runtime must seal to one of the keys.
        assert_eq!(appraise(&pinned, &sealing), Ok(()));
        assert_eq!(appraise(&other, &sealing), refused);
        assert_eq!(appraise(&pinned, &not_sealing), refused);
        // "none" (and its old spelling []): the runtime must seal nothing.
        assert_eq!(appraise("\"none\"", &not_sealing), Ok(()));
        assert_eq!(appraise("\"none\"", &sealing), refused);
        assert_eq!(appraise("[]", &not_sealing), Ok(()));
        assert_eq!(appraise("[]", &sealing), refused);
        // "dangerous_any": named as the danger it is.
        assert_eq!(appraise("\"dangerous_any\"", &sealing), Ok(()));
        assert_eq!(appraise("\"dangerous_any\"", &not_sealing), Ok(()));
        assert!(PolicyFile::from_toml(&with("\"dangerous_any\""))
            .unwrap()
            .to_toml()
            .contains("auditor_hpke_keys = \"dangerous_any\""));
        assert!(PolicyFile::from_toml(&with("[]"))
            .unwrap()
            .to_toml()
            .contains("auditor_hpke_keys = \"none\""));
        // Anything else is a policy error.
        for bad in ["\"all\"", "[\"00\"]", "3"] {
            assert_eq!(
                PolicyFile::from_toml(&with(bad)).unwrap_err().reason,
                Reason::PolicyInvalid,
                "{bad}"
            );
        }
    }

    pub(crate) fn sample() -> RuntimeClaims {
        RuntimeClaims {
            tls_spki_sha256: [1; 32],
            receipt_key: ReceiptKey {
                alg: COSE_ALG_EDDSA,
                public_key: vec![2; 32],
            },
            auditor_hpke_key: Some(HpkeKey {
                kem: HPKE_KEM_X25519_SHA256,
                public_key: vec![3; 32],
            }),
            model_digest: [4; 32],
            runtime_version: "veritee-enclave 0.1.0".into(),
            launch_config_digest: [5; 32],
            nonce: Some(vec![6; 16]),
            gpu_evidence_digest: None,
        }
    }

    /// The GPU nonce and claim 8 are exactly the documented formulas.
    #[test]
    fn gpu_nonce_and_evidence_digest_follow_their_definitions() {
        let sha = |b: &[u8]| crate::x509::sha256(b);
        let c = sample();
        let base = RuntimeClaims {
            nonce: None,
            gpu_evidence_digest: None,
            ..sample()
        };
        let mut input = b"veritee/gpu-nonce/v1\0".to_vec();
        input.extend(base.to_cbor());
        assert_eq!(c.gpu_nonce(), sha(&input));
        // Claims 7 and 8 do not enter it; every other claim does.
        let with_gpu = RuntimeClaims {
            gpu_evidence_digest: Some([7; 32]),
            nonce: None,
            ..sample()
        };
        assert_eq!(with_gpu.gpu_nonce(), c.gpu_nonce());
        for other in [
            RuntimeClaims {
                tls_spki_sha256: [0; 32],
                ..sample()
            },
            RuntimeClaims {
                model_digest: [0; 32],
                ..sample()
            },
            RuntimeClaims {
                auditor_hpke_key: None,
                ..sample()
            },
        ] {
            assert_ne!(other.gpu_nonce(), c.gpu_nonce());
        }
        // Claim 8: label, u32be count, then per GPU SHA-256(evidence) || SHA-256(chain).
        let set = [(&b"e0"[..], &b"c0"[..]), (&b"e1"[..], &b"c1"[..])];
        let mut input = b"veritee/gpu-evidence-set/v1\0".to_vec();
        input.extend(2u32.to_be_bytes());
        for (e, ch) in set {
            input.extend(sha(e));
            input.extend(sha(ch));
        }
        assert_eq!(gpu_evidence_digest(&set), sha(&input));
        let swapped = [set[1], set[0]];
        assert_ne!(gpu_evidence_digest(&swapped), gpu_evidence_digest(&set));
        let empty: [(&[u8], &[u8]); 0] = [];
        assert_ne!(gpu_evidence_digest(&empty), gpu_evidence_digest(&set[..1]));
    }

    #[test]
    fn claims_round_trip_and_report_data_is_sha512_of_the_bytes() {
        let claims = sample();
        let bytes = claims.to_cbor();
        assert_eq!(RuntimeClaims::from_cbor(&bytes).unwrap(), claims);
        let d = digest::digest(&digest::SHA512, &bytes);
        assert_eq!(claims.report_data().as_slice(), d.as_ref());
        // Optional claims absent: keys 3, 7 and 8 are left out, not null.
        let bare = RuntimeClaims {
            auditor_hpke_key: None,
            nonce: None,
            ..sample()
        };
        let bare_bytes = bare.to_cbor();
        assert!(bare_bytes.len() < bytes.len());
        assert_eq!(RuntimeClaims::from_cbor(&bare_bytes).unwrap(), bare);
    }

    fn encode(map: Vec<(Value, Value)>) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(&Value::Map(map), &mut out).unwrap();
        out
    }

    fn entries() -> Vec<(Value, Value)> {
        let Value::Map(m) = ciborium::from_reader::<Value, _>(&sample().to_cbor()[..]).unwrap()
        else {
            unreachable!()
        };
        m
    }

    #[test]
    fn malformed_claims_are_rejected_with_their_reason() {
        let reason = |bytes: &[u8]| RuntimeClaims::from_cbor(bytes).unwrap_err().reason;
        assert_eq!(reason(b""), Reason::ClaimsMalformed);
        assert_eq!(reason(&[0x80]), Reason::ClaimsMalformed, "an array");
        // Reordered keys.
        let mut m = entries();
        m.swap(1, 2);
        assert_eq!(reason(&encode(m)), Reason::ClaimsMalformed);
        // Unknown key.
        let mut m = entries();
        m.push((key(9), Value::Bool(true)));
        assert_eq!(reason(&encode(m)), Reason::ClaimsMalformed);
        // Missing model digest.
        let mut m = entries();
        m.retain(|(k, _)| k != &key(4));
        assert_eq!(reason(&encode(m)), Reason::ClaimsMalformed);
        // A short digest.
        let mut m = entries();
        m[1].1 = Value::Bytes(vec![1; 31]);
        assert_eq!(reason(&encode(m)), Reason::ClaimsMalformed);
        // Another version.
        let mut m = entries();
        m[0].1 = Value::Integer(2u8.into());
        assert_eq!(reason(&encode(m)), Reason::UnsupportedVersion);
        // A non-shortest integer encoding of the version (0x18 0x01 for 1).
        let bytes = sample().to_cbor();
        assert_eq!(
            &bytes[..3],
            &[0xa8, 0x00, 0x01],
            "a map of 8 claims, version 1"
        );
        let mut long = vec![0xa8, 0x00, 0x18, 0x01];
        long.extend_from_slice(&bytes[3..]);
        assert_eq!(reason(&long), Reason::ClaimsMalformed);
        // Trailing bytes after the map.
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(reason(&trailing), Reason::ClaimsMalformed);
        // A nonce that is too short to be a challenge.
        let mut m = entries();
        let at = m.iter().position(|(k, _)| k == &key(7)).unwrap();
        m[at].1 = Value::Bytes(vec![1; 4]);
        assert_eq!(reason(&encode(m)), Reason::ClaimsMalformed);
    }
}
