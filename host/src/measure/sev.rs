//! SEV and SEV-ES launch digests: SHA-256 over what `LAUNCH_UPDATE_DATA` /
//! `LAUNCH_UPDATE_VMSA` encrypt, in order: the whole firmware image, the kernel-hashes table
//! (direct boot with `kernel-hashes=on`; only the padded table, not its page), and for
//! SEV-ES one VMSA per vCPU (`SEV_FEATURES` 0).
//!
//! These older modes sign no report; the digest is part of the `LAUNCH_MEASURE` value a
//! guest owner checks. They share the OVMF parsing and VMSA layout with SEV-SNP.

use sha2::{Digest as _, Sha256};
use thiserror::Error;

use super::hashes::KernelHashes;
use super::ovmf::{Ovmf, OvmfError, SEV_HASH_TABLE_GUID};
use super::vmsa::{self, VmmType, BSP_EIP};
use super::Sha256Digest;
use crate::measure::snp::MAX_VCPUS;

/// Why an SEV or SEV-ES digest cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SevError {
    /// The firmware itself is malformed.
    #[error(transparent)]
    Ovmf(#[from] OvmfError),
    /// Hashes for a direct boot, but the firmware has no area for them.
    #[error("kernel given but the firmware does not support kernel hashes (entry {SEV_HASH_TABLE_GUID} missing or GPA 0)")]
    KernelHashesUnsupported,
    /// Zero vCPUs, or more than the supported maximum.
    #[error("{vcpus} vCPUs: a launch needs 1..={MAX_VCPUS}")]
    VcpuCount { vcpus: u32 },
    /// Application processors need the SEV-ES reset EIP.
    #[error("{vcpus} vCPUs need the SEV-ES reset EIP for the application processors, and the firmware has no SEV-ES reset block")]
    NoResetEip { vcpus: u32 },
}

fn firmware_and_hashes(ovmf: &Ovmf, kernel: Option<&KernelHashes>) -> Result<Sha256, SevError> {
    let mut h = Sha256::new();
    h.update(ovmf.data());
    if let Some(kernel) = kernel {
        if ovmf.sev_hashes_table()?.is_none() {
            return Err(SevError::KernelHashesUnsupported);
        }
        h.update(kernel.table());
    }
    Ok(h)
}

/// The SEV launch digest.
pub fn sev_launch_digest(
    ovmf: &Ovmf,
    kernel: Option<&KernelHashes>,
) -> Result<Sha256Digest, SevError> {
    Ok(firmware_and_hashes(ovmf, kernel)?.finalize().into())
}

/// The SEV-ES launch digest.
pub fn seves_launch_digest(
    ovmf: &Ovmf,
    kernel: Option<&KernelHashes>,
    vcpus: u32,
    vcpu_sig: u32,
    vmm: VmmType,
) -> Result<Sha256Digest, SevError> {
    if vcpus == 0 || vcpus > MAX_VCPUS {
        return Err(SevError::VcpuCount { vcpus });
    }
    let ap_eip = match ovmf.sev_es_reset_eip()? {
        Some(eip) if eip != 0 => Some(eip),
        _ if vcpus > 1 => return Err(SevError::NoResetEip { vcpus }),
        _ => None,
    };
    let mut h = firmware_and_hashes(ovmf, kernel)?;
    h.update(&vmsa::ovmf_vmsa(BSP_EIP, 0, vcpu_sig, vmm)[..]);
    if let Some(eip) = ap_eip {
        let ap = vmsa::ovmf_vmsa(eip, 0, vcpu_sig, vmm);
        for _ in 1..vcpus {
            h.update(&ap[..]);
        }
    }
    Ok(h.finalize().into())
}
