//! Initial VMSA pages (the encrypted register state of each vCPU) as a VMM creates them
//! for SEV-ES and SEV-SNP guests, and vCPU signatures by QEMU CPU model.
//!
//! The VMSA layout is the SEV-ES save area of AMD APM vol. 2, table B-4 (Linux
//! `struct sev_es_save_area`); only the fields a VMM sets at launch are written, the rest
//! of the 4 KiB page is zero. The register values follow what QEMU/KVM, AWS EC2 and Google
//! GCE load, as established by sev-snp-measure and confirmed against hardware reports.

use std::fmt;
use std::str::FromStr;

use super::PAGE_SIZE;

/// Offsets of the fields written at launch (bytes from the start of the page).
mod off {
    pub const ES: usize = 0x000;
    pub const CS: usize = 0x010;
    pub const SS: usize = 0x020;
    pub const DS: usize = 0x030;
    pub const FS: usize = 0x040;
    pub const GS: usize = 0x050;
    pub const GDTR: usize = 0x060;
    pub const LDTR: usize = 0x070;
    pub const IDTR: usize = 0x080;
    pub const TR: usize = 0x090;
    pub const EFER: usize = 0x0d0;
    pub const CR4: usize = 0x148;
    pub const CR0: usize = 0x158;
    pub const DR7: usize = 0x160;
    pub const DR6: usize = 0x168;
    pub const RFLAGS: usize = 0x170;
    pub const RIP: usize = 0x178;
    pub const G_PAT: usize = 0x268;
    pub const RDX: usize = 0x310;
    pub const SEV_FEATURES: usize = 0x3b0;
    pub const XCR0: usize = 0x3e8;
    pub const MXCSR: usize = 0x408;
    pub const X87_FCW: usize = 0x410;
}

/// The reset EIP of the bootstrap processor.
pub const BSP_EIP: u32 = 0xffff_fff0;

/// The VMM that launches the guest: they differ slightly in the initial register state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum VmmType {
    /// QEMU/KVM (also the default of sev-snp-measure).
    #[default]
    Qemu,
    /// AWS EC2.
    Ec2,
    /// Google Compute Engine.
    Gce,
}

impl fmt::Display for VmmType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VmmType::Qemu => "qemu",
            VmmType::Ec2 => "ec2",
            VmmType::Gce => "gce",
        })
    }
}

/// A VMM name that is not `qemu`, `ec2` or `gce`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown VMM type {0:?} (known: qemu, ec2, gce)")]
pub struct UnknownVmm(pub String);

impl FromStr for VmmType {
    type Err = UnknownVmm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "qemu" => Ok(VmmType::Qemu),
            "ec2" => Ok(VmmType::Ec2),
            "gce" => Ok(VmmType::Gce),
            _ => Err(UnknownVmm(s.to_owned())),
        }
    }
}

/// The CPUID `Fn0000_0001_EAX` signature of family, model and stepping (AMD CPUID spec
/// #25481): extended family above 0xf, model split in low and extended nibbles.
pub const fn cpu_sig(family: u32, model: u32, stepping: u32) -> u32 {
    let (family_low, family_ext) = if family > 0xf {
        (0xf, (family - 0xf) & 0xff)
    } else {
        (family, 0)
    };
    (family_ext << 20)
        | (((model >> 4) & 0xf) << 16)
        | (family_low << 8)
        | ((model & 0xf) << 4)
        | (stepping & 0xf)
}

/// The QEMU CPU models [`vcpu_sig`] knows, in the order sev-snp-measure lists them.
pub const VCPU_TYPES: &[&str] = &[
    "EPYC",
    "EPYC-v1",
    "EPYC-v2",
    "EPYC-IBPB",
    "EPYC-v3",
    "EPYC-v4",
    "EPYC-Rome",
    "EPYC-Rome-v1",
    "EPYC-Rome-v2",
    "EPYC-Rome-v3",
    "EPYC-Rome-v4",
    "EPYC-Milan",
    "EPYC-Milan-v1",
    "EPYC-Milan-v2",
    "EPYC-Genoa",
    "EPYC-Genoa-v1",
    "EPYC-Turin",
    "EPYC-Turin-v1",
];

/// The signature a QEMU CPU model (`-cpu NAME`) reports, for the EPYC models that can run
/// SEV guests ([`VCPU_TYPES`]).
pub fn vcpu_sig(model: &str) -> Option<u32> {
    Some(match model {
        "EPYC" | "EPYC-v1" | "EPYC-v2" | "EPYC-IBPB" | "EPYC-v3" | "EPYC-v4" => cpu_sig(23, 1, 2),
        "EPYC-Rome" | "EPYC-Rome-v1" | "EPYC-Rome-v2" | "EPYC-Rome-v3" | "EPYC-Rome-v4" => {
            cpu_sig(23, 49, 0)
        }
        "EPYC-Milan" | "EPYC-Milan-v1" | "EPYC-Milan-v2" => cpu_sig(25, 1, 1),
        "EPYC-Genoa" | "EPYC-Genoa-v1" => cpu_sig(25, 17, 0),
        "EPYC-Turin" | "EPYC-Turin-v1" => cpu_sig(26, 0, 0),
        _ => return None,
    })
}

fn put_u16(page: &mut [u8], at: usize, v: u16) {
    page[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(page: &mut [u8], at: usize, v: u32) {
    page[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(page: &mut [u8], at: usize, v: u64) {
    page[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// A segment register (`struct vmcb_seg`): selector, attributes, limit, base.
fn put_seg(page: &mut [u8], at: usize, selector: u16, attrib: u16, limit: u32, base: u64) {
    put_u16(page, at, selector);
    put_u16(page, at + 2, attrib);
    put_u32(page, at + 4, limit);
    put_u64(page, at + 8, base);
}

/// The default PAT MSR (AMD APM vol. 2, A.3).
const DEFAULT_G_PAT: u64 = 0x0007_0406_0007_0406;

/// The VMSA page of a vCPU that starts at `eip` in real mode under OVMF.
///
/// `sev_features` is the guest-features value (`SEV_FEATURES`; SNP sets bit 0, SEV-ES
/// passes 0), `vcpu_sig` goes to `rdx` under QEMU.
pub fn ovmf_vmsa(eip: u32, sev_features: u64, vcpu_sig: u32, vmm: VmmType) -> Box<[u8; PAGE_SIZE]> {
    struct Regs {
        cs_attrib: u16,
        ss_attrib: u16,
        tr_attrib: u16,
        rdx: u64,
        g_pat: u64,
        mxcsr: u32,
        fcw: u16,
    }
    let r = match vmm {
        VmmType::Qemu => Regs {
            cs_attrib: 0x9b,
            ss_attrib: 0x93,
            tr_attrib: 0x8b,
            rdx: u64::from(vcpu_sig),
            g_pat: DEFAULT_G_PAT,
            mxcsr: 0x1f80,
            fcw: 0x37f,
        },
        VmmType::Ec2 => Regs {
            cs_attrib: if eip == BSP_EIP { 0x9a } else { 0x9b },
            ss_attrib: 0x92,
            tr_attrib: 0x83,
            rdx: 0x600,
            g_pat: DEFAULT_G_PAT,
            mxcsr: 0,
            fcw: 0,
        },
        VmmType::Gce => Regs {
            cs_attrib: 0x9b,
            ss_attrib: 0x93,
            tr_attrib: 0x8b,
            rdx: 0x600,
            // GCE's hypervisor loads its own PAT.
            g_pat: 0x0007_0106,
            mxcsr: 0,
            fcw: 0,
        },
    };
    let mut p = Box::new([0u8; PAGE_SIZE]);
    let page = &mut p[..];
    put_seg(page, off::ES, 0, 0x93, 0xffff, 0);
    put_seg(
        page,
        off::CS,
        0xf000,
        r.cs_attrib,
        0xffff,
        u64::from(eip & 0xffff_0000),
    );
    put_seg(page, off::SS, 0, r.ss_attrib, 0xffff, 0);
    put_seg(page, off::DS, 0, 0x93, 0xffff, 0);
    put_seg(page, off::FS, 0, 0x93, 0xffff, 0);
    put_seg(page, off::GS, 0, 0x93, 0xffff, 0);
    put_seg(page, off::GDTR, 0, 0, 0xffff, 0);
    put_seg(page, off::LDTR, 0, 0x82, 0xffff, 0);
    put_seg(page, off::IDTR, 0, 0, 0xffff, 0);
    put_seg(page, off::TR, 0, r.tr_attrib, 0xffff, 0);
    put_u64(page, off::EFER, 0x1000); // EFER.SVME, set by KVM
    put_u64(page, off::CR4, 0x40); // CR4.MCE
    put_u64(page, off::CR0, 0x10); // CR0.ET
    put_u64(page, off::DR7, 0x400);
    put_u64(page, off::DR6, 0xffff_0ff0);
    put_u64(page, off::RFLAGS, 0x2);
    put_u64(page, off::RIP, u64::from(eip & 0xffff));
    put_u64(page, off::G_PAT, r.g_pat);
    put_u64(page, off::RDX, r.rdx);
    put_u64(page, off::SEV_FEATURES, sev_features);
    put_u64(page, off::XCR0, 0x1);
    put_u32(page, off::MXCSR, r.mxcsr);
    put_u16(page, off::X87_FCW, r.fcw);
    p
}

/// The VMSA page of a vCPU that starts in the Coconut SVSM at `eip`, in 32-bit protected
/// mode with flat segments (QEMU loading a Coconut-SVSM image below OVMF). SNP is on
/// (`SEV_FEATURES` = 1); the x87 control word stays 0, as in the launches whose hardware
/// measurements the fixtures record.
pub fn svsm_vmsa(eip: u64, vcpu_sig: u32) -> Box<[u8; PAGE_SIZE]> {
    let mut p = Box::new([0u8; PAGE_SIZE]);
    let page = &mut p[..];
    put_seg(page, off::ES, 16, 0xc93, 0xffff_ffff, 0);
    put_seg(page, off::CS, 8, 0xc9b, 0xffff_ffff, 0);
    put_seg(page, off::SS, 16, 0xc93, 0xffff_ffff, 0);
    put_seg(page, off::DS, 16, 0xc93, 0xffff_ffff, 0);
    put_seg(page, off::FS, 16, 0xc93, 0xffff_ffff, 0);
    put_seg(page, off::GS, 0, 0x93, 0xffff, 0);
    put_seg(page, off::GDTR, 0, 0, 0xffff, 0);
    put_seg(page, off::LDTR, 0, 0x82, 0xffff, 0);
    put_seg(page, off::IDTR, 0, 0, 0xffff, 0);
    put_seg(page, off::TR, 0, 0x8b, 0xffff, 0);
    put_u64(page, off::EFER, 0x1000);
    put_u64(page, off::CR4, 0x40);
    put_u64(page, off::CR0, 0x11); // CR0.PE | CR0.ET
    put_u64(page, off::DR7, 0x400);
    put_u64(page, off::DR6, 0xffff_0ff0);
    put_u64(page, off::RFLAGS, 0x2);
    put_u64(page, off::RIP, eip);
    put_u64(page, off::G_PAT, DEFAULT_G_PAT);
    put_u64(page, off::RDX, u64::from(vcpu_sig));
    put_u64(page, off::SEV_FEATURES, 0x1);
    put_u64(page, off::XCR0, 0x1);
    put_u32(page, off::MXCSR, 0x1f80);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_of_qemu_models() {
        assert_eq!(vcpu_sig("EPYC-v4"), Some(0x800f12));
        assert_eq!(vcpu_sig("EPYC-Milan"), Some(0xa00f11));
        assert_eq!(vcpu_sig("EPYC-Genoa"), Some(0xa10f10));
        assert_eq!(vcpu_sig("EPYC-Turin"), Some(0xb00f00));
        assert_eq!(vcpu_sig("EPYC-Rome"), Some(0x830f10));
        assert_eq!(vcpu_sig("Skylake"), None);
        for t in VCPU_TYPES {
            assert!(vcpu_sig(t).is_some(), "{t}");
        }
    }

    #[test]
    fn bsp_page_fields() {
        let p = ovmf_vmsa(BSP_EIP, 1, 0x800f12, VmmType::Qemu);
        assert_eq!(
            &p[off::CS..off::CS + 16],
            &[0x00, 0xf0, 0x9b, 0, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0]
        );
        assert_eq!(&p[off::RIP..off::RIP + 8], &0xfff0u64.to_le_bytes());
        assert_eq!(&p[off::RDX..off::RDX + 8], &0x800f12u64.to_le_bytes());
        assert_eq!(p[off::SEV_FEATURES], 1);
        assert_eq!("EC2".parse::<VmmType>(), Ok(VmmType::Ec2));
        assert!("kvmtool".parse::<VmmType>().is_err());
    }
}
