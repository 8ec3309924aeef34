//! `stratus.toml` in three steps: parse (serde, `raw`), validate purely
//! collecting every mistake (`validate`), resolve into one immutable `App`
//! (`model`). Nothing after `load` reads the file or the environment.

mod diag;
mod model;
mod raw;
mod validate;

use std::path::{Path, PathBuf};

pub use diag::{Diagnostic, Diagnostics};
pub use model::*;

/// The project file's name.
pub const FILE_NAME: &str = "stratus.toml";

/// Finds the project file: `path` is the file itself or a directory holding it.
pub fn locate(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(FILE_NAME)
    } else {
        path.to_path_buf()
    }
}

/// Loads a project: `path` is `stratus.toml` or the directory holding it.
pub fn load(path: &Path) -> Result<App, Diagnostics> {
    let file = locate(path);
    let text = std::fs::read_to_string(&file).map_err(|e| {
        Diagnostics(vec![Diagnostic {
            file: file.clone(),
            line: 0,
            column: 0,
            key: String::new(),
            message: format!("cannot read project file: {e}"),
        }])
    })?;
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    load_str(&text, &file, &dir)
}

/// Loads a project from text; `file` is used in messages, `project_dir`
/// resolves relative paths.
pub fn load_str(text: &str, file: &Path, project_dir: &Path) -> Result<App, Diagnostics> {
    let src = diag::Source { path: file, text };
    let raw = parse(&src).map_err(|d| Diagnostics(vec![d]))?;
    validate::resolve(raw, file, text, project_dir).map_err(Diagnostics)
}

fn parse(src: &diag::Source<'_>) -> Result<raw::RawConfig, Diagnostic> {
    let de = toml::Deserializer::parse(src.text).map_err(|e| toml_error(src, "", &e))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        // serde_path_to_error knows the key; toml knows where it is.
        let key = e
            .path()
            .iter()
            .map(|seg| seg.to_string())
            .filter(|s| !s.starts_with("$__serde_spanned") && s != "?")
            .collect::<Vec<_>>();
        let key = key.iter().map(String::as_str).collect::<Vec<_>>();
        toml_error(src, &diag::key_path(&key), e.inner())
    })
}

fn toml_error(src: &diag::Source<'_>, key: &str, e: &toml::de::Error) -> Diagnostic {
    let mut message = e.message().trim().to_owned();
    // Serde says "unknown field `x`, expected one of ..." for unknown keys; say "key".
    if let Some(rest) = message.strip_prefix("unknown field") {
        message = format!("unknown key{rest}");
        if let Some(hint) = did_you_mean(&message) {
            message = format!("{message}; did you mean `{hint}`?");
        }
    }
    // Name types as a user writes them, not as Rust spells them.
    message = message.replace("expected i64", "expected an integer");
    // The parser's words for a syntax mistake, said as what the user wrote.
    let line = e.span().map(|s| line_at(src.text, s.start)).unwrap_or("");
    let assignment = line.split_once('=').map(|(k, v)| (k.trim(), v.trim()));
    let mut key = key.to_owned();
    if message.starts_with("duplicate key") {
        if let Some((k, _)) = assignment {
            message = format!("duplicate key `{k}`: it is set twice in the same table; keep one");
        }
    } else if message.starts_with("invalid float")
        || message.starts_with("invalid integer")
        || message.starts_with("invalid number")
        || message.starts_with("string values must be quoted")
    {
        if let Some((k, v)) = assignment {
            if key.is_empty() {
                key = k.to_owned();
            }
            message = format!("a string is expected: quote the value ({k} = \"{v}\")");
        }
    }
    src.at(e.span(), key, message)
}

/// The line of `text` that holds byte `offset`.
fn line_at(text: &str, offset: usize) -> &str {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    &text[start..end]
}

/// For "unknown key `timout`, expected one of `timeout`, ...": the known
/// key closest to the one written, when it is close enough to be a typo.
fn did_you_mean(message: &str) -> Option<String> {
    let mut names = message.split('`').skip(1).step_by(2);
    let written = names.next()?;
    names
        .map(|known| (strsim::jaro_winkler(written, known), known))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, known)| known.to_owned())
}

#[cfg(test)]
mod tests;
