//! A bounded cache of verification work that does not depend on the individual report:
//! a verified SNP certificate chain, a verified TDX platform (PCK chain, QE report,
//! collateral and TCB level). A stream of evidence from the same machines then pays for
//! the per-report signature only.
//!
//! Soundness rests on two things. The key is a SHA-256 over *every* input the cached
//! result depends on (built with [`KeyBuilder`], length-prefixed so parts cannot run
//! together), and each entry carries the time window in which that result holds (the
//! intersection of the certificates' and collateral's validity); outside it the caller
//! recomputes, so errors keep their exact reasons.

use crate::crypto::digest;
use crate::time::Timestamp;
use std::collections::HashMap;
use std::sync::Mutex;

/// Entries kept before the cache is emptied and refilled (no eviction bookkeeping:
/// a verifier sees few distinct chains).
const CAPACITY: usize = 4096;

/// The half-open interval `[from, until)` of Unix seconds in which a result holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub from: i64,
    pub until: i64,
}

impl Window {
    pub const ALWAYS: Window = Window {
        from: i64::MIN,
        until: i64::MAX,
    };

    /// Narrow to an inclusive `[not_before, not_after]` range (certificate validity).
    pub fn within_inclusive(self, not_before: i64, not_after: i64) -> Window {
        self.within(not_before, not_after.saturating_add(1))
    }

    /// Narrow to a half-open `[from, until)` range.
    pub fn within(self, from: i64, until: i64) -> Window {
        Window {
            from: self.from.max(from),
            until: self.until.min(until),
        }
    }

    pub fn contains(self, at: Timestamp) -> bool {
        self.from <= at.unix() && at.unix() < self.until
    }
}

/// Builds a cache key: SHA-256 over length-prefixed parts.
pub(crate) struct KeyBuilder(digest::Context);

impl KeyBuilder {
    pub fn new(domain: &str) -> Self {
        let mut builder = KeyBuilder(digest::Context::new(&digest::SHA256));
        builder.part(domain.as_bytes());
        builder
    }

    pub fn part(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update(&(bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    pub fn finish(self) -> [u8; 32] {
        self.0
            .finish()
            .as_ref()
            .try_into()
            .expect("SHA-256 is 32 bytes")
    }
}

/// Results keyed by [`KeyBuilder`] digests, each valid in its [`Window`].
pub(crate) struct VerifiedCache<V> {
    entries: Mutex<HashMap<[u8; 32], (V, Window)>>,
}

impl<V> Default for VerifiedCache<V> {
    fn default() -> Self {
        VerifiedCache {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<V: Clone> VerifiedCache<V> {
    /// The cached result for `key`, if there is one that holds at `at`.
    pub fn get(&self, key: &[u8; 32], at: Timestamp) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(_, window)| window.contains(at))
            .map(|(value, _)| value.clone())
    }

    pub fn insert(&self, key: [u8; 32], value: V, window: Window) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(key, (value, window));
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_half_open_and_narrows() {
        let w = Window::ALWAYS.within_inclusive(10, 20).within(12, 30);
        assert_eq!(
            w,
            Window {
                from: 12,
                until: 21
            }
        );
        assert!(!w.contains(Timestamp::from_unix(11)));
        assert!(w.contains(Timestamp::from_unix(12)));
        assert!(w.contains(Timestamp::from_unix(20)));
        assert!(!w.contains(Timestamp::from_unix(21)));
    }

    #[test]
    fn keys_are_length_prefixed() {
        let key = |parts: &[&[u8]]| {
            let mut k = KeyBuilder::new("t");
            for p in parts {
                k.part(p);
            }
            k.finish()
        };
        assert_ne!(key(&[b"ab", b"c"]), key(&[b"a", b"bc"]));
        assert_eq!(key(&[b"ab", b"c"]), key(&[b"ab", b"c"]));
    }

    #[test]
    fn entries_expire_outside_their_window() {
        let cache = VerifiedCache::default();
        cache.insert(
            [1; 32],
            7u32,
            Window {
                from: 100,
                until: 200,
            },
        );
        assert_eq!(cache.get(&[1; 32], Timestamp::from_unix(150)), Some(7));
        assert_eq!(cache.get(&[1; 32], Timestamp::from_unix(200)), None);
        assert_eq!(cache.get(&[2; 32], Timestamp::from_unix(150)), None);
        assert_eq!(cache.len(), 1);
    }
}
