-- Camera secrets sealed at rest (core/secrets.py, SPOTON_SECRET_KEYS): source_secret holds a
-- Fernet token of the password and the secret query parameters. The key is not known to SQL, so
-- rows from before this version keep their plain-text source_password until the service starts:
-- start-up seals each into source_secret and empties source_password (storage/camera_secrets.py).
ALTER TABLE cameras ADD COLUMN source_secret text NOT NULL DEFAULT '';
COMMENT ON COLUMN cameras.source_password IS
    'plain text from before migration 0012; emptied at start-up once sealed into source_secret';
