//! Test helpers shared by the modules' unit tests.

/// `count` mutants of `original`, each with 1 to `max_edits` random edits (a flipped bit,
/// a byte set, a cut, an inserted byte, a removed byte), from a fixed xorshift seed so that
/// a failure reproduces.
pub(crate) fn mutants(
    original: &[u8],
    seed: u64,
    count: usize,
    max_edits: u64,
) -> impl Iterator<Item = Vec<u8>> + '_ {
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count).map(move |_| {
        let mut m = original.to_vec();
        for _ in 0..=(next() % max_edits.max(1)) {
            let at = (next() as usize) % m.len().max(1);
            match next() % 5 {
                0 => m[at] ^= 1 << (next() % 8),
                1 => m[at] = next() as u8,
                2 => m.truncate(at),
                3 => m.insert(at, next() as u8),
                _ => {
                    m.remove(at.min(m.len().saturating_sub(1)));
                }
            }
            if m.is_empty() {
                break;
            }
        }
        m
    })
}
