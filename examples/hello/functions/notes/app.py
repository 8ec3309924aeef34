"""Notes kept in the project's database, with Python's own sqlite3.

Stratus gives the function the database's file as STRATUS_DB_NOTES_URL
(and its Data API ARN as STRATUS_DB_NOTES_ARN, for boto3's rds-data).
"""
import json
import os
import sqlite3


def handler(event, context):
    db = sqlite3.connect(os.environ["STRATUS_DB_NOTES_URL"])
    try:
        if event["requestContext"]["http"]["method"] == "POST":
            text = (event.get("body") or "").strip()
            if not text:
                return {"statusCode": 400, "body": json.dumps({"message": "send the note as the body"})}
            db.execute("INSERT INTO notes (text) VALUES (?)", (text,))
            db.commit()
        rows = db.execute("SELECT id, text, created FROM notes ORDER BY id").fetchall()
        notes = [{"id": i, "text": t, "created": c} for i, t, c in rows]
        return {
            "statusCode": 200,
            "headers": {"content-type": "application/json"},
            "body": json.dumps({"notes": notes}),
        }
    finally:
        db.close()
