/* listen.c - the listening side of the server: the listening socket, the
 * TLS context, accepting connections under the connection cap, and the
 * lingering close of a connection h2o refused a request on. */
#include "http/server_h2o_internal.h"
#include "http/server_internal.h"
#include "runtime/error.h"
#include "runtime/log.h"

#include <h2o.h>

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void http__linger_close(linger_t *l)
{
    if (h2o_timeout_is_linked(&l->timer))
        h2o_timeout_unlink(&l->timer);
    h2o_linklist_unlink(&l->link);
    h2o_socket_close(l->sock);
    free(l);
}

static void on_linger_timeout(h2o_timeout_entry_t *entry)
{
    http__linger_close(H2O_STRUCT_FROM_MEMBER(linger_t, timer, entry));
}

static void on_linger_read(h2o_socket_t *sock, const char *err)
{
    linger_t *l = sock->data;
    if (!err) {
        l->discarded += sock->input->size;
        h2o_buffer_consume(&sock->input, sock->input->size);
    }
    if (err || l->discarded > LINGER_MAX)
        http__linger_close(l);
}

static void start_linger(loop_t *loop, int fd)
{
    linger_t *l = loop->exiting ? NULL : calloc(1, sizeof(*l));
    if (!l) {
        close(fd);
        return;
    }
    shutdown(fd, SHUT_WR); /* FIN after the error response h2o queued */
    l->loop = loop;
    l->sock = h2o_evloop_socket_create(loop->evloop, fd, 0);
    l->sock->data = l;
    l->timer.cb = on_linger_timeout;
    h2o_timeout_link(loop->evloop, &loop->linger_timeout, &l->timer);
    h2o_linklist_insert(&loop->lingers, &l->link);
    h2o_socket_read_start(l->sock, on_linger_read);
}

static void on_conn_close(void *data)
{
    conn_t *c = data;
    h2o_linklist_unlink(&c->link);
    c->loop->nconns--;
    atomic_fetch_sub(&c->loop->server->nconns, 1);
    if (c->linger_fd >= 0)
        start_linger(c->loop, c->linger_fd);
    if (c->prev_cb)
        c->prev_cb(c->prev_data);
    free(c);
}

/* h2o will close this HTTP/1 connection after the error, maybe with the
 * request body unread: keep a dup of the socket for a lingering close. */
void http__want_linger(h2o_req_t *req)
{
    h2o_socket_t *sock =
        req->conn->callbacks->get_socket ? req->conn->callbacks->get_socket(req->conn) : NULL;
    if (!sock || sock->on_close.cb != on_conn_close)
        return;
    conn_t *c = sock->on_close.data;
    if (c->linger_fd < 0)
        c->linger_fd = fcntl(h2o_socket_get_fd(sock), F_DUPFD_CLOEXEC, 0);
}

void http__on_accept(h2o_socket_t *listener, const char *err)
{
    loop_t *loop = listener->data;
    if (err)
        return;
    for (int i = 0; i < 64; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (!sock)
            break;
        /* each connection may hold bodies h2o is reading (see server.h):
         * the cap is what bounds them server-wide */
        if (atomic_load(&loop->server->nconns) >= loop->server->cfg.max_connections) {
            h2o_socket_close(sock);
            continue;
        }
        conn_t *c = calloc(1, sizeof(*c)); /* links must start unlinked (NULL) */
        if (!c) {                          /* refuse rather than lose track of it */
            h2o_socket_close(sock);
            continue;
        }
        c->loop = loop;
        c->sock = sock;
        c->linger_fd = -1;
        c->prev_cb = sock->on_close.cb;
        c->prev_data = sock->on_close.data;
        sock->on_close.cb = on_conn_close;
        sock->on_close.data = c;
        h2o_linklist_insert(&loop->conns, &c->link);
        loop->nconns++;
        atomic_fetch_add(&loop->server->nconns, 1);
        h2o_accept(&loop->accept_ctx, sock);
    }
}

/* "host:port" or "[v6]:port" -> a listening, non-blocking socket. */
int http__open_listener(const char *spec, int *fd_out, uint16_t *port_out)
{
    char host[256];
    const char *port;
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (!close || close[1] != ':' || (size_t)(close - spec - 1) >= sizeof(host))
            return FENTA_EINVAL;
        memcpy(host, spec + 1, (size_t)(close - spec - 1));
        host[close - spec - 1] = '\0';
        port = close + 2;
    } else {
        const char *colon = strrchr(spec, ':');
        if (!colon || (size_t)(colon - spec) >= sizeof(host) ||
            memchr(spec, ':', (size_t)(colon - spec)))
            return FENTA_EINVAL;
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = '\0';
        port = colon + 1;
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (!*port || *end || p < 0 || p > 65535)
        return FENTA_EINVAL;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host[0] ? host : NULL, port, &hints, &res) != 0 || !res)
        return FENTA_EINVAL;
    int rc = FENTA_EIO;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        /* accepted sockets inherit it: small responses leave at once */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
            close(fd);
            continue;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        getsockname(fd, (struct sockaddr *)&ss, &sl);
        *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
        *fd_out = fd;
        rc = 0;
        break;
    }
    freeaddrinfo(res);
    return rc;
}

SSL_CTX *http__tls_context(const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        unsigned long e = ERR_get_error();
        char buf[256];
        ERR_error_string_n(e, buf, sizeof(buf));
        log_msg(LOG_ERROR, NULL, "http: cannot load TLS certificate %s / key %s: %s", cert, key,
                buf);
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return NULL;
    }
    h2o_ssl_register_alpn_protocols(ctx, h2o_alpn_protocols); /* h2, then http/1.1 */
    return ctx;
}
