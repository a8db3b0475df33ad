-- Failed-login counters per lower-cased username, kept in cache_entries (namespace 'sys:login').
-- value is the failure count as text; expires_at ends the window that began with the first one.

-- name: failures^
SELECT CAST(value AS INTEGER) AS failures, expires_at FROM cache_entries
WHERE namespace = 'sys:login' AND key = :key AND expires_at > :now;

-- name: record_failure$
INSERT INTO cache_entries (namespace, key, value, expires_at, created_at, updated_at)
VALUES ('sys:login', :key, '1', :now + :window, :now, :now)
ON CONFLICT (namespace, key) DO UPDATE SET
    value = CASE WHEN expires_at IS NULL OR expires_at <= :now THEN '1'
                 ELSE CAST(CAST(value AS INTEGER) + 1 AS TEXT) END,
    expires_at = CASE WHEN expires_at IS NULL OR expires_at <= :now THEN :now + :window
                      ELSE expires_at END,
    updated_at = :now
RETURNING CAST(value AS INTEGER);

-- name: clear!
DELETE FROM cache_entries WHERE namespace = 'sys:login' AND key = :key;
