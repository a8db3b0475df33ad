# Cache: set -> get -> incr -> expire -> list -> delete, as one signed-in user.
# Sourced by scripts/smoke.sh (helpers req, expect, field, is; BASE, WORK).

req POST /api/auth/register '{"username":"smokecache","email":"smokecache@example.com","password":"smoke cache password"}'
expect 201 "cache: register a user"
req POST /api/auth/login '{"username":"smokecache","password":"smoke cache password"}'
expect 200 "cache: login"
C_TOKEN=$(field access_token)

req GET /api/cache/greeting;   expect 401 "cache: get without a token"; is code not_authenticated
req PUT /api/cache/greeting '{"value":{"text":"héllo","n":[1,2]},"ttl":120}' "$C_TOKEN"
expect 200 "cache: put with ttl"; is ttl 120; is value.text héllo
req GET /api/cache/greeting "" "$C_TOKEN"
expect 200 "cache: get"; is value.n.1 2
[ "$(field ttl)" -ge 119 ] || fail "cache: ttl is $(field ttl)"
req PUT /api/cache/greeting '{"value":1,"nx":true}' "$C_TOKEN"
expect 409 "cache: nx on a present key"; is code key_exists

req POST /api/cache/hits/incr "" "$C_TOKEN";          expect 200 "cache: incr a new key"; is value 1
req POST /api/cache/hits/incr '{"by":41}' "$C_TOKEN"; expect 200 "cache: incr by 41"; is value 42
req POST /api/cache/greeting/incr "" "$C_TOKEN"
expect 409 "cache: incr a non-integer"; is code not_an_integer

req POST /api/cache/hits/expire '{"ttl":60}' "$C_TOKEN"; expect 200 "cache: expire"; is ttl 60
req POST /api/cache/hits/expire '{"ttl":null}' "$C_TOKEN"
expect 200 "cache: expire null keeps forever"; is expires_at null

req PUT /api/cache/dir%2Fa '{"value":"slash"}' "$C_TOKEN"; expect 200 "cache: key with %2F"
is key dir/a
req GET "/api/cache?prefix=dir/" "" "$C_TOKEN"; expect 200 "cache: list by prefix"
is items.0.key dir/a; is next null

req DELETE /api/cache/greeting "" "$C_TOKEN"; expect 204 "cache: delete"
req GET /api/cache/greeting "" "$C_TOKEN";    expect 404 "cache: get after delete"
req DELETE /api/cache "" "$C_TOKEN";          expect 422 "cache: prefix delete needs prefix="
req DELETE "/api/cache?prefix=" "" "$C_TOKEN"; expect 200 "cache: delete all"; is deleted 2
