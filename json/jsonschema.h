/* jsonschema.h - a validator for the JSON Schema subset Fenta's request
 * schemas use, on jansson values.
 *
 * The subset (anything else is refused by jsonschema_compile, so a schema
 * never silently means less than it says):
 *   type (a name or an array of names; "integer" is a JSON integer or a real
 *     with no fraction; nullable is spelt "type": ["string", "null"]),
 *   properties, required, additionalProperties (false or a schema),
 *   enum, const (numbers compare by value: 1 equals 1.0),
 *   minimum, maximum, exclusiveMinimum, exclusiveMaximum (numbers, as in
 *     2020-12; the draft-04 boolean form is also accepted),
 *   minLength, maxLength (counted in Unicode code points, not bytes),
 *   pattern (POSIX *extended* regular expression, regex.h, compiled once;
 *     NOT ECMA-262: no \d, \w, lookaround or lazy quantifiers; bytes, not
 *     code points, for "." and bracket expressions; unanchored like ECMA),
 *   items (one schema for every item), minItems, maxItems, uniqueItems,
 *   format: uuid (8-4-4-4-12 hex, either case), email (pragmatic: WHATWG's
 *     ASCII form, dotted domain, no empty or doubled dots), uri (absolute:
 *     scheme ":" then RFC 3986 characters), date-time (RFC 3339 with real
 *     calendar ranges; second 60 only at 23:59 UTC),
 *   $ref to "#", "#/$defs/<name>" or "#/definitions/<name>" (root level
 *     definitions only), boolean schemas true/false,
 *   annotations that are ignored: title, description, default, examples,
 *     $schema, $id, $comment, readOnly, writeOnly, deprecated.
 *
 * A compiled schema is immutable: validating with it from many threads at
 * once is safe (glibc's regexec serialises on the pattern internally). */
#ifndef FENTA_JSONSCHEMA_H
#define FENTA_JSONSCHEMA_H
#include <jansson.h>
#include <stddef.h>

typedef struct jsonschema jsonschema_t;

/* Compiles schema (borrowed; nothing is kept from it). NULL on failure with
 * a message naming the JSON Pointer of the offending place in errbuf (when
 * errbuf is not NULL), e.g. "#/properties/age: unsupported keyword \"allOf\"". */
jsonschema_t *jsonschema_compile(const json_t *schema, char *errbuf, size_t errlen);

/* Reads a JSON file (duplicate keys refused) and compiles it; NULL with a
 * message in errbuf on failure. */
jsonschema_t *jsonschema_load_file(const char *path, char *errbuf, size_t errlen);

/* Frees the schema and NULLs *self_p; accepts NULL and *self_p == NULL. */
void jsonschema_free(jsonschema_t **self_p);

/* 0 if instance is valid. Otherwise FENTA_EINVAL and, when problems is not
 * NULL, *problems is a new JSON array (the caller's) of every problem, each
 * {"path": "$.members[2].email", "keyword": "format",
 *  "message": "must be an email address"}.
 * Paths are JSONPath-ish: "$" is the instance, ".name" a member with a plain
 * name, "['odd key']" any other member, "[3]" an item. A missing required
 * member is reported at its own path. Order is stable: a value's own keywords
 * first, then required members in schema order, then members in instance
 * order, then items by index. When problems is NULL validation stops at the
 * first problem. FENTA_ENOMEM (and *problems NULL) if memory ran out. */
int jsonschema_validate(const jsonschema_t *schema, const json_t *instance, json_t **problems);

/* Writes prefix and then the problems from jsonschema_validate as one line,
 * "path: message; path: message", into errbuf (cut at errlen), for callers
 * that report a whole document's problems as a single error message. */
void jsonschema_describe(const json_t *problems, const char *prefix, char *errbuf, size_t errlen);

#endif
