-- Server-made thumbnails of inline images (issue 13): each its own blob, named here so the blob
-- collector keeps it while its file exists. NULL: no thumbnail (not an image, or one the server could
-- not or would not decode).
ALTER TABLE files ADD COLUMN thumb_blob TEXT;
ALTER TABLE files ADD COLUMN thumb_type TEXT;
ALTER TABLE files ADD COLUMN thumb_width BIGINT;
ALTER TABLE files ADD COLUMN thumb_height BIGINT;
ALTER TABLE files ADD COLUMN thumb_size BIGINT;
CREATE INDEX files_by_thumb ON files (thumb_blob);
