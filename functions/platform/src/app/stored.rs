//! The two shapes every use case repeats over the store, written once: decoding a stored
//! item into its type, and the optimistic read-modify-write loop.

use std::future::Future;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{AppError, AppResult};
use crate::ports::store::{Item, StoreError};

/// The body of the item at (`pk`, `sk`) as `T`. Data that does not decode is a defect, not a
/// passing outage: it is logged with its key and cause and answered as a 500 (never a 503
/// that would invite retries).
pub fn decode_at<T: DeserializeOwned>(pk: &str, sk: &str, data: Value) -> AppResult<T> {
    serde_json::from_value(data).map_err(|cause| {
        tracing::error!(pk, sk, %cause, "a stored item does not decode");
        AppError::Internal(format!("a stored item ({sk}) could not be read; the cause is logged"))
    })
}

/// [`decode_at`] for a whole item.
pub fn decode<T: DeserializeOwned>(item: Item) -> AppResult<T> {
    decode_at(&item.pk, &item.sk, item.data)
}

/// What one try of an optimistic change ended with.
pub enum Step<T> {
    Done(T),
    /// Someone else changed what this try read: read again and retry.
    Retry,
}

impl<T> Step<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Step<U> {
        match self {
            Step::Done(value) => Step::Done(f(value)),
            Step::Retry => Step::Retry,
        }
    }
}

/// A read made before an [`optimistic`] loop (beside other work, to save a round trip):
/// the loop's first attempt takes it, a retry after a lost race reads again.
pub struct FirstRead<T>(std::sync::Mutex<Option<T>>);

impl<T> FirstRead<T> {
    pub fn new(read: Option<T>) -> Self {
        Self(std::sync::Mutex::new(read))
    }

    /// The read made before, the first time; `again` after that.
    pub async fn or_read<F: Future<Output = T>>(&self, again: impl FnOnce() -> F) -> T {
        let first = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        match first {
            Some(read) => read,
            None => again().await,
        }
    }
}

/// The outcome of a conditional write: lost races ask for a retry, other errors stop.
pub fn committed(result: Result<(), StoreError>) -> AppResult<Step<()>> {
    match result {
        Ok(()) => Ok(Step::Done(())),
        Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => Ok(Step::Retry),
        Err(e) => Err(e.into()),
    }
}

/// How many times [`optimistic`] tries before answering 409.
pub const MAX_TRIES: u32 = 12;

/// Runs `attempt` (read, compute, conditional write) until it is done, backing off a
/// little more after each lost race; after [`MAX_TRIES`] lost races it answers 409 with
/// `busy` as the detail.
pub async fn optimistic<T, F, Fut>(busy: &str, attempt: F) -> AppResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = AppResult<Step<T>>>,
{
    optimistic_or(|| AppError::conflict(busy.to_string()), attempt).await
}

/// [`optimistic`] for any error type: `busy` makes the error after [`MAX_TRIES`] lost races.
pub async fn optimistic_or<T, E, F, Fut>(busy: impl FnOnce() -> E, mut attempt: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Step<T>, E>>,
{
    for tries in 0..MAX_TRIES {
        match attempt().await? {
            Step::Done(value) => return Ok(value),
            Step::Retry => {
                let jitter = u64::from(rand::random::<u8>() % 8);
                tokio::time::sleep(Duration::from_millis((1u64 << tries.min(6)) + jitter)).await;
            }
        }
    }
    Err(busy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undecodable_data_is_an_internal_error() {
        let item = Item::new("TENANT#a", "USER#1", 1, serde_json::json!({"unexpected": true}));
        let result: AppResult<crate::domain::identity::User> = decode(item);
        assert!(matches!(result, Err(AppError::Internal(_))), "{result:?}");
    }

    #[tokio::test]
    async fn optimistic_retries_lost_races_and_then_gives_up() {
        let mut tries = 0;
        let done = optimistic("busy", || {
            tries += 1;
            let step = if tries < 3 { Step::Retry } else { Step::Done(tries) };
            async move { Ok(step) }
        })
        .await;
        assert_eq!(done.unwrap(), 3);
        let never: AppResult<()> = optimistic("busy", || async { Ok(Step::Retry) }).await;
        assert!(matches!(never, Err(AppError::Conflict { .. })));
    }
}
