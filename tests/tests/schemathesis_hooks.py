"""Schemathesis hooks for tests/tests/schemathesis.rs (loaded through SCHEMATHESIS_HOOKS).

Schemathesis may call every operation, destructive ones included: the server is thrown away after
the run. What it must not do is end the admin session it runs with, or nothing after that would
reach past the 401. So:

- every request carries the admin token (an auth provider, so the auth checks can still drop it);
- POST /api/t3000/auth/logout runs with a throwaway API token issued just for that call;
- DELETE /api/t3000/tokens/{id} never names the admin session, and PUT / DELETE
  /api/t3000/users/{id} never name the admin user (disabling, demoting, deleting it or changing its
  password would end the session): such a call is sent with an id no record has instead.

The test passes the server's address, the token and the ids in T3000_ST_* variables.
"""

import json
import os
import urllib.request

import schemathesis

BASE = os.environ["T3000_ST_BASE"]
TOKEN = os.environ["T3000_ST_TOKEN"]
TOKEN_ID = os.environ["T3000_ST_TOKEN_ID"]
ADMIN_ID = os.environ["T3000_ST_ADMIN_ID"]
# An id no record has (the largest i64).
NO_SUCH_ID = 9223372036854775807

PROTECTED = {
    ("DELETE", "/api/t3000/tokens/{id}"): TOKEN_ID,
    ("PUT", "/api/t3000/users/{id}"): ADMIN_ID,
    ("DELETE", "/api/t3000/users/{id}"): ADMIN_ID,
}


def throwaway_token():
    """A new API token of the admin, for one logout."""
    request = urllib.request.Request(
        BASE + "/api/t3000/tokens",
        data=json.dumps({"name": "schemathesis-logout"}).encode(),
        headers={"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.load(reply)["token"]


@schemathesis.auth()
class AdminToken:
    def get(self, case, ctx):
        return TOKEN

    def set(self, case, data, ctx):
        token = data
        if case.method.upper() == "POST" and case.operation.path == "/api/t3000/auth/logout":
            token = throwaway_token()
        case.headers = case.headers or {}
        case.headers["Authorization"] = "Bearer " + token


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    protected = PROTECTED.get((case.method.upper(), case.operation.path))
    params = case.path_parameters
    if protected is not None and params and str(params.get("id")) == protected:
        params["id"] = NO_SUCH_ID
