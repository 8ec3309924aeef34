//! SAM templates served as they are (issue 24, first part): a `sam
//! init`-style project with a Python function behind the implicit REST API
//! (`/Prod/hello/`) and a Node function behind the implicit HTTP API,
//! Globals, parameters and their overrides, conditions, and a resource
//! Stratus does not run; template mistakes named by file, line and place.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use stratus_testkit::write_file;

use crate::support::{run_cli, Serving};

const TEMPLATE: &str = r#"AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Description: a sam init-style hello world
Parameters:
  Greeting:
    Type: String
    Default: hello
    AllowedValues: [hello, hi]
Conditions:
  WithNode: !Equals [!Ref Greeting, hello]
Globals:
  Function:
    Timeout: 3
    MemorySize: 128
    Environment:
      Variables:
        GREETING: !Ref Greeting
Resources:
  HelloWorldFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: hello_world/
      Handler: app.lambda_handler
      Runtime: python3.12
      Environment:
        Variables:
          SELF: !Sub "${AWS::StackName}:${AWS::Region}"
          NODE: !If [WithNode, !GetAtt NodeFunction.Arn, !Ref AWS::NoValue]
      Events:
        HelloWorld:
          Type: Api
          Properties:
            Path: /hello
            Method: get
  NodeFunction:
    Type: AWS::Serverless::Function
    Condition: WithNode
    Properties:
      CodeUri: hello_node/
      Handler: app.handler
      Runtime: nodejs20.x
      Events:
        Hi:
          Type: HttpApi
          Properties:
            Path: /hi/{name}
            Method: GET
  Items:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: items
Outputs:
  HelloWorldApi:
    Description: the Prod stage's hello URL
    Value: !Sub "https://${ServerlessRestApi}.execute-api.${AWS::Region}.amazonaws.com/Prod/hello/"
  HiApi:
    Condition: WithNode
    Value: !Sub "https://${ServerlessHttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/hi/you"
  HelloWorldFunction:
    Value: !GetAtt HelloWorldFunction.Arn
  HelloWorldFunctionIamRole:
    Value: !GetAtt HelloWorldFunctionRole.Arn
"#;

const HELLO_PY: &str = r#"
import json, os
def lambda_handler(event, context):
    return {"statusCode": 200, "headers": {"x-count": 3, "x-ok": True, "x-none": None}, "body": json.dumps({
        "message": os.environ["GREETING"] + " world",
        "self": os.environ.get("SELF", ""), "node": os.environ.get("NODE"),
        "path": event["path"], "stage": event["requestContext"]["stage"],
    })}
"#;

const HI_JS: &str = r#"
exports.handler = async (event) => ({
  statusCode: 200,
  headers: { "x-timestamp": +new Date(0), "x-fast": false },
  body: JSON.stringify({ hi: event.pathParameters.name, greeting: process.env.GREETING, version: event.version }),
});
"#;

fn sam_project(dir: &Path, template: &str) {
    write_file(dir, "template.yaml", template);
    write_file(dir, "hello_world/app.py", HELLO_PY);
    write_file(dir, "hello_node/app.js", HI_JS);
}

const PORTS: [&str; 4] = ["--port", "0", "--admin-listen", "127.0.0.1:0"];

/// `stratus validate PATH` fails, saying `expected`.
fn validate_refuses(path: &Path, expected: &str) {
    let (ok, _, err) = run_cli(&["validate", path.to_str().unwrap()]);
    assert!(!ok, "{} was accepted", path.display());
    assert!(err.contains(expected), "expected {expected:?} in:\n{err}");
}

/// `python3 ARGS` in `dir` with an AWS SDK's environment pointed at the
/// admin listener (as `AWS_ENDPOINT_URL` points one at Stratus).
fn aws_python(dir: &Path, admin: std::net::SocketAddr, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new("python3");
    cmd.args(args)
        .current_dir(dir)
        .env("AWS_ENDPOINT_URL", format!("http://{admin}"))
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTEST_ADDOPTS", "-p no:cacheprovider");
    cmd
}

/// The API key `name` as the admin API lists it (its value included).
async fn listed_key(admin: std::net::SocketAddr, name: &str) -> Value {
    let keys: Value = reqwest::get(format!("http://{admin}/stratus/api-keys"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {keys}"))
        .clone()
}

/// A signing key and an issuer serving its JWKS (`http://127.0.0.1:PORT`).
async fn identity_provider() -> (crate::access::Signer, String) {
    let signer = tokio::task::spawn_blocking(|| crate::access::Signer::new("k1"))
        .await
        .unwrap();
    let jwks = serde_json::json!({ "keys": [signer.jwk] }).to_string();
    let (idp, _) = crate::access::jwks_server_with(
        std::sync::Arc::new(std::sync::Mutex::new(jwks)),
        Duration::ZERO,
    )
    .await;
    (signer, format!("http://{idp}"))
}

/// A pytest run passed one test.
fn passed_one(out: &std::process::Output) {
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("1 passed"), "{said}");
}

#[tokio::test]
async fn a_sam_hello_world_template_is_served_as_it_is() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("hello-app");
    sam_project(&dir, TEMPLATE);
    let s = Serving::start_with(&dir, &PORTS, &[]);
    let get = |path: &str| {
        let url = s.url(path);
        async move {
            let r = reqwest::get(url).await.unwrap();
            let h = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
            let headers = [
                h("x-count"),
                h("x-ok"),
                h("x-none"),
                h("x-timestamp"),
                h("x-fast"),
            ];
            (r.status().as_u16(), r.text().await.unwrap(), headers)
        }
    };
    // The implicit REST API's Prod stage, with or without the slash.
    for path in ["/Prod/hello", "/Prod/hello/"] {
        let (status, body, headers) = get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        // Header values given as a number and a boolean, as text.
        assert_eq!(
            headers[..3],
            [Some("3".to_owned()), Some("true".to_owned()), None]
        );
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v["message"], "hello world",
            "Globals' environment, Ref of a parameter"
        );
        assert_eq!(v["stage"], "Prod");
        assert_eq!(v["self"], "hello-app:us-east-1", "Sub of pseudo parameters");
        assert_eq!(
            v["node"], "arn:aws:lambda:us-east-1:000000000000:function:NodeFunction",
            "Fn::If of a condition, GetAtt of a function"
        );
    }
    // The implicit HTTP API, at the root: payload 2.0.
    let (status, body, headers) = get("/hi/bob").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        headers[3..],
        [Some("0".to_owned()), Some("false".to_owned())]
    );
    // The Outputs, printed with the local URLs that serve them: followed
    // as a user would.
    let s = tokio::task::spawn_blocking(move || {
        let lines = s.wait_line("output HelloWorldFunctionIamRole", Duration::from_secs(10));
        (s, lines)
    });
    let (s, lines) = s.await.unwrap();
    let output = |name: &str| {
        let prefix = format!("output {name} = ");
        lines
            .iter()
            .find_map(|l| l.split(&prefix).nth(1))
            .unwrap_or_else(|| panic!("no output {name} in {lines:#?}"))
            .trim()
            .to_owned()
    };
    assert_eq!(output("HelloWorldApi"), s.url("/Prod/hello/"));
    assert_eq!(output("HiApi"), s.url("/hi/you"));
    assert_eq!(
        output("HelloWorldFunction"),
        "arn:aws:lambda:us-east-1:000000000000:function:HelloWorldFunction"
    );
    assert_eq!(
        output("HelloWorldFunctionIamRole"),
        "arn:aws:iam::000000000000:role/HelloWorldFunctionRole"
    );
    for name in ["HelloWorldApi", "HiApi"] {
        let r = reqwest::get(output(name)).await.unwrap();
        assert_eq!(r.status(), 200, "{name}");
    }
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["hi"].as_str(), v["version"].as_str()),
        (Some("bob"), Some("2.0"))
    );
}

#[test]
fn what_a_template_holds_that_stratus_does_not_run_is_named() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("app");
    sam_project(&dir, TEMPLATE);
    let (ok, out, err) = run_cli(&["routes", dir.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        out.contains("ServerlessRestApi") && out.contains("/Prod/hello"),
        "{out}"
    );
    assert!(
        out.contains("ServerlessHttpApi") && out.contains("/hi/{name}"),
        "{out}"
    );
    assert!(
        err.contains("not run by Stratus (the rest is served): Items (AWS::DynamoDB::Table)"),
        "{err}"
    );
}

#[tokio::test]
async fn parameter_overrides_and_conditions_change_what_is_served() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("app");
    sam_project(&dir, TEMPLATE);
    let mut args = PORTS.to_vec();
    args.extend(["--parameter-overrides", "Greeting=hi"]);
    let s = Serving::start_with(&dir, &args, &[]);
    let r = reqwest::get(s.url("/Prod/hello")).await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["message"], "hi world");
    assert_eq!(
        v["node"],
        Value::Null,
        "AWS::NoValue: the variable is not set"
    );
    // WithNode is false: the Node function and its HTTP API are gone.
    let r = reqwest::get(s.url("/hi/bob")).await.unwrap();
    assert_eq!(r.status(), 404);
    // A value outside AllowedValues stops the start, naming the place.
    let (ok, _, err) = run_cli(&[
        "serve",
        dir.to_str().unwrap(),
        "--port",
        "0",
        "--parameter-overrides",
        "Greeting=hey",
    ]);
    assert!(!ok);
    assert!(
        err.contains("template.yaml:6:5: error: Parameters.Greeting: \"hey\" is not one of the AllowedValues (hello, hi)"),
        "{err}"
    );
}

#[test]
fn template_mistakes_name_the_file_line_and_place() {
    let root = tempfile::tempdir().unwrap();
    // A mistake the project's own checks find is placed at its resource.
    let dir = root.path().join("code");
    sam_project(
        &dir,
        &TEMPLATE.replace("CodeUri: hello_node/", "CodeUri: missing/"),
    );
    let line = TEMPLATE
        .lines()
        .position(|l| l == "  NodeFunction:")
        .unwrap()
        + 2;
    validate_refuses(&dir, &format!(
        "template.yaml:{line}:5: error: Resources.NodeFunction: functions.NodeFunction.code: code directory \"missing/\" does not exist"
    ));
    for (template, expected) in [
        (
            TEMPLATE.replace("!Ref Greeting\nResources", "!Ref Ghost\nResources"),
            "template.yaml:17:19: error: Globals.Function.Environment.Variables.GREETING.Ref: Ref \"Ghost\": no parameter, pseudo parameter or resource has that logical id",
        ),
        (
            TEMPLATE.replace("${AWS::StackName}:", "${AWS::StackName:"),
            "error: Resources.HelloWorldFunction.Properties.Environment.Variables.SELF.Fn::Sub",
        ),
        (
            TEMPLATE.replace(
                "Conditions:\n  WithNode: !Equals [!Ref Greeting, hello]",
                "Conditions:\n  WithNode: !And [!Condition Other, !Equals [!Ref Greeting, hello]]\n  Other: !Not [!Condition WithNode]",
            ),
            "a circular reference between conditions: WithNode → Other → WithNode",
        ),
        (
            TEMPLATE.replace("Transform: AWS::Serverless-2016-10-31", "Transform: [AWS::Serverless-2016-10-31, MyMacro]"),
            "the transform \"MyMacro\" is a macro",
        ),
    ] {
        let dir = root.path().join(format!("t{}", template.len()));
        sam_project(&dir, &template);
        validate_refuses(&dir.join("template.yaml"), expected);
    }
}

#[test]
fn init_from_a_template_writes_the_project_file_it_amounts_to() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("app");
    sam_project(&dir, TEMPLATE);
    let template = dir.join("template.yaml");
    let (ok, out, err) = run_cli(&[
        "init",
        "--from",
        template.to_str().unwrap(),
        "--parameter-overrides",
        "Greeting=hi",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("wrote"), "{out}");
    let text = std::fs::read_to_string(dir.join("stratus.toml")).unwrap();
    assert!(text.contains("GREETING = \"hi\""), "{text}");
    assert!(
        !text.contains("NodeFunction"),
        "its condition is false: {text}"
    );
    // The folder now serves from its stratus.toml, the same routes.
    let (ok, routes, err) = run_cli(&["routes", dir.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        routes.contains("/Prod/hello") && !routes.contains("/hi/"),
        "{routes}"
    );
    let (ok, _, err) = run_cli(&["init", "--from", template.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("never overwritten"), "{err}");
}

const CORS_TEMPLATE: &str = r#"Transform: AWS::Serverless-2016-10-31
Globals:
  Api:
    Cors:
      AllowOrigin: "'*'"
      AllowMethods: "'GET,POST'"
      AllowHeaders: "'Content-Type,X-Amz-Date'"
      MaxAge: "'600'"
Resources:
  ItemsApi:
    Type: AWS::Serverless::HttpApi
    Properties:
      CorsConfiguration:
        AllowOrigins: ["http://localhost:3000"]
        AllowMethods: [GET, POST]
        AllowHeaders: [content-type]
        MaxAge: 300
  Items:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: hello_node/
      Handler: app.handler
      Runtime: nodejs20.x
      Events:
        List:
          Type: HttpApi
          Properties: { ApiId: !Ref ItemsApi, Path: "/items/{name}", Method: get }
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: hello_world/
      Handler: app.lambda_handler
      Runtime: python3.12
      Environment: { Variables: { GREETING: hey } }
      Events:
        Hello:
          Type: Api
          Properties: { Path: /hello, Method: get }
"#;

#[tokio::test]
async fn sam_apis_answer_cors_as_configured() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cors");
    sam_project(&dir, CORS_TEMPLATE);
    let s = Serving::start_with(&dir, &PORTS, &[]);
    let client = reqwest::Client::new();
    let preflight = |path: &str, origin: &str| {
        client
            .request(reqwest::Method::OPTIONS, s.url(path))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
    };
    let header =
        |r: &reqwest::Response, n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
    // The HTTP API's CorsConfiguration.
    let r = preflight("/items/a", "http://localhost:3000")
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some("http://localhost:3000")
    );
    assert_eq!(header(&r, "access-control-max-age").as_deref(), Some("300"));
    let r = preflight("/items/a", "http://evil.example").await.unwrap();
    assert_eq!(header(&r, "access-control-allow-origin"), None);
    // The implicit REST API, with Globals.Api's Cors (quoted header values).
    let r = preflight("/Prod/hello", "http://anywhere.example")
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert_eq!(header(&r, "access-control-max-age").as_deref(), Some("600"));
    let r = client
        .get(s.url("/Prod/hello"))
        .header("origin", "http://anywhere.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some("*")
    );
}

const AUTH_TEMPLATE: &str = r#"Transform: AWS::Serverless-2016-10-31
Parameters:
  Issuer:
    Type: String
Resources:
  ShopApi:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      Auth:
        DefaultAuthorizer: TokenAuth
        ApiKeyRequired: true
        Authorizers:
          TokenAuth:
            FunctionArn: !GetAtt AuthFunction.Arn
            Identity: { Header: Authorization, ReauthorizeEvery: 0 }
        UsagePlan:
          CreateUsagePlan: PER_API
          Quota: { Limit: 2, Period: DAY }
          Throttle: { RateLimit: 100, BurstLimit: 100 }
  AuthFunction:
    Type: AWS::Serverless::Function
    Properties: { CodeUri: auth/, Handler: app.handler, Runtime: python3.12 }
  Orders:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: hello_world/
      Handler: app.lambda_handler
      Runtime: python3.12
      Environment: { Variables: { GREETING: orders } }
      Events:
        List:
          Type: Api
          Properties: { RestApiId: !Ref ShopApi, Path: /orders, Method: get }
        Open:
          Type: Api
          Properties:
            RestApiId: !Ref ShopApi
            Path: /open
            Method: get
            Auth: { Authorizer: NONE, ApiKeyRequired: false }
        Secret:
          Type: Api
          Properties:
            RestApiId: !Ref ShopApi
            Path: /secret
            Method: get
            Auth: { ApiKeyRequired: false }
  MeApi:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Login
        Authorizers:
          Login:
            IdentitySource: $request.header.Authorization
            JwtConfiguration: { issuer: !Ref Issuer, audience: [my-app] }
  Me:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: me/
      Handler: app.handler
      Runtime: nodejs20.x
      Events:
        Me:
          Type: HttpApi
          Properties: { ApiId: !Ref MeApi, Path: /me, Method: get }
"#;

const AUTH_PY: &str = r#"
def handler(event, context):
    if event["authorizationToken"] != "allow":
        raise Exception("Unauthorized")
    return {"principalId": "u1", "policyDocument": {"Version": "2012-10-17",
        "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"}]}}
"#;

const ME_JS: &str = r#"
exports.handler = async (event) => ({
  statusCode: 200,
  body: JSON.stringify({ sub: event.requestContext.authorizer.jwt.claims.sub }),
});
"#;

#[tokio::test(flavor = "multi_thread")]
async fn sam_auth_authorizers_api_keys_and_usage_plans_are_enforced() {
    let (signer, issuer) = identity_provider().await;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("shop");
    sam_project(&dir, AUTH_TEMPLATE);
    write_file(&dir, "auth/app.py", AUTH_PY);
    write_file(&dir, "me/app.js", ME_JS);
    let mut args = PORTS.to_vec();
    let overrides = format!("Issuer={issuer}");
    args.extend(["--parameter-overrides", overrides.as_str()]);
    let s = Serving::start_with(&dir, &args, &[]);
    let client = reqwest::Client::new();
    let call = |path: &str, headers: Vec<(&'static str, String)>| {
        let mut req = client.get(s.url(path));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    // The usage plan's generated key, as the admin API lists it.
    let key = listed_key(s.admin, "ShopApiApiKey").await["value"]
        .as_str()
        .unwrap()
        .to_owned();
    // An event with Auth NONE and no key.
    assert_eq!(call("/prod/open", vec![]).await.0, 200);
    // The default authorizer, on a route that needs no key.
    assert_eq!(call("/prod/secret", vec![]).await.0, 401);
    let (status, body) = call("/prod/secret", vec![("authorization", "deny".into())]).await;
    assert_eq!(
        (status, body.as_str()),
        (401, r#"{"message":"Unauthorized"}"#)
    );
    assert_eq!(
        call("/prod/secret", vec![("authorization", "allow".into())])
            .await
            .0,
        200
    );
    // The API key and its plan's quota.
    let (status, body) = call("/prod/orders", vec![("authorization", "allow".into())]).await;
    assert_eq!(
        (status, body.as_str()),
        (403, r#"{"message":"Forbidden"}"#),
        "no key"
    );
    let both = || {
        vec![
            ("x-api-key", key.clone()),
            ("authorization", "allow".to_owned()),
        ]
    };
    assert_eq!(call("/prod/orders", both()).await.0, 200);
    assert_eq!(call("/prod/orders", both()).await.0, 200);
    let (status, body) = call("/prod/orders", both()).await;
    assert_eq!(
        (status, body.as_str()),
        (429, r#"{"message":"Limit Exceeded"}"#),
        "the quota of 2"
    );
    // The HTTP API's JWT authorizer, with the issuer's keys.
    assert_eq!(call("/me", vec![]).await.0, 401);
    let token = signer.token(serde_json::json!({
        "iss": issuer, "aud": "my-app", "sub": "user-7", "exp": crate::access::now() + 600,
    }));
    let (status, body) = call("/me", vec![("authorization", format!("Bearer {token}"))]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["sub"],
        "user-7"
    );
}

const RAW_REST: &str = r#"AWSTemplateFormatVersion: '2010-09-09'
Resources:
  ShopApi:
    Type: AWS::ApiGateway::RestApi
    Properties: { Name: shop }
  Orders:
    Type: AWS::ApiGateway::Resource
    Properties:
      RestApiId: !Ref ShopApi
      ParentId: !GetAtt ShopApi.RootResourceId
      PathPart: orders
  Order:
    Type: AWS::ApiGateway::Resource
    Properties:
      RestApiId: !Ref ShopApi
      ParentId: !Ref Orders
      PathPart: "{id}"
  GetOrder:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref ShopApi
      ResourceId: !Ref Order
      HttpMethod: GET
      AuthorizationType: CUSTOM
      AuthorizerId: !Ref TokenAuth
      Integration:
        Type: AWS_PROXY
        IntegrationHttpMethod: POST
        Uri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${OrderFunction.Arn}/invocations"
  Ping:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref ShopApi
      ResourceId: !GetAtt ShopApi.RootResourceId
      HttpMethod: GET
      AuthorizationType: NONE
      Integration:
        Type: MOCK
        IntegrationResponses:
          - StatusCode: 200
            ResponseTemplates: { application/json: '{"pong": true}' }
  TokenAuth:
    Type: AWS::ApiGateway::Authorizer
    Properties:
      RestApiId: !Ref ShopApi
      Name: token
      Type: TOKEN
      IdentitySource: method.request.header.Authorization
      AuthorizerResultTtlInSeconds: 0
      AuthorizerUri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${AuthFunction.Arn}/invocations"
  Reports:
    Type: AWS::ApiGateway::Resource
    Properties: { RestApiId: !Ref ShopApi, ParentId: !GetAtt ShopApi.RootResourceId, PathPart: reports }
  GetReports:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref ShopApi
      ResourceId: !Ref Reports
      HttpMethod: GET
      AuthorizationType: NONE
      ApiKeyRequired: true
      Integration:
        Type: MOCK
        IntegrationResponses: [{ StatusCode: 200, ResponseTemplates: { application/json: '"a report"' } }]
  Stock:
    Type: AWS::ApiGateway::Resource
    Properties: { RestApiId: !Ref ShopApi, ParentId: !GetAtt ShopApi.RootResourceId, PathPart: stock }
  GetStock:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref ShopApi
      ResourceId: !Ref Stock
      HttpMethod: GET
      AuthorizationType: NONE
      ApiKeyRequired: true
      Integration:
        Type: MOCK
        IntegrationResponses: [{ StatusCode: 200, ResponseTemplates: { application/json: '"in stock"' } }]
  PartnerKey:
    Type: AWS::ApiGateway::ApiKey
    DependsOn: Live
    Properties: { Name: partner, Enabled: true }
  PartnerPlan:
    Type: AWS::ApiGateway::UsagePlan
    DependsOn: Live
    Properties:
      UsagePlanName: partners
      ApiStages:
        - ApiId: !Ref ShopApi
          Stage: !Ref Live
          Throttle:
            "/reports/GET": { RateLimit: 0.2, BurstLimit: 1 }
      Throttle: { RateLimit: 100, BurstLimit: 100 }
      Quota: { Limit: 5, Period: DAY }
  PartnerPlanKey:
    Type: AWS::ApiGateway::UsagePlanKey
    Properties: { KeyId: !Ref PartnerKey, KeyType: API_KEY, UsagePlanId: !Ref PartnerPlan }
  Deployment:
    Type: AWS::ApiGateway::Deployment
    DependsOn: [GetOrder, Ping, GetReports, GetStock]
    Properties: { RestApiId: !Ref ShopApi }
  Live:
    Type: AWS::ApiGateway::Stage
    Properties:
      RestApiId: !Ref ShopApi
      DeploymentId: !Ref Deployment
      StageName: live
      Variables: { color: blue }
      MethodSettings:
        - { ResourcePath: "/~1orders~1{id}", HttpMethod: GET, ThrottlingRateLimit: 50, ThrottlingBurstLimit: 60 }
  OrderFunction:
    Type: AWS::Lambda::Function
    Properties:
      FunctionName: order-fn
      Handler: app.handler
      Runtime: python3.12
      Code: order/
  AuthFunction:
    Type: AWS::Lambda::Function
    Properties: { Handler: app.handler, Runtime: python3.12, Code: auth/ }
  Permission:
    Type: AWS::Lambda::Permission
    Properties:
      Action: lambda:InvokeFunction
      FunctionName: !Ref OrderFunction
      Principal: apigateway.amazonaws.com
Outputs:
  Url:
    Value: !Sub "https://${ShopApi}.execute-api.${AWS::Region}.amazonaws.com/live/orders/7"
"#;

const ORDER_PY: &str = r#"
import json
def handler(event, context):
    return {"statusCode": 200, "body": json.dumps({
        "id": event["pathParameters"]["id"], "resource": event["resource"],
        "color": event["stageVariables"]["color"], "fn": context.function_name,
        "principal": event["requestContext"]["authorizer"]["principalId"],
    })}
"#;

#[tokio::test]
async fn plain_cloudformation_rest_resources_are_served() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("raw");
    write_file(&dir, "template.yaml", RAW_REST);
    write_file(&dir, "order/app.py", ORDER_PY);
    write_file(&dir, "auth/app.py", AUTH_PY);
    let s = Serving::start_with(&dir, &PORTS, &[]);
    let client = reqwest::Client::new();
    let get = |path: &str, token: Option<&str>| {
        let mut req = client.get(s.url(path));
        if let Some(t) = token {
            req = req.header("authorization", t);
        }
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    // The Stage's MethodSettings: the method's own throttle.
    let (ok, routes, err) = run_cli(&["routes", dir.to_str().unwrap()]);
    assert!(ok, "{err}");
    let orders = routes.lines().find(|l| l.contains("/live/orders/{id}"));
    assert!(
        orders.is_some_and(|l| l.contains("50/s, burst 60")),
        "{routes}"
    );
    // The MOCK method on the root resource.
    assert_eq!(
        get("/live", None).await,
        (200, r#"{"pong": true}"#.to_owned())
    );
    // The Resource tree, its TOKEN authorizer, the stage's variables.
    assert_eq!(get("/live/orders/7", None).await.0, 401);
    assert_eq!(get("/live/orders/7", Some("deny")).await.0, 401);
    let (status, body) = get("/live/orders/7", Some("allow")).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["id"], "7");
    assert_eq!(v["resource"], "/orders/{id}");
    assert_eq!(v["color"], "blue");
    assert_eq!(v["fn"], "order-fn", "FunctionName");
    assert_eq!(v["principal"], "u1");
    // The ApiKey (its value generated), in the UsagePlan by its
    // UsagePlanKey; the plan's per-method throttle on /reports (one call,
    // then one every 5 s), its own throttle elsewhere, its quota of 5.
    let listed = listed_key(s.admin, "PartnerKey").await;
    assert_eq!(
        listed["plans"],
        serde_json::json!(["PartnerPlan"]),
        "{listed}"
    );
    let key = listed["value"].as_str().unwrap().to_owned();
    assert!(key.len() >= 20, "{key}");
    let keyed = |path: &'static str| {
        let req = client.get(s.url(path)).header("x-api-key", key.clone());
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(get("/live/reports", None).await.0, 403, "no key");
    assert_eq!(keyed("/live/reports").await, (200, r#""a report""#.into()));
    assert_eq!(
        keyed("/live/reports").await,
        (429, r#"{"message":"Too Many Requests"}"#.into()),
        "the method's throttle"
    );
    for _ in 0..4 {
        assert_eq!(keyed("/live/stock").await, (200, r#""in stock""#.into()));
    }
    assert_eq!(
        keyed("/live/stock").await,
        (429, r#"{"message":"Limit Exceeded"}"#.into()),
        "the quota of 5 (the throttled call not counted)"
    );
}

#[test]
fn plain_cloudformation_mistakes_are_named() {
    let root = tempfile::tempdir().unwrap();
    for (template, expected) in [
        (
            RAW_REST.replace("ParentId: !Ref Orders", "ParentId: !Ref Nowhere"),
            "Ref \"Nowhere\": no parameter, pseudo parameter or resource has that logical id",
        ),
        (
            RAW_REST.replace("      StageName: live\n", ""),
            "template.yaml:4:5: error: Resources.ShopApi.Properties: the RestApi has no Stage",
        ),
        (
            RAW_REST.replace(
                "Code: order/",
                "Code: { S3Bucket: assets, S3Key: order.zip }",
            ),
            "Code is a local folder (Code: ./src) or ZipFile; code in S3 is not local",
        ),
        (
            RAW_REST.replace("/~1orders~1{id}\", HttpMethod: GET", "/~1orders\", HttpMethod: POST"),
            "Resources.Live.Properties.MethodSettings[0]: MethodSettings: the API has no method POST /orders",
        ),
    ] {
        let dir = root.path().join(format!("t{}", template.len()));
        write_file(&dir, "template.yaml", &template);
        validate_refuses(&dir, expected);
    }
}

const V2_TEMPLATE: &str = r#"AWSTemplateFormatVersion: '2010-09-09'
Resources:
  ChatApi:
    Type: AWS::ApiGatewayV2::Api
    Properties:
      Name: chat
      ProtocolType: WEBSOCKET
      RouteSelectionExpression: "$request.body.action"
  ConnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref ChatApi
      RouteKey: $connect
      Target: !Join ["/", [integrations, !Ref ChatInteg]]
  EchoRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref ChatApi
      RouteKey: echo
      Target: !Join ["/", [integrations, !Ref ChatInteg]]
  EchoResponse:
    Type: AWS::ApiGatewayV2::RouteResponse
    Properties:
      ApiId: !Ref ChatApi
      RouteId: !Ref EchoRoute
      RouteResponseKey: $default
  ChatInteg:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref ChatApi
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${ChatFunction.Arn}/invocations"
  Production:
    Type: AWS::ApiGatewayV2::Stage
    Properties: { ApiId: !Ref ChatApi, StageName: production, AutoDeploy: true }
  QuickApi:
    Type: AWS::ApiGatewayV2::Api
    Properties:
      Name: quick
      ProtocolType: HTTP
      Target: !GetAtt ChatFunction.Arn
  ChatFunction:
    Type: AWS::Lambda::Function
    Properties: { Handler: app.handler, Runtime: python3.12, Code: chat/ }
Outputs:
  WebSocketURI:
    Value: !Sub "wss://${ChatApi}.execute-api.${AWS::Region}.amazonaws.com/production"
"#;

const CHAT_PY: &str = r#"
import json
def handler(event, context):
    rc = event["requestContext"]
    return {"statusCode": 200, "body": json.dumps({
        "route": rc.get("routeKey"), "body": event.get("body"), "path": event.get("rawPath"),
    })}
"#;

#[tokio::test]
async fn plain_cloudformation_websocket_and_quick_create_http_apis_are_served() {
    use futures_util::{SinkExt, StreamExt};
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("v2");
    write_file(&dir, "template.yaml", V2_TEMPLATE);
    write_file(&dir, "chat/app.py", CHAT_PY);
    let s = Serving::start_with(&dir, &PORTS, &[]);
    let s = tokio::task::spawn_blocking(move || {
        let lines = s.wait_line("output WebSocketURI", Duration::from_secs(10));
        (s, lines)
    });
    let (s, lines) = s.await.unwrap();
    let uri = lines
        .iter()
        .find_map(|l| l.split("output WebSocketURI = ").nth(1))
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(uri, format!("ws://{}/production", s.gateway));
    // The WebSocket API at its printed URL: $connect, then a two-way route.
    let (mut ws, _) = tokio_tungstenite::connect_async(&uri)
        .await
        .expect("connected");
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        r#"{"action":"echo","n":1}"#,
    ))
    .await
    .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let v: Value = serde_json::from_str(answer.to_text().unwrap()).unwrap();
    assert_eq!(v["route"], "echo");
    assert_eq!(v["body"], r#"{"action":"echo","n":1}"#);
    // The quick-create HTTP API: every request to its target.
    let r = reqwest::get(s.url("/any/path")).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["route"].as_str(), v["path"].as_str()),
        (Some("$default"), Some("/any/path"))
    );
}

/// A sam init-style integration test, of our own: the API's URL from the
/// stack's outputs, as `sam init` projects read it.
const SAM_INIT_TEST: &str = r#"
import json, os, urllib.request
import boto3, pytest

class TestApiGateway:
    @pytest.fixture()
    def api_gateway_url(self):
        stack_name = os.environ["AWS_SAM_STACK_NAME"]
        client = boto3.client("cloudformation")
        response = client.describe_stacks(StackName=stack_name)
        outputs = response["Stacks"][0]["Outputs"]
        api = [o for o in outputs if o["OutputKey"] == "HelloWorldApi"]
        assert api, f"no HelloWorldApi output in {outputs}"
        return api[0]["OutputValue"]

    def test_api_gateway(self, api_gateway_url):
        with urllib.request.urlopen(api_gateway_url) as r:
            assert r.status == 200
            assert json.loads(r.read())["message"] == "hello world"
"#;

const STACK_PY: &str = r#"
import json, sys, boto3, botocore
cf = boto3.client("cloudformation")
out = {}
stack = cf.describe_stacks(StackName=sys.argv[1])["Stacks"][0]
out["status"] = stack["StackStatus"]
out["outputs"] = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
out["described"] = {o["OutputKey"]: o.get("Description") for o in stack["Outputs"]}
res = cf.list_stack_resources(StackName=sys.argv[1])["StackResourceSummaries"]
out["resources"] = {r["LogicalResourceId"]: [r["ResourceType"], r["PhysicalResourceId"]] for r in res}
one = cf.describe_stack_resource(StackName=sys.argv[1], LogicalResourceId="HelloWorldFunction")
out["one"] = one["StackResourceDetail"]["PhysicalResourceId"]
try:
    cf.describe_stacks(StackName="nope")
except botocore.exceptions.ClientError as e:
    out["missing"] = [e.response["Error"]["Code"], e.response["Error"]["Message"]]
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread")]
async fn the_stack_answers_cloudformation_and_a_sam_init_test_passes() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("hello-app");
    sam_project(&dir, TEMPLATE);
    write_file(&dir, "tests/integration/test_api_gateway.py", SAM_INIT_TEST);
    write_file(&dir, "stack.py", STACK_PY);
    let mut args = PORTS.to_vec();
    args.extend(["--stack-name", "sam-app"]);
    let s = Serving::start_with(&dir, &args, &[]);
    let python = |args: &[&str]| {
        let mut cmd = aws_python(&dir, s.admin, args);
        cmd.env("AWS_SAM_STACK_NAME", "sam-app");
        cmd
    };
    let out = python(&["stack.py", "sam-app"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "CREATE_COMPLETE");
    assert_eq!(v["outputs"]["HelloWorldApi"], s.url("/Prod/hello/"));
    assert_eq!(
        v["described"]["HelloWorldApi"],
        "the Prod stage's hello URL"
    );
    assert_eq!(
        v["resources"]["HelloWorldFunction"],
        serde_json::json!(["AWS::Serverless::Function", "HelloWorldFunction"])
    );
    assert_eq!(v["resources"]["Items"][0], "AWS::DynamoDB::Table");
    assert_eq!(v["one"], "HelloWorldFunction");
    assert_eq!(v["missing"][0], "ValidationError");
    // The project's own pytest suite, unchanged.
    passed_one(
        &python(&["-m", "pytest", "-q", "tests/integration"])
            .output()
            .unwrap(),
    );
}

const INLINE_TEMPLATE: &str = r#"Transform: AWS::Serverless-2016-10-31
Resources:
  Inline:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: index.handler
      InlineCode: |
        import os
        def handler(event, context):
            return {"statusCode": 200, "body": "inline in " + os.environ["AWS_REGION"]}
      Events:
        Get:
          Type: Api
          Properties: { Path: /inline, Method: get }
  Zipped:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: nodejs20.x
      Handler: index.handler
      Code:
        ZipFile: |
          exports.handler = async () => ({ statusCode: 200, body: "zipped" });
  ZippedApi:
    Type: AWS::ApiGatewayV2::Api
    Properties: { Name: z, ProtocolType: HTTP, Target: !GetAtt Zipped.Arn, RouteKey: "GET /zipped" }
  Queue:
    Type: AWS::SQS::Queue
"#;

#[tokio::test]
async fn inline_code_a_region_and_strict_mode() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("inline");
    write_file(&dir, "template.yaml", INLINE_TEMPLATE);
    let mut args = PORTS.to_vec();
    args.extend(["--region", "eu-west-1"]);
    let s = Serving::start_with(&dir, &args, &[]);
    let r = reqwest::get(s.url("/Prod/inline")).await.unwrap();
    assert_eq!(r.text().await.unwrap(), "inline in eu-west-1");
    let r = reqwest::get(s.url("/zipped")).await.unwrap();
    assert_eq!(r.text().await.unwrap(), "zipped");
    assert!(dir.join(".stratus/inline/Inline/index.py").is_file());
    assert!(dir.join(".stratus/inline/Zipped/index.js").is_file());
    // --strict refuses what is not run.
    let (ok, _, err) = run_cli(&["serve", dir.to_str().unwrap(), "--port", "0", "--strict"]);
    assert!(!ok);
    assert!(
        err.contains(
            "--strict: the template holds resources Stratus does not run: Queue (AWS::SQS::Queue)"
        ),
        "{err}"
    );
}

const DATA_TEMPLATE: &str = r#"Transform: AWS::Serverless-2016-10-31
Resources:
  WebBucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: web-assets
      WebsiteConfiguration: { IndexDocument: index.html, ErrorDocument: 404.html }
      CorsConfiguration:
        CorsRules:
          - { AllowedOrigins: ["http://localhost:3000"], AllowedMethods: [GET, PUT], MaxAge: 600 }
  Cluster:
    Type: AWS::RDS::DBCluster
    Properties: { Engine: aurora-postgresql, EnableHttpEndpoint: true }
  Info:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: info/
      Handler: app.handler
      Runtime: python3.12
      Environment:
        Variables:
          DB_ARN: !GetAtt Cluster.DBClusterArn
          BUCKET: !Ref WebBucket
          BUCKET_ARN: !GetAtt WebBucket.Arn
      Events:
        Get: { Type: Api, Properties: { Path: /info, Method: get } }
"#;

const INFO_PY: &str = r#"
import json, os
def handler(event, context):
    return {"statusCode": 200, "body": json.dumps({k: os.environ[k] for k in ["DB_ARN", "BUCKET", "BUCKET_ARN"]})}
"#;

#[tokio::test]
async fn buckets_websites_and_database_clusters_of_a_template_are_served() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    write_file(&dir, "template.yaml", DATA_TEMPLATE);
    write_file(&dir, "info/app.py", INFO_PY);
    let s = Serving::start_with(&dir, &PORTS, &[]);
    let client = reqwest::Client::new();
    let v: Value = client
        .get(s.url("/Prod/info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let arn = "arn:aws:rds:us-east-1:000000000000:cluster:cluster";
    assert_eq!(v["DB_ARN"], arn);
    assert_eq!(v["BUCKET"], "web-assets");
    assert_eq!(v["BUCKET_ARN"], "arn:aws:s3:::web-assets");
    // The cluster is a database behind the Data API, by that ARN.
    let r = client
        .post(format!("http://{}/Execute", s.admin))
        .header("content-type", "application/json")
        .body(serde_json::json!({ "resourceArn": arn, "sql": "SELECT 1 AS one" }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The bucket, through the S3 API, served by its website.
    let put = client
        .put(format!("http://{}/s3/web-assets/index.html", s.admin))
        .body("<h1>home</h1>")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let r = client.get(s.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "<h1>home</h1>");
    // Its CORS rule answers a page's preflight.
    let r = client
        .request(
            reqwest::Method::OPTIONS,
            format!("http://{}/s3/web-assets/x", s.admin),
        )
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "PUT")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
}

const NOT_RUN_TEMPLATE: &str = r#"Transform: AWS::Serverless-2016-10-31
Resources:
  Items:
    Type: AWS::DynamoDB::Table
    Properties: { TableName: items }
  Jobs:
    Type: AWS::SQS::Queue
  Alerts:
    Type: AWS::SNS::Topic
    Properties: { TopicName: alerts }
  Env:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: env/
      Handler: app.handler
      Runtime: python3.12
      Environment:
        Variables:
          TABLE: !Ref Items
          TABLE_ARN: !GetAtt Items.Arn
          QUEUE_URL: !Ref Jobs
          QUEUE_ARN: !GetAtt Jobs.Arn
          TOPIC: !Ref Alerts
      Events:
        Get: { Type: Api, Properties: { Path: /env, Method: get } }
"#;

const ENV_PY: &str = r#"
import json, os
def handler(event, context):
    keys = ["TABLE", "TABLE_ARN", "QUEUE_URL", "QUEUE_ARN", "TOPIC"]
    return {"statusCode": 200, "body": json.dumps({k: os.environ[k] for k in keys})}
"#;

#[tokio::test]
async fn resources_that_are_not_run_give_aws_shaped_values_and_stop_nothing() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("env");
    write_file(&dir, "template.yaml", NOT_RUN_TEMPLATE);
    write_file(&dir, "env/app.py", ENV_PY);
    let (ok, _, err) = run_cli(&["validate", dir.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        err.contains("Items (AWS::DynamoDB::Table)")
            && err.contains("Jobs (AWS::SQS::Queue)")
            && err.contains("Alerts (AWS::SNS::Topic)"),
        "{err}"
    );
    let s = Serving::start_with(&dir, &PORTS, &[]);
    let v: Value = reqwest::get(s.url("/Prod/env"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "TABLE": "items",
            "TABLE_ARN": "arn:aws:dynamodb:us-east-1:000000000000:table/items",
            "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/000000000000/Jobs",
            "QUEUE_ARN": "arn:aws:sqs:us-east-1:000000000000:Jobs",
            "TOPIC": "arn:aws:sns:us-east-1:000000000000:alerts",
        })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sam_app_example_serves_and_its_own_tests_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sam-app");
    let s = Serving::start_with(&dir, &PORTS, &[]);
    let r = reqwest::get(s.url("/hi/you")).await.unwrap();
    assert_eq!(r.text().await.unwrap(), r#"{"message":"hello you"}"#);
    let out = aws_python(&dir, s.admin, &["-m", "pytest", "-q", "tests/integration"])
        .output()
        .unwrap();
    passed_one(&out);
}

const PLAN_TEMPLATE: &str = r#"Transform: AWS::Serverless-2016-10-31
Resources:
  ShopApi:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      Auth:
        ApiKeyRequired: true
        UsagePlan: { CreateUsagePlan: PER_API, Quota: { Limit: 100, Period: DAY } }
  Orders:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: hello_world/
      Handler: app.lambda_handler
      Runtime: python3.12
      Environment: { Variables: { GREETING: orders } }
      Events:
        List: { Type: Api, Properties: { RestApiId: !Ref ShopApi, Path: /orders, Method: get } }
"#;

#[test]
fn client_commands_find_a_server_started_on_other_ports() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("shop");
    sam_project(&dir, PLAN_TEMPLATE);
    let s = Serving::start_with(&dir, &PORTS, &[]);
    // The template's own addresses are 8080/8081; the server chose others
    // and recorded them: `stratus keys` talks to it.
    let (ok, out, err) = run_cli(&["keys", "list", "--project", dir.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        out.contains("ShopApiApiKey") && out.contains("ShopApiUsagePlan"),
        "{out}"
    );
    drop(s);
    // Once it is gone, the record is not followed (the file's own
    // address answers nothing, or is another server).
    let (_, out, _) = run_cli(&["keys", "list", "--project", dir.to_str().unwrap()]);
    assert!(!out.contains("ShopApiApiKey"), "{out}");
}

const TWO_APIS: &str = r#"Transform: AWS::Serverless-2016-10-31
Resources:
  PublicFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: who/
      Handler: app.handler
      Runtime: python3.12
      Environment: { Variables: { WHO: public } }
      Events:
        Who: { Type: HttpApi, Properties: { Path: /who, Method: GET } }
        Rest: { Type: Api, Properties: { Path: /who, Method: GET } }
  AdminApi:
    Type: AWS::Serverless::HttpApi
  AdminFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: who/
      Handler: app.handler
      Runtime: python3.12
      Environment: { Variables: { WHO: admin } }
      Events:
        Who: { Type: HttpApi, Properties: { ApiId: !Ref AdminApi, Path: /who, Method: GET } }
Outputs:
  PublicUrl:
    Value: !Sub "https://${ServerlessHttpApi}.execute-api.${AWS::Region}.amazonaws.com/who"
  AdminUrl:
    Value: !Sub "https://${AdminApi}.execute-api.${AWS::Region}.amazonaws.com/who"
"#;

const WHO_PY: &str = r#"
import json, os
def handler(event, context):
    rc = event["requestContext"]
    return {"statusCode": 200, "body": json.dumps({
        "who": os.environ["WHO"], "domain": rc.get("domainName"), "prefix": rc.get("domainPrefix"),
    })}
"#;

/// Two APIs of one template at one path (two HTTP APIs' `$default` stages,
/// both at `/`) are apart by their hosts, as on AWS: the implicit API keeps
/// the listener's paths, the other is served at `{id}.execute-api.localhost`,
/// and its printed output says so; every API is reachable at its own host.
#[tokio::test]
async fn two_apis_at_one_path_are_apart_by_their_hosts() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("two");
    write_file(&dir, "template.yaml", TWO_APIS);
    write_file(&dir, "who/app.py", WHO_PY);
    let s = Serving::start_with(&dir, &PORTS, &[]);
    let s = tokio::task::spawn_blocking(move || {
        let mut lines = s.wait_line("output AdminUrl", Duration::from_secs(10));
        if !lines.iter().any(|l| l.contains("output PublicUrl")) {
            lines.extend(s.wait_line("output PublicUrl", Duration::from_secs(10)));
        }
        (s, lines)
    });
    let (s, lines) = s.await.unwrap();
    let output = |name: &str| {
        lines
            .iter()
            .find_map(|l| l.split(&format!("output {name} = ")).nth(1))
            .unwrap_or_else(|| panic!("no {name} in {lines:?}"))
            .trim()
            .to_owned()
    };
    let port = s.gateway.port();
    let admin_id = stratus_config::api_id("AdminApi");
    let public_id = stratus_config::api_id("ServerlessHttpApi");
    let rest_id = stratus_config::api_id("ServerlessRestApi");
    assert_eq!(output("PublicUrl"), format!("http://{}/who", s.gateway));
    let admin_url = format!("http://{admin_id}.execute-api.localhost:{port}/who");
    assert_eq!(output("AdminUrl"), admin_url);

    // *.localhost is the loopback (RFC 6761), as browsers and curl resolve
    // it; this client is told so.
    let client = reqwest::Client::builder()
        .resolve(&format!("{admin_id}.execute-api.localhost"), s.gateway)
        .resolve(&format!("{public_id}.execute-api.localhost"), s.gateway)
        .resolve(&format!("{rest_id}.execute-api.localhost"), s.gateway)
        .build()
        .unwrap();
    let who = |url: String| {
        let client = client.clone();
        async move {
            let r = client.get(&url).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, v) = who(admin_url).await;
    assert_eq!(status, 200);
    assert_eq!(v["who"], "admin");
    assert_eq!(
        v["domain"],
        format!("{admin_id}.execute-api.localhost:{port}")
    );
    assert_eq!(v["prefix"], admin_id.as_str());
    // The listener's paths: the implicit API's.
    let (status, v) = who(s.url("/who")).await;
    assert_eq!((status, v["who"].as_str()), (200, Some("public")));
    // The implicit APIs at their own hosts too: the HTTP API's `$default`
    // at `/`, the REST API's stage at `/Prod`.
    let (status, v) = who(format!(
        "http://{public_id}.execute-api.localhost:{port}/who"
    ))
    .await;
    assert_eq!((status, v["who"].as_str()), (200, Some("public")));
    let (status, v) = who(format!(
        "http://{rest_id}.execute-api.localhost:{port}/Prod/who"
    ))
    .await;
    assert_eq!((status, v["who"].as_str()), (200, Some("public")));
    // At an API's host only its own routes: the REST API has no `/who`
    // outside its stage, and the admin API no `/Prod/who`.
    let (status, _) = who(format!("http://{rest_id}.execute-api.localhost:{port}/who")).await;
    assert_eq!(status, 403, "REST's answer to a path no route has");
    let (status, v) = who(format!(
        "http://{admin_id}.execute-api.localhost:{port}/Prod/who"
    ))
    .await;
    assert_eq!(
        (status, &v),
        (404, &serde_json::json!({"message": "Not Found"}))
    );
    // `stratus routes` names each API's host, and which is there alone.
    let (ok, routes, err) = run_cli(&["routes", dir.to_str().unwrap()]);
    assert!(ok, "{err}");
    let row = |api: &str| {
        routes
            .lines()
            .find(|l| l.starts_with(api) && l.contains(".execute-api.localhost"))
            .unwrap_or_else(|| panic!("no host of {api} in:\n{routes}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        row("AdminApi")[1..],
        [
            format!("{admin_id}.execute-api.localhost:{port}"),
            "no".into()
        ]
    );
    assert_eq!(row("ServerlessHttpApi")[2], "yes");
}

const SETTINGS_TEMPLATE: &str = r#"Transform: AWS::Serverless-2016-10-31
Globals:
  Api:
    MethodSettings:
      - { ResourcePath: "/*", HttpMethod: "*", ThrottlingRateLimit: 100, ThrottlingBurstLimit: 100 }
Resources:
  ShopApi:
    Type: AWS::Serverless::Api
    Properties:
      StageName: v1
      CacheClusterEnabled: true
      CacheClusterSize: "0.5"
      Variables: { color: green }
      BinaryMediaTypes: ["image~1png"]
      TracingEnabled: true
      AccessLogSetting:
        DestinationArn: !Sub "arn:aws:logs:${AWS::Region}:${AWS::AccountId}:log-group:shop"
        Format: '{"id":"$context.requestId","resource":"$context.resourcePath","status":"$context.status"}'
      MethodSettings:
        - { ResourcePath: "/~1slow", HttpMethod: GET, ThrottlingRateLimit: 0.1, ThrottlingBurstLimit: 1 }
        - { ResourcePath: "/fresh", HttpMethod: GET, CachingEnabled: false }
        - { ResourcePath: "/count", HttpMethod: GET, CacheTtlInSeconds: 60, LoggingLevel: INFO }
  Web:
    Type: AWS::Serverless::HttpApi
    Properties:
      StageVariables: { color: blue }
      DefaultRouteSettings: { ThrottlingRateLimit: 100, ThrottlingBurstLimit: 100 }
      RouteSettings:
        "GET /limited": { ThrottlingRateLimit: 0.1, ThrottlingBurstLimit: 1 }
  Counter:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: counter/
      Handler: app.handler
      Runtime: python3.12
      Events:
        Count: { Type: Api, Properties: { RestApiId: !Ref ShopApi, Path: /count, Method: get } }
        Fresh: { Type: Api, Properties: { RestApiId: !Ref ShopApi, Path: /fresh, Method: get } }
        Slow: { Type: Api, Properties: { RestApiId: !Ref ShopApi, Path: /slow, Method: get } }
        Png: { Type: Api, Properties: { RestApiId: !Ref ShopApi, Path: /png, Method: get } }
        Limited: { Type: HttpApi, Properties: { ApiId: !Ref Web, Path: /limited, Method: get } }
"#;

const COUNTER_PY: &str = r#"
import base64, json
calls = 0
def handler(event, context):
    global calls
    calls += 1
    path = event.get("rawPath") or event["path"]
    if path.endswith("/png"):
        return {"statusCode": 200, "headers": {"content-type": "image/png"},
                "isBase64Encoded": True, "body": base64.b64encode(b"\x89PNG fake").decode()}
    return {"statusCode": 200, "body": json.dumps({
        "calls": calls, "color": (event.get("stageVariables") or {}).get("color"),
    })}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn stage_settings_throttle_cache_log_and_shape_answers() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("settings");
    write_file(&dir, "template.yaml", SETTINGS_TEMPLATE);
    write_file(&dir, "counter/app.py", COUNTER_PY);
    // Globals.Api's MethodSettings join the API's own: the stage's
    // throttle for every route, /slow's own.
    let (ok, routes, err) = run_cli(&["routes", dir.to_str().unwrap()]);
    assert!(ok, "{err}");
    let line = |path: &str| {
        routes
            .lines()
            .find(|l| l.contains(path))
            .unwrap_or_else(|| panic!("no {path} in {routes}"))
            .to_owned()
    };
    assert!(line("/v1/count").contains("100/s, burst 100"), "{routes}");
    assert!(line("/v1/slow").contains("0.1/s, burst 1"), "{routes}");
    let s = Serving::start_with(&dir, &PORTS, &[]);
    let client = reqwest::Client::new();
    let get = |path: &str| {
        let req = client.get(s.url(path)).header("accept", "image/png");
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.bytes().await.unwrap().to_vec())
        }
    };
    let json = |b: &[u8]| serde_json::from_slice::<Value>(b).unwrap();
    // The stage cache (CacheClusterEnabled) with /count's own ttl: the
    // function is called once; /fresh is never cached.
    let (status, first) = get("/v1/count").await;
    assert_eq!(status, 200);
    assert_eq!(json(&first)["color"], "green", "the stage's Variables");
    assert_eq!(get("/v1/count").await.1, first, "a cached answer");
    let a = json(&get("/v1/fresh").await.1)["calls"].as_i64().unwrap();
    let b = json(&get("/v1/fresh").await.1)["calls"].as_i64().unwrap();
    assert!(b > a, "CachingEnabled: false: {a} then {b}");
    // /slow's own throttle: one call, then 429.
    assert_eq!(get("/v1/slow").await.0, 200);
    assert_eq!(get("/v1/slow").await.0, 429);
    // BinaryMediaTypes: a base64 answer is sent as bytes.
    let (status, png) = get("/v1/png").await;
    assert_eq!(status, 200);
    assert!(
        png.starts_with(b"\x89PNG"),
        "{:?}",
        String::from_utf8_lossy(&png)
    );
    // The HTTP API's route setting and stage variables.
    let (status, body) = get("/limited").await;
    assert_eq!(status, 200);
    assert_eq!(json(&body)["color"], "blue");
    assert_eq!(get("/limited").await.0, 429);
    // The access log in the stage's format.
    let s = tokio::task::spawn_blocking(move || {
        let lines = s.wait_line(
            r#""resource":"/slow","status":"429""#,
            Duration::from_secs(10),
        );
        (s, lines)
    });
    let (_s, lines) = s.await.unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.contains(r#""resource":"/count","status":"200""#)),
        "{lines:?}"
    );
}

const V2_AUTH_TEMPLATE: &str = r#"AWSTemplateFormatVersion: '2010-09-09'
Parameters:
  Issuer: { Type: String }
Resources:
  Items:
    Type: AWS::ApiGatewayV2::Api
    Properties: { Name: items, ProtocolType: HTTP }
  Jwt:
    Type: AWS::ApiGatewayV2::Authorizer
    Properties:
      ApiId: !Ref Items
      Name: jwt
      AuthorizerType: JWT
      IdentitySource: ["$request.header.Authorization"]
      JwtConfiguration: { Issuer: !Ref Issuer, Audience: [items-app] }
  Gate:
    Type: AWS::ApiGatewayV2::Authorizer
    Properties:
      ApiId: !Ref Items
      Name: gate
      AuthorizerType: REQUEST
      AuthorizerUri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${GateFunction.Arn}/invocations"
      AuthorizerPayloadFormatVersion: "2.0"
      EnableSimpleResponses: true
      AuthorizerResultTtlInSeconds: 0
      IdentitySource: ["$request.header.x-pass"]
  ItemsInteg:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Items
      IntegrationType: AWS_PROXY
      IntegrationUri: !GetAtt ItemsFunction.Arn
      PayloadFormatVersion: "2.0"
  KeysInteg:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Items
      IntegrationType: HTTP_PROXY
      IntegrationMethod: GET
      IntegrationUri: !Sub "${Issuer}/.well-known/jwks.json"
  ReadRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Items
      RouteKey: GET /items
      AuthorizationType: JWT
      AuthorizerId: !Ref Jwt
      AuthorizationScopes: [items.read]
      Target: !Sub "integrations/${ItemsInteg}"
  GatedRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Items
      RouteKey: GET /gated
      AuthorizationType: CUSTOM
      AuthorizerId: !Ref Gate
      Target: !Sub "integrations/${ItemsInteg}"
  KeysRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: { ApiId: !Ref Items, RouteKey: GET /keys, Target: !Sub "integrations/${KeysInteg}" }
  Deployment:
    Type: AWS::ApiGatewayV2::Deployment
    DependsOn: [ReadRoute, GatedRoute, KeysRoute]
    Properties: { ApiId: !Ref Items }
  Default:
    Type: AWS::ApiGatewayV2::Stage
    Properties: { ApiId: !Ref Items, StageName: $default, DeploymentId: !Ref Deployment }
  ItemsFunction:
    Type: AWS::Lambda::Function
    Properties: { Handler: app.handler, Runtime: python3.12, Code: items/ }
  GateFunction:
    Type: AWS::Lambda::Function
    Properties: { Handler: app.gate, Runtime: python3.12, Code: items/ }
"#;

const ITEMS_PY: &str = r#"
import json
def handler(event, context):
    auth = event["requestContext"].get("authorizer") or {}
    return {"statusCode": 200, "body": json.dumps({
        "route": event["routeKey"], "sub": auth.get("jwt", {}).get("claims", {}).get("sub"),
        "who": auth.get("lambda", {}).get("who"),
    })}

def gate(event, context):
    ok = event["headers"].get("x-pass") == "yes"
    return {"isAuthorized": ok, "context": {"who": "gatekeeper"}}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn plain_cloudformation_http_api_authorizers_and_http_proxy_are_served() {
    let (signer, issuer) = identity_provider().await;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("v2auth");
    write_file(&dir, "template.yaml", V2_AUTH_TEMPLATE);
    write_file(&dir, "items/app.py", ITEMS_PY);
    let mut args = PORTS.to_vec();
    let overrides = format!("Issuer={issuer}");
    args.extend(["--parameter-overrides", overrides.as_str()]);
    let s = Serving::start_with(&dir, &args, &[]);
    let client = reqwest::Client::new();
    let call = |path: &str, header: Option<(&'static str, String)>| {
        let mut req = client.get(s.url(path));
        if let Some((k, v)) = header {
            req = req.header(k, v);
        }
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let token = |scope: &str| {
        let t = signer.token(serde_json::json!({
            "iss": issuer, "aud": "items-app", "sub": "user-9", "scope": scope,
            "exp": crate::access::now() + 600,
        }));
        Some(("authorization", format!("Bearer {t}")))
    };
    // The JWT authorizer and the route's scopes.
    assert_eq!(call("/items", None).await.0, 401);
    assert_eq!(call("/items", token("items.write")).await.0, 403);
    let (status, body) = call("/items", token("items.read other")).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["route"].as_str(), v["sub"].as_str()),
        (Some("GET /items"), Some("user-9"))
    );
    // The REQUEST authorizer with simple responses.
    assert_eq!(call("/gated", None).await.0, 401, "no identity source");
    assert_eq!(call("/gated", Some(("x-pass", "no".into()))).await.0, 403);
    let (status, body) = call("/gated", Some(("x-pass", "yes".into()))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["who"],
        "gatekeeper"
    );
    // The HTTP_PROXY integration.
    let (status, body) = call("/keys", None).await;
    assert_eq!(status, 200);
    assert!(body.contains(r#""kid":"k1""#), "{body}");
}

const OPENAPI_TEMPLATE: &str = r#"Transform: AWS::Serverless-2016-10-31
Resources:
  ShopApi:
    Type: AWS::Serverless::Api
    Properties:
      StageName: Prod
      DefinitionBody:
        Fn::Transform:
          Name: AWS::Include
          Parameters: { Location: ./shop-api.yaml }
  WebApi:
    Type: AWS::Serverless::HttpApi
    Properties:
      DefinitionUri: ./web-api.json
  Legacy:
    Type: AWS::ApiGateway::RestApi
    Properties:
      Name: legacy
      Body:
        swagger: "2.0"
        info: { title: legacy, version: "1" }
        paths:
          /hello:
            get:
              x-amazon-apigateway-integration:
                type: mock
                requestTemplates: { application/json: '{"statusCode": 200}' }
                responses: { default: { statusCode: "200", responseTemplates: { application/json: '"hello from a swagger body"' } } }
  LegacyStage:
    Type: AWS::ApiGateway::Stage
    Properties: { RestApiId: !Ref Legacy, StageName: live, DeploymentId: abc }
  Items:
    Type: AWS::Serverless::Function
    Properties: { CodeUri: items/, Handler: app.handler, Runtime: python3.12 }
  Gate:
    Type: AWS::Serverless::Function
    Properties: { CodeUri: auth/, Handler: app.handler, Runtime: python3.12 }
"#;

/// Included: its intrinsics are evaluated (AWS::Include).
const SHOP_API_YAML: &str = r#"openapi: "3.0.1"
info: { title: shop, version: "1" }
x-amazon-apigateway-binary-media-types: ["image/png"]
components:
  securitySchemes:
    token:
      type: apiKey
      name: Authorization
      in: header
      x-amazon-apigateway-authtype: custom
      x-amazon-apigateway-authorizer:
        type: token
        authorizerUri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Gate.Arn}/invocations"
        authorizerResultTtlInSeconds: 0
    api_key: { type: apiKey, name: x-api-key, in: header }
paths:
  /items:
    get:
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: POST
        uri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Items.Arn}/invocations"
  /items/{id}:
    x-amazon-apigateway-any-method:
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: POST
        uri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Items.Arn}/invocations"
  /private:
    get:
      security: [{ token: [] }]
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: POST
        uri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Items.Arn}/invocations"
  /keyed:
    get:
      security: [{ api_key: [] }]
      x-amazon-apigateway-integration:
        type: mock
        responses: { default: { statusCode: "200" } }
  /ping:
    get:
      x-amazon-apigateway-integration:
        type: mock
        responses: { default: { statusCode: "200", responseTemplates: { application/json: '{"pong": true}' } } }
"#;

/// DefinitionUri: used as written (no intrinsics), as SAM uploads it.
const WEB_API_JSON: &str = r#"{
  "openapi": "3.0.1",
  "info": { "title": "web", "version": "1" },
  "x-amazon-apigateway-cors": { "allowOrigins": ["http://localhost:3000"], "allowMethods": ["GET"], "maxAge": 60 },
  "paths": {
    "/web/items": {
      "get": {
        "x-amazon-apigateway-integration": {
          "type": "aws_proxy",
          "httpMethod": "POST",
          "payloadFormatVersion": "2.0",
          "uri": "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:000000000000:function:Items/invocations"
        }
      }
    }
  }
}"#;

const ITEMS_EVENT_PY: &str = r#"
import json
def handler(event, context):
    return {"statusCode": 200, "body": json.dumps({
        "version": event.get("version", "1.0"), "resource": event.get("resource") or event.get("routeKey"),
        "id": (event.get("pathParameters") or {}).get("id"),
        "principal": (event["requestContext"].get("authorizer") or {}).get("principalId"),
    })}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn openapi_definitions_of_sam_and_cloudformation_apis_are_served() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("openapi");
    write_file(&dir, "template.yaml", OPENAPI_TEMPLATE);
    write_file(&dir, "shop-api.yaml", SHOP_API_YAML);
    write_file(&dir, "web-api.json", WEB_API_JSON);
    write_file(&dir, "items/app.py", ITEMS_EVENT_PY);
    write_file(&dir, "auth/app.py", AUTH_PY);
    let s = Serving::start_with(&dir, &PORTS, &[]);
    let client = reqwest::Client::new();
    let call = |method: &str, path: &str, header: Option<(&'static str, &'static str)>| {
        let mut req = client.request(method.parse().unwrap(), s.url(path));
        if let Some((k, v)) = header {
            req = req.header(k, v);
        }
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let json = |b: &str| serde_json::from_str::<Value>(b).unwrap();
    // The included definition: its aws_proxy, any-method and mock
    // operations, its token authorizer, its API key requirement.
    let (status, body) = call("GET", "/Prod/items", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["resource"], "/items");
    let (status, body) = call("POST", "/Prod/items/5", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (json(&body)["resource"].as_str(), json(&body)["id"].as_str()),
        (Some("/items/{id}"), Some("5"))
    );
    assert_eq!(
        call("GET", "/Prod/ping", None).await,
        (200, r#"{"pong": true}"#.into())
    );
    assert_eq!(call("GET", "/Prod/private", None).await.0, 401);
    let (status, body) = call("GET", "/Prod/private", Some(("authorization", "allow"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["principal"], "u1");
    assert_eq!(
        call("GET", "/Prod/keyed", None).await.0,
        403,
        "an API key is required"
    );
    // The HTTP API's definition file and its CORS.
    let (status, body) = call("GET", "/web/items", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["version"], "2.0");
    assert_eq!(
        crate::support::preflight(&s.url("/web/items"), "http://localhost:3000", "GET").await,
        Some("http://localhost:3000".to_owned())
    );
    // A RestApi's swagger Body.
    assert_eq!(
        call("GET", "/live/hello", None).await,
        (200, r#""hello from a swagger body""#.into())
    );
    // Mistakes, named where they are.
    for (template, expected) in [
        (
            OPENAPI_TEMPLATE.replace("./web-api.json", "./missing.json"),
            "Resources.WebApi.Properties.DefinitionUri: DefinitionUri is a file beside the template",
        ),
        (
            OPENAPI_TEMPLATE.replace("./shop-api.yaml", "s3://bucket/shop-api.yaml"),
            "AWS::Include: \"s3://bucket/shop-api.yaml\" is not a file beside the template",
        ),
        (
            // An AWS (non-proxy) integration must name a function.
            OPENAPI_TEMPLATE.replace("type: mock", "type: aws"),
            "Resources.Legacy.Properties.Body.paths./hello.get: an aws integration's uri names a function",
        ),
    ] {
        let bad = root.path().join(format!("bad{}", template.len()));
        write_file(&bad, "template.yaml", &template);
        write_file(&bad, "shop-api.yaml", SHOP_API_YAML);
        write_file(&bad, "web-api.json", WEB_API_JSON);
        write_file(&bad, "items/app.py", ITEMS_EVENT_PY);
        write_file(&bad, "auth/app.py", AUTH_PY);
        validate_refuses(&bad, expected);
    }
}

const LAYERS_TEMPLATE: &str = r#"Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.12
    Layers: [!Ref SharedLayer]
Resources:
  SharedLayer:
    Type: AWS::Serverless::LayerVersion
    Properties: { LayerName: shared, ContentUri: layers/shared/, CompatibleRuntimes: [python3.12, nodejs20.x] }
  DepsLayer:
    Type: AWS::Serverless::LayerVersion
    Properties: { ContentUri: layers/deps/ }
    Metadata: { BuildMethod: python3.12 }
  ToolsLayer:
    Type: AWS::Lambda::LayerVersion
    Properties: { LayerName: tools, Content: layers/tools/ }
  PyFn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: py/
      Handler: app.handler
      Layers:
        - !Ref DepsLayer
        - !Ref ToolsLayer
        - arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3:1
      Environment: { Variables: { SHARED: !Ref SharedLayer } }
      Events:
        Get: { Type: HttpApi, Properties: { Path: /py, Method: get } }
  NodeFn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: node/
      Handler: app.handler
      Runtime: nodejs20.x
      Events:
        Get: { Type: HttpApi, Properties: { Path: /node, Method: get } }
"#;

const LAYER_PY_APP: &str = r#"
import json, os, subprocess
import greet, tomli_w
def handler(event, context):
    tool = subprocess.run(["hello-tool"], capture_output=True, text=True).stdout.strip()
    return {"statusCode": 200, "body": json.dumps({
        "greet": greet.hello("py"), "toml": tomli_w.dumps({"a": 1}).strip(),
        "tool": tool, "shared": os.environ["SHARED"],
        "opt": sorted(os.listdir(os.environ["STRATUS_OPT"])),
        "opt_tool": open(os.path.join(os.environ["STRATUS_OPT"], "bin/hello-tool")).read().strip().splitlines()[-1],
    })}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn layers_of_a_template_are_found_as_in_opt() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("layers");
    write_file(&dir, "template.yaml", LAYERS_TEMPLATE);
    write_file(
        &dir,
        "layers/shared/python/greet.py",
        "def hello(who):\n    return 'hello ' + who + ' from the shared layer'\n",
    );
    write_file(
        &dir,
        "layers/shared/nodejs/node_modules/greet/index.js",
        "exports.hello = (who) => `hello ${who} from the shared layer`;\n",
    );
    // Built as `sam build` builds a python layer: its requirements.txt.
    write_file(&dir, "layers/deps/requirements.txt", "tomli-w==1.2.0\n");
    write_file(
        &dir,
        "layers/tools/bin/hello-tool",
        "#!/bin/sh\necho tool from the tools layer\n",
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let tool = dir.join("layers/tools/bin/hello-tool");
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    write_file(&dir, "py/app.py", LAYER_PY_APP);
    write_file(
        &dir,
        "node/app.js",
        "const greet = require('greet');\nexports.handler = async () => ({ statusCode: 200, body: greet.hello('node') });\n",
    );
    // The layer that is not the template's is named, and the rest runs.
    let (ok, _, err) = run_cli(&["validate", dir.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        err.contains("not run by Stratus")
            && err.contains("PyFn layer arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3:1"),
        "{err}"
    );
    let s = Serving::start_with(&dir, &PORTS, &[]);
    let r = reqwest::get(s.url("/py")).await.unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["greet"], "hello py from the shared layer");
    assert_eq!(v["toml"], "a = 1");
    assert_eq!(v["tool"], "tool from the tools layer");
    // The layers merged as /opt is, for code that reads a path under it.
    assert_eq!(
        v["opt"],
        serde_json::json!(["bin", "nodejs", "python", "requirements.txt"])
    );
    assert_eq!(v["opt_tool"], "echo tool from the tools layer");
    assert_eq!(
        v["shared"],
        "arn:aws:lambda:us-east-1:000000000000:layer:shared:1"
    );
    let r = reqwest::get(s.url("/node")).await.unwrap();
    assert_eq!(r.text().await.unwrap(), "hello node from the shared layer");
}

const TYPESCRIPT_TEMPLATE: &str = r#"AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Timeout: 3
Resources:
  HelloWorldFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: hello-world/
      Handler: app.lambdaHandler
      Runtime: nodejs22.x
      Architectures: [x86_64]
      Events:
        HelloWorld:
          Type: Api
          Properties: { Path: /hello, Method: get }
    Metadata:
      BuildMethod: esbuild
      BuildProperties:
        Minify: true
        Target: es2020
        Sourcemap: true
        EntryPoints: [app.ts]
"#;

const HELLO_TS: &str = r#"
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { greeting } from './lib/greeting';

interface Answer { message: string; path: string }

export const lambdaHandler = async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
    const answer: Answer = { message: greeting('world'), path: event.path };
    return { statusCode: 200, body: JSON.stringify(answer) };
};
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_typescript_function_is_bundled_with_esbuild_as_sam_build_does() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("ts-app");
    write_file(&dir, "template.yaml", TYPESCRIPT_TEMPLATE);
    write_file(&dir, "hello-world/app.ts", HELLO_TS);
    write_file(
        &dir,
        "hello-world/lib/greeting.ts",
        "export const greeting = (who: string): string => `hello ${who}`;\n",
    );
    let s = Serving::start_with(&dir, &PORTS, &[]);
    let r = reqwest::get(s.url("/Prod/hello")).await.unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["message"].as_str(), v["path"].as_str()),
        (Some("hello world"), Some("/hello"))
    );
    // Run from the bundle, as from `sam build`'s artifact: minified, with
    // its source map.
    let bundle = dir.join(".stratus/build/HelloWorldFunction/bundle");
    assert!(
        bundle.join("app.js.map").is_file(),
        "no source map in {}",
        bundle.display()
    );
    // `makefile` is refused, naming the place.
    let bad = root.path().join("make-app");
    write_file(
        &bad,
        "template.yaml",
        &TYPESCRIPT_TEMPLATE.replace("BuildMethod: esbuild", "BuildMethod: makefile"),
    );
    write_file(&bad, "hello-world/app.ts", HELLO_TS);
    validate_refuses(&bad, "Resources.HelloWorldFunction.Metadata.BuildMethod: BuildMethod makefile runs `make build-HelloWorldFunction`");
}

const ALIAS_TEMPLATE: &str = r#"Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    AutoPublishAlias: live
Resources:
  HelloWorldFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: hello/
      Handler: app.handler
      Runtime: python3.12
      DeploymentPreference: { Type: AllAtOnce }
      Events:
        Hello: { Type: Api, Properties: { Path: /hello, Method: get } }
  Plain:
    Type: AWS::Lambda::Function
    Properties: { FunctionName: plain, Handler: app.handler, Runtime: python3.12, Code: hello/ }
  PlainVersion:
    Type: AWS::Lambda::Version
    Properties: { FunctionName: !Ref Plain }
  PlainAlias:
    Type: AWS::Lambda::Alias
    Properties: { FunctionName: !Ref Plain, FunctionVersion: !GetAtt PlainVersion.Version, Name: stable }
  PlainApi:
    Type: AWS::ApiGatewayV2::Api
    Properties: { Name: plain, ProtocolType: HTTP, Target: !Ref PlainAlias, RouteKey: "GET /plain" }
  PlainUrl:
    Type: AWS::Lambda::Url
    Properties: { TargetFunctionArn: !Ref PlainAlias, AuthType: NONE, Cors: { AllowOrigins: ["*"] } }
Outputs:
  AliasArn:
    Value: !Ref HelloWorldFunction.Alias
"#;

const VERSIONED_PY: &str = r#"
import json, os
MESSAGE = "first"
def handler(event, context):
    return {"statusCode": 200, "body": json.dumps({
        "message": MESSAGE, "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"],
        "arn": context.invoked_function_arn,
    })}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn auto_publish_alias_publishes_at_start_and_events_call_the_alias() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("aliased");
    write_file(&dir, "template.yaml", ALIAS_TEMPLATE);
    write_file(&dir, "hello/app.py", VERSIONED_PY);
    let hello = |s: &Serving, path: &'static str| {
        let url = s.url(path);
        async move {
            let r = reqwest::get(url).await.unwrap();
            let body = r.text().await.unwrap();
            serde_json::from_str::<Value>(&body).unwrap_or_else(|_| panic!("{body}"))
        }
    };
    let s = Serving::start_with(&dir, &PORTS, &[]);
    let v = hello(&s, "/Prod/hello").await;
    assert_eq!(
        (v["message"].as_str(), v["version"].as_str()),
        (Some("first"), Some("1"))
    );
    assert_eq!(
        v["arn"],
        "arn:aws:lambda:us-east-1:000000000000:function:HelloWorldFunction:live"
    );
    // A plain Alias of a Version, through a quick-create API's target.
    let v = hello(&s, "/plain").await;
    assert_eq!(
        v["arn"],
        "arn:aws:lambda:us-east-1:000000000000:function:plain:stable"
    );
    assert_eq!(v["version"], "1");
    // A plain function URL of the alias: it calls the alias.
    let v = hello(&s, "/lambda-url/plain/").await;
    assert_eq!(
        v["arn"],
        "arn:aws:lambda:us-east-1:000000000000:function:plain:stable"
    );
    drop(s);
    // Changed code: a new version at the next start, the alias moved;
    // unchanged: no new version.
    write_file(
        &dir,
        "hello/app.py",
        &VERSIONED_PY.replace("first", "second"),
    );
    for _ in 0..2 {
        let s = Serving::start_with(&dir, &PORTS, &[]);
        let v = hello(&s, "/Prod/hello").await;
        assert_eq!(
            (v["message"].as_str(), v["version"].as_str()),
            (Some("second"), Some("2"))
        );
        // `Ref Fn.Alias`, as SAM offers it: the alias's ARN.
        let s = tokio::task::spawn_blocking(move || {
            let lines = s.wait_line("output AliasArn", Duration::from_secs(10));
            (s, lines)
        });
        let (_s, lines) = s.await.unwrap();
        assert!(
            lines.iter().any(|l| l.ends_with(
                "output AliasArn = arn:aws:lambda:us-east-1:000000000000:function:HelloWorldFunction:live"
            )),
            "{lines:?}"
        );
    }
}

const CDN_TEMPLATE: &str = r#"AWSTemplateFormatVersion: '2010-09-09'
Resources:
  SiteBucket:
    Type: AWS::S3::Bucket
    Properties: { BucketName: my-site }
  SiteOac:
    Type: AWS::CloudFront::OriginAccessControl
    Properties:
      OriginAccessControlConfig: { Name: site, OriginAccessControlOriginType: s3, SigningBehavior: always, SigningProtocol: sigv4 }
  SitePolicy:
    Type: AWS::S3::BucketPolicy
    Properties: { Bucket: !Ref SiteBucket, PolicyDocument: { Statement: [] } }
  Cdn:
    Type: AWS::CloudFront::Distribution
    Properties:
      DistributionConfig:
        Enabled: true
        DefaultRootObject: index.html
        Origins:
          - Id: s3
            DomainName: !GetAtt SiteBucket.RegionalDomainName
            S3OriginConfig: { OriginAccessIdentity: "" }
            OriginAccessControlId: !GetAtt SiteOac.Id
        DefaultCacheBehavior:
          TargetOriginId: s3
          ViewerProtocolPolicy: redirect-to-https
          DefaultTTL: 60
        CacheBehaviors:
          - { PathPattern: "assets/*", TargetOriginId: s3, ViewerProtocolPolicy: https-only, DefaultTTL: 31536000 }
        CustomErrorResponses:
          - { ErrorCode: 404, ResponseCode: 200, ResponsePagePath: /index.html }
Outputs:
  SiteUrl:
    Value: !Sub "https://${Cdn.DomainName}/"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_cloudfront_distribution_of_a_bucket_is_served_as_its_site() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cdn");
    write_file(&dir, "template.yaml", CDN_TEMPLATE);
    let s = Serving::start_with(&dir, &PORTS, &[]);
    let s = tokio::task::spawn_blocking(move || {
        let lines = s.wait_line("output SiteUrl", Duration::from_secs(10));
        (s, lines)
    });
    let (s, lines) = s.await.unwrap();
    let url = lines
        .iter()
        .find_map(|l| l.split("output SiteUrl = ").nth(1))
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(url, s.url("/"), "the distribution's URL, local");
    // Objects put through the S3 API, as `aws s3 sync` publishes a site.
    let client = reqwest::Client::new();
    for (key, body) in [
        ("index.html", "<h1>home</h1>"),
        ("assets/app.js", "console.log(1)"),
    ] {
        let r = client
            .put(format!("http://{}/s3/my-site/{key}", s.admin))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let get = |path: &str| client.get(s.url(path)).send();
    let r = get("/").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "max-age=60", "DefaultTTL");
    assert_eq!(r.text().await.unwrap(), "<h1>home</h1>");
    let r = get("/assets/app.js").await.unwrap();
    assert_eq!(
        r.headers()["cache-control"],
        "max-age=31536000",
        "the behaviour's TTL"
    );
    // CustomErrorResponses 404 → 200 /index.html: a single-page app.
    let r = get("/some/route").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "<h1>home</h1>");
}

const TODAY_RUNTIMES: &str = r#"Transform: AWS::Serverless-2016-10-31
Resources:
  Py:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: f/
      Handler: app.handler
      Runtime: python3.14
      FunctionUrlConfig: { AuthType: NONE }
      Events:
        Get: { Type: HttpApi, Properties: { Path: /py, Method: get } }
  Node:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: f/
      Handler: index.handler
      Runtime: nodejs24.x
      Events:
        Get: { Type: HttpApi, Properties: { Path: /node, Method: get } }
Outputs:
  PyUrl:
    Value: !GetAtt PyUrl.FunctionUrl
"#;

#[tokio::test(flavor = "multi_thread")]
async fn runtimes_named_as_aws_names_them_today_run_and_function_urls_are_served() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("today");
    write_file(&dir, "template.yaml", TODAY_RUNTIMES);
    write_file(
        &dir,
        "f/app.py",
        "def handler(e, c):\n    return {'statusCode': 200, 'body': 'py at ' + e['rawPath']}\n",
    );
    write_file(
        &dir,
        "f/index.js",
        "exports.handler = async () => ({ statusCode: 200, body: 'node' });\n",
    );
    let (ok, _, err) = run_cli(&["validate", dir.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(!err.contains("not run by Stratus"), "{err}");
    let s = Serving::start_with(&dir, &PORTS, &[]);
    for (path, body) in [("/py", "py at /py"), ("/node", "node")] {
        let r = reqwest::get(s.url(path)).await.unwrap();
        assert_eq!(r.text().await.unwrap(), body, "{path}");
    }
    // FunctionUrlConfig: the URL `GetAtt PyUrl.FunctionUrl` gives, local.
    let s = tokio::task::spawn_blocking(move || {
        let lines = s.wait_line("output PyUrl", Duration::from_secs(10));
        (s, lines)
    });
    let (s, lines) = s.await.unwrap();
    let url = lines
        .iter()
        .find_map(|l| l.split("output PyUrl = ").nth(1))
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(url, s.url("/lambda-url/Py/"));
    let r = reqwest::get(format!("{url}deep/path")).await.unwrap();
    assert_eq!(r.text().await.unwrap(), "py at /deep/path");
}

const SCHEDULES_TEMPLATE: &str = r#"Transform: AWS::Serverless-2016-10-31
Resources:
  Digest:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: digest/
      Handler: app.handler
      Runtime: python3.12
      Events:
        Hourly:
          Type: Schedule
          Properties: { Schedule: rate(1 hour), Input: '{"from": "Hourly"}' }
        Mornings:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: cron(0 8 ? * MON-FRI *)
            ScheduleExpressionTimezone: Europe/Paris
            Input: { from: Mornings }
        Paused:
          Type: Schedule
          Properties: { Schedule: rate(1 day), Enabled: false }
  NightlyRule:
    Type: AWS::Events::Rule
    Properties:
      ScheduleExpression: cron(0 2 * * ? *)
      Targets: [{ Id: digest, Arn: !GetAtt Digest.Arn }]
  OnObject:
    Type: AWS::Events::Rule
    Properties:
      EventPattern: { source: [aws.s3] }
      Targets: [{ Id: digest, Arn: !GetAtt Digest.Arn }]
  Weekly:
    Type: AWS::Scheduler::Schedule
    Properties:
      ScheduleExpression: rate(7 days)
      FlexibleTimeWindow: { Mode: "OFF" }
      Target: { Arn: !GetAtt Digest.Arn, RoleArn: !GetAtt DigestRole.Arn, Input: '{"from": "Weekly"}' }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn schedule_events_rules_and_scheduler_schedules_of_a_template_run() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("digest");
    write_file(&dir, "template.yaml", SCHEDULES_TEMPLATE);
    write_file(
        &dir,
        "digest/app.py",
        "import json, os\ndef handler(event, context):\n    with open(os.path.join(os.environ['LAMBDA_TASK_ROOT'], 'got.jsonl'), 'a') as f:\n        f.write(json.dumps(event) + '\\n')\n",
    );
    let project = dir.to_str().unwrap();
    let (ok, routes, err) = run_cli(&["routes", project]);
    assert!(ok, "{err}");
    assert!(
        err.contains("OnObject (AWS::Events::Rule)"),
        "an event pattern is not run: {err}"
    );
    for (name, has) in [
        ("DigestHourly", "rate(1 hour)"),
        ("DigestMornings", "Europe/Paris"),
        ("DigestPaused", "disabled"),
        ("NightlyRule", "cron(0 2 * * ? *)"),
        ("Weekly", "rate(7 days)"),
    ] {
        let line = routes.lines().find(|l| l.starts_with(name));
        assert!(line.is_some_and(|l| l.contains(has)), "{name}: {routes}");
    }
    let _s = Serving::start_with(&dir, &PORTS, &[]);
    for name in ["DigestMornings", "NightlyRule"] {
        let (ok, _, err) = run_cli(&["schedule", "run", name, "--project", project]);
        assert!(ok, "{err}");
    }
    let got =
        crate::support::json_lines(&dir.join("digest/got.jsonl"), 2, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got.contains(&serde_json::json!({"from": "Mornings"})),
        "YAML input sent as JSON: {got:?}"
    );
    assert!(
        got.iter().any(|e| e["detail-type"] == "Scheduled Event"
            && e["resources"][0] == "arn:aws:events:us-east-1:000000000000:rule/NightlyRule"),
        "{got:?}"
    );
}

const S3_EVENTS_TEMPLATE: &str = r#"Transform: AWS::Serverless-2016-10-31
Resources:
  Uploads:
    Type: AWS::S3::Bucket
  Thumbs:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: thumbs
      NotificationConfiguration:
        LambdaConfigurations:
          - Event: s3:ObjectRemoved:*
            Function: !GetAtt Thumbnail.Arn
  Thumbnail:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: thumb/
      Handler: app.handler
      Runtime: python3.12
      Events:
        Uploaded:
          Type: S3
          Properties:
            Bucket: !Ref Uploads
            Events: s3:ObjectCreated:*
            Filter: { S3Key: { Rules: [{ Name: prefix, Value: images/ }, { Name: suffix, Value: .png }] } }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn s3_events_of_a_template_invoke_its_function() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("thumbs");
    write_file(&dir, "template.yaml", S3_EVENTS_TEMPLATE);
    write_file(
        &dir,
        "thumb/app.py",
        "import json, os\ndef handler(event, context):\n    r = event['Records'][0]\n    with open(os.path.join(os.environ['LAMBDA_TASK_ROOT'], 'got.txt'), 'a') as f:\n        f.write(r['eventName'] + ' ' + r['s3']['bucket']['name'] + '/' + r['s3']['object']['key'] + '\\n')\n",
    );
    let s = Serving::start_with(&dir, &PORTS, &[]);
    let client = reqwest::Client::new();
    for (method, url) in [
        ("PUT", "uploads/notes/readme.png"),
        ("PUT", "uploads/images/cat.png"),
        ("PUT", "thumbs/cat.png"),
        ("DELETE", "thumbs/cat.png"),
    ] {
        let r = client
            .request(
                method.parse().unwrap(),
                format!("http://{}/s3/{url}", s.admin),
            )
            .body("png")
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{method} {url}: {}", r.status());
    }
    let file = dir.join("thumb/got.txt");
    let mut got = String::new();
    for _ in 0..100 {
        got = std::fs::read_to_string(&file).unwrap_or_default();
        if got.lines().count() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut lines: Vec<&str> = got.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "ObjectCreated:Put uploads/images/cat.png",
            "ObjectRemoved:Delete thumbs/cat.png"
        ],
        "the filter keeps notes/ out; thumbs/ sends only removals"
    );
}

const DESTINATIONS_TEMPLATE: &str = r#"Transform: AWS::Serverless-2016-10-31
Resources:
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: f/
      Handler: app.handler
      Runtime: python3.12
      EventInvokeConfig:
        MaximumRetryAttempts: 1
        MaximumEventAgeInSeconds: 600
        DestinationConfig:
          OnFailure: { Type: Lambda, Destination: !GetAtt Dlq.Arn }
          OnSuccess: { Type: SQS, Destination: arn:aws:sqs:us-east-1:000000000000:done }
  Plain:
    Type: AWS::Lambda::Function
    Properties: { Handler: app.handler, Runtime: python3.12, Code: f/ }
  PlainConfig:
    Type: AWS::Lambda::EventInvokeConfig
    Properties:
      FunctionName: !Ref Plain
      Qualifier: $LATEST
      MaximumRetryAttempts: 0
      DestinationConfig: { OnSuccess: { Destination: !GetAtt Dlq.Arn } }
  Dlq:
    Type: AWS::Serverless::Function
    Properties: { CodeUri: f/, Handler: app.handler, Runtime: python3.12 }
"#;

#[test]
fn event_invoke_configs_become_async_settings_and_destinations() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("dest");
    write_file(&dir, "template.yaml", DESTINATIONS_TEMPLATE);
    write_file(&dir, "f/app.py", "def handler(e, c):\n    return e\n");
    let (ok, _, err) = run_cli(&[
        "init",
        "--from",
        dir.join("template.yaml").to_str().unwrap(),
        dir.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    // The project file it amounts to, table by table.
    let text = std::fs::read_to_string(dir.join("stratus.toml")).unwrap();
    let table = |name: &str| -> String {
        let start = text
            .find(&format!("[functions.{name}.async]\n"))
            .unwrap_or_else(|| panic!("no {name} async in {text}"));
        let rest = &text[start..];
        let end = rest[1..].find("\n[").map_or(rest.len(), |e| e + 1);
        rest[..end].to_owned()
    };
    let worker = table("Worker");
    for line in [
        "max_retries = 1",
        "max_event_age = 600",
        "on_failure = \"Dlq\"",
    ] {
        assert!(worker.contains(line), "{line}: {worker}");
    }
    assert!(
        !worker.contains("on_success"),
        "an SQS destination is not a function: {worker}"
    );
    let plain = table("Plain");
    for line in ["max_retries = 0", "on_success = \"Dlq\""] {
        assert!(plain.contains(line), "{line}: {plain}");
    }
}
