-- Background jobs: per-room message retention and outgoing webhooks.
ALTER TABLE rooms ADD COLUMN retention_secs BIGINT;   -- NULL: keep messages forever

CREATE TABLE webhooks (
    id         BIGSERIAL PRIMARY KEY,
    room_id    BIGINT  NOT NULL REFERENCES rooms (id),
    url        TEXT    NOT NULL,
    secret     TEXT    NOT NULL,                -- signs deliveries; shown to the creator once
    created_by BIGINT  NOT NULL REFERENCES users (id),
    -- messages up to this seq have been queued for delivery (the dispatcher's durable cursor)
    delivered_seq BIGINT  NOT NULL DEFAULT 0,
    created_at BIGINT  NOT NULL
);
CREATE INDEX webhooks_by_room ON webhooks (room_id);
