-- The cache (reynard/cache.py). A row is live while expires_at IS NULL OR expires_at > :now;
-- every read filters on that, so an expired row is absent even before the purge job runs.
-- Prefix ranges are key >= :lo AND key < :hi on the primary key; :hi is an empty BLOB when the
-- range has no upper end (every TEXT value sorts before every BLOB).
-- RETURNING says "was live" as coalesce(expires_at > :now, 1): SQLite 3.40 returns NULL for
-- `expires_at IS NULL OR ...` in a DELETE's RETURNING clause when expires_at is NULL.

-- name: get^
SELECT value, expires_at FROM cache_entries
WHERE namespace = :namespace AND key = :key AND (expires_at IS NULL OR expires_at > :now);

-- The same row whatever its expiry, for reads reused while the database is unchanged
-- (reynard/readcache.py); the caller treats an expired row as absent.
-- name: get_any^
SELECT value, expires_at FROM cache_entries WHERE namespace = :namespace AND key = :key;

-- The live row's expiry, without reading its value; a row holding NULL for "no ttl".
-- name: live^
SELECT expires_at FROM cache_entries
WHERE namespace = :namespace AND key = :key AND (expires_at IS NULL OR expires_at > :now);

-- Write a value. An expired row being replaced counts as new, so it gets a new created_at;
-- returns whether the key is new to the quota (inserted, or replacing an expired row).
-- name: put$
INSERT INTO cache_entries (namespace, key, expires_at, user_id, created_at, updated_at, value)
VALUES (:namespace, :key, :expires_at, :user_id, :now, :now, :value)
ON CONFLICT (namespace, key) DO UPDATE SET
    value = excluded.value,
    expires_at = excluded.expires_at,
    created_at = CASE WHEN expires_at IS NOT NULL AND expires_at <= :now
                      THEN excluded.created_at ELSE created_at END,
    updated_at = excluded.updated_at
RETURNING created_at = :now;

-- Live keys of one user, from the (user_id, expires_at) index alone.
-- name: count_live$
SELECT count(*) FROM cache_entries
WHERE user_id = :user_id AND (expires_at IS NULL OR expires_at > :now);

-- Deletes the row even when expired; returns 1 if it was live, 0 if expired, no row if absent.
-- name: delete$
DELETE FROM cache_entries WHERE namespace = :namespace AND key = :key
RETURNING coalesce(expires_at > :now, 1);

-- name: expire$
UPDATE cache_entries SET expires_at = :expires_at, updated_at = :now
WHERE namespace = :namespace AND key = :key AND (expires_at IS NULL OR expires_at > :now)
RETURNING 1;

-- name: list
SELECT key, expires_at FROM cache_entries
WHERE namespace = :namespace AND key >= :lo AND key < :hi
  AND (expires_at IS NULL OR expires_at > :now)
ORDER BY key
LIMIT :limit;

-- Removes every row in the range, expired ones too; one result row per row, 1 when it was live.
-- name: delete_range<!
DELETE FROM cache_entries WHERE namespace = :namespace AND key >= :lo AND key < :hi
RETURNING coalesce(expires_at > :now, 1);

-- One bounded batch of expired rows (any namespace), chosen through the expiry index.
-- name: purge_batch!
DELETE FROM cache_entries WHERE (namespace, key) IN (
    SELECT namespace, key FROM cache_entries WHERE expires_at <= :now LIMIT :batch
);
