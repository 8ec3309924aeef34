//! Velocity (VTL) as API Gateway's mapping templates use it: a parser and
//! an evaluator for the subset its developer guide documents ("Mapping
//! template reference": `$input`, `$util`, `$context`, `$stageVariables`,
//! `#set`, `#if`/`#elseif`/`#else`, `#foreach`, method calls on strings,
//! lists and maps, `$!{}` quiet references).
//!
//! Written here because no maintained Rust crate implements Velocity: the
//! language is Apache Velocity 1.7's (Java), and API Gateway's dialect is
//! small. Semantics kept from Velocity 1.7 because templates written for
//! AWS rely on them: only `null` and `false` are false; `#set` to a null
//! leaves the variable as it was; a null reference writes its own source
//! text unless quiet (`$!x`); maps iterate their values. Whitespace is
//! Velocity 2's "lines" mode: a line holding only a directive writes
//! nothing. JSONPath (`$input.path`, `$input.json`) is `serde_json_path`'s
//! (RFC 9535).
//!
//! Bounded: 1,000 iterations per `#foreach` (API Gateway's limit), a cap
//! on the work and the output of one rendering, and on nesting at parse.

mod eval;
mod parse;
mod value;

pub use value::Value;

/// A template that does not parse: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct Error {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// A parsed template, ready to render many times.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<parse::Node>,
}

/// What `$input` reads: the body (the request's, or the integration
/// response's for a response template) and the request's parameters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Input<'a> {
    pub body: &'a str,
    pub path: &'a [(String, String)],
    pub querystring: &'a [(String, String)],
    pub header: &'a [(String, String)],
}

/// The variables a rendering starts with (`context`, `stageVariables`,
/// ...), and those it set, after it.
pub type Vars = std::collections::HashMap<String, Value>;

impl Template {
    pub fn parse(src: &str) -> Result<Template, Error> {
        Ok(Template {
            nodes: parse::Parser::new(src).template()?,
        })
    }

    /// Renders with `$input` reading `input`, and `vars` (which holds
    /// what `#set` assigned afterwards, `$context.responseOverride`
    /// included). An error (a JSONPath that does not parse, a limit) is
    /// API Gateway's 500.
    pub fn render(&self, input: &Input<'_>, vars: &mut Vars) -> Result<String, String> {
        eval::render(&self.nodes, input, vars)
    }
}

/// What a JSONPath selects in a JSON text (a text that is not JSON is a
/// JSON string of itself): one value for a path naming one place, else a
/// list. For mappings outside templates (`integration.response.body.x`).
pub fn json_path(text: &str, path: &str) -> Result<Value, String> {
    let json =
        serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_owned()));
    eval::select_in(&json, path)
}

#[cfg(test)]
mod tests;
