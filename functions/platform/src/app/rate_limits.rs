//! Per-tenant rate limits of the automation engine: a token bucket for the events that
//! start runs and one for the actions executed, kept in the store so that every process
//! (every Lambda instance) draws from the same bucket. Work over the limit is delayed
//! (queued with a delay, or put back in the queue), never dropped. The platform operator
//! sets a tenant's limits; without them the defaults below hold.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::audit::{self, Actor, Change};
use super::error::AppResult;
use super::keys;
use super::stored::{committed, decode, decode_at, optimistic, FirstRead, Step};
use crate::domain::ids::TenantId;
use crate::domain::rate::{Bucket, Rate};
use crate::ports::store::{Condition, Item, Store, StoreError, Write};

/// What a bucket meters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Events that start runs (taken by the evaluator; the runs' actions wait).
    Events,
    /// Actions executed (taken by the executor; the action goes back to the queue).
    Actions,
}

impl Flow {
    fn name(self) -> &'static str {
        match self {
            Flow::Events => "events",
            Flow::Actions => "actions",
        }
    }
}

/// A tenant's limits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TenantLimits {
    /// Events that start runs.
    pub events: Rate,
    /// Actions executed.
    pub actions: Rate,
}

/// The limits of a tenant the operator has not set: 50 events/s (bursts of 500) and 20
/// actions/s (bursts of 200).
pub const DEFAULT_LIMITS: TenantLimits =
    TenantLimits { events: Rate { per_second: 50.0, burst: 500 }, actions: Rate { per_second: 20.0, burst: 200 } };

/// How long a process keeps a tenant's limits before reading them again.
pub const LIMITS_CACHE: Duration = Duration::from_secs(5);

/// A tenant's limits as the operator sees them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LimitsView {
    #[serde(flatten)]
    pub limits: TenantLimits,
    /// `tenant` when the operator set them, `default` otherwise.
    pub source: &'static str,
}

type LimitsCache = Arc<Mutex<HashMap<String, (Instant, Option<TenantLimits>)>>>;

#[derive(Clone)]
pub struct RateLimiter {
    store: Arc<dyn Store>,
    cache: LimitsCache,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl RateLimiter {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store, cache: Arc::default() }
    }

    async fn stored(&self, tenant: &TenantId) -> AppResult<Option<TenantLimits>> {
        self.store.get(&keys::tenant_pk(tenant), keys::LIMITS_SK).await?.map(decode).transpose()
    }

    /// The tenant's limits as last read for a token, if that was less than [`LIMITS_CACHE`]
    /// ago.
    fn cached(&self, tenant: &TenantId) -> Option<TenantLimits> {
        let cache = self.cache.lock().expect("lock");
        let (at, limits) = cache.get(tenant.as_str())?;
        (at.elapsed() < LIMITS_CACHE).then(|| limits.unwrap_or(DEFAULT_LIMITS))
    }

    /// Decodes the tenant's limits item as read (none: the defaults) and keeps it.
    fn remember(&self, tenant: &TenantId, item: Option<Item>) -> AppResult<TenantLimits> {
        let limits: Option<TenantLimits> = item.map(decode).transpose()?;
        self.cache.lock().expect("lock").insert(tenant.to_string(), (Instant::now(), limits));
        Ok(limits.unwrap_or(DEFAULT_LIMITS))
    }

    async fn known(&self, tenant: &TenantId) -> AppResult<()> {
        match self.store.get(&keys::tenant_pk(tenant), keys::TENANT_PROFILE_SK).await? {
            Some(_) => Ok(()),
            None => Err(super::error::AppError::NotFound(format!("tenant '{tenant}' does not exist"))),
        }
    }

    /// The tenant's limits and whether the operator set them (404 for an unknown tenant).
    pub async fn view(&self, tenant: &TenantId) -> AppResult<LimitsView> {
        self.known(tenant).await?;
        Ok(match self.stored(tenant).await? {
            Some(limits) => LimitsView { limits, source: "tenant" },
            None => LimitsView { limits: DEFAULT_LIMITS, source: "default" },
        })
    }

    /// Sets the tenant's limits (`None`: back to the defaults).
    pub async fn set(&self, actor: &Actor, tenant: &TenantId, limits: Option<TenantLimits>) -> AppResult<LimitsView> {
        if let Some(limits) = &limits {
            limits.events.check("events")?;
            limits.actions.check("actions")?;
        }
        self.known(tenant).await?;
        let before = self.stored(tenant).await?;
        let pk = keys::tenant_pk(tenant);
        let write = match &limits {
            Some(limits) => Write::Put {
                item: Item::new(&pk, keys::LIMITS_SK, 1, serde_json::to_value(limits).expect("serializes")),
                condition: Condition::None,
            },
            None => Write::Delete { pk: pk.clone(), sk: keys::LIMITS_SK.to_string(), condition: Condition::None },
        };
        let change = Change::new("operations.tenant_limits.set", format!("tenant:{tenant}"))
            .before(json!(before))
            .after(json!(limits));
        self.store.transact(vec![write, audit::record(actor, Some(tenant), change)]).await?;
        self.cache.lock().expect("lock").remove(tenant.as_str());
        self.view(tenant).await
    }

    /// Takes one token of the tenant's `flow`: `None` to go on now, or how long to wait.
    pub async fn take(&self, tenant: &TenantId, flow: Flow) -> AppResult<Option<Duration>> {
        self.draw(tenant, flow).await.take().await
    }

    /// Reads what taking a token of the tenant's `flow` needs, the limits and the bucket at
    /// once, without taking it: the caller decides with its own reads (made alongside)
    /// whether there is work to spend a token on.
    pub async fn draw(&self, tenant: &TenantId, flow: Flow) -> Draw<'_> {
        self.draw_with(tenant, flow, &[]).await.0
    }

    /// [`RateLimiter::draw`], reading the caller's items `also` in the same store round
    /// trip (one batch read of the bucket, the limits when not cached, and those). The
    /// items come back in the order of `also`.
    pub async fn draw_with(
        &self,
        tenant: &TenantId,
        flow: Flow,
        also: &[(&str, &str)],
    ) -> (Draw<'_>, Result<Vec<Option<Item>>, StoreError>) {
        let pk = keys::tenant_pk(tenant);
        let sk = keys::bucket_sk(flow.name());
        let cached = self.cached(tenant);
        let mut asked = vec![(pk.as_str(), sk.as_str())];
        if cached.is_none() {
            asked.push((pk.as_str(), keys::LIMITS_SK));
        }
        asked.extend_from_slice(also);
        let (first, limits, rest) = match self.store.get_many(&asked).await {
            Ok(mut found) => {
                let rest = found.split_off(asked.len() - also.len());
                let limits = match cached {
                    Some(limits) => Ok(limits),
                    None => self.remember(tenant, found.pop().flatten()),
                };
                (Ok(found.pop().flatten()), limits, Ok(rest))
            }
            Err(e) => (Err(e.clone()), Err(e.clone().into()), Err(e)),
        };
        let rate = limits.map(|l| match flow {
            Flow::Events => l.events,
            Flow::Actions => l.actions,
        });
        (Draw { store: self.store.as_ref(), pk, sk, rate, first }, rest)
    }
}

/// A token about to be taken: the limits and the bucket as [`RateLimiter::draw`] read them.
pub struct Draw<'a> {
    store: &'a dyn Store,
    pk: String,
    sk: String,
    rate: AppResult<Rate>,
    first: Result<Option<Item>, crate::ports::store::StoreError>,
}

impl Draw<'_> {
    /// Takes the token: `None` to go on now, or how long to wait. The bucket is written back
    /// with a conditional put (one write unit, where a transaction of one would cost two);
    /// a lost race reads it again.
    pub async fn take(self) -> AppResult<Option<Duration>> {
        let Draw { store, pk, sk, rate, first } = self;
        let rate = rate?;
        let first = FirstRead::new(Some(first));
        optimistic("the rate limiter is busy", || async {
            let now = now_ms();
            let found = first.or_read(|| store.get(&pk, &sk)).await?;
            let (bucket, condition, version) = match found {
                Some(item) => {
                    let version = item.version;
                    (decode_at::<Bucket>(&item.pk, &item.sk, item.data)?, Condition::Version(version), version)
                }
                None => (Bucket::full(rate, now), Condition::Absent, 0),
            };
            match bucket.take(rate, now) {
                Err(wait) => Ok(Step::Done(Some(wait))),
                Ok(after) => {
                    let item = Item::new(&pk, &sk, version + 1, serde_json::to_value(after).expect("serializes"))
                        // An idle bucket is full again: let it go.
                        .expiring(crate::domain::time::unix_now() + 24 * 3600);
                    committed(store.put(item, condition).await).map(|s| s.map(|()| None))
                }
            }
        })
        .await
    }
}
