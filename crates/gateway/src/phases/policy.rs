//! REST resource policies: an API's `execute-api:Invoke` statements,
//! judged against the request's method ARN and source address with IAM's
//! rules (an explicit Deny beats any Allow; no matching Allow is an
//! implicit deny, which a Lambda authorizer's Allow may still lift, as
//! API Gateway's policy evaluation table says).

use std::net::IpAddr;

use stratus_config::{PolicyStatement, ResourcePolicy};

use super::authorize::policy::{wildcard, Verdict};

/// How the policy judges a call of `arn` (the method ARN,
/// `arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/METHOD/PATH`) from `ip`.
pub(crate) fn judge(p: &ResourcePolicy, arn: &str, api: &str, ip: IpAddr) -> Verdict {
    let mut allowed = false;
    for st in &p.statements {
        if !applies(st, arn, api, ip) {
            continue;
        }
        if !st.allow {
            return Verdict::ExplicitDeny;
        }
        allowed = true;
    }
    if allowed {
        Verdict::Allow
    } else {
        Verdict::ImplicitDeny
    }
}

fn applies(st: &PolicyStatement, arn: &str, api: &str, ip: IpAddr) -> bool {
    let matches = |pattern: &String| resource_matches(pattern, arn, api);
    let on_resource = if st.not_resources.is_empty() {
        st.resources.iter().any(matches)
    } else {
        !st.not_resources.iter().any(matches)
    };
    if !on_resource {
        return false;
    }
    match &st.source_ip {
        None => true,
        Some((positive, nets)) => nets.iter().any(|n| n.contains(&ip)) == *positive,
    }
}

/// An ARN pattern, or `execute-api:/STAGE/METHOD/PATH` (this API's), or
/// `*`, against the method ARN.
fn resource_matches(pattern: &str, arn: &str, api: &str) -> bool {
    if let Some(rest) = pattern.strip_prefix("execute-api:/") {
        let own = format!(":{api}/");
        return arn
            .split_once(&own)
            .is_some_and(|(_, tail)| wildcard(rest, tail));
    }
    wildcard(pattern, arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> ResourcePolicy {
        stratus_config::parse_resource_policy(json).unwrap()
    }

    const ARN: &str = "arn:aws:execute-api:us-east-1:000000000000:shop/prod/GET/items/1";

    #[test]
    fn source_ranges_allow_and_deny() {
        let p = policy(
            r#"{"Statement": [
              {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*"},
              {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*",
               "Condition": {"NotIpAddress": {"aws:SourceIp": ["127.0.0.1/32", "10.0.0.0/8"]}}}
            ]}"#,
        );
        let at = |ip: &str| judge(&p, ARN, "shop", ip.parse().unwrap());
        assert_eq!(at("127.0.0.1"), Verdict::Allow);
        assert_eq!(at("10.9.8.7"), Verdict::Allow);
        assert_eq!(at("127.0.0.2"), Verdict::ExplicitDeny);
    }

    #[test]
    fn no_matching_allow_is_an_implicit_deny() {
        let p = policy(
            r#"{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke",
               "Resource": "arn:aws:execute-api:*:*:shop/prod/POST/*"}}"#,
        );
        assert_eq!(
            judge(&p, ARN, "shop", "127.0.0.1".parse().unwrap()),
            Verdict::ImplicitDeny
        );
        let post = ARN.replace("/GET/", "/POST/");
        assert_eq!(
            judge(&p, &post, "shop", "127.0.0.1".parse().unwrap()),
            Verdict::Allow
        );
    }
}
