//! Messages: route selection, `$default`, the Forbidden answer, two-way
//! responses.

use base64::Engine as _;
use bytes::Bytes;
use serde_json::Value;
use stratus_config::{Api, RouteKey, SelectionExpr, SelectionPart};
use tokio_tungstenite::tungstenite::Message;

use super::registry::{LocalConnection, Outbound};
use super::WebSockets;
use crate::events::websocket::{EventKind, Meta};

/// A message that passed routing and its throttle, for the worker.
pub(super) struct Admitted {
    started: tokio::time::Instant,
    request_id: String,
    /// Index of its route in the API's routes.
    route: usize,
    body: String,
    binary: bool,
}

impl WebSockets {
    /// One message, admitted and handled at once (in-memory tests).
    #[cfg(test)]
    pub(crate) async fn on_message(&self, conn: &LocalConnection, meta: &Meta, msg: Message) {
        if let Some(a) = self.admit(conn, meta, msg).await {
            self.on_admitted(conn, meta, a).await;
        }
    }

    /// Routes a message and applies its throttle, on the read loop: a
    /// message with no route, or over its throttle, is answered here and
    /// never queued (a fast sender on a throttled route costs no work per
    /// message, and is never cut for it); the rest go to the worker.
    pub(super) async fn admit(
        &self,
        conn: &LocalConnection,
        meta: &Meta,
        msg: Message,
    ) -> Option<Admitted> {
        let started = tokio::time::Instant::now();
        let request_id = uuid::Uuid::new_v4().to_string();
        let (body, binary, json) = match &msg {
            Message::Text(t) => (
                t.to_string(),
                false,
                serde_json::from_str::<Value>(t.as_str()).ok(),
            ),
            Message::Binary(b) => (
                base64::engine::general_purpose::STANDARD.encode(b),
                true,
                None,
            ),
            _ => return None,
        };
        let refusal = |message: &str| {
            serde_json::json!({
                "message": message,
                "connectionId": meta.conn_id,
                "requestId": request_id,
            })
            .to_string()
        };
        let Some(route) = route_of_message(&meta.api, json.as_ref()) else {
            let _ = conn.send(Outbound::Text(refusal("Forbidden")));
            self.record(
                meta,
                started,
                &request_id,
                None,
                Some("Forbidden: no route"),
                "403",
            );
            return None;
        };
        // The route's throttle (or its stage's), then the server's, as for
        // HTTP requests; a throttled message is answered on the socket.
        let throttled = crate::phases::throttle::apply(
            &*self.access.limiter,
            self.access.server_throttle,
            &meta.api,
            &meta.stage,
            route,
        )
        .await
        .is_err();
        let route_key = route.key.to_string();
        if throttled {
            // Offered, not sent: a sender that reads none of its answers
            // loses them, and stays connected.
            conn.offer(Outbound::Text(refusal("Too Many Requests")));
            self.record(
                meta,
                started,
                &request_id,
                Some(&route_key),
                Some("Too Many Requests"),
                "429",
            );
            return None;
        }
        let route = meta
            .api
            .routes
            .iter()
            .position(|r| std::ptr::eq(r, route))?;
        Some(Admitted {
            started,
            request_id,
            route,
            body,
            binary,
        })
    }

    /// Runs an admitted message's integration and answers it.
    pub(super) async fn on_admitted(&self, conn: &LocalConnection, meta: &Meta, a: Admitted) {
        let route = &meta.api.routes[a.route];
        let route_key = route.key.to_string();
        let event = meta.event(
            EventKind::<()>::Message,
            &route_key,
            &a.request_id,
            Some((a.body, a.binary)),
        );
        let error = match self.invoke(route, event).await {
            Ok(payload) => {
                if route.respond {
                    if let Some(out) = route_response(&payload) {
                        let _ = conn.answer(out).await;
                    }
                }
                None
            }
            Err(e) => {
                let err = serde_json::json!({
                    "message": "Internal server error",
                    "connectionId": meta.conn_id,
                    "requestId": a.request_id,
                });
                let _ = conn.answer(Outbound::Text(err.to_string())).await;
                Some(format!("{e:?}"))
            }
        };
        let status = if error.is_some() { "500" } else { "200" };
        self.record(
            meta,
            a.started,
            &a.request_id,
            Some(&route_key),
            error.as_deref(),
            status,
        );
    }

    /// A message's access line and `WebSocketMessage` event.
    fn record(
        &self,
        meta: &Meta,
        started: tokio::time::Instant,
        request_id: &str,
        route_key: Option<&str>,
        error: Option<&str>,
        status: &'static str,
    ) {
        if let Some(log) = meta.stage.access_log.as_deref() {
            use std::borrow::Cow;
            let latency = started.elapsed();
            let at = chrono::Utc::now() - chrono::Duration::from_std(latency).unwrap_or_default();
            let line = log.render(|var| match var {
                "requestId" | "extendedRequestId" => Some(Cow::Borrowed(request_id)),
                "apiId" => Some(Cow::Borrowed(meta.api.name.as_str())),
                "stage" => Some(Cow::Borrowed(meta.stage.name.as_str())),
                "connectionId" => Some(Cow::Borrowed(meta.conn_id.as_str())),
                "eventType" => Some(Cow::Borrowed("MESSAGE")),
                "routeKey" => route_key.map(Cow::Borrowed),
                "status" => Some(Cow::Borrowed(status)),
                "error.message" => error.map(Cow::Borrowed),
                "identity.sourceIp" => Some(Cow::Borrowed(meta.source_ip.as_str())),
                "identity.userAgent" => meta.user_agent.as_deref().map(Cow::Borrowed),
                "identity.apiKey" => meta.api_key.as_deref().map(Cow::Borrowed),
                "domainName" => meta.domain.as_deref().map(Cow::Borrowed),
                "responseLatency" => Some(Cow::Owned(latency.as_millis().to_string())),
                "requestTime" => Some(Cow::Owned(crate::events::request_time(at))),
                "requestTimeEpoch" => Some(Cow::Owned(at.timestamp_millis().to_string())),
                _ => None,
            });
            stratus_telemetry::access_log::write(log.file.clone(), line);
        }
        stratus_telemetry::WebSocketMessage {
            connection_id: &meta.conn_id,
            request_id,
            api: &meta.api.name,
            stage: &meta.stage.name,
            route: route_key.unwrap_or(""),
            latency: started.elapsed(),
            error,
        }
        .emit();
    }
}

/// The `body` of a function's answer, sent back on a two-way route.
fn route_response(payload: &[u8]) -> Option<Outbound> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    let body = v.get("body")?;
    let text = match body {
        Value::String(s) => s.clone(),
        Value::Null => return None,
        other => other.to_string(),
    };
    if v.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?;
        Some(Outbound::Binary(Bytes::from(raw)))
    } else {
        Some(Outbound::Text(text))
    }
}

/// The route a message goes to: the custom route its selection expression
/// names (a constant expression needs no JSON body), else `$default`.
pub(crate) fn route_of_message<'a>(
    api: &'a Api,
    json: Option<&Value>,
) -> Option<&'a stratus_config::Route> {
    let selected = match (&api.route_selection, json) {
        (Some(expr), _) if expr.constant().is_some() => expr.constant().map(str::to_owned),
        (Some(expr), Some(v)) => Some(select_route(expr, v)),
        _ => None,
    };
    selected
        .as_deref()
        .and_then(|k| find_custom_route(api, k))
        .or_else(|| find_route(api, "$default"))
}

/// Evaluates a parsed selection expression against a JSON body: missing
/// paths give "", strings are themselves, other values their JSON text.
pub(crate) fn select_route(expr: &SelectionExpr, body: &Value) -> String {
    let mut out = String::new();
    for part in &expr.parts {
        match part {
            SelectionPart::Literal(l) => out.push_str(l),
            SelectionPart::Body(path) => {
                let found = path.iter().try_fold(body, |v, k| v.get(k.as_str()));
                match found {
                    None | Some(Value::Null) => {}
                    Some(Value::String(s)) => out.push_str(s),
                    Some(other) => out.push_str(&other.to_string()),
                }
            }
        }
    }
    out
}

pub(crate) fn find_route<'a>(api: &'a Api, key: &str) -> Option<&'a stratus_config::Route> {
    api.routes.iter().find(|r| match &r.key {
        RouteKey::WebSocket(k) => k == key,
        RouteKey::Default => key == "$default",
        RouteKey::Http { .. } => false,
    })
}

/// A custom route (never `$connect`/`$disconnect`, whatever the message says).
fn find_custom_route<'a>(api: &'a Api, key: &str) -> Option<&'a stratus_config::Route> {
    if key.starts_with('$') {
        return None;
    }
    find_route(api, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(expr: &str, body: &str) -> String {
        let e = SelectionExpr::parse(expr).unwrap();
        select_route(&e, &serde_json::from_str(body).unwrap())
    }

    #[test]
    fn selection_evaluates_paths_templates_and_missing_values() {
        assert_eq!(eval("$request.body.action", r#"{"action":"send"}"#), "send");
        assert_eq!(eval("$request.body.a.b", r#"{"a":{"b":"deep"}}"#), "deep");
        assert_eq!(eval("$request.body.a.b", r#"{"a":{}}"#), "");
        assert_eq!(eval("$request.body.n", r#"{"n":42}"#), "42");
        assert_eq!(
            eval("$request.body.o", r#"{"o":{"x":true}}"#),
            r#"{"x":true}"#
        );
        assert_eq!(
            eval(
                "${request.body.svc}/${request.body.op}",
                r#"{"svc":"chat","op":"join"}"#
            ),
            "chat/join"
        );
        assert_eq!(eval(r"\$${request.body.op}", r#"{"op":"x"}"#), "$x");
    }
}
