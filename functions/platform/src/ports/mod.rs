//! The traits the application needs from the outside world.

pub mod blobs;
pub mod feed;
pub mod mail;
pub mod queue;
pub mod store;
pub mod timers;

use std::sync::Arc;

/// Builds the ports beyond the store, each when first needed (the services keep what it
/// returns): a Lambda function builds, and links, only the clients its requests reach.
pub trait Outside: Send + Sync + 'static {
    fn mailer(&self) -> Arc<dyn mail::Mailer>;
    fn queue(&self) -> Arc<dyn queue::ActionQueue>;
    fn bus(&self) -> Arc<dyn queue::EventBus>;
    fn timers(&self) -> Arc<dyn timers::Timers>;
    /// `None` where no file storage is configured.
    fn blobs(&self) -> Option<Arc<dyn blobs::Blobs>>;
}
