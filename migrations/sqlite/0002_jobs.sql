-- Background jobs: per-room message retention and outgoing webhooks.
ALTER TABLE rooms ADD COLUMN retention_secs INTEGER;   -- NULL: keep messages forever

CREATE TABLE webhooks (
    id         INTEGER PRIMARY KEY,
    room_id    INTEGER NOT NULL REFERENCES rooms (id),
    url        TEXT    NOT NULL,
    secret     TEXT    NOT NULL,                -- signs deliveries; shown to the creator once
    created_by INTEGER NOT NULL REFERENCES users (id),
    -- messages up to this seq have been queued for delivery (the dispatcher's durable cursor)
    delivered_seq INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE INDEX webhooks_by_room ON webhooks (room_id);
