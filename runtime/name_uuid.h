/* name_uuid.h - name-based UUIDs (RFC 9562 version 5 layout, SHA-1): the
 * same name gives the same id on every node and every replay, which is how
 * a firing's job and an event's delivery are made at most once. */
#ifndef FENTA_NAME_UUID_H
#define FENTA_NAME_UUID_H
#include <stddef.h>

/* The UUID of name (len bytes) as 36 characters and a NUL into out. */
void name_uuid(const char *name, size_t len, char out[37]);

#endif
