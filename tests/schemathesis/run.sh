#!/usr/bin/env bash
# Checks a live `sealog serve` against its own OpenAPI document
# (GET /v1/openapi.json) with schemathesis, once per token scope: none,
# query, write and admin (admin last: it may revoke tokens). Every response
# must be no 5xx and conform to the document (status, content type,
# headers, body schema). Prints the case counts; exits non-zero on any
# failure.
#
# Needs python3 with venv and curl. Schemathesis is pip-installed, pinned,
# into a venv that is reused (SEALOG_SCHEMATHESIS_VENV). The server is
# $SEALOG_BIN, else ${CARGO_TARGET_DIR:-target}/debug/sealog (built if
# missing). SCHEMATHESIS_MAX_EXAMPLES (default 100) bounds the cases per
# operation and phase; SCHEMATHESIS_SEED fixes the seed to reproduce a run.
set -euo pipefail
cd "$(dirname "$0")/../.."
hooks=$PWD/tests/schemathesis

version=4.32.5
venv=${SEALOG_SCHEMATHESIS_VENV:-$HOME/.cache/sealog-schemathesis-$version}
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-100}
started=$(date +%s)

if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q " $version\$"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi

bin=${SEALOG_BIN:-${CARGO_TARGET_DIR:-target}/debug/sealog}
[ -x "$bin" ] || cargo build --locked --bin sealog

tmp=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

data=$tmp/data
"$bin" --data "$data" serve --http 127.0.0.1:0 >"$tmp/server.out" 2>"$tmp/server.log" &
server=$!
for _ in $(seq 1 200); do
  [ -s "$data/server.json" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$tmp/server.log" >&2; echo "sealog serve exited" >&2; exit 1; }
  sleep 0.1
done
json() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
addr=$(json http <"$data/server.json")
base=http://$addr
admin=$(tr -d '[:space:]' <"$data/admin.token")

# A realm with a few records, and its tokens.
curl -fsS -H "Authorization: Bearer $admin" -H 'content-type: application/json' \
  -d '{"name":"fuzz"}' "$base/v1/admin/realms" >"$tmp/realm.json"
write=$(json write_token <"$tmp/realm.json")
query=$(json query_token <"$tmp/realm.json")
printf '%s\n' '{"time":"2026-11-22T06:00:00Z","app":"payments","msg":"card authorised"}' \
  '{"time":"2026-11-22T06:00:01Z","app":"search","msg":"index rebuilt"}' |
  curl -fsS -H "Authorization: Bearer $write" -H 'content-type: application/x-ndjson' \
    --data-binary @- "$base/v1/ingest" >/dev/null

# The tail never ends by itself, so schemathesis (which reads whole bodies)
# cannot take its 200; it is checked here instead and left out of the query
# scope's run (its refusals are still fuzzed with the other scopes).
tail_answer=$(curl -sS -N --max-time 2 -o /dev/null -w '%{http_code} %{content_type}' \
  -H "Authorization: Bearer $query" "$base/v1/tail?since_seq=0" 2>/dev/null || true)
case $tail_answer in
  "200 text/event-stream"*) ;;
  *) echo "GET /v1/tail with the query token answered: $tail_answer" >&2; exit 1 ;;
esac

# A log session with `tail` streams until it is idle for a minute, so
# schemathesis (which reuses ids from earlier responses) must not be handed
# one: GET /log-sessions/{id} is left out of the write and query scopes,
# whose tokens open sessions, and checked here; with no token and the admin
# token it only ever meets unknown ids (404), and is fuzzed there.
session=$(curl -fsS -H "Authorization: Bearer $query" -H 'content-type: application/json' \
  -d '{"app":"payments","space":"prod","lines":5,"tail":false}' "$base/log-sessions" | json id)
session_answer=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code} %{content_type}' \
  "$base/log-sessions/$session" 2>/dev/null || true)
case $session_answer in
  "200 text/plain"*) ;;
  *) echo "GET /log-sessions/{id} of a fresh session answered: $session_answer" >&2; exit 1 ;;
esac

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance
seed=()
[ -n "${SCHEMATHESIS_SEED:-}" ] && seed=(--seed "$SCHEMATHESIS_SEED")
summary=()
failed=0
for scope in none query write admin; do
  auth=()
  exclude=()
  case $scope in
    query) auth=(-H "Authorization: Bearer $query"); exclude=(--exclude-path /v1/tail --exclude-path '/log-sessions/{id}') ;;
    write) auth=(-H "Authorization: Bearer $write"); exclude=(--exclude-path '/log-sessions/{id}') ;;
    admin) auth=(-H "Authorization: Bearer $admin") ;;
  esac
  echo "== schemathesis $version, scope: $scope"
  set +e
  # From the temporary directory, where schemathesis keeps its cache.
  (cd "$tmp" && SCHEMATHESIS_HOOKS=hooks PYTHONPATH=$hooks \
    "$venv/bin/schemathesis" run "$base/v1/openapi.json" \
    --checks "$checks" --max-examples "$max_examples" --workers 1 --continue-on-failure \
    --request-timeout 10 --no-color --generation-database none "${seed[@]}" "${auth[@]}" "${exclude[@]}") 2>&1 | tee "$tmp/$scope.out"
  code=${PIPESTATUS[0]}
  set -e
  cases=$(grep -Eo '[0-9]+ generated' "$tmp/$scope.out" | tail -1 | grep -Eo '[0-9]+' || echo '?')
  summary+=("$scope: $cases cases, exit $code")
  [ "$code" -eq 0 ] || failed=1
done

if ! kill -0 "$server" 2>/dev/null; then
  echo "sealog serve died during the run" >&2
  failed=1
fi
if grep -q ' ERROR ' "$tmp/server.log"; then
  echo "server ERROR lines:" >&2
  grep ' ERROR ' "$tmp/server.log" | head -20 >&2
fi
echo "== schemathesis $version against $base ($(($(date +%s) - started)) s)"
printf '  %s\n' "${summary[@]}"
exit $failed
