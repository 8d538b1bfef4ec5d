-- 005_schedules_webhooks.sql: cron schedules of workflow runs and their
-- firings; webhook endpoints, their signing secrets and their deliveries.

-- A schedule runs a workflow (a fixed version, or the latest at each firing)
-- with fixed inputs on a cron expression read in an IANA time zone. Its
-- actor (actors/schedule.h) keeps the durable timer; the row is what
-- clients read and change. generation counts changes, so a timer armed for
-- an older definition is recognised and ignored.
CREATE TABLE schedules (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id           uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name             text NOT NULL DEFAULT '',
    workflow_id      uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    workflow_version integer,
    inputs           jsonb NOT NULL DEFAULT '{}',
    priority         text NOT NULL DEFAULT 'normal' CHECK (priority IN ('high', 'normal', 'low')),
    max_credits      numeric(12, 2),
    cron             text NOT NULL,
    timezone         text NOT NULL DEFAULT 'UTC',
    misfire          text NOT NULL DEFAULT 'skip' CHECK (misfire IN ('skip', 'run_once')),
    paused           boolean NOT NULL DEFAULT false,
    generation       integer NOT NULL DEFAULT 1,
    next_fire_at     timestamptz,
    last_fired_at    timestamptz,
    last_job_id      uuid,
    last_outcome     jsonb,
    fire_count       integer NOT NULL DEFAULT 0,
    created_by       uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at       timestamptz
);
CREATE INDEX schedules_org_idx ON schedules (org_id, created_at, id) WHERE deleted_at IS NULL;

-- One row per due time of a schedule, whatever happened (a job, a skip, an
-- error). The first node to insert (schedule, due) owns the firing: a replay
-- on that node goes on with it, another node holding the same actor leaves
-- it alone.
CREATE TABLE schedule_runs (
    schedule_id uuid NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    due_at      timestamptz NOT NULL,
    org_id      uuid NOT NULL,
    node        text NOT NULL,
    job_id      uuid,
    outcome     text NOT NULL CHECK (outcome IN ('started', 'skipped', 'failed')),
    detail      jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule_id, due_at)
);

ALTER TABLE jobs ADD COLUMN schedule_id uuid REFERENCES schedules (id) ON DELETE SET NULL;

-- A webhook endpoint. secrets holds the signing secrets in force, newest
-- first ([{"secret": "whsec_...", "created_at", "expires_at"}]): an old one
-- keeps signing, beside the new one, until its expires_at (rotation with
-- overlap). failing_since is set by the first failed attempt after a
-- success and cleared by the next success; an endpoint failing for longer
-- than the configured period is disabled (disabled_reason says why).
CREATE TABLE webhooks (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id          uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    url             text NOT NULL,
    description     text NOT NULL DEFAULT '',
    event_types     text[] NOT NULL,
    enabled         boolean NOT NULL DEFAULT true,
    secrets         jsonb NOT NULL,
    failing_since   timestamptz,
    disabled_at     timestamptz,
    disabled_reason text,
    created_by      uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);
CREATE INDEX webhooks_org_idx ON webhooks (org_id, created_at, id) WHERE deleted_at IS NULL;

-- One event to one endpoint. id is derived from the event and the webhook,
-- so a replayed fan-out writes the same row. rev orders the writes of one
-- delivery (2 * attempts, +1 once final) so a late write never undoes a
-- newer one.
CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY,
    webhook_id      uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    org_id          uuid NOT NULL,
    event_id        text NOT NULL,
    event_type      text NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'retrying', 'succeeded', 'dead', 'cancelled')),
    attempts        integer NOT NULL DEFAULT 0,
    response_status integer,
    response_body   text,
    latency_ms      integer,
    error           text,
    next_attempt_at timestamptz,
    rev             integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);
CREATE INDEX webhook_deliveries_hook_idx ON webhook_deliveries (webhook_id, created_at, id);
