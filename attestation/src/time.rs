//! Verification time, always an input: this crate never reads the clock.

use crate::reason::{Reason, Rejection};
use std::fmt;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A point in time, in whole seconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_unix(secs: i64) -> Self {
        Timestamp(secs)
    }

    pub const fn unix(self) -> i64 {
        self.0
    }

    /// Parse an RFC 3339 time such as `2025-07-01T00:00:00Z`.
    pub fn parse_rfc3339(text: &str) -> Result<Self, Rejection> {
        OffsetDateTime::parse(text.trim(), &Rfc3339)
            .map(|t| Timestamp(t.unix_timestamp()))
            .map_err(|e| Rejection::new(Reason::InvalidField, format!("time {text:?}: {e}")))
    }

    pub fn to_rfc3339(self) -> String {
        OffsetDateTime::from_unix_timestamp(self.0)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| format!("@{}", self.0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_rfc3339() {
        let t = Timestamp::parse_rfc3339("2025-07-01T00:00:00Z").unwrap();
        assert_eq!(t.unix(), 1_751_328_000);
        assert_eq!(t.to_rfc3339(), "2025-07-01T00:00:00Z");
        let offset = Timestamp::parse_rfc3339("2025-07-01T02:00:00+02:00").unwrap();
        assert_eq!(offset, t);
    }

    #[test]
    fn rejects_garbage_time() {
        let err = Timestamp::parse_rfc3339("yesterday").unwrap_err();
        assert_eq!(err.reason, Reason::InvalidField);
    }
}
