//! Use cases, written against the ports. The HTTP layer calls these; nothing here knows HTTP.

pub mod catalog;
pub mod configs;
pub mod error;
pub mod installs;
pub mod keys;
pub mod page;
pub mod seed;

use std::sync::Arc;

use crate::ports::store::Store;

/// Everything a request handler needs, cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub catalog: catalog::CatalogService,
    pub installs: installs::InstallService,
    pub configs: configs::ConfigService,
}

impl Services {
    pub fn new(store: Arc<dyn Store>) -> Self {
        let catalog = catalog::CatalogService::new(store.clone());
        let configs = configs::ConfigService::new(store.clone(), catalog.clone());
        let installs = installs::InstallService::new(store.clone(), catalog.clone(), configs.clone());
        Self { store, catalog, installs, configs }
    }
}
