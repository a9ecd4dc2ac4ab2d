-- Issue 18: a room's member count is kept on its row by a trigger instead of counted on every read.
-- `COUNT(*) FROM members` per room read made each connect into a room of N members cost O(N) (twice:
-- the rooms to follow and the greeting's room views). Every write path to `members` goes through the
-- trigger, in its own transaction (the room row's update serialises joins and leaves of one room with
-- its appends, which lock the same row).
ALTER TABLE rooms ADD COLUMN member_count BIGINT NOT NULL DEFAULT 0;
UPDATE rooms SET member_count = (SELECT COUNT(*) FROM members m WHERE m.room_id = rooms.id);

CREATE FUNCTION members_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE rooms SET member_count = member_count + 1 WHERE id = NEW.room_id;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE rooms SET member_count = member_count - 1 WHERE id = OLD.room_id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER members_count AFTER INSERT OR DELETE ON members
    FOR EACH ROW EXECUTE FUNCTION members_count();
