/* workflow_graph.c - a workflow document as a graph: every problem at once,
 * the plan (topological order with dependencies) and the credit estimate.
 * See workflow.h. */
#include "actors/workflow/workflow_internal.h"
#include "runtime/error.h"
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The param that states how long the video is, for per_second_of_video. */
#define VIDEO_SECONDS_PARAM "duration_s"

typedef struct gnode {
    const char *id;             /* borrowed from the document */
    const workflow__type_t *ty; /* NULL when the type is unknown */
    const json_t *params;       /* borrowed; NULL when absent */
    size_t pos;                 /* index in the document's nodes */
} gnode_t;

typedef struct gedge {
    size_t from, to;                 /* indices into graph.nodes; from is SIZE_MAX when dangling */
    const char *from_port, *to_port; /* borrowed from the refs, after the '.' */
    bool to_known;                   /* the input port exists on a known type */
} gedge_t;

typedef struct graph {
    gnode_t *nodes; /* the distinct, identified nodes, in document order */
    size_t n;
    gedge_t *edges; /* edges into existing nodes, in document order */
    size_t ne;
    json_t *problems; /* every problem found */
    bool oom;         /* memory ran out; problems are incomplete */
} graph_t;

static void graph_free(graph_t *g)
{
    free(g->nodes);
    free(g->edges);
    json_decref(g->problems);
    *g = (graph_t){0};
}

/* Appends a problem and returns it (borrowed), for extra members. */
__attribute__((format(printf, 5, 6))) static json_t *
problem(graph_t *g, const char *code, const char *node, const char *port, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *p = json_object();
    if (!p || json_object_set_new(p, "code", json_string(code)) ||
        (node && json_object_set_new(p, "node", json_string(node))) ||
        (port && json_object_set_new(p, "port", json_string(port))) ||
        json_object_set_new(p, "message", json_string(msg))) {
        json_decref(p);
        g->oom = true;
        return NULL;
    }
    if (json_array_append_new(g->problems, p)) { /* p is freed by jansson */
        g->oom = true;
        return NULL;
    }
    return p;
}

static void set_extra(graph_t *g, json_t *p, const char *key, json_t *v)
{
    if (!p || json_object_set_new(p, key, v))
        g->oom = true;
}

/* The node whose id is the len bytes at id, or -1. */
static long find_node(const graph_t *g, const char *id, size_t len)
{
    for (size_t i = 0; i < g->n; i++)
        if (strncmp(g->nodes[i].id, id, len) == 0 && g->nodes[i].id[len] == '\0')
            return (long)i;
    return -1;
}

/* Schema problems, re-coded, with their paths under prefix. */
static void add_schema_problems(graph_t *g, json_t *ps, const char *code_missing,
                                const char *code_other, const char *prefix, const char *node)
{
    size_t i;
    json_t *p;
    json_array_foreach(ps, i, p)
    {
        const char *kw = json_string_value(json_object_get(p, "keyword"));
        const char *path = json_string_value(json_object_get(p, "path"));
        const char *msg = json_string_value(json_object_get(p, "message"));
        char full[512];
        snprintf(full, sizeof full, "%s%s", prefix, path ? path + 1 : "");
        const char *code = kw && strcmp(kw, "required") == 0 ? code_missing : code_other;
        json_t *q = problem(g, code, node, NULL, "%s: %s", full, msg ? msg : "is invalid");
        set_extra(g, q, "path", json_string(full));
    }
}

static void check_nodes(const workflow_types_t *t, graph_t *g, const json_t *nodes)
{
    size_t i;
    json_t *nd;
    json_array_foreach(nodes, i, nd)
    {
        const char *id = json_string_value(json_object_get(nd, "id"));
        if (!id)
            continue; /* the document schema said so */
        if (find_node(g, id, strlen(id)) >= 0) {
            problem(g, "duplicate_node", id, NULL, "node \"%s\" (nodes[%zu]) is defined twice", id,
                    i);
            continue;
        }
        const char *type = json_string_value(json_object_get(nd, "type"));
        const json_t *params = json_object_get(nd, "params");
        gnode_t *gn = &g->nodes[g->n++];
        *gn = (gnode_t){.id = id, .ty = workflow__type_find(t, type), .params = params, .pos = i};
        if (!gn->ty) {
            if (type)
                problem(g, "unknown_type", id, NULL, "node \"%s\": there is no node type \"%s\"",
                        id, type);
            continue;
        }
        if (params && !json_is_object(params))
            continue; /* the document schema said so */
        json_t *empty = params ? NULL : json_object(), *ps = NULL;
        int rc = jsonschema_validate(gn->ty->params, params ? params : empty, &ps);
        json_decref(empty);
        if (rc == FENTA_ENOMEM || (rc && !ps)) {
            g->oom = true;
            continue;
        }
        char prefix[64];
        snprintf(prefix, sizeof prefix, "$.nodes[%zu].params", i);
        add_schema_problems(g, ps, "missing_param", "invalid_param", prefix, id);
        json_decref(ps);
    }
}

/* Splits ref at its first '.'; false when it has none (the schema said so). */
static bool split_ref(const char *ref, size_t *idlen, const char **port)
{
    const char *dot = ref ? strchr(ref, '.') : NULL;
    if (!dot || dot == ref || !dot[1])
        return false;
    *idlen = (size_t)(dot - ref);
    *port = dot + 1;
    return true;
}

/* One end of an edge: the node (or -1, reported) and whether its port exists
 * (an unknown type's ports are not reported: unknown_type said it). */
static long edge_end(graph_t *g, size_t e, const char *ref, size_t idlen, const char *port,
                     const char *dir, const char **ptype)
{
    long v = find_node(g, ref, idlen);
    *ptype = NULL;
    if (v < 0) {
        char id[128];
        snprintf(id, sizeof id, "%.*s", (int)(idlen < 100 ? idlen : 100), ref);
        json_t *p = problem(g, "dangling_edge", id, NULL, "edges[%zu]: \"%s\" names no node \"%s\"",
                            e, ref, id);
        set_extra(g, p, "edge", json_integer((json_int_t)e));
        return -1;
    }
    const gnode_t *n = &g->nodes[v];
    if (n->ty) {
        *ptype = workflow__port_type(n->ty, dir, port, n->params);
        if (!*ptype) {
            json_t *p = problem(g, "unknown_port", n->id, port,
                                "edges[%zu]: node \"%s\" (%s) has no %s \"%s\"", e, n->id,
                                n->ty->name, dir[0] == 'i' ? "input" : "output", port);
            set_extra(g, p, "edge", json_integer((json_int_t)e));
        }
    }
    return v;
}

static void check_edges(graph_t *g, const json_t *edges)
{
    size_t e;
    json_t *ed;
    json_array_foreach(edges, e, ed)
    {
        const char *from = json_string_value(json_object_get(ed, "from"));
        const char *to = json_string_value(json_object_get(ed, "to"));
        size_t fl, tl;
        const char *fp, *tp;
        if (!split_ref(from, &fl, &fp) || !split_ref(to, &tl, &tp))
            continue; /* the document schema said so */
        const char *ftype, *ttype;
        long f = edge_end(g, e, from, fl, fp, "outputs", &ftype);
        long v = edge_end(g, e, to, tl, tp, "inputs", &ttype);
        if (v < 0)
            continue;
        if (f < 0) {
            /* Still feeds its input, so the input is not also reported as
             * missing; SIZE_MAX is no node, so no pass follows it back. */
            g->edges[g->ne++] = (gedge_t){
                .from = SIZE_MAX, .to = (size_t)v, .to_port = tp, .to_known = ttype != NULL};
            continue;
        }
        const char *tid = g->nodes[v].id;
        if (ftype && ttype && strcmp(ftype, ttype) != 0) {
            json_t *p = problem(g, "type_mismatch", tid, tp,
                                "edges[%zu]: input \"%s\" takes %s but \"%s\" gives %s", e, to,
                                ttype, from, ftype);
            set_extra(g, p, "edge", json_integer((json_int_t)e));
        }
        if (ttype) {
            size_t feeds = 0;
            for (size_t k = 0; k < g->ne; k++)
                if (g->edges[k].to_known && g->edges[k].to == (size_t)v &&
                    strcmp(g->edges[k].to_port, tp) == 0)
                    feeds++;
            if (feeds == 1) {
                json_t *p = problem(g, "multiple_inputs", tid, tp,
                                    "input \"%s\" is fed by more than one edge (edges[%zu] is "
                                    "another)",
                                    to, e);
                set_extra(g, p, "edge", json_integer((json_int_t)e));
            }
        }
        g->edges[g->ne++] = (gedge_t){.from = (size_t)f,
                                      .to = (size_t)v,
                                      .from_port = fp,
                                      .to_port = tp,
                                      .to_known = ttype != NULL};
    }
}

static void check_inputs(graph_t *g)
{
    for (size_t v = 0; v < g->n; v++) {
        const gnode_t *n = &g->nodes[v];
        if (!n->ty)
            continue;
        const char *port;
        json_t *spec;
        json_object_foreach((json_t *)json_object_get(n->ty->def, "inputs"), port, spec)
        {
            if (!json_is_true(json_object_get(spec, "required")))
                continue;
            bool fed = false;
            for (size_t k = 0; k < g->ne && !fed; k++)
                fed = g->edges[k].to == v && strcmp(g->edges[k].to_port, port) == 0;
            if (!fed)
                problem(g, "missing_input", n->id, port,
                        "node \"%s\" (%s): required input \"%s\" (%s) has no edge", n->id,
                        n->ty->name, port, json_string_value(json_object_get(spec, "type")));
        }
    }
}

/* ---- cycles: Tarjan's strongly connected components ----------------------
 * Recursion depth is at most the node count, which the document schema caps
 * (the graph pass does not run on documents past its maxItems). */

typedef struct tarjan {
    const graph_t *g;
    long *index, *low, *comp; /* per node; -1 = unvisited / unassigned */
    size_t *stack;
    bool *on;
    size_t sp, next, ncomp;
} tarjan_t;

static void strongconnect(tarjan_t *s, size_t v)
{
    s->index[v] = s->low[v] = (long)s->next++;
    s->stack[s->sp++] = v;
    s->on[v] = true;
    for (size_t k = 0; k < s->g->ne; k++) {
        if (s->g->edges[k].from != v)
            continue;
        size_t w = s->g->edges[k].to;
        if (s->index[w] < 0) {
            strongconnect(s, w);
            if (s->low[w] < s->low[v])
                s->low[v] = s->low[w];
        } else if (s->on[w] && s->index[w] < s->low[v]) {
            s->low[v] = s->index[w];
        }
    }
    if (s->low[v] == s->index[v]) {
        size_t w;
        do {
            w = s->stack[--s->sp];
            s->on[w] = false;
            s->comp[w] = (long)s->ncomp;
        } while (w != v);
        s->ncomp++;
    }
}

/* The shortest cycle through start inside its component, in edge order
 * (breadth-first, so the cycle reported is the tightest one). */
static json_t *cycle_through(const tarjan_t *s, size_t start, size_t *queue, long *parent)
{
    const graph_t *g = s->g;
    for (size_t i = 0; i < g->n; i++)
        parent[i] = -1;
    size_t qh = 0, qt = 0, last = start;
    bool found = false;
    queue[qt++] = start;
    parent[start] = (long)start;
    while (qh < qt && !found) {
        size_t u = queue[qh++];
        for (size_t k = 0; k < g->ne && !found; k++) {
            const gedge_t *e = &g->edges[k];
            if (e->from != u || s->comp[e->to] != s->comp[start])
                continue;
            if (e->to == start) {
                found = true;
                last = u;
            } else if (parent[e->to] < 0) {
                parent[e->to] = (long)u;
                queue[qt++] = e->to;
            }
        }
    }
    size_t len = 1;
    for (size_t v = last; v != start; v = (size_t)parent[v])
        len++;
    json_t *ids = json_array();
    for (size_t i = 0; ids && i < len; i++) {
        size_t v = last;
        for (size_t j = 0; j < len - 1 - i; j++)
            v = (size_t)parent[v];
        if (json_array_append_new(ids, json_string(g->nodes[v].id))) {
            json_decref(ids);
            return NULL;
        }
    }
    return ids;
}

static void check_cycles(graph_t *g)
{
    size_t n = g->n ? g->n : 1;
    tarjan_t s = {.g = g,
                  .index = malloc(n * sizeof(long)),
                  .low = malloc(n * sizeof(long)),
                  .comp = malloc(n * sizeof(long)),
                  .stack = malloc(n * sizeof(size_t)),
                  .on = calloc(n, sizeof(bool))};
    size_t *queue = malloc(n * sizeof(size_t));
    long *parent = malloc(n * sizeof(long));
    bool *reported = calloc(n, sizeof(bool));
    if (!s.index || !s.low || !s.comp || !s.stack || !s.on || !queue || !parent || !reported) {
        g->oom = true;
        goto done;
    }
    for (size_t v = 0; v < g->n; v++)
        s.index[v] = s.comp[v] = -1;
    for (size_t v = 0; v < g->n; v++)
        if (s.index[v] < 0)
            strongconnect(&s, v);
    size_t *size = calloc(s.ncomp ? s.ncomp : 1, sizeof(size_t));
    if (!size) {
        g->oom = true;
        goto done;
    }
    for (size_t v = 0; v < g->n; v++)
        size[s.comp[v]]++;
    for (size_t k = 0; k < g->ne; k++)
        if (g->edges[k].from == g->edges[k].to)
            size[s.comp[g->edges[k].from]] = 2; /* a self-loop is a cycle of one */
    /* Nodes in document order: the first of a component starts its cycle. */
    for (size_t v = 0; v < g->n; v++) {
        size_t c = (size_t)s.comp[v];
        if (size[c] < 2 || reported[c])
            continue;
        reported[c] = true;
        json_t *ids = cycle_through(&s, v, queue, parent);
        if (!ids) {
            g->oom = true;
            break;
        }
        char text[400] = "";
        size_t len = 0, i;
        json_t *id;
        json_array_foreach(ids, i, id) if (len < sizeof text) len +=
            (size_t)snprintf(text + len, sizeof text - len, "%s -> ", json_string_value(id));
        if (len < sizeof text)
            snprintf(text + len, sizeof text - len, "%s", g->nodes[v].id);
        json_t *p = problem(g, "cycle", g->nodes[v].id, NULL, "cycle: %s", text);
        set_extra(g, p, "nodes", ids);
    }
    free(size);
done:
    free(s.index);
    free(s.low);
    free(s.comp);
    free(s.stack);
    free(s.on);
    free(queue);
    free(parent);
    free(reported);
}

/* Builds the graph of doc and every problem in it. 0, or FENTA_ENOMEM. */
static int graph_build(const workflow_types_t *t, const json_t *doc, graph_t *g)
{
    *g = (graph_t){.problems = json_array()};
    if (!g->problems)
        return FENTA_ENOMEM;
    json_t *ps = NULL;
    int rc = jsonschema_validate(t->doc_schema, doc, &ps);
    if (rc == FENTA_ENOMEM || (rc && !ps)) {
        graph_free(g);
        return FENTA_ENOMEM;
    }
    add_schema_problems(g, ps, "invalid_document", "invalid_document", "$", NULL);
    json_decref(ps);
    const json_t *nodes = json_object_get(doc, "nodes"), *edges = json_object_get(doc, "edges");
    /* Past the schema's limits the graph is not looked at: the schema's
     * problem says why, and the passes below may assume small graphs. */
    if (json_array_size(nodes) > t->max_nodes || json_array_size(edges) > t->max_edges)
        return g->oom ? (graph_free(g), FENTA_ENOMEM) : 0;
    g->nodes = calloc(json_array_size(nodes) + 1, sizeof *g->nodes);
    g->edges = calloc(json_array_size(edges) + 1, sizeof *g->edges);
    if (!g->nodes || !g->edges) {
        graph_free(g);
        return FENTA_ENOMEM;
    }
    check_nodes(t, g, nodes);
    check_edges(g, edges);
    check_inputs(g);
    check_cycles(g);
    if (g->oom) {
        graph_free(g);
        return FENTA_ENOMEM;
    }
    return 0;
}

int workflow_validate(const workflow_types_t *t, const json_t *doc, json_t **problems)
{
    if (problems)
        *problems = NULL;
    graph_t g;
    int rc = graph_build(t, doc, &g);
    if (rc)
        return rc;
    if (json_array_size(g.problems) == 0) {
        graph_free(&g);
        return 0;
    }
    if (problems)
        *problems = json_incref(g.problems);
    graph_free(&g);
    return FENTA_EINVAL;
}

/* ---- the plan ------------------------------------------------------------ */

void workflow_plan_free(workflow_plan_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++) {
        workflow_step_t *s = &p->steps[i];
        free(s->id);
        free(s->type);
        free(s->dispatcher);
        json_decref(s->params);
        free(s->deps);
        for (size_t k = 0; k < s->ninputs; k++) {
            free(s->inputs[k].port);
            free(s->inputs[k].from_port);
        }
        free(s->inputs);
    }
    free(p->steps);
    *p = (workflow_plan_t){0};
}

/* Fills step at (whose node is g->nodes[v]) from the graph; rank maps a node
 * to its step index, every dep already ranked. */
static int fill_step(const graph_t *g, size_t v, const size_t *rank, const size_t *level,
                     workflow_step_t *s)
{
    const gnode_t *n = &g->nodes[v];
    s->id = strdup(n->id);
    s->type = strdup(n->ty->name);
    s->dispatcher = strdup(json_string_value(json_object_get(n->ty->def, "dispatcher")));
    s->params = n->params ? json_incref((json_t *)n->params) : json_object();
    s->level = level[v];
    size_t nin = 0;
    for (size_t k = 0; k < g->ne; k++)
        nin += g->edges[k].to == v;
    s->deps = calloc(nin + 1, sizeof *s->deps);
    s->inputs = calloc(nin + 1, sizeof *s->inputs);
    if (!s->id || !s->type || !s->dispatcher || !s->params || !s->deps || !s->inputs)
        return FENTA_ENOMEM;
    for (size_t k = 0; k < g->ne; k++) {
        const gedge_t *e = &g->edges[k];
        if (e->to != v)
            continue;
        workflow_input_t *in = &s->inputs[s->ninputs++];
        *in = (workflow_input_t){
            .port = strdup(e->to_port), .from = rank[e->from], .from_port = strdup(e->from_port)};
        if (!in->port || !in->from_port)
            return FENTA_ENOMEM;
        /* deps: ascending and unique, by insertion */
        size_t d = rank[e->from], j = 0;
        while (j < s->ndeps && s->deps[j] < d)
            j++;
        if (j < s->ndeps && s->deps[j] == d)
            continue;
        memmove(s->deps + j + 1, s->deps + j, (s->ndeps - j) * sizeof *s->deps);
        s->deps[j] = d;
        s->ndeps++;
    }
    return 0;
}

int workflow_plan(const workflow_types_t *t, const json_t *doc, workflow_plan_t *out,
                  json_t **problems)
{
    *out = (workflow_plan_t){0};
    if (problems)
        *problems = NULL;
    graph_t g;
    int rc = graph_build(t, doc, &g);
    if (rc)
        return rc;
    if (json_array_size(g.problems) > 0) {
        if (problems)
            *problems = json_incref(g.problems);
        graph_free(&g);
        return FENTA_EINVAL;
    }
    size_t n = g.n;
    size_t *indeg = calloc(n + 1, sizeof(size_t)), *rank = calloc(n + 1, sizeof(size_t));
    size_t *level = calloc(n + 1, sizeof(size_t));
    bool *done = calloc(n + 1, sizeof(bool));
    out->steps = calloc(n + 1, sizeof *out->steps);
    rc = indeg && rank && level && done && out->steps ? 0 : FENTA_ENOMEM;
    for (size_t k = 0; !rc && k < g.ne; k++)
        indeg[g.edges[k].to]++;
    /* Kahn's algorithm taking the ready node first in the document, so a
     * document already in order keeps it. The graph is acyclic (validated),
     * so every round finds one. */
    for (size_t i = 0; !rc && i < n; i++) {
        size_t v = 0;
        while (done[v] || indeg[v])
            v++;
        done[v] = true;
        rank[v] = i;
        for (size_t k = 0; k < g.ne; k++) {
            if (g.edges[k].from != v)
                continue;
            indeg[g.edges[k].to]--;
            if (level[g.edges[k].to] < level[v] + 1)
                level[g.edges[k].to] = level[v] + 1;
        }
        out->n++;
        rc = fill_step(&g, v, rank, level, &out->steps[i]);
    }
    free(indeg);
    free(rank);
    free(level);
    free(done);
    graph_free(&g);
    if (rc)
        workflow_plan_free(out);
    return rc;
}

int workflow_order(const workflow_types_t *t, const json_t *doc, char ***ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    workflow_plan_t p;
    int rc = workflow_plan(t, doc, &p, NULL);
    if (rc)
        return rc;
    char **v = calloc(p.n + 1, sizeof *v);
    if (!v) {
        workflow_plan_free(&p);
        return FENTA_ENOMEM;
    }
    for (size_t i = 0; i < p.n; i++) {
        v[i] = p.steps[i].id; /* moved out of the plan */
        p.steps[i].id = NULL;
    }
    *ids = v;
    *n = p.n;
    workflow_plan_free(&p);
    return 0;
}

/* ---- credits ------------------------------------------------------------- */

/* params[name] when it is a number, else the default the params schema gives
 * it, else -1 when the type has no such param. */
static double param_number(const gnode_t *n, const char *name)
{
    const json_t *v = json_object_get(n->params, name);
    if (json_is_number(v))
        return json_number_value(v);
    const json_t *spec =
        json_object_get(json_object_get(json_object_get(n->ty->def, "params"), "properties"), name);
    if (!spec)
        return -1;
    v = json_object_get(spec, "default");
    return json_is_number(v) ? json_number_value(v) : 0;
}

static double round2(double x)
{
    return round(x * 100.0) / 100.0;
}

int workflow_estimate(const workflow_types_t *t, const json_t *doc, json_t **out)
{
    *out = NULL;
    graph_t g;
    int rc = graph_build(t, doc, &g);
    if (rc)
        return rc;
    if (json_array_size(g.problems) > 0) {
        graph_free(&g);
        return FENTA_EINVAL;
    }
    double seconds = 0;
    for (size_t v = 0; v < g.n; v++) {
        double d = param_number(&g.nodes[v], VIDEO_SECONDS_PARAM);
        if (d > seconds)
            seconds = d;
    }
    json_t *res = json_object(), *list = json_array();
    double total = 0;
    rc = res && list && !json_object_set(res, "nodes", list) ? 0 : FENTA_ENOMEM;
    for (size_t v = 0; !rc && v < g.n; v++) {
        const gnode_t *n = &g.nodes[v];
        const json_t *cr = json_object_get(n->ty->def, "credits");
        double c = json_number_value(json_object_get(cr, "base")) +
                   json_number_value(json_object_get(cr, "per_second_of_video")) * seconds;
        const json_t *pu = json_object_get(cr, "per_unit");
        if (pu) {
            double units = param_number(n, json_string_value(json_object_get(pu, "param")));
            c += json_number_value(json_object_get(pu, "each")) * (units > 0 ? units : 0);
        }
        c = round2(c);
        total += c;
        json_t *item = json_pack("{s:s, s:s, s:f}", "id", n->id, "type", n->ty->name, "credits", c);
        if (!item || json_array_append_new(list, item))
            rc = FENTA_ENOMEM;
    }
    if (!rc && (json_object_set_new(res, "total", json_real(round2(total))) ||
                json_object_set_new(res, "video_seconds", json_real(seconds))))
        rc = FENTA_ENOMEM;
    json_decref(list);
    graph_free(&g);
    if (rc) {
        json_decref(res);
        return rc;
    }
    *out = res;
    return 0;
}

int workflow_apply_inputs(json_t *graph, const json_t *inputs, json_t **unknown)
{
    json_t *missing = json_array();
    if (!missing)
        return FENTA_ENOMEM;
    const char *nid;
    json_t *vals;
    json_object_foreach((json_t *)inputs, nid, vals)
    {
        json_t *hit = NULL, *n;
        size_t i;
        json_array_foreach(json_object_get(graph, "nodes"), i, n)
        {
            const char *id = json_string_value(json_object_get(n, "id"));
            if (id && strcmp(id, nid) == 0)
                hit = n;
        }
        if (!hit) {
            json_array_append_new(missing,
                                  json_pack("{ss ss}", "path", "$.inputs", "message", nid));
            continue;
        }
        json_t *params = json_object_get(hit, "params");
        if (!params)
            json_object_set_new(hit, "params", params = json_object());
        if (json_is_object(vals))
            json_object_update(params, vals);
    }
    if (json_array_size(missing) == 0) {
        json_decref(missing);
        return 0;
    }
    if (unknown)
        *unknown = missing;
    else
        json_decref(missing);
    return FENTA_EINVAL;
}
