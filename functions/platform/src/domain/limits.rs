//! AWS limits the product designs around, and the pure helpers that keep within them.

use std::ops::Range;

/// Most entries in one `PutEvents` or `SendMessageBatch` request.
pub const MAX_BATCH_ENTRIES: usize = 10;
/// Most bytes in one `PutEvents` request (EventBridge counts each entry's source,
/// detail-type, detail and resources, and 14 bytes for a time).
pub const MAX_PUT_EVENTS_BYTES: usize = 256 * 1024;
/// Most bytes of message bodies in one `SendMessageBatch` request.
pub const MAX_SQS_BATCH_BYTES: usize = 256 * 1024;
/// Most nesting levels DynamoDB stores in a document; request bodies must leave room for
/// the item's own levels.
pub const MAX_DOCUMENT_DEPTH: usize = 30;

/// Cuts items of the given sizes into consecutive batches of at most `max_entries`
/// items and `max_bytes` bytes. An item larger than `max_bytes` goes alone (the service
/// refuses it, naming the cause, rather than failing its neighbours).
pub fn batches(sizes: &[usize], max_entries: usize, max_bytes: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, size) in sizes.iter().enumerate() {
        let full = i - start == max_entries || (i > start && bytes + size > max_bytes);
        if full {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

/// How deeply a JSON text nests arrays and objects (strings are skipped, escapes too).
pub fn json_depth(text: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &byte in text {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_cut_by_count_and_by_bytes() {
        assert_eq!(batches(&[1; 25], 10, 1000), vec![0..10, 10..20, 20..25]);
        assert_eq!(batches(&[100_000, 100_000, 100_000], 10, MAX_PUT_EVENTS_BYTES), vec![0..2, 2..3]);
        assert_eq!(
            batches(&[300_000, 10, 10], 10, MAX_PUT_EVENTS_BYTES),
            vec![0..1, 1..3],
            "an oversize item goes alone"
        );
        assert!(batches(&[], 10, 10).is_empty());
    }

    #[test]
    fn depth_counts_nesting_outside_strings() {
        assert_eq!(json_depth(br#"{"a": [1, {"b": "[[[{{{"}]}"#), 3);
        assert_eq!(json_depth(br#""\"[""#), 0);
        assert_eq!(json_depth(b"1"), 0);
        let deep = "[".repeat(40) + &"]".repeat(40);
        assert_eq!(json_depth(deep.as_bytes()), 40);
    }
}
