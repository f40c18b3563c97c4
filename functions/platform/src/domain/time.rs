//! Timestamps: RFC 3339, UTC, always.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The current time as RFC 3339 UTC with millisecond precision.
pub fn now_rfc3339() -> String {
    let now = OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(now.millisecond() as u32 * 1_000_000).unwrap_or(now);
    now.format(&Rfc3339).expect("UTC time always formats as RFC 3339")
}
