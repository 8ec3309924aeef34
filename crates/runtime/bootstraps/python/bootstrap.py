"""Stratus's Python runtime: the Lambda Runtime API loop, standard library only.

Loads _HANDLER ("module.function") from LAMBDA_TASK_ROOT, then for each
event calls handler(event, context) and posts the result or the error.
"""

import http.client
import importlib
import json
import os
import sys
import time
import traceback

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
HANDLER = os.environ.get("_HANDLER", "")
TASK_ROOT = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())
PREFIX = "/2018-06-01/runtime"

_host, _port = API.rsplit(":", 1)
_conn = None


def _request(method, path, body=None, headers=None):
    """One request on a kept-alive connection; reconnects once if it broke."""
    global _conn
    for attempt in (0, 1):
        if _conn is None:
            _conn = http.client.HTTPConnection(_host, int(_port))
        try:
            _conn.request(method, PREFIX + path, body=body, headers=headers or {})
            resp = _conn.getresponse()
            return resp.status, resp.headers, resp.read()
        except (http.client.HTTPException, ConnectionError, OSError):
            _conn.close()
            _conn = None
            if attempt:
                raise


def _error_body(exc, tb=None):
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": "",
        "stackTrace": traceback.format_list(traceback.extract_tb(tb or exc.__traceback__)),
    }


def _post_json(path, value, error_type=None):
    headers = {"Content-Type": "application/json"}
    if error_type:
        headers["Lambda-Runtime-Function-Error-Type"] = error_type
    _request("POST", path, json.dumps(value).encode(), headers)


class Context:
    def __init__(self, request_id, deadline_ms, arn, client_context, identity):
        self.aws_request_id = request_id
        self.invoked_function_arn = arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.client_context = client_context
        self.identity = identity
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _load_handler():
    if TASK_ROOT not in sys.path:
        sys.path.insert(0, TASK_ROOT)
    module_name, _, fn_name = HANDLER.rpartition(".")
    if not module_name:
        raise _InitError("Runtime.MalformedHandlerName", f"Bad handler '{HANDLER}': not enough values to unpack (expected 2, got 1)")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as e:
        raise _InitError("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {e}")
    except SyntaxError as e:
        raise _InitError("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {e}")
    fn = getattr(module, fn_name, None)
    if fn is None:
        raise _InitError("Runtime.HandlerNotFound", f"Handler '{fn_name}' missing on module '{module_name}'")
    return fn


class _InitError(Exception):
    def __init__(self, error_type, message):
        super().__init__(message)
        self.error_type = error_type


def main():
    try:
        handler = _load_handler()
    except _InitError as e:
        print(f"[ERROR] {e.error_type}: {e}", file=sys.stderr, flush=True)
        _post_json("/init/error", {"errorMessage": str(e), "errorType": e.error_type, "stackTrace": []}, e.error_type)
        sys.exit(1)
    except Exception as e:  # the module raised while importing
        body = _error_body(e)
        body["errorType"] = "Runtime.Unknown" if not body["errorType"] else body["errorType"]
        print(f"[ERROR] {body['errorType']}: {e}", file=sys.stderr, flush=True)
        _post_json("/init/error", body, body["errorType"])
        sys.exit(1)

    while True:
        status, headers, body = _request("GET", "/invocation/next")
        request_id = headers.get("Lambda-Runtime-Aws-Request-Id")
        os.environ["_X_AMZN_TRACE_ID"] = headers.get("Lambda-Runtime-Trace-Id", "")
        client_context = headers.get("Lambda-Runtime-Client-Context")
        identity = headers.get("Lambda-Runtime-Cognito-Identity")
        context = Context(
            request_id,
            int(headers.get("Lambda-Runtime-Deadline-Ms", "0")),
            headers.get("Lambda-Runtime-Invoked-Function-Arn", ""),
            json.loads(client_context) if client_context else None,
            json.loads(identity) if identity else None,
        )
        try:
            event = json.loads(body) if body else None
            result = handler(event, context)
            payload = json.dumps(result).encode()
        except Exception as e:
            err = _error_body(e)
            err["requestId"] = request_id
            print(f"[ERROR] {err['errorType']}: {err['errorMessage']}\n" + "".join(traceback.format_exception(e)).rstrip(), file=sys.stderr, flush=True)
            _post_json(f"/invocation/{request_id}/error", err, err["errorType"])
            continue
        _request("POST", f"/invocation/{request_id}/response", payload, {"Content-Type": "application/json"})


if __name__ == "__main__":
    main()
