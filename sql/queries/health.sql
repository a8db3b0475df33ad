-- name: migrations
SELECT version, checksum FROM schema_migrations ORDER BY version;

-- name: probe_write!
INSERT INTO cache_entries (namespace, key, value, expires_at, created_at, updated_at)
VALUES ('sys:health', 'write-probe', :value, NULL, :now, :now)
ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at;
