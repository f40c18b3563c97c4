//! Condition matching: the seed's conditions, field comparisons and Amazon EventBridge
//! event-pattern operators, and a compiled index of a tenant's rules so that matching
//! does not grow linearly with their number.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::events::BusinessEvent;
use super::rules::{Condition, Rule};

fn number(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Whether one condition holds for the event.
pub fn holds(c: &Condition, event: &BusinessEvent) -> bool {
    let data = &event.data;
    let field = c.field.as_deref();
    let actual = field.and_then(|f| data.get(f));
    let value = c.value.as_ref().unwrap_or(&Value::Null);
    let text = |v: &Value| v.as_str().map(str::to_string);
    match c.kind.as_str() {
        "value_threshold" => {
            data.get(field.unwrap_or("value")).and_then(number).zip(number(value)).is_some_and(|(a, t)| a >= t)
        }
        "equals" => actual.is_some_and(|a| same(a, value)),
        "not_equals" => !actual.is_some_and(|a| same(a, value)),
        "greater_than" => actual.and_then(number).zip(number(value)).is_some_and(|(a, b)| a > b),
        "greater_or_equal" => actual.and_then(number).zip(number(value)).is_some_and(|(a, b)| a >= b),
        "less_than" => actual.and_then(number).zip(number(value)).is_some_and(|(a, b)| a < b),
        "less_or_equal" => actual.and_then(number).zip(number(value)).is_some_and(|(a, b)| a <= b),
        "contains" => match actual {
            Some(Value::String(s)) => value.as_str().is_some_and(|v| s.contains(v)),
            Some(Value::Array(items)) => items.iter().any(|i| same(i, value)),
            _ => false,
        },
        "in" => actual.is_some_and(|a| value.as_array().is_some_and(|list| list.iter().any(|v| same(a, v)))),
        "exists" => actual.is_some_and(|a| !a.is_null()) == value.as_bool().unwrap_or(true),
        "changed" => field.is_some_and(|f| event.changes.contains_key(f)),
        "changed_to" => field.and_then(|f| event.changes.get(f)).is_some_and(|pair| same(&pair["new"], value)),
        "prefix" => actual.and_then(text).zip(value.as_str()).is_some_and(|(a, p)| a.starts_with(p)),
        "suffix" => actual.and_then(text).zip(value.as_str()).is_some_and(|(a, p)| a.ends_with(p)),
        "equals_ignore_case" => {
            actual.and_then(text).zip(value.as_str()).is_some_and(|(a, p)| a.eq_ignore_ascii_case(p))
        }
        "wildcard" => actual.and_then(text).zip(value.as_str()).is_some_and(|(a, p)| wildcard(p, &a)),
        "anything_but" => actual.is_some_and(|a| anything_but(value, a)),
        "numeric" => actual.and_then(number).is_some_and(|a| numeric(value, a)),
        "pattern" => pattern_matches(value, &Value::Object(data.clone())),
        "any_of" => value.as_array().is_some_and(|list| {
            list.iter().filter_map(|c| serde_json::from_value::<Condition>(c.clone()).ok()).any(|c| holds(&c, event))
        }),
        _ => false,
    }
}

fn wildcard(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

fn anything_but(spec: &Value, actual: &Value) -> bool {
    match spec {
        Value::Array(list) => !list.iter().any(|v| same(v, actual)),
        Value::Object(o) if o.contains_key("prefix") => {
            !actual.as_str().zip(o["prefix"].as_str()).is_some_and(|(a, p)| a.starts_with(p))
        }
        Value::Object(o) if o.contains_key("suffix") => {
            !actual.as_str().zip(o["suffix"].as_str()).is_some_and(|(a, p)| a.ends_with(p))
        }
        other => !same(other, actual),
    }
}

/// `[">", 0, "<=", 5]`: every comparison must hold.
fn numeric(spec: &Value, actual: f64) -> bool {
    let Some(list) = spec.as_array() else { return false };
    list.chunks(2).all(|pair| match (pair.first().and_then(Value::as_str), pair.get(1).and_then(Value::as_f64)) {
        (Some("="), Some(n)) => actual == n,
        (Some(">"), Some(n)) => actual > n,
        (Some(">="), Some(n)) => actual >= n,
        (Some("<"), Some(n)) => actual < n,
        (Some("<="), Some(n)) => actual <= n,
        _ => false,
    })
}

pub fn check_numeric(spec: &Value) -> Result<(), String> {
    let list = spec.as_array().ok_or("must be a list like [\">\", 0, \"<=\", 5]")?;
    if list.is_empty() || list.len() % 2 != 0 {
        return Err("must be pairs of an operator and a number".to_string());
    }
    for pair in list.chunks(2) {
        let op_ok = pair[0].as_str().is_some_and(|op| matches!(op, "=" | ">" | ">=" | "<" | "<="));
        if !op_ok || !pair[1].is_number() {
            return Err("each pair is an operator (=, >, >=, <, <=) and a number".to_string());
        }
    }
    Ok(())
}

/// Checks an EventBridge pattern over the event data: keys must be fields the trigger carries.
pub fn check_pattern(pattern: &Value, fields: &BTreeSet<String>) -> Result<(), String> {
    let object = pattern.as_object().ok_or("must be an EventBridge event pattern (an object)")?;
    for (key, spec) in object {
        if key == "$or" {
            let alternatives = spec.as_array().ok_or("$or must be a list of patterns")?;
            for alternative in alternatives {
                check_pattern(alternative, fields)?;
            }
        } else if !fields.contains(key) {
            return Err(format!("the trigger does not carry '{key}'"));
        } else if !(spec.is_array() || spec.is_object()) {
            return Err(format!("'{key}' must map to a list of values or matchers"));
        }
    }
    Ok(())
}

/// Amazon EventBridge pattern semantics: every key must match; a list matches when any
/// of its entries does; an event array matches when any element does.
pub fn pattern_matches(pattern: &Value, event: &Value) -> bool {
    let Some(object) = pattern.as_object() else { return false };
    object.iter().all(|(key, spec)| {
        if key == "$or" {
            return spec.as_array().is_some_and(|alts| alts.iter().any(|alt| pattern_matches(alt, event)));
        }
        let actual = event.get(key);
        match spec {
            Value::Object(_) => actual.is_some_and(|a| pattern_matches(spec, a)),
            Value::Array(matchers) => matchers.iter().any(|m| matcher_matches(m, actual)),
            _ => false,
        }
    })
}

fn matcher_matches(matcher: &Value, actual: Option<&Value>) -> bool {
    if let Some(Value::Array(items)) = actual {
        if !matches!(matcher, Value::Object(o) if o.contains_key("exists")) {
            return items.iter().any(|item| matcher_matches(matcher, Some(item)));
        }
    }
    match matcher {
        Value::Object(o) => {
            if let Some(exists) = o.get("exists").and_then(Value::as_bool) {
                return actual.is_some_and(|a| !a.is_null()) == exists;
            }
            let Some(actual) = actual else { return false };
            if let Some(p) = o.get("prefix") {
                return match p {
                    Value::String(p) => actual.as_str().is_some_and(|a| a.starts_with(p.as_str())),
                    Value::Object(i) => i
                        .get("equals-ignore-case")
                        .and_then(Value::as_str)
                        .zip(actual.as_str())
                        .is_some_and(|(p, a)| a.to_lowercase().starts_with(&p.to_lowercase())),
                    _ => false,
                };
            }
            if let Some(s) = o.get("suffix").and_then(Value::as_str) {
                return actual.as_str().is_some_and(|a| a.ends_with(s));
            }
            if let Some(s) = o.get("equals-ignore-case").and_then(Value::as_str) {
                return actual.as_str().is_some_and(|a| a.eq_ignore_ascii_case(s));
            }
            if let Some(s) = o.get("wildcard").and_then(Value::as_str) {
                return actual.as_str().is_some_and(|a| wildcard(s, a));
            }
            if let Some(spec) = o.get("anything-but") {
                return anything_but(spec, actual);
            }
            if let Some(spec) = o.get("numeric") {
                return actual.as_f64().is_some_and(|a| numeric(spec, a));
            }
            false
        }
        literal => actual.is_some_and(|a| same(literal, a)),
    }
}

/// Which conditions of a rule held, in order.
pub fn evaluate(rule: &Rule, event: &BusinessEvent) -> Vec<bool> {
    rule.conditions.iter().map(|c| holds(c, event)).collect()
}

/// A canonical text for an equality key (numbers compare by value).
fn key_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(format!("s:{s}")),
        Value::Number(n) => n.as_f64().map(|f| format!("n:{f}")),
        Value::Bool(b) => Some(format!("b:{b}")),
        _ => None,
    }
}

/// One tenant's active rules for one trigger, indexed: each rule is filed under its most
/// selective condition (an equality, or a numeric lower bound), so an event only looks
/// at the rules that can match it.
#[derive(Default)]
pub struct CompiledRules {
    rules: Vec<Arc<Rule>>,
    /// (field, canonical value) -> rules that need that field to equal that value.
    equals: HashMap<(String, String), Vec<usize>>,
    /// field -> (lower bound, rule), sorted by bound: rules needing `field >= bound`.
    at_least: HashMap<String, Vec<(f64, usize)>>,
    /// Rules with no indexable condition: always checked.
    others: Vec<usize>,
}

impl CompiledRules {
    pub fn new(rules: Vec<Rule>) -> Self {
        let mut compiled = CompiledRules::default();
        for (index, rule) in rules.into_iter().enumerate() {
            let anchor_eq = rule.conditions.iter().find_map(|c| match (c.kind.as_str(), &c.field, &c.value) {
                ("equals", Some(f), Some(v)) => key_of(v).map(|k| (f.clone(), k)),
                ("changed_to", Some(f), Some(v)) => key_of(v).map(|k| (format!("new_{f}"), k)),
                _ => None,
            });
            let anchor_min = rule.conditions.iter().find_map(|c| {
                match (c.kind.as_str(), &c.field, c.value.as_ref().and_then(Value::as_f64)) {
                    ("value_threshold", f, Some(t)) => Some((f.clone().unwrap_or_else(|| "value".to_string()), t)),
                    ("greater_or_equal" | "greater_than", Some(f), Some(t)) => Some((f.clone(), t)),
                    _ => None,
                }
            });
            match (anchor_eq, anchor_min) {
                (Some(key), _) => compiled.equals.entry(key).or_default().push(index),
                (None, Some((field, bound))) => compiled.at_least.entry(field).or_default().push((bound, index)),
                (None, None) => compiled.others.push(index),
            }
            compiled.rules.push(Arc::new(rule));
        }
        for list in compiled.at_least.values_mut() {
            list.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        compiled
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules whose every condition holds, with each condition's result.
    pub fn matching(&self, event: &BusinessEvent) -> Vec<(Arc<Rule>, Vec<bool>)> {
        let mut candidates: Vec<usize> = self.others.clone();
        for (field, value) in &event.data {
            if let Some(key) = key_of(value) {
                if let Some(list) = self.equals.get(&(field.clone(), key)) {
                    candidates.extend(list);
                }
            }
            if let (Some(list), Some(v)) = (self.at_least.get(field), value.as_f64()) {
                let end = list.partition_point(|(bound, _)| *bound <= v);
                candidates.extend(list[..end].iter().map(|(_, i)| *i));
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        candidates
            .into_iter()
            .filter_map(|i| {
                let rule = &self.rules[i];
                let results = evaluate(rule, event);
                results.iter().all(|r| *r).then(|| (rule.clone(), results))
            })
            .collect()
    }
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

    fn cond(v: Value) -> Condition {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn comparisons_and_seed_conditions() {
        let e = event(
            json!({"value": 20000, "stage": "closed_won", "owner": "ann", "tags": ["vip", "eu"], "name": "Big Deal"}),
        );
        let yes = [
            json!({"type": "value_threshold", "value": 10000}),
            json!({"type": "equals", "field": "owner", "value": "ann"}),
            json!({"type": "not_equals", "field": "owner", "value": "bob"}),
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
            json!({"type": "numeric", "field": "value", "value": [">", 0, "<=", 20000]}),
            json!({"type": "wildcard", "field": "name", "value": "Big*al"}),
            json!({"type": "any_of", "value": [{"type": "equals", "field": "owner", "value": "zed"}, {"type": "equals", "field": "owner", "value": "ann"}]}),
        ];
        for c in yes {
            assert!(holds(&cond(c.clone()), &e), "{c}");
        }
        let no = [
            json!({"type": "value_threshold", "value": 20001}),
            json!({"type": "equals", "field": "owner", "value": "bob"}),
            json!({"type": "changed", "field": "owner"}),
            json!({"type": "anything_but", "field": "owner", "value": "ann"}),
            json!({"type": "numeric", "field": "value", "value": ["<", 100]}),
        ];
        for c in no {
            assert!(!holds(&cond(c.clone()), &e), "{c}");
        }
    }

    #[test]
    fn eventbridge_patterns() {
        let data = json!({"stage": "closed_won", "value": 500, "tags": ["vip"], "owner": "Ann"});
        let yes = [
            json!({"stage": ["closed_won", "closed_lost"]}),
            json!({"stage": [{"prefix": "closed"}], "value": [{"numeric": [">=", 100]}]}),
            json!({"tags": ["vip"]}),
            json!({"owner": [{"equals-ignore-case": "ann"}]}),
            json!({"owner": [{"anything-but": ["bob"]}]}),
            json!({"missing": [{"exists": false}], "owner": [{"exists": true}]}),
            json!({"$or": [{"stage": ["open"]}, {"value": [{"numeric": ["<", 1000]}]}]}),
            json!({"stage": [{"suffix": "_won"}]}),
            json!({"owner": [{"prefix": {"equals-ignore-case": "AN"}}]}),
        ];
        for p in yes {
            assert!(pattern_matches(&p, &data), "{p}");
        }
        let no = [
            json!({"stage": ["open"]}),
            json!({"value": [{"numeric": [">", 500]}]}),
            json!({"owner": [{"anything-but": {"prefix": "A"}}]}),
        ];
        for p in no {
            assert!(!pattern_matches(&p, &data), "{p}");
        }
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
            is_active: true,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn the_index_finds_exactly_the_matching_rules() {
        let mut rules = Vec::new();
        for i in 0..500 {
            rules.push(rule(i, json!([{"type": "equals", "field": "owner", "value": format!("user{i}")}])));
        }
        for i in 500..1000 {
            rules.push(rule(i, json!([{"type": "value_threshold", "value": i * 100}])));
        }
        rules.push(rule(1000, json!([{"type": "prefix", "field": "stage", "value": "closed"}])));
        rules.push(rule(1001, json!([])));
        let compiled = CompiledRules::new(rules.clone());
        let e = event(json!({"owner": "user7", "value": 50_250, "stage": "closed_won"}));
        let mut found: Vec<String> = compiled.matching(&e).into_iter().map(|(r, _)| r.id.clone()).collect();
        found.sort();
        let mut expected: Vec<String> =
            rules.iter().filter(|r| evaluate(r, &e).iter().all(|b| *b)).map(|r| r.id.clone()).collect();
        expected.sort();
        assert_eq!(found, expected);
        assert_eq!(found.len(), 1 + 3 + 2, "user7, thresholds 50000..50200, prefix and the unconditional rule");
    }
}
