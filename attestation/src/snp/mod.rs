//! AMD SEV-SNP attestation reports: parse, verify against the AMD chain, expose claims.
