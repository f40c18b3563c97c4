//! Use cases, written against the ports. The HTTP layer calls these; nothing here knows HTTP.

pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod automation;
pub mod catalog;
pub mod configs;
pub mod credentials;
pub mod dead_letters;
pub mod engine;
pub mod error;
pub mod event_sources;
pub mod exports;
pub mod flags;
pub mod installs;
pub mod keys;
pub mod offboarding;
pub mod page;
pub mod principal;
pub mod rate_limits;
pub mod records;
pub mod recovery;
pub mod roles;
pub mod runs;
pub mod seed;
pub mod sessions;
pub mod settings;
pub mod signing_keys;
pub mod stored;
pub mod teams;
pub mod tenants;
pub mod throttle;
pub mod tools;
pub mod users;

use std::sync::Arc;

use crate::ports::mail::Mailer;
use crate::ports::queue::{ActionQueue, EventBus};
use crate::ports::store::Store;

/// The secrets that establish identity. Never logged.
#[derive(Clone)]
pub struct Secrets {
    /// Bearer token of the platform administrator (catalog and tenant onboarding).
    pub platform_admin_token: Option<String>,
    /// Key that signs access tokens (HS256); `None` in functions that take no user tokens.
    pub jwt_secret: Option<String>,
    /// Default key that signs webhook bodies (HMAC-SHA256), unless a rule sets its own.
    pub webhook_secret: Option<String>,
    /// Where webhooks may go (an operator setting that travels with the secrets).
    pub webhook_policy: crate::domain::webhook::WebhookPolicy,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets { <redacted> }")
    }
}

/// Everything a request handler needs, cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub authn: principal::Authenticator,
    pub catalog: catalog::CatalogService,
    pub installs: installs::InstallService,
    pub configs: configs::ConfigService,
    pub settings: settings::SettingsService,
    pub flags: flags::FlagService,
    pub tools: tools::ToolService,
    pub tenants: tenants::TenantService,
    pub sessions: sessions::SessionService,
    pub recovery: recovery::RecoveryService,
    pub users: users::UserService,
    pub roles: roles::RoleService,
    pub teams: teams::TeamService,
    pub api_keys: api_keys::ApiKeyService,
    pub signing_keys: signing_keys::SigningKeyService,
    pub audit: audit::AuditService,
    pub records: records::RecordService,
    pub automation: automation::AutomationService,
    pub engine: Engine,
    pub runs: runs::Runs,
    pub dead_letters: dead_letters::DeadLetterService,
    pub event_sources: event_sources::EventSourceService,
    /// Attachments and export archives; `None` where no file storage is configured.
    pub blobs: Option<Arc<dyn crate::ports::blobs::Blobs>>,
}

/// The automation stages, with the queue between them and the tenants' rate limits.
#[derive(Clone)]
pub struct Engine {
    pub publisher: engine::Publisher,
    pub evaluator: engine::Evaluator,
    pub executor: engine::Executor,
    pub queue: Arc<dyn ActionQueue>,
    pub timers: Arc<dyn crate::ports::timers::Timers>,
    pub limiter: rate_limits::RateLimiter,
}

impl Services {
    /// `bus` builds the event bus; the local one hands events to the evaluator it is given.
    pub fn new(
        store: Arc<dyn Store>,
        mailer: Arc<dyn Mailer>,
        secrets: Secrets,
        queue: Arc<dyn ActionQueue>,
        timers: Arc<dyn crate::ports::timers::Timers>,
        blobs: Option<Arc<dyn crate::ports::blobs::Blobs>>,
        bus: impl FnOnce(&engine::Evaluator) -> Arc<dyn EventBus>,
    ) -> Self {
        let signer = secrets.jwt_secret.as_deref().map(credentials::TokenSigner::new);
        let authn = principal::Authenticator::new(store.clone(), signer, secrets.platform_admin_token);
        let catalog = catalog::CatalogService::new(store.clone());
        let configs = configs::ConfigService::new(store.clone(), catalog.clone());
        let settings = settings::SettingsService::new(configs.clone());
        let flags = flags::FlagService::new(store.clone(), configs.clone());
        let tools = tools::ToolService::new(store.clone());
        let installs = installs::InstallService::new(store.clone(), catalog.clone(), configs.clone());
        let tenants = tenants::TenantService::new(store.clone());
        let sessions = sessions::SessionService::new(store.clone(), authn.clone());
        let recovery = recovery::RecoveryService::new(store.clone(), authn.clone(), mailer);
        let users = users::UserService::new(store.clone(), authn.clone(), recovery.clone());
        let roles = roles::RoleService::new(store.clone());
        let teams = teams::TeamService::new(store.clone());
        let api_keys = api_keys::ApiKeyService::new(store.clone(), authn.clone());
        let signing_keys = signing_keys::SigningKeyService::new(store.clone());
        let audit = audit::AuditService::new(store.clone());
        let records = records::RecordService::new(store.clone(), catalog.clone());
        let manifests = engine::Manifests::new(store.clone(), catalog.clone());
        let limiter = rate_limits::RateLimiter::new(store.clone());
        let evaluator = engine::Evaluator::new(
            store.clone(),
            manifests.clone(),
            queue.clone(),
            timers.clone(),
            limiter.clone(),
            flags.clone(),
            blobs.clone(),
        );
        let bus = bus(&evaluator);
        let publisher = engine::Publisher::new(store.clone(), manifests.clone(), bus.clone());
        let executor = engine::Executor::new(
            store.clone(),
            records.clone(),
            secrets.webhook_secret.clone(),
            secrets.webhook_policy.clone(),
            timers.clone(),
        );
        let runs = runs::Runs::new(store.clone());
        let dead_letters = dead_letters::DeadLetterService::new(
            store.clone(),
            queue.clone(),
            bus.clone(),
            publisher.clone(),
            runs.clone(),
        );
        let event_sources = event_sources::EventSourceService::new(store.clone());
        let automation = automation::AutomationService::new(
            store.clone(),
            catalog.clone(),
            manifests,
            automation::Outlets { queue: queue.clone(), bus, timers: timers.clone() },
            event_sources.clone(),
            secrets.webhook_policy,
        );
        let engine = Engine { publisher, evaluator, executor, queue, timers, limiter };
        Self {
            store,
            authn,
            catalog,
            installs,
            configs,
            settings,
            flags,
            tools,
            tenants,
            sessions,
            recovery,
            users,
            roles,
            teams,
            api_keys,
            signing_keys,
            audit,
            records,
            automation,
            engine,
            runs,
            dead_letters,
            event_sources,
            blobs,
        }
    }
}
