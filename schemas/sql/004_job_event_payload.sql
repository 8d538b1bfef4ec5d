-- 004_job_event_payload.sql: a job event's notification carries the event
-- itself - "id org job type data" - so the API nodes' live streams need no
-- query per event. An event too large for a notification (8000 bytes) is
-- announced as "id org job" and read from the table, as before.

CREATE OR REPLACE FUNCTION fenta_job_event_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_head text := NEW.id::text || ' ' || NEW.org_id::text || ' ' || NEW.job_id::text;
    v_full text := v_head || ' ' || NEW.type || ' ' || NEW.data::text;
BEGIN
    PERFORM pg_notify('fenta_job_events', CASE WHEN octet_length(v_full) < 7900 THEN v_full ELSE v_head END);
    RETURN NULL;
END
$$;
