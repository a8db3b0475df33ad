-- Counts for /metrics, /api/stats and metric snapshots. Each is cheap: an index or a small range.

-- name: users$
SELECT count(*) FROM users;

-- Not revoked and not past the absolute expiry (idle timeout is checked per request, not here).
-- name: active_sessions$
SELECT count(*) FROM sessions WHERE expires_at > :now AND revoked_at IS NULL;

-- Entries in the users' keyspaces ('u:<id>'; the server's own 'sys:' keys are not counted),
-- minus those already expired but not yet purged: a primary-key range, then a walk of the
-- expiry index (substr() keeps the planner on that index, which also holds the namespace).
-- name: cache_entries$
SELECT
    (SELECT count(*) FROM cache_entries WHERE namespace >= 'u:' AND namespace < 'u;')
  - (SELECT count(*) FROM cache_entries
      WHERE expires_at <= :now AND substr(namespace, 1, 2) = 'u:');

-- name: tasks_by_status
SELECT status, count(*) AS n FROM background_tasks GROUP BY status;

-- name: pages^
SELECT
    (SELECT page_count FROM pragma_page_count()) AS page_count,
    (SELECT freelist_count FROM pragma_freelist_count()) AS freelist_count,
    (SELECT page_size FROM pragma_page_size()) AS page_size;
