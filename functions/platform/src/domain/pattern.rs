//! Amazon EventBridge event patterns: parsed and checked once, as EventBridge checks
//! them (an error names the JSON path of the offending part), and matched as
//! EventBridge matches them:
//!
//! - every field of a pattern must match (AND); a field matches when any of its
//!   matchers matches any of the event's values there (an event array matches when any
//!   element does; arrays of arrays are flattened);
//! - a nested pattern against an array of objects matches when one element matches it
//!   as a whole (fields from different elements of one array never combine);
//! - `exists` looks at leaf values only (a field holding an object is absent), and
//!   `exists: false` holds when no value at that path is consistent with the rest of
//!   the match (under a missing parent, a field is absent);
//! - numbers compare by value everywhere (`3`, `3.0`, `3e0`); strings never match
//!   numbers; `equals-ignore-case` folds case by Unicode rules;
//! - `anything-but` needs the field present and matches when any value is not
//!   excluded (`null` is never excluded).

use std::net::IpAddr;

use serde_json::{Map, Value};

use super::invalid::Invalid;

/// A literal value in a pattern: strings, numbers (by value), booleans and null.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str { text: String, ip: Option<IpAddr> },
    Num(f64),
    Bool(bool),
    Null,
}

impl Literal {
    pub fn of(value: &Value) -> Option<Literal> {
        match value {
            Value::String(s) => Some(Literal::Str { text: s.clone(), ip: s.parse().ok() }),
            Value::Number(n) => n.as_f64().filter(|f| f.is_finite()).map(Literal::Num),
            Value::Bool(b) => Some(Literal::Bool(*b)),
            Value::Null => Some(Literal::Null),
            _ => None,
        }
    }

    pub fn matches(&self, value: Leaf<'_>) -> bool {
        match (self, value) {
            (Literal::Str { text, ip }, Leaf::Str(s)) => {
                text == s || ip.is_some_and(|ip| s.parse::<IpAddr>().is_ok_and(|other| other == ip))
            }
            (Literal::Num(n), Leaf::Num(v)) => v == *n,
            (Literal::Bool(b), Leaf::Bool(v)) => *b == v,
            (Literal::Null, Leaf::Null) => true,
            _ => false,
        }
    }
}

/// Folds case by Unicode rules, one character at a time (`Ⱥ` and `ⱥ` fold alike).
pub fn fold(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    text.chars().flat_map(char::to_lowercase).collect()
}

/// A wildcard pattern: literal pieces between `*`s (`\*` is a literal star, `\\` a
/// literal backslash).
#[derive(Debug, Clone, PartialEq)]
pub struct Wildcard {
    pub pieces: Vec<String>,
}

impl Wildcard {
    pub fn parse(text: &str) -> Result<Wildcard, String> {
        let mut pieces = vec![String::new()];
        let mut chars = text.chars().enumerate().peekable();
        let mut last_star = false;
        while let Some((at, c)) = chars.next() {
            match c {
                '*' => {
                    if last_star {
                        return Err(format!("consecutive wildcard characters at position {at}"));
                    }
                    pieces.push(String::new());
                    last_star = true;
                    continue;
                }
                '\\' => match chars.next() {
                    Some((_, e @ ('*' | '\\'))) => pieces.last_mut().expect("a piece").push(e),
                    _ => {
                        return Err(format!("invalid escape character at position {at}: only \\* and \\\\ are allowed"))
                    }
                },
                other => pieces.last_mut().expect("a piece").push(other),
            }
            last_star = false;
        }
        Ok(Wildcard { pieces })
    }

    /// The literal text before the first star, when there is a star.
    pub fn head(&self) -> &str {
        &self.pieces[0]
    }

    /// The literal text after the last star, when there is a star.
    pub fn tail(&self) -> &str {
        self.pieces.last().expect("a piece")
    }

    pub fn matches(&self, text: &str) -> bool {
        let n = self.pieces.len();
        if n == 1 {
            return self.pieces[0] == text;
        }
        let (first, last) = (&self.pieces[0], &self.pieces[n - 1]);
        if text.len() < first.len() + last.len() || !text.starts_with(first.as_str()) || !text.ends_with(last.as_str())
        {
            return false;
        }
        let mut rest = &text[first.len()..text.len() - last.len()];
        for piece in &self.pieces[1..n - 1] {
            match rest.find(piece.as_str()) {
                Some(at) => rest = &rest[at + piece.len()..],
                None => return false,
            }
        }
        true
    }
}

/// A numeric interval; `None` is unbounded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub low: Option<(f64, bool)>,
    pub high: Option<(f64, bool)>,
}

impl Range {
    pub fn contains(&self, v: f64) -> bool {
        self.low.is_none_or(|(b, inclusive)| if inclusive { v >= b } else { v > b })
            && self.high.is_none_or(|(b, inclusive)| if inclusive { v <= b } else { v < b })
    }

    /// The interval as (low, low inclusive, high, high inclusive), unbounded as infinities.
    pub fn bounds(&self) -> (f64, bool, f64, bool) {
        let (lo, li) = self.low.unwrap_or((f64::NEG_INFINITY, true));
        let (hi, hi_in) = self.high.unwrap_or((f64::INFINITY, true));
        (lo, li, hi, hi_in)
    }
}

/// An address block (`cidr`), IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cidr {
    pub v6: bool,
    pub low: u128,
    pub high: u128,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (address, bits) = text.split_once('/').ok_or("is not a CIDR block: one '/' is required")?;
        let bits: u32 =
            bits.parse().map_err(|_| "is not a CIDR block: the mask bits must be an integer".to_string())?;
        let ip: IpAddr =
            address.parse().map_err(|_| format!("is not a CIDR block: '{address}' is not an IP address"))?;
        let (v6, value, width) = match ip {
            IpAddr::V4(v4) => (false, u128::from(u32::from(v4)), 32),
            IpAddr::V6(v6) => (true, u128::from(v6), 128),
        };
        if bits >= width {
            return Err(format!("is not a CIDR block: the mask bits must be less than {width}"));
        }
        let host = if width - bits == 128 { u128::MAX } else { (1u128 << (width - bits)) - 1 };
        Ok(Cidr { v6, low: value & !host, high: value | host })
    }

    pub fn matches(&self, text: &str) -> bool {
        match text.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) if !self.v6 => (self.low..=self.high).contains(&u128::from(u32::from(v4))),
            Ok(IpAddr::V6(v6)) if self.v6 => (self.low..=self.high).contains(&u128::from(v6)),
            _ => false,
        }
    }
}

/// What `anything-but` excludes.
#[derive(Debug, Clone, PartialEq)]
pub enum Excluded {
    /// Strings or numbers (all of one kind).
    Values(Vec<Literal>),
    /// Strings, ignoring case (folded).
    Folded(Vec<String>),
    Prefixes(Vec<String>),
    Suffixes(Vec<String>),
    Wildcards(Vec<Wildcard>),
}

impl Excluded {
    fn excludes(&self, value: Leaf<'_>) -> bool {
        match (self, value) {
            (Excluded::Values(list), v) => list.iter().any(|l| l.matches(v)),
            (Excluded::Folded(list), Leaf::Str(s)) => {
                let folded = fold(s);
                list.contains(&folded)
            }
            (Excluded::Prefixes(list), Leaf::Str(s)) => list.iter().any(|p| s.starts_with(p.as_str())),
            (Excluded::Suffixes(list), Leaf::Str(s)) => list.iter().any(|p| s.ends_with(p.as_str())),
            (Excluded::Wildcards(list), Leaf::Str(s)) => list.iter().any(|w| w.matches(s)),
            _ => false,
        }
    }
}

/// One matcher of a field's list.
#[derive(Debug, Clone, PartialEq)]
pub enum Matcher {
    Exact(Literal),
    Prefix(String),
    /// `{"prefix": {"equals-ignore-case": ...}}`, folded.
    PrefixFolded(String),
    Suffix(String),
    SuffixFolded(String),
    /// Folded.
    EqualsIgnoreCase(String),
    Wildcard(Wildcard),
    Numeric(Range),
    Cidr(Cidr),
    Exists(bool),
    AnythingBut(Excluded),
}

impl Matcher {
    /// Whether it matches one leaf value (for everything but `exists`).
    pub fn matches_value(&self, value: Leaf<'_>) -> bool {
        let text = match value {
            Leaf::Str(s) => Some(s),
            _ => None,
        };
        match self {
            Matcher::Exact(literal) => literal.matches(value),
            Matcher::Prefix(p) => text.is_some_and(|s| s.starts_with(p.as_str())),
            Matcher::PrefixFolded(p) => text.is_some_and(|s| fold(s).starts_with(p.as_str())),
            Matcher::Suffix(p) => text.is_some_and(|s| s.ends_with(p.as_str())),
            Matcher::SuffixFolded(p) => text.is_some_and(|s| fold(s).ends_with(p.as_str())),
            Matcher::EqualsIgnoreCase(p) => text.is_some_and(|s| fold(s) == *p),
            Matcher::Wildcard(w) => text.is_some_and(|s| w.matches(s)),
            Matcher::Numeric(range) => matches!(value, Leaf::Num(v) if range.contains(v)),
            Matcher::Cidr(cidr) => text.is_some_and(|s| cidr.matches(s)),
            Matcher::Exists(_) => true,
            Matcher::AnythingBut(excluded) => !excluded.excludes(value),
        }
    }
}

/// A field of a pattern: matchers for its values, or a nested pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Leaf(Vec<Matcher>),
    Node(Pattern),
}

/// An object of a pattern: fields that must all match, and `$or` groups (each group:
/// one of its alternatives must match).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pattern {
    pub fields: Vec<(String, Field)>,
    pub or: Vec<Vec<Pattern>>,
}

const OPERATORS: [&str; 9] =
    ["prefix", "suffix", "equals-ignore-case", "wildcard", "anything-but", "numeric", "cidr", "exists", "exactly"];

fn bad(path: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid::one(path, message)
}

fn string_of<'v>(value: &'v Value, path: &str, what: &str) -> Result<&'v str, Invalid> {
    value.as_str().ok_or_else(|| bad(path, format!("{what} takes a string")))
}

/// Parses and checks a pattern object; errors name the JSON path under `path`.
pub fn parse(pattern: &Value, path: &str) -> Result<Pattern, Invalid> {
    let object = pattern.as_object().ok_or_else(|| bad(path, "must be an event pattern (a JSON object)"))?;
    parse_object(object, path)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn parse_object(object: &Map<String, Value>, path: &str) -> Result<Pattern, Invalid> {
    if object.is_empty() {
        return Err(bad(path, "empty objects are not allowed"));
    }
    let mut node = Pattern::default();
    for (key, value) in object {
        let at = join(path, key);
        if key == "$or" {
            let alternatives = value.as_array().ok_or_else(|| bad(&at, "$or takes a list of patterns"))?;
            if alternatives.len() < 2 {
                return Err(bad(&at, "$or needs at least 2 patterns"));
            }
            let mut group = Vec::new();
            for (i, alternative) in alternatives.iter().enumerate() {
                let alt_at = format!("{at}[{i}]");
                let alternative =
                    alternative.as_object().ok_or_else(|| bad(&alt_at, "each $or alternative is a pattern object"))?;
                if let Some(reserved) = alternative.keys().find(|k| OPERATORS.contains(&k.as_str())) {
                    return Err(bad(
                        format!("{alt_at}.{reserved}"),
                        format!("'{reserved}' is an operator, not a field"),
                    ));
                }
                group.push(parse_object(alternative, &alt_at)?);
            }
            node.or.push(group);
            continue;
        }
        let field = match value {
            Value::Object(child) => Field::Node(parse_object(child, &at)?),
            Value::Array(list) => {
                if list.is_empty() {
                    return Err(bad(&at, "empty lists are not allowed: list the values to match"));
                }
                let matchers = list
                    .iter()
                    .enumerate()
                    .map(|(i, m)| parse_matcher(m, &format!("{at}[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                Field::Leaf(matchers)
            }
            _ => return Err(bad(&at, "must be a list of values or matchers, or a nested pattern")),
        };
        node.fields.push((key.clone(), field));
    }
    Ok(node)
}

fn literal(value: &Value, path: &str) -> Result<Literal, Invalid> {
    match value {
        Value::Number(n) if n.as_f64().is_none_or(|f| !f.is_finite()) => {
            Err(bad(path, format!("the number {n} cannot be compared")))
        }
        other => Literal::of(other).ok_or_else(|| bad(path, "a value is a string, a number, true, false or null")),
    }
}

/// One operator's matcher (`"prefix"`, `"numeric"`, ...) from its value, checked.
pub fn matcher(operator: &str, spec: &Value, path: &str) -> Result<Matcher, Invalid> {
    let mut object = Map::new();
    object.insert(operator.to_string(), spec.clone());
    parse_matcher(&Value::Object(object), path)
}

fn parse_matcher(value: &Value, path: &str) -> Result<Matcher, Invalid> {
    let Value::Object(object) = value else { return literal(value, path).map(Matcher::Exact) };
    let mut entries = object.iter();
    let Some((name, spec)) = entries.next() else { return Err(bad(path, "an empty matcher: name an operator")) };
    let at = join(path, name);
    if entries.next().is_some() {
        return Err(bad(path, "a matcher holds one operator"));
    }
    match name.as_str() {
        "exactly" => Ok(Matcher::Exact(Literal::Str { text: string_of(spec, &at, "exactly")?.to_string(), ip: None })),
        "prefix" | "suffix" => {
            let (text, folded) = match spec {
                Value::String(s) => (s.clone(), false),
                Value::Object(inner) if inner.len() == 1 && inner.contains_key("equals-ignore-case") => {
                    (string_of(&inner["equals-ignore-case"], &join(&at, "equals-ignore-case"), "equals-ignore-case")?.to_string(), true)
                }
                _ => return Err(bad(&at, format!("{name} takes a string or {{\"equals-ignore-case\": string}}"))),
            };
            Ok(match (name.as_str(), folded) {
                ("prefix", false) => Matcher::Prefix(text),
                ("prefix", true) => Matcher::PrefixFolded(fold(&text)),
                ("suffix", false) => Matcher::Suffix(text),
                _ => Matcher::SuffixFolded(fold(&text)),
            })
        }
        "equals-ignore-case" => Ok(Matcher::EqualsIgnoreCase(fold(string_of(spec, &at, "equals-ignore-case")?))),
        "wildcard" => {
            Wildcard::parse(string_of(spec, &at, "wildcard")?).map(Matcher::Wildcard).map_err(|e| bad(&at, e))
        }
        "numeric" => parse_numeric(spec, &at).map(Matcher::Numeric),
        "cidr" => Cidr::parse(string_of(spec, &at, "cidr")?).map(Matcher::Cidr).map_err(|e| bad(&at, e)),
        "exists" => match spec {
            Value::Bool(b) => Ok(Matcher::Exists(*b)),
            _ => Err(bad(&at, "exists takes true or false")),
        },
        "anything-but" => parse_anything_but(spec, &at).map(Matcher::AnythingBut),
        other => Err(bad(
            &at,
            format!("'{other}' is not an operator; use one of prefix, suffix, equals-ignore-case, wildcard, anything-but, numeric, cidr, exists"),
        )),
    }
}

fn parse_numeric(spec: &Value, path: &str) -> Result<Range, Invalid> {
    let list = spec.as_array().ok_or_else(|| bad(path, "numeric takes a list like [\">\", 0, \"<=\", 5]"))?;
    let number = |i: usize, op: &str| -> Result<f64, Invalid> {
        let at = format!("{path}[{i}]");
        match list.get(i) {
            Some(Value::Number(n)) => n
                .as_f64()
                .filter(|f| f.is_finite())
                .ok_or_else(|| bad(&at, format!("the number {n} cannot be compared"))),
            _ => Err(bad(&at, format!("the value of {op} must be a number"))),
        }
    };
    let op = |i: usize| -> Result<&str, Invalid> {
        list.get(i)
            .and_then(Value::as_str)
            .filter(|o| matches!(*o, "=" | ">" | ">=" | "<" | "<="))
            .ok_or_else(|| bad(format!("{path}[{i}]"), "an operator is one of =, >, >=, <, <="))
    };
    if list.is_empty() {
        return Err(bad(path, "numeric takes a list like [\">\", 0, \"<=\", 5]"));
    }
    let first = op(0)?;
    let first_value = number(1, first)?;
    let mut range = match first {
        "=" => {
            if list.len() > 2 {
                return Err(bad(path, "\"=\" takes one number and nothing else"));
            }
            return Ok(Range { low: Some((first_value, true)), high: Some((first_value, true)) });
        }
        ">" => Range { low: Some((first_value, false)), high: None },
        ">=" => Range { low: Some((first_value, true)), high: None },
        "<" => Range { low: None, high: Some((first_value, false)) },
        _ => Range { low: None, high: Some((first_value, true)) },
    };
    if list.len() == 2 {
        return Ok(range);
    }
    if range.high.is_some() {
        return Err(bad(path, "a range names its lower bound (> or >=) first, then its upper bound (< or <=)"));
    }
    let second = op(2)?;
    let second_value = number(3, second)?;
    range.high = match second {
        "<" => Some((second_value, false)),
        "<=" => Some((second_value, true)),
        _ => return Err(bad(format!("{path}[2]"), "the upper bound of a range is < or <=")),
    };
    if list.len() > 4 {
        return Err(bad(path, "a range has at most two comparisons"));
    }
    if first_value >= second_value {
        return Err(bad(path, "the lower bound must be less than the upper bound"));
    }
    Ok(range)
}

fn parse_anything_but(spec: &Value, path: &str) -> Result<Excluded, Invalid> {
    let strings = |value: &Value, at: &str, what: &str, empty_ok: bool| -> Result<Vec<String>, Invalid> {
        let list: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        if list.is_empty() {
            return Err(bad(at, format!("anything-but {what} needs at least one value")));
        }
        list.iter()
            .enumerate()
            .map(|(i, v)| {
                let s = v
                    .as_str()
                    .ok_or_else(|| bad(format!("{at}[{i}]"), format!("anything-but {what} takes strings")))?;
                if s.is_empty() && !empty_ok {
                    return Err(bad(format!("{at}[{i}]"), format!("an empty {what} is not allowed")));
                }
                Ok(s.to_string())
            })
            .collect()
    };
    match spec {
        Value::String(_) | Value::Number(_) => literal(spec, path).map(|l| Excluded::Values(vec![l])),
        Value::Array(items) => {
            if items.is_empty() {
                return Err(bad(path, "anything-but needs at least one value"));
            }
            let all_strings = items.iter().all(Value::is_string);
            let all_numbers = items.iter().all(Value::is_number);
            if !all_strings && !all_numbers {
                return Err(bad(path, "anything-but lists strings only or numbers only"));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, v)| literal(v, &format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
                .map(Excluded::Values)
        }
        Value::Object(inner) => {
            let mut entries = inner.iter();
            let Some((name, value)) = entries.next() else {
                return Err(bad(
                    path,
                    "anything-but needs values or one of prefix, suffix, equals-ignore-case, wildcard",
                ));
            };
            if entries.next().is_some() {
                return Err(bad(path, "anything-but holds one operator"));
            }
            let at = join(path, name);
            match name.as_str() {
                "prefix" => strings(value, &at, "prefix", false).map(Excluded::Prefixes),
                "suffix" => strings(value, &at, "suffix", false).map(Excluded::Suffixes),
                "equals-ignore-case" => strings(value, &at, "equals-ignore-case", true)
                    .map(|list| Excluded::Folded(list.iter().map(|s| fold(s)).collect())),
                "wildcard" => strings(value, &at, "wildcard", true)?
                    .iter()
                    .enumerate()
                    .map(|(i, s)| Wildcard::parse(s).map_err(|e| bad(format!("{at}[{i}]"), e)))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Excluded::Wildcards),
                other => Err(bad(
                    &at,
                    format!("'{other}' cannot follow anything-but; use prefix, suffix, equals-ignore-case or wildcard"),
                )),
            }
        }
        _ => Err(bad(path, "anything-but takes a string, a number, a list of them, or an operator object")),
    }
}

// ---------------------------------------------------------------------------
// Matching
// ---------------------------------------------------------------------------

/// One leaf value of an event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Leaf<'a> {
    Str(&'a str),
    Num(f64),
    Bool(bool),
    Null,
}

/// The fields of the envelope an event is matched in, as EventBridge events carry them:
/// `detail` is the event's data.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    pub id: &'a str,
    pub source: &'a str,
    pub detail_type: &'a str,
    pub account: &'a str,
    pub region: &'a str,
    pub time: &'a str,
    /// A JSON array of ARNs.
    pub resources: &'a Value,
    pub detail: &'a Map<String, Value>,
}

/// Where a pattern looks: JSON, the envelope, one of its strings, or nothing (under a
/// missing parent).
#[derive(Debug, Clone, Copy)]
pub enum At<'a> {
    Json(&'a Value),
    Map(&'a Map<String, Value>),
    Envelope(&'a Envelope<'a>),
    Text(&'a str),
    Missing,
}

impl<'a> At<'a> {
    /// The value under `key`.
    pub fn field(self, key: &str) -> At<'a> {
        match self {
            At::Json(Value::Object(map)) | At::Map(map) => map.get(key).map_or(At::Missing, At::Json),
            At::Envelope(e) => match key {
                "detail" => At::Map(e.detail),
                "source" => At::Text(e.source),
                "detail-type" => At::Text(e.detail_type),
                "id" => At::Text(e.id),
                "account" => At::Text(e.account),
                "region" => At::Text(e.region),
                "time" => At::Text(e.time),
                "version" => At::Text("0"),
                "resources" => At::Json(e.resources),
                _ => At::Missing,
            },
            _ => At::Missing,
        }
    }

    /// Calls `each` with every leaf value here (array elements, flattened), until it
    /// answers true; answers whether one did.
    pub fn any_leaf(self, each: &mut impl FnMut(Leaf<'a>) -> bool) -> bool {
        match self {
            At::Text(s) => each(Leaf::Str(s)),
            At::Json(value) => json_any_leaf(value, each),
            At::Map(_) | At::Envelope(_) | At::Missing => false,
        }
    }

    /// Calls `each` with every object here (array elements, flattened).
    fn any_object(self, each: &mut impl FnMut(At<'a>) -> bool) -> bool {
        match self {
            At::Json(Value::Array(items)) => items.iter().any(|item| At::Json(item).any_object(each)),
            At::Json(Value::Object(_)) | At::Map(_) | At::Envelope(_) => each(self),
            _ => false,
        }
    }

    fn has_object(self) -> bool {
        self.any_object(&mut |_| true)
    }
}

fn json_any_leaf<'a>(value: &'a Value, each: &mut impl FnMut(Leaf<'a>) -> bool) -> bool {
    match value {
        Value::String(s) => each(Leaf::Str(s)),
        Value::Number(n) => n.as_f64().is_some_and(|f| each(Leaf::Num(f))),
        Value::Bool(b) => each(Leaf::Bool(*b)),
        Value::Null => each(Leaf::Null),
        Value::Array(items) => items.iter().any(|item| json_any_leaf(item, each)),
        Value::Object(_) => false,
    }
}

impl Field {
    fn matches(&self, at: At<'_>) -> bool {
        match self {
            Field::Leaf(matchers) => matchers.iter().any(|m| match m {
                Matcher::Exists(wanted) => at.any_leaf(&mut |_| true) == *wanted,
                other => at.any_leaf(&mut |leaf| other.matches_value(leaf)),
            }),
            Field::Node(pattern) => match at {
                At::Json(Value::Object(_)) | At::Map(_) | At::Envelope(_) => pattern.matches(at),
                At::Json(Value::Array(_)) if at.has_object() => {
                    if pattern.binds() {
                        // One element of an array must match the nested pattern as a whole.
                        at.any_object(&mut |object| pattern.matches(object))
                    } else {
                        // Only absences: they must hold in every element.
                        !at.any_object(&mut |object| !pattern.matches(object))
                    }
                }
                _ => pattern.matches(At::Missing),
            },
        }
    }

    /// Whether matching it needs some value present (not only absences).
    fn binds(&self) -> bool {
        match self {
            Field::Leaf(matchers) => !matchers.iter().any(|m| matches!(m, Matcher::Exists(false))),
            Field::Node(pattern) => pattern.binds(),
        }
    }
}

impl Pattern {
    /// Whether the pattern matches what is at `at`.
    pub fn matches(&self, at: At<'_>) -> bool {
        self.fields.iter().all(|(key, field)| field.matches(at.field(key)))
            && self.or.iter().all(|group| group.iter().any(|alternative| alternative.matches(at)))
    }

    fn binds(&self) -> bool {
        self.fields.iter().any(|(_, f)| f.binds()) || self.or.iter().any(|g| g.iter().any(Pattern::binds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn matches(pattern: Value, event: Value) -> bool {
        parse(&pattern, "pattern").unwrap_or_else(|e| panic!("{pattern}: {e}")).matches(At::Json(&event))
    }

    fn refused(pattern: Value) -> String {
        match parse(&pattern, "p") {
            Ok(_) => panic!("{pattern} was accepted"),
            Err(e) => e.0[0].field.clone(),
        }
    }

    #[test]
    fn nested_patterns_match_one_element_of_an_array_of_objects() {
        assert!(matches(json!({"a": {"b": ["x"]}}), json!({"a": [{"b": "y"}, {"b": "x"}]})));
        let both = json!({"d": {"name": ["alice"], "status": ["active"]}});
        assert!(matches(both.clone(), json!({"d": [{"name": "alice", "status": "active"}]})));
        assert!(
            !matches(both, json!({"d": [{"name": "alice"}, {"status": "active"}]})),
            "fields of different elements"
        );
        let employees = json!({"employees": [[{"first": "John"}, {"first": "Anna", "last": "Smith"}], [{"first": "Peter", "last": "Jones"}]]});
        assert!(matches(json!({"employees": {"first": ["Anna"]}}), employees.clone()), "arrays of arrays flatten");
        assert!(!matches(json!({"employees": {"first": ["Anna"], "last": ["Jones"]}}), employees));
        assert!(matches(json!({"tags": ["admin"]}), json!({"tags": ["user", "admin"]})));
        assert!(matches(json!({"d": {"v": [{"numeric": [">", 0, "<", 10]}]}}), json!({"d": {"v": [100, 5, 200]}})));
        assert!(!matches(json!({"a": {"b": ["x"]}}), json!({"a": ["x"]})));
    }

    #[test]
    fn exists_looks_at_leaves_and_absence_holds_under_a_missing_parent() {
        assert!(matches(json!({"x": [{"exists": true}]}), json!({"x": null})), "null is a value");
        assert!(!matches(json!({"r": [{"exists": true}]}), json!({"r": []})));
        assert!(!matches(json!({"k": [{"exists": true}]}), json!({"k": {"S": "x"}})), "an object is not a leaf");
        assert!(matches(json!({"d": {"c": [{"exists": false}]}}), json!({"d": {"c": {"c1": 100}}})));
        for event in [json!({}), json!({"a": 1}), json!({"a": {"b": "s"}})] {
            assert!(matches(json!({"a": {"b": {"c": [{"exists": false}]}}}), event.clone()), "{event}");
        }
        assert!(matches(json!({"a": [{"exists": false}]}), json!({"a": []})));
        assert!(!matches(json!({"x": [{"exists": false}]}), json!({"x": null})));
        let mixed = json!({"d": {"a": [{"exists": true}], "b": [{"exists": false}]}});
        assert!(!matches(mixed.clone(), json!({"d": [{"a": 1, "b": 2}]})));
        assert!(matches(mixed, json!({"d": [{"a": 1}]})));
        assert!(matches(json!({"a": {"c": ["x"], "d": [{"exists": false}]}}), json!({"a": [{"c": "x"}, {"d": "y"}]})));
        assert!(
            !matches(json!({"a": {"b": [{"exists": false}]}}), json!({"a": [{"c": 1}, {"b": 2}]})),
            "an absence alone must hold in every element"
        );
    }

    #[test]
    fn compound_operators_combine() {
        assert!(matches(json!({"f": [{"suffix": {"equals-ignore-case": ".png"}}]}), json!({"f": "image.PNG"})));
        assert!(matches(json!({"f": [{"prefix": {"equals-ignore-case": "EventB"}}]}), json!({"f": "EvEnTbridge"})));
        let eic = json!({"s": [{"anything-but": {"equals-ignore-case": ["Stopped", "DONE"]}}]});
        assert!(!matches(eic.clone(), json!({"s": "stopped"})));
        assert!(matches(eic, json!({"s": "running"})));
        assert!(!matches(json!({"s": [{"anything-but": {"equals-ignore-case": "X"}}]}), json!({"s": "x"})));
        let wild = json!({"p": [{"anything-but": {"wildcard": "*/lib/*"}}]});
        assert!(!matches(wild.clone(), json!({"p": "/usr/lib/x"})));
        assert!(matches(wild.clone(), json!({"p": "/usr/bin/x"})));
        assert!(matches(wild, json!({"p": 123})), "string exclusions never exclude numbers");
        assert!(!matches(json!({"s": [{"anything-but": {"suffix": ".txt"}}]}), json!({"s": "a.txt"})));
        assert!(!matches(json!({"s": [{"anything-but": {"prefix": "init"}}]}), json!({"s": "initial"})));
    }

    #[test]
    fn case_folds_by_unicode_rules() {
        assert!(matches(json!({"n": [{"equals-ignore-case": "12Ⱥ34"}]}), json!({"n": "12ⱥ34"})));
        assert!(matches(json!({"n": [{"equals-ignore-case": "12ⱥ34"}]}), json!({"n": "12Ⱥ34"})));
        assert!(matches(json!({"n": [{"equals-ignore-case": "ÉTÉ"}]}), json!({"n": "été"})));
        assert!(!matches(json!({"n": [{"equals-ignore-case": "abc"}]}), json!({"n": "abd"})));
        assert!(!matches(json!({"n": [{"equals-ignore-case": "1"}]}), json!({"n": 1})), "only strings");
    }

    #[test]
    fn cidr_matches_addresses_of_its_family() {
        let v4 = json!({"ip": [{"cidr": "10.0.0.0/24"}]});
        assert!(matches(v4.clone(), json!({"ip": "10.0.0.255"})));
        assert!(!matches(v4.clone(), json!({"ip": "10.0.1.0"})));
        assert!(!matches(v4.clone(), json!({"ip": "10.0.0.256"})));
        assert!(!matches(v4, json!({"ip": 123})));
        let v6 = json!({"ip": [{"cidr": "2001:db8:1234:1a00::/64"}]});
        assert!(matches(v6.clone(), json!({"ip": "2001:0db8:1234:1a00:0000:0000:0000:0001"})));
        assert!(!matches(v6, json!({"ip": "10.0.0.1"})), "never across families");
        assert!(matches(json!({"ip": ["2001:db8::ff00:42:8329"]}), json!({"ip": "2001:0db8:0:0:0:ff00:0042:8329"})));
        for bad in ["bad-filter", "1.2.3.4/x", "10.0.0.300/8", "10.0.0.0/32"] {
            assert_eq!(refused(json!({"ip": [{"cidr": bad}]})), "p.ip[0].cidr", "{bad}");
        }
    }

    #[test]
    fn numbers_compare_by_value_in_every_operator() {
        for event in [json!(3), json!(3.0), json!(3e0)] {
            assert!(matches(json!({"n": [3]}), json!({"n": event})));
        }
        assert!(matches(json!({"n": [300]}), json!({"n": 300.0000})));
        assert!(matches(json!({"n": [300.0]}), json!({"n": 3e2})));
        assert!(!matches(json!({"n": [3]}), json!({"n": 3e2})));
        assert!(!matches(json!({"n": [3]}), json!({"n": "3"})));
        assert!(!matches(json!({"n": ["3"]}), json!({"n": 3})));
        assert!(matches(json!({"n": [{"numeric": [">", 100]}]}), json!({"n": 101.0})));
        assert!(!matches(json!({"n": [{"numeric": [">", 100]}]}), json!({"n": "300"})));
        assert!(matches(json!({"n": [{"numeric": ["=", 3.018e2]}]}), json!({"n": 301.8})));
        assert!(!matches(json!({"n": [{"anything-but": [100, 200, 300]}]}), json!({"n": 3e2})));
        assert!(matches(json!({"n": [{"anything-but": [111, 222]}]}), json!({"n": "111"})));
    }

    #[test]
    fn null_and_empty_strings_are_values() {
        assert!(matches(json!({"x": [null]}), json!({"x": null})));
        assert!(!matches(json!({"x": [null]}), json!({"x": "null"})));
        assert!(!matches(json!({"x": [null]}), json!({})));
        assert!(!matches(json!({"x": [null]}), json!({"x": []})));
        assert!(matches(json!({"x": [""]}), json!({"x": ""})));
        assert!(!matches(json!({"x": [""]}), json!({"x": null})));
        assert!(matches(json!({"x": [{"prefix": ""}]}), json!({"x": "any"})));
        assert!(!matches(json!({"x": [{"prefix": ""}]}), json!({"x": 1})));
        assert!(!matches(json!({"x": [{"wildcard": ""}]}), json!({"x": "a"})));
        assert!(matches(json!({"x": [{"wildcard": "*"}]}), json!({"x": ""})));
        assert!(matches(json!({"x": [{"anything-but": "a"}]}), json!({"x": null})), "null is never excluded");
        assert!(!matches(json!({"x": [{"anything-but": "a"}]}), json!({})), "anything-but needs the field");
    }

    #[test]
    fn anything_but_on_an_array_needs_one_element_not_excluded() {
        let p = json!({"tags": [{"anything-but": "banned"}]});
        assert!(matches(p.clone(), json!({"tags": ["banned", "ok"]})));
        assert!(!matches(p.clone(), json!({"tags": ["banned"]})));
        assert!(!matches(p, json!({"tags": []})));
    }

    #[test]
    fn wildcards_escape_stars_and_backslashes() {
        assert!(matches(json!({"s": [{"wildcard": "Simple*Service"}]}), json!({"s": "SimpleQueueService"})));
        assert!(matches(json!({"s": [{"wildcard": "a\\*b"}]}), json!({"s": "a*b"})));
        assert!(!matches(json!({"s": [{"wildcard": "a\\*b"}]}), json!({"s": "axb"})));
        assert!(matches(json!({"s": [{"wildcard": "*.txt"}]}), json!({"s": "notes.txt"})));
        assert!(matches(json!({"s": [{"wildcard": "a*b*c"}]}), json!({"s": "abc"})));
        assert!(!matches(json!({"s": [{"wildcard": "ab*ba"}]}), json!({"s": "aba"})), "pieces may not overlap");
        assert!(matches(json!({"s": ["*"]}), json!({"s": "*"})), "an exact star is a star");
    }

    #[test]
    fn or_groups_need_one_alternative() {
        let p = json!({"source": ["x"], "$or": [{"a": [1]}, {"b": [2]}]});
        assert!(matches(p.clone(), json!({"source": "x", "b": 2})));
        assert!(!matches(p, json!({"source": "x", "c": 2})));
    }

    #[test]
    fn invalid_patterns_are_refused_naming_the_operator() {
        let cases = [
            (json!({"stage": [{"prefx": "a"}]}), "p.stage[0].prefx"),
            (json!({"ip": [{"cidr": "not-an-address"}]}), "p.ip[0].cidr"),
            (json!({"s": [{"wildcard": "a**b"}]}), "p.s[0].wildcard"),
            (json!({"s": [{"wildcard": "a\\b"}]}), "p.s[0].wildcard"),
            (json!({"n": [{"numeric": [">", "five"]}]}), "p.n[0].numeric[1]"),
            (json!({"n": [{"numeric": ["==", 1]}]}), "p.n[0].numeric[0]"),
            (json!({"n": [{"numeric": [">", 5, "<", 1]}]}), "p.n[0].numeric"),
            (json!({"n": [{"numeric": ["<", 1, ">", 0]}]}), "p.n[0].numeric"),
            (json!({"n": [{"numeric": ["=", 1, 2]}]}), "p.n[0].numeric"),
            (json!({"n": [{"numeric": 10}]}), "p.n[0].numeric"),
            (json!({"s": [{"anything-but": []}]}), "p.s[0].anything-but"),
            (json!({"s": [{"anything-but": ["a", 1]}]}), "p.s[0].anything-but"),
            (json!({"s": [{"anything-but": null}]}), "p.s[0].anything-but"),
            (json!({"s": [{"anything-but": {"prefix": ""}}]}), "p.s[0].anything-but.prefix[0]"),
            (json!({"s": [{"anything-but": {"numeric": [">", 1]}}]}), "p.s[0].anything-but.numeric"),
            (
                json!({"s": [{"anything-but": {"prefix": {"equals-ignore-case": "a"}}}]}),
                "p.s[0].anything-but.prefix[0]",
            ),
            (json!({"s": []}), "p.s"),
            (json!({"s": [{"exists": "yes"}]}), "p.s[0].exists"),
            (json!({"s": "x"}), "p.s"),
            (json!({"s": 42}), "p.s"),
            (json!({"s": [["x"]]}), "p.s[0]"),
            (json!({"s": [{}]}), "p.s[0]"),
            (json!({"s": [{"prefix": "a", "suffix": "b"}]}), "p.s[0]"),
            (json!({"s": [{"prefix": 3}]}), "p.s[0].prefix"),
            (json!({"s": [{"equals-ignore-case": ["x"]}]}), "p.s[0].equals-ignore-case"),
            (json!({}), "p"),
            (json!({"a": {}}), "p.a"),
            (json!({"$or": [{"a": [1]}]}), "p.$or"),
            (json!({"$or": {"a": [1]}}), "p.$or"),
            (json!({"$or": [{"a": [1]}, {"prefix": ["x"]}]}), "p.$or[1].prefix"),
            (json!({"n": [{"numeric": ["=", 1e308, "<", 2]}]}), "p.n[0].numeric"),
        ];
        for (pattern, path) in cases {
            assert_eq!(refused(pattern.clone()), path, "{pattern}");
        }
    }

    #[test]
    fn the_envelope_is_addressed_as_eventbridge_users_write_it() {
        let data = json!({"stage": "won", "value": 5});
        let resources = json!(["arn:aws:s3:::bucket"]);
        let envelope = Envelope {
            id: "e1",
            source: "platform.sales",
            detail_type: "deal_closed_won",
            account: "",
            region: "",
            time: "2026-11-22T00:00:00Z",
            resources: &resources,
            detail: data.as_object().unwrap(),
        };
        let p = |v: Value| parse(&v, "p").unwrap().matches(At::Envelope(&envelope));
        assert!(p(
            json!({"source": ["platform.sales"], "detail-type": ["deal_closed_won"], "detail": {"stage": ["won"]}})
        ));
        assert!(p(json!({"time": [{"prefix": "2026-11"}], "detail": {"value": [{"numeric": [">", 1]}]}})));
        assert!(!p(json!({"source": [{"prefix": "aws."}]})));
        assert!(p(json!({"resources": ["arn:aws:s3:::bucket"]})), "resources are the envelope's ARNs");
        assert!(!p(json!({"resources": [{"exists": false}]})));
    }
}
