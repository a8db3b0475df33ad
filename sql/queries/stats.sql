-- Counts for /metrics, /api/stats and metric snapshots. Each is cheap: an index or a small range.

-- name: users$
SELECT count(*) FROM users;

-- Not revoked and not past the absolute expiry (idle timeout is checked per request, not here).
-- Counted as "unexpired" (a covering walk of sessions_expires) minus "unexpired but revoked" (the
-- small partial index sessions_revoked; unary + keeps the planner on it): ~8x cheaper than
-- checking revoked_at row by row on a large table.
-- name: active_sessions$
SELECT
    (SELECT count(*) FROM sessions WHERE expires_at > :now)
  - (SELECT count(*) FROM sessions WHERE revoked_at IS NOT NULL AND +expires_at > :now);

-- Entries in the users' keyspaces (rows with a user_id, namespace 'u:<id>'; the server's own
-- 'sys:' keys are not counted), minus those expired but not yet purged. Both are covering index
-- walks (cache_entries_user, cache_entries_expires, which also holds the namespace; substr()
-- keeps the planner on it), never a read of the values.
-- name: cache_entries$
SELECT
    (SELECT count(*) FROM cache_entries WHERE user_id IS NOT NULL)
  - (SELECT count(*) FROM cache_entries
      WHERE expires_at <= :now AND substr(namespace, 1, 2) = 'u:');

-- name: tasks_by_status
SELECT status, count(*) AS n FROM background_tasks GROUP BY status;

-- name: pages^
SELECT
    (SELECT page_count FROM pragma_page_count()) AS page_count,
    (SELECT freelist_count FROM pragma_freelist_count()) AS freelist_count,
    (SELECT page_size FROM pragma_page_size()) AS page_size;
