"""The integration test a sam init project carries: the API's URL from the
stack's outputs. Against Stratus:

    AWS_ENDPOINT_URL=http://127.0.0.1:8081 AWS_SAM_STACK_NAME=sam-app \
        python -m pytest tests/integration
"""
import json
import os
import urllib.request

import boto3
import pytest


class TestApiGateway:
    @pytest.fixture()
    def api_gateway_url(self):
        stack_name = os.environ.get("AWS_SAM_STACK_NAME", "sam-app")
        client = boto3.client("cloudformation")
        outputs = client.describe_stacks(StackName=stack_name)["Stacks"][0]["Outputs"]
        api = [o for o in outputs if o["OutputKey"] == "HelloWorldApi"]
        assert api, f"no HelloWorldApi output in {outputs}"
        return api[0]["OutputValue"]

    def test_api_gateway(self, api_gateway_url):
        with urllib.request.urlopen(api_gateway_url) as response:
            assert response.status == 200
            assert json.loads(response.read()) == {"message": "hello world"}
