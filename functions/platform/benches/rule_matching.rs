//! Rule matching cost at 10, 1,000 and 10,000 active rules for one tenant and trigger.
//! Run: `cargo bench -p platform --bench rule_matching`.
//!
//! Each rule is filed under one condition like real rules: a third test equality on an
//! owner, a third a value threshold, a third equality on a stage plus a threshold; the
//! event matches a handful. `indexed` is the evaluator's compiled index; `linear` checks
//! every rule, for comparison.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use platform::domain::matcher::{evaluate, event_with, CompiledRules};
use platform::domain::rules::Rule;
use serde_json::json;

fn rules(count: usize) -> Vec<Rule> {
    (0..count)
        .map(|i| {
            let conditions = match i % 3 {
                0 => json!([{"type": "equals", "field": "owner", "value": format!("user{i}")}]),
                1 => json!([{"type": "value_threshold", "value": 1_000_000 + i * 10}]),
                _ => json!([{"type": "equals", "field": "stage", "value": format!("stage{}", i % 97)}, {"type": "greater_than", "field": "value", "value": i}]),
            };
            Rule {
                id: format!("rule-{i}"),
                tenant_id: "acme".into(),
                name: format!("Rule {i}"),
                description: None,
                module_type: "sales".into(),
                trigger_id: "opportunity_created".into(),
                conditions: serde_json::from_value(conditions).unwrap(),
                actions: Vec::new(),
                is_active: true,
                created_at: String::new(),
                updated_at: String::new(),
            }
        })
        .collect()
}

fn matching(c: &mut Criterion) {
    let event = event_with(
        json!({"owner": "user3", "value": 20_000, "stage": "stage5", "opportunity_name": "Deal"})
            .as_object()
            .unwrap()
            .clone(),
    );
    let mut group = c.benchmark_group("rule_matching");
    for count in [10usize, 1_000, 10_000] {
        let all = rules(count);
        let compiled = CompiledRules::new(all.clone());
        group.bench_with_input(BenchmarkId::new("indexed", count), &compiled, |b, compiled| {
            b.iter(|| compiled.matching(&event).len())
        });
        group.bench_with_input(BenchmarkId::new("linear", count), &all, |b, all| {
            b.iter(|| all.iter().filter(|r| evaluate(r, &event).iter().all(|held| *held)).count())
        });
    }
    group.finish();
}

criterion_group!(benches, matching);
criterion_main!(benches);
