//! A Lambda authorizer's answer: parsed once (it may be cached), then
//! evaluated against each request's method or route ARN, with IAM's rules:
//! `*` and `?` wildcards, an explicit Deny beats any Allow, no matching
//! Allow is an implicit deny.

use serde_json::{Map, Value};

/// What a Lambda authorizer answered, checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    pub(crate) principal: Option<String>,
    pub(crate) decision: Decision,
    /// `context`: REST's values are strings, numbers or booleans.
    pub(crate) context: Map<String, Value>,
    /// `usageIdentifierKey`: the API key, when the API's source is AUTHORIZER.
    pub(crate) usage_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    Policy(Vec<Statement>),
    /// HTTP APIs' simple responses: `isAuthorized`.
    Simple(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Statement {
    pub(crate) allow: bool,
    pub(crate) actions: Vec<String>,
    pub(crate) resources: Vec<String>,
}

/// How a policy judged one ARN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allow,
    ExplicitDeny,
    ImplicitDeny,
}

/// What an answer must look like for an authorizer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expect {
    /// HTTP APIs with `simple_responses`.
    pub(crate) simple: bool,
    /// REST and WebSocket APIs: `principalId` required; context values flat.
    pub(crate) strict: bool,
}

/// Parses a function's answer; the error says what is wrong (logged; the
/// client gets 500).
pub(crate) fn parse(payload: &[u8], expect: Expect) -> Result<Answer, String> {
    let v: Value = serde_json::from_slice(payload)
        .map_err(|e| format!("the authorizer's answer is not JSON: {e}"))?;
    let Value::Object(obj) = v else {
        return Err("the authorizer's answer is not a JSON object".into());
    };
    let context = match obj.get("context") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => {
            if expect.strict {
                if let Some((k, _)) = m.iter().find(|(_, v)| v.is_object() || v.is_array()) {
                    return Err(format!(
                        "context.{k} is an object or array: REST and WebSocket authorizers' context values are strings, numbers or booleans"
                    ));
                }
            }
            m.clone()
        }
        Some(_) => return Err("context is not an object".into()),
    };
    if expect.simple {
        let Some(Value::Bool(ok)) = obj.get("isAuthorized") else {
            return Err("a simple response needs isAuthorized: true or false".into());
        };
        return Ok(Answer {
            principal: None,
            decision: Decision::Simple(*ok),
            context,
            usage_key: None,
        });
    }
    let principal = match obj.get("principalId") {
        Some(Value::String(p)) => Some(p.clone()),
        None | Some(Value::Null) if !expect.strict => None,
        _ => return Err("principalId is missing or not a string".into()),
    };
    let doc = obj
        .get("policyDocument")
        .and_then(Value::as_object)
        .ok_or("policyDocument is missing or not an object")?;
    let statements = match doc.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect::<Vec<_>>(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => return Err("policyDocument.Statement is missing".into()),
    };
    let mut parsed = Vec::new();
    for s in statements {
        let allow = match s.get("Effect").and_then(Value::as_str) {
            Some(e) if e.eq_ignore_ascii_case("allow") => true,
            Some(e) if e.eq_ignore_ascii_case("deny") => false,
            _ => return Err("a Statement's Effect is not Allow or Deny".into()),
        };
        parsed.push(Statement {
            allow,
            actions: strings(s.get("Action")).ok_or("a Statement's Action is missing")?,
            resources: strings(s.get("Resource")).ok_or("a Statement's Resource is missing")?,
        });
    }
    let usage_key = obj
        .get("usageIdentifierKey")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(Answer {
        principal,
        decision: Decision::Policy(parsed),
        context,
        usage_key,
    })
}

/// A string or a list of strings.
fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    match v? {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}

impl Answer {
    /// Is calling `arn` allowed?
    pub(crate) fn judge(&self, arn: &str) -> Verdict {
        let statements = match &self.decision {
            Decision::Simple(true) => return Verdict::Allow,
            Decision::Simple(false) => return Verdict::ImplicitDeny,
            Decision::Policy(s) => s,
        };
        let applies = |s: &Statement| {
            s.actions
                .iter()
                .any(|a| wildcard(&a.to_ascii_lowercase(), "execute-api:invoke"))
                && s.resources.iter().any(|r| wildcard(r, arn))
        };
        if statements.iter().any(|s| !s.allow && applies(s)) {
            Verdict::ExplicitDeny
        } else if statements.iter().any(|s| s.allow && applies(s)) {
            Verdict::Allow
        } else {
            Verdict::ImplicitDeny
        }
    }
}

/// IAM's wildcard match: `*` any run of characters (`/` included, so a
/// trailing `*` covers every deeper path), `?` one character. Written
/// here because it is these ten lines; a regex per statement would be
/// compiled for every cached answer.
pub(crate) fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and the text position it has covered up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:shop/prod/GET/user/x/y";

    fn answer(statements: Value) -> Answer {
        let v = serde_json::json!({
            "principalId": "me",
            "policyDocument": {"Version": "2012-10-17", "Statement": statements},
        });
        parse(
            v.to_string().as_bytes(),
            Expect {
                simple: false,
                strict: true,
            },
        )
        .unwrap()
    }

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(wildcard("*", ARN));
        assert!(wildcard(
            "arn:aws:execute-api:us-east-1:123456789012:shop/prod/GET/user/*",
            ARN
        ));
        assert!(wildcard("arn:aws:execute-api:*:*:shop/*/GET/user/x/y", ARN));
        assert!(wildcard("arn:aws:execute-api:us-east-?:*", ARN));
        assert!(!wildcard(
            "arn:aws:execute-api:us-east-1:123456789012:shop/prod/POST/*",
            ARN
        ));
        assert!(!wildcard(
            "arn:aws:execute-api:us-east-1:123456789012:shop/prod/GET/user",
            ARN
        ));
        assert!(wildcard("a*b*c", "aXXbYYc"));
        assert!(!wildcard("a*b*c", "aXXbYY"));
        assert!(wildcard("", ""));
        assert!(!wildcard("", "x"));
    }

    #[test]
    fn an_explicit_deny_beats_an_allow_and_no_allow_is_an_implicit_deny() {
        let a = answer(serde_json::json!([
            {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"},
            {"Effect": "Deny", "Action": ["execute-api:*"], "Resource": ["arn:aws:execute-api:*:*:shop/prod/GET/user/*"]},
        ]));
        assert_eq!(a.judge(ARN), Verdict::ExplicitDeny);
        assert_eq!(
            a.judge("arn:aws:execute-api:us-east-1:123456789012:shop/prod/GET/items"),
            Verdict::Allow
        );
        let one = answer(serde_json::json!(
            {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "arn:aws:execute-api:us-east-1:123456789012:shop/prod/GET/items"}
        ));
        assert_eq!(one.judge(ARN), Verdict::ImplicitDeny);
        // Another action does not allow invoking.
        let other = answer(serde_json::json!(
            {"Effect": "Allow", "Action": "execute-api:ManageConnections", "Resource": "*"}
        ));
        assert_eq!(other.judge(ARN), Verdict::ImplicitDeny);
    }

    #[test]
    fn bad_answers_are_named() {
        let strict = Expect {
            simple: false,
            strict: true,
        };
        for (bad, why) in [
            ("[]", "not a JSON object"),
            ("nope", "not JSON"),
            (r#"{"policyDocument": {}}"#, "principalId"),
            (r#"{"principalId": "p"}"#, "policyDocument"),
            (
                r#"{"principalId": "p", "policyDocument": {"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}}"#,
                "Effect",
            ),
            (
                r#"{"principalId": "p", "policyDocument": {"Statement": []}, "context": {"a": {"b": 1}}}"#,
                "context.a",
            ),
        ] {
            let e = parse(bad.as_bytes(), strict).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let simple = Expect {
            simple: true,
            strict: false,
        };
        assert!(parse(br#"{"isAuthorized": "yes"}"#, simple).is_err());
        let ok = parse(br#"{"isAuthorized": true, "context": {"a": [1]}}"#, simple).unwrap();
        assert_eq!(ok.judge(ARN), Verdict::Allow);
    }
}
