//! The automation stages running in-process for the local server: the embedded store's
//! change feed -> publisher -> (in-process bus) evaluator -> durable queue -> executor.
//! Each step is at-least-once and every effect is idempotent, so a crash anywhere loses
//! nothing and repeats nothing.

use std::sync::Arc;
use std::time::Duration;

use crate::adapters::local_queue::StoreQueue;
use crate::app::dead_letters::{DeadLetter, Parked};
use crate::app::engine::{Executor, Publisher};
use crate::app::runs::Runs;
use crate::ports::feed::ChangeFeed;
use crate::ports::store::Store;

/// Tries a change gets before it is set aside as a dead letter.
pub const MAX_PUBLISH_TRIES: u32 = 5;

#[derive(Clone)]
pub struct LocalPipeline {
    pub store: Arc<dyn Store>,
    pub feed: Arc<dyn ChangeFeed>,
    pub publisher: Publisher,
    pub queue: StoreQueue,
    pub executor: Executor,
    /// Durable timers (delayed actions, schedules), fired through `evaluator` every [`TIMER_TICK`].
    pub timers: crate::adapters::local_timers::StoreTimers,
    pub evaluator: crate::app::engine::Evaluator,
    /// Where export jobs (fired as timers) write their archives.
    pub blobs: Option<Arc<dyn crate::ports::blobs::Blobs>>,
    /// Run deadlines, swept every [`SWEEP_EVERY`].
    pub runs: Runs,
    /// The tenants' action rates: an action over its tenant's rate goes back to the queue.
    pub limiter: crate::app::rate_limits::RateLimiter,
    /// Changes on every commit of the store (`EmbeddedStore::commits`): each stage wakes
    /// on it rather than polling, and still looks every [`IDLE_CHECK`] for retries that
    /// come due.
    pub commits: tokio::sync::watch::Receiver<u64>,
    /// Failed tries per change (by feed sequence), until it is published or set aside.
    pub failures: Arc<std::sync::Mutex<std::collections::HashMap<u64, u32>>>,
}

/// How often the local server looks for runs past their deadline.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// How often due timers are looked for (timers fire within this of their time).
pub const TIMER_TICK: Duration = Duration::from_millis(500);

/// How often an idle stage looks again without being woken (retries coming due).
pub const IDLE_CHECK: Duration = Duration::from_millis(50);

/// Waits for the next commit, or [`IDLE_CHECK`].
async fn next_commit(commits: &mut tokio::sync::watch::Receiver<u64>) {
    tokio::select! {
        _ = commits.changed() => {}
        _ = tokio::time::sleep(IDLE_CHECK) => {}
    }
}

impl LocalPipeline {
    /// Publishes the events of the next changes; returns how many changes it consumed.
    /// When a batch fails, its changes are published one by one: a change that keeps
    /// failing is set aside after [`MAX_PUBLISH_TRIES`] (a dead letter with the reason,
    /// which the operator can replay) so that it cannot stall the feed.
    pub async fn publish_once(&self) -> anyhow::Result<usize> {
        let after = self.feed.checkpoint().await?;
        let changes = self.feed.read(after, 100).await?;
        let Some(last) = changes.last().map(|c| c.seq) else { return Ok(0) };
        // Evaluation queues the actions durably before the checkpoint moves past their change.
        if self.publisher.publish(&changes).await.is_ok() {
            self.feed.commit(last).await?;
            return Ok(changes.len());
        }
        for change in &changes {
            if let Err(e) = self.publisher.publish(std::slice::from_ref(change)).await {
                let tries = {
                    let mut failures = self.failures.lock().expect("lock");
                    let tries = failures.entry(change.seq).or_insert(0);
                    *tries += 1;
                    *tries
                };
                if tries < MAX_PUBLISH_TRIES {
                    return Err(anyhow::anyhow!("publishing change {} failed (try {tries}): {e}", change.seq));
                }
                self.set_aside(change, &e.to_string()).await?;
            }
            self.failures.lock().expect("lock").remove(&change.seq);
            self.feed.commit(change.seq).await?;
        }
        Ok(changes.len())
    }

    /// Keeps a change that cannot be published, and why, out of the feed's way.
    async fn set_aside(&self, change: &crate::ports::feed::StoreChange, reason: &str) -> anyhow::Result<()> {
        tracing::error!(seq = change.seq, reason, "a change could not be published; it is set aside");
        let letter = DeadLetter::new("change_feed", reason, Parked::change(change));
        self.store.transact(vec![letter.write()]).await?;
        Ok(())
    }

    /// Executes the visible queued actions; returns how many it handled.
    pub async fn work_once(&self) -> anyhow::Result<usize> {
        let leased = self.queue.receive(10).await?;
        for message in &leased {
            match self.executor.execute_metered(&self.limiter, &message.message).await {
                Ok(Some(wait)) => self.queue.defer(message, wait).await?,
                Ok(None) => self.queue.ack(message).await?,
                Err(e) => {
                    tracing::warn!(action_id = %message.message.action_id, error = %e, "action failed; it will be retried");
                    if self.queue.nack(message, &e.0).await? {
                        self.runs.give_up(&message.message, &format!("the queue gave up on it: {e}")).await?;
                    }
                }
            }
        }
        Ok(leased.len())
    }

    /// Fires the due timers; a timer whose firing fails stays, to fire again next tick.
    pub async fn fire_due_timers(&self) -> anyhow::Result<usize> {
        let due = self.timers.due(crate::domain::time::unix_now() as i64, 100).await?;
        for (sk, timer) in &due {
            match self.evaluator.fire(timer, self.blobs.as_ref()).await {
                Ok(()) => self.timers.done(sk, timer).await?,
                Err(e) => tracing::warn!(timer = %timer.name(), error = %e, "a timer failed to fire; it fires again"),
            }
        }
        Ok(due.len())
    }

    /// Runs both stages, the timers, and the sweeper of run deadlines, until the process ends.
    pub fn spawn(self) {
        let ticker = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(TIMER_TICK).await;
                if let Err(e) = ticker.fire_due_timers().await {
                    tracing::warn!(error = %e, "firing timers failed");
                }
                match ticker.queue.backlog().await {
                    Ok((depth, age)) => crate::telemetry::queue(depth, age),
                    Err(e) => tracing::warn!(error = %e, "reading the queue's backlog failed"),
                }
            }
        });
        let runs = self.runs.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(SWEEP_EVERY).await;
                match runs.sweep(crate::domain::time::unix_now()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(runs = n, "runs past their deadline: their unfinished actions are dead"),
                    Err(e) => tracing::warn!(error = %e, "sweeping run deadlines failed"),
                }
            }
        });
        let publisher = self.clone();
        tokio::spawn(async move {
            let mut commits = publisher.commits.clone();
            loop {
                // Marked seen before looking, so a commit made meanwhile wakes the next wait.
                commits.borrow_and_update();
                match publisher.publish_once().await {
                    Ok(0) => next_commit(&mut commits).await,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "publishing business events failed; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
        tokio::spawn(async move {
            let mut commits = self.commits.clone();
            loop {
                commits.borrow_and_update();
                match self.work_once().await {
                    Ok(0) => next_commit(&mut commits).await,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "executing actions failed; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
    }
}
