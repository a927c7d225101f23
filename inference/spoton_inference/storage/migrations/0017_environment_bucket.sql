-- Environments registered from object storage (s3://bucket/prefix): where they were read from.
-- Both NULL for a directory's (source_dir) or one made through the API. Each sub-video's object
-- (bucket, key, size, etag) is kept in cameras.sub_videos beside its path, as "remote".
ALTER TABLE environments ADD COLUMN source_bucket text, ADD COLUMN source_prefix text;
ALTER TABLE environments ADD CONSTRAINT environments_source_bucket_check
    CHECK ((source_bucket IS NULL) = (source_prefix IS NULL));
