# Metrics and stats: /metrics (no auth, Prometheus text 0.0.4), /api/stats and /api/metrics (admin).
# Sourced by scripts/smoke.sh (helpers req, expect, field, is; BASE, WORK).

req GET /metrics; expect 200 "metrics exposition"
M_TYPE=$(curl -s -o /dev/null -w '%{content_type}' "$BASE/metrics")
[ "$M_TYPE" = "text/plain; version=0.0.4; charset=utf-8" ] || fail "metrics content type: $M_TYPE"
grep -q '^reynard_http_requests_total{route="/api/health/live",method="GET",status="200"} ' \
  "$WORK/body" || fail "metrics: no request counter for /api/health/live"
grep -q '^reynard_http_request_duration_seconds_bucket{route="unmatched",method="GET",le="+Inf"} ' \
  "$WORK/body" || fail "metrics: unmatched paths are not counted under one label"
if command -v promtool >/dev/null 2>&1; then
  promtool check metrics <"$WORK/body" || fail "promtool check metrics"
  echo "ok  promtool check metrics"
fi

req GET /api/stats;   expect 401 "stats without a token"; is code not_authenticated
req GET /api/metrics; expect 401 "metric samples without a token"

M_TOKEN=$(admin_token smokemetrics "smoke-smokemetrics-password")

req GET /api/stats "" "$M_TOKEN"; expect 200 "stats"; is tasks.dead 0
[ "$(field users)" -ge 1 ] || fail "stats: users is $(field users)"
req GET "/api/metrics?name=users&limit=5" "" "$M_TOKEN"; expect 200 "metric samples"
req GET "/api/metrics?since=yesterday" "" "$M_TOKEN"; expect 422 "metric samples, bad since"
is errors.0.field since
