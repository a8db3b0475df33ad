-- Sessions. Only the SHA-256 of a token is stored; a session is live while it is not revoked,
-- not past expires_at, and seen within the idle timeout, and its user is active.

-- The token check: one indexed read (token_hash is UNIQUE) joined to the user by primary key.
-- It has no clock in it, so its result can be reused while the database is unchanged
-- (reynard/readcache.py); the caller checks expires_at and the idle timeout against now.
-- name: authenticate^
SELECT s.id AS session_id, s.last_seen_at, s.expires_at,
       u.id, u.username, u.email, u.full_name, u.is_active, u.is_admin,
       u.created_at, u.updated_at, u.last_login_at
FROM sessions AS s JOIN users AS u ON u.id = s.user_id
WHERE s.token_hash = :token_hash
  AND s.revoked_at IS NULL
  AND u.is_active = 1;

-- name: insert$
INSERT INTO sessions (user_id, token_hash, created_at, last_seen_at, expires_at, user_agent, ip)
VALUES (:user_id, :token_hash, :now, :now, :expires_at, :user_agent, :ip)
RETURNING id;

-- name: touch!
UPDATE sessions SET last_seen_at = :now WHERE id = :id AND last_seen_at < :now;

-- name: live_for_user
SELECT id, created_at, last_seen_at, expires_at, user_agent, ip FROM sessions
WHERE user_id = :user_id AND id > :after
  AND revoked_at IS NULL AND expires_at > :now AND last_seen_at > :idle_cutoff
ORDER BY id
LIMIT :limit;

-- name: revoke!
UPDATE sessions SET revoked_at = :now
WHERE id = :id AND user_id = :user_id AND revoked_at IS NULL
  AND expires_at > :now AND last_seen_at > :idle_cutoff;

-- :keep is a session id to spare (or NULL to end them all).
-- name: revoke_for_user!
UPDATE sessions SET revoked_at = :now
WHERE user_id = :user_id AND revoked_at IS NULL AND id IS NOT :keep;

-- Bounded batch: expired, revoked or idle sessions, each condition served by an index.
-- name: cleanup!
DELETE FROM sessions WHERE id IN (
    SELECT id FROM sessions WHERE expires_at <= :now
    UNION
    SELECT id FROM sessions WHERE revoked_at IS NOT NULL
    UNION
    SELECT id FROM sessions WHERE last_seen_at <= :idle_cutoff
    LIMIT :batch
);

-- name: count_live$
SELECT count(*) FROM sessions
WHERE revoked_at IS NULL AND expires_at > :now AND last_seen_at > :idle_cutoff;
