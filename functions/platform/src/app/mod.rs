//! Use cases, written against the ports. The HTTP layer calls these; nothing here knows HTTP.

pub mod audit;
pub mod auth;
pub mod catalog;
pub mod configs;
pub mod credentials;
pub mod error;
pub mod installs;
pub mod keys;
pub mod page;
pub mod principal;
pub mod seed;
pub mod users;

use std::sync::Arc;

use crate::ports::mail::Mailer;
use crate::ports::store::Store;

/// The secrets that establish identity. Never logged.
#[derive(Clone)]
pub struct Secrets {
    /// Bearer token of the platform administrator (catalog and tenant onboarding).
    pub platform_admin_token: Option<String>,
    /// Key that signs access tokens (HS256).
    pub jwt_secret: String,
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
    pub auth: auth::AuthService,
    pub users: users::UserService,
    pub audit: audit::AuditService,
}

impl Services {
    pub fn new(store: Arc<dyn Store>, mailer: Arc<dyn Mailer>, secrets: Secrets) -> Self {
        let signer = credentials::TokenSigner::new(&secrets.jwt_secret);
        let authn = principal::Authenticator::new(store.clone(), signer, secrets.platform_admin_token);
        let catalog = catalog::CatalogService::new(store.clone());
        let configs = configs::ConfigService::new(store.clone(), catalog.clone());
        let installs = installs::InstallService::new(store.clone(), catalog.clone(), configs.clone());
        let auth = auth::AuthService::new(store.clone(), authn.clone(), mailer);
        let users = users::UserService::new(store.clone(), auth.clone(), authn.clone());
        let audit = audit::AuditService::new(store.clone());
        Self { store, authn, catalog, installs, configs, auth, users, audit }
    }
}
