/*
 * NginxOAuth shim: OAuth 2.0 token introspection (RFC 7662) and token
 * exchange (RFC 8693) through nginx subrequests, the auth_oauth2_token_*
 * directives and the $oauth2_token_* variables (drop-in for
 * kjdev/nginx-auth-oauth2-token).
 *
 * The request flow (ARCHITECTURE.md):
 *   handler -> bearer token from Authorization
 *           -> introspection: shared cache on the single-flight (one
 *              request per key in any worker asks, the others wait on a
 *              timer), else a POST subrequest to the internal
 *              introspection location; nox_introspect_parse
 *           -> auth_oauth2_token_require (also on cache hits)
 *           -> exchange: the same with the token location;
 *              nox_token_error, then nox_exchange_parse
 *           -> Authorization: Bearer <new token> for the upstream
 *           -> NGX_OK / 401 / 403 / require's status / 502 (IdP answer
 *              unusable) / 503 + Retry-After (IdP unreachable) / 500;
 *              an expired entry (stale_if_error) instead of 502 / 503
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
#include "ngx_oauth_metrics.h"
#include "ngx_oauth_hybrid.h"


#define NGX_HTTP_OAUTH2_SECRET_MAX        4096
#define NGX_HTTP_OAUTH2_DEFAULT_TTL       300

#define NGX_HTTP_OAUTH2_WWW_OFF           0
#define NGX_HTTP_OAUTH2_WWW_ON            1
#define NGX_HTTP_OAUTH2_WWW_CUSTOM        2

#define NGX_HTTP_OAUTH2_STEP_NONE         0
#define NGX_HTTP_OAUTH2_STEP_INTROSPECT   1
#define NGX_HTTP_OAUTH2_STEP_EXCHANGE     2

/* the state of a step */
#define NGX_HTTP_OAUTH2_LOOKUP            0   /* cache, or wait for a leader */
#define NGX_HTTP_OAUTH2_SUBREQUEST        1   /* this request asks the IdP */
#define NGX_HTTP_OAUTH2_DONE              2

/* how long a leader's pending marker lives if the leader never ends */
#define NGX_HTTP_OAUTH2_LEAD_TTL          60

/* aux of an introspection entry: an "active": false answer (negative_ttl) */
#define NGX_HTTP_OAUTH2_INACTIVE          1

#define NGX_HTTP_OAUTH2_AUTH_BASIC        0   /* client_secret_basic */
#define NGX_HTTP_OAUTH2_AUTH_POST         1
#define NGX_HTTP_OAUTH2_AUTH_SECRET_JWT   2
#define NGX_HTTP_OAUTH2_AUTH_KEY_JWT      3
#define NGX_HTTP_OAUTH2_AUTH_TLS          4
#define NGX_HTTP_OAUTH2_AUTH_NONE         5

#define NGX_HTTP_OAUTH2_NEEDS_ID          0x1
#define NGX_HTTP_OAUTH2_NEEDS_SECRET      0x2
#define NGX_HTTP_OAUTH2_NEEDS_KEY         0x4
#define NGX_HTTP_OAUTH2_NEEDS_AUD         0x8

#define NGX_HTTP_OAUTH2_KEY_MAX           (64 * 1024)

/* bytes of an IdP request beyond the token and the settings (a guess) */
#define NGX_HTTP_OAUTH2_REQUEST_SLACK     1024

#define NGX_HTTP_OAUTH2_PHASE_ACCESS      0
#define NGX_HTTP_OAUTH2_PHASE_PREACCESS   1

#define NGX_HTTP_OAUTH2_KIND_INTROSPECT   'i'
#define NGX_HTTP_OAUTH2_KIND_EXCHANGE     'X'   /* value: token, token_type,
                                                 issued_token_type, then
                                                 token_type's length
                                                 (int32); was 'x' with one
                                                 type */



/*
 * One kind of IdP call (introspection or exchange) of a location: the
 * setting pairs of the managed core (nox_sts_create, type "introspect" or
 * "otx"), which builds the request body, the client authentication and
 * the cache key.  The handle is built once per worker, on first use.
 */

typedef struct {
    nox_buf_t                   *settings;  /* name, value, name, ... */
    ngx_http_complex_value_t   **cvs;       /* per pair, NULL: constant */
    ngx_uint_t                   n;         /* pairs */
    ngx_str_t                    file;      /* of the location */
    ngx_uint_t                   line;
    int64_t                      handle;    /* per worker, lazily */
    ngx_int_t                    handle_state;  /* 0, 1 ok, -1 failed */
} ngx_http_oauth2_token_call_t;


/* a setting pair while the call is built */

typedef struct {
    ngx_str_t                    name;
    ngx_str_t                    value;
    ngx_http_complex_value_t    *cv;        /* NULL: no variables */
} ngx_http_oauth2_token_opt_t;


typedef struct {
    ngx_flag_t                   introspect;
    ngx_str_t                    introspect_endpoint;
    ngx_oauth_cache_conf_t      *introspect_cache;
    ngx_flag_t                   exchange;
    ngx_str_t                    token_endpoint;
    ngx_http_complex_value_t    *audience;
    ngx_http_complex_value_t    *scope;
    ngx_array_t                 *resources;   /* of ngx_http_complex_value_t */
    ngx_http_complex_value_t    *requested_type;
    ngx_http_complex_value_t    *subject_type;
    ngx_http_complex_value_t    *actor_token;
    ngx_http_complex_value_t    *actor_type;
    ngx_str_t                    issued_type; /* required issued_token_type */
    ngx_oauth_cache_conf_t      *exchange_cache;

    ngx_str_t                    client_id;   /* data NULL: not set */
    ngx_str_t                    client_secret;
    ngx_int_t                    secret_from_file;
    ngx_str_t                    id_file;     /* of client_id */
    ngx_uint_t                   id_line;
    ngx_str_t                    secret_file; /* of the secret */
    ngx_uint_t                   secret_line;
    ngx_uint_t                   auth;        /* NGX_HTTP_OAUTH2_AUTH_* */
    ngx_str_t                    auth_key;    /* private JWK */
    ngx_str_t                    auth_kid;
    ngx_str_t                    auth_alg;
    ngx_str_t                    auth_aud;
    ngx_str_t                    auth_file;
    ngx_uint_t                   auth_line;

    ngx_http_oauth2_token_call_t *introspect_call;
    ngx_http_oauth2_token_call_t *exchange_call;

    ngx_str_t                    resource_metadata;
    ngx_http_complex_value_t    *challenge_scope;
    ngx_flag_t                   nested;
    ngx_str_t                    delimiter;
    ngx_str_t                    quote;
    ngx_str_t                    document;    /* RFC 9728 metadata */
    ngx_array_t                 *requires;    /* of require_t */
    ngx_uint_t                   www_mode;
    ngx_http_complex_value_t    *www;         /* NGX_HTTP_OAUTH2_WWW_CUSTOM */
    ngx_str_t                    introspect_file;  /* where "on" was set */
    ngx_uint_t                   introspect_line;
    ngx_str_t                    exchange_file;
    ngx_uint_t                   exchange_line;
    ngx_uint_t                   phase;       /* NGX_HTTP_OAUTH2_PHASE_* */
    ngx_uint_t                   hybrid;      /* auth_jwt_introspect: the
                                                 auth_jwt handler drives */
} ngx_http_oauth2_token_loc_conf_t;


typedef struct {
    ngx_str_t                    token;
    ngx_uint_t                   step;        /* NGX_HTTP_OAUTH2_STEP_* */
    ngx_uint_t                   state;       /* of the step */
    ngx_oauth_flight_t           flight;      /* the step's cache, IdP call */
    ngx_int_t                    active;      /* -1: not known */
    ngx_str_t                    response;    /* introspection response */
    ngx_uint_t                   required;
    ngx_uint_t                   exchanged;
    ngx_str_t                    new_token;
    ngx_str_t                    new_token_type;
    ngx_str_t                    new_issued_type;
    nox_buf_t                   *values;      /* this step's, per pair */
    ngx_uint_t                   no_introspect;  /* hybrid: a verified JWS
                                                 only exchanged */
    ngx_uint_t                   introspected;  /* the step began */
} ngx_http_oauth2_token_ctx_t;


/* auth_oauth2_token_client_auth methods and their names in the core */

typedef struct {
    ngx_str_t                    name;
    ngx_str_t                    core;
    ngx_uint_t                   needs;       /* NGX_HTTP_OAUTH2_NEEDS_* */
} ngx_http_oauth2_token_method_t;


static ngx_int_t ngx_http_oauth2_token_access_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_oauth2_token_preaccess_handler(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_oauth2_token_handler(ngx_http_request_t *r,
    ngx_uint_t phase);
static ngx_int_t ngx_http_oauth2_token_steps(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf, ngx_http_oauth2_token_ctx_t *ctx);
static ngx_int_t ngx_http_oauth2_token_step(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf,
    ngx_http_oauth2_token_ctx_t *ctx, ngx_uint_t step);
static ngx_int_t ngx_http_oauth2_token_begin(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf,
    ngx_http_oauth2_token_ctx_t *ctx, ngx_uint_t step);
static ngx_int_t ngx_http_oauth2_token_call(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf,
    ngx_http_oauth2_token_ctx_t *ctx);
static ngx_int_t ngx_http_oauth2_token_cached(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf,
    ngx_http_oauth2_token_ctx_t *ctx, ngx_str_t *value, int32_t aux);
static ngx_int_t ngx_http_oauth2_token_fail(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf,
    ngx_http_oauth2_token_ctx_t *ctx, ngx_uint_t status);
static ngx_int_t ngx_http_oauth2_token_introspect_response(
    ngx_http_request_t *r, ngx_http_oauth2_token_loc_conf_t *olcf,
    ngx_http_oauth2_token_ctx_t *ctx);
static ngx_int_t ngx_http_oauth2_token_require(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf);
static ngx_int_t ngx_http_oauth2_token_exchange_response(
    ngx_http_request_t *r, ngx_http_oauth2_token_loc_conf_t *olcf,
    ngx_http_oauth2_token_ctx_t *ctx);
static ngx_int_t ngx_http_oauth2_token_set_authorization(
    ngx_http_request_t *r, ngx_http_oauth2_token_ctx_t *ctx);
static ngx_int_t ngx_http_oauth2_token_reject(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf, ngx_uint_t status,
    ngx_uint_t invalid);
static ngx_int_t ngx_http_oauth2_token_issued(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf,
    ngx_http_oauth2_token_ctx_t *ctx);
static u_char *ngx_http_oauth2_token_quoted(u_char *p, ngx_str_t *value);
static ngx_int_t ngx_http_oauth2_token_document_handler(
    ngx_http_request_t *r);


static ngx_int_t ngx_http_oauth2_token_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_oauth2_token_variable_active(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_oauth2_token_variable_claim(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_oauth2_token_variable_new(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_oauth2_token_variable_prefix(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static void *ngx_http_oauth2_token_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_oauth2_token_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_oauth2_token_init(ngx_conf_t *cf);
static char *ngx_http_oauth2_token_client_check(ngx_conf_t *cf,
    ngx_http_oauth2_token_loc_conf_t *conf);
static ngx_int_t ngx_http_oauth2_token_same_client(
    ngx_http_oauth2_token_loc_conf_t *a, ngx_http_oauth2_token_loc_conf_t *b);
static ngx_int_t ngx_http_oauth2_token_same_exchange(
    ngx_http_oauth2_token_loc_conf_t *a, ngx_http_oauth2_token_loc_conf_t *b);
static ngx_http_oauth2_token_call_t *ngx_http_oauth2_token_call_conf(
    ngx_conf_t *cf, ngx_http_oauth2_token_loc_conf_t *conf,
    ngx_uint_t step);
static ngx_int_t ngx_http_oauth2_token_opt(ngx_array_t *opts,
    const char *name, ngx_str_t *value, ngx_http_complex_value_t *cv);
static u_char *ngx_http_oauth2_token_check(void *data, u_char *buf,
    u_char *last);

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
static char *ngx_http_oauth2_token_client_auth(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_token_resource(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_token_allow_nested(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_token_protected_resource(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static u_char *ngx_http_oauth2_token_json(u_char *p, ngx_str_t *value);
static char *ngx_http_oauth2_token_hybrid_merge(ngx_conf_t *cf,
    ngx_http_oauth2_token_loc_conf_t *conf);


static ngx_http_oauth2_token_method_t  ngx_http_oauth2_token_methods[] = {
    { ngx_string("client_secret_basic"), ngx_string("client_secret_basic"),
      NGX_HTTP_OAUTH2_NEEDS_ID|NGX_HTTP_OAUTH2_NEEDS_SECRET },
    { ngx_string("client_secret_post"), ngx_string("client_secret_post"),
      NGX_HTTP_OAUTH2_NEEDS_ID|NGX_HTTP_OAUTH2_NEEDS_SECRET },
    { ngx_string("client_secret_jwt"), ngx_string("client_secret_jwt"),
      NGX_HTTP_OAUTH2_NEEDS_ID|NGX_HTTP_OAUTH2_NEEDS_SECRET
      |NGX_HTTP_OAUTH2_NEEDS_AUD },
    { ngx_string("private_key_jwt"), ngx_string("private_key_jwt"),
      NGX_HTTP_OAUTH2_NEEDS_ID|NGX_HTTP_OAUTH2_NEEDS_KEY
      |NGX_HTTP_OAUTH2_NEEDS_AUD },
    { ngx_string("tls_client_auth"), ngx_string("client_cert"), 0 },
    { ngx_string("none"), ngx_string("none"), 0 },
    { ngx_null_string, ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_oauth2_token_phases[] = {
    { ngx_string("access"), NGX_HTTP_OAUTH2_PHASE_ACCESS },
    { ngx_string("preaccess"), NGX_HTTP_OAUTH2_PHASE_PREACCESS },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_oauth2_token_commands[] = {

    { ngx_string("auth_oauth2_token_client_id"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_oauth2_token_client_id,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("auth_oauth2_token_client_secret"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_oauth2_token_secret,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("auth_oauth2_token_client_secret_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_oauth2_token_secret,
      NGX_HTTP_LOC_CONF_OFFSET,
      1,
      NULL },

    { ngx_string("auth_oauth2_token_client_auth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_oauth2_token_client_auth,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("auth_oauth2_token_resource"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_oauth2_token_resource,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("auth_oauth2_token_requested_token_type"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_token_loc_conf_t, requested_type),
      NULL },

    { ngx_string("auth_oauth2_token_subject_token_type"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_token_loc_conf_t, subject_type),
      NULL },

    { ngx_string("auth_oauth2_token_actor_token"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_token_loc_conf_t, actor_token),
      NULL },

    { ngx_string("auth_oauth2_token_actor_token_type"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_token_loc_conf_t, actor_type),
      NULL },

    { ngx_string("auth_oauth2_token_issued_token_type"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_token_loc_conf_t, issued_type),
      NULL },

    { ngx_string("auth_oauth2_token_resource_metadata"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_token_loc_conf_t, resource_metadata),
      NULL },

    { ngx_string("auth_oauth2_token_challenge_scope"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_HTTP_LMT_CONF
                        |NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_token_loc_conf_t, challenge_scope),
      NULL },

    { ngx_string("auth_oauth2_token_allow_nested"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_ANY,
      ngx_http_oauth2_token_allow_nested,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("auth_oauth2_token_protected_resource"),
      NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_oauth2_token_protected_resource,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
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
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
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
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_token_loc_conf_t, audience),
      NULL },

    { ngx_string("auth_oauth2_token_scope"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_token_loc_conf_t, scope),
      NULL },

    { ngx_string("auth_oauth2_token_exchange_cache"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1234,
      ngx_http_oauth2_token_cache,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_token_loc_conf_t, exchange_cache),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_oauth2_token_module_ctx = {
    ngx_http_oauth2_token_add_variables,   /* preconfiguration */
    ngx_http_oauth2_token_init,            /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

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

    { ngx_string("oauth2_token_claim_"), NULL,
      ngx_http_oauth2_token_variable_prefix, 0,
      NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_PREFIX, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_oauth2_token_form_type =
    ngx_string("application/x-www-form-urlencoded");


/* ---- request handling -------------------------------------------------- */

static ngx_int_t
ngx_http_oauth2_token_access_handler(ngx_http_request_t *r)
{
    return ngx_oauth_metrics_done(r, NGX_OAUTH_M_OAUTH2_TOKEN,
               ngx_http_oauth2_token_handler(r,
                                             NGX_HTTP_OAUTH2_PHASE_ACCESS));
}


static ngx_int_t
ngx_http_oauth2_token_preaccess_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    rc = ngx_oauth_metrics_done(r, NGX_OAUTH_M_OAUTH2_TOKEN,
             ngx_http_oauth2_token_handler(r,
                                           NGX_HTTP_OAUTH2_PHASE_PREACCESS));

    /* NGX_OK would skip the other preaccess handlers (limit_req ...) */

    return (rc == NGX_OK) ? NGX_DECLINED : rc;
}


static ngx_int_t
ngx_http_oauth2_token_handler(ngx_http_request_t *r, ngx_uint_t phase)
{
    ngx_http_oauth2_token_ctx_t       *ctx;
    ngx_http_oauth2_token_loc_conf_t  *olcf;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    olcf = ngx_http_get_module_loc_conf(r, ngx_http_oauth2_token_module);

    if (!olcf->introspect && !olcf->exchange) {
        return NGX_DECLINED;
    }

    if (olcf->hybrid) {
        /* auth_jwt_introspect: the auth_jwt handler calls the steps */
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
         *     ctx->step = NGX_HTTP_OAUTH2_STEP_NONE;
         *     ctx->state = NGX_HTTP_OAUTH2_LOOKUP;
         *     ctx->flight = { 0 };
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
            ngx_oauth_metrics_reason(r, NGX_OAUTH_M_OAUTH2_TOKEN,
                                     NGX_OAUTH_R_MISSING);
            return ngx_http_oauth2_token_reject(r, olcf,
                                                NGX_HTTP_UNAUTHORIZED, 0);
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "auth_oauth2_token: bearer token of %uz bytes",
                       ctx->token.len);
    }

    return ngx_http_oauth2_token_steps(r, olcf, ctx);
}


/*
 * introspection, auth_oauth2_token_require, exchange: NGX_OK when all
 * that are on passed, NGX_AGAIN while one waits, else the status
 */

static ngx_int_t
ngx_http_oauth2_token_steps(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf, ngx_http_oauth2_token_ctx_t *ctx)
{
    ngx_int_t  rc;

    if (olcf->introspect && !ctx->no_introspect) {
        ctx->introspected = 1;

        rc = ngx_http_oauth2_token_step(r, olcf, ctx,
                                        NGX_HTTP_OAUTH2_STEP_INTROSPECT);
        if (rc != NGX_OK) {
            return rc;
        }

        if (!ctx->required) {
            rc = ngx_http_oauth2_token_require(r, olcf);
            if (rc != NGX_OK) {
                return rc;
            }

            ctx->required = 1;
        }
    }

    if (olcf->exchange) {
        return ngx_http_oauth2_token_step(r, olcf, ctx,
                                          NGX_HTTP_OAUTH2_STEP_EXCHANGE);
    }

    return NGX_OK;
}


/*
 * One step (introspection, then exchange) on the shared single-flight:
 * NGX_OK when it is done, NGX_AGAIN while this request waits (for its own
 * IdP call, or for the request that leads the same key in any worker),
 * else the status to answer.  Its flight is reused by the next step.
 */

static ngx_int_t
ngx_http_oauth2_token_step(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf, ngx_http_oauth2_token_ctx_t *ctx,
    ngx_uint_t step)
{
    int32_t              aux;
    ngx_int_t            rc;
    ngx_str_t            value;
    ngx_oauth_flight_t  *f;

    if (ctx->step > step) {
        return NGX_OK;
    }

    f = &ctx->flight;

    if (ctx->step < step) {
        rc = ngx_http_oauth2_token_begin(r, olcf, ctx, step);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    switch (ctx->state) {

    case NGX_HTTP_OAUTH2_LOOKUP:

        if (f->cache == NULL) {
            return ngx_http_oauth2_token_call(r, olcf, ctx);
        }

        rc = ngx_oauth_flight_lookup(r, f, &value, &aux);

        switch (rc) {

        case NGX_OK:
            return ngx_http_oauth2_token_cached(r, olcf, ctx, &value, aux);

        case NGX_DECLINED:
            return ngx_http_oauth2_token_call(r, olcf, ctx);

        case NGX_AGAIN:
            return NGX_AGAIN;

        case NGX_ABORT:
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "auth_oauth2_token: the %s this request waited "
                          "for failed with %D",
                          step == NGX_HTTP_OAUTH2_STEP_INTROSPECT
                          ? "introspection" : "token exchange", aux);

            return ngx_http_oauth2_token_fail(r, olcf, ctx, (ngx_uint_t) aux);

        default:
            return ngx_http_oauth2_token_fail(r, olcf, ctx,
                                              NGX_HTTP_INTERNAL_SERVER_ERROR);
        }

    case NGX_HTTP_OAUTH2_SUBREQUEST:

        if (!f->done) {
            return NGX_AGAIN;
        }

        rc = ngx_oauth_flight_answer(r, f,
                                     step == NGX_HTTP_OAUTH2_STEP_INTROSPECT
                                     ? "auth_oauth2_token: introspection"
                                     : "auth_oauth2_token: token exchange",
                                     step == NGX_HTTP_OAUTH2_STEP_INTROSPECT
                                     ? &olcf->introspect_endpoint
                                     : &olcf->token_endpoint);
        if (rc != NGX_OK) {
            return ngx_http_oauth2_token_fail(r, olcf, ctx, rc);
        }

        return (step == NGX_HTTP_OAUTH2_STEP_INTROSPECT)
               ? ngx_http_oauth2_token_introspect_response(r, olcf, ctx)
               : ngx_http_oauth2_token_exchange_response(r, olcf, ctx);

    default: /* NGX_HTTP_OAUTH2_DONE */
        return NGX_OK;
    }
}


/*
 * The step's flight: its cache, this request's values of the settings
 * with variables, and the key (every setting with this request's value,
 * and the token: nox_sts_key)
 */

static ngx_int_t
ngx_http_oauth2_token_begin(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf, ngx_http_oauth2_token_ctx_t *ctx,
    ngx_uint_t step)
{
    int32_t                        rc, detail;
    ngx_str_t                      value;
    ngx_uint_t                     i;
    ngx_oauth_flight_t            *f;
    ngx_http_oauth2_token_call_t  *call;

    f = &ctx->flight;

    ctx->step = step;
    ctx->state = NGX_HTTP_OAUTH2_LOOKUP;

    f->leader = 0;
    f->waited = 0;
    f->lead_ttl = NGX_HTTP_OAUTH2_LEAD_TTL;

    if (step == NGX_HTTP_OAUTH2_STEP_INTROSPECT) {
        f->cache = olcf->introspect_cache;
        f->kind = NGX_HTTP_OAUTH2_KIND_INTROSPECT;
        call = olcf->introspect_call;

    } else {
        f->cache = olcf->exchange_cache;
        f->kind = NGX_HTTP_OAUTH2_KIND_EXCHANGE;
        call = olcf->exchange_call;
    }

    /* the managed configuration, built once per call and worker */

    if (call->handle_state == 0) {
        detail = -1;
        rc = ngx_oauth_managed.sts_create(call->settings,
                                          (int32_t) (2 * call->n),
                                          &call->handle, &detail);

        /* nginx -t checked the same settings: a failure is not expected */

        if (rc != NOX_OK) {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "auth_oauth2_token: the client of %V:%ui cannot "
                          "be set up: %s (setting %D)", &call->file,
                          call->line, ngx_oauth_status_text(rc), detail);
        }

        call->handle_state = (rc == NOX_OK) ? 1 : -1;
    }

    if (call->handle_state != 1) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->values = ngx_pcalloc(r->pool, call->n * sizeof(nox_buf_t));
    if (ctx->values == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < call->n; i++) {
        if (call->cvs[i] == NULL) {
            continue;
        }

        if (ngx_http_complex_value(r, call->cvs[i], &value) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->values[i].data = value.data ? value.data : (u_char *) "";
        ctx->values[i].len = (int32_t) value.len;
    }

    if (f->cache == NULL) {
        return NGX_OK;
    }

    rc = ngx_oauth_managed.sts_key(call->handle, ctx->token.data,
                                   (int32_t) ctx->token.len, ctx->values,
                                   (int32_t) call->n, f->hash,
                                   NOX_SHA256_LEN);
    if (rc != NOX_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "auth_oauth2_token: nox_sts_key failed: %s",
                      ngx_oauth_status_text(rc));
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_OK;
}


/*
 * The IdP call of the step: a form POST to the internal endpoint, body
 * and client authentication from the managed core (nox_sts_request)
 */

static ngx_int_t
ngx_http_oauth2_token_call(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf, ngx_http_oauth2_token_ctx_t *ctx)
{
    u_char                        *out;
    size_t                         cap;
    int32_t                        rc, lens[3];
    int64_t                        ttl;
    ngx_str_t                      body, auth, *uri;
    ngx_uint_t                     i;
    ngx_http_request_t            *sr;
    ngx_http_oauth2_token_call_t  *call;

    if (ctx->step == NGX_HTTP_OAUTH2_STEP_INTROSPECT) {
        uri = &olcf->introspect_endpoint;
        call = olcf->introspect_call;

    } else {
        uri = &olcf->token_endpoint;
        call = olcf->exchange_call;
    }

    /*
     * a first guess of the request's size: the token and every setting
     * form-encoded (3 bytes each; 4 for base64 of encoded credentials),
     * and room for the fixed names and a client assertion; the core tells
     * the size when it needs more (ngx_oauth_sts_build grows once).  Small
     * enough for the request pool's own blocks in the common case: 16k
     * here was a malloc() and a free() on every uncached introspection.
     */

    cap = 3 * ctx->token.len + NGX_HTTP_OAUTH2_REQUEST_SLACK;

    for (i = 0; i < call->n; i++) {
        cap += 4 * (ctx->values[i].data ? (size_t) ctx->values[i].len
                                        : (size_t) call->settings[2 * i + 1]
                                                                     .len);
    }

    if (ngx_oauth_sts_build(r, call->handle, &ctx->token, ctx->values,
                            call->n, cap, 0, &out, lens, &ttl, &rc)
        != NGX_OK)
    {
        return ngx_http_oauth2_token_fail(r, olcf, ctx,
                                          NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    if (rc == NOX_SOURCE_INVALID) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "auth_oauth2_token: rejected: %s (token %uz bytes)",
                      ngx_oauth_status_text(rc), ctx->token.len);
        return ngx_http_oauth2_token_fail(r, olcf, ctx,
                                          NGX_HTTP_UNAUTHORIZED);
    }

    if (rc != NOX_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "auth_oauth2_token: nox_sts_request failed: %s",
                      ngx_oauth_status_text(rc));
        return ngx_http_oauth2_token_fail(r, olcf, ctx,
                                          NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    /* out: the body, then the Authorization value (0 bytes: none) */

    body.data = out;
    body.len = lens[0];
    auth.data = out + lens[0];
    auth.len = lens[1];

    if (ngx_oauth_flight_post(r, &ctx->flight, uri,
                              &ngx_http_oauth2_token_form_type,
                              &auth, &body, &sr)
        != NGX_OK)
    {
        return ngx_http_oauth2_token_fail(r, olcf, ctx,
                                          NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    ctx->state = NGX_HTTP_OAUTH2_SUBREQUEST;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "auth_oauth2_token: POST \"%V\", body %uz bytes%s",
                   uri, body.len,
                   ctx->flight.leader ? ", for the waiting requests too" : "");

    return NGX_AGAIN;
}


/*
 * An answer from the cache (or a stale one, ngx_http_oauth2_token_fail).
 * Introspection entries are active, well-formed responses, or "inactive"
 * (negative_ttl) with aux NGX_HTTP_OAUTH2_INACTIVE; exchange entries hold
 * the new token, token_type, issued_token_type, then token_type's length.
 */

static ngx_int_t
ngx_http_oauth2_token_cached(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf, ngx_http_oauth2_token_ctx_t *ctx,
    ngx_str_t *value, int32_t aux)
{
    int32_t  type_len;

    if (ctx->step == NGX_HTTP_OAUTH2_STEP_INTROSPECT) {
        ctx->state = NGX_HTTP_OAUTH2_DONE;

        if (aux == NGX_HTTP_OAUTH2_INACTIVE) {
            ctx->active = 0;
            ngx_oauth_metrics_reason(r, NGX_OAUTH_M_OAUTH2_TOKEN,
                                     NGX_OAUTH_R_INACTIVE);

            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "auth_oauth2_token: rejected: token is not active "
                          "(a remembered answer, negative_ttl; token %uz "
                          "bytes)", ctx->token.len);

            return ngx_http_oauth2_token_reject(r, olcf,
                                                NGX_HTTP_UNAUTHORIZED, 1);
        }

        ctx->active = 1;
        ctx->response = *value;

        return NGX_OK;
    }

    if (aux > 0 && (size_t) aux + sizeof(int32_t) <= value->len) {
        value->len -= sizeof(int32_t);
        ngx_memcpy(&type_len, value->data + value->len, sizeof(int32_t));

        if (type_len >= 0 && (size_t) aux + type_len <= value->len) {
            ctx->new_token.data = value->data;
            ctx->new_token.len = aux;
            ctx->new_token_type.data = value->data + aux;
            ctx->new_token_type.len = type_len;
            ctx->new_issued_type.data = value->data + aux + type_len;
            ctx->new_issued_type.len = value->len - aux - type_len;
            ctx->exchanged = 1;
            ctx->state = NGX_HTTP_OAUTH2_DONE;

            if (ngx_http_oauth2_token_issued(r, olcf, ctx) != NGX_OK) {
                return ngx_http_oauth2_token_reject(r, olcf,
                                                    NGX_HTTP_BAD_GATEWAY, 1);
            }

            return ngx_http_oauth2_token_set_authorization(r, ctx);
        }
    }

    ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                  "auth_oauth2_token: malformed exchange cache entry");

    return ngx_http_oauth2_token_call(r, olcf, ctx);
}


/*
 * The step failed with status: the requests waiting for this one answer
 * the same.  When the IdP failed (503, 502), an entry that expired less
 * than stale_if_error ago is served instead, logged at warn; an
 * introspection answer whose exp has passed never is.
 */

static ngx_int_t
ngx_http_oauth2_token_fail(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf, ngx_http_oauth2_token_ctx_t *ctx,
    ngx_uint_t status)
{
    time_t               age;
    int32_t              aux;
    int64_t              expires_in;
    ngx_str_t            value;
    ngx_oauth_flight_t  *f;

    f = &ctx->flight;

    ngx_oauth_flight_fail(r, f, status);

    if ((status == NGX_HTTP_SERVICE_UNAVAILABLE
         || status == NGX_HTTP_BAD_GATEWAY)
        && ngx_oauth_flight_stale(r, f, &value, &aux, &age) == NGX_OK)
    {
        if (ctx->step == NGX_HTTP_OAUTH2_STEP_INTROSPECT
            && aux != NGX_HTTP_OAUTH2_INACTIVE
            && ngx_oauth_managed.introspect_parse(value.data,
                                                  (int32_t) value.len,
                                                  (int64_t) ngx_time(),
                                                  &expires_in)
               != NOX_OK)
        {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "auth_oauth2_token: the introspection failed "
                          "(%ui) and the stale answer is no longer valid "
                          "(its exp has passed)", status);

        } else {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "auth_oauth2_token: the %s failed (%ui): serving "
                          "an answer that expired %T s ago "
                          "(stale_if_error)",
                          ctx->step == NGX_HTTP_OAUTH2_STEP_INTROSPECT
                          ? "introspection" : "token exchange",
                          status, age);

            ngx_oauth_flight_stale_served(r, f);

            return ngx_http_oauth2_token_cached(r, olcf, ctx, &value, aux);
        }
    }

    return ngx_http_oauth2_token_reject(r, olcf, status, 1);
}


/*
 * The introspection answer.  Active with an exp that has passed is
 * inactive (NOX_EXPIRED): a token is never accepted after its exp, from
 * the IdP or from the cache (kjdev/nginx-auth-oauth2-token reads only
 * "active").  The cache keeps an answer until min(max_ttl, exp - now), an
 * inactive one for negative_ttl; a status other than 200 or an unusable
 * body is 502.
 */

static ngx_int_t
ngx_http_oauth2_token_introspect_response(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf, ngx_http_oauth2_token_ctx_t *ctx)
{
    int32_t              rc;
    int64_t              expires_in;
    time_t               ttl;
    ngx_str_t           *body, empty;
    ngx_oauth_flight_t  *f;

    f = &ctx->flight;
    body = &f->body;

    if (f->status != NGX_HTTP_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth_oauth2_token: introspection \"%V\" answered "
                      "status %ui", &olcf->introspect_endpoint, f->status);
        return ngx_http_oauth2_token_fail(r, olcf, ctx, NGX_HTTP_BAD_GATEWAY);
    }

    if (body->len == 0 || body->len > NOX_MAX_IDP_RESPONSE) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth_oauth2_token: introspection \"%V\" returned an "
                      "%s response of %uz bytes",
                      &olcf->introspect_endpoint,
                      body->len ? "oversized" : "empty", body->len);
        return ngx_http_oauth2_token_fail(r, olcf, ctx, NGX_HTTP_BAD_GATEWAY);
    }

    expires_in = 0;
    rc = ngx_oauth_managed.introspect_parse(body->data, (int32_t) body->len,
                                            (int64_t) ngx_time(),
                                            &expires_in);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "auth_oauth2_token: introspection response of %uz bytes: "
                   "status %D", body->len, rc);

    if (rc == NOX_RESPONSE_INACTIVE || rc == NOX_EXPIRED) {
        ctx->active = 0;
        ctx->state = NGX_HTTP_OAUTH2_DONE;
        ngx_oauth_metrics_reason(r, NGX_OAUTH_M_OAUTH2_TOKEN,
                                 NGX_OAUTH_R_INACTIVE);

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "auth_oauth2_token: rejected: token is not active%s "
                      "(token %uz bytes)",
                      rc == NOX_EXPIRED ? ": active, but its exp has passed"
                                        : "",
                      ctx->token.len);

        /* remembered for negative_ttl; else the waiting requests: 401 */

        if (f->cache && f->cache->negative_ttl) {
            ngx_str_null(&empty);
            ngx_oauth_flight_store(r, f, &empty, NGX_HTTP_OAUTH2_INACTIVE,
                                   f->cache->negative_ttl);

        } else {
            ngx_oauth_flight_fail(r, f, NGX_HTTP_UNAUTHORIZED);
        }

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
        return ngx_http_oauth2_token_fail(r, olcf, ctx, NGX_HTTP_BAD_GATEWAY);
    }

    ctx->active = 1;
    ctx->response = *body;
    ctx->state = NGX_HTTP_OAUTH2_DONE;

    if (f->cache == NULL) {
        return NGX_OK;
    }

    /* TTL: min(max_ttl, exp - now); max_ttl without exp */

    ttl = f->cache->max_ttl;

    if (expires_in > 0 && expires_in < (int64_t) ttl) {
        ttl = (time_t) expires_in;
    }

    ngx_oauth_flight_store(r, f, body, 0, ttl);

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
        ngx_oauth_metrics_reason(r, NGX_OAUTH_M_OAUTH2_TOKEN,
                                 NGX_OAUTH_R_RULE_FAILED);

        return ngx_http_oauth2_token_reject(r, olcf, status, 1);
    }

    return NGX_OK;
}


/*
 * The token exchange answer.  A refusal (RFC 6749 5.2: a 4xx or an
 * "error") is 401 with error="invalid_token", or 403 with
 * error="insufficient_scope" for access_denied, invalid_scope and
 * insufficient_scope (classified by the core as for sts); a 5xx or an
 * unusable token response is 502.
 */

static ngx_int_t
ngx_http_oauth2_token_exchange_response(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf, ngx_http_oauth2_token_ctx_t *ctx)
{
    u_char              *out;
    time_t               ttl;
    int32_t              rc, token_len, type_len, issued_len, code_len;
    int64_t              expires_in;
    ngx_str_t            value, *body, code;
    ngx_uint_t           status;
    ngx_oauth_flight_t  *f;
    u_char               buf[NOX_STS_ERROR_MAX];

    f = &ctx->flight;
    body = &f->body;

    if (body->len > NOX_MAX_IDP_RESPONSE) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth_oauth2_token: token exchange \"%V\" returned "
                      "%uz bytes, more than %d", &olcf->token_endpoint,
                      body->len, NOX_MAX_IDP_RESPONSE);
        return ngx_http_oauth2_token_fail(r, olcf, ctx, NGX_HTTP_BAD_GATEWAY);
    }

    code_len = 0;
    rc = ngx_oauth_managed.token_error((int32_t) f->status, body->data,
                                       (int32_t) body->len, buf, sizeof(buf),
                                       &code_len);

    if (rc == NOX_STS_REJECTED || rc == NOX_STS_FORBIDDEN) {
        code.data = buf;
        code.len = (code_len > 0) ? (size_t) code_len : 0;

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "auth_oauth2_token: rejected: token exchange \"%V\" "
                      "answered %ui \"%V\" (token %uz bytes)",
                      &olcf->token_endpoint, f->status, &code,
                      ctx->token.len);

        status = (rc == NOX_STS_FORBIDDEN) ? NGX_HTTP_FORBIDDEN
                                           : NGX_HTTP_UNAUTHORIZED;

        ngx_oauth_flight_fail(r, f, status);

        return ngx_http_oauth2_token_reject(r, olcf, status, 1);
    }

    if (rc != NOX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth_oauth2_token: token exchange \"%V\" answered "
                      "status %ui (%s)", &olcf->token_endpoint, f->status,
                      ngx_oauth_status_text(rc));
        return ngx_http_oauth2_token_fail(r, olcf, ctx, NGX_HTTP_BAD_GATEWAY);
    }

    if (body->len == 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth_oauth2_token: token exchange \"%V\" returned an "
                      "empty response", &olcf->token_endpoint);
        return ngx_http_oauth2_token_fail(r, olcf, ctx, NGX_HTTP_BAD_GATEWAY);
    }

    /* room for the int32 the cache entry ends with */

    out = ngx_pnalloc(r->pool, body->len + 1 + sizeof(int32_t));
    if (out == NULL) {
        return ngx_http_oauth2_token_fail(r, olcf, ctx,
                                          NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    token_len = -1;
    type_len = -1;
    issued_len = -1;
    expires_in = -1;

    rc = ngx_oauth_managed.exchange_parse(body->data, (int32_t) body->len,
                                          out, (int32_t) body->len + 1,
                                          &token_len, &type_len, &issued_len,
                                          &expires_in);

    if (rc != NOX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth_oauth2_token: token exchange \"%V\" returned an "
                      "unusable response of %uz bytes: %s",
                      &olcf->token_endpoint, body->len,
                      ngx_oauth_status_text(rc));
        return ngx_http_oauth2_token_fail(r, olcf, ctx, NGX_HTTP_BAD_GATEWAY);
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
    ctx->state = NGX_HTTP_OAUTH2_DONE;

    if (ngx_http_oauth2_token_issued(r, olcf, ctx) != NGX_OK) {
        return ngx_http_oauth2_token_fail(r, olcf, ctx, NGX_HTTP_BAD_GATEWAY);
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "auth_oauth2_token: exchanged for a token of %D bytes, "
                   "expires_in %L", token_len, expires_in);

    /*
     * TTL: min(max_ttl, expires_in), expires_in rounded down (0: the token
     * is used for this request but not stored, and the waiting requests
     * ask for themselves); max_ttl without one
     */

    if (f->cache) {
        ttl = f->cache->max_ttl;

        if (expires_in >= 0 && expires_in < (int64_t) ttl) {
            ttl = (time_t) expires_in;
        }

        value.data = out;
        value.len = token_len + type_len + issued_len;

        ngx_memcpy(out + value.len, &type_len, sizeof(int32_t));
        value.len += sizeof(int32_t);

        ngx_oauth_flight_store(r, f, &value, token_len, ttl);
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


/*
 * auth_oauth2_token_issued_token_type: the token endpoint must say it
 * issued that type (RFC 8693 2.2.1); else its answer is unusable (502)
 */

static ngx_int_t
ngx_http_oauth2_token_issued(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf, ngx_http_oauth2_token_ctx_t *ctx)
{
    if (olcf->issued_type.len == 0
        || (ctx->new_issued_type.len == olcf->issued_type.len
            && ngx_strncmp(ctx->new_issued_type.data, olcf->issued_type.data,
                           olcf->issued_type.len)
               == 0))
    {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "auth_oauth2_token: token exchange \"%V\" issued a token "
                  "of type \"%V\", not \"%V\"", &olcf->token_endpoint,
                  &ctx->new_issued_type, &olcf->issued_type);

    ctx->exchanged = 0;

    return NGX_ERROR;
}


/*
 * The status to answer, with its challenge (RFC 6750 3, RFC 9728 5.1):
 * 401 "Bearer" (error="invalid_token" when a token was presented and
 * refused), 403 error="insufficient_scope" with scope= when
 * auth_oauth2_token_challenge_scope is set, resource_metadata= on both
 * when auth_oauth2_token_resource_metadata is; 503 with Retry-After.
 * auth_oauth2_token_www_authenticate off: no challenge; a custom value
 * replaces the 401 challenge.
 */

static ngx_int_t
ngx_http_oauth2_token_reject(ngx_http_request_t *r,
    ngx_http_oauth2_token_loc_conf_t *olcf, ngx_uint_t status,
    ngx_uint_t invalid)
{
    u_char           *p;
    size_t            len;
    ngx_str_t         value, scope;
    ngx_table_elt_t  *h;

    if (status == NGX_HTTP_SERVICE_UNAVAILABLE) {
        return ngx_oauth_challenge(r, status, invalid);
    }

    if ((status != NGX_HTTP_UNAUTHORIZED && status != NGX_HTTP_FORBIDDEN)
        || olcf->www_mode == NGX_HTTP_OAUTH2_WWW_OFF)
    {
        return status;
    }

    if (olcf->www_mode == NGX_HTTP_OAUTH2_WWW_CUSTOM) {
        if (status != NGX_HTTP_UNAUTHORIZED) {
            return status;
        }

        if (ngx_http_complex_value(r, olcf->www, &value) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (value.len == 0) {
            return status;
        }

        goto add;
    }

    ngx_str_null(&scope);

    if (status == NGX_HTTP_FORBIDDEN
        && olcf->challenge_scope
        && ngx_http_complex_value(r, olcf->challenge_scope, &scope)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = sizeof("Bearer error=\"insufficient_scope\"") - 1
          + sizeof(", scope=\"\"") - 1 + scope.len
          + sizeof(", resource_metadata=\"\"") - 1
          + olcf->resource_metadata.len;

    value.data = ngx_pnalloc(r->pool, len);
    if (value.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(value.data, "Bearer", sizeof("Bearer") - 1);

    if (status == NGX_HTTP_FORBIDDEN) {
        p = ngx_cpymem(p, " error=\"insufficient_scope\"",
                       sizeof(" error=\"insufficient_scope\"") - 1);

        if (scope.len) {
            p = ngx_cpymem(p, ", scope=", sizeof(", scope=") - 1);
            p = ngx_http_oauth2_token_quoted(p, &scope);
        }

    } else if (invalid) {
        p = ngx_cpymem(p, " error=\"invalid_token\"",
                       sizeof(" error=\"invalid_token\"") - 1);
    }

    if (olcf->resource_metadata.len) {
        if (p - value.data > (ssize_t) sizeof("Bearer") - 1) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, " resource_metadata=",
                       sizeof(" resource_metadata=") - 1);
        p = ngx_http_oauth2_token_quoted(p, &olcf->resource_metadata);
    }

    value.len = p - value.data;

add:

    h = ngx_oauth_header_add(r->pool, &r->headers_out.headers,
                             "WWW-Authenticate", &value);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.www_authenticate = h;

    return status;
}


/*
 * A quoted-string of a challenge: the value between double quotes, with
 * the bytes a quoted-string cannot hold (controls, '"', '\') left out;
 * at most value->len + 2 bytes
 */

static u_char *
ngx_http_oauth2_token_quoted(u_char *p, ngx_str_t *value)
{
    u_char      c;
    ngx_uint_t  i;

    *p++ = '"';

    for (i = 0; i < value->len; i++) {
        c = value->data[i];

        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
            continue;
        }

        *p++ = c;
    }

    *p++ = '"';

    return p;
}


/* auth_oauth2_token_protected_resource: the RFC 9728 document, GET/HEAD */

static ngx_int_t
ngx_http_oauth2_token_document_handler(ngx_http_request_t *r)
{
    ngx_int_t                          rc;
    ngx_buf_t                         *b;
    ngx_chain_t                        out;
    ngx_http_oauth2_token_loc_conf_t  *olcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    olcf = ngx_http_get_module_loc_conf(r, ngx_http_oauth2_token_module);

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = olcf->document.len;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    if (r->method == NGX_HTTP_HEAD) {
        return ngx_http_send_header(r);
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = olcf->document.data;
    b->last = olcf->document.data + olcf->document.len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, &out);
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


/*
 * $oauth2_token_claim_<name>: any member of the introspection response
 * (active: true only); with auth_oauth2_token_allow_nested, a path into
 * nested objects as for $jwt_claim_*
 */

static ngx_int_t
ngx_http_oauth2_token_variable_prefix(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                         *name = (ngx_str_t *) data;

    ngx_int_t                          rc;
    ngx_str_t                          path, value;
    ngx_http_oauth2_token_ctx_t       *ctx;
    ngx_http_oauth2_token_loc_conf_t  *olcf;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_oauth2_token_module);

    if (name == NULL
        || name->len <= sizeof("oauth2_token_claim_") - 1
        || ctx == NULL || ctx->active != 1 || !ngx_oauth_managed_ready)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    path.data = name->data + sizeof("oauth2_token_claim_") - 1;
    path.len = name->len - (sizeof("oauth2_token_claim_") - 1);

    olcf = ngx_http_get_module_loc_conf(r, ngx_http_oauth2_token_module);

    if (olcf->nested == 1) {
        rc = ngx_oauth_json_get(r, &ctx->response, &path, NOX_PATH_NESTED,
                                &olcf->delimiter, &olcf->quote, &value);

    } else {
        rc = ngx_oauth_json_get(r, &ctx->response, &path, NOX_PATH_NAME,
                                NULL, NULL, &value);
    }

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        v->not_found = 1;
        return NGX_OK;
    }

    return ngx_oauth_variable_set(r, v, &value);
}


/* ---- configuration ----------------------------------------------------- */

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
     *     conf->issued_type = { 0, NULL };
     *     conf->requires = NULL;
     *     conf->www = NULL;
     *     conf->introspect_file = { 0, NULL };
     *     conf->exchange_file = { 0, NULL };
     *     conf->client_id = { 0, NULL };
     *     conf->client_secret = { 0, NULL };
     *     conf->auth_key = { 0, NULL };
     *     conf->auth_kid = { 0, NULL };
     *     conf->auth_alg = { 0, NULL };
     *     conf->auth_aud = { 0, NULL };
     *     conf->introspect_call = NULL;
     *     conf->exchange_call = NULL;
     *     conf->resource_metadata = { 0, NULL };
     *     conf->delimiter = { 0, NULL };
     *     conf->quote = { 0, NULL };
     *     conf->document = { 0, NULL };
     */

    conf->introspect = NGX_CONF_UNSET;
    conf->introspect_cache = NGX_CONF_UNSET_PTR;
    conf->exchange = NGX_CONF_UNSET;
    conf->exchange_cache = NGX_CONF_UNSET_PTR;
    conf->audience = NGX_CONF_UNSET_PTR;
    conf->scope = NGX_CONF_UNSET_PTR;
    conf->resources = NGX_CONF_UNSET_PTR;
    conf->requested_type = NGX_CONF_UNSET_PTR;
    conf->subject_type = NGX_CONF_UNSET_PTR;
    conf->actor_token = NGX_CONF_UNSET_PTR;
    conf->actor_type = NGX_CONF_UNSET_PTR;
    conf->secret_from_file = NGX_CONF_UNSET;
    conf->auth = NGX_CONF_UNSET_UINT;
    conf->challenge_scope = NGX_CONF_UNSET_PTR;
    conf->nested = NGX_CONF_UNSET;
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
    ngx_conf_merge_ptr_value(conf->audience, prev->audience, NULL);
    ngx_conf_merge_ptr_value(conf->scope, prev->scope, NULL);
    ngx_conf_merge_ptr_value(conf->resources, prev->resources, NULL);
    ngx_conf_merge_ptr_value(conf->requested_type, prev->requested_type,
                             NULL);
    ngx_conf_merge_ptr_value(conf->subject_type, prev->subject_type, NULL);
    ngx_conf_merge_ptr_value(conf->actor_token, prev->actor_token, NULL);
    ngx_conf_merge_ptr_value(conf->actor_type, prev->actor_type, NULL);
    ngx_conf_merge_str_value(conf->issued_type, prev->issued_type, "");
    ngx_conf_merge_ptr_value(conf->exchange_cache, prev->exchange_cache,
                             NULL);

    /* the client: id and secret together, the method with its key */

    if (conf->client_id.data == NULL) {
        conf->client_id = prev->client_id;
        conf->id_file = prev->id_file;
        conf->id_line = prev->id_line;
    }

    if (conf->client_secret.data == NULL) {
        conf->client_secret = prev->client_secret;
        conf->secret_from_file = prev->secret_from_file;
        conf->secret_file = prev->secret_file;
        conf->secret_line = prev->secret_line;
    }

    if (conf->auth == NGX_CONF_UNSET_UINT) {
        conf->auth = prev->auth;
        conf->auth_key = prev->auth_key;
        conf->auth_kid = prev->auth_kid;
        conf->auth_alg = prev->auth_alg;
        conf->auth_aud = prev->auth_aud;
        conf->auth_file = prev->auth_file;
        conf->auth_line = prev->auth_line;
    }

    if (ngx_http_oauth2_token_client_check(cf, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_conf_merge_str_value(conf->resource_metadata,
                             prev->resource_metadata, "");
    ngx_conf_merge_ptr_value(conf->challenge_scope, prev->challenge_scope,
                             NULL);

    if (conf->nested == NGX_CONF_UNSET) {
        conf->nested = prev->nested;
        conf->delimiter = prev->delimiter;
        conf->quote = prev->quote;
    }

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

    /* the calls of the core: the parent's when nothing differs */

    if (conf->introspect) {
        if (prev->introspect_call
            && conf->introspect_endpoint.data == prev->introspect_endpoint.data
            && ngx_http_oauth2_token_same_client(conf, prev))
        {
            conf->introspect_call = prev->introspect_call;

        } else {
            conf->introspect_call = ngx_http_oauth2_token_call_conf(cf, conf,
                                            NGX_HTTP_OAUTH2_STEP_INTROSPECT);
            if (conf->introspect_call == NULL) {
                return NGX_CONF_ERROR;
            }
        }
    }

    if (conf->exchange) {
        if (prev->exchange_call
            && conf->token_endpoint.data == prev->token_endpoint.data
            && ngx_http_oauth2_token_same_client(conf, prev)
            && ngx_http_oauth2_token_same_exchange(conf, prev))
        {
            conf->exchange_call = prev->exchange_call;

        } else {
            conf->exchange_call = ngx_http_oauth2_token_call_conf(cf, conf,
                                            NGX_HTTP_OAUTH2_STEP_EXCHANGE);
            if (conf->exchange_call == NULL) {
                return NGX_CONF_ERROR;
            }
        }
    }

    return ngx_http_oauth2_token_hybrid_merge(cf, conf);
}


/*
 * The client of a location: a secret needs an id; the method (by
 * default client_secret_basic with an id, else none) needs what it
 * uses.  Checked at every level, so the error names the directives.
 */

static char *
ngx_http_oauth2_token_client_check(ngx_conf_t *cf,
    ngx_http_oauth2_token_loc_conf_t *conf)
{
    ngx_uint_t                       needs;
    ngx_http_oauth2_token_method_t  *m;

    if (conf->client_secret.data && conf->client_id.data == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"auth_oauth2_token_client_secret%s\" needs "
                      "\"auth_oauth2_token_client_id\" in %V:%ui",
                      conf->secret_from_file == 1 ? "_file" : "",
                      &conf->secret_file, conf->secret_line);
        return NGX_CONF_ERROR;
    }

    if (conf->auth == NGX_CONF_UNSET_UINT) {
        if (conf->client_id.data == NULL) {
            return NGX_CONF_OK;
        }

        needs = NGX_HTTP_OAUTH2_NEEDS_SECRET;
        m = &ngx_http_oauth2_token_methods[NGX_HTTP_OAUTH2_AUTH_BASIC];

    } else {
        m = &ngx_http_oauth2_token_methods[conf->auth];
        needs = m->needs;
    }

    if ((needs & NGX_HTTP_OAUTH2_NEEDS_ID) && conf->client_id.data == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"auth_oauth2_token_client_auth %V\" needs "
                      "\"auth_oauth2_token_client_id\" in %V:%ui",
                      &m->name, &conf->auth_file, conf->auth_line);
        return NGX_CONF_ERROR;
    }

    if ((needs & NGX_HTTP_OAUTH2_NEEDS_SECRET)
        && conf->client_secret.data == NULL)
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"auth_oauth2_token_client_id\" needs "
                      "\"auth_oauth2_token_client_secret\" or "
                      "\"auth_oauth2_token_client_secret_file\" "
                      "(method %V) in %V:%ui",
                      &m->name, &conf->id_file, conf->id_line);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* the same client settings (the same directives, inherited) */

static ngx_int_t
ngx_http_oauth2_token_same_client(ngx_http_oauth2_token_loc_conf_t *a,
    ngx_http_oauth2_token_loc_conf_t *b)
{
    return a->client_id.data == b->client_id.data
           && a->client_secret.data == b->client_secret.data
           && a->auth == b->auth
           && a->auth_key.data == b->auth_key.data
           && a->auth_kid.data == b->auth_kid.data
           && a->auth_alg.data == b->auth_alg.data
           && a->auth_aud.data == b->auth_aud.data;
}


static ngx_int_t
ngx_http_oauth2_token_same_exchange(ngx_http_oauth2_token_loc_conf_t *a,
    ngx_http_oauth2_token_loc_conf_t *b)
{
    return a->audience == b->audience
           && a->scope == b->scope
           && a->resources == b->resources
           && a->requested_type == b->requested_type
           && a->subject_type == b->subject_type
           && a->actor_token == b->actor_token
           && a->actor_type == b->actor_type;
}


/*
 * The settings of the core for one call: type, endpoint (the default
 * "aud" of client assertions), the client, and for the exchange the
 * RFC 8693 parameters; values with variables are evaluated per request
 */

static ngx_http_oauth2_token_call_t *
ngx_http_oauth2_token_call_conf(ngx_conf_t *cf,
    ngx_http_oauth2_token_loc_conf_t *conf, ngx_uint_t step)
{
    ngx_str_t                        type, *endpoint;
    ngx_uint_t                       i;
    ngx_array_t                      opts;
    ngx_http_complex_value_t        *cv;
    ngx_http_oauth2_token_opt_t     *opt;
    ngx_http_oauth2_token_call_t    *call;
    ngx_http_oauth2_token_method_t  *m;

    if (ngx_array_init(&opts, cf->temp_pool, 16,
                       sizeof(ngx_http_oauth2_token_opt_t))
        != NGX_OK)
    {
        return NULL;
    }

    if (step == NGX_HTTP_OAUTH2_STEP_INTROSPECT) {
        ngx_str_set(&type, "introspect");
        endpoint = &conf->introspect_endpoint;

    } else {
        ngx_str_set(&type, "otx");
        endpoint = &conf->token_endpoint;
    }

    if (conf->auth == NGX_CONF_UNSET_UINT) {
        m = &ngx_http_oauth2_token_methods[conf->client_id.data
                                           ? NGX_HTTP_OAUTH2_AUTH_BASIC
                                           : NGX_HTTP_OAUTH2_AUTH_NONE];
    } else {
        m = &ngx_http_oauth2_token_methods[conf->auth];
    }

    if (ngx_http_oauth2_token_opt(&opts, "type", &type, NULL) != NGX_OK
        || ngx_http_oauth2_token_opt(&opts, "endpoint", endpoint, NULL)
           != NGX_OK
        || ngx_http_oauth2_token_opt(&opts, "auth", &m->core, NULL)
           != NGX_OK
        || ngx_http_oauth2_token_opt(&opts, "client_id", &conf->client_id,
                                     NULL)
           != NGX_OK
        || ngx_http_oauth2_token_opt(&opts, "client_secret",
                                     &conf->client_secret, NULL)
           != NGX_OK
        || ngx_http_oauth2_token_opt(&opts, "jwk", &conf->auth_key, NULL)
           != NGX_OK
        || ngx_http_oauth2_token_opt(&opts, "kid", &conf->auth_kid, NULL)
           != NGX_OK
        || ngx_http_oauth2_token_opt(&opts, "alg", &conf->auth_alg, NULL)
           != NGX_OK
        || ngx_http_oauth2_token_opt(&opts, "aud", &conf->auth_aud, NULL)
           != NGX_OK)
    {
        return NULL;
    }

    if (step == NGX_HTTP_OAUTH2_STEP_EXCHANGE) {
        if (ngx_http_oauth2_token_opt(&opts, "audience", NULL,
                                      conf->audience)
            != NGX_OK
            || ngx_http_oauth2_token_opt(&opts, "scope", NULL, conf->scope)
               != NGX_OK
            || ngx_http_oauth2_token_opt(&opts, "requested_token_type",
                                         NULL, conf->requested_type)
               != NGX_OK
            || ngx_http_oauth2_token_opt(&opts, "subject_token_type", NULL,
                                         conf->subject_type)
               != NGX_OK
            || ngx_http_oauth2_token_opt(&opts, "actor_token", NULL,
                                         conf->actor_token)
               != NGX_OK
            || ngx_http_oauth2_token_opt(&opts, "actor_token_type", NULL,
                                         conf->actor_type)
               != NGX_OK)
        {
            return NULL;
        }

        if (conf->resources) {
            cv = conf->resources->elts;

            for (i = 0; i < conf->resources->nelts; i++) {
                if (ngx_http_oauth2_token_opt(&opts, "resource", NULL,
                                              &cv[i])
                    != NGX_OK)
                {
                    return NULL;
                }
            }
        }
    }

    call = ngx_pcalloc(cf->pool, sizeof(ngx_http_oauth2_token_call_t));
    if (call == NULL) {
        return NULL;
    }

    call->n = opts.nelts;

    if (step == NGX_HTTP_OAUTH2_STEP_INTROSPECT) {
        call->file = conf->introspect_file;
        call->line = conf->introspect_line;

    } else {
        call->file = conf->exchange_file;
        call->line = conf->exchange_line;
    }

    call->settings = ngx_pcalloc(cf->pool, 2 * call->n * sizeof(nox_buf_t));
    call->cvs = ngx_pcalloc(cf->pool,
                            call->n * sizeof(ngx_http_complex_value_t *));
    if (call->settings == NULL || call->cvs == NULL) {
        return NULL;
    }

    opt = opts.elts;

    for (i = 0; i < call->n; i++) {
        call->settings[2 * i].data = opt[i].name.data;
        call->settings[2 * i].len = (int32_t) opt[i].name.len;
        call->settings[2 * i + 1].data = opt[i].value.data;
        call->settings[2 * i + 1].len = (int32_t) opt[i].value.len;
        call->cvs[i] = opt[i].cv;
    }

    if (ngx_oauth_check_add_at(cf, ngx_http_oauth2_token_check, call,
                               &call->file, call->line)
        != NGX_OK)
    {
        return NULL;
    }

    return call;
}


/*
 * One setting: a fixed value (left out when not set), or a complex value
 * (its text when it has no variables, else evaluated per request)
 */

static ngx_int_t
ngx_http_oauth2_token_opt(ngx_array_t *opts, const char *name,
    ngx_str_t *value, ngx_http_complex_value_t *cv)
{
    ngx_http_oauth2_token_opt_t  *opt;

    if (cv == NULL && (value == NULL || value->data == NULL)) {
        return NGX_OK;
    }

    opt = ngx_array_push(opts);
    if (opt == NULL) {
        return NGX_ERROR;
    }

    opt->name.data = (u_char *) name;
    opt->name.len = ngx_strlen(name);

    if (cv) {
        opt->value = cv->value;
        opt->cv = cv->lengths ? cv : NULL;

    } else {
        opt->value = *value;
        opt->cv = NULL;
    }

    return NGX_OK;
}


/* in the validator child: does the managed core accept the client? */

static u_char *
ngx_http_oauth2_token_check(void *data, u_char *buf, u_char *last)
{
    ngx_http_oauth2_token_call_t  *call = data;

    u_char  *p;

    p = ngx_slprintf(buf, last, "auth_oauth2_token: ");

    return ngx_oauth_settings_check(call->settings, call->n,
                                    "the client setting", p, last);
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
    ngx_http_oauth2_token_loc_conf_t *olcf = conf;

    ngx_str_t  *value;

    if (olcf->client_id.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "is empty";
    }

    olcf->client_id = value[1];
    olcf->id_file = cf->conf_file->file.name;
    olcf->id_line = cf->conf_file->line;

    return NGX_CONF_OK;
}


/* cmd->offset: 0 the secret itself, 1 a file holding it */

static char *
ngx_http_oauth2_token_secret(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_oauth2_token_loc_conf_t *olcf = conf;

    ngx_str_t  *value, name, content;

    if (olcf->client_secret.data) {
        if (olcf->secret_from_file != (ngx_int_t) cmd->offset) {
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

    olcf->client_secret = content;
    olcf->secret_from_file = cmd->offset;
    olcf->secret_file = cf->conf_file->file.name;
    olcf->secret_line = cf->conf_file->line;

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


/*
 * zone=name:size [max_ttl=time] [stale_if_error=time], and
 * [negative_ttl=time] on the introspection cache
 */

static char *
ngx_http_oauth2_token_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_uint_t                allow;
    ngx_oauth_cache_conf_t  **field;

    field = (ngx_oauth_cache_conf_t **) (p + cmd->offset);

    if (*field != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    allow = NGX_OAUTH_CACHE_STALE | NGX_OAUTH_CACHE_REDIS;

    if (cmd->offset
        == offsetof(ngx_http_oauth2_token_loc_conf_t, introspect_cache))
    {
        allow |= NGX_OAUTH_CACHE_NEGATIVE;
    }

    return ngx_oauth_cache_conf_ex(cf, &ngx_http_oauth2_token_module,
                                   "auth_oauth2_token",
                                   NGX_HTTP_OAUTH2_DEFAULT_TTL, allow, field);
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


/*
 * auth_oauth2_token_client_auth method [key=file] [kid=id] [alg=name]
 * [aud=url]: how the module authenticates to the introspection and token
 * endpoints (the managed core writes the assertions)
 */

static char *
ngx_http_oauth2_token_client_auth(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_token_loc_conf_t *olcf = conf;

    ngx_str_t                       *value, name;
    ngx_uint_t                       i, needs;
    ngx_http_oauth2_token_method_t  *m;

    if (olcf->auth != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (m = ngx_http_oauth2_token_methods; m->name.len; m++) {
        if (m->name.len == value[1].len
            && ngx_strncmp(m->name.data, value[1].data, value[1].len) == 0)
        {
            break;
        }
    }

    if (m->name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": unknown method \"%V\" (client_secret_"
                           "basic, client_secret_post, client_secret_jwt, "
                           "private_key_jwt, tls_client_auth, none)",
                           &value[0], &value[1]);
        return NGX_CONF_ERROR;
    }

    olcf->auth = m - ngx_http_oauth2_token_methods;
    olcf->auth_file = cf->conf_file->file.name;
    olcf->auth_line = cf->conf_file->line;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "key=", 4) == 0
            && value[i].len > 4)
        {
            name.data = value[i].data + 4;
            name.len = value[i].len - 4;

            if (ngx_oauth_read_secret(cf, &name, NGX_HTTP_OAUTH2_KEY_MAX,
                                      &olcf->auth_key)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "kid=", 4) == 0
            && value[i].len > 4)
        {
            olcf->auth_kid.data = value[i].data + 4;
            olcf->auth_kid.len = value[i].len - 4;
            continue;
        }

        if (ngx_strncmp(value[i].data, "alg=", 4) == 0
            && value[i].len > 4)
        {
            olcf->auth_alg.data = value[i].data + 4;
            olcf->auth_alg.len = value[i].len - 4;
            continue;
        }

        if (ngx_strncmp(value[i].data, "aud=", 4) == 0
            && value[i].len > 4)
        {
            olcf->auth_aud.data = value[i].data + 4;
            olcf->auth_aud.len = value[i].len - 4;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": invalid parameter \"%V\"",
                           &value[0], &value[i]);
        return NGX_CONF_ERROR;
    }

    needs = m->needs;

    if ((needs & NGX_HTTP_OAUTH2_NEEDS_KEY) && olcf->auth_key.data == NULL) {
        return "needs key=file (a private JWK) with private_key_jwt";
    }

    if (!(needs & NGX_HTTP_OAUTH2_NEEDS_KEY) && olcf->auth_key.data) {
        return "takes key= only with private_key_jwt";
    }

    /*
     * the endpoints are internal locations: the assertion's audience (the
     * authorization server's token endpoint URL) cannot be guessed
     */

    if ((needs & NGX_HTTP_OAUTH2_NEEDS_AUD) && olcf->auth_aud.data == NULL) {
        return "needs aud=<the authorization server's token endpoint URL> "
               "with client_secret_jwt and private_key_jwt";
    }

    if (!(needs & NGX_HTTP_OAUTH2_NEEDS_AUD)
        && (olcf->auth_aud.data || olcf->auth_kid.data || olcf->auth_alg.data))
    {
        return "takes aud=, kid= and alg= only with client_secret_jwt and "
               "private_key_jwt";
    }

    return NGX_CONF_OK;
}


/* auth_oauth2_token_resource value: repeatable, each a "resource" */

static char *
ngx_http_oauth2_token_resource(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_token_loc_conf_t *olcf = conf;

    ngx_str_t                         *value;
    ngx_http_complex_value_t          *cv;
    ngx_http_compile_complex_value_t   ccv;

    if (olcf->resources == NGX_CONF_UNSET_PTR) {
        olcf->resources = ngx_array_create(cf->pool, 2,
                                           sizeof(ngx_http_complex_value_t));
        if (olcf->resources == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    cv = ngx_array_push(olcf->resources);
    if (cv == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = cv;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* auth_oauth2_token_allow_nested [delimiter=.] [quote="] */

static char *
ngx_http_oauth2_token_allow_nested(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_token_loc_conf_t *olcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i;

    if (olcf->nested != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    olcf->nested = 1;
    ngx_str_set(&olcf->delimiter, ".");
    ngx_str_set(&olcf->quote, "\"");

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "delimiter=", 10) == 0
            && value[i].len > 10)
        {
            olcf->delimiter.data = value[i].data + 10;
            olcf->delimiter.len = value[i].len - 10;
            continue;
        }

        if (ngx_strncmp(value[i].data, "quote=", 6) == 0
            && value[i].len > 6)
        {
            olcf->quote.data = value[i].data + 6;
            olcf->quote.len = value[i].len - 6;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": invalid parameter \"%V\"",
                           &value[0], &value[i]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * auth_oauth2_token_protected_resource resource=url
 * [authorization_server=url]... [scope=name]... [bearer_methods=header,...]
 * [resource_name=text]: the location answers the RFC 9728 protected
 * resource metadata document, built here once
 */

static char *
ngx_http_oauth2_token_protected_resource(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_token_loc_conf_t *olcf = conf;

    u_char                    *p;
    size_t                     len;
    ngx_str_t                 *value, v, resource, name, methods;
    ngx_uint_t                 i, pass, n;
    ngx_http_core_loc_conf_t  *clcf;

    static const char  *members[] = {
        "authorization_servers", "scopes_supported"
    };
    static ngx_str_t    prefixes[] = {
        ngx_string("authorization_server="), ngx_string("scope=")
    };

    if (olcf->document.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    ngx_str_null(&resource);
    ngx_str_null(&name);
    ngx_str_set(&methods, "header");

    for (i = 1; i < cf->args->nelts; i++) {
        if (ngx_strncmp(value[i].data, "resource=", 9) == 0) {
            resource.data = value[i].data + 9;
            resource.len = value[i].len - 9;

        } else if (ngx_strncmp(value[i].data, "resource_name=", 14) == 0) {
            name.data = value[i].data + 14;
            name.len = value[i].len - 14;

        } else if (ngx_strncmp(value[i].data, "bearer_methods=", 15) == 0) {
            methods.data = value[i].data + 15;
            methods.len = value[i].len - 15;

        } else if (ngx_strncmp(value[i].data, "authorization_server=", 21)
                   != 0
                   && ngx_strncmp(value[i].data, "scope=", 6) != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": invalid parameter \"%V\"",
                               &value[0], &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    if (resource.len == 0) {
        return "needs resource=<the resource identifier URL>";
    }

    /* a generous bound: every byte escaped as \u00XX */

    len = 256;

    for (i = 1; i < cf->args->nelts; i++) {
        len += 6 * value[i].len + 8;
    }

    olcf->document.data = ngx_pnalloc(cf->pool, len);
    if (olcf->document.data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_cpymem(olcf->document.data, "{\"resource\":",
                   sizeof("{\"resource\":") - 1);
    p = ngx_http_oauth2_token_json(p, &resource);

    for (pass = 0; pass < 2; pass++) {
        n = 0;

        for (i = 1; i < cf->args->nelts; i++) {
            if (value[i].len < prefixes[pass].len
                || ngx_strncmp(value[i].data, prefixes[pass].data,
                               prefixes[pass].len)
                   != 0)
            {
                continue;
            }

            p = ngx_sprintf(p, n++ ? "," : ",\"%s\":[", members[pass]);

            v.data = value[i].data + prefixes[pass].len;
            v.len = value[i].len - prefixes[pass].len;
            p = ngx_http_oauth2_token_json(p, &v);
        }

        if (n) {
            *p++ = ']';
        }
    }

    p = ngx_cpymem(p, ",\"bearer_methods_supported\":[",
                   sizeof(",\"bearer_methods_supported\":[") - 1);

    n = 0;

    while (methods.len) {
        v.data = methods.data;

        for (v.len = 0; v.len < methods.len && methods.data[v.len] != ',';
             v.len++) { /* void */ }

        methods.data += v.len;
        methods.len -= v.len;

        if (methods.len) {
            methods.data++;
            methods.len--;
        }

        if (v.len == 0) {
            continue;
        }

        if (n++) {
            *p++ = ',';
        }

        p = ngx_http_oauth2_token_json(p, &v);
    }

    *p++ = ']';

    if (name.len) {
        p = ngx_cpymem(p, ",\"resource_name\":",
                       sizeof(",\"resource_name\":") - 1);
        p = ngx_http_oauth2_token_json(p, &name);
    }

    *p++ = '}';

    olcf->document.len = p - olcf->document.data;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_oauth2_token_document_handler;

    return NGX_CONF_OK;
}


/* a JSON string: '"' and '\' escaped, control bytes as \u00XX */

static u_char *
ngx_http_oauth2_token_json(u_char *p, ngx_str_t *value)
{
    u_char      c;
    ngx_uint_t  i;

    *p++ = '"';

    for (i = 0; i < value->len; i++) {
        c = value->data[i];

        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = c;

        } else if (c < 0x20) {
            p = ngx_sprintf(p, "\\u%04xi", (ngx_uint_t) c);

        } else {
            *p++ = c;
        }
    }

    *p++ = '"';

    return p;
}



/* ---- auth_jwt_introspect: the introspection half ----------------------- */

/*
 * The auth_jwt module is merged before this one, so the location's JWT
 * configuration is final here: a location with auth_jwt_introspect needs
 * introspection on, in the same phase as auth_jwt.
 */

static char *
ngx_http_oauth2_token_hybrid_merge(ngx_conf_t *cf,
    ngx_http_oauth2_token_loc_conf_t *conf)
{
    ngx_str_t   file;
    ngx_uint_t  mode, phase, line;

    mode = ngx_http_auth_jwt_hybrid_conf(cf, &phase, &file, &line);

    conf->hybrid = (mode != NGX_OAUTH_HYBRID_OFF);

    if (!conf->hybrid) {
        return NGX_CONF_OK;
    }

    if (!conf->introspect) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"auth_jwt_introspect\" needs "
                      "\"auth_oauth2_token_introspect on\" (and its "
                      "endpoint) where auth_jwt is on in %V:%ui",
                      &file, line);
        return NGX_CONF_ERROR;
    }

    if (conf->phase != phase) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"auth_jwt_introspect\" needs auth_jwt_phase and "
                      "auth_oauth2_token_phase to be the same in %V:%ui",
                      &file, line);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_oauth2_token_hybrid(ngx_http_request_t *r, ngx_str_t *token,
    ngx_uint_t introspect)
{
    ngx_http_oauth2_token_ctx_t       *ctx;
    ngx_http_oauth2_token_loc_conf_t  *olcf;

    olcf = ngx_http_get_module_loc_conf(r, ngx_http_oauth2_token_module);

    if (!olcf->hybrid || !olcf->introspect) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "auth_jwt_introspect: no introspection in this "
                      "location");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!introspect && !olcf->exchange) {
        return NGX_OK;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_oauth2_token_module);

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_oauth2_token_ctx_t));
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /* zeroed as in ngx_http_oauth2_token_handler */

        ctx->active = -1;
        ctx->token = *token;
        ctx->no_introspect = !introspect;

        ngx_http_set_ctx(r, ctx, ngx_http_oauth2_token_module);

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "auth_oauth2_token: token of %uz bytes from auth_jwt, "
                       "introspect: %ui", token->len, introspect);
    }

    return ngx_http_oauth2_token_steps(r, olcf, ctx);
}


ngx_uint_t
ngx_http_oauth2_token_introspected(ngx_http_request_t *r)
{
    ngx_http_oauth2_token_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_oauth2_token_module);

    return (ctx != NULL && ctx->introspected);
}
