//! `stratus.toml` in three steps: parse (serde, `raw`), validate purely
//! collecting every mistake (`validate`), resolve into one immutable `App`
//! (`model`). Nothing after `load` reads the file or the environment.

mod diag;
mod model;
mod raw;
mod schedule;
mod validate;

use std::path::{Path, PathBuf};

pub use diag::{Diagnostic, Diagnostics};
pub use model::*;
pub use schedule::{parse_expression, ScheduleExpr};
/// A resource policy document, checked (for templates and tests).
pub use validate::resource_policy as parse_resource_policy;

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
    let raw = parse(&src).map_err(Diagnostics)?;
    validate::resolve(raw, file, text, project_dir).map_err(Diagnostics)
}

/// How many mistakes one parse reports at most.
const MAX_PARSE_ERRORS: usize = 20;

/// Parses the file, reporting every mistake the parser can reach, not
/// only the first: the parser (toml, then serde) stops at the first one,
/// so its line is blanked (spaces: every later offset stays right) and the
/// text parsed again. A mistake found after a broken table header may be
/// a consequence of it, so past one only syntax errors are reported; a
/// "missing key" that blanking a line caused is not the user's.
fn parse(src: &diag::Source<'_>) -> Result<raw::RawConfig, Vec<Diagnostic>> {
    let mut text = src.text.to_owned();
    let mut errors = Vec::new();
    let mut blanked: Vec<String> = Vec::new();
    let mut structure_broken = false;
    for _ in 0..MAX_PARSE_ERRORS {
        let attempt = diag::Source {
            path: src.path,
            text: &text,
        };
        let (diagnostic, span, syntax) = match parse_once(&attempt) {
            Ok(raw) if errors.is_empty() => return Ok(raw),
            Ok(_) => break,
            Err(e) => e,
        };
        let caused_by_us = diagnostic
            .message
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next())
            .is_some_and(|k| blanked.iter().any(|b| b == k));
        if caused_by_us {
            break; // cannot go on without the key: what was found stands
        }
        if syntax || !structure_broken {
            errors.push(diagnostic);
        }
        let Some(span) = span else { break };
        let (start, end) = line_bounds(&text, span.start);
        let line = text[start..end].trim_start().to_owned();
        if line.is_empty() || blanking_cannot_help(&line) && !syntax {
            break;
        }
        structure_broken |= line.starts_with('[');
        if let Some((k, _)) = line.split_once('=') {
            blanked.push(k.trim().trim_matches('"').to_owned());
        }
        text.replace_range(start..end, &" ".repeat(end - start));
    }
    errors.sort_by_key(|d| (d.line, d.column));
    Err(errors)
}

/// A line whose blanking would not let the parse go on meaningfully (an
/// array-of-tables header).
fn blanking_cannot_help(line: &str) -> bool {
    line.starts_with("[[")
}

/// One parse: the config, or the first mistake, where it is, and whether
/// it is a syntax error (not a key or a type).
fn parse_once(
    src: &diag::Source<'_>,
) -> Result<raw::RawConfig, (Diagnostic, Option<std::ops::Range<usize>>, bool)> {
    let de = toml::Deserializer::parse(src.text)
        .map_err(|e| (toml_error(src, "", &e), e.span(), true))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        // serde_path_to_error knows the key; toml knows where it is.
        let key = e
            .path()
            .iter()
            .map(|seg| seg.to_string())
            .filter(|s| !s.starts_with("$__serde_spanned") && s != "?")
            .collect::<Vec<_>>();
        let key = key.iter().map(String::as_str).collect::<Vec<_>>();
        (
            toml_error(src, &diag::key_path(&key), e.inner()),
            e.inner().span(),
            false,
        )
    })
}

/// The byte range of the line holding `offset`, without its newline.
fn line_bounds(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    (start, end)
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
                let offset = e.span().map_or(0, |s| s.start);
                key = match table_at(src.text, offset) {
                    Some(table) => format!("{table}.{k}"),
                    None => k.to_owned(),
                };
            }
            message = format!("a string is expected: quote the value ({k} = \"{v}\")");
        }
    }
    src.at(e.span(), key, message)
}

/// The `[table]` whose section holds byte `offset`, if any.
fn table_at(text: &str, offset: usize) -> Option<&str> {
    let (start, _) = line_bounds(text, offset);
    text[..start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .and_then(|l| l.strip_prefix('[')?.split(']').next())
        .map(str::trim)
}

/// The line of `text` that holds byte `offset`.
fn line_at(text: &str, offset: usize) -> &str {
    let (start, end) = line_bounds(text, offset);
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
