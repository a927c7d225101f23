-- Re-ID embedding history per identity, for cross-task look-ups ("who is this?").
--
-- Nearest-neighbour index: pgvector's HNSW needs a fixed dimension, but the Re-ID model
-- (and so the dimension) can change while old rows stay. The column is therefore a plain
-- `vector`, and EmbeddingStore.ensure_index creates, on first write of dimension N, one
-- partial expression index per dimension:
--
--   CREATE INDEX identity_embeddings_hnsw_<N> ON identity_embeddings
--     USING hnsw ((embedding::halfvec(N)) halfvec_cosine_ops) WHERE vector_dims(embedding) = N;
--
-- halfvec (fp16) rather than vector(N): HNSW on halfvec accepts up to 4000 dimensions
-- (vector: 2000, too few for common 2048-d Re-ID heads), the index is half the size, and
-- fp16 error is far below Re-ID decision margins; nearest() re-ranks the candidates with the
-- exact float32 distance. Queries must repeat the expression and the predicate with the
-- same literal N for the planner to use the index. Rows of different dimensions coexist;
-- a search only ever compares vectors of the query's dimension.
CREATE TABLE identity_embeddings (
    id                 bigserial PRIMARY KEY,
    task_id            uuid NOT NULL,
    environment_id     text NOT NULL,
    camera_id          text NOT NULL,
    global_id          integer NOT NULL,
    global_frame_index integer NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    embedding          vector NOT NULL CHECK (vector_dims(embedding) <= 4000)
);
CREATE INDEX identity_embeddings_identity_idx ON identity_embeddings (environment_id, global_id);
