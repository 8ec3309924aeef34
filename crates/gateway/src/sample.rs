//! The event a function route would receive for a request, built by the
//! same code the gateway runs (`stratus event`): what to pass to `stratus
//! invoke`, or to a test, so that a function that parses API Gateway's
//! events strictly (`lambda_http`, Powertools) gets a whole one.

use bytes::Bytes;
use stratus_config::{App, Integration};

use crate::events::{self, EventContext};
use crate::router::{Lookup, RouteTable};

/// The request to build an event for: method, path with its query string,
/// headers, body.
#[derive(Debug, Clone, Default)]
pub struct SampleRequest {
    pub method: String,
    pub path_and_query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The function the request reaches, and the event it would receive, as
/// JSON; an error says why there is none (no route, not a function route).
/// `CONNECT`, `MESSAGE` and `DISCONNECT` as the method make WebSocket
/// events for the WebSocket API stage served at the path.
pub fn event_for(app: &App, req: &SampleRequest) -> Result<(String, Vec<u8>), String> {
    let upper = req.method.to_ascii_uppercase();
    if let Some(kind) = ["CONNECT", "MESSAGE", "DISCONNECT"]
        .into_iter()
        .find(|k| *k == upper)
    {
        return websocket_event(app, kind, req);
    }
    let method = http::Method::from_bytes(upper.as_bytes())
        .map_err(|_| format!("{:?} is not an HTTP method", req.method))?;
    let mut builder = http::Request::builder()
        .method(method.clone())
        .uri(&req.path_and_query);
    let has_host = req
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("host"));
    if !has_host {
        builder = builder.header("host", app.server.listen.to_string());
    }
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let (parts, ()) = builder
        .body(())
        .map_err(|e| format!("not a request: {e}"))?
        .into_parts();
    let table = RouteTable::new(app);
    let path = parts.uri.path().to_owned();
    let host = crate::router::host_api_id(
        parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok()),
    );
    let host = host.as_deref().filter(|id| table.serves_host(id));
    let m = match table.lookup(&method, host, &path) {
        Lookup::Found(m) => m,
        Lookup::NoRoute { api, .. } => {
            return Err(format!(
                "no route of API {:?} matches {method} {path}",
                api.name
            ))
        }
        Lookup::NoApi => return Err(format!("no API serves {path}")),
    };
    let Integration::Function { name } = &m.route.integration else {
        return Err(format!(
            "{method} {path} is route {:?}, which calls no function ({})",
            m.route.key.to_string(),
            m.route.integration
        ));
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let cx = EventContext {
        request_id: &request_id,
        remote: ([127, 0, 0, 1], 0).into(),
        now: chrono::Utc::now(),
        authorizer: None,
        api_key: None,
        iam_caller: None,
    };
    let body = Bytes::from(req.body.clone());
    let event = events::proxy_event(&m, &parts, &body, &cx).map_err(|e| e.to_string())?;
    Ok((name.clone(), event))
}

fn websocket_event(
    app: &App,
    kind: &str,
    req: &SampleRequest,
) -> Result<(String, Vec<u8>), String> {
    use crate::events::websocket::{new_connection_id, EventKind, Meta};
    let mut builder = http::Request::builder().uri(&req.path_and_query);
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let request = builder
        .body(())
        .map_err(|e| format!("not a request: {e}"))?;
    let path = request.uri().path();
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let (api, stage) = app
        .apis
        .iter()
        .filter(|a| a.kind == stratus_config::ApiKind::WebSocket)
        .find_map(|a| a.stages.iter().find(|s| s.mount == path).map(|s| (a, s)))
        .ok_or_else(|| format!("no WebSocket API stage is served at {path}"))?;
    let body = String::from_utf8_lossy(&req.body).into_owned();
    // The route the gateway would pick (routing.rs), not a copy of its rules.
    let route = match kind {
        "CONNECT" => crate::websocket::routing::find_route(api, "$connect"),
        "DISCONNECT" => crate::websocket::routing::find_route(api, "$disconnect"),
        _ => {
            let json = serde_json::from_str::<serde_json::Value>(&body).ok();
            crate::websocket::routing::route_of_message(api, json.as_ref())
        }
    };
    let route =
        route.ok_or_else(|| format!("WebSocket API {:?} has no route for a {kind}", api.name))?;
    let route_key = route.key.to_string();
    let Integration::Function { name } = &route.integration else {
        return Err(format!(
            "route {route_key} of {:?} calls no function",
            api.name
        ));
    };
    let meta = Meta {
        api: api.clone(),
        stage: stage.clone(),
        conn_id: new_connection_id(),
        connected_at: chrono::Utc::now().timestamp_millis(),
        source_ip: "127.0.0.1".into(),
        user_agent: crate::header_str(request.headers(), http::header::USER_AGENT)
            .map(str::to_owned),
        domain: Some(app.server.listen.to_string()),
        authorizer: None,
        api_key: None,
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let event = match kind {
        "CONNECT" => meta.event(EventKind::Connect(&request), &route_key, &request_id, None),
        "DISCONNECT" => meta.event(
            EventKind::<()>::Disconnect(1000, ""),
            &route_key,
            &request_id,
            None,
        ),
        _ => meta.event(
            EventKind::<()>::Message,
            &route_key,
            &request_id,
            Some((body, false)),
        ),
    };
    Ok((name.clone(), event))
}
