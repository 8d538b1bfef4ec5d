-- 002_identity_notify.sql: every change that affects who a user is, which
-- sessions are live and which organisations and roles they have notifies
-- channel fenta_identity with the user's id, so API nodes can cache
-- authentication and /v1/me and drop the entries at once (http/authcache.h).
-- Notifications are delivered at commit; identical ones in a transaction fold.

CREATE FUNCTION fenta_identity_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'users' THEN
        PERFORM pg_notify('fenta_identity', COALESCE(NEW.id, OLD.id)::text);
    ELSIF TG_TABLE_NAME = 'orgs' THEN
        PERFORM pg_notify('fenta_identity', m.user_id::text)
            FROM memberships m WHERE m.org_id = COALESCE(NEW.id, OLD.id);
    ELSE
        PERFORM pg_notify('fenta_identity', COALESCE(NEW.user_id, OLD.user_id)::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER users_identity_notify AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION fenta_identity_notify();
CREATE TRIGGER orgs_identity_notify AFTER UPDATE OR DELETE ON orgs
    FOR EACH ROW EXECUTE FUNCTION fenta_identity_notify();
CREATE TRIGGER memberships_identity_notify AFTER INSERT OR UPDATE OR DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION fenta_identity_notify();
CREATE TRIGGER sessions_identity_notify AFTER UPDATE OR DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION fenta_identity_notify();
