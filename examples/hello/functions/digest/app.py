"""The example's digest: run every morning by a schedule, and on every
object uploaded to the `www` bucket (an S3 event notification). Written
as for AWS: the events are EventBridge's and S3's."""

import urllib.parse


def handler(event, context):
    if event.get("detail-type") == "Scheduled Event":
        print(f"digest: morning run at {event['time']} ({event['resources'][0]})")
        return {"ran": event["time"]}
    for record in event.get("Records", []):
        obj = record["s3"]["object"]
        key = urllib.parse.unquote_plus(obj["key"])
        print(f"digest: {record['eventName']} {record['s3']['bucket']['name']}/{key} ({obj.get('size', 0)} bytes)")
    return {"seen": len(event.get("Records", []))}
