"""Schemathesis hooks for tests/tests/schemathesis.rs (loaded through SCHEMATHESIS_HOOKS).

Schemathesis may call every operation, destructive ones included: the server is thrown away after
the run. What it must not do is end the admin session it runs with, or nothing after that would
reach past the 401. So:

- every request carries the admin token (an auth provider, so the auth checks can still drop it);
- POST /api/t3000/auth/logout runs with a throwaway API token issued just for that call;
- POST /api/t3000/auth/password runs as a throwaway user (a viewer created for it) whose current
  password the hooks know: a generated `current_password` string is replaced by it, so a request
  the document calls valid changes the password (204), and the new one is remembered;
- DELETE /api/t3000/tokens/{id} never names the admin session, and PUT / DELETE
  /api/t3000/users/{id} never name the admin user or the throwaway user (disabling, demoting,
  deleting it or changing its password would end the session): such a call is sent with an id no
  record has instead.

Two bodies are files in formats JSON Schema cannot describe, so the hooks register their media
types with bodies of that format (as Schemathesis itself does for PNG, JPEG and WebP): the Arrow
body of POST /api/t3000/samples gets the Arrow IPC streams of recent samples that the test wrote
(T3000_ST_ARROW, their paths), the SVG floor plan small SVG documents.

The test passes the server's address, the token and the ids in T3000_ST_* variables.
"""

import json
import os
import secrets
import urllib.request

import schemathesis
from hypothesis import strategies as st

BASE = os.environ["T3000_ST_BASE"]
TOKEN = os.environ["T3000_ST_TOKEN"]
TOKEN_ID = os.environ["T3000_ST_TOKEN_ID"]
ADMIN_ID = os.environ["T3000_ST_ADMIN_ID"]
ARROW = "application/vnd.apache.arrow.stream"
ARROW_STREAMS = []
for path in os.environ["T3000_ST_ARROW"].split(os.pathsep):
    with open(path, "rb") as f:
        ARROW_STREAMS.append(f.read())
schemathesis.openapi.media_type(ARROW, st.sampled_from(ARROW_STREAMS))
SVGS = [
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
    b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 4 3"></svg>',
]
schemathesis.openapi.media_type("image/svg+xml", st.sampled_from(SVGS))

# An id no record has (the largest i64).
NO_SUCH_ID = 9223372036854775807

# Ids that the operation must not name.
PROTECTED = {
    ("DELETE", "/api/t3000/tokens/{id}"): {TOKEN_ID},
    ("PUT", "/api/t3000/users/{id}"): {ADMIN_ID},
    ("DELETE", "/api/t3000/users/{id}"): {ADMIN_ID},
}


LOGOUT = ("POST", "/api/t3000/auth/logout")
PASSWORD = ("POST", "/api/t3000/auth/password")


def call(path, body, token=TOKEN):
    """POSTs `body` as JSON; the answer's JSON."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    request = urllib.request.Request(BASE + path, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.load(reply)


def throwaway_token():
    """A new API token of the admin, for one logout."""
    return call("/api/t3000/tokens", {"name": "schemathesis-logout"})["token"]


# The user POST /api/t3000/auth/password runs as: its session token, id and current password.
THROWAWAY = {}


def throwaway_user():
    if not THROWAWAY:
        name = "schemathesis-" + secrets.token_hex(4)
        password = "pw-" + secrets.token_hex(8)
        user = call("/api/t3000/users", {"username": name, "password": password, "role": "viewer"})
        login = call("/api/t3000/auth/login", {"username": name, "password": password}, token=None)
        THROWAWAY.update(token=login["token"], id=str(user["id"]), password=password)
        for method_path in [("PUT", "/api/t3000/users/{id}"), ("DELETE", "/api/t3000/users/{id}")]:
            PROTECTED[method_path] = PROTECTED[method_path] | {THROWAWAY["id"]}
    return THROWAWAY


@schemathesis.auth()
class AdminToken:
    def get(self, case, ctx):
        return TOKEN

    def set(self, case, data, ctx):
        token = data
        operation = (case.method.upper(), case.operation.path)
        if operation == LOGOUT:
            token = throwaway_token()
        elif operation == PASSWORD:
            token = throwaway_user()["token"]
        case.headers = case.headers or {}
        case.headers["Authorization"] = "Bearer " + token


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    operation = (case.method.upper(), case.operation.path)
    protected = PROTECTED.get(operation, set())
    params = case.path_parameters
    if params and str(params.get("id")) in protected:
        params["id"] = NO_SUCH_ID
    if operation == PASSWORD and isinstance(case.body, dict) and isinstance(case.body.get("current_password"), str):
        case.body["current_password"] = throwaway_user()["password"]


@schemathesis.hook
def after_call(ctx, case, response):
    operation = (case.method.upper(), case.operation.path)
    if operation == PASSWORD and response.status_code == 204:
        THROWAWAY["password"] = case.body["new_password"]
