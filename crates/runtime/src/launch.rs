//! How an environment's process is started: which program, which
//! arguments, which environment variables.
//!
//! Processes get a clean environment (nothing of the server's leaks in but
//! `PATH`), their code directory as working directory, and a process group
//! of their own so that the whole group can be killed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use stratus_config::{App, Function, Language};
use tokio::process::Command;

/// The bootstraps Stratus ships for interpreted runtimes.
const PYTHON_BOOTSTRAP: &str = include_str!("../bootstraps/python/bootstrap.py");
const NODE_BOOTSTRAP: &str = include_str!("../bootstraps/node/bootstrap.mjs");

/// The fake account Stratus uses in ARNs.
pub use stratus_config::ACCOUNT_ID;

/// A function's ARN, as Lambda writes it.
pub fn function_arn(region: &str, name: &str) -> String {
    format!("arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}")
}

pub(crate) struct Launcher {
    /// Unique to this runtime: environment marks start with it.
    instance: String,
    region: String,
    runtime_dir: PathBuf,
    build_dir: PathBuf,
    /// Resolved interpreters by runtime id (`python3.12` → `/usr/bin/python3.12`).
    interpreters: HashMap<String, PathBuf>,
    path: String,
    extra_env: Vec<(String, String)>,
}

impl Launcher {
    /// Writes the shipped bootstraps into the data dir and finds the
    /// interpreters the app's functions need.
    pub(crate) fn new(app: &App, extra_env: Vec<(String, String)>) -> Result<Launcher, String> {
        let runtime_dir = app.server.data_dir.join("runtimes");
        let build_dir = app.server.data_dir.join("build");
        let interpreted = app
            .functions
            .values()
            .any(|f| !matches!(f.runtime, Language::Provided(_)));
        let shipped = [
            ("python/bootstrap.py", PYTHON_BOOTSTRAP),
            ("node/bootstrap.mjs", NODE_BOOTSTRAP),
        ];
        for (rel, text) in shipped.into_iter().filter(|_| interpreted) {
            let path = runtime_dir.join(rel);
            std::fs::create_dir_all(path.parent().expect("has a parent"))
                .and_then(|()| std::fs::write(&path, text))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        let mut interpreters = HashMap::new();
        for f in app.functions.values() {
            let id = f.runtime.id().to_owned();
            if interpreters.contains_key(&id) {
                continue;
            }
            match &f.runtime {
                Language::Provided(_) => {}
                Language::Python(v) => {
                    interpreters.insert(id, find_python(v, &path)?);
                }
                Language::Node(v) => {
                    let node = which("node", &path)
                        .ok_or("function runtime nodejs needs `node` on PATH; none found")?;
                    warn_on_other_node(v, &node);
                    interpreters.insert(id, node);
                }
            }
        }
        Ok(Launcher {
            instance: format!(
                "{}-{}",
                std::process::id(),
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            ),
            region: app.server.region.clone(),
            runtime_dir,
            build_dir,
            interpreters,
            path,
            extra_env,
        })
    }

    /// The mark of environment `id` of `function` (see `sandbox`).
    pub(crate) fn mark(&self, function: &str, id: u64) -> String {
        format!("{}-{function}-{id}", self.instance)
    }

    /// A function's ARN, with the version of a published one.
    pub(crate) fn function_arn(&self, f: &Function) -> String {
        let arn = function_arn(&self.region, &f.name);
        match f.version {
            Some(v) => format!("{arn}:{v}"),
            None => arn,
        }
    }

    /// The interpreter that runs `f`, for interpreted runtimes.
    pub(crate) fn interpreter(&self, f: &Function) -> Option<&Path> {
        self.interpreters.get(f.runtime.id()).map(PathBuf::as_path)
    }

    /// Where Stratus installs a function's dependencies.
    /// A published version builds apart from `$LATEST` (`NAME@N`).
    pub(crate) fn build_dir(&self, f: &Function) -> PathBuf {
        match f.version {
            Some(v) => self.build_dir.join(format!("{}@{v}", f.name)),
            None => self.build_dir.join(&f.name),
        }
    }

    pub(crate) fn command(
        &self,
        f: &Function,
        api: SocketAddr,
        log_stream: &str,
        provisioned: bool,
        mark: &str,
    ) -> Result<Command, String> {
        let mut cmd = match &f.runtime {
            Language::Provided(_) => {
                let bootstrap = provided_bootstrap(f, &self.build_dir(f));
                if !bootstrap.is_file() {
                    return Err(format!(
                        "function {:?}: no executable {} (a provided runtime runs ./bootstrap from its code directory)",
                        f.name,
                        bootstrap.display()
                    ));
                }
                Command::new(bootstrap)
            }
            Language::Python(_) => {
                let mut c = Command::new(&self.interpreters[f.runtime.id()]);
                c.arg(self.runtime_dir.join("python/bootstrap.py"));
                c
            }
            Language::Node(_) => {
                let mut c = Command::new(&self.interpreters[f.runtime.id()]);
                c.arg(self.runtime_dir.join("node/bootstrap.mjs"));
                c
            }
        };
        // A bundled function runs from its bundle, as from a `sam build`
        // artifact.
        let task_root = if f.bundle.is_some() {
            crate::build::bundle_dir(&self.build_dir(f))
        } else {
            f.code.clone()
        };
        cmd.env_clear()
            .current_dir(&task_root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        batch_scheduling(&mut cmd);
        let deps = self.build_dir(f);
        let mut env: Vec<(String, String)> = vec![
            ("AWS_LAMBDA_RUNTIME_API".into(), api.to_string()),
            ("_HANDLER".into(), f.handler.clone()),
            ("LAMBDA_TASK_ROOT".into(), task_root.display().to_string()),
            (
                "LAMBDA_RUNTIME_DIR".into(),
                self.runtime_dir.display().to_string(),
            ),
            ("AWS_LAMBDA_FUNCTION_NAME".into(), f.name.clone()),
            (
                "AWS_LAMBDA_FUNCTION_VERSION".into(),
                f.version
                    .map_or_else(|| "$LATEST".to_owned(), |v| v.to_string()),
            ),
            (
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(),
                f.memory_mb.to_string(),
            ),
            ("AWS_REGION".into(), self.region.clone()),
            ("AWS_DEFAULT_REGION".into(), self.region.clone()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME".into(),
                format!("/aws/lambda/{}", f.name),
            ),
            ("AWS_LAMBDA_LOG_STREAM_NAME".into(), log_stream.to_owned()),
            (
                "AWS_LAMBDA_INITIALIZATION_TYPE".into(),
                if provisioned {
                    "provisioned-concurrency"
                } else {
                    "on-demand"
                }
                .into(),
            ),
            (
                "AWS_EXECUTION_ENV".into(),
                format!("AWS_Lambda_{}", f.runtime.id()),
            ),
            ("TZ".into(), "UTC".into()),
            ("LANG".into(), "en_US.UTF-8".into()),
            ("PATH".into(), self.path.clone()),
            (crate::sandbox::MARK_VAR.into(), mark.to_owned()),
        ];
        let layers = layer_paths(f, &deps);
        match &f.runtime {
            Language::Python(_) => {
                let mut pp = f.code.display().to_string();
                let site = deps.join("python");
                if site.is_dir() {
                    pp = format!("{pp}:{}", site.display());
                }
                for dir in &layers.python {
                    pp = format!("{pp}:{}", dir.display());
                }
                env.push(("PYTHONPATH".into(), pp));
                env.push(("PYTHONUNBUFFERED".into(), "1".into()));
                // As on Lambda (a read-only code folder): no `__pycache__`
                // written into the user's tree, and no bytecode cached by
                // second-granular mtime that an edit within the same second
                // would leave stale under `stratus dev`.
                env.push(("PYTHONDONTWRITEBYTECODE".into(), "1".into()));
            }
            Language::Node(_) => {
                let modules = deps.join("node").join("node_modules");
                let all: Vec<String> = std::iter::once(modules)
                    .chain(layers.node)
                    .filter(|d| d.is_dir())
                    .map(|d| d.display().to_string())
                    .collect();
                if !all.is_empty() {
                    env.push(("NODE_PATH".into(), all.join(":")));
                }
            }
            Language::Provided(_) => {}
        }
        // The layers merged as /opt is on Lambda, for code that reads a
        // path under it.
        if !f.layers.is_empty() {
            env.push((
                "STRATUS_OPT".into(),
                crate::build::opt_dir(&deps).display().to_string(),
            ));
        }
        // A layer's `bin` and `lib`, as /opt/bin and /opt/lib are on Lambda.
        if let Some((_, path)) = env.iter_mut().find(|(k, _)| k == "PATH") {
            for bin in &layers.bin {
                *path = format!("{}:{path}", bin.display());
            }
        }
        if !layers.lib.is_empty() {
            let libs: Vec<String> = layers.lib.iter().map(|l| l.display().to_string()).collect();
            env.push(("LD_LIBRARY_PATH".into(), libs.join(":")));
        }
        env.extend(self.extra_env.iter().cloned());
        env.extend(
            f.environment
                .iter()
                .map(|(k, v)| (k.clone(), expand(v, &self.extra_env))),
        );
        cmd.envs(env);
        Ok(cmd)
    }
}

/// Where a function's layers put what Lambda finds under `/opt`: each
/// layer's `python` and `python/lib/python3.N/site-packages` (and what a
/// layer's requirements.txt installed), `nodejs/node_modules` and
/// `nodejs/nodeNN/node_modules`, `bin`, `lib`; the last layer first, as
/// its files are over the others' in `/opt`.
#[derive(Default)]
struct LayerPaths {
    python: Vec<PathBuf>,
    node: Vec<PathBuf>,
    bin: Vec<PathBuf>,
    lib: Vec<PathBuf>,
}

fn layer_paths(f: &Function, build_dir: &Path) -> LayerPaths {
    let mut out = LayerPaths::default();
    let subdirs = |dir: &Path, prefix: &str| -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
            .map(|e| e.path())
            .collect();
        found.sort();
        found
    };
    for (i, layer) in f.layers.iter().enumerate().rev() {
        let built = crate::build::layer_build_dir(build_dir, i);
        out.python.push(layer.join("python"));
        for lib in subdirs(&layer.join("python/lib"), "python3") {
            out.python.push(lib.join("site-packages"));
        }
        out.python.push(built.join("python"));
        out.node.push(layer.join("nodejs/node_modules"));
        for versioned in subdirs(&layer.join("nodejs"), "node") {
            if versioned.file_name().is_some_and(|n| n != "node_modules") {
                out.node.push(versioned.join("node_modules"));
            }
        }
        out.node.push(built.join("nodejs/node_modules"));
        out.bin.push(layer.join("bin"));
        out.lib.push(layer.join("lib"));
    }
    out.python.retain(|d| d.is_dir());
    out.node.retain(|d| d.is_dir());
    out.bin.retain(|d| d.is_dir());
    out.lib.retain(|d| d.is_dir());
    // PATH is prepended one by one: the first layer goes in last.
    out.bin.reverse();
    out
}

/// `${NAME}` in a function's own variables replaced by a variable Stratus
/// gives every function, so a project can map them to the names its code
/// reads (`DATABASE_URL = "${STRATUS_DB_MAIN_URL}"`); other text, unknown
/// names included, is left as written.
fn expand(value: &str, given: &[(String, String)]) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let known = after.find('}').and_then(|end| {
            let name = &after[..end];
            given.iter().find(|(k, _)| k == name).map(|(_, v)| (v, end))
        });
        match known {
            Some((v, end)) => {
                out.push_str(v);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `./bootstrap` in the code directory, or the one Stratus built into the
/// build directory from a Cargo package.
pub(crate) fn provided_bootstrap(f: &Function, build_dir: &Path) -> PathBuf {
    let built = build_dir.join("bootstrap");
    if !f.code.join("bootstrap").is_file() && built.is_file() {
        built
    } else {
        f.code.join("bootstrap")
    }
}

pub(crate) fn which(program: &str, path: &str) -> Option<PathBuf> {
    path.split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

/// Says so when `nodejs22.x` is asked for and the machine's `node` is
/// another major version (functions still run on it, as Python ones run
/// on the `python3` there is).
fn warn_on_other_node(runtime: &str, node: &Path) {
    let Some(wanted) = runtime
        .strip_prefix("nodejs")
        .and_then(|v| v.strip_suffix(".x"))
        .and_then(|v| v.parse::<u32>().ok())
    else {
        return;
    };
    let Ok(out) = std::process::Command::new(node).arg("--version").output() else {
        return;
    };
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let major = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    if major.is_some_and(|m| m != wanted) {
        tracing::warn!(
            "{runtime} asks for Node.js {wanted}; functions of that runtime run on Node.js {version} ({})",
            node.display()
        );
    }
}

/// `python3.12` if that is installed, else `python3`; resolved to the real
/// executable (version managers put shell-script shims on PATH, which need
/// the very environment variables a function must not see).
fn find_python(runtime: &str, path: &str) -> Result<PathBuf, String> {
    for name in [runtime, "python3"] {
        let Some(candidate) = which(name, path) else {
            continue;
        };
        let out = std::process::Command::new(&candidate)
            .args(["-c", "import sys; print(sys.executable)"])
            .output();
        if let Ok(out) = out {
            let exe = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if out.status.success() && !exe.is_empty() {
                if name != runtime {
                    tracing::warn!(
                        "{runtime} is not installed; functions of that runtime run on {exe}"
                    );
                }
                return Ok(PathBuf::from(exe));
            }
        }
    }
    Err(format!(
        "function runtime {runtime} needs `{runtime}` or `python3` on PATH; none runs"
    ))
}

/// Runs the function's processes under `SCHED_BATCH`: the same share of
/// the CPU as any process at their nice level, but a function woken by the
/// Runtime API (its `next` answered) does not preempt the Stratus thread
/// that woke it. On a machine with few cores that preemption was one
/// context switch per call, in the middle of the gateway's work; without
/// it the thread finishes what is ready (other calls' answers, other
/// clients' requests) and the function runs when a core frees up.
/// Measured in `docs/benchmarks.md` (std-only function, c=32: +25 % calls
/// per second, −18 % Stratus CPU per call). Children inherit the policy.
#[allow(unsafe_code)]
fn batch_scheduling(cmd: &mut Command) {
    // SAFETY: the closure runs in the child between fork and exec and makes
    // one system call, which is async-signal-safe; it touches no memory
    // of the parent's (no allocation, no lock). A failure is ignored: the
    // policy is an optimisation, never a requirement.
    unsafe {
        cmd.pre_exec(|| {
            let param = libc::sched_param { sched_priority: 0 };
            libc::sched_setscheduler(0, libc::SCHED_BATCH, &param);
            Ok(())
        });
    }
}

#[cfg(test)]
mod expand_tests {
    #[test]
    fn given_variables_are_referenced_and_the_rest_left_alone() {
        let given = vec![(
            "STRATUS_DB_MAIN_URL".to_owned(),
            "/data/main.sqlite".to_owned(),
        )];
        assert_eq!(
            super::expand("${STRATUS_DB_MAIN_URL}", &given),
            "/data/main.sqlite"
        );
        assert_eq!(
            super::expand("sqlite://${STRATUS_DB_MAIN_URL}?mode=rw", &given),
            "sqlite:///data/main.sqlite?mode=rw"
        );
        assert_eq!(
            super::expand("${HOME} and ${OPEN", &given),
            "${HOME} and ${OPEN"
        );
        assert_eq!(super::expand("plain", &given), "plain");
    }
}
