//! AMD SEV-SNP attestation reports: parse, verify against the AMD chain, expose claims.
//!
//! Layers (the README's trust rules):
//! - [`report`]: the 1184-byte report as typed fields ([`SnpReport::parse`]),
//! - [`hcl`]: evidence as received, raw or inside an Azure HCL report ([`SnpEvidence`]),
//! - [`certs`]: AMD certificate extensions and the pinned roots ([`SnpTrustAnchors`]),
//! - [`verify()`]: chain, CRLs, report signature over the received bytes, and the
//!   certificate-versus-report checks; only it builds a [`VerifiedSnpReport`].

mod certs;
mod hcl;
mod report;
mod verify;

#[cfg(test)]
mod tests;

pub use certs::{HwId, SnpTrustAnchors};
pub use hcl::{looks_like_snp_evidence, SnpEvidence};
pub use report::SnpReport;
pub use verify::{verify, Cpuid, CrlCoverage, SnpClaims, SnpVerifier, VerifiedSnpReport};

use serde::{Deserialize, Serialize};
use std::fmt;

/// The AMD EPYC generation whose root (ARK) signs the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Product {
    Milan,
    Genoa,
    Turin,
}

impl Product {
    pub const ALL: [Product; 3] = [Product::Milan, Product::Genoa, Product::Turin];

    /// The name AMD uses in certificate CNs and KDS URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Product::Milan => "Milan",
            Product::Genoa => "Genoa",
            Product::Turin => "Turin",
        }
    }

    /// Exact product name (case-sensitive, as AMD writes it in CNs).
    pub fn from_name(name: &str) -> Option<Product> {
        Product::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// The product a CPUID family/model belongs to (ranges as in virtee/sev's
    /// `Generation::identify_cpu`: Bergamo/Siena (0x19/0xA?) use Genoa's keys).
    pub fn from_cpuid(family: u8, model: u8) -> Option<Product> {
        match (family, model) {
            (0x19, 0x00..=0x0F) => Some(Product::Milan),
            (0x19, 0x10..=0x1F) | (0x19, 0xA0..=0xAF) => Some(Product::Genoa),
            (0x1A, 0x00..=0x11) => Some(Product::Turin),
            _ => None,
        }
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which AMD key signed the report: chip-unique VCEK or cloud-provider VLEK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SigningKey {
    Vcek,
    Vlek,
}

impl SigningKey {
    pub fn as_str(self) -> &'static str {
        match self {
            SigningKey::Vcek => "vcek",
            SigningKey::Vlek => "vlek",
        }
    }

    /// The subject CN of a certificate for this key type.
    pub fn leaf_common_name(self) -> &'static str {
        match self {
            SigningKey::Vcek => "SEV-VCEK",
            SigningKey::Vlek => "SEV-VLEK",
        }
    }
}

impl fmt::Display for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A decoded TCB_VERSION: the security patch levels of each firmware component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TcbVersion {
    /// FMC SPL, Turin and later only.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fmc: Option<u8>,
    pub bootloader: u8,
    pub tee: u8,
    pub snp: u8,
    pub microcode: u8,
}

impl TcbVersion {
    /// Decode a raw TCB_VERSION; the byte layout depends on the product.
    pub fn from_raw(raw: u64, product: Product) -> Self {
        let b = raw.to_le_bytes();
        match product {
            // Milan/Genoa: byte0 BL, byte1 TEE, bytes 2..6 reserved, byte6 SNP, byte7 ucode.
            Product::Milan | Product::Genoa => TcbVersion {
                fmc: None,
                bootloader: b[0],
                tee: b[1],
                snp: b[6],
                microcode: b[7],
            },
            // Turin: byte0 FMC, byte1 BL, byte2 TEE, byte3 SNP, bytes 4..7 reserved, byte7 ucode.
            Product::Turin => TcbVersion {
                fmc: Some(b[0]),
                bootloader: b[1],
                tee: b[2],
                snp: b[3],
                microcode: b[7],
            },
        }
    }

    /// Encode back into the product's raw layout (for comparisons and display).
    pub fn to_raw(&self, product: Product) -> u64 {
        let mut b = [0u8; 8];
        match product {
            Product::Milan | Product::Genoa => {
                b[0] = self.bootloader;
                b[1] = self.tee;
                b[6] = self.snp;
                b[7] = self.microcode;
            }
            Product::Turin => {
                b[0] = self.fmc.unwrap_or(0);
                b[1] = self.bootloader;
                b[2] = self.tee;
                b[3] = self.snp;
                b[7] = self.microcode;
            }
        }
        u64::from_le_bytes(b)
    }
}

impl fmt::Display for TcbVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(fmc) = self.fmc {
            write!(f, "fmc={fmc} ")?;
        }
        write!(
            f,
            "bl={} tee={} snp={} ucode={}",
            self.bootloader, self.tee, self.snp, self.microcode
        )
    }
}
