/*
 * NginxOAuth shim: Redis as the second cache level (ngx_oauth_redis.h).
 *
 * One operation (a GET, or a SET nobody waits for) owns one connection
 * from start to end: no pipelining of different requests' commands, so a
 * reply always belongs to the operation that reads it.  A new connection
 * first sends AUTH and SELECT (when configured) in the same write, and
 * their replies must be +OK.  After a whole, expected reply with no byte
 * left over, the connection is kept (up to keepalive= idle connections per
 * server and worker); anything else closes it.  A command on a kept
 * connection that is lost before a byte of its reply came (Redis closed
 * it while it was idle) is sent once more on a new connection.  The
 * operation has its own pool: it outlives the request that started it (a
 * pool cleanup of the request detaches it).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>
#include <ngx_http.h>

#include "ngx_oauth_core.h"
#include "ngx_oauth_cache.h"
#include "ngx_oauth_redis.h"
#include "ngx_oauth_metrics.h"


#define NGX_OAUTH_REDIS_BUF         4096
#define NGX_OAUTH_REDIS_MAX_VALUE   (1024 * 1024)  /* a bulk reply, bytes */
#define NGX_OAUTH_REDIS_WARN_EVERY  10             /* s between warnings */
#define NGX_OAUTH_REDIS_MAX_BUSY    256            /* busy connections per
                                                      server and worker */
#define NGX_OAUTH_REDIS_MIN_SECRET  16


struct ngx_oauth_redis_s {
    ngx_str_t                    name;
    ngx_addr_t                  *addr;
    ngx_str_t                    hello;       /* AUTH, SELECT */
    ngx_uint_t                   hello_replies;
    ngx_str_t                    prefix;
    ngx_str_t                    secret;
    ngx_msec_t                   connect_timeout;
    ngx_msec_t                   read_timeout;
    ngx_uint_t                   keepalive;
    ngx_uint_t                   defined;
    ngx_str_t                    ref_file;    /* the first redis=name */
    ngx_uint_t                   ref_line;

    /* per worker */
    ngx_uint_t                   ready;
    ngx_queue_t                  idle;
    ngx_uint_t                   nidle;
    ngx_queue_t                  busyq;
    ngx_uint_t                   busy;
    time_t                       warned;
    ngx_log_t                    log;         /* connections: quiet */
    void                        *metrics;     /* this worker's counters */
};


typedef struct {
    ngx_array_t                  servers;     /* ngx_oauth_redis_t * */
} ngx_oauth_redis_main_conf_t;


typedef struct {
    ngx_queue_t                  queue;       /* in srv->idle or busyq */
    ngx_oauth_redis_t           *srv;
    ngx_peer_connection_t        pc;
    ngx_oauth_redis_op_t        *op;
} ngx_oauth_redis_conn_t;


struct ngx_oauth_redis_op_s {
    ngx_pool_t                  *pool;
    ngx_oauth_redis_t           *srv;
    ngx_oauth_redis_conn_t      *conn;
    ngx_oauth_redis_get_t       *waiter;      /* NULL: nobody waits */
    const char                  *what;        /* "GET", "SET" */
    u_char                      *command;     /* after room for the hello */
    u_char                      *out;
    u_char                      *out_last;
    u_char                      *in;
    u_char                      *in_pos;      /* parsed up to */
    u_char                      *in_last;
    u_char                      *in_end;
    ngx_uint_t                   hello;       /* hello replies to read */
    ngx_msec_t                   start;       /* metrics: latency */
    ngx_uint_t                   error;       /* NGX_OAUTH_RE_* */

    unsigned                     get:1;
    unsigned                     reused:1;    /* on a kept connection */
    unsigned                     received:1;  /* a byte of the reply came */
};


typedef struct {
    u_char                       type;        /* '+', '-', ':', '$' */
    ngx_uint_t                   null;        /* $-1 */
    ngx_str_t                    value;
} ngx_oauth_redis_reply_t;


static char *ngx_oauth_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void *ngx_oauth_redis_create_main_conf(ngx_conf_t *cf);
static void ngx_oauth_redis_exit_process(ngx_cycle_t *cycle);
static char *ngx_oauth_redis_init_main_conf(ngx_conf_t *cf, void *conf);
static ngx_oauth_redis_t *ngx_oauth_redis_find(ngx_conf_t *cf,
    ngx_str_t *name);
static ngx_int_t ngx_oauth_redis_read_file(ngx_conf_t *cf, ngx_str_t *path,
    ngx_str_t *out);
static ngx_int_t ngx_oauth_redis_command(ngx_pool_t *pool, ngx_str_t *args,
    ngx_uint_t n, ngx_str_t *out);
static ngx_int_t ngx_oauth_redis_key(ngx_http_request_t *r,
    ngx_oauth_cache_conf_t *cc, u_char kind, u_char *hash, ngx_str_t *key);
static ngx_oauth_redis_op_t *ngx_oauth_redis_op(ngx_oauth_redis_t *srv,
    const char *what, ngx_str_t *command);
static ngx_int_t ngx_oauth_redis_start(ngx_oauth_redis_op_t *op);
static ngx_int_t ngx_oauth_redis_connect(ngx_oauth_redis_op_t *op);
static void ngx_oauth_redis_write(ngx_event_t *wev);
static void ngx_oauth_redis_read(ngx_event_t *rev);
static ngx_int_t ngx_oauth_redis_parse(u_char *p, u_char *last,
    ngx_oauth_redis_reply_t *reply);
static void ngx_oauth_redis_end(ngx_oauth_redis_op_t *op, ngx_int_t rc,
    ngx_str_t *value, ngx_uint_t keep);
static void ngx_oauth_redis_fail(ngx_oauth_redis_op_t *op, ngx_uint_t error,
    const char *why, ngx_err_t err);
static void ngx_oauth_redis_lost(ngx_oauth_redis_op_t *op, const char *why,
    ngx_err_t err);
static void ngx_oauth_redis_close(ngx_oauth_redis_conn_t *conn);
static void ngx_oauth_redis_cancelable(ngx_oauth_redis_op_t *op);
static void ngx_oauth_redis_idle_read(ngx_event_t *rev);
static void ngx_oauth_redis_idle_write(ngx_event_t *wev);
static void ngx_oauth_redis_wake(ngx_event_t *ev);
static void ngx_oauth_redis_get_cleanup(void *data);
static void ngx_oauth_redis_warn(ngx_oauth_redis_t *srv, ngx_log_t *log,
    ngx_err_t err, const char *fmt, ...);


static ngx_command_t  ngx_oauth_redis_commands[] = {

    { ngx_string("oauth_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_oauth_redis_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_oauth_redis_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_oauth_redis_create_main_conf,      /* create main configuration */
    ngx_oauth_redis_init_main_conf,        /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_oauth_redis_module = {
    NGX_MODULE_V1,
    &ngx_http_oauth_redis_module_ctx,      /* module context */
    ngx_oauth_redis_commands,              /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_oauth_redis_exit_process,          /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/*
 * A worker that exits closes the connections of the stores still under
 * way (their timers are cancelable: nobody waits for them) and any idle
 * one left
 */

static void
ngx_oauth_redis_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                    i;
    ngx_queue_t                  *q;
    ngx_oauth_redis_t           **srv;
    ngx_oauth_redis_conn_t       *conn;
    ngx_oauth_redis_main_conf_t  *rmcf;

    rmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_oauth_redis_module);
    if (rmcf == NULL) {
        return;
    }

    srv = rmcf->servers.elts;

    for (i = 0; i < rmcf->servers.nelts; i++) {
        if (!srv[i]->ready) {
            continue;
        }

        while (!ngx_queue_empty(&srv[i]->busyq)) {
            q = ngx_queue_head(&srv[i]->busyq);
            ngx_queue_remove(q);
            conn = ngx_queue_data(q, ngx_oauth_redis_conn_t, queue);
            ngx_oauth_redis_close(conn);
        }

        while (!ngx_queue_empty(&srv[i]->idle)) {
            q = ngx_queue_head(&srv[i]->idle);
            ngx_queue_remove(q);
            conn = ngx_queue_data(q, ngx_oauth_redis_conn_t, queue);
            ngx_oauth_redis_close(conn);
        }
    }
}


/* ---- configuration ---------------------------------------------------- */

static void *
ngx_oauth_redis_create_main_conf(ngx_conf_t *cf)
{
    ngx_oauth_redis_main_conf_t  *rmcf;

    rmcf = ngx_pcalloc(cf->pool, sizeof(ngx_oauth_redis_main_conf_t));
    if (rmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&rmcf->servers, cf->pool, 2,
                       sizeof(ngx_oauth_redis_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return rmcf;
}


/* every redis=name must name a server defined somewhere in http */

static char *
ngx_oauth_redis_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_oauth_redis_main_conf_t  *rmcf = conf;

    ngx_uint_t           i;
    ngx_oauth_redis_t  **srv;

    srv = rmcf->servers.elts;

    for (i = 0; i < rmcf->servers.nelts; i++) {
        if (!srv[i]->defined) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "redis=%V: no \"oauth_redis %V\" is defined "
                          "in %V:%ui", &srv[i]->name, &srv[i]->name,
                          &srv[i]->ref_file, srv[i]->ref_line);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static ngx_oauth_redis_t *
ngx_oauth_redis_find(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_uint_t                    i;
    ngx_oauth_redis_t           **srv, *s;
    ngx_oauth_redis_main_conf_t  *rmcf;

    rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_oauth_redis_module);

    srv = rmcf->servers.elts;

    for (i = 0; i < rmcf->servers.nelts; i++) {
        if (srv[i]->name.len == name->len
            && ngx_strncmp(srv[i]->name.data, name->data, name->len) == 0)
        {
            return srv[i];
        }
    }

    s = ngx_pcalloc(cf->pool, sizeof(ngx_oauth_redis_t));
    if (s == NULL) {
        return NULL;
    }

    srv = ngx_array_push(&rmcf->servers);
    if (srv == NULL) {
        return NULL;
    }

    s->name = *name;
    *srv = s;

    return s;
}


char *
ngx_oauth_redis_ref(ngx_conf_t *cf, ngx_str_t *name, ngx_oauth_redis_t **srv)
{
    ngx_oauth_redis_t  *s;

    if (name->len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"redis=\" needs the name of an oauth_redis");
        return NGX_CONF_ERROR;
    }

    s = ngx_oauth_redis_find(cf, name);
    if (s == NULL) {
        return NGX_CONF_ERROR;
    }

    if (s->ref_line == 0) {
        s->ref_file = cf->conf_file->file.name;
        s->ref_line = cf->conf_file->line;
    }

    *srv = s;

    return NGX_CONF_OK;
}


/*
 * oauth_redis name host:port key_file=path [password_file=path] [user=name]
 *     [db=n] [prefix=string] [connect_timeout=time] [read_timeout=time]
 *     [keepalive=n]
 */

static char *
ngx_oauth_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_int_t           db, n;
    ngx_str_t          *value, s, password, user, key_file, pw_file;
    ngx_str_t           args[4], cmds[2];
    ngx_url_t           u;
    ngx_uint_t          i, nargs;
    ngx_msec_t          t, *tp;
    ngx_oauth_redis_t  *srv;
    u_char              dbuf[NGX_INT_T_LEN];

    value = cf->args->elts;

    srv = ngx_oauth_redis_find(cf, &value[1]);
    if (srv == NULL) {
        return NGX_CONF_ERROR;
    }

    if (srv->defined) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate oauth_redis \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (ngx_oauth_metrics_redis_server(cf, &value[1]) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = value[2];
    u.default_port = 6379;
    u.no_resolve = 0;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "oauth_redis \"%V\": invalid address \"%V\"%s%s",
                           &value[1], &value[2], u.err ? ": " : "",
                           u.err ? u.err : "");
        return NGX_CONF_ERROR;
    }

    srv->addr = &u.addrs[0];

    db = 0;
    ngx_str_null(&user);
    ngx_str_null(&password);
    ngx_str_null(&key_file);
    ngx_str_null(&pw_file);
    srv->connect_timeout = 1000;
    srv->read_timeout = 1000;
    srv->keepalive = 8;

    for (i = 3; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "key_file=", 9) == 0) {
            key_file.data = value[i].data + 9;
            key_file.len = value[i].len - 9;
            continue;
        }

        if (ngx_strncmp(value[i].data, "password_file=", 14) == 0) {
            pw_file.data = value[i].data + 14;
            pw_file.len = value[i].len - 14;
            continue;
        }

        if (ngx_strncmp(value[i].data, "user=", 5) == 0) {
            user.data = value[i].data + 5;
            user.len = value[i].len - 5;

            if (user.len == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "prefix=", 7) == 0) {
            srv->prefix.data = value[i].data + 7;
            srv->prefix.len = value[i].len - 7;
            continue;
        }

        if (ngx_strncmp(value[i].data, "db=", 3) == 0) {
            db = ngx_atoi(value[i].data + 3, value[i].len - 3);

            if (db == NGX_ERROR || db > 65535) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "keepalive=", 10) == 0) {
            n = ngx_atoi(value[i].data + 10, value[i].len - 10);

            if (n == NGX_ERROR || n > NGX_OAUTH_REDIS_MAX_BUSY) {
                goto invalid;
            }

            srv->keepalive = (ngx_uint_t) n;
            continue;
        }

        tp = NULL;

        if (ngx_strncmp(value[i].data, "connect_timeout=", 16) == 0) {
            s.data = value[i].data + 16;
            s.len = value[i].len - 16;
            tp = &srv->connect_timeout;

        } else if (ngx_strncmp(value[i].data, "read_timeout=", 13) == 0) {
            s.data = value[i].data + 13;
            s.len = value[i].len - 13;
            tp = &srv->read_timeout;
        }

        if (tp) {
            t = ngx_parse_time(&s, 0);

            if (t == (ngx_msec_t) NGX_ERROR || t == 0 || t > 60000) {
                goto invalid;
            }

            *tp = t;
            continue;
        }

    invalid:

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "oauth_redis \"%V\": invalid parameter \"%V\"",
                           &value[1], &value[i]);
        return NGX_CONF_ERROR;
    }

    if (key_file.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "oauth_redis \"%V\": key_file= is required (the "
                           "secret that encrypts the entries)", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (ngx_oauth_redis_read_file(cf, &key_file, &srv->secret) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (srv->secret.len < NGX_OAUTH_REDIS_MIN_SECRET) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "oauth_redis \"%V\": key_file \"%V\" holds %uz "
                           "bytes: at least %d expected", &value[1],
                           &key_file, srv->secret.len,
                           NGX_OAUTH_REDIS_MIN_SECRET);
        return NGX_CONF_ERROR;
    }

    if (pw_file.len) {
        if (ngx_oauth_redis_read_file(cf, &pw_file, &password) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        if (password.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "oauth_redis \"%V\": password_file \"%V\" is "
                               "empty", &value[1], &pw_file);
            return NGX_CONF_ERROR;
        }

    } else if (user.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "oauth_redis \"%V\": user= needs password_file=",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    /* what a new connection sends first */

    nargs = 0;

    if (password.len) {
        ngx_str_set(&args[0], "AUTH");
        nargs = 1;

        if (user.len) {
            args[nargs++] = user;
        }

        args[nargs++] = password;

        if (ngx_oauth_redis_command(cf->pool, args, nargs, &cmds[0])
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        srv->hello_replies++;
    }

    if (db) {
        ngx_str_set(&args[0], "SELECT");
        args[1].data = dbuf;
        args[1].len = ngx_sprintf(dbuf, "%i", db) - dbuf;

        if (ngx_oauth_redis_command(cf->pool, args, 2,
                                    &cmds[srv->hello_replies])
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        srv->hello_replies++;
    }

    srv->hello.len = 0;

    for (i = 0; i < srv->hello_replies; i++) {
        srv->hello.len += cmds[i].len;
    }

    if (srv->hello.len) {
        srv->hello.data = ngx_pnalloc(cf->pool, srv->hello.len);
        if (srv->hello.data == NULL) {
            return NGX_CONF_ERROR;
        }

        s.data = srv->hello.data;

        for (i = 0; i < srv->hello_replies; i++) {
            s.data = ngx_cpymem(s.data, cmds[i].data, cmds[i].len);
        }
    }

    srv->defined = 1;

    return NGX_CONF_OK;
}


/* a secret file's bytes, without the line ends at its end */

static ngx_int_t
ngx_oauth_redis_read_file(ngx_conf_t *cf, ngx_str_t *path, ngx_str_t *out)
{
    u_char           *p;
    ssize_t           n;
    ngx_str_t         name;
    ngx_file_t        file;
    ngx_file_info_t   fi;

    name = *path;

    if (name.len == 0 || ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "oauth_redis: invalid file name \"%V\"", path);
        return NGX_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));

    file.name = name;
    file.log = cf->log;
    file.fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "oauth_redis: cannot open \"%V\"", &name);
        return NGX_ERROR;
    }

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > 64 * 1024)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "oauth_redis: \"%V\" is not a file of at most "
                           "64 KiB", &name);
        ngx_close_file(file.fd);
        return NGX_ERROR;
    }

    p = ngx_pnalloc(cf->pool, (size_t) ngx_file_size(&fi) + 1);
    if (p == NULL) {
        ngx_close_file(file.fd);
        return NGX_ERROR;
    }

    n = ngx_read_file(&file, p, (size_t) ngx_file_size(&fi), 0);

    ngx_close_file(file.fd);

    if (n == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "oauth_redis: cannot read \"%V\"", &name);
        return NGX_ERROR;
    }

    while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r')) {
        n--;
    }

    out->data = p;
    out->len = (size_t) n;

    return NGX_OK;
}


/* ---- RESP --------------------------------------------------------------- */

/* an array of bulk strings: *n CRLF ($len CRLF bytes CRLF)... */

static ngx_int_t
ngx_oauth_redis_command(ngx_pool_t *pool, ngx_str_t *args, ngx_uint_t n,
    ngx_str_t *out)
{
    u_char      *p;
    size_t       len;
    ngx_uint_t   i;

    len = 1 + NGX_INT_T_LEN + 2;

    for (i = 0; i < n; i++) {
        len += 1 + NGX_SIZE_T_LEN + 2 + args[i].len + 2;
    }

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;

    p = ngx_sprintf(p, "*%ui\r\n", n);

    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, "$%uz\r\n", args[i].len);
        p = ngx_cpymem(p, args[i].data, args[i].len);
        *p++ = '\r';
        *p++ = '\n';
    }

    out->len = p - out->data;

    return NGX_OK;
}


/*
 * One reply from [p, last): its length (> 0) with *reply filled, 0 when
 * more bytes are needed, NGX_ERROR for bytes that are not RESP or a bulk
 * string over NGX_OAUTH_REDIS_MAX_VALUE.  Arrays, maps and the other RESP3
 * types are never asked for: garbage here.
 */

static ngx_int_t
ngx_oauth_redis_parse(u_char *p, u_char *last, ngx_oauth_redis_reply_t *reply)
{
    u_char   *start, *eol;
    size_t    len;

    start = p;

    if (p == last) {
        return 0;
    }

    reply->type = *p++;
    reply->null = 0;

    /* the first line */

    for (eol = p; eol < last && *eol != '\r'; eol++) {
        if (*eol == '\n' || eol - p > 512) {
            return NGX_ERROR;
        }
    }

    if (last - eol < 2) {
        return (eol - p > 512) ? NGX_ERROR : 0;
    }

    if (eol[1] != '\n') {
        return NGX_ERROR;
    }

    switch (reply->type) {

    case '+':
    case '-':
    case ':':
        reply->value.data = p;
        reply->value.len = eol - p;
        return eol + 2 - start;

    case '$':
        break;

    default:
        return NGX_ERROR;
    }

    if (eol - p == 2 && p[0] == '-' && p[1] == '1') {
        reply->null = 1;
        ngx_str_null(&reply->value);
        return eol + 2 - start;
    }

    if (eol == p || eol - p > 8) {
        return NGX_ERROR;
    }

    len = 0;

    for ( /* void */ ; p < eol; p++) {
        if (*p < '0' || *p > '9') {
            return NGX_ERROR;
        }

        len = len * 10 + (*p - '0');
    }

    if (len > NGX_OAUTH_REDIS_MAX_VALUE) {
        return NGX_ERROR;
    }

    p = eol + 2;

    if ((size_t) (last - p) < len + 2) {
        return 0;
    }

    if (p[len] != '\r' || p[len + 1] != '\n') {
        return NGX_ERROR;
    }

    reply->value.data = p;
    reply->value.len = len;

    return p + len + 2 - start;
}


/* ---- operations ------------------------------------------------------- */

static ngx_oauth_redis_op_t *
ngx_oauth_redis_op(ngx_oauth_redis_t *srv, const char *what,
    ngx_str_t *command)
{
    ngx_pool_t            *pool;
    ngx_oauth_redis_op_t  *op;

    if (!srv->ready) {
        ngx_queue_init(&srv->idle);
        ngx_queue_init(&srv->busyq);
        srv->log = *ngx_cycle->log;
        srv->log.log_level = NGX_LOG_CRIT;  /* we log, rate-limited */
        srv->ready = 1;
    }

    if (srv->busy >= NGX_OAUTH_REDIS_MAX_BUSY && ngx_queue_empty(&srv->idle))
    {
        ngx_oauth_redis_warn(srv, ngx_cycle->log, 0,
                             "%ui connections are busy", srv->busy);
        return NULL;
    }

    pool = ngx_create_pool(NGX_OAUTH_REDIS_BUF, ngx_cycle->log);
    if (pool == NULL) {
        return NULL;
    }

    op = ngx_pcalloc(pool, sizeof(ngx_oauth_redis_op_t));
    if (op == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    op->pool = pool;
    op->srv = srv;
    op->what = what;
    op->get = (what[0] == 'G');
    op->start = ngx_current_msec;

    /* the command stays in place: a new connection's hello goes before it */

    op->out = ngx_pnalloc(pool, srv->hello.len + command->len);
    op->in = ngx_pnalloc(pool, NGX_OAUTH_REDIS_BUF);

    if (op->out == NULL || op->in == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    op->command = op->out + srv->hello.len;
    ngx_memcpy(op->command, command->data, command->len);
    op->out = op->command;
    op->out_last = op->command + command->len;

    op->in_pos = op->in;
    op->in_last = op->in;
    op->in_end = op->in + NGX_OAUTH_REDIS_BUF;

    return op;
}


/*
 * NGX_OK: the operation runs (and ends by ngx_oauth_redis_end);
 * NGX_ERROR: it could not start, and is freed
 */

static ngx_int_t
ngx_oauth_redis_start(ngx_oauth_redis_op_t *op)
{
    ngx_queue_t             *q;
    ngx_connection_t        *c;
    ngx_oauth_redis_t       *srv;
    ngx_oauth_redis_conn_t  *conn;

    srv = op->srv;

    if (!ngx_queue_empty(&srv->idle)) {
        q = ngx_queue_head(&srv->idle);
        ngx_queue_remove(q);
        srv->nidle--;

        conn = ngx_queue_data(q, ngx_oauth_redis_conn_t, queue);
        c = conn->pc.connection;
        c->idle = 0;

        conn->op = op;
        op->conn = conn;
        op->reused = 1;
        srv->busy++;
        ngx_queue_insert_tail(&srv->busyq, &conn->queue);

        c->read->handler = ngx_oauth_redis_read;
        c->write->handler = ngx_oauth_redis_write;
        ngx_oauth_redis_cancelable(op);

        ngx_oauth_redis_write(c->write);
        return NGX_OK;
    }

    if (ngx_oauth_redis_connect(op) != NGX_OK) {
        ngx_oauth_metrics_redis(&srv->metrics, &srv->name, op->what,
                                NGX_ERROR, NGX_OAUTH_RE_UNREACHABLE,
                                ngx_current_msec - op->start);
        ngx_destroy_pool(op->pool);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The operation on a new connection, AUTH and SELECT first: NGX_OK, it
 * runs; NGX_ERROR (warned), it has no connection and is still the
 * caller's
 */

static ngx_int_t
ngx_oauth_redis_connect(ngx_oauth_redis_op_t *op)
{
    ngx_int_t                rc;
    ngx_connection_t        *c;
    ngx_oauth_redis_t       *srv;
    ngx_oauth_redis_conn_t  *conn;

    srv = op->srv;

    op->out = op->command;

    if (srv->hello.len) {
        op->out -= srv->hello.len;
        ngx_memcpy(op->out, srv->hello.data, srv->hello.len);
        op->hello = srv->hello_replies;
    }

    conn = ngx_calloc(sizeof(ngx_oauth_redis_conn_t), ngx_cycle->log);
    if (conn == NULL) {
        return NGX_ERROR;
    }

    conn->srv = srv;
    conn->pc.sockaddr = srv->addr->sockaddr;
    conn->pc.socklen = srv->addr->socklen;
    conn->pc.name = &srv->addr->name;
    conn->pc.get = ngx_event_get_peer;
    conn->pc.log = &srv->log;
    conn->pc.log_error = NGX_ERROR_ERR;

    rc = ngx_event_connect_peer(&conn->pc);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        ngx_oauth_redis_warn(srv, ngx_cycle->log, ngx_socket_errno,
                             "cannot connect");
        if (conn->pc.connection) {
            ngx_close_connection(conn->pc.connection);
        }

        ngx_free(conn);
        return NGX_ERROR;
    }

    c = conn->pc.connection;
    c->data = conn;
    c->log = &srv->log;
    c->read->log = c->log;
    c->write->log = c->log;
    c->pool = NULL;

    c->read->handler = ngx_oauth_redis_read;
    c->write->handler = ngx_oauth_redis_write;

    conn->op = op;
    op->conn = conn;
    srv->busy++;
    ngx_queue_insert_tail(&srv->busyq, &conn->queue);
    ngx_oauth_redis_cancelable(op);

    if (rc == NGX_AGAIN) {
        ngx_add_timer(c->write, srv->connect_timeout);
        return NGX_OK;
    }

    ngx_oauth_redis_write(c->write);

    return NGX_OK;
}


static void
ngx_oauth_redis_write(ngx_event_t *wev)
{
    ssize_t                  n;
    ngx_connection_t        *c;
    ngx_oauth_redis_op_t    *op;
    ngx_oauth_redis_conn_t  *conn;

    c = wev->data;
    conn = c->data;
    op = conn->op;

    if (op == NULL) {
        return;
    }

    if (wev->timedout) {
        ngx_oauth_redis_fail(op, NGX_OAUTH_RE_TIMEOUT,
                             "timed out connecting or sending", 0);
        return;
    }

    while (op->out < op->out_last) {
        n = c->send(c, op->out, op->out_last - op->out);

        if (n == NGX_AGAIN) {
            if (!wev->timer_set) {
                ngx_add_timer(wev, op->srv->read_timeout);
            }

            if (ngx_handle_write_event(wev, 0) != NGX_OK) {
                ngx_oauth_redis_fail(op, NGX_OAUTH_RE_UNREACHABLE,
                                     "cannot wait to send", 0);
            }

            return;
        }

        if (n <= 0) {
            ngx_oauth_redis_lost(op, "cannot connect or send",
                                 ngx_socket_errno);
            return;
        }

        op->out += n;
    }

    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    wev->handler = ngx_oauth_redis_idle_write;

    if (!c->read->timer_set) {
        ngx_add_timer(c->read, op->srv->read_timeout);
    }

    if (c->read->ready) {
        ngx_oauth_redis_read(c->read);
        return;
    }

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_oauth_redis_fail(op, NGX_OAUTH_RE_UNREACHABLE,
                             "cannot wait for the reply", 0);
    }
}


static void
ngx_oauth_redis_read(ngx_event_t *rev)
{
    u_char                  *p;
    size_t                   size;
    ssize_t                  n;
    ngx_int_t                len;
    ngx_connection_t        *c;
    ngx_oauth_redis_op_t    *op;
    ngx_oauth_redis_conn_t  *conn;
    ngx_oauth_redis_reply_t  reply;

    c = rev->data;
    conn = c->data;
    op = conn->op;

    if (op == NULL) {
        return;
    }

    if (rev->timedout) {
        ngx_oauth_redis_fail(op, NGX_OAUTH_RE_TIMEOUT,
                             "timed out waiting for the reply", 0);
        return;
    }

    if (op->out < op->out_last) {
        return;                         /* still sending */
    }

    for ( ;; ) {

        /* every whole reply in the buffer */

        for ( ;; ) {
            len = ngx_oauth_redis_parse(op->in_pos, op->in_last, &reply);

            if (len == NGX_ERROR) {
                ngx_oauth_redis_fail(op, NGX_OAUTH_RE_GARBAGE,
                                     "answered with bytes that are not "
                                     "a RESP reply of the expected kind", 0);
                return;
            }

            if (len == 0) {
                break;
            }

            op->in_pos += len;

            if (op->hello) {
                if (reply.type != '+') {
                    ngx_oauth_redis_warn(op->srv, ngx_cycle->log, 0,
                                         "refused AUTH or SELECT: \"%*s\"",
                                         ngx_min(reply.value.len, 80),
                                         reply.value.data);
                    op->error = NGX_OAUTH_RE_REFUSED;
                    ngx_oauth_redis_end(op, NGX_ERROR, NULL, 0);
                    return;
                }

                op->hello--;
                continue;
            }

            if (reply.type == '-') {
                ngx_oauth_redis_warn(op->srv, ngx_cycle->log, 0,
                                     "refused %s: \"%*s\"", op->what,
                                     ngx_min(reply.value.len, 80),
                                     reply.value.data);
                op->error = NGX_OAUTH_RE_REFUSED;
                ngx_oauth_redis_end(op, NGX_ERROR, NULL, 0);
                return;
            }

            if (op->get) {
                if (reply.type != '$') {
                    ngx_oauth_redis_fail(op, NGX_OAUTH_RE_GARBAGE,
                                         "answered GET with a reply "
                                         "that is not a bulk string", 0);
                    return;
                }

                ngx_oauth_redis_end(op, reply.null ? NGX_DECLINED : NGX_OK,
                                    &reply.value,
                                    op->in_pos == op->in_last);
                return;
            }

            ngx_oauth_redis_end(op, NGX_OK, NULL,
                                op->in_pos == op->in_last
                                && reply.type == '+');
            return;
        }

        /* room for more */

        if (op->in_last == op->in_end) {
            size = op->in_end - op->in;

            if (op->in_pos > op->in) {
                n = op->in_last - op->in_pos;
                ngx_memmove(op->in, op->in_pos, n);
                op->in_pos = op->in;
                op->in_last = op->in + n;

            } else {
                if (size > NGX_OAUTH_REDIS_MAX_VALUE + 1024) {
                    ngx_oauth_redis_fail(op, NGX_OAUTH_RE_GARBAGE,
                                         "answered more than expected",
                                         0);
                    return;
                }

                p = ngx_pnalloc(op->pool, size * 2);
                if (p == NULL) {
                    ngx_oauth_redis_fail(op, NGX_OAUTH_RE_UNREACHABLE,
                                         "out of memory", 0);
                    return;
                }

                n = op->in_last - op->in_pos;
                ngx_memcpy(p, op->in_pos, n);
                op->in = p;
                op->in_pos = p;
                op->in_last = p + n;
                op->in_end = p + size * 2;
            }
        }

        n = c->recv(c, op->in_last, op->in_end - op->in_last);

        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(rev, 0) != NGX_OK) {
                ngx_oauth_redis_fail(op, NGX_OAUTH_RE_UNREACHABLE,
                                     "cannot wait for the reply", 0);
            }

            return;
        }

        if (n == 0) {
            ngx_oauth_redis_lost(op, "closed the connection", 0);
            return;
        }

        if (n == NGX_ERROR) {
            ngx_oauth_redis_lost(op, "cannot be read", ngx_socket_errno);
            return;
        }

        op->received = 1;
        op->in_last += n;
    }
}


/*
 * The end of an operation: the waiting request (if any) gets the facts and
 * is woken; the connection is kept (keep) or closed; the pool is freed.
 */

static void
ngx_oauth_redis_end(ngx_oauth_redis_op_t *op, ngx_int_t rc, ngx_str_t *value,
    ngx_uint_t keep)
{
    ngx_connection_t        *c;
    ngx_oauth_redis_t       *srv;
    ngx_oauth_redis_get_t   *g;
    ngx_oauth_redis_conn_t  *conn;

    srv = op->srv;
    g = op->waiter;

    ngx_oauth_metrics_redis(&srv->metrics, &srv->name, op->what, rc,
                            op->error, ngx_current_msec - op->start);

    if (g) {
        g->op = NULL;
        g->state = NGX_OAUTH_REDIS_DONE;
        g->rc = rc;

        if (rc == NGX_OK && value) {
            g->value.data = ngx_pnalloc(g->request->pool, value->len + 1);

            if (g->value.data == NULL) {
                g->rc = NGX_ERROR;
                ngx_oauth_metrics_redis_lookup(&srv->metrics, &srv->name,
                                               NGX_OAUTH_RL_ERROR);

            } else {
                ngx_memcpy(g->value.data, value->data, value->len);
                g->value.len = value->len;
            }
        }

        ngx_post_event(&g->wake, &ngx_posted_events);

    } else if (op->get && rc == NGX_OK) {
        /* a value for a request that has ended: never opened */
        ngx_oauth_metrics_redis_lookup(&srv->metrics, &srv->name,
                                       NGX_OAUTH_RL_ABANDONED);
    }

    conn = op->conn;

    if (conn) {
        conn->op = NULL;
        c = conn->pc.connection;
        srv->busy--;
        ngx_queue_remove(&conn->queue);

        if (keep && srv->nidle < srv->keepalive && !ngx_terminate
            && !ngx_exiting)
        {
            if (c->read->timer_set) {
                ngx_del_timer(c->read);
            }

            if (c->write->timer_set) {
                ngx_del_timer(c->write);
            }

            c->read->handler = ngx_oauth_redis_idle_read;
            c->write->handler = ngx_oauth_redis_idle_write;
            c->idle = 1;

            ngx_queue_insert_head(&srv->idle, &conn->queue);
            srv->nidle++;

            if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
                ngx_queue_remove(&conn->queue);
                srv->nidle--;
                ngx_oauth_redis_close(conn);
            }

        } else {
            ngx_oauth_redis_close(conn);
        }
    }

    ngx_destroy_pool(op->pool);
}


static void
ngx_oauth_redis_fail(ngx_oauth_redis_op_t *op, ngx_uint_t error,
    const char *why, ngx_err_t err)
{
    op->error = error;

    ngx_oauth_redis_warn(op->srv, ngx_cycle->log, err, "%s: %s", op->what,
                         why);

    ngx_oauth_redis_end(op, NGX_ERROR, NULL, 0);
}


/*
 * The connection was closed or reset, or a send failed.  On a kept
 * connection before any byte of the reply came, Redis most likely closed
 * it while it was idle (its timeout, a restart, CLIENT KILL) and we had
 * not seen it yet: the command goes once more, quietly, on a new
 * connection (which is never retried).  Not after a timeout (a slow
 * Redis must not double the wait), nor after part of a reply.
 */

static void
ngx_oauth_redis_lost(ngx_oauth_redis_op_t *op, const char *why,
    ngx_err_t err)
{
    ngx_oauth_redis_t       *srv;
    ngx_oauth_redis_conn_t  *conn;

    if (!op->reused || op->received) {
        ngx_oauth_redis_fail(op, NGX_OAUTH_RE_UNREACHABLE, why, err);
        return;
    }

    srv = op->srv;
    conn = op->conn;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, err,
                   "oauth_redis \"%V\": %s on a kept connection: %s; "
                   "again on a new one", &srv->name, op->what, why);

    conn->op = NULL;
    op->conn = NULL;
    srv->busy--;
    ngx_queue_remove(&conn->queue);
    ngx_oauth_redis_close(conn);

    op->reused = 0;
    op->in_pos = op->in;
    op->in_last = op->in;

    if (ngx_oauth_redis_connect(op) != NGX_OK) {
        op->error = NGX_OAUTH_RE_UNREACHABLE;
        ngx_oauth_redis_end(op, NGX_ERROR, NULL, 0);
    }
}


static void
ngx_oauth_redis_close(ngx_oauth_redis_conn_t *conn)
{
    ngx_close_connection(conn->pc.connection);
    ngx_free(conn);
}


/*
 * A worker that shuts down waits for the timers of a lookup a request
 * waits for, not for those of a store nobody waits for (cancelable)
 */

static void
ngx_oauth_redis_cancelable(ngx_oauth_redis_op_t *op)
{
    ngx_connection_t  *c;

    if (op->conn == NULL) {
        return;
    }

    c = op->conn->pc.connection;
    c->read->cancelable = (op->waiter == NULL);
    c->write->cancelable = (op->waiter == NULL);
}


/* an idle connection: any event (closed by Redis, shutdown) closes it */

static void
ngx_oauth_redis_idle_read(ngx_event_t *rev)
{
    u_char                   buf;
    ssize_t                  n;
    ngx_connection_t        *c;
    ngx_oauth_redis_conn_t  *conn;

    c = rev->data;
    conn = c->data;

    if (!c->close) {
        n = recv(c->fd, &buf, 1, MSG_PEEK);

        if (n == -1 && ngx_socket_errno == NGX_EAGAIN) {
            rev->ready = 0;

            if (ngx_handle_read_event(rev, 0) == NGX_OK) {
                return;
            }
        }
    }

    ngx_queue_remove(&conn->queue);
    conn->srv->nidle--;
    ngx_oauth_redis_close(conn);
}


static void
ngx_oauth_redis_idle_write(ngx_event_t *wev)
{
}


/* ---- the second level of a cache ------------------------------------ */

/* prefix "nox:" zone ":" kind ":" hex(digest) */

static ngx_int_t
ngx_oauth_redis_key(ngx_http_request_t *r, ngx_oauth_cache_conf_t *cc,
    u_char kind, u_char *hash, ngx_str_t *key)
{
    u_char             *p;
    ngx_oauth_redis_t  *srv;

    srv = ngx_oauth_cache_redis(cc);

    p = ngx_pnalloc(r->pool, srv->prefix.len + sizeof("nox:::") - 1
                             + cc->zone->shm.name.len + 3
                             + 2 * NOX_SHA256_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    key->data = p;

    p = ngx_cpymem(p, srv->prefix.data, srv->prefix.len);
    p = ngx_sprintf(p, "nox:%V:%d:", &cc->zone->shm.name, (int) kind);
    p = ngx_hex_dump(p, hash, NOX_SHA256_LEN);

    key->len = p - key->data;

    return NGX_OK;
}


ngx_int_t
ngx_oauth_l2_lookup(ngx_http_request_t *r, ngx_oauth_cache_conf_t *cc,
    u_char kind, u_char *hash, ngx_oauth_redis_get_t **pg)
{
    ngx_str_t               args[2], command;
    ngx_pool_cleanup_t     *cln;
    ngx_oauth_redis_op_t   *op;
    ngx_oauth_redis_get_t  *g;

    if (cc == NULL || ngx_oauth_cache_redis(cc) == NULL
        || !ngx_oauth_managed_ready)
    {
        return NGX_DECLINED;
    }

    g = ngx_pcalloc(r->pool, sizeof(ngx_oauth_redis_get_t));
    if (g == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_oauth_redis_key(r, cc, kind, hash, &g->key) != NGX_OK) {
        return NGX_DECLINED;
    }

    ngx_str_set(&args[0], "GET");
    args[1] = g->key;

    if (ngx_oauth_redis_command(r->pool, args, 2, &command) != NGX_OK) {
        return NGX_DECLINED;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_DECLINED;
    }

    op = ngx_oauth_redis_op(ngx_oauth_cache_redis(cc), "GET", &command);
    if (op == NULL) {
        return NGX_DECLINED;
    }

    g->request = r;
    g->srv = ngx_oauth_cache_redis(cc);
    g->op = op;
    g->state = NGX_OAUTH_REDIS_PENDING;
    g->wake.handler = ngx_oauth_redis_wake;
    g->wake.data = g;
    g->wake.log = r->connection->log;

    cln->handler = ngx_oauth_redis_get_cleanup;
    cln->data = g;

    op->waiter = g;

    if (ngx_oauth_redis_start(op) != NGX_OK) {
        g->op = NULL;
        g->state = NGX_OAUTH_REDIS_USED;
        return NGX_DECLINED;
    }

    /* it may have ended already (an error on the first send): it is posted */

    *pg = g;

    /* a client that goes away ends the request (as while proxying) */

    if (r->read_event_handler == ngx_http_block_reading) {
        r->read_event_handler = ngx_http_test_reading;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "oauth_redis: GET \"%V\"", &g->key);

    return NGX_AGAIN;
}


ngx_int_t
ngx_oauth_l2_result(ngx_http_request_t *r, ngx_oauth_cache_conf_t *cc,
    ngx_oauth_redis_get_t *g, ngx_str_t *value, int32_t *aux, time_t *ttl)
{
    u_char             *p;
    int32_t             rc, len, a;
    int64_t             expires;
    time_t              now;
    ngx_oauth_redis_t  *srv;

    g->state = NGX_OAUTH_REDIS_USED;

    if (g->rc != NGX_OK) {
        return NGX_DECLINED;
    }

    srv = ngx_oauth_cache_redis(cc);

    if (g->value.len < NOX_CACHE_SEAL_OVERHEAD) {
        ngx_oauth_redis_warn(srv, r->connection->log, 0,
                             "the entry of \"%V\" is not one of ours",
                             &g->key);
        ngx_oauth_metrics_redis_lookup(&srv->metrics, &srv->name,
                                       NGX_OAUTH_RL_FOREIGN);
        return NGX_DECLINED;
    }

    p = ngx_pnalloc(r->pool, g->value.len - NOX_CACHE_SEAL_OVERHEAD + 1);
    if (p == NULL) {
        ngx_oauth_metrics_redis_lookup(&srv->metrics, &srv->name,
                                       NGX_OAUTH_RL_ERROR);
        return NGX_DECLINED;
    }

    rc = ngx_oauth_managed.cache_open(srv->secret.data,
                                      (int32_t) srv->secret.len,
                                      g->key.data, (int32_t) g->key.len,
                                      g->value.data, (int32_t) g->value.len,
                                      p, (int32_t) (g->value.len
                                                    - NOX_CACHE_SEAL_OVERHEAD
                                                    + 1),
                                      &len, &expires, &a);

    if (rc == NOX_DECRYPT_FAILED) {
        /* another key or identity: a miss, not an error */
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "oauth_redis \"%V\": the entry of \"%V\" does not "
                      "open with this key_file: a miss", &srv->name,
                      &g->key);
        ngx_oauth_metrics_redis_lookup(&srv->metrics, &srv->name,
                                       NGX_OAUTH_RL_FOREIGN);
        return NGX_DECLINED;
    }

    if (rc != NOX_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "oauth_redis \"%V\": nox_cache_open failed: %D",
                      &srv->name, rc);
        ngx_oauth_metrics_redis_lookup(&srv->metrics, &srv->name,
                                       NGX_OAUTH_RL_FOREIGN);
        return NGX_DECLINED;
    }

    now = ngx_time();

    if (expires <= (int64_t) now) {
        ngx_oauth_metrics_redis_lookup(&srv->metrics, &srv->name,
                                       NGX_OAUTH_RL_MISS);
        return NGX_DECLINED;
    }

    *ttl = (time_t) (expires - now);

    if (*ttl > cc->max_ttl) {
        *ttl = cc->max_ttl;
    }

    value->data = p;
    value->len = (size_t) len;
    *aux = a;

    ngx_oauth_metrics_redis_lookup(&srv->metrics, &srv->name,
                                   NGX_OAUTH_RL_HIT);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "oauth_redis: hit \"%V\", %T s left", &g->key, *ttl);

    return NGX_OK;
}


ngx_int_t
ngx_oauth_l2_get(ngx_http_request_t *r, ngx_oauth_cache_conf_t *cc,
    u_char kind, u_char *hash, ngx_oauth_redis_get_t **pg, ngx_str_t *value,
    int32_t *aux)
{
    time_t                  ttl;
    ngx_oauth_redis_get_t  *g;

    g = *pg;

    if (g == NULL) {
        if (ngx_oauth_l2_lookup(r, cc, kind, hash, pg) != NGX_AGAIN) {
            *pg = ngx_pcalloc(r->pool, sizeof(ngx_oauth_redis_get_t));
            if (*pg) {
                (*pg)->state = NGX_OAUTH_REDIS_USED;
            }

            return NGX_DECLINED;
        }

        return NGX_AGAIN;
    }

    switch (g->state) {

    case NGX_OAUTH_REDIS_PENDING:
        return NGX_AGAIN;

    case NGX_OAUTH_REDIS_DONE:

        if (ngx_oauth_l2_result(r, cc, g, value, aux, &ttl) != NGX_OK) {
            return NGX_DECLINED;
        }

        ngx_oauth_cache_put(r, cc, kind, hash, value, *aux, ttl);

        return NGX_OK;

    default:
        return NGX_DECLINED;
    }
}


void
ngx_oauth_l2_store(ngx_http_request_t *r, ngx_oauth_cache_conf_t *cc,
    u_char kind, u_char *hash, ngx_str_t *value, int32_t aux, time_t ttl)
{
    u_char                 *sealed, ms[NGX_TIME_T_LEN + 4];
    int32_t                 rc, len;
    ngx_str_t               key, args[5], command;
    ngx_oauth_redis_t      *srv;
    ngx_oauth_redis_op_t   *op;

    if (cc == NULL || ngx_oauth_cache_redis(cc) == NULL || ttl <= 0
        || !ngx_oauth_managed_ready
        || value->len > NGX_OAUTH_REDIS_MAX_VALUE - NOX_CACHE_SEAL_OVERHEAD)
    {
        return;
    }

    srv = ngx_oauth_cache_redis(cc);

    if (ngx_oauth_redis_key(r, cc, kind, hash, &key) != NGX_OK) {
        return;
    }

    sealed = ngx_pnalloc(r->pool, value->len + NOX_CACHE_SEAL_OVERHEAD);
    if (sealed == NULL) {
        return;
    }

    rc = ngx_oauth_managed.cache_seal(srv->secret.data,
                                      (int32_t) srv->secret.len,
                                      key.data, (int32_t) key.len,
                                      (int64_t) (ngx_time() + ttl), aux,
                                      value->data, (int32_t) value->len,
                                      sealed,
                                      (int32_t) (value->len
                                                 + NOX_CACHE_SEAL_OVERHEAD),
                                      &len);
    if (rc != NOX_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "oauth_redis \"%V\": nox_cache_seal failed: %D",
                      &srv->name, rc);
        return;
    }

    /* SET key value PX ms: Redis drops it when it expires here */

    ngx_str_set(&args[0], "SET");
    args[1] = key;
    args[2].data = sealed;
    args[2].len = (size_t) len;
    ngx_str_set(&args[3], "PX");
    args[4].data = ms;
    args[4].len = ngx_sprintf(ms, "%T", ttl * 1000) - ms;

    if (ngx_oauth_redis_command(r->pool, args, 5, &command) != NGX_OK) {
        return;
    }

    op = ngx_oauth_redis_op(srv, "SET", &command);
    if (op == NULL) {
        return;
    }

    (void) ngx_oauth_redis_start(op);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "oauth_redis: SET \"%V\" for %T s", &key, ttl);
}


/* the lookup ended: the request's phases run again */

static void
ngx_oauth_redis_wake(ngx_event_t *ev)
{
    ngx_connection_t       *c;
    ngx_http_request_t     *r;
    ngx_oauth_redis_get_t  *g;

    g = ev->data;
    r = g->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    if (r->read_event_handler == ngx_http_test_reading) {
        r->read_event_handler = ngx_http_block_reading;
    }

    ngx_http_core_run_phases(r);
    ngx_http_run_posted_requests(c);
}


/*
 * The request ends: a lookup under way goes on without it (its outcome is
 * counted when it ends); a value it got and did not open is "abandoned"
 */

static void
ngx_oauth_redis_get_cleanup(void *data)
{
    ngx_oauth_redis_get_t  *g = data;

    if (g->state == NGX_OAUTH_REDIS_DONE && g->rc == NGX_OK) {
        g->state = NGX_OAUTH_REDIS_USED;
        ngx_oauth_metrics_redis_lookup(&g->srv->metrics, &g->srv->name,
                                       NGX_OAUTH_RL_ABANDONED);
    }

    if (g->op) {
        g->op->waiter = NULL;           /* it ends on its own */
        ngx_oauth_redis_cancelable(g->op);
        g->op = NULL;
    }

    if (g->wake.posted) {
        ngx_delete_posted_event(&g->wake);
    }
}


/* at most one line per NGX_OAUTH_REDIS_WARN_EVERY s per server and worker */

static void
ngx_oauth_redis_warn(ngx_oauth_redis_t *srv, ngx_log_t *log, ngx_err_t err,
    const char *fmt, ...)
{
    u_char   *p, buf[NGX_MAX_ERROR_STR];
    va_list   args;

    if (srv->warned && ngx_time() - srv->warned < NGX_OAUTH_REDIS_WARN_EVERY)
    {
        return;
    }

    srv->warned = ngx_time();

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf) - 64, fmt, args);
    va_end(args);

    ngx_log_error(NGX_LOG_WARN, log, err,
                  "oauth_redis \"%V\" (%V): %*s; the cache carries on "
                  "without it (local zone, then the IdP)", &srv->name,
                  &srv->addr->name, (size_t) (p - buf), buf);
}
