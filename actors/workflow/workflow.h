/* workflow.h - workflow graphs whose node types are data.
 *
 * A node type is a file, schemas/nodes/<type>.json, checked against
 * schemas/nodes/node-type.json: its typed input and output ports, a JSON
 * Schema for its params, its credit cost and the dispatcher it runs on.
 * Adding a node type is adding a file; nothing here names one.
 *
 * A workflow (schemas/workflow.json) is
 *   {"nodes": [{"id": "script", "type": "script.generate", "params": {...}}],
 *    "edges": [{"from": "script.text", "to": "voice.text"}]}
 * where a port ref is "<node id>.<port>": an edge joins an output port to an
 * input port of the same port type (text, audio, words, captions, media,
 * timeline, video, artifacts). An input is fed by at most one edge; an
 * output may feed many. The graph must be acyclic.
 *
 * Credits (the rule the node files declare): a node costs
 *   base + per_second_of_video * S + per_unit.each * params[per_unit.param]
 * where S, the video length, is the largest "duration_s" param in the
 * workflow (a node's own value, or the default its type's params schema
 * gives), 0 when no node type has one; a missing per_unit param counts as
 * its schema default (0 when none). Every figure is rounded to 2 decimals.
 *
 * Everything here is pure (no I/O except workflow_types_load) and a loaded
 * workflow_types_t is immutable, so it may be shared by threads. */
#ifndef FENTA_WORKFLOW_H
#define FENTA_WORKFLOW_H
#include <jansson.h>
#include <stddef.h>

typedef struct workflow_types workflow_types_t;

/* Reads every schemas_dir/nodes/<type>.json but node-type.json (NULL schemas_dir =
 * the source tree's schemas/: fsutil_schemas_dir), checks each against
 * node-type.json, that its file is named after its type, that its port names
 * are [a-z][a-z0-9_]{0,63}, and compiles its params schema; also loads
 * schemas_dir/workflow.json. NULL on failure with errbuf naming the file and
 * the place ("nodes/tts.json: params: #/properties/speed: ..."). */
workflow_types_t *workflow_types_load(const char *schemas_dir, char *errbuf, size_t errlen);

/* Frees the types and NULLs *self_p; accepts NULL and *self_p == NULL. */
void workflow_types_free(workflow_types_t **self_p);

/* The definition of a node type as its file gives it (borrowed, lives as long
 * as t), or NULL when there is no such type. */
const json_t *workflow_type_get(const workflow_types_t *t, const char *name);

/* Every node type's definition, sorted by type name: a new array (the
 * caller's), for the API's listing; NULL when memory ran out. */
json_t *workflow_types_list(const workflow_types_t *t);

/* Checks doc (borrowed) against schemas/workflow.json and the node types.
 * Returns 0; or FENTA_EINVAL with *problems (when problems is not NULL) a new
 * array (the caller's) of every problem found, each
 *   {"code": ..., "node": id, "port": name, "message": text, ...}
 * with code one of
 *   invalid_document  the document's shape ("path" says where),
 *   duplicate_node    a second node with an id already used,
 *   unknown_type      "type" names no node type,
 *   missing_param / invalid_param  from the type's params schema ("path" is
 *                     the place in the document: "$.nodes[0].params.topic"),
 *   dangling_edge     an edge names a node that does not exist ("edge" is its
 *                     index, "node" the missing id),
 *   unknown_port      the node's type has no such output (from) / input (to),
 *   type_mismatch     the output's port type differs from the input's ("node"
 *                     and "port" are the input's),
 *   multiple_inputs   more than one edge into one input,
 *   missing_input     a required input no edge feeds,
 *   cycle             "nodes" lists the ids on the cycle in edge order,
 *                     starting at the one first in the document; one problem
 *                     per strongly connected group of nodes.
 * FENTA_ENOMEM (and *problems NULL) if memory ran out. */
int workflow_validate(const workflow_types_t *t, const json_t *doc, json_t **problems);

/* One input of a step, bound to the output that feeds it. */
typedef struct workflow_input {
    char *port;      /* this step's input port; owned */
    size_t from;     /* index in the plan of the step that feeds it */
    char *from_port; /* that step's output port; owned */
} workflow_input_t;

/* One node of a valid workflow, in an order where every step comes after the
 * steps it depends on. */
typedef struct workflow_step {
    char *id;                 /* the node's id; owned */
    char *type;               /* its node type; owned */
    char *dispatcher;         /* "default", "io" or "render", from the type; owned */
    json_t *params;           /* the node's params ({} when absent); a reference owned */
    size_t *deps;             /* indices of the steps feeding this one, ascending, unique */
    size_t ndeps;             /* entries in deps; 0 = can start at once */
    workflow_input_t *inputs; /* the inputs that are fed, in edge order */
    size_t ninputs;           /* entries in inputs */
    size_t level;             /* 0 without deps, else 1 + the largest level of its deps */
} workflow_step_t;

/* A valid workflow in topological order: of the steps whose deps are placed,
 * the one first in the document comes next, so a document already in order
 * keeps it. A job actor may start any step whose deps have finished, so
 * independent branches (steps neither of which reaches the other) run in
 * parallel; steps of one level never depend on each other. */
typedef struct workflow_plan {
    workflow_step_t *steps; /* owned */
    size_t n;               /* entries in steps */
} workflow_plan_t;

/* Validates doc and plans it into *out. Returns 0; FENTA_EINVAL with
 * *problems as workflow_validate gives them (when problems is not NULL);
 * FENTA_ENOMEM. On failure *out owns nothing. */
int workflow_plan(const workflow_types_t *t, const json_t *doc, workflow_plan_t *out,
                  json_t **problems);

/* Frees what *p owns and zeroes it; a zeroed plan is a no-op. */
void workflow_plan_free(workflow_plan_t *p);

/* The node ids of a valid doc in the plan's order: *ids is a new array of n
 * new strings (the caller frees each and the array). FENTA_EINVAL when doc is
 * not valid (workflow_validate says why), FENTA_ENOMEM. */
int workflow_order(const workflow_types_t *t, const json_t *doc, char ***ids, size_t *n);

/* The credits a valid doc costs: *out is a new object (the caller's)
 *   {"nodes": [{"id", "type", "credits"}], "total": N, "video_seconds": S}
 * with nodes in document order. FENTA_EINVAL when doc is not valid,
 * FENTA_ENOMEM. */
int workflow_estimate(const workflow_types_t *t, const json_t *doc, json_t **out);

/* Merges run inputs ({node id: {param: value}}, borrowed; NULL = none) over
 * the params of graph's nodes (changed in place). Returns 0; or
 * FENTA_EINVAL when inputs name nodes the graph lacks, with *unknown (when
 * not NULL) a new array of {"path": "$.inputs", "message": node id}, and
 * the known ones merged all the same. */
int workflow_apply_inputs(json_t *graph, const json_t *inputs, json_t **unknown);

#endif
