//! Who may call the admin APIs from a web page. Without
//! `[server.credentials]` the admin APIs accept any caller on loopback, so
//! any page a developer opens could otherwise reach them: a "simple"
//! cross-site request (a form post, a `text/plain` fetch) needs no
//! preflight, and a DNS name rebound to 127.0.0.1 makes the page
//! same-origin with the listener. Two checks, before any API runs:
//! - `Host` must name this machine (an IP address, `localhost` or a
//!   `*.localhost` name) unless credentials are configured (a rebound
//!   page cannot sign its requests);
//! - a request carrying an `Origin` other than the listener's own is
//!   refused unless `[server] admin_allow_origins` lists it, or it goes to
//!   a bucket whose CORS configuration allows it (presigned uploads from a
//!   site's page). Preflights (`OPTIONS`) pass: they change nothing, and a
//!   bucket's CORS answers them.
//!
//! And the RDS Data API, whose SDKs send `application/json`, refuses the
//! three content types a page may send without a preflight (`text/plain`,
//! form encodings), in case a browser sent no `Origin`.
//!
//! Clients that are not browsers (SDKs, the CLI, curl) send no `Origin`.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AdminState;

fn refuse(why: String) -> Response {
    tracing::warn!("admin listener: {why}");
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "message": why }).to_string(),
    )
        .into_response()
}

/// The host part of a `Host` value (`[::1]:8081` → `::1`).
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// A name that can only mean this machine, or an address (no DNS name
/// that an attacker's server could rebind).
fn local_host(host: &str) -> bool {
    let name = host_name(host).to_ascii_lowercase();
    name.parse::<std::net::IpAddr>().is_ok() || name == "localhost" || name.ends_with(".localhost")
}

/// The bucket a `/s3/BUCKET/...` request names, if its CORS allows `origin`.
fn bucket_allows(s: &AdminState, path: &str, origin: &HeaderValue) -> bool {
    let Some(bucket) = path
        .strip_prefix("/s3/")
        .and_then(|rest| rest.split('/').next())
    else {
        return false;
    };
    s.app()
        .buckets
        .iter()
        .find(|b| b.name == bucket)
        .and_then(|b| b.cors.as_ref())
        .is_some_and(|rules| stratus_gateway::cors::allows_origin(rules, origin))
}

fn same_origin(origin: &str, headers: &HeaderMap) -> bool {
    let host = stratus_gateway::header_str(headers, "host").unwrap_or("");
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| !host.is_empty() && o.eq_ignore_ascii_case(host))
}

/// The middleware: the two checks of the module comment.
pub(crate) async fn guard(State(s): State<AdminState>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    if !s.verify_signatures {
        let host = stratus_gateway::header_str(headers, "host").unwrap_or("");
        if !host.is_empty() && !local_host(host) {
            return refuse(format!(
                "Host {host:?} is not this machine (a DNS name rebound to it?): without [server.credentials] the admin APIs answer only requests to an IP address or localhost"
            ));
        }
    }
    if req.method() != Method::OPTIONS {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let o = origin.to_str().unwrap_or("null");
            let allowed = same_origin(o, headers)
                || s.app()
                    .server
                    .admin_allow_origins
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(o))
                || bucket_allows(&s, req.uri().path(), origin);
            if !allowed {
                return refuse(format!(
                    "a request from the web page origin {o:?} was refused: the admin APIs answer pages of other origins only when [server] admin_allow_origins lists them"
                ));
            }
        }
    }
    let data_api = matches!(
        req.uri().path(),
        "/Execute"
            | "/BatchExecute"
            | "/BeginTransaction"
            | "/CommitTransaction"
            | "/RollbackTransaction"
    );
    if data_api {
        let ty = stratus_gateway::header_str(headers, "content-type").unwrap_or("");
        let essence = ty
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if matches!(
            essence.as_str(),
            "text/plain" | "application/x-www-form-urlencoded" | "multipart/form-data"
        ) {
            return refuse(format!(
                "the RDS Data API takes application/json, not {essence} (the content type of a cross-site form)"
            ));
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_of_this_machine_pass() {
        for ok in [
            "127.0.0.1:8081",
            "[::1]:8081",
            "localhost:8081",
            "LOCALHOST",
            "app.localhost:1",
            "10.0.0.5:8081",
        ] {
            assert!(local_host(ok), "{ok}");
        }
        for bad in [
            "evil.example:8081",
            "localhost.evil.example",
            "127.0.0.1.nip.io:8081",
        ] {
            assert!(!local_host(bad), "{bad}");
        }
    }
}
