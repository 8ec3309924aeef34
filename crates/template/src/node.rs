//! A template as a tree of values that remember where they start: YAML
//! (CloudFormation's dialect, with the short tags `!Ref`, `!Sub`,
//! `!GetAtt`...) or JSON (a YAML 1.2 document too), read by `saphyr`,
//! which keeps positions and user tags. Short tags are turned into their
//! long form here (`!Ref X` → `{Ref: X}`, `!GetAtt a.b` → `{Fn::GetAtt:
//! [a, b]}`), so everything after this module sees one form.

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

use crate::Error;

/// A value and where it starts in the template (1-based line and column).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub line: usize,
    pub column: usize,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    List(Vec<Node>),
    /// Keys in template order (unique: YAML refuses duplicates).
    Map(Vec<(String, Node)>),
}

/// A node as JSON (an `Input` written as YAML, sent as JSON).
pub fn to_json(n: &Node) -> serde_json::Value {
    use serde_json::Value as J;
    match &n.value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::String(s) => J::String(s.clone()),
        Value::List(l) => J::Array(l.iter().map(to_json).collect()),
        Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}

impl Node {
    /// A value made by evaluation, placed where `at` was.
    pub fn new(at: &Node, value: Value) -> Node {
        Node {
            line: at.line,
            column: at.column,
            value,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(String, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Node]> {
        match &self.value {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// A scalar as CloudFormation reads it where a string is expected
    /// (`Timeout: 30` and `Timeout: "30"` alike).
    pub fn scalar_text(&self) -> Option<String> {
        Some(match &self.value {
            Value::String(s) => s.clone(),
            Value::Int(n) => n.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return None,
        })
    }

    /// An error at this node.
    pub fn error(&self, path: &str, message: impl Into<String>) -> Error {
        Error {
            line: self.line,
            column: self.column,
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

/// The intrinsic functions that have a short tag, by tag.
const SHORT_TAGS: &[(&str, &str)] = &[
    ("Ref", "Ref"),
    ("Condition", "Condition"),
    ("Sub", "Fn::Sub"),
    ("GetAtt", "Fn::GetAtt"),
    ("Join", "Fn::Join"),
    ("Select", "Fn::Select"),
    ("Split", "Fn::Split"),
    ("If", "Fn::If"),
    ("Equals", "Fn::Equals"),
    ("Not", "Fn::Not"),
    ("And", "Fn::And"),
    ("Or", "Fn::Or"),
    ("FindInMap", "Fn::FindInMap"),
    ("Base64", "Fn::Base64"),
    ("GetAZs", "Fn::GetAZs"),
    ("ImportValue", "Fn::ImportValue"),
    ("Cidr", "Fn::Cidr"),
    ("Transform", "Fn::Transform"),
    ("Length", "Fn::Length"),
    ("ToJsonString", "Fn::ToJsonString"),
];

/// Reads a template's text (YAML or JSON).
pub fn parse(text: &str) -> Result<Node, Error> {
    let docs = MarkedYaml::load_from_str(text).map_err(|e| Error {
        line: e.marker().line(),
        column: e.marker().col() + 1,
        path: String::new(),
        message: format!("not a YAML or JSON template: {}", e.info()),
    })?;
    let mut docs = docs.into_iter();
    let Some(doc) = docs.next() else {
        return Err(Error {
            line: 1,
            column: 1,
            path: String::new(),
            message: "the template is empty".into(),
        });
    };
    if let Some(extra) = docs.next() {
        return Err(Error {
            line: extra.span.start.line(),
            column: 1,
            path: String::new(),
            message: "a template is one YAML document (a second one starts here)".into(),
        });
    }
    convert(&doc, (1, 1))
}

/// `y` as a node; `outer` is the enclosing node's place, for the nodes
/// saphyr gives no span (tagged scalars in flow lists).
fn convert(y: &MarkedYaml<'_>, outer: (usize, usize)) -> Result<Node, Error> {
    let (line, column) = match y.span.start.line() {
        0 => outer,
        l => (l, y.span.start.col() + 1),
    };
    let here = (line, column);
    let at = |value| Node {
        line,
        column,
        value,
    };
    let fail = |message: String| Error {
        line,
        column,
        path: String::new(),
        message,
    };
    Ok(match &y.data {
        YamlData::Value(s) => at(scalar(s)),
        YamlData::Representation(text, ..) => at(Value::String(text.to_string())),
        YamlData::Sequence(items) => at(Value::List(
            items
                .iter()
                .map(|i| convert(i, here))
                .collect::<Result<_, _>>()?,
        )),
        YamlData::Mapping(map) => {
            let mut out = Vec::with_capacity(map.len());
            for (k, v) in map {
                let key = match &k.data {
                    YamlData::Value(s) => match scalar(s) {
                        Value::String(s) => s,
                        Value::Int(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        Value::Float(f) => f.to_string(),
                        _ => return Err(fail("a mapping key is a string".into())),
                    },
                    _ => return Err(fail("a mapping key is a string".into())),
                };
                out.push((key, convert(v, here)?));
            }
            at(Value::Map(out))
        }
        YamlData::Tagged(tag, inner) => {
            let inner = convert(inner, here)?;
            if tag.handle != "!" {
                // A core-schema tag (`!!str`) the loader left: the value.
                return Ok(inner);
            }
            let Some((_, name)) = SHORT_TAGS.iter().find(|(t, _)| *t == tag.suffix) else {
                return Err(fail(format!(
                    "!{} is not a CloudFormation function (the short forms are !Ref, !Sub, !GetAtt, !Join, !If, ...)",
                    tag.suffix
                )));
            };
            // `!GetAtt Res.Attr` is the list form's shorthand.
            let inner = match (&inner.value, *name) {
                (Value::String(s), "Fn::GetAtt") => match s.split_once('.') {
                    Some((id, attr)) => Node::new(
                        &inner,
                        Value::List(vec![
                            Node::new(&inner, Value::String(id.to_owned())),
                            Node::new(&inner, Value::String(attr.to_owned())),
                        ]),
                    ),
                    None => {
                        return Err(fail(format!(
                            "!GetAtt {s:?}: the short form is !GetAtt Resource.Attribute"
                        )))
                    }
                },
                _ => inner,
            };
            at(Value::Map(vec![((*name).to_owned(), inner)]))
        }
        // The loader replaces aliases by what they name.
        YamlData::Alias(_) => return Err(fail("an unresolved YAML alias".into())),
        YamlData::BadValue => return Err(fail("a value YAML cannot read".into())),
    })
}

fn scalar(s: &Scalar<'_>) -> Value {
    match s {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(n) => Value::Int(*n),
        Scalar::FloatingPoint(f) => Value::Float(f.into_inner()),
        Scalar::String(s) => Value::String(s.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_tags_become_the_long_form_with_their_positions() {
        let t = parse(
            "Resources:\n  Fn:\n    Name: !Sub '${AWS::StackName}-fn'\n    Arn: !GetAtt Role.Arn\n    Id: !Ref Thing\n    Pick: !Select [0, !GetAZs '']\n",
        )
        .unwrap();
        let f = t.get("Resources").unwrap().get("Fn").unwrap();
        let name = f.get("Name").unwrap();
        assert_eq!((name.line, name.column), (3, 11));
        assert_eq!(
            name.get("Fn::Sub").unwrap().as_str(),
            Some("${AWS::StackName}-fn")
        );
        let arn = f
            .get("Arn")
            .unwrap()
            .get("Fn::GetAtt")
            .unwrap()
            .as_list()
            .unwrap();
        assert_eq!(arn[0].as_str(), Some("Role"));
        assert_eq!(arn[1].as_str(), Some("Arn"));
        assert_eq!(
            f.get("Id").unwrap().get("Ref").unwrap().as_str(),
            Some("Thing")
        );
        let pick = f
            .get("Pick")
            .unwrap()
            .get("Fn::Select")
            .unwrap()
            .as_list()
            .unwrap();
        assert!(pick[1].get("Fn::GetAZs").is_some());
    }

    #[test]
    fn json_templates_read_the_same() {
        let t = parse("{\"Resources\": {\"Fn\": {\"Type\": \"AWS::Lambda::Function\", \"Properties\": {\"Timeout\": 30}}}}").unwrap();
        let props = t
            .get("Resources")
            .unwrap()
            .get("Fn")
            .unwrap()
            .get("Properties")
            .unwrap();
        assert_eq!(props.get("Timeout").unwrap().value, Value::Int(30));
    }

    #[test]
    fn mistakes_name_their_line() {
        let e = parse("Resources:\n  A: !Frob x\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("!Frob"), "{}", e.message);
        let e = parse("Resources:\n  A: [1, 2\n").unwrap_err();
        assert!(e.message.starts_with("not a YAML"), "{}", e.message);
        let e = parse("A: 1\nA: 2\n").unwrap_err();
        assert!(e.line >= 1, "{e:?}");
    }
}
