"""The example's Python function: an API Gateway proxy handler, as on AWS."""

import json


def handler(event, context):
    # Payload 2.0 (HTTP APIs) and 1.0 (REST APIs) both carry pathParameters.
    params = event.get("pathParameters") or {}
    name = params.get("name") or params.get("id") or "world"
    print(f"saying hello to {name}")
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({
            "message": f"hello, {name}",
            "runtime": "python",
            "requestId": context.aws_request_id,
            "stage": event["requestContext"].get("stage"),
        }),
    }
