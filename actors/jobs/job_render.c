/* job_render.c - a montage and the render nodes around it become one render:
 * which steps it does, the render spec their params and inputs make, and
 * the check that every object a spec names is its organisation's. */
#include "actors/jobs/job_internal.h"
#include "actors/render/render_spec.h"
#include "runtime/error.h"
#include "storage/jobs_db.h"
#include "storage/templates_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const json_t *job__type_stages(const job_engine_t *e, const char *type)
{
    const json_t *t = workflow_type_get(e->cfg.types, type);
    const json_t *s = t ? json_object_get(t, "render_stages") : NULL;
    return json_array_size(s) ? s : NULL;
}

static bool is_render(const job_engine_t *e, const workflow_step_t *s)
{
    return job__type_stages(e, s->type) != NULL;
}

static bool is_montage(const job_engine_t *e, const workflow_step_t *s)
{
    /* The montage is the render node that claims the edit. */
    const json_t *st = job__type_stages(e, s->type);
    size_t i;
    json_t *v;
    json_array_foreach(st, i, v) if (strcmp(json_string_value(v), "edit") == 0) return true;
    return false;
}

/* Marks in `in` the render steps reachable from step i through render steps
 * only: upwards (deps) or downwards (dependants). */
static void mark(const job_engine_t *e, const workflow_plan_t *p, size_t i, bool up, bool *in)
{
    if (up) {
        for (size_t d = 0; d < p->steps[i].ndeps; d++) {
            size_t j = p->steps[i].deps[d];
            if (!in[j] && is_render(e, &p->steps[j]) && !is_montage(e, &p->steps[j])) {
                in[j] = true;
                mark(e, p, j, up, in);
            }
        }
    } else {
        for (size_t j = 0; j < p->n; j++)
            for (size_t d = 0; d < p->steps[j].ndeps; d++)
                if (p->steps[j].deps[d] == i && !in[j] && is_render(e, &p->steps[j]) &&
                    !is_montage(e, &p->steps[j])) {
                    in[j] = true;
                    mark(e, p, j, up, in);
                }
    }
}

void job__groups_free(job_group_t *groups, size_t n)
{
    for (size_t i = 0; groups && i < n; i++)
        free(groups[i].members);
    free(groups);
}

int job__groups(const job_engine_t *e, const workflow_plan_t *p, job_group_t **groups,
                size_t *ngroups, char *errbuf, size_t errlen)
{
    *groups = NULL;
    *ngroups = 0;
    int *owner = malloc((p->n ? p->n : 1) * sizeof *owner);
    bool *in = calloc(p->n ? p->n : 1, sizeof *in);
    job_group_t *g = calloc(p->n ? p->n : 1, sizeof *g);
    size_t ng = 0;
    if (!owner || !in || !g) {
        free(owner);
        free(in);
        free(g);
        return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < p->n; i++)
        owner[i] = -1;
    int rc = 0;
    for (size_t m = 0; m < p->n && rc == 0; m++) {
        if (!is_montage(e, &p->steps[m]))
            continue;
        memset(in, 0, p->n * sizeof *in);
        in[m] = true;
        mark(e, p, m, true, in);
        mark(e, p, m, false, in);
        job_group_t *grp = &g[ng++];
        grp->montage = m;
        grp->members = malloc(p->n * sizeof *grp->members);
        if (!grp->members) {
            rc = fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
            break;
        }
        for (size_t i = 0; i < p->n; i++) {
            if (!in[i])
                continue;
            if (owner[i] >= 0 && owner[i] != (int)(ng - 1)) {
                rc = fenta_fail(errbuf, errlen, FENTA_EINVAL,
                                "node '%s' (%s) feeds two montages ('%s' and '%s'); give each "
                                "montage its own",
                                p->steps[i].id, p->steps[i].type, p->steps[g[owner[i]].montage].id,
                                p->steps[m].id);
                break;
            }
            owner[i] = (int)(ng - 1);
            grp->members[grp->n++] = i;
        }
    }
    for (size_t i = 0; i < p->n && rc == 0; i++)
        if (is_render(e, &p->steps[i]) && owner[i] < 0)
            rc = fenta_fail(errbuf, errlen, FENTA_EINVAL,
                            "node '%s' (%s) is not part of any montage's render: connect it to "
                            "a montage",
                            p->steps[i].id, p->steps[i].type);
    free(owner);
    free(in);
    if (rc) {
        job__groups_free(g, ng);
        return rc;
    }
    *groups = g;
    *ngroups = ng;
    return 0;
}

/* The member of type `type`, or NULL. */
static const workflow_step_t *member(const workflow_plan_t *p, const job_group_t *g,
                                     const char *type)
{
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(p->steps[g->members[i]].type, type) == 0)
            return &p->steps[g->members[i]];
    return NULL;
}

/* The value feeding input `port` of step s: the output of a step outside the
 * render (a render step's outputs are the render's own business); NULL. */
static const json_t *fed(const workflow_plan_t *p, const workflow_step_t *s, const char *port,
                         const json_t *outputs)
{
    for (size_t i = 0; s && i < s->ninputs; i++)
        if (strcmp(s->inputs[i].port, port) == 0) {
            const workflow_step_t *from = &p->steps[s->inputs[i].from];
            return json_object_get(json_object_get(outputs, from->id), s->inputs[i].from_port);
        }
    return NULL;
}

/* The template named by a montage: a built-in file, else the organisation's
 * own (templates table); a template object is used as given. */
static json_t *template_of(const job_engine_t *e, pg_conn_t *conn, const char *org_id,
                           const json_t *t, char *errbuf, size_t errlen)
{
    if (json_is_object(t))
        return json_deep_copy(t);
    const char *name = json_is_string(t) ? json_string_value(t) : "clean";
    char err[512] = "";
    json_t *b = render_template_builtin(name, e->schemas_dir, err, sizeof err);
    if (b)
        return b;
    json_t *doc = NULL;
    int rc = conn ? templates_db_doc(conn, org_id, name, &doc) : FENTA_ENOTFOUND;
    if (rc && rc != FENTA_ENOTFOUND && rc != FENTA_EDECODE)
        fenta_fail(errbuf, errlen, rc, "cannot read template '%s': %s", name, fenta_strerror(rc));
    else if (!doc)
        fenta_fail(errbuf, errlen, FENTA_EINVAL, "template '%s' does not exist", name);
    return doc;
}

json_t *job__render_spec(const job_engine_t *e, pg_conn_t *conn, const char *org_id,
                         const workflow_plan_t *p, const job_group_t *g, const json_t *outputs,
                         char *errbuf, size_t errlen)
{
    const workflow_step_t *m = &p->steps[g->montage];
    const workflow_step_t *tts = member(p, g, "tts"), *asr = member(p, g, "asr");
    const workflow_step_t *cap = member(p, g, "captions"), *exp = member(p, g, "export");
    json_t *spec = json_object();
    /* What is said: the text feeding the voice (or the recognition), else
     * the montage's own text input. */
    const json_t *text = tts ? fed(p, tts, "text", outputs) : NULL;
    if (!text && asr)
        text = fed(p, asr, "text", outputs);
    if (!text)
        text = fed(p, m, "text", outputs);
    if (json_is_string(text))
        json_object_set_new(spec, "script", json_string(json_string_value(text)));
    if (tts) {
        json_t *t = json_object();
        json_t *v = json_object_get(tts->params, "voice"),
               *sp = json_object_get(tts->params, "speed");
        if (v)
            json_object_set(t, "voice", v);
        if (sp)
            json_object_set(t, "speed", sp);
        json_object_set_new(spec, "tts", t);
    } else if (asr) {
        const json_t *audio = fed(p, asr, "audio", outputs);
        const char *key = json_string_value(json_object_get(json_array_get(audio, 0), "key"));
        if (!key) {
            json_decref(spec);
            fenta_fail(errbuf, errlen, FENTA_EINVAL, "node '%s': its audio input has no object",
                       asr->id);
            return NULL;
        }
        json_object_set_new(spec, "voice", json_pack("{s{ss}}", "source", "key", key));
    }
    const json_t *media = fed(p, m, "media", outputs);
    if (json_array_size(media)) {
        json_t *list = json_array();
        size_t i;
        json_t *it;
        json_array_foreach(media, i, it)
        {
            const char *key = json_string_value(json_object_get(it, "key"));
            if (key)
                json_array_append_new(list, json_pack("{s{ss}}", "source", "key", key));
        }
        json_object_set_new(spec, "media", list);
    }
    const char *music = json_string_value(json_object_get(m->params, "music"));
    json_object_set_new(spec, "music",
                        music && strcmp(music, "none") == 0 ? json_null()
                                                            : json_string("generated"));
    const char *profile = json_string_value(json_object_get(m->params, "profile"));
    profile = profile ? profile : "1080p";
    json_object_set_new(spec, "profile", json_string(profile));
    json_t *v;
    if ((v = json_object_get(m->params, "title")))
        json_object_set(spec, "title", v);
    if ((v = json_object_get(m->params, "seed")))
        json_object_set(spec, "seed", v);
    /* The template, with the captions node's style and the export node's
     * encoder settings laid over it. */
    json_t *tpl =
        template_of(e, conn, org_id, json_object_get(m->params, "template"), errbuf, errlen);
    if (!tpl) {
        json_decref(spec);
        return NULL;
    }
    if (cap) {
        const char *cname = json_string_value(json_object_get(cap->params, "template"));
        json_t *ct = cname ? render_template_builtin(cname, e->schemas_dir, errbuf, errlen) : NULL;
        if (cname && !ct) {
            json_decref(tpl);
            json_decref(spec);
            return NULL;
        }
        if (ct)
            json_object_set(tpl, "captions", json_object_get(ct, "captions"));
        json_decref(ct);
        json_t *c = json_object_get(tpl, "captions");
        if (!c)
            json_object_set_new(tpl, "captions", c = json_object());
        if ((v = json_object_get(cap->params, "max_words")))
            json_object_set(c, "max_words", v);
        if ((v = json_object_get(cap->params, "uppercase")))
            json_object_set(c, "uppercase", v);
    }
    if (exp) {
        json_t *prof = json_object();
        if ((v = json_object_get(exp->params, "crf")))
            json_object_set(prof, "crf", v);
        if ((v = json_object_get(exp->params, "preset")))
            json_object_set(prof, "preset", v);
        json_t *profs = json_object_get(tpl, "profiles");
        if (!profs)
            json_object_set_new(tpl, "profiles", profs = json_object());
        json_t *cur = json_object_get(profs, profile);
        if (cur)
            json_object_update(cur, prof);
        else
            json_object_set(profs, profile, prof);
        json_decref(prof);
    }
    json_object_set_new(spec, "template", tpl);
    return spec;
}

/* render_tenant_t.owns_job: a row of jobs with that id and organisation. */
static int owns_job(void *arg, const char *org_id, const char *job_id)
{
    job_tenant_t *jt = arg;
    /* Not a uuid: no job's (and the query would only fail on it). */
    size_t n = 0;
    for (; job_id[n]; n++)
        if (!((job_id[n] >= '0' && job_id[n] <= '9') || (job_id[n] >= 'a' && job_id[n] <= 'f') ||
              (job_id[n] == '-' && (n == 8 || n == 13 || n == 18 || n == 23))))
            return 0;
    if (n != 36)
        return 0;
    int err = 0;
    pg_conn_t *c = jt->conn ? jt->conn : pg_acquire(jt->e->cfg.pool, 5000, &err);
    if (!c)
        return err ? err : FENTA_EUNAVAILABLE;
    int rc = jobs_db_exists(c, job_id, org_id);
    rc = rc == 0 ? 1 : rc == FENTA_ENOTFOUND ? 0 : rc;
    if (c != jt->conn)
        pg_release(jt->e->cfg.pool, &c);
    return rc;
}

void job__tenant(job_tenant_t *jt, const job_engine_t *e, pg_conn_t *conn, const char *org_id)
{
    *jt = (job_tenant_t){.t = {.org_id = org_id, .owns_job = owns_job}, .e = e, .conn = conn};
    jt->t.arg = jt;
}

int job__check_spec(const job_engine_t *e, pg_conn_t *conn, const char *org_id, const json_t *spec,
                    char *errbuf, size_t errlen)
{
    job_tenant_t jt;
    job__tenant(&jt, e, conn, org_id);
    render_spec_opts_t o = {
        .objects_dir = e->objects_dir, .schemas_dir = e->schemas_dir, .tenant = &jt.t};
    render_spec_t parsed;
    int rc = render_spec_parse(spec, &o, &parsed, errbuf, errlen);
    render_spec_free(&parsed);
    return rc;
}
