-- Stored metric samples (system_metrics): written by the metrics.snapshot task, read by
-- GET /api/metrics, trimmed by metrics.prune.

-- name: insert_many*!
INSERT INTO system_metrics (name, value, labels, recorded_at)
VALUES (:name, :value, :labels, :recorded_at);

-- Newest first; keyset paging on (recorded_at, id) below the cursor (:before_at, :before_id).
-- name: list_by_name
SELECT id, name, value, labels, recorded_at FROM system_metrics
WHERE name = :name
  AND recorded_at >= :since AND recorded_at < :until
  AND (recorded_at < :before_at OR (recorded_at = :before_at AND id < :before_id))
ORDER BY recorded_at DESC, id DESC
LIMIT :limit;

-- name: list_all
SELECT id, name, value, labels, recorded_at FROM system_metrics
WHERE recorded_at >= :since AND recorded_at < :until
  AND (recorded_at < :before_at OR (recorded_at = :before_at AND id < :before_id))
ORDER BY recorded_at DESC, id DESC
LIMIT :limit;

-- One bounded batch of old rows, so a large backlog never holds the writer for long.
-- name: prune_batch!
DELETE FROM system_metrics
WHERE id IN (SELECT id FROM system_metrics WHERE recorded_at < :cutoff LIMIT :batch);
