"""Support tickets: the portal's main function, written exactly as for AWS.

- HTTP API routes (payload 2.0): list (search, pagination), read, create,
  reply, attach a file; writes need the JWT authorizer's signed-in user.
- WebSocket events of the `live` API: connections are kept in the database
  and every new ticket, reply or attachment is pushed to them through the
  API Gateway Management API (`@connections`).
- Data through the RDS Data API (boto3 `rds-data`): the same code runs on
  SQLite or PostgreSQL, and on Aurora on AWS.
- Attachments are uploaded by the browser through presigned S3 URLs.

On Stratus every AWS endpoint comes from the environment
(AWS_ENDPOINT_URL_RDS_DATA, AWS_ENDPOINT_URL_S3, and LIVE_ENDPOINT, the
WebSocket API's callback URL, set in stratus.toml): no address is written
here.
"""

import base64
import json
import os
import re
import time
import uuid

import boto3
from botocore.config import Config

DB_ARN = os.environ["STRATUS_DB_MAIN_ARN"]
# On AWS: the Secrets Manager secret holding the cluster's credentials.
SECRET_ARN = os.environ.get("DB_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:000000000000:secret:portal-db")
BUCKET = os.environ.get("ATTACHMENTS_BUCKET", "attachments")
MAX_ATTACHMENT = 10 * 1024 * 1024

rds = boto3.client("rds-data")
s3 = boto3.client("s3", config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


# --- the database, through the Data API ------------------------------------

def _field(value):
    if value is None:
        return {"isNull": True}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"longValue": value}
    return {"stringValue": str(value)}


def sql(statement, **params):
    """Runs one statement; rows as dicts."""
    out = rds.execute_statement(
        resourceArn=DB_ARN,
        secretArn=SECRET_ARN,
        sql=statement,
        parameters=[{"name": k, "value": _field(v)} for k, v in params.items()],
        formatRecordsAs="JSON",
    )
    return json.loads(out.get("formattedRecords") or "[]")


# --- answers ---------------------------------------------------------------

def answer(status, body):
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body),
    }


def error(status, message, **extra):
    return answer(status, {"message": message, **extra})


class Invalid(Exception):
    pass


def body_of(event):
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode("utf-8", "replace")
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        raise Invalid("the body is not JSON")
    if not isinstance(value, dict):
        raise Invalid("the body is a JSON object")
    return value


def text(data, key, low, high):
    value = data.get(key)
    if not isinstance(value, str) or not low <= len(value.strip()) <= high:
        raise Invalid(f"{key}: {low} to {high} characters")
    return value.strip()


def user_of(event):
    claims = event["requestContext"].get("authorizer", {}).get("jwt", {}).get("claims", {})
    return claims.get("name") or claims.get("sub") or "someone"


# --- live updates ----------------------------------------------------------

def _management_endpoint():
    # https://{api-id}.execute-api.{region}.amazonaws.com/{stage} on AWS.
    return os.environ["LIVE_ENDPOINT"]


def broadcast(message):
    api = boto3.client("apigatewaymanagementapi", endpoint_url=_management_endpoint())
    data = json.dumps(message).encode()
    for row in sql("SELECT id FROM connections"):
        try:
            api.post_to_connection(ConnectionId=row["id"], Data=data)
        except api.exceptions.GoneException:
            sql("DELETE FROM connections WHERE id = :id", id=row["id"])


def websocket(event):
    ctx = event["requestContext"]
    kind, cid = ctx["eventType"], ctx["connectionId"]
    if kind == "CONNECT":
        sql("INSERT INTO connections (id, created_at) VALUES (:id, :at)", id=cid, at=now())
    elif kind == "DISCONNECT":
        sql("DELETE FROM connections WHERE id = :id", id=cid)
    return {"statusCode": 200}


# --- tickets ---------------------------------------------------------------

def now():
    return int(time.time() * 1000)


def page_token(row):
    return base64.urlsafe_b64encode(f"{row['created_at']}:{row['id']}".encode()).decode().rstrip("=")


def read_token(token):
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        at, tid = raw.split(":", 1)
        return int(at), tid
    except (ValueError, UnicodeDecodeError):
        raise Invalid("next: not a token this API gave")


def list_tickets(query):
    try:
        limit = int(query.get("limit", "10"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 50:
        raise Invalid("limit: a number from 1 to 50")
    where, params = ["1 = 1"], {"limit": limit + 1}
    if query.get("q"):
        where.append("(LOWER(title) LIKE :q OR LOWER(body) LIKE :q)")
        params["q"] = f"%{query['q'].lower()}%"
    if query.get("status"):
        if query["status"] not in ("open", "closed"):
            raise Invalid("status: open or closed")
        where.append("status = :status")
        params["status"] = query["status"]
    if query.get("next"):
        at, tid = read_token(query["next"])
        where.append("(created_at < :at OR (created_at = :at AND id < :tid))")
        params.update(at=at, tid=tid)
    rows = sql(
        "SELECT id, title, status, author, created_at FROM tickets WHERE "
        + " AND ".join(where)
        + " ORDER BY created_at DESC, id DESC LIMIT :limit",
        **params,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return answer(200, {"items": rows, "next": page_token(rows[-1]) if more and rows else None})


def get_ticket(tid):
    rows = sql("SELECT id, title, body, status, author, created_at FROM tickets WHERE id = :id", id=tid)
    if not rows:
        return error(404, "Not Found")
    ticket = rows[0]
    ticket["replies"] = sql(
        "SELECT id, body, author, created_at FROM replies WHERE ticket_id = :id ORDER BY created_at, id", id=tid
    )
    ticket["attachments"] = [
        {
            "id": a["id"],
            "name": a["name"],
            "contentType": a["content_type"],
            "url": s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": a["s3_key"]}, ExpiresIn=900),
        }
        for a in sql(
            "SELECT id, name, s3_key, content_type FROM attachments WHERE ticket_id = :id ORDER BY created_at, id",
            id=tid,
        )
    ]
    return answer(200, ticket)


def create_ticket(event):
    data = body_of(event)
    ticket = {
        "id": "t-" + uuid.uuid4().hex[:12],
        "title": text(data, "title", 3, 120),
        "body": text(data, "body", 1, 5000),
        "status": "open",
        "author": user_of(event),
        "created_at": now(),
    }
    sql(
        "INSERT INTO tickets (id, title, body, status, author, created_at) VALUES (:id, :title, :body, :status, :author, :created_at)",
        **ticket,
    )
    broadcast({"type": "ticket", "ticket": ticket})
    return answer(201, ticket)


def exists(tid):
    return bool(sql("SELECT id FROM tickets WHERE id = :id", id=tid))


def reply(event, tid):
    if not exists(tid):
        return error(404, "Not Found")
    data = body_of(event)
    row = {"id": "r-" + uuid.uuid4().hex[:12], "ticket_id": tid, "body": text(data, "body", 1, 5000),
           "author": user_of(event), "created_at": now()}
    sql("INSERT INTO replies (id, ticket_id, body, author, created_at) VALUES (:id, :ticket_id, :body, :author, :created_at)", **row)
    broadcast({"type": "reply", "ticketId": tid, "reply": row})
    return answer(201, row)


def attach(event, tid):
    if not exists(tid):
        return error(404, "Not Found")
    data = body_of(event)
    name = text(data, "name", 1, 200)
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
    content_type = data.get("contentType") or "application/octet-stream"
    size = data.get("size")
    if not isinstance(size, int) or not 0 < size <= MAX_ATTACHMENT:
        raise Invalid(f"size: 1 to {MAX_ATTACHMENT} bytes")
    aid = "a-" + uuid.uuid4().hex[:12]
    key = f"tickets/{tid}/{aid}/{name}"
    sql(
        "INSERT INTO attachments (id, ticket_id, name, s3_key, content_type, created_at) VALUES (:id, :tid, :name, :key, :ct, :at)",
        id=aid, tid=tid, name=name, key=key, ct=content_type, at=now(),
    )
    url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": BUCKET, "Key": key, "ContentType": content_type}, ExpiresIn=300
    )
    broadcast({"type": "attachment", "ticketId": tid, "attachment": {"id": aid, "name": name}})
    return answer(201, {"id": aid, "name": name, "uploadUrl": url, "contentType": content_type})


def handler(event, context):
    ctx = event["requestContext"]
    if "eventType" in ctx:  # the WebSocket API
        return websocket(event)
    route = event["routeKey"]
    tid = (event.get("pathParameters") or {}).get("id")
    try:
        if route == "GET /tickets":
            return list_tickets(event.get("queryStringParameters") or {})
        if route == "GET /tickets/{id}":
            return get_ticket(tid)
        if route == "POST /tickets":
            return create_ticket(event)
        if route == "POST /tickets/{id}/replies":
            return reply(event, tid)
        if route == "POST /tickets/{id}/attachments":
            return attach(event, tid)
    except Invalid as e:
        return error(400, str(e))
    return error(404, "Not Found")
