//! Timestamps: RFC 3339, UTC, always.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The current time as RFC 3339 UTC with millisecond precision.
pub fn now_rfc3339() -> String {
    let now = OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(now.millisecond() as u32 * 1_000_000).unwrap_or(now);
    now.format(&Rfc3339).expect("UTC time always formats as RFC 3339")
}

/// Seconds since the Unix epoch (DynamoDB's `ttl` unit).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// An RFC 3339 UTC time (whole seconds) from epoch seconds.
pub fn rfc3339_at(epoch_seconds: u64) -> String {
    let at = OffsetDateTime::from_unix_timestamp(epoch_seconds as i64).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    at.format(&Rfc3339).expect("UTC time always formats as RFC 3339")
}
