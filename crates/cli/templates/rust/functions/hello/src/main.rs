use lambda_http::{run, service_fn, Body, Error, Request, RequestExt, Response};

async fn handler(event: Request) -> Result<Response<Body>, Error> {
    let name = event
        .path_parameters_ref()
        .and_then(|p| p.first("name"))
        .unwrap_or("world")
        .to_owned();
    let body = serde_json::json!({ "message": format!("hello, {name}") });
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(body.to_string().into())?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(handler)).await
}
