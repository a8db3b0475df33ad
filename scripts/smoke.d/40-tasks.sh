# Background tasks: enqueue -> the worker runs it; idempotency; cancel and retry conflicts.
# Sourced by scripts/smoke.sh (helpers req, expect, field, is; BASE, WORK).

T_TOKEN=$(admin_token smoketasks "smoke-smoketasks-password")

req GET /api/tasks;  expect 401 "tasks: list without a token"; is code not_authenticated
req POST /api/tasks '{"name":"no.such.job"}' "$T_TOKEN"
expect 422 "tasks: unknown name"; is errors.0.field name

req POST /api/tasks '{"name":"cache.purge","idempotency_key":"smoke-1"}' "$T_TOKEN"
expect 202 "tasks: enqueue"; is status pending; is attempts 0
T_ID=$(field id)
req POST /api/tasks '{"name":"cache.purge","idempotency_key":"smoke-1"}' "$T_TOKEN"
expect 200 "tasks: same idempotency key"; is id "$T_ID"
for _ in $(seq 1 50); do
  req GET "/api/tasks/$T_ID" "" "$T_TOKEN"
  [ "$(field status)" = succeeded ] && break
  sleep 0.1
done
expect 200 "tasks: get"; is status succeeded; is attempts 1
[ "$(field result.deleted)" -ge 0 ] || fail "tasks: result is $(field result)"

req POST /api/tasks '{"name":"tasks.prune","run_at":"2099-01-01T00:00:00Z","priority":-1}' "$T_TOKEN"
expect 202 "tasks: enqueue for later"; is run_at 2099-01-01T00:00:00.000Z
L_ID=$(field id)
req POST "/api/tasks/$L_ID/retry" "" "$T_TOKEN"; expect 409 "tasks: retry a pending task"
is code not_retryable
req POST "/api/tasks/$L_ID/cancel" "" "$T_TOKEN"; expect 200 "tasks: cancel"; is status cancelled
req POST "/api/tasks/$L_ID/cancel" "" "$T_TOKEN"; expect 409 "tasks: cancel twice"
is code not_pending

req GET "/api/tasks?status=cancelled&limit=1" "" "$T_TOKEN"
expect 200 "tasks: list by status"; is items.0.id "$L_ID"
req GET "/api/tasks?name=db.backup" "" "$T_TOKEN"
expect 200 "tasks: the periodic schedule is enqueued"
[ "$(field items.0.name)" = db.backup ] || fail "tasks: no db.backup in the schedule: $BODY"
req GET /api/health/ready; is checks.tasks:worker.0.status pass; echo "ok  200 tasks: worker check"
