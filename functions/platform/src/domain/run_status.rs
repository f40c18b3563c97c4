//! Where a run and each of its actions stand. Serialized in snake_case, as the API shows them.

use serde::{Deserialize, Serialize};

/// One action of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    /// Queued, not yet performed.
    Pending,
    /// Waiting for its delay (`due_at`) before it is queued.
    Waiting,
    /// A delivery is calling its webhook (see `claimed_at`).
    Running,
    Succeeded,
    /// Failed; the queue delivers it again.
    Failed,
    /// Given up (attempts, deadline or an operator); replayable.
    Dead,
    /// Not performed: the chain of automations was too deep, or its conditions no longer held when its delay ended.
    Skipped,
    /// Not performed: its record was deleted while it waited.
    Cancelled,
}

impl ActionStatus {
    /// Still expects a delivery (a sweep past the run's deadline gives these up).
    pub fn unfinished(self) -> bool {
        matches!(self, Self::Pending | Self::Running | Self::Failed)
    }

    /// Will never change again on its own.
    pub fn settled(self) -> bool {
        matches!(self, Self::Succeeded | Self::Dead | Self::Skipped | Self::Cancelled)
    }

    /// A retry may run it again.
    pub fn retryable(self) -> bool {
        matches!(self, Self::Failed | Self::Dead)
    }
}

/// A whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Some action is still to be performed (or waits for its delay).
    Pending,
    /// Every action succeeded, or was skipped or cancelled as designed.
    Succeeded,
    /// Some action failed or is dead.
    Failed,
    /// Not run at all (see the run's `reason`).
    Stopped,
}

impl RunStatus {
    /// The run's status from its actions'.
    pub fn of(actions: impl IntoIterator<Item = ActionStatus>) -> Self {
        let statuses: Vec<ActionStatus> = actions.into_iter().collect();
        if statuses.iter().any(|s| matches!(s, ActionStatus::Failed | ActionStatus::Dead)) {
            Self::Failed
        } else if statuses.iter().all(|s| s.settled()) {
            Self::Succeeded
        } else {
            Self::Pending
        }
    }

    /// Parses a `?status=` filter.
    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(text.to_string())).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ActionStatus::*;

    #[test]
    fn a_run_is_failed_when_any_action_failed_and_done_when_all_settled() {
        assert_eq!(RunStatus::of([Succeeded, Failed]), RunStatus::Failed);
        assert_eq!(RunStatus::of([Succeeded, Cancelled, Skipped]), RunStatus::Succeeded);
        assert_eq!(RunStatus::of([Succeeded, Waiting]), RunStatus::Pending);
        assert_eq!(RunStatus::of([Dead, Waiting]), RunStatus::Failed);
    }

    #[test]
    fn statuses_read_and_write_in_snake_case() {
        assert_eq!(serde_json::to_value(Cancelled).unwrap(), "cancelled");
        assert_eq!(RunStatus::parse("stopped"), Some(RunStatus::Stopped));
        assert_eq!(RunStatus::parse("Stopped"), None);
    }
}
