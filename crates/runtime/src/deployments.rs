//! Deployments: immutable, numbered snapshots of a project's APIs and
//! function code, as API Gateway's deployments (and SAM's function
//! versions behind them). Deploying publishes every function as a version
//! (`versions.rs`: unchanged code is not copied again) and keeps the
//! project file with each function's `code` pointing at its frozen copy
//! (`data_dir/deployments/N.json`). A stage serves the working tree
//! (`deployment = "latest"`, the default) or a deployment; `stratus stage`
//! moves it (`data_dir/deployments/stages.json`, which wins over the
//! file), and `compose` builds the project the gateway serves: each stage
//! from what it points at, its routes calling the deployment's versions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use stratus_config::{App, AuthorizerKind, DeploymentRef, Integration};

use crate::versions::{VersionError, Versions};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Deployment {
    pub id: u32,
    pub description: String,
    /// Unix milliseconds.
    pub created: i64,
    /// The project file, each function's `code` the frozen copy.
    pub project: String,
    /// The version of each function.
    pub functions: BTreeMap<String, u32>,
}

/// A canary set by command.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct CanarySetting {
    pub deployment: u32,
    pub percent: f64,
}

/// A stage's canary, ready to serve: the API variant for its requests.
pub struct CanaryPlan {
    pub api: String,
    pub stage: String,
    pub percent: f64,
    /// A project of that one API variant.
    pub app: App,
}

pub struct Deployments {
    dir: PathBuf,
    lock: Mutex<()>,
}

fn io(e: impl std::fmt::Display) -> VersionError {
    VersionError::Io(e.to_string())
}

impl Deployments {
    pub fn new(data_dir: &Path) -> Deployments {
        Deployments {
            dir: data_dir.join("deployments"),
            lock: Mutex::new(()),
        }
    }

    pub fn list(&self) -> Vec<Deployment> {
        let mut all: Vec<Deployment> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name() != "stages.json")
            .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
            .collect();
        all.sort_by_key(|d: &Deployment| d.id);
        all
    }

    pub fn get(&self, id: u32) -> Option<Deployment> {
        serde_json::from_slice(&std::fs::read(self.dir.join(format!("{id}.json"))).ok()?).ok()
    }

    /// Snapshots `app` (as its file says now) as the next deployment.
    pub fn create(
        &self,
        app: &App,
        versions: &Versions,
        description: &str,
    ) -> Result<Deployment, VersionError> {
        let _one = self.lock.lock().expect("deployments lock");
        let text = std::fs::read_to_string(&app.file).map_err(io)?;
        let mut doc: toml::Table = toml::from_str(&text)
            .map_err(|e| VersionError::Invalid(format!("{}: {e}", app.file.display())))?;
        let id = self.list().last().map_or(1, |d| d.id + 1);
        let mut functions = BTreeMap::new();
        for f in app.functions.values() {
            let v = versions.publish(f, app, &format!("deployment {id}"))?;
            let frozen: toml::Table = toml::from_str(&v.config).map_err(io)?;
            if let (Some(table), Some(code)) = (
                doc.get_mut("functions")
                    .and_then(|t| t.get_mut(&f.name))
                    .and_then(|t| t.as_table_mut()),
                frozen.get("code"),
            ) {
                table.insert("code".into(), code.clone());
            }
            functions.insert(f.name.clone(), v.version);
        }
        let d = Deployment {
            id,
            description: description.to_owned(),
            created: crate::epoch_ms(),
            project: toml::to_string(&doc).map_err(io)?,
            functions,
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        std::fs::write(
            self.dir.join(format!("{id}.json")),
            serde_json::to_vec_pretty(&d).map_err(io)?,
        )
        .map_err(io)?;
        Ok(d)
    }

    /// Where `stratus stage` moved stages: `API/STAGE` → id.
    pub fn pointers(&self) -> BTreeMap<String, u32> {
        std::fs::read(self.dir.join("stages.json"))
            .ok()
            .and_then(|t| serde_json::from_slice(&t).ok())
            .unwrap_or_default()
    }

    /// Points a stage at a deployment, or back at the file's choice (`None`).
    pub fn point(&self, api: &str, stage: &str, to: Option<u32>) -> Result<(), VersionError> {
        let _one = self.lock.lock().expect("deployments lock");
        if let Some(id) = to {
            if self.get(id).is_none() {
                return Err(VersionError::NotFound(format!("no deployment {id}")));
            }
        }
        let mut all = self.pointers();
        let key = format!("{api}/{stage}");
        match to {
            Some(id) => all.insert(key, id),
            None => all.remove(&key),
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        std::fs::write(
            self.dir.join("stages.json"),
            serde_json::to_vec_pretty(&all).map_err(io)?,
        )
        .map_err(io)
    }

    /// Canaries set or removed by command: `API/STAGE` → the canary, or
    /// `None` for one removed; these win over the file's `canary`.
    pub fn canary_overrides(&self) -> BTreeMap<String, Option<CanarySetting>> {
        std::fs::read(self.dir.join("canaries.json"))
            .ok()
            .and_then(|t| serde_json::from_slice(&t).ok())
            .unwrap_or_default()
    }

    /// Sets (`Some`) or removes (`None`) a stage's canary.
    pub fn set_canary(
        &self,
        api: &str,
        stage: &str,
        canary: Option<CanarySetting>,
    ) -> Result<(), VersionError> {
        let _one = self.lock.lock().expect("deployments lock");
        if let Some(c) = &canary {
            if self.get(c.deployment).is_none() {
                return Err(VersionError::NotFound(format!(
                    "no deployment {}",
                    c.deployment
                )));
            }
            if !(0.0..=100.0).contains(&c.percent) {
                return Err(VersionError::Invalid("percent: 0 to 100".into()));
            }
        }
        let mut all = self.canary_overrides();
        all.insert(format!("{api}/{stage}"), canary);
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        std::fs::write(
            self.dir.join("canaries.json"),
            serde_json::to_vec_pretty(&all).map_err(io)?,
        )
        .map_err(io)
    }

    /// A deployment's project, its functions' calls qualified by the
    /// deployment's versions.
    fn app(&self, id: u32, current: &App) -> Result<(App, Deployment), String> {
        let d = self
            .get(id)
            .ok_or_else(|| format!("no deployment {id} (stratus deployments lists them)"))?;
        let app = stratus_config::load_str(&d.project, &current.file, &current.project_dir)
            .map_err(|e| format!("deployment {id} no longer loads:\n{e}"))?;
        Ok((app, d))
    }

    /// The project the gateway serves: every stage from what it points at
    /// (a `stratus stage` move, else its `deployment`); and the canaries.
    pub fn compose(&self, app: &App) -> Result<(App, Vec<CanaryPlan>), String> {
        let pointers = self.pointers();
        let overrides = self.canary_overrides();
        let mut apis = Vec::new();
        let mut canaries = Vec::new();
        for api in &app.apis {
            let mut latest = Vec::new();
            for stage in &api.stages {
                let target = match pointers.get(&format!("{}/{}", api.name, stage.name)) {
                    Some(id) => DeploymentRef::Id(*id),
                    None => stage.deployment,
                };
                let mut stage = stage.clone();
                stage.deployment = target;
                if let Some(set) = overrides.get(&format!("{}/{}", api.name, stage.name)) {
                    stage.canary = set.map(|c| stratus_config::Canary {
                        deployment: c.deployment,
                        percent: c.percent,
                        variables: stage
                            .canary
                            .as_ref()
                            .map(|f| f.variables.clone())
                            .unwrap_or_default(),
                    });
                }
                if let Some(c) = stage.canary.clone() {
                    let mut variables = stage.variables.clone();
                    variables.extend(c.variables.clone());
                    let canary_stage = stratus_config::Stage {
                        variables,
                        canary: None,
                        deployment: DeploymentRef::Id(c.deployment),
                        ..stage.clone()
                    };
                    let variant = self.variant(app, api, canary_stage, c.deployment)?;
                    canaries.push(CanaryPlan {
                        api: api.name.clone(),
                        stage: stage.name.clone(),
                        percent: c.percent,
                        app: App {
                            apis: vec![variant],
                            ..app.clone()
                        },
                    });
                }
                match target {
                    DeploymentRef::Latest => latest.push(stage),
                    DeploymentRef::Id(id) => apis.push(self.variant(app, api, stage, id)?),
                }
            }
            if !latest.is_empty() {
                apis.push(Arc::new(stratus_config::Api {
                    stages: latest,
                    ..(**api).clone()
                }));
            }
        }
        Ok((
            App {
                apis,
                ..app.clone()
            },
            canaries,
        ))
    }

    /// `api` as deployment `id` has it, serving only `stage`.
    fn variant(
        &self,
        app: &App,
        api: &stratus_config::Api,
        stage: stratus_config::Stage,
        id: u32,
    ) -> Result<Arc<stratus_config::Api>, String> {
        let (dep_app, d) = self.app(id, app)?;
        let dep_api = dep_app
            .apis
            .iter()
            .find(|a| a.name == api.name)
            .ok_or_else(|| format!("deployment {id} has no API {:?}", api.name))?;
        let qualify = |name: &str| match d.functions.get(name) {
            Some(v) => format!("{name}:{v}"),
            None => name.to_owned(),
        };
        let authorizers: BTreeMap<String, Arc<stratus_config::Authorizer>> = dep_api
            .authorizers
            .iter()
            .map(|(k, a)| {
                let mut a = (**a).clone();
                match &mut a.kind {
                    AuthorizerKind::Token { function, .. }
                    | AuthorizerKind::Request { function, .. } => *function = qualify(function),
                    AuthorizerKind::Jwt { .. } => {}
                }
                (k.clone(), Arc::new(a))
            })
            .collect();
        let routes = dep_api
            .routes
            .iter()
            .map(|r| {
                let mut r = r.clone();
                if let Integration::Function { name } = &mut r.integration {
                    *name = qualify(name);
                }
                if let Some(a) = &r.authorizer {
                    r.authorizer = authorizers.get(&a.name).cloned();
                }
                r
            })
            .collect();
        Ok(Arc::new(stratus_config::Api {
            stages: vec![stage],
            routes,
            authorizers,
            ..(**dep_api).clone()
        }))
    }
}
