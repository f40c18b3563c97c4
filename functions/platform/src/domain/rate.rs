//! Token buckets: how fast one tenant's events and actions go through the engine. A
//! bucket holds up to `burst` tokens and refills at `per_second`; each event or action
//! takes one. When none is left, the work waits (it is delayed, never dropped) until
//! the bucket has refilled one.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::invalid::{FieldIssue, Invalid};

/// A sustained rate and the burst above it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rate {
    /// Tokens added per second (sustained rate), from 0.01 to 10,000.
    pub per_second: f64,
    /// Most tokens held (how many may go at once after a quiet spell), from 1 to 100,000.
    pub burst: u32,
}

impl Rate {
    /// Faults of the rate, under `field`.
    pub fn check(&self, field: &str) -> Result<(), Invalid> {
        let mut issues = Vec::new();
        if !(0.01..=10_000.0).contains(&self.per_second) {
            issues.push(FieldIssue::new(format!("{field}.per_second"), "must be from 0.01 to 10000"));
        }
        if !(1..=100_000).contains(&self.burst) {
            issues.push(FieldIssue::new(format!("{field}.burst"), "must be from 1 to 100000"));
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(Invalid(issues))
        }
    }
}

/// A bucket's state at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub tokens: f64,
    /// When `tokens` was counted (epoch milliseconds).
    pub at_ms: u64,
}

impl Bucket {
    pub fn full(rate: Rate, now_ms: u64) -> Bucket {
        Bucket { tokens: f64::from(rate.burst), at_ms: now_ms }
    }

    /// Takes one token at `now_ms`: the bucket after, or how long until one is there.
    pub fn take(self, rate: Rate, now_ms: u64) -> Result<Bucket, Duration> {
        let elapsed = now_ms.saturating_sub(self.at_ms) as f64 / 1000.0;
        let tokens = (self.tokens + elapsed * rate.per_second).min(f64::from(rate.burst));
        let at_ms = now_ms.max(self.at_ms);
        if tokens >= 1.0 {
            return Ok(Bucket { tokens: tokens - 1.0, at_ms });
        }
        let wait = (1.0 - tokens) / rate.per_second;
        Err(Duration::from_secs_f64(wait).max(Duration::from_millis(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate { per_second: 2.0, burst: 3 };

    #[test]
    fn a_full_bucket_lets_its_burst_through_then_asks_to_wait() {
        let mut bucket = Bucket::full(RATE, 0);
        for _ in 0..3 {
            bucket = bucket.take(RATE, 0).expect("within the burst");
        }
        let wait = bucket.take(RATE, 0).expect_err("the burst is spent");
        assert_eq!(wait, Duration::from_millis(500), "one token comes every 1/2 s");
    }

    #[test]
    fn tokens_come_back_at_the_rate_up_to_the_burst() {
        let empty = Bucket { tokens: 0.0, at_ms: 0 };
        assert!(empty.take(RATE, 499).is_err());
        let after = empty.take(RATE, 500).expect("one token after 1/2 s");
        assert!(after.tokens.abs() < 1e-9);
        let rested = empty.take(RATE, 60_000).expect("refilled");
        assert!((rested.tokens - 2.0).abs() < 1e-9, "capped at the burst, less the one taken");
    }

    #[test]
    fn a_clock_going_backwards_adds_nothing() {
        let bucket = Bucket { tokens: 0.5, at_ms: 10_000 };
        assert!(bucket.take(RATE, 5_000).is_err());
    }

    #[test]
    fn rates_out_of_range_are_named() {
        let bad = Rate { per_second: 0.0, burst: 0 };
        let fields: Vec<String> = bad.check("actions").unwrap_err().0.into_iter().map(|i| i.field).collect();
        assert_eq!(fields, ["actions.per_second", "actions.burst"]);
        assert!(RATE.check("actions").is_ok());
    }
}
