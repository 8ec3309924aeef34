"""Notices for the public REST API (payload 1.0, stage prod, API key).

This one talks to the database with a driver, as many functions do: the
standard library's sqlite3 for SQLite, psycopg for PostgreSQL, chosen by
the URL Stratus gives (STRATUS_DB_MAIN_URL: a file path, or postgres://).
A connection is opened once per environment and reused while it is warm.
"""

import json
import os

URL = os.environ["STRATUS_DB_MAIN_URL"]
_conn = None


def connect():
    global _conn
    if _conn is None:
        if URL.startswith(("postgres://", "postgresql://")):
            import psycopg

            _conn = psycopg.connect(URL, autocommit=True)
        else:
            import sqlite3

            _conn = sqlite3.connect(URL, timeout=5, isolation_level=None)
    return _conn


def query(statement, params=()):
    """Rows as dicts; `?` placeholders (psycopg's are %s)."""
    conn = connect()
    if URL.startswith(("postgres://", "postgresql://")):
        statement = statement.replace("?", "%s")
    cur = conn.execute(statement, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def answer(status, body):
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


def handler(event, context):
    params = event.get("queryStringParameters") or {}
    nid = (event.get("pathParameters") or {}).get("id")
    if event["resource"] == "/notices/{id}":
        rows = query("SELECT id, title, body, created_at FROM notices WHERE id = ?", (nid,))
        return answer(200, rows[0]) if rows else answer(404, {"message": "Not Found"})
    try:
        page = int(params.get("page", "1"))
        per_page = int(params.get("per_page", "10"))
    except ValueError:
        page = per_page = 0
    if page < 1 or not 1 <= per_page <= 50:
        return answer(400, {"message": "page: 1 or more; per_page: 1 to 50"})
    where, args = "", []
    if params.get("q"):
        where = "WHERE LOWER(title) LIKE ? OR LOWER(body) LIKE ?"
        args = [f"%{params['q'].lower()}%"] * 2
    total = query(f"SELECT COUNT(*) AS n FROM notices {where}", args)[0]["n"]
    rows = query(
        f"SELECT id, title, body, created_at FROM notices {where} ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
        args + [per_page, (page - 1) * per_page],
    )
    return answer(200, {"items": rows, "page": page, "perPage": per_page, "total": total})
