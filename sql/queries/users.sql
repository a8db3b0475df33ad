-- Users. Uniqueness ignores case through the lower() indexes in 0001_init.sql.

-- name: insert<!
INSERT INTO users (username, email, full_name, password_hash, is_admin, created_at, updated_at)
VALUES (:username, :email, :full_name, :password_hash, :is_admin, :now, :now)
RETURNING *;

-- name: by_id^
SELECT * FROM users WHERE id = :id;

-- name: by_username^
SELECT * FROM users WHERE lower(username) = lower(:username);

-- Login by username or email, either ignoring case.
-- name: by_login^
SELECT * FROM users WHERE lower(username) = lower(:login)
UNION ALL
SELECT * FROM users WHERE lower(email) = lower(:login)
LIMIT 1;

-- Keyset page by id; :q (or NULL) matches a username or email prefix, ignoring case.
-- name: page
SELECT * FROM users
WHERE id > :after
  AND (:q IS NULL
       OR (lower(username) >= lower(:q) AND lower(username) < lower(:q) || char(1114111))
       OR (lower(email) >= lower(:q) AND lower(email) < lower(:q) || char(1114111)))
ORDER BY id
LIMIT :limit;

-- name: update<!
UPDATE users SET
    email = coalesce(:email, email),
    full_name = CASE WHEN :set_full_name THEN :full_name ELSE full_name END,
    is_active = coalesce(:is_active, is_active),
    is_admin = coalesce(:is_admin, is_admin),
    updated_at = :now
WHERE id = :id
RETURNING *;

-- name: after_login<!
UPDATE users SET last_login_at = :now, password_hash = coalesce(:password_hash, password_hash)
WHERE id = :id
RETURNING *;

-- name: set_password!
UPDATE users SET password_hash = :password_hash, updated_at = :now WHERE id = :id;

-- name: promote<!
UPDATE users SET is_admin = 1, is_active = 1, password_hash = :password_hash, updated_at = :now
WHERE id = :id
RETURNING *;

-- name: delete!
DELETE FROM users WHERE id = :id;

-- name: active_admins$
SELECT count(*) FROM users WHERE is_admin = 1 AND is_active = 1;
