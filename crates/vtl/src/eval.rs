//! Rendering: nodes, a scope of variables and `$input` → text.

use std::cell::OnceCell;

use base64::Engine as _;

use crate::parse::{Expr, Node, Op, Reference, Segment};
use crate::{Input, Value, Vars};

/// API Gateway's limit on one `#foreach`.
const MAX_ITERATIONS: usize = 1000;
/// Nodes and expressions one rendering may evaluate.
const MAX_STEPS: usize = 1_000_000;
/// The most one rendering may write (API Gateway's payload limit).
const MAX_OUTPUT: usize = 10 * 1024 * 1024;

enum Flow {
    Go,
    Break,
    Stop,
}

struct Eval<'a, 'i> {
    input: &'a Input<'i>,
    /// The body as JSON, parsed at its first use (a body that is not JSON
    /// is a JSON string of itself).
    json: OnceCell<serde_json::Value>,
    vars: &'a mut Vars,
    out: String,
    steps: usize,
}

pub(crate) fn render(nodes: &[Node], input: &Input<'_>, vars: &mut Vars) -> Result<String, String> {
    let mut e = Eval {
        input,
        json: OnceCell::new(),
        vars,
        out: String::new(),
        steps: 0,
    };
    e.nodes(nodes)?;
    Ok(e.out)
}

impl Eval<'_, '_> {
    fn step(&mut self) -> Result<(), String> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(format!("the template did more than {MAX_STEPS} steps"));
        }
        if self.out.len() > MAX_OUTPUT {
            return Err(format!("the template wrote more than {MAX_OUTPUT} bytes"));
        }
        Ok(())
    }

    fn nodes(&mut self, nodes: &[Node]) -> Result<Flow, String> {
        for n in nodes {
            self.step()?;
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Ref(r) => {
                    let v = self.reference(r)?;
                    match v {
                        Value::Null if r.quiet => {}
                        Value::Null => self.out.push_str(&r.source),
                        v => v.render_into_string(&mut self.out),
                    }
                }
                Node::Set(target, expr) => {
                    let v = self.expr(expr)?;
                    // Velocity 1.7: a null leaves the variable as it was.
                    if !v.is_null() {
                        self.assign(target, v);
                    }
                }
                Node::If(arms, otherwise) => {
                    let mut taken = None;
                    for (cond, body) in arms {
                        if self.expr(cond)?.truthy() {
                            taken = Some(body);
                            break;
                        }
                    }
                    if let Some(body) = taken.or(otherwise.as_ref()) {
                        match self.nodes(body)? {
                            Flow::Go => {}
                            other => return Ok(other),
                        }
                    }
                }
                Node::Foreach(var, list, body) => {
                    let items = match self.expr(list)? {
                        Value::List(l) => l,
                        Value::Map(m) => m.into_iter().map(|(_, v)| v).collect(),
                        _ => Vec::new(),
                    };
                    if items.len() > MAX_ITERATIONS {
                        return Err(format!(
                            "#foreach over {} items (the limit is {MAX_ITERATIONS})",
                            items.len()
                        ));
                    }
                    let saved_var = self.vars.remove(var);
                    let saved_loop = self.vars.remove("foreach");
                    let saved_count = self.vars.remove("velocityCount");
                    let n = items.len();
                    let mut flow = Flow::Go;
                    for (i, item) in items.into_iter().enumerate() {
                        self.vars.insert(var.clone(), item);
                        self.vars.insert(
                            "foreach".into(),
                            Value::map([
                                ("index", Value::Int(i as i64)),
                                ("count", Value::Int(i as i64 + 1)),
                                ("hasNext", Value::Bool(i + 1 < n)),
                                ("first", Value::Bool(i == 0)),
                                ("last", Value::Bool(i + 1 == n)),
                            ]),
                        );
                        self.vars
                            .insert("velocityCount".into(), Value::Int(i as i64 + 1));
                        match self.nodes(body)? {
                            Flow::Go => {}
                            Flow::Break => break,
                            Flow::Stop => {
                                flow = Flow::Stop;
                                break;
                            }
                        }
                    }
                    restore(self.vars, var, saved_var);
                    restore(self.vars, "foreach", saved_loop);
                    restore(self.vars, "velocityCount", saved_count);
                    if let Flow::Stop = flow {
                        return Ok(Flow::Stop);
                    }
                }
                Node::Break => return Ok(Flow::Break),
                Node::Stop => return Ok(Flow::Stop),
            }
        }
        Ok(Flow::Go)
    }

    /// `#set($a.b.c = v)`: maps on the way are made as needed.
    fn assign(&mut self, target: &Reference, v: Value) {
        let names: Vec<&str> = target
            .path
            .iter()
            .filter_map(|s| match s {
                Segment::Property(p) => Some(p.as_str()),
                _ => None,
            })
            .collect();
        let Some((last, inner)) = names.split_last() else {
            self.vars.insert(target.root.clone(), v);
            return;
        };
        let mut slot = self
            .vars
            .entry(target.root.clone())
            .or_insert_with(|| Value::Map(Vec::new()));
        for name in inner {
            if slot.get(name).is_none_or(|x| !matches!(x, Value::Map(_))) {
                slot.insert(name, Value::Map(Vec::new()));
            }
            match slot.get_mut(name) {
                Some(next) => slot = next,
                None => return,
            }
        }
        if !matches!(slot, Value::Map(_)) {
            *slot = Value::Map(Vec::new());
        }
        slot.insert(last, v);
    }

    fn json(&self) -> &serde_json::Value {
        self.json.get_or_init(|| {
            serde_json::from_str(self.input.body)
                .unwrap_or_else(|_| serde_json::Value::String(self.input.body.to_owned()))
        })
    }

    fn select(&self, path: &str) -> Result<Value, String> {
        select_in(self.json(), path)
    }

    fn reference(&mut self, r: &Reference) -> Result<Value, String> {
        let mut segments = r.path.as_slice();
        let mut v = match r.root.as_str() {
            "input" => {
                let Some((first, rest)) = segments.split_first() else {
                    return Ok(Value::Null);
                };
                segments = rest;
                self.input_call(first)?
            }
            "util" => {
                let Some((Segment::Method(name, args), rest)) = segments.split_first() else {
                    return Ok(Value::Null);
                };
                segments = rest;
                let args = self.args(args)?;
                util(name, &args)?
            }
            root => {
                // `$list.add(x)`, `$map.put(k, v)`: change the variable.
                if let Some((Segment::Method(m, args), inner)) = segments.split_last() {
                    if MUTATORS.contains(&m.as_str()) && self.vars.contains_key(root) {
                        let args = self.args(args)?;
                        let indices = self.indices(inner)?;
                        return Ok(self.mutate(root, &indices, m, args));
                    }
                }
                self.vars.get(root).cloned().unwrap_or(Value::Null)
            }
        };
        for s in segments {
            self.step()?;
            v = match s {
                Segment::Property(p) => property(&v, p),
                Segment::Index(e) => {
                    let i = self.expr(e)?;
                    index(&v, &i)
                }
                Segment::Method(m, args) => {
                    let args = self.args(args)?;
                    method(&v, m, &args)?
                }
            };
        }
        Ok(v)
    }

    /// The keys of a path of properties and indices, for a mutation.
    fn indices(&mut self, segments: &[Segment]) -> Result<Vec<Value>, String> {
        let mut out = Vec::new();
        for s in segments {
            match s {
                Segment::Property(p) => out.push(Value::str(p.clone())),
                Segment::Index(e) => out.push(self.expr(e)?),
                Segment::Method(..) => return Ok(Vec::new()),
            }
        }
        Ok(out)
    }

    fn mutate(&mut self, root: &str, path: &[Value], m: &str, args: Vec<Value>) -> Value {
        let Some(mut slot) = self.vars.get_mut(root) else {
            return Value::Null;
        };
        for k in path {
            slot = match (slot, k) {
                (Value::Map(m), Value::Str(key)) => match m.iter_mut().find(|(kk, _)| kk == key) {
                    Some((_, v)) => v,
                    None => return Value::Null,
                },
                (Value::List(l), Value::Int(i)) => {
                    match usize::try_from(*i).ok().and_then(|i| l.get_mut(i)) {
                        Some(v) => v,
                        None => return Value::Null,
                    }
                }
                _ => return Value::Null,
            };
        }
        let mut args = args.into_iter();
        match (slot, m) {
            (Value::List(l), "add") => {
                if l.len() >= MAX_ITERATIONS * 10 {
                    return Value::Bool(false);
                }
                l.push(args.next().unwrap_or(Value::Null));
                Value::Bool(true)
            }
            (Value::List(l), "addAll") => {
                if let Some(Value::List(more)) = args.next() {
                    l.extend(more);
                }
                Value::Bool(true)
            }
            (Value::List(l), "remove") => match args.next() {
                Some(Value::Int(i)) if (i as usize) < l.len() && i >= 0 => l.remove(i as usize),
                _ => Value::Null,
            },
            (Value::List(l), "clear") => {
                l.clear();
                Value::Null
            }
            (m @ Value::Map(_), "put") => {
                let key = args.next().map(|k| k.render()).unwrap_or_default();
                let v = args.next().unwrap_or(Value::Null);
                let old = m.get(&key).cloned().unwrap_or(Value::Null);
                m.insert(&key, v);
                old
            }
            (Value::Map(m), "putAll") => {
                if let Some(Value::Map(more)) = args.next() {
                    for (k, v) in more {
                        match m.iter_mut().find(|(kk, _)| *kk == k) {
                            Some(slot) => slot.1 = v,
                            None => m.push((k, v)),
                        }
                    }
                }
                Value::Null
            }
            (Value::Map(m), "remove") => {
                let key = args.next().map(|k| k.render()).unwrap_or_default();
                match m.iter().position(|(k, _)| *k == key) {
                    Some(i) => m.remove(i).1,
                    None => Value::Null,
                }
            }
            (Value::Map(m), "clear") => {
                m.clear();
                Value::Null
            }
            _ => Value::Null,
        }
    }

    fn input_call(&mut self, s: &Segment) -> Result<Value, String> {
        let input = self.input;
        Ok(match s {
            Segment::Property(p) if p == "body" => Value::str(input.body),
            Segment::Method(m, args) => {
                let args = self.args(args)?;
                let arg = args.first().map(Value::render);
                match (m.as_str(), arg) {
                    ("body", _) => Value::str(input.body),
                    ("json", Some(p)) => match self.select(&p)? {
                        Value::Null => Value::str(""),
                        v => Value::Str(v.to_json()),
                    },
                    ("path", Some(p)) => self.select(&p)?,
                    ("params", None) => Value::map([
                        ("path", pairs(input.path)),
                        ("querystring", pairs(input.querystring)),
                        ("header", pairs(input.header)),
                    ]),
                    // A path parameter, else a query string, else a header
                    // (names of headers in any case); "" when none.
                    ("params", Some(name)) => {
                        let found = find(input.path, &name, false)
                            .or_else(|| find(input.querystring, &name, false))
                            .or_else(|| find(input.header, &name, true));
                        Value::str(found.unwrap_or_default())
                    }
                    _ => Value::Null,
                }
            }
            _ => Value::Null,
        })
    }

    fn args(&mut self, args: &[Expr]) -> Result<Vec<Value>, String> {
        args.iter().map(|a| self.expr(a)).collect()
    }

    fn expr(&mut self, e: &Expr) -> Result<Value, String> {
        self.step()?;
        Ok(match e {
            Expr::Literal(v) => v.clone(),
            Expr::Interpolated(nodes) => {
                let outer = std::mem::take(&mut self.out);
                let r = self.nodes(nodes);
                let inner = std::mem::replace(&mut self.out, outer);
                r?;
                Value::Str(inner)
            }
            Expr::Ref(r) => self.reference(r)?,
            Expr::List(items) => Value::List(self.args(items)?),
            Expr::Range(a, b) => {
                let (a, b) = (self.expr(a)?, self.expr(b)?);
                match (as_int(&a), as_int(&b)) {
                    (Some(a), Some(b)) => {
                        let n = (a - b).unsigned_abs() as usize + 1;
                        if n > MAX_ITERATIONS {
                            return Err(format!(
                                "a range of {n} values (the limit is {MAX_ITERATIONS})"
                            ));
                        }
                        if a <= b {
                            Value::List((a..=b).map(Value::Int).collect())
                        } else {
                            Value::List((b..=a).rev().map(Value::Int).collect())
                        }
                    }
                    _ => Value::Null,
                }
            }
            Expr::Map(pairs) => {
                let mut m = Value::Map(Vec::new());
                for (k, v) in pairs {
                    let k = self.expr(k)?.render();
                    let v = self.expr(v)?;
                    m.insert(&k, v);
                }
                m
            }
            Expr::Not(e) => Value::Bool(!self.expr(e)?.truthy()),
            Expr::Neg(e) => match self.expr(e)? {
                Value::Int(i) => Value::Int(-i),
                Value::Float(f) => Value::Float(-f),
                _ => Value::Null,
            },
            Expr::Binary(Op::Or, a, b) => {
                Value::Bool(self.expr(a)?.truthy() || self.expr(b)?.truthy())
            }
            Expr::Binary(Op::And, a, b) => {
                Value::Bool(self.expr(a)?.truthy() && self.expr(b)?.truthy())
            }
            Expr::Binary(op, a, b) => {
                let (a, b) = (self.expr(a)?, self.expr(b)?);
                binary(*op, &a, &b)
            }
        })
    }
}

/// The values a JSONPath selects: one value for a path that names one
/// place (`$.a.b`, `$.a[0]`), else a list.
pub(crate) fn select_in(json: &serde_json::Value, path: &str) -> Result<Value, String> {
    let p = serde_json_path::JsonPath::parse(path)
        .map_err(|e| format!("{path:?} is not a JSONPath: {e}"))?;
    let found = p.query(json).all();
    let singular = !path.contains(['*', '?', ':', ',']) && !path.contains("..");
    Ok(if singular {
        found.first().map_or(Value::Null, |v| Value::from(*v))
    } else {
        Value::List(found.into_iter().map(Value::from).collect())
    })
}

const MUTATORS: &[&str] = &["add", "addAll", "put", "putAll", "remove", "clear"];

fn restore(vars: &mut Vars, name: &str, saved: Option<Value>) {
    match saved {
        Some(v) => {
            vars.insert(name.to_owned(), v);
        }
        None => {
            vars.remove(name);
        }
    }
}

fn pairs(p: &[(String, String)]) -> Value {
    Value::Map(
        p.iter()
            .map(|(k, v)| (k.clone(), Value::Str(v.clone())))
            .collect(),
    )
}

fn find(p: &[(String, String)], name: &str, any_case: bool) -> Option<String> {
    p.iter()
        .find(|(k, _)| {
            if any_case {
                k.eq_ignore_ascii_case(name)
            } else {
                k == name
            }
        })
        .map(|(_, v)| v.clone())
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Float(f) => Some(*f as i64),
        Value::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

fn binary(op: Op, a: &Value, b: &Value) -> Value {
    use std::cmp::Ordering;
    let order = || -> Option<Ordering> {
        match (a, b) {
            (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
            _ => as_f64(a)?.partial_cmp(&as_f64(b)?),
        }
    };
    match op {
        Op::Eq => Value::Bool(equal(a, b)),
        Op::Ne => Value::Bool(!equal(a, b)),
        Op::Lt => Value::Bool(order() == Some(Ordering::Less)),
        Op::Le => Value::Bool(matches!(order(), Some(Ordering::Less | Ordering::Equal))),
        Op::Gt => Value::Bool(order() == Some(Ordering::Greater)),
        Op::Ge => Value::Bool(matches!(order(), Some(Ordering::Greater | Ordering::Equal))),
        Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Mod => arithmetic(op, a, b),
        Op::Or | Op::And => unreachable!("short-circuited"),
    }
}

/// Velocity 1.7: numbers by value, same kinds as they are, different
/// kinds by their text.
fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            as_f64(a) == as_f64(b)
        }
        (Value::Null, Value::Null) => true,
        (Value::Null, _) | (_, Value::Null) => false,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        _ => a.render() == b.render(),
    }
}

fn arithmetic(op: Op, a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => {
            let r = match op {
                Op::Add => x.checked_add(*y),
                Op::Sub => x.checked_sub(*y),
                Op::Mul => x.checked_mul(*y),
                Op::Div => x.checked_div(*y),
                Op::Mod => x.checked_rem(*y),
                _ => None,
            };
            r.map_or(Value::Null, Value::Int)
        }
        _ => match (as_f64(a), as_f64(b)) {
            (Some(x), Some(y)) => {
                let r = match op {
                    Op::Add => x + y,
                    Op::Sub => x - y,
                    Op::Mul => x * y,
                    Op::Div if y != 0.0 => x / y,
                    Op::Mod if y != 0.0 => x % y,
                    _ => return Value::Null,
                };
                Value::Float(r)
            }
            _ => Value::Null,
        },
    }
}

fn property(v: &Value, p: &str) -> Value {
    match v {
        Value::Map(_) => v.get(p).cloned().unwrap_or(Value::Null),
        // Velocity's getters: `$list.empty`, `$s.empty`.
        Value::List(l) if p == "empty" => Value::Bool(l.is_empty()),
        Value::Str(s) if p == "empty" => Value::Bool(s.is_empty()),
        _ => Value::Null,
    }
}

fn index(v: &Value, i: &Value) -> Value {
    match (v, i) {
        (Value::List(l), Value::Int(n)) => usize::try_from(*n)
            .ok()
            .and_then(|n| l.get(n))
            .cloned()
            .unwrap_or(Value::Null),
        (Value::Map(_), k) => v.get(&k.render()).cloned().unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

fn str_arg(args: &[Value], i: usize) -> Option<String> {
    args.get(i).map(Value::render)
}

fn int_arg(args: &[Value], i: usize) -> Option<i64> {
    args.get(i).and_then(as_int)
}

/// A method of a string, list, map or number, as Java's.
fn method(v: &Value, m: &str, args: &[Value]) -> Result<Value, String> {
    let regex = |p: &str| {
        regex::Regex::new(p).map_err(|e| format!("{p:?} is not a regular expression: {e}"))
    };
    Ok(match (v, m) {
        (_, "toString") => Value::Str(v.render()),
        (_, "equals") => Value::Bool(args.first().is_some_and(|a| equal(v, a))),
        (Value::Str(s), "length") => Value::Int(s.chars().count() as i64),
        (Value::Str(s), "isEmpty") => Value::Bool(s.is_empty()),
        (Value::Str(s), "toLowerCase") => Value::Str(s.to_lowercase()),
        (Value::Str(s), "toUpperCase") => Value::Str(s.to_uppercase()),
        (Value::Str(s), "trim") => Value::str(s.trim()),
        (Value::Str(s), "contains") => {
            Value::Bool(str_arg(args, 0).is_some_and(|a| s.contains(&a)))
        }
        (Value::Str(s), "startsWith") => {
            Value::Bool(str_arg(args, 0).is_some_and(|a| s.starts_with(&a)))
        }
        (Value::Str(s), "endsWith") => {
            Value::Bool(str_arg(args, 0).is_some_and(|a| s.ends_with(&a)))
        }
        (Value::Str(s), "equalsIgnoreCase") => {
            Value::Bool(str_arg(args, 0).is_some_and(|a| a.to_lowercase() == s.to_lowercase()))
        }
        (Value::Str(s), "indexOf" | "lastIndexOf") => {
            let a = str_arg(args, 0).unwrap_or_default();
            let at = if m == "indexOf" {
                s.find(&a)
            } else {
                s.rfind(&a)
            };
            Value::Int(at.map_or(-1, |b| s[..b].chars().count() as i64))
        }
        (Value::Str(s), "charAt") => {
            let i = int_arg(args, 0).unwrap_or(-1);
            match usize::try_from(i).ok().and_then(|i| s.chars().nth(i)) {
                Some(c) => Value::Str(c.to_string()),
                None => return Err(format!("charAt({i}) is outside {s:?}")),
            }
        }
        (Value::Str(s), "substring") => {
            let chars: Vec<char> = s.chars().collect();
            let from = int_arg(args, 0).unwrap_or(0);
            let to = int_arg(args, 1).unwrap_or(chars.len() as i64);
            if from < 0 || to > chars.len() as i64 || from > to {
                return Err(format!("substring({from}, {to}) is outside {s:?}"));
            }
            Value::Str(chars[from as usize..to as usize].iter().collect())
        }
        (Value::Str(s), "concat") => {
            Value::Str(format!("{s}{}", str_arg(args, 0).unwrap_or_default()))
        }
        (Value::Str(s), "replace") => {
            let (a, b) = (
                str_arg(args, 0).unwrap_or_default(),
                str_arg(args, 1).unwrap_or_default(),
            );
            if a.is_empty() {
                Value::Str(s.clone())
            } else {
                Value::Str(s.replace(&a, &b))
            }
        }
        (Value::Str(s), "replaceAll" | "replaceFirst") => {
            let re = regex(&str_arg(args, 0).unwrap_or_default())?;
            let rep = str_arg(args, 1).unwrap_or_default();
            if m == "replaceAll" {
                Value::Str(re.replace_all(s, rep.as_str()).into_owned())
            } else {
                Value::Str(re.replace(s, rep.as_str()).into_owned())
            }
        }
        (Value::Str(s), "matches") => {
            let re = regex(&format!("^(?:{})$", str_arg(args, 0).unwrap_or_default()))?;
            Value::Bool(re.is_match(s))
        }
        (Value::Str(s), "split") => {
            let re = regex(&str_arg(args, 0).unwrap_or_default())?;
            let mut parts: Vec<Value> = re.split(s).map(Value::str).collect();
            // Java drops trailing empty strings.
            while parts.last().is_some_and(|p| p == &Value::str("")) {
                parts.pop();
            }
            Value::List(parts)
        }
        (Value::List(l), "size") => Value::Int(l.len() as i64),
        (Value::List(l), "isEmpty") => Value::Bool(l.is_empty()),
        (Value::List(_), "get") => index(v, &Value::Int(int_arg(args, 0).unwrap_or(-1))),
        (Value::List(l), "contains") => {
            Value::Bool(args.first().is_some_and(|a| l.iter().any(|x| equal(x, a))))
        }
        (Value::List(l), "indexOf") => Value::Int(
            args.first()
                .and_then(|a| l.iter().position(|x| equal(x, a)))
                .map_or(-1, |i| i as i64),
        ),
        (Value::List(l), "subList") => {
            let from = int_arg(args, 0).unwrap_or(0).max(0) as usize;
            let to = (int_arg(args, 1).unwrap_or(l.len() as i64).max(0) as usize).min(l.len());
            Value::List(l.get(from..to).map(<[Value]>::to_vec).unwrap_or_default())
        }
        (Value::Map(m), "size") => Value::Int(m.len() as i64),
        (Value::Map(m), "isEmpty") => Value::Bool(m.is_empty()),
        (Value::Map(_), "get") => index(v, args.first().unwrap_or(&Value::Null)),
        (Value::Map(m), "containsKey") => {
            let k = str_arg(args, 0).unwrap_or_default();
            Value::Bool(m.iter().any(|(kk, _)| *kk == k))
        }
        (Value::Map(m), "containsValue") => Value::Bool(
            args.first()
                .is_some_and(|a| m.iter().any(|(_, x)| equal(x, a))),
        ),
        (Value::Map(m), "keySet") => {
            Value::List(m.iter().map(|(k, _)| Value::str(k.clone())).collect())
        }
        (Value::Map(m), "values") => Value::List(m.iter().map(|(_, v)| v.clone()).collect()),
        (Value::Map(m), "entrySet") => Value::List(
            m.iter()
                .map(|(k, v)| Value::map([("key", Value::str(k.clone())), ("value", v.clone())]))
                .collect(),
        ),
        (Value::Int(i), "intValue" | "longValue") => Value::Int(*i),
        (Value::Float(f), "intValue" | "longValue") => Value::Int(*f as i64),
        (Value::Int(i), "doubleValue") => Value::Float(*i as f64),
        (Value::Float(f), "doubleValue") => Value::Float(*f),
        _ => Value::Null,
    })
}

/// `$util.NAME(args)`.
fn util(name: &str, args: &[Value]) -> Result<Value, String> {
    let arg = str_arg(args, 0).unwrap_or_default();
    Ok(match name {
        "escapeJavaScript" => Value::Str(escape_javascript(&arg)),
        "parseJson" => {
            let v: serde_json::Value = serde_json::from_str(&arg)
                .map_err(|e| format!("$util.parseJson: not JSON: {e}"))?;
            Value::from(&v)
        }
        "urlEncode" => Value::Str(form_urlencoded::byte_serialize(arg.as_bytes()).collect()),
        "urlDecode" => Value::Str(
            form_urlencoded::parse(
                format!("x={}", arg.replace('&', "%26").replace('=', "%3D")).as_bytes(),
            )
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default(),
        ),
        "base64Encode" => {
            Value::Str(base64::engine::general_purpose::STANDARD.encode(arg.as_bytes()))
        }
        "base64Decode" => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(arg.trim().as_bytes())
                .map_err(|e| format!("$util.base64Decode: {e}"))?;
            Value::Str(String::from_utf8_lossy(&raw).into_owned())
        }
        other => return Err(format!("$util.{other} is not a $util function")),
    })
}

/// Java's `StringEscapeUtils.escapeJavaScript` (Commons Lang 2), which API
/// Gateway's `$util.escapeJavaScript` is: quotes, backslash and `/`
/// escaped, control and non-ASCII characters as `\uXXXX`.
fn escape_javascript(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

impl Value {
    fn render_into_string(&self, out: &mut String) {
        out.push_str(&self.render());
    }
}
