//! The SAM transform's first part: a template's `AWS::Serverless::Function`
//! resources, their `Api` and `HttpApi` events, the implicit APIs SAM
//! makes for them (`ServerlessRestApi` with its `Prod` stage,
//! `ServerlessHttpApi` with `$default`) and explicit
//! `AWS::Serverless::Api`/`HttpApi` resources, written as the project
//! file they amount to (a `toml` table), which the config crate then
//! checks and resolves like any `stratus.toml`. `Globals.Function` and
//! resource `Condition`s apply as in SAM.
//!
//! Every other resource type is listed in [`Project::not_run`], never an
//! error: what Stratus does not run must not stop what it does.

use std::collections::{BTreeMap, BTreeSet};

use crate::node::{Node, Value};
use crate::stack::{Resources, Stack, ACCOUNT_ID};
use crate::Error;

/// Where inline code is written, from the template's folder (in the
/// default data directory).
pub const INLINE_DIR: &str = ".stratus/inline";

/// The transform this module applies.
pub const SAM_TRANSFORM: &str = "AWS::Serverless-2016-10-31";

/// What a template amounts to.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project file, as `stratus.toml` text.
    pub toml: String,
    /// Resources that are not run, as (logical id, type).
    pub not_run: Vec<(String, String)>,
    /// The template's `Outputs`, evaluated.
    pub outputs: Vec<Output>,
    /// Every resource of the stack: (logical id, type, physical id), what
    /// CloudFormation's ListStackResources gives.
    pub resources: Vec<(String, String, String)>,
    /// The template's `Description`.
    pub description: Option<String>,
    /// The stack's name (`AWS::StackName`).
    pub stack_name: String,
    /// Inline code (`InlineCode`, `Code.ZipFile`) to write before the
    /// project is loaded: (path from the template's folder, text).
    pub inline: Vec<(String, String)>,
    /// Where each part of the project file comes from in the template:
    /// (key prefix such as `functions.NAME`, the resource's path, line,
    /// column), so a mistake the project's checks find names the template.
    pub places: Vec<(String, String, usize, usize)>,
    /// The template's APIs: their ids (what their AWS URLs carry), and
    /// whether each is served only at its own host.
    pub api_ids: Vec<LocalApi>,
    /// The domain names of the template's CloudFront distributions
    /// (`d….cloudfront.net`), served at the listener's root.
    pub cdn_domains: Vec<String>,
    /// The template's function URLs: (url id, function), each served at
    /// `/lambda-url/FUNCTION/` of the listener.
    pub function_urls: Vec<(String, String)>,
}

impl Project {
    /// `value` with every AWS URL of the template's resources (its APIs'
    /// execute-api URLs, its function URLs, its CloudFront domains) made
    /// the local URL on `listener` that serves it.
    pub fn localize(&self, value: &str, listener: std::net::SocketAddr) -> String {
        let v = localize(value, &self.api_ids, listener);
        let v = localize_urls(&v, &self.function_urls, listener);
        localize_cdn(&v, &self.cdn_domains, listener)
    }
}

/// One of the template's `Outputs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub name: String,
    pub value: String,
    pub description: Option<String>,
}

/// `value` with each `https://DOMAIN` of one of the template's CloudFront
/// distributions made the listener's URL, which serves its site.
fn localize_cdn(value: &str, domains: &[String], listener: std::net::SocketAddr) -> String {
    let mut out = value.to_owned();
    for d in domains {
        out = out.replace(&format!("https://{d}"), &format!("http://{listener}"));
    }
    out
}

/// `value` with each AWS URL of one of the template's function URLs
/// (`https://ID.lambda-url.REGION.on.aws/`) made the listener's URL that
/// serves it (`http://127.0.0.1:8080/lambda-url/FUNCTION/`).
fn localize_urls(value: &str, urls: &[(String, String)], listener: std::net::SocketAddr) -> String {
    let mut out = value.to_owned();
    for (id, function) in urls {
        let prefix = format!("https://{id}.lambda-url.");
        while let Some(start) = out.find(&prefix) {
            let rest = &out[start + prefix.len()..];
            let Some(end) = rest.find(".on.aws") else {
                break;
            };
            let mut end = start + prefix.len() + end + ".on.aws".len();
            if out[end..].starts_with('/') {
                end += 1;
            }
            let local = format!(
                "http://{listener}{}/",
                stratus_config::function_url_mount(function)
            );
            out.replace_range(start..end, &local);
        }
    }
    out
}

/// A CloudFront distribution's domain name here, stable per logical id.
fn cdn_domain(id: &str) -> String {
    format!("d{}.cloudfront.net", &api_id(id)[..9])
}

/// One of the template's APIs, as its URLs are made local.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalApi {
    pub id: String,
    /// Served only at its own host (another API has its path).
    pub host_only: bool,
}

/// `value` with each AWS URL of one of `apis`
/// (`https://ID.execute-api.REGION.amazonaws.com`) made the local URL that
/// serves the same paths: the listener's (`http://127.0.0.1:8080`), or the
/// API's own host on it (`http://ID.execute-api.localhost:8080`) for an API
/// served only there.
pub fn localize(value: &str, apis: &[LocalApi], listener: std::net::SocketAddr) -> String {
    let mut out = value.to_owned();
    for api in apis {
        let base = if api.host_only {
            format!(
                "http://{}.execute-api.localhost:{}",
                api.id,
                listener.port()
            )
        } else {
            format!("http://{listener}")
        };
        let ws = base.replacen("http://", "ws://", 1);
        for (scheme, local) in [("https", base.as_str()), ("wss", ws.as_str())] {
            let prefix = format!("{scheme}://{}.execute-api.", api.id);
            while let Some(start) = out.find(&prefix) {
                let rest = &out[start + prefix.len()..];
                let Some(end) = rest.find(".amazonaws.com") else {
                    break;
                };
                let end = start + prefix.len() + end + ".amazonaws.com".len();
                out.replace_range(start..end, local);
            }
        }
    }
    out
}

/// The template's resources, as `Ref` and `Fn::GetAtt` see them.
struct Declared<'a> {
    stack: &'a Stack,
    /// Logical id → (type, function name for functions).
    types: BTreeMap<String, String>,
    names: BTreeMap<String, String>,
}

impl Declared<'_> {
    fn name(&self, id: &str) -> String {
        self.names.get(id).cloned().unwrap_or_else(|| id.to_owned())
    }

    /// `arn:aws:SERVICE:REGION:000000000000:RESOURCE`.
    fn service_arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:aws:{service}:{}:{ACCOUNT_ID}:{resource}",
            self.stack.region()
        )
    }

    fn queue_url(&self, id: &str) -> String {
        format!(
            "https://sqs.{}.amazonaws.com/{ACCOUNT_ID}/{}",
            self.stack.region(),
            self.name(id)
        )
    }

    /// A layer's version ARN (each is version 1 here).
    fn layer_arn(&self, id: &str) -> String {
        self.service_arn("lambda", &format!("layer:{}:1", self.name(id)))
    }

    fn arn(&self, id: &str) -> String {
        self.service_arn("lambda", &format!("function:{}", self.name(id)))
    }
}

pub use stratus_config::api_id;

impl Resources for Declared<'_> {
    fn exists(&self, id: &str) -> bool {
        self.types.contains_key(id)
    }

    fn reference(&self, id: &str) -> Result<Value, String> {
        let ty = self.types.get(id).map_or("", String::as_str);
        Ok(Value::String(match ty {
            "AWS::Serverless::Function"
            | "AWS::Lambda::Function"
            | "AWS::S3::Bucket"
            | "AWS::RDS::DBCluster"
            | "AWS::RDS::DBInstance"
            | "AWS::DynamoDB::Table"
            | "AWS::Serverless::SimpleTable"
            | "AWS::ApiGateway::Stage"
            | "AWS::ApiGatewayV2::Stage" => self.name(id),
            // What AWS gives, so code reading it from its environment starts.
            "AWS::SQS::Queue" => self.queue_url(id),
            "AWS::SNS::Topic" => self.service_arn("sns", &self.name(id)),
            "AWS::Serverless::Api"
            | "AWS::Serverless::HttpApi"
            | "AWS::ApiGateway::RestApi"
            | "AWS::ApiGatewayV2::Api" => api_id(id),
            "AWS::Serverless::LayerVersion" | "AWS::Lambda::LayerVersion" => self.layer_arn(id),
            // Qualified function ARNs (`…:function:NAME:live`, `…:NAME:1`).
            "AWS::Lambda::Alias" | "AWS::Lambda::Version" => self.arn(id),
            "AWS::CloudFront::Distribution" => format!("E{}", api_id(id).to_ascii_uppercase()),
            _ => id.to_owned(),
        }))
    }

    fn attribute(&self, id: &str, attribute: &str) -> Result<Value, String> {
        let ty = self.types.get(id).map_or("", String::as_str);
        match (ty, attribute) {
            ("AWS::Serverless::Function" | "AWS::Lambda::Function", "Arn") => {
                Ok(Value::String(self.arn(id)))
            }
            ("AWS::Serverless::Api" | "AWS::ApiGateway::RestApi", "RootResourceId") => {
                Ok(Value::String(format!("{}root", &api_id(id)[..6])))
            }
            ("AWS::DynamoDB::Table" | "AWS::Serverless::SimpleTable", "Arn") => Ok(Value::String(
                self.service_arn("dynamodb", &format!("table/{}", self.name(id))),
            )),
            ("AWS::DynamoDB::Table", "StreamArn") => Ok(Value::String(self.service_arn(
                "dynamodb",
                &format!("table/{}/stream/1970-01-01T00:00:00.000", self.name(id)),
            ))),
            ("AWS::SQS::Queue", "Arn") => {
                Ok(Value::String(self.service_arn("sqs", &self.name(id))))
            }
            ("AWS::SQS::Queue", "QueueName") | ("AWS::SNS::Topic", "TopicName") => {
                Ok(Value::String(self.name(id)))
            }
            ("AWS::SQS::Queue", "QueueUrl") => Ok(Value::String(self.queue_url(id))),
            ("AWS::SNS::Topic", "TopicArn") => {
                Ok(Value::String(self.service_arn("sns", &self.name(id))))
            }
            ("AWS::S3::Bucket", "Arn") => {
                Ok(Value::String(format!("arn:aws:s3:::{}", self.name(id))))
            }
            ("AWS::S3::Bucket", "WebsiteURL") => Ok(Value::String(format!(
                "http://{}.s3-website-{}.amazonaws.com",
                self.name(id),
                self.stack.region()
            ))),
            ("AWS::S3::Bucket", "DomainName" | "RegionalDomainName") => {
                Ok(Value::String(format!("{}.s3.amazonaws.com", self.name(id))))
            }
            ("AWS::RDS::DBCluster", "DBClusterArn") | ("AWS::RDS::DBInstance", "DBInstanceArn") => {
                Ok(Value::String(format!(
                    "arn:aws:rds:{}:{ACCOUNT_ID}:cluster:{}",
                    self.stack.region(),
                    self.name(id)
                )))
            }
            (
                "AWS::RDS::DBCluster" | "AWS::RDS::DBInstance",
                "Endpoint.Address" | "ReadEndpoint.Address",
            ) => Ok(Value::String("127.0.0.1".into())),
            ("AWS::RDS::DBCluster" | "AWS::RDS::DBInstance", "Endpoint.Port") => {
                Ok(Value::String("5432".into()))
            }
            ("AWS::Lambda::Url", "FunctionUrl") => Ok(Value::String(format!(
                "https://{}.lambda-url.{}.on.aws/",
                stratus_config::url_id(&self.name(id)),
                self.stack.region()
            ))),
            ("AWS::CloudFront::Distribution", "DomainName") => Ok(Value::String(cdn_domain(id))),
            ("AWS::CloudFront::Distribution", "Id") => Ok(Value::String(format!(
                "E{}",
                api_id(id).to_ascii_uppercase()
            ))),
            ("AWS::Lambda::Version", "Version") => Ok(Value::String(
                self.name(id).rsplit(':').next().unwrap_or("1").to_owned(),
            )),
            ("AWS::Lambda::Alias" | "AWS::Lambda::Version", "Arn") => {
                Ok(Value::String(self.arn(id)))
            }
            ("AWS::IAM::Role", "Arn") => Ok(Value::String(format!(
                "arn:aws:iam::{ACCOUNT_ID}:role/{id}"
            ))),
            (
                "AWS::Serverless::HttpApi" | "AWS::Serverless::Api" | "AWS::ApiGatewayV2::Api",
                "ApiEndpoint",
            ) => Ok(Value::String(format!(
                "https://{}.execute-api.{}.amazonaws.com",
                api_id(id),
                self.stack.region()
            ))),
            // What Stratus does not model still gives an AWS-shaped value, so
            // code reading it from its environment starts.
            (_, attr) if !ty.starts_with("AWS::Serverless::") => Ok(Value::String(format!(
                "arn:aws:{}:{}:{ACCOUNT_ID}:{id}/{attr}",
                service_of(ty),
                self.stack.region()
            ))),
            _ => Err(format!("{ty} has no attribute {attribute} here")),
        }
    }
}

fn service_of(ty: &str) -> String {
    ty.split("::")
        .nth(1)
        .unwrap_or("unknown")
        .to_ascii_lowercase()
}

/// Applies a `Globals` section under a resource's own properties, as SAM
/// does: a value of its own replaces the global one, maps are merged key
/// by key (`Environment.Variables`), lists are joined (the global entries
/// first: `MethodSettings`, `Layers`).
fn with_globals(own: Option<&Node>, globals: Option<&Node>) -> Vec<(String, Node)> {
    let own: Vec<(String, Node)> = own
        .and_then(Node::as_map)
        .map(<[_]>::to_vec)
        .unwrap_or_default();
    let Some(globals) = globals.and_then(Node::as_map) else {
        return own;
    };
    merge_maps(globals.to_vec(), own)
}

fn merge_maps(mut out: Vec<(String, Node)>, own: Vec<(String, Node)>) -> Vec<(String, Node)> {
    for (k, v) in own {
        match out.iter_mut().find(|(g, _)| *g == k) {
            Some((_, g)) => {
                let merged = match (&g.value, &v.value) {
                    (Value::Map(a), Value::Map(b)) => Value::Map(merge_maps(a.clone(), b.clone())),
                    (Value::List(a), Value::List(b)) => {
                        Value::List(a.iter().chain(b).cloned().collect())
                    }
                    _ => v.value.clone(),
                };
                *g = Node::new(&v, merged);
            }
            None => out.push((k, v)),
        }
    }
    out
}

fn text_of(props: &[(String, Node)], key: &str) -> Option<String> {
    props
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.scalar_text())
}

fn node_of<'a>(props: &'a [(String, Node)], key: &str) -> Option<&'a Node> {
    props.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// The template (already checked to carry the SAM transform, or none) as
/// a project.
pub fn project(template: &Node, stack: &Stack) -> Result<Project, Vec<Error>> {
    let mut errors = Vec::new();
    let resources = template
        .get("Resources")
        .and_then(Node::as_map)
        .unwrap_or(&[]);
    let mut declared = Declared {
        stack,
        types: BTreeMap::new(),
        names: BTreeMap::new(),
    };
    let mut live: Vec<(&str, &Node, String)> = Vec::new();
    for (id, r) in resources {
        let path = format!("Resources.{id}");
        let Some(ty) = r.get("Type").and_then(Node::as_str) else {
            errors.push(r.error(&path, "a resource needs a Type"));
            continue;
        };
        if let Some(c) = r.get("Condition") {
            match c.as_str().map(|c| (c, stack.condition(c))) {
                Some((_, Some(false))) => continue,
                Some((_, Some(true))) => {}
                Some((name, None)) => {
                    errors.push(c.error(
                        &format!("{path}.Condition"),
                        format!("no condition {name:?} in Conditions"),
                    ));
                    continue;
                }
                None => {
                    errors
                        .push(c.error(&format!("{path}.Condition"), "Condition names a condition"));
                    continue;
                }
            }
        }
        declared.types.insert(id.clone(), ty.to_owned());
        live.push((id, r, ty.to_owned()));
    }
    // (function, its generated `<Fn>Url`).
    let mut generated_urls: Vec<(String, String)> = Vec::new();
    // What SAM generates, so that `Ref`/`GetAtt` of it resolve: the
    // implicit APIs (when an event needs them) and each function's role.
    for (id, r, ty) in &live {
        if ty != "AWS::Serverless::Function" {
            continue;
        }
        declared
            .types
            .insert(format!("{id}Role"), "AWS::IAM::Role".into());
        // FunctionUrlConfig: SAM's `<Fn>Url`.
        let url_config = r
            .get("Properties")
            .and_then(|p| p.get("FunctionUrlConfig"))
            .is_some()
            || template
                .get("Globals")
                .and_then(|g| g.get("Function"))
                .and_then(|f| f.get("FunctionUrlConfig"))
                .is_some();
        if url_config {
            declared
                .types
                .insert(format!("{id}Url"), "AWS::Lambda::Url".into());
            generated_urls.push(((*id).to_owned(), format!("{id}Url")));
        }
        let events = r
            .get("Properties")
            .and_then(|p| p.get("Events"))
            .and_then(Node::as_map)
            .unwrap_or(&[]);
        for (_, e) in events {
            let p = e.get("Properties");
            let implicit = match e.get("Type").and_then(Node::as_str) {
                Some("Api") if p.and_then(|p| p.get("RestApiId")).is_none() => {
                    ("ServerlessRestApi", "AWS::Serverless::Api")
                }
                Some("HttpApi") if p.and_then(|p| p.get("ApiId")).is_none() => {
                    ("ServerlessHttpApi", "AWS::Serverless::HttpApi")
                }
                _ => continue,
            };
            declared
                .types
                .entry(implicit.0.into())
                .or_insert_with(|| implicit.1.into());
        }
    }
    // Function names first: other resources' Refs and Subs read them.
    for (id, r, ty) in &live {
        // The property that names each kind of resource, and the name it
        // has without one.
        let (key, default) = match ty.as_str() {
            "AWS::Serverless::Function" | "AWS::Lambda::Function" => {
                ("FunctionName", (*id).to_owned())
            }
            "AWS::S3::Bucket" => ("BucketName", id.to_ascii_lowercase()),
            "AWS::RDS::DBCluster" => ("DBClusterIdentifier", id.to_ascii_lowercase()),
            "AWS::RDS::DBInstance" => ("DBInstanceIdentifier", id.to_ascii_lowercase()),
            "AWS::DynamoDB::Table" | "AWS::Serverless::SimpleTable" => {
                ("TableName", (*id).to_owned())
            }
            "AWS::SQS::Queue" => ("QueueName", (*id).to_owned()),
            "AWS::SNS::Topic" => ("TopicName", (*id).to_owned()),
            "AWS::ApiGateway::Stage" | "AWS::ApiGatewayV2::Stage" => {
                ("StageName", (*id).to_owned())
            }
            "AWS::Serverless::LayerVersion" | "AWS::Lambda::LayerVersion" => {
                ("LayerName", (*id).to_owned())
            }
            _ => ("", String::new()),
        };
        if !key.is_empty() {
            let name = r
                .get("Properties")
                .and_then(|p| p.get(key))
                .map(|n| {
                    stack.eval(
                        n,
                        &format!("Resources.{id}.Properties.FunctionName"),
                        &crate::stack::NoResources,
                    )
                })
                .transpose()
                .map_err(|e| errors.push(e))
                .ok()
                .flatten()
                .flatten()
                .and_then(|n| n.scalar_text());
            declared
                .names
                .insert((*id).to_owned(), name.unwrap_or(default));
        }
    }
    // A function URL's `GetAtt FunctionUrl` is made from its function's
    // name: SAM's `<Fn>Url`, and plain `AWS::Lambda::Url`s.
    for (function, url) in &generated_urls {
        let name = declared.name(function);
        declared.names.insert(url.clone(), name);
    }
    for (id, r, ty) in &live {
        if ty != "AWS::Lambda::Url" {
            continue;
        }
        let target = r
            .get("Properties")
            .and_then(|p| p.get("TargetFunctionArn"))
            .and_then(|n| {
                stack
                    .eval(
                        n,
                        &format!("Resources.{id}.Properties.TargetFunctionArn"),
                        &declared,
                    )
                    .ok()
                    .flatten()
                    .and_then(|v| v.scalar_text())
            });
        if let Some(t) = target {
            declared.names.insert((*id).to_owned(), function_of_arn(&t));
        }
    }
    // Aliases: SAM's `AutoPublishAlias` (its generated `<Fn>Alias<alias>`
    // and the `Fn.Alias`/`Fn.Version` references SAM offers), and plain
    // `AWS::Lambda::Alias`/`Version` resources: (function name, alias).
    let mut aliases: Vec<(String, String)> = Vec::new();
    let global_alias = template
        .get("Globals")
        .and_then(|g| g.get("Function"))
        .and_then(|f| f.get("AutoPublishAlias"))
        .and_then(Node::as_str)
        .map(str::to_owned);
    for (id, r, ty) in &live {
        let props = r.get("Properties");
        match ty.as_str() {
            "AWS::Serverless::Function" => {
                let own = props
                    .and_then(|p| p.get("AutoPublishAlias"))
                    .and_then(Node::as_str)
                    .map(str::to_owned);
                let Some(alias) = own.or_else(|| global_alias.clone()) else {
                    continue;
                };
                let function = declared.name(id);
                let qualified = format!("{function}:{alias}");
                for (generated, ty) in [
                    (format!("{id}Alias{alias}"), "AWS::Lambda::Alias"),
                    (format!("{id}.Alias"), "AWS::Lambda::Alias"),
                    (format!("{id}.Version"), "AWS::Lambda::Version"),
                ] {
                    let name = if ty == "AWS::Lambda::Version" {
                        format!("{function}:1")
                    } else {
                        qualified.clone()
                    };
                    declared.types.insert(generated.clone(), ty.into());
                    declared.names.insert(generated, name);
                }
                aliases.push((function, alias));
            }
            "AWS::Lambda::Alias" | "AWS::Lambda::Version" => {
                let text = |k: &str| {
                    props.and_then(|p| p.get(k)).and_then(|n| {
                        stack
                            .eval(n, &format!("Resources.{id}.Properties.{k}"), &declared)
                            .ok()
                            .flatten()
                            .and_then(|v| v.scalar_text())
                    })
                };
                let Some(function) = text("FunctionName") else {
                    errors.push(r.error(
                        &format!("Resources.{id}.Properties"),
                        "FunctionName names the function (!Ref a function of the template)",
                    ));
                    continue;
                };
                let function = function_of_arn(&function);
                if ty == "AWS::Lambda::Version" {
                    declared
                        .names
                        .insert((*id).to_owned(), format!("{function}:1"));
                    continue;
                }
                let Some(alias) = text("Name") else {
                    errors.push(r.error(
                        &format!("Resources.{id}.Properties"),
                        "an Alias needs a Name",
                    ));
                    continue;
                };
                declared
                    .names
                    .insert((*id).to_owned(), format!("{function}:{alias}"));
                aliases.push((function, alias));
            }
            _ => {}
        }
    }
    // Globals.Function, evaluated once for every function.
    let globals = match template
        .get("Globals")
        .and_then(|g| g.get("Function"))
        .map(|g| stack.eval(g, "Globals.Function", &declared))
        .transpose()
    {
        Ok(g) => g.flatten(),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let global_of = |name: &str, errors: &mut Vec<Error>| match template
        .get("Globals")
        .and_then(|g| g.get(name))
        .map(|g| stack.eval(g, &format!("Globals.{name}"), &declared))
        .transpose()
    {
        Ok(g) => g.flatten(),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let globals_api = global_of("Api", &mut errors);
    let globals_http = global_of("HttpApi", &mut errors);
    // Usage plans the APIs' Auth asks for: (plan name, plan table, key).
    let mut plans: Vec<(String, toml::Table, String)> = Vec::new();
    // Explicit APIs: (REST or not, their evaluated properties).
    let mut api_props: BTreeMap<String, (bool, Option<Node>)> = BTreeMap::new();
    let mut functions = toml::Table::new();
    let mut rest_parts: Vec<crate::cfn::Part<'_>> = Vec::new();
    let mut inline: Vec<(String, String)> = Vec::new();
    let (mut buckets, mut sites, mut databases) =
        (toml::Table::new(), toml::Table::new(), toml::Table::new());
    let mut apis: BTreeMap<String, toml::Table> = BTreeMap::new();
    let _ = generated_urls;
    let mut not_run: Vec<(String, String)> = Vec::new();
    let mut distributions: Vec<(&str, &Node, Option<Node>)> = Vec::new();
    // AWS::Lambda::EventInvokeConfig: (function, async table).
    let mut invoke_configs: Vec<(String, toml::Table)> = Vec::new();
    // S3 event notifications: (bucket name, entry).
    let mut notifications: Vec<(String, toml::Table)> = Vec::new();
    // Schedules of rules and Scheduler schedules: (function, entry).
    let mut resource_schedules_found: Vec<(String, toml::Table)> = Vec::new();
    // Function URLs of plain `AWS::Lambda::Url`s: (function, url table).
    let mut urls: Vec<(String, toml::Table)> = Vec::new();
    // Layers, by the ARN their Ref gives: their local folders.
    let mut layer_dirs: BTreeMap<String, String> = BTreeMap::new();
    for (id, r, ty) in &live {
        let key = match ty.as_str() {
            "AWS::Serverless::LayerVersion" => "ContentUri",
            "AWS::Lambda::LayerVersion" => "Content",
            _ => continue,
        };
        let at = format!("Resources.{id}.Properties.{key}");
        let content = r.get("Properties").and_then(|p| p.get(key));
        let folder = match content.map(|c| stack.eval(c, &at, &declared)) {
            Some(Ok(Some(c))) => c.scalar_text(),
            Some(Err(e)) => {
                errors.push(e);
                continue;
            }
            _ => None,
        };
        match folder {
            Some(dir) => {
                layer_dirs.insert(declared.layer_arn(id), dir);
            }
            None => errors.push(r.error(
                &at,
                format!("{key} is a local folder (the layer's files, as `sam build` takes them); a layer in S3 is not local"),
            )),
        }
    }
    for (id, r, ty) in &live {
        let path = format!("Resources.{id}");
        let props = match r.get("Properties") {
            Some(p) => match stack.eval(p, &format!("{path}.Properties"), &declared) {
                Ok(p) => p,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            },
            None => None,
        };
        match ty.as_str() {
            "AWS::Serverless::Function" => {
                let props = with_globals(props.as_ref(), globals.as_ref());
                let name = declared.names[*id].clone();
                match function(id, &name, r, &props, &mut apis, &mut inline, &mut notifications) {
                    Ok(mut f) => {
                        layers(&mut f, id, &props, &layer_dirs, &mut not_run);
                        functions.insert(declared.names[*id].clone(), toml::Value::Table(f));
                    }
                    Err(e) => errors.push(e),
                }
            }
            "AWS::Lambda::Function" => {
                let mut props: Vec<(String, Node)> = props.as_ref().and_then(Node::as_map).map(<[_]>::to_vec).unwrap_or_default();
                // A local folder, as `sam build` and `aws cloudformation
                // package` take it; inline or S3 code is not local.
                let code = props.iter().find(|(k, _)| k == "Code").map(|(_, v)| v.clone());
                match code.as_ref().map(|c| (c.scalar_text(), c)) {
                    Some((Some(dir), c)) => props.push(("CodeUri".into(), Node::new(c, Value::String(dir)))),
                    Some((None, c)) if c.get("ZipFile").is_some() => {
                        props.push(("InlineCode".into(), c.get("ZipFile").cloned().unwrap_or_else(|| c.clone())));
                    }
                    Some((None, c)) => {
                        errors.push(c.error(&format!("{path}.Properties.Code"), "Code is a local folder (Code: ./src) or ZipFile; code in S3 is not local"));
                        continue;
                    }
                    None => {
                        errors.push(r.error(&path, "a function needs Code (a local folder)"));
                        continue;
                    }
                }
                props.retain(|(k, _)| k != "Events");
                let name = declared.names[*id].clone();
                match function(id, &name, r, &props, &mut apis, &mut inline, &mut notifications) {
                    Ok(mut f) => {
                        layers(&mut f, id, &props, &layer_dirs, &mut not_run);
                        functions.insert(name, toml::Value::Table(f));
                    }
                    Err(e) => errors.push(e),
                }
            }
            "AWS::ApiGateway::RestApi"
            | "AWS::ApiGateway::Resource"
            | "AWS::ApiGateway::Method"
            | "AWS::ApiGateway::Authorizer"
            | "AWS::ApiGateway::Model"
            | "AWS::ApiGateway::RequestValidator"
            | "AWS::ApiGateway::GatewayResponse"
            | "AWS::ApiGateway::Stage"
            | "AWS::ApiGateway::Deployment"
            | "AWS::ApiGateway::ApiKey"
            | "AWS::ApiGateway::UsagePlan"
            | "AWS::ApiGateway::UsagePlanKey"
            | "AWS::ApiGatewayV2::Api"
            | "AWS::ApiGatewayV2::Route"
            | "AWS::ApiGatewayV2::RouteResponse"
            | "AWS::ApiGatewayV2::Integration"
            | "AWS::ApiGatewayV2::Authorizer"
            | "AWS::ApiGatewayV2::Deployment"
            | "AWS::ApiGatewayV2::Stage" => rest_parts.push(crate::cfn::Part {
                id,
                raw: r,
                ty: ty.as_str(),
                props,
            }),
            "AWS::Serverless::Api" | "AWS::Serverless::HttpApi" => {
                let rest = ty == "AWS::Serverless::Api";
                if rest && props.as_ref().and_then(|p| p.get("StageName")).is_none() {
                    errors.push(r.error(&path, "AWS::Serverless::Api needs a StageName"));
                }
                apis.entry((*id).to_owned()).or_default();
                api_props.insert((*id).to_owned(), (rest, props));
            }
            "AWS::S3::Bucket" => {
                let name = declared.name(id);
                let mut bucket = toml::Table::new();
                let rules = props.as_ref().and_then(|p| p.get("CorsConfiguration")).and_then(|c| c.get("CorsRules")).and_then(Node::as_list);
                if let Some(rule) = rules.and_then(<[Node]>::first) {
                    bucket.insert("cors".into(), toml::Value::Table(bucket_cors(rule)));
                }
                let configs = props
                    .as_ref()
                    .and_then(|p| p.get("NotificationConfiguration"))
                    .and_then(|n| n.get("LambdaConfigurations"))
                    .and_then(Node::as_list)
                    .unwrap_or(&[]);
                for c in configs {
                    if let Some(arn) = c.get("Function").and_then(Node::scalar_text) {
                        let f = crate::cfn::qualified_function_of_arn(&arn);
                        notifications.push((name.clone(), notification_table(&f, c.get("Event"), c.get("Filter"))));
                    }
                }
                buckets.insert(name.clone(), toml::Value::Table(bucket));
                if let Some(site) = props.as_ref().and_then(|p| p.get("WebsiteConfiguration")) {
                    let mut t = toml::Table::new();
                    t.insert("bucket".into(), name.into());
                    if let Some(i) = site.get("IndexDocument").and_then(Node::scalar_text) {
                        t.insert("index".into(), i.into());
                    }
                    if let Some(e) = site.get("ErrorDocument").and_then(Node::scalar_text) {
                        t.insert("not_found".into(), e.into());
                    }
                    sites.insert((*id).to_owned(), toml::Value::Table(t));
                }
            }
            "AWS::RDS::DBCluster" => {
                databases.insert(declared.name(id), toml::Value::Table(toml::Table::new()));
            }
            // An instance of a cluster is the cluster's; one on its own is a database.
            "AWS::RDS::DBInstance" => {
                if props.as_ref().and_then(|p| p.get("DBClusterIdentifier")).is_none() {
                    databases.insert(declared.name(id), toml::Value::Table(toml::Table::new()));
                }
            }
            "AWS::CloudFormation::Stack" | "AWS::Serverless::Application" => errors.push(r.error(
                &path,
                format!("{ty} is a nested stack, which Stratus does not run: serve that template on its own"),
            )),
            "AWS::Lambda::Permission" | "AWS::IAM::Role" | "AWS::IAM::Policy" | "AWS::Logs::LogGroup" => {}
            // Served through the functions that name them.
            "AWS::Serverless::LayerVersion" | "AWS::Lambda::LayerVersion" | "AWS::Lambda::LayerVersionPermission" => {}
            // Published and pointed at start (`auto_publish_alias`).
            "AWS::Lambda::Alias" | "AWS::Lambda::Version" => {}
            "AWS::CloudFront::Distribution" => distributions.push((id, r, props)),
            "AWS::Lambda::EventInvokeConfig" => {
                let target = props.as_ref().and_then(|p| p.get("FunctionName")).and_then(Node::scalar_text);
                match (target, props.as_ref()) {
                    (Some(f), Some(p)) => invoke_configs.push((function_of_arn(&f), event_invoke_config(p))),
                    _ => errors.push(r.error(&path, "an EventInvokeConfig names its FunctionName")),
                }
            }
            "AWS::Events::Rule" | "AWS::Scheduler::Schedule" => {
                let found = props.as_ref().map(|p| resource_schedules(id, ty, p)).unwrap_or_default();
                if found.is_empty() {
                    // An event pattern, or a target that is not a function.
                    not_run.push(((*id).to_owned(), ty.clone()));
                }
                resource_schedules_found.extend(found);
            }
            "AWS::Lambda::Url" => match props.as_ref().map(|p| function_url(p, &format!("{path}.Properties"))) {
                Some(Ok((target, url))) => {
                    let (function, qualifier) = match target.split_once(':') {
                        Some((f, q)) => (f.to_owned(), Some(q.to_owned())),
                        None => (target, None),
                    };
                    let mut url = url;
                    if let Some(q) = qualifier.or_else(|| props.as_ref().and_then(|p| p.get("Qualifier")).and_then(Node::scalar_text)) {
                        url.insert("qualifier".into(), q.into());
                    }
                    urls.push((function, url));
                }
                Some(Err(e)) => errors.push(e),
                None => errors.push(r.error(&path, "a function URL needs TargetFunctionArn and AuthType")),
            },
            // What a distribution's origins are given, locally nothing.
            "AWS::CloudFront::OriginAccessControl"
            | "AWS::CloudFront::CloudFrontOriginAccessIdentity"
            | "AWS::CloudFront::CachePolicy"
            | "AWS::S3::BucketPolicy" => {}
            _ => not_run.push(((*id).to_owned(), ty.clone())),
        }
    }
    for (bucket, entry) in notifications {
        match buckets.get_mut(&bucket) {
            Some(toml::Value::Table(b)) => {
                if let toml::Value::Array(all) = b
                    .entry("notifications")
                    .or_insert_with(|| toml::Value::Array(Vec::new()))
                {
                    all.push(toml::Value::Table(entry));
                }
            }
            _ => not_run.push((format!("S3 events of {bucket}"), "AWS::S3::Bucket".into())),
        }
    }
    let mut cdn_domains = Vec::new();
    for (id, r, props) in &distributions {
        match crate::cdn::site(id, r, props.as_ref(), &buckets) {
            Ok(site) => {
                // CloudFront in front of a bucket's website: one site.
                let bucket = site.get("bucket").cloned();
                sites.retain(|_, s| s.get("bucket") != bucket.as_ref());
                sites.insert((*id).to_owned(), toml::Value::Table(site));
                cdn_domains.push(cdn_domain(id));
            }
            Err(e) => errors.push(e),
        }
    }
    let mut cfn_apis = Vec::new();
    crate::cfn::rest_apis(&rest_parts, &mut apis, &mut cfn_apis, &mut errors);
    crate::v2::apis_v2(&rest_parts, &mut apis, &mut cfn_apis, &mut errors);
    let (mut usage, mut keys) = (toml::Table::new(), toml::Table::new());
    crate::cfn::usage_plans(&rest_parts, &apis, &mut usage, &mut keys, &mut errors);
    // Every SAM API, explicit or implicit (what SAM makes when an event
    // needs it: `ServerlessRestApi` with its `Prod` stage,
    // `ServerlessHttpApi`), with `Globals.Api`/`Globals.HttpApi` under
    // its own properties.
    for (id, api) in apis.iter_mut() {
        if cfn_apis.contains(id) {
            continue;
        }
        let (rest, own) = match api_props.get(id) {
            Some((rest, props)) => (*rest, props.clone()),
            // An implicit API (every explicit one is in `api_props`).
            None => (id != "ServerlessHttpApi", None),
        };
        let global = if rest { &globals_api } else { &globals_http };
        let props = with_globals(own.as_ref(), global.as_ref());
        let path = format!("Resources.{id}.Properties");
        api.insert("type".into(), (if rest { "rest" } else { "http" }).into());
        let stage = text_of(&props, "StageName").or_else(|| rest.then(|| "Prod".to_owned()));
        if let Some(stage) = stage.filter(|s| s != "$default") {
            let mut stages = toml::Table::new();
            stages.insert(stage, toml::Value::Table(toml::Table::new()));
            api.insert("stages".into(), toml::Value::Table(stages));
        }
        // An OpenAPI definition: inline (intrinsics evaluated), or a local
        // file (as SAM uploads it: as written).
        let uri = node_of(&props, "DefinitionUri");
        let definition = match (node_of(&props, "DefinitionBody"), uri) {
            (Some(body), _) => Some(Ok(body.clone())),
            (None, Some(uri)) => Some(match uri.as_str().and_then(|u| stack.file(u).map(|t| (u, t))) {
                Some((u, text)) => crate::node::parse(text).map_err(|e| {
                    uri.error(&format!("{path}.DefinitionUri"), format!("{u}:{}:{}: {}", e.line, e.column, e.message))
                }),
                None => Err(uri.error(
                    &format!("{path}.DefinitionUri"),
                    "DefinitionUri is a file beside the template (./api.yaml); one in S3 is not local",
                )),
            }),
            (None, None) => None,
        };
        match definition {
            Some(Ok(body)) => {
                if let Err(e) =
                    crate::openapi::apply(api, &body, !rest, &format!("{path}.DefinitionBody"))
                {
                    errors.push(e);
                }
            }
            Some(Err(e)) => errors.push(e),
            None => {}
        }
        if let Some(auth) = node_of(&props, "Auth") {
            let stage = stage_name(api, rest);
            match apply_auth(id, api, rest, auth, &stage, &format!("{path}.Auth")) {
                Ok(plan) => plans.extend(plan),
                Err(e) => errors.push(e),
            }
        } else {
            apply_route_defaults(api, None, None);
        }
        let stage = stage_name(api, rest);
        if rest {
            crate::settings::variables(api, &stage, node_of(&props, "Variables"));
            crate::settings::rest_stage(api, &stage, &props, &path, &mut errors);
            crate::settings::binary_media_types(api, node_of(&props, "BinaryMediaTypes"));
            // SAM's Models: NAME → schema.
            for (model, schema) in node_of(&props, "Models")
                .and_then(Node::as_map)
                .unwrap_or(&[])
            {
                let all = api
                    .entry("models")
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if let toml::Value::Table(all) = all {
                    all.insert(
                        model.clone(),
                        crate::node::to_json(schema).to_string().into(),
                    );
                }
            }
            // SAM's GatewayResponses: TYPE → StatusCode,
            // ResponseParameters.Headers, ResponseTemplates.
            for (ty, g) in node_of(&props, "GatewayResponses")
                .and_then(Node::as_map)
                .unwrap_or(&[])
            {
                let headers = g
                    .get("ResponseParameters")
                    .and_then(|p| p.get("Headers"))
                    .and_then(Node::as_map)
                    .unwrap_or(&[])
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.scalar_text()?)))
                    .collect();
                crate::settings::gateway_response(
                    api,
                    ty,
                    g.get("StatusCode").and_then(Node::scalar_text),
                    headers,
                    g.get("ResponseTemplates"),
                );
            }
        } else {
            crate::settings::variables(api, &stage, node_of(&props, "StageVariables"));
            crate::settings::v2_stage(api, &stage, &props, &path, &mut errors);
        }
        let key = if rest { "Cors" } else { "CorsConfiguration" };
        if let Some(c) = node_of(&props, key) {
            match cors(rest, c, &format!("{path}.{key}")) {
                Ok(Some(t)) => {
                    api.insert("cors".into(), toml::Value::Table(t));
                }
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
    }
    let mut outputs = Vec::new();
    for (name, out) in template
        .get("Outputs")
        .and_then(Node::as_map)
        .unwrap_or(&[])
    {
        let path = format!("Outputs.{name}");
        if let Some(c) = out.get("Condition").and_then(Node::as_str) {
            if stack.condition(c) == Some(false) {
                continue;
            }
        }
        let Some(value) = out.get("Value") else {
            errors.push(out.error(&path, "an output needs a Value"));
            continue;
        };
        match stack.eval(value, &format!("{path}.Value"), &declared) {
            Ok(Some(v)) => {
                let text = match &v.value {
                    Value::List(items) => items
                        .iter()
                        .filter_map(Node::scalar_text)
                        .collect::<Vec<_>>()
                        .join(","),
                    _ => v.scalar_text().unwrap_or_default(),
                };
                outputs.push(Output {
                    name: name.clone(),
                    value: text,
                    description: out.get("Description").and_then(Node::scalar_text),
                });
            }
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut places = Vec::new();
    for (id, r, ty) in &live {
        let name = declared.name(id);
        let keys = match ty.as_str() {
            "AWS::Serverless::Function" | "AWS::Lambda::Function" => {
                vec![format!("functions.{name}")]
            }
            "AWS::Serverless::Api"
            | "AWS::Serverless::HttpApi"
            | "AWS::ApiGateway::RestApi"
            | "AWS::ApiGatewayV2::Api" => vec![format!("apis.{id}")],
            "AWS::S3::Bucket" => vec![format!("buckets.{name}"), format!("sites.{id}")],
            "AWS::RDS::DBCluster" | "AWS::RDS::DBInstance" => vec![format!("databases.{name}")],
            "AWS::ApiGateway::UsagePlan" => vec![format!("usage_plans.{id}")],
            "AWS::ApiGateway::ApiKey" => vec![format!("api_keys.{id}")],
            "AWS::CloudFront::Distribution" => vec![format!("sites.{id}")],
            "AWS::Lambda::Url" => vec![format!("functions.{name}.url")],
            _ => Vec::new(),
        };
        for key in keys {
            places.push((key, format!("Resources.{id}"), r.line, r.column));
        }
    }
    let resources = declared
        .types
        .iter()
        .map(|(id, ty)| {
            let physical = match declared.reference(id) {
                Ok(Value::String(s)) => s,
                _ => id.clone(),
            };
            (id.clone(), ty.clone(), physical)
        })
        .collect();
    for (function, config) in invoke_configs {
        if let Some(toml::Value::Table(f)) = functions.get_mut(&function) {
            f.insert("async".into(), toml::Value::Table(config));
        }
    }
    for (function, entry) in resource_schedules_found {
        if let Some(toml::Value::Table(f)) = functions.get_mut(&function) {
            if let toml::Value::Array(all) = f
                .entry("schedules")
                .or_insert_with(|| toml::Value::Array(Vec::new()))
            {
                all.push(toml::Value::Table(entry));
            }
        }
    }
    for (function, url) in urls {
        if let Some(toml::Value::Table(f)) = functions.get_mut(&function) {
            f.insert("url".into(), toml::Value::Table(url));
        }
    }
    let function_urls: Vec<(String, String)> = functions
        .iter()
        .filter(|(_, f)| f.get("url").is_some())
        .map(|(name, _)| (stratus_config::url_id(name), name.clone()))
        .collect();
    for (function, alias) in &aliases {
        if let Some(toml::Value::Table(f)) = functions.get_mut(function) {
            f.insert("auto_publish_alias".into(), alias.clone().into());
        }
    }
    let mut doc = toml::Table::new();
    if !functions.is_empty() {
        doc.insert("functions".into(), toml::Value::Table(functions));
    }
    for (key, table) in [
        ("buckets", buckets),
        ("sites", sites),
        ("databases", databases),
    ] {
        if !table.is_empty() {
            doc.insert(key.into(), toml::Value::Table(table));
        }
    }
    {
        for (name, plan, key) in plans {
            match usage.get_mut(&name) {
                // A SHARED plan: one plan and key, every API listed.
                Some(toml::Value::Table(existing)) => {
                    if let (Some(toml::Value::Array(all)), Some(toml::Value::Array(more))) =
                        (existing.get_mut("apis"), plan.get("apis"))
                    {
                        all.extend(more.iter().cloned());
                    }
                }
                _ => {
                    usage.insert(name, toml::Value::Table(plan));
                }
            }
            keys.insert(key, toml::Value::Table(toml::Table::new()));
        }
        if !usage.is_empty() {
            doc.insert("usage_plans".into(), toml::Value::Table(usage));
        }
        if !keys.is_empty() {
            doc.insert("api_keys".into(), toml::Value::Table(keys));
        }
    }
    // Two APIs of one template at one path (two HTTP APIs' `$default`
    // stages, both at `/`) are apart on AWS by their hosts: the later one
    // is served only at its own host, `{id}.execute-api.localhost`.
    // The implicit APIs first, then the template's in the order it
    // declares them.
    let line_of = |api: &str| {
        live.iter()
            .find(|(id, _, _)| *id == api)
            .map_or(0, |(_, r, _)| r.line)
    };
    let mut order: Vec<String> = apis.keys().cloned().collect();
    order.sort_by_key(|api| line_of(api));
    let mut taken = BTreeSet::new();
    for api in &order {
        let table = apis.get_mut(api).expect("listed");
        let mounts: Vec<String> = match table.get("stages") {
            Some(toml::Value::Table(stages)) => stages
                .keys()
                .map(|s| stratus_config::stage_mount("/", s))
                .collect(),
            _ => vec!["/".to_owned()],
        };
        if mounts.iter().any(|m| taken.contains(m)) {
            table.insert("host_only".into(), toml::Value::Boolean(true));
        } else {
            taken.extend(mounts);
        }
    }
    let api_ids = apis
        .iter()
        .map(|(id, table)| LocalApi {
            id: api_id(id),
            host_only: table.contains_key("host_only"),
        })
        .collect();
    if !apis.is_empty() {
        doc.insert(
            "apis".into(),
            toml::Value::Table(
                apis.into_iter()
                    .map(|(k, v)| (k, toml::Value::Table(v)))
                    .collect(),
            ),
        );
    }
    Ok(Project {
        toml: toml::to_string(&doc).unwrap_or_default(),
        not_run,
        outputs,
        api_ids,
        cdn_domains,
        function_urls,
        resources,
        description: template.get("Description").and_then(Node::scalar_text),
        stack_name: stack.stack_name().to_owned(),
        inline,
        places,
    })
}

/// One `AWS::Serverless::Function`, its events added to `apis`.
fn function(
    id: &str,
    name: &str,
    r: &Node,
    props: &[(String, Node)],
    apis: &mut BTreeMap<String, toml::Table>,
    inline_files: &mut Vec<(String, String)>,
    notifications: &mut Vec<(String, toml::Table)>,
) -> Result<toml::Table, Error> {
    let path = format!("Resources.{id}.Properties");
    let mut f = toml::Table::new();
    let runtime = text_of(props, "Runtime").ok_or_else(|| {
        r.error(
            &path,
            "a function needs a Runtime (in its Properties or Globals.Function)",
        )
    })?;
    f.insert("runtime".into(), runtime.clone().into());
    if let Some(h) = text_of(props, "Handler") {
        f.insert("handler".into(), h.into());
    }
    let code = match node_of(props, "InlineCode") {
        // Inline code is written where Lambda puts it (index.py, index.js).
        Some(inline) => {
            let text = inline.scalar_text().ok_or_else(|| {
                inline.error(
                    &format!("{path}.InlineCode"),
                    "InlineCode is the code's text",
                )
            })?;
            let file = if runtime.starts_with("python") {
                "index.py"
            } else if runtime.starts_with("nodejs") {
                "index.js"
            } else {
                return Err(inline.error(
                    &format!("{path}.InlineCode"),
                    "inline code runs on a Python or Node.js runtime",
                ));
            };
            let dir = format!("{INLINE_DIR}/{name}");
            inline_files.push((format!("{dir}/{file}"), text));
            dir
        }
        None => text_of(props, "CodeUri").unwrap_or_else(|| ".".to_owned()),
    };
    f.insert("code".into(), code.into());
    if let Some(b) = build_method(id, r)? {
        f.insert("bundle".into(), toml::Value::Table(b));
    }
    if let Some(c) = node_of(props, "EventInvokeConfig") {
        f.insert("async".into(), toml::Value::Table(event_invoke_config(c)));
    }
    if let Some(c) = node_of(props, "FunctionUrlConfig") {
        let (_, mut url) = url_settings(c, &format!("{path}.FunctionUrlConfig"))?;
        // With AutoPublishAlias, SAM points the URL at the alias.
        if let Some(alias) = text_of(props, "AutoPublishAlias") {
            url.insert("qualifier".into(), alias.into());
        }
        f.insert("url".into(), toml::Value::Table(url));
    }
    for (key, to) in [
        ("Timeout", "timeout"),
        ("MemorySize", "memory"),
        ("ReservedConcurrentExecutions", "concurrency"),
    ] {
        if let Some(n) = node_of(props, key) {
            let v = n
                .scalar_text()
                .and_then(|t| t.parse::<i64>().ok())
                .ok_or_else(|| {
                    n.error(&format!("{path}.{key}"), format!("{key} is a whole number"))
                })?;
            f.insert(to.into(), v.into());
        }
    }
    if let Some(vars) = node_of(props, "Environment")
        .and_then(|e| e.get("Variables"))
        .and_then(Node::as_map)
    {
        let mut env = toml::Table::new();
        for (k, v) in vars {
            let t = v.scalar_text().ok_or_else(|| {
                v.error(
                    &format!("{path}.Environment.Variables.{k}"),
                    "an environment variable is a string",
                )
            })?;
            env.insert(k.clone(), t.into());
        }
        f.insert("environment".into(), toml::Value::Table(env));
    }
    let events = node_of(props, "Events")
        .and_then(Node::as_map)
        .unwrap_or(&[]);
    let mut schedules: Vec<toml::Value> = Vec::new();
    for (event, e) in events {
        let epath = format!("{path}.Events.{event}");
        let ty = e.get("Type").and_then(Node::as_str).unwrap_or("");
        let p = e.get("Properties");
        let get = |k: &str| p.and_then(|p| p.get(k)).and_then(Node::scalar_text);
        // The API's logical id, from the template as written (evaluated,
        // its Ref is the API's id).
        let raw = r
            .get("Properties")
            .and_then(|p| p.get("Events"))
            .and_then(|e| e.get(event))
            .and_then(|e| e.get("Properties"));
        let (api, key) = match ty {
            "Api" => {
                let api = api_of(raw, "RestApiId").unwrap_or_else(|| "ServerlessRestApi".into());
                let (Some(method), Some(route)) = (get("Method"), get("Path")) else {
                    return Err(e.error(&epath, "an Api event needs Path and Method"));
                };
                (api, format!("{} {route}", method_of(&method)))
            }
            "HttpApi" => {
                let api = api_of(raw, "ApiId").unwrap_or_else(|| "ServerlessHttpApi".into());
                let key = match (get("Method"), get("Path")) {
                    (Some(m), Some(route)) => format!("{} {route}", method_of(&m)),
                    _ => "$default".to_owned(),
                };
                (api, key)
            }
            "S3" => {
                let Some(bucket) = get("Bucket") else {
                    return Err(e.error(
                        &epath,
                        "an S3 event needs its Bucket (!Ref a bucket of the template)",
                    ));
                };
                let events = p.and_then(|p| p.get("Events"));
                notifications.push((
                    bucket,
                    notification_table(name, events, p.and_then(|p| p.get("Filter"))),
                ));
                continue;
            }
            "Schedule" | "ScheduleV2" => {
                let scheduler = ty == "ScheduleV2";
                let expr = if scheduler {
                    get("ScheduleExpression")
                } else {
                    get("Schedule")
                };
                let Some(expr) = expr else {
                    return Err(e.error(&epath, "a schedule event needs its expression (Schedule, or ScheduleExpression for ScheduleV2)"));
                };
                let enabled = match p.and_then(|p| p.get("Enabled")).map(|n| &n.value) {
                    Some(Value::Bool(b)) => *b,
                    _ => get("State").is_none_or(|s| s != "DISABLED"),
                };
                schedules.push(toml::Value::Table(schedule_table(
                    &get("Name").unwrap_or_else(|| format!("{id}{event}")),
                    &expr,
                    get("ScheduleExpressionTimezone"),
                    p.and_then(|p| p.get("Input")),
                    enabled,
                    scheduler,
                )));
                continue;
            }
            // Other event sources come with the functions issue.
            _ => continue,
        };
        let routes = apis
            .entry(api)
            .or_default()
            .entry("routes")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(routes) = routes {
            let mut target = toml::Table::new();
            // With AutoPublishAlias, SAM points every event at the alias.
            let invoked = match text_of(props, "AutoPublishAlias") {
                Some(alias) => format!("{name}:{alias}"),
                None => name.to_owned(),
            };
            target.insert("function".into(), invoked.into());
            // The event's own Auth; the API's defaults are applied with
            // the API (`apply_auth`).
            if let Some(auth) = p.and_then(|p| p.get("Auth")) {
                if let Some(a) = auth.get("Authorizer").and_then(Node::scalar_text) {
                    target.insert("authorizer".into(), a.into());
                }
                if let Some(Value::Bool(b)) = auth.get("ApiKeyRequired").map(|n| &n.value) {
                    target.insert("api_key_required".into(), (*b).into());
                }
            }
            if ty == "Api" {
                request_checks_of_event(&mut target, p);
            }
            routes.insert(key, toml::Value::Table(target));
        }
    }
    if !schedules.is_empty() {
        f.insert("schedules".into(), toml::Value::Array(schedules));
    }
    Ok(f)
}

/// An Api event's `RequestModel` (`Model`, `Required`, `ValidateBody`,
/// `ValidateParameters`) and `RequestParameters` (names, or
/// `{name: {Required}}`) as the route's validator, model and required
/// parameters, as SAM makes them.
fn request_checks_of_event(target: &mut toml::Table, p: Option<&Node>) {
    let flag = |n: Option<&Node>, k: &str| match n.and_then(|n| n.get(k)).map(|v| &v.value) {
        Some(Value::Bool(b)) => Some(*b),
        _ => None,
    };
    let model = p.and_then(|p| p.get("RequestModel"));
    let mut body = false;
    if let Some(m) = model {
        if let Some(name) = m.get("Model").and_then(Node::scalar_text) {
            let mut models = toml::Table::new();
            models.insert("application/json".into(), name.into());
            target.insert("request_models".into(), toml::Value::Table(models));
        }
        // SAM validates the body of a required model unless told not to.
        body = flag(model, "ValidateBody").unwrap_or(flag(model, "Required") == Some(true));
    }
    let mut required = Vec::new();
    for item in p
        .and_then(|p| p.get("RequestParameters"))
        .and_then(Node::as_list)
        .unwrap_or(&[])
    {
        let (name, is_required) = match item.scalar_text() {
            Some(n) => (n, false),
            None => match item.as_map().and_then(<[(String, Node)]>::first) {
                Some((n, settings)) => (n.clone(), flag(Some(settings), "Required") == Some(true)),
                None => continue,
            },
        };
        if is_required {
            if let Some(rest) = name.strip_prefix("method.request.") {
                required.push(toml::Value::String(rest.to_owned()));
            }
        }
    }
    let params = flag(model, "ValidateParameters").unwrap_or(!required.is_empty());
    if !required.is_empty() {
        target.insert("required_parameters".into(), toml::Value::Array(required));
    }
    let validate = match (body, params) {
        (true, true) => Some("all"),
        (true, false) => Some("body"),
        (false, true) => Some("parameters"),
        (false, false) => None,
    };
    if let Some(v) = validate {
        target.insert("validate".into(), v.into());
    }
}

/// `EventInvokeConfig` (SAM's property, or `AWS::Lambda::EventInvokeConfig`)
/// as a function's `async` table: retries, event age, and Lambda
/// destinations (`OnSuccess`/`OnFailure` with `Type: Lambda`, or a
/// function ARN; other destination types are not run).
fn event_invoke_config(c: &Node) -> toml::Table {
    let mut t = toml::Table::new();
    let number = |k: &str| {
        c.get(k)
            .and_then(Node::scalar_text)
            .and_then(|v| v.parse::<i64>().ok())
    };
    if let Some(n) = number("MaximumRetryAttempts") {
        t.insert("max_retries".into(), n.into());
    }
    if let Some(n) = number("MaximumEventAgeInSeconds") {
        t.insert("max_event_age".into(), n.into());
    }
    let dest = c.get("DestinationConfig");
    for (from, to) in [("OnSuccess", "on_success"), ("OnFailure", "on_failure")] {
        let Some(d) = dest.and_then(|d| d.get(from)) else {
            continue;
        };
        let arn = d
            .get("Destination")
            .and_then(Node::scalar_text)
            .unwrap_or_default();
        let lambda = d
            .get("Type")
            .and_then(Node::scalar_text)
            .is_none_or(|t| t == "Lambda");
        if lambda && arn.contains(":function:") {
            t.insert(
                to.into(),
                crate::cfn::qualified_function_of_arn(&arn).into(),
            );
        }
    }
    t
}

/// An S3 event source (`Events` as a string or a list, `Filter.S3Key.Rules`
/// of `prefix`/`suffix`) as the bucket's `notifications` entry.
fn notification_table(function: &str, events: Option<&Node>, filter: Option<&Node>) -> toml::Table {
    let mut t = toml::Table::new();
    t.insert("function".into(), function.into());
    let events: Vec<toml::Value> = match events {
        Some(n) if n.as_list().is_some() => crate::openapi::texts(Some(n)),
        Some(n) => n
            .scalar_text()
            .map(toml::Value::String)
            .into_iter()
            .collect(),
        None => Vec::new(),
    };
    t.insert("events".into(), toml::Value::Array(events));
    let rules = filter
        .and_then(|f| f.get("S3Key"))
        .and_then(|k| k.get("Rules"))
        .and_then(Node::as_list)
        .unwrap_or(&[]);
    for r in rules {
        let name = r
            .get("Name")
            .and_then(Node::scalar_text)
            .unwrap_or_default()
            .to_ascii_lowercase();
        if let (true, Some(v)) = (
            name == "prefix" || name == "suffix",
            r.get("Value").and_then(Node::scalar_text),
        ) {
            t.insert(name, v.into());
        }
    }
    t
}

/// A schedule of a function, as the project's `schedules` entry.
fn schedule_table(
    name: &str,
    expression: &str,
    timezone: Option<String>,
    input: Option<&Node>,
    enabled: bool,
    scheduler: bool,
) -> toml::Table {
    let mut t = toml::Table::new();
    t.insert("name".into(), name.into());
    t.insert("expression".into(), expression.into());
    if let Some(tz) = timezone {
        t.insert("timezone".into(), tz.into());
    }
    // `Input` is JSON text (or, written as YAML, a value to send as JSON).
    if let Some(input) = input {
        let text = match &input.value {
            Value::String(s) => s.clone(),
            _ => crate::node::to_json(input).to_string(),
        };
        t.insert("input".into(), text.into());
    }
    if !enabled {
        t.insert("enabled".into(), false.into());
    }
    if scheduler {
        t.insert("kind".into(), "scheduler".into());
    }
    t
}

/// An `AWS::Events::Rule` with a `ScheduleExpression` or an
/// `AWS::Scheduler::Schedule`: (function, schedule entry) for each function
/// it targets.
fn resource_schedules(id: &str, ty: &str, props: &Node) -> Vec<(String, toml::Table)> {
    let text = |n: &Node, k: &str| n.get(k).and_then(Node::scalar_text);
    let scheduler = ty == "AWS::Scheduler::Schedule";
    let Some(expr) = text(props, "ScheduleExpression") else {
        return Vec::new();
    };
    let enabled = text(props, "State").is_none_or(|s| s != "DISABLED");
    let name = text(props, "Name").unwrap_or_else(|| id.to_owned());
    let targets: Vec<&Node> = if scheduler {
        props.get("Target").into_iter().collect()
    } else {
        props
            .get("Targets")
            .and_then(Node::as_list)
            .map(|l| l.iter().collect())
            .unwrap_or_default()
    };
    targets
        .into_iter()
        .filter_map(|t| {
            let arn = text(t, "Arn")?;
            arn.contains(":function:").then(|| {
                let function = crate::cfn::qualified_function_of_arn(&arn);
                let tz = if scheduler {
                    text(props, "ScheduleExpressionTimezone")
                } else {
                    None
                };
                let mut entry =
                    schedule_table(&name, &expr, tz, t.get("Input"), enabled, scheduler);
                let (base, qualifier) = match function.split_once(':') {
                    Some((b, q)) => (b.to_owned(), Some(q.to_owned())),
                    None => (function, None),
                };
                if let Some(q) = qualifier {
                    entry.insert("qualifier".into(), q.into());
                }
                (base, entry)
            })
        })
        .collect()
}

/// A function URL's settings (`AuthType`, `Cors` with Lambda's names,
/// `InvokeMode`) as a function's `url` table; the `TargetFunctionArn`'s
/// function (with its qualifier) for a plain `AWS::Lambda::Url`.
fn url_settings(n: &Node, path: &str) -> Result<(Option<String>, toml::Table), Error> {
    let mut t = toml::Table::new();
    match n.get("AuthType").and_then(Node::scalar_text).as_deref() {
        Some("NONE") | None => {}
        Some("AWS_IAM") => {
            t.insert("auth".into(), "AWS_IAM".into());
        }
        Some(other) => {
            return Err(n.error(
                &format!("{path}.AuthType"),
                format!("AuthType is NONE or AWS_IAM, not {other:?}"),
            ))
        }
    }
    match n.get("InvokeMode").and_then(Node::scalar_text).as_deref() {
        None | Some("BUFFERED") => {}
        Some("RESPONSE_STREAM") => {
            t.insert("invoke_mode".into(), "RESPONSE_STREAM".into());
        }
        Some(other) => {
            return Err(n.error(
                &format!("{path}.InvokeMode"),
                format!("InvokeMode is BUFFERED or RESPONSE_STREAM, not {other:?}"),
            ))
        }
    }
    if let Some(c) = n.get("Cors") {
        t.insert(
            "cors".into(),
            toml::Value::Table(crate::cfn::cors_table(c, false)),
        );
    }
    let target = n
        .get("TargetFunctionArn")
        .and_then(Node::scalar_text)
        .map(|arn| crate::cfn::qualified_function_of_arn(&arn));
    Ok((target, t))
}

/// A plain `AWS::Lambda::Url`: its function and its `url` table.
fn function_url(props: &Node, path: &str) -> Result<(String, toml::Table), Error> {
    let (target, t) = url_settings(props, path)?;
    let target = target.ok_or_else(|| {
        props.error(
            path,
            "a function URL needs a TargetFunctionArn (!GetAtt Fn.Arn, or an alias's Ref)",
        )
    })?;
    Ok((target, t))
}

/// A function's `Metadata.BuildMethod`, as `sam build` honours it:
/// `esbuild` bundles (its `BuildProperties`: `EntryPoints`, `Minify`,
/// `Sourcemap`, `Target`, `Format`, `External`); `rust-cargolambda` is what
/// a provided function with a Cargo package gets anyway (`cargo build
/// --release`); the language ones (`python3.12`, `nodejs20.x`) install
/// the dependency file, as always; `makefile` is refused.
fn build_method(id: &str, r: &Node) -> Result<Option<toml::Table>, Error> {
    let Some(meta) = r.get("Metadata") else {
        return Ok(None);
    };
    let path = format!("Resources.{id}.Metadata");
    match meta.get("BuildMethod").and_then(Node::as_str) {
        Some("esbuild") => {
            let props = meta.get("BuildProperties");
            let get = |k: &str| props.and_then(|p| p.get(k));
            let list = |k: &str| -> Vec<toml::Value> { crate::openapi::texts(get(k)) };
            let flag = |k: &str| {
                get(k).is_some_and(|n| matches!(n.value, Value::Bool(true)) || n.as_str() == Some("true"))
            };
            let entry = list("EntryPoints");
            if entry.is_empty() {
                return Err(meta.error(
                    &format!("{path}.BuildProperties.EntryPoints"),
                    "BuildMethod esbuild needs BuildProperties.EntryPoints (e.g. [app.ts])",
                ));
            }
            let mut b = toml::Table::new();
            b.insert("entry_points".into(), toml::Value::Array(entry));
            b.insert("minify".into(), flag("Minify").into());
            b.insert("sourcemap".into(), flag("Sourcemap").into());
            if let Some(t) = get("Target").and_then(Node::scalar_text) {
                b.insert("target".into(), t.into());
            }
            if let Some(f) = get("Format").and_then(Node::scalar_text) {
                b.insert("format".into(), f.into());
            }
            let external = list("External");
            if !external.is_empty() {
                b.insert("external".into(), toml::Value::Array(external));
            }
            Ok(Some(b))
        }
        Some("makefile") => Err(meta.error(
            &format!("{path}.BuildMethod"),
            format!("BuildMethod makefile runs `make build-{id}`, which Stratus does not: build the function into its CodeUri (code, a bootstrap or a Cargo package)"),
        )),
        _ => Ok(None),
    }
}

/// A function's `Layers` (their evaluated ARNs) as the folders of the
/// template's layers; a layer that is not the template's (AWS's own, or
/// another account's) is not local: named among what is not run.
fn layers(
    f: &mut toml::Table,
    id: &str,
    props: &[(String, Node)],
    layer_dirs: &BTreeMap<String, String>,
    not_run: &mut Vec<(String, String)>,
) {
    let Some(list) = node_of(props, "Layers").and_then(Node::as_list) else {
        return;
    };
    let mut dirs = Vec::new();
    for arn in list.iter().filter_map(Node::scalar_text) {
        match layer_dirs.get(&arn) {
            Some(dir) => dirs.push(toml::Value::String(dir.clone())),
            None => not_run.push((
                format!("{id} layer {arn}"),
                "AWS::Lambda::LayerVersion".into(),
            )),
        }
    }
    if !dirs.is_empty() {
        f.insert("layers".into(), toml::Value::Array(dirs));
    }
}

/// `ANY` for SAM's `any`, upper case otherwise.
fn method_of(m: &str) -> String {
    m.to_ascii_uppercase()
}

/// The API an event names (`RestApiId: !Ref MyApi`), as its logical id.
fn api_of(props: Option<&Node>, key: &str) -> Option<String> {
    let v = props?.get(key)?;
    v.get("Ref")
        .and_then(Node::as_str)
        .or_else(|| v.as_str())
        .map(str::to_owned)
}

/// A SAM API's CORS as the project's `cors` table: a REST API's `Cors`
/// (a quoted origin, or `AllowOrigin`, `AllowMethods`, `AllowHeaders`,
/// `MaxAge` as quoted header values, `AllowCredentials`), an HTTP API's
/// `CorsConfiguration` (`true`, or lists and numbers).
fn cors(rest: bool, node: &Node, path: &str) -> Result<Option<toml::Table>, Error> {
    let mut t = toml::Table::new();
    let list = |items: Vec<String>| {
        toml::Value::Array(items.into_iter().map(toml::Value::String).collect())
    };
    // A REST API's values are header values in single quotes.
    let unquote = |s: String| s.trim().trim_matches('\'').to_owned();
    let split = |s: String| -> Vec<String> {
        unquote(s)
            .split(',')
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect()
    };
    let methods = |m: Vec<String>| -> Vec<String> {
        m.into_iter()
            .map(|m| {
                if m.eq_ignore_ascii_case("ANY") {
                    "*".to_owned()
                } else {
                    m.to_ascii_uppercase()
                }
            })
            .collect()
    };
    match (&node.value, rest) {
        (Value::Bool(false), _) => return Ok(None),
        (Value::Bool(true), false) => {
            for k in ["allow_origins", "allow_methods", "allow_headers"] {
                t.insert(k.into(), list(vec!["*".into()]));
            }
        }
        (Value::String(origin), true) => {
            t.insert("allow_origins".into(), list(split(origin.clone())));
            t.insert("allow_methods".into(), list(vec!["*".into()]));
        }
        (Value::Map(_), true) => {
            let get = |k: &str| node.get(k).and_then(Node::scalar_text);
            let origin = get("AllowOrigin")
                .ok_or_else(|| node.error(path, "Cors needs AllowOrigin (e.g. \"'*'\")"))?;
            t.insert("allow_origins".into(), list(split(origin)));
            let m = get("AllowMethods").map_or_else(|| vec!["*".to_owned()], split);
            t.insert("allow_methods".into(), list(methods(m)));
            if let Some(h) = get("AllowHeaders") {
                t.insert("allow_headers".into(), list(split(h)));
            }
            if let Some(age) = get("MaxAge").and_then(|a| unquote(a).parse::<i64>().ok()) {
                t.insert("max_age".into(), age.into());
            }
            if let Some(Value::Bool(b)) = node.get("AllowCredentials").map(|n| &n.value) {
                t.insert("allow_credentials".into(), (*b).into());
            }
        }
        (Value::Map(_), false) => {
            let strings = |k: &str| -> Option<Vec<String>> {
                Some(
                    node.get(k)?
                        .as_list()?
                        .iter()
                        .filter_map(Node::scalar_text)
                        .collect(),
                )
            };
            for (k, to) in [
                ("AllowOrigins", "allow_origins"),
                ("AllowHeaders", "allow_headers"),
                ("ExposeHeaders", "expose_headers"),
            ] {
                if let Some(v) = strings(k) {
                    t.insert(to.into(), list(v));
                }
            }
            if let Some(m) = strings("AllowMethods") {
                t.insert("allow_methods".into(), list(methods(m)));
            }
            if let Some(age) = node
                .get("MaxAge")
                .and_then(Node::scalar_text)
                .and_then(|a| a.parse::<i64>().ok())
            {
                t.insert("max_age".into(), age.into());
            }
            if let Some(Value::Bool(b)) = node.get("AllowCredentials").map(|n| &n.value) {
                t.insert("allow_credentials".into(), (*b).into());
            }
        }
        _ => {
            let what = if rest {
                "Cors is a quoted origin (\"'*'\") or a mapping with AllowOrigin"
            } else {
                "CorsConfiguration is true or a mapping (AllowOrigins, AllowMethods, ...)"
            };
            return Err(node.error(path, what));
        }
    }
    Ok(Some(t))
}

/// An S3 CORS rule (`AllowedOrigins`, `AllowedMethods`, `AllowedHeaders`,
/// `ExposedHeaders`, `MaxAge`) as a bucket's `cors`.
fn bucket_cors(rule: &Node) -> toml::Table {
    let mut t = toml::Table::new();
    let strings = |k: &str| -> Option<toml::Value> {
        let l = rule.get(k)?.as_list()?;
        Some(toml::Value::Array(
            l.iter()
                .filter_map(Node::scalar_text)
                .map(toml::Value::String)
                .collect(),
        ))
    };
    for (k, to) in [
        ("AllowedOrigins", "allow_origins"),
        ("AllowedMethods", "allow_methods"),
        ("AllowedHeaders", "allow_headers"),
        ("ExposedHeaders", "expose_headers"),
    ] {
        if let Some(v) = strings(k) {
            t.insert(to.into(), v);
        }
    }
    if let Some(age) = rule
        .get("MaxAge")
        .and_then(Node::scalar_text)
        .and_then(|a| a.parse::<i64>().ok())
    {
        t.insert("max_age".into(), age.into());
    }
    t
}

/// The stage an API table serves (its only one), for usage plans.
fn stage_name(api: &toml::Table, rest: bool) -> String {
    api.get("stages")
        .and_then(toml::Value::as_table)
        .and_then(|t| t.keys().next().cloned())
        .unwrap_or_else(|| {
            if rest {
                "Prod".into()
            } else {
                "$default".into()
            }
        })
}

/// The routes' authorizer and key requirement: the event's own, else the
/// API's default; `NONE` for none.
fn apply_route_defaults(
    api: &mut toml::Table,
    authorizer: Option<&str>,
    key_required: Option<bool>,
) {
    let Some(toml::Value::Table(routes)) = api.get_mut("routes") else {
        return;
    };
    for (_, target) in routes.iter_mut() {
        let Some(t) = target.as_table_mut() else {
            continue;
        };
        if !t.contains_key("authorizer") {
            if let Some(a) = authorizer {
                t.insert("authorizer".into(), a.into());
            }
        }
        if t.get("authorizer").and_then(toml::Value::as_str) == Some("NONE") {
            t.remove("authorizer");
        }
        if !t.contains_key("api_key_required") {
            if let Some(k) = key_required.filter(|k| *k) {
                t.insert("api_key_required".into(), k.into());
            }
        }
    }
}

/// A function an authorizer names (`FunctionArn: !GetAtt Fn.Arn`, evaluated).
pub(crate) fn function_of_arn(arn: &str) -> String {
    arn.rsplit_once(":function:")
        .map_or(arn, |(_, name)| name)
        .split(':')
        .next()
        .unwrap_or(arn)
        .to_owned()
}

/// A SAM API's `Auth`: its authorizers as the API's, its defaults on its
/// routes, and the usage plan it asks for (`CreateUsagePlan`).
fn apply_auth(
    id: &str,
    api: &mut toml::Table,
    rest: bool,
    auth: &Node,
    stage: &str,
    path: &str,
) -> Result<Option<(String, toml::Table, String)>, Error> {
    let list = |items: Vec<String>| {
        toml::Value::Array(items.into_iter().map(toml::Value::String).collect())
    };
    let mut authorizers = toml::Table::new();
    for (name, a) in auth
        .get("Authorizers")
        .and_then(Node::as_map)
        .unwrap_or(&[])
    {
        let apath = format!("{path}.Authorizers.{name}");
        let mut t = toml::Table::new();
        let identity = a.get("Identity");
        let strings = |n: Option<&Node>, k: &str| -> Vec<String> {
            n.and_then(|n| n.get(k))
                .and_then(Node::as_list)
                .map(|l| l.iter().filter_map(Node::scalar_text).collect())
                .unwrap_or_default()
        };
        let ttl = identity
            .and_then(|i| i.get("ReauthorizeEvery"))
            .and_then(Node::scalar_text);
        if let Some(jwt) = a.get("JwtConfiguration").filter(|_| !rest) {
            let issuer = jwt
                .get("issuer")
                .and_then(Node::scalar_text)
                .ok_or_else(|| jwt.error(&apath, "JwtConfiguration needs an issuer"))?;
            let source = a.get("IdentitySource").and_then(Node::scalar_text);
            t = crate::cfn::jwt_authorizer(
                issuer,
                crate::openapi::texts(jwt.get("audience")),
                source,
            );
        } else if let Some(arn) = a.get("FunctionArn").and_then(Node::scalar_text) {
            t.insert("function".into(), function_of_arn(&arn).into());
            let request =
                !rest || a.get("FunctionPayloadType").and_then(Node::as_str) == Some("REQUEST");
            if request {
                t.insert("type".into(), "request".into());
                let mut sources = Vec::new();
                for (k, prefix) in [
                    ("Headers", "$request.header."),
                    ("QueryStrings", "$request.querystring."),
                    ("StageVariables", "$stageVariables."),
                    ("Context", "$context."),
                ] {
                    sources.extend(
                        strings(identity, k)
                            .into_iter()
                            .map(|v| format!("{prefix}{v}")),
                    );
                }
                if !sources.is_empty() {
                    t.insert("identity_source".into(), list(sources));
                }
                if !rest {
                    let payload = a
                        .get("AuthorizerPayloadFormatVersion")
                        .and_then(Node::scalar_text)
                        .unwrap_or_else(|| "2.0".into());
                    let payload = if payload == "1" || payload == "1.0" {
                        "1.0"
                    } else {
                        "2.0"
                    };
                    t.insert("payload".into(), payload.into());
                    if let Some(Value::Bool(b)) = a.get("EnableSimpleResponses").map(|n| &n.value) {
                        t.insert("simple_responses".into(), (*b).into());
                    }
                }
            } else {
                t.insert("type".into(), "token".into());
                let header = identity
                    .and_then(|i| i.get("Header"))
                    .and_then(Node::scalar_text)
                    .unwrap_or_else(|| "Authorization".into());
                t.insert(
                    "identity_source".into(),
                    format!("$request.header.{header}").into(),
                );
                if let Some(v) = identity
                    .and_then(|i| i.get("ValidationExpression"))
                    .and_then(Node::scalar_text)
                {
                    t.insert("identity_validation".into(), v.into());
                }
            }
            if let Some(ttl) = ttl.and_then(|t| t.parse::<i64>().ok()) {
                t.insert("ttl".into(), ttl.into());
            }
        } else {
            return Err(a.error(
                &apath,
                if rest {
                    "an authorizer needs a FunctionArn (Lambda authorizers; Cognito ones are not run yet)"
                } else {
                    "an authorizer needs a JwtConfiguration or a FunctionArn"
                },
            ));
        }
        authorizers.insert(name.clone(), toml::Value::Table(t));
    }
    if !authorizers.is_empty() {
        api.insert("authorizers".into(), toml::Value::Table(authorizers));
    }
    if let Some(rp) = auth.get("ResourcePolicy").filter(|_| rest) {
        crate::settings::sam_resource_policy(api, rp);
    }
    let default = auth.get("DefaultAuthorizer").and_then(Node::scalar_text);
    let key_required = match auth.get("ApiKeyRequired").map(|n| &n.value) {
        Some(Value::Bool(b)) => Some(*b),
        _ => None,
    };
    apply_route_defaults(api, default.as_deref(), key_required.filter(|_| rest));
    let Some(plan) = auth.get("UsagePlan").filter(|_| rest) else {
        return Ok(None);
    };
    let ppath = format!("{path}.UsagePlan");
    let (name, key) = match plan.get("CreateUsagePlan").and_then(Node::as_str) {
        Some("PER_API") => (format!("{id}UsagePlan"), format!("{id}ApiKey")),
        Some("SHARED") => (
            "ServerlessUsagePlan".to_owned(),
            "ServerlessApiKey".to_owned(),
        ),
        Some("NONE") | None => return Ok(None),
        Some(other) => {
            return Err(plan.error(
                &ppath,
                format!("CreateUsagePlan is PER_API, SHARED or NONE, not {other:?}"),
            ))
        }
    };
    let mut t = toml::Table::new();
    t.insert("apis".into(), list(vec![format!("{id}/{stage}")]));
    t.insert("keys".into(), list(vec![key.clone()]));
    if let Some(q) = plan.get("Quota") {
        t.insert(
            "quota".into(),
            toml::Value::Table(crate::cfn::quota_table(q)),
        );
    }
    if let Some(th) = plan.get("Throttle") {
        t.insert(
            "throttle".into(),
            toml::Value::Table(crate::cfn::throttle_table(th)),
        );
    }
    Ok(Some((name, t, key)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    #[test]
    fn aws_urls_of_the_templates_apis_become_local_ones() {
        let rest = api_id("ServerlessRestApi");
        let second = api_id("Second");
        let ids = vec![
            LocalApi {
                id: rest.clone(),
                host_only: false,
            },
            LocalApi {
                id: second.clone(),
                host_only: true,
            },
        ];
        let at: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let aws = format!("https://{rest}.execute-api.us-east-1.amazonaws.com/Prod/hello/");
        assert_eq!(
            localize(&aws, &ids, at),
            "http://127.0.0.1:8080/Prod/hello/"
        );
        let wss = format!("wss://{rest}.execute-api.us-east-1.amazonaws.com/prod");
        assert_eq!(localize(&wss, &ids, at), "ws://127.0.0.1:8080/prod");
        let hosted = format!("https://{second}.execute-api.us-east-1.amazonaws.com/items");
        assert_eq!(
            localize(&hosted, &ids, at),
            format!("http://{second}.execute-api.localhost:8080/items"),
            "an API served only at its own host"
        );
        let other = "https://abcdefghij.execute-api.us-east-1.amazonaws.com/x";
        assert_eq!(
            localize(other, &ids, at),
            other,
            "not one of the template's"
        );
    }

    #[test]
    fn api_ids_are_stable_and_api_gateway_shaped() {
        let id = api_id("ServerlessRestApi");
        assert_eq!(id, api_id("ServerlessRestApi"));
        assert_ne!(id, api_id("ServerlessHttpApi"));
        assert_eq!(id.len(), 10);
        assert!(id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    }

    #[test]
    fn globals_sit_under_a_functions_own_properties() {
        let g = parse("Timeout: 3\nRuntime: python3.12\nEnvironment:\n  Variables: {A: g, B: g}\n")
            .unwrap();
        let own = parse("Timeout: 10\nEnvironment:\n  Variables: {B: own, C: own}\n").unwrap();
        let merged = with_globals(Some(&own), Some(&g));
        assert_eq!(text_of(&merged, "Timeout").as_deref(), Some("10"));
        assert_eq!(text_of(&merged, "Runtime").as_deref(), Some("python3.12"));
        let vars = node_of(&merged, "Environment")
            .unwrap()
            .get("Variables")
            .unwrap();
        let pairs: Vec<(String, String)> = vars
            .as_map()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.scalar_text().unwrap()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("A".into(), "g".into()),
                ("B".into(), "own".into()),
                ("C".into(), "own".into())
            ]
        );
    }
}
