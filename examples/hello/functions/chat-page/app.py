"""Serves the chat's browser page (index.html beside this file)."""

import os

PAGE = open(os.path.join(os.path.dirname(__file__), "index.html"), encoding="utf-8").read()


def handler(event, context):
    return {"statusCode": 200, "headers": {"content-type": "text/html; charset=utf-8"}, "body": PAGE}
