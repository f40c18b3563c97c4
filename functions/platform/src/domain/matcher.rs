//! A tenant's rules for one trigger, compiled once into one matcher.
//!
//! Every condition compiles to a predicate over the event's envelope (EventBridge
//! semantics, `domain::pattern`). Each rule is filed in an index under one *anchor*: a
//! field its match cannot do without, and the values there that can satisfy it
//! (an exact value, a prefix or suffix, a case-folded value, a numeric interval, a
//! wildcard's literal head or tail, or mere presence). An event looks up, for each
//! indexed field, the rules its values can satisfy (hash lookups, one per distinct
//! prefix or suffix length, and an interval-tree query), so only those rules, and the
//! rules with no anchor at all, are checked in full. The work per event depends on how
//! many rules can match it, not on how many there are.

use std::collections::{BTreeSet, HashMap};

/// The index's maps: short keys, hashed fast (seeded per process).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

use serde_json::{json, Map, Value};

use super::conditions::{addresses_envelope, Condition};
use super::events::BusinessEvent;
use super::pattern::{self, fold, At, Envelope, Field, Leaf, Literal, Matcher, Pattern};
use super::rules::Rule;

/// A compiled condition.
#[derive(Debug, Clone)]
enum Pred {
    /// A pattern over the envelope.
    Pattern(Pattern),
    Not(Box<Pred>),
    Changed(String),
    ChangedTo(String, Literal),
    /// A string field contains the text, or a list field holds the value.
    Contains(String, Value),
    Any(Vec<Pred>),
    /// A feature flag is on (decided before matching; see [`CompiledRules::flags`]).
    Flag(String),
}

/// A pattern with one field of the data and its matchers.
fn data_leaf(field: &str, matchers: Vec<Matcher>) -> Pattern {
    let inner = Pattern { fields: vec![(field.to_string(), Field::Leaf(matchers))], or: Vec::new() };
    Pattern { fields: vec![("detail".to_string(), Field::Node(inner))], or: Vec::new() }
}

/// A matcher no value satisfies (for stored conditions that no longer compile).
fn never() -> Matcher {
    Matcher::Exact(Literal::Str { text: "\u{0}never".to_string(), ip: None })
}

fn literal(value: &Value) -> Matcher {
    Literal::of(value).map_or_else(never, Matcher::Exact)
}

fn operator(name: &str, spec: &Value) -> Matcher {
    pattern::matcher(name, spec, "").unwrap_or_else(|_| never())
}

fn range(op: &str, value: &serde_json::Number) -> Matcher {
    operator("numeric", &json!([op, value]))
}

/// Compiles a checked condition; `fields` are the trigger's data fields (a pattern
/// naming only envelope fields the data does not carry addresses the envelope).
fn compile(condition: &Condition, fields: &BTreeSet<String>) -> Pred {
    let leaf = |field: &str, matchers: Vec<Matcher>| Pred::Pattern(data_leaf(field, matchers));
    match condition {
        Condition::ValueThreshold { field, value } => {
            leaf(field.as_deref().unwrap_or("value"), vec![range(">=", value)])
        }
        Condition::Equals { field, value } => leaf(field, vec![literal(value)]),
        Condition::NotEquals { field, value } => Pred::Not(Box::new(leaf(field, vec![literal(value)]))),
        Condition::GreaterThan { field, value } => leaf(field, vec![range(">", value)]),
        Condition::GreaterOrEqual { field, value } => leaf(field, vec![range(">=", value)]),
        Condition::LessThan { field, value } => leaf(field, vec![range("<", value)]),
        Condition::LessOrEqual { field, value } => leaf(field, vec![range("<=", value)]),
        Condition::Contains { field, value } => Pred::Contains(field.clone(), value.clone()),
        Condition::In { field, value } => leaf(field, value.iter().map(literal).collect()),
        Condition::Exists { field, value } => leaf(field, vec![Matcher::Exists(*value)]),
        Condition::Changed { field } => Pred::Changed(field.clone()),
        Condition::ChangedTo { field, value } => Pred::ChangedTo(
            field.clone(),
            match literal(value) {
                Matcher::Exact(l) => l,
                _ => Literal::Null,
            },
        ),
        Condition::Prefix { field, value } => leaf(field, vec![Matcher::Prefix(value.clone())]),
        Condition::Suffix { field, value } => leaf(field, vec![Matcher::Suffix(value.clone())]),
        Condition::EqualsIgnoreCase { field, value } => leaf(field, vec![Matcher::EqualsIgnoreCase(fold(value))]),
        Condition::Wildcard { field, value } => leaf(field, vec![operator("wildcard", &Value::String(value.clone()))]),
        Condition::AnythingBut { field, value } => leaf(field, vec![operator("anything-but", value)]),
        Condition::Numeric { field, value } => leaf(field, vec![operator("numeric", &Value::Array(value.clone()))]),
        Condition::Pattern { value } => {
            let parsed = pattern::parse(value, "").unwrap_or_else(|_| data_leaf("", vec![never()]));
            if addresses_envelope(value, fields) {
                Pred::Pattern(parsed)
            } else {
                Pred::Pattern(Pattern { fields: vec![("detail".to_string(), Field::Node(parsed))], or: Vec::new() })
            }
        }
        Condition::AnyOf { value } => Pred::Any(value.iter().map(|c| compile(c, fields)).collect()),
        Condition::FeatureEnabled { value } => Pred::Flag(value.to_string()),
    }
}

/// The feature flags a condition names, nested ones too.
fn flags_of(condition: &Condition, out: &mut BTreeSet<String>) {
    match condition {
        Condition::FeatureEnabled { value } => {
            out.insert(value.to_string());
        }
        Condition::AnyOf { value } => value.iter().for_each(|c| flags_of(c, out)),
        _ => {}
    }
}

static NO_FLAGS: BTreeSet<String> = BTreeSet::new();

static NO_RESOURCES: Value = Value::Array(Vec::new());

/// The event as patterns see it.
pub struct EventView<'a> {
    event: &'a BusinessEvent,
    envelope: Envelope<'a>,
    /// The feature flags that are on.
    flags: &'a BTreeSet<String>,
}

impl<'a> EventView<'a> {
    /// `source` is `platform.<module>` (given, so it is built once per trigger).
    pub fn new(event: &'a BusinessEvent, source: &'a str) -> Self {
        let envelope = match &event.native {
            Some(native) => Envelope {
                id: &event.event_id,
                source: &native.source,
                detail_type: &native.detail_type,
                account: &native.account,
                region: &native.region,
                time: &event.occurred_at,
                resources: &native.resources,
                detail: &event.data,
            },
            None => Envelope {
                id: &event.event_id,
                source,
                detail_type: &event.trigger_id,
                account: "",
                region: "",
                time: &event.occurred_at,
                resources: &NO_RESOURCES,
                detail: &event.data,
            },
        };
        Self { event, envelope, flags: &NO_FLAGS }
    }

    fn at(&self) -> At<'_> {
        At::Envelope(&self.envelope)
    }
}

impl Pred {
    fn holds(&self, view: &EventView<'_>) -> bool {
        match self {
            Pred::Pattern(p) => p.matches(view.at()),
            Pred::Not(inner) => !inner.holds(view),
            Pred::Changed(field) => view.event.changes.contains_key(field),
            Pred::ChangedTo(field, literal) => view
                .event
                .changes
                .get(field)
                .and_then(|pair| pair.get("new"))
                .is_some_and(|new| At::Json(new).any_leaf(&mut |leaf| literal.matches(leaf))),
            Pred::Contains(field, wanted) => match view.event.data.get(field) {
                Some(Value::String(s)) => wanted.as_str().is_some_and(|w| s.contains(w)),
                Some(Value::Array(items)) => {
                    let want = literal(wanted);
                    items.iter().any(|item| At::Json(item).any_leaf(&mut |leaf| want.matches_value(leaf)))
                }
                _ => false,
            },
            Pred::Any(list) => list.iter().any(|p| p.holds(view)),
            Pred::Flag(key) => view.flags.contains(key),
        }
    }
}

/// A compiled rule: its conditions' predicates, in order.
struct CompiledRule {
    rule: Rule,
    preds: Vec<Pred>,
    /// The index's lookup decides it alone: one condition, one field, matchers the index
    /// checks exactly. Such a rule is not checked again.
    decided_by_index: bool,
}

/// Whether the index's answer for these matchers is the match itself.
fn exactly_indexed(m: &Matcher) -> bool {
    match m {
        Matcher::Exact(Literal::Str { ip, .. }) => ip.is_none(),
        Matcher::Exact(_)
        | Matcher::Prefix(_)
        | Matcher::Suffix(_)
        | Matcher::PrefixFolded(_)
        | Matcher::SuffixFolded(_)
        | Matcher::EqualsIgnoreCase(_)
        | Matcher::Numeric(_)
        | Matcher::Exists(true) => true,
        _ => false,
    }
}

/// The single leaf of a pattern that is one path of single fields, if it is.
fn only_leaf(p: &Pattern) -> Option<&[Matcher]> {
    match (p.fields.as_slice(), p.or.is_empty()) {
        ([(_, Field::Leaf(matchers))], true) => Some(matchers),
        ([(_, Field::Node(child))], true) => only_leaf(child),
        _ => None,
    }
}

fn decided_by_index(preds: &[Pred]) -> bool {
    match preds {
        [Pred::Pattern(p)] => only_leaf(p).is_some_and(|matchers| matchers.iter().all(exactly_indexed)),
        _ => false,
    }
}

/// Numbers as exact keys: by value (`-0` is `0`).
fn number_key(n: f64) -> u64 {
    if n == 0.0 {
        0
    } else {
        n.to_bits()
    }
}

/// Numeric intervals, queried by a value: an interval tree over the intervals sorted by
/// their low end (each node keeps the highest high end below it).
#[derive(Default)]
struct Intervals {
    items: Vec<(pattern::Range, u32)>,
    /// Flat copies of the sorted items' bounds, for the query.
    low: Vec<f64>,
    high: Vec<f64>,
    max_high: Vec<f64>,
}

impl Intervals {
    fn build(&mut self) {
        self.items.sort_by(|a, b| a.0.bounds().0.total_cmp(&b.0.bounds().0));
        self.low = self.items.iter().map(|(r, _)| r.bounds().0).collect();
        self.high = self.items.iter().map(|(r, _)| r.bounds().2).collect();
        self.max_high = vec![f64::NEG_INFINITY; self.items.len()];
        self.fill(0, self.items.len());
    }

    fn fill(&mut self, low: usize, high: usize) -> f64 {
        if low >= high {
            return f64::NEG_INFINITY;
        }
        let mid = (low + high) / 2;
        let m = self.high[mid].max(self.fill(low, mid)).max(self.fill(mid + 1, high));
        self.max_high[mid] = m;
        m
    }

    fn query(&self, v: f64, out: &mut Vec<u32>) {
        self.visit(v, 0, self.items.len(), out);
    }

    fn visit(&self, v: f64, mut low: usize, high: usize, out: &mut Vec<u32>) {
        // Left subtrees recursively, the right one in the loop.
        while low < high {
            let mid = (low + high) / 2;
            if self.max_high[mid] < v {
                return;
            }
            self.visit(v, low, mid, out);
            if self.low[mid] > v {
                return;
            }
            let (range, rule) = &self.items[mid];
            if range.contains(v) {
                out.push(*rule);
            }
            low = mid + 1;
        }
    }
}

/// Texts by their length, for prefix or suffix lookups: one hash lookup per length.
#[derive(Default)]
struct Affixes {
    by_text: FastMap<String, Vec<u32>>,
    lengths: BTreeSet<usize>,
}

impl Affixes {
    fn add(&mut self, text: &str, rule: u32) {
        self.lengths.insert(text.len());
        self.by_text.entry(text.to_string()).or_default().push(rule);
    }

    fn prefixes_of(&self, s: &str, out: &mut Vec<u32>) {
        for &n in self.lengths.range(..=s.len()) {
            if s.is_char_boundary(n) {
                if let Some(rules) = self.by_text.get(&s[..n]) {
                    out.extend(rules);
                }
            }
        }
    }

    fn suffixes_of(&self, s: &str, out: &mut Vec<u32>) {
        for &n in self.lengths.range(..=s.len()) {
            let at = s.len() - n;
            if s.is_char_boundary(at) {
                if let Some(rules) = self.by_text.get(&s[at..]) {
                    out.extend(rules);
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.by_text.is_empty()
    }
}

/// The rules anchored on one field (a path from the envelope).
#[derive(Default)]
struct FieldIndex {
    path: Vec<String>,
    strings: FastMap<String, Vec<u32>>,
    numbers: FastMap<u64, Vec<u32>>,
    /// `true`, `false`, `null`.
    others: Vec<(Literal, u32)>,
    folded: FastMap<String, Vec<u32>>,
    prefixes: Affixes,
    folded_prefixes: Affixes,
    suffixes: Affixes,
    folded_suffixes: Affixes,
    ranges: Intervals,
    present: Vec<u32>,
}

impl FieldIndex {
    fn add(&mut self, matcher: &Matcher, rule: u32) {
        match matcher {
            Matcher::Exact(Literal::Str { text, .. }) => self.strings.entry(text.clone()).or_default().push(rule),
            Matcher::Exact(Literal::Num(n)) => self.numbers.entry(number_key(*n)).or_default().push(rule),
            Matcher::Exact(other) => self.others.push((other.clone(), rule)),
            Matcher::EqualsIgnoreCase(folded) => self.folded.entry(folded.clone()).or_default().push(rule),
            Matcher::Prefix(p) => self.prefixes.add(p, rule),
            Matcher::PrefixFolded(p) => self.folded_prefixes.add(p, rule),
            Matcher::Suffix(p) => self.suffixes.add(p, rule),
            Matcher::SuffixFolded(p) => self.folded_suffixes.add(p, rule),
            Matcher::Numeric(range) => self.ranges.items.push((*range, rule)),
            Matcher::Wildcard(w) if !w.head().is_empty() && w.pieces.len() > 1 => self.prefixes.add(w.head(), rule),
            Matcher::Wildcard(w) if w.pieces.len() == 1 => {
                self.strings.entry(w.head().to_string()).or_default().push(rule)
            }
            Matcher::Wildcard(w) => self.suffixes.add(w.tail(), rule),
            _ => self.present.push(rule),
        }
    }

    /// The rules some value at this field can satisfy.
    fn candidates(&self, at: At<'_>, out: &mut Vec<u32>) {
        let any_folded =
            !self.folded.is_empty() || !self.folded_prefixes.is_empty() || !self.folded_suffixes.is_empty();
        let mut present = false;
        leaves_at(at, &self.path, &mut |leaf| {
            present = true;
            match leaf {
                Leaf::Str(s) => {
                    if let Some(rules) = self.strings.get(s) {
                        out.extend(rules);
                    }
                    self.prefixes.prefixes_of(s, out);
                    self.suffixes.suffixes_of(s, out);
                    if any_folded {
                        let folded = folded(s);
                        if let Some(rules) = self.folded.get(folded.as_ref()) {
                            out.extend(rules);
                        }
                        self.folded_prefixes.prefixes_of(&folded, out);
                        self.folded_suffixes.suffixes_of(&folded, out);
                    }
                }
                Leaf::Num(n) => {
                    if let Some(rules) = self.numbers.get(&number_key(n)) {
                        out.extend(rules);
                    }
                    if !self.ranges.items.is_empty() {
                        self.ranges.query(n, out);
                    }
                }
                other => out.extend(self.others.iter().filter(|(l, _)| l.matches(other)).map(|(_, r)| *r)),
            }
        });
        if present {
            out.extend(&self.present);
        }
    }
}

/// `s` folded, without a copy when it is folded already (lower-case ASCII).
fn folded(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(fold(s))
    }
}

/// Every leaf value at `path` under `at`, through arrays of objects.
fn leaves_at<'a>(at: At<'a>, path: &[String], each: &mut impl FnMut(Leaf<'a>)) {
    let Some((first, rest)) = path.split_first() else {
        at.any_leaf(&mut |leaf| {
            each(leaf);
            false
        });
        return;
    };
    match at {
        At::Json(Value::Array(items)) => {
            for item in items {
                leaves_at(At::Json(item), path, each);
            }
        }
        other => leaves_at(other.field(first), rest, each),
    }
}

/// How good an anchor a matcher is: lower is more selective; `None` cannot anchor.
fn selectivity(m: &Matcher) -> Option<u8> {
    Some(match m {
        Matcher::Exact(Literal::Str { ip: Some(_), .. }) => return None,
        Matcher::Exact(_) => 0,
        Matcher::EqualsIgnoreCase(_) => 1,
        Matcher::Prefix(p) | Matcher::Suffix(p) | Matcher::PrefixFolded(p) | Matcher::SuffixFolded(p) => {
            if p.is_empty() {
                6
            } else {
                2
            }
        }
        Matcher::Numeric(r) if r.low.is_some() && r.high.is_some() => 3,
        Matcher::Wildcard(w) if !w.head().is_empty() || !w.tail().is_empty() => 4,
        Matcher::Numeric(_) => 5,
        Matcher::Exists(true) | Matcher::Cidr(_) => 6,
        Matcher::Wildcard(_) => 6,
        Matcher::Exists(false) | Matcher::AnythingBut(_) => return None,
    })
}

/// The mandatory leaves of a pattern (outside `$or`), with their paths.
fn mandatory_leaves<'p>(p: &'p Pattern, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, &'p [Matcher])>) {
    for (key, field) in &p.fields {
        path.push(key.clone());
        match field {
            Field::Leaf(matchers) => out.push((path.clone(), matchers)),
            Field::Node(child) => mandatory_leaves(child, path, out),
        }
        path.pop();
    }
}

/// The best anchor of a rule: (path, matchers), if any.
fn anchor(preds: &[Pred]) -> Option<(Vec<String>, Vec<Matcher>)> {
    let mut leaves = Vec::new();
    for pred in preds {
        if let Pred::Pattern(p) = pred {
            mandatory_leaves(p, &mut Vec::new(), &mut leaves);
        }
    }
    leaves
        .into_iter()
        .filter_map(|(path, matchers)| {
            let worst = matchers.iter().map(selectivity).try_fold(0u8, |acc, s| s.map(|s| acc.max(s)))?;
            Some((worst, path, matchers))
        })
        .min_by_key(|(score, _, _)| *score)
        .map(|(_, path, matchers)| (path, matchers.to_vec()))
}

/// One tenant's active rules for one trigger, compiled and indexed.
#[derive(Default)]
pub struct CompiledRules {
    rules: Vec<CompiledRule>,
    fields: Vec<FieldIndex>,
    /// Rules with no anchor: always checked.
    always: Vec<u32>,
    /// The envelope's `source` for this trigger's events.
    source: String,
    /// The feature flags the rules' conditions name.
    flags: BTreeSet<String>,
}

impl CompiledRules {
    /// `fields`: the trigger's data fields; `module`: the events' system.
    pub fn new(rules: Vec<Rule>, fields: &BTreeSet<String>, module: &str) -> Self {
        let mut compiled = CompiledRules { source: format!("platform.{module}"), ..Default::default() };
        let mut by_path: HashMap<Vec<String>, usize> = HashMap::new();
        for rule in rules {
            let preds: Vec<Pred> = rule.conditions.iter().map(|c| compile(c, fields)).collect();
            rule.conditions.iter().for_each(|c| flags_of(c, &mut compiled.flags));
            let index = compiled.rules.len() as u32;
            let anchored = anchor(&preds);
            let decided = anchored.is_some() && decided_by_index(&preds);
            match anchored {
                Some((path, matchers)) => {
                    let slot = *by_path.entry(path.clone()).or_insert_with(|| {
                        compiled.fields.push(FieldIndex { path, ..Default::default() });
                        compiled.fields.len() - 1
                    });
                    for m in &matchers {
                        compiled.fields[slot].add(m, index);
                    }
                }
                None => compiled.always.push(index),
            }
            compiled.rules.push(CompiledRule { rule, preds, decided_by_index: decided });
        }
        for field in &mut compiled.fields {
            field.ranges.build();
        }
        compiled
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The feature flags the rules name: evaluate them, then call [`Self::matching_with`].
    pub fn flags(&self) -> &BTreeSet<String> {
        &self.flags
    }

    /// The rules whose every condition holds (every feature flag off).
    pub fn matching(&self, event: &BusinessEvent) -> Vec<&Rule> {
        self.matching_with(event, &NO_FLAGS)
    }

    /// The rules whose every condition holds, with the feature flags in `flags_on` on.
    pub fn matching_with(&self, event: &BusinessEvent, flags_on: &BTreeSet<String>) -> Vec<&Rule> {
        let mut view = EventView::new(event, &self.source);
        view.flags = flags_on;
        let mut candidates: Vec<u32> = Vec::with_capacity(self.always.len() + 8);
        candidates.extend(&self.always);
        for field in &self.fields {
            field.candidates(view.at(), &mut candidates);
        }
        candidates.sort_unstable();
        candidates.dedup();
        candidates
            .into_iter()
            .filter_map(|i| {
                let rule = &self.rules[i as usize];
                (rule.decided_by_index || rule.preds.iter().all(|p| p.holds(&view))).then_some(&rule.rule)
            })
            .collect()
    }
}

/// Which conditions of one rule hold for the event, in order (the dry run).
pub fn evaluate(rule: &Rule, fields: &BTreeSet<String>, event: &BusinessEvent) -> Vec<bool> {
    let source = format!("platform.{}", event.module_type);
    let view = EventView::new(event, &source);
    rule.conditions.iter().map(|c| compile(c, fields).holds(&view)).collect()
}

/// Data helper for tests and benchmarks.
pub fn event_with(data: Map<String, Value>) -> BusinessEvent {
    BusinessEvent {
        event_id: "e".into(),
        tenant_id: "t".into(),
        module_type: "sales".into(),
        trigger_id: "opportunity_created".into(),
        occurred_at: String::new(),
        data,
        changes: Map::new(),
        causation: Default::default(),
        native: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(data: Value) -> BusinessEvent {
        let mut e = event_with(data.as_object().unwrap().clone());
        e.changes = json!({"stage": {"old": "proposal", "new": "closed_won"}}).as_object().unwrap().clone();
        e
    }

    fn fields() -> BTreeSet<String> {
        ["value", "stage", "owner", "tags", "name", "items"].iter().map(|s| s.to_string()).collect()
    }

    fn cond(v: Value) -> Condition {
        serde_json::from_value(v).unwrap()
    }

    fn rule(id: usize, conditions: Value) -> Rule {
        Rule {
            id: format!("r{id}"),
            tenant_id: "t".into(),
            name: "n".into(),
            description: None,
            module_type: "sales".into(),
            trigger_id: "opportunity_created".into(),
            conditions: serde_json::from_value(conditions).unwrap(),
            actions: Vec::new(),
            schedule: None,
            is_active: true,
            created_at: String::new(),
            updated_at: String::new(),
            version: 1,
        }
    }

    fn holds(c: Value, e: &BusinessEvent) -> bool {
        evaluate(&rule(0, json!([c])), &fields(), e)[0]
    }

    #[test]
    fn comparisons_and_seed_conditions() {
        let e = event(
            json!({"value": 20000, "stage": "closed_won", "owner": "ann", "tags": ["vip", "eu"], "name": "Big Deal"}),
        );
        let yes = [
            json!({"type": "value_threshold", "value": 10000}),
            json!({"type": "equals", "field": "owner", "value": "ann"}),
            json!({"type": "equals", "field": "value", "value": 20000.0}),
            json!({"type": "not_equals", "field": "owner", "value": "bob"}),
            json!({"type": "not_equals", "field": "missing", "value": "bob"}),
            json!({"type": "greater_than", "field": "value", "value": 19999}),
            json!({"type": "less_or_equal", "field": "value", "value": 20000}),
            json!({"type": "contains", "field": "tags", "value": "vip"}),
            json!({"type": "contains", "field": "name", "value": "Deal"}),
            json!({"type": "in", "field": "owner", "value": ["ann", "bob"]}),
            json!({"type": "exists", "field": "owner"}),
            json!({"type": "exists", "field": "missing", "value": false}),
            json!({"type": "changed", "field": "stage"}),
            json!({"type": "changed_to", "field": "stage", "value": "closed_won"}),
            json!({"type": "prefix", "field": "stage", "value": "closed"}),
            json!({"type": "suffix", "field": "stage", "value": "_won"}),
            json!({"type": "equals_ignore_case", "field": "name", "value": "BIG DEAL"}),
            json!({"type": "anything_but", "field": "owner", "value": ["bob", "carl"]}),
            json!({"type": "anything_but", "field": "owner", "value": {"equals-ignore-case": "BOB"}}),
            json!({"type": "numeric", "field": "value", "value": [">", 0, "<=", 20000]}),
            json!({"type": "wildcard", "field": "name", "value": "Big*al"}),
            json!({"type": "pattern", "value": {"stage": [{"prefix": "closed"}], "tags": ["eu"]}}),
            json!({"type": "pattern", "value": {"source": ["platform.sales"], "detail": {"owner": ["ann"]}}}),
            json!({"type": "any_of", "value": [{"type": "equals", "field": "owner", "value": "zed"}, {"type": "equals", "field": "owner", "value": "ann"}]}),
        ];
        for c in yes {
            assert!(holds(c.clone(), &e), "{c}");
        }
        let no = [
            json!({"type": "value_threshold", "value": 20001}),
            json!({"type": "equals", "field": "owner", "value": "bob"}),
            json!({"type": "not_equals", "field": "owner", "value": "ann"}),
            json!({"type": "changed", "field": "owner"}),
            json!({"type": "anything_but", "field": "owner", "value": "ann"}),
            json!({"type": "anything_but", "field": "owner", "value": {"equals-ignore-case": "ANN"}}),
            json!({"type": "numeric", "field": "value", "value": ["<", 100]}),
            json!({"type": "pattern", "value": {"source": ["platform.crm"]}}),
        ];
        for c in no {
            assert!(!holds(c.clone(), &e), "{c}");
        }
    }

    /// Every rule the index finds is one that matches, and none is missed: checked
    /// against evaluating every rule, for every kind of anchor.
    #[test]
    fn the_index_finds_exactly_the_matching_rules() {
        let mut rules = Vec::new();
        let mut add = |c: Value| {
            let id = rules.len();
            rules.push(rule(id, json!([c])));
        };
        for i in 0..200 {
            add(json!({"type": "equals", "field": "owner", "value": format!("user{i}")}));
            add(json!({"type": "numeric", "field": "value", "value": [">=", i * 100, "<", i * 100 + 100]}));
            add(json!({"type": "value_threshold", "value": i * 100}));
            add(json!({"type": "prefix", "field": "name", "value": format!("Deal {i}")}));
            add(json!({"type": "suffix", "field": "name", "value": format!("#{i}")}));
            add(json!({"type": "equals_ignore_case", "field": "stage", "value": format!("STAGE{i}")}));
            add(json!({"type": "wildcard", "field": "name", "value": format!("Deal*{i}")}));
            add(json!({"type": "pattern", "value": {"items": {"sku": [format!("sku-{i}")]}}}));
            add(json!({"type": "anything_but", "field": "owner", "value": format!("user{i}")}));
        }
        add(json!({"type": "exists", "field": "tags"}));
        add(json!({"type": "changed", "field": "stage"}));
        let compiled = CompiledRules::new(rules.clone(), &fields(), "sales");
        for data in [
            json!({"owner": "user7", "value": 750, "stage": "stage7", "name": "Deal 7 #7", "items": [{"sku": "sku-7"}, {"sku": "x"}]}),
            json!({"owner": "nobody", "value": -1, "stage": "Stage199", "name": "Other #12", "tags": []}),
            json!({"value": 19999.5, "name": "Deal 1999"}),
        ] {
            let e = event(data.clone());
            let mut found: Vec<String> = compiled.matching(&e).into_iter().map(|r| r.id.clone()).collect();
            found.sort();
            let mut expected: Vec<String> =
                rules.iter().filter(|r| evaluate(r, &fields(), &e).iter().all(|b| *b)).map(|r| r.id.clone()).collect();
            expected.sort();
            assert_eq!(found, expected, "{data}");
        }
    }

    #[test]
    fn numeric_intervals_find_every_interval_holding_a_value() {
        let mut intervals = Intervals::default();
        let r = |lo: f64, hi: f64| pattern::Range { low: Some((lo, true)), high: Some((hi, false)) };
        for i in 0..100u32 {
            intervals.items.push((r(f64::from(i), f64::from(i) + 10.0), i));
        }
        intervals.items.push((pattern::Range { low: None, high: None }, 1000));
        intervals.build();
        let mut out = Vec::new();
        intervals.query(50.5, &mut out);
        out.sort_unstable();
        let expected: Vec<u32> = (41..=50).chain([1000]).collect();
        assert_eq!(out, expected);
    }

    #[test]
    fn conditions_deserialize_from_the_api_shape() {
        let c = cond(json!({"type": "equals", "field": "owner", "value": "ann"}));
        assert_eq!(c.kind(), "equals");
        assert_eq!(c.field(), Some("owner"));
    }
}
