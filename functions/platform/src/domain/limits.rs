//! AWS limits the product designs around, and the pure helpers that keep within them.

use std::ops::Range;

use super::invalid::Invalid;

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

/// Most bytes of a record's data (its JSON text). A record, its audit entry (before and
/// after) and the run of an action it triggers all stay under DynamoDB's 400 KB item
/// limit, and its events under EventBridge's and SQS's 256 KB.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;
/// Most bytes of an event's data published from outside.
pub const MAX_EVENT_DATA_BYTES: usize = MAX_RECORD_BYTES;
/// Most bytes of a rule (its JSON text): runs keep a copy of their rule.
pub const MAX_RULE_BYTES: usize = 32 * 1024;
/// Most bytes one stored value (an audit entry's `before` or `after`, a run's event data
/// or changes) keeps; a larger one is replaced by a [`truncated`] marker.
pub const MAX_KEPT_VALUE_BYTES: usize = 120 * 1024;
/// Most characters of an error kept in a run.
pub const MAX_ERROR_CHARS: usize = 2048;

/// The size of a value's JSON text.
pub fn json_bytes(value: &impl serde::Serialize) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    serde_json::to_writer(&mut counter, value).map_or(usize::MAX, |_| counter.0)
}

/// `Err` naming `field` when `value`'s JSON text is longer than `max` bytes.
pub fn check_size(field: &str, value: &impl serde::Serialize, max: usize) -> Result<(), Invalid> {
    let bytes = json_bytes(value);
    if bytes > max {
        return Err(Invalid::one(field, format!("is {bytes} bytes of JSON; at most {max} are accepted")));
    }
    Ok(())
}

/// `value` when its JSON text fits in `max` bytes, else a marker saying what was left out:
/// `{"truncated": true, "bytes": <size>}`.
pub fn truncated(value: serde_json::Value, max: usize) -> serde_json::Value {
    let bytes = json_bytes(&value);
    if bytes <= max {
        return value;
    }
    serde_json::json!({"truncated": true, "bytes": bytes})
}

/// `text` cut to at most `max` characters, with a marker when cut.
pub fn clipped(text: String, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text,
        Some((at, _)) => format!("{}... (cut; {} bytes in all)", &text[..at], text.len()),
    }
}

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
    fn oversize_values_are_refused_naming_the_field() {
        let big = serde_json::json!({"text": "x".repeat(100)});
        let refused = check_size("data", &big, 50).expect_err("too big");
        assert_eq!(refused.0[0].field, "data");
        assert!(check_size("data", &big, 200).is_ok());
    }

    #[test]
    fn values_over_the_budget_are_kept_as_a_marker() {
        let big = serde_json::json!({"text": "x".repeat(100)});
        assert_eq!(truncated(big.clone(), 1000), big);
        let marker = truncated(big.clone(), 50);
        assert_eq!(marker["truncated"], true);
        assert_eq!(marker["bytes"], json_bytes(&big));
    }

    #[test]
    fn long_errors_are_clipped_on_a_character_boundary() {
        assert_eq!(clipped("short".to_string(), 10), "short");
        let cut = clipped("é".repeat(20), 5);
        assert!(cut.starts_with("ééééé... (cut; 40 bytes"), "{cut}");
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
