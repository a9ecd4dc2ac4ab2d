-- Full-text search (issue 13): a generated tsvector of each live text message with the language-neutral
-- `simple` configuration, and a GIN index on it. Generated, so every write path (append, edit, delete,
-- retention purge) keeps it in its own transaction.
ALTER TABLE messages ADD COLUMN search tsvector GENERATED ALWAYS AS
    (CASE WHEN kind = 'text' AND NOT deleted THEN to_tsvector('simple'::regconfig, body) END) STORED;
CREATE INDEX messages_search ON messages USING GIN (search);
