//! Incremental server-sent-events parsing: bytes arrive in arbitrary pieces; complete
//! `data:` payloads come out as soon as their blank line has arrived.

#[derive(Default)]
pub struct SseParser {
    buffer: Vec<u8>,
}

impl SseParser {
    /// Feed bytes; returns the `data` payloads of every event completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buffer.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(event) = take_event(&mut self.buffer) {
            let text = String::from_utf8_lossy(&event[..event.len() - 2]);
            let data: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if !data.is_empty() {
                out.push(data.join("\n"));
            }
        }
        out
    }
}

/// Takes the first complete event (its bytes up to and including the blank line that ends
/// it) off the front of `buffer`.
pub(crate) fn take_event(buffer: &mut Vec<u8>) -> Option<Vec<u8>> {
    let end = buffer.windows(2).position(|w| w == b"\n\n")?;
    Some(buffer.drain(..end + 2).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_pieces_come_out_whole() {
        let mut p = SseParser::default();
        assert!(p.push(b"data: {\"a\"").is_empty());
        assert_eq!(p.push(b":1}\n\ndata: [DO"), vec!["{\"a\":1}".to_string()]);
        assert_eq!(p.push(b"NE]\n\n: comment\n\n"), vec!["[DONE]".to_string()]);
    }
}
