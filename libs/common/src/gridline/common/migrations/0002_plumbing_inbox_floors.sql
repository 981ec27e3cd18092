-- How far each consumer group had committed, per partition, recorded by the inbox sweep
-- (gridline.common.inbox): inbox rows below it may be forgotten once old enough, and a
-- group whose committed offsets the broker no longer has resumes here, not at the start
-- of the log. It only ever grows.
CREATE TABLE IF NOT EXISTS inbox_floors (
    group_id        text        NOT NULL,
    topic           text        NOT NULL,
    kafka_partition integer     NOT NULL,
    next_offset     bigint      NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, kafka_partition)
);
