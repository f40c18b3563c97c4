//! Sign-in throttling (OWASP Authentication cheat sheet): attempts are counted per
//! account and per client address *before* the password is checked, with one atomic,
//! conditional update, so parallel guesses are counted one by one. Past a few free
//! attempts each further one waits a growing delay, capped short so that nobody can keep
//! the owner of an account out for long; counts halve after each quiet period.

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::error::{AppError, AppResult};
use super::keys;
use super::stored::{committed, decode_at, optimistic, Step};
use crate::domain::ids::TenantId;
use crate::domain::time::unix_now;
use crate::ports::store::{Condition, Item, Store, Write};

/// The throttling policy; the defaults are documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Attempts an account may take before delays start.
    pub free_per_account: u32,
    /// Attempts one client address may take (over all accounts) before delays start.
    pub free_per_address: u32,
    /// The first delay; each further attempt doubles it.
    pub first_delay: u64,
    /// No delay is longer: the right password is never refused for longer than this.
    pub max_delay: u64,
    /// Counts halve after this long without attempts.
    pub half_life: u64,
}

pub const POLICY: Policy =
    Policy { free_per_account: 5, free_per_address: 20, first_delay: 5, max_delay: 60, half_life: 15 * 60 };

/// Attempts counted under one key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempts {
    pub count: u32,
    /// When the last attempt was counted (epoch seconds).
    pub last_at: u64,
}

impl Attempts {
    /// The count as it stands at `now`, halved for every quiet half-life since the last attempt.
    pub fn decayed(&self, now: u64, half_life: u64) -> u32 {
        let halvings = now.saturating_sub(self.last_at) / half_life.max(1);
        if halvings >= 32 {
            0
        } else {
            self.count >> halvings
        }
    }

    /// Seconds to wait before another attempt, with `free` attempts allowed without delay.
    pub fn wait(&self, now: u64, free: u32, policy: &Policy) -> u64 {
        let count = self.decayed(now, policy.half_life);
        if count < free {
            return 0;
        }
        let delay = (policy.first_delay << (count - free).min(16)).min(policy.max_delay);
        (self.last_at + delay).saturating_sub(now)
    }

    fn next(&self, now: u64, policy: &Policy) -> Attempts {
        Attempts { count: self.decayed(now, policy.half_life).saturating_add(1), last_at: now }
    }

    /// When the item may go: once the count has decayed to nothing.
    fn ttl(&self, policy: &Policy) -> u64 {
        self.last_at + policy.half_life * 33
    }
}

/// The key a client address is counted under: IPv4 by address, IPv6 by /64 (one
/// subscriber's network), anything unreadable together as "unknown".
pub fn address_key(addr: Option<IpAddr>) -> String {
    match addr.map(|a| a.to_canonical()) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        None => "unknown".to_string(),
    }
}

/// An attempt that was let through: what to undo when it succeeds.
pub struct Admitted {
    address_sk: String,
}

#[derive(Clone)]
pub struct SignInThrottle {
    store: Arc<dyn Store>,
    policy: Policy,
}

impl SignInThrottle {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store, policy: POLICY }
    }

    async fn read(&self, pk: &str, sk: &str) -> AppResult<(Attempts, Option<u64>)> {
        Ok(match self.store.get(pk, sk).await? {
            Some(item) => {
                let version = item.version;
                (decode_at(&item.pk, &item.sk, item.data)?, Some(version))
            }
            None => (Attempts::default(), None),
        })
    }

    fn count_write(&self, pk: &str, sk: &str, attempts: Attempts, version: Option<u64>) -> Write {
        let item = Item::new(pk, sk, version.unwrap_or(0) + 1, serde_json::to_value(attempts).expect("serializes"))
            .expiring(attempts.ttl(&self.policy));
        Write::Put { item, condition: version.map_or(Condition::Absent, Condition::Version) }
    }

    /// Counts an attempt on `email` from `address`, or refuses it (429 with the seconds to
    /// wait) while either is delayed. The count is committed before the caller checks the
    /// password, so concurrent attempts cannot slip past it.
    pub async fn admit(&self, tenant: &TenantId, email: &str, address: &str) -> AppResult<Admitted> {
        let pk = keys::tenant_pk(tenant);
        let account_sk = keys::login_throttle_sk(email);
        let address_sk = keys::login_address_sk(address);
        let admitted = optimistic("busy", || async {
            let now = unix_now();
            let (account, account_version) = self.read(&pk, &account_sk).await?;
            let (by_address, address_version) = self.read(&pk, &address_sk).await?;
            let wait = account.wait(now, self.policy.free_per_account, &self.policy).max(by_address.wait(
                now,
                self.policy.free_per_address,
                &self.policy,
            ));
            if wait > 0 {
                return Err(AppError::TooManyRequests { retry_after: wait });
            }
            let writes = vec![
                self.count_write(&pk, &account_sk, account.next(now, &self.policy), account_version),
                self.count_write(&pk, &address_sk, by_address.next(now, &self.policy), address_version),
            ];
            committed(self.store.transact(writes).await)
        })
        .await;
        match admitted {
            Ok(()) => Ok(Admitted { address_sk }),
            // Lost every race: many attempts at once, which is what throttling is for.
            Err(AppError::Conflict { .. }) => Err(AppError::TooManyRequests { retry_after: 1 }),
            Err(e) => Err(e),
        }
    }

    /// The write that forgets an account's attempts (a successful sign-in or reset).
    pub fn clear_account(tenant: &TenantId, email: &str) -> Write {
        Write::Delete { pk: keys::tenant_pk(tenant), sk: keys::login_throttle_sk(email), condition: Condition::None }
    }

    /// A successful sign-in does not count against its address (best effort).
    pub async fn succeeded(&self, tenant: &TenantId, admitted: Admitted) {
        let pk = keys::tenant_pk(tenant);
        let result = async {
            let (attempts, version) = self.read(&pk, &admitted.address_sk).await?;
            let Some(version) = version else { return Ok(()) };
            let back = Attempts { count: attempts.count.saturating_sub(1), ..attempts };
            let write = self.count_write(&pk, &admitted.address_sk, back, Some(version));
            self.store.transact(vec![write]).await.map_err(AppError::from)
        }
        .await;
        if let Err(e) = result {
            tracing::debug!(error = %e, "could not uncount a successful sign-in");
        }
    }

    /// Counts one request under `sk` (e.g. password-reset requests of an account) and says
    /// whether it is within `free` per half-life; never refuses with an error.
    pub async fn within(&self, tenant: &TenantId, sk: &str, free: u32) -> AppResult<bool> {
        let pk = keys::tenant_pk(tenant);
        optimistic("busy", || async {
            let now = unix_now();
            let (attempts, version) = self.read(&pk, sk).await?;
            if attempts.decayed(now, self.policy.half_life) >= free {
                return Ok(Step::Done(false));
            }
            let write = self.count_write(&pk, sk, attempts.next(now, &self.policy), version);
            Ok(committed(self.store.transact(vec![write]).await)?.map(|()| true))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_start_after_the_free_attempts_grow_and_are_capped() {
        let now = 1_000_000;
        let at = |count| Attempts { count, last_at: now };
        assert_eq!(at(4).wait(now, 5, &POLICY), 0);
        assert_eq!(at(5).wait(now, 5, &POLICY), 5);
        assert_eq!(at(6).wait(now, 5, &POLICY), 10);
        assert_eq!(at(7).wait(now, 5, &POLICY), 20);
        assert_eq!(at(40).wait(now, 5, &POLICY), POLICY.max_delay);
        assert_eq!(at(40).wait(now + POLICY.max_delay, 5, &POLICY), 0, "never longer than the cap");
    }

    #[test]
    fn counts_halve_after_each_quiet_half_life() {
        let attempts = Attempts { count: 40, last_at: 0 };
        assert_eq!(attempts.decayed(POLICY.half_life - 1, POLICY.half_life), 40);
        assert_eq!(attempts.decayed(POLICY.half_life, POLICY.half_life), 20);
        assert_eq!(attempts.decayed(3 * POLICY.half_life, POLICY.half_life), 5);
        assert_eq!(attempts.decayed(40 * POLICY.half_life, POLICY.half_life), 0);
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_bit_network() {
        let a = address_key(Some("2001:db8:1:2:aaaa::1".parse().unwrap()));
        let b = address_key(Some("2001:db8:1:2:bbbb::9".parse().unwrap()));
        assert_eq!(a, b);
        assert_eq!(address_key(Some("::ffff:10.0.0.1".parse().unwrap())), "10.0.0.1");
        assert_eq!(address_key(None), "unknown");
    }
}
