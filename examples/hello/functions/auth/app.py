"""A Lambda TOKEN authorizer, exactly as on AWS.

`Authorization: Bearer let-me-in` is allowed (as user "demo"); anything
else is told `Unauthorized` (401). The answer is cached for the token
(ttl in stratus.toml), so the policy allows every route of the stage.
"""


def handler(event, context):
    token = event.get("authorizationToken", "")
    if token != "Bearer let-me-in":
        raise Exception("Unauthorized")
    # methodArn: arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/METHOD/PATH
    stage_arn = "/".join(event["methodArn"].split("/")[:2])
    return {
        "principalId": "demo",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": stage_arn + "/*"}
            ],
        },
        # Reaches the route's function as requestContext.authorizer.
        "context": {"user": "demo", "plan": "basic"},
    }
