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
 * The C side parses directives into one definition per location
 * (ngx_http_sts_def_t); building requests, reading answers, client
 * authentication, the cache key and the TTL are the managed core's.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_oauth_core.h"
#include "ngx_oauth_cache.h"


#define NGX_HTTP_STS_SEED_WSTRUST     0
#define NGX_HTTP_STS_SEED_ROPC        1
#define NGX_HTTP_STS_SEED_OTX         2
#define NGX_HTTP_STS_SEEDS            3

#define NGX_HTTP_STS_DEFAULT_TIMEOUT  20000
#define NGX_HTTP_STS_DEFAULT_ZONE     (4 * 1024 * 1024)
#define NGX_HTTP_STS_WAIT_MSEC        20
#define NGX_HTTP_STS_RETRY_AFTER      "5"
#define NGX_HTTP_STS_SECRET_MAX       (64 * 1024)
#define NGX_HTTP_STS_BUFFER_SIZE      "1m"   /* > NOX_MAX_STS_RESPONSE */

#define NGX_HTTP_STS_IN_HEADER        1
#define NGX_HTTP_STS_IN_COOKIE        2
#define NGX_HTTP_STS_IN_QUERY         3
#define NGX_HTTP_STS_IN_BEARER        4

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


/* where the source token is removed from / the target token is put */

typedef struct {
    ngx_uint_t                   in;        /* NGX_HTTP_STS_IN_*, 0: none */
    ngx_str_t                    name;
} ngx_http_sts_place_t;


/* what the generated proxy location was built with */

typedef struct {
    ngx_str_t                    url;
    ngx_str_t                    uri;       /* the subrequest target */
    ngx_flag_t                   verify;
    ngx_msec_t                   timeout;
    ngx_str_t                    cert;
    ngx_str_t                    key;
    ngx_str_t                    ca;
} ngx_http_sts_route_t;


/* one exchange, whichever syntax described it */

typedef struct {
    ngx_uint_t                   type;      /* NOX_STS_*, 0: disabled */
    ngx_str_t                    endpoint;  /* URL, internal URI, or JWK */
    ngx_http_sts_route_t         route;
    ngx_array_t                 *opts;      /* of ngx_http_sts_opt_t */
    ngx_array_t                 *params;    /* of ngx_http_sts_opt_t */
    ngx_uint_t                   dynamic_params;
    ngx_str_t                    cache_name;
    ngx_oauth_cache_conf_t      *cache;
    ngx_flag_t                   pass_on_error;
    ngx_http_sts_place_t         strip;
    ngx_http_sts_place_t         deliver;
    nox_buf_t                   *settings;  /* names and values, pairs */
    ngx_uint_t                   n_settings;
    ngx_uint_t                   depth;     /* of the location that set it */
    ngx_uint_t                   quiet;     /* options warned about before */
    const char                  *directive;
    ngx_str_t                    file;
    ngx_uint_t                   line;
    int64_t                      handle;    /* per worker, lazily */
    ngx_int_t                    handle_state;
} ngx_http_sts_def_t;


typedef struct {
    ngx_array_t                  caches;    /* of ngx_http_sts_cache_t */
    ngx_oauth_cache_conf_t      *default_cache;
    ngx_uint_t                   routes;    /* generated locations so far */
    ngx_str_t                    passphrase;
} ngx_http_sts_main_conf_t;


typedef struct {
    ngx_str_t                    name;
    ngx_oauth_cache_conf_t      *cache;
} ngx_http_sts_cache_t;


typedef struct ngx_http_sts_loc_conf_s  ngx_http_sts_loc_conf_t;

struct ngx_http_sts_loc_conf_s {
    ngx_http_sts_loc_conf_t     *parent;    /* while parsing */
    ngx_uint_t                   depth;

    ngx_http_sts_def_t          *exchange;  /* STSExchange */

    /* the seed syntax (ngx_sts_module 3.0.x) */
    ngx_uint_t                   seed_type;
    ngx_uint_t                   seed_depth;
    ngx_str_t                    seed_file;
    ngx_uint_t                   seed_line;
    ngx_str_t                    url[NGX_HTTP_STS_SEEDS];
    ngx_str_t                    auth[NGX_HTTP_STS_SEEDS];
    ngx_str_t                    auth_opts[NGX_HTTP_STS_SEEDS];
    ngx_http_sts_route_t        *route[NGX_HTTP_STS_SEEDS];
    ngx_str_t                    applies_to;
    ngx_str_t                    token_type;
    ngx_str_t                    value_type;
    ngx_str_t                    ropc_client_id;
    ngx_str_t                    ropc_username;
    ngx_str_t                    otx_client_id;
    ngx_array_t                 *params;    /* STSRequestParameter */
    ngx_flag_t                   verify;
    ngx_msec_t                   timeout;
    ngx_str_t                    ca;
    time_t                       expires_in;
    ngx_oauth_cache_conf_t      *cache;     /* STSCache in this location */
    ngx_http_sts_place_t        *strip;
    ngx_http_sts_place_t        *deliver;

    ngx_http_complex_value_t    *source;    /* STSVariables */
    ngx_uint_t                   source_set;

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
    u_char                       hash[NOX_SHA256_LEN];
    ngx_uint_t                   leader;
    ngx_uint_t                   leader_cleanup;
    ngx_uint_t                   waited;
    ngx_uint_t                   done;
    ngx_int_t                    sr_rc;
    ngx_uint_t                   sr_status;
    ngx_uint_t                   sr_answered;  /* a status line came */
    ngx_str_t                    sr_body;
    ngx_event_t                  wait;
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
static ngx_int_t ngx_http_sts_post_done(ngx_http_request_t *r, void *data,
    ngx_int_t rc);
static void ngx_http_sts_leader_cleanup(void *data);
static ngx_int_t ngx_http_sts_success(ngx_http_request_t *r,
    ngx_http_sts_def_t *def, ngx_http_sts_ctx_t *ctx, time_t ttl);
static ngx_int_t ngx_http_sts_fail(ngx_http_request_t *r,
    ngx_http_sts_def_t *def, ngx_http_sts_ctx_t *ctx, ngx_uint_t status);
static ngx_int_t ngx_http_sts_values(ngx_http_request_t *r,
    ngx_http_sts_def_t *def, ngx_http_sts_ctx_t *ctx);
static ngx_int_t ngx_http_sts_params(ngx_pool_t *pool,
    ngx_http_request_t *r, ngx_array_t *params, ngx_str_t *out);
static ngx_int_t ngx_http_sts_handle(ngx_http_request_t *r,
    ngx_http_sts_def_t *def);
static ngx_int_t ngx_http_sts_strip(ngx_http_request_t *r,
    ngx_http_sts_place_t *place);
static ngx_int_t ngx_http_sts_deliver(ngx_http_request_t *r,
    ngx_http_sts_place_t *place, ngx_str_t *token);
static ngx_int_t ngx_http_sts_drop_headers(ngx_http_request_t *r,
    ngx_str_t *name);
static ngx_int_t ngx_http_sts_cookie_strip(ngx_http_request_t *r,
    ngx_str_t *name);
static void ngx_http_sts_args_strip(ngx_http_request_t *r,
    ngx_str_t *name);

static ngx_int_t ngx_http_sts_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static void *ngx_http_sts_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_sts_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_sts_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_sts_init(ngx_conf_t *cf);

static char *ngx_http_sts_type(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_sts_endpoint(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_sts_endpoint_auth(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_sts_route_setting(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_sts_request_parameter(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_sts_cache_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_sts_variables(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_sts_exchange(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_sts_place_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_sts_passphrase(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

static char *ngx_http_sts_option(ngx_conf_t *cf, ngx_http_sts_def_t *def,
    ngx_str_t *name, ngx_str_t *value);
static char *ngx_http_sts_form_each(ngx_conf_t *cf, ngx_str_t *form,
    ngx_http_sts_def_t *def, ngx_uint_t from_auth, ngx_array_t **pairs);
static ngx_int_t ngx_http_sts_decode(ngx_pool_t *pool, ngx_str_t *s);
static char *ngx_http_sts_opt_add(ngx_conf_t *cf, ngx_array_t **opts,
    const char *name, ngx_str_t *value, ngx_uint_t variables);
static char *ngx_http_sts_place_parse(ngx_conf_t *cf, ngx_str_t *spec,
    ngx_http_sts_place_t *place, ngx_uint_t target);
static char *ngx_http_sts_seed_routes(ngx_conf_t *cf,
    ngx_http_sts_loc_conf_t *slcf);
static char *ngx_http_sts_route(ngx_conf_t *cf, ngx_http_sts_route_t *rt);
static ngx_str_t *ngx_http_sts_up_str(ngx_http_sts_loc_conf_t *slcf,
    size_t offset);
static char *ngx_http_sts_seed_def(ngx_conf_t *cf,
    ngx_http_sts_loc_conf_t *slcf, ngx_http_sts_def_t **pdef);
static char *ngx_http_sts_finish(ngx_conf_t *cf, ngx_http_sts_def_t *def);
static ngx_oauth_cache_conf_t *ngx_http_sts_cache_zone(ngx_conf_t *cf,
    ngx_str_t *name, ssize_t size);
static u_char *ngx_http_sts_check(void *data, u_char *buf, u_char *last);
static ngx_str_t *ngx_http_sts_directive_name(ngx_conf_t *cf);
static ngx_uint_t ngx_http_sts_has_opt(ngx_http_sts_def_t *def,
    const char *name);


static ngx_conf_enum_t  ngx_http_sts_types[] = {
    { ngx_string("disabled"), 0 },
    { ngx_string("wstrust"), NOX_STS_WSTRUST },
    { ngx_string("ropc"), NOX_STS_ROPC },
    { ngx_string("otx"), NOX_STS_OTX },
    { ngx_null_string, 0 }
};


static ngx_str_t  ngx_http_sts_type_names[] = {
    ngx_string("disabled"),
    ngx_string("wstrust"),
    ngx_string("ropc"),
    ngx_string("otx"),
    ngx_string("cc"),
    ngx_string("jwt"),
};


#define NGX_HTTP_STS_LOC   (NGX_HTTP_LOC_CONF|NGX_HTTP_LIF_CONF)
#define ngx_http_sts_off(f)  offsetof(ngx_http_sts_loc_conf_t, f)


static ngx_command_t  ngx_http_sts_commands[] = {

    { ngx_string("STSType"),
      NGX_HTTP_STS_LOC|NGX_CONF_TAKE1,
      ngx_http_sts_type,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_sts_types },

    { ngx_string("STSSSLValidateServer"),
      NGX_HTTP_STS_LOC|NGX_CONF_FLAG,
      ngx_http_sts_route_setting,
      NGX_HTTP_LOC_CONF_OFFSET,
      ngx_http_sts_off(verify),
      NULL },

    { ngx_string("STSHTTPTimeOut"),
      NGX_HTTP_STS_LOC|NGX_CONF_TAKE1,
      ngx_http_sts_route_setting,
      NGX_HTTP_LOC_CONF_OFFSET,
      ngx_http_sts_off(timeout),
      NULL },

    { ngx_string("STSSSLCAFile"),
      NGX_HTTP_STS_LOC|NGX_CONF_TAKE1,
      ngx_http_sts_route_setting,
      NGX_HTTP_LOC_CONF_OFFSET,
      ngx_http_sts_off(ca),
      NULL },

    { ngx_string("STSWSTrustEndpoint"),
      NGX_HTTP_STS_LOC|NGX_CONF_TAKE1,
      ngx_http_sts_endpoint,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_STS_SEED_WSTRUST,
      NULL },

    { ngx_string("STSWSTrustEndpointAuth"),
      NGX_HTTP_STS_LOC|NGX_CONF_TAKE12,
      ngx_http_sts_endpoint_auth,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_STS_SEED_WSTRUST,
      NULL },

    { ngx_string("STSWSTrustAppliesTo"),
      NGX_HTTP_STS_LOC|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      ngx_http_sts_off(applies_to),
      NULL },

    { ngx_string("STSWSTrustTokenType"),
      NGX_HTTP_STS_LOC|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      ngx_http_sts_off(token_type),
      NULL },

    { ngx_string("STSWSTrustValueType"),
      NGX_HTTP_STS_LOC|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      ngx_http_sts_off(value_type),
      NULL },

    { ngx_string("STSROPCEndpoint"),
      NGX_HTTP_STS_LOC|NGX_CONF_TAKE1,
      ngx_http_sts_endpoint,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_STS_SEED_ROPC,
      NULL },

    { ngx_string("STSROPCEndpointAuth"),
      NGX_HTTP_STS_LOC|NGX_CONF_TAKE12,
      ngx_http_sts_endpoint_auth,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_STS_SEED_ROPC,
      NULL },

    { ngx_string("STSROPCClientID"),
      NGX_HTTP_STS_LOC|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      ngx_http_sts_off(ropc_client_id),
      NULL },

    { ngx_string("STSROPCUsername"),
      NGX_HTTP_STS_LOC|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      ngx_http_sts_off(ropc_username),
      NULL },

    { ngx_string("STSOTXEndpoint"),
      NGX_HTTP_STS_LOC|NGX_CONF_TAKE1,
      ngx_http_sts_endpoint,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_STS_SEED_OTX,
      NULL },

    { ngx_string("STSOTXEndpointAuth"),
      NGX_HTTP_STS_LOC|NGX_CONF_TAKE12,
      ngx_http_sts_endpoint_auth,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_STS_SEED_OTX,
      NULL },

    { ngx_string("STSOTXClientID"),
      NGX_HTTP_STS_LOC|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      ngx_http_sts_off(otx_client_id),
      NULL },

    { ngx_string("STSRequestParameter"),
      NGX_HTTP_STS_LOC|NGX_CONF_TAKE12,
      ngx_http_sts_request_parameter,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("STSCacheExpiresIn"),
      NGX_HTTP_STS_LOC|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      ngx_http_sts_off(expires_in),
      NULL },

    { ngx_string("STSCache"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_STS_LOC|NGX_CONF_TAKE12,
      ngx_http_sts_cache_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("STSVariables"),
      NGX_HTTP_STS_LOC|NGX_CONF_TAKE12,
      ngx_http_sts_variables,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("STSExchange"),
      NGX_HTTP_STS_LOC|NGX_CONF_TAKE1|NGX_CONF_TAKE2|NGX_CONF_TAKE3
                      |NGX_CONF_TAKE4|NGX_CONF_TAKE5,
      ngx_http_sts_exchange,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("STSStripSource"),
      NGX_HTTP_STS_LOC|NGX_CONF_TAKE1,
      ngx_http_sts_place_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      ngx_http_sts_off(strip),
      NULL },

    { ngx_string("STSPassTarget"),
      NGX_HTTP_STS_LOC|NGX_CONF_TAKE1,
      ngx_http_sts_place_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      ngx_http_sts_off(deliver),
      NULL },

    { ngx_string("STSCryptoPassphrase"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_STS_LOC|NGX_CONF_TAKE1,
      ngx_http_sts_passphrase,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_oauth_sts_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_sts_init,                     /* postconfiguration */

    ngx_http_sts_create_main_conf,         /* create main configuration */
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
         *     ctx->leader = 0;
         *     ctx->waited = 0;
         *     ctx->wait = { 0 };
         */

        ctx->def = def;

        ngx_http_set_ctx(r, ctx, ngx_http_oauth_sts_module);

        rc = ngx_http_sts_begin(r, def, slcf, ctx);
        if (rc != NGX_OK) {
            return rc;
        }

        rc = ngx_http_sts_lookup(r, def, ctx);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_sts_call(r, def, ctx);
    }

    switch (ctx->state) {

    case NGX_HTTP_STS_SUBREQUEST:
        if (!ctx->done) {
            return NGX_AGAIN;
        }

        return ngx_http_sts_answer(r, def, ctx);

    case NGX_HTTP_STS_WAITING:
        rc = ngx_http_sts_lookup(r, def, ctx);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_sts_call(r, def, ctx);

    default: /* NGX_HTTP_STS_DONE */
        return ctx->rc;
    }
}


static ngx_int_t
ngx_http_sts_begin(ngx_http_request_t *r, ngx_http_sts_def_t *def,
    ngx_http_sts_loc_conf_t *slcf, ngx_http_sts_ctx_t *ctx)
{
    if (!ngx_oauth_managed_ready) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "sts: the managed library is not loaded in this "
                      "worker");
        return ngx_http_sts_fail(r, def, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    if (slcf->source
        && ngx_http_complex_value(r, slcf->source, &ctx->source) != NGX_OK)
    {
        return ngx_http_sts_fail(r, def, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    if (ctx->source.data == NULL) {
        ngx_str_set(&ctx->source, "");
    }

    if (ctx->source.len == 0 && def->type != NOX_STS_CC) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "sts: no source token in the request");
        return ngx_http_sts_fail(r, def, ctx, NGX_HTTP_UNAUTHORIZED);
    }

    if (ngx_http_sts_handle(r, def) != NGX_OK
        || ngx_http_sts_values(r, def, ctx) != NGX_OK)
    {
        return ngx_http_sts_fail(r, def, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    if (def->cache == NULL) {
        return NGX_OK;
    }

    if (ngx_oauth_managed.sts_key(def->handle, ctx->source.data,
                                  (int32_t) ctx->source.len, ctx->values,
                                  (int32_t) (def->n_settings / 2), ctx->hash,
                                  NOX_SHA256_LEN)
        != NOX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "sts: nox_sts_key failed");
        return ngx_http_sts_fail(r, def, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    return NGX_OK;
}


/* NGX_OK: this request asks the STS; else the handler's answer */

static ngx_int_t
ngx_http_sts_lookup(ngx_http_request_t *r, ngx_http_sts_def_t *def,
    ngx_http_sts_ctx_t *ctx)
{
    u_char              *p;
    int32_t              aux;
    uint32_t             issued, ttype;
    ngx_int_t            rc;
    ngx_str_t            value;
    ngx_pool_cleanup_t  *cln;

    if (def->cache == NULL) {
        return NGX_OK;
    }

    rc = ngx_oauth_cache_acquire(r, def->cache, 's', ctx->hash, &value, &aux,
                                 (time_t) (def->route.timeout / 1000) + 5,
                                 ctx->waited);

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
        ctx->leader = 1;

        if (!ctx->leader_cleanup) {
            cln = ngx_pool_cleanup_add(r->pool, 0);
            if (cln == NULL) {
                return ngx_http_sts_fail(r, def, ctx,
                                         NGX_HTTP_INTERNAL_SERVER_ERROR);
            }

            cln->handler = ngx_http_sts_leader_cleanup;
            cln->data = r;
            ctx->leader_cleanup = 1;
        }

        return NGX_OK;

    case NGX_AGAIN:
        ctx->state = NGX_HTTP_STS_WAITING;
        ctx->waited = 1;

        if (ngx_oauth_cache_wait(r, &ctx->wait, NGX_HTTP_STS_WAIT_MSEC)
            != NGX_OK)
        {
            return ngx_http_sts_fail(r, def, ctx,
                                     NGX_HTTP_INTERNAL_SERVER_ERROR);
        }

        return NGX_AGAIN;

    case NGX_ABORT:
        if (aux) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "sts: the exchange this request waited for "
                          "failed with %D", aux);
        }

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
    ngx_str_t                    value;
    ngx_table_elt_t             *h;
    ngx_http_request_t          *sr;
    ngx_http_post_subrequest_t  *ps;

    cap = 3 * ctx->source.len + 16384;

    for ( ;; ) {
        out = ngx_pnalloc(r->pool, cap);
        if (out == NULL) {
            return ngx_http_sts_fail(r, def, ctx,
                                     NGX_HTTP_INTERNAL_SERVER_ERROR);
        }

        lens[0] = lens[1] = lens[2] = 0;
        ttl = 0;

        rc = ngx_oauth_managed.sts_request(def->handle, ctx->source.data,
                                           (int32_t) ctx->source.len,
                                           ctx->values,
                                           (int32_t) (def->n_settings / 2),
                                           (int64_t) ngx_time(), out,
                                           (int32_t) cap, lens, &ttl);

        if (rc != NOX_E_BUFFER_TOO_SMALL || (size_t) lens[0] <= cap) {
            break;
        }

        cap = lens[0];
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

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return ngx_http_sts_fail(r, def, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    ps->handler = ngx_http_sts_post_done;
    ps->data = ctx;

    if (ngx_oauth_subrequest(r, &def->route.uri, ps, &sr) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "sts: cannot start the subrequest to \"%V\"",
                      &def->route.uri);
        return ngx_http_sts_fail(r, def, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    ctx->state = NGX_HTTP_STS_SUBREQUEST;
    ctx->done = 0;

    sr->method = NGX_HTTP_POST;
    ngx_str_set(&sr->method_name, "POST");

    h = ngx_oauth_header_add(r->pool, &sr->headers_in.headers,
                             "Content-Type",
                             def->type == NOX_STS_WSTRUST
                             ? &ngx_http_sts_soap_type
                             : &ngx_http_sts_form_type);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    sr->headers_in.content_type = h;

    if (lens[1] > 0) {
        value.data = out + lens[0];
        value.len = lens[1];

        h = ngx_oauth_header_add(r->pool, &sr->headers_in.headers,
                                 "Authorization", &value);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        sr->headers_in.authorization = h;
    }

    if (lens[2] > 0) {
        value.data = out + lens[0] + lens[1];
        value.len = lens[2];

        if (ngx_oauth_header_add(r->pool, &sr->headers_in.headers,
                                 "soapAction", &value)
            == NULL)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    value.data = out;
    value.len = lens[0];

    if (ngx_oauth_subrequest_set_body(r, sr, &value) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "sts: POST \"%V\", %s body of %D bytes", &def->route.uri,
                   def->type == NOX_STS_WSTRUST ? "SOAP" : "form", lens[0]);

    return NGX_AGAIN;
}


/*
 * A leader that ends without storing or failing (its client went away and
 * the request was terminated while the STS was asked): the requests
 * waiting for it must not wait for its pending marker to expire
 * (http_timeout + 5 s); without the marker the next one to look leads.
 */

static void
ngx_http_sts_leader_cleanup(void *data)
{
    ngx_http_request_t  *r = data;

    ngx_http_sts_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_oauth_sts_module);

    if (ctx == NULL || !ctx->leader) {
        return;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "sts: the request ended before its exchange did: "
                  "another request may lead");

    ngx_oauth_cache_release(ctx->def->cache, ctx->hash);
    ctx->leader = 0;
}


/* only records facts: the decision is made back in the handler */

static ngx_int_t
ngx_http_sts_post_done(ngx_http_request_t *r, void *data, ngx_int_t rc)
{
    ngx_http_sts_ctx_t  *ctx = data;

    ctx->done = 1;
    ctx->sr_status = r->headers_out.status;

    /*
     * A status line from the STS (through proxy_pass), or an answer of the
     * operator's own location: the STS answered.  A proxy that received
     * nothing (refused, reset, timed out) did not.  Bytes without a valid
     * status line (the proxy reads them as an HTTP/0.9 answer, status 0)
     * are an answer, an unusable one.
     */

    ctx->sr_answered = (r->upstream == NULL
                        || r->upstream->headers_in.status_n != 0
                        || (r->upstream->state
                            && r->upstream->state->bytes_received > 0));

    ctx->sr_rc = ngx_oauth_subrequest_done(r, rc, &ctx->sr_body);

    return NGX_OK;
}


static ngx_int_t
ngx_http_sts_answer(ngx_http_request_t *r, ngx_http_sts_def_t *def,
    ngx_http_sts_ctx_t *ctx)
{
    u_char     *out;
    size_t      cap;
    int32_t     rc, lens[3];
    int64_t     ttl;
    ngx_str_t   code;
    u_char      safe[ngx_oauth_log_safe_size(NOX_STS_ERROR_MAX)];

    if (!ctx->sr_answered) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "sts: \"%V\" did not answer (status %ui): "
                      "unreachable or timed out", &def->route.url,
                      ctx->sr_status);
        return ngx_http_sts_fail(r, def, ctx,
                                 NGX_HTTP_SERVICE_UNAVAILABLE);
    }

    if (ctx->sr_status == 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "sts: \"%V\" answered without a valid HTTP status "
                      "line", &def->route.url);
        return ngx_http_sts_fail(r, def, ctx, NGX_HTTP_BAD_GATEWAY);
    }

    if (ctx->sr_rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "sts: the answer of \"%V\" (status %ui) did not "
                      "arrive whole (closed early, or larger than "
                      "subrequest_output_buffer_size)", &def->route.url,
                      ctx->sr_status);
        return ngx_http_sts_fail(r, def, ctx, NGX_HTTP_BAD_GATEWAY);
    }

    cap = ctx->sr_body.len + 256;

    out = ngx_pnalloc(r->pool, cap);
    if (out == NULL) {
        return ngx_http_sts_fail(r, def, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    lens[0] = lens[1] = lens[2] = -1;
    ttl = 0;

    rc = ngx_oauth_managed.sts_response(def->handle,
                                        (int32_t) ctx->sr_status,
                                        ctx->sr_body.data,
                                        (int32_t) ctx->sr_body.len,
                                        (int64_t) ngx_time(), out,
                                        (int32_t) cap, lens, &ttl);

    if (rc == NOX_OK) {
        ctx->target.data = out;
        ctx->target.len = lens[0];

        if (lens[1] > 0) {
            ctx->issued_type.data = out + lens[0];
            ctx->issued_type.len = lens[1];
        }

        if (lens[2] > 0) {
            ctx->token_type.data = out + lens[0] + (lens[1] > 0 ? lens[1] : 0);
            ctx->token_type.len = lens[2];
        }

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
                      "token %uz bytes)", &def->route.url, ctx->sr_status,
                      &code, ctx->source.len);

        return ngx_http_sts_fail(r, def, ctx,
                                 rc == NOX_STS_FORBIDDEN
                                 ? NGX_HTTP_FORBIDDEN
                                 : NGX_HTTP_UNAUTHORIZED);
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "sts: \"%V\" answered %ui with %uz bytes: %s",
                  &def->route.url, ctx->sr_status, ctx->sr_body.len,
                  ngx_oauth_status_text(rc));

    return ngx_http_sts_fail(r, def, ctx, NGX_HTTP_BAD_GATEWAY);
}


static ngx_int_t
ngx_http_sts_success(ngx_http_request_t *r, ngx_http_sts_def_t *def,
    ngx_http_sts_ctx_t *ctx, time_t ttl)
{
    u_char     *p;
    size_t      issued, ttype;
    ngx_str_t   value;

    if (ctx->leader) {
        issued = ngx_min(ctx->issued_type.len, 0xffff);
        ttype = ngx_min(ctx->token_type.len, 0xffff);

        if (ttl > 0) {
            value.len = 8 + ctx->target.len + issued + ttype;
            value.data = ngx_pnalloc(r->pool, value.len);
            if (value.data == NULL) {
                return ngx_http_sts_fail(r, def, ctx,
                                         NGX_HTTP_INTERNAL_SERVER_ERROR);
            }

            p = value.data;
            *p++ = (u_char) (issued >> 8);
            *p++ = (u_char) issued;
            *p++ = (u_char) (ttype >> 8);
            *p++ = (u_char) ttype;
            *p++ = 0; *p++ = 0; *p++ = 0; *p++ = 0;
            p = ngx_cpymem(p, ctx->target.data, ctx->target.len);
            p = ngx_cpymem(p, ctx->issued_type.data, issued);
            ngx_memcpy(p, ctx->token_type.data, ttype);

            ngx_oauth_cache_put(r, def->cache, 's', ctx->hash, &value,
                                (int32_t) ctx->target.len, ttl);

        } else {
            /* not cacheable: let the followers ask for themselves */
            ngx_oauth_cache_fail(r, def->cache, ctx->hash, 0);
        }

        ctx->leader = 0;
    }

    if (def->strip.in && ngx_http_sts_strip(r, &def->strip) != NGX_OK) {
        return ngx_http_sts_fail(r, def, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    if (def->deliver.in
        && ngx_http_sts_deliver(r, &def->deliver, &ctx->target) != NGX_OK)
    {
        return ngx_http_sts_fail(r, def, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    ctx->state = NGX_HTTP_STS_DONE;
    ctx->rc = NGX_DECLINED;

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_sts_fail(ngx_http_request_t *r, ngx_http_sts_def_t *def,
    ngx_http_sts_ctx_t *ctx, ngx_uint_t status)
{
    ngx_str_t         value;
    ngx_table_elt_t  *h;

    if (ctx->leader) {
        ngx_oauth_cache_fail(r, def->cache, ctx->hash, status);
        ctx->leader = 0;
    }

    ngx_str_null(&ctx->target);
    ngx_str_null(&ctx->issued_type);
    ngx_str_null(&ctx->token_type);

    ctx->state = NGX_HTTP_STS_DONE;

    if (status == 0) {
        /* a follower whose leader's answer was not cacheable: ask */
        ctx->state = NGX_HTTP_STS_NEW;
        ctx->waited = 0;
        return ngx_http_sts_call(r, def, ctx);
    }

    if (def->pass_on_error && status != NGX_HTTP_INTERNAL_SERVER_ERROR) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "sts: on_error=pass: continuing without a target "
                      "token (would have been %ui)", status);

        /* the source token must not reach the upstream either way */

        if (def->strip.in && ngx_http_sts_strip(r, &def->strip) != NGX_OK) {
            ctx->rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            return ctx->rc;
        }

        ctx->rc = NGX_DECLINED;
        return NGX_DECLINED;
    }

    ctx->rc = status;

    if (status == NGX_HTTP_UNAUTHORIZED) {
        if (ctx->source.len) {
            ngx_str_set(&value, "Bearer error=\"invalid_token\"");
        } else {
            ngx_str_set(&value, "Bearer");
        }

        h = ngx_oauth_header_add(r->pool, &r->headers_out.headers,
                                 "WWW-Authenticate", &value);
        if (h == NULL) {
            ctx->rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            return ctx->rc;
        }

        r->headers_out.www_authenticate = h;

    } else if (status == NGX_HTTP_SERVICE_UNAVAILABLE) {
        ngx_str_set(&value, NGX_HTTP_STS_RETRY_AFTER);

        if (ngx_oauth_header_add(r->pool, &r->headers_out.headers,
                                 "Retry-After", &value)
            == NULL)
        {
            ctx->rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ctx->rc;
}


/* this request's values of the settings that have variables */

static ngx_int_t
ngx_http_sts_values(ngx_http_request_t *r, ngx_http_sts_def_t *def,
    ngx_http_sts_ctx_t *ctx)
{
    ngx_str_t            value;
    ngx_uint_t           i, n, first;
    ngx_http_sts_opt_t  *opt;

    n = def->n_settings / 2;

    ctx->values = ngx_pcalloc(r->pool, n * sizeof(nox_buf_t));
    if (ctx->values == NULL) {
        return NGX_ERROR;
    }

    /* settings: type, endpoint, the options, then params if any */

    first = 2;
    opt = def->opts ? def->opts->elts : NULL;

    for (i = 0; def->opts && i < def->opts->nelts; i++) {
        if (opt[i].cv == NULL) {
            continue;
        }

        if (ngx_http_complex_value(r, opt[i].cv, &value) != NGX_OK) {
            return NGX_ERROR;
        }

        ctx->values[first + i].data = value.data ? value.data
                                                 : (u_char *) "";
        ctx->values[first + i].len = (int32_t) value.len;
    }

    if (def->dynamic_params) {
        if (ngx_http_sts_params(r->pool, r, def->params, &value) != NGX_OK) {
            return NGX_ERROR;
        }

        ctx->values[n - 1].data = value.data;
        ctx->values[n - 1].len = (int32_t) value.len;
    }

    return NGX_OK;
}


/*
 * name=value&... with each value form-encoded after evaluation (r is NULL
 * at configuration time, when no value has variables)
 */

static ngx_int_t
ngx_http_sts_params(ngx_pool_t *pool, ngx_http_request_t *r,
    ngx_array_t *params, ngx_str_t *out)
{
    u_char              *p;
    size_t               len;
    ngx_str_t           *values;
    ngx_uint_t           i;
    ngx_http_sts_opt_t  *prm;

    prm = params->elts;

    values = ngx_palloc(pool, params->nelts * sizeof(ngx_str_t));
    if (values == NULL) {
        return NGX_ERROR;
    }

    len = 0;

    for (i = 0; i < params->nelts; i++) {
        if (prm[i].cv == NULL || r == NULL) {
            values[i] = prm[i].value;

        } else if (ngx_http_complex_value(r, prm[i].cv, &values[i])
                   != NGX_OK)
        {
            return NGX_ERROR;
        }

        len += 3 * (prm[i].name.len + values[i].len) + 2;
    }

    out->data = ngx_pnalloc(pool, len + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = out->data;

    for (i = 0; i < params->nelts; i++) {
        if (i) {
            *p++ = '&';
        }

        p = ngx_oauth_form_encode(p, &prm[i].name);
        *p++ = '=';
        p = ngx_oauth_form_encode(p, &values[i]);
    }

    out->len = p - out->data;

    return NGX_OK;
}


/* the managed configuration, built once per definition in each worker */

static ngx_int_t
ngx_http_sts_handle(ngx_http_request_t *r, ngx_http_sts_def_t *def)
{
    int32_t  rc, detail;

    if (def->handle_state == 1) {
        return NGX_OK;
    }

    if (def->handle_state == -1) {
        return NGX_ERROR;
    }

    detail = -1;

    rc = ngx_oauth_managed.sts_create(def->settings,
                                      (int32_t) def->n_settings,
                                      &def->handle, &detail);

    if (rc != NOX_OK) {
        /* nginx -t checked the same settings: this is not expected */

        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "sts: the exchange of %V:%ui cannot be set up: %s "
                      "(setting %D)", &def->file, def->line,
                      ngx_oauth_status_text(rc), detail);
        def->handle_state = -1;
        return NGX_ERROR;
    }

    def->handle_state = 1;

    return NGX_OK;
}


/* ---- the source token out, the target token in ------------------------ */

static ngx_int_t
ngx_http_sts_strip(ngx_http_request_t *r, ngx_http_sts_place_t *place)
{
    switch (place->in) {

    case NGX_HTTP_STS_IN_COOKIE:
        return ngx_http_sts_cookie_strip(r, &place->name);

    case NGX_HTTP_STS_IN_QUERY:
        ngx_http_sts_args_strip(r, &place->name);
        return NGX_OK;

    default: /* a header */
        return ngx_http_sts_drop_headers(r, &place->name);
    }
}


static ngx_int_t
ngx_http_sts_deliver(ngx_http_request_t *r, ngx_http_sts_place_t *place,
    ngx_str_t *token)
{
    u_char           *p;
    ngx_str_t         value;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    switch (place->in) {

    case NGX_HTTP_STS_IN_QUERY:
        value.len = r->args.len + 1 + 3 * (place->name.len + token->len) + 1;
        value.data = ngx_pnalloc(r->pool, value.len);
        if (value.data == NULL) {
            return NGX_ERROR;
        }

        p = ngx_cpymem(value.data, r->args.data, r->args.len);

        if (r->args.len) {
            *p++ = '&';
        }

        p = ngx_oauth_form_encode(p, &place->name);
        *p++ = '=';
        p = ngx_oauth_form_encode(p, token);

        r->args.data = value.data;
        r->args.len = p - value.data;
        r->valid_unparsed_uri = 0;

        return NGX_OK;

    case NGX_HTTP_STS_IN_COOKIE:
        part = &r->headers_in.headers.part;
        h = part->elts;

        for (i = 0; /* void */; i++) {

            if (i >= part->nelts) {
                if (part->next == NULL) {
                    break;
                }

                part = part->next;
                h = part->elts;
                i = 0;
            }

            if (h[i].key.len == sizeof("Cookie") - 1
                && ngx_strncasecmp(h[i].key.data, (u_char *) "Cookie",
                                   sizeof("Cookie") - 1) == 0)
            {
                value.len = h[i].value.len + 2 + place->name.len + 1
                            + token->len;
                value.data = ngx_pnalloc(r->pool, value.len);
                if (value.data == NULL) {
                    return NGX_ERROR;
                }

                p = ngx_cpymem(value.data, h[i].value.data, h[i].value.len);
                p = ngx_cpymem(p, "; ", h[i].value.len ? 2 : 0);
                p = ngx_cpymem(p, place->name.data, place->name.len);
                *p++ = '=';
                p = ngx_cpymem(p, token->data, token->len);

                h[i].value.data = value.data;
                h[i].value.len = p - value.data;

                return NGX_OK;
            }
        }

        value.len = place->name.len + 1 + token->len;
        value.data = ngx_pnalloc(r->pool, value.len);
        if (value.data == NULL) {
            return NGX_ERROR;
        }

        p = ngx_cpymem(value.data, place->name.data, place->name.len);
        *p++ = '=';
        ngx_memcpy(p, token->data, token->len);

        h = ngx_oauth_header_add(r->pool, &r->headers_in.headers, "Cookie",
                                 &value);
        return (h == NULL) ? NGX_ERROR : NGX_OK;

    default: /* a header, or Authorization: Bearer */
        if (ngx_http_sts_drop_headers(r, &place->name) != NGX_OK) {
            return NGX_ERROR;
        }

        value = *token;

        if (place->in == NGX_HTTP_STS_IN_BEARER) {
            value.len = sizeof("Bearer ") - 1 + token->len;
            value.data = ngx_pnalloc(r->pool, value.len);
            if (value.data == NULL) {
                return NGX_ERROR;
            }

            ngx_memcpy(ngx_cpymem(value.data, "Bearer ",
                                  sizeof("Bearer ") - 1),
                       token->data, token->len);
        }

        h = ngx_oauth_header_add(r->pool, &r->headers_in.headers,
                                 (const char *) place->name.data, &value);
        if (h == NULL) {
            return NGX_ERROR;
        }

        if (place->name.len == sizeof("Authorization") - 1
            && ngx_strncasecmp(place->name.data, (u_char *) "Authorization",
                               place->name.len) == 0)
        {
            r->headers_in.authorization = h;
        }

        return NGX_OK;
    }
}


/* headers_in without every header of this name (a list cannot shrink) */

static ngx_int_t
ngx_http_sts_drop_headers(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_uint_t        i, found;
    ngx_list_t        list;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *n;

    found = 0;

    if (ngx_list_init(&list, r->pool, 16, sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == name->len
            && ngx_strncasecmp(h[i].key.data, name->data, name->len) == 0)
        {
            found = 1;
            continue;
        }

        n = ngx_list_push(&list);
        if (n == NULL) {
            return NGX_ERROR;
        }

        *n = h[i];
    }

    if (!found) {
        return NGX_OK;
    }

    r->headers_in.headers = list;

    if (list.last == &list.part) {
        r->headers_in.headers.last = &r->headers_in.headers.part;
    }

    /* the shortcuts pointed into the old list: only these can matter */

    if (name->len == sizeof("Authorization") - 1
        && ngx_strncasecmp(name->data, (u_char *) "Authorization",
                           name->len) == 0)
    {
        r->headers_in.authorization = NULL;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_sts_cookie_strip(ngx_http_request_t *r, ngx_str_t *name)
{
    u_char           *p, *end, *start, *eq, *out, *o;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len != sizeof("Cookie") - 1
            || ngx_strncasecmp(h[i].key.data, (u_char *) "Cookie",
                               sizeof("Cookie") - 1) != 0)
        {
            continue;
        }

        out = ngx_pnalloc(r->pool, h[i].value.len);
        if (out == NULL) {
            return NGX_ERROR;
        }

        o = out;
        p = h[i].value.data;
        end = p + h[i].value.len;

        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';')) {
                p++;
            }

            start = p;

            while (p < end && *p != ';') {
                p++;
            }

            eq = ngx_strlchr(start, p, '=');

            if (start == p
                || (eq && (size_t) (eq - start) == name->len
                    && ngx_strncmp(start, name->data, name->len) == 0))
            {
                continue;
            }

            if (o != out) {
                *o++ = ';';
                *o++ = ' ';
            }

            o = ngx_cpymem(o, start, p - start);
        }

        h[i].value.data = out;
        h[i].value.len = o - out;
    }

    return NGX_OK;
}


static void
ngx_http_sts_args_strip(ngx_http_request_t *r, ngx_str_t *name)
{
    u_char  *p, *end, *start, *out, *o;

    if (r->args.len == 0) {
        return;
    }

    out = ngx_pnalloc(r->pool, r->args.len);
    if (out == NULL) {
        return;
    }

    o = out;
    p = r->args.data;
    end = p + r->args.len;

    while (p < end) {
        start = p;

        while (p < end && *p != '&') {
            p++;
        }

        if (p != start
            && !((size_t) (p - start) >= name->len
                 && ngx_strncmp(start, name->data, name->len) == 0
                 && (start + name->len == p || start[name->len] == '=')))
        {
            if (o != out) {
                *o++ = '&';
            }

            o = ngx_cpymem(o, start, p - start);
        }

        if (p < end) {
            p++;
        }
    }

    r->args.data = out;
    r->args.len = o - out;
    r->valid_unparsed_uri = 0;
}






/* ---- variables --------------------------------------------------------- */

static ngx_int_t
ngx_http_sts_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    ngx_http_sts_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_oauth_sts_module);

    if (ctx == NULL || ctx->target.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    /* the core admitted no control characters; the shared gate anyway */

    return ngx_oauth_variable_set(r, v, &ctx->target);
}


/* ---- configuration ----------------------------------------------------- */

static void *
ngx_http_sts_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_sts_main_conf_t  *smcf;

    /*
     * set by ngx_pcalloc():
     *
     *     smcf->default_cache = NULL;
     *     smcf->routes = 0;
     *     smcf->passphrase = { 0, NULL };
     */

    smcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_sts_main_conf_t));
    if (smcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&smcf->caches, cf->pool, 4,
                       sizeof(ngx_http_sts_cache_t))
        != NGX_OK)
    {
        return NULL;
    }

    return smcf;
}


static void *
ngx_http_sts_create_loc_conf(ngx_conf_t *cf)
{
    ngx_uint_t                i;
    ngx_http_sts_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_sts_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->url[] = conf->auth[] = conf->auth_opts[] = { 0, NULL };
     *     conf->route[] = NULL;
     *     conf->applies_to = conf->token_type = conf->value_type = "";
     *     conf->ropc_client_id = conf->ropc_username = "";
     *     conf->otx_client_id = conf->ca = "";
     *     conf->params = NULL;
     *     conf->source = NULL;
     *     conf->source_set = 0;
     *     conf->def = NULL;
     */

    conf->exchange = NGX_CONF_UNSET_PTR;
    conf->seed_type = NGX_CONF_UNSET_UINT;
    conf->verify = NGX_CONF_UNSET;
    conf->timeout = NGX_CONF_UNSET_MSEC;
    conf->expires_in = NGX_CONF_UNSET;
    conf->cache = NGX_CONF_UNSET_PTR;
    conf->strip = NGX_CONF_UNSET_PTR;
    conf->deliver = NGX_CONF_UNSET_PTR;
    conf->params = NGX_CONF_UNSET_PTR;

    for (i = 0; i < NGX_HTTP_STS_SEEDS; i++) {
        conf->route[i] = NGX_CONF_UNSET_PTR;
    }

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

    char        *rv;
    ngx_uint_t   i;

    ngx_conf_merge_ptr_value(conf->exchange, prev->exchange, NULL);

    if (conf->seed_type == NGX_CONF_UNSET_UINT) {
        conf->seed_type = prev->seed_type;
        conf->seed_depth = prev->seed_depth;
        conf->seed_file = prev->seed_file;
        conf->seed_line = prev->seed_line;
    }

    for (i = 0; i < NGX_HTTP_STS_SEEDS; i++) {
        if (conf->url[i].data == NULL) {
            conf->url[i] = prev->url[i];
        }

        if (conf->auth[i].data == NULL) {
            conf->auth[i] = prev->auth[i];
            conf->auth_opts[i] = prev->auth_opts[i];
        }

        ngx_conf_merge_ptr_value(conf->route[i], prev->route[i], NULL);
    }

    ngx_conf_merge_str_value(conf->applies_to, prev->applies_to, "");
    ngx_conf_merge_str_value(conf->token_type, prev->token_type, "");
    ngx_conf_merge_str_value(conf->value_type, prev->value_type, "");
    ngx_conf_merge_str_value(conf->ropc_client_id, prev->ropc_client_id, "");
    ngx_conf_merge_str_value(conf->ropc_username, prev->ropc_username, "");
    ngx_conf_merge_str_value(conf->otx_client_id, prev->otx_client_id, "");
    ngx_conf_merge_str_value(conf->ca, prev->ca, "");
    ngx_conf_merge_ptr_value(conf->params, prev->params, NULL);
    ngx_conf_merge_value(conf->verify, prev->verify, 1);
    ngx_conf_merge_msec_value(conf->timeout, prev->timeout,
                              NGX_HTTP_STS_DEFAULT_TIMEOUT);
    ngx_conf_merge_value(conf->expires_in, prev->expires_in,
                         NGX_CONF_UNSET);
    ngx_conf_merge_ptr_value(conf->cache, prev->cache, NULL);
    ngx_conf_merge_ptr_value(conf->strip, prev->strip, NULL);
    ngx_conf_merge_ptr_value(conf->deliver, prev->deliver, NULL);

    if (!conf->source_set) {
        conf->source = prev->source;
        conf->source_set = prev->source_set;
    }

    /* the deeper of the two syntaxes wins; both at one level is an error */

    if (conf->exchange
        && (conf->seed_type == NGX_CONF_UNSET_UINT
            || conf->exchange->depth > conf->seed_depth))
    {
        conf->def = conf->exchange;

    } else if (conf->seed_type != NGX_CONF_UNSET_UINT) {
        rv = ngx_http_sts_seed_def(cf, conf, &conf->def);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    /* an STSExchange is finished where it was written */

    if (conf->def && conf->def == conf->exchange && conf->def->type
        && conf->def->settings == NULL)
    {
        if (conf->def->cache == NULL && conf->cache) {
            conf->def->cache = conf->cache;
        }

        if (conf->def->strip.in == 0 && conf->strip) {
            conf->def->strip = *conf->strip;
        }

        if (conf->def->deliver.in == 0 && conf->deliver) {
            conf->def->deliver = *conf->deliver;
        }

        rv = ngx_http_sts_finish(cf, conf->def);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    if (conf->def == NULL || conf->def->type == 0) {
        return NGX_CONF_OK;
    }

    if (conf->def->type != NOX_STS_CC && !conf->source_set) {
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


static char *
ngx_http_sts_type(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sts_loc_conf_t *slcf = conf;

    ngx_str_t        *value;
    ngx_conf_enum_t  *e;

    if (slcf->seed_type != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    if (slcf->exchange != NGX_CONF_UNSET_PTR) {
        return "cannot be combined with \"STSExchange\" in one location";
    }

    value = cf->args->elts;

    for (e = cmd->post; e->name.len; e++) {
        if (e->name.len == value[1].len
            && ngx_strcasecmp(e->name.data, value[1].data) == 0)
        {
            slcf->seed_type = e->value;
            slcf->seed_depth = slcf->depth;
            slcf->seed_file = cf->conf_file->file.name;
            slcf->seed_line = cf->conf_file->line;

            if (e->value) {
                ngx_oauth_use(cf);
            }

            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%V\": invalid value \"%V\": expected wstrust, "
                       "ropc, otx or disabled", &value[0], &value[1]);
    return NGX_CONF_ERROR;
}


static char *
ngx_http_sts_endpoint(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sts_loc_conf_t *slcf = conf;

    ngx_str_t  *value;

    value = cf->args->elts;

    if (slcf->url[cmd->offset].data) {
        return "is duplicate";
    }

    if (value[1].len == 0) {
        return "is empty";
    }

    slcf->url[cmd->offset] = value[1];

    return ngx_http_sts_seed_routes(cf, slcf);
}


/* <method> [<options>]: the options are a form string, read at merge */

static char *
ngx_http_sts_endpoint_auth(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sts_loc_conf_t *slcf = conf;

    char                *rv;
    ngx_str_t           *value;
    ngx_http_sts_def_t   tmp;

    value = cf->args->elts;

    if (slcf->auth[cmd->offset].data) {
        return "is duplicate";
    }

    slcf->auth[cmd->offset] = value[1];

    if (cf->args->nelts == 3) {
        slcf->auth_opts[cmd->offset] = value[2];

        /* checked (and warned about) here, at this line, once */

        ngx_memzero(&tmp, sizeof(ngx_http_sts_def_t));
        rv = ngx_http_sts_form_each(cf, &value[2], &tmp, 1, NULL);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

    } else {
        ngx_str_set(&slcf->auth_opts[cmd->offset], "");
    }

    return ngx_http_sts_seed_routes(cf, slcf);
}


/* STSSSLValidateServer, STSHTTPTimeOut, STSSSLCAFile */

static char *
ngx_http_sts_route_setting(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sts_loc_conf_t *slcf = conf;

    char       *rv;
    ngx_str_t  *value;

    value = cf->args->elts;

    if (cmd->offset == ngx_http_sts_off(verify)) {
        rv = ngx_conf_set_flag_slot(cf, cmd, conf);

    } else if (cmd->offset == ngx_http_sts_off(timeout)) {
        /* seconds, as the anchor; nginx time units work too */

        if (slcf->timeout != NGX_CONF_UNSET_MSEC) {
            return "is duplicate";
        }

        if (ngx_atoi(value[1].data, value[1].len) != NGX_ERROR) {
            slcf->timeout = (ngx_msec_t) ngx_atoi(value[1].data,
                                                  value[1].len) * 1000;

        } else {
            slcf->timeout = ngx_parse_time(&value[1], 0);
        }

        if (slcf->timeout == (ngx_msec_t) NGX_ERROR || slcf->timeout == 0) {
            return "has an invalid value";
        }

        rv = NGX_CONF_OK;

    } else {
        rv = ngx_conf_set_str_slot(cf, cmd, conf);
    }

    if (rv != NGX_CONF_OK) {
        return rv;
    }

    return ngx_http_sts_seed_routes(cf, slcf);
}


static char *
ngx_http_sts_request_parameter(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_sts_loc_conf_t *slcf = conf;

    ngx_str_t  *value, empty;

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "has an empty name";
    }

    if (slcf->params == NGX_CONF_UNSET_PTR) {
        slcf->params = NULL;
    }

    ngx_str_set(&empty, "");

    return ngx_http_sts_opt_add(cf, &slcf->params, (char *) value[1].data,
                                cf->args->nelts == 3 ? &value[2] : &empty,
                                1);
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

    char                      *rv;
    ssize_t                    size, n, val;
    ngx_str_t                 *value, name;
    ngx_uint_t                 i;
    ngx_keyval_t              *kv;
    ngx_array_t               *pairs;
    ngx_http_sts_cache_t      *c;
    ngx_oauth_cache_conf_t    *cc;
    ngx_http_sts_main_conf_t  *smcf;

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "shm") != 0) {
        if (ngx_strcmp(value[1].data, "file") != 0
            && ngx_strcmp(value[1].data, "memcache") != 0
            && ngx_strcmp(value[1].data, "redis") != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": invalid cache type \"%V\": "
                               "expected shm, file, memcache or redis",
                               &value[0], &value[1]);
            return NGX_CONF_ERROR;
        }

        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "STSCache type \"%V\" is served by a shared "
                           "memory zone of this nginx: target tokens are "
                           "not written to files or sent to a cache server",
                           &value[1]);
    }

    ngx_str_set(&name, "sts_default");
    size = 0;
    n = 1000;
    val = 8192;
    pairs = NULL;

    if (cf->args->nelts == 3) {
        rv = ngx_http_sts_form_each(cf, &value[2], NULL, 0, &pairs);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

        kv = pairs->elts;

        for (i = 0; i < pairs->nelts; i++) {
            if (ngx_strcmp(kv[i].key.data, "name") == 0) {
                name = kv[i].value;

            } else if (ngx_strcmp(kv[i].key.data, "size") == 0) {
                size = ngx_parse_size(&kv[i].value);

                if (size == NGX_ERROR) {
                    return "has an invalid size";
                }

            } else if (ngx_strcmp(kv[i].key.data, "max_entries") == 0) {
                n = ngx_atoi(kv[i].value.data, kv[i].value.len);

            } else if (ngx_strcmp(kv[i].key.data, "max_val_size") == 0) {
                val = ngx_atoi(kv[i].value.data, kv[i].value.len);
            }

            if (n == NGX_ERROR || n == 0 || val == NGX_ERROR || val == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": invalid value of \"%V\"",
                                   &value[0], &kv[i].key);
                return NGX_CONF_ERROR;
            }
        }
    }

    if (size == 0) {
        size = ngx_min(ngx_max(n * (val + 256), NGX_HTTP_STS_DEFAULT_ZONE),
                       256 * 1024 * 1024);
    }

    cc = ngx_http_sts_cache_zone(cf, &name, size);
    if (cc == NULL) {
        return NGX_CONF_ERROR;
    }

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_oauth_sts_module);

    c = ngx_array_push(&smcf->caches);
    if (c == NULL) {
        return NGX_CONF_ERROR;
    }

    c->name = name;
    c->cache = cc;

    /* in a location: the cache of this location's exchanges */

    if (cf->cmd_type & (NGX_HTTP_LOC_CONF|NGX_HTTP_LIF_CONF)) {
        if (slcf->cache != NGX_CONF_UNSET_PTR) {
            return "is duplicate";
        }

        slcf->cache = cc;
    }

    return NGX_CONF_OK;
}


static ngx_oauth_cache_conf_t *
ngx_http_sts_cache_zone(ngx_conf_t *cf, ngx_str_t *name, ssize_t size)
{
    ngx_str_t                *saved, arg;
    ngx_array_t               args, *prev;
    ngx_oauth_cache_conf_t   *cc;

    /* ngx_oauth_cache_conf() reads "zone=name:size" from cf->args */

    if (ngx_array_init(&args, cf->temp_pool, 2, sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NULL;
    }

    saved = ngx_array_push_n(&args, 2);
    if (saved == NULL) {
        return NULL;
    }

    ngx_str_set(&saved[0], "STSCache");

    arg.len = sizeof("zone=:") - 1 + name->len + NGX_SIZE_T_LEN;
    arg.data = ngx_pnalloc(cf->pool, arg.len + 1);
    if (arg.data == NULL) {
        return NULL;
    }

    arg.len = ngx_sprintf(arg.data, "zone=%V:%z%Z", name, size) - arg.data
              - 1;
    saved[1] = arg;

    prev = cf->args;
    cf->args = &args;

    cc = NULL;

    if (ngx_oauth_cache_conf(cf, &ngx_http_oauth_sts_module, "sts", 86400,
                             &cc)
        != NGX_CONF_OK)
    {
        cc = NULL;
    }

    cf->args = prev;

    return cc;
}


/* STSVariables [<source expression>] $<target> */

static char *
ngx_http_sts_variables(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sts_loc_conf_t *slcf = conf;

    ngx_str_t                         *value, name;
    ngx_http_variable_t               *v;
    ngx_http_compile_complex_value_t   ccv;

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
    v->data = 0;

    slcf->source_set = 1;

    if (cf->args->nelts == 2) {
        return NGX_CONF_OK;
    }

    slcf->source = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (slcf->source == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = slcf->source;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* STSExchange <type> <url|jwk> [<options> [<claims projection>]] */

static char *
ngx_http_sts_exchange(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sts_loc_conf_t *slcf = conf;

    char                *rv;
    ngx_str_t           *value, name, options;
    ngx_uint_t           i;
    ngx_http_sts_def_t  *def;

    if (slcf->exchange != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    if (slcf->seed_type != NGX_CONF_UNSET_UINT) {
        return "cannot be combined with \"STSType\" in one location";
    }

    value = cf->args->elts;

    def = ngx_pcalloc(cf->pool, sizeof(ngx_http_sts_def_t));
    if (def == NULL) {
        return NGX_CONF_ERROR;
    }

    def->directive = "STSExchange";
    def->file = cf->conf_file->file.name;
    def->line = cf->conf_file->line;
    def->depth = slcf->depth;
    def->route.verify = 1;
    def->route.timeout = NGX_HTTP_STS_DEFAULT_TIMEOUT;

    for (i = 1; i < sizeof(ngx_http_sts_type_names) / sizeof(ngx_str_t);
         i++)
    {
        if (ngx_strcmp(value[1].data, ngx_http_sts_type_names[i].data) == 0)
        {
            def->type = i;
            break;
        }
    }

    if (ngx_strcmp(value[1].data, "disabled") != 0 && def->type == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": invalid type \"%V\": expected wstrust, "
                           "ropc, otx, cc, jwt or disabled", &value[0],
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    if (def->type == 0) {
        /* "STSExchange disabled", or the anchor's form with ignored rest */
        slcf->exchange = def;
        return NGX_CONF_OK;
    }

    if (cf->args->nelts < 3) {
        return "needs an endpoint (a URL, the URI of a location, or for "
               "\"jwt\" a JWK)";
    }

    slcf->exchange = def;

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
        options = value[3];
        rv = ngx_http_sts_form_each(cf, &options, def, 0, NULL);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    if (cf->args->nelts >= 5) {
        if (def->type != NOX_STS_JWT) {
            return "takes a claims projection only with type \"jwt\"";
        }

        rv = ngx_http_sts_opt_add(cf, &def->opts, "claims", &value[4], 0);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    if (def->type != NOX_STS_JWT) {
        def->route.url = def->endpoint;

        rv = ngx_http_sts_route(cf, &def->route);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    return NGX_CONF_OK;
}


/* STSStripSource / STSPassTarget */

static char *
ngx_http_sts_place_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_str_t              *value;
    ngx_http_sts_place_t  **field;

    field = (ngx_http_sts_place_t **) (p + cmd->offset);

    if (*field != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    *field = ngx_pcalloc(cf->pool, sizeof(ngx_http_sts_place_t));
    if (*field == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    return ngx_http_sts_place_parse(cf, &value[1], *field,
                                    cmd->offset == ngx_http_sts_off(deliver));
}


static char *
ngx_http_sts_passphrase(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sts_main_conf_t *smcf = conf;

    ngx_str_t  *value;

    value = cf->args->elts;
    smcf->passphrase = value[1];

    /* accepted for drop-in configurations: see docs/DIRECTIVES.md */

    return NGX_CONF_OK;
}


/*
 * One option of STSExchange or of an *EndpointAuth directive.  Options the
 * shim acts on stay here; the rest go to the managed core, which rejects
 * names it does not know when the configuration is checked.
 */

static char *
ngx_http_sts_option(ngx_conf_t *cf, ngx_http_sts_def_t *def, ngx_str_t *name,
    ngx_str_t *value)
{
    ngx_int_t      n;
    ngx_str_t      file, content;
    ngx_uint_t     i, variables;

    static const char  *vars[] = {
        "audience", "scope", "resource", "username", "actor_token",
        "actor_token_type", "requested_token_type", "applies_to", "sub",
        NULL
    };

    if (ngx_strcmp(name->data, "ssl_verify") == 0) {
        def->route.verify = (ngx_strcasecmp(value->data, (u_char *) "on") == 0
                || ngx_strcasecmp(value->data, (u_char *) "true") == 0
                || ngx_strcasecmp(value->data, (u_char *) "yes") == 0
                || ngx_strcmp(value->data, "1") == 0);

        if (!def->route.verify
            && ngx_strcasecmp(value->data, (u_char *) "off") != 0
            && ngx_strcasecmp(value->data, (u_char *) "false") != 0
            && ngx_strcasecmp(value->data, (u_char *) "no") != 0
            && ngx_strcmp(value->data, "0") != 0)
        {
            goto invalid;
        }

        return NGX_CONF_OK;
    }

    if (ngx_strcmp(name->data, "http_timeout") == 0) {
        n = ngx_atoi(value->data, value->len);
        if (n <= 0) {
            goto invalid;
        }

        def->route.timeout = (ngx_msec_t) n * 1000;
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(name->data, "cert") == 0) {
        def->route.cert = *value;
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(name->data, "key") == 0) {
        def->route.key = *value;
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(name->data, "ca_file") == 0) {
        def->route.ca = *value;
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(name->data, "cache.name") == 0) {
        def->cache_name = *value;
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(name->data, "cache.expiry") == 0) {
        if (ngx_atoi(value->data, value->len) == NGX_ERROR) {
            goto invalid;
        }

        return ngx_http_sts_opt_add(cf, &def->opts, "expiry", value, 0);
    }

    if (ngx_strcmp(name->data, "on_error") == 0) {
        if (ngx_strcmp(value->data, "pass") == 0) {
            def->pass_on_error = 1;

        } else if (ngx_strcmp(value->data, "return") != 0) {
            goto invalid;
        }

        return NGX_CONF_OK;
    }

    if (ngx_strcmp(name->data, "strip_source") == 0) {
        return ngx_http_sts_place_parse(cf, value, &def->strip, 0);
    }

    if (ngx_strcmp(name->data, "pass_target") == 0) {
        return ngx_http_sts_place_parse(cf, value, &def->deliver, 1);
    }

    if (ngx_strcmp(name->data, "params") == 0) {
        return ngx_http_sts_form_each(cf, value, def, 2, NULL);
    }

    if (ngx_strcmp(name->data, "http_retries") == 0
        || ngx_strcmp(name->data, "http_retry_interval") == 0
        || ngx_strcmp(name->data, "jq.cache.name") == 0)
    {
        if (def->quiet) {
            return NGX_CONF_OK;
        }

        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"%V\": option \"%V\" has no effect: STS calls "
                           "are not retried (an exchange is never repeated "
                           "behind the client's back)",
                           ngx_http_sts_directive_name(cf), name);
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(name->data, "outgoing_proxy") == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": option \"outgoing_proxy\" is not "
                           "supported: point the endpoint at an internal "
                           "location that proxy_passes where it must",
                           ngx_http_sts_directive_name(cf));
        return NGX_CONF_ERROR;
    }

    /* name_file=path: the secret comes from a file read at startup */

    if (name->len > 5
        && ngx_strcmp(name->data + name->len - 5, "_file") == 0)
    {
        file = *value;

        if (ngx_oauth_read_file(cf, &file, NGX_HTTP_STS_SECRET_MAX, &content)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        while (content.len
               && (content.data[content.len - 1] == '\n'
                   || content.data[content.len - 1] == '\r'))
        {
            content.len--;
        }

        name->len -= 5;
        name->data[name->len] = '\0';

        return ngx_http_sts_opt_add(cf, &def->opts, (char *) name->data,
                                    &content, 0);
    }

    variables = 0;

    for (i = 0; vars[i]; i++) {
        if (ngx_strcmp(name->data, vars[i]) == 0) {
            variables = 1;
            break;
        }
    }

    /* username=* is the authenticated user, as the anchor documents */

    if (ngx_strcmp(name->data, "username") == 0
        && value->len == 1 && value->data[0] == '*')
    {
        ngx_str_set(value, "$remote_user");
    }

    return ngx_http_sts_opt_add(cf, &def->opts, (char *) name->data, value,
                                variables);

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%V\": invalid value \"%V\" of option \"%V\"",
                       ngx_http_sts_directive_name(cf), value, name);
    return NGX_CONF_ERROR;
}


/*
 * Walks a form string "a=1&b=2" (names and values percent-decoded).  With
 * pairs, collects them; else with mode 2 adds request parameters to def,
 * and otherwise passes each to ngx_http_sts_option().
 */

static char *
ngx_http_sts_form_each(ngx_conf_t *cf, ngx_str_t *form,
    ngx_http_sts_def_t *def, ngx_uint_t mode, ngx_array_t **pairs)
{
    char          *rv;
    u_char        *p, *end, *start, *eq;
    ngx_str_t      name, value;
    ngx_keyval_t  *kv;

    if (pairs) {
        *pairs = ngx_array_create(cf->pool, 4, sizeof(ngx_keyval_t));
        if (*pairs == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    p = form->data;
    end = p + form->len;

    while (p < end) {
        start = p;

        while (p < end && *p != '&') {
            p++;
        }

        if (p == start) {
            p++;
            continue;
        }

        eq = ngx_strlchr(start, p, '=');

        name.data = start;
        name.len = (eq ? eq : p) - start;

        if (eq) {
            value.data = eq + 1;
            value.len = p - eq - 1;

        } else {
            ngx_str_set(&value, "");
        }

        if (ngx_http_sts_decode(cf->pool, &name) != NGX_OK
            || ngx_http_sts_decode(cf->pool, &value) != NGX_OK
            || name.len == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": invalid options \"%V\": expected "
                               "name=value&...",
                               ngx_http_sts_directive_name(cf), form);
            return NGX_CONF_ERROR;
        }

        if (pairs) {
            kv = ngx_array_push(*pairs);
            if (kv == NULL) {
                return NGX_CONF_ERROR;
            }

            kv->key = name;
            kv->value = value;

        } else if (mode == 2) {
            rv = ngx_http_sts_opt_add(cf, &def->params, (char *) name.data,
                                      &value, 1);
            if (rv != NGX_CONF_OK) {
                return rv;
            }

        } else {
            rv = ngx_http_sts_option(cf, def, &name, &value);
            if (rv != NGX_CONF_OK) {
                return rv;
            }
        }

        if (p < end) {
            p++;
        }
    }

    return NGX_CONF_OK;
}


/* percent- and plus-decoding into a new NUL-terminated copy */

static ngx_int_t
ngx_http_sts_decode(ngx_pool_t *pool, ngx_str_t *s)
{
    u_char      *d, *p, *end;
    ngx_int_t    hi, lo;

    d = ngx_pnalloc(pool, s->len + 1);
    if (d == NULL) {
        return NGX_ERROR;
    }

    p = s->data;
    end = p + s->len;
    s->data = d;

    while (p < end) {
        if (*p == '+') {
            *d++ = ' ';
            p++;

        } else if (*p == '%') {
            if (end - p < 3) {
                return NGX_ERROR;
            }

            hi = ngx_hextoi(p + 1, 1);
            lo = ngx_hextoi(p + 2, 1);

            if (hi == NGX_ERROR || lo == NGX_ERROR || (hi == 0 && lo == 0)) {
                return NGX_ERROR;
            }

            *d++ = (u_char) (hi << 4 | lo);
            p += 3;

        } else {
            *d++ = *p++;
        }
    }

    *d = '\0';
    s->len = d - s->data;

    return NGX_OK;
}


static char *
ngx_http_sts_opt_add(ngx_conf_t *cf, ngx_array_t **opts, const char *name,
    ngx_str_t *value, ngx_uint_t variables)
{
    ngx_http_sts_opt_t                *opt;
    ngx_http_compile_complex_value_t   ccv;

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

    opt->name.data = (u_char *) name;
    opt->name.len = ngx_strlen(name);
    opt->value = *value;
    opt->cv = NULL;

    if (!variables || ngx_http_script_variables_count(value) == 0) {
        return NGX_CONF_OK;
    }

    opt->cv = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (opt->cv == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &opt->value;
    ccv.complex_value = opt->cv;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * authorization | header:NAME | cookie:NAME | query:NAME; for the target
 * also bearer (Authorization: Bearer <target>)
 */

static char *
ngx_http_sts_place_parse(ngx_conf_t *cf, ngx_str_t *spec,
    ngx_http_sts_place_t *place, ngx_uint_t target)
{
    u_char  *colon;

    colon = ngx_strlchr(spec->data, spec->data + spec->len, ':');

    if (colon == NULL) {
        if (ngx_strcasecmp(spec->data, (u_char *) "authorization") == 0
            || (target
                && ngx_strcasecmp(spec->data, (u_char *) "bearer") == 0))
        {
            place->in = target ? NGX_HTTP_STS_IN_BEARER
                               : NGX_HTTP_STS_IN_HEADER;
            ngx_str_set(&place->name, "Authorization");
            return NGX_CONF_OK;
        }

        goto invalid;
    }

    place->name.data = colon + 1;
    place->name.len = spec->data + spec->len - colon - 1;

    if (place->name.len == 0) {
        goto invalid;
    }

    if (ngx_strncmp(spec->data, "header:", 7) == 0) {
        place->in = NGX_HTTP_STS_IN_HEADER;

    } else if (ngx_strncmp(spec->data, "cookie:", 7) == 0) {
        place->in = NGX_HTTP_STS_IN_COOKIE;

    } else if (ngx_strncmp(spec->data, "query:", 6) == 0) {
        place->in = NGX_HTTP_STS_IN_QUERY;

    } else {
        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%V\": invalid place \"%V\": expected %s "
                       "header:NAME, cookie:NAME or query:NAME",
                       ngx_http_sts_directive_name(cf), spec,
                       target ? "bearer," : "authorization,");
    return NGX_CONF_ERROR;
}


/* what an enclosing location set, before the merge has run */

static ngx_str_t *
ngx_http_sts_up_str(ngx_http_sts_loc_conf_t *slcf, size_t offset)
{
    ngx_str_t  *s;

    for ( /* void */ ; slcf; slcf = slcf->parent) {
        s = (ngx_str_t *) ((u_char *) slcf + offset);

        if (s->data) {
            return s;
        }
    }

    return NULL;
}


/*
 * The seed syntax spreads an endpoint's transport over several directives
 * (STSSSLValidateServer, STSHTTPTimeOut, the client certificate in
 * *EndpointAuth); each of them regenerates this level's endpoint locations
 * with what is known so far here and in the enclosing locations.  The
 * merge checks that nothing changed afterwards.
 */

static char *
ngx_http_sts_seed_routes(ngx_conf_t *cf, ngx_http_sts_loc_conf_t *slcf)
{
    char                     *rv;
    ngx_str_t                *url, *opts;
    ngx_uint_t                k;
    ngx_http_sts_def_t        tmp;
    ngx_http_sts_route_t     *rt;
    ngx_http_sts_loc_conf_t  *up;

    for (k = 0; k < NGX_HTTP_STS_SEEDS; k++) {

        url = ngx_http_sts_up_str(slcf, ngx_http_sts_off(url[k]));
        if (url == NULL) {
            continue;
        }

        rt = ngx_pcalloc(cf->pool, sizeof(ngx_http_sts_route_t));
        if (rt == NULL) {
            return NGX_CONF_ERROR;
        }

        rt->url = *url;
        rt->verify = 1;
        rt->timeout = NGX_HTTP_STS_DEFAULT_TIMEOUT;

        for (up = slcf; up; up = up->parent) {
            if (up->verify != NGX_CONF_UNSET) {
                rt->verify = up->verify;
                break;
            }
        }

        for (up = slcf; up; up = up->parent) {
            if (up->timeout != NGX_CONF_UNSET_MSEC) {
                rt->timeout = up->timeout;
                break;
            }
        }

        url = ngx_http_sts_up_str(slcf, ngx_http_sts_off(ca));
        if (url) {
            rt->ca = *url;
        }

        opts = ngx_http_sts_up_str(slcf, ngx_http_sts_off(auth_opts[k]));

        if (opts && opts->len) {
            ngx_memzero(&tmp, sizeof(ngx_http_sts_def_t));
            tmp.quiet = 1;
            rv = ngx_http_sts_form_each(cf, opts, &tmp, 1, NULL);
            if (rv != NGX_CONF_OK) {
                return rv;
            }

            rt->cert = tmp.route.cert;
            rt->key = tmp.route.key;
        }

        rv = ngx_http_sts_route(cf, rt);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

        slcf->route[k] = rt;
    }

    return NGX_CONF_OK;
}


/*
 * An absolute URL becomes an internal location of this server that
 * proxy_passes to it, parsed from generated text in the server's context:
 * TLS verification against the system CA bundle (or ca_file), SNI, the
 * timeouts, the client certificate, and room for the whole answer.  A URI
 * starting with "/" is the operator's own location, used as it is.
 */

static char *
ngx_http_sts_route(ngx_conf_t *cf, ngx_http_sts_route_t *rt)
{
    u_char                    *p, *text;
    size_t                     len;
    ngx_buf_t                  b;
    ngx_uint_t                 https, i;
    ngx_conf_t                 save;
    ngx_str_t                 *s;
    ngx_conf_file_t            file;
    ngx_http_core_srv_conf_t  *cscf;
    ngx_http_sts_main_conf_t  *smcf;

    if (rt->url.len && rt->url.data[0] == '/') {
        rt->uri = rt->url;
        return NGX_CONF_OK;
    }

    https = (rt->url.len > 8 && ngx_strncasecmp(rt->url.data,
                                       (u_char *) "https://", 8) == 0);

    if (!https && !(rt->url.len > 7
                    && ngx_strncasecmp(rt->url.data, (u_char *) "http://", 7)
                       == 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": invalid endpoint \"%V\": expected an "
                           "http:// or https:// URL, or the URI of a location",
                           ngx_http_sts_directive_name(cf), &rt->url);
        return NGX_CONF_ERROR;
    }

    /* the generated text quotes these: no quote, backslash, $ or space */

    for (i = 0; i < 4; i++) {
        s = (i == 0) ? &rt->url : (i == 1) ? &rt->cert
            : (i == 2) ? &rt->key : &rt->ca;

        for (p = s->data; p < s->data + s->len; p++) {
            if (*p <= ' ' || *p == '"' || *p == '\\' || *p == '$'
                || *p == '{' || *p == '}' || *p == ';' || *p == 0x7f)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": invalid character in \"%V\"",
                                   ngx_http_sts_directive_name(cf), s);
                return NGX_CONF_ERROR;
            }
        }
    }

    if ((rt->cert.len == 0) != (rt->key.len == 0)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": a client certificate needs both "
                           "\"cert\" and \"key\"",
                           ngx_http_sts_directive_name(cf));
        return NGX_CONF_ERROR;
    }

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_oauth_sts_module);

    len = 1024 + rt->url.len + rt->cert.len + rt->key.len + rt->ca.len;

    text = ngx_pnalloc(cf->pool, len);
    if (text == NULL) {
        return NGX_CONF_ERROR;
    }

    rt->uri.data = ngx_pnalloc(cf->pool, sizeof("/.oauth-sts/") - 1
                                         + NGX_INT_T_LEN);
    if (rt->uri.data == NULL) {
        return NGX_CONF_ERROR;
    }

    rt->uri.len = ngx_sprintf(rt->uri.data, "/.oauth-sts/%ui", ++smcf->routes)
                  - rt->uri.data;

    p = ngx_slprintf(text, text + len,
                     "location = %V { internal; proxy_pass \"%V\"; "
                     "proxy_connect_timeout %Mms; proxy_send_timeout %Mms; "
                     "proxy_read_timeout %Mms; proxy_next_upstream off; "
                     "proxy_redirect off; proxy_intercept_errors off; "
                     "proxy_buffering on; subrequest_output_buffer_size "
                     NGX_HTTP_STS_BUFFER_SIZE "; ",
                     &rt->uri, &rt->url, rt->timeout, rt->timeout,
                     rt->timeout);

    if (https) {
        /*
         * No session reuse: nginx keeps TLS sessions per upstream server,
         * and every location that proxy_passes to one host:port shares it.
         * A session resumed in another endpoint location would carry that
         * location's verification result (another CA file, or none) and
         * client certificate into this one.
         */

        p = ngx_slprintf(p, text + len,
                         "proxy_ssl_server_name on; proxy_ssl_verify %s; "
                         "proxy_ssl_session_reuse off; ",
                         rt->verify ? "on" : "off");

        if (rt->verify) {
            p = ngx_slprintf(p, text + len,
                             "proxy_ssl_verify_depth 8; "
                             "proxy_ssl_trusted_certificate \"%V\"; ",
                             rt->ca.len ? &rt->ca : &(ngx_str_t)
                             ngx_string("/etc/ssl/certs/ca-certificates.crt"));
        }

        if (rt->cert.len) {
            p = ngx_slprintf(p, text + len,
                             "proxy_ssl_certificate \"%V\"; "
                             "proxy_ssl_certificate_key \"%V\"; ",
                             &rt->cert, &rt->key);
        }

    } else if (rt->cert.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": a client certificate needs an https:// "
                           "endpoint, not \"%V\"",
                           ngx_http_sts_directive_name(cf), &rt->url);
        return NGX_CONF_ERROR;
    }

    p = ngx_slprintf(p, text + len, "} }");

    /* parse it as a block of the server, reported at this line */

    cscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_core_module);

    ngx_memzero(&b, sizeof(ngx_buf_t));
    b.start = text;
    b.pos = text;
    b.last = p;
    b.end = p;
    b.temporary = 1;

    ngx_memzero(&file, sizeof(ngx_conf_file_t));
    file.file.fd = 0;    /* anything but NGX_INVALID_FILE: a block */
    file.file.name = cf->conf_file->file.name;
    file.file.log = cf->log;
    file.line = cf->conf_file->line;
    file.buffer = &b;
    file.dump = NULL;

    save = *cf;

    cf->args = ngx_array_create(cf->temp_pool, 10, sizeof(ngx_str_t));
    if (cf->args == NULL) {
        return NGX_CONF_ERROR;
    }

    cf->ctx = cscf->ctx;
    cf->cmd_type = NGX_HTTP_SRV_CONF;
    cf->conf_file = &file;
    cf->handler = NULL;

    p = (u_char *) ngx_conf_parse(cf, NULL);

    *cf = save;

    if ((char *) p != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, cf->log, 0,
                   "sts: \"%V\" through \"%V\"", &rt->url, &rt->uri);

    return NGX_CONF_OK;
}


/* the seed syntax's directives as one definition (at merge) */

static char *
ngx_http_sts_seed_def(ngx_conf_t *cf, ngx_http_sts_loc_conf_t *slcf,
    ngx_http_sts_def_t **pdef)
{
    char                *rv;
    ngx_str_t            s;
    ngx_uint_t           k;
    ngx_http_sts_def_t  *def;

    static const char  *names[] = {
        "STSWSTrustEndpoint", "STSROPCEndpoint", "STSOTXEndpoint"
    };

    def = ngx_pcalloc(cf->pool, sizeof(ngx_http_sts_def_t));
    if (def == NULL) {
        return NGX_CONF_ERROR;
    }

    *pdef = def;

    def->type = slcf->seed_type;
    def->directive = "STSType";
    def->file = slcf->seed_file;
    def->line = slcf->seed_line;
    def->depth = slcf->seed_depth;

    if (def->type == 0) {
        return NGX_CONF_OK;
    }

    k = (def->type == NOX_STS_WSTRUST) ? NGX_HTTP_STS_SEED_WSTRUST
        : (def->type == NOX_STS_ROPC) ? NGX_HTTP_STS_SEED_ROPC
        : NGX_HTTP_STS_SEED_OTX;

    if (slcf->url[k].data == NULL || slcf->route[k] == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"STSType %V\" in %V:%ui needs \"%s\"",
                      &ngx_http_sts_type_names[def->type], &def->file,
                      def->line, names[k]);
        return NGX_CONF_ERROR;
    }

    def->endpoint = slcf->url[k];
    def->route = *slcf->route[k];

    /* what the endpoint location was generated with must still hold */

    if (def->route.url.len && def->route.url.data[0] != '/'
        && (def->route.verify != slcf->verify
            || def->route.timeout != slcf->timeout
            || def->route.ca.len != slcf->ca.len))
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"STSSSLValidateServer\", \"STSHTTPTimeOut\" or "
                      "\"STSSSLCAFile\" of an enclosing location comes after "
                      "the nested location that uses \"%s\" (%V:%ui): move it "
                      "before", names[k], &def->file, def->line);
        return NGX_CONF_ERROR;
    }

    /* endpoint authentication: "none" when absent, as documented */

    if (slcf->auth[k].len) {
        rv = ngx_http_sts_opt_add(cf, &def->opts, "auth", &slcf->auth[k], 0);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

        if (slcf->auth_opts[k].len) {
            def->quiet = 1;   /* warned about at the directive */
            rv = ngx_http_sts_form_each(cf, &slcf->auth_opts[k], def, 1,
                                        NULL);
            def->quiet = 0;
            if (rv != NGX_CONF_OK) {
                return rv;
            }
        }
    }

#define ngx_http_sts_seed_opt(field, name, vars)                              \
    if (slcf->field.len) {                                                    \
        s = slcf->field;                                                      \
        rv = ngx_http_sts_opt_add(cf, &def->opts, name, &s, vars);            \
        if (rv != NGX_CONF_OK) {                                              \
            return rv;                                                        \
        }                                                                     \
    }

    if (def->type == NOX_STS_WSTRUST) {
        ngx_http_sts_seed_opt(applies_to, "applies_to", 1);
        ngx_http_sts_seed_opt(token_type, "token_type", 0);
        ngx_http_sts_seed_opt(value_type, "value_type", 0);

    } else if (def->type == NOX_STS_ROPC) {
        if (slcf->ropc_username.len == 1 && slcf->ropc_username.data[0] == '*')
        {
            ngx_str_set(&slcf->ropc_username, "$remote_user");
        }

        /*
         * The client_id of STSROPCEndpointAuth authenticates the client;
         * the anchor sends STSROPCClientID only without client
         * authentication, and uses it as the default username.  With both,
         * the core gets the first as "client_id" and the second as the
         * username unless STSROPCUsername names one.
         */

        if (slcf->ropc_client_id.len
            && ngx_http_sts_has_opt(def, "client_id"))
        {
            if (slcf->ropc_username.len == 0) {
                ngx_http_sts_seed_opt(ropc_client_id, "username", 0);
            }

        } else {
            ngx_http_sts_seed_opt(ropc_client_id, "client_id", 0);
        }

        ngx_http_sts_seed_opt(ropc_username, "username", 1);

    } else if (!ngx_http_sts_has_opt(def, "client_id")) {
        ngx_http_sts_seed_opt(otx_client_id, "client_id", 0);
    }

#undef ngx_http_sts_seed_opt

    def->params = slcf->params;

    if (slcf->expires_in != NGX_CONF_UNSET) {
        s.data = ngx_pnalloc(cf->pool, NGX_TIME_T_LEN);
        if (s.data == NULL) {
            return NGX_CONF_ERROR;
        }

        s.len = ngx_sprintf(s.data, "%T", slcf->expires_in) - s.data;

        rv = ngx_http_sts_opt_add(cf, &def->opts, "expiry", &s, 0);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    def->cache = slcf->cache;

    if (slcf->strip) {
        def->strip = *slcf->strip;
    }

    if (slcf->deliver) {
        def->deliver = *slcf->deliver;
    }

    return ngx_http_sts_finish(cf, def);
}


/* both syntaxes: the cache, delivery, and the settings for the core */

static char *
ngx_http_sts_finish(ngx_conf_t *cf, ngx_http_sts_def_t *def)
{
    ngx_str_t                  s;
    ngx_uint_t                 i, n, dynamic;
    ngx_http_sts_opt_t        *opt;
    ngx_http_sts_cache_t      *c;
    ngx_http_sts_main_conf_t  *smcf;

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_oauth_sts_module);

    if (def->cache_name.len) {
        c = smcf->caches.elts;

        for (i = 0; i < smcf->caches.nelts; i++) {
            if (c[i].name.len == def->cache_name.len
                && ngx_strncmp(c[i].name.data, def->cache_name.data,
                               c[i].name.len) == 0)
            {
                def->cache = c[i].cache;
                break;
            }
        }

        if (def->cache == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"%s\" in %V:%ui: no \"STSCache\" has "
                          "name=%V", def->directive, &def->file, def->line,
                          &def->cache_name);
            return NGX_CONF_ERROR;
        }
    }

    if (def->cache == NULL) {
        if (smcf->default_cache == NULL) {
            ngx_str_set(&s, "sts_default");

            c = smcf->caches.elts;

            for (i = 0; i < smcf->caches.nelts; i++) {
                if (c[i].name.len == s.len
                    && ngx_strncmp(c[i].name.data, s.data, s.len) == 0)
                {
                    smcf->default_cache = c[i].cache;
                }
            }

            if (smcf->default_cache == NULL) {
                smcf->default_cache = ngx_http_sts_cache_zone(cf, &s,
                                                  NGX_HTTP_STS_DEFAULT_ZONE);
                if (smcf->default_cache == NULL) {
                    return NGX_CONF_ERROR;
                }
            }
        }

        def->cache = smcf->default_cache;
    }

    /* settings: type, endpoint, the options, then params if any */

    n = 2 + (def->opts ? def->opts->nelts : 0) + (def->params ? 1 : 0);

    def->settings = ngx_pcalloc(cf->pool, 2 * n * sizeof(nox_buf_t));
    if (def->settings == NULL) {
        return NGX_CONF_ERROR;
    }

    def->n_settings = 2 * n;

    def->settings[0].data = (u_char *) "type";
    def->settings[0].len = 4;
    def->settings[1].data = ngx_http_sts_type_names[def->type].data;
    def->settings[1].len = (int32_t) ngx_http_sts_type_names[def->type].len;
    def->settings[2].data = (u_char *) "endpoint";
    def->settings[2].len = 8;
    def->settings[3].data = def->endpoint.data;
    def->settings[3].len = (int32_t) def->endpoint.len;

    opt = def->opts ? def->opts->elts : NULL;

    for (i = 0; def->opts && i < def->opts->nelts; i++) {
        def->settings[4 + 2 * i].data = opt[i].name.data;
        def->settings[4 + 2 * i].len = (int32_t) opt[i].name.len;
        def->settings[5 + 2 * i].data = opt[i].value.data;
        def->settings[5 + 2 * i].len = (int32_t) opt[i].value.len;
    }

    if (def->params) {
        opt = def->params->elts;
        dynamic = 0;

        for (i = 0; i < def->params->nelts; i++) {
            if (opt[i].cv) {
                dynamic = 1;
            }
        }

        def->dynamic_params = dynamic;

        s.len = 0;
        s.data = (u_char *) "";

        if (!dynamic
            && ngx_http_sts_params(cf->pool, NULL, def->params, &s) != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        def->settings[2 * n - 2].data = (u_char *) "params";
        def->settings[2 * n - 2].len = 6;
        def->settings[2 * n - 1].data = s.data;
        def->settings[2 * n - 1].len = (int32_t) s.len;
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

    int64_t    handle;
    int32_t    rc, detail;
    ngx_str_t  name;

    handle = 0;
    detail = -1;

    rc = ngx_oauth_managed.sts_create(def->settings,
                                      (int32_t) def->n_settings, &handle,
                                      &detail);

    if (rc == NOX_OK) {
        (void) ngx_oauth_managed.sts_free(handle);
        return NULL;
    }

    if (detail >= 0 && (ngx_uint_t) detail < def->n_settings / 2) {
        name.data = (u_char *) def->settings[2 * detail].data;
        name.len = def->settings[2 * detail].len;

        return ngx_slprintf(buf, last, "\"%s\": option \"%V\": %s",
                            def->directive, &name,
                            ngx_oauth_status_text(rc));
    }

    return ngx_slprintf(buf, last, "\"%s\": %s", def->directive,
                        ngx_oauth_status_text(rc));
}


/*
 * The directive being parsed, for messages of helpers that several
 * directives share ("STS" once parsing is over, at the merge).
 */

static ngx_str_t *
ngx_http_sts_directive_name(ngx_conf_t *cf)
{
    static ngx_str_t  sts = ngx_string("STS");

    if (cf->args == NULL || cf->args->nelts == 0) {
        return &sts;
    }

    return cf->args->elts;
}


static ngx_uint_t
ngx_http_sts_has_opt(ngx_http_sts_def_t *def, const char *name)
{
    ngx_uint_t           i;
    ngx_http_sts_opt_t  *opt;

    if (def->opts == NULL) {
        return 0;
    }

    opt = def->opts->elts;

    for (i = 0; i < def->opts->nelts; i++) {
        if (ngx_strcmp(opt[i].name.data, name) == 0) {
            return 1;
        }
    }

    return 0;
}
