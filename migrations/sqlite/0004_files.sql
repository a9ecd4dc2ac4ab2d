-- Uploaded files. A file is uploaded into a room, then shared by one message (seq set in the
-- transaction that stores the message); deleting the message or purging it deletes the row, and the
-- blob collector then removes bytes no row names.
CREATE TABLE files (
    id           TEXT    PRIMARY KEY,
    room_id      INTEGER NOT NULL REFERENCES rooms (id),
    uploader_id  INTEGER NOT NULL REFERENCES users (id),
    seq          INTEGER,                     -- the message sharing it; NULL until sent
    blob         TEXT    NOT NULL,            -- SHA-256 of the bytes, hex
    name         TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    content_type TEXT    NOT NULL,
    width        INTEGER,
    height       INTEGER,
    created_at   INTEGER NOT NULL
);
CREATE INDEX files_by_message ON files (room_id, seq);
CREATE INDEX files_by_blob ON files (blob);
CREATE INDEX files_by_uploader ON files (uploader_id);
