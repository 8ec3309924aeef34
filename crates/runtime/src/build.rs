//! Building what a function needs before it runs, as `sam build` and
//! `cargo lambda build` do, into a build directory Stratus owns (never the
//! user's source tree):
//! - Python: `requirements.txt` → `pip install --target BUILD/python`;
//! - Node: `package.json` → `npm install` in `BUILD/node` (found through
//!   `NODE_PATH`, so `require()` sees it; ES module imports of packages do not
//!   honour `NODE_PATH`, a Node limitation);
//! - `provided` with a `Cargo.toml` and no `bootstrap`: `cargo build
//!   --release` into a target directory shared by the project's Rust functions, the binary linked as `BUILD/bootstrap`.
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
    match &f.runtime {
        Language::Python(_) if f.code.join("requirements.txt").is_file() => {
            let req = f.code.join("requirements.txt");
            let target = build_dir.join("python");
            install_once(f, &req, build_dir, "pip", || {
                let mut c = Command::new(interpreter.unwrap_or(Path::new("python3")));
                c.args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
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
        Language::Node(_) if f.code.join("package.json").is_file() => {
            let node_dir = build_dir.join("node");
            let manifest = f.code.join("package.json");
            std::fs::create_dir_all(&node_dir).map_err(|e| e.to_string())?;
            for file in ["package.json", "package-lock.json"] {
                let src = f.code.join(file);
                if src.is_file() {
                    std::fs::copy(&src, node_dir.join(file)).map_err(|e| e.to_string())?;
                }
            }
            install_once(f, &manifest, build_dir, "npm", || {
                let mut c = Command::new("npm");
                c.args(["install", "--omit=dev", "--no-audit", "--no-fund"])
                    .current_dir(&node_dir);
                c
            })
            .await
        }
        Language::Provided(_)
            if !f.code.join("bootstrap").is_file() && f.code.join("Cargo.toml").is_file() =>
        {
            cargo_build(f, build_dir).await
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
    let mut c = cmd();
    let status = c
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .await
        .map_err(|e| format!("function {:?}: cannot run {tool}: {e}", f.name))?;
    if !status.success() {
        return Err(format!(
            "function {:?}: installing {} failed ({status})",
            f.name,
            manifest.display()
        ));
    }
    std::fs::write(&stamp, want).map_err(|e| e.to_string())?;
    tracing::info!(function = %f.name, "dependencies installed");
    Ok(())
}

async fn cargo_build(f: &Function, build_dir: &Path) -> Result<(), String> {
    // One target directory for all of a project's Rust functions, so their
    // dependencies are compiled once.
    let target = build_dir.parent().unwrap_or(build_dir).join("cargo-target");
    tracing::info!(function = %f.name, "building {} (cargo build --release)…", f.code.display());
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
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
        .output()
        .await
        .map_err(|e| format!("function {:?}: cannot run cargo: {e}", f.name))?;
    if !out.status.success() {
        return Err(format!(
            "function {:?}: cargo build failed ({})",
            f.name, out.status
        ));
    }
    // The executable the package builds, from cargo's own report.
    let exe: Option<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact")
        .filter_map(|v| v["executable"].as_str().map(PathBuf::from))
        .next_back();
    let exe =
        exe.ok_or_else(|| format!("function {:?}: the Cargo package builds no binary", f.name))?;
    let bootstrap = build_dir.join("bootstrap");
    let _ = std::fs::remove_file(&bootstrap);
    std::fs::create_dir_all(build_dir)
        .and_then(|()| std::os::unix::fs::symlink(&exe, &bootstrap))
        .map_err(|e| {
            format!(
                "function {:?}: cannot link {}: {e}",
                f.name,
                bootstrap.display()
            )
        })?;
    tracing::info!(function = %f.name, "built {}", exe.display());
    Ok(())
}

/// FNV-1a: a stable fingerprint of a dependency file (not security).
fn fnv64(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
