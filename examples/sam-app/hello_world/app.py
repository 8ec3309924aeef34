import json
import os


def lambda_handler(event, context):
    """The greeting, on the REST API's Prod stage (/Prod/hello/)."""
    return {
        "statusCode": 200,
        "body": json.dumps({"message": os.environ["GREETING"] + " world"}),
    }
