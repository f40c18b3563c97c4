//! Time in rules: how long an action waits (`"delay": "PT2H"`, or until a date field of the
//! record with an offset), and when a time-based trigger fires (a record's date field
//! reached, or a recurring schedule written as EventBridge Scheduler writes it:
//! `rate(1 day)`, `cron(0 9 ? * MON-FRI *)`).
//!
//! Durations are ISO 8601 (`PT2H`, `-P3D`, `P1W`), parsed with `jiff`; months and years
//! are refused because their length depends on the calendar. Cron expressions are
//! evaluated with `croner` in UTC, with EventBridge's six fields and Quartz weekdays.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The longest wait or offset accepted (EventBridge Scheduler's one-time schedules have no
/// limit; a year keeps forgotten timers from piling up).
pub const MAX_WAIT_SECONDS: i64 = 366 * 24 * 3600;

/// A signed ISO 8601 duration in whole seconds, kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IsoDuration {
    written: String,
    seconds: i64,
}

impl IsoDuration {
    pub fn seconds(&self) -> i64 {
        self.seconds
    }
}

impl TryFrom<String> for IsoDuration {
    type Error = String;
    fn try_from(written: String) -> Result<Self, String> {
        let iso = written.trim_start_matches(['-', '+']).starts_with(['P', 'p']);
        let span = Some(&written)
            .filter(|_| iso)
            .ok_or(())
            .and_then(|w| jiff::Span::from_str(w).map_err(|_| ()))
            .map_err(|_| format!("'{written}' is not an ISO 8601 duration (e.g. PT2H, P3D, -P1W)"))?;
        if span.get_years() != 0 || span.get_months() != 0 {
            return Err(format!(
                "'{written}': use weeks, days, hours, minutes or seconds (months and years vary in length)"
            ));
        }
        let seconds = span
            .total(jiff::SpanTotal::from(jiff::Unit::Second).days_are_24_hours())
            .map_err(|e| format!("'{written}': {e}"))? as i64;
        if seconds.abs() > MAX_WAIT_SECONDS {
            return Err(format!("'{written}' is longer than 366 days"));
        }
        Ok(Self { written, seconds })
    }
}

impl From<IsoDuration> for String {
    fn from(d: IsoDuration) -> String {
        d.written
    }
}

/// Both are strings in the API's document.
macro_rules! string_schema {
    ($($t:ty),*) => {$(
        impl utoipa::PartialSchema for $t {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                <String as utoipa::PartialSchema>::schema()
            }
        }
        impl utoipa::ToSchema for $t {}
    )*};
}
string_schema!(IsoDuration, Recurrence);

/// How long an action waits before it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Delay {
    /// A fixed wait from the event: `"PT2H"`.
    For(IsoDuration),
    /// Until a date (or date-time) field of the event's record, shifted by `offset`
    /// (`{"until": "expected_close_date", "offset": "-P3D"}`).
    Until {
        until: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<IsoDuration>,
    },
}

impl Delay {
    /// Checks a written delay; the message names what is wrong.
    pub fn parse(written: &Value, fields: &std::collections::BTreeSet<String>) -> Result<Delay, String> {
        let delay: Delay = match written {
            Value::String(_) => serde_json::from_value(written.clone()).map_err(|e| e.to_string())?,
            Value::Object(map) => {
                if let Some(unknown) = map.keys().find(|k| *k != "until" && *k != "offset") {
                    return Err(format!("'{unknown}' is not a delay member; use until and offset"));
                }
                match map.get("until") {
                    Some(Value::String(_)) => {}
                    _ => return Err("until must name a date field of the record".to_string()),
                }
                serde_json::from_value(written.clone()).map_err(|e| e.to_string())?
            }
            _ => return Err("must be an ISO 8601 duration (\"PT2H\") or {\"until\": field, \"offset\"?}".to_string()),
        };
        match &delay {
            Delay::For(d) if d.seconds() <= 0 => Err("must be a positive duration".to_string()),
            Delay::Until { until, .. } if !fields.is_empty() && !fields.contains(until) => {
                Err(format!("'{until}' is not a field of this trigger's events"))
            }
            _ => Ok(delay),
        }
    }

    /// When the action is due (epoch seconds), for an event at `occurred` with `data`;
    /// `Err` names why there is no such time (the field is missing or not a date).
    pub fn due(&self, occurred: i64, data: &serde_json::Map<String, Value>) -> Result<i64, String> {
        match self {
            Delay::For(d) => Ok(occurred + d.seconds()),
            Delay::Until { until, offset } => {
                let at = data
                    .get(until)
                    .and_then(Value::as_str)
                    .and_then(epoch_of)
                    .ok_or_else(|| format!("the record's {until} is not a date or date-time"))?;
                Ok(at + offset.as_ref().map_or(0, IsoDuration::seconds))
            }
        }
    }
}

/// A date (`2026-12-01`, midnight UTC) or an RFC 3339 date-time, as epoch seconds.
pub fn epoch_of(text: &str) -> Option<i64> {
    if let Ok(ts) = jiff::Timestamp::from_str(text) {
        return Some(ts.as_second());
    }
    let date = jiff::civil::Date::from_str(text).ok()?;
    date.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp().as_second())
}

/// RFC 3339 (UTC, seconds) of epoch seconds.
pub fn rfc3339_of(epoch: i64) -> String {
    jiff::Timestamp::from_second(epoch).map(|t| t.to_string()).unwrap_or_default()
}

/// A recurring schedule as EventBridge Scheduler writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Recurrence {
    written: String,
    every: Every,
}

#[derive(Debug, Clone, PartialEq)]
enum Every {
    Seconds(i64),
    Cron(Box<croner::Cron>),
}

/// Schedules closer together than this are refused (Scheduler's own floor is a minute).
pub const MIN_RATE_SECONDS: i64 = 60;

impl TryFrom<String> for Recurrence {
    type Error = String;
    fn try_from(written: String) -> Result<Self, String> {
        let trimmed = written.trim();
        let every = if let Some(inner) = trimmed.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
            let (count, unit) =
                inner.trim().split_once(' ').ok_or_else(|| format!("'{written}': write rate(<n> <unit>)"))?;
            let n: i64 = count
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("'{count}' is not a positive whole number"))?;
            let unit_seconds = match (unit.trim(), n) {
                ("minute", 1) | ("minutes", 2..) => 60,
                ("hour", 1) | ("hours", 2..) => 3600,
                ("day", 1) | ("days", 2..) => 86_400,
                (other, _) => {
                    return Err(format!("'{other}' is not a rate unit for {n}; use minute(s), hour(s) or day(s)"))
                }
            };
            Every::Seconds(n * unit_seconds)
        } else if let Some(inner) = trimmed.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
            let fields: Vec<&str> = inner.split_whitespace().collect();
            if fields.len() != 6 {
                return Err(format!(
                    "'{written}': cron takes six fields (minutes hours day-of-month month day-of-week year)"
                ));
            }
            if fields[2] != "?" && fields[4] != "?" {
                return Err("cron: one of day-of-month and day-of-week must be '?'".to_string());
            }
            let parser = croner::parser::CronParser::builder()
                .seconds(croner::parser::Seconds::Required)
                .year(croner::parser::Year::Required)
                .alternative_weekdays(true)
                .build();
            let cron = parser.parse(&format!("0 {}", fields.join(" "))).map_err(|e| format!("cron: {e}"))?;
            Every::Cron(Box::new(cron))
        } else {
            return Err(format!("'{written}' is not rate(...) or cron(...)"));
        };
        let recurrence = Self { written: trimmed.to_string(), every };
        if let Every::Seconds(s) = recurrence.every {
            if s < MIN_RATE_SECONDS {
                return Err("a schedule may fire at most once a minute".to_string());
            }
        }
        Ok(recurrence)
    }
}

impl From<Recurrence> for String {
    fn from(r: Recurrence) -> String {
        r.written
    }
}

impl Recurrence {
    /// The first firing strictly after `after` (epoch seconds); rates count from `anchor`.
    pub fn next_after(&self, after: i64, anchor: i64) -> Option<i64> {
        match &self.every {
            Every::Seconds(step) => {
                let elapsed = (after - anchor).max(0);
                Some(anchor + (elapsed / step + 1) * step)
            }
            Every::Cron(cron) => {
                let start = chrono::DateTime::from_timestamp(after, 0)?;
                cron.find_next_occurrence(&start, false).ok().map(|t| t.timestamp())
            }
        }
    }

    pub fn as_str(&self) -> &str {
        &self.written
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn duration(text: &str) -> Result<i64, String> {
        IsoDuration::try_from(text.to_string()).map(|d| d.seconds())
    }

    #[test]
    fn iso_durations_read_in_seconds() {
        assert_eq!(duration("PT2H"), Ok(7200));
        assert_eq!(duration("-P3D"), Ok(-3 * 86_400));
        assert_eq!(duration("P1W"), Ok(7 * 86_400));
        assert_eq!(duration("PT90S"), Ok(90));
        assert!(duration("P1M").is_err(), "months vary");
        assert!(duration("2 hours").is_err());
        assert!(duration("P400D").is_err(), "beyond a year");
    }

    #[test]
    fn delays_are_checked_and_name_the_fault() {
        let fields = ["expected_close_date".to_string()].into_iter().collect();
        assert!(Delay::parse(&json!("PT2H"), &fields).is_ok());
        assert!(Delay::parse(&json!({"until": "expected_close_date", "offset": "-P3D"}), &fields).is_ok());
        assert!(Delay::parse(&json!("-PT2H"), &fields).unwrap_err().contains("positive"));
        assert!(Delay::parse(&json!({"until": "nope"}), &fields).unwrap_err().contains("nope"));
        assert!(Delay::parse(&json!({"until": "expected_close_date", "ofset": "P1D"}), &fields)
            .unwrap_err()
            .contains("ofset"));
        assert!(Delay::parse(&json!(7200), &fields).is_err());
    }

    #[test]
    fn a_delay_until_a_date_field_is_due_at_the_date_plus_offset() {
        let until = Delay::parse(&json!({"until": "close", "offset": "-P3D"}), &Default::default()).unwrap();
        let data = json!({"close": "2026-12-10"}).as_object().unwrap().clone();
        assert_eq!(rfc3339_of(until.due(0, &data).unwrap()), "2026-12-07T00:00:00Z");
        let data = json!({"close": "2026-12-10T15:30:00+02:00"}).as_object().unwrap().clone();
        assert_eq!(rfc3339_of(until.due(0, &data).unwrap()), "2026-12-07T13:30:00Z");
        assert!(until.due(0, &json!({"close": "soon"}).as_object().unwrap().clone()).is_err());
        let fixed = Delay::parse(&json!("PT2H"), &Default::default()).unwrap();
        assert_eq!(fixed.due(100, &Default::default()), Ok(7300));
    }

    #[test]
    fn recurrences_follow_eventbridge_scheduler_syntax() {
        let at = |s: &str| epoch_of(s).unwrap();
        let rate = Recurrence::try_from("rate(2 hours)".to_string()).unwrap();
        assert_eq!(
            rate.next_after(at("2026-01-01T03:00:00Z"), at("2026-01-01T00:00:00Z")),
            Some(at("2026-01-01T04:00:00Z"))
        );
        let weekdays = Recurrence::try_from("cron(0 9 ? * MON-FRI *)".to_string()).unwrap();
        // 2026-11-21 is a Saturday: next is Monday 09:00.
        assert_eq!(weekdays.next_after(at("2026-11-21T10:00:00Z"), 0), Some(at("2026-11-23T09:00:00Z")));
        let sunday = Recurrence::try_from("cron(30 8 ? * 1 *)".to_string()).unwrap();
        assert_eq!(sunday.next_after(at("2026-11-21T10:00:00Z"), 0), Some(at("2026-11-22T08:30:00Z")), "1 is Sunday");
        for bad in [
            "rate(1 minutes)",
            "rate(0 days)",
            "rate(5 weeks)",
            "cron(0 9 * * * *)",
            "cron(0 9 * *)",
            "every day",
            "rate(30 seconds)",
        ] {
            assert!(Recurrence::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }
}
