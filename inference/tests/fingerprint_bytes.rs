//! Property tests of the fingerprint encoding: `Fingerprint::from_bytes` never panics on
//! any input, whatever it accepts re-encodes to exactly the same bytes (one encoding per
//! fingerprint), and every built fingerprint round-trips. No model needed.

use inference::fingerprint::{
    check, Fingerprint, FingerprintError, ENTRY_LEN, HEADER_LEN, TOP_M, VERSION,
};
use proptest::prelude::*;

/// Rows of `h` values drawn from a mix of ordinary, tied, huge, tiny and non-finite ones.
fn rows(max_tokens: usize, max_h: usize) -> impl Strategy<Value = (usize, Vec<Vec<f32>>)> {
    let value = prop_oneof![
        6 => -50.0f32..50.0,
        1 => Just(0.0f32),
        1 => Just(-0.0f32),
        1 => Just(1.0f32),
        1 => Just(-1.0f32),
        1 => prop::num::f32::ANY,
    ];
    (1..=max_h).prop_flat_map(move |h| {
        (
            Just(h),
            prop::collection::vec(prop::collection::vec(value.clone(), h), 0..=max_tokens),
        )
    })
}

/// A version-2 header for a small hidden size and token count, then entries with small
/// dimensions (about the declared number, sometimes exactly, sometimes a byte off): they
/// get past the header and length checks far more often than uniform bytes.
fn header_then_entries() -> impl Strategy<Value = Vec<u8>> {
    (
        1u16..=8,
        0u32..=6,
        prop::collection::vec((0u16..10, any::<u16>()), 0..=14),
        prop_oneof![4 => Just(0i8), 1 => Just(-1i8), 1 => Just(1i8)],
    )
        .prop_map(|(h, n, entries, off)| {
            let mut v = vec![VERSION, TOP_M as u8];
            v.extend_from_slice(&h.to_le_bytes());
            v.extend_from_slice(&n.to_le_bytes());
            let want = n as usize * TOP_M.min(h as usize);
            for (dim, value) in entries.into_iter().cycle().take(want) {
                v.extend_from_slice(&dim.to_le_bytes());
                v.extend_from_slice(&value.to_le_bytes());
            }
            match off {
                -1 => {
                    v.pop();
                }
                1 => v.push(0),
                _ => {}
            }
            v
        })
}

/// `from_bytes` either refuses the input or gives a fingerprint that encodes back to it.
fn accepts_only_canonical(bytes: &[u8]) -> Result<(), TestCaseError> {
    match Fingerprint::from_bytes(bytes) {
        Ok(f) => {
            prop_assert_eq!(f.to_bytes(), bytes.to_vec());
            let k = TOP_M.min(f.hidden_size());
            prop_assert_eq!(bytes.len(), HEADER_LEN + f.tokens() * k * ENTRY_LEN);
            // A parsed fingerprint checks against itself like any other.
            let c = check(&f, &f);
            prop_assert!(c.mismatch.is_none());
            prop_assert_eq!(c.positions.len(), f.tokens());
        }
        Err(FingerprintError::UnsupportedVersion(v)) => prop_assert_ne!(v, VERSION),
        Err(_) => {}
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..=300)) {
        accepts_only_canonical(&bytes)?;
    }

    #[test]
    fn arbitrary_entries_never_panic(bytes in header_then_entries()) {
        accepts_only_canonical(&bytes)?;
    }

    #[test]
    fn corrupted_encodings_never_panic(
        (h, rows) in rows(12, 40),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..=3),
    ) {
        let f = Fingerprint::from_rows(h, rows.iter().map(Vec::as_slice)).unwrap();
        let mut bytes = f.to_bytes();
        for (at, x) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x;
        }
        accepts_only_canonical(&bytes)?;
        // Truncated and extended encodings are refused.
        let good = f.to_bytes();
        prop_assert!(Fingerprint::from_bytes(&good[..good.len() - 1]).is_err());
        let mut longer = good.clone();
        longer.push(0);
        prop_assert_eq!(
            Fingerprint::from_bytes(&longer),
            Err(FingerprintError::TrailingBytes(1))
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn built_fingerprints_round_trip((h, rows) in rows(40, 70)) {
        let f = Fingerprint::from_rows(h, rows.iter().map(Vec::as_slice)).unwrap();
        prop_assert_eq!(f.tokens(), rows.len());
        let bytes = f.to_bytes();
        prop_assert_eq!(bytes.len(), HEADER_LEN + rows.len() * TOP_M.min(h) * ENTRY_LEN);
        let back = Fingerprint::from_bytes(&bytes).unwrap();
        prop_assert_eq!(&back, &f);
        prop_assert_eq!(back.to_bytes(), bytes);
        // Each token keeps the largest magnitudes: no dropped value is larger than a kept
        // one (NaN counts as largest).
        for (i, row) in rows.iter().enumerate() {
            let kept = f.token(i);
            let smallest_kept = kept
                .iter()
                .map(|e| row[e.dim as usize].abs())
                .min_by(f32::total_cmp)
                .unwrap();
            for (d, v) in row.iter().enumerate() {
                if kept.iter().all(|e| e.dim as usize != d) {
                    prop_assert!(v.abs().total_cmp(&smallest_kept).is_le());
                }
            }
        }
        // Identical fingerprints pass with score 0.
        let c = check(&f, &back);
        prop_assert!(c.passed && c.max_score() == 0.0);
    }
}
