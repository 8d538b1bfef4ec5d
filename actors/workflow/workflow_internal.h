/* workflow_internal.h - what workflow_types.c and workflow_graph.c share:
 * the loaded node types. Not for use outside actors/workflow/. */
#ifndef FENTA_WORKFLOW_INTERNAL_H
#define FENTA_WORKFLOW_INTERNAL_H
#include "actors/workflow/workflow.h"
#include "json/jsonschema.h"

/* One node type, loaded from schemas/nodes/<name>.json. */
typedef struct workflow__type {
    const char *name;     /* the def's "type"; borrowed from def */
    json_t *def;          /* the file's JSON; owned */
    jsonschema_t *params; /* the compiled params schema; owned */
} workflow__type_t;

struct workflow_types {
    workflow__type_t *v;      /* sorted by name; owned */
    size_t n;                 /* entries in v */
    jsonschema_t *doc_schema; /* schemas/workflow.json; owned */
    size_t max_nodes;         /* the document schema's nodes.maxItems */
    size_t max_edges;         /* the document schema's edges.maxItems */
};

/* The type called name, or NULL. */
const workflow__type_t *workflow__type_find(const workflow_types_t *t, const char *name);

/* The port type of the node's input (dir "inputs") or output (dir "outputs")
 * port, honouring an output's type_from_param with the node's params
 * (borrowed, may be NULL); NULL when the type has no such port. */
const char *workflow__port_type(const workflow__type_t *ty, const char *dir, const char *port,
                                const json_t *params);

#endif
