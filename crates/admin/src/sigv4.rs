//! SigV4, one rule for every admin API (`authorize`): with
//! `[server.credentials]` set, a request must be signed with them, checked
//! by signing it again with `aws-sigv4` as the SDKs sign and comparing
//! signatures in constant time; without it, any well-formed SigV4
//! credentials are accepted, and unsigned requests too (LocalStack's
//! convention: boto3 and the AWS CLI work with whatever credentials a
//! developer has), while the admin listener is held to loopback.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    sign, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
};
use aws_sigv4::sign::v4;
use axum::http::{HeaderMap, Method, Uri};
use stratus_config::Credentials;

/// How far a request's `X-Amz-Date` may be from now (AWS: 15 minutes).
const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// Why a request was refused: AWS's error code for it, and the message.
pub(crate) type Refusal = (&'static str, String);

/// A function URL whose `AuthType` is `AWS_IAM`: the request must be
/// SigV4-signed (service `lambda`), even where the one rule lets unsigned
/// requests in, and its signature passes that rule. The caller's access
/// key id, for the event's `authorizer.iam`.
pub fn function_url_caller(
    s: &crate::AdminState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, String> {
    signed_caller(s, "lambda", method, uri, headers, body).map_err(|e| match e {
        CallerRefused::Unsigned => "the request is not signed".to_owned(),
        CallerRefused::Refused(why) => why,
    })
}

/// Why a signed request's caller is not known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerRefused {
    /// No signature at all.
    Unsigned,
    /// A signature that does not hold, and why.
    Refused(String),
}

/// The access key of a request signed with SigV4 for `service` (the
/// `Authorization` header or a presigned query), checked under the one
/// rule: a function URL's (`lambda`) or an `AWS_IAM` route's
/// (`execute-api`).
pub fn signed_caller(
    s: &crate::AdminState,
    service: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, CallerRefused> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1));
    let query = uri.query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "X-Amz-Credential")
            .map(|(_, v)| v.into_owned())
    });
    let credential = header
        .map(str::to_owned)
        .or(query)
        .ok_or(CallerRefused::Unsigned)?;
    let access_key = credential
        .split('/')
        .next()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| CallerRefused::Refused("the signature names no access key".to_owned()))?
        .to_owned();
    authorize(s, service, method, uri, headers, body)
        .map_err(|(_, why)| CallerRefused::Refused(why))?;
    Ok(access_key)
}

/// The one rule (see the module's comment).
pub(crate) fn authorize(
    s: &crate::AdminState,
    service: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Refusal> {
    authorize_payload(s, service, method, uri, headers, SignableBody::Bytes(body))
}

/// `authorize`, for a payload signed as S3 signs it: by the hash (or the
/// `UNSIGNED-PAYLOAD` / `STREAMING-…` marker) in `x-amz-content-sha256`.
pub(crate) fn authorize_payload(
    s: &crate::AdminState,
    service: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: SignableBody<'_>,
) -> Result<(), Refusal> {
    if s.verify_signatures {
        return verify(&s.credentials, service, method, uri, headers, body).map_err(|why| {
            let code = if why.contains("security token") || why.contains("Authentication Token") {
                "UnrecognizedClientException"
            } else {
                "InvalidSignatureException"
            };
            (code, why)
        });
    }
    match stratus_gateway::header_str(headers, "authorization") {
        None => Ok(()),
        Some(auth) => parse(auth)
            .map(|_| ())
            .map_err(|why| ("IncompleteSignatureException", why)),
    }
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
struct Signed<'a> {
    key_id: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

fn parse(auth: &str) -> Result<Signed<'_>, String> {
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("only AWS4-HMAC-SHA256 signatures are accepted")?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',').map(str::trim) {
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed_headers = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let (credential, signed_headers, signature) = match (credential, signed_headers, signature) {
        (Some(c), Some(h), Some(s)) if !h.is_empty() && !s.is_empty() => (c, h, s),
        _ => return Err("malformed Authorization header".into()),
    };
    // AKID/DATE/REGION/SERVICE/aws4_request
    let scope: Vec<&str> = credential.split('/').collect();
    let [key_id, _date, region, service, "aws4_request"] = scope[..] else {
        return Err("malformed credential scope".into());
    };
    if key_id.is_empty() || region.is_empty() || service.is_empty() {
        return Err("malformed credential scope".into());
    }
    Ok(Signed {
        key_id,
        region,
        service,
        signed_headers,
        signature,
    })
}

/// Checks a SigV4 `Authorization` header by signing the same request again
/// (with `aws-sigv4`, as the SDKs do) and comparing the signatures.
pub(crate) fn verify(
    creds: &Credentials,
    expected_service: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: SignableBody<'_>,
) -> Result<(), String> {
    let auth = stratus_gateway::header_str(headers, "authorization")
        .ok_or("missing Authentication Token")?;
    let Signed {
        key_id,
        region,
        service,
        signed_headers,
        signature,
    } = parse(auth)?;
    if key_id != creds.access_key_id {
        return Err("The security token included in the request is invalid".into());
    }
    if service != expected_service {
        return Err(format!(
            "signed for service {service:?}, not {expected_service}"
        ));
    }
    let amz_date =
        stratus_gateway::header_str(headers, "x-amz-date").ok_or("missing X-Amz-Date")?;
    let when = chrono::NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| "malformed X-Amz-Date")?
        .and_utc();
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(when.timestamp().max(0) as u64);
    let skew = SystemTime::now()
        .duration_since(time)
        .or_else(|e| Ok::<_, ()>(e.duration()))
        .unwrap_or_default();
    if skew > MAX_SKEW {
        return Err("Signature expired".into());
    }

    let host = stratus_gateway::header_str(headers, "host").ok_or("missing Host")?;
    let full_uri = format!(
        "http://{host}{}",
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let names: Vec<&str> = signed_headers.split(';').collect();
    let mut signed: Vec<(&str, &str)> = Vec::new();
    for name in &names {
        for v in headers.get_all(*name) {
            signed.push((name, v.to_str().map_err(|_| "non-text signed header")?));
        }
    }
    let identity = identity(creds);
    // SDKs differ on whether the path is encoded once or twice for
    // execute-api; a signature that matches either is the client's.
    for mode in [PercentEncodingMode::Double, PercentEncodingMode::Single] {
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = mode;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(service)
            .time(time)
            .settings(settings)
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let request = SignableRequest::new(
            method.as_str(),
            full_uri.as_str(),
            signed.iter().copied(),
            body.clone(),
        )
        .map_err(|e| e.to_string())?;
        let (_, expected) = sign(request, &params)
            .map_err(|e| e.to_string())?
            .into_parts();
        if constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
            return Ok(());
        }
    }
    Err("The request signature we calculated does not match the signature you provided".into())
}

/// Comparing signatures without an early exit, so timing tells nothing.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The headers that sign a request as an AWS SDK would (`stratus keys` and
/// `stratus usage` sign their admin calls with the project's credentials).
pub fn sign_headers(
    creds: &Credentials,
    region: &str,
    service: &str,
    method: &str,
    url: &str,
    body: &[u8],
) -> Result<Vec<(String, String)>, String> {
    let identity = identity(creds);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let request = SignableRequest::new(method, url, std::iter::empty(), SignableBody::Bytes(body))
        .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(request, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    let (headers, _) = instructions.into_parts();
    Ok(headers
        .into_iter()
        .map(|h| (h.name().to_owned(), h.value().to_owned()))
        .collect())
}

/// The project's credentials as aws-sigv4 takes them.
fn identity(creds: &Credentials) -> aws_smithy_runtime_api::client::identity::Identity {
    aws_credential_types::Credentials::new(
        &creds.access_key_id,
        &creds.secret_access_key,
        None,
        None,
        "stratus.toml",
    )
    .into()
}

/// The query parameters a presigned v4 URL adds.
const PRESIGN_PARAMS: [&str; 7] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
];

/// A presigned v4 URL (S3): signed again with the same date, expiry and
/// scope, signatures compared.
pub(crate) fn verify_presigned(
    creds: &Credentials,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    q: &std::collections::BTreeMap<String, String>,
) -> Result<(), String> {
    use aws_sigv4::http_request::SignatureLocation;
    let credential = q
        .get("X-Amz-Credential")
        .ok_or("missing X-Amz-Credential")?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [key_id, _date, region, service, "aws4_request"] = scope[..] else {
        return Err("malformed X-Amz-Credential".into());
    };
    if key_id != creds.access_key_id {
        return Err("The AWS Access Key Id you provided does not exist in our records".into());
    }
    let date = q.get("X-Amz-Date").ok_or("missing X-Amz-Date")?;
    let when = chrono::NaiveDateTime::parse_from_str(date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| "malformed X-Amz-Date")?
        .and_utc();
    let expires: u64 = q
        .get("X-Amz-Expires")
        .and_then(|e| e.parse().ok())
        .ok_or("missing X-Amz-Expires")?;
    let given = q.get("X-Amz-Signature").ok_or("missing X-Amz-Signature")?;
    // The URL as it was before signing: the other query parameters, as sent.
    let rest: Vec<&str> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| {
            let name = p.split('=').next().unwrap_or("");
            !PRESIGN_PARAMS.contains(&name) && !name.is_empty()
        })
        .collect();
    let host = stratus_gateway::header_str(headers, "host").ok_or("missing Host")?;
    let mut url = format!("http://{host}{}", uri.path());
    if !rest.is_empty() {
        url.push('?');
        url.push_str(&rest.join("&"));
    }
    let names = q.get("X-Amz-SignedHeaders").map_or("host", String::as_str);
    let mut signed: Vec<(&str, &str)> = Vec::new();
    for name in names.split(';') {
        for v in headers.get_all(name) {
            signed.push((name, v.to_str().map_err(|_| "non-text signed header")?));
        }
    }
    let identity = identity(creds);
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(expires));
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::NoHeader;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::UNIX_EPOCH + Duration::from_secs(when.timestamp().max(0) as u64))
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let request = SignableRequest::new(
        method.as_str(),
        url.as_str(),
        signed.into_iter(),
        SignableBody::UnsignedPayload,
    )
    .map_err(|e| e.to_string())?;
    let (_, expected) = sign(request, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    if constant_time_eq(expected.as_bytes(), given.as_bytes()) {
        Ok(())
    } else {
        Err("The request signature we calculated does not match the signature you provided".into())
    }
}

/// A presigned v2 URL (`AWSAccessKeyId`, `Expires`, `Signature`: what
/// boto3's `generate_presigned_url` makes for S3 by default): HMAC-SHA1 of
/// `METHOD\n\n\nEXPIRES\n/bucket/key`, the path taken with or without the
/// `/s3` mount.
pub(crate) fn verify_presigned_v2(
    creds: &Credentials,
    method: &Method,
    uri: &Uri,
    q: &std::collections::BTreeMap<String, String>,
) -> Result<(), String> {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    if q.get("AWSAccessKeyId") != Some(&creds.access_key_id) {
        return Err("The AWS Access Key Id you provided does not exist in our records".into());
    }
    let expires = q.get("Expires").ok_or("missing Expires")?;
    let given = q.get("Signature").ok_or("missing Signature")?;
    let path = uri.path();
    for resource in [path, path.strip_prefix("/s3").unwrap_or(path)] {
        let sts = format!("{}\n\n\n{expires}\n{resource}", method.as_str());
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(creds.secret_access_key.as_bytes())
            .map_err(|e| e.to_string())?;
        mac.update(sts.as_bytes());
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        if constant_time_eq(expected.as_bytes(), given.as_bytes()) {
            return Ok(());
        }
    }
    Err("The request signature we calculated does not match the signature you provided".into())
}
