//! The WebSocket event (CONNECT, MESSAGE, DISCONNECT), from the
//! `aws_lambda_events` types.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lambda_events::apigw::{
    ApiGatewayRequestIdentity, ApiGatewayWebsocketProxyRequest,
    ApiGatewayWebsocketProxyRequestContext,
};
use aws_lambda_events::query_map::QueryMap;
use base64::Engine as _;
use http::Request;
use stratus_config::{Api, Stage};

/// At least 96 random bits (uuid v4: 122), URL-safe.
pub(crate) fn new_connection_id() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
}

/// What every event of one connection shares.
pub(crate) struct Meta {
    pub(crate) api: Arc<Api>,
    pub(crate) stage: Stage,
    pub(crate) conn_id: String,
    pub(crate) connected_at: i64,
    pub(crate) source_ip: String,
    pub(crate) user_agent: Option<String>,
    pub(crate) domain: Option<String>,
    /// What `$connect`'s authorizer let in: every event's
    /// `requestContext.authorizer`.
    pub(crate) authorizer: Option<serde_json::Value>,
    /// The API key `$connect` was let in with (`identity.apiKey`).
    pub(crate) api_key: Option<String>,
}

pub(crate) enum EventKind<'r, B> {
    Connect(&'r Request<B>),
    Message,
    Disconnect(u16, &'r str),
}

impl Meta {
    pub(crate) fn event<B>(
        &self,
        kind: EventKind<'_, B>,
        route_key: &str,
        request_id: &str,
        body: Option<(String, bool)>,
    ) -> Vec<u8> {
        serde_json::to_vec(&self.event_value(kind, route_key, request_id, body)).unwrap_or_default()
    }

    /// The event as a JSON value (the `$connect` authorizer's starts from it).
    pub(crate) fn event_value<B>(
        &self,
        kind: EventKind<'_, B>,
        route_key: &str,
        request_id: &str,
        body: Option<(String, bool)>,
    ) -> serde_json::Value {
        let now = chrono::Utc::now();
        let mut rc = ApiGatewayWebsocketProxyRequestContext::default();
        rc.route_key = Some(route_key.to_owned());
        rc.message_direction = Some("IN".into());
        rc.connection_id = Some(self.conn_id.clone());
        rc.connected_at = self.connected_at;
        rc.request_id = Some(request_id.to_owned());
        rc.extended_request_id = Some(request_id.to_owned());
        rc.request_time = Some(crate::events::request_time(now));
        rc.request_time_epoch = now.timestamp_millis();
        rc.stage = Some(self.stage.name.clone());
        rc.domain_name = self.domain.clone();
        rc.apiid = Some(self.api.name.clone());
        rc.account_id = Some(stratus_runtime::ACCOUNT_ID.into());
        let mut identity = ApiGatewayRequestIdentity::default();
        identity.source_ip = Some(self.source_ip.clone());
        identity.user_agent = self.user_agent.clone();
        identity.api_key = self.api_key.clone();
        rc.identity = identity;

        let mut event = ApiGatewayWebsocketProxyRequest::default();
        // The crate serializes query maps as lists; API Gateway sends the
        // last value of each in `queryStringParameters`.
        let mut single_query: Option<HashMap<String, String>> = None;
        match kind {
            EventKind::Connect(req) => {
                rc.event_type = Some("CONNECT".into());
                event.headers = crate::events::last_values(req.headers());
                event.multi_value_headers = req.headers().clone();
                let pairs = crate::events::query_pairs(req.uri().query());
                let multi = crate::events::multi_query(&pairs);
                if !pairs.is_empty() {
                    single_query = Some(pairs.into_iter().collect());
                    event.multi_value_query_string_parameters = QueryMap::from(multi);
                }
                event.is_base64_encoded = false;
            }
            EventKind::Message => {
                rc.event_type = Some("MESSAGE".into());
                rc.message_id = Some(new_connection_id());
                if let Some((b, binary)) = body {
                    event.body = Some(b);
                    event.is_base64_encoded = binary;
                }
            }
            EventKind::Disconnect(code, reason) => {
                rc.event_type = Some("DISCONNECT".into());
                rc.disconnect_status_code = Some(i64::from(code));
                rc.disconnect_reason = Some(reason.to_owned());
                event.is_base64_encoded = false;
            }
        }
        if !self.stage.variables.is_empty() {
            event.stage_variables = self.stage.variables.clone().into_iter().collect();
        }
        event.request_context = rc;
        let mut v = serde_json::to_value(&event).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            match single_query {
                Some(q) => {
                    obj.insert("queryStringParameters".into(), serde_json::json!(q));
                }
                None => {
                    obj.remove("queryStringParameters");
                    obj.remove("multiValueQueryStringParameters");
                }
            }
        }
        if let (Some(a), Some(rc)) = (
            &self.authorizer,
            v.get_mut("requestContext")
                .and_then(serde_json::Value::as_object_mut),
        ) {
            rc.insert("authorizer".into(), a.clone());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_ids_are_url_safe_and_unique() {
        let a = new_connection_id();
        let b = new_connection_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 22);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
}
