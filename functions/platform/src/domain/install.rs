//! Installing, changing and removing systems for a tenant: dependency resolution,
//! dependents, and the configuration migration path between two versions.

use std::collections::{BTreeMap, BTreeSet};

use semver::{Version, VersionReq};
use serde::{Deserialize, Serialize};

use super::catalog::SystemVersion;
use super::ids::{SystemId, TenantId};
use super::migration::MigrationOp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstallStatus {
    Installing,
    Active,
    Upgrading,
    Failed,
    Uninstalling,
}

/// A system installed for a tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Install {
    #[schema(value_type = String)]
    pub tenant_id: TenantId,
    #[schema(value_type = String)]
    pub system_id: SystemId,
    #[schema(value_type = String, example = "1.0.0")]
    pub version: Version,
    pub status: InstallStatus,
    /// Set when the system was installed to satisfy another system's dependency.
    #[schema(value_type = Option<String>)]
    pub installed_as_dependency_of: Option<SystemId>,
    pub installed_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HistoryAction {
    Install,
    Upgrade,
    Rollback,
    Uninstall,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
}

/// One line of a tenant system's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub entry_id: String,
    #[schema(value_type = String)]
    pub system_id: SystemId,
    pub action: HistoryAction,
    pub from_version: Option<String>,
    pub to_version: Option<String>,
    pub outcome: Outcome,
    /// Why it happened or why it failed.
    pub detail: Option<String>,
    pub at: String,
}

/// Every published version of the systems involved, ascending by version.
pub struct CatalogView {
    versions: BTreeMap<SystemId, Vec<SystemVersion>>,
}

/// What each installed system of a tenant runs.
pub type Installed = BTreeMap<SystemId, Version>;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("system '{0}' is not in the catalog")]
    UnknownSystem(SystemId),
    #[error("system '{system}' has no published version matching '{requirement}'")]
    NoMatchingVersion { system: SystemId, requirement: VersionReq },
    #[error("system '{0}' is already installed")]
    AlreadyInstalled(SystemId),
    #[error("system '{0}' is not installed")]
    NotInstalled(SystemId),
    #[error("{required_by} needs {system} {requirement}, but {system} {found} is installed or chosen")]
    Incompatible { system: SystemId, found: Version, requirement: VersionReq, required_by: SystemId },
    #[error("dependency cycle: {}", .0.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" -> "))]
    Cycle(Vec<SystemId>),
    #[error("installed systems depend on it: {}", .0.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))]
    HasDependents(Vec<SystemId>),
    #[error("version {version} does not satisfy installed dependents: {}", .dependents.iter().map(|(s, r)| format!("{s} needs {r}")).collect::<Vec<_>>().join(", "))]
    BreaksDependents { version: Version, dependents: Vec<(SystemId, VersionReq)> },
    #[error("version {version} needs {system} {requirement}, which is not installed")]
    MissingDependency { version: Version, system: SystemId, requirement: VersionReq },
}

impl CatalogView {
    pub fn new(mut versions: BTreeMap<SystemId, Vec<SystemVersion>>) -> Self {
        for list in versions.values_mut() {
            list.sort_by(|a, b| a.version.cmp(&b.version));
        }
        Self { versions }
    }

    pub fn versions(&self, system: &SystemId) -> &[SystemVersion] {
        self.versions.get(system).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn find(&self, system: &SystemId, version: &Version) -> Option<&SystemVersion> {
        self.versions(system).iter().find(|v| &v.version == version)
    }

    /// The highest published version matching `requirement`.
    pub fn best(&self, system: &SystemId, requirement: &VersionReq) -> Result<&SystemVersion, PlanError> {
        if !self.versions.contains_key(system) {
            return Err(PlanError::UnknownSystem(system.clone()));
        }
        self.versions(system)
            .iter()
            .rev()
            .find(|v| requirement.matches(&v.version))
            .ok_or_else(|| PlanError::NoMatchingVersion { system: system.clone(), requirement: requirement.clone() })
    }

    /// Installed systems whose installed version depends directly on `system`, with the range they need.
    pub fn dependents(&self, installed: &Installed, system: &SystemId) -> Vec<(SystemId, VersionReq)> {
        installed
            .iter()
            .filter(|(other, _)| *other != system)
            .filter_map(|(other, version)| {
                let req = self.find(other, version)?.dependencies.get(system)?;
                Some((other.clone(), req.clone()))
            })
            .collect()
    }

    /// What installing `target` at `requirement` adds, dependencies first. Systems already
    /// installed must satisfy what the new ones need; nothing installed is changed.
    pub fn plan_install(
        &self,
        installed: &Installed,
        target: &SystemId,
        requirement: &VersionReq,
    ) -> Result<Vec<&SystemVersion>, PlanError> {
        if installed.contains_key(target) {
            return Err(PlanError::AlreadyInstalled(target.clone()));
        }
        let mut plan = Vec::new();
        let mut path = Vec::new();
        self.visit(installed, target, requirement, None, &mut path, &mut plan)?;
        Ok(plan)
    }

    fn visit<'a>(
        &'a self,
        installed: &Installed,
        system: &SystemId,
        requirement: &VersionReq,
        required_by: Option<&SystemId>,
        path: &mut Vec<SystemId>,
        plan: &mut Vec<&'a SystemVersion>,
    ) -> Result<(), PlanError> {
        let already =
            installed.get(system).or_else(|| plan.iter().find(|v| &v.system_id == system).map(|v| &v.version));
        if let Some(found) = already {
            if requirement.matches(found) {
                return Ok(());
            }
            return Err(PlanError::Incompatible {
                system: system.clone(),
                found: found.clone(),
                requirement: requirement.clone(),
                required_by: required_by.cloned().unwrap_or_else(|| system.clone()),
            });
        }
        if path.contains(system) {
            let mut cycle = path.clone();
            cycle.push(system.clone());
            return Err(PlanError::Cycle(cycle));
        }
        let chosen = self.best(system, requirement)?;
        path.push(system.clone());
        for (dep, dep_req) in &chosen.dependencies {
            self.visit(installed, dep, dep_req, Some(system), path, plan)?;
        }
        path.pop();
        plan.push(chosen);
        Ok(())
    }

    /// What removing `system` removes, dependents first. Without `cascade`, installed
    /// dependents make it fail and are named.
    pub fn plan_uninstall(
        &self,
        installed: &Installed,
        system: &SystemId,
        cascade: bool,
    ) -> Result<Vec<SystemId>, PlanError> {
        if !installed.contains_key(system) {
            return Err(PlanError::NotInstalled(system.clone()));
        }
        let direct: Vec<SystemId> = self.dependents(installed, system).into_iter().map(|(s, _)| s).collect();
        if !direct.is_empty() && !cascade {
            return Err(PlanError::HasDependents(direct));
        }
        let mut order = Vec::new();
        let mut seen = BTreeSet::new();
        self.removal_order(installed, system, &mut seen, &mut order);
        Ok(order)
    }

    fn removal_order(
        &self,
        installed: &Installed,
        system: &SystemId,
        seen: &mut BTreeSet<SystemId>,
        order: &mut Vec<SystemId>,
    ) {
        if !seen.insert(system.clone()) {
            return;
        }
        for (dependent, _) in self.dependents(installed, system) {
            self.removal_order(installed, &dependent, seen, order);
        }
        order.push(system.clone());
    }

    /// Checks that `system` may move to `target`: installed dependents still accept it,
    /// and what the target needs is installed at a matching version.
    pub fn check_change(
        &self,
        installed: &Installed,
        system: &SystemId,
        target: &SystemVersion,
    ) -> Result<(), PlanError> {
        if !installed.contains_key(system) {
            return Err(PlanError::NotInstalled(system.clone()));
        }
        let broken: Vec<_> =
            self.dependents(installed, system).into_iter().filter(|(_, req)| !req.matches(&target.version)).collect();
        if !broken.is_empty() {
            return Err(PlanError::BreaksDependents { version: target.version.clone(), dependents: broken });
        }
        for (dep, req) in &target.dependencies {
            match installed.get(dep) {
                Some(found) if req.matches(found) => {}
                Some(found) => {
                    return Err(PlanError::Incompatible {
                        system: dep.clone(),
                        found: found.clone(),
                        requirement: req.clone(),
                        required_by: system.clone(),
                    })
                }
                None => {
                    return Err(PlanError::MissingDependency {
                        version: target.version.clone(),
                        system: dep.clone(),
                        requirement: req.clone(),
                    })
                }
            }
        }
        Ok(())
    }

    /// The configuration operations that take a configuration of `from` to `to`:
    /// forward migrations on upgrade, their inverses (in reverse order) on downgrade.
    pub fn migration_ops(&self, system: &SystemId, from: &Version, to: &Version) -> Vec<MigrationOp> {
        let (low, high) = if from <= to { (from, to) } else { (to, from) };
        let versions = self.versions(system);
        // Each step: (the version it starts from, its operations).
        let mut steps: Vec<(&Version, &[MigrationOp])> = Vec::new();
        let mut at = low;
        while at < high {
            let ahead: Vec<&SystemVersion> =
                versions.iter().filter(|v| &v.version > at && &v.version <= high).collect();
            let Some(next) = ahead.first() else { break };
            // Prefer the furthest version that migrates straight from here.
            let jump =
                ahead.iter().rev().find_map(|v| v.manifest.migrations.iter().find(|m| &m.from == at).map(|m| (*v, m)));
            match jump {
                Some((v, m)) => {
                    steps.push((at, &m.ops));
                    at = &v.version;
                }
                None => {
                    steps.push((at, &[]));
                    at = &next.version;
                }
            }
        }
        if from <= to {
            return steps.into_iter().flat_map(|(_, ops)| ops.iter().cloned()).collect();
        }
        let empty = serde_json::Value::Null;
        steps
            .into_iter()
            .rev()
            .flat_map(|(start, ops)| {
                let earlier_default = self.find(system, start).map(|v| &v.manifest.default_config).unwrap_or(&empty);
                ops.iter().rev().filter_map(move |op| op.inverse(earlier_default))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::manifest::Manifest;
    use serde_json::json;

    fn version(system: &str, v: &str, deps: &[(&str, &str)], migrations: serde_json::Value) -> SystemVersion {
        SystemVersion {
            system_id: SystemId::parse(system).unwrap(),
            version: Version::parse(v).unwrap(),
            release_notes: String::new(),
            schema_version: 1,
            dependencies: deps
                .iter()
                .map(|(s, r)| (SystemId::parse(s).unwrap(), VersionReq::parse(r).unwrap()))
                .collect(),
            manifest: serde_json::from_value::<Manifest>(json!({
                "default_config": {"legacy": "x"},
                "migrations": migrations
            }))
            .unwrap(),
            created_at: String::new(),
        }
    }

    fn id(s: &str) -> SystemId {
        SystemId::parse(s).unwrap()
    }

    fn catalog() -> CatalogView {
        let mut map = BTreeMap::new();
        map.insert(
            id("crm"),
            vec![
                version("crm", "1.0.0", &[], json!([])),
                version(
                    "crm",
                    "1.1.0",
                    &[],
                    json!([{"from": "1.0.0", "ops": [{"op": "rename", "from": "/a", "to": "/b"}]}]),
                ),
                version("crm", "2.0.0", &[], json!([{"from": "1.1.0", "ops": [{"op": "remove", "path": "/legacy"}]}])),
            ],
        );
        map.insert(id("sales"), vec![version("sales", "1.0.0", &[("crm", "^1.0")], json!([]))]);
        map.insert(id("forecast"), vec![version("forecast", "1.0.0", &[("sales", "^1")], json!([]))]);
        map.insert(id("loop-a"), vec![version("loop-a", "1.0.0", &[("loop-b", "*")], json!([]))]);
        map.insert(id("loop-b"), vec![version("loop-b", "1.0.0", &[("loop-a", "*")], json!([]))]);
        CatalogView::new(map)
    }

    fn installed(pairs: &[(&str, &str)]) -> Installed {
        pairs.iter().map(|(s, v)| (id(s), Version::parse(v).unwrap())).collect()
    }

    #[test]
    fn install_pulls_in_highest_compatible_dependencies_first() {
        let c = catalog();
        let plan = c.plan_install(&Installed::new(), &id("forecast"), &VersionReq::STAR).unwrap();
        let names: Vec<String> = plan.iter().map(|v| format!("{}@{}", v.system_id, v.version)).collect();
        assert_eq!(names, ["crm@1.1.0", "sales@1.0.0", "forecast@1.0.0"]);
    }

    #[test]
    fn install_respects_what_is_installed() {
        let c = catalog();
        let plan = c.plan_install(&installed(&[("crm", "1.0.0")]), &id("sales"), &VersionReq::STAR).unwrap();
        assert_eq!(plan.len(), 1);
        let err = c.plan_install(&installed(&[("crm", "2.0.0")]), &id("sales"), &VersionReq::STAR).unwrap_err();
        assert!(matches!(err, PlanError::Incompatible { ref system, .. } if system.as_str() == "crm"), "{err}");
        let err = c.plan_install(&installed(&[("crm", "2.0.0")]), &id("crm"), &VersionReq::STAR).unwrap_err();
        assert_eq!(err, PlanError::AlreadyInstalled(id("crm")));
    }

    #[test]
    fn install_reports_unknown_unmatched_and_cycles() {
        let c = catalog();
        assert_eq!(
            c.plan_install(&Installed::new(), &id("nope"), &VersionReq::STAR).unwrap_err(),
            PlanError::UnknownSystem(id("nope"))
        );
        let err = c.plan_install(&Installed::new(), &id("crm"), &VersionReq::parse("^3").unwrap()).unwrap_err();
        assert!(matches!(err, PlanError::NoMatchingVersion { .. }));
        assert!(matches!(
            c.plan_install(&Installed::new(), &id("loop-a"), &VersionReq::STAR).unwrap_err(),
            PlanError::Cycle(_)
        ));
    }

    #[test]
    fn uninstall_names_dependents_or_cascades() {
        let c = catalog();
        let all = installed(&[("crm", "1.1.0"), ("sales", "1.0.0"), ("forecast", "1.0.0")]);
        assert_eq!(c.plan_uninstall(&all, &id("crm"), false).unwrap_err(), PlanError::HasDependents(vec![id("sales")]));
        assert_eq!(c.plan_uninstall(&all, &id("crm"), true).unwrap(), vec![id("forecast"), id("sales"), id("crm")]);
        assert_eq!(c.plan_uninstall(&all, &id("forecast"), false).unwrap(), vec![id("forecast")]);
    }

    #[test]
    fn changes_keep_dependents_satisfied() {
        let c = catalog();
        let all = installed(&[("crm", "1.0.0"), ("sales", "1.0.0")]);
        assert!(c.check_change(&all, &id("crm"), c.find(&id("crm"), &Version::new(1, 1, 0)).unwrap()).is_ok());
        let err = c.check_change(&all, &id("crm"), c.find(&id("crm"), &Version::new(2, 0, 0)).unwrap()).unwrap_err();
        assert!(
            matches!(err, PlanError::BreaksDependents { ref dependents, .. } if dependents[0].0.as_str() == "sales")
        );
    }

    #[test]
    fn migration_path_goes_forward_and_back() {
        let c = catalog();
        let up = c.migration_ops(&id("crm"), &Version::new(1, 0, 0), &Version::new(2, 0, 0));
        assert_eq!(
            serde_json::to_value(&up).unwrap(),
            json!([{"op": "rename", "from": "/a", "to": "/b"}, {"op": "remove", "path": "/legacy"}])
        );
        let down = c.migration_ops(&id("crm"), &Version::new(2, 0, 0), &Version::new(1, 0, 0));
        assert_eq!(
            serde_json::to_value(&down).unwrap(),
            json!([{"op": "add", "path": "/legacy", "value": "x"}, {"op": "rename", "from": "/b", "to": "/a"}])
        );
        assert!(c.migration_ops(&id("crm"), &Version::new(1, 1, 0), &Version::new(1, 1, 0)).is_empty());
    }
}
