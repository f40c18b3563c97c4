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
pub mod hs256;
pub mod installs;
pub mod keys;
pub mod manifests;
pub mod offboarding;
pub mod page;
pub mod principal;
pub mod rate_limits;
pub mod records;
pub mod recovery;
pub mod roles;
pub mod rules_generation;
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

use std::sync::{Arc, OnceLock};

use crate::ports::blobs::Blobs;
use crate::ports::mail::Mailer;
use crate::ports::queue::{ActionQueue, EventBus};
use crate::ports::store::Store;
use crate::ports::timers::Timers;
use crate::ports::Outside;

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

/// Everything a request handler needs. Each service is built on its first use, from the
/// ports `O` builds on theirs: a Lambda function builds (and, since nothing else names
/// them, links) only the services and AWS clients its requests reach.
pub struct Services<O: Outside> {
    pub store: Arc<dyn Store>,
    secrets: Secrets,
    outside: O,
    mailer: OnceLock<Arc<dyn Mailer>>,
    queue: OnceLock<Arc<dyn ActionQueue>>,
    bus: OnceLock<Arc<dyn EventBus>>,
    timers: OnceLock<Arc<dyn Timers>>,
    blobs: OnceLock<Option<Arc<dyn Blobs>>>,
    authn: OnceLock<principal::Authenticator>,
    catalog: OnceLock<catalog::CatalogService>,
    installs: OnceLock<installs::InstallService>,
    configs: OnceLock<configs::ConfigService>,
    settings: OnceLock<settings::SettingsService>,
    flags: OnceLock<flags::FlagService>,
    tools: OnceLock<tools::ToolService>,
    tenants: OnceLock<tenants::TenantService>,
    sessions: OnceLock<sessions::SessionService>,
    recovery: OnceLock<recovery::RecoveryService>,
    users: OnceLock<users::UserService>,
    roles: OnceLock<roles::RoleService>,
    teams: OnceLock<teams::TeamService>,
    api_keys: OnceLock<api_keys::ApiKeyService>,
    signing_keys: OnceLock<signing_keys::SigningKeyService>,
    audit: OnceLock<audit::AuditService>,
    records: OnceLock<records::RecordService>,
    manifests: OnceLock<manifests::Manifests>,
    limiter: OnceLock<rate_limits::RateLimiter>,
    evaluator: OnceLock<engine::Evaluator>,
    publisher: OnceLock<engine::Publisher>,
    executor: OnceLock<engine::Executor>,
    runs: OnceLock<runs::Runs>,
    dead_letters: OnceLock<dead_letters::DeadLetterService>,
    event_sources: OnceLock<event_sources::EventSourceService>,
    automation: OnceLock<automation::AutomationService>,
}

impl<O: Outside> Services<O> {
    /// Nothing is built here: every service and port on its first use.
    pub fn new(store: Arc<dyn Store>, secrets: Secrets, outside: O) -> Self {
        Self {
            store,
            secrets,
            outside,
            mailer: OnceLock::new(),
            queue: OnceLock::new(),
            bus: OnceLock::new(),
            timers: OnceLock::new(),
            blobs: OnceLock::new(),
            authn: OnceLock::new(),
            catalog: OnceLock::new(),
            installs: OnceLock::new(),
            configs: OnceLock::new(),
            settings: OnceLock::new(),
            flags: OnceLock::new(),
            tools: OnceLock::new(),
            tenants: OnceLock::new(),
            sessions: OnceLock::new(),
            recovery: OnceLock::new(),
            users: OnceLock::new(),
            roles: OnceLock::new(),
            teams: OnceLock::new(),
            api_keys: OnceLock::new(),
            signing_keys: OnceLock::new(),
            audit: OnceLock::new(),
            records: OnceLock::new(),
            manifests: OnceLock::new(),
            limiter: OnceLock::new(),
            evaluator: OnceLock::new(),
            publisher: OnceLock::new(),
            executor: OnceLock::new(),
            runs: OnceLock::new(),
            dead_letters: OnceLock::new(),
            event_sources: OnceLock::new(),
            automation: OnceLock::new(),
        }
    }

    fn mailer(&self) -> &Arc<dyn Mailer> {
        self.mailer.get_or_init(|| self.outside.mailer())
    }

    /// The action queue between the evaluator and the executor.
    pub fn queue(&self) -> &Arc<dyn ActionQueue> {
        self.queue.get_or_init(|| self.outside.queue())
    }

    fn bus(&self) -> &Arc<dyn EventBus> {
        self.bus.get_or_init(|| self.outside.bus())
    }

    pub fn timers(&self) -> &Arc<dyn Timers> {
        self.timers.get_or_init(|| self.outside.timers())
    }

    /// Attachments and export archives; `None` where no file storage is configured.
    pub fn blobs(&self) -> Option<&Arc<dyn Blobs>> {
        self.blobs.get_or_init(|| self.outside.blobs()).as_ref()
    }

    pub fn authn(&self) -> &principal::Authenticator {
        self.authn.get_or_init(|| {
            let signer = self.secrets.jwt_secret.as_deref().map(credentials::TokenSigner::new);
            principal::Authenticator::new(self.store.clone(), signer, self.secrets.platform_admin_token.clone())
        })
    }

    pub fn catalog(&self) -> &catalog::CatalogService {
        self.catalog.get_or_init(|| catalog::CatalogService::new(self.store.clone()))
    }

    pub fn configs(&self) -> &configs::ConfigService {
        self.configs.get_or_init(|| configs::ConfigService::new(self.store.clone(), self.manifests().clone()))
    }

    pub fn settings(&self) -> &settings::SettingsService {
        self.settings.get_or_init(|| settings::SettingsService::new(self.configs().clone()))
    }

    pub fn flags(&self) -> &flags::FlagService {
        self.flags.get_or_init(|| flags::FlagService::new(self.store.clone(), self.configs().clone()))
    }

    pub fn tools(&self) -> &tools::ToolService {
        self.tools.get_or_init(|| tools::ToolService::new(self.store.clone()))
    }

    pub fn installs(&self) -> &installs::InstallService {
        self.installs.get_or_init(|| {
            installs::InstallService::new(
                self.store.clone(),
                self.catalog().clone(),
                self.configs().clone(),
                self.records().clone(),
            )
        })
    }

    pub fn tenants(&self) -> &tenants::TenantService {
        self.tenants.get_or_init(|| tenants::TenantService::new(self.store.clone()))
    }

    pub fn sessions(&self) -> &sessions::SessionService {
        self.sessions.get_or_init(|| sessions::SessionService::new(self.store.clone(), self.authn().clone()))
    }

    pub fn recovery(&self) -> &recovery::RecoveryService {
        self.recovery.get_or_init(|| {
            recovery::RecoveryService::new(self.store.clone(), self.authn().clone(), self.mailer().clone())
        })
    }

    pub fn users(&self) -> &users::UserService {
        self.users
            .get_or_init(|| users::UserService::new(self.store.clone(), self.authn().clone(), self.recovery().clone()))
    }

    pub fn roles(&self) -> &roles::RoleService {
        self.roles.get_or_init(|| roles::RoleService::new(self.store.clone()))
    }

    pub fn teams(&self) -> &teams::TeamService {
        self.teams.get_or_init(|| teams::TeamService::new(self.store.clone()))
    }

    pub fn api_keys(&self) -> &api_keys::ApiKeyService {
        self.api_keys.get_or_init(|| api_keys::ApiKeyService::new(self.store.clone(), self.authn().clone()))
    }

    pub fn signing_keys(&self) -> &signing_keys::SigningKeyService {
        self.signing_keys.get_or_init(|| signing_keys::SigningKeyService::new(self.store.clone()))
    }

    pub fn audit(&self) -> &audit::AuditService {
        self.audit.get_or_init(|| audit::AuditService::new(self.store.clone()))
    }

    pub fn records(&self) -> &records::RecordService {
        self.records.get_or_init(|| records::RecordService::new(self.store.clone(), self.manifests().clone()))
    }

    pub fn manifests(&self) -> &manifests::Manifests {
        self.manifests.get_or_init(|| manifests::Manifests::new(self.store.clone(), self.catalog().clone()))
    }

    /// The tenants' automation rate limits.
    pub fn limiter(&self) -> &rate_limits::RateLimiter {
        self.limiter.get_or_init(|| rate_limits::RateLimiter::new(self.store.clone()))
    }

    pub fn evaluator(&self) -> &engine::Evaluator {
        self.evaluator.get_or_init(|| {
            engine::Evaluator::new(
                self.store.clone(),
                self.manifests().clone(),
                self.queue().clone(),
                self.timers().clone(),
                self.limiter().clone(),
                self.flags().clone(),
            )
        })
    }

    pub fn publisher(&self) -> &engine::Publisher {
        self.publisher
            .get_or_init(|| engine::Publisher::new(self.store.clone(), self.manifests().clone(), self.bus().clone()))
    }

    pub fn executor(&self) -> &engine::Executor {
        self.executor.get_or_init(|| {
            engine::Executor::new(
                self.store.clone(),
                self.records().clone(),
                self.secrets.webhook_secret.clone(),
                self.secrets.webhook_policy.clone(),
                self.timers().clone(),
            )
        })
    }

    pub fn runs(&self) -> &runs::Runs {
        self.runs.get_or_init(|| runs::Runs::new(self.store.clone()))
    }

    pub fn dead_letters(&self) -> &dead_letters::DeadLetterService {
        self.dead_letters.get_or_init(|| {
            dead_letters::DeadLetterService::new(
                self.store.clone(),
                self.queue().clone(),
                self.bus().clone(),
                self.publisher().clone(),
                self.runs().clone(),
            )
        })
    }

    pub fn event_sources(&self) -> &event_sources::EventSourceService {
        self.event_sources.get_or_init(|| event_sources::EventSourceService::new(self.store.clone()))
    }

    pub fn automation(&self) -> &automation::AutomationService {
        self.automation.get_or_init(|| {
            automation::AutomationService::new(
                self.store.clone(),
                self.catalog().clone(),
                self.manifests().clone(),
                automation::Outlets {
                    queue: self.queue().clone(),
                    bus: self.bus().clone(),
                    timers: self.timers().clone(),
                },
                self.event_sources().clone(),
                self.secrets.webhook_policy.clone(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::adapters::embedded::EmbeddedStore;

    /// Local ports that record which of them were built.
    struct Recorded {
        store: Arc<dyn Store>,
        dir: std::path::PathBuf,
        built: Mutex<Vec<&'static str>>,
    }

    impl Recorded {
        fn note(&self, port: &'static str) {
            self.built.lock().unwrap().push(port);
        }
    }

    impl Outside for Recorded {
        fn mailer(&self) -> Arc<dyn Mailer> {
            self.note("mailer");
            Arc::new(crate::adapters::mail_dir::DirectoryMailer::new(self.dir.join("mail")))
        }
        fn queue(&self) -> Arc<dyn ActionQueue> {
            self.note("queue");
            Arc::new(crate::adapters::local_queue::StoreQueue::new(self.store.clone(), engine::MAX_ATTEMPTS))
        }
        fn bus(&self) -> Arc<dyn EventBus> {
            self.note("bus");
            Arc::new(crate::adapters::local_bus::InProcessBus::unattached())
        }
        fn timers(&self) -> Arc<dyn Timers> {
            self.note("timers");
            Arc::new(crate::adapters::local_timers::StoreTimers::new(self.store.clone()))
        }
        fn blobs(&self) -> Option<Arc<dyn Blobs>> {
            self.note("blobs");
            None
        }
    }

    fn services(dir: &std::path::Path) -> Services<Recorded> {
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.join("platform.redb")).unwrap());
        let secrets = Secrets {
            platform_admin_token: None,
            jwt_secret: None,
            webhook_secret: None,
            webhook_policy: Default::default(),
        };
        let outside = Recorded { store: store.clone(), dir: dir.to_path_buf(), built: Mutex::new(Vec::new()) };
        Services::new(store, secrets, outside)
    }

    fn built(services: &Services<Recorded>) -> Vec<&'static str> {
        services.outside.built.lock().unwrap().clone()
    }

    #[test]
    fn services_build_no_port_until_a_use_case_needs_it() {
        let dir = tempfile::tempdir().unwrap();
        let services = services(dir.path());
        assert!(built(&services).is_empty(), "nothing at construction");
        services.authn();
        services.catalog();
        services.records();
        services.audit();
        assert!(built(&services).is_empty(), "store-only services build no port");
    }

    #[test]
    fn each_port_is_built_once_and_only_for_the_services_that_use_it() {
        let dir = tempfile::tempdir().unwrap();
        let services = services(dir.path());
        services.users();
        assert_eq!(built(&services), ["mailer"], "users send mail (invitations, resets)");
        services.publisher();
        assert_eq!(built(&services), ["mailer", "bus"]);
        services.evaluator();
        services.evaluator();
        assert_eq!(built(&services), ["mailer", "bus", "queue", "timers"], "each port once");
        services.blobs();
        services.blobs();
        assert_eq!(
            built(&services),
            ["mailer", "bus", "queue", "timers", "blobs"],
            "file storage when asked for, once"
        );
    }
}
