//! A function written exactly as for AWS Lambda: `lambda_http` on the
//! official `lambda_runtime`. Stratus builds it (`cargo build --release`)
//! and runs the binary as the `provided` runtime's bootstrap.

use lambda_http::{run, service_fn, Body, Error, Request, RequestExt, Response};

async fn handler(event: Request) -> Result<Response<Body>, Error> {
    let name = event
        .path_parameters_ref()
        .and_then(|p| p.first("name"))
        .unwrap_or("world")
        .to_owned();
    let ctx = event.lambda_context_ref().cloned().unwrap_or_default();
    let body = serde_json::json!({
        "message": format!("hello, {name}"),
        "runtime": "rust",
        "requestId": ctx.request_id,
        "function": ctx.env_config.function_name,
    });
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(body.to_string().into())?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(handler)).await
}
