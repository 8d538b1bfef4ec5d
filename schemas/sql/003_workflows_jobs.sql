-- 003_workflows_jobs.sql: workflows and their versions, montage templates,
-- credit estimates, jobs and their event log (what GET /v1/jobs/{id}/events
-- replays; each new event notifies channel fenta_job_events so API nodes
-- push it to live streams at once).

-- A workflow is a name and a pointer to its latest version; every save is a
-- new row of workflow_versions, never an update, so a job can run (and keep
-- pointing at) any version.
CREATE TABLE workflows (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id      uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    version     integer NOT NULL DEFAULT 1,
    created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);
CREATE INDEX workflows_org_idx ON workflows (org_id, created_at, id) WHERE deleted_at IS NULL;

CREATE TABLE workflow_versions (
    workflow_id uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version     integer NOT NULL,
    graph       jsonb NOT NULL,
    created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, version)
);

-- Montage templates of an organisation (built-in ones are files in
-- schemas/templates and have no row). The document is validated against
-- schemas/render/template.json merged over 'clean'.
CREATE TABLE templates (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id      uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    doc         jsonb NOT NULL,
    created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);
CREATE UNIQUE INDEX templates_org_name_key ON templates (org_id, name) WHERE deleted_at IS NULL;
CREATE INDEX templates_org_idx ON templates (org_id, created_at, id) WHERE deleted_at IS NULL;

-- What a run of one workflow version will cost; a run names its estimate (or
-- a max_credits) so nobody is charged more than they saw.
CREATE TABLE estimates (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id      uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    workflow_id uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version     integer NOT NULL,
    credits     numeric(12, 2) NOT NULL,
    detail      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

-- The running-jobs cap of an organisation; NULL = the server's default.
ALTER TABLE orgs ADD COLUMN max_running_jobs integer CHECK (max_running_jobs > 0);

-- A job: one run of a workflow version (or of a render spec, kind 'render').
-- The row is what clients read; the job actor (actors/job.h) owns execution
-- and writes status, progress, per-node state, artifacts and errors here.
CREATE TABLE jobs (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id           uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    kind             text NOT NULL CHECK (kind IN ('workflow', 'render')),
    workflow_id      uuid REFERENCES workflows (id) ON DELETE SET NULL,
    workflow_version integer,
    status           text NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    priority         text NOT NULL DEFAULT 'normal' CHECK (priority IN ('high', 'normal', 'low')),
    priority_rank    smallint NOT NULL DEFAULT 1,
    progress         real NOT NULL DEFAULT 0,
    current_node     text,
    graph            jsonb NOT NULL,
    inputs           jsonb NOT NULL DEFAULT '{}',
    nodes            jsonb NOT NULL DEFAULT '{}',
    artifacts        jsonb NOT NULL DEFAULT '[]',
    error            jsonb,
    credits          numeric(12, 2) NOT NULL DEFAULT 0,
    estimate_id      uuid,
    attempts         integer NOT NULL DEFAULT 1,
    cancel_requested boolean NOT NULL DEFAULT false,
    created_by       uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_org_idx ON jobs (org_id, created_at, id);
CREATE INDEX jobs_active_idx ON jobs (org_id, status, priority_rank, created_at, id)
    WHERE status IN ('queued', 'running');

-- Every event of a job, in order: seq is the job's own count (the job actor
-- recomputes the same seq when a message is replayed, so a replay inserts
-- nothing twice); id orders events across jobs for GET /v1/events.
CREATE TABLE job_events (
    id         bigserial PRIMARY KEY,
    job_id     uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    org_id     uuid NOT NULL,
    seq        integer NOT NULL,
    type       text NOT NULL,
    data       jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (job_id, seq)
);
CREATE INDEX job_events_org_idx ON job_events (org_id, id);

CREATE FUNCTION fenta_job_event_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fenta_job_events', NEW.id::text || ' ' || NEW.org_id::text || ' ' || NEW.job_id::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER job_events_notify AFTER INSERT ON job_events
    FOR EACH ROW EXECUTE FUNCTION fenta_job_event_notify();
