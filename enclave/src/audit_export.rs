//! Audit bundles from the receipt log: each runtime instance's evidence, receipts and
//! sealed transcripts, as `attestation::audit` defines them, for `veritee-verify receipts`.

use crate::receipt_log::{self, LogError, LogRecord, ReceiptLog};
use attestation::audit::{AuditBundle, Section};
use std::io::Write as _;
use std::path::Path;

fn section(instance: [u8; 16], evidence: Vec<u8>, records: Vec<LogRecord>) -> Section {
    let (receipts, transcripts) = records
        .into_iter()
        .map(|r| (r.receipt, r.transcript))
        .unzip();
    Section {
        instance,
        evidence,
        receipts,
        transcripts,
    }
}

/// One instance's section, read from its log directory (durable records only; a torn
/// tail, never acknowledged, is left out).
pub fn section_of(dir: &Path) -> Result<Section, LogError> {
    let log = receipt_log::open_instance(dir)?;
    Ok(section(log.instance, log.evidence, log.records))
}

/// The running instance's section: its evidence and every durable record (what has been
/// acknowledged, never a record still on its way to disk).
pub fn section_of_live(log: &ReceiptLog) -> Result<Section, LogError> {
    Ok(section(
        log.instance(),
        log.evidence()?,
        log.read(0, usize::MAX)?,
    ))
}

/// Recover every instance under `root` (dropping torn tails, as a restart would), then
/// write all of them as one bundle to `out`, which must not exist yet. Returns a
/// one-line summary.
pub fn export_all(root: &Path, out: &Path) -> Result<String, String> {
    let reports = receipt_log::recover_all(root).map_err(|e| format!("{}: {e}", root.display()))?;
    for r in &reports {
        eprintln!("veritee-enclave: receipt log: {r}");
    }
    let instances =
        receipt_log::list_instances(root).map_err(|e| format!("{}: {e}", root.display()))?;
    if instances.is_empty() {
        return Err(format!("{} holds no runtime instance", root.display()));
    }
    let mut bundle = AuditBundle::default();
    for instance in &instances {
        let dir = root.join(hex::encode(instance));
        bundle
            .sections
            .push(section_of(&dir).map_err(|e| format!("{}: {e}", dir.display()))?);
    }
    let receipts: usize = bundle.sections.iter().map(|s| s.receipts.len()).sum();
    let bytes = bundle.to_cbor();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(|e| format!("{}: {e}", out.display()))?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("writing {}: {e}", out.display()))?;
    Ok(format!(
        "wrote {} ({} bytes): {} runtime instance(s), {receipts} receipt(s)",
        out.display(),
        bytes.len(),
        instances.len()
    ))
}
