//! Function versions and aliases, as Lambda has them. Publishing freezes a
//! function's code and settings as version 1, 2, ...: the code is copied
//! once per content (`data_dir/code/SHA256/`; unchanged code is not copied
//! again), the function's table of `stratus.toml` kept beside it
//! (`data_dir/versions/NAME/N.json`). Publishing again with nothing changed
//! returns the latest version, as Lambda's PublishVersion does. Aliases
//! (`data_dir/versions/NAME/aliases.json`) point at a version, optionally
//! sending a weight of the calls to a second one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stratus_config::Function;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Version {
    pub version: u32,
    pub description: String,
    /// The code's SHA-256, base64 (Lambda's `CodeSha256`).
    pub code_sha256: String,
    /// The function's `stratus.toml` table, `code` pointing at the frozen copy.
    pub config: String,
    /// Unix milliseconds.
    pub created: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Alias {
    pub name: String,
    pub version: u32,
    /// A second version and the share of calls it gets (0.0..1.0).
    #[serde(default)]
    pub weights: BTreeMap<u32, f64>,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Io(String),
}

fn io(e: impl std::fmt::Display) -> VersionError {
    VersionError::Io(e.to_string())
}

/// Folders that are build outputs or caches, never part of a version.
const SKIPPED: [&str; 5] = ["target", "__pycache__", "node_modules", ".git", ".stratus"];

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            if SKIPPED.iter().any(|s| name.to_str() == Some(s)) {
                continue;
            }
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => out.push(e.path()),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// The SHA-256 of a code folder: every file's relative path and bytes.
fn code_hash(dir: &Path) -> Result<[u8; 32], VersionError> {
    let mut h = Sha256::new();
    for f in files(dir) {
        let rel = f.strip_prefix(dir).unwrap_or(&f);
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(std::fs::read(&f).map_err(io)?);
        h.update([0]);
    }
    Ok(h.finalize().into())
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), VersionError> {
    for f in files(from) {
        let rel = f.strip_prefix(from).unwrap_or(&f);
        let dest = to.join(rel);
        if let Some(p) = dest.parent() {
            std::fs::create_dir_all(p).map_err(io)?;
        }
        std::fs::copy(&f, &dest).map_err(io)?;
    }
    Ok(())
}

/// The versions and aliases of a project's functions.
pub struct Versions {
    root: PathBuf,
    code: PathBuf,
    /// One publish at a time.
    lock: Mutex<()>,
    /// Each function's aliases, read from its `aliases.json` once: an
    /// aliased call resolves without reading a file. Held while an alias
    /// changes, so changes come one at a time.
    aliases: Mutex<std::collections::HashMap<String, BTreeMap<String, Alias>>>,
}

impl Versions {
    pub fn new(data_dir: &Path) -> Versions {
        Versions {
            root: data_dir.join("versions"),
            code: data_dir.join("code"),
            lock: Mutex::new(()),
            aliases: Mutex::default(),
        }
    }

    fn dir(&self, function: &str) -> PathBuf {
        self.root.join(function)
    }

    /// Every published version of `function`, oldest first.
    pub fn list(&self, function: &str) -> Vec<Version> {
        let mut all: Vec<Version> = std::fs::read_dir(self.dir(function))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .filter(|e| e.file_name() != "aliases.json")
            .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
            .collect();
        all.sort_by_key(|v: &Version| v.version);
        all
    }

    pub fn get(&self, function: &str, version: u32) -> Option<Version> {
        let text = std::fs::read(self.dir(function).join(format!("{version}.json"))).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Publishes `f` (its table in `project_file`, read now): a new version,
    /// or the latest when neither code nor settings changed.
    pub fn publish(
        &self,
        f: &Function,
        app: &stratus_config::App,
        description: &str,
    ) -> Result<Version, VersionError> {
        let _one = self.lock.lock().expect("versions lock");
        let project_file = &app.file;
        // The project as it was loaded (a template's: the project file it
        // amounts to), not the file read again.
        let doc: toml::Table = toml::from_str(&app.text)
            .map_err(|e| VersionError::Invalid(format!("{}: {e}", project_file.display())))?;
        let mut table = doc
            .get("functions")
            .and_then(|t| t.get(&f.name))
            .and_then(|t| t.as_table())
            .cloned()
            .ok_or_else(|| {
                VersionError::NotFound(format!(
                    "no [functions.{}] in {}",
                    f.name,
                    project_file.display()
                ))
            })?;
        // A version is the function's code and settings: its URL and its
        // alias are resources of their own, as on Lambda.
        table.remove("url");
        table.remove("auto_publish_alias");
        let (hash, frozen) = self.freeze(&f.code)?;
        table.insert(
            "code".into(),
            toml::Value::String(frozen.display().to_string()),
        );
        // Its layers are frozen too: a version runs the layers it was
        // published with, as a Lambda version pins layer versions.
        if !f.layers.is_empty() {
            let mut layers = Vec::new();
            for l in &f.layers {
                let (_, frozen) = self.freeze(l)?;
                layers.push(toml::Value::String(frozen.display().to_string()));
            }
            table.insert("layers".into(), toml::Value::Array(layers));
        }
        let config = toml::to_string(&table).map_err(io)?;
        use base64::Engine as _;
        let code_sha256 = base64::engine::general_purpose::STANDARD.encode(hash);
        let existing = self.list(&f.name);
        if let Some(last) = existing.last() {
            if last.code_sha256 == code_sha256 && last.config == config {
                return Ok(last.clone());
            }
        }
        let v = Version {
            version: existing.last().map_or(1, |l| l.version + 1),
            description: description.to_owned(),
            code_sha256,
            config,
            created: crate::epoch_ms(),
        };
        let dir = self.dir(&f.name);
        std::fs::create_dir_all(&dir).map_err(io)?;
        let json = serde_json::to_vec_pretty(&v).map_err(io)?;
        std::fs::write(dir.join(format!("{}.json", v.version)), json).map_err(io)?;
        Ok(v)
    }

    /// A project of one function: the published version's frozen code and
    /// settings (its `version` set). `[server]` is the default: the caller
    /// puts its own.
    /// A content-addressed copy of `dir` in `data_dir/code` (made once);
    /// its hash and path.
    fn freeze(&self, dir: &Path) -> Result<([u8; 32], PathBuf), VersionError> {
        let hash = code_hash(dir)?;
        let hex = hex::encode(hash);
        let frozen = self.code.join(&hex);
        if !frozen.is_dir() {
            let partial = self.code.join(format!("{hex}.partial"));
            let _ = std::fs::remove_dir_all(&partial);
            copy_tree(dir, &partial)?;
            std::fs::rename(&partial, &frozen).map_err(io)?;
        }
        Ok((hash, frozen))
    }

    pub fn app(&self, name: &str, version: u32) -> Result<stratus_config::App, VersionError> {
        let v = self.get(name, version).ok_or_else(|| {
            VersionError::NotFound(format!("function {name} has no version {version}"))
        })?;
        let key = toml::Value::String(name.to_owned()).to_string();
        let text = format!("[functions.{key}]\n{}", v.config);
        let file = self.dir(name).join(format!("{version}.toml"));
        let mut app = stratus_config::load_str(&text, &file, &self.dir(name))
            .map_err(|e| VersionError::Invalid(format!("version {version} of {name}: {e}")))?;
        let f = app
            .functions
            .get_mut(name)
            .ok_or_else(|| VersionError::Invalid(format!("version {version} of {name}")))?;
        *f = std::sync::Arc::new(Function {
            version: Some(version),
            ..(**f).clone()
        });
        Ok(app)
    }

    /// A function's aliases (from memory; from its file the first time).
    fn cached<'a>(
        &self,
        all: &'a mut std::collections::HashMap<String, BTreeMap<String, Alias>>,
        function: &str,
    ) -> &'a mut BTreeMap<String, Alias> {
        all.entry(function.to_owned()).or_insert_with(|| {
            std::fs::read(self.dir(function).join("aliases.json"))
                .ok()
                .and_then(|t| serde_json::from_slice(&t).ok())
                .unwrap_or_default()
        })
    }

    pub fn aliases(&self, function: &str) -> BTreeMap<String, Alias> {
        let mut all = self.aliases.lock().expect("aliases lock");
        self.cached(&mut all, function).clone()
    }

    pub fn alias(&self, function: &str, name: &str) -> Option<Alias> {
        let mut all = self.aliases.lock().expect("aliases lock");
        self.cached(&mut all, function).get(name).cloned()
    }

    /// Applies `change` to a function's aliases and writes them; the
    /// memory copy changes only once the file did.
    fn change_aliases<T>(
        &self,
        function: &str,
        change: impl FnOnce(&mut BTreeMap<String, Alias>) -> Result<T, VersionError>,
    ) -> Result<T, VersionError> {
        let mut all = self.aliases.lock().expect("aliases lock");
        let mut next = self.cached(&mut all, function).clone();
        let out = change(&mut next)?;
        let dir = self.dir(function);
        std::fs::create_dir_all(&dir).map_err(io)?;
        std::fs::write(
            dir.join("aliases.json"),
            serde_json::to_vec_pretty(&next).map_err(io)?,
        )
        .map_err(io)?;
        all.insert(function.to_owned(), next);
        Ok(out)
    }

    /// Creates or replaces an alias; the versions it names must exist.
    pub fn set_alias(&self, function: &str, alias: Alias) -> Result<Alias, VersionError> {
        if !stratus_config::valid_qualifier(&alias.name)
            || alias.name.chars().all(|c| c.is_ascii_digit())
            || alias.name == "$LATEST"
        {
            return Err(VersionError::Invalid(format!(
                "{:?} is not an alias name: letters, digits, '-' and '_', starting with a letter",
                alias.name
            )));
        }
        for v in std::iter::once(&alias.version).chain(alias.weights.keys()) {
            if self.get(function, *v).is_none() {
                return Err(VersionError::NotFound(format!(
                    "function {function} has no version {v}"
                )));
            }
        }
        if alias.weights.len() > 1 || alias.weights.values().any(|w| !(0.0..1.0).contains(w)) {
            return Err(VersionError::Invalid(
                "AdditionalVersionWeights: one version, with a weight from 0.0 to 1.0".into(),
            ));
        }
        self.change_aliases(function, |all| {
            all.insert(alias.name.clone(), alias.clone());
            Ok(alias)
        })
    }

    /// SAM's `AutoPublishAlias`: each function of `app` that names one is
    /// published (a new version only when its code or settings changed)
    /// and the alias pointed at that version.
    pub fn auto_publish(&self, app: &stratus_config::App) -> Result<(), VersionError> {
        for f in app.functions.values() {
            let Some(alias) = &f.auto_publish_alias else {
                continue;
            };
            let v = self.publish(f, app, "AutoPublishAlias")?;
            if self
                .alias(&f.name, alias)
                .is_some_and(|a| a.version == v.version && a.weights.is_empty())
            {
                continue;
            }
            self.set_alias(
                &f.name,
                Alias {
                    name: alias.clone(),
                    version: v.version,
                    weights: BTreeMap::new(),
                    description: "AutoPublishAlias".into(),
                },
            )?;
            tracing::info!(function = %f.name, "alias {alias} → version {}", v.version);
        }
        Ok(())
    }

    pub fn delete_alias(&self, function: &str, name: &str) -> Result<(), VersionError> {
        self.change_aliases(function, |all| match all.remove(name) {
            Some(_) => Ok(()),
            None => Err(VersionError::NotFound(format!(
                "function {function} has no alias {name}"
            ))),
        })
    }

    /// The version a call through `alias` runs: its version, or the
    /// weighted one for a share of the calls (`roll` in 0.0..1.0).
    pub fn pick(alias: &Alias, roll: f64) -> u32 {
        let mut acc = 0.0;
        for (v, w) in &alias.weights {
            acc += w;
            if roll < acc {
                return *v;
            }
        }
        alias.version
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_split_the_rolls() {
        let a = Alias {
            name: "live".into(),
            version: 1,
            weights: [(2, 0.1)].into(),
            description: String::new(),
        };
        assert_eq!(Versions::pick(&a, 0.05), 2);
        assert_eq!(Versions::pick(&a, 0.1), 1);
        assert_eq!(Versions::pick(&a, 0.99), 1);
        let plain = Alias {
            weights: BTreeMap::new(),
            ..a
        };
        assert_eq!(Versions::pick(&plain, 0.0), 1);
    }
}
