/* objects_http.h - downloads from the object store through presigned URLs:
 * GET and HEAD /v1/objects/{key...}?expires=&sig=, or ?expires=&ip=&sig=
 * for a URL bound to one client address (see storage/objects.h).
 *
 * Streamed from the open file in 64 KiB chunks by the server
 * (http_respond_file; never read whole into memory), so a browser's video
 * player can seek:
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
 * Errors are JSON {"error":{"code","message","details":null}}. It is a
 * route of the server like any other (OBJECTS_HTTP_ROUTE, its key taking
 * the rest of the path: HTTP_ROUTE_TAIL), so every answer has X-Request-Id,
 * one line in the server's access log with route "/v1/objects/{key}" (never
 * the query: it is the credential) and counts in fenta_http_requests_total
 * and fenta_http_request_seconds; methods other than GET and HEAD get the
 * server's 405, bodies over its default limit its 413. */
#ifndef FENTA_HTTP_OBJECTS_HTTP_H
#define FENTA_HTTP_OBJECTS_HTTP_H
#include "http/server.h"
#include "storage/objects.h"

#define OBJECTS_HTTP_ROUTE "/v1/objects/{key}"

/* Adds the download route to the server. Call after http_server_new and
 * before http_server_start; o is borrowed and must outlive the server.
 * 0; FENTA_EINVAL (NULL argument), FENTA_EEXIST (already mounted),
 * FENTA_ESTOPPED (the server started), FENTA_ENOMEM. */
int objects_http_mount(http_server_t *server, objects_t *o);

#endif
