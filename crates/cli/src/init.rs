//! `stratus init DIR [--template T]`: a starter project that `stratus serve`
//! runs as is, one template per language.

use std::path::Path;

use anyhow::{bail, Context as _};
use clap::ValueEnum;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum Template {
    /// A Python function behind an HTTP API route.
    Python,
    /// A Node.js function behind an HTTP API route.
    Node,
    /// A Rust function (lambda_http), built by Stratus with cargo.
    Rust,
    /// A WebSocket chat: a Python backend and a browser page.
    Websocket,
    /// Mock and proxy routes only, no function.
    Mock,
    /// The support portal (examples/portal): a site, REST, HTTP and
    /// WebSocket APIs, Python and Node functions, JWT sign-in, an API key,
    /// a database, presigned uploads.
    Portal,
}

type Files = &'static [(&'static str, &'static str)];

/// The example portal's files, the very ones under examples/portal.
macro_rules! example {
    ($($file:literal),+ $(,)?) => {
        &[$(($file, include_str!(concat!("../../../examples/portal/", $file)))),+]
    };
}

macro_rules! template {
    ($dir:literal: $($file:literal),+ $(,)?) => {
        &[$(($file, include_str!(concat!("../templates/", $dir, "/", $file)))),+]
    };
}

impl Template {
    fn files(self) -> Files {
        match self {
            Template::Python => {
                template!("python": "stratus.toml", "README.md", "functions/hello/app.py")
            }
            Template::Node => {
                template!("node": "stratus.toml", "README.md", "functions/hello/index.mjs")
            }
            Template::Rust => {
                template!("rust": "stratus.toml", "README.md", "functions/hello/Cargo.toml", "functions/hello/src/main.rs")
            }
            Template::Websocket => &[
                (
                    "stratus.toml",
                    include_str!("../templates/websocket/stratus.toml"),
                ),
                (
                    "README.md",
                    include_str!("../templates/websocket/README.md"),
                ),
                // The same backend and page as the example project's chat.
                (
                    "functions/chat/app.py",
                    include_str!("../../../examples/hello/functions/chat/app.py"),
                ),
                (
                    "functions/chat/requirements.txt",
                    include_str!("../../../examples/hello/functions/chat/requirements.txt"),
                ),
                (
                    "functions/chat-page/app.py",
                    include_str!("../../../examples/hello/functions/chat-page/app.py"),
                ),
                (
                    "functions/chat-page/index.html",
                    include_str!("../../../examples/hello/functions/chat-page/index.html"),
                ),
            ],
            Template::Mock => template!("mock": "stratus.toml", "README.md"),
            Template::Portal => example!(
                "stratus.toml",
                "README.md",
                "seed.sql",
                "migrations/001_schema.sql",
                "keys/jwks.json",
                "functions/auth/index.mjs",
                "functions/auth/demo-private.pem",
                "functions/tickets/app.py",
                "functions/tickets/requirements.txt",
                "functions/notices/app.py",
                "functions/notices/requirements.txt",
                "site/index.html",
                "site/assets/app.js",
                "site/assets/style.css",
            ),
        }
    }

    /// One line for `stratus init --list`: the name and what it holds.
    pub(crate) fn list() -> String {
        let mut out = String::new();
        for t in Template::value_variants() {
            if let Some(v) = t.to_possible_value() {
                let help = v.get_help().map(|h| h.to_string()).unwrap_or_default();
                out.push_str(&format!(
                    "{:<10} {}\n",
                    v.get_name(),
                    help.replace('\n', " ")
                ));
            }
        }
        out
    }
}

pub(crate) fn write(dir: &Path, template: Template) -> anyhow::Result<()> {
    let project = dir.join(stratus_config::FILE_NAME);
    if project.exists() {
        bail!("{} already exists; not overwriting it", project.display());
    }
    for (rel, text) in template.files() {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    // What Stratus keeps beside the project (builds, installed
    // dependencies) and what the functions' languages leave behind.
    let ignore = dir.join(".gitignore");
    let existing = std::fs::read_to_string(&ignore).unwrap_or_default();
    if !existing.lines().any(|l| l.trim() == ".stratus/") {
        let mut text = existing;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(".stratus/\n__pycache__/\nnode_modules/\n");
        std::fs::write(&ignore, text)
            .with_context(|| format!("cannot write {}", ignore.display()))?;
    }
    let name = template
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_owned());
    println!("created a Stratus project ({name}) in {}", dir.display());
    println!("next: stratus serve {}", dir.display());
    Ok(())
}
