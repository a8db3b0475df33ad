-- Background tasks: enqueue, claim under a lease, finish, and the admin views.
-- The claim and due queries name their partial index: without ANALYZE figures the planner
-- prefers background_tasks_status and sorts every waiting task in a temp b-tree.

-- name: insert<!
INSERT INTO background_tasks
    (name, payload, priority, max_attempts, run_at, idempotency_key, created_at, updated_at)
VALUES (:name, :payload, :priority, :max_attempts, :run_at, :idempotency_key, :now, :now)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING *;

-- name: get^
SELECT * FROM background_tasks WHERE id = :id;

-- name: get_by_key^
SELECT * FROM background_tasks WHERE idempotency_key = :idempotency_key;

-- name: list_all
SELECT * FROM background_tasks
WHERE id < :after
ORDER BY id DESC LIMIT :limit;

-- name: list_by_status
SELECT * FROM background_tasks INDEXED BY background_tasks_status
WHERE status = :status AND id < :after
ORDER BY id DESC LIMIT :limit;

-- name: list_by_name
SELECT * FROM background_tasks INDEXED BY background_tasks_name
WHERE name = :name AND id < :after
ORDER BY id DESC LIMIT :limit;

-- name: list_by_status_name
SELECT * FROM background_tasks INDEXED BY background_tasks_name
WHERE name = :name AND status = :status AND id < :after
ORDER BY id DESC LIMIT :limit;

-- name: due_exists$
SELECT EXISTS (
    SELECT 1 FROM background_tasks INDEXED BY background_tasks_due
    WHERE status IN ('pending', 'failed') AND run_at <= :now
) OR EXISTS (
    SELECT 1 FROM background_tasks INDEXED BY background_tasks_lease
    WHERE status = 'running' AND lease_until < :now
);

-- name: oldest_due$
SELECT min(run_at) FROM background_tasks INDEXED BY background_tasks_due
WHERE status IN ('pending', 'failed') AND run_at <= :now;

-- A crashed worker's task whose attempts are spent is dead, not claimed again (a poison pill
-- that kills the process must not loop forever).
-- name: bury_expired!
UPDATE background_tasks
SET status = 'dead', finished_at = :now, lease_until = NULL, updated_at = :now,
    last_error = 'LeaseExpired: the worker running it stopped answering (' || worker || ')'
WHERE id IN (
    SELECT id FROM background_tasks INDEXED BY background_tasks_lease
    WHERE status = 'running' AND lease_until < :now
) AND attempts >= max_attempts;

-- name: claim_expired<!
UPDATE background_tasks
SET attempts = attempts + 1, started_at = :now, lease_until = :lease_until, worker = :worker,
    updated_at = :now
WHERE id IN (
    SELECT id FROM background_tasks INDEXED BY background_tasks_lease
    WHERE status = 'running' AND lease_until < :now
    ORDER BY lease_until LIMIT :n
)
RETURNING *;

-- name: claim_due<!
UPDATE background_tasks
SET status = 'running', attempts = attempts + 1, started_at = :now, lease_until = :lease_until,
    worker = :worker, updated_at = :now
WHERE id IN (
    SELECT id FROM background_tasks INDEXED BY background_tasks_claim
    WHERE status IN ('pending', 'failed') AND run_at <= :now
    ORDER BY priority DESC, run_at, id LIMIT :n
)
RETURNING *;

-- name: extend_leases!
UPDATE background_tasks SET lease_until = :lease_until
WHERE status = 'running' AND worker = :worker;

-- name: succeed!
UPDATE background_tasks
SET status = 'succeeded', result = :result, finished_at = :now, lease_until = NULL,
    updated_at = :now
WHERE id = :id AND status = 'running' AND worker = :worker;

-- name: fail$
UPDATE background_tasks
SET status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'failed' END,
    run_at = CASE WHEN attempts >= max_attempts THEN run_at ELSE :retry_at END,
    finished_at = CASE WHEN attempts >= max_attempts THEN :now END,
    last_error = :error, lease_until = NULL, updated_at = :now
WHERE id = :id AND status = 'running' AND worker = :worker
RETURNING status;

-- Shutdown: the attempt did not happen as far as the task's budget is concerned.
-- name: release!
UPDATE background_tasks
SET status = 'pending', attempts = attempts - 1, lease_until = NULL, updated_at = :now
WHERE id = :id AND status = 'running' AND worker = :worker;

-- name: cancel^
UPDATE background_tasks
SET status = 'cancelled', finished_at = :now, updated_at = :now
WHERE id = :id AND status = 'pending'
RETURNING *;

-- name: retry^
UPDATE background_tasks
SET status = 'pending', attempts = 0, run_at = :now, started_at = NULL, finished_at = NULL,
    lease_until = NULL, result = NULL, updated_at = :now
WHERE id = :id AND status IN ('failed', 'dead')
RETURNING *;

-- name: prune_finished!
DELETE FROM background_tasks
WHERE id IN (
    SELECT id FROM background_tasks INDEXED BY background_tasks_finished
    WHERE finished_at < :before AND status IN ('succeeded', 'dead', 'cancelled')
    ORDER BY finished_at LIMIT :batch
);

