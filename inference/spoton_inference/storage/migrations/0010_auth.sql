-- Credentials (issue 16). An API key is `spk_<key_id>_<secret>`: only the SHA-256 of its
-- high-entropy secret is kept, so the key cannot be read back from the database. Users sign in
-- with a password (argon2id hash) and get a short-lived signed token.
CREATE TABLE api_keys (
    key_id       text PRIMARY KEY,
    name         text NOT NULL,
    secret_hash  text NOT NULL,
    -- viewer, operator, admin
    role         text NOT NULL,
    -- environments the key may see; empty: all of them
    environments text[] NOT NULL DEFAULT '{}',
    -- the key the service creates (or takes from SPOTON_ADMIN_API_KEY) on first start
    bootstrap    boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);

CREATE TABLE users (
    username      text PRIMARY KEY,
    password_hash text NOT NULL,
    role          text NOT NULL,
    environments  text[] NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now()
);
