//! Rule matching throughput at 10, 1,000, 10,000 and 100,000 active rules of one tenant
//! and trigger, for the engine's compiled matcher and, on the same rules (as EventBridge
//! patterns) and events (as JSON), the `quamina` crate as the peer.
//! Run: `cargo bench -p platform --bench rule_matching` (add a filter such as
//! `selective` to run one scenario). Reports events per second.
//!
//! Scenarios (each event of a selective scenario matches exactly one rule):
//! - `selective`: a third equality on `owner`, a third a numeric range `[i, i+1)` on
//!   `value`, a third a prefix on `name`;
//! - one per operator: `equality`, `range`, `prefix`, `suffix`, `equals_ignore_case`,
//!   `wildcard` (a literal head), `anything_but` and `exists` (each with an equality, as
//!   those two alone match nearly every event);
//! - `broad`: equalities over 10 stages, wide ranges and short prefixes: each event
//!   matches about a tenth of the rules, so the work grows with the matches, for both.
//!
//! `compile/10000` measures building the matcher for 10,000 rules (what a rule change
//! costs the next event).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use platform::domain::events::BusinessEvent;
use platform::domain::matcher::{event_with, CompiledRules};
use platform::domain::rules::Rule;
use serde_json::{json, Value};

const COUNTS: [usize; 4] = [10, 1_000, 10_000, 100_000];
/// Events cycled through per scenario.
const EVENTS: usize = 64;

/// (rule as an EventBridge pattern over the data, event data) for rule `i` of `n`.
type Scenario = fn(usize, usize) -> (Value, Value);

fn selective(i: usize, _: usize) -> (Value, Value) {
    match i % 3 {
        0 => (json!({"owner": [format!("user{i}")]}), json!({"owner": format!("user{i}"), "value": -1, "name": "x"})),
        1 => (
            json!({"value": [{"numeric": [">=", i, "<", i + 1]}]}),
            json!({"owner": "nobody", "value": i as f64 + 0.5, "name": "x"}),
        ),
        _ => (
            json!({"name": [{"prefix": format!("deal-{i}-")}]}),
            json!({"owner": "nobody", "value": -1, "name": format!("deal-{i}-x")}),
        ),
    }
}

fn equality(i: usize, _: usize) -> (Value, Value) {
    (json!({"owner": [format!("user{i}")]}), json!({"owner": format!("user{i}"), "stage": "open"}))
}

fn range(i: usize, _: usize) -> (Value, Value) {
    (json!({"value": [{"numeric": [">=", i, "<", i + 1]}]}), json!({"value": i as f64 + 0.25, "stage": "open"}))
}

fn prefix(i: usize, _: usize) -> (Value, Value) {
    (json!({"name": [{"prefix": format!("deal-{i}-")}]}), json!({"name": format!("deal-{i}-of-the-year")}))
}

fn suffix(i: usize, _: usize) -> (Value, Value) {
    (json!({"name": [{"suffix": format!("-{i}.pdf")}]}), json!({"name": format!("contract-{i}.pdf")}))
}

fn equals_ignore_case(i: usize, _: usize) -> (Value, Value) {
    (json!({"owner": [{"equals-ignore-case": format!("USER{i}")}]}), json!({"owner": format!("user{i}")}))
}

fn wildcard(i: usize, _: usize) -> (Value, Value) {
    (json!({"name": [{"wildcard": format!("deal-{i}-*-final")}]}), json!({"name": format!("deal-{i}-big-final")}))
}

fn anything_but(i: usize, _: usize) -> (Value, Value) {
    (
        json!({"owner": [format!("user{i}")], "stage": [{"anything-but": ["lost", "cancelled"]}]}),
        json!({"owner": format!("user{i}"), "stage": "open"}),
    )
}

fn exists(i: usize, _: usize) -> (Value, Value) {
    (
        json!({"owner": [format!("user{i}")], "tags": [{"exists": true}]}),
        json!({"owner": format!("user{i}"), "tags": ["vip"]}),
    )
}

fn broad(i: usize, _: usize) -> (Value, Value) {
    let pattern = match i % 3 {
        0 => json!({"stage": [format!("stage{}", i % 10)]}),
        1 => json!({"value": [{"numeric": [">=", (i % 10) * 100, "<", (i % 10) * 100 + 100]}]}),
        _ => json!({"name": [{"prefix": format!("n{}", i % 10)}]}),
    };
    (
        pattern,
        json!({"stage": format!("stage{}", i % 10), "value": (i % 10) * 100 + 50, "name": format!("n{}x", i % 10)}),
    )
}

fn rule(i: usize, pattern: &Value) -> Rule {
    Rule {
        id: format!("rule-{i}"),
        tenant_id: "acme".into(),
        name: format!("Rule {i}"),
        description: None,
        module_type: "sales".into(),
        trigger_id: "opportunity_created".into(),
        conditions: serde_json::from_value(json!([{"type": "pattern", "value": pattern}])).unwrap(),
        actions: Vec::new(),
        is_active: true,
        created_at: String::new(),
        updated_at: String::new(),
        version: 1,
        schedule: None,
    }
}

struct Prepared {
    rules: Vec<Rule>,
    patterns: Vec<Value>,
    events: Vec<BusinessEvent>,
    json_events: Vec<Vec<u8>>,
}

fn prepare(scenario: Scenario, count: usize) -> Prepared {
    let pairs: Vec<(Value, Value)> = (0..count).map(|i| scenario(i, count)).collect();
    let step = (count / EVENTS).max(1);
    let picked: Vec<&Value> = (0..count).step_by(step).take(EVENTS).map(|i| &pairs[i].1).collect();
    Prepared {
        rules: pairs.iter().enumerate().map(|(i, (p, _))| rule(i, p)).collect(),
        patterns: pairs.iter().map(|(p, _)| p.clone()).collect(),
        events: picked.iter().map(|d| event_with(d.as_object().unwrap().clone())).collect(),
        json_events: picked.iter().map(|d| serde_json::to_vec(d).unwrap()).collect(),
    }
}

/// The peer over the same patterns, or `None` when quamina cannot build it (some of its
/// automata overflow internal limits at 100,000 patterns on one field).
fn peer(prepared: &Prepared) -> Option<quamina::Quamina<usize>> {
    let patterns = prepared.patterns.clone();
    let first = prepared.json_events[0].clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let built = std::panic::catch_unwind(move || {
        // Its default 10 MB per field is too small for 100,000 rules on one field.
        let mut peer: quamina::Quamina<usize> =
            quamina::QuaminaBuilder::new().with_arena_byte_budget(1 << 30).build().expect("a quamina matcher");
        for (i, pattern) in patterns.iter().enumerate() {
            peer.add_pattern(i, &pattern.to_string()).expect("quamina takes the pattern");
        }
        peer.matches_for_event(&first).expect("quamina matches");
        peer
    });
    std::panic::set_hook(previous);
    built.ok()
}

fn fields() -> std::collections::BTreeSet<String> {
    ["owner", "value", "name", "stage", "tags"].iter().map(|s| s.to_string()).collect()
}

fn scenarios(c: &mut Criterion) {
    let all: [(&str, Scenario); 10] = [
        ("selective", selective),
        ("equality", equality),
        ("range", range),
        ("prefix", prefix),
        ("suffix", suffix),
        ("equals_ignore_case", equals_ignore_case),
        ("wildcard", wildcard),
        ("anything_but", anything_but),
        ("exists", exists),
        ("broad", broad),
    ];
    for (name, scenario) in all {
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(1));
        group.sample_size(20);
        group.warm_up_time(std::time::Duration::from_millis(300));
        group.measurement_time(std::time::Duration::from_secs(1));
        for count in COUNTS {
            let prepared = prepare(scenario, count);
            let engine = CompiledRules::new(prepared.rules.clone(), &fields(), "sales");
            let mut next = 0usize;
            group.bench_with_input(BenchmarkId::new("engine", count), &prepared.events, |b, events| {
                b.iter(|| {
                    next = (next + 1) % events.len();
                    engine.matching(&events[next]).len()
                })
            });
            let Some(peer) = peer(&prepared) else {
                eprintln!("{name}/quamina/{count}: quamina could not build this matcher (it panicked); not measured");
                continue;
            };
            // Both agree on what matches (quamina builds its matcher on the first event).
            for (event, bytes) in prepared.events.iter().zip(&prepared.json_events) {
                let ours = engine.matching(event).len();
                let theirs = peer.matches_for_event(bytes).expect("quamina matches").len();
                assert_eq!(ours, theirs, "{name}/{count}: {}", String::from_utf8_lossy(bytes));
            }
            group.bench_with_input(BenchmarkId::new("quamina", count), &prepared.json_events, |b, events| {
                b.iter(|| {
                    next = (next + 1) % events.len();
                    peer.matches_for_event(&events[next]).map(|m| m.len()).unwrap_or(0)
                })
            });
        }
        group.finish();
    }
}

fn compile(c: &mut Criterion) {
    let prepared = prepare(selective, 10_000);
    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    group.bench_function(BenchmarkId::new("engine", 10_000), |b| {
        b.iter(|| CompiledRules::new(prepared.rules.clone(), &fields(), "sales").len())
    });
    group.finish();
}

criterion_group!(benches, scenarios, compile);
criterion_main!(benches);
