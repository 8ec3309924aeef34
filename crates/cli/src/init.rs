//! `stratus init DIR`: a starter project that `stratus serve` runs as is.

use std::path::Path;

use anyhow::{bail, Context as _};

/// The starter's files: (path relative to DIR, contents).
const FILES: &[(&str, &str)] = &[
    (
        "stratus.toml",
        include_str!("../templates/starter/stratus.toml"),
    ),
    ("README.md", include_str!("../templates/starter/README.md")),
];

pub(crate) fn write(dir: &Path) -> anyhow::Result<()> {
    let project = dir.join(stratus_config::FILE_NAME);
    if project.exists() {
        bail!("{} already exists; not overwriting it", project.display());
    }
    for (rel, text) in FILES {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("created a Stratus project in {}", dir.display());
    println!("next: stratus serve {}", dir.display());
    Ok(())
}
