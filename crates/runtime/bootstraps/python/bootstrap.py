"""Stratus's Python runtime: the Lambda Runtime API loop, standard library only.

Loads _HANDLER ("module.function") from LAMBDA_TASK_ROOT, then for each
event calls handler(event, context) and posts the result or the error.
"""

import importlib
import json
import os
import socket
import sys
import time
import traceback

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
HANDLER = os.environ.get("_HANDLER", "")
TASK_ROOT = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())
PREFIX = "/2018-06-01/runtime"

_host, _port = API.rsplit(":", 1)


class _RuntimeApi:
    """The Runtime API client: one keep-alive socket, each request sent in
    one piece. Written here rather than with http.client, whose response
    objects and email-module header parsing cost more than the rest of a
    warm call. The server is Stratus: answers always carry Content-Length.
    """

    def __init__(self):
        self._sock = None
        self._buf = bytearray()

    def _connect(self):
        s = socket.create_connection((_host, int(_port)))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock, self._buf = s, bytearray()

    def _read_until(self, n_or_marker):
        while True:
            if isinstance(n_or_marker, int):
                if len(self._buf) >= n_or_marker:
                    return n_or_marker
            else:
                i = self._buf.find(n_or_marker)
                if i >= 0:
                    return i
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("Runtime API connection closed")
            self._buf += chunk

    def exchange(self, requests, answers):
        """Sends every (method, path, body, headers) request in one write
        (HTTP/1.1 pipelining: a call's answer and the next `next` go out
        together, saving a round trip a call) and appends their answers
        to `answers` as they come."""
        if self._sock is None:
            self._connect()
        out = bytearray()
        for method, path, body, headers in requests:
            head = f"{method} {PREFIX}{path} HTTP/1.1\r\nHost: {API}\r\n"
            for k, v in (headers or {}).items():
                head += f"{k}: {v}\r\n"
            head += f"Content-Length: {len(body)}\r\n\r\n"
            out += head.encode("latin-1")
            out += body
        self._sock.sendall(out)
        for _ in requests:
            answers.append(self._read_response())
        return answers

    def _read_response(self):
        end = self._read_until(b"\r\n\r\n")
        lines = self._buf[:end].decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        length = int(hdrs.get("content-length", "0"))
        self._read_until(end + 4 + length)
        payload = bytes(self._buf[end + 4 : end + 4 + length])
        del self._buf[: end + 4 + length]
        return status, hdrs, payload


_api = _RuntimeApi()


def _exchange(requests):
    """Requests on the kept-alive connection. When it breaks (the server
    closes it after refusing an oversized answer, say), the requests not
    answered yet are sent again one by one on a new connection."""
    answers = []
    try:
        return _api.exchange(requests, answers)
    except OSError:
        if _api._sock is not None:
            _api._sock.close()
            _api._sock = None
    for r in requests[len(answers):]:
        try:
            _api.exchange([r], answers)
        except OSError:
            if r[0] == "GET":
                raise
            # An answer the server would not take; on to `next`.
            answers.append((0, {}, b""))
            if _api._sock is not None:
                _api._sock.close()
                _api._sock = None
    return answers


def _request(method, path, body=b"", headers=None):
    return _exchange([(method, path, body, headers)])[0]


def _answer_then_next(path, body, headers):
    """Posts a call's answer and asks for the next call, in one write."""
    return _exchange([("POST", path, body, headers), ("GET", "/invocation/next", b"", None)])[1]


def _error_body(exc, tb=None):
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": "",
        "stackTrace": traceback.format_list(traceback.extract_tb(tb or exc.__traceback__)),
    }


def _error_headers(error_type):
    headers = {"Content-Type": "application/json"}
    if error_type:
        headers["Lambda-Runtime-Function-Error-Type"] = error_type
    return headers


def _post_json(path, value, error_type=None):
    _request("POST", path, json.dumps(value).encode(), _error_headers(error_type))


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

    status, headers, body = _request("GET", "/invocation/next")
    while True:
        request_id = headers.get("lambda-runtime-aws-request-id")
        os.environ["_X_AMZN_TRACE_ID"] = headers.get("lambda-runtime-trace-id", "")
        client_context = headers.get("lambda-runtime-client-context")
        identity = headers.get("lambda-runtime-cognito-identity")
        context = Context(
            request_id,
            int(headers.get("lambda-runtime-deadline-ms", "0")),
            headers.get("lambda-runtime-invoked-function-arn", ""),
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
            status, headers, body = _answer_then_next(
                f"/invocation/{request_id}/error", json.dumps(err).encode(), _error_headers(err["errorType"])
            )
            continue
        status, headers, body = _answer_then_next(
            f"/invocation/{request_id}/response", payload, {"Content-Type": "application/json"}
        )


if __name__ == "__main__":
    main()
