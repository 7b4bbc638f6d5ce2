"""Schemathesis hooks for sealog (loaded through SCHEMATHESIS_HOOKS by run.sh).

NDJSON bodies (`application/x-ndjson`) have no built-in serializer: a
string is sent as it is; anything else generated for the body (negative
cases) is sent as one JSON value per line.
"""

import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    items = value if isinstance(value, list) else [value]
    return "".join(json.dumps(v) + "\n" for v in items).encode("utf-8")
