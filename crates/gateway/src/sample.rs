//! The event a function route would receive for a request, built by the
//! same code the gateway runs (`stratus event`): what to pass to `stratus
//! invoke`, or to a test, so that a function that parses API Gateway's
//! events strictly (`lambda_http`, Powertools) gets a whole one.

use bytes::Bytes;
use stratus_config::{App, Integration, PayloadFormat};

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
pub fn event_for(app: &App, req: &SampleRequest) -> Result<(String, Vec<u8>), String> {
    let method = http::Method::from_bytes(req.method.to_ascii_uppercase().as_bytes())
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
    let m = match table.lookup(&method, &path) {
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
    };
    let body = Bytes::from(req.body.clone());
    let event = match m.route.payload {
        PayloadFormat::V1 => events::v1::v1_event(&m, &parts, &body, &cx),
        PayloadFormat::V2 => events::v2::v2_event(&m, &parts, &body, &cx),
    }
    .map_err(|e| e.to_string())?;
    Ok((name.clone(), event))
}
