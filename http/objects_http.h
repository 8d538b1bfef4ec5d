/* objects_http.h - downloads from the object store through presigned URLs:
 * GET and HEAD /v1/objects/{key...}?expires=&sig=, or ?expires=&ip=&sig=
 * for a URL bound to one client address (see storage/objects.h).
 *
 * Served on the event loop, streamed from the open file in 64 KiB chunks
 * (never read whole into memory), so a browser's video player can seek:
 *   200 with Content-Type (from the extension), Content-Length,
 *       Accept-Ranges: bytes, ETag, Last-Modified,
 *       Cache-Control: private, max-age=<seconds until the URL expires>;
 *   206 with Content-Range for one range (bytes=a-b, bytes=a-, bytes=-n);
 *       a Range with several ranges, a malformed one, or an If-Range that
 *       does not match the ETag is answered with the full 200 (RFC 9110
 *       lets a server ignore Range);
 *   304 for a matching If-None-Match;
 *   416 with Content-Range: bytes STAR/size when no byte of the range exists;
 *   403 {"error":{"code":"forbidden",...}}: bad signature ("...signature...",
 *       also for an IP-bound URL asked for from another address) or
 *       expired URL ("...expired...");
 *   400 for a malformed key or missing expires/sig; 404 when the object is
 *   missing (after the signature check: nothing leaks to unsigned probes).
 * Errors are JSON {"error":{"code","message","details":null}}; every answer
 * has X-Request-Id and one JSON access-log line with route
 * "/v1/objects/{key}" and counts in fenta_http_requests_total.
 *
 * Why not a row of the route table: handlers there build their response in
 * memory on a worker, and the router has no multi-segment parameter. This
 * handler sits on its own h2o path ("/v1/objects") in front of the router;
 * it does no blocking work beyond stat/open/pread of local files (as h2o's
 * own file handler does on its loop). */
#ifndef FENTA_HTTP_OBJECTS_HTTP_H
#define FENTA_HTTP_OBJECTS_HTTP_H
#include "http/server.h"
#include "storage/objects.h"

struct st_h2o_hostconf_t; /* h2o_hostconf_t, without pulling <h2o.h> in */

/* Mounts the download handler on the Fenta server. Call after
 * http_server_new and before http_server_start; o is borrowed and must
 * outlive the server. 0; FENTA_EINVAL (NULL argument), FENTA_ENOMEM. */
int objects_http_mount(http_server_t *server, objects_t *o);

/* The same on any h2o host configuration (before its contexts are
 * initialised): what objects_http_mount does with the server's host, and
 * what tests use to serve it from a bare h2o loop. */
int objects_http_mount_host(struct st_h2o_hostconf_t *host, objects_t *o);

#endif
