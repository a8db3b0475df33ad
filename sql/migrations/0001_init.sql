-- The five tables of Reynard. Times are Unix epoch seconds (REAL, UTC); JSON is TEXT.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL CHECK (length(username) BETWEEN 3 AND 32),
    email         TEXT    NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    full_name     TEXT,
    password_hash TEXT    NOT NULL,
    is_active     INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    is_admin      INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    created_at    REAL    NOT NULL,
    updated_at    REAL    NOT NULL,
    last_login_at REAL
) STRICT;
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));
CREATE UNIQUE INDEX users_email_lower ON users (lower(email));
CREATE INDEX users_admins ON users (id) WHERE is_admin = 1 AND is_active = 1;

CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   BLOB    NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at   REAL    NOT NULL,
    last_seen_at REAL    NOT NULL,
    expires_at   REAL    NOT NULL,
    revoked_at   REAL,
    user_agent   TEXT,
    ip           TEXT
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id, id);
CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE INDEX sessions_last_seen ON sessions (last_seen_at);
CREATE INDEX sessions_revoked ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- namespace is 'u:<user id>' for a user's keys and 'sys:<purpose>' for the server's own.
-- value (compact JSON, up to 64 KiB) is the last column so that reading expires_at (listing,
-- expiry checks) never walks a large value's overflow pages.
CREATE TABLE cache_entries (
    namespace  TEXT    NOT NULL,
    key        TEXT    NOT NULL CHECK (length(key) BETWEEN 1 AND 512),
    expires_at REAL,
    user_id    INTEGER REFERENCES users (id) ON DELETE CASCADE,
    created_at REAL    NOT NULL,
    updated_at REAL    NOT NULL,
    value      TEXT    NOT NULL,
    PRIMARY KEY (namespace, key),
    CHECK (user_id IS NULL OR namespace = 'u:' || user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX cache_entries_expires ON cache_entries (expires_at) WHERE expires_at IS NOT NULL;
-- Serves the users(id) cascade and counts a user's live keys (the quota) from the index alone.
CREATE INDEX cache_entries_user ON cache_entries (user_id, expires_at) WHERE user_id IS NOT NULL;

CREATE TABLE system_metrics (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    value       REAL NOT NULL,
    labels      TEXT NOT NULL DEFAULT '{}',
    recorded_at REAL NOT NULL
) STRICT;
CREATE INDEX system_metrics_name_time ON system_metrics (name, recorded_at);
CREATE INDEX system_metrics_time ON system_metrics (recorded_at);

CREATE TABLE background_tasks (
    id              INTEGER PRIMARY KEY,
    name            TEXT    NOT NULL,
    payload         TEXT    NOT NULL DEFAULT 'null',
    status          TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'dead', 'cancelled')),
    priority        INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts    INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    run_at          REAL    NOT NULL,
    started_at      REAL,
    finished_at     REAL,
    lease_until     REAL,
    worker          TEXT,
    last_error      TEXT,
    result          TEXT,
    idempotency_key TEXT    UNIQUE,
    created_at      REAL    NOT NULL,
    updated_at      REAL    NOT NULL
) STRICT;
-- Claim order: higher priority first, then earliest run_at; only waiting tasks are indexed.
CREATE INDEX background_tasks_claim ON background_tasks (priority DESC, run_at, id)
    WHERE status IN ('pending', 'failed');
-- Due checks and the health figure (oldest due wait) look up by run_at alone.
CREATE INDEX background_tasks_due ON background_tasks (run_at) WHERE status IN ('pending', 'failed');
CREATE INDEX background_tasks_lease ON background_tasks (lease_until) WHERE status = 'running';
CREATE INDEX background_tasks_status ON background_tasks (status, id);
CREATE INDEX background_tasks_name ON background_tasks (name, id);
CREATE INDEX background_tasks_finished ON background_tasks (finished_at)
    WHERE finished_at IS NOT NULL;
