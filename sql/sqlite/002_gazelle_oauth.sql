-- 002_gazelle_oauth (SQLite): the Gazelle OAuth tokens. One row. A rotated refresh token
-- replaces the old one in a committed transaction before the new access token is used: losing
-- it locks the account out until a person re-authorizes (src/gazelle.h).
CREATE TABLE IF NOT EXISTS gazelle_oauth_tokens (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    access_token  TEXT,
    refresh_token TEXT,
    token_type    TEXT,
    expires_at    TEXT,
    updated_at    TEXT NOT NULL
);
