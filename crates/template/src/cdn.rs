//! `AWS::CloudFront::Distribution` with an S3 origin, as the project's
//! site of that bucket: CloudFront's root object, its error responses (a
//! single-page app's `404 → 200 /index.html`, or a not-found page), and its
//! cache behaviours' TTLs as `Cache-Control` for what the bucket gives
//! none. Served at the listener's root; an API origin's behaviours are not
//! re-mounted (the API is served at its own paths).

use crate::node::Node;
use crate::Error;

fn text(n: &Node, key: &str) -> Option<String> {
    n.get(key).and_then(Node::scalar_text)
}

/// The bucket an origin's domain names (`NAME.s3.amazonaws.com`,
/// `NAME.s3.REGION.amazonaws.com`, `NAME.s3-website-REGION.amazonaws.com`).
fn bucket_of(domain: &str) -> Option<&str> {
    let at = domain.find(".s3.").or_else(|| domain.find(".s3-website"))?;
    Some(&domain[..at])
}

/// A behaviour's TTL as a `Cache-Control` value.
fn cache_control(behavior: &Node) -> Option<String> {
    text(behavior, "DefaultTTL").map(|ttl| format!("max-age={ttl}"))
}

/// The distribution `id` (its evaluated `props`) as a site table.
pub(crate) fn site(
    id: &str,
    r: &Node,
    props: Option<&Node>,
    buckets: &toml::Table,
) -> Result<toml::Table, Error> {
    let path = format!("Resources.{id}.Properties.DistributionConfig");
    let config = props
        .and_then(|p| p.get("DistributionConfig"))
        .ok_or_else(|| r.error(&path, "a Distribution needs a DistributionConfig"))?;
    let origins = config.get("Origins").and_then(Node::as_list).unwrap_or(&[]);
    // Origin id → bucket, for the origins that are the template's buckets.
    let s3: Vec<(String, String)> = origins
        .iter()
        .filter_map(|o| {
            let bucket = bucket_of(&text(o, "DomainName")?)?.to_owned();
            buckets
                .contains_key(&bucket)
                .then(|| (text(o, "Id").unwrap_or_default(), bucket))
        })
        .collect();
    let default = config.get("DefaultCacheBehavior");
    let target = default.and_then(|d| text(d, "TargetOriginId"));
    let bucket = s3
        .iter()
        .find(|(o, _)| Some(o) == target.as_ref())
        .or_else(|| s3.first())
        .map(|(_, b)| b.clone())
        .ok_or_else(|| {
            config.error(
                &format!("{path}.Origins"),
                "no origin is an S3 bucket of the template (its DomainName: !GetAtt Bucket.RegionalDomainName)",
            )
        })?;
    let mut t = toml::Table::new();
    t.insert("bucket".into(), bucket.clone().into());
    if let Some(index) = text(config, "DefaultRootObject") {
        t.insert(
            "index".into(),
            index.trim_start_matches('/').to_owned().into(),
        );
    }
    for e in config
        .get("CustomErrorResponses")
        .and_then(Node::as_list)
        .unwrap_or(&[])
    {
        let code = text(e, "ErrorCode").unwrap_or_default();
        let answer = text(e, "ResponseCode").unwrap_or_default();
        let Some(page) = text(e, "ResponsePagePath") else {
            continue;
        };
        match (code.as_str(), answer.as_str()) {
            // A single-page app: unknown paths get the index.
            ("403" | "404", "200") => {
                t.insert("spa".into(), true.into());
                t.insert(
                    "index".into(),
                    page.trim_start_matches('/').to_owned().into(),
                );
            }
            ("403" | "404", _) => {
                t.insert(
                    "not_found".into(),
                    page.trim_start_matches('/').to_owned().into(),
                );
            }
            _ => {}
        }
    }
    if let Some(cc) = default.and_then(cache_control) {
        t.insert("cache_control".into(), cc.into());
    }
    let mut behaviors = Vec::new();
    for b in config
        .get("CacheBehaviors")
        .and_then(Node::as_list)
        .unwrap_or(&[])
    {
        let on_bucket = text(b, "TargetOriginId")
            .is_some_and(|o| s3.iter().any(|(id, name)| *id == o && *name == bucket));
        let (Some(pattern), Some(cc), true) = (text(b, "PathPattern"), cache_control(b), on_bucket)
        else {
            continue;
        };
        let pattern = if pattern.starts_with('/') {
            pattern
        } else {
            format!("/{pattern}")
        };
        let mut behavior = toml::Table::new();
        behavior.insert("path".into(), pattern.into());
        behavior.insert("cache_control".into(), cc.into());
        behaviors.push(toml::Value::Table(behavior));
    }
    if !behaviors.is_empty() {
        t.insert("behaviors".into(), toml::Value::Array(behaviors));
    }
    Ok(t)
}
