/* schedule.c - the schedule actor: reads its row, arms one durable timer for
 * the next due time, and at each firing creates the run's job exactly once
 * (see schedule.h). */
#include "actors/schedules/schedule.h"
#include "actors/schedules/cron.h"
#include "actors/jobs/job.h"
#include "runtime/name_uuid.h"
#include "actors/webhooks/webhooks.h"
#include "runtime/clock.h"
#include "runtime/error.h"
#include "runtime/log.h"
#include "storage/schedules_db.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct schedule_engine {
    schedule_config_t cfg;
    behaviour_t beh;
};

/* ---- definitions ------------------------------------------------------------- */

/* Parses both halves of a definition; 0 or FENTA_EINVAL with the field and
 * message, and the caller owns *c and *z on success. */
static int load_def(const char *expr, const char *zone, cron_t **c, tz_t **z, char *field,
                    size_t fcap, char *message, size_t mcap)
{
    cron_error_t ce = {0};
    *c = cron_parse(expr ? expr : "", &ce);
    if (!*c) {
        snprintf(field, fcap, "cron.%s", ce.field ? ce.field : "expression");
        snprintf(message, mcap, "%s", ce.message);
        return FENTA_EINVAL;
    }
    char err[256] = "";
    *z = tz_load(zone && *zone ? zone : "UTC", err, sizeof err);
    if (!*z) {
        cron_destroy(c);
        snprintf(field, fcap, "timezone");
        snprintf(message, mcap, "timezone: %s", err);
        return FENTA_EINVAL;
    }
    return 0;
}

int schedule_check(const char *expr, const char *zone, char *field, size_t fcap, char *message,
                   size_t mcap)
{
    cron_t *c = NULL;
    tz_t *z = NULL;
    int rc = load_def(expr, zone, &c, &z, field, fcap, message, mcap);
    if (rc == 0) {
        int64_t next;
        if (cron_next(c, z, clock_now_ms() / 1000, &next) != 0) {
            snprintf(field, fcap, "cron.expression");
            snprintf(message, mcap, "the expression never fires (no such date)");
            rc = FENTA_EINVAL;
        }
    }
    cron_destroy(&c);
    tz_destroy(&z);
    return rc;
}

int schedule_preview(const char *expr, const char *zone, int64_t after, int count, int64_t *out,
                     int *n)
{
    char f[32], m[256];
    cron_t *c = NULL;
    tz_t *z = NULL;
    *n = 0;
    if (count < 0 || count > 1000 || load_def(expr, zone, &c, &z, f, sizeof f, m, sizeof m))
        return FENTA_EINVAL;
    for (int i = 0; i < count && cron_next(c, z, after, &out[i]) == 0; i++) {
        after = out[i];
        (*n)++;
    }
    cron_destroy(&c);
    tz_destroy(&z);
    return 0;
}

int schedule_local_time(const char *zone, int64_t utc, char *buf, size_t cap)
{
    char err[256];
    tz_t *z = tz_load(zone && *zone ? zone : "UTC", err, sizeof err);
    if (!z)
        return FENTA_EINVAL;
    int64_t off = tz_offset_at(z, utc);
    tz_destroy(&z);
    tz_civil_t cv;
    tz_civil_from_seconds(utc + off, &cv);
    int64_t a = off < 0 ? -off : off;
    snprintf(buf, cap, "%04lld-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", (long long)cv.year, cv.month,
             cv.day, cv.hour, cv.minute, cv.second, off < 0 ? '-' : '+', (int)(a / 3600),
             (int)(a % 3600 / 60));
    return 0;
}

void schedule_job_id(const char *schedule_id, int64_t due, char id[37])
{
    char name[128];
    int len = snprintf(name, sizeof name, "fenta-schedule:%s:%lld", schedule_id, (long long)due);
    name_uuid(name, (size_t)len, id);
}

/* ---- the actor --------------------------------------------------------------- */

typedef struct {
    schedule_engine_t *e;
    actor_ctx_t *ctx;
    const char *id; /* the schedule id */
    pg_conn_t *conn;
    schedules_db_row_t row; /* the schedule's row (storage/schedules_db.h) */
} sx_t;

/* Due times, the misfire grace and the next_fire_at written to the row all
 * come from this clock (never PostgreSQL's now()), so a test clock moves
 * them together. */
static int64_t now_s(void)
{
    return clock_now_ms() / 1000;
}

/* The first fire time after `after`, or 0 when it never fires again. */
static int64_t next_after(sx_t *x, int64_t after)
{
    char f[32], m[256];
    cron_t *c = NULL;
    tz_t *z = NULL;
    int64_t next = 0;
    if (load_def(x->row.cron, x->row.timezone, &c, &z, f, sizeof f, m, sizeof m) == 0 &&
        cron_next(c, z, after, &next) != 0)
        next = 0;
    cron_destroy(&c);
    tz_destroy(&z);
    return next;
}

/* Arms the timer for due (0: none) under generation gen, with the ack. */
static int arm(sx_t *x, int gen, int64_t due)
{
    char state[96];
    int sl = snprintf(state, sizeof state, "{\"gen\":%d,\"due\":%lld}", gen, (long long)due);
    int rc = actor_set_state(x->ctx, state, (size_t)sl);
    if (rc == 0 && due > 0) {
        int64_t delay = (due - now_s()) * 1000;
        rc = actor_send_after(x->ctx, actor_self(x->ctx), "schedule.fire", state, (size_t)sl,
                              delay > 0 ? delay : 0);
    }
    if (rc == 0)
        rc = schedules_db_set_next(x->conn, x->id, due) < 0 ? FENTA_EIO : 0;
    return rc;
}

static char *iso(int64_t s, char *buf, size_t cap)
{
    time_t t = (time_t)s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

/* Records a firing's outcome on its run row and on the schedule, and tells
 * the organisation's webhooks; at_ms is when the run row was claimed (the
 * event's time: a replayed firing claims the same row and sends the same
 * body). */
static int record(sx_t *x, int64_t due, int64_t at_ms, const char *outcome, const char *job,
                  json_t *detail)
{
    char at[40];
    json_t *doc = json_pack("{ss ss ss* so}", "outcome", outcome, "due_at", iso(due, at, sizeof at),
                            "job_id", job, "detail", detail ? detail : json_object());
    char *d = json_dumps(doc, JSON_COMPACT);
    int n = d ? schedules_db_record_run(x->conn, x->id, due, outcome, job, d) : FENTA_ENOMEM;
    free(d);
    int rc = n < 0 ? n : 0;
    if (rc == 0 && x->e->cfg.webhooks) {
        char eid[96];
        snprintf(eid, sizeof eid, "evt_sched_%s_%lld", x->id, (long long)due);
        json_t *data = json_pack("{ss ss ss ss* sO}", "schedule_id", x->id, "due_at", at, "outcome",
                                 outcome, "job_id", job, "detail", json_object_get(doc, "detail"));
        rc = webhooks_emit(x->ctx, x->row.org_id, eid, "schedule.fired", data, at_ms);
        json_decref(data);
    }
    json_decref(doc);
    return rc;
}

/* The firing of due: claim it, create and start its job, record it. */
static int fire(sx_t *x, int64_t due, bool misfired_skip, char *err, size_t errlen)
{
    const char *node = runtime_node(actor_runtime(x->ctx));
    /* The claim's time is this clock's, not PostgreSQL's now(): it is the
     * schedule.fired event's time and must agree with due_at under a test
     * clock. A replay keeps the first claim's. */
    bool mine = false;
    int64_t at = 0;
    int e = schedules_db_claim_run(x->conn, x->id, due, x->row.org_id, node, clock_now_ms(), &mine,
                                   &at);
    if (e)
        return fenta_fail(err, errlen, e, "cannot claim the firing: %s", fenta_strerror(e));
    if (!mine)
        return 0; /* another node fired it */
    if (misfired_skip)
        return record(x, due, at, "skipped", NULL,
                      json_pack("{ss}", "reason", "misfire: the server was down at the due time"));
    char job[37];
    schedule_job_id(x->id, due, job);
    const char *prio = x->row.priority;
    const char *maxc = x->row.max_credits;
    json_t *inputs = json_loads(x->row.inputs, 0, NULL);
    job_new_t n = {.org_id = x->row.org_id,
                   .workflow_id = x->row.workflow_id,
                   .version = x->row.workflow_version,
                   .inputs = inputs,
                   .priority = prio,
                   .max_credits = maxc ? atof(maxc) : -1,
                   .schedule_id = x->id,
                   .job_id = job};
    json_t *problem = NULL;
    char id[37];
    int rc = job_insert(x->conn, x->e->cfg.types, &n, id, &problem);
    json_decref(inputs);
    if (rc == 0 || rc == FENTA_EEXIST) {
        char to[ENVELOPE_ADDR_MAX + 1];
        snprintf(to, sizeof to, "job/%s", job);
        rc = actor_spawn(x->ctx, to, NULL, NULL, 0);
        if (rc == 0)
            rc = actor_send(x->ctx, to, "job.start", NULL, 0);
        if (rc == 0)
            rc = record(x, due, at, "started", job, NULL);
        return rc;
    }
    if (rc == FENTA_ENOTFOUND)
        return record(x, due, at, "failed", NULL,
                      json_pack("{ss ss}", "code", "not_found", "message",
                                "the workflow (or its version) no longer exists"));
    if (problem) /* refused (job.h): the run is recorded as failed, with why */
        return record(x, due, at, "failed", NULL, problem);
    json_decref(problem);
    return fenta_fail(err, errlen, rc, "cannot create the job: %s", fenta_strerror(rc));
}

static int schedule_message(actor_ctx_t *ctx, const envelope_t *msg)
{
    schedule_engine_t *e = actor_kind_user(ctx);
    sx_t x = {.e = e, .ctx = ctx, .id = strchr(actor_self(ctx), '/') + 1};
    size_t sl = 0;
    const char *st = actor_state(ctx, &sl);
    json_t *state = st && sl ? json_loadb(st, sl, 0, NULL) : NULL;
    json_t *body =
        msg->body_len ? json_loadb((const char *)msg->body, msg->body_len, 0, NULL) : NULL;
    int cur_gen = (int)json_integer_value(json_object_get(state, "gen"));
    int64_t cur_due = json_integer_value(json_object_get(state, "due"));
    char err[512] = "";
    int rc = 0;
    x.conn = pg_acquire(e->cfg.pool, 5000, &rc);
    int found = x.conn ? schedules_db_load(x.conn, x.id, &x.row) : rc;
    if (found && found != FENTA_ENOTFOUND) {
        snprintf(err, sizeof err, "cannot read the schedule: %s", fenta_strerror(found));
        rc = found;
    } else if (found == FENTA_ENOTFOUND || x.row.deleted || x.row.paused) {
        /* Gone or paused: no timer (a pending one finds the state cleared). */
        int gen = found == 0 ? x.row.generation : 0;
        if (cur_due != 0 || cur_gen != gen)
            rc = found == 0 ? arm(&x, gen, 0) : actor_set_state(ctx, "{}", 2);
    } else {
        int gen = x.row.generation;
        int64_t now = now_s();
        if (strcmp(msg->type, "schedule.fire") == 0) {
            int64_t due = json_integer_value(json_object_get(body, "due"));
            int bgen = (int)json_integer_value(json_object_get(body, "gen"));
            if (bgen == gen && due == cur_due && cur_gen == gen && due > 0) {
                int grace = e->cfg.misfire_grace_s > 0 ? e->cfg.misfire_grace_s : 60;
                bool late = now - due > grace;
                bool skip = late && strcmp(x.row.misfire, "skip") == 0;
                if (late)
                    log_kv(
                        LOG_WARN, NULL, "schedule misfired",
                        (const char *const[]){"schedule_id", x.id, "misfire", x.row.misfire, NULL});
                rc = fire(&x, due, skip, err, sizeof err);
                /* After a misfire every other missed time is passed over. */
                if (rc == 0)
                    rc = arm(&x, gen, next_after(&x, late ? now : due));
            }
        } else if (cur_gen != gen || cur_due == 0) {
            rc = arm(&x, gen, next_after(&x, now));
        }
    }
    schedules_db_row_clear(&x.row);
    pg_release(e->cfg.pool, &x.conn);
    json_decref(state);
    json_decref(body);
    if (rc)
        return actor_fail(ctx, "%s: %s", msg->type, err[0] ? err : fenta_strerror(rc));
    return 0;
}

/* ---- the engine -------------------------------------------------------------- */

schedule_engine_t *schedule_engine_new(const schedule_config_t *cfg)
{
    schedule_engine_t *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->cfg = *cfg;
    e->beh =
        (behaviour_t){.kind = "schedule",
                      .on_message = schedule_message,
                      .retry = {.base_ms = 500, .factor = 2, .cap_ms = 60000, .max_attempts = 20},
                      .user = e};
    return e;
}

void schedule_engine_destroy(schedule_engine_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

int schedule_engine_register(schedule_engine_t *e, runtime_t *rt)
{
    return runtime_register(rt, &e->beh);
}

int schedule_sync(runtime_t *rt, const char *schedule_id)
{
    char to[ENVELOPE_ADDR_MAX + 1];
    snprintf(to, sizeof to, "schedule/%s", schedule_id);
    int rc = runtime_spawn(rt, to, NULL, NULL, 0);
    if (rc && rc != FENTA_EEXIST)
        return rc;
    return runtime_send(rt, to, "schedule.sync", schedule_id, NULL, 0);
}

int schedule_engine_recover(schedule_engine_t *e, runtime_t *rt, int *started)
{
    if (started)
        *started = 0;
    int err = 0;
    pg_conn_t *c = pg_acquire(e->cfg.pool, 10000, &err);
    if (!c)
        return err;
    json_t *ids = NULL;
    err = schedules_db_live_ids(c, &ids);
    pg_release(e->cfg.pool, &c);
    if (err)
        return err;
    for (size_t i = 0; i < json_array_size(ids) && !err; i++) {
        const char *id = json_string_value(json_array_get(ids, i));
        char to[ENVELOPE_ADDR_MAX + 1];
        snprintf(to, sizeof to, "schedule/%s", id);
        int rc = runtime_spawn(rt, to, NULL, NULL, 0);
        if (rc == FENTA_EEXIST)
            continue; /* it has its timer */
        if (rc == 0)
            rc = runtime_send(rt, to, "schedule.sync", id, NULL, 0);
        if (rc)
            err = rc;
        else if (started)
            (*started)++;
    }
    json_decref(ids);
    return err;
}
