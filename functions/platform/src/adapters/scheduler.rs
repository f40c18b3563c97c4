//! Timers as EventBridge Scheduler one-time schedules (`at(...)`, UTC) in the platform's
//! schedule group. Each puts the fired timer on the platform bus (`platform.timers`,
//! `Timer Fired`), through a role that may do only that, and deletes itself after firing.

use async_trait::async_trait;
use aws_sdk_scheduler::error::SdkError;
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, EventBridgeParameters, FlexibleTimeWindow, FlexibleTimeWindowMode, Target,
};

use crate::domain::timing::rfc3339_of;
use crate::ports::queue::DeliveryError;
use crate::ports::timers::{Timer, Timers, TIMER_DETAIL_TYPE, TIMER_SOURCE};

fn failure(e: impl std::error::Error) -> DeliveryError {
    DeliveryError(format!("{}", aws_sdk_scheduler::error::DisplayErrorContext(e)))
}

/// Where schedules go and what they may do.
#[derive(Debug, Clone)]
pub struct SchedulerTarget {
    /// The schedule group (`SCHEDULE_GROUP`).
    pub group: String,
    /// The platform bus's ARN (`EVENT_BUS_ARN`).
    pub bus_arn: String,
    /// The role Scheduler assumes to put the event (`SCHEDULER_ROLE_ARN`).
    pub role_arn: String,
}

#[derive(Clone)]
pub struct SchedulerTimers {
    client: super::lazily::Lazily<aws_sdk_scheduler::Client>,
    target: SchedulerTarget,
}

impl SchedulerTimers {
    pub fn new(client: impl Into<super::lazily::Lazily<aws_sdk_scheduler::Client>>, target: SchedulerTarget) -> Self {
        Self { client: client.into(), target }
    }

    /// `at(yyyy-mm-ddThh:mm:ss)` of epoch seconds; a past time becomes a few seconds from
    /// now (Scheduler refuses schedules in the past).
    pub fn expression(at: i64) -> String {
        let at = at.max(crate::domain::time::unix_now() as i64 + 5);
        let text = rfc3339_of(at);
        format!("at({})", text.trim_end_matches('Z'))
    }

    fn parts(&self, timer: &Timer) -> Result<(Target, FlexibleTimeWindow), DeliveryError> {
        let parameters = EventBridgeParameters::builder()
            .source(TIMER_SOURCE)
            .detail_type(TIMER_DETAIL_TYPE)
            .build()
            .map_err(failure)?;
        let target = Target::builder()
            .arn(&self.target.bus_arn)
            .role_arn(&self.target.role_arn)
            .input(serde_json::to_string(timer).expect("serializes"))
            .event_bridge_parameters(parameters)
            .build()
            .map_err(failure)?;
        let window = FlexibleTimeWindow::builder().mode(FlexibleTimeWindowMode::Off).build().map_err(failure)?;
        Ok((target, window))
    }
}

#[async_trait]
impl Timers for SchedulerTimers {
    async fn set(&self, at: i64, timer: &Timer) -> Result<(), DeliveryError> {
        let name = timer.name();
        let expression = Self::expression(at);
        let (target, window) = self.parts(timer)?;
        let created = self
            .client
            .get()
            .create_schedule()
            .name(&name)
            .group_name(&self.target.group)
            .schedule_expression(&expression)
            .schedule_expression_timezone("UTC")
            .target(target.clone())
            .flexible_time_window(window.clone())
            .action_after_completion(ActionAfterCompletion::Delete)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conflict_exception() => self
                .client
                .get()
                .update_schedule()
                .name(&name)
                .group_name(&self.target.group)
                .schedule_expression(&expression)
                .schedule_expression_timezone("UTC")
                .target(target)
                .flexible_time_window(window)
                .action_after_completion(ActionAfterCompletion::Delete)
                .send()
                .await
                .map(|_| ())
                .map_err(failure),
            Err(e) => Err(failure(e)),
        }
    }

    async fn cancel(&self, name: &str) -> Result<(), DeliveryError> {
        match self.client.get().delete_schedule().name(name).group_name(&self.target.group).send().await {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_resource_not_found_exception() => Ok(()),
            Err(e) => Err(failure(e)),
        }
    }
}
