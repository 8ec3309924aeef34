//! REST integrations beyond proxies (issue 25): mapping templates (VTL)
//! on a MOCK, a non-proxy Lambda integration and a non-proxy HTTP
//! integration, integration responses chosen by `selectionPattern`,
//! `responseParameters`, `passthrough`, and template mistakes named at load.

use serde_json::{json, Value};
use stratus_testkit::{write_file, Upstream};

use crate::support::{run_cli, Serving};

const CALC_PY: &str = r#"
def handler(event, context):
    # A non-proxy integration: the event is what the request template made.
    op, a, b = event["op"], event["a"], event["b"]
    if op == "div":
        if b == 0:
            raise Exception("[BadRequest] cannot divide by zero")
        return {"op": op, "result": a / b, "requestId": event["requestId"]}
    if op == "add":
        return {"op": op, "result": a + b, "requestId": event["requestId"]}
    raise Exception("unknown operation " + op)
"#;

fn project(upstream: &str) -> String {
    format!(
        r##"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[functions.calc]
runtime = "python3.12"
handler = "app.handler"
code = "calc"

[apis.shop]
type = "rest"
base_path = "/shop"
stages = {{ prod = {{ variables = {{ greeting = "hi" }} }} }}

[apis.shop.routes."GET /mock"]
mock = {{}}
request_templates = {{ "application/json" = '{{"statusCode": #if($input.params("fail") == "yes")500#{{else}}200#end}}' }}
responses = [
  {{ pattern = "5\\d\\d", status = 503, templates = {{ "application/json" = '{{"error": "mock failed", "stage": "$context.stage"}}' }} }},
  {{ status = 200, templates = {{ "application/json" = '{{"ok": true, "greeting": "$stageVariables.greeting", "method": "$context.httpMethod"}}' }}, headers = {{ "x-mock" = "'yes'" }} }},
]

[apis.shop.routes."POST /calc/{{op}}"]
function = "calc"
proxy = false
passthrough = "NEVER"
responses = [
  {{ pattern = "\\[BadRequest\\].*", status = 400, templates = {{ "application/json" = "{{\"message\": \"$util.escapeJavaScript($input.path('$.errorMessage'))\"}}" }} }},
  {{ status = 200, headers = {{ "x-op" = "integration.response.body.op" }}, templates = {{ "application/json" = """
#set($r = $input.path('$'))
{{"result": $r.result, "op": "$r.op", "sameRequest": #if($r.requestId == $context.requestId)true#{{else}}false#end}}""" }} }},
]

[apis.shop.routes."POST /calc/{{op}}".request_templates]
"application/json" = """
{{
  "op": "$input.params('op')",
  "a": $input.json('$.a'),
  "b": $input.json('$.b'),
  "requestId": "$context.requestId"
}}"""

[apis.shop.routes."POST /echo"]
http = "{upstream}/echo"
proxy = false
request_parameters = {{ "integration.request.header.x-user" = "method.request.querystring.user", "integration.request.querystring.source" = "'stratus'" }}
request_templates = {{ "application/json" = "#set($context.requestOverride.header.x-from-template = 'set')name=$util.urlEncode($input.path('$.name'))" }}
responses = [
  {{ pattern = "4\\d\\d", status = 502 }},
  {{ status = 201, headers = {{ "x-upstream-said" = "integration.response.header.x-upstream" }}, templates = {{ "application/json" = '{{"upstream": "$util.escapeJavaScript($input.body)"}}' }} }},
]

[apis.shop.routes."GET /pass/{{id}}"]
http = "{upstream}/pass"
request_parameters = {{ "integration.request.header.x-id" = "method.request.path.id", "integration.request.querystring.from" = "method.request.header.x-from" }}
"##
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn mock_lambda_and_http_integrations_are_mapped_by_their_templates() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "stratus.toml", &project(&upstream.url("")));
    write_file(dir.path(), "calc/app.py", CALC_PY);
    let s = Serving::start(dir.path());
    let client = reqwest::Client::new();
    let json_of =
        |t: &str| -> Value { serde_json::from_str(t).unwrap_or_else(|e| panic!("{e}: {t}")) };

    // MOCK: the request template's statusCode picks the response.
    let r = client.get(s.url("/shop/prod/mock")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-mock"], "yes");
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(
        json_of(&r.text().await.unwrap()),
        json!({"ok": true, "greeting": "hi", "method": "GET"})
    );
    let r = client
        .get(s.url("/shop/prod/mock?fail=yes"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        json_of(&r.text().await.unwrap()),
        json!({"error": "mock failed", "stage": "prod"})
    );

    // Non-proxy Lambda: the template's output is the event; the result
    // goes through the response template; a header from its body.
    let r = client
        .post(s.url("/shop/prod/calc/add"))
        .json(&json!({"a": 2, "b": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-op"], "add");
    assert_eq!(
        json_of(&r.text().await.unwrap()),
        json!({"result": 5, "op": "add", "sameRequest": true})
    );
    // A thrown "[BadRequest] ..." maps to 400 by its selectionPattern.
    let r = client
        .post(s.url("/shop/prod/calc/div"))
        .json(&json!({"a": 1, "b": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        json_of(&r.text().await.unwrap()),
        json!({"message": "[BadRequest] cannot divide by zero"})
    );
    // An error no pattern matches takes the default response, as on AWS.
    let r = client
        .post(s.url("/shop/prod/calc/pow"))
        .json(&json!({"a": 1, "b": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // passthrough NEVER: a content type without a template is 415.
    let r = client
        .post(s.url("/shop/prod/calc/add"))
        .header("content-type", "text/plain")
        .body("2+3")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(
        json_of(&r.text().await.unwrap()),
        json!({"message": "Unsupported Media Type"})
    );

    // Non-proxy HTTP: the template's body and override header reach the
    // upstream; its answer goes through the 201 response.
    let r = client
        .post(s.url("/shop/prod/echo?user=ann"))
        .json(&json!({"name": "a b&c"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["x-upstream-said"], "echo");
    let v = json_of(&r.text().await.unwrap());
    let echoed = v["upstream"].as_str().unwrap();
    assert!(
        echoed.starts_with("POST\n/echo?user=ann&source=stratus\n"),
        "{echoed}"
    );
    assert!(echoed.contains("x-user: ann\n"), "{echoed}");
    assert!(echoed.contains("x-from-template: set\n"), "{echoed}");
    assert!(echoed.ends_with("\n\nname=a+b%26c"), "{echoed}");
    // A proxy route's request parameters: a header from the path, a query
    // string from a header.
    let r = client
        .get(s.url("/shop/prod/pass/42"))
        .header("x-from", "web")
        .send()
        .await
        .unwrap();
    let echoed = r.text().await.unwrap();
    assert!(echoed.starts_with("GET\n/pass?from=web\n"), "{echoed}");
    assert!(echoed.contains("x-id: 42\n"), "{echoed}");
}

#[test]
fn template_mistakes_are_named_with_their_route_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "stratus.toml",
        r#"[apis.shop]
type = "rest"

[apis.shop.routes."GET /a"]
mock = {}
request_templates = { "application/json" = '#if($input.params("x"))open' }

[apis.shop.routes."GET /b"]
mock = {}
responses = [{ status = 200, templates = { "application/json" = '$util.toJson($input.body)' } }]

[apis.shop.routes."GET /c"]
mock = {}
responses = [{ pattern = "(", status = 200 }]
"#,
    );
    let (ok, _, err) = run_cli(&["validate", dir.path().to_str().unwrap()]);
    assert!(!ok);
    let f = file.display().to_string();
    assert!(
        err.contains(&format!("{f}:6:"))
            && err.contains(r#"apis.shop.routes."GET /a".request_templates."application/json": the application/json template: line 1, column"#)
            && err.contains("#if is not closed with #end"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{f}:10:")) && err.contains("$util.toJson is not a $util function"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{f}:14:"))
            && err.contains("pattern: not a regular expression: unclosed group"),
        "{err}"
    );
    assert!(err.contains("3 errors"), "{err}");
}

/// The same mappings as a SAM template writes them: an OpenAPI body's
/// `x-amazon-apigateway-integration` (`mock` and `aws` with
/// `requestTemplates`, `passthroughBehavior` and `responses`), and a plain
/// `AWS::ApiGateway::Method` with an `AWS` integration.
const MAPPING_TEMPLATE: &str = r#"AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Calc:
    Type: AWS::Serverless::Function
    Properties: { CodeUri: calc/, Handler: app.handler, Runtime: python3.12 }
  Shop:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      DefinitionBody:
        openapi: "3.0.1"
        info: { title: shop, version: "1" }
        paths:
          /status:
            get:
              x-amazon-apigateway-integration:
                type: mock
                requestTemplates:
                  application/json: '{"statusCode": 200}'
                responses:
                  default:
                    statusCode: "200"
                    responseParameters:
                      method.response.header.x-status: "'green'"
                    responseTemplates:
                      application/json: '{"status": "green", "stage": "$context.stage"}'
          /calc/{op}:
            post:
              x-amazon-apigateway-integration:
                type: aws
                httpMethod: POST
                uri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Calc.Arn}/invocations
                passthroughBehavior: never
                requestTemplates:
                  application/json: |
                    {"op": "$input.params('op')", "a": $input.json('$.a'), "b": $input.json('$.b'), "requestId": "$context.requestId"}
                responses:
                  "\\[BadRequest\\].*":
                    statusCode: "400"
                    responseTemplates:
                      application/json: '{"bad": "$util.escapeJavaScript($input.path(''$.errorMessage''))"}'
                  default:
                    statusCode: "200"
                    responseTemplates:
                      application/json: '{"result": $input.json(''$.result'')}'
  Legacy:
    Type: AWS::ApiGateway::RestApi
    Properties: { Name: legacy }
  Sum:
    Type: AWS::ApiGateway::Resource
    Properties: { RestApiId: !Ref Legacy, ParentId: !GetAtt Legacy.RootResourceId, PathPart: sum }
  SumPost:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Legacy
      ResourceId: !Ref Sum
      HttpMethod: POST
      AuthorizationType: NONE
      Integration:
        Type: AWS
        IntegrationHttpMethod: POST
        Uri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Calc.Arn}/invocations
        RequestTemplates:
          application/json: '{"op": "add", "a": $input.json(''$.x''), "b": 10, "requestId": "$context.requestId"}'
        IntegrationResponses:
          - StatusCode: "202"
            ResponseTemplates:
              application/json: '{"sum": $input.json(''$.result'')}'
  LegacyStage:
    Type: AWS::ApiGateway::Stage
    Properties: { RestApiId: !Ref Legacy, StageName: live, DeploymentId: abc }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_templates_mappings_are_served() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "template.yaml", MAPPING_TEMPLATE);
    write_file(dir.path(), "calc/app.py", CALC_PY);
    let s = Serving::start_on_free_ports(dir.path());
    let client = reqwest::Client::new();
    let r = client.get(s.url("/prod/status")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-status"], "green");
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"status": "green", "stage": "prod"}"#
    );
    let r = client
        .post(s.url("/prod/calc/div"))
        .json(&json!({"a": 6, "b": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"bad": "[BadRequest] cannot divide by zero"}"#
    );
    let r = client
        .post(s.url("/prod/calc/div"))
        .json(&json!({"a": 6, "b": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), r#"{"result": 2.0}"#);
    let r = client
        .post(s.url("/prod/calc/add"))
        .header("content-type", "application/xml")
        .body("<a/>")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    // The plain Method: its one integration response is the default.
    let r = client
        .post(s.url("/live/sum"))
        .json(&json!({"x": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.text().await.unwrap(), r#"{"sum": 15}"#);
}

const VALIDATED: &str = r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[functions.orders]
runtime = "python3.12"
handler = "app.handler"
code = "orders"

[apis.shop]
type = "rest"
base_path = "/shop"
stages = { prod = { access_log = { file = "logs/access.log", format = '{"path":"$context.path","status":"$context.status","type":"$context.error.responseType","message":"$context.error.message","why":"$context.error.validationErrorString"}' } } }

[apis.shop.models]
Order = '{"$schema": "http://json-schema.org/draft-04/schema#", "type": "object", "required": ["id", "qty"], "properties": {"id": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}}}'

[apis.shop.routes."POST /orders"]
function = "orders"
validate = "all"
request_models = { "application/json" = "Order" }
required_parameters = ["querystring.store", "header.x-client"]

[apis.shop.routes."POST /unchecked"]
function = "orders"
request_models = { "application/json" = "Order" }
"#;

const ORDERS_PY: &str = r#"
def handler(event, context):
    return {"statusCode": 200, "body": "taken"}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn request_validators_check_parameters_and_bodies_as_aws_answers() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "stratus.toml", VALIDATED);
    write_file(dir.path(), "orders/app.py", ORDERS_PY);
    let s = Serving::start(dir.path());
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value, with_params: bool| {
        let mut r = client.post(s.url(path)).json(&body);
        if with_params {
            r = r.header("x-client", "web");
        }
        r.send()
    };
    let r = post("/shop/prod/orders", json!({"id": "a", "qty": 1}), false)
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"message":"Missing required request parameters: [store, x-client]"}"#
    );
    let r = post("/shop/prod/orders?store=1", json!({"id": 7}), true)
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"message":"Invalid request body"}"#
    );
    let r = post(
        "/shop/prod/orders?store=1",
        json!({"id": "a", "qty": 2}),
        true,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "taken");
    // Models without a validator check nothing, as on AWS.
    let r = post("/shop/prod/unchecked", json!({"nothing": true}), false)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The access log says why (the schema's words hold quotes, so the
    // lines are read as text, as AWS writes this variable unescaped).
    let log = dir.path().join("logs/access.log");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let lines = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.len() >= 4 || tokio::time::Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(
        lines[0].contains(r#""type":"BAD_REQUEST_PARAMETERS","message":"Missing required request parameters: [store, x-client]""#),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains(r#""type":"BAD_REQUEST_BODY","message":"Invalid request body""#),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].contains(r#""qty" is a required property"#),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].contains(r#"7 is not of type "string" (at /id)"#),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains(r#""status":"200""#) && lines[2].contains(r#""why":"-""#),
        "{}",
        lines[2]
    );
}

#[test]
fn model_mistakes_are_named_at_load() {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "stratus.toml",
        r#"[apis.shop]
type = "rest"

[apis.shop.models]
Broken = '{"type": "object",'
Odd = '{"type": "no-such-type"}'

[apis.shop.routes."POST /a"]
mock = {}
validate = "body"
request_models = { "application/json" = "Ghost" }
required_parameters = ["cookie.x"]
"#,
    );
    let (ok, _, err) = run_cli(&["validate", dir.path().to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("apis.shop.models.Broken: a model is a JSON Schema, and this is not JSON"),
        "{err}"
    );
    assert!(
        err.contains("apis.shop.models.Odd: not a valid JSON Schema"),
        "{err}"
    );
    assert!(
        err.contains(r#"no model "Ghost" in the API's models"#),
        "{err}"
    );
    assert!(
        err.contains(r#""cookie.x" is not querystring.NAME, header.NAME or path.NAME"#),
        "{err}"
    );
}

/// Validators as templates declare them: an OpenAPI body's
/// `x-amazon-apigateway-request-validators` with `components.schemas`
/// (one model `$ref`-ing another), and plain `AWS::ApiGateway::Model`,
/// `RequestValidator` and a Method's `RequestModels`/`RequestParameters`.
const VALIDATING_TEMPLATE: &str = r##"AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Orders:
    Type: AWS::Serverless::Function
    Properties: { CodeUri: orders/, Handler: app.handler, Runtime: python3.12 }
  Shop:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      GatewayResponses:
        BAD_REQUEST_PARAMETERS:
          StatusCode: 422
          ResponseParameters: { Headers: { x-gr: "'sam'" } }
          ResponseTemplates: { application/json: '{"missing": $context.error.messageString}' }
      DefinitionBody:
        openapi: "3.0.1"
        info: { title: shop, version: "1" }
        x-amazon-apigateway-gateway-responses:
          BAD_REQUEST_BODY:
            statusCode: 422
            responseTemplates: { application/json: '{"invalid": $context.error.messageString}' }
        x-amazon-apigateway-request-validators:
          everything: { validateRequestBody: true, validateRequestParameters: true }
          nothing: { validateRequestBody: false, validateRequestParameters: false }
        x-amazon-apigateway-request-validator: everything
        components:
          schemas:
            Item:
              type: object
              required: [sku]
              properties: { sku: { type: string } }
            Order:
              type: object
              required: [items]
              properties:
                items: { type: array, minItems: 1, items: { $ref: "#/components/schemas/Item" } }
        paths:
          /orders:
            post:
              parameters:
                - { name: store, in: query, required: true, schema: { type: string } }
              requestBody:
                content:
                  application/json: { schema: { $ref: "#/components/schemas/Order" } }
              x-amazon-apigateway-integration:
                type: aws_proxy
                httpMethod: POST
                uri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Orders.Arn}/invocations
          /loose:
            post:
              x-amazon-apigateway-request-validator: nothing
              requestBody:
                content:
                  application/json: { schema: { $ref: "#/components/schemas/Order" } }
              x-amazon-apigateway-integration:
                type: aws_proxy
                httpMethod: POST
                uri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Orders.Arn}/invocations
  Legacy:
    Type: AWS::ApiGateway::RestApi
    Properties: { Name: legacy }
  Pet:
    Type: AWS::ApiGateway::Model
    Properties:
      RestApiId: !Ref Legacy
      ContentType: application/json
      Name: PetModel
      Schema: { type: object, required: [name], properties: { name: { type: string } } }
  Checker:
    Type: AWS::ApiGateway::RequestValidator
    Properties: { RestApiId: !Ref Legacy, ValidateRequestBody: true, ValidateRequestParameters: true }
  Pets:
    Type: AWS::ApiGateway::Resource
    Properties: { RestApiId: !Ref Legacy, ParentId: !GetAtt Legacy.RootResourceId, PathPart: pets }
  PetsPost:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Legacy
      ResourceId: !Ref Pets
      HttpMethod: POST
      AuthorizationType: NONE
      RequestValidatorId: !Ref Checker
      RequestModels: { application/json: !Ref Pet }
      RequestParameters: { method.request.header.x-owner: true, method.request.querystring.optional: false }
      Integration:
        Type: AWS_PROXY
        IntegrationHttpMethod: POST
        Uri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Orders.Arn}/invocations
  NotThere:
    Type: AWS::ApiGateway::GatewayResponse
    Properties:
      RestApiId: !Ref Legacy
      ResponseType: MISSING_AUTHENTICATION_TOKEN
      StatusCode: "404"
      ResponseParameters: { gatewayresponse.header.x-gr: "'cfn'" }
      ResponseTemplates: { application/json: '{"nothing at": "$context.path"}' }
  LegacyStage:
    Type: AWS::ApiGateway::Stage
    Properties: { RestApiId: !Ref Legacy, StageName: live, DeploymentId: abc }
"##;

#[tokio::test(flavor = "multi_thread")]
async fn a_templates_validators_and_models_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "template.yaml", VALIDATING_TEMPLATE);
    write_file(dir.path(), "orders/app.py", ORDERS_PY);
    let s = Serving::start_on_free_ports(dir.path());
    let client = reqwest::Client::new();
    let call = |path: &str, body: Value, headers: &[(&str, &str)]| {
        let mut r = client.post(s.url(path)).json(&body);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.send()
    };
    let status_and_body = |r: reqwest::Response| async move {
        let st = r.status().as_u16();
        (st, r.text().await.unwrap())
    };
    let good = json!({"items": [{"sku": "a-1"}]});
    // (Both answers as the API's gateway responses shape them.)
    let r = call("/prod/orders", good.clone(), &[]).await.unwrap();
    assert_eq!(r.headers()["x-gr"], "sam");
    assert_eq!(
        status_and_body(r).await,
        (
            422,
            r#"{"missing": "Missing required request parameters: [store]"}"#.into()
        )
    );
    // The item's schema is a $ref: a bad item is caught through it.
    let bad_item = json!({"items": [{"sku": 5}]});
    let r = call("/prod/orders?store=x", bad_item.clone(), &[])
        .await
        .unwrap();
    assert_eq!(
        status_and_body(r).await,
        (422, r#"{"invalid": "Invalid request body"}"#.into())
    );
    assert_eq!(
        status_and_body(call("/prod/orders?store=x", good, &[]).await.unwrap()).await,
        (200, "taken".into())
    );
    // The "nothing" validator checks nothing.
    assert_eq!(
        status_and_body(call("/prod/loose", bad_item, &[]).await.unwrap()).await,
        (200, "taken".into())
    );
    // The plain resources: a required header, the model by its Name.
    assert_eq!(
        status_and_body(
            call("/live/pets", json!({"name": "Tom"}), &[])
                .await
                .unwrap()
        )
        .await,
        (
            400,
            r#"{"message":"Missing required request parameters: [x-owner]"}"#.into()
        )
    );
    assert_eq!(
        status_and_body(
            call("/live/pets", json!({"age": 3}), &[("x-owner", "ann")])
                .await
                .unwrap()
        )
        .await,
        (400, r#"{"message":"Invalid request body"}"#.into())
    );
    assert_eq!(
        status_and_body(
            call("/live/pets", json!({"name": "Tom"}), &[("x-owner", "ann")])
                .await
                .unwrap()
        )
        .await,
        (200, "taken".into())
    );
    // The plain GatewayResponse: a route that is not there.
    let r = call("/live/nowhere", json!({}), &[]).await.unwrap();
    assert_eq!(r.headers()["x-gr"], "cfn");
    assert_eq!(
        status_and_body(r).await,
        (404, r#"{"nothing at": "/live/nowhere"}"#.into())
    );
}

const CUSTOM_ANSWERS: &str = r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[apis.shop]
type = "rest"
base_path = "/shop"
stages = { prod = { variables = { team = "shop-team" } } }
cors = { allow_origins = ["https://app.example"], allow_methods = ["GET"] }

[apis.shop.routes]
"GET /keyed" = { mock = { status = 200, body = "keyed" }, api_key_required = true }
"GET /busy" = { mock = { status = 200, body = "busy" }, throttle = { rate = 0.001, burst = 1 } }

[apis.shop.gateway_responses.INVALID_API_KEY]
status = 401
headers = { "x-why" = "'no key'", "x-asked" = "method.request.header.x-caller" }
templates = { "application/json" = '{"error": "$context.error.responseType", "detail": $context.error.messageString, "team": "$stageVariables.team"}' }

[apis.shop.gateway_responses.DEFAULT_4XX]
headers = { "x-default" = "'4xx'" }
templates = { "application/json" = '{"oops": $context.error.messageString}' }

[api_keys.demo]
value = "demo-key-0123456789abcdef"

[usage_plans.basic]
apis = ["shop/prod"]
keys = ["demo"]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn gateway_responses_change_the_gateways_own_answers_and_keep_cors() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "stratus.toml", CUSTOM_ANSWERS);
    let s = Serving::start(dir.path());
    let client = reqwest::Client::new();
    let origin = "https://app.example";
    // The 403 of a missing key, as customized: status, headers, body.
    let r = client
        .get(s.url("/shop/prod/keyed"))
        .header("origin", origin)
        .header("x-caller", "cli")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["x-why"], "no key");
    assert_eq!(r.headers()["x-asked"], "cli");
    assert_eq!(r.headers()["x-amzn-errortype"], "ForbiddenException");
    assert_eq!(r.headers()["access-control-allow-origin"], origin);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"error": "INVALID_API_KEY", "detail": "Forbidden", "team": "shop-team"}"#
    );
    // The key lets it in.
    let r = client
        .get(s.url("/shop/prod/keyed"))
        .header("x-api-key", "demo-key-0123456789abcdef")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The 429 of a throttle falls to DEFAULT_4XX: its status stays.
    let first = client.get(s.url("/shop/prod/busy")).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let r = client
        .get(s.url("/shop/prod/busy"))
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["x-default"], "4xx");
    assert_eq!(r.headers()["x-amzn-errortype"], "TooManyRequestsException");
    assert_eq!(r.headers()["access-control-allow-origin"], origin);
    assert_eq!(r.text().await.unwrap(), r#"{"oops": "Too Many Requests"}"#);
    // No route: DEFAULT_4XX too, with AWS's error type.
    let r = client
        .get(s.url("/shop/prod/nowhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.headers()["x-amzn-errortype"],
        "MissingAuthenticationTokenException"
    );
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"oops": "Missing Authentication Token"}"#
    );
}

const IAM_PROJECT: &str = r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[server.credentials]
access_key_id = "AKIDSTRATUS"
secret_access_key = "stratus-local-secret"

[functions.who]
runtime = "python3.12"
handler = "app.handler"
code = "who"

[apis.shop]
type = "rest"
base_path = "/shop"
stages = { prod = {} }
[apis.shop.routes]
"POST /private" = { function = "who", authorizer = "AWS_IAM" }
"GET /public" = { mock = { status = 200, body = "open" } }

[apis.web]
type = "http"
base_path = "/web"
[apis.web.routes]
"POST /private" = { function = "who", authorizer = "AWS_IAM" }
"#;

const WHO_PY: &str = r#"
import json
def handler(event, context):
    rc = event["requestContext"]
    return {"statusCode": 200, "body": json.dumps({
        "identity": rc.get("identity"),
        "iam": (rc.get("authorizer") or {}).get("iam"),
        "body": event.get("body"),
    })}
"#;

/// A botocore-signed (service `execute-api`) or unsigned POST: (status, body).
fn signed_post(url: &str, key: Option<(&str, &str)>) -> (u16, String) {
    crate::support::botocore_post(url, "execute-api", key, r#"{"n":1}"#)
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_iam_routes_take_sigv4_signed_callers_only() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "stratus.toml", IAM_PROJECT);
    write_file(dir.path(), "who/app.py", WHO_PY);
    let s = Serving::start(dir.path());
    let good = Some(("AKIDSTRATUS", "stratus-local-secret"));
    // REST: the caller in requestContext.identity.
    let rest = s.url("/shop/prod/private");
    let (status, body) = tokio::task::spawn_blocking({
        let rest = rest.clone();
        move || signed_post(&rest, good)
    })
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["identity"]["accessKey"], "AKIDSTRATUS");
    assert_eq!(v["identity"]["caller"], "AKIDSTRATUS");
    assert_eq!(
        v["identity"]["userArn"],
        "arn:aws:iam::000000000000:user/AKIDSTRATUS"
    );
    assert_eq!(v["body"], r#"{"n":1}"#);
    // Unsigned, and signed with the wrong secret: 403 as API Gateway says.
    let (status, body) = tokio::task::spawn_blocking({
        let rest = rest.clone();
        move || signed_post(&rest, None)
    })
    .await
    .unwrap();
    assert_eq!(
        (status, body.as_str()),
        (403, r#"{"message":"Missing Authentication Token"}"#)
    );
    let (status, body) = tokio::task::spawn_blocking({
        let rest = rest.clone();
        move || signed_post(&rest, Some(("AKIDSTRATUS", "not-the-secret")))
    })
    .await
    .unwrap();
    assert_eq!(status, 403);
    assert!(
        body.contains("The request signature we calculated does not match"),
        "{body}"
    );
    let r = reqwest::Client::new().post(&rest).send().await.unwrap();
    assert_eq!(
        r.headers()["x-amzn-errortype"],
        "MissingAuthenticationTokenException"
    );
    // Other routes are open.
    assert_eq!(
        reqwest::get(s.url("/shop/prod/public"))
            .await
            .unwrap()
            .status(),
        200
    );
    // HTTP API: the caller in requestContext.authorizer.iam.
    let http = s.url("/web/private");
    let (status, body) = tokio::task::spawn_blocking(move || signed_post(&http, good))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["iam"]["accessKey"], "AKIDSTRATUS");
    assert_eq!(v["iam"]["accountId"], "000000000000");
    let r = reqwest::Client::new()
        .post(s.url("/web/private"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

const POLICED: &str = r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[apis.shop]
type = "rest"
base_path = "/shop"
stages = { prod = {} }
policy = '''
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*"},
  {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*/*/admin/*",
   "Condition": {"NotIpAddress": {"aws:SourceIp": "127.0.0.1/32"}}}
]}'''
[apis.shop.routes]
"GET /admin/{x}" = { mock = { status = 200, body = "admin" } }
"GET /open" = { mock = { status = 200, body = "open" } }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_resource_policy_lets_its_range_in_and_refuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "stratus.toml", POLICED);
    let s = Serving::start(dir.path());
    let (home, away) = (client_from([127, 0, 0, 1]), client_from([127, 0, 0, 2]));
    let r = home.get(s.url("/shop/prod/admin/1")).send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), r.text().await.unwrap()),
        (200, "admin".into())
    );
    let r = away.get(s.url("/shop/prod/admin/1")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["x-amzn-errortype"], "AccessDeniedException");
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(
        v["Message"],
        "User: anonymous is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:000000000000:shop/prod/GET/admin/1 with an explicit deny"
    );
    // Outside the denied resources, the Allow holds for every source.
    let r = away.get(s.url("/shop/prod/open")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn policies_that_cannot_hold_here_are_named() {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "stratus.toml",
        r#"[apis.shop]
type = "rest"
policy = '{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "*", "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1"}}}]}'
[apis.shop.routes]
"GET /a" = { mock = {} }
"#,
    );
    let (ok, _, err) = run_cli(&["validate", dir.path().to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("apis.shop.policy: statement 0: the condition StringEquals on aws:SourceVpce is not evaluated locally"), "{err}");
}

/// A SAM API's `Auth.ResourcePolicy` (an IP block list) and an
/// `AWS_IAM` route, and a plain RestApi's `Policy` document.
const GUARDED_TEMPLATE: &str = r#"AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Who:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: who/
      Handler: app.handler
      Runtime: python3.12
      Events:
        Private:
          Type: Api
          Properties: { RestApiId: !Ref Shop, Path: /private, Method: post, Auth: { Authorizer: AWS_IAM } }
        Public:
          Type: Api
          Properties: { RestApiId: !Ref Shop, Path: /public, Method: get }
  Shop:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      Auth:
        ResourcePolicy:
          IpRangeBlacklist: ["127.0.0.2"]
  Legacy:
    Type: AWS::ApiGateway::RestApi
    Properties:
      Name: legacy
      Policy:
        Version: "2012-10-17"
        Statement:
          - { Effect: Allow, Principal: "*", Action: execute-api:Invoke, Resource: execute-api:/*,
              Condition: { IpAddress: { aws:SourceIp: ["127.0.0.2/32"] } } }
  Ping:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Legacy
      ResourceId: !GetAtt Legacy.RootResourceId
      HttpMethod: GET
      AuthorizationType: NONE
      Integration:
        Type: MOCK
        RequestTemplates: { application/json: '{"statusCode": 200}' }
        IntegrationResponses: [{ StatusCode: "200", ResponseTemplates: { application/json: "pong" } }]
  LegacyStage:
    Type: AWS::ApiGateway::Stage
    Properties: { RestApiId: !Ref Legacy, StageName: live, DeploymentId: abc }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_templates_resource_policies_and_iam_routes_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "template.yaml", GUARDED_TEMPLATE);
    write_file(dir.path(), "who/app.py", WHO_PY);
    let s = Serving::start_on_free_ports(dir.path());
    let (home, away) = (client_from([127, 0, 0, 1]), client_from([127, 0, 0, 2]));
    assert_eq!(
        home.get(s.url("/prod/public"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        away.get(s.url("/prod/public"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    // The IAM route: signed callers only.
    assert_eq!(
        home.post(s.url("/prod/private"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let url = s.url("/prod/private");
    let (status, body) =
        tokio::task::spawn_blocking(move || signed_post(&url, Some(("AKIDANY", "any-secret"))))
            .await
            .unwrap();
    assert_eq!(status, 200, "{body}");
    // The plain Policy lets only 127.0.0.2 in (implicit deny for the rest).
    assert_eq!(away.get(s.url("/live")).send().await.unwrap().status(), 200);
    let r = home.get(s.url("/live")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:000000000000:Legacy/live/GET/\""));
}

/// An `https://` JWKS: here served by Stratus's own TLS listener (a site),
/// which the JWT authorizer's client trusts through the local CA.
#[tokio::test(flavor = "multi_thread")]
async fn a_jwt_authorizer_reads_its_keys_over_https() {
    let signer = tokio::task::spawn_blocking(|| crate::access::Signer::new("k1"))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = crate::support::free_port();
    let issuer = format!("https://127.0.0.1:{port}/idp");
    write_file(
        dir.path(),
        "idp/jwks.json",
        &json!({"keys": [signer.jwk]}).to_string(),
    );
    write_file(
        dir.path(),
        "stratus.toml",
        &format!(
            r#"[server]
listen = "127.0.0.1:{port}"
admin_listen = "127.0.0.1:0"

[buckets.idp]
source = "idp"

[sites.idp]
bucket = "idp"
base_path = "/idp"

[apis.web]
type = "http"
base_path = "/web"

[apis.web.authorizers.jwt]
type = "jwt"
issuer = "{issuer}"
audience = ["stratus-test"]
jwks = "{issuer}/jwks.json"

[apis.web.routes]
"GET /me" = {{ mock = {{ status = 200, body = "it is you" }}, authorizer = "jwt" }}
"#
        ),
    );
    let s = Serving::start(dir.path());
    let now = crate::access::now();
    let token = signer.token(
        json!({"iss": issuer, "aud": "stratus-test", "sub": "ann", "iat": now, "exp": now + 300}),
    );
    let client = reqwest::Client::new();
    let r = client
        .get(s.url("/web/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "it is you");
    let r = client
        .get(s.url("/web/me"))
        .bearer_auth("not.a.token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

const OPENAPI_DOC: &str = r#"openapi: "3.0.1"
info: { title: shop, version: "1" }
x-amazon-apigateway-request-validators:
  all: { validateRequestBody: true, validateRequestParameters: true }
paths:
  /status:
    get:
      x-amazon-apigateway-integration:
        type: mock
        requestTemplates: { application/json: '{"statusCode": 200}' }
        responses:
          default:
            statusCode: "200"
            responseTemplates: { application/json: '{"from": "the document", "stage": "$context.stage"}' }
  /orders:
    post:
      x-amazon-apigateway-request-validator: all
      parameters:
        - { name: store, in: query, required: true }
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: POST
        uri: arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:000000000000:function:orders/invocations
  /kept:
    get:
      x-amazon-apigateway-integration:
        type: mock
        requestTemplates: { application/json: '{"statusCode": 200}' }
        responses: { default: { statusCode: "200", responseTemplates: { application/json: 'from the document' } } }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_stratus_toml_api_takes_its_routes_from_an_openapi_document() {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "stratus.toml",
        r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[functions.orders]
runtime = "python3.12"
handler = "app.handler"
code = "orders"

[apis.shop]
type = "rest"
base_path = "/shop"
stages = { prod = {} }
openapi = "shop-api.yaml"

[apis.shop.routes]
# The project's own route wins over the document's.
"GET /kept" = { mock = { status = 200, body = "from the project" } }
"#,
    );
    write_file(dir.path(), "shop-api.yaml", OPENAPI_DOC);
    write_file(dir.path(), "orders/app.py", ORDERS_PY);
    let s = Serving::start(dir.path());
    let client = reqwest::Client::new();
    let text = |r: reqwest::Response| async move { (r.status().as_u16(), r.text().await.unwrap()) };
    assert_eq!(
        text(client.get(s.url("/shop/prod/status")).send().await.unwrap()).await,
        (200, r#"{"from": "the document", "stage": "prod"}"#.into())
    );
    assert_eq!(
        text(
            client
                .post(s.url("/shop/prod/orders"))
                .json(&json!({}))
                .send()
                .await
                .unwrap()
        )
        .await,
        (
            400,
            r#"{"message":"Missing required request parameters: [store]"}"#.into()
        )
    );
    assert_eq!(
        text(
            client
                .post(s.url("/shop/prod/orders?store=1"))
                .json(&json!({}))
                .send()
                .await
                .unwrap()
        )
        .await,
        (200, "taken".into())
    );
    assert_eq!(
        text(client.get(s.url("/shop/prod/kept")).send().await.unwrap()).await,
        (200, "from the project".into())
    );

    // A document's mistake is named in the document, with its line.
    let bad = tempfile::tempdir().unwrap();
    write_file(
        bad.path(),
        "stratus.toml",
        "[apis.shop]\ntype = \"rest\"\nopenapi = \"api.yaml\"\n",
    );
    let doc = write_file(
        bad.path(),
        "api.yaml",
        "openapi: \"3.0.1\"\npaths:\n  /x:\n    get:\n      x-amazon-apigateway-integration:\n        type: aws\n",
    );
    let (ok, _, err) = run_cli(&["validate", bad.path().to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains(&format!("{}:", doc.display()))
            && err.contains("an aws integration's uri names a function"),
        "{err}"
    );
    // A missing document is named in the project file.
    std::fs::remove_file(&doc).unwrap();
    let (ok, _, err) = run_cli(&["validate", bad.path().to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("apis.shop.openapi: OpenAPI document \"api.yaml\" does not exist"),
        "{err}"
    );
}

/// VTL through the real server and a real function: each template is a
/// route's response template, reading `$input` (the function's answer:
/// the request's body, echoed), the request's parameters, `$context` and
/// `$stageVariables`. Outputs exact, as the developer guide's examples
/// describe them.
const VTL_TABLE: &[(&str, &str)] = &[
    ("$input.json('$.name')", r#""Ann""#),
    ("$input.path('$.pets').size()", "2"),
    ("$input.path('$.pets')[1].name", "Rex"),
    ("$input.json('$.pets[*].name')", r#"["Tom","Rex"]"#),
    ("$input.params('id')", "42"),
    ("$input.params('sort')", "asc"),
    ("$input.params('x-trace')", "t-1"),
    ("$input.params().querystring.sort", "asc"),
    ("$context.stage $context.httpMethod", "prod POST"),
    ("$stageVariables.table", "pets-prod"),
    (
        "$util.escapeJavaScript($input.path('$.note'))",
        r#"say \"hi\""#,
    ),
    ("$util.urlEncode('a b&c')", "a+b%26c"),
    ("$util.base64Encode('hello')", "aGVsbG8="),
    ("$util.base64Decode('aGVsbG8=')", "hello"),
    ("$util.parseJson('[1, 2, 3]').size()", "3"),
    ("$util.urlDecode('a+b%26c')", "a b&c"),
    (
        "#set($n = $input.path('$.age'))#if($n > 40)old#elseif($n > 20)adult#{else}young#end",
        "old",
    ),
    (
        "#foreach($p in $input.path('$.pets'))$p.kind#if($foreach.hasNext),#end#end",
        "cat,dog",
    ),
    ("$!nothing|$nothing", "|$nothing"),
    (
        "#set($s = $input.path('$.name'))$s.toUpperCase() $s.length() $s.substring(0, 2)",
        "ANN 3 An",
    ),
    ("#set($m = {})#set($x = $m.put('k', 'v'))$m.keySet()", "[k]"),
    (
        "#set($context.responseOverride.status = 299)overridden",
        "overridden",
    ),
];

#[tokio::test(flavor = "multi_thread")]
async fn vtl_constructs_render_their_exact_output_through_the_server() {
    let mut toml = String::from(
        r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[functions.echo]
runtime = "python3.12"
handler = "app.handler"
code = "echo"

[apis.vtl]
type = "rest"
base_path = "/vtl"
stages = { prod = { variables = { table = "pets-prod" } } }
"#,
    );
    for (i, (template, _)) in VTL_TABLE.iter().enumerate() {
        let quoted = toml::Value::String((*template).to_owned()).to_string();
        toml.push_str(&format!(
            "\n[apis.vtl.routes.\"POST /t{i}/{{id}}\"]\nfunction = \"echo\"\nproxy = false\nresponses = [{{ status = 200, templates = {{ \"application/json\" = {quoted} }} }}]\n"
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "stratus.toml", &toml);
    write_file(
        dir.path(),
        "echo/app.py",
        "def handler(event, context):\n    return event\n",
    );
    let s = Serving::start(dir.path());
    let client = reqwest::Client::new();
    let body = json!({"name": "Ann", "age": 41, "note": "say \"hi\"",
                      "pets": [{"kind": "cat", "name": "Tom"}, {"kind": "dog", "name": "Rex"}]});
    for (i, (template, want)) in VTL_TABLE.iter().enumerate() {
        let r = client
            .post(s.url(&format!("/vtl/prod/t{i}/42?sort=asc")))
            .header("x-trace", "t-1")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let got = r.text().await.unwrap();
        assert_eq!(got, *want, "{template}");
        let expected_status = if template.contains("responseOverride") {
            299
        } else {
            200
        };
        assert_eq!(status, expected_status, "{template}");
    }
}

/// `contentHandling`: a binary request body (a binary media type) becomes
/// base64 text for the template (`CONVERT_TO_TEXT`), and the answer's
/// base64 becomes bytes again (`CONVERT_TO_BINARY`).
#[tokio::test(flavor = "multi_thread")]
async fn content_handling_converts_binary_bodies_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "stratus.toml",
        r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[functions.echo]
runtime = "python3.12"
handler = "app.handler"
code = "echo"

[apis.files]
type = "rest"
base_path = "/files"
binary_media_types = ["image/png"]
stages = { prod = {} }

[apis.files.routes."POST /roundtrip"]
function = "echo"
proxy = false
content_handling = "CONVERT_TO_TEXT"
request_templates = { "image/png" = '{"data": "$input.body", "size": "$input.body.length()"}' }
responses = [{ status = 200, content_handling = "CONVERT_TO_BINARY", headers = { "content-type" = "'image/png'" }, templates = { "application/json" = "$input.path('$.data')" } }]
"#,
    );
    write_file(
        dir.path(),
        "echo/app.py",
        "def handler(event, context):\n    return event\n",
    );
    let s = Serving::start(dir.path());
    let bytes: Vec<u8> = vec![0x89, b'P', b'N', b'G', 0, 1, 2, 0xff, 0xfe, 10, 13];
    let r = reqwest::Client::new()
        .post(s.url("/files/prod/roundtrip"))
        .header("content-type", "image/png")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().to_vec(), bytes);
}

/// SAM's own spelling of validation: the Api's `Models`, an event's
/// `RequestModel` and `RequestParameters`.
const SAM_VALIDATION: &str = r#"AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Orders:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: orders/
      Handler: app.handler
      Runtime: python3.12
      Events:
        Create:
          Type: Api
          Properties:
            RestApiId: !Ref Shop
            Path: /orders
            Method: post
            RequestModel: { Model: Order, Required: true }
            RequestParameters:
              - method.request.header.x-client: { Required: true }
              - method.request.querystring.optional
  Shop:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      Models:
        Order:
          type: object
          required: [id]
          properties: { id: { type: string } }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn sam_request_models_and_parameters_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "template.yaml", SAM_VALIDATION);
    write_file(dir.path(), "orders/app.py", ORDERS_PY);
    let s = Serving::start_on_free_ports(dir.path());
    let client = reqwest::Client::new();
    let post = |body: Value, client_header: bool| {
        let mut r = client.post(s.url("/prod/orders")).json(&body);
        if client_header {
            r = r.header("x-client", "cli");
        }
        r.send()
    };
    let r = post(json!({"id": "a"}), false).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"message":"Missing required request parameters: [x-client]"}"#
    );
    let r = post(json!({"id": 1}), true).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"message":"Invalid request body"}"#
    );
    let r = post(json!({"id": "a"}), true).await.unwrap();
    assert_eq!(r.status(), 200);
}

/// A client whose connections come from `ip` (a loopback address other
/// than 127.0.0.1 stands for a client elsewhere).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(ip))
        .build()
        .unwrap()
}

#[test]
fn mapping_keys_on_a_proxy_route_are_named() {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "stratus.toml",
        r#"[functions.f]
runtime = "python3.12"
handler = "app.handler"
code = "f"

[apis.shop]
type = "rest"
[apis.shop.routes]
"GET /a" = { function = "f", content_handling = "CONVERT_TO_TEXT" }
"#,
    );
    write_file(dir.path(), "f/app.py", "def handler(e, c):\n    return e\n");
    let (ok, _, err) = run_cli(&["validate", dir.path().to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains(r#"apis.shop.routes."GET /a".content_handling: mapping templates and responses apply to mock routes"#),
        "{err}"
    );
}
