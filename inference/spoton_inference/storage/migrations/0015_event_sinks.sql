-- Event sinks (webhooks, MQTT) and their durable outbox (core/sinks.py, core/sink_dispatcher.py).
--
-- A row of sink_deliveries is written by a trigger in the very transaction that writes the
-- event (an `events` row, or a change of `tasks.state`), one per enabled sink of the
-- environment whose event_types match: an event stored is an event queued, nothing in
-- between can lose it. `events` is a plain table (storage/partitioning.py partitions only
-- track_points); a row trigger on a partitioned parent would fire on its partitions too.
-- The dispatcher bounds the pending rows per sink (oldest marked dropped, counted) and prunes
-- finished rows after a retention.

CREATE TABLE sinks (
    sink_id           uuid PRIMARY KEY,
    environment_id    text NOT NULL REFERENCES environments ON DELETE CASCADE,
    name              text NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('webhook', 'mqtt')),
    url               text NOT NULL,
    topic_prefix      text NOT NULL DEFAULT 'spoton',
    event_types       text[] NOT NULL,
    -- A Fernet token (core/secrets.py) of the secret; '' when none. Never returned by the API.
    secret            text NOT NULL DEFAULT '',
    enabled           boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    -- Totals that outlive the pruning of finished outbox rows.
    delivered_total   bigint NOT NULL DEFAULT 0,
    failed_total      bigint NOT NULL DEFAULT 0,
    dropped_total     bigint NOT NULL DEFAULT 0,
    last_error        text NOT NULL DEFAULT '',
    last_error_at     timestamptz,
    last_delivered_at timestamptz,
    -- The replica delivering this sink's events, until lease_until: one at a time, in order.
    lease_owner       text NOT NULL DEFAULT '',
    lease_until       timestamptz NOT NULL DEFAULT '-infinity',
    UNIQUE (environment_id, name)
);

CREATE TABLE sink_deliveries (
    delivery_id     bigserial PRIMARY KEY,
    sink_id         uuid NOT NULL REFERENCES sinks ON DELETE CASCADE,
    environment_id  text NOT NULL,
    camera_id       text NOT NULL DEFAULT '',
    task_id         text NOT NULL DEFAULT '',
    event_type      text NOT NULL,
    occurred_at     timestamptz NOT NULL,
    data            jsonb NOT NULL DEFAULT '{}',
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'failed', 'dropped')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
-- The head of each sink's queue, and the pending count.
CREATE INDEX sink_deliveries_pending_idx ON sink_deliveries (sink_id, delivery_id) WHERE state = 'pending';
-- ListSinkDeliveries (newest first) and pruning.
CREATE INDEX sink_deliveries_sink_idx ON sink_deliveries (sink_id, delivery_id DESC);
CREATE INDEX sink_deliveries_finished_idx ON sink_deliveries (finished_at) WHERE state <> 'pending';

-- One outbox row per enabled sink of the environment that selected the event type, and a
-- wake-up for the dispatchers (NOTIFY is sent at commit, so they never see a row too early).
CREATE FUNCTION sink_enqueue(p_environment_id text, p_camera_id text, p_task_id text, p_event_type text,
                             p_occurred_at timestamptz, p_data jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sink_deliveries (sink_id, environment_id, camera_id, task_id, event_type, occurred_at, data)
    SELECT s.sink_id, p_environment_id, coalesce(p_camera_id, ''), coalesce(p_task_id, ''), p_event_type,
           p_occurred_at, p_data
    FROM sinks s
    WHERE s.environment_id = p_environment_id AND s.enabled AND p_event_type = ANY (s.event_types);
    IF FOUND THEN
        PERFORM pg_notify('spoton_sinks', '');
    END IF;
END $$;

CREATE FUNCTION sink_events_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    event_type text := CASE NEW.kind
        WHEN 'appear' THEN 'person.appeared'
        WHEN 'leave' THEN 'person.left'
        WHEN 'handover' THEN 'person.handover'
        WHEN 'zone_enter' THEN 'zone.entered'
        WHEN 'zone_exit' THEN 'zone.exited'
    END;
BEGIN
    IF event_type IS NOT NULL THEN
        PERFORM sink_enqueue(
            NEW.environment_id, NEW.camera_id, NEW.task_id::text, event_type, NEW.time,
            jsonb_strip_nulls(jsonb_build_object('global_id', NEW.global_id,
                                                 'global_frame_index', NEW.global_frame_index))
                || coalesce(NEW.payload, '{}'::jsonb));
    END IF;
    RETURN NULL;
END $$;

-- ON CONFLICT DO NOTHING skips an event stored twice: AFTER INSERT fires only for rows inserted.
CREATE TRIGGER events_to_sinks AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION sink_events_trigger();

CREATE FUNCTION sink_tasks_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sink_enqueue(
        NEW.environment_id, '', NEW.task_id::text, 'task.state_changed', now(),
        jsonb_build_object(
            'state', NEW.state,
            'previous_state', CASE WHEN TG_OP = 'UPDATE' THEN OLD.state END,
            'step', NEW.step,
            'error', NEW.error));
    RETURN NULL;
END $$;

CREATE TRIGGER tasks_created_to_sinks AFTER INSERT ON tasks
    FOR EACH ROW EXECUTE FUNCTION sink_tasks_trigger();
-- Progress updates rewrite state with the same value: only a real change is an event.
CREATE TRIGGER tasks_state_to_sinks AFTER UPDATE OF state ON tasks
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION sink_tasks_trigger();
