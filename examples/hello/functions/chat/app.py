"""The example's chat: a WebSocket API backend written as for AWS.

Connections are kept in SQLite (a stand-in for the DynamoDB table an AWS
deployment would use); messages are broadcast with boto3's
apigatewaymanagementapi client at https://{domainName}/{stage}, exactly
as on AWS: Stratus answers that URL (TLS with a local CA every function
trusts) and gives every function credentials to sign with.
"""

import hashlib
import json
import os
import sqlite3
import tempfile

import boto3

# /tmp, as on Lambda; named after the code's location, so that two projects
# with a `chat` function (this example, a `stratus init --template
# websocket` project) never share their connections.
_ROOT = hashlib.sha1(os.environ.get("LAMBDA_TASK_ROOT", os.getcwd()).encode()).hexdigest()[:12]
DB = os.path.join(tempfile.gettempdir(), f"stratus-chat-{os.environ['AWS_LAMBDA_FUNCTION_NAME']}-{_ROOT}.db")


def db():
    conn = sqlite3.connect(DB, timeout=5, isolation_level=None)
    conn.execute("CREATE TABLE IF NOT EXISTS connections (id TEXT PRIMARY KEY, name TEXT)")
    return conn


def endpoint(ctx):
    return f"https://{ctx['domainName']}/{ctx['stage']}"


def broadcast(ctx, message):
    api = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint(ctx))
    data = json.dumps(message).encode()
    with db() as conn:
        for (cid,) in conn.execute("SELECT id FROM connections").fetchall():
            try:
                api.post_to_connection(ConnectionId=cid, Data=data)
            except api.exceptions.GoneException:
                conn.execute("DELETE FROM connections WHERE id = ?", (cid,))


def handler(event, context):
    ctx = event["requestContext"]
    cid = ctx["connectionId"]
    route = ctx["routeKey"]
    if route == "$connect":
        name = (event.get("queryStringParameters") or {}).get("name", "someone")
        db().execute("INSERT OR REPLACE INTO connections VALUES (?, ?)", (cid, name))
        return {"statusCode": 200}
    if route == "$disconnect":
        conn = db()
        row = conn.execute("SELECT name FROM connections WHERE id = ?", (cid,)).fetchone()
        conn.execute("DELETE FROM connections WHERE id = ?", (cid,))
        if row:
            broadcast(ctx, {"system": f"{row[0]} left"})
        return {"statusCode": 200}

    try:
        body = json.loads(event.get("body") or "{}")
    except ValueError:
        body = None  # not JSON: route selection sent it to $default
    if not isinstance(body, dict):
        return {"statusCode": 200, "body": json.dumps({"error": "messages are JSON objects", "actions": ["join", "send"]})}
    if route == "join":
        name = str(body.get("name") or "someone")[:40]
        db().execute("INSERT OR REPLACE INTO connections VALUES (?, ?)", (cid, name))
        broadcast(ctx, {"system": f"{name} joined"})
        return {"statusCode": 200}
    if route == "send":
        row = db().execute("SELECT name FROM connections WHERE id = ?", (cid,)).fetchone()
        broadcast(ctx, {"from": row[0] if row else "someone", "text": str(body.get("text", ""))[:2000]})
        return {"statusCode": 200}
    # $default, a two-way route: the answer goes back to this client only.
    return {"statusCode": 200, "body": json.dumps({"error": "unknown action", "actions": ["join", "send"]})}
