//! Building what a function needs before it runs, as `sam build` and
//! `cargo lambda build` do, into a build directory Stratus owns (never the
//! user's source tree):
//! - Python: `requirements.txt` → `pip install --target BUILD/python`;
//! - Node: `package.json` → `npm install` in `BUILD/node` (found through
//!   `NODE_PATH`, so `require()` sees it; ES module imports of packages do not
//!   honour `NODE_PATH`, a Node limitation);
//! - a layer with either file at its root: the same, into
//!   `BUILD/layer-N/python` or `BUILD/layer-N/nodejs/node_modules`;
//! - Node with a `bundle`: esbuild (on `PATH`, else installed once with npm
//!   into the user's cache) bundles the entry points into `BUILD/bundle`,
//!   which the function runs from;
//! - `provided` with a `Cargo.toml` and no `bootstrap`: `cargo build
//!   --release` into a target directory shared by every project of the user
//!   (`cargo_target_dir`), the binary copied to `BUILD/bootstrap`.
//!
//! Long steps say every few seconds how long they have run and how far
//! they got; pip's and npm's output is shown only when they fail.
//!
//! Python and Node installs are redone only when the dependency file
//! changes (a stamp holds its hash); cargo decides staleness itself.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use stratus_config::{Function, Language};
use tokio::process::Command;

pub(crate) async fn prepare(
    f: &Function,
    build_dir: &Path,
    interpreter: Option<&Path>,
) -> Result<(), String> {
    // A layer with a requirements.txt or a package.json at its root is
    // built as `sam build` builds one (`BuildMethod: python3.x` or
    // `nodejs`), into `BUILD/layer-N/python` or `BUILD/layer-N/nodejs`.
    for (i, layer) in f.layers.iter().enumerate() {
        let dir = layer_build_dir(build_dir, i);
        install(
            f,
            layer,
            &dir,
            &dir.join("python"),
            &dir.join("nodejs"),
            interpreter,
        )
        .await?;
    }
    if !f.layers.is_empty() {
        merge_layers(f, &opt_dir(build_dir))
            .map_err(|e| format!("function {:?}: its layers: {e}", f.name))?;
    }
    let node_dir = build_dir.join("node");
    install(
        f,
        &f.code,
        build_dir,
        &build_dir.join("python"),
        &node_dir,
        interpreter,
    )
    .await?;
    if let Some(b) = &f.bundle {
        bundle(f, b, build_dir).await?;
    }
    match &f.runtime {
        Language::Provided(_)
            if !f.code.join("bootstrap").is_file() && f.code.join("Cargo.toml").is_file() =>
        {
            cargo_build(f, build_dir).await
        }
        _ => Ok(()),
    }
}

/// The esbuild release Stratus installs when none is on `PATH`.
const ESBUILD_VERSION: &str = "0.25.12";

/// Where a bundled function's code is: what it runs from.
pub(crate) fn bundle_dir(build_dir: &Path) -> PathBuf {
    build_dir.join("bundle")
}

/// The user's cache folder for what Stratus builds or installs once for
/// every project (`$XDG_CACHE_HOME/stratus`, else `~/.cache/stratus`).
fn user_cache() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|c| c.join("stratus"))
}

/// `esbuild` on `PATH`, else the one installed once (npm) into the user's
/// cache (the project's data directory without a home).
async fn esbuild(f: &Function, build_dir: &Path) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(found) = std::env::split_paths(&path)
            .map(|d| d.join("esbuild"))
            .find(|p| p.is_file())
        {
            return Ok(found);
        }
    }
    let root = user_cache()
        .unwrap_or_else(|| build_dir.parent().unwrap_or(build_dir).to_path_buf())
        .join(format!("esbuild-{ESBUILD_VERSION}"));
    let bin = root.join("node_modules/.bin/esbuild");
    if bin.is_file() {
        return Ok(bin);
    }
    std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    tracing::info!(function = %f.name, "installing esbuild {ESBUILD_VERSION} into {} (npm)…", root.display());
    let run = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(&root)
        .arg(format!("esbuild@{ESBUILD_VERSION}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output();
    let out = with_progress(&f.name, "installing esbuild (npm)", run, String::new)
        .await
        .map_err(|e| {
            format!(
                "function {:?}: cannot run npm to install esbuild: {e}",
                f.name
            )
        })?;
    if !out.status.success() || !bin.is_file() {
        return Err(format!(
            "function {:?}: installing esbuild failed ({}); install it on PATH (npm install -g esbuild):\n{}",
            f.name,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(bin)
}

/// Bundles the function's entry points with esbuild into `BUILD/bundle`,
/// as `sam build` does for `BuildMethod: esbuild`: imports resolved from
/// the code's own `node_modules` and the installed `package.json`
/// dependencies (`NODE_PATH`); done at every start (esbuild takes
/// milliseconds), so the bundle is never stale.
async fn bundle(f: &Function, b: &stratus_config::Bundle, build_dir: &Path) -> Result<(), String> {
    let bin = esbuild(f, build_dir).await?;
    let out = bundle_dir(build_dir);
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut c = Command::new(&bin);
    c.args(&b.entry_points)
        .arg("--bundle")
        .arg("--platform=node")
        .arg(format!("--target={}", b.target))
        .arg(format!("--format={}", if b.esm { "esm" } else { "cjs" }))
        .arg(format!("--outdir={}", out.display()))
        .arg(format!("--outbase={}", f.code.display()))
        .arg("--log-level=warning")
        .current_dir(&f.code)
        .env("NODE_PATH", build_dir.join("node").join("node_modules"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if b.esm {
        c.arg("--out-extension:.js=.mjs");
    }
    if b.minify {
        c.arg("--minify");
    }
    if b.sourcemap {
        c.arg("--sourcemap");
    }
    for e in &b.external {
        c.arg(format!("--external:{e}"));
    }
    let done = c
        .output()
        .await
        .map_err(|e| format!("function {:?}: cannot run {}: {e}", f.name, bin.display()))?;
    if !done.status.success() {
        return Err(format!(
            "function {:?}: bundling {} failed:\n{}",
            f.name,
            b.entry_points.join(", "),
            String::from_utf8_lossy(&done.stderr)
        ));
    }
    Ok(())
}

/// Where a function's layers are merged as Lambda's `/opt` is (symbolic
/// links to their files), for code that reads paths under it:
/// `STRATUS_OPT` in its environment.
pub(crate) fn opt_dir(build_dir: &Path) -> PathBuf {
    build_dir.join("opt")
}

/// Links every file of the layers into `opt`, a later layer's over an
/// earlier one's, as Lambda extracts them.
fn merge_layers(f: &Function, opt: &Path) -> std::io::Result<()> {
    let _ = std::fs::remove_dir_all(opt);
    std::fs::create_dir_all(opt)?;
    for layer in &f.layers {
        let mut stack = vec![layer.clone()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir)? {
                let e = e?;
                let path = e.path();
                let rel = path.strip_prefix(layer).map_err(std::io::Error::other)?;
                let to = opt.join(rel);
                if e.file_type()?.is_dir() {
                    std::fs::create_dir_all(&to)?;
                    stack.push(path);
                } else {
                    let _ = std::fs::remove_file(&to);
                    std::os::unix::fs::symlink(&path, &to)?;
                }
            }
        }
    }
    Ok(())
}

/// Where layer `i` of a function is built.
pub(crate) fn layer_build_dir(build_dir: &Path, i: usize) -> PathBuf {
    build_dir.join(format!("layer-{i}"))
}

/// The dependencies `src` lists for the function's language: a
/// `requirements.txt` into `python_target`, a `package.json` into
/// `node_dir` (its `node_modules`).
async fn install(
    f: &Function,
    src: &Path,
    build_dir: &Path,
    python_target: &Path,
    node_dir: &Path,
    interpreter: Option<&Path>,
) -> Result<(), String> {
    match &f.runtime {
        Language::Python(_) if src.join("requirements.txt").is_file() => {
            let req = src.join("requirements.txt");
            let target = python_target.to_path_buf();
            install_once(f, &req, build_dir, "pip", || {
                let mut c = Command::new(interpreter.unwrap_or(Path::new("python3")));
                // Into the function's own target, quietly: no resolver
                // warnings about unrelated packages of the interpreter's
                // site-packages (`--no-warn-conflicts`), no advice about
                // running as root. (Not `--isolated`: pip's configuration,
                // such as an index mirror or a certificate, must apply.)
                c.args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-warn-conflicts",
                    "--root-user-action=ignore",
                    "--no-input",
                    "--upgrade",
                    "-r",
                ])
                .arg(&req)
                .arg("--target")
                .arg(&target);
                c
            })
            .await
        }
        Language::Node(_) if src.join("package.json").is_file() => {
            let manifest = src.join("package.json");
            std::fs::create_dir_all(node_dir).map_err(|e| e.to_string())?;
            for file in ["package.json", "package-lock.json"] {
                let from = src.join(file);
                if from.is_file() {
                    std::fs::copy(&from, node_dir.join(file)).map_err(|e| e.to_string())?;
                }
            }
            install_once(f, &manifest, build_dir, "npm", || {
                let mut c = Command::new("npm");
                c.args(["install", "--omit=dev", "--no-audit", "--no-fund"])
                    .current_dir(node_dir);
                c
            })
            .await
        }
        _ => Ok(()),
    }
}

/// Runs `cmd` unless the stamp says `manifest` has not changed since.
async fn install_once(
    f: &Function,
    manifest: &Path,
    build_dir: &Path,
    tool: &str,
    cmd: impl FnOnce() -> Command,
) -> Result<(), String> {
    let text = std::fs::read(manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
    let stamp = build_dir.join(format!(".{tool}-stamp"));
    let want = format!("{:016x}", fnv64(&text));
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == want) {
        return Ok(());
    }
    std::fs::create_dir_all(build_dir).map_err(|e| e.to_string())?;
    tracing::info!(function = %f.name, "installing dependencies from {} ({tool})…", manifest.display());
    // The tool's output is kept, and shown only when it fails: a good
    // install prints nothing alarming.
    let mut c = cmd();
    let run = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output();
    let out = with_progress(
        &f.name,
        &format!("installing dependencies ({tool})"),
        run,
        String::new,
    )
    .await
    .map_err(|e| format!("function {:?}: cannot run {tool}: {e}", f.name))?;
    if !out.status.success() {
        return Err(format!(
            "function {:?}: installing {} failed ({}):\n{}{}",
            f.name,
            manifest.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::fs::write(&stamp, want).map_err(|e| e.to_string())?;
    tracing::info!(function = %f.name, "dependencies installed");
    Ok(())
}

/// Where Rust functions are compiled: one Cargo target directory for every
/// project of this user (`$XDG_CACHE_HOME/stratus/cargo-target`, else
/// `~/.cache/stratus/cargo-target`), so `lambda_http` and its dependencies
/// are compiled once, not once per project; cargo locks it while it builds.
/// Without a home directory, the project's `data_dir/cargo-target`.
/// `STRATUS_CARGO_TARGET_DIR` chooses another.
fn cargo_target_dir(build_dir: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os("STRATUS_CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    match user_cache() {
        Some(c) => c.join("cargo-target"),
        None => build_dir.parent().unwrap_or(build_dir).join("cargo-target"),
    }
}

async fn cargo_build(f: &Function, build_dir: &Path) -> Result<(), String> {
    use tokio::io::AsyncBufReadExt;
    let target = cargo_target_dir(build_dir);
    tracing::info!(
        function = %f.name,
        "building {} (cargo build --release, in {})…",
        f.code.display(),
        target.display()
    );
    let mut child = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(f.code.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("function {:?}: cannot run cargo: {e}", f.name))?;
    // Cargo reports each compiled crate on stdout: counted, and the count
    // is the progress shown while it builds.
    let stdout = child.stdout.take().expect("piped stdout");
    let compiled = std::sync::atomic::AtomicUsize::new(0);
    let mut exe: Option<PathBuf> = None;
    let read = async {
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if v["reason"] == "compiler-artifact" {
                compiled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if let Some(e) = v["executable"].as_str() {
                    exe = Some(PathBuf::from(e));
                }
            }
        }
        child.wait().await
    };
    let status = with_progress(&f.name, "building", read, || {
        format!(
            "{} crates compiled",
            compiled.load(std::sync::atomic::Ordering::Relaxed)
        )
    })
    .await
    .map_err(|e| format!("function {:?}: cargo: {e}", f.name))?;
    if !status.success() {
        return Err(format!(
            "function {:?}: cargo build failed ({status})",
            f.name
        ));
    }
    let exe =
        exe.ok_or_else(|| format!("function {:?}: the Cargo package builds no binary", f.name))?;
    // A copy, not a link: another project's build in the shared target
    // directory may replace a binary of the same name.
    let bootstrap = build_dir.join("bootstrap");
    let _ = std::fs::remove_file(&bootstrap);
    std::fs::create_dir_all(build_dir)
        .and_then(|()| std::fs::copy(&exe, &bootstrap).map(|_| ()))
        .map_err(|e| {
            format!(
                "function {:?}: cannot copy {} to {}: {e}",
                f.name,
                exe.display(),
                bootstrap.display()
            )
        })?;
    tracing::info!(function = %f.name, "built {}", exe.display());
    Ok(())
}

/// Runs `work`, saying every few seconds that it still runs, for how long,
/// and how far it got (`progress`), so that a long first start is never
/// silent for more than a few seconds.
async fn with_progress<T>(
    function: &str,
    what: &str,
    work: impl std::future::Future<Output = T>,
    progress: impl Fn() -> String,
) -> T {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(5);
    let started = tokio::time::Instant::now();
    tokio::pin!(work);
    let mut tick = tokio::time::interval_at(started + EVERY, EVERY);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = tick.tick() => {
                let so_far = progress();
                let so_far = if so_far.is_empty() { String::new() } else { format!(", {so_far}") };
                tracing::info!(function = %function, "{what}: {} s{so_far}…", started.elapsed().as_secs());
            }
        }
    }
}

/// FNV-1a: a stable fingerprint of a dependency file (not security).
fn fnv64(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_long_step_reports_its_progress_every_five_seconds() {
        let asked = AtomicUsize::new(0);
        let out = with_progress(
            "f",
            "building",
            async {
                tokio::time::sleep(Duration::from_secs(12)).await;
                7
            },
            || {
                asked.fetch_add(1, Ordering::SeqCst);
                String::new()
            },
        )
        .await;
        assert_eq!(out, 7);
        assert_eq!(asked.load(Ordering::SeqCst), 2, "at 5 s and 10 s");
    }
}
