/*
 * NginxOAuth shim: OAuth 2.0 token introspection (RFC 7662) and token
 * exchange (RFC 8693) through nginx subrequests, the auth_oauth2_token_*
 * directives and the $oauth2_token_* variables (drop-in for
 * kjdev/nginx-auth-oauth2-token).
 *
 * The request flow (ARCHITECTURE.md):
 *   handler -> bearer token from Authorization
 *           -> introspection: shared cache, else a POST subrequest to the
 *              internal introspection location; nox_introspect_parse
 *           -> auth_oauth2_token_require (also on cache hits)
 *           -> exchange: shared cache, else a POST subrequest to the
 *              internal token location; nox_exchange_parse
 *           -> Authorization: Bearer <new token> for the upstream
 *           -> NGX_OK / 401 / require's status / 500
 *
 * Caches are shared memory zones (rbtree + LRU queue, as in
 * ngx_http_limit_req_module) keyed by SHA-256: no raw token is ever written
 * to shared memory.  Introspection entries hold the IdP's response (RFC 7662
 * responses do not echo the token); exchange entries hold the new token.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_oauth_core.h"
#include "ngx_oauth_cache.h"


#define NGX_HTTP_OAUTH2_SECRET_MAX        4096
#define NGX_HTTP_OAUTH2_DEFAULT_TTL       300

#define NGX_HTTP_OAUTH2_WWW_OFF           0
#define NGX_HTTP_OAUTH2_WWW_ON            1
#define NGX_HTTP_OAUTH2_WWW_CUSTOM        2

#define NGX_HTTP_OAUTH2_STEP_INTROSPECT   1
#define NGX_HTTP_OAUTH2_STEP_EXCHANGE     2

#define NGX_HTTP_OAUTH2_PHASE_ACCESS      0
#define NGX_HTTP_OAUTH2_PHASE_PREACCESS   1

#define NGX_HTTP_OAUTH2_KIND_INTROSPECT   'i'
#define NGX_HTTP_OAUTH2_KIND_EXCHANGE     'X'   /* value: token, token_type,
                                                 issued_token_type, then
                                                 token_type's length
                                                 (int32); was 'x' with one
                                                 type */



typedef struct {
    ngx_str_t                    client_id;
    ngx_str_t                    client_secret;
    ngx_uint_t                   secret_from_file;
    ngx_str_t                    authorization;  /* "Basic ..." or empty */
    ngx_str_t                    file;           /* of client_id */
    ngx_uint_t                   line;
    ngx_str_t                    secret_file;    /* of the secret */
    ngx_uint_t                   secret_line;
} ngx_http_oauth2_token_main_conf_t;


typedef struct {
    ngx_flag_t                   introspect;
    ngx_str_t                    introspect_endpoint;
    ngx_oauth_cache_conf_t  *introspect_cache;
    ngx_flag_t                   exchange;
    ngx_str_t                    token_endpoint;
    ngx_str_t                    audience;
    ngx_str_t                    scope;
    ngx_oauth_cache_conf_t  *exchange_cache;
    ngx_array_t                 *requires;    /* of require_t */
    ngx_uint_t                   www_mode;
    ngx_http_complex_value_t    *www;         /* NGX_HTTP_OAUTH2_WWW_CUSTOM */
    ngx_str_t                    introspect_file;  /* where "on" was set */
    ngx_uint_t                   introspect_line;
    ngx_str_t                    exchange_file;
    ngx_uint_t                   exchange_line;
    ngx_uint_t                   phase;       /* NGX_HTTP_OAUTH2_PHASE_* */
} ngx_http_oauth2_token_loc_conf_t;


typedef struct {
    ngx_str_t                    token;
    ngx_uint_t                   step;        /* the running subrequest */
    ngx_uint_t                   waiting;
    ngx_uint_t                   done;
    ngx_int_t                    sr_rc;
    ngx_uint_t                   sr_status;
    ngx_str_t                    sr_body;
    ngx_uint_t                   introspected;
    ngx_int_t                    active;      /* -1: not known */
    ngx_str_t                    response;    /* introspection response */
    ngx_uint_t                   required;
    ngx_uint_t                   exchanged;
    ngx_str_t                    new_token;
    ngx_str_t                    new_token_type;
    ngx_str_t                    new_issued_type;
} ngx_http_oauth2_token_ctx_t;


static ngx_int_t ngx_http_oauth2_token_access_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_oauth2_token_preaccess_handler(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_oauth2_token_handler(ngx_http_request_t *r,
    ngx_uint_t phase);
static ngx_int_t ngx_http_oauth2_token_introspect(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf,
    ngx_http_oauth2_token_ctx_t *ctx);
static ngx_int_t ngx_http_oauth2_token_introspect_response(
    ngx_http_request_t *r, ngx_http_oauth2_token_loc_conf_t *olcf,
    ngx_http_oauth2_token_ctx_t *ctx, ngx_str_t *body);
static ngx_int_t ngx_http_oauth2_token_require(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf);
static ngx_int_t ngx_http_oauth2_token_exchange(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf,
    ngx_http_oauth2_token_ctx_t *ctx);
static ngx_int_t ngx_http_oauth2_token_exchange_response(
    ngx_http_request_t *r, ngx_http_oauth2_token_loc_conf_t *olcf,
    ngx_http_oauth2_token_ctx_t *ctx);
static ngx_int_t ngx_http_oauth2_token_set_authorization(
    ngx_http_request_t *r, ngx_http_oauth2_token_ctx_t *ctx);
static ngx_int_t ngx_http_oauth2_token_post(ngx_http_request_t *r,
    ngx_http_oauth2_token_ctx_t *ctx, ngx_str_t *uri, ngx_str_t *body,
    ngx_uint_t step);
static ngx_int_t ngx_http_oauth2_token_post_done(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
static ngx_int_t ngx_http_oauth2_token_idp_status(ngx_http_request_t *r,
    ngx_http_oauth2_token_ctx_t *ctx, const char *what, ngx_str_t *uri);
static ngx_int_t ngx_http_oauth2_token_reject(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf, ngx_uint_t status,
    ngx_uint_t invalid);
static size_t ngx_http_oauth2_token_form_len(ngx_str_t *src);
static ngx_int_t ngx_http_oauth2_token_key(ngx_http_request_t *r,
    u_char kind, ngx_str_t *parts, ngx_uint_t n, u_char *hash);


static ngx_int_t ngx_http_oauth2_token_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_oauth2_token_variable_active(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_oauth2_token_variable_claim(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_oauth2_token_variable_new(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static void *ngx_http_oauth2_token_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_oauth2_token_init_main_conf(ngx_conf_t *cf,
    void *conf);
static void *ngx_http_oauth2_token_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_oauth2_token_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_oauth2_token_init(ngx_conf_t *cf);

static char *ngx_http_oauth2_token_client_id(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_token_secret(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_token_enable(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_token_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_oauth2_token_claim_set(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_token_require_conf(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_token_www_authenticate(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);


static ngx_conf_enum_t  ngx_http_oauth2_token_phases[] = {
    { ngx_string("access"), NGX_HTTP_OAUTH2_PHASE_ACCESS },
    { ngx_string("preaccess"), NGX_HTTP_OAUTH2_PHASE_PREACCESS },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_oauth2_token_commands[] = {

    { ngx_string("auth_oauth2_token_client_id"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_oauth2_token_client_id,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("auth_oauth2_token_client_secret"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_oauth2_token_secret,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("auth_oauth2_token_client_secret_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_oauth2_token_secret,
      NGX_HTTP_MAIN_CONF_OFFSET,
      1,
      NULL },

    { ngx_string("auth_oauth2_token_introspect"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_HTTP_LMT_CONF
                        |NGX_CONF_FLAG,
      ngx_http_oauth2_token_enable,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_token_loc_conf_t, introspect),
      NULL },

    { ngx_string("auth_oauth2_token_introspect_endpoint"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_token_loc_conf_t, introspect_endpoint),
      NULL },

    { ngx_string("auth_oauth2_token_introspect_cache"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_oauth2_token_cache,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_token_loc_conf_t, introspect_cache),
      NULL },

    { ngx_string("auth_oauth2_token_claim_set"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_oauth2_token_claim_set,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("auth_oauth2_token_require"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_HTTP_LMT_CONF
                        |NGX_CONF_1MORE,
      ngx_http_oauth2_token_require_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("auth_oauth2_token_www_authenticate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_HTTP_LMT_CONF
                        |NGX_CONF_TAKE1,
      ngx_http_oauth2_token_www_authenticate,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("auth_oauth2_token_phase"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_token_loc_conf_t, phase),
      &ngx_http_oauth2_token_phases },

    { ngx_string("auth_oauth2_token_exchange"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_HTTP_LMT_CONF
                        |NGX_CONF_FLAG,
      ngx_http_oauth2_token_enable,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_token_loc_conf_t, exchange),
      NULL },

    { ngx_string("auth_oauth2_token_token_endpoint"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_token_loc_conf_t, token_endpoint),
      NULL },

    { ngx_string("auth_oauth2_token_audience"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_token_loc_conf_t, audience),
      NULL },

    { ngx_string("auth_oauth2_token_scope"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_token_loc_conf_t, scope),
      NULL },

    { ngx_string("auth_oauth2_token_exchange_cache"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_oauth2_token_cache,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_token_loc_conf_t, exchange_cache),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_oauth2_token_module_ctx = {
    ngx_http_oauth2_token_add_variables,   /* preconfiguration */
    ngx_http_oauth2_token_init,            /* postconfiguration */

    ngx_http_oauth2_token_create_main_conf, /* create main configuration */
    ngx_http_oauth2_token_init_main_conf,  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_oauth2_token_create_loc_conf, /* create location configuration */
    ngx_http_oauth2_token_merge_loc_conf   /* merge location configuration */
};


ngx_module_t  ngx_http_oauth2_token_module = {
    NGX_MODULE_V1,
    &ngx_http_oauth2_token_module_ctx,     /* module context */
    ngx_http_oauth2_token_commands,        /* module directives */
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


static ngx_str_t  ngx_http_oauth2_token_claims[] = {
    ngx_string("sub"),
    ngx_string("scope"),
    ngx_string("client_id"),
    ngx_string("exp"),
};


static ngx_http_variable_t  ngx_http_oauth2_token_vars[] = {

    { ngx_string("oauth2_token_active"), NULL,
      ngx_http_oauth2_token_variable_active, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("oauth2_token_sub"), NULL,
      ngx_http_oauth2_token_variable_claim,
      (uintptr_t) &ngx_http_oauth2_token_claims[0],
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("oauth2_token_scope"), NULL,
      ngx_http_oauth2_token_variable_claim,
      (uintptr_t) &ngx_http_oauth2_token_claims[1],
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("oauth2_token_client_id"), NULL,
      ngx_http_oauth2_token_variable_claim,
      (uintptr_t) &ngx_http_oauth2_token_claims[2],
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("oauth2_token_exp"), NULL,
      ngx_http_oauth2_token_variable_claim,
      (uintptr_t) &ngx_http_oauth2_token_claims[3],
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("oauth2_token_new_token"), NULL,
      ngx_http_oauth2_token_variable_new, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("oauth2_token_new_token_type"), NULL,
      ngx_http_oauth2_token_variable_new, 1, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("oauth2_token_new_issued_token_type"), NULL,
      ngx_http_oauth2_token_variable_new, 2, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_oauth2_token_form_type =
    ngx_string("application/x-www-form-urlencoded");

#define NGX_HTTP_OAUTH2_INTROSPECT_TAIL  "&token_type_hint=access_token"
#define NGX_HTTP_OAUTH2_EXCHANGE_HEAD                                         \
    "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"   \
    "&subject_token="
#define NGX_HTTP_OAUTH2_EXCHANGE_TYPE                                         \
    "&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3A"        \
    "access_token"


/* ---- request handling -------------------------------------------------- */

static ngx_int_t
ngx_http_oauth2_token_access_handler(ngx_http_request_t *r)
{
    return ngx_http_oauth2_token_handler(r, NGX_HTTP_OAUTH2_PHASE_ACCESS);
}


static ngx_int_t
ngx_http_oauth2_token_preaccess_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    rc = ngx_http_oauth2_token_handler(r, NGX_HTTP_OAUTH2_PHASE_PREACCESS);

    /* NGX_OK would skip the other preaccess handlers (limit_req ...) */

    return (rc == NGX_OK) ? NGX_DECLINED : rc;
}


static ngx_int_t
ngx_http_oauth2_token_handler(ngx_http_request_t *r, ngx_uint_t phase)
{
    ngx_int_t                          rc;
    ngx_http_oauth2_token_ctx_t       *ctx;
    ngx_http_oauth2_token_loc_conf_t  *olcf;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    olcf = ngx_http_get_module_loc_conf(r, ngx_http_oauth2_token_module);

    if (!olcf->introspect && !olcf->exchange) {
        return NGX_DECLINED;
    }

    if (olcf->phase != phase) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "auth_oauth2_token: ignore phase: %s",
                       phase == NGX_HTTP_OAUTH2_PHASE_ACCESS
                       ? "ACCESS" : "PREACCESS");
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_oauth2_token_module);

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_oauth2_token_ctx_t));
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /*
         * set by ngx_pcalloc():
         *
         *     ctx->waiting = 0;
         *     ctx->introspected = 0;
         *     ctx->required = 0;
         *     ctx->exchanged = 0;
         *     ctx->response = { 0, NULL };
         *     ctx->new_token = { 0, NULL };
         */

        ctx->active = -1;

        ngx_http_set_ctx(r, ctx, ngx_http_oauth2_token_module);

        if (!ngx_oauth_managed_ready) {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "auth_oauth2_token: the managed library is not "
                          "loaded in this worker");
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_oauth_bearer_token(r, &ctx->token) != NGX_OK) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "auth_oauth2_token: no bearer token in the "
                          "request");
            return ngx_http_oauth2_token_reject(r, olcf,
                                                NGX_HTTP_UNAUTHORIZED, 0);
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "auth_oauth2_token: bearer token of %uz bytes",
                       ctx->token.len);
    }

    if (ctx->waiting) {
        if (!ctx->done) {
            return NGX_AGAIN;
        }

        ctx->waiting = 0;

        if (ctx->step == NGX_HTTP_OAUTH2_STEP_INTROSPECT) {
            rc = ngx_http_oauth2_token_idp_status(r, ctx, "introspection",
                                                  &olcf->introspect_endpoint);
            if (rc != NGX_OK) {
                return rc;
            }

            rc = ngx_http_oauth2_token_introspect_response(r, olcf, ctx,
                                                           &ctx->sr_body);

        } else {
            rc = ngx_http_oauth2_token_idp_status(r, ctx, "token exchange",
                                                  &olcf->token_endpoint);
            if (rc != NGX_OK) {
                return rc;
            }

            rc = ngx_http_oauth2_token_exchange_response(r, olcf, ctx);
        }

        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (olcf->introspect) {
        if (!ctx->introspected) {
            /* NGX_OK: answered from the cache */

            rc = ngx_http_oauth2_token_introspect(r, olcf, ctx);
            if (rc != NGX_OK) {
                return rc;
            }
        }

        if (!ctx->required) {
            rc = ngx_http_oauth2_token_require(r, olcf);
            if (rc != NGX_OK) {
                return rc;
            }

            ctx->required = 1;
        }
    }

    if (olcf->exchange && !ctx->exchanged) {
        /* NGX_OK: answered from the cache */

        return ngx_http_oauth2_token_exchange(r, olcf, ctx);
    }

    return NGX_OK;
}


/* Authorization: Bearer <token>; the scheme is case-insensitive */



static ngx_int_t
ngx_http_oauth2_token_introspect(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf, ngx_http_oauth2_token_ctx_t *ctx)
{
    u_char     *p, hash[NOX_SHA256_LEN];
    ngx_str_t   body, parts[2], cached;

    if (olcf->introspect_cache) {
        parts[0] = olcf->introspect_endpoint;
        parts[1] = ctx->token;

        if (ngx_http_oauth2_token_key(r, NGX_HTTP_OAUTH2_KIND_INTROSPECT,
                                      parts, 2, hash)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_oauth_cache_get(r, olcf->introspect_cache,
                                NGX_HTTP_OAUTH2_KIND_INTROSPECT, hash,
                                &cached, NULL)
            == NGX_OK)
        {
            /* only active, well-formed responses are stored: no re-parse */

            ctx->introspected = 1;
            ctx->active = 1;
            ctx->response = cached;

            return NGX_OK;
        }
    }

    body.len = sizeof("token=") - 1
               + ngx_http_oauth2_token_form_len(&ctx->token)
               + sizeof(NGX_HTTP_OAUTH2_INTROSPECT_TAIL) - 1;

    body.data = ngx_pnalloc(r->pool, body.len);
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(body.data, "token=", sizeof("token=") - 1);
    p = ngx_oauth_form_encode(p, &ctx->token);
    p = ngx_cpymem(p, NGX_HTTP_OAUTH2_INTROSPECT_TAIL,
                   sizeof(NGX_HTTP_OAUTH2_INTROSPECT_TAIL) - 1);

    body.len = p - body.data;

    return ngx_http_oauth2_token_post(r, ctx, &olcf->introspect_endpoint,
                                      &body, NGX_HTTP_OAUTH2_STEP_INTROSPECT);
}


/*
 * A 200 response from the IdP.  Active with an exp that has passed is
 * inactive (NOX_EXPIRED): a token is never accepted after its exp, from
 * the IdP or from the cache (kjdev/nginx-auth-oauth2-token reads only
 * "active").  The cache keeps an answer until min(max_ttl, exp - now).
 */

static ngx_int_t
ngx_http_oauth2_token_introspect_response(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf, ngx_http_oauth2_token_ctx_t *ctx,
    ngx_str_t *body)
{
    u_char     hash[NOX_SHA256_LEN];
    int32_t    rc;
    int64_t    expires_in;
    time_t     ttl;
    ngx_str_t  parts[2];

    if (body->len > NOX_MAX_IDP_RESPONSE) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth_oauth2_token: introspection \"%V\" returned "
                      "%uz bytes, more than %d", &olcf->introspect_endpoint,
                      body->len, NOX_MAX_IDP_RESPONSE);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    expires_in = 0;
    rc = ngx_oauth_managed.introspect_parse(body->data, (int32_t) body->len,
                                            (int64_t) ngx_time(),
                                            &expires_in);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "auth_oauth2_token: introspection response of %uz bytes: "
                   "status %D", body->len, rc);

    if (rc == NOX_RESPONSE_INACTIVE || rc == NOX_EXPIRED) {
        ctx->introspected = 1;
        ctx->active = 0;

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "auth_oauth2_token: rejected: token is not active%s "
                      "(token %uz bytes)",
                      rc == NOX_EXPIRED ? ": active, but its exp has passed"
                                        : "",
                      ctx->token.len);

        return ngx_http_oauth2_token_reject(r, olcf, NGX_HTTP_UNAUTHORIZED,
                                            1);
    }

    if (rc != NOX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth_oauth2_token: introspection \"%V\" returned an "
                      "unusable response of %uz bytes: %s",
                      &olcf->introspect_endpoint, body->len,
                      rc == NOX_TIME_INVALID
                      ? "\"exp\" is not a number of seconds within 64 bits"
                      : ngx_oauth_status_text(rc));
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->introspected = 1;
    ctx->active = 1;
    ctx->response = *body;

    if (olcf->introspect_cache == NULL) {
        return NGX_OK;
    }

    /* TTL: min(max_ttl, exp - now); max_ttl without exp */

    ttl = olcf->introspect_cache->max_ttl;

    if (expires_in > 0 && expires_in < (int64_t) ttl) {
        ttl = (time_t) expires_in;
    }

    parts[0] = olcf->introspect_endpoint;
    parts[1] = ctx->token;

    if (ngx_http_oauth2_token_key(r, NGX_HTTP_OAUTH2_KIND_INTROSPECT, parts,
                                  2, hash)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_oauth_cache_put(r, olcf->introspect_cache,
                        NGX_HTTP_OAUTH2_KIND_INTROSPECT, hash, body, 0, ttl);

    return NGX_OK;
}


static ngx_int_t
ngx_http_oauth2_token_require(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf)
{
    ngx_int_t    rc;
    ngx_str_t   *failed;
    ngx_uint_t   status;

    rc = ngx_oauth_require_check(r, olcf->requires, &status, &failed);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "auth_oauth2_token: rejected: "
                      "auth_oauth2_token_require \"%V\" is empty or \"0\"",
                      failed);

        return ngx_http_oauth2_token_reject(r, olcf, status, 1);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_oauth2_token_exchange(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf, ngx_http_oauth2_token_ctx_t *ctx)
{
    u_char     *p, hash[NOX_SHA256_LEN];
    int32_t     aux, type_len;
    ngx_str_t   body, parts[4], cached;

    if (olcf->exchange_cache) {
        parts[0] = olcf->token_endpoint;
        parts[1] = ctx->token;
        parts[2] = olcf->audience;
        parts[3] = olcf->scope;

        if (ngx_http_oauth2_token_key(r, NGX_HTTP_OAUTH2_KIND_EXCHANGE,
                                      parts, 4, hash)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_oauth_cache_get(r, olcf->exchange_cache,
                                NGX_HTTP_OAUTH2_KIND_EXCHANGE, hash, &cached,
                                &aux)
            == NGX_OK
            && aux > 0
            && (size_t) aux + sizeof(int32_t) <= cached.len)
        {
            cached.len -= sizeof(int32_t);
            ngx_memcpy(&type_len, cached.data + cached.len, sizeof(int32_t));

            if (type_len >= 0 && (size_t) aux + type_len <= cached.len) {
                ctx->new_token.data = cached.data;
                ctx->new_token.len = aux;
                ctx->new_token_type.data = cached.data + aux;
                ctx->new_token_type.len = type_len;
                ctx->new_issued_type.data = cached.data + aux + type_len;
                ctx->new_issued_type.len = cached.len - aux - type_len;
                ctx->exchanged = 1;

                return ngx_http_oauth2_token_set_authorization(r, ctx);
            }
        }
    }

    body.len = sizeof(NGX_HTTP_OAUTH2_EXCHANGE_HEAD) - 1
               + ngx_http_oauth2_token_form_len(&ctx->token)
               + sizeof(NGX_HTTP_OAUTH2_EXCHANGE_TYPE) - 1
               + sizeof("&audience=") - 1
               + ngx_http_oauth2_token_form_len(&olcf->audience)
               + sizeof("&scope=") - 1
               + ngx_http_oauth2_token_form_len(&olcf->scope);

    body.data = ngx_pnalloc(r->pool, body.len);
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(body.data, NGX_HTTP_OAUTH2_EXCHANGE_HEAD,
                   sizeof(NGX_HTTP_OAUTH2_EXCHANGE_HEAD) - 1);
    p = ngx_oauth_form_encode(p, &ctx->token);
    p = ngx_cpymem(p, NGX_HTTP_OAUTH2_EXCHANGE_TYPE,
                   sizeof(NGX_HTTP_OAUTH2_EXCHANGE_TYPE) - 1);

    if (olcf->audience.len) {
        p = ngx_cpymem(p, "&audience=", sizeof("&audience=") - 1);
        p = ngx_oauth_form_encode(p, &olcf->audience);
    }

    if (olcf->scope.len) {
        p = ngx_cpymem(p, "&scope=", sizeof("&scope=") - 1);
        p = ngx_oauth_form_encode(p, &olcf->scope);
    }

    body.len = p - body.data;

    return ngx_http_oauth2_token_post(r, ctx, &olcf->token_endpoint, &body,
                                      NGX_HTTP_OAUTH2_STEP_EXCHANGE);
}


static ngx_int_t
ngx_http_oauth2_token_exchange_response(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf, ngx_http_oauth2_token_ctx_t *ctx)
{
    u_char     *out, hash[NOX_SHA256_LEN];
    time_t      ttl;
    int32_t     rc, token_len, type_len, issued_len;
    int64_t     expires_in;
    ngx_str_t   parts[4], value;

    if (ctx->sr_body.len > NOX_MAX_IDP_RESPONSE) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth_oauth2_token: token exchange \"%V\" returned "
                      "%uz bytes, more than %d", &olcf->token_endpoint,
                      ctx->sr_body.len, NOX_MAX_IDP_RESPONSE);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* room for the int32 the cache entry ends with */

    out = ngx_pnalloc(r->pool, ctx->sr_body.len + 1 + sizeof(int32_t));
    if (out == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    token_len = -1;
    type_len = -1;
    issued_len = -1;
    expires_in = -1;

    rc = ngx_oauth_managed.exchange_parse(ctx->sr_body.data,
                                          (int32_t) ctx->sr_body.len, out,
                                          (int32_t) ctx->sr_body.len + 1,
                                          &token_len, &type_len, &issued_len,
                                          &expires_in);

    if (rc != NOX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth_oauth2_token: token exchange \"%V\" returned an "
                      "unusable response of %uz bytes: %s",
                      &olcf->token_endpoint, ctx->sr_body.len,
                      ngx_oauth_status_text(rc));
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (type_len < 0) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "auth_oauth2_token: token exchange \"%V\" returned no "
                      "token_type", &olcf->token_endpoint);
        type_len = 0;
    }

    if (issued_len < 0) {
        issued_len = 0;
    }

    ctx->new_token.data = out;
    ctx->new_token.len = token_len;
    ctx->new_token_type.data = out + token_len;
    ctx->new_token_type.len = type_len;
    ctx->new_issued_type.data = out + token_len + type_len;
    ctx->new_issued_type.len = issued_len;
    ctx->exchanged = 1;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "auth_oauth2_token: exchanged for a token of %D bytes, "
                   "expires_in %L", token_len, expires_in);

    /*
     * TTL: min(max_ttl, expires_in), expires_in rounded down (0: the token
     * is used for this request but not stored); max_ttl without one
     */

    if (olcf->exchange_cache) {
        ttl = olcf->exchange_cache->max_ttl;

        if (expires_in >= 0 && expires_in < (int64_t) ttl) {
            ttl = (time_t) expires_in;
        }

        parts[0] = olcf->token_endpoint;
        parts[1] = ctx->token;
        parts[2] = olcf->audience;
        parts[3] = olcf->scope;

        if (ngx_http_oauth2_token_key(r, NGX_HTTP_OAUTH2_KIND_EXCHANGE,
                                      parts, 4, hash)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        value.data = out;
        value.len = token_len + type_len + issued_len;

        ngx_memcpy(out + value.len, &type_len, sizeof(int32_t));
        value.len += sizeof(int32_t);

        ngx_oauth_cache_put(r, olcf->exchange_cache,
                            NGX_HTTP_OAUTH2_KIND_EXCHANGE, hash, &value,
                            token_len, ttl);
    }

    return ngx_http_oauth2_token_set_authorization(r, ctx);
}


/* the upstream sees Authorization: Bearer <new token> */

static ngx_int_t
ngx_http_oauth2_token_set_authorization(ngx_http_request_t *r,
    ngx_http_oauth2_token_ctx_t *ctx)
{
    static ngx_oauth_place_t  bearer = {
        NGX_OAUTH_PLACE_BEARER, ngx_string("Authorization")
    };

    if (ngx_oauth_place_set(r, &bearer, &ctx->new_token) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_oauth2_token_post(ngx_http_request_t *r,
    ngx_http_oauth2_token_ctx_t *ctx, ngx_str_t *uri, ngx_str_t *body,
    ngx_uint_t step)
{
    ngx_http_request_t                 *sr;
    ngx_http_post_subrequest_t         *ps;
    ngx_http_oauth2_token_main_conf_t  *omcf;

    omcf = ngx_http_get_module_main_conf(r, ngx_http_oauth2_token_module);

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ps->handler = ngx_http_oauth2_token_post_done;
    ps->data = ctx;

    ctx->step = step;
    ctx->waiting = 1;
    ctx->done = 0;

    if (ngx_oauth_subrequest_post(r, uri, ps,
                                  &ngx_http_oauth2_token_form_type,
                                  &omcf->authorization, body, &sr)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "auth_oauth2_token: POST \"%V\", body %uz bytes",
                   uri, body->len);

    return NGX_AGAIN;
}


/* only records facts: the decision is made back in the handler */

static ngx_int_t
ngx_http_oauth2_token_post_done(ngx_http_request_t *r, void *data,
    ngx_int_t rc)
{
    ngx_http_oauth2_token_ctx_t  *ctx = data;

    ctx->done = 1;
    ctx->sr_status = r->headers_out.status;
    ctx->sr_rc = ngx_oauth_subrequest_done(r, rc, &ctx->sr_body);

    /* NGX_OK whatever happened: an error here terminates the main request */

    return NGX_OK;
}


static ngx_int_t
ngx_http_oauth2_token_idp_status(ngx_http_request_t *r,
    ngx_http_oauth2_token_ctx_t *ctx, const char *what, ngx_str_t *uri)
{
    if (ctx->sr_rc != NGX_OK || ctx->sr_status != NGX_HTTP_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth_oauth2_token: %s \"%V\" failed: rc %i, "
                      "status %ui", what, uri, ctx->sr_rc, ctx->sr_status);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->sr_body.len == 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth_oauth2_token: %s \"%V\" returned an empty "
                      "response", what, uri);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_oauth2_token_reject(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf, ngx_uint_t status,
    ngx_uint_t invalid)
{
    ngx_str_t         value;
    ngx_table_elt_t  *h;

    if (status != NGX_HTTP_UNAUTHORIZED
        || olcf->www_mode == NGX_HTTP_OAUTH2_WWW_OFF)
    {
        return status;
    }

    if (olcf->www_mode == NGX_HTTP_OAUTH2_WWW_CUSTOM) {
        if (ngx_http_complex_value(r, olcf->www, &value) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (value.len == 0) {
            return status;
        }

    } else {
        return ngx_oauth_challenge(r, status, invalid);
    }

    h = ngx_oauth_header_add(r->pool, &r->headers_out.headers,
                             "WWW-Authenticate", &value);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.www_authenticate = h;

    return status;
}


/* application/x-www-form-urlencoded (RFC 6749 appendix B) */

static size_t
ngx_http_oauth2_token_form_len(ngx_str_t *src)
{
    return src->len * 3;
}




/* SHA-256 over kind and the length-prefixed parts */

static ngx_int_t
ngx_http_oauth2_token_key(ngx_http_request_t *r, u_char kind,
    ngx_str_t *parts, ngx_uint_t n, u_char *hash)
{
    u_char      *p, *key;
    size_t       len;
    int32_t      rc;
    ngx_uint_t   i;

    len = 2;
    for (i = 0; i < n; i++) {
        len += NGX_SIZE_T_LEN + 2 + parts[i].len;
    }

    key = ngx_pnalloc(r->pool, len);
    if (key == NULL) {
        return NGX_ERROR;
    }

    p = key;
    *p++ = kind;
    *p++ = '|';

    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, "%uz:%V|", parts[i].len, &parts[i]);
    }

    rc = ngx_oauth_managed.sha256(key, (int32_t) (p - key), hash,
                                  NOX_SHA256_LEN);

    /* the key holds the raw token: do not leave it in the pool */

    ngx_explicit_memzero(key, p - key);

    if (rc != NOX_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "auth_oauth2_token: nox_sha256 failed: %s",
                      ngx_oauth_status_text(rc));
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* ---- variables --------------------------------------------------------- */

static ngx_int_t
ngx_http_oauth2_token_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_oauth2_token_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_oauth2_token_variable_active(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_oauth2_token_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_oauth2_token_module);

    if (ctx == NULL || ctx->active < 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = (u_char *) (ctx->active ? "1" : "0");
    v->len = 1;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* a member of the introspection response (active: true only) */

static ngx_int_t
ngx_http_oauth2_token_variable_claim(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t  *name = (ngx_str_t *) data;

    ngx_int_t                     rc;
    ngx_str_t                     value;
    ngx_http_oauth2_token_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_oauth2_token_module);

    if (ctx == NULL || ctx->active != 1 || !ngx_oauth_managed_ready) {
        v->not_found = 1;
        return NGX_OK;
    }

    rc = ngx_oauth_json_get(r, &ctx->response, name, NOX_PATH_NAME, NULL,
                            NULL, &value);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        v->not_found = 1;
        return NGX_OK;
    }

    return ngx_oauth_variable_set(r, v, &value);
}


static ngx_int_t
ngx_http_oauth2_token_variable_new(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                    *value;
    ngx_http_oauth2_token_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_oauth2_token_module);

    if (ctx == NULL || !ctx->exchanged) {
        v->not_found = 1;
        return NGX_OK;
    }

    value = (data == 2) ? &ctx->new_issued_type
            : (data == 1) ? &ctx->new_token_type : &ctx->new_token;

    return ngx_oauth_variable_set(r, v, value);
}


/* ---- configuration ----------------------------------------------------- */

static void *
ngx_http_oauth2_token_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_oauth2_token_main_conf_t  *omcf;

    /*
     * set by ngx_pcalloc():
     *
     *     omcf->client_id = { 0, NULL };
     *     omcf->client_secret = { 0, NULL };
     *     omcf->secret_from_file = 0;
     *     omcf->authorization = { 0, NULL };
     *     omcf->secret_file = { 0, NULL };
     */

    omcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_oauth2_token_main_conf_t));
    if (omcf == NULL) {
        return NULL;
    }

    return omcf;
}


/* Authorization: Basic base64(form(id) ":" form(secret)), RFC 6749 2.3.1 */

static char *
ngx_http_oauth2_token_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_oauth2_token_main_conf_t *omcf = conf;

    u_char     *p;
    ngx_str_t   plain, encoded;

    if (omcf->client_id.data == NULL && omcf->client_secret.data == NULL) {
        return NGX_CONF_OK;
    }

    if (omcf->client_id.data == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"auth_oauth2_token_client_secret%s\" needs "
                      "\"auth_oauth2_token_client_id\" in %V:%ui",
                      omcf->secret_from_file ? "_file" : "",
                      &omcf->secret_file, omcf->secret_line);
        return NGX_CONF_ERROR;
    }

    if (omcf->client_secret.data == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"auth_oauth2_token_client_id\" needs "
                      "\"auth_oauth2_token_client_secret\" or "
                      "\"auth_oauth2_token_client_secret_file\" in %V:%ui",
                      &omcf->file, omcf->line);
        return NGX_CONF_ERROR;
    }

    plain.len = ngx_http_oauth2_token_form_len(&omcf->client_id) + 1
                + ngx_http_oauth2_token_form_len(&omcf->client_secret);

    plain.data = ngx_pnalloc(cf->pool, plain.len);
    if (plain.data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_oauth_form_encode(plain.data, &omcf->client_id);
    *p++ = ':';
    p = ngx_oauth_form_encode(p, &omcf->client_secret);
    plain.len = p - plain.data;

    p = ngx_pnalloc(cf->pool, sizeof("Basic ") - 1
                              + ngx_base64_encoded_length(plain.len));
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    omcf->authorization.data = p;

    encoded.data = ngx_cpymem(p, "Basic ", sizeof("Basic ") - 1);
    ngx_encode_base64(&encoded, &plain);

    omcf->authorization.len = sizeof("Basic ") - 1 + encoded.len;

    ngx_explicit_memzero(plain.data, plain.len);

    return NGX_CONF_OK;
}


static void *
ngx_http_oauth2_token_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_oauth2_token_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_oauth2_token_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->introspect_endpoint = { 0, NULL };
     *     conf->token_endpoint = { 0, NULL };
     *     conf->audience = { 0, NULL };
     *     conf->scope = { 0, NULL };
     *     conf->requires = NULL;
     *     conf->www = NULL;
     *     conf->introspect_file = { 0, NULL };
     *     conf->exchange_file = { 0, NULL };
     */

    conf->introspect = NGX_CONF_UNSET;
    conf->introspect_cache = NGX_CONF_UNSET_PTR;
    conf->exchange = NGX_CONF_UNSET;
    conf->exchange_cache = NGX_CONF_UNSET_PTR;
    conf->www_mode = NGX_CONF_UNSET_UINT;
    conf->phase = NGX_CONF_UNSET_UINT;

    return conf;
}


static char *
ngx_http_oauth2_token_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_oauth2_token_loc_conf_t *prev = parent;
    ngx_http_oauth2_token_loc_conf_t *conf = child;

    if (conf->introspect == NGX_CONF_UNSET) {
        conf->introspect_file = prev->introspect_file;
        conf->introspect_line = prev->introspect_line;
    }

    if (conf->exchange == NGX_CONF_UNSET) {
        conf->exchange_file = prev->exchange_file;
        conf->exchange_line = prev->exchange_line;
    }

    ngx_conf_merge_value(conf->introspect, prev->introspect, 0);
    ngx_conf_merge_str_value(conf->introspect_endpoint,
                             prev->introspect_endpoint, "");
    ngx_conf_merge_ptr_value(conf->introspect_cache, prev->introspect_cache,
                             NULL);
    ngx_conf_merge_value(conf->exchange, prev->exchange, 0);
    ngx_conf_merge_str_value(conf->token_endpoint, prev->token_endpoint, "");
    ngx_conf_merge_str_value(conf->audience, prev->audience, "");
    ngx_conf_merge_str_value(conf->scope, prev->scope, "");
    ngx_conf_merge_ptr_value(conf->exchange_cache, prev->exchange_cache,
                             NULL);

    /* as auth_jwt_require: the parent's checks come first, then ours */

    if (ngx_oauth_merge_array(cf, &conf->requires, prev->requires,
                              sizeof(ngx_oauth_require_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    ngx_conf_merge_uint_value(conf->phase, prev->phase,
                              NGX_HTTP_OAUTH2_PHASE_ACCESS);

    if (conf->www_mode == NGX_CONF_UNSET_UINT) {
        conf->www_mode = (prev->www_mode == NGX_CONF_UNSET_UINT)
                         ? NGX_HTTP_OAUTH2_WWW_ON : prev->www_mode;
        conf->www = prev->www;
    }

    if (conf->introspect && conf->introspect_endpoint.len == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"auth_oauth2_token_introspect\" is on without "
                      "\"auth_oauth2_token_introspect_endpoint\" in %V:%ui",
                      &conf->introspect_file, conf->introspect_line);
        return NGX_CONF_ERROR;
    }

    if (conf->exchange && conf->token_endpoint.len == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"auth_oauth2_token_exchange\" is on without "
                      "\"auth_oauth2_token_token_endpoint\" in %V:%ui",
                      &conf->exchange_file, conf->exchange_line);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_oauth2_token_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_oauth2_token_access_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_oauth2_token_preaccess_handler;

    return NGX_OK;
}


static char *
ngx_http_oauth2_token_client_id(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_token_main_conf_t *omcf = conf;

    ngx_str_t  *value;

    if (omcf->client_id.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "is empty";
    }

    omcf->client_id = value[1];
    omcf->file = cf->conf_file->file.name;
    omcf->line = cf->conf_file->line;

    return NGX_CONF_OK;
}


/* cmd->offset: 0 the secret itself, 1 a file holding it */

static char *
ngx_http_oauth2_token_secret(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_oauth2_token_main_conf_t *omcf = conf;

    ngx_str_t  *value, name, content;

    if (omcf->client_secret.data) {
        if (omcf->secret_from_file != cmd->offset) {
            return "cannot be combined with the other client secret "
                   "directive";
        }

        return "is duplicate";
    }

    value = cf->args->elts;

    if (cmd->offset == 0) {
        content = value[1];

    } else {
        name = value[1];

        if (ngx_oauth_read_secret(cf, &name, NGX_HTTP_OAUTH2_SECRET_MAX,
                                  &content)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    if (content.len == 0) {
        return "gives an empty secret";
    }

    omcf->client_secret = content;
    omcf->secret_from_file = cmd->offset;
    omcf->secret_file = cf->conf_file->file.name;
    omcf->secret_line = cf->conf_file->line;

    return NGX_CONF_OK;
}


/* on|off, remembering where "on" was set for the endpoint check */

static char *
ngx_http_oauth2_token_enable(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_oauth2_token_loc_conf_t *olcf = conf;

    char  *rv;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (cmd->offset == offsetof(ngx_http_oauth2_token_loc_conf_t, introspect))
    {
        olcf->introspect_file = cf->conf_file->file.name;
        olcf->introspect_line = cf->conf_file->line;

        if (olcf->introspect) {
            ngx_oauth_use(cf);
        }

    } else {
        olcf->exchange_file = cf->conf_file->file.name;
        olcf->exchange_line = cf->conf_file->line;

        if (olcf->exchange) {
            ngx_oauth_use(cf);
        }
    }

    return NGX_CONF_OK;
}


/* zone=name:size [max_ttl=time] */

static char *
ngx_http_oauth2_token_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_oauth_cache_conf_t  **field;

    field = (ngx_oauth_cache_conf_t **) (p + cmd->offset);

    if (*field != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    return ngx_oauth_cache_conf(cf, &ngx_http_oauth2_token_module,
                                "auth_oauth2_token",
                                NGX_HTTP_OAUTH2_DEFAULT_TTL, field);
}


static char *
ngx_http_oauth2_token_claim_set(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_str_t            *value, *name;
    ngx_http_variable_t  *v;

    value = cf->args->elts;

    if (value[1].len < 2 || value[1].data[0] != '$') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": invalid variable name \"%V\"",
                           &value[0], &value[1]);
        return NGX_CONF_ERROR;
    }

    if (value[2].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%V\": empty claim name",
                           &value[0]);
        return NGX_CONF_ERROR;
    }

    value[1].len--;
    value[1].data++;

    v = ngx_http_add_variable(cf, &value[1], NGX_HTTP_VAR_CHANGEABLE
                                             |NGX_HTTP_VAR_NOCACHEABLE);
    if (v == NULL) {
        return NGX_CONF_ERROR;
    }

    name = ngx_palloc(cf->pool, sizeof(ngx_str_t));
    if (name == NULL) {
        return NGX_CONF_ERROR;
    }

    *name = value[2];

    v->get_handler = ngx_http_oauth2_token_variable_claim;
    v->data = (uintptr_t) name;

    return NGX_CONF_OK;
}


static char *
ngx_http_oauth2_token_require_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_token_loc_conf_t *olcf = conf;

    return ngx_oauth_require_conf(cf, &olcf->requires);
}


static char *
ngx_http_oauth2_token_www_authenticate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_token_loc_conf_t *olcf = conf;

    ngx_str_t  *value;

    if (olcf->www_mode != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "on") == 0) {
        olcf->www_mode = NGX_HTTP_OAUTH2_WWW_ON;
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value[1].data, "off") == 0) {
        olcf->www_mode = NGX_HTTP_OAUTH2_WWW_OFF;
        return NGX_CONF_OK;
    }

    olcf->www = ngx_oauth_complex_value(cf, &value[1]);
    if (olcf->www == NULL) {
        return NGX_CONF_ERROR;
    }

    olcf->www_mode = NGX_HTTP_OAUTH2_WWW_CUSTOM;

    return NGX_CONF_OK;
}
