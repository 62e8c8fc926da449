-- 002_gazelle_oauth (PostgreSQL): same table as sql/sqlite/002_gazelle_oauth.sql.
CREATE TABLE IF NOT EXISTS gazelle_oauth_tokens (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    access_token  TEXT,
    refresh_token TEXT,
    token_type    TEXT,
    expires_at    TIMESTAMPTZ,
    updated_at    TIMESTAMPTZ NOT NULL
);
