//! Calendar events: times in an IANA time zone (or whole days), attendees, recurrence as
//! an RFC 5545 RRULE (expanded by the `rrule` crate), and iCalendar (RFC 5545) export
//! with a VTIMEZONE for every zone used, so calendar apps place every occurrence right,
//! across daylight-saving changes too.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use serde::{Deserialize, Serialize};

use super::invalid::FieldIssue;
use super::tools::{Common, Subject};

/// Most occurrences one range query expands.
pub const MAX_OCCURRENCES: u16 = 2000;
/// Longest range one query may ask for, in days.
pub const MAX_RANGE_DAYS: i64 = 366;
/// How far past its last event an export describes each time zone's changes, in years.
const ZONE_YEARS_AHEAD: i16 = 5;

/// Someone who attends: a user of the tenant, a contact (a record), or an e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Attendee {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// A contact, by record link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<Subject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CalendarEvent {
    #[serde(flatten)]
    pub common: Common,
    pub title: String,
    pub description: String,
    pub location: String,
    /// Whole days: `start` and `end` are dates (`end` the last day, inclusive).
    pub all_day: bool,
    /// Local time in `time_zone` (`2026-03-02T09:00:00`), or a date when all-day.
    pub start: String,
    pub end: String,
    /// An IANA time zone, e.g. `Europe/Helsinki`.
    pub time_zone: String,
    pub attendees: Vec<Attendee>,
    /// An RFC 5545 RRULE, e.g. `FREQ=WEEKLY;BYDAY=MO;COUNT=10`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence: Option<String>,
}

/// One occurrence of an event in a range.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Occurrence {
    /// RFC 3339 with the zone's offset.
    pub occurrence_start: String,
    pub occurrence_end: String,
    #[serde(flatten)]
    pub event: CalendarEvent,
}

/// Normalizes a start or end as given: a local time, an RFC 3339 time (converted into the
/// zone), or a date for all-day events.
pub fn normalize_time(raw: &str, all_day: bool, tz: &TimeZone) -> Option<String> {
    if all_day {
        return raw.parse::<Date>().ok().map(|d| d.to_string());
    }
    if let Ok(ts) = raw.parse::<Timestamp>() {
        return Some(ts.to_zoned(tz.clone()).datetime().strftime("%Y-%m-%dT%H:%M:%S").to_string());
    }
    raw.parse::<DateTime>().ok().map(|dt| dt.strftime("%Y-%m-%dT%H:%M:%S").to_string())
}

/// Strips an optional `RRULE:` prefix.
fn rule_text(raw: &str) -> &str {
    raw.trim().strip_prefix("RRULE:").unwrap_or(raw.trim())
}

/// `20260302T090000`.
fn basic(dt: DateTime) -> String {
    dt.strftime("%Y%m%dT%H%M%S").to_string()
}

impl CalendarEvent {
    pub fn zone(&self) -> Option<TimeZone> {
        TimeZone::get(&self.time_zone).ok()
    }

    /// The first occurrence's start and end, in the zone.
    pub fn span(&self) -> Option<(Zoned, Zoned)> {
        let tz = self.zone()?;
        if self.all_day {
            let start = self.start.parse::<Date>().ok()?.to_zoned(tz.clone()).ok()?;
            let end = self.end.parse::<Date>().ok()?.tomorrow().ok()?.to_zoned(tz).ok()?;
            return Some((start, end));
        }
        let start = self.start.parse::<DateTime>().ok()?.to_zoned(tz.clone()).ok()?;
        let end = self.end.parse::<DateTime>().ok()?.to_zoned(tz).ok()?;
        Some((start, end))
    }

    /// Every fault of the event's own fields (links are checked by the caller).
    pub fn check(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        super::tools::check_text("title", Some(&self.title), true, super::tools::MAX_TITLE_CHARS, &mut issues);
        super::tools::check_text(
            "description",
            Some(&self.description),
            false,
            super::tools::MAX_TEXT_CHARS,
            &mut issues,
        );
        super::tools::check_text("location", Some(&self.location), false, super::tools::MAX_TITLE_CHARS, &mut issues);
        if self.zone().is_none() {
            issues.push(FieldIssue::new("time_zone", "must be an IANA time zone, e.g. Europe/Helsinki"));
            return issues;
        }
        match self.span() {
            None => issues.push(FieldIssue::new(
                "start",
                if self.all_day { "start and end must be dates (YYYY-MM-DD)" } else { "start and end must be times" },
            )),
            Some((start, end)) if end <= start => issues.push(FieldIssue::new("end", "must be after start")),
            Some(_) => {}
        }
        if self.attendees.len() > 500 {
            issues.push(FieldIssue::new("attendees", "at most 500"));
        }
        for (i, a) in self.attendees.iter().enumerate() {
            let named = [a.user_id.is_some(), a.record.is_some(), a.email.is_some()].iter().filter(|x| **x).count();
            if named != 1 {
                issues.push(FieldIssue::new(format!("attendees[{i}]"), "give exactly one of user_id, record or email"));
            }
            if a.email.as_deref().is_some_and(|e| !e.contains('@') || e.chars().any(char::is_whitespace)) {
                issues.push(FieldIssue::new(format!("attendees[{i}].email"), "is not an e-mail address"));
            }
        }
        if let Some(rule) = &self.recurrence {
            if let Err(why) = self.rule_set(rule) {
                issues.push(FieldIssue::new("recurrence", format!("is not a valid RRULE: {why}")));
            }
        }
        issues
    }

    /// The event's recurrence as an `rrule` set starting at its start.
    fn rule_set(&self, rule: &str) -> Result<rrule::RRuleSet, String> {
        let (start, _) = self.span().ok_or("the event has no valid start")?;
        let text = rule_text(rule);
        if text.contains('\n') || text.to_ascii_uppercase().contains("DTSTART") {
            return Err("give the RRULE value only, e.g. FREQ=WEEKLY;BYDAY=MO".to_string());
        }
        let dtstart = if self.time_zone == "UTC" {
            format!("DTSTART:{}Z", basic(start.datetime()))
        } else {
            format!("DTSTART;TZID={}:{}", self.time_zone, basic(start.datetime()))
        };
        format!("{dtstart}\nRRULE:{text}").parse::<rrule::RRuleSet>().map_err(|e| e.to_string())
    }

    /// The occurrences overlapping `[from, to)`, at most `limit`.
    pub fn occurrences(&self, from: Timestamp, to: Timestamp, limit: u16) -> Vec<(Zoned, Zoned)> {
        let Some((start, end)) = self.span() else { return Vec::new() };
        let Some(tz) = self.zone() else { return Vec::new() };
        let length = end.timestamp().as_second() - start.timestamp().as_second();
        let overlaps = |s: i64| s < to.as_second() && s + length > from.as_second();
        let Some(rule) = &self.recurrence else {
            return if overlaps(start.timestamp().as_second()) { vec![(start, end)] } else { Vec::new() };
        };
        let Ok(set) = self.rule_set(rule) else { return Vec::new() };
        let chrono_at = |secs: i64| {
            use chrono::TimeZone as _;
            rrule::Tz::UTC.timestamp_opt(secs, 0).single()
        };
        let (Some(after), Some(before)) = (chrono_at(from.as_second() - length - 1), chrono_at(to.as_second())) else {
            return Vec::new();
        };
        set.after(after)
            .before(before)
            .all(limit)
            .dates
            .into_iter()
            .map(|d| d.timestamp())
            .filter(|s| overlaps(*s))
            .filter_map(|s| {
                let a = Timestamp::from_second(s).ok()?.to_zoned(tz.clone());
                let b = Timestamp::from_second(s + length).ok()?.to_zoned(tz.clone());
                Some((a, b))
            })
            .collect()
    }
}

/// iCalendar text: backslash, semicolon, comma and newlines escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Folds a content line at 75 octets (never inside a UTF-8 character) and ends it with CRLF.
fn fold(line: &str, out: &mut String) {
    let mut width = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if width + len > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out.push_str("\r\n");
}

fn offset_text(offset: jiff::tz::Offset) -> String {
    let secs = offset.seconds();
    let sign = if secs < 0 { '-' } else { '+' };
    let secs = secs.abs();
    format!("{sign}{:02}{:02}", secs / 3600, (secs % 3600) / 60)
}

/// A VTIMEZONE for `tz`: every change of offset from the one in force at `from` until
/// `until`, each an observance of its own.
fn vtimezone(name: &str, tz: &TimeZone, from: Timestamp, until: Timestamp, out: &mut String) {
    fold("BEGIN:VTIMEZONE", out);
    fold(&format!("TZID:{name}"), out);
    let mut transitions: Vec<_> = tz.preceding(from).take(1).collect();
    transitions.extend(tz.following(from).take_while(|t| t.timestamp() <= until));
    if transitions.is_empty() {
        // A zone that never changes: one standard observance.
        let offset = tz.to_offset(from);
        fold("BEGIN:STANDARD", out);
        fold("DTSTART:19700101T000000", out);
        fold(&format!("TZOFFSETFROM:{}", offset_text(offset)), out);
        fold(&format!("TZOFFSETTO:{}", offset_text(offset)), out);
        fold("END:STANDARD", out);
    }
    for t in transitions {
        let before = tz.to_offset(Timestamp::from_second(t.timestamp().as_second() - 1).unwrap_or(t.timestamp()));
        let kind = if t.dst().is_dst() { "DAYLIGHT" } else { "STANDARD" };
        let onset = before.to_datetime(t.timestamp());
        fold(&format!("BEGIN:{kind}"), out);
        fold(&format!("DTSTART:{}", basic(onset)), out);
        fold(&format!("TZOFFSETFROM:{}", offset_text(before)), out);
        fold(&format!("TZOFFSETTO:{}", offset_text(t.offset())), out);
        if !t.abbreviation().is_empty() {
            fold(&format!("TZNAME:{}", escape(t.abbreviation())), out);
        }
        fold(&format!("END:{kind}"), out);
    }
    fold("END:VTIMEZONE", out);
}

fn utc_basic(raw: &str) -> String {
    raw.parse::<Timestamp>().map_or_else(
        |_| "19700101T000000Z".to_string(),
        |t| t.to_zoned(TimeZone::UTC).datetime().strftime("%Y%m%dT%H%M%SZ").to_string(),
    )
}

/// An iCalendar (RFC 5545) document of `events`; `mail_of` gives a user attendee's
/// e-mail address (users without one are named by their id).
pub fn to_ics(events: &[CalendarEvent], domain: &str, mail_of: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    fold("BEGIN:VCALENDAR", &mut out);
    fold("VERSION:2.0", &mut out);
    fold("PRODID:-//business-platform//calendar//EN", &mut out);
    fold("CALSCALE:GREGORIAN", &mut out);
    fold("METHOD:PUBLISH", &mut out);
    let mut zones: std::collections::BTreeMap<&str, (Timestamp, Timestamp)> = std::collections::BTreeMap::new();
    for e in events.iter().filter(|e| !e.all_day && e.time_zone != "UTC") {
        if let Some((start, _)) = e.span() {
            let ts = start.timestamp();
            let entry = zones.entry(e.time_zone.as_str()).or_insert((ts, ts));
            entry.0 = entry.0.min(ts);
            entry.1 = entry.1.max(ts);
        }
    }
    for (name, (first, last)) in &zones {
        if let Ok(tz) = TimeZone::get(name) {
            let until = last
                .to_zoned(TimeZone::UTC)
                .checked_add(jiff::Span::new().years(ZONE_YEARS_AHEAD))
                .map_or(*last, |z| z.timestamp());
            vtimezone(name, &tz, *first, until, &mut out);
        }
    }
    for e in events {
        let Some((start, end)) = e.span() else { continue };
        fold("BEGIN:VEVENT", &mut out);
        fold(&format!("UID:{}@{domain}", e.common.id), &mut out);
        fold(&format!("DTSTAMP:{}", utc_basic(&e.common.updated_at)), &mut out);
        fold(&format!("CREATED:{}", utc_basic(&e.common.created_at)), &mut out);
        if e.all_day {
            fold(&format!("DTSTART;VALUE=DATE:{}", start.date().strftime("%Y%m%d")), &mut out);
            fold(&format!("DTEND;VALUE=DATE:{}", end.date().strftime("%Y%m%d")), &mut out);
        } else if e.time_zone == "UTC" {
            fold(&format!("DTSTART:{}Z", basic(start.datetime())), &mut out);
            fold(&format!("DTEND:{}Z", basic(end.datetime())), &mut out);
        } else {
            fold(&format!("DTSTART;TZID={}:{}", e.time_zone, basic(start.datetime())), &mut out);
            fold(&format!("DTEND;TZID={}:{}", e.time_zone, basic(end.datetime())), &mut out);
        }
        fold(&format!("SUMMARY:{}", escape(&e.title)), &mut out);
        if !e.description.is_empty() {
            fold(&format!("DESCRIPTION:{}", escape(&e.description)), &mut out);
        }
        if !e.location.is_empty() {
            fold(&format!("LOCATION:{}", escape(&e.location)), &mut out);
        }
        if let Some(rule) = &e.recurrence {
            fold(&format!("RRULE:{}", rule_text(rule)), &mut out);
        }
        for a in &e.attendees {
            let mail = a.email.clone().or_else(|| a.user_id.as_deref().and_then(&mail_of));
            let Some(mail) = mail else { continue };
            let name = a.name.as_deref().map(|n| format!(";CN=\"{}\"", n.replace('"', "'"))).unwrap_or_default();
            fold(&format!("ATTENDEE{name}:mailto:{mail}"), &mut out);
        }
        fold("END:VEVENT", &mut out);
    }
    fold("END:VCALENDAR", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(start: &str, end: &str, tz: &str, rule: Option<&str>) -> CalendarEvent {
        CalendarEvent {
            common: Common {
                id: "e1".into(),
                subject: None,
                owner: None,
                created_at: "2026-01-01T00:00:00Z".into(),
                updated_at: "2026-01-01T00:00:00Z".into(),
                causation: None,
            },
            title: "Stand-up; daily, short".into(),
            description: String::new(),
            location: String::new(),
            all_day: false,
            start: start.into(),
            end: end.into(),
            time_zone: tz.into(),
            attendees: Vec::new(),
            recurrence: rule.map(str::to_string),
        }
    }

    fn ts(raw: &str) -> Timestamp {
        raw.parse().unwrap()
    }

    #[test]
    fn weekly_occurrences_keep_their_local_time_across_daylight_saving() {
        let e = event("2026-03-23T09:00:00", "2026-03-23T09:15:00", "Europe/Helsinki", Some("FREQ=WEEKLY;COUNT=3"));
        assert!(e.check().is_empty(), "{:?}", e.check());
        let found = e.occurrences(ts("2026-03-01T00:00:00Z"), ts("2026-05-01T00:00:00Z"), 100);
        let starts: Vec<String> = found.iter().map(|(s, _)| s.timestamp().to_string()).collect();
        // EET (+02) before 29 March, EEST (+03) after: 09:00 local is 07:00Z, then 06:00Z.
        assert_eq!(starts, ["2026-03-23T07:00:00Z", "2026-03-30T06:00:00Z", "2026-04-06T06:00:00Z"]);
    }

    #[test]
    fn ranges_return_only_overlapping_occurrences() {
        let e = event("2026-01-05T09:00:00", "2026-01-05T10:00:00", "UTC", Some("FREQ=DAILY"));
        let found = e.occurrences(ts("2026-01-10T09:30:00Z"), ts("2026-01-12T00:00:00Z"), 100);
        assert_eq!(found.len(), 2, "the 10th (still running at 09:30) and the 11th");
        let once = event("2026-01-05T09:00:00", "2026-01-05T10:00:00", "UTC", None);
        assert!(once.occurrences(ts("2026-01-06T00:00:00Z"), ts("2026-01-07T00:00:00Z"), 10).is_empty());
    }

    #[test]
    fn bad_rules_zones_and_spans_name_their_field() {
        let fields = |e: CalendarEvent| e.check().into_iter().map(|i| i.field).collect::<Vec<_>>();
        assert_eq!(
            fields(event("2026-01-05T09:00:00", "2026-01-05T10:00:00", "UTC", Some("FREQ=SOMETIMES"))),
            ["recurrence"]
        );
        assert_eq!(fields(event("2026-01-05T09:00:00", "2026-01-05T10:00:00", "Mars/Olympus", None)), ["time_zone"]);
        assert_eq!(fields(event("2026-01-05T09:00:00", "2026-01-05T08:00:00", "UTC", None)), ["end"]);
    }

    #[test]
    fn the_export_is_rfc_5545_with_time_zones() {
        let mut e =
            event("2026-03-23T09:00:00", "2026-03-23T09:15:00", "Europe/Helsinki", Some("FREQ=WEEKLY;BYDAY=MO"));
        e.description =
            "Line one\nline two, with a very long text that goes on and on past the seventy-five octet limit".into();
        let ics = to_ics(&[e], "example.com", |_| None);
        assert!(ics.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"));
        assert!(ics.ends_with("END:VCALENDAR\r\n"));
        assert!(ics.contains("DTSTART;TZID=Europe/Helsinki:20260323T090000\r\n"));
        assert!(ics.contains("RRULE:FREQ=WEEKLY;BYDAY=MO\r\n"));
        assert!(ics.contains("SUMMARY:Stand-up\\; daily\\, short\r\n"));
        assert!(ics.contains("BEGIN:VTIMEZONE\r\nTZID:Europe/Helsinki\r\n"));
        assert!(ics.contains("TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0300\r\n"), "the March change");
        for line in ics.split("\r\n") {
            assert!(line.len() <= 75, "folded: {line:?}");
        }
        assert!(ics.contains("\r\n "), "long lines continue on folded lines");
    }

    #[test]
    fn all_day_events_are_dates_with_an_exclusive_end() {
        let mut e = event("2026-06-01", "2026-06-02", "UTC", None);
        e.all_day = true;
        assert!(e.check().is_empty(), "{:?}", e.check());
        let ics = to_ics(&[e], "example.com", |_| None);
        assert!(ics.contains("DTSTART;VALUE=DATE:20260601\r\nDTEND;VALUE=DATE:20260603\r\n"));
    }
}
