//! A template's values as CloudFormation resolves them for one stack:
//! parameters (with the overrides given), pseudo parameters, mappings and
//! conditions, decided once ([`Stack::new`]); then any part of the
//! template evaluated on demand ([`Stack::eval`]), intrinsic functions
//! replaced by what they give. What a resource's `Ref` and `Fn::GetAtt`
//! give depends on its type, so it is asked of a [`Resources`].
//!
//! `Ref: AWS::NoValue` evaluates to nothing: the key (or list element)
//! holding it is dropped, as CloudFormation drops it.

use std::cell::RefCell;
use std::collections::BTreeMap;

use base64::Engine as _;

use crate::node::{Node, Value};
use crate::Error;

/// The account every ARN carries (Stratus's, as elsewhere).
pub const ACCOUNT_ID: &str = "000000000000";

/// What the stack is created with.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub region: String,
    pub stack_name: String,
    /// `--parameter-overrides Key=Value ...`, in order.
    pub overrides: Vec<(String, String)>,
    /// The local files the template names ([`crate::local_files`]: a SAM
    /// API's `DefinitionUri`, an `AWS::Include`'s `Location`), as the
    /// template spells their paths, with their text.
    pub files: BTreeMap<String, String>,
}

/// What the template's resources give to `Ref` and `Fn::GetAtt`.
pub trait Resources {
    /// Whether `id` is a logical id of the template's resources.
    fn exists(&self, id: &str) -> bool;
    /// `Ref: id` (a function's name, an API's id, ...).
    fn reference(&self, id: &str) -> Result<Value, String>;
    /// `Fn::GetAtt: [id, attribute]`; `Err` says why (an attribute its
    /// type does not have).
    fn attribute(&self, id: &str, attribute: &str) -> Result<Value, String>;
}

/// No resources (conditions may not name any; names being decided may
/// not read another resource's).
pub(crate) struct NoResources;

impl Resources for NoResources {
    fn exists(&self, _: &str) -> bool {
        false
    }
    fn reference(&self, id: &str) -> Result<Value, String> {
        Err(format!("no resource {id:?}"))
    }
    fn attribute(&self, id: &str, _: &str) -> Result<Value, String> {
        Err(format!("no resource {id:?}"))
    }
}

/// A template's parameters, mappings and conditions, resolved.
#[derive(Debug, Clone)]
pub struct Stack {
    region: String,
    stack_name: String,
    /// Each parameter's value: a string, or a list of strings for the list
    /// types.
    parameters: BTreeMap<String, Value>,
    mappings: Option<Node>,
    conditions: BTreeMap<String, bool>,
    files: BTreeMap<String, String>,
}

impl Stack {
    /// Resolves the template's `Parameters`, `Mappings` and `Conditions`;
    /// every mistake, not just the first.
    pub fn new(template: &Node, inputs: &Inputs) -> Result<Stack, Vec<Error>> {
        let mut errors = Vec::new();
        let parameters = parameters(template, &inputs.overrides, &mut errors);
        if !errors.is_empty() {
            // Conditions on a parameter in error would only repeat it.
            return Err(errors);
        }
        let mut stack = Stack {
            region: inputs.region.clone(),
            stack_name: inputs.stack_name.clone(),
            parameters,
            mappings: template.get("Mappings").cloned(),
            conditions: BTreeMap::new(),
            files: inputs.files.clone(),
        };
        if let Some(defs) = template.get("Conditions") {
            match defs.as_map() {
                Some(defs) => {
                    let resolver = Conditions {
                        stack: &stack,
                        defs,
                        done: RefCell::default(),
                        visiting: RefCell::default(),
                    };
                    for (name, body) in defs {
                        if let Err(e) = resolver.get(name, body) {
                            errors.push(e);
                        }
                    }
                    stack.conditions = resolver.done.into_inner();
                }
                None => errors.push(defs.error(
                    "Conditions",
                    "Conditions is a mapping of names to conditions",
                )),
            }
        }
        if errors.is_empty() {
            Ok(stack)
        } else {
            errors.dedup();
            Err(errors)
        }
    }

    /// A parameter's value.
    pub fn parameter(&self, name: &str) -> Option<&Value> {
        self.parameters.get(name)
    }

    /// A condition's value (`None`: no such condition).
    pub fn condition(&self, name: &str) -> Option<bool> {
        self.conditions.get(name).copied()
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn stack_name(&self) -> &str {
        &self.stack_name
    }

    /// A local file the template names, as it spells the path.
    pub fn file(&self, path: &str) -> Option<&str> {
        self.files.get(path).map(String::as_str)
    }

    /// `node` (found at `path`) with every intrinsic function replaced by
    /// its value; `None` when it is `AWS::NoValue`.
    pub fn eval(
        &self,
        node: &Node,
        path: &str,
        resources: &dyn Resources,
    ) -> Result<Option<Node>, Error> {
        let known = |name: &str, at: &Node, path: &str| {
            self.condition(name)
                .ok_or_else(|| at.error(path, format!("no condition {name:?} in Conditions")))
        };
        Eval {
            stack: self,
            resources,
            condition: &known,
        }
        .eval(node, path)
    }

    /// What a pseudo parameter is here (`AWS::NoValue` aside).
    fn pseudo(&self, name: &str) -> Option<Value> {
        let s = |v: String| Some(Value::String(v));
        match name {
            "AWS::Region" => s(self.region.clone()),
            "AWS::AccountId" => s(ACCOUNT_ID.to_owned()),
            "AWS::StackName" => s(self.stack_name.clone()),
            "AWS::StackId" => s(format!(
                "arn:aws:cloudformation:{}:{ACCOUNT_ID}:stack/{}/00000000-0000-0000-0000-000000000000",
                self.region, self.stack_name
            )),
            "AWS::Partition" => s("aws".to_owned()),
            "AWS::URLSuffix" => s("amazonaws.com".to_owned()),
            "AWS::NotificationARNs" => Some(Value::List(Vec::new())),
            _ => None,
        }
    }
}

/// Conditions resolved in dependency order, a cycle named.
struct Conditions<'a> {
    stack: &'a Stack,
    defs: &'a [(String, Node)],
    done: RefCell<BTreeMap<String, bool>>,
    visiting: RefCell<Vec<String>>,
}

impl Conditions<'_> {
    fn get(&self, name: &str, at: &Node) -> Result<bool, Error> {
        if let Some(v) = self.done.borrow().get(name) {
            return Ok(*v);
        }
        let path = format!("Conditions.{name}");
        if self.visiting.borrow().iter().any(|n| n == name) {
            let mut chain = self.visiting.borrow().clone();
            chain.push(name.to_owned());
            return Err(at.error(
                &path,
                format!(
                    "a circular reference between conditions: {}",
                    chain.join(" → ")
                ),
            ));
        }
        let Some((_, body)) = self.defs.iter().find(|(n, _)| n == name) else {
            return Err(at.error(&path, format!("no condition {name:?} in Conditions")));
        };
        self.visiting.borrow_mut().push(name.to_owned());
        let lookup = |n: &str, at: &Node, _: &str| self.get(n, at);
        let value = Eval {
            stack: self.stack,
            resources: &NoResources,
            condition: &lookup,
        }
        .truth(body, &path);
        self.visiting.borrow_mut().pop();
        let value = value?;
        self.done.borrow_mut().insert(name.to_owned(), value);
        Ok(value)
    }
}

type ConditionLookup<'a> = &'a dyn Fn(&str, &Node, &str) -> Result<bool, Error>;

/// One evaluation: the stack, the resources, and how a condition name is
/// looked up (while conditions are resolved, recursively).
struct Eval<'a> {
    stack: &'a Stack,
    resources: &'a dyn Resources,
    condition: ConditionLookup<'a>,
}

fn is_intrinsic(key: &str) -> bool {
    key == "Ref" || key.starts_with("Fn::")
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl Eval<'_> {
    fn eval(&self, n: &Node, path: &str) -> Result<Option<Node>, Error> {
        match &n.value {
            Value::Map(m) if m.len() == 1 && is_intrinsic(&m[0].0) => {
                self.intrinsic(&m[0].0, &m[0].1, n, &child(path, &m[0].0))
            }
            Value::Map(m) => {
                let mut out = Vec::with_capacity(m.len());
                for (k, v) in m {
                    if let Some(v) = self.eval(v, &child(path, k))? {
                        out.push((k.clone(), v));
                    }
                }
                Ok(Some(Node::new(n, Value::Map(out))))
            }
            Value::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, v) in items.iter().enumerate() {
                    if let Some(v) = self.eval(v, &child(path, &i.to_string()))? {
                        out.push(v);
                    }
                }
                Ok(Some(Node::new(n, Value::List(out))))
            }
            _ => Ok(Some(n.clone())),
        }
    }

    /// A value that must be there (not `AWS::NoValue`).
    fn value(&self, n: &Node, path: &str) -> Result<Node, Error> {
        self.eval(n, path)?
            .ok_or_else(|| n.error(path, "AWS::NoValue is not a value here"))
    }

    /// A value that must be a string (numbers and booleans as text).
    fn text(&self, n: &Node, path: &str) -> Result<String, Error> {
        let v = self.value(n, path)?;
        v.scalar_text()
            .ok_or_else(|| n.error(path, "a string is needed here"))
    }

    /// A value that must be a list.
    fn list(&self, n: &Node, path: &str) -> Result<Vec<Node>, Error> {
        match self.value(n, path)?.value {
            Value::List(l) => Ok(l),
            _ => Err(n.error(path, "a list is needed here")),
        }
    }

    /// The arguments of a function that takes a list of `count`.
    fn args<'n>(
        &self,
        arg: &'n Node,
        path: &str,
        name: &str,
        count: usize,
    ) -> Result<&'n [Node], Error> {
        match arg.as_list() {
            Some(l) if l.len() == count => Ok(l),
            _ => Err(arg.error(path, format!("{name} takes a list of {count}"))),
        }
    }

    /// A condition: `{Condition: name}`, a condition function, or `true`/`false`.
    fn truth(&self, n: &Node, path: &str) -> Result<bool, Error> {
        if let Some(name) = n
            .get("Condition")
            .filter(|_| n.as_map().is_some_and(|m| m.len() == 1))
        {
            let name = name
                .as_str()
                .ok_or_else(|| name.error(path, "Condition names a condition"))?;
            return (self.condition)(name, n, path);
        }
        match self.value(n, path)?.value {
            Value::Bool(b) => Ok(b),
            Value::String(s) if s == "true" || s == "false" => Ok(s == "true"),
            _ => Err(n.error(
                path,
                "a condition is needed here (Fn::Equals, Fn::And, Fn::Or, Fn::Not or Condition)",
            )),
        }
    }

    fn intrinsic(
        &self,
        name: &str,
        arg: &Node,
        at: &Node,
        path: &str,
    ) -> Result<Option<Node>, Error> {
        let out = |v: Value| Ok(Some(Node::new(at, v)));
        match name {
            "Ref" => {
                let id = arg
                    .as_str()
                    .ok_or_else(|| arg.error(path, "Ref names a parameter or resource"))?;
                self.reference(id, arg, path)
            }
            "Fn::GetAtt" => {
                let (id, attr) = match &arg.value {
                    Value::String(s) => match s.split_once('.') {
                        Some((a, b)) => (a.to_owned(), b.to_owned()),
                        None => return Err(arg.error(path, "Fn::GetAtt takes [Resource, Attribute]")),
                    },
                    Value::List(l) if l.len() == 2 => {
                        let id = l[0]
                            .as_str()
                            .ok_or_else(|| l[0].error(path, "Fn::GetAtt's first item is a logical id"))?;
                        (id.to_owned(), self.text(&l[1], path)?)
                    }
                    _ => return Err(arg.error(path, "Fn::GetAtt takes [Resource, Attribute]")),
                };
                out(self.attribute(&id, &attr, arg, path)?)
            }
            "Fn::Sub" => out(Value::String(self.sub(arg, path)?)),
            "Fn::Join" => {
                let a = self.args(arg, path, "Fn::Join", 2)?;
                let delim = self.text(&a[0], path)?;
                let parts = self
                    .list(&a[1], path)?
                    .iter()
                    .map(|p| {
                        p.scalar_text()
                            .ok_or_else(|| p.error(path, "Fn::Join joins strings"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                out(Value::String(parts.join(&delim)))
            }
            "Fn::Select" => {
                let a = self.args(arg, path, "Fn::Select", 2)?;
                let index = self.text(&a[0], path)?;
                let list = self.list(&a[1], path)?;
                let i: usize = index
                    .trim()
                    .parse()
                    .map_err(|_| a[0].error(path, format!("Fn::Select's index {index:?} is not a number")))?;
                let len = list.len();
                let picked = list.into_iter().nth(i).ok_or_else(|| {
                    a[0].error(path, format!("Fn::Select: index {i} is past the list's {len} items"))
                })?;
                Ok(Some(picked))
            }
            "Fn::Split" => {
                let a = self.args(arg, path, "Fn::Split", 2)?;
                let delim = self.text(&a[0], path)?;
                let source = self.text(&a[1], path)?;
                if delim.is_empty() {
                    return Err(a[0].error(path, "Fn::Split's delimiter is empty"));
                }
                out(Value::List(
                    source
                        .split(delim.as_str())
                        .map(|p| Node::new(at, Value::String(p.to_owned())))
                        .collect(),
                ))
            }
            "Fn::If" => {
                let a = self.args(arg, path, "Fn::If", 3)?;
                let cond = a[0]
                    .as_str()
                    .ok_or_else(|| a[0].error(path, "Fn::If's first item names a condition"))?;
                let chosen = if (self.condition)(cond, &a[0], path)? { &a[1] } else { &a[2] };
                self.eval(chosen, path)
            }
            "Fn::Equals" => {
                let a = self.args(arg, path, "Fn::Equals", 2)?;
                let (x, y) = (self.value(&a[0], path)?, self.value(&a[1], path)?);
                let same = match (x.scalar_text(), y.scalar_text()) {
                    (Some(x), Some(y)) => x == y,
                    _ => x.value == y.value,
                };
                out(Value::Bool(same))
            }
            "Fn::Not" => {
                let a = self.args(arg, path, "Fn::Not", 1)?;
                out(Value::Bool(!self.truth(&a[0], path)?))
            }
            "Fn::And" | "Fn::Or" => {
                let items = arg
                    .as_list()
                    .filter(|l| (2..=10).contains(&l.len()))
                    .ok_or_else(|| arg.error(path, format!("{name} takes a list of 2 to 10 conditions")))?;
                let mut all = Vec::with_capacity(items.len());
                for c in items {
                    all.push(self.truth(c, path)?);
                }
                let v = if name == "Fn::And" {
                    all.iter().all(|b| *b)
                } else {
                    all.iter().any(|b| *b)
                };
                out(Value::Bool(v))
            }
            "Fn::FindInMap" => {
                let a = self.args(arg, path, "Fn::FindInMap", 3)?;
                let keys = [
                    self.text(&a[0], path)?,
                    self.text(&a[1], path)?,
                    self.text(&a[2], path)?,
                ];
                let mut node = self
                    .stack
                    .mappings
                    .as_ref()
                    .ok_or_else(|| arg.error(path, "Fn::FindInMap, but the template has no Mappings"))?;
                for (depth, k) in keys.iter().enumerate() {
                    node = node.get(k).ok_or_else(|| {
                        let what = ["mapping", "key", "second-level key"][depth];
                        arg.error(path, format!("Fn::FindInMap: no {what} {k:?} in {}", keys[..depth].iter().fold("Mappings".to_owned(), |p, k| format!("{p}.{k}"))))
                    })?;
                }
                Ok(Some(Node::new(at, node.value.clone())))
            }
            "Fn::Base64" => {
                let text = self.text(arg, path)?;
                out(Value::String(base64::engine::general_purpose::STANDARD.encode(text)))
            }
            "Fn::GetAZs" => {
                let region = self.text(arg, path)?;
                let region = if region.is_empty() { self.stack.region.clone() } else { region };
                out(Value::List(
                    ["a", "b", "c"]
                        .iter()
                        .map(|z| Node::new(at, Value::String(format!("{region}{z}"))))
                        .collect(),
                ))
            }
            "Fn::Length" => {
                let n = self.list(arg, path)?.len();
                out(Value::Int(n as i64))
            }
            "Fn::ImportValue" => Err(at.error(
                path,
                "Fn::ImportValue reads another stack's exports, and Stratus runs one template: pass the value as a parameter (--parameter-overrides)",
            )),
            "Fn::Transform" if arg.get("Name").and_then(Node::as_str) == Some("AWS::Include") => {
                let location = arg
                    .get("Parameters")
                    .and_then(|p| p.get("Location"))
                    .ok_or_else(|| at.error(path, "AWS::Include needs Parameters.Location"))?;
                let location = self.text(location, path)?;
                let text = self.stack.file(&location).ok_or_else(|| {
                    at.error(path, format!("AWS::Include: {location:?} is not a file beside the template (an s3:// location is not local)"))
                })?;
                let included = crate::node::parse(text).map_err(|e| {
                    at.error(path, format!("AWS::Include: {location}:{}:{}: {}", e.line, e.column, e.message))
                })?;
                self.eval(&included, path)
            }
            "Fn::Transform" => Err(at.error(
                path,
                "Fn::Transform runs a CloudFormation macro, which cannot run locally (only the SAM transform, AWS::Serverless-2016-10-31, is applied)",
            )),
            other => Err(at.error(
                path,
                format!("{other} is not supported (Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Select, Fn::Split, Fn::If, Fn::Equals, Fn::Not, Fn::And, Fn::Or, Fn::FindInMap, Fn::Base64, Fn::GetAZs and Fn::Length are)"),
            )),
        }
    }

    /// `Ref: id`: a pseudo parameter, a parameter or a resource.
    fn reference(&self, id: &str, at: &Node, path: &str) -> Result<Option<Node>, Error> {
        if id == "AWS::NoValue" {
            return Ok(None);
        }
        let value = if let Some(v) = self.stack.pseudo(id) {
            v
        } else if let Some(v) = self.stack.parameters.get(id) {
            v.clone()
        } else if self.resources.exists(id) {
            self.resources
                .reference(id)
                .map_err(|why| at.error(path, format!("Ref {id}: {why}")))?
        } else {
            return Err(at.error(
                path,
                format!(
                    "Ref {id:?}: no parameter, pseudo parameter or resource has that logical id"
                ),
            ));
        };
        Ok(Some(Node::new(at, value)))
    }

    fn attribute(&self, id: &str, attr: &str, at: &Node, path: &str) -> Result<Value, Error> {
        if !self.resources.exists(id) {
            return Err(at.error(
                path,
                format!("Fn::GetAtt {id}.{attr}: no resource has the logical id {id:?}"),
            ));
        }
        self.resources
            .attribute(id, attr)
            .map_err(|why| at.error(path, format!("Fn::GetAtt {id}.{attr}: {why}")))
    }

    /// `Fn::Sub`: a string, or `[string, {variables}]`; `${Name}`,
    /// `${Resource.Attribute}`, and `${!Literal}` for a literal `${Literal}`.
    fn sub(&self, arg: &Node, path: &str) -> Result<String, Error> {
        let (text_node, vars) = match &arg.value {
            Value::String(_) => (arg, None),
            Value::List(l) if l.len() == 2 => (&l[0], Some(&l[1])),
            _ => return Err(arg.error(path, "Fn::Sub takes a string, or [string, {variables}]")),
        };
        let text = text_node
            .as_str()
            .ok_or_else(|| text_node.error(path, "Fn::Sub's template is a string"))?;
        let mut values: BTreeMap<&str, String> = BTreeMap::new();
        if let Some(vars) = vars {
            let map = vars
                .as_map()
                .ok_or_else(|| vars.error(path, "Fn::Sub's variables are a mapping"))?;
            for (k, v) in map {
                values.insert(k, self.text(v, &child(path, k))?);
            }
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let Some(end) = after.find('}') else {
                return Err(text_node.error(path, format!("Fn::Sub: an unclosed ${{ in {text:?}")));
            };
            let name = &after[..end];
            rest = &after[end + 1..];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
                continue;
            }
            let name = name.trim();
            if name.is_empty() {
                return Err(text_node.error(path, format!("Fn::Sub: an empty ${{}} in {text:?}")));
            }
            if let Some(v) = values.get(name) {
                out.push_str(v);
                continue;
            }
            let value = match name.split_once('.') {
                Some((id, attr)) if !name.starts_with("AWS::") => {
                    self.attribute(id, attr, text_node, path)?
                }
                _ => match self.reference(name, text_node, path)? {
                    Some(n) => n.value,
                    None => {
                        return Err(text_node.error(path, "Fn::Sub: ${AWS::NoValue} is not a value"))
                    }
                },
            };
            let piece = Node::new(text_node, value).scalar_text().ok_or_else(|| {
                text_node.error(
                    path,
                    format!("Fn::Sub: ${{{name}}} is a list, not a string (use Fn::Join)"),
                )
            })?;
            out.push_str(&piece);
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// The value of every parameter: the override, else the default, checked
/// against the parameter's type and constraints.
fn parameters(
    template: &Node,
    overrides: &[(String, String)],
    errors: &mut Vec<Error>,
) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let declared = template.get("Parameters");
    let defs: &[(String, Node)] = declared.and_then(Node::as_map).unwrap_or(&[]);
    for (name, _) in overrides {
        if !defs.iter().any(|(n, _)| n == name) {
            let known: Vec<&str> = defs.iter().map(|(n, _)| n.as_str()).collect();
            let at = declared.unwrap_or(template);
            errors.push(at.error(
                "Parameters",
                format!(
                    "--parameter-overrides names {name:?}, which is not a parameter of the template (its parameters: {})",
                    if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                ),
            ));
        }
    }
    for (name, def) in defs {
        let path = format!("Parameters.{name}");
        match parameter(name, def, overrides, &path) {
            Ok(v) => {
                out.insert(name.clone(), v);
            }
            Err(e) => errors.push(e),
        }
    }
    out
}

fn parameter(
    name: &str,
    def: &Node,
    overrides: &[(String, String)],
    path: &str,
) -> Result<Value, Error> {
    let ty = def.get("Type").and_then(Node::as_str).ok_or_else(|| {
        def.error(
            path,
            "a parameter needs a Type (String, Number, List<Number>, CommaDelimitedList, ...)",
        )
    })?;
    let given = overrides
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone());
    let text = match given.or_else(|| def.get("Default").and_then(Node::scalar_text)) {
        Some(t) => t,
        None if ty.starts_with("AWS::SSM::Parameter::Value<") => {
            return Err(def.error(path, format!("{ty} is read from SSM Parameter Store, which Stratus does not have: give the value with --parameter-overrides {name}=VALUE")))
        }
        None => {
            return Err(def.error(path, format!("parameter {name} has no Default: give it with --parameter-overrides {name}=VALUE")))
        }
    };
    let list = ty == "CommaDelimitedList" || ty.starts_with("List<");
    let items: Vec<String> = if list {
        text.split(',').map(str::to_owned).collect()
    } else {
        vec![text.clone()]
    };
    let numeric = ty == "Number" || ty == "List<Number>";
    if !(list || numeric || ty == "String" || ty.starts_with("AWS::")) {
        return Err(def.error(path, format!("{ty:?} is not a parameter type (String, Number, List<Number>, CommaDelimitedList, AWS::... types)")));
    }
    for item in &items {
        check_constraints(def, path, item, numeric)?;
    }
    Ok(if list {
        Value::List(
            items
                .into_iter()
                .map(|i| Node::new(def, Value::String(i)))
                .collect(),
        )
    } else {
        Value::String(text)
    })
}

fn check_constraints(def: &Node, path: &str, v: &str, numeric: bool) -> Result<(), Error> {
    if numeric {
        let n: f64 = v
            .trim()
            .parse()
            .map_err(|_| def.error(path, format!("{v:?} is not a number")))?;
        let bound = |k: &str| {
            def.get(k)
                .and_then(Node::scalar_text)
                .and_then(|t| t.parse::<f64>().ok())
        };
        if bound("MinValue").is_some_and(|m| n < m) || bound("MaxValue").is_some_and(|m| n > m) {
            return Err(def.error(path, format!("{v} is outside MinValue..MaxValue")));
        }
    } else {
        let len = v.chars().count();
        let bound = |k: &str| {
            def.get(k)
                .and_then(Node::scalar_text)
                .and_then(|t| t.parse::<usize>().ok())
        };
        if bound("MinLength").is_some_and(|m| len < m)
            || bound("MaxLength").is_some_and(|m| len > m)
        {
            return Err(def.error(path, format!("{v:?} is outside MinLength..MaxLength")));
        }
    }
    if let Some(allowed) = def.get("AllowedValues").and_then(Node::as_list) {
        let allowed: Vec<String> = allowed.iter().filter_map(Node::scalar_text).collect();
        if !allowed.iter().any(|a| a == v) {
            let msg = def
                .get("ConstraintDescription")
                .and_then(Node::as_str)
                .map_or_else(
                    || {
                        format!(
                            "{v:?} is not one of the AllowedValues ({})",
                            allowed.join(", ")
                        )
                    },
                    str::to_owned,
                );
            return Err(def.error(path, msg));
        }
    }
    if let Some(pattern) = def.get("AllowedPattern").and_then(Node::as_str) {
        let re = regex::Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| def.error(path, format!("AllowedPattern is not a pattern: {e}")))?;
        if !re.is_match(v) {
            return Err(def.error(
                path,
                format!("{v:?} does not match AllowedPattern {pattern:?}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    /// us-east-1, stack `s`, no overrides.
    fn plain_inputs() -> Inputs {
        Inputs {
            region: "us-east-1".into(),
            stack_name: "s".into(),
            overrides: vec![],
            files: BTreeMap::new(),
        }
    }

    /// Two resources: `Fn` (a function) and `Api` (an API).
    struct Fake;

    impl Resources for Fake {
        fn exists(&self, id: &str) -> bool {
            matches!(id, "Fn" | "Api")
        }
        fn reference(&self, id: &str) -> Result<Value, String> {
            Ok(Value::String(format!("{id}-ref")))
        }
        fn attribute(&self, id: &str, attribute: &str) -> Result<Value, String> {
            match (id, attribute) {
                ("Fn", "Arn") => Ok(Value::String("arn:fn".into())),
                ("Api", "RootResourceId") => Ok(Value::String("root1".into())),
                _ => Err(format!("{id} has no attribute {attribute}")),
            }
        }
    }

    const TEMPLATE: &str = r#"
Parameters:
  Env:
    Type: String
    Default: dev
    AllowedValues: [dev, prod]
  Size:
    Type: Number
    Default: 128
    MinValue: 128
  Zones:
    Type: CommaDelimitedList
    Default: "a,b,c"
Mappings:
  Sizes:
    dev: {Memory: 128}
    prod: {Memory: 1024}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  NotProd: !Not [!Condition IsProd]
  Both: !And [!Condition IsProd, !Equals [!Ref Size, 128]]
  Either: !Or [!Condition IsProd, !Condition NotProd]
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Name: !Sub "${AWS::StackName}-${Env}-fn"
      Long: !Sub ["${Greeting}, ${Fn.Arn} in ${AWS::Region} (${!Literal})", {Greeting: !Join [" ", [hello, there]]}]
      Memory: !FindInMap [Sizes, !Ref Env, Memory]
      Zone: !Select [1, !Ref Zones]
      Parts: !Split ["-", "x-y-z"]
      Code: !Base64 "hi"
      AZ: !Select [0, !GetAZs ""]
      Root: !GetAtt Api.RootResourceId
      Id: !Ref Api
      Tracing: !If [IsProd, Active, !Ref "AWS::NoValue"]
      Account: !Ref AWS::AccountId
      Count: !Length [1, 2, 3]
"#;

    fn stack(overrides: &[(&str, &str)]) -> Result<(Node, Stack), Vec<Error>> {
        let t = parse(TEMPLATE).unwrap();
        let inputs = Inputs {
            region: "eu-west-1".into(),
            stack_name: "demo".into(),
            overrides: overrides
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            files: BTreeMap::new(),
        };
        let s = Stack::new(&t, &inputs)?;
        Ok((t, s))
    }

    fn props(t: &Node, s: &Stack) -> Node {
        let p = t
            .get("Resources")
            .unwrap()
            .get("Fn")
            .unwrap()
            .get("Properties")
            .unwrap();
        s.eval(p, "Resources.Fn.Properties", &Fake)
            .unwrap()
            .unwrap()
    }

    fn text<'a>(n: &'a Node, key: &str) -> &'a str {
        n.get(key)
            .unwrap_or_else(|| panic!("no {key}"))
            .as_str()
            .unwrap_or_else(|| panic!("{key} is not a string"))
    }

    #[test]
    fn intrinsics_resolve_as_cloudformation_resolves_them() {
        let (t, s) = stack(&[]).unwrap();
        let p = props(&t, &s);
        assert_eq!(text(&p, "Name"), "demo-dev-fn");
        assert_eq!(
            text(&p, "Long"),
            "hello there, arn:fn in eu-west-1 (${Literal})"
        );
        assert_eq!(p.get("Memory").unwrap().value, Value::Int(128));
        assert_eq!(text(&p, "Zone"), "b");
        let parts: Vec<&str> = p
            .get("Parts")
            .unwrap()
            .as_list()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        assert_eq!(parts, ["x", "y", "z"]);
        assert_eq!(text(&p, "Code"), "aGk=");
        assert_eq!(text(&p, "AZ"), "eu-west-1a");
        assert_eq!(text(&p, "Root"), "root1");
        assert_eq!(text(&p, "Id"), "Api-ref");
        assert_eq!(text(&p, "Account"), ACCOUNT_ID);
        assert_eq!(p.get("Count").unwrap().value, Value::Int(3));
        // AWS::NoValue drops the key.
        assert!(p.get("Tracing").is_none());
    }

    #[test]
    fn overrides_change_parameters_and_the_conditions_on_them() {
        let (_, dev) = stack(&[]).unwrap();
        assert_eq!(
            (
                dev.condition("IsProd"),
                dev.condition("NotProd"),
                dev.condition("Both"),
                dev.condition("Either")
            ),
            (Some(false), Some(true), Some(false), Some(true))
        );
        let (t, prod) = stack(&[("Env", "prod"), ("Size", "256")]).unwrap();
        assert_eq!(prod.condition("IsProd"), Some(true));
        assert_eq!(prod.condition("Both"), Some(false), "Size is 256");
        let p = props(&t, &prod);
        assert_eq!(text(&p, "Tracing"), "Active");
        assert_eq!(p.get("Memory").unwrap().value, Value::Int(1024));
        assert_eq!(prod.parameter("Size"), Some(&Value::String("256".into())));
    }

    #[test]
    fn parameter_mistakes_are_all_named() {
        let errors = stack(&[("Env", "staging"), ("Size", "12"), ("Nope", "1")]).unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 3, "{text:#?}");
        assert!(
            text.iter()
                .any(|e| e.contains("Parameters.Env") && e.contains("AllowedValues (dev, prod)")),
            "{text:#?}"
        );
        assert!(
            text.iter()
                .any(|e| e.contains("Parameters.Size") && e.contains("MinValue")),
            "{text:#?}"
        );
        assert!(
            text.iter()
                .any(|e| e.contains("\"Nope\", which is not a parameter")
                    && e.contains("Env, Size, Zones")),
            "{text:#?}"
        );
        let t = parse("Parameters:\n  Name:\n    Type: String\n").unwrap();
        let inputs = plain_inputs();
        let e = Stack::new(&t, &inputs).unwrap_err();
        assert_eq!(e[0].line, 3);
        assert!(
            e[0].message.contains("--parameter-overrides Name=VALUE"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn a_circular_condition_is_named_with_its_chain() {
        let t = parse("Conditions:\n  A: !Condition B\n  B: !Not [!Condition A]\n").unwrap();
        let inputs = plain_inputs();
        let e = Stack::new(&t, &inputs).unwrap_err();
        assert!(e[0].message.contains("A → B → A"), "{}", e[0]);
    }

    #[test]
    fn bad_references_name_their_place() {
        let t = parse("Resources:\n  Fn:\n    Type: X\n    Properties:\n      A: !Ref Ghost\n      B: !GetAtt Fn.Color\n      C: !Sub \"${Missing\"\n      D: !ImportValue shared\n").unwrap();
        let inputs = plain_inputs();
        let s = Stack::new(&t, &inputs).unwrap();
        let p = t
            .get("Resources")
            .unwrap()
            .get("Fn")
            .unwrap()
            .get("Properties")
            .unwrap();
        let one = |k: &str| {
            s.eval(
                p.get(k).unwrap(),
                &format!("Resources.Fn.Properties.{k}"),
                &Fake,
            )
            .unwrap_err()
        };
        let a = one("A");
        assert_eq!(a.line, 5);
        assert_eq!(a.path, "Resources.Fn.Properties.A.Ref");
        assert!(a.message.contains("\"Ghost\""), "{a}");
        assert!(one("B").message.contains("Fn has no attribute Color"));
        assert!(one("C").message.contains("unclosed"));
        assert!(one("D").message.contains("another stack's exports"));
    }
}
