/*
 * NginxOAuth shim: Security Token Service exchange (drop-in for OpenIDC's
 * ngx_sts_module, both its 3.0.x directives and the later STSExchange).
 *
 * The request flow (ARCHITECTURE.md, "One request through STS"):
 *   PRECONTENT handler -> source token from the STSVariables expression
 *     -> cache key (nox_sts_key) -> shared cache: hit, lead, or wait for
 *        the request that leads (single-flight, any worker)
 *     -> nox_sts_request builds the body (SOAP or form) and the headers
 *     -> POST subrequest to the endpoint's location: the operator's
 *        internal location, or one generated at configuration time that
 *        proxy_passes to the absolute URL
 *     -> nox_sts_response reads the answer -> cache store
 *     -> target token in the request ctx ($target), optional delivery
 *        into a header / cookie / query argument, optional removal of the
 *        source token
 *   Failures end in a deliberate status: 401 (no source token, STS refused
 *   it), 403 (access denied), 502 (STS failed, unusable answer), 503 with
 *   Retry-After (STS unreachable or timed out), 500 (our own trouble);
 *   on_error=pass continues without a target token instead.
 *
 * The C side turns both syntaxes into one list of options per location
 * (ngx_http_sts_def_t), keeps the options it acts on itself (transport,
 * cache, places, on_error) and hands the rest to the managed core, which
 * checks them (in the validator child) and builds requests, reads
 * answers, authenticates the client, and decides the cache key and TTL.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_oauth_core.h"
#include "ngx_oauth_cache.h"
#include "ngx_oauth_metrics.h"
#include "ngx_oauth_redis.h"


#define NGX_HTTP_STS_DEFAULT_TIMEOUT  20000
#define NGX_HTTP_STS_DEFAULT_ZONE     (4 * 1024 * 1024)
#define NGX_HTTP_STS_SECRET_MAX       (64 * 1024)

/*
 * The seed syntax's directives are kept as strings, one slot each, and
 * inherited slot by slot; endpoint k is 0 wstrust, 1 ropc, 2 otx
 * (NOX_STS_* - 1).  Slots VERIFY .. AUTH(2) shape the generated location.
 */
#define NGX_HTTP_STS_TYPE             0
#define NGX_HTTP_STS_VERIFY           1
#define NGX_HTTP_STS_TIMEOUT          2
#define NGX_HTTP_STS_CA               3
#define NGX_HTTP_STS_URL(k)           (4 + 3 * (k))
#define NGX_HTTP_STS_AUTH(k)          (5 + 3 * (k))
#define NGX_HTTP_STS_AUTH_OPTS(k)     (6 + 3 * (k))
#define NGX_HTTP_STS_APPLIES_TO       13
#define NGX_HTTP_STS_TOKEN_TYPE       14
#define NGX_HTTP_STS_VALUE_TYPE       15
#define NGX_HTTP_STS_ROPC_CLIENT      16
#define NGX_HTTP_STS_ROPC_USER        17
#define NGX_HTTP_STS_OTX_CLIENT       18
#define NGX_HTTP_STS_EXPIRES          19
#define NGX_HTTP_STS_SLOTS            20

#define NGX_HTTP_STS_NEW              0
#define NGX_HTTP_STS_SUBREQUEST       1
#define NGX_HTTP_STS_WAITING          2
#define NGX_HTTP_STS_DONE             3


/* an option passed to the managed core: "name" = value */

typedef struct {
    ngx_str_t                    name;
    ngx_str_t                    value;     /* decoded, as configured */
    ngx_http_complex_value_t    *cv;        /* NULL: no variables */
} ngx_http_sts_opt_t;


/* one exchange, whichever syntax described it */

typedef struct {
    ngx_uint_t                   type;      /* NOX_STS_*, 0: disabled */
    ngx_str_t                    endpoint;  /* URL, internal URI, or JWK */
    ngx_oauth_route_t            route;
    ngx_array_t                 *opts;      /* of ngx_http_sts_opt_t */
    ngx_str_t                    cache_name;
    ngx_oauth_cache_conf_t      *cache;
    ngx_flag_t                   pass_on_error;
    ngx_oauth_place_t            strip;
    ngx_oauth_place_t            deliver;
    nox_buf_t                   *settings;  /* names and values, pairs */
    ngx_uint_t                   n;         /* pairs */
    ngx_uint_t                   depth;     /* of the location that set it */
    ngx_uint_t                   quiet;     /* options warned about before */
    const char                  *directive;
    ngx_str_t                    file;
    ngx_uint_t                   line;
    int64_t                      handle;    /* per worker, lazily */
    ngx_int_t                    handle_state;
} ngx_http_sts_def_t;


/* STSCache while it is parsed */

typedef struct {
    ngx_str_t                    name;
    ssize_t                      size;
    ngx_int_t                    entries;
    ngx_int_t                    value_size;
    ngx_str_t                    redis;       /* redis=: oauth_redis name */
} ngx_http_sts_cache_t;


typedef struct ngx_http_sts_loc_conf_s  ngx_http_sts_loc_conf_t;

struct ngx_http_sts_loc_conf_s {
    ngx_http_sts_loc_conf_t     *parent;    /* while parsing */
    ngx_uint_t                   depth;

    ngx_http_sts_def_t          *exchange;  /* STSExchange */

    ngx_str_t                    seed[NGX_HTTP_STS_SLOTS];
    ngx_uint_t                   seed_depth;    /* of STSType */
    ngx_str_t                    seed_file;
    ngx_uint_t                   seed_line;
    ngx_oauth_route_t           *route[3];
    ngx_array_t                 *params;    /* STSRequestParameter */

    ngx_oauth_cache_conf_t      *cache;     /* STSCache in this location */
    ngx_oauth_place_t           *strip;
    ngx_oauth_place_t           *deliver;

    ngx_http_complex_value_t    *source;    /* STSVariables */
    ngx_uint_t                   source_set;

    ngx_str_t                    passphrase;    /* has no use here */

    ngx_http_sts_def_t          *def;       /* after merge */
};


typedef struct {
    ngx_uint_t                   state;
    ngx_http_sts_def_t          *def;
    ngx_str_t                    source;
    ngx_str_t                    target;
    ngx_str_t                    issued_type;
    ngx_str_t                    token_type;
    nox_buf_t                   *values;
    ngx_oauth_flight_t           flight;      /* cache and STS call */
    ngx_int_t                    rc;          /* once decided */
} ngx_http_sts_ctx_t;


static ngx_int_t ngx_http_sts_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_sts_begin(ngx_http_request_t *r,
    ngx_http_sts_def_t *def, ngx_http_sts_loc_conf_t *slcf,
    ngx_http_sts_ctx_t *ctx);
static ngx_int_t ngx_http_sts_lookup(ngx_http_request_t *r,
    ngx_http_sts_def_t *def, ngx_http_sts_ctx_t *ctx);
static ngx_int_t ngx_http_sts_call(ngx_http_request_t *r,
    ngx_http_sts_def_t *def, ngx_http_sts_ctx_t *ctx);
static ngx_int_t ngx_http_sts_answer(ngx_http_request_t *r,
    ngx_http_sts_def_t *def, ngx_http_sts_ctx_t *ctx);
static ngx_int_t ngx_http_sts_success(ngx_http_request_t *r,
    ngx_http_sts_def_t *def, ngx_http_sts_ctx_t *ctx, time_t ttl);
static ngx_int_t ngx_http_sts_fail(ngx_http_request_t *r,
    ngx_http_sts_def_t *def, ngx_http_sts_ctx_t *ctx, ngx_uint_t status);
static ngx_int_t ngx_http_sts_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static ngx_int_t ngx_http_sts_add_variables(ngx_conf_t *cf);
static void *ngx_http_sts_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_sts_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_sts_init(ngx_conf_t *cf);

static char *ngx_http_sts_seed(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_sts_cache_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_sts_variables(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_sts_exchange(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_sts_place_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

static char *ngx_http_sts_option(ngx_conf_t *cf, void *data,
    ngx_str_t *name, ngx_str_t *value);
static char *ngx_http_sts_param(ngx_conf_t *cf, void *data,
    ngx_str_t *name, ngx_str_t *value);
static char *ngx_http_sts_cache_option(ngx_conf_t *cf, void *data,
    ngx_str_t *name, ngx_str_t *value);
static char *ngx_http_sts_opt_add(ngx_conf_t *cf, ngx_array_t **opts,
    ngx_str_t *name, ngx_str_t *value, ngx_uint_t variables);
static ngx_uint_t ngx_http_sts_type(ngx_conf_t *cf, ngx_str_t *name,
    ngx_uint_t last);
static char *ngx_http_sts_seed_routes(ngx_conf_t *cf,
    ngx_http_sts_loc_conf_t *slcf, ngx_uint_t check);
static char *ngx_http_sts_seed_def(ngx_conf_t *cf,
    ngx_http_sts_loc_conf_t *slcf, ngx_http_sts_def_t **pdef);
static char *ngx_http_sts_finish(ngx_conf_t *cf, ngx_http_sts_def_t *def);
static u_char *ngx_http_sts_check(void *data, u_char *buf, u_char *last);


/* NOX_STS_* order: an entry's index is its value */

static ngx_conf_enum_t  ngx_http_sts_types[] = {
    { ngx_string("disabled"), 0 },
    { ngx_string("wstrust"), NOX_STS_WSTRUST },
    { ngx_string("ropc"), NOX_STS_ROPC },
    { ngx_string("otx"), NOX_STS_OTX },
    { ngx_string("cc"), NOX_STS_CC },
    { ngx_string("jwt"), NOX_STS_JWT },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_sts_flags[] = {
    { ngx_string("off"), 0 },
    { ngx_string("on"), 1 },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_sts_cache_types[] = {      /* 1: warned */
    { ngx_string("shm"), 0 },
    { ngx_string("file"), 1 },
    { ngx_string("memcache"), 1 },
    { ngx_string("redis"), 1 },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_sts_on_error[] = {
    { ngx_string("return"), 0 },
    { ngx_string("pass"), 1 },
    { ngx_null_string, 0 }
};


/* seed directives that become options of the core, by exchange type */

typedef struct {
    ngx_uint_t                   slot;
    ngx_uint_t                   type;      /* 0: any */
    ngx_str_t                    option;
} ngx_http_sts_seed_opt_t;


static ngx_http_sts_seed_opt_t  ngx_http_sts_seed_opts[] = {
    { NGX_HTTP_STS_APPLIES_TO, NOX_STS_WSTRUST, ngx_string("applies_to") },
    { NGX_HTTP_STS_TOKEN_TYPE, NOX_STS_WSTRUST, ngx_string("token_type") },
    { NGX_HTTP_STS_VALUE_TYPE, NOX_STS_WSTRUST, ngx_string("value_type") },
    { NGX_HTTP_STS_ROPC_CLIENT, NOX_STS_ROPC,
      ngx_string("client_id_default") },
    { NGX_HTTP_STS_ROPC_USER, NOX_STS_ROPC, ngx_string("username") },
    { NGX_HTTP_STS_OTX_CLIENT, NOX_STS_OTX,
      ngx_string("client_id_default") },
    { NGX_HTTP_STS_EXPIRES, 0, ngx_string("cache.expiry") },
};


/* every STS directive has this shape: a row of data each */

#define ngx_http_sts_command(name, args, handler, offset)                     \
    { ngx_string(name), NGX_HTTP_LOC_CONF|NGX_HTTP_LIF_CONF|(args), handler,  \
      NGX_HTTP_LOC_CONF_OFFSET, offset, NULL }

#define ngx_http_sts_off(f)  offsetof(ngx_http_sts_loc_conf_t, f)


static ngx_command_t  ngx_http_sts_commands[] = {

    ngx_http_sts_command("STSType", NGX_CONF_TAKE1, ngx_http_sts_seed,
                         NGX_HTTP_STS_TYPE),
    ngx_http_sts_command("STSSSLValidateServer", NGX_CONF_TAKE1,
                         ngx_http_sts_seed, NGX_HTTP_STS_VERIFY),
    ngx_http_sts_command("STSHTTPTimeOut", NGX_CONF_TAKE1, ngx_http_sts_seed,
                         NGX_HTTP_STS_TIMEOUT),
    ngx_http_sts_command("STSSSLCAFile", NGX_CONF_TAKE1, ngx_http_sts_seed,
                         NGX_HTTP_STS_CA),
    ngx_http_sts_command("STSWSTrustEndpoint", NGX_CONF_TAKE1,
                         ngx_http_sts_seed, NGX_HTTP_STS_URL(0)),
    ngx_http_sts_command("STSWSTrustEndpointAuth", NGX_CONF_TAKE12,
                         ngx_http_sts_seed, NGX_HTTP_STS_AUTH(0)),
    ngx_http_sts_command("STSWSTrustAppliesTo", NGX_CONF_TAKE1,
                         ngx_http_sts_seed, NGX_HTTP_STS_APPLIES_TO),
    ngx_http_sts_command("STSWSTrustTokenType", NGX_CONF_TAKE1,
                         ngx_http_sts_seed, NGX_HTTP_STS_TOKEN_TYPE),
    ngx_http_sts_command("STSWSTrustValueType", NGX_CONF_TAKE1,
                         ngx_http_sts_seed, NGX_HTTP_STS_VALUE_TYPE),
    ngx_http_sts_command("STSROPCEndpoint", NGX_CONF_TAKE1,
                         ngx_http_sts_seed, NGX_HTTP_STS_URL(1)),
    ngx_http_sts_command("STSROPCEndpointAuth", NGX_CONF_TAKE12,
                         ngx_http_sts_seed, NGX_HTTP_STS_AUTH(1)),
    ngx_http_sts_command("STSROPCClientID", NGX_CONF_TAKE1,
                         ngx_http_sts_seed, NGX_HTTP_STS_ROPC_CLIENT),
    ngx_http_sts_command("STSROPCUsername", NGX_CONF_TAKE1,
                         ngx_http_sts_seed, NGX_HTTP_STS_ROPC_USER),
    ngx_http_sts_command("STSOTXEndpoint", NGX_CONF_TAKE1,
                         ngx_http_sts_seed, NGX_HTTP_STS_URL(2)),
    ngx_http_sts_command("STSOTXEndpointAuth", NGX_CONF_TAKE12,
                         ngx_http_sts_seed, NGX_HTTP_STS_AUTH(2)),
    ngx_http_sts_command("STSOTXClientID", NGX_CONF_TAKE1,
                         ngx_http_sts_seed, NGX_HTTP_STS_OTX_CLIENT),
    ngx_http_sts_command("STSCacheExpiresIn", NGX_CONF_TAKE1,
                         ngx_http_sts_seed, NGX_HTTP_STS_EXPIRES),
    ngx_http_sts_command("STSRequestParameter", NGX_CONF_TAKE12,
                         ngx_http_sts_seed, NGX_HTTP_STS_SLOTS),
    ngx_http_sts_command("STSCache",
                         NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE12,
                         ngx_http_sts_cache_conf, 0),
    ngx_http_sts_command("STSVariables", NGX_CONF_TAKE12,
                         ngx_http_sts_variables, 0),
    ngx_http_sts_command("STSExchange", NGX_CONF_TAKE1234|NGX_CONF_TAKE5,
                         ngx_http_sts_exchange, 0),
    ngx_http_sts_command("STSStripSource", NGX_CONF_TAKE1,
                         ngx_http_sts_place_conf, ngx_http_sts_off(strip)),
    ngx_http_sts_command("STSPassTarget", NGX_CONF_TAKE1,
                         ngx_http_sts_place_conf, ngx_http_sts_off(deliver)),

    /* accepted for drop-in configurations: see docs/DIRECTIVES.md */
    { ngx_string("STSCryptoPassphrase"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_HTTP_LIF_CONF
                        |NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      ngx_http_sts_off(passphrase),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_oauth_sts_module_ctx = {
    ngx_http_sts_add_variables,            /* preconfiguration */
    ngx_http_sts_init,                     /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_sts_create_loc_conf,          /* create location configuration */
    ngx_http_sts_merge_loc_conf            /* merge location configuration */
};


ngx_module_t  ngx_http_oauth_sts_module = {
    NGX_MODULE_V1,
    &ngx_http_oauth_sts_module_ctx,        /* module context */
    ngx_http_sts_commands,                 /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* the STS answer's token types (the target token: STSVariables) */

static ngx_http_variable_t  ngx_http_sts_vars[] = {

    { ngx_string("sts_issued_token_type"), NULL, ngx_http_sts_variable,
      offsetof(ngx_http_sts_ctx_t, issued_type), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("sts_token_type"), NULL, ngx_http_sts_variable,
      offsetof(ngx_http_sts_ctx_t, token_type), NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_sts_form_type =
    ngx_string("application/x-www-form-urlencoded");
static ngx_str_t  ngx_http_sts_soap_type =
    ngx_string("application/soap+xml; charset=utf-8");


/* ---- request handling -------------------------------------------------- */

static ngx_int_t
ngx_http_sts_handler(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_http_sts_ctx_t       *ctx;
    ngx_http_sts_def_t       *def;
    ngx_http_sts_loc_conf_t  *slcf;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_oauth_sts_module);
    def = slcf->def;

    if (def == NULL || def->type == 0) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_oauth_sts_module);

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_sts_ctx_t));
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /*
         * set by ngx_pcalloc():
         *
         *     ctx->state = NGX_HTTP_STS_NEW;
         *     ctx->target = { 0, NULL };
         *     ctx->flight.leader = 0;
         */

        ctx->def = def;
        ctx->flight.cache = def->cache;
        ctx->flight.kind = 's';
        ctx->flight.lead_ttl = (time_t) (def->route.timeout / 1000) + 5;

        ngx_http_set_ctx(r, ctx, ngx_http_oauth_sts_module);
    }

    switch (ctx->state) {

    case NGX_HTTP_STS_NEW:
        rc = ngx_http_sts_begin(r, def, slcf, ctx);
        if (rc != NGX_OK) {
            return rc;
        }

        /* fall through */

    case NGX_HTTP_STS_WAITING:
        rc = ngx_http_sts_lookup(r, def, ctx);

        return (rc == NGX_OK) ? ngx_http_sts_call(r, def, ctx) : rc;

    case NGX_HTTP_STS_SUBREQUEST:
        return ctx->flight.done ? ngx_http_sts_answer(r, def, ctx) : NGX_AGAIN;

    default: /* NGX_HTTP_STS_DONE */
        return ctx->rc;
    }
}


/* the source token, this request's option values, the cache key */

static ngx_int_t
ngx_http_sts_begin(ngx_http_request_t *r, ngx_http_sts_def_t *def,
    ngx_http_sts_loc_conf_t *slcf, ngx_http_sts_ctx_t *ctx)
{
    int32_t              rc, detail;
    ngx_str_t            value;
    ngx_uint_t           i;
    ngx_http_sts_opt_t  *opt;

    if (!ngx_oauth_managed_ready) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "sts: the managed library is not loaded in this "
                      "worker");
        goto failed;
    }

    if (slcf->source
        && ngx_http_complex_value(r, slcf->source, &ctx->source) != NGX_OK)
    {
        goto failed;
    }

    if (ctx->source.data == NULL) {
        ngx_str_set(&ctx->source, "");
    }

    if (ctx->source.len == 0 && def->type != NOX_STS_CC) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "sts: no source token in the request");
        ngx_oauth_metrics_reason(r, NGX_OAUTH_M_STS, NGX_OAUTH_R_MISSING);
        return ngx_http_sts_fail(r, def, ctx, NGX_HTTP_UNAUTHORIZED);
    }

    /* the managed configuration, built once per definition and worker */

    if (def->handle_state == 0) {
        detail = -1;
        rc = ngx_oauth_managed.sts_create(def->settings,
                                          (int32_t) (2 * def->n),
                                          &def->handle, &detail);

        /* nginx -t checked the same settings: a failure is not expected */

        if (rc != NOX_OK) {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "sts: the exchange of %V:%ui cannot be set up: "
                          "%s (setting %D)", &def->file, def->line,
                          ngx_oauth_status_text(rc), detail);
        }

        def->handle_state = (rc == NOX_OK) ? 1 : -1;
    }

    if (def->handle_state != 1) {
        goto failed;
    }

    /* this request's values of the options (after type and endpoint) */

    ctx->values = ngx_pcalloc(r->pool, def->n * sizeof(nox_buf_t));
    if (ctx->values == NULL) {
        goto failed;
    }

    opt = def->opts ? def->opts->elts : NULL;

    for (i = 2; i < def->n; i++) {
        if (opt[i - 2].cv == NULL) {
            continue;
        }

        if (ngx_http_complex_value(r, opt[i - 2].cv, &value) != NGX_OK) {
            goto failed;
        }

        ctx->values[i].data = value.data ? value.data : (u_char *) "";
        ctx->values[i].len = (int32_t) value.len;
    }

    if (ngx_oauth_managed.sts_key(def->handle, ctx->source.data,
                                  (int32_t) ctx->source.len, ctx->values,
                                  (int32_t) def->n, ctx->flight.hash,
                                  NOX_SHA256_LEN)
        == NOX_OK)
    {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                  "sts: nox_sts_key failed");

failed:

    return ngx_http_sts_fail(r, def, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
}


/* NGX_OK: this request asks the STS; else the handler's answer */

static ngx_int_t
ngx_http_sts_lookup(ngx_http_request_t *r, ngx_http_sts_def_t *def,
    ngx_http_sts_ctx_t *ctx)
{
    u_char     *p;
    int32_t     aux;
    uint32_t    issued, ttype;
    ngx_int_t   rc;
    ngx_str_t   value;

    rc = ngx_oauth_flight_lookup(r, &ctx->flight, &value, &aux);

    switch (rc) {

    case NGX_OK:
        /* value: issued_type length, token_type length, then the bytes */

        if (value.len < 8 || aux <= 0) {
            break;
        }

        p = value.data;
        issued = (uint32_t) p[0] << 8 | p[1];
        ttype = (uint32_t) p[2] << 8 | p[3];

        if ((size_t) aux + issued + ttype + 8 != value.len) {
            break;
        }

        ctx->target.data = p + 8;
        ctx->target.len = aux;
        ctx->issued_type.data = p + 8 + aux;
        ctx->issued_type.len = issued;
        ctx->token_type.data = p + 8 + aux + issued;
        ctx->token_type.len = ttype;

        return ngx_http_sts_success(r, def, ctx, 0);

    case NGX_DECLINED:
        return NGX_OK;

    case NGX_AGAIN:
        ctx->state = NGX_HTTP_STS_WAITING;
        return NGX_AGAIN;

    case NGX_ABORT:
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "sts: the exchange this request waited for failed "
                      "with %D", aux);

        return ngx_http_sts_fail(r, def, ctx, (ngx_uint_t) aux);

    default:
        return ngx_http_sts_fail(r, def, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                  "sts: malformed cache entry");
    return NGX_OK;
}


static ngx_int_t
ngx_http_sts_call(ngx_http_request_t *r, ngx_http_sts_def_t *def,
    ngx_http_sts_ctx_t *ctx)
{
    u_char                      *out;
    size_t                       cap;
    int32_t                      rc, lens[3];
    int64_t                      ttl;
    ngx_str_t                    body, auth, action;
    ngx_http_request_t          *sr;

    cap = 3 * ctx->source.len + 16384;

    /* 8 spare bytes: room for the cache entry's head (type jwt) */

    if (ngx_oauth_sts_build(r, def->handle, &ctx->source, ctx->values,
                            def->n, cap, 8, &out, lens, &ttl, &rc)
        != NGX_OK)
    {
        return ngx_http_sts_fail(r, def, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    if (rc == NOX_SOURCE_INVALID) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "sts: rejected: %s (source token %uz bytes)",
                      ngx_oauth_status_text(rc), ctx->source.len);
        return ngx_http_sts_fail(r, def, ctx, NGX_HTTP_UNAUTHORIZED);
    }

    if (rc != NOX_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "sts: nox_sts_request failed: %s",
                      ngx_oauth_status_text(rc));
        return ngx_http_sts_fail(r, def, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    if (def->type == NOX_STS_JWT) {
        ctx->target.data = out;
        ctx->target.len = lens[0];
        return ngx_http_sts_success(r, def, ctx, (time_t) ttl);
    }

    /* out: the body, the Authorization value, the soapAction value */

    body.data = out;
    body.len = lens[0];
    auth.data = out + lens[0];
    auth.len = lens[1];
    action.data = out + lens[0] + lens[1];
    action.len = lens[2];

    if (ngx_oauth_flight_post(r, &ctx->flight, &def->route.uri,
                              def->type == NOX_STS_WSTRUST
                              ? &ngx_http_sts_soap_type
                              : &ngx_http_sts_form_type,
                              &auth, &body, &sr)
        != NGX_OK)
    {
        return ngx_http_sts_fail(r, def, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    ctx->state = NGX_HTTP_STS_SUBREQUEST;

    if (action.len
        && ngx_oauth_header_add(r->pool, &sr->headers_in.headers,
                                "soapAction", &action)
           == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "sts: POST \"%V\", %s body of %uz bytes", &def->route.uri,
                   def->type == NOX_STS_WSTRUST ? "SOAP" : "form", body.len);

    return NGX_AGAIN;
}


static ngx_int_t
ngx_http_sts_answer(ngx_http_request_t *r, ngx_http_sts_def_t *def,
    ngx_http_sts_ctx_t *ctx)
{
    u_char              *out;
    int32_t              lens[3];
    int64_t              ttl;
    ngx_int_t            rc;
    ngx_str_t            code;
    ngx_oauth_flight_t  *f;
    u_char               safe[ngx_oauth_log_safe_size(NOX_STS_ERROR_MAX)];

    f = &ctx->flight;

    rc = ngx_oauth_flight_answer(r, f, "sts", &def->route.url);
    if (rc != NGX_OK) {
        return ngx_http_sts_fail(r, def, ctx, rc);
    }

    out = ngx_pnalloc(r->pool, 8 + f->body.len + 256);
    if (out == NULL) {
        return ngx_http_sts_fail(r, def, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    out += 8;   /* room for the cache entry's head */

    lens[0] = lens[1] = lens[2] = -1;
    ttl = 0;

    rc = ngx_oauth_managed.sts_response(def->handle,
                                        (int32_t) f->status,
                                        f->body.data,
                                        (int32_t) f->body.len,
                                        (int64_t) ngx_time(), out,
                                        (int32_t) (f->body.len + 256),
                                        lens, &ttl);

    if (rc == NOX_OK) {
        /* out: the target token, issued_token_type, token_type */

        ctx->target.data = out;
        ctx->target.len = lens[0];
        ctx->issued_type.data = out + lens[0];
        ctx->issued_type.len = ngx_max(lens[1], 0);
        ctx->token_type.data = out + lens[0] + ngx_max(lens[1], 0);
        ctx->token_type.len = ngx_max(lens[2], 0);

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "sts: target token of %uz bytes, cacheable for %L s",
                       ctx->target.len, ttl);

        return ngx_http_sts_success(r, def, ctx, (time_t) ttl);
    }

    if (rc == NOX_STS_REJECTED || rc == NOX_STS_FORBIDDEN) {
        code.data = out;
        code.len = (lens[0] > 0) ? (size_t) lens[0] : 0;
        code.len = ngx_oauth_log_safe(safe, &code, NOX_STS_ERROR_MAX) - safe;
        code.data = safe;

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "sts: rejected: \"%V\" answered %ui \"%V\" (source "
                      "token %uz bytes)", &def->route.url, f->status,
                      &code, ctx->source.len);

        return ngx_http_sts_fail(r, def, ctx,
                                 rc == NOX_STS_FORBIDDEN
                                 ? NGX_HTTP_FORBIDDEN
                                 : NGX_HTTP_UNAUTHORIZED);
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "sts: \"%V\" answered %ui with %uz bytes: %s",
                  &def->route.url, f->status, f->body.len,
                  ngx_oauth_status_text(rc));

    return ngx_http_sts_fail(r, def, ctx, NGX_HTTP_BAD_GATEWAY);
}


static ngx_int_t
ngx_http_sts_success(ngx_http_request_t *r, ngx_http_sts_def_t *def,
    ngx_http_sts_ctx_t *ctx, time_t ttl)
{
    u_char     *p;
    ngx_str_t   value;

    /* the cache entry: the two types' lengths, 4 bytes, then the values */

    value.data = ctx->target.data - 8;
    value.len = 8 + ctx->target.len + ctx->issued_type.len
                + ctx->token_type.len;

    if (ctx->issued_type.len > 0xffff || ctx->token_type.len > 0xffff) {
        ttl = 0;
    }

    if (ctx->flight.leader && ttl > 0) {
        p = value.data;
        *p++ = (u_char) (ctx->issued_type.len >> 8);
        *p++ = (u_char) ctx->issued_type.len;
        *p++ = (u_char) (ctx->token_type.len >> 8);
        *p++ = (u_char) ctx->token_type.len;
        ngx_memzero(p, 4);
    }

    /* not cacheable (ttl 0): the followers ask for themselves */

    ngx_oauth_flight_store(r, &ctx->flight, &value, (int32_t) ctx->target.len,
                           ttl);

    if (ngx_oauth_place_set(r, &def->strip, NULL) != NGX_OK
        || ngx_oauth_place_set(r, &def->deliver, &ctx->target) != NGX_OK)
    {
        return ngx_http_sts_fail(r, def, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    ctx->state = NGX_HTTP_STS_DONE;
    ctx->rc = NGX_DECLINED;

    ngx_oauth_metrics_allow(r, NGX_OAUTH_M_STS);

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_sts_fail(ngx_http_request_t *r, ngx_http_sts_def_t *def,
    ngx_http_sts_ctx_t *ctx, ngx_uint_t status)
{
    ngx_oauth_flight_fail(r, &ctx->flight, status);
    ngx_oauth_metrics_reject(r, NGX_OAUTH_M_STS, status);

    ngx_str_null(&ctx->target);
    ngx_str_null(&ctx->issued_type);
    ngx_str_null(&ctx->token_type);

    ctx->state = NGX_HTTP_STS_DONE;

    if (def->pass_on_error && status != NGX_HTTP_INTERNAL_SERVER_ERROR) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "sts: on_error=pass: continuing without a target "
                      "token (would have been %ui)", status);

        /* the source token must not reach the upstream either way */

        ctx->rc = (ngx_oauth_place_set(r, &def->strip, NULL) == NGX_OK)
                  ? NGX_DECLINED : NGX_HTTP_INTERNAL_SERVER_ERROR;
        return ctx->rc;
    }

    ctx->rc = ngx_oauth_challenge(r, status, ctx->source.len != 0);

    return ctx->rc;
}








/* ---- variables --------------------------------------------------------- */

static ngx_int_t
ngx_http_sts_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    ngx_str_t           *value;
    ngx_http_sts_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_oauth_sts_module);
    value = ctx ? (ngx_str_t *) ((u_char *) ctx + data) : NULL;

    if (value == NULL || value->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    /* the core admitted no control characters; the shared gate anyway */

    return ngx_oauth_variable_set(r, v, value);
}


static ngx_int_t
ngx_http_sts_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_sts_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}

/* ---- configuration ----------------------------------------------------- */

static void *
ngx_http_sts_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_sts_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_sts_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->seed[] = { 0, NULL };
     *     conf->route[] = NULL;
     *     conf->source = NULL;
     *     conf->source_set = 0;
     *     conf->passphrase = { 0, NULL };
     *     conf->def = NULL;
     */

    conf->exchange = NGX_CONF_UNSET_PTR;
    conf->cache = NGX_CONF_UNSET_PTR;
    conf->strip = NGX_CONF_UNSET_PTR;
    conf->deliver = NGX_CONF_UNSET_PTR;
    conf->params = NGX_CONF_UNSET_PTR;

    /*
     * create_loc_conf runs while cf->ctx is still the enclosing block's:
     * remember it, so that directives can see what encloses them before
     * the merge (the endpoint locations are generated while parsing)
     */

    if (cf->cmd_type & (NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF)) {
        conf->parent = ngx_http_conf_get_module_loc_conf(cf,
                                                 ngx_http_oauth_sts_module);
        conf->depth = conf->parent ? conf->parent->depth + 1 : 1;
    }

    return conf;
}


static char *
ngx_http_sts_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_sts_loc_conf_t *prev = parent;
    ngx_http_sts_loc_conf_t *conf = child;

    char                *rv;
    ngx_uint_t           i;
    ngx_http_sts_def_t  *def;

    ngx_conf_merge_ptr_value(conf->exchange, prev->exchange, NULL);

    if (conf->seed[NGX_HTTP_STS_TYPE].data == NULL) {
        conf->seed_depth = prev->seed_depth;
        conf->seed_file = prev->seed_file;
        conf->seed_line = prev->seed_line;
    }

    for (i = 0; i < NGX_HTTP_STS_SLOTS; i++) {
        if (conf->seed[i].data == NULL) {
            conf->seed[i] = prev->seed[i];
        }
    }

    for (i = 0; i < 3; i++) {
        if (conf->route[i] == NULL) {
            conf->route[i] = prev->route[i];
        }
    }

    ngx_conf_merge_ptr_value(conf->params, prev->params, NULL);
    ngx_conf_merge_ptr_value(conf->cache, prev->cache, NULL);
    ngx_conf_merge_ptr_value(conf->strip, prev->strip, NULL);
    ngx_conf_merge_ptr_value(conf->deliver, prev->deliver, NULL);

    if (!conf->source_set) {
        conf->source = prev->source;
        conf->source_set = prev->source_set;
    }

    /* the deeper of the two syntaxes wins; both at one level is an error */

    def = conf->exchange;

    if (def && (conf->seed[NGX_HTTP_STS_TYPE].data == NULL
                || def->depth > conf->seed_depth))
    {
        /* an STSExchange is finished where it was written */

        if (def->type && def->settings == NULL) {
            def->cache = def->cache ? def->cache : conf->cache;
            def->strip = def->strip.in ? def->strip
                         : conf->strip ? *conf->strip : def->strip;
            def->deliver = def->deliver.in ? def->deliver
                           : conf->deliver ? *conf->deliver : def->deliver;

            rv = ngx_http_sts_finish(cf, def);
            if (rv != NGX_CONF_OK) {
                return rv;
            }
        }

        conf->def = def;

    } else if (conf->seed[NGX_HTTP_STS_TYPE].data) {
        rv = ngx_http_sts_seed_def(cf, conf, &conf->def);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    if (conf->def && conf->def->type && conf->def->type != NOX_STS_CC
        && !conf->source_set)
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"%s\" in %V:%ui has no source token: add "
                      "\"STSVariables <source> $<target>\"",
                      conf->def->directive, &conf->def->file,
                      conf->def->line);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_sts_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /*
     * After the access phase: the source may be a variable that an access
     * module fills ($jwt_claims, $oauth2_token_*), and "satisfy any" can
     * never skip the exchange.
     */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_sts_handler;

    return NGX_OK;
}


/* the directives of the seed syntax: one slot each */

static char *
ngx_http_sts_seed(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sts_loc_conf_t *slcf = conf;

    char                *rv;
    ngx_str_t           *value, empty;
    ngx_uint_t           i, slot;
    ngx_http_sts_def_t   tmp;

    value = cf->args->elts;
    slot = cmd->offset;

    if (slot == NGX_HTTP_STS_SLOTS) {
        /* STSRequestParameter <name> [<value>]: repeatable, not a slot */

        if (slcf->params == NGX_CONF_UNSET_PTR) {
            slcf->params = NULL;
        }

        ngx_str_set(&empty, "");

        return value[1].len ? ngx_http_sts_param(cf, &slcf->params, &value[1],
                                                 cf->args->nelts == 3
                                                 ? &value[2] : &empty)
                            : "has an empty name";
    }

    if (slcf->seed[slot].data) {
        return "is duplicate";
    }

    switch (slot) {

    case NGX_HTTP_STS_TYPE:
        if (slcf->exchange != NGX_CONF_UNSET_PTR) {
            return "cannot be combined with \"STSExchange\" in one location";
        }

        i = ngx_http_sts_type(cf, &value[1], NOX_STS_OTX);
        if (i == (ngx_uint_t) NGX_ERROR) {
            return NGX_CONF_ERROR;
        }

        value[1] = ngx_http_sts_types[i].name;
        slcf->seed_depth = slcf->depth;
        slcf->seed_file = cf->conf_file->file.name;
        slcf->seed_line = cf->conf_file->line;

        if (i) {
            ngx_oauth_use(cf);
        }

        break;

    case NGX_HTTP_STS_VERIFY:
        if (ngx_oauth_enum(ngx_http_sts_flags, &value[1], 1) == NULL) {
            return "takes \"on\" or \"off\"";
        }

        break;

    case NGX_HTTP_STS_TIMEOUT:
        if (ngx_oauth_seconds_msec(&value[1]) == (ngx_msec_t) NGX_ERROR) {
            return "has an invalid value";
        }

        break;

    case NGX_HTTP_STS_EXPIRES:
        if (ngx_parse_time(&value[1], 1) == (time_t) NGX_ERROR) {
            return "has an invalid value";
        }

        break;

    case NGX_HTTP_STS_URL(0):
    case NGX_HTTP_STS_URL(1):
    case NGX_HTTP_STS_URL(2):
        if (value[1].len == 0) {
            return "is empty";
        }

        break;

    case NGX_HTTP_STS_AUTH(0):
    case NGX_HTTP_STS_AUTH(1):
    case NGX_HTTP_STS_AUTH(2):
        /* <method> [<options>]: checked (and warned about) here, once */

        if (cf->args->nelts == 3) {
            ngx_memzero(&tmp, sizeof(ngx_http_sts_def_t));

            rv = ngx_oauth_form_each(cf, &value[2], ngx_http_sts_option,
                                     &tmp);
            if (rv != NGX_CONF_OK) {
                return rv;
            }

            slcf->seed[slot + 1] = value[2];

        } else {
            ngx_str_set(&slcf->seed[slot + 1], "");
        }

        break;
    }

    slcf->seed[slot] = value[1];

    if (slot >= NGX_HTTP_STS_VERIFY && slot <= NGX_HTTP_STS_AUTH(2)) {
        return ngx_http_sts_seed_routes(cf, slcf, 0);
    }

    return NGX_CONF_OK;
}


/*
 * STSCache <type> [<options>]: shm is a shared-memory zone of ours; file,
 * memcache and redis are accepted and served by one too (warned).
 * Options: name=, size=, max_entries=, max_val_size= (sizing the zone);
 * the rest of the anchor's options are accepted and have no effect.
 */

static char *
ngx_http_sts_cache_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sts_loc_conf_t *slcf = conf;

    char                    *rv;
    ngx_str_t               *value;
    ngx_conf_enum_t         *type;
    ngx_http_sts_cache_t     c;
    ngx_oauth_cache_conf_t  *cc;
    ngx_oauth_redis_t       *srv;

    value = cf->args->elts;

    type = ngx_oauth_enum(ngx_http_sts_cache_types, &value[1], 0);

    if (type == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": invalid cache type \"%V\": "
                           "expected shm, file, memcache or redis",
                           &value[0], &value[1]);
        return NGX_CONF_ERROR;
    }

    if (type->value) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "STSCache type \"%V\" is served by a shared "
                           "memory zone of this nginx: target tokens are "
                           "not written to files or sent to a cache server",
                           &value[1]);
    }

    ngx_str_set(&c.name, "sts_default");
    c.size = 0;
    c.entries = 1000;
    c.value_size = 8192;
    ngx_str_null(&c.redis);

    if (cf->args->nelts == 3) {
        rv = ngx_oauth_form_each(cf, &value[2], ngx_http_sts_cache_option,
                                 &c);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    if (c.size == 0) {
        c.size = ngx_min(ngx_max(c.entries * (c.value_size + 256),
                                 NGX_HTTP_STS_DEFAULT_ZONE),
                         256 * 1024 * 1024);
    }

    cc = ngx_oauth_cache_add(cf, &ngx_http_oauth_sts_module, "sts", &c.name,
                             c.size, 86400);
    if (cc == NULL) {
        return NGX_CONF_ERROR;
    }

    /* "...&redis=name": the zone's second level (oauth_redis) */

    if (c.redis.len
        && (ngx_oauth_redis_ref(cf, &c.redis, &srv) != NGX_CONF_OK
            || ngx_oauth_cache_set_redis(cf, cc, srv) != NGX_CONF_OK))
    {
        return NGX_CONF_ERROR;
    }

    /* in a location: the cache of this location's exchanges */

    if (cf->cmd_type & (NGX_HTTP_LOC_CONF|NGX_HTTP_LIF_CONF)) {
        if (slcf->cache != NGX_CONF_UNSET_PTR) {
            return "is duplicate";
        }

        slcf->cache = cc;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_sts_cache_option(ngx_conf_t *cf, void *data, ngx_str_t *name,
    ngx_str_t *value)
{
    ngx_http_sts_cache_t  *c = data;

    if (ngx_strcmp(name->data, "name") == 0) {
        c->name = *value;

    } else if (ngx_strcmp(name->data, "size") == 0) {
        c->size = ngx_parse_size(value);

    } else if (ngx_strcmp(name->data, "max_entries") == 0) {
        c->entries = ngx_atoi(value->data, value->len);

    } else if (ngx_strcmp(name->data, "max_val_size") == 0) {
        c->value_size = ngx_atoi(value->data, value->len);

    } else if (ngx_strcmp(name->data, "redis") == 0) {
        c->redis = *value;
        c->entries = value->len ? c->entries : 0;   /* empty: invalid */
    }

    if (c->name.len == 0 || c->entries <= 0 || c->value_size <= 0
        || c->size == NGX_ERROR
        || (c->size && c->size < (ssize_t) (8 * ngx_pagesize)))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": invalid value of \"%V\"",
                           ngx_oauth_directive_name(cf), name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* STSVariables [<source expression>] $<target> */

static char *
ngx_http_sts_variables(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sts_loc_conf_t *slcf = conf;

    ngx_str_t            *value, name;
    ngx_http_variable_t  *v;

    if (slcf->source_set) {
        return "is duplicate";
    }

    value = cf->args->elts;
    name = value[cf->args->nelts - 1];

    if (name.len < 2 || name.data[0] != '$') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": invalid target variable name \"%V\"",
                           &value[0], &name);
        return NGX_CONF_ERROR;
    }

    name.len--;
    name.data++;

    v = ngx_http_add_variable(cf, &name, NGX_HTTP_VAR_CHANGEABLE
                                         |NGX_HTTP_VAR_NOCACHEABLE);
    if (v == NULL) {
        return NGX_CONF_ERROR;
    }

    v->get_handler = ngx_http_sts_variable;
    v->data = offsetof(ngx_http_sts_ctx_t, target);

    slcf->source_set = 1;

    if (cf->args->nelts == 2) {
        return NGX_CONF_OK;
    }

    slcf->source = ngx_oauth_complex_value(cf, &value[1]);

    return slcf->source ? NGX_CONF_OK : NGX_CONF_ERROR;
}


/* STSExchange <type> <url|jwk> [<options> [<claims projection>]] */

static char *
ngx_http_sts_exchange(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sts_loc_conf_t *slcf = conf;

    char                *rv;
    ngx_str_t           *value, name;
    ngx_uint_t           i;
    ngx_http_sts_def_t  *def;

    static ngx_str_t  claims = ngx_string("claims");

    if (slcf->exchange != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    if (slcf->seed[NGX_HTTP_STS_TYPE].data) {
        return "cannot be combined with \"STSType\" in one location";
    }

    value = cf->args->elts;

    i = ngx_http_sts_type(cf, &value[1], NOX_STS_JWT);
    if (i == (ngx_uint_t) NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    def = ngx_pcalloc(cf->pool, sizeof(ngx_http_sts_def_t));
    if (def == NULL) {
        return NGX_CONF_ERROR;
    }

    def->type = i;
    def->directive = "STSExchange";
    def->file = cf->conf_file->file.name;
    def->line = cf->conf_file->line;
    def->depth = slcf->depth;
    def->route.verify = 1;
    def->route.timeout = NGX_HTTP_STS_DEFAULT_TIMEOUT;

    slcf->exchange = def;

    if (def->type == 0) {
        /* "STSExchange disabled", or the anchor's form with ignored rest */
        return NGX_CONF_OK;
    }

    if (cf->args->nelts < 3) {
        return "needs an endpoint (a URL, the URI of a location, or for "
               "\"jwt\" a JWK)";
    }

    ngx_oauth_use(cf);

    def->endpoint = value[2];

    if (def->type == NOX_STS_JWT && value[2].len > 5
        && ngx_strncmp(value[2].data, "file:", 5) == 0)
    {
        name.data = value[2].data + 5;
        name.len = value[2].len - 5;

        if (ngx_oauth_read_file(cf, &name, NGX_HTTP_STS_SECRET_MAX,
                                &def->endpoint)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    if (cf->args->nelts >= 4) {
        rv = ngx_oauth_form_each(cf, &value[3], ngx_http_sts_option, def);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    if (cf->args->nelts == 5) {
        if (def->type != NOX_STS_JWT) {
            return "takes a claims projection only with type \"jwt\"";
        }

        rv = ngx_http_sts_opt_add(cf, &def->opts, &claims, &value[4], 0);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    if (def->type == NOX_STS_JWT) {
        return NGX_CONF_OK;
    }

    def->route.url = def->endpoint;

    return ngx_oauth_route_conf(cf, &def->route, "/.oauth-sts/");
}


/* STSStripSource / STSPassTarget */

static char *
ngx_http_sts_place_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_str_t              *value;
    ngx_oauth_place_t  **field;

    field = (ngx_oauth_place_t **) (p + cmd->offset);

    if (*field != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    *field = ngx_pcalloc(cf->pool, sizeof(ngx_oauth_place_t));
    if (*field == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    return ngx_oauth_place_parse(cf, &value[1], *field,
                                    cmd->offset == ngx_http_sts_off(deliver));
}


/*
 * One option of STSExchange or of an *EndpointAuth directive.  Options the
 * shim acts on stay here; the rest go to the managed core, which rejects
 * names it does not know when the configuration is checked.
 */

static char *
ngx_http_sts_option(ngx_conf_t *cf, void *data, ngx_str_t *name,
    ngx_str_t *value)
{
    ngx_http_sts_def_t  *def = data;

    time_t            sec;
    ngx_str_t         content;
    ngx_uint_t        i;
    ngx_conf_enum_t  *e;

    static ngx_str_t    expiry = ngx_string("expiry");
    static const char  *vars[] = {
        "audience", "scope", "resource", "username", "actor_token",
        "actor_token_type", "requested_token_type", "applies_to", "sub",
        NULL
    };

    switch (ngx_oauth_route_option(cf, &def->route, name, value)) {
    case NGX_OK:
        return NGX_CONF_OK;
    case NGX_ERROR:
        return NGX_CONF_ERROR;
    }

    if (ngx_strcmp(name->data, "cache.name") == 0) {
        def->cache_name = *value;
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(name->data, "cache.expiry") == 0) {
        sec = ngx_parse_time(value, 1);
        if (sec == (time_t) NGX_ERROR) {
            goto invalid;
        }

        content.data = ngx_pnalloc(cf->pool, NGX_TIME_T_LEN);
        if (content.data == NULL) {
            return NGX_CONF_ERROR;
        }

        content.len = ngx_sprintf(content.data, "%T", sec) - content.data;

        return ngx_http_sts_opt_add(cf, &def->opts, &expiry, &content, 0);
    }

    if (ngx_strcmp(name->data, "on_error") == 0) {
        e = ngx_oauth_enum(ngx_http_sts_on_error, value, 0);
        if (e == NULL) {
            goto invalid;
        }

        def->pass_on_error = e->value;
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(name->data, "strip_source") == 0
        || ngx_strcmp(name->data, "pass_target") == 0)
    {
        return ngx_oauth_place_parse(cf, value,
                                     name->data[0] == 's' ? &def->strip
                                                          : &def->deliver,
                                     name->data[0] == 'p');
    }

    if (ngx_strcmp(name->data, "params") == 0) {
        return ngx_oauth_form_each(cf, value, ngx_http_sts_param,
                                   &def->opts);
    }

    if (ngx_strcmp(name->data, "http_retries") == 0
        || ngx_strcmp(name->data, "http_retry_interval") == 0
        || ngx_strcmp(name->data, "jq.cache.name") == 0)
    {
        if (!def->quiet) {
            ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                               "\"%V\": option \"%V\" has no effect: STS "
                               "calls are not retried (an exchange is never "
                               "repeated behind the client's back)",
                               ngx_oauth_directive_name(cf), name);
        }

        return NGX_CONF_OK;
    }

    if (ngx_strcmp(name->data, "outgoing_proxy") == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": option \"outgoing_proxy\" is not "
                           "supported: point the endpoint at an internal "
                           "location that proxy_passes where it must",
                           ngx_oauth_directive_name(cf));
        return NGX_CONF_ERROR;
    }

    /* name_file=path: the secret comes from a file read at startup */

    if (name->len > 5
        && ngx_strcmp(name->data + name->len - 5, "_file") == 0)
    {
        if (ngx_oauth_read_secret(cf, value, NGX_HTTP_STS_SECRET_MAX,
                                  &content)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        name->len -= 5;
        name->data[name->len] = '\0';

        return ngx_http_sts_opt_add(cf, &def->opts, name, &content, 0);
    }

    for (i = 0; vars[i]; i++) {
        if (ngx_strcmp(name->data, vars[i]) == 0) {
            break;
        }
    }

    /* username=* is the authenticated user, as the anchor documents */

    if (ngx_strcmp(name->data, "username") == 0
        && value->len == 1 && value->data[0] == '*')
    {
        ngx_str_set(value, "$remote_user");
    }

    return ngx_http_sts_opt_add(cf, &def->opts, name, value,
                                vars[i] != NULL);

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%V\": invalid value \"%V\" of option \"%V\"",
                       ngx_oauth_directive_name(cf), value, name);
    return NGX_CONF_ERROR;
}


/* one request parameter: the option "param.<name>" (variables allowed) */

static char *
ngx_http_sts_param(ngx_conf_t *cf, void *data, ngx_str_t *name,
    ngx_str_t *value)
{
    ngx_array_t  **opts = data;

    ngx_str_t  option;

    option.len = sizeof("param.") - 1 + name->len;
    option.data = ngx_pnalloc(cf->pool, option.len);
    if (option.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(ngx_cpymem(option.data, "param.", sizeof("param.") - 1),
               name->data, name->len);

    return ngx_http_sts_opt_add(cf, opts, &option, value, 1);
}


static char *
ngx_http_sts_opt_add(ngx_conf_t *cf, ngx_array_t **opts, ngx_str_t *name,
    ngx_str_t *value, ngx_uint_t variables)
{
    ngx_http_sts_opt_t  *opt;

    if (*opts == NULL) {
        *opts = ngx_array_create(cf->pool, 8, sizeof(ngx_http_sts_opt_t));
        if (*opts == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    opt = ngx_array_push(*opts);
    if (opt == NULL) {
        return NGX_CONF_ERROR;
    }

    opt->name = *name;
    opt->value = *value;
    opt->cv = NULL;

    if (!variables || ngx_http_script_variables_count(value) == 0) {
        return NGX_CONF_OK;
    }

    opt->cv = ngx_oauth_complex_value(cf, &opt->value);

    return opt->cv ? NGX_CONF_OK : NGX_CONF_ERROR;
}


/* the NOX_STS_* of a type name, up to last */

static ngx_uint_t
ngx_http_sts_type(ngx_conf_t *cf, ngx_str_t *name, ngx_uint_t last)
{
    ngx_conf_enum_t  *e;

    e = ngx_oauth_enum(ngx_http_sts_types, name, 1);

    if (e && e->value <= last) {
        return e->value;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%V\": invalid type \"%V\": expected wstrust, ropc, "
                       "otx%s or disabled", ngx_oauth_directive_name(cf), name,
                       last == NOX_STS_OTX ? "" : ", cc, jwt");

    return (ngx_uint_t) NGX_ERROR;
}


/* ---- endpoints --------------------------------------------------------- */

/*
 * The seed syntax spreads an endpoint's transport over several directives
 * (STSSSLValidateServer, STSHTTPTimeOut, STSSSLCAFile, the client
 * certificate in *EndpointAuth); each of them regenerates this level's
 * endpoint locations with what is known so far here and in the enclosing
 * locations.  At the merge, check (endpoint check - 1) finds whether
 * anything changed since.
 */

static char *
ngx_http_sts_seed_routes(ngx_conf_t *cf, ngx_http_sts_loc_conf_t *slcf,
    ngx_uint_t check)
{
    char                     *rv;
    ngx_str_t                *s[NGX_HTTP_STS_SLOTS];
    ngx_uint_t                i, k;
    ngx_oauth_route_t        *rt, *was;
    ngx_http_sts_def_t        tmp;
    ngx_http_sts_loc_conf_t  *up;

    for (i = 0; i < NGX_HTTP_STS_SLOTS; i++) {
        for (s[i] = NULL, up = slcf; up && s[i] == NULL; up = up->parent) {
            s[i] = up->seed[i].data ? &up->seed[i] : NULL;
        }
    }

    for (k = 0; k < 3; k++) {
        if (s[NGX_HTTP_STS_URL(k)] == NULL || (check && check != k + 1)) {
            continue;
        }

        ngx_memzero(&tmp, sizeof(ngx_http_sts_def_t));
        tmp.quiet = 1;
        rt = &tmp.route;

        rt->url = *s[NGX_HTTP_STS_URL(k)];
        rt->verify = (s[NGX_HTTP_STS_VERIFY] == NULL
                      || ngx_strcasecmp(s[NGX_HTTP_STS_VERIFY]->data,
                                        (u_char *) "off") != 0);
        rt->timeout = s[NGX_HTTP_STS_TIMEOUT]
                      ? ngx_oauth_seconds_msec(s[NGX_HTTP_STS_TIMEOUT])
                      : NGX_HTTP_STS_DEFAULT_TIMEOUT;
        rt->ca = s[NGX_HTTP_STS_CA] ? *s[NGX_HTTP_STS_CA] : rt->ca;

        /* the client certificate (cert=, key=) */

        if (s[NGX_HTTP_STS_AUTH_OPTS(k)]) {
            rv = ngx_oauth_form_each(cf, s[NGX_HTTP_STS_AUTH_OPTS(k)],
                                     ngx_http_sts_option, &tmp);
            if (rv != NGX_CONF_OK) {
                return rv;
            }
        }

        was = slcf->route[k];

        if (check) {
            if (was && rt->url.data[0] != '/'
                && (was->verify != rt->verify || was->timeout != rt->timeout
                    || ngx_memn2cmp(was->ca.data, rt->ca.data, was->ca.len,
                                    rt->ca.len)
                    || ngx_memn2cmp(was->cert.data, rt->cert.data,
                                    was->cert.len, rt->cert.len)))
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        slcf->route[k] = ngx_palloc(cf->pool, sizeof(ngx_oauth_route_t));
        if (slcf->route[k] == NULL) {
            return NGX_CONF_ERROR;
        }

        *slcf->route[k] = *rt;

        rv = ngx_oauth_route_conf(cf, slcf->route[k], "/.oauth-sts/");
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    return NGX_CONF_OK;
}


/* the seed syntax's slots as one definition (at merge) */

static char *
ngx_http_sts_seed_def(ngx_conf_t *cf, ngx_http_sts_loc_conf_t *slcf,
    ngx_http_sts_def_t **pdef)
{
    char                     *rv;
    ngx_str_t                 name, value;
    ngx_uint_t                i, k;
    ngx_http_sts_def_t       *def;
    ngx_http_sts_opt_t       *opt;
    ngx_http_sts_seed_opt_t  *so;

    static ngx_str_t    auth = ngx_string("auth");
    static const char  *names[] = {
        "STSWSTrustEndpoint", "STSROPCEndpoint", "STSOTXEndpoint"
    };

    def = ngx_pcalloc(cf->pool, sizeof(ngx_http_sts_def_t));
    if (def == NULL) {
        return NGX_CONF_ERROR;
    }

    *pdef = def;

    def->type = ngx_oauth_enum(ngx_http_sts_types,
                               &slcf->seed[NGX_HTTP_STS_TYPE], 0)->value;

    def->directive = "STSType";
    def->file = slcf->seed_file;
    def->line = slcf->seed_line;
    def->depth = slcf->seed_depth;

    if (def->type == 0) {
        return NGX_CONF_OK;
    }

    k = def->type - 1;

    if (slcf->seed[NGX_HTTP_STS_URL(k)].data == NULL
        || slcf->route[k] == NULL)
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"STSType %V\" in %V:%ui needs \"%s\"",
                      &ngx_http_sts_types[def->type].name, &def->file,
                      def->line, names[k]);
        return NGX_CONF_ERROR;
    }

    def->endpoint = slcf->seed[NGX_HTTP_STS_URL(k)];
    def->route = *slcf->route[k];

    /* what the endpoint location was generated with must still hold */

    if (ngx_http_sts_seed_routes(cf, slcf, k + 1) != NGX_CONF_OK) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"STSSSLValidateServer\", \"STSHTTPTimeOut\" or "
                      "\"STSSSLCAFile\" of an enclosing location comes after "
                      "the nested location that uses \"%s\" (%V:%ui): move it "
                      "before", names[k], &def->file, def->line);
        return NGX_CONF_ERROR;
    }

    /* endpoint authentication: "none" when absent, as documented */

    def->quiet = 1;   /* warned about at the directive */

    if (slcf->seed[NGX_HTTP_STS_AUTH(k)].len) {
        rv = ngx_http_sts_opt_add(cf, &def->opts, &auth,
                                  &slcf->seed[NGX_HTTP_STS_AUTH(k)], 0);
        if (rv == NGX_CONF_OK) {
            rv = ngx_oauth_form_each(cf,
                                     &slcf->seed[NGX_HTTP_STS_AUTH_OPTS(k)],
                                     ngx_http_sts_option, def);
        }

        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    so = ngx_http_sts_seed_opts;

    for (i = 0; i < sizeof(ngx_http_sts_seed_opts) / sizeof(so[0]); i++) {
        if ((so[i].type && so[i].type != def->type)
            || slcf->seed[so[i].slot].len == 0)
        {
            continue;
        }

        name = so[i].option;
        value = slcf->seed[so[i].slot];

        rv = ngx_http_sts_option(cf, def, &name, &value);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    for (i = 0; slcf->params && i < slcf->params->nelts; i++) {
        opt = ngx_array_push(def->opts ? def->opts : (def->opts =
                  ngx_array_create(cf->pool, 8, sizeof(ngx_http_sts_opt_t))));
        if (opt == NULL) {
            return NGX_CONF_ERROR;
        }

        *opt = ((ngx_http_sts_opt_t *) slcf->params->elts)[i];
    }

    def->cache = slcf->cache;
    def->strip = slcf->strip ? *slcf->strip : def->strip;
    def->deliver = slcf->deliver ? *slcf->deliver : def->deliver;

    return ngx_http_sts_finish(cf, def);
}


/* both syntaxes: the cache, and the settings for the core */

static char *
ngx_http_sts_finish(ngx_conf_t *cf, ngx_http_sts_def_t *def)
{
    ngx_str_t            name;
    ngx_uint_t           i;
    ngx_http_sts_opt_t  *opt;

    /* a zone named by STSCache (anywhere), or the default one */

    ngx_str_set(&name, "sts_default");

    if (def->cache == NULL) {
        def->cache = ngx_oauth_cache_add(cf, &ngx_http_oauth_sts_module,
                                         "sts", def->cache_name.len
                                                ? &def->cache_name : &name,
                                         0, 86400);
        if (def->cache == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (def->cache->zone->shm.size == 0 && def->cache_name.len) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"%s\" in %V:%ui: no \"STSCache\" has name=%V",
                      def->directive, &def->file, def->line,
                      &def->cache_name);
        return NGX_CONF_ERROR;
    }

    if (def->cache->zone->shm.size == 0
        && ngx_oauth_cache_add(cf, &ngx_http_oauth_sts_module, "sts", &name,
                               NGX_HTTP_STS_DEFAULT_ZONE, 86400)
           == NULL)
    {
        return NGX_CONF_ERROR;
    }

    /* settings: type, endpoint, then the options, in pairs */

    def->n = 2 + (def->opts ? def->opts->nelts : 0);
    opt = def->opts ? def->opts->elts : NULL;

    def->settings = ngx_pcalloc(cf->pool, 2 * def->n * sizeof(nox_buf_t));
    if (def->settings == NULL) {
        return NGX_CONF_ERROR;
    }

    def->settings[0].data = (u_char *) "type";
    def->settings[0].len = 4;
    def->settings[1].data = ngx_http_sts_types[def->type].name.data;
    def->settings[1].len = (int32_t) ngx_http_sts_types[def->type].name.len;
    def->settings[2].data = (u_char *) "endpoint";
    def->settings[2].len = 8;
    def->settings[3].data = def->endpoint.data;
    def->settings[3].len = (int32_t) def->endpoint.len;

    for (i = 2; i < def->n; i++) {
        def->settings[2 * i].data = opt[i - 2].name.data;
        def->settings[2 * i].len = (int32_t) opt[i - 2].name.len;
        def->settings[2 * i + 1].data = opt[i - 2].value.data;
        def->settings[2 * i + 1].len = (int32_t) opt[i - 2].value.len;
    }

    if (ngx_oauth_check_add_at(cf, ngx_http_sts_check, def, &def->file,
                               def->line)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* in the validator child: does the managed core accept the settings? */

static u_char *
ngx_http_sts_check(void *data, u_char *buf, u_char *last)
{
    ngx_http_sts_def_t  *def = data;

    u_char  *p;

    p = ngx_slprintf(buf, last, "\"%s\": ", def->directive);

    return ngx_oauth_settings_check(def->settings, def->n, "option", p, last);
}


