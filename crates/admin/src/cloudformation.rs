//! CloudFormation's read side for the running template, as boto3's
//! `cloudformation` client and `aws cloudformation` call it (query
//! protocol: a form-encoded `POST /` with `Action`, XML answers; SigV4
//! service `cloudformation`, the one rule): `DescribeStacks` (with the
//! template's `Outputs`, their URLs the local ones), `ListStackResources`,
//! `DescribeStackResources` and `DescribeStackResource`. So the
//! integration tests `sam init` writes, which read the API's URL from the
//! stack's outputs, run unchanged against Stratus.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::connections::iso;
use crate::s3::esc;
use crate::AdminState;

const NS: &str = "http://cloudformation.amazonaws.com/doc/2010-05-15/";

/// The running template as a stack.
#[derive(Debug, Clone)]
pub struct StackInfo {
    pub name: String,
    /// `arn:aws:cloudformation:REGION:000000000000:stack/NAME/ID`.
    pub id: String,
    pub description: Option<String>,
    /// When the server started, ms since the epoch.
    pub created_ms: i64,
    /// (key, value, description), values as served locally.
    pub outputs: Vec<(String, String, Option<String>)>,
    /// (logical id, type, physical id).
    pub resources: Vec<(String, String, String)>,
}

fn xml(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml")],
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}"),
    )
        .into_response()
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// CloudFormation's error shape (400 `ValidationError` for what the caller
/// named wrong).
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    xml(
        status,
        format!(
            "<ErrorResponse xmlns=\"{NS}\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            esc(message),
            request_id()
        ),
    )
}

fn answer(action: &str, result: &str) -> Response {
    xml(
        StatusCode::OK,
        format!(
            "<{action}Response xmlns=\"{NS}\"><{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
            request_id()
        ),
    )
}

/// `POST /`: the action the form names.
pub(crate) async fn dispatch(
    State(s): State<AdminState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err((code, why)) =
        crate::sigv4::authorize(&s, "cloudformation", &method, &uri, &headers, &body)
    {
        return error(StatusCode::FORBIDDEN, code, &why);
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let action = field("Action").unwrap_or("");
    let Some(stack) = s.stack.as_deref() else {
        return error(
            StatusCode::BAD_REQUEST,
            "ValidationError",
            "this server runs a stratus.toml, not a template: it has no stack",
        );
    };
    // A stack is named by its name or its id; none names every stack.
    if let Some(named) = field("StackName") {
        if named != stack.name && named != stack.id {
            return error(
                StatusCode::BAD_REQUEST,
                "ValidationError",
                &format!("Stack with id {named} does not exist"),
            );
        }
    }
    let created = iso(stack.created_ms);
    let resource = |(logical, ty, physical): &(String, String, String), summary: bool| {
        let when = if summary {
            "LastUpdatedTimestamp"
        } else {
            "Timestamp"
        };
        let head = if summary {
            String::new()
        } else {
            format!(
                "<StackName>{}</StackName><StackId>{}</StackId>",
                esc(&stack.name),
                esc(&stack.id)
            )
        };
        format!(
            "<member>{head}<LogicalResourceId>{}</LogicalResourceId><PhysicalResourceId>{}</PhysicalResourceId><ResourceType>{}</ResourceType><{when}>{created}</{when}><ResourceStatus>CREATE_COMPLETE</ResourceStatus></member>",
            esc(logical),
            esc(physical),
            esc(ty)
        )
    };
    match action {
        "DescribeStacks" => {
            let outputs: String = stack
                .outputs
                .iter()
                .map(|(k, v, d)| {
                    let d = d
                        .as_deref()
                        .map(|d| format!("<Description>{}</Description>", esc(d)))
                        .unwrap_or_default();
                    format!(
                        "<member><OutputKey>{}</OutputKey><OutputValue>{}</OutputValue>{d}</member>",
                        esc(k),
                        esc(v)
                    )
                })
                .collect();
            let description = stack
                .description
                .as_deref()
                .map(|d| format!("<Description>{}</Description>", esc(d)))
                .unwrap_or_default();
            answer(
                action,
                &format!(
                    "<Stacks><member><StackName>{}</StackName><StackId>{}</StackId>{description}<CreationTime>{created}</CreationTime><StackStatus>CREATE_COMPLETE</StackStatus><Outputs>{outputs}</Outputs></member></Stacks>",
                    esc(&stack.name),
                    esc(&stack.id)
                ),
            )
        }
        "ListStackResources" => {
            let all: String = stack.resources.iter().map(|r| resource(r, true)).collect();
            answer(
                action,
                &format!("<StackResourceSummaries>{all}</StackResourceSummaries>"),
            )
        }
        "DescribeStackResources" => {
            let all: String = stack
                .resources
                .iter()
                .filter(|r| field("LogicalResourceId").is_none_or(|l| l == r.0))
                .map(|r| resource(r, false))
                .collect();
            answer(action, &format!("<StackResources>{all}</StackResources>"))
        }
        "DescribeStackResource" => {
            let logical = field("LogicalResourceId").unwrap_or("");
            match stack.resources.iter().find(|r| r.0 == logical) {
                Some(r) => {
                    let one = resource(r, false)
                        .replacen("<member>", "<StackResourceDetail>", 1)
                        .replace("</member>", "</StackResourceDetail>")
                        .replace("<Timestamp>", "<LastUpdatedTimestamp>")
                        .replace("</Timestamp>", "</LastUpdatedTimestamp>");
                    answer(action, &one)
                }
                None => error(
                    StatusCode::BAD_REQUEST,
                    "ValidationError",
                    &format!("Resource {logical} does not exist for stack {}", stack.name),
                ),
            }
        }
        other => error(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            &format!("{other:?} is not an action Stratus answers (DescribeStacks, ListStackResources, DescribeStackResources, DescribeStackResource)"),
        ),
    }
}
