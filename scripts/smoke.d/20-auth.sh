# Accounts: register -> login (JSON and form) -> me -> sessions -> refresh -> logout.
# Sourced by scripts/smoke.sh (req, expect, field, is, BASE, WORK are defined there).

req POST /api/auth/register '{"username":"smokey","email":"smokey@example.com","password":"smoke test password"}'
expect 201 "auth: register"; is username smokey; is is_admin false
req POST /api/auth/register '{"username":"SMOKEY","email":"x@example.com","password":"smoke test password"}'
expect 409 "auth: register same name, other case"; is code username_taken

req POST /api/auth/login '{"username":"smokey","password":"wrong password"}'
expect 401 "auth: wrong password"; is code invalid_credentials
req POST /api/auth/login '{"username":"SMOKEY@example.com","password":"smoke test password"}'
expect 200 "auth: login by email"; is token_type bearer
TOKEN=$(field access_token)

STATUS=$(curl -s -o "$WORK/body" -w '%{http_code}' -X POST "$BASE/api/auth/login" \
  --data-urlencode username=smokey --data-urlencode 'password=smoke test password')
BODY=$(cat "$WORK/body"); expect 200 "auth: login with a form body"

req GET /api/auth/me "" "$TOKEN";        expect 200 "auth: me"; is username smokey
req GET /api/auth/me;                     expect 401 "auth: me without a token"; is code not_authenticated
req GET /api/auth/sessions "" "$TOKEN";  expect 200 "auth: sessions"; is items.0.current true
req GET /api/users "" "$TOKEN";          expect 403 "auth: admin list as a user"; is code forbidden

req POST /api/auth/refresh "" "$TOKEN";  expect 200 "auth: refresh"
OLD=$TOKEN; TOKEN=$(field access_token)
req GET /api/auth/me "" "$OLD";          expect 401 "auth: old token after refresh"; is code invalid_token

req POST /api/auth/logout "" "$TOKEN";   expect 204 "auth: logout"
req GET /api/auth/me "" "$TOKEN";        expect 401 "auth: token after logout"
