//! SAM and CloudFormation templates, a second front-end to the config
//! pipeline (beside `stratus.toml`): what a `template.yaml` says, resolved
//! as CloudFormation resolves it, so that its resources can become the
//! same immutable `App` a `stratus.toml` becomes.
//!
//! This is the template language, on its own:
//! - [`node`]: the document as a tree of values that keep their line and
//!   column (YAML with CloudFormation's short tags, or JSON);
//! - [`stack`]: `Parameters` (defaults, `AllowedValues`, overrides as
//!   `--parameter-overrides Key=Value`), pseudo parameters, `Mappings`,
//!   `Conditions`, and the intrinsic functions (`Ref`, `Fn::GetAtt`,
//!   `Fn::Sub`, `Fn::Join`, `Fn::Select`, `Fn::Split`, `Fn::If`, the
//!   condition functions, `Fn::FindInMap`, `Fn::Base64`, `Fn::GetAZs`),
//!   with what a resource's `Ref` and `GetAtt` give asked of the caller
//!   ([`stack::Resources`]), since that depends on the resource types.
//!
//! - [`sam`]: the resources Stratus serves so far (SAM functions with
//!   `Api`/`HttpApi` events and SAM APIs), written as the `stratus.toml`
//!   they amount to, so the config crate's checks and model serve both
//!   front-ends; every other resource is listed as not run.
//!
//! - `cfn`, `v2`, `openapi` and `settings`: plain CloudFormation REST and
//!   ApiGatewayV2 APIs, OpenAPI definitions, stage settings, written the
//!   same way.
//!
//! It never reads files or the environment: the caller hands it the text,
//! the overrides, and the files the template names ([`local_files`]).

mod cdn;
mod cfn;
pub mod node;
mod openapi;
pub mod sam;
mod settings;
pub mod stack;
mod v2;

pub use node::{parse, Node, Value};
pub use sam::Project;
pub use stack::{Inputs, Resources, Stack};

/// A template's text as a project: parsed, its transform checked, its
/// parameters and conditions resolved for `inputs`, its resources turned
/// into the project file they amount to.
pub fn project(text: &str, inputs: &Inputs) -> Result<Project, Vec<Error>> {
    let template = parse(text).map_err(|e| vec![e])?;
    if let Some(t) = template.get("Transform") {
        let names: Vec<&Node> = match &t.value {
            Value::List(l) => l.iter().collect(),
            _ => vec![t],
        };
        for n in names {
            match n.as_str() {
                Some(sam::SAM_TRANSFORM) => {}
                Some(other) => {
                    return Err(vec![n.error(
                        "Transform",
                        format!("the transform {other:?} is a macro, which cannot run locally (only {} is applied)", sam::SAM_TRANSFORM),
                    )])
                }
                None => return Err(vec![n.error("Transform", "Transform names a transform")]),
            }
        }
    }
    if template.get("Resources").and_then(Node::as_map).is_none() {
        return Err(vec![template.error(
            "Resources",
            "a template needs Resources (a mapping of logical ids to resources)",
        )]);
    }
    let stack = Stack::new(&template, inputs)?;
    sam::project(&template, &stack)
}

/// Writes an OpenAPI 3 / Swagger 2 document (YAML or JSON text) with API
/// Gateway's extensions into an API's project table (`[apis.NAME]`, an
/// HTTP API's when `http`), as a template's `DefinitionBody` is: the
/// routes, authorizers, models, validators, gateway responses and settings
/// it declares, where the table does not name them already. For
/// `[apis.NAME] openapi = "file"` in a `stratus.toml`.
pub fn apply_openapi(api: &mut toml::Table, text: &str, http: bool) -> Result<(), Error> {
    let doc = parse(text)?;
    openapi::apply(api, &doc, http, "")
}

/// The local files a template names, as it spells their paths: a SAM
/// API's `DefinitionUri` and an `AWS::Include`'s `Location` (literal
/// strings that are not `s3://` locations). The caller reads them (relative
/// to the template) into [`Inputs::files`].
pub fn local_files(text: &str) -> Vec<String> {
    fn walk(n: &Node, out: &mut Vec<String>) {
        match &n.value {
            Value::Map(m) => {
                for (k, v) in m {
                    let named = match k.as_str() {
                        "DefinitionUri" => v.as_str(),
                        "Fn::Transform"
                            if v.get("Name").and_then(Node::as_str) == Some("AWS::Include") =>
                        {
                            v.get("Parameters")
                                .and_then(|p| p.get("Location"))
                                .and_then(Node::as_str)
                        }
                        _ => None,
                    };
                    if let Some(path) = named.filter(|p| !p.starts_with("s3://")) {
                        out.push(path.to_owned());
                    }
                    walk(v, out);
                }
            }
            Value::List(l) => l.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(t) = parse(text) {
        walk(&t, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

/// A template mistake: where it is and what is wrong. `path` names the
/// place the way CloudFormation's console does (`Resources.Fn.Properties`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// 1-based.
    pub line: usize,
    /// 1-based.
    pub column: usize,
    pub path: String,
    pub message: String,
}

impl Error {
    /// As `stratus.toml` mistakes are shown: `file:line:col: error: path: message`.
    pub fn diagnostic(&self, file: &std::path::Path) -> stratus_config::Diagnostic {
        stratus_config::Diagnostic {
            file: file.to_path_buf(),
            line: self.line,
            column: self.column,
            key: self.path.clone(),
            message: self.message.clone(),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: ", self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for Error {}
