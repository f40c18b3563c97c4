//! An AWS SDK client made on its first call. Making one parses the service's partition
//! table and compiles its region patterns; a function that holds an adapter but, for the
//! event at hand, never calls its service (the evaluator's queue and timers when no rule
//! matches) does not pay for it in its cold start.

use std::sync::{Arc, OnceLock};

type Make<C> = Arc<dyn Fn() -> C + Send + Sync>;

#[derive(Clone)]
pub struct Lazily<C> {
    made: Arc<OnceLock<C>>,
    make: Make<C>,
}

impl<C> Lazily<C> {
    pub fn new(make: impl Fn() -> C + Send + Sync + 'static) -> Self {
        Self { made: Arc::default(), make: Arc::new(make) }
    }

    /// The client, made now if this is its first use.
    pub fn get(&self) -> &C {
        self.made.get_or_init(|| (self.make)())
    }
}

/// A client made already (tests that point an adapter at their own).
impl<C: Clone + Send + Sync + 'static> From<C> for Lazily<C> {
    fn from(client: C) -> Self {
        Self::new(move || client.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn the_client_is_made_on_first_use_and_only_once() {
        let made = Arc::new(AtomicUsize::new(0));
        let counter = made.clone();
        let lazily = Lazily::new(move || counter.fetch_add(1, Ordering::SeqCst) + 41);
        let copy = lazily.clone();
        assert_eq!(made.load(Ordering::SeqCst), 0, "nothing made before a call");
        assert_eq!(*lazily.get(), 41);
        assert_eq!(*copy.get(), 41, "clones share the client");
        assert_eq!(made.load(Ordering::SeqCst), 1, "made once");
    }
}
