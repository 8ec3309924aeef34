//! `stratus dev`: `serve`, plus a watch on the project (notify) that asks
//! the server to reload after each burst of changes. The server decides
//! what changed (see `stratus_server::Server::run_reloading`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Changes this close together are one reload (an editor's save is often
/// several events: a temporary file, a rename, a chmod).
const QUIET: Duration = Duration::from_millis(300);

/// Whether a change to `path` is one to reload for: not the data
/// directory, build outputs, caches, or editors' temporary files.
fn relevant(path: &Path, data_dir: &Path) -> bool {
    if path.starts_with(data_dir) {
        return false;
    }
    let skip_dir = path.components().any(|c| {
        matches!(
            c.as_os_str().to_str(),
            Some("target" | "__pycache__" | "node_modules" | ".git" | ".stratus")
        )
    });
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let temporary = name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".pyc")
        || name.starts_with(".#")
        || name == "4913";
    !skip_dir && !temporary
}

/// Watches `dir`; sends on `reload` after each burst of relevant changes.
/// The watcher stops when the returned value is dropped.
pub(crate) fn watch(
    dir: &Path,
    data_dir: PathBuf,
    reload: mpsc::Sender<()>,
) -> anyhow::Result<notify::RecommendedWatcher> {
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        if matches!(event.kind, EventKind::Access(_) | EventKind::Other) {
            return;
        }
        for p in event.paths {
            if relevant(&p, &data_dir) {
                let _ = tx.send(p);
            }
        }
    })?;
    watcher.watch(dir, RecursiveMode::Recursive)?;
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut changed = vec![first];
            // Wait for the burst to end.
            while let Ok(Some(p)) = tokio::time::timeout(QUIET, rx.recv()).await {
                if !changed.contains(&p) {
                    changed.push(p);
                }
            }
            let shown: Vec<String> = changed
                .iter()
                .take(3)
                .map(|p| p.display().to_string())
                .collect();
            let more = changed.len().saturating_sub(3);
            tracing::info!(
                "changed: {}{}; reloading",
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            );
            if reload.send(()).await.is_err() {
                return;
            }
        }
    });
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_outputs_caches_and_editor_files_are_not_changes() {
        let data = Path::new("/p/.stratus");
        assert!(relevant(Path::new("/p/stratus.toml"), data));
        assert!(relevant(Path::new("/p/fn/app.py"), data));
        assert!(!relevant(Path::new("/p/.stratus/build/x"), data));
        assert!(!relevant(Path::new("/p/rust/target/release/x"), data));
        assert!(!relevant(
            Path::new("/p/fn/__pycache__/app.cpython-311.pyc"),
            data
        ));
        assert!(!relevant(Path::new("/p/fn/.app.py.swp"), data));
        assert!(!relevant(Path::new("/p/fn/app.py~"), data));
        assert!(!relevant(Path::new("/p/web/node_modules/x/index.js"), data));
    }
}
