//! NVIDIA unit tests over the real vectors (`testdata/vectors/nvidia`); the integration
//! suite is `tests/nvidia_vectors.rs`.

use super::certs::{self, NvidiaTrustAnchors};
use crate::x509;
use std::path::PathBuf;

fn nvidia_file(vector: &str, name: &str) -> Vec<u8> {
    let path: PathBuf = sim::vectors::vector_dir("nvidia", vector).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_embedded_roots_are_the_corpus_roots_and_pinned() {
    let anchors = NvidiaTrustAnchors::nvidia();
    for (file, pinned, loaded) in [
        (
            "verifier_device_root.pem",
            certs::DEVICE_ROOT_SHA256,
            anchors.device_roots(),
        ),
        (
            "verifier_RIM_root.pem",
            certs::RIM_ROOT_SHA256,
            anchors.rim_roots(),
        ),
    ] {
        let der = x509::certs_from_pem(&nvidia_file("nvidia-roots", file)).unwrap();
        assert_eq!(der.len(), 1, "{file}");
        assert_eq!(hex::encode(x509::sha256(&der[0])), pinned, "{file}");
        assert_eq!(loaded.len(), 1, "{file}");
        assert_eq!(hex::encode(loaded[0]), pinned, "{file}");
    }
}

#[test]
fn a_root_file_that_is_not_the_pinned_one_adds_no_trust() {
    let device_pem = nvidia_file("nvidia-roots", "verifier_device_root.pem");
    // The RIM root's bytes under the device root's pin: nothing is trusted.
    assert!(certs::pinned_root(&device_pem, certs::RIM_ROOT_SHA256).is_empty());
    assert_eq!(
        certs::pinned_root(&device_pem, certs::DEVICE_ROOT_SHA256).len(),
        1
    );
}

#[test]
fn the_fwid_of_trustees_signing_certificate() {
    let pem = nvidia_file(
        "trustee-hopper-cert-chain-negative",
        "hopper_signing_cert.pem",
    );
    let der = x509::certs_from_pem(&pem).unwrap();
    let cert = x509::parse_cert(&der[0], "leaf").unwrap();
    let fwid = certs::fwid_of_certificate(&cert).unwrap().unwrap();
    assert_eq!(
        hex::encode(fwid),
        "f5c384aebb579217a2c66b17ed0f28e6a9b8d639041acd7b4721cec004f7275494ba94bb5cdfdb3055ee051762b1f75d"
    );
    // It is also the last 48 bytes of the extension, as NVIDIA's and trustee's readers take it.
    let ext = x509::unique_extension(&cert, certs::OID_TCG_DICE_TCB_INFO, "leaf")
        .unwrap()
        .unwrap();
    assert_eq!(&ext[ext.len() - 48..], &fwid[..]);
    // The device certificate (its issuer) carries none.
    let chain = x509::certs_from_pem(&nvidia_file(
        "nvtrust-hopper-h100-sample",
        "hopperCertChain.txt",
    ))
    .unwrap();
    let device = x509::parse_cert(&chain[1], "device").unwrap();
    assert_eq!(certs::fwid_of_certificate(&device).unwrap(), None);
}
