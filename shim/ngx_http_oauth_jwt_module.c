/*
 * NginxOAuth shim: JWT/JWS validation, the auth_jwt* directives and the
 * $jwt_* variables (drop-in for nginx-auth-jwt).
 *
 * The request flow (ARCHITECTURE.md):
 *   handler -> token from Authorization or token=$var
 *           -> the key sets of auth_jwt_key_request from the shared key
 *              cache (a fetch only when a set is missing, due, or lacks
 *              the token's kid; see ngx_oauth_keys.c), or one
 *              in-memory subrequest per key request with
 *              auth_jwt_key_cache 0
 *           -> nox_jwt_verify (managed: decode, signature, exp/nbf,
 *              revocation, require_claim/require_header rules); with
 *              auth_jwt_type encrypted or nested, nox_jwt_verify_ex
 *              (decryption first)
 *           -> auth_jwt_require values (here, after verification)
 *           -> NGX_OK / 401 / 403 / 500
 * Decoded header and payload stay in the request ctx for the variables.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_oauth_core.h"
#include "ngx_oauth_cache.h"
#include "ngx_oauth_jwt.h"
#include "ngx_oauth_keys.h"
#include "ngx_oauth_metrics.h"
#include "ngx_oauth_redis.h"
#include "ngx_oauth_hybrid.h"


#define NGX_HTTP_AUTH_JWT_PHASE_ACCESS     0
#define NGX_HTTP_AUTH_JWT_PHASE_PREACCESS  1

#define NGX_HTTP_AUTH_JWT_CHALLENGE_ON     1   /* auth_jwt_www_authenticate */
#define NGX_HTTP_AUTH_JWT_CHALLENGE_OFF    2
#define NGX_HTTP_AUTH_JWT_CHALLENGE_VALUE  3

#define NGX_HTTP_AUTH_JWT_MAX_REVOCATION   (1024 * 1024)
#define NGX_HTTP_AUTH_JWT_MAX_FILES        64    /* per worker, see _file_t */

#define NGX_HTTP_AUTH_JWT_CACHE_KIND       'j'
#define NGX_HTTP_AUTH_JWT_CACHE_TTL        300
#define NGX_HTTP_AUTH_JWT_CACHE_MAX_VALUE  (16 * 1024)  /* header+payload */

/* auth_jwt_introspect: the path of this request's token (ctx->path) */
#define NGX_HTTP_AUTH_JWT_PATH_UNKNOWN     0
#define NGX_HTTP_AUTH_JWT_PATH_LOCAL       1   /* a JWS of the location */
#define NGX_HTTP_AUTH_JWT_PATH_INTROSPECT  2   /* any other token */


typedef struct {
    ngx_str_t                  path;
    ngx_str_t                  content;
    ngx_int_t                  format;
    int64_t                    handle;      /* per worker, built lazily */
    int32_t                    status;      /* of the worker's load */
    ngx_http_complex_value_t  *cv;          /* a path with variables: read
                                               per worker when first seen
                                               (ngx_http_auth_jwt_file_t) */
} ngx_http_auth_jwt_key_file_t;


/*
 * A key file named by a path with variables, kept per worker: read and
 * parsed when the path is first seen, again only when its mtime, size or
 * inode change; at most NGX_HTTP_AUTH_JWT_MAX_FILES, least recently used
 * dropped first
 */

typedef struct {
    ngx_queue_t                queue;       /* most recently used first */
    ngx_str_t                  path;        /* full path, ngx_alloc'ed */
    ngx_int_t                  format;
    time_t                     mtime;
    off_t                      size;
    ngx_file_uniq_t            uniq;
    int64_t                    handle;
    ngx_uint_t                 used;        /* the batch that last used it */
    u_char                     digest[NOX_SHA256_LEN];  /* of the content */
} ngx_http_auth_jwt_file_t;


typedef struct {
    ngx_str_t                  path;
    ngx_str_t                  content;
    ngx_int_t                  kind;        /* NOX_REVOKE_* */
} ngx_http_auth_jwt_revocation_t;


/* http{}: the size of the auth_jwt_keys zone (auth_jwt_key_zone) */

typedef struct {
    size_t                     key_zone_size;  /* NGX_CONF_UNSET_SIZE:
                                                  the default */
} ngx_http_auth_jwt_main_conf_t;


typedef struct {
    ngx_int_t                  target;      /* NOX_TARGET_* */
    ngx_str_t                  name;
    ngx_int_t                  op;          /* NOX_OP_*, | NOX_OP_NOT */
    ngx_str_t                  op_name;     /* as written: "!match" */
    ngx_int_t                  kind;        /* NOX_VALUE_* */
    ngx_str_t                  value;
    ngx_http_complex_value_t  *cv;          /* NOX_VALUE_VARIABLE */
    ngx_str_t                  file;        /* where it was defined */
    ngx_uint_t                 line;
} ngx_http_auth_jwt_rule_t;


typedef struct {
    ngx_http_auth_jwt_rule_t  *rule;
    ngx_str_t                  delimiter;   /* empty: no nesting */
    ngx_str_t                  quote;
} ngx_http_auth_jwt_rule_check_t;


typedef struct {
    int64_t                    handle;      /* per worker, built lazily */
    int32_t                    status;
    u_char                     identity[NOX_SHA256_LEN];  /* of the key
                                               files and the fixed checks:
                                               verified-token cache keys */
    ngx_uint_t                 recheck;     /* a check reads variables */
} ngx_http_auth_jwt_policy_t;


typedef struct {
    ngx_int_t                  target;
    ngx_str_t                  path;        /* names separated by 0x00 */
    ngx_uint_t                 multi;
} ngx_http_auth_jwt_variable_t;


/*
 * a directive whose value is one of a few names (cmd->post of
 * ngx_http_auth_jwt_enum_slot): the names, the error for another value
 * (its format takes the value, %V), and where to keep the directive's
 * file and line (offsets of an ngx_str_t and an ngx_uint_t; -1: not kept)
 */

typedef struct {
    ngx_conf_enum_t           *names;
    const char                *invalid;
    ngx_int_t                  file;
    ngx_int_t                  line;
} ngx_http_auth_jwt_enum_t;


/*
 * auth_jwt_provider: one issuer, its key sources (parsed by the
 * auth_jwt_key_file, auth_jwt_key_request and auth_jwt_discovery handlers
 * into keys, a scratch location configuration) and its RFC 9068 options
 */

typedef char *(*ngx_http_auth_jwt_set_pt)(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


typedef struct {
    ngx_str_t                  issuer;
    void                      *keys;        /* ngx_http_auth_jwt_loc_conf_t:
                                               key_files, key_requests,
                                               rules (discovery's iss) */
    ngx_array_t               *audiences;   /* of ngx_str_t */
    ngx_uint_t                 flags;       /* NOX_PROFILE_* */
    time_t                     max_lifetime;/* 0: no limit */
    ngx_str_t                  file;        /* where it is defined */
    ngx_uint_t                 line;
} ngx_http_auth_jwt_provider_t;


typedef struct {
    ngx_http_complex_value_t  *realm;       /* NULL: unset */
    ngx_flag_t                 enable;
    ngx_str_t                  file;        /* where auth_jwt is */
    ngx_uint_t                 line;
    ngx_uint_t                *warned;      /* shared with inheritors */
    ngx_http_complex_value_t  *token;
    ngx_array_t               *key_files;   /* of key_file_t * */
    ngx_oauth_keys_conf_t      keys;        /* auth_jwt_key_request,
                                               auth_jwt_discovery and
                                               their cache */
    ngx_flag_t                 validate_exp;
    ngx_flag_t                 validate_sig;
    time_t                     leeway;
    ngx_uint_t                 phase;
    ngx_array_t               *revocations; /* of revocation_t * */
    ngx_array_t               *requires;    /* of require_t */
    ngx_array_t               *rules;       /* of rule_t */
    ngx_flag_t                 nested;
    ngx_str_t                  delimiter;
    ngx_str_t                  quote;
    ngx_http_auth_jwt_policy_t *policy;
    ngx_oauth_cache_conf_t    *verify_cache;
    ngx_uint_t                 challenge;   /* NGX_HTTP_AUTH_JWT_CHALLENGE_* */
    ngx_http_complex_value_t  *challenge_value;
    ngx_uint_t                 type;        /* NOX_JWT_* (auth_jwt_type) */
    ngx_str_t                  type_file;   /* where auth_jwt_type is */
    ngx_uint_t                 type_line;
    ngx_array_t               *providers;   /* of provider_t *: this level's
                                               auth_jwt_provider, or the
                                               inherited ones */
    ngx_array_t               *provider_confs; /* of loc_conf_t *: per
                                               provider, this location's
                                               settings with its keys */
    ngx_http_auth_jwt_provider_t *provider; /* in a provider conf: its
                                               provider */
    ngx_uint_t                 introspect;  /* NGX_OAUTH_HYBRID_* */
    ngx_str_t                  introspect_file;
    ngx_uint_t                 introspect_line;
} ngx_http_auth_jwt_loc_conf_t;


typedef struct {
    ngx_str_t                  token;
    ngx_oauth_keys_ctx_t       keys;        /* of the key requests */
    ngx_array_t                files;       /* of ngx_http_auth_jwt_file_t *,
                                               key files with variables */
    ngx_uint_t                 files_failed;
    ngx_uint_t                 decoded;
    ngx_uint_t                 verified;
    ngx_str_t                  header;
    ngx_str_t                  payload;
    ngx_str_t                  inner;       /* nested: the inner JWS */

    ngx_http_auth_jwt_loc_conf_t *conf;     /* auth_jwt_provider: the
                                               provider conf the token's
                                               iss chose */
    ngx_oauth_redis_get_t     *l2;          /* verify cache: Redis */

    /* auth_jwt_introspect */
    ngx_uint_t                 path;        /* NGX_HTTP_AUTH_JWT_PATH_* */
    ngx_uint_t                 checked;     /* the token was verified here
                                               (or tried): $oauth_token_path */
    ngx_uint_t                 passed;      /* verified and required */
} ngx_http_auth_jwt_ctx_t;


static ngx_int_t ngx_http_auth_jwt_access_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_auth_jwt_preaccess_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_auth_jwt_handler(ngx_http_request_t *r,
    ngx_uint_t phase);
static ngx_int_t ngx_http_auth_jwt_token(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_str_t *token);
static ngx_int_t ngx_http_auth_jwt_key_files(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_http_auth_jwt_ctx_t *ctx);
static ngx_http_auth_jwt_file_t *ngx_http_auth_jwt_file_get(
    ngx_http_request_t *r, ngx_str_t *path, ngx_int_t format,
    ngx_uint_t batch);
static ngx_int_t ngx_http_auth_jwt_file_read(ngx_http_request_t *r,
    ngx_str_t *path, ngx_file_info_t *fi, ngx_str_t *content);
static ngx_int_t ngx_http_auth_jwt_cache_key(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_http_auth_jwt_ctx_t *ctx,
    u_char *hash);
static ngx_int_t ngx_http_auth_jwt_cache_hit(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_http_auth_jwt_ctx_t *ctx,
    int64_t policy, nox_buf_t *values, int32_t n);
static ngx_int_t ngx_http_auth_jwt_cache_split(
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_http_auth_jwt_ctx_t *ctx,
    ngx_str_t *cached, int32_t aux);
static ngx_int_t ngx_http_auth_jwt_verify_token(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_http_auth_jwt_ctx_t *ctx,
    int64_t policy, int64_t *extra, int32_t n_extra, nox_buf_t *values,
    int32_t n, int32_t *rc, int32_t *detail);
static void ngx_http_auth_jwt_cache_store(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_http_auth_jwt_ctx_t *ctx,
    u_char *hash);
static ngx_int_t ngx_http_auth_jwt_decision(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_http_auth_jwt_ctx_t *ctx,
    int32_t rc, int32_t detail);
static ngx_int_t ngx_http_auth_jwt_verify(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_http_auth_jwt_ctx_t *ctx);
static ngx_int_t ngx_http_auth_jwt_require(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf);
static int64_t ngx_http_auth_jwt_policy(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf);
static ngx_int_t ngx_http_auth_jwt_policy_identity(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, u_char *hash, ngx_uint_t *recheck);
static int32_t ngx_http_auth_jwt_policy_build(
    ngx_http_auth_jwt_loc_conf_t *jlcf, int64_t *handle, ngx_log_t *log);
static ngx_int_t ngx_http_auth_jwt_reject(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_uint_t status,
    ngx_uint_t invalid);
static void ngx_http_auth_jwt_log_reject(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_http_auth_jwt_ctx_t *ctx,
    int32_t rc, int32_t detail);
static ngx_int_t ngx_http_auth_jwt_render(ngx_http_request_t *r,
    ngx_str_t *json, ngx_str_t *path, ngx_int_t kind,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_str_t *value);

static ngx_int_t ngx_http_auth_jwt_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_auth_jwt_variable_prefix(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_auth_jwt_variable_claims(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_auth_jwt_variable_nowtime(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_auth_jwt_variable_payload(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_auth_jwt_variable_set(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_auth_jwt_variable_lookup(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, ngx_int_t target, ngx_str_t *path,
    ngx_int_t kind);

static void *ngx_http_auth_jwt_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_auth_jwt_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_auth_jwt_init(ngx_conf_t *cf);

static char *ngx_http_auth_jwt(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_auth_jwt_set_variable(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_auth_jwt_key_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_auth_jwt_key_request_conf(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_auth_jwt_enum_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_auth_jwt_enum_find(ngx_conf_enum_t *e,
    ngx_str_t *name, ngx_uint_t *value);
static char *ngx_http_auth_jwt_revocation(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_auth_jwt_require_conf(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_auth_jwt_rule(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_auth_jwt_www_authenticate(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_auth_jwt_allow_nested(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_auth_jwt_verify_cache(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_auth_jwt_discovery(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static void *ngx_http_auth_jwt_create_main_conf(ngx_conf_t *cf);
static ngx_int_t ngx_http_auth_jwt_keys_zone(ngx_conf_t *cf,
    ngx_http_auth_jwt_loc_conf_t *conf);
static char *ngx_http_auth_jwt_add_entry(ngx_conf_t *cf, ngx_array_t **list,
    void *entry, ngx_oauth_check_pt check);
static ngx_int_t ngx_http_auth_jwt_key_format(ngx_conf_t *cf,
    ngx_str_t *value, ngx_int_t *format);

static void ngx_http_auth_jwt_warn_skipped(int64_t handle, ngx_str_t *path,
    ngx_log_t *log);
static u_char *ngx_http_auth_jwt_check_key_file(void *data, u_char *buf,
    u_char *last);
static u_char *ngx_http_auth_jwt_check_revocation(void *data, u_char *buf,
    u_char *last);
static ngx_int_t ngx_http_auth_jwt_add_rule_check(ngx_conf_t *cf,
    ngx_http_auth_jwt_rule_t *rule, ngx_str_t *delimiter, ngx_str_t *quote);
static u_char *ngx_http_auth_jwt_check_rule(void *data, u_char *buf,
    u_char *last);
static ngx_int_t ngx_http_auth_jwt_hybrid(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_http_auth_jwt_ctx_t *ctx);
static ngx_int_t ngx_http_auth_jwt_hybrid_passed(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_http_auth_jwt_ctx_t *ctx);
static ngx_int_t ngx_http_auth_jwt_local_jws(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_http_auth_jwt_ctx_t *ctx);
static char *ngx_http_auth_jwt_hybrid_merge(ngx_conf_t *cf,
    ngx_http_auth_jwt_loc_conf_t *conf, ngx_http_auth_jwt_loc_conf_t *prev);
static ngx_int_t ngx_http_auth_jwt_variable_path(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_auth_jwt_token_shape(ngx_str_t *token,
    ngx_uint_t type);
static ngx_int_t ngx_http_auth_jwt_add_type_check(ngx_conf_t *cf,
    ngx_http_auth_jwt_loc_conf_t *conf);
static u_char *ngx_http_auth_jwt_check_type(void *data, u_char *buf,
    u_char *last);

static ngx_int_t ngx_http_auth_jwt_provider_select(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_http_auth_jwt_ctx_t *ctx);
static ngx_int_t ngx_http_auth_jwt_token_issuer(ngx_http_request_t *r,
    ngx_str_t *token, ngx_str_t *iss);
static ngx_http_auth_jwt_loc_conf_t *ngx_http_auth_jwt_provider_find(
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_str_t *iss);
static ngx_int_t ngx_http_auth_jwt_variable_provider(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static char *ngx_http_auth_jwt_provider_conf(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_auth_jwt_provider_call(ngx_conf_t *cf,
    ngx_http_auth_jwt_provider_t *pv, ngx_http_auth_jwt_set_pt handler,
    const char *name, ngx_str_t *arg1, ngx_str_t *more, ngx_uint_t nmore);
static char *ngx_http_auth_jwt_provider_merge(ngx_conf_t *cf,
    ngx_http_auth_jwt_loc_conf_t *conf);
static int32_t ngx_http_auth_jwt_provider_policy(
    ngx_http_auth_jwt_provider_t *pv, int64_t h);
static size_t ngx_http_auth_jwt_provider_identity_len(
    ngx_http_auth_jwt_provider_t *pv);
static u_char *ngx_http_auth_jwt_provider_identity(
    ngx_http_auth_jwt_provider_t *pv, u_char *p);
static u_char *ngx_http_auth_jwt_check_provider(void *data, u_char *buf,
    u_char *last);


/* operator names; each may also be written with a "!" prefix */

static ngx_conf_enum_t  ngx_http_auth_jwt_ops[] = {
    { ngx_string("eq"), NOX_OP_EQ },
    { ngx_string("ne"), NOX_OP_NE },
    { ngx_string("gt"), NOX_OP_GT },
    { ngx_string("ge"), NOX_OP_GE },
    { ngx_string("lt"), NOX_OP_LT },
    { ngx_string("le"), NOX_OP_LE },
    { ngx_string("intersect"), NOX_OP_INTERSECT },
    { ngx_string("any"), NOX_OP_INTERSECT },
    { ngx_string("nintersect"), NOX_OP_NINTERSECT },
    { ngx_string("in"), NOX_OP_IN },
    { ngx_string("nin"), NOX_OP_NIN },
    { ngx_string("match"), NOX_OP_MATCH },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_auth_jwt_types[] = {
    { ngx_string("signed"), NOX_JWT_SIGNED },
    { ngx_string("encrypted"), NOX_JWT_ENCRYPTED },
    { ngx_string("nested"), NOX_JWT_NESTED },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_auth_jwt_phases[] = {
    { ngx_string("access"), NGX_HTTP_AUTH_JWT_PHASE_ACCESS },
    { ngx_string("preaccess"), NGX_HTTP_AUTH_JWT_PHASE_PREACCESS },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_auth_jwt_introspects[] = {
    { ngx_string("off"), NGX_OAUTH_HYBRID_OFF },
    { ngx_string("opaque"), NGX_OAUTH_HYBRID_OPAQUE },
    { ngx_string("all"), NGX_OAUTH_HYBRID_ALL },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_auth_jwt_challenges[] = {
    { ngx_string("on"), NGX_HTTP_AUTH_JWT_CHALLENGE_ON },
    { ngx_string("off"), NGX_HTTP_AUTH_JWT_CHALLENGE_OFF },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_auth_jwt_key_formats[] = {
    { ngx_string("jwks"), NOX_KEYS_JWKS },
    { ngx_string("keyval"), NOX_KEYS_KEYVAL },
    { ngx_null_string, 0 }
};


static ngx_http_auth_jwt_enum_t  ngx_http_auth_jwt_phase_enum = {
    ngx_http_auth_jwt_phases,
    "\"auth_jwt_phase\": invalid phase \"%V\", it must be \"access\" or "
    "\"preaccess\"",
    -1, -1
};


static ngx_http_auth_jwt_enum_t  ngx_http_auth_jwt_type_enum = {
    ngx_http_auth_jwt_types,
    "\"auth_jwt_type\": invalid type \"%V\", it must be \"signed\", "
    "\"encrypted\" or \"nested\"",
    offsetof(ngx_http_auth_jwt_loc_conf_t, type_file),
    offsetof(ngx_http_auth_jwt_loc_conf_t, type_line)
};


static ngx_http_auth_jwt_enum_t  ngx_http_auth_jwt_introspect_enum = {
    ngx_http_auth_jwt_introspects,
    "\"auth_jwt_introspect\": invalid value \"%V\": use off, opaque or all",
    offsetof(ngx_http_auth_jwt_loc_conf_t, introspect_file),
    offsetof(ngx_http_auth_jwt_loc_conf_t, introspect_line)
};


static ngx_queue_t  ngx_http_auth_jwt_files;          /* per worker */
static ngx_uint_t   ngx_http_auth_jwt_nfiles;
static ngx_uint_t   ngx_http_auth_jwt_batch;
static ngx_array_t *ngx_http_auth_jwt_type_warned;    /* validator child:
                                                         one warning per
                                                         set of key files */


static ngx_command_t  ngx_http_auth_jwt_commands[] = {

    { ngx_string("auth_jwt"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_HTTP_LMT_CONF
                        |NGX_CONF_TAKE12,
      ngx_http_auth_jwt,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("auth_jwt_claim_set"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_auth_jwt_set_variable,
      NGX_HTTP_LOC_CONF_OFFSET,
      NOX_TARGET_CLAIM,
      NULL },

    { ngx_string("auth_jwt_header_set"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_auth_jwt_set_variable,
      NGX_HTTP_LOC_CONF_OFFSET,
      NOX_TARGET_HEADER,
      NULL },

    { ngx_string("auth_jwt_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_HTTP_LMT_CONF
                        |NGX_CONF_TAKE12,
      ngx_http_auth_jwt_key_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("auth_jwt_key_request"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_HTTP_LMT_CONF
                        |NGX_CONF_TAKE12,
      ngx_http_auth_jwt_key_request_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("auth_jwt_discovery"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_auth_jwt_discovery,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("auth_jwt_key_cache"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_HTTP_LMT_CONF
                        |NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_auth_jwt_loc_conf_t, keys.ttl),
      NULL },

    { ngx_string("auth_jwt_key_refresh"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_HTTP_LMT_CONF
                        |NGX_CONF_1MORE,
      ngx_oauth_keys_refresh_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_auth_jwt_loc_conf_t, keys),
      NULL },

    { ngx_string("auth_jwt_validate_exp"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_HTTP_LMT_CONF
                        |NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_auth_jwt_loc_conf_t, validate_exp),
      NULL },

    { ngx_string("auth_jwt_validate_sig"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_HTTP_LMT_CONF
                        |NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_auth_jwt_loc_conf_t, validate_sig),
      NULL },

    { ngx_string("auth_jwt_leeway"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_auth_jwt_loc_conf_t, leeway),
      NULL },

    { ngx_string("auth_jwt_phase"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_auth_jwt_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_auth_jwt_loc_conf_t, phase),
      &ngx_http_auth_jwt_phase_enum },

    { ngx_string("auth_jwt_revocation_list_sub"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_HTTP_LMT_CONF
                        |NGX_CONF_TAKE1,
      ngx_http_auth_jwt_revocation,
      NGX_HTTP_LOC_CONF_OFFSET,
      NOX_REVOKE_SUB,
      NULL },

    { ngx_string("auth_jwt_revocation_list_kid"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_HTTP_LMT_CONF
                        |NGX_CONF_TAKE1,
      ngx_http_auth_jwt_revocation,
      NGX_HTTP_LOC_CONF_OFFSET,
      NOX_REVOKE_KID,
      NULL },

    { ngx_string("auth_jwt_require"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_HTTP_LMT_CONF
                        |NGX_CONF_1MORE,
      ngx_http_auth_jwt_require_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("auth_jwt_require_claim"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_HTTP_LMT_CONF
                        |NGX_CONF_TAKE3,
      ngx_http_auth_jwt_rule,
      NGX_HTTP_LOC_CONF_OFFSET,
      NOX_TARGET_CLAIM,
      NULL },

    { ngx_string("auth_jwt_require_header"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_HTTP_LMT_CONF
                        |NGX_CONF_TAKE3,
      ngx_http_auth_jwt_rule,
      NGX_HTTP_LOC_CONF_OFFSET,
      NOX_TARGET_HEADER,
      NULL },

    { ngx_string("auth_jwt_allow_nested"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF
                        |NGX_CONF_NOARGS|NGX_CONF_TAKE12,
      ngx_http_auth_jwt_allow_nested,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("auth_jwt_www_authenticate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_HTTP_LMT_CONF
                        |NGX_CONF_TAKE1,
      ngx_http_auth_jwt_www_authenticate,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("auth_jwt_type"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_HTTP_LMT_CONF
                        |NGX_CONF_TAKE1,
      ngx_http_auth_jwt_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_auth_jwt_loc_conf_t, type),
      &ngx_http_auth_jwt_type_enum },

    { ngx_string("auth_jwt_verify_cache"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE123,
      ngx_http_auth_jwt_verify_cache,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("auth_jwt_provider"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_auth_jwt_provider_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("auth_jwt_introspect"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_auth_jwt_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_auth_jwt_loc_conf_t, introspect),
      &ngx_http_auth_jwt_introspect_enum },

    { ngx_string("auth_jwt_key_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_oauth_keys_zone_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_auth_jwt_main_conf_t, key_zone_size),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_oauth_jwt_module_ctx = {
    ngx_http_auth_jwt_add_variables,       /* preconfiguration */
    ngx_http_auth_jwt_init,                /* postconfiguration */

    ngx_http_auth_jwt_create_main_conf,    /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_auth_jwt_create_loc_conf,     /* create location configuration */
    ngx_http_auth_jwt_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_oauth_jwt_module = {
    NGX_MODULE_V1,
    &ngx_http_oauth_jwt_module_ctx,        /* module context */
    ngx_http_auth_jwt_commands,            /* module directives */
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


static ngx_http_variable_t  ngx_http_auth_jwt_vars[] = {

    { ngx_string("jwt_header_"), NULL, ngx_http_auth_jwt_variable_prefix,
      NOX_TARGET_HEADER, NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_PREFIX, 0 },

    { ngx_string("jwt_claim_"), NULL, ngx_http_auth_jwt_variable_prefix,
      NOX_TARGET_CLAIM, NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_PREFIX, 0 },

    { ngx_string("jwt_claims"), NULL, ngx_http_auth_jwt_variable_claims,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("jwt_nowtime"), NULL, ngx_http_auth_jwt_variable_nowtime,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("jwt_payload"), NULL, ngx_http_auth_jwt_variable_payload,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("jwt_provider"), NULL, ngx_http_auth_jwt_variable_provider,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("oauth_token_path"), NULL, ngx_http_auth_jwt_variable_path,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};



/* ---- request handling -------------------------------------------------- */

static ngx_int_t
ngx_http_auth_jwt_access_handler(ngx_http_request_t *r)
{
    return ngx_oauth_metrics_done(r, NGX_OAUTH_M_JWT,
               ngx_http_auth_jwt_handler(r, NGX_HTTP_AUTH_JWT_PHASE_ACCESS));
}


static ngx_int_t
ngx_http_auth_jwt_preaccess_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    rc = ngx_oauth_metrics_done(r, NGX_OAUTH_M_JWT,
             ngx_http_auth_jwt_handler(r, NGX_HTTP_AUTH_JWT_PHASE_PREACCESS));

    /* NGX_OK would skip the other preaccess handlers (limit_req ...) */

    return (rc == NGX_OK) ? NGX_DECLINED : rc;
}


static ngx_int_t
ngx_http_auth_jwt_handler(ngx_http_request_t *r, ngx_uint_t phase)
{
    ngx_int_t                      rc;
    ngx_http_auth_jwt_ctx_t       *ctx;
    ngx_http_auth_jwt_loc_conf_t  *jlcf, *loc;

    jlcf = ngx_http_get_module_loc_conf(r, ngx_http_oauth_jwt_module);

    if (!jlcf->enable || jlcf->phase != phase) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_oauth_jwt_module);

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_auth_jwt_ctx_t));
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /*
         * set by ngx_pcalloc():
         *
         *     ctx->files_failed = 0;
         *     ctx->decoded = 0;
         *     ctx->verified = 0;
         *     ctx->keys: see ngx_oauth_keys_ctx_init()
         */

        if (ngx_oauth_keys_ctx_init(r, &ctx->keys) != NGX_OK
            || ngx_array_init(&ctx->files, r->pool, 1,
                              sizeof(ngx_http_auth_jwt_file_t *))
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_set_ctx(r, ctx, ngx_http_oauth_jwt_module);

        if (!ngx_oauth_managed_ready) {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "auth_jwt: the managed library is not loaded in "
                          "this worker");
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rc = ngx_http_auth_jwt_token(r, jlcf, &ctx->token);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_DECLINED) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "auth_jwt: no token in the request");
            ngx_oauth_metrics_reason(r, NGX_OAUTH_M_JWT, NGX_OAUTH_R_MISSING);
            return ngx_http_auth_jwt_reject(r, jlcf, NGX_HTTP_UNAUTHORIZED, 0);
        }

        ctx->checked = (jlcf->introspect == NGX_OAUTH_HYBRID_OFF);
    }

    if (jlcf->introspect != NGX_OAUTH_HYBRID_OFF) {
        rc = ngx_http_auth_jwt_hybrid(r, jlcf, ctx);
        if (rc != NGX_DECLINED) {
            return rc;
        }

        /* a JWS of this location: verified here */
    }

    loc = jlcf;

    if (jlcf->provider_confs) {

        /* the provider the token's iss names: its keys and checks only
           (in a hybrid location, ngx_http_auth_jwt_local_jws chose it) */

        if (ctx->conf == NULL) {
            rc = ngx_http_auth_jwt_provider_select(r, jlcf, ctx);
            if (rc != NGX_OK) {
                return rc;
            }
        }

        jlcf = ctx->conf;
    }

    if (jlcf->validate_sig && jlcf->keys.requests) {

        /* no key server traffic for tokens that cannot be a JWS */

        if (ctx->keys.index == 0 && !ctx->keys.waiting
            && ngx_http_auth_jwt_token_shape(&ctx->token, jlcf->type)
               != NGX_OK)
        {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "auth_jwt: rejected: %s (token %uz bytes)",
                          ngx_oauth_status_text(
                              ctx->token.len > NOX_MAX_TOKEN
                              ? NOX_TOKEN_TOO_LARGE : NOX_TOKEN_MALFORMED),
                          ctx->token.len);
            ngx_oauth_metrics_nox(r, NGX_OAUTH_M_JWT, NOX_TOKEN_MALFORMED);
            return ngx_http_auth_jwt_reject(r, jlcf, NGX_HTTP_UNAUTHORIZED,
                                            1);
        }

        rc = ngx_oauth_keys_get(r, &jlcf->keys, &ctx->keys,
                                jlcf->verify_cache != NULL);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    rc = ngx_http_auth_jwt_verify(r, jlcf, ctx);

    if (rc == NGX_OK && loc->introspect != NGX_OAUTH_HYBRID_OFF) {
        return ngx_http_auth_jwt_hybrid_passed(r, loc, ctx);
    }

    return rc;
}


static ngx_int_t
ngx_http_auth_jwt_token(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_str_t *token)
{
    if (jlcf->token) {
        if (ngx_http_complex_value(r, jlcf->token, token) != NGX_OK) {
            return NGX_ERROR;
        }

        return token->len ? NGX_OK : NGX_DECLINED;
    }

    return ngx_oauth_bearer_token(r, token);
}


/*
 * compact shape: three base64url segments (JWS) or five (JWE, for
 * auth_jwt_type encrypted and nested), within the size limit
 */

static ngx_int_t
ngx_http_auth_jwt_token_shape(ngx_str_t *token, ngx_uint_t type)
{
    u_char      c;
    size_t      i;
    ngx_uint_t  dots, bad;

    /* 1: a base64url character, 2: ".", 0: anything else */
    static const u_char  shape[256] = {
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,
        0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1,
        0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    };

    if (token->len > NOX_MAX_TOKEN) {
        return NGX_DECLINED;
    }

    dots = 0;
    bad = 0;

    for (i = 0; i < token->len; i++) {
        c = shape[token->data[i]];
        bad |= (c == 0);
        dots += (c >> 1);
    }

    if (bad) {
        return NGX_DECLINED;
    }

    return (dots == ((type == NOX_JWT_SIGNED) ? 2 : 4)) ? NGX_OK
                                                        : NGX_DECLINED;
}


/*
 * Key files with variables in their path: the keysets of this request,
 * from the worker's cache of files (ngx_http_auth_jwt_file_t).  A file that
 * cannot be used is logged and left out; the token is then verified with
 * the other keys.
 */

static ngx_int_t
ngx_http_auth_jwt_key_files(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_http_auth_jwt_ctx_t *ctx)
{
    u_char                         *name;
    ngx_str_t                       path;
    ngx_uint_t                      i, batch;
    ngx_http_auth_jwt_file_t       *file, **slot;
    ngx_http_auth_jwt_key_file_t  **kf;

    if (jlcf->key_files == NULL || ctx->files.nelts) {
        return NGX_OK;
    }

    kf = jlcf->key_files->elts;
    batch = ++ngx_http_auth_jwt_batch;

    for (i = 0; i < jlcf->key_files->nelts; i++) {

        if (kf[i]->cv == NULL) {
            continue;
        }

        if (ngx_http_complex_value(r, kf[i]->cv, &path) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (path.len == 0) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "auth_jwt: auth_jwt_key_file \"%V\" is empty for "
                          "this request", &kf[i]->path);
            ctx->files_failed = 1;
            continue;
        }

        if (ngx_get_full_name(r->pool, (ngx_str_t *) &ngx_cycle->conf_prefix,
                              &path)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /* NUL-terminated for the file system calls */

        name = ngx_pnalloc(r->pool, path.len + 1);
        if (name == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(name, path.data, path.len);
        name[path.len] = '\0';
        path.data = name;

        file = ngx_http_auth_jwt_file_get(r, &path, kf[i]->format, batch);

        if (file == NULL) {
            ctx->files_failed = 1;
            continue;
        }

        slot = ngx_array_push(&ctx->files);
        if (slot == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        *slot = file;
    }

    return NGX_OK;
}


static ngx_http_auth_jwt_file_t *
ngx_http_auth_jwt_file_get(ngx_http_request_t *r, ngx_str_t *path,
    ngx_int_t format, ngx_uint_t batch)
{
    u_char                    *p;
    int64_t                    handle;
    int32_t                    rc, detail;
    ngx_str_t                  content;
    ngx_queue_t               *q;
    ngx_file_info_t            fi;
    ngx_http_auth_jwt_file_t  *file, *file_old;
    u_char                     safe[ngx_oauth_log_safe_size(
                                        NGX_OAUTH_LOG_SAFE_MAX)];

    if (ngx_http_auth_jwt_files.next == NULL) {
        ngx_queue_init(&ngx_http_auth_jwt_files);
    }

    /* the path may come from the request: escaped in log lines */
    p = ngx_oauth_log_safe(safe, path, NGX_OAUTH_LOG_SAFE_MAX);

    if (ngx_file_info(path->data, &fi) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, ngx_errno,
                      "auth_jwt: auth_jwt_key_file \"%*s\": "
                      ngx_file_info_n " failed", p - safe, safe);
        return NULL;
    }

    for (q = ngx_queue_head(&ngx_http_auth_jwt_files);
         q != ngx_queue_sentinel(&ngx_http_auth_jwt_files);
         q = ngx_queue_next(q))
    {
        file = ngx_queue_data(q, ngx_http_auth_jwt_file_t, queue);

        if (file->format != format || file->path.len != path->len
            || ngx_memcmp(file->path.data, path->data, path->len) != 0)
        {
            continue;
        }

        if (file->mtime == ngx_file_mtime(&fi)
            && file->size == ngx_file_size(&fi)
            && file->uniq == ngx_file_uniq(&fi))
        {
            ngx_queue_remove(q);
            ngx_queue_insert_head(&ngx_http_auth_jwt_files, q);
            file->used = batch;
            return file;
        }

        if (file->used == batch) {
            /* this request already holds these keys: keep them for it */
            return file;
        }

        /* changed: parsed again below, the old keys dropped */

        ngx_queue_remove(q);
        ngx_http_auth_jwt_nfiles--;
        (void) ngx_oauth_managed.keyset_free(file->handle);
        ngx_free(file);
        break;
    }

    if (ngx_http_auth_jwt_file_read(r, path, &fi, &content) != NGX_OK) {
        return NULL;
    }

    handle = 0;
    detail = -1;

    rc = ngx_oauth_managed.keyset_load(content.data, (int32_t) content.len,
                                       (int32_t) format, &handle, &detail);

    if (rc != NOX_OK) {
        if (detail >= 0) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "auth_jwt: auth_jwt_key_file \"%*s\": key #%D: %s",
                          p - safe, safe, detail, ngx_oauth_status_text(rc));
        } else {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "auth_jwt: auth_jwt_key_file \"%*s\": %s",
                          p - safe, safe, ngx_oauth_status_text(rc));
        }

        return NULL;
    }

    file = ngx_alloc(sizeof(ngx_http_auth_jwt_file_t) + path->len,
                     r->connection->log);
    if (file == NULL) {
        (void) ngx_oauth_managed.keyset_free(handle);
        return NULL;
    }

    file->path.data = (u_char *) file + sizeof(ngx_http_auth_jwt_file_t);
    file->path.len = path->len;
    ngx_memcpy(file->path.data, path->data, path->len);
    file->format = format;
    file->mtime = ngx_file_mtime(&fi);
    file->size = ngx_file_size(&fi);
    file->uniq = ngx_file_uniq(&fi);
    file->handle = handle;
    file->used = batch;

    if (ngx_oauth_managed.sha256(content.data, (int32_t) content.len,
                                 file->digest, NOX_SHA256_LEN)
        != NOX_OK)
    {
        (void) ngx_oauth_managed.keyset_free(handle);
        ngx_free(file);
        return NULL;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "auth_jwt: key file \"%V\" loaded (%uz bytes)",
                   path, content.len);

    ngx_http_auth_jwt_warn_skipped(handle, path, r->connection->log);

    /* the least recently used files go, but never one this request uses */

    while (ngx_http_auth_jwt_nfiles >= NGX_HTTP_AUTH_JWT_MAX_FILES) {
        q = ngx_queue_last(&ngx_http_auth_jwt_files);
        if (q == ngx_queue_sentinel(&ngx_http_auth_jwt_files)) {
            break;
        }

        file_old = ngx_queue_data(q, ngx_http_auth_jwt_file_t, queue);
        if (file_old->used == batch) {
            break;
        }

        ngx_queue_remove(q);
        ngx_http_auth_jwt_nfiles--;
        (void) ngx_oauth_managed.keyset_free(file_old->handle);
        ngx_free(file_old);
    }

    ngx_queue_insert_head(&ngx_http_auth_jwt_files, &file->queue);
    ngx_http_auth_jwt_nfiles++;

    return file;
}


/* reads a key file in a worker; blocking, as nginx reads small files */

static ngx_int_t
ngx_http_auth_jwt_file_read(ngx_http_request_t *r, ngx_str_t *path,
    ngx_file_info_t *fi, ngx_str_t *content)
{
    u_char    *p, *buf;
    size_t     size;
    ssize_t    n;
    ngx_fd_t   fd;
    u_char     safe[ngx_oauth_log_safe_size(NGX_OAUTH_LOG_SAFE_MAX)];

    p = ngx_oauth_log_safe(safe, path, NGX_OAUTH_LOG_SAFE_MAX);

    if (!ngx_is_file(fi)) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth_jwt: auth_jwt_key_file \"%*s\" is not a file",
                      p - safe, safe);
        return NGX_ERROR;
    }

    size = (size_t) ngx_file_size(fi);

    if (size > NOX_MAX_KEYSET) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth_jwt: auth_jwt_key_file \"%*s\" is larger than "
                      "%d bytes", p - safe, safe, NOX_MAX_KEYSET);
        return NGX_ERROR;
    }

    fd = ngx_open_file(path->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, ngx_errno,
                      "auth_jwt: auth_jwt_key_file \"%*s\": "
                      ngx_open_file_n " failed", p - safe, safe);
        return NGX_ERROR;
    }

    buf = ngx_pnalloc(r->pool, size + 1);
    if (buf == NULL) {
        ngx_close_file(fd);
        return NGX_ERROR;
    }

    n = ngx_read_fd(fd, buf, size);

    ngx_close_file(fd);

    if (n == -1 || (size_t) n != size) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, ngx_errno,
                      "auth_jwt: auth_jwt_key_file \"%*s\": "
                      ngx_read_fd_n " failed or was short", p - safe, safe);
        return NGX_ERROR;
    }

    content->data = buf;
    content->len = size;

    return NGX_OK;
}


static ngx_int_t
ngx_http_auth_jwt_verify(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_http_auth_jwt_ctx_t *ctx)
{
    u_char                          hash[NOX_SHA256_LEN];
    int64_t                         policy, *extra;
    int32_t                         rc, header_len, detail, n;
    ngx_str_t                       value, cached;
    ngx_uint_t                      i, cache, n_extra;
    nox_buf_t                      *values;
    ngx_http_auth_jwt_rule_t       *rule;
    ngx_oauth_key_body_t           *kb;
    ngx_http_auth_jwt_file_t      **files;

    policy = ngx_http_auth_jwt_policy(r, jlcf);
    if (policy == 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->token.len > NOX_MAX_TOKEN) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "auth_jwt: rejected: token too large (%uz bytes)",
                      ctx->token.len);
        ngx_oauth_metrics_nox(r, NGX_OAUTH_M_JWT, NOX_TOKEN_TOO_LARGE);
        return ngx_http_auth_jwt_reject(r, jlcf, NGX_HTTP_UNAUTHORIZED, 1);
    }

    values = NULL;
    n = 0;

    if (jlcf->rules) {
        n = (int32_t) jlcf->rules->nelts;

        values = ngx_pcalloc(r->pool, n * sizeof(nox_buf_t));
        if (values == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rule = jlcf->rules->elts;

        for (i = 0; i < jlcf->rules->nelts; i++) {
            if (rule[i].cv == NULL) {
                continue;
            }

            if (ngx_http_complex_value(r, rule[i].cv, &value) != NGX_OK) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            values[i].data = value.data;
            values[i].len = (int32_t) value.len;
        }
    }

    /* decryption keys are needed whether signatures are checked or not */

    if (jlcf->validate_sig || jlcf->type != NOX_JWT_SIGNED) {
        rc = ngx_http_auth_jwt_key_files(r, jlcf, ctx);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    cache = (jlcf->verify_cache && jlcf->validate_sig);

    if (cache) {
        if (ngx_http_auth_jwt_cache_key(r, jlcf, ctx, hash) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_oauth_cache_get(r, jlcf->verify_cache,
                                NGX_HTTP_AUTH_JWT_CACHE_KIND, hash, &cached,
                                &header_len)
            == NGX_OK
            && ngx_http_auth_jwt_cache_split(jlcf, ctx, &cached, header_len)
               == NGX_OK)
        {
            return ngx_http_auth_jwt_cache_hit(r, jlcf, ctx, policy, values,
                                               n);
        }

        /* the zone's second level (redis=): asked once per request */

        rc = ngx_oauth_l2_get(r, jlcf->verify_cache,
                              NGX_HTTP_AUTH_JWT_CACHE_KIND, hash, &ctx->l2,
                              &cached, &header_len);

        if (rc == NGX_AGAIN) {
            return NGX_AGAIN;
        }

        if (rc == NGX_OK
            && ngx_http_auth_jwt_cache_split(jlcf, ctx, &cached, header_len)
               == NGX_OK)
        {
            return ngx_http_auth_jwt_cache_hit(r, jlcf, ctx, policy, values,
                                               n);
        }

        /* a miss: the key request bodies become keysets now */

        kb = ctx->keys.bodies.elts;

        for (i = 0; i < ctx->keys.bodies.nelts; i++) {
            rc = ngx_oauth_keys_load(r, &jlcf->keys, &ctx->keys, &kb[i].body,
                                     kb[i].index);
            if (rc != NGX_OK) {
                return rc;
            }
        }
    }

    rc = NOX_E_INTERNAL;
    detail = 0;

    /* this request's keysets, then those of key files with variables */

    extra = ctx->keys.keysets.elts;
    n_extra = ctx->keys.keysets.nelts;

    if (ctx->files.nelts) {
        extra = ngx_palloc(r->pool, (n_extra + ctx->files.nelts)
                                    * sizeof(int64_t));
        if (extra == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(extra, ctx->keys.keysets.elts, n_extra * sizeof(int64_t));

        files = ctx->files.elts;

        for (i = 0; i < ctx->files.nelts; i++) {
            extra[n_extra++] = files[i]->handle;
        }
    }

    if (ngx_http_auth_jwt_verify_token(r, jlcf, ctx, policy, extra,
                                       (int32_t) n_extra, values, n, &rc,
                                       &detail)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NOX_KEY_NOT_FOUND && jlcf->validate_sig
        && ngx_oauth_keys_refetch(r, &jlcf->keys, &ctx->keys) == NGX_OK)
    {
        /* a kid not in the cached sets: fetched again, verified again */

        ctx->decoded = 0;

        rc = ngx_oauth_keys_get(r, &jlcf->keys, &ctx->keys,
                                jlcf->verify_cache != NULL);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_auth_jwt_verify(r, jlcf, ctx);
    }

    if (rc == NOX_OK && cache && ctx->decoded) {
        ngx_http_auth_jwt_cache_store(r, jlcf, ctx, hash);
    }

    return ngx_http_auth_jwt_decision(r, jlcf, ctx, rc, detail);
}


/*
 * Runs the managed verification with the policy's keys and extra (this
 * request's key sets and key files) and keeps the decoded parts in the
 * ctx.  A signed token: nox_jwt_verify, header and payload in a buffer of
 * the token's size.  Encrypted and nested: nox_jwt_verify_ex, which also
 * returns the inner JWS of a nested token (for $jwt_payload) and needs
 * twice the token's size for it.
 */

static ngx_int_t
ngx_http_auth_jwt_verify_token(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_http_auth_jwt_ctx_t *ctx,
    int64_t policy, int64_t *extra, int32_t n_extra, nox_buf_t *values,
    int32_t n, int32_t *rc, int32_t *detail)
{
    u_char   *out;
    size_t    cap;
    int32_t   lens[3];

    cap = ctx->token.len;

    if (jlcf->type == NOX_JWT_NESTED) {
        cap *= 2;
    }

    out = ngx_pnalloc(r->pool, cap);
    if (out == NULL) {
        return NGX_ERROR;
    }

    lens[0] = -1;
    lens[1] = -1;
    lens[2] = -1;

    if (jlcf->type == NOX_JWT_SIGNED) {
        *rc = ngx_oauth_managed.jwt_verify(policy, ctx->token.data,
                                           (int32_t) ctx->token.len,
                                           ngx_time(), extra, n_extra,
                                           values, n, out, (int32_t) cap,
                                           &lens[0], &lens[1], detail);
    } else {
        *rc = ngx_oauth_managed.jwt_verify_ex(policy, ctx->token.data,
                                              (int32_t) ctx->token.len,
                                              ngx_time(), extra, n_extra,
                                              values, n, out, (int32_t) cap,
                                              lens, detail);
    }

    if (lens[0] >= 0 && lens[1] >= 0
        && (size_t) lens[0] + lens[1] + (lens[2] > 0 ? lens[2] : 0) <= cap)
    {
        ctx->decoded = 1;
        ctx->header.data = out;
        ctx->header.len = lens[0];
        ctx->payload.data = out + lens[0];
        ctx->payload.len = lens[1];

        if (lens[2] > 0) {
            ctx->inner.data = out + lens[0] + lens[1];
            ctx->inner.len = lens[2];
        }

    } else if (lens[0] > 0 && (size_t) lens[0] <= cap) {

        /* the header alone (a JWE that did not decrypt): for the log */

        ctx->header.data = out;
        ctx->header.len = lens[0];
    }

    return NGX_OK;
}


/*
 * A cache entry holds the header, the payload and, for nested tokens, the
 * inner JWS, one after another.  aux is the header's length; for nested
 * tokens the payload's length is in its upper 16 bits (an entry is at
 * most NGX_HTTP_AUTH_JWT_CACHE_MAX_VALUE bytes, so both fit).
 */

static ngx_int_t
ngx_http_auth_jwt_cache_split(ngx_http_auth_jwt_loc_conf_t *jlcf,
    ngx_http_auth_jwt_ctx_t *ctx, ngx_str_t *cached, int32_t aux)
{
    size_t  header_len, payload_len;

    if (aux <= 0) {
        return NGX_DECLINED;
    }

    if (jlcf->type == NOX_JWT_NESTED) {
        header_len = (size_t) aux & 0xffff;
        payload_len = (size_t) aux >> 16;

    } else {
        header_len = (size_t) aux;
        payload_len = cached->len > header_len ? cached->len - header_len : 0;
    }

    if (header_len == 0 || payload_len == 0
        || header_len + payload_len > cached->len)
    {
        return NGX_DECLINED;
    }

    ctx->header.data = cached->data;
    ctx->header.len = header_len;
    ctx->payload.data = cached->data + header_len;
    ctx->payload.len = payload_len;
    ctx->inner.data = ctx->payload.data + payload_len;
    ctx->inner.len = cached->len - header_len - payload_len;

    if (jlcf->type == NOX_JWT_NESTED && ctx->inner.len == 0) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * A verified token from the cache.  The entry was stored under this
 * location's policy identity, so the fixed checks all passed and exp is
 * covered by its TTL; only rules with $variable values run again, with
 * every check but the signature (nox_jwt_check).
 */

static ngx_int_t
ngx_http_auth_jwt_cache_hit(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_http_auth_jwt_ctx_t *ctx,
    int64_t policy, nox_buf_t *values, int32_t n)
{
    int32_t  rc, detail;

    ctx->decoded = 1;

    if (!jlcf->policy->recheck) {
        return ngx_http_auth_jwt_decision(r, jlcf, ctx, NOX_OK, 0);
    }

    detail = -1;

    rc = ngx_oauth_managed.jwt_check(policy, ctx->header.data,
                                     (int32_t) ctx->header.len,
                                     ctx->payload.data,
                                     (int32_t) ctx->payload.len, ngx_time(),
                                     values, n, &detail);

    return ngx_http_auth_jwt_decision(r, jlcf, ctx, rc, detail);
}


static ngx_int_t
ngx_http_auth_jwt_decision(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_http_auth_jwt_ctx_t *ctx,
    int32_t rc, int32_t detail)
{
    if (rc == NOX_OK) {
        ctx->verified = 1;
        return ngx_http_auth_jwt_require(r, jlcf);
    }

    ngx_http_auth_jwt_log_reject(r, jlcf, ctx, rc, detail);
    ngx_oauth_metrics_nox(r, NGX_OAUTH_M_JWT, rc);

    switch (rc) {

    case NOX_NO_KEYS:
        if (ctx->files_failed) {
            /* a key file with variables could not be used (logged) */
            return ngx_http_auth_jwt_reject(r, jlcf, NGX_HTTP_UNAUTHORIZED,
                                            1);
        }

        return NGX_HTTP_INTERNAL_SERVER_ERROR;

    default:
        if (rc < 0) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_auth_jwt_reject(r, jlcf, NGX_HTTP_UNAUTHORIZED, 1);
    }
}


/*
 * The cache key: SHA-256 over the token, the location's policy identity
 * (key files and fixed checks) and the key request bodies with their
 * formats, so no entry outlives a key rotation or a change of the checks.
 */

static ngx_int_t
ngx_http_auth_jwt_cache_key(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_http_auth_jwt_ctx_t *ctx,
    u_char *hash)
{
    u_char                     *key, *p;
    size_t                      len;
    int32_t                     rc;
    ngx_uint_t                  i;
    ngx_array_t                *digests;
    ngx_oauth_key_body_t       *kb;
    ngx_http_auth_jwt_file_t  **files;

    kb = ctx->keys.bodies.elts;
    digests = &ctx->keys.digests;

    len = sizeof("j|") - 1 + NOX_SHA256_LEN + NGX_SIZE_T_LEN + 2
          + ctx->token.len + ctx->files.nelts * (NOX_SHA256_LEN + 2)
          + digests->nelts * (NOX_SHA256_LEN + 2);

    for (i = 0; i < ctx->keys.bodies.nelts; i++) {
        len += NGX_SIZE_T_LEN + 3 + kb[i].body.len;
    }

    key = ngx_pnalloc(r->pool, len);
    if (key == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(key, "j|", sizeof("j|") - 1);
    p = ngx_cpymem(p, jlcf->policy->identity, NOX_SHA256_LEN);

    for (i = 0; i < ctx->keys.bodies.nelts; i++) {
        p = ngx_sprintf(p, "%c%uz:%V|", kb[i].format == NOX_KEYS_JWKS
                                        ? 'j' : 'k',
                        kb[i].body.len, &kb[i].body);
    }

    files = ctx->files.elts;

    for (i = 0; i < ctx->files.nelts; i++) {
        *p++ = 'f';
        p = ngx_cpymem(p, files[i]->digest, NOX_SHA256_LEN);
        *p++ = '|';
    }

    /* the versions of the cached key sets (auth_jwt_key_request) */

    for (i = 0; i < digests->nelts; i++) {
        *p++ = 's';
        p = ngx_cpymem(p, (u_char *) digests->elts + i * NOX_SHA256_LEN,
                       NOX_SHA256_LEN);
        *p++ = '|';
    }

    p = ngx_sprintf(p, "%uz:%V|", ctx->token.len, &ctx->token);

    rc = ngx_oauth_managed.sha256(key, (int32_t) (p - key), hash,
                                  NOX_SHA256_LEN);

    /* the key holds the raw token: do not leave it in the pool */

    ngx_explicit_memzero(key, p - key);

    if (rc != NOX_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "auth_jwt: nox_sha256 failed: %s",
                      ngx_oauth_status_text(rc));
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * TTL: min(max_ttl, exp + leeway - now), exp read as the verification
 * reads it (nox_numeric_date: any number form, rounded down, within
 * int64), so an entry never outlives its token.  Tokens without exp (or,
 * with auth_jwt_validate_exp off, with an unusable one) get max_ttl.
 */

static void
ngx_http_auth_jwt_cache_store(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_http_auth_jwt_ctx_t *ctx,
    u_char *hash)
{
    time_t     ttl, now;
    int32_t    rc, aux;
    int64_t    exp;
    ngx_str_t  value;

    value.data = ctx->header.data;
    value.len = ctx->header.len + ctx->payload.len + ctx->inner.len;
    aux = (int32_t) ctx->header.len;

    if (jlcf->type == NOX_JWT_NESTED) {
        aux |= (int32_t) (ctx->payload.len << 16);
    }

    if (value.len > NGX_HTTP_AUTH_JWT_CACHE_MAX_VALUE) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "auth_jwt: not caching a token of %uz decoded bytes",
                       value.len);
        return;
    }

    ttl = jlcf->verify_cache->max_ttl;
    now = ngx_time();
    exp = 0;

    rc = ngx_oauth_managed.numeric_date(ctx->payload.data,
                                        (int32_t) ctx->payload.len,
                                        (u_char *) "exp", 3, &exp);

    if (rc == NOX_OK) {
        /* written so that neither side can overflow near INT64_MIN/MAX */

        if (exp <= (int64_t) (now - jlcf->leeway)) {
            return;
        }

        if (exp < (int64_t) (now + ttl - jlcf->leeway)) {
            ttl = (time_t) (exp + jlcf->leeway - now);
        }

    } else if (rc != NOX_NOT_FOUND && rc != NOX_TIME_INVALID) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "auth_jwt: nox_numeric_date failed: %s",
                      ngx_oauth_status_text(rc));
        return;
    }

    ngx_oauth_cache_put(r, jlcf->verify_cache, NGX_HTTP_AUTH_JWT_CACHE_KIND,
                        hash, &value, aux, ttl);

    ngx_oauth_l2_store(r, jlcf->verify_cache, NGX_HTTP_AUTH_JWT_CACHE_KIND,
                       hash, &value, aux, ttl);
}


static ngx_int_t
ngx_http_auth_jwt_require(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf)
{
    ngx_int_t    rc;
    ngx_str_t   *failed;
    ngx_uint_t   status;

    rc = ngx_oauth_require_check(r, jlcf->requires, &status, &failed);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "auth_jwt: rejected: auth_jwt_require \"%V\" is empty "
                      "or \"0\"", failed);
        ngx_oauth_metrics_reason(r, NGX_OAUTH_M_JWT, NGX_OAUTH_R_RULE_FAILED);

        return ngx_http_auth_jwt_reject(r, jlcf, status, 1);
    }

    return NGX_OK;
}


static int64_t
ngx_http_auth_jwt_policy(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf)
{
    int64_t                      handle;
    ngx_http_auth_jwt_policy_t  *policy;

    policy = jlcf->policy;

    if (policy->handle) {
        return policy->handle;
    }

    if (policy->status != NOX_OK) {
        return 0;
    }

    /* first request on this location in this worker */

    handle = 0;
    policy->status = ngx_http_auth_jwt_policy_build(jlcf, &handle,
                                                    r->connection->log);

    if (policy->status != NOX_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "auth_jwt: cannot build the verification policy: %s",
                      ngx_oauth_status_text(policy->status));
        return 0;
    }

    if (ngx_http_auth_jwt_policy_identity(r, jlcf, policy->identity,
                                          &policy->recheck)
        != NGX_OK)
    {
        (void) ngx_oauth_managed.policy_free(handle);
        policy->status = NOX_E_INTERNAL;
        return 0;
    }

    policy->handle = handle;

    return handle;
}


/*
 * The identity of what a location checks: SHA-256 over its key files and
 * every check that does not change from request to request (exp/signature
 * switches, leeway, revocation lists, nesting, claim and header rules with
 * fixed values).  It starts every verified-token cache key: an entry says
 * "this token passed all of these", so a hit under the same identity need
 * not run them again (exp is covered by the entry's TTL, which ends at
 * exp + leeway; nbf, once passed, stays passed).  Rules with a $variable
 * value can change per request: with one, *recheck is set and a hit runs
 * the checks again (nox_jwt_check).  A reload that changes a file changes
 * the identity, so old entries are never used for it.
 */

static ngx_int_t
ngx_http_auth_jwt_policy_identity(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, u_char *hash, ngx_uint_t *recheck)
{
    u_char                           *buf, *p;
    size_t                            len;
    int32_t                           rc;
    ngx_uint_t                        i, nk, nr, nu;
    ngx_http_auth_jwt_rule_t         *rule;
    ngx_http_auth_jwt_key_file_t    **kf;
    ngx_http_auth_jwt_revocation_t  **rv;

    kf = jlcf->key_files ? jlcf->key_files->elts : NULL;
    nk = jlcf->key_files ? jlcf->key_files->nelts : 0;
    rv = jlcf->revocations ? jlcf->revocations->elts : NULL;
    nr = jlcf->revocations ? jlcf->revocations->nelts : 0;
    rule = jlcf->rules ? jlcf->rules->elts : NULL;
    nu = jlcf->rules ? jlcf->rules->nelts : 0;

    len = sizeof("policy|exp=1|sig=1||leeway=|nested=1:|type=|")
          + NGX_TIME_T_LEN + NGX_INT_T_LEN
          + 2 * (NGX_SIZE_T_LEN + 1) + jlcf->delimiter.len + jlcf->quote.len;

    for (i = 0; i < nk; i++) {
        len += NGX_SIZE_T_LEN + 4 + kf[i]->content.len + kf[i]->path.len;
    }

    for (i = 0; i < nr; i++) {
        len += 2 * NGX_INT_T_LEN + 3 + rv[i]->content.len;
    }

    for (i = 0; i < nu; i++) {
        len += 5 * NGX_INT_T_LEN + 6 + rule[i].name.len + rule[i].value.len;
    }

    if (jlcf->provider) {
        len += ngx_http_auth_jwt_provider_identity_len(jlcf->provider);
    }

    buf = ngx_alloc(len, r->connection->log);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(buf, "policy|exp=%d|sig=%d|leeway=%T|",
                    jlcf->validate_exp ? 1 : 0, jlcf->validate_sig ? 1 : 0,
                    jlcf->leeway);

    if (jlcf->type != NOX_JWT_SIGNED) {
        p = ngx_sprintf(p, "type=%ui|", jlcf->type);
    }

    for (i = 0; i < nk; i++) {
        if (kf[i]->cv) {
            /* its content's digest goes into each request's cache key */
            p = ngx_sprintf(p, "%c$%uz:%V|",
                            kf[i]->format == NOX_KEYS_JWKS ? 'j' : 'k',
                            kf[i]->path.len, &kf[i]->path);
            continue;
        }

        p = ngx_sprintf(p, "%c%uz:%V|",
                        kf[i]->format == NOX_KEYS_JWKS ? 'j' : 'k',
                        kf[i]->content.len, &kf[i]->content);
    }

    for (i = 0; i < nr; i++) {
        p = ngx_sprintf(p, "r%i:%uz:%V|", rv[i]->kind, rv[i]->content.len,
                        &rv[i]->content);
    }

    if (jlcf->nested) {
        p = ngx_sprintf(p, "nested=%uz:%V%uz:%V|", jlcf->delimiter.len,
                        &jlcf->delimiter, jlcf->quote.len, &jlcf->quote);
    }

    *recheck = 0;

    for (i = 0; i < nu; i++) {
        if (rule[i].kind == NOX_VALUE_VARIABLE) {
            *recheck = 1;
        }

        p = ngx_sprintf(p, "%i.%i.%i.%uz:%V%uz:%V|", rule[i].target,
                        rule[i].op, rule[i].kind, rule[i].name.len,
                        &rule[i].name, rule[i].value.len, &rule[i].value);
    }

    if (jlcf->provider) {
        p = ngx_http_auth_jwt_provider_identity(jlcf->provider, p);
    }

    rc = ngx_oauth_managed.sha256(buf, (int32_t) (p - buf), hash,
                                  NOX_SHA256_LEN);

    ngx_free(buf);

    return (rc == NOX_OK) ? NGX_OK : NGX_ERROR;
}


/*
 * Builds a policy from a location's configuration.  The validator child
 * has already checked every part, so a failure here is a broken invariant.
 */

static int32_t
ngx_http_auth_jwt_policy_build(ngx_http_auth_jwt_loc_conf_t *jlcf,
    int64_t *handle, ngx_log_t *log)
{
    int32_t                          rc, flags, detail;
    int64_t                          h;
    ngx_uint_t                       i;
    ngx_http_auth_jwt_rule_t        *rule;
    ngx_http_auth_jwt_key_file_t   **kf;
    ngx_http_auth_jwt_revocation_t **rv;

    flags = 0;

    if (jlcf->validate_exp) {
        flags |= NOX_POLICY_VALIDATE_EXP;
    }

    if (jlcf->validate_sig) {
        flags |= NOX_POLICY_VALIDATE_SIG;
    }

    rc = ngx_oauth_managed.policy_create(flags, (int64_t) jlcf->leeway, &h);
    if (rc != NOX_OK) {
        return rc;
    }

    if (jlcf->type != NOX_JWT_SIGNED) {
        rc = ngx_oauth_managed.policy_set_type(h, (int32_t) jlcf->type);
        if (rc != NOX_OK) {
            goto failed;
        }
    }

    if (jlcf->key_files) {
        kf = jlcf->key_files->elts;

        for (i = 0; i < jlcf->key_files->nelts; i++) {

            if (kf[i]->cv) {
                continue;               /* per request: key_files() */
            }

            if (kf[i]->handle == 0 && kf[i]->status == NOX_OK) {
                detail = 0;
                kf[i]->status = ngx_oauth_managed.keyset_load(
                                    kf[i]->content.data,
                                    (int32_t) kf[i]->content.len,
                                    (int32_t) kf[i]->format,
                                    &kf[i]->handle, &detail);
            }

            if (kf[i]->status != NOX_OK) {
                rc = kf[i]->status;
                goto failed;
            }

            rc = ngx_oauth_managed.policy_add_keyset(h, kf[i]->handle);
            if (rc != NOX_OK) {
                goto failed;
            }
        }
    }

    if (jlcf->revocations) {
        rv = jlcf->revocations->elts;

        for (i = 0; i < jlcf->revocations->nelts; i++) {
            rc = ngx_oauth_managed.policy_add_revocation(h,
                                          (int32_t) rv[i]->kind,
                                          rv[i]->content.data,
                                          (int32_t) rv[i]->content.len);
            if (rc != NOX_OK) {
                goto failed;
            }
        }
    }

    if (jlcf->nested) {
        rc = ngx_oauth_managed.policy_set_nested(h, jlcf->delimiter.data,
                                        (int32_t) jlcf->delimiter.len,
                                        jlcf->quote.data,
                                        (int32_t) jlcf->quote.len);
        if (rc != NOX_OK) {
            goto failed;
        }
    }

    if (jlcf->rules) {
        rule = jlcf->rules->elts;

        for (i = 0; i < jlcf->rules->nelts; i++) {
            rc = ngx_oauth_managed.policy_add_rule(h,
                                          (int32_t) rule[i].target,
                                          rule[i].name.data,
                                          (int32_t) rule[i].name.len,
                                          (int32_t) rule[i].op,
                                          (int32_t) rule[i].kind,
                                          rule[i].value.data,
                                          (int32_t) rule[i].value.len);
            if (rc != NOX_OK) {
                goto failed;
            }
        }
    }

    if (jlcf->provider) {
        rc = ngx_http_auth_jwt_provider_policy(jlcf->provider, h);
        if (rc != NOX_OK) {
            goto failed;
        }
    }

    *handle = h;

    return NOX_OK;

failed:

    (void) ngx_oauth_managed.policy_free(h);

    return rc;
}


static ngx_int_t
ngx_http_auth_jwt_reject(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_uint_t status, ngx_uint_t invalid)
{
    u_char           *p;
    size_t            len;
    ngx_str_t         realm;
    ngx_uint_t        i;
    ngx_table_elt_t  *h;

    if (status != NGX_HTTP_UNAUTHORIZED && status != NGX_HTTP_FORBIDDEN) {
        return status;
    }

    if (jlcf->challenge == NGX_HTTP_AUTH_JWT_CHALLENGE_OFF) {
        return status;
    }

    if (jlcf->challenge == NGX_HTTP_AUTH_JWT_CHALLENGE_VALUE) {

        /* the operator's value as is; empty: no header */

        if (ngx_http_complex_value(r, jlcf->challenge_value, &realm)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (realm.len == 0) {
            return status;
        }

        h = ngx_oauth_header_add(r->pool, &r->headers_out.headers,
                                 "WWW-Authenticate", &realm);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        r->headers_out.www_authenticate = h;

        return status;
    }

    if (ngx_http_complex_value(r, jlcf->realm, &realm) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* Bearer realm="<realm, quotes and backslashes escaped>"[, error=...] */

    len = sizeof("Bearer realm=\"\"") - 1 + realm.len * 2
          + sizeof(", error=\"insufficient_scope\"") - 1;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h = ngx_oauth_header_add(r->pool, &r->headers_out.headers,
                             "WWW-Authenticate", &realm);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->value.data = p;

    p = ngx_cpymem(p, "Bearer realm=\"", sizeof("Bearer realm=\"") - 1);

    for (i = 0; i < realm.len; i++) {
        if (realm.data[i] == '"' || realm.data[i] == '\\') {
            *p++ = '\\';
        }

        *p++ = realm.data[i];
    }

    *p++ = '"';

    if (status == NGX_HTTP_FORBIDDEN) {
        p = ngx_cpymem(p, ", error=\"insufficient_scope\"",
                       sizeof(", error=\"insufficient_scope\"") - 1);

    } else if (invalid) {
        p = ngx_cpymem(p, ", error=\"invalid_token\"",
                       sizeof(", error=\"invalid_token\"") - 1);
    }

    h->value.len = p - h->value.data;

    r->headers_out.www_authenticate = h;

    return status;
}


/*
 * Never logs the token or a claim value: the reason, kid, iss, lengths.
 * kid and iss come from the token (a forged one too): escaped and cut by
 * ngx_oauth_log_safe, so they cannot start a log line of their own.
 */

static void
ngx_http_auth_jwt_log_reject(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_http_auth_jwt_ctx_t *ctx,
    int32_t rc, int32_t detail)
{
    u_char                    *kid_end, *iss_end;
    ngx_str_t                  kid, iss, path;
    ngx_uint_t                 level;
    ngx_http_auth_jwt_rule_t  *rule;
    u_char                     kid_safe[ngx_oauth_log_safe_size(
                                            NGX_OAUTH_LOG_SAFE_MAX)];
    u_char                     iss_safe[ngx_oauth_log_safe_size(
                                            NGX_OAUTH_LOG_SAFE_MAX)];

    ngx_str_null(&kid);
    ngx_str_null(&iss);

    if (ctx->header.len) {
        /* also the header of a JWE that did not decrypt */

        ngx_str_set(&path, "kid");
        (void) ngx_http_auth_jwt_render(r, &ctx->header, &path,
                                        NOX_PATH_NAME, jlcf, &kid);
    }

    if (ctx->decoded) {
        ngx_str_set(&path, "iss");
        (void) ngx_http_auth_jwt_render(r, &ctx->payload, &path,
                                        NOX_PATH_NAME, jlcf, &iss);
    }

    kid_end = ngx_oauth_log_safe(kid_safe, &kid, NGX_OAUTH_LOG_SAFE_MAX);
    iss_end = ngx_oauth_log_safe(iss_safe, &iss, NGX_OAUTH_LOG_SAFE_MAX);

    /*
     * a $variable rule value that is not JSON is the client's doing when
     * the variable comes from the request ($http_x_...): info and 401, as
     * for any other failed rule
     */

    switch (rc) {

    case NOX_NO_KEYS:
        level = NGX_LOG_ERR;
        break;

    default:
        level = (rc < 0) ? NGX_LOG_ALERT : NGX_LOG_INFO;
    }

    if ((rc == NOX_CLAIM_FAILED || rc == NOX_HEADER_FAILED
         || rc == NOX_RULE_VALUE_INVALID || rc == NOX_RULE_MATCH_LIMIT)
        && jlcf->rules && detail >= 0
        && (ngx_uint_t) detail < jlcf->rules->nelts)
    {
        rule = jlcf->rules->elts;
        rule = &rule[detail];

        ngx_log_error(level, r->connection->log, 0,
                      "auth_jwt: rejected: %s \"%V\" failed operator "
                      "\"%V\"%s (kid \"%*s\", iss \"%*s\")",
                      rule->target == NOX_TARGET_CLAIM ? "claim" : "header",
                      &rule->name, &rule->op_name,
                      rc == NOX_RULE_VALUE_INVALID
                      ? ": the expected value is not JSON"
                      : rc == NOX_RULE_MATCH_LIMIT
                      ? ": regex match limit exceeded" : "",
                      kid_end - kid_safe, kid_safe, iss_end - iss_safe,
                      iss_safe);
        return;
    }

    if (rc == NOX_KEY_SKIPPED) {
        ngx_log_error(level, r->connection->log, 0,
                      "auth_jwt: rejected: %s: %s (kid \"%*s\", "
                      "iss \"%*s\")", ngx_oauth_status_text(rc),
                      ngx_oauth_status_text(detail), kid_end - kid_safe,
                      kid_safe, iss_end - iss_safe, iss_safe);
        return;
    }

    ngx_log_error(level, r->connection->log, 0,
                  "auth_jwt: rejected: %s (kid \"%*s\", iss \"%*s\", "
                  "token %uz bytes)", ngx_oauth_status_text(rc),
                  kid_end - kid_safe, kid_safe, iss_end - iss_safe, iss_safe,
                  ctx->token.len);
}


/* renders a member of a decoded JSON object for a variable */

static ngx_int_t
ngx_http_auth_jwt_render(ngx_http_request_t *r, ngx_str_t *json,
    ngx_str_t *path, ngx_int_t kind, ngx_http_auth_jwt_loc_conf_t *jlcf,
    ngx_str_t *value)
{
    return ngx_oauth_json_get(r, json, path, (int32_t) kind,
                              &jlcf->delimiter, &jlcf->quote, value);
}


/* ---- variables --------------------------------------------------------- */

static ngx_int_t
ngx_http_auth_jwt_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_auth_jwt_vars; v->name.len; v++) {
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
ngx_http_auth_jwt_variable_prefix(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                     *name = (ngx_str_t *) data;
    ngx_str_t                      path;
    ngx_http_auth_jwt_loc_conf_t  *jlcf;

    /*
     * prefix variables get the whole name as data: "jwt_claim_sub";
     * the module's own entry has data NOX_TARGET_*, so tell them apart
     * by the prefix itself
     */

    path = *name;

    if (path.len > sizeof("jwt_claim_") - 1
        && ngx_strncmp(path.data, "jwt_claim_", sizeof("jwt_claim_") - 1)
           == 0)
    {
        path.data += sizeof("jwt_claim_") - 1;
        path.len -= sizeof("jwt_claim_") - 1;

        jlcf = ngx_http_get_module_loc_conf(r, ngx_http_oauth_jwt_module);

        return ngx_http_auth_jwt_variable_lookup(r, v, NOX_TARGET_CLAIM,
                                   &path, jlcf->nested ? NOX_PATH_NESTED
                                                       : NOX_PATH_NAME);
    }

    if (path.len > sizeof("jwt_header_") - 1
        && ngx_strncmp(path.data, "jwt_header_", sizeof("jwt_header_") - 1)
           == 0)
    {
        path.data += sizeof("jwt_header_") - 1;
        path.len -= sizeof("jwt_header_") - 1;

        jlcf = ngx_http_get_module_loc_conf(r, ngx_http_oauth_jwt_module);

        return ngx_http_auth_jwt_variable_lookup(r, v, NOX_TARGET_HEADER,
                                   &path, jlcf->nested ? NOX_PATH_NESTED
                                                       : NOX_PATH_NAME);
    }

    v->not_found = 1;
    return NGX_OK;
}


static ngx_int_t
ngx_http_auth_jwt_variable_lookup(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, ngx_int_t target, ngx_str_t *path,
    ngx_int_t kind)
{
    ngx_int_t                      rc;
    ngx_str_t                      value, *json;
    ngx_http_auth_jwt_ctx_t       *ctx;
    ngx_http_auth_jwt_loc_conf_t  *jlcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_oauth_jwt_module);

    /* headers once decoded; claims only once the token is verified */

    if (ctx == NULL || !ctx->decoded
        || (target == NOX_TARGET_CLAIM && !ctx->verified))
    {
        v->not_found = 1;
        return NGX_OK;
    }

    jlcf = ngx_http_get_module_loc_conf(r, ngx_http_oauth_jwt_module);

    json = (target == NOX_TARGET_CLAIM) ? &ctx->payload : &ctx->header;

    rc = ngx_http_auth_jwt_render(r, json, path, kind, jlcf, &value);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        v->not_found = 1;
        return NGX_OK;
    }

    /* a forged token's header too: no control character in any value */

    return ngx_oauth_variable_set(r, v, &value);
}


static ngx_int_t
ngx_http_auth_jwt_variable_claims(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                   *out;
    int32_t                   rc, len, cap;
    ngx_str_t                 value;
    ngx_http_auth_jwt_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_oauth_jwt_module);

    if (ctx == NULL || !ctx->verified) {
        v->not_found = 1;
        return NGX_OK;
    }

    cap = (int32_t) ctx->payload.len + 64;

    for ( ;; ) {
        out = ngx_pnalloc(r->pool, cap);
        if (out == NULL) {
            return NGX_ERROR;
        }

        len = 0;

        rc = ngx_oauth_managed.json_compact(ctx->payload.data,
                                            (int32_t) ctx->payload.len,
                                            out, cap, &len);

        if (rc == NOX_E_BUFFER_TOO_SMALL && len > cap) {
            cap = len;
            continue;
        }

        break;
    }

    if (rc != NOX_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "auth_jwt: cannot render $jwt_claims: %s",
                      ngx_oauth_status_text(rc));
        return NGX_ERROR;
    }

    value.data = out;
    value.len = len;

    return ngx_oauth_variable_set(r, v, &value);
}


static ngx_int_t
ngx_http_auth_jwt_variable_nowtime(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%T", ngx_time()) - p;
    v->data = p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * $jwt_payload: the decrypted payload of an encrypted token, the inner JWS
 * of a nested one (for forwarding it upstream), the decoded payload of a
 * signed one; only once the token is verified
 */

static ngx_int_t
ngx_http_auth_jwt_variable_payload(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_auth_jwt_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_oauth_jwt_module);

    if (ctx == NULL || !ctx->verified) {
        v->not_found = 1;
        return NGX_OK;
    }

    return ngx_oauth_variable_set(r, v, ctx->inner.len ? &ctx->inner
                                                       : &ctx->payload);
}


static ngx_int_t
ngx_http_auth_jwt_variable_set(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_auth_jwt_variable_t  *var = (ngx_http_auth_jwt_variable_t *) data;

    ngx_int_t                      kind;
    ngx_http_auth_jwt_loc_conf_t  *jlcf;

    if (var->multi) {
        kind = NOX_PATH_NAMES;

    } else {
        jlcf = ngx_http_get_module_loc_conf(r, ngx_http_oauth_jwt_module);
        kind = jlcf->nested ? NOX_PATH_NESTED : NOX_PATH_NAME;
    }

    return ngx_http_auth_jwt_variable_lookup(r, v, var->target, &var->path,
                                             kind);
}


/* ---- configuration ----------------------------------------------------- */

static void *
ngx_http_auth_jwt_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_auth_jwt_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_auth_jwt_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->realm = NULL;
     *     conf->token = NULL;
     *     conf->key_files = NULL;
     *     conf->revocations = NULL;
     *     conf->requires = NULL;
     *     conf->rules = NULL;
     *     conf->delimiter = { 0, NULL };
     *     conf->quote = { 0, NULL };
     *     conf->policy = NULL;
     *     conf->challenge_value = NULL;
     *     conf->providers = NULL;
     *     conf->provider_confs = NULL;
     *     conf->provider = NULL;
     */

    conf->enable = NGX_CONF_UNSET;
    conf->validate_exp = NGX_CONF_UNSET;
    conf->validate_sig = NGX_CONF_UNSET;
    conf->leeway = NGX_CONF_UNSET;
    conf->phase = NGX_CONF_UNSET_UINT;
    conf->nested = NGX_CONF_UNSET;
    conf->verify_cache = NGX_CONF_UNSET_PTR;
    conf->challenge = NGX_CONF_UNSET_UINT;
    conf->type = NGX_CONF_UNSET_UINT;
    ngx_oauth_keys_conf_init(&conf->keys);
    conf->introspect = NGX_CONF_UNSET_UINT;

    return conf;
}


static char *
ngx_http_auth_jwt_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_auth_jwt_loc_conf_t  *prev = parent;
    ngx_http_auth_jwt_loc_conf_t  *conf = child;

    ngx_uint_t                 i;
    ngx_http_auth_jwt_rule_t  *rule;

    if (conf->enable == NGX_CONF_UNSET) {
        conf->enable = prev->enable;
        conf->realm = prev->realm;
        conf->token = prev->token;
        conf->file = prev->file;
        conf->line = prev->line;
        conf->warned = prev->warned;
    }

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_value(conf->validate_exp, prev->validate_exp, 1);
    ngx_conf_merge_value(conf->validate_sig, prev->validate_sig, 1);
    ngx_conf_merge_sec_value(conf->leeway, prev->leeway, 0);
    ngx_conf_merge_uint_value(conf->phase, prev->phase,
                              NGX_HTTP_AUTH_JWT_PHASE_ACCESS);

    if (conf->nested == NGX_CONF_UNSET) {
        conf->nested = prev->nested;
        conf->delimiter = prev->delimiter;
        conf->quote = prev->quote;
    }

    ngx_conf_merge_value(conf->nested, prev->nested, 0);
    ngx_conf_merge_ptr_value(conf->verify_cache, prev->verify_cache, NULL);

    if (ngx_oauth_keys_merge(cf, &conf->keys, &prev->keys) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }
    if (conf->type == NGX_CONF_UNSET_UINT) {
        conf->type_file = prev->type_file;
        conf->type_line = prev->type_line;
    }

    ngx_conf_merge_uint_value(conf->type, prev->type, NOX_JWT_SIGNED);

    if (conf->challenge == NGX_CONF_UNSET_UINT) {
        conf->challenge = prev->challenge;
        conf->challenge_value = prev->challenge_value;
    }

    ngx_conf_merge_uint_value(conf->challenge, prev->challenge,
                              NGX_HTTP_AUTH_JWT_CHALLENGE_ON);

    if (conf->delimiter.data == NULL) {
        ngx_str_set(&conf->delimiter, ".");
    }

    if (conf->quote.data == NULL) {
        ngx_str_set(&conf->quote, "\"");
    }

    /* auth_jwt_provider: a level with its own replaces the inherited */

    if (conf->providers == NULL) {
        conf->providers = prev->providers;
    }

    /* lists accumulate: the parent's entries come first */

    if (ngx_oauth_merge_array(cf, &conf->key_files, prev->key_files,
                                      sizeof(void *))
        != NGX_OK
        || ngx_oauth_merge_array(cf, &conf->revocations,
                                         prev->revocations, sizeof(void *))
           != NGX_OK
        || ngx_oauth_merge_array(cf, &conf->requires, prev->requires,
                                     sizeof(ngx_oauth_require_t))
           != NGX_OK
        || ngx_oauth_merge_array(cf, &conf->rules, prev->rules,
                                         sizeof(ngx_http_auth_jwt_rule_t))
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* one issuer per location, and only through the key set zone */

    if (ngx_oauth_keys_discoveries(&conf->keys) > 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"auth_jwt_discovery\": one issuer per "
                           "location, and this one inherits another");
        return NGX_CONF_ERROR;
    }

    if (ngx_oauth_keys_discoveries(&conf->keys) && conf->keys.ttl == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"auth_jwt_discovery\" needs the key set "
                           "cache: \"auth_jwt_key_cache 0\" is not "
                           "supported with it");
        return NGX_CONF_ERROR;
    }

    if (conf->enable && ngx_http_auth_jwt_keys_zone(cf, conf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* auth_jwt_introspect before the provider confs copy this conf */

    if (ngx_http_auth_jwt_hybrid_merge(cf, conf, prev) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (conf->enable && conf->providers) {
        if (ngx_http_auth_jwt_provider_merge(cf, conf) != NGX_CONF_OK) {
            return NGX_CONF_ERROR;
        }
    }

    if (conf->enable) {
        conf->policy = ngx_pcalloc(cf->pool,
                                   sizeof(ngx_http_auth_jwt_policy_t));
        if (conf->policy == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_oauth_use(cf);

        /* rule paths under this location's nesting, as the policy reads
           them: a path that cannot parse fails nginx -t, not requests */

        if (conf->nested && conf->rules) {
            rule = conf->rules->elts;

            for (i = 0; i < conf->rules->nelts; i++) {
                if (ngx_http_auth_jwt_add_rule_check(cf, &rule[i],
                                                     &conf->delimiter,
                                                     &conf->quote)
                    != NGX_OK)
                {
                    return NGX_CONF_ERROR;
                }
            }
        }

        if (ngx_http_auth_jwt_add_type_check(cf, conf) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        /* once per auth_jwt directive, not per inheriting location */

        if (conf->validate_sig && conf->key_files == NULL
            && conf->keys.requests == NULL && conf->providers == NULL
            && !*conf->warned)
        {
            *conf->warned = 1;

            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "\"auth_jwt\" is on without auth_jwt_key_file or "
                          "auth_jwt_key_request: every token will be "
                          "refused with 500 in %V:%ui", &conf->file,
                          conf->line);
        }
    }

    return NGX_CONF_OK;
}




static ngx_int_t
ngx_http_auth_jwt_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_auth_jwt_access_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_auth_jwt_preaccess_handler;

    return NGX_OK;
}


static char *
ngx_http_auth_jwt(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_auth_jwt_loc_conf_t *jlcf = conf;

    ngx_str_t  *value, token;

    if (jlcf->enable != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        if (cf->args->nelts != 2) {
            return "has parameters after \"off\"";
        }

        jlcf->enable = 0;
        return NGX_CONF_OK;
    }

    jlcf->enable = 1;
    jlcf->file = cf->conf_file->file.name;
    jlcf->line = cf->conf_file->line;

    jlcf->warned = ngx_pcalloc(cf->pool, sizeof(ngx_uint_t));
    if (jlcf->warned == NULL) {
        return NGX_CONF_ERROR;
    }

    jlcf->realm = ngx_oauth_complex_value(cf, &value[1]);
    if (jlcf->realm == NULL) {
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "token=", 6) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"auth_jwt\": invalid parameter \"%V\"",
                               &value[2]);
            return NGX_CONF_ERROR;
        }

        token.data = value[2].data + 6;
        token.len = value[2].len - 6;

        if (token.len < 2 || token.data[0] != '$') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"auth_jwt\": \"token=\" must name a variable, "
                               "as in token=$cookie_auth_token");
            return NGX_CONF_ERROR;
        }

        jlcf->token = ngx_oauth_complex_value(cf, &token);
        if (jlcf->token == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_auth_jwt_set_variable(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    u_char                        *p;
    ngx_str_t                     *value;
    ngx_uint_t                     i;
    ngx_http_variable_t           *v;
    ngx_http_auth_jwt_variable_t  *var;

    value = cf->args->elts;

    if (value[1].len < 2 || value[1].data[0] != '$') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": invalid variable name \"%V\"",
                           &value[0], &value[1]);
        return NGX_CONF_ERROR;
    }

    value[1].len--;
    value[1].data++;

    v = ngx_http_add_variable(cf, &value[1], NGX_HTTP_VAR_CHANGEABLE
                                             |NGX_HTTP_VAR_NOCACHEABLE);
    if (v == NULL) {
        return NGX_CONF_ERROR;
    }

    var = ngx_pcalloc(cf->pool, sizeof(ngx_http_auth_jwt_variable_t));
    if (var == NULL) {
        return NGX_CONF_ERROR;
    }

    var->target = (ngx_int_t) cmd->offset;
    var->multi = cf->args->nelts > 3;

    /* several names form a path: join them with 0x00 */

    var->path.len = 0;
    for (i = 2; i < cf->args->nelts; i++) {
        if (value[i].len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%V\": empty name",
                               &value[0]);
            return NGX_CONF_ERROR;
        }

        var->path.len += value[i].len + 1;
    }

    var->path.len--;

    p = ngx_pnalloc(cf->pool, var->path.len + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    var->path.data = p;

    for (i = 2; i < cf->args->nelts; i++) {
        p = ngx_cpymem(p, value[i].data, value[i].len);
        *p++ = '\0';
    }

    v->get_handler = ngx_http_auth_jwt_variable_set;
    v->data = (uintptr_t) var;

    return NGX_CONF_OK;
}


/* appends a file-backed entry (key file, revocation list) to its list and
   records the check the validator child runs on it */

static char *
ngx_http_auth_jwt_add_entry(ngx_conf_t *cf, ngx_array_t **list, void *entry,
    ngx_oauth_check_pt check)
{
    void  **slot;

    if (*list == NULL) {
        *list = ngx_array_create(cf->pool, 2, sizeof(void *));
        if (*list == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    slot = ngx_array_push(*list);
    if (slot == NULL) {
        return NGX_CONF_ERROR;
    }

    *slot = entry;

    if (ngx_oauth_check_add(cf, check, entry) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_auth_jwt_key_format(ngx_conf_t *cf, ngx_str_t *value,
    ngx_int_t *format)
{
    ngx_uint_t  n;

    if (ngx_http_auth_jwt_enum_find(ngx_http_auth_jwt_key_formats, value, &n)
        == NGX_OK)
    {
        *format = (ngx_int_t) n;
        return NGX_OK;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%V\": invalid key format \"%V\", it must be "
                       "\"jwks\" or \"keyval\"",
                       &((ngx_str_t *) cf->args->elts)[0], value);
    return NGX_ERROR;
}


static char *
ngx_http_auth_jwt_key_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_auth_jwt_loc_conf_t *jlcf = conf;

    void                          **slot;
    ngx_str_t                      *value;
    ngx_http_auth_jwt_key_file_t   *kf;

    value = cf->args->elts;

    kf = ngx_pcalloc(cf->pool, sizeof(ngx_http_auth_jwt_key_file_t));
    if (kf == NULL) {
        return NGX_CONF_ERROR;
    }

    kf->format = NOX_KEYS_JWKS;

    if (cf->args->nelts == 3
        && ngx_http_auth_jwt_key_format(cf, &value[2], &kf->format)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    kf->path = value[1];

    if (ngx_http_script_variables_count(&value[1]) != 0) {
        kf->cv = ngx_oauth_complex_value(cf, &value[1]);
        if (kf->cv == NULL) {
            return NGX_CONF_ERROR;
        }

        if (jlcf->key_files == NULL) {
            jlcf->key_files = ngx_array_create(cf->pool, 2, sizeof(void *));
            if (jlcf->key_files == NULL) {
                return NGX_CONF_ERROR;
            }
        }

        slot = ngx_array_push(jlcf->key_files);
        if (slot == NULL) {
            return NGX_CONF_ERROR;
        }

        *slot = kf;

        ngx_oauth_use(cf);

        return NGX_CONF_OK;
    }

    if (ngx_oauth_read_file(cf, &kf->path, NOX_MAX_KEYSET, &kf->content)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return ngx_http_auth_jwt_add_entry(cf, &jlcf->key_files, kf,
                                       ngx_http_auth_jwt_check_key_file);
}


static u_char *
ngx_http_auth_jwt_check_key_file(void *data, u_char *buf, u_char *last)
{
    ngx_http_auth_jwt_key_file_t  *kf = data;

    int64_t  handle;
    int32_t  rc, detail;

    handle = 0;
    detail = 0;

    rc = ngx_oauth_managed.keyset_load(kf->content.data,
                                       (int32_t) kf->content.len,
                                       (int32_t) kf->format, &handle, &detail);

    if (rc == NOX_OK) {
        ngx_http_auth_jwt_warn_skipped(handle, &kf->path, NULL);
        (void) ngx_oauth_managed.keyset_free(handle);
        return NULL;
    }

    if (detail >= 0 && rc >= NOX_KEY_UNKNOWN_KTY && rc != NOX_KEYS_TOO_MANY
        && rc != NOX_KEYS_TOO_LARGE)
    {
        return ngx_slprintf(buf, last, "\"auth_jwt_key_file\" \"%V\": "
                            "key #%D: %s", &kf->path, detail,
                            ngx_oauth_status_text(rc));
    }

    return ngx_slprintf(buf, last, "\"auth_jwt_key_file\" \"%V\": %s",
                        &kf->path, ngx_oauth_status_text(rc));
}


/*
 * Keys of a file that will never verify are skipped, not fatal: one warning
 * each, naming the file, the key's index and its kid (escaped: it is text
 * from the file).  At nginx -t (log NULL) through the validator child; for
 * a key file with variables, in the worker when it reads the file.
 */

static void
ngx_http_auth_jwt_warn_skipped(int64_t handle, ngx_str_t *path,
    ngx_log_t *log)
{
    u_char     *p, *end, *path_end, msg[NGX_MAX_ERROR_STR];
    int32_t     i, key_index, reason, kid_len;
    ngx_str_t   kid, shown;
    u_char      raw[NGX_OAUTH_LOG_SAFE_MAX];
    u_char      safe[ngx_oauth_log_safe_size(NGX_OAUTH_LOG_SAFE_MAX)];
    u_char      path_safe[ngx_oauth_log_safe_size(NGX_OAUTH_LOG_SAFE_MAX)];

    /* in a worker the path has variables and may come from the request */

    if (log) {
        path_end = ngx_oauth_log_safe(path_safe, path,
                                      NGX_OAUTH_LOG_SAFE_MAX);
        shown.data = path_safe;
        shown.len = path_end - path_safe;

    } else {
        shown = *path;
    }

    for (i = 0; /* void */; i++) {
        kid_len = -1;

        if (ngx_oauth_managed.keyset_skipped(handle, i, &key_index, &reason,
                                             raw, sizeof(raw), &kid_len)
            != NOX_OK)
        {
            return;
        }

        if (kid_len >= 0) {
            kid.data = raw;
            kid.len = kid_len;
            end = ngx_oauth_log_safe(safe, &kid, NGX_OAUTH_LOG_SAFE_MAX);

            p = ngx_snprintf(msg, sizeof(msg),
                             "\"auth_jwt_key_file\" \"%V\": key #%D "
                             "(kid \"%*s\") skipped: %s", &shown, key_index,
                             end - safe, safe, ngx_oauth_status_text(reason));
        } else {
            p = ngx_snprintf(msg, sizeof(msg),
                             "\"auth_jwt_key_file\" \"%V\": key #%D "
                             "(no kid) skipped: %s", &shown, key_index,
                             ngx_oauth_status_text(reason));
        }

        if (log) {
            ngx_log_error(NGX_LOG_WARN, log, 0, "auth_jwt: %*s",
                          p - msg, msg);

        } else {
            ngx_oauth_check_warn(msg, p - msg);
        }
    }
}


static char *
ngx_http_auth_jwt_key_request_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_auth_jwt_loc_conf_t *jlcf = conf;

    char       *rv;
    ngx_int_t   format;
    ngx_str_t  *value;

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "has an empty uri";
    }

    format = NOX_KEYS_JWKS;

    if (cf->args->nelts == 3
        && ngx_http_auth_jwt_key_format(cf, &value[2], &format) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    rv = ngx_oauth_keys_request_conf(cf, &jlcf->keys, &value[1], format);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    ngx_oauth_use(cf);

    return NGX_CONF_OK;
}


/*
 * A directive whose value is one of the names of cmd->post
 * (ngx_http_auth_jwt_enum_t) into the ngx_uint_t at cmd->offset: as
 * ngx_conf_set_enum_slot, with the directive's own error message
 */

static char *
ngx_http_auth_jwt_enum_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_str_t                 *value;
    ngx_uint_t                *field;
    ngx_http_auth_jwt_enum_t  *en;

    field = (ngx_uint_t *) (p + cmd->offset);

    if (*field != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    en = cmd->post;

    if (ngx_http_auth_jwt_enum_find(en->names, &value[1], field) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, en->invalid, &value[1]);
        return NGX_CONF_ERROR;
    }

    if (en->file >= 0) {
        *(ngx_str_t *) (p + en->file) = cf->conf_file->file.name;
        *(ngx_uint_t *) (p + en->line) = cf->conf_file->line;
    }

    return NGX_CONF_OK;
}


/* NGX_OK: name is one of e's (its value in *value); else NGX_DECLINED */

static ngx_int_t
ngx_http_auth_jwt_enum_find(ngx_conf_enum_t *e, ngx_str_t *name,
    ngx_uint_t *value)
{
    e = ngx_oauth_enum(e, name, 0);

    if (e == NULL) {
        return NGX_DECLINED;
    }

    *value = e->value;
    return NGX_OK;
}


static char *
ngx_http_auth_jwt_revocation(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_auth_jwt_loc_conf_t *jlcf = conf;

    ngx_str_t                        *value;
    ngx_http_auth_jwt_revocation_t   *rv;

    value = cf->args->elts;

    rv = ngx_pcalloc(cf->pool, sizeof(ngx_http_auth_jwt_revocation_t));
    if (rv == NULL) {
        return NGX_CONF_ERROR;
    }

    rv->kind = (ngx_int_t) cmd->offset;
    rv->path = value[1];

    if (ngx_oauth_read_file(cf, &rv->path, NGX_HTTP_AUTH_JWT_MAX_REVOCATION,
                            &rv->content)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return ngx_http_auth_jwt_add_entry(cf, &jlcf->revocations, rv,
                                       ngx_http_auth_jwt_check_revocation);
}


static u_char *
ngx_http_auth_jwt_check_revocation(void *data, u_char *buf, u_char *last)
{
    ngx_http_auth_jwt_revocation_t  *rv = data;

    int64_t  policy;
    int32_t  rc;

    rc = ngx_oauth_managed.policy_create(0, 0, &policy);

    if (rc == NOX_OK) {
        rc = ngx_oauth_managed.policy_add_revocation(policy,
                                                     (int32_t) rv->kind,
                                                     rv->content.data,
                                                     (int32_t) rv->content.len);
        (void) ngx_oauth_managed.policy_free(policy);
    }

    if (rc == NOX_OK) {
        return NULL;
    }

    return ngx_slprintf(buf, last, "\"auth_jwt_revocation_list_%s\" \"%V\": "
                        "%s", rv->kind == NOX_REVOKE_SUB ? "sub" : "kid",
                        &rv->path, ngx_oauth_status_text(rc));
}


static char *
ngx_http_auth_jwt_require_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_auth_jwt_loc_conf_t *jlcf = conf;

    return ngx_oauth_require_conf(cf, &jlcf->requires);
}


static char *
ngx_http_auth_jwt_rule(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_auth_jwt_loc_conf_t *jlcf = conf;

    ngx_str_t                 *value, op;
    ngx_uint_t                 n, negate;
    ngx_http_auth_jwt_rule_t  *rule;

    value = cf->args->elts;

    if (jlcf->rules == NULL) {
        jlcf->rules = ngx_array_create(cf->pool, 4,
                                       sizeof(ngx_http_auth_jwt_rule_t));
        if (jlcf->rules == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    rule = ngx_array_push(jlcf->rules);
    if (rule == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(rule, sizeof(ngx_http_auth_jwt_rule_t));

    rule->target = (ngx_int_t) cmd->offset;
    rule->name = value[1];

    if (rule->name.len == 0) {
        return "has an empty name";
    }

    op = value[2];
    negate = (op.len > 1 && op.data[0] == '!');

    if (negate) {
        op.data++;
        op.len--;
    }

    if (ngx_http_auth_jwt_enum_find(ngx_http_auth_jwt_ops, &op, &n)
        != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": unknown operator \"%V\": it must be one "
                           "of eq, ne, gt, ge, lt, le, intersect (any), "
                           "nintersect, in, nin, match, each also with a "
                           "\"!\" prefix", &value[0], &value[2]);
        return NGX_CONF_ERROR;
    }

    rule->op = (ngx_int_t) n | (negate ? NOX_OP_NOT : 0);
    rule->op_name = value[2];

    if (value[3].len > 5 && ngx_strncmp(value[3].data, "json=", 5) == 0) {
        rule->kind = NOX_VALUE_JSON;
        rule->value.data = value[3].data + 5;
        rule->value.len = value[3].len - 5;

    } else if (value[3].len > 1 && value[3].data[0] == '$') {
        rule->kind = NOX_VALUE_VARIABLE;
        rule->value = value[3];

        rule->cv = ngx_oauth_complex_value(cf, &value[3]);
        if (rule->cv == NULL) {
            return NGX_CONF_ERROR;
        }

    } else {
        rule->kind = NOX_VALUE_STRING;
        rule->value = value[3];
    }

    rule->file = cf->conf_file->file.name;
    rule->line = cf->conf_file->line;

    /*
     * here the name is read as a policy without nesting reads it: JQ-like
     * paths (starting with "." or "[") are parsed, other names are
     * literal; auth_jwt_allow_nested may come later, so locations that
     * nest check their rules again after merging
     */

    if (ngx_http_auth_jwt_add_rule_check(cf, rule, NULL, NULL) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_auth_jwt_add_rule_check(ngx_conf_t *cf,
    ngx_http_auth_jwt_rule_t *rule, ngx_str_t *delimiter, ngx_str_t *quote)
{
    ngx_http_auth_jwt_rule_check_t  *rc;

    rc = ngx_pcalloc(cf->pool, sizeof(ngx_http_auth_jwt_rule_check_t));
    if (rc == NULL) {
        return NGX_ERROR;
    }

    rc->rule = rule;

    if (delimiter) {
        rc->delimiter = *delimiter;
        rc->quote = *quote;
    }

    return ngx_oauth_check_add_at(cf, ngx_http_auth_jwt_check_rule, rc,
                                  &rule->file, rule->line);
}


static u_char *
ngx_http_auth_jwt_check_rule(void *data, u_char *buf, u_char *last)
{
    ngx_http_auth_jwt_rule_check_t  *check = data;

    int64_t                    policy;
    int32_t                    rc;
    ngx_http_auth_jwt_rule_t  *rule;

    rule = check->rule;

    rc = ngx_oauth_managed.policy_create(0, 0, &policy);

    if (rc == NOX_OK && check->delimiter.len) {
        rc = ngx_oauth_managed.policy_set_nested(policy,
                                        check->delimiter.data,
                                        (int32_t) check->delimiter.len,
                                        check->quote.data,
                                        (int32_t) check->quote.len);
        if (rc != NOX_OK) {
            (void) ngx_oauth_managed.policy_free(policy);
        }
    }

    if (rc == NOX_OK) {
        rc = ngx_oauth_managed.policy_add_rule(policy,
                                               (int32_t) rule->target,
                                               rule->name.data,
                                               (int32_t) rule->name.len,
                                               (int32_t) rule->op,
                                               (int32_t) rule->kind,
                                               rule->value.data,
                                               (int32_t) rule->value.len);
        (void) ngx_oauth_managed.policy_free(policy);
    }

    if (rc == NOX_OK) {
        return NULL;
    }

    return ngx_slprintf(buf, last, "\"auth_jwt_require_%s\" \"%V\" %V: "
                        "%s%s%s",
                        rule->target == NOX_TARGET_CLAIM ? "claim" : "header",
                        &rule->name, &rule->op_name,
                        rule->kind == NOX_VALUE_JSON ? "json= value: " : "",
                        ngx_oauth_status_text(rc),
                        check->delimiter.len
                        ? " (with auth_jwt_allow_nested)" : "");
}


/*
 * The key files of a location must hold keys for its token type.  Files
 * load when they hold any usable key, a verification or a decryption key,
 * so a file may be usable by one type and useless to another:
 *   - encrypted or nested without a decryption key: every token would be
 *     refused with 500; an error, reported at auth_jwt_type;
 *   - signed or nested, auth_jwt_validate_sig on, without a verification
 *     key: the same for signatures; a warning, reported at auth_jwt (a
 *     parent block may hold keys only for the locations below it that
 *     set auth_jwt_type).
 * With auth_jwt_key_request or a key file with variables the keys may come
 * per request: nothing to check here.
 */

static ngx_int_t
ngx_http_auth_jwt_add_type_check(ngx_conf_t *cf,
    ngx_http_auth_jwt_loc_conf_t *conf)
{
    ngx_uint_t                      i;
    ngx_http_auth_jwt_key_file_t  **kf;

    if (conf->keys.requests != NULL || conf->key_files == NULL) {
        return NGX_OK;
    }

    if (conf->type == NOX_JWT_SIGNED && !conf->validate_sig) {
        return NGX_OK;
    }

    kf = conf->key_files->elts;

    for (i = 0; i < conf->key_files->nelts; i++) {
        if (kf[i]->cv) {
            return NGX_OK;
        }
    }

    if (conf->type == NOX_JWT_SIGNED) {
        return ngx_oauth_check_add_at(cf, ngx_http_auth_jwt_check_type, conf,
                                      &conf->file, conf->line);
    }

    return ngx_oauth_check_add_at(cf, ngx_http_auth_jwt_check_type, conf,
                                  &conf->type_file, conf->type_line);
}


static u_char *
ngx_http_auth_jwt_check_type(void *data, u_char *buf, u_char *last)
{
    ngx_http_auth_jwt_loc_conf_t  *conf = data;

    u_char                         *p, msg[NGX_MAX_ERROR_STR];
    int64_t                         handle;
    int32_t                         rc, detail, verify, decrypt;
    ngx_uint_t                      i, verifiers, decrypters;
    ngx_http_auth_jwt_key_file_t  **kf;

    verifiers = 0;
    decrypters = 0;

    kf = conf->key_files->elts;

    for (i = 0; i < conf->key_files->nelts; i++) {
        handle = 0;
        detail = 0;

        rc = ngx_oauth_managed.keyset_load(kf[i]->content.data,
                                           (int32_t) kf[i]->content.len,
                                           (int32_t) kf[i]->format, &handle,
                                           &detail);
        if (rc != NOX_OK) {
            continue;               /* the key file's own check reports it */
        }

        verify = 0;
        decrypt = 0;

        rc = ngx_oauth_managed.keyset_count(handle, &verify, &decrypt);

        (void) ngx_oauth_managed.keyset_free(handle);

        if (rc == NOX_OK) {
            verifiers += verify;
            decrypters += decrypt;
        }
    }

    if (conf->type != NOX_JWT_SIGNED && decrypters == 0) {
        return ngx_slprintf(buf, last, "\"auth_jwt_type\" %s: no decryption "
                            "key in the auth_jwt_key_file files (a JWK with "
                            "\"d\", an \"oct\" key with \"use\":\"enc\", or "
                            "a keyval PEM private key)",
                            conf->type == NOX_JWT_NESTED ? "nested"
                                                         : "encrypted");
    }

    if (conf->type != NOX_JWT_ENCRYPTED && conf->validate_sig
        && verifiers == 0 && ngx_http_auth_jwt_type_warned != conf->key_files)
    {
        ngx_http_auth_jwt_type_warned = conf->key_files;

        p = ngx_snprintf(msg, sizeof(msg),
                         "\"auth_jwt\": no key in the auth_jwt_key_file "
                         "files verifies signatures (they hold decryption "
                         "keys only): every %stoken will be refused with 500",
                         conf->type == NOX_JWT_NESTED ? "nested " : "");

        ngx_oauth_check_warn(msg, p - msg);
    }

    return NULL;
}


/*
 * auth_jwt_discovery issuer|metadata-url [options]: the two key requests
 * (ngx_oauth_keys_discovery_conf) and the claim rule "iss" eq issuer
 */

static char *
ngx_http_auth_jwt_discovery(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_auth_jwt_loc_conf_t *jlcf = conf;

    char                      *rv;
    ngx_str_t                  issuer;
    ngx_http_auth_jwt_rule_t  *rule;

    rv = ngx_oauth_keys_discovery_conf(cf, &jlcf->keys, &issuer);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    /* the token's "iss" must be the issuer */

    if (jlcf->rules == NULL) {
        jlcf->rules = ngx_array_create(cf->pool, 4,
                                       sizeof(ngx_http_auth_jwt_rule_t));
        if (jlcf->rules == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    rule = ngx_array_push(jlcf->rules);
    if (rule == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(rule, sizeof(ngx_http_auth_jwt_rule_t));

    rule->target = NOX_TARGET_CLAIM;
    ngx_str_set(&rule->name, "iss");
    rule->op = NOX_OP_EQ;
    ngx_str_set(&rule->op_name, "eq");
    rule->kind = NOX_VALUE_STRING;
    rule->value = issuer;
    rule->file = cf->conf_file->file.name;
    rule->line = cf->conf_file->line;

    if (ngx_http_auth_jwt_add_rule_check(cf, rule, NULL, NULL) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_oauth_use(cf);

    return NGX_CONF_OK;
}


static void *
ngx_http_auth_jwt_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_auth_jwt_main_conf_t  *jmcf;

    jmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_auth_jwt_main_conf_t));
    if (jmcf == NULL) {
        return NULL;
    }

    jmcf->key_zone_size = NGX_CONF_UNSET_SIZE;

    return jmcf;
}


/*
 * the auth_jwt_keys zone for conf's key requests, of the size of
 * auth_jwt_key_zone (at merge time every http{} directive has been read)
 */

static ngx_int_t
ngx_http_auth_jwt_keys_zone(ngx_conf_t *cf, ngx_http_auth_jwt_loc_conf_t *conf)
{
    ngx_http_auth_jwt_main_conf_t  *jmcf;

    jmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_oauth_jwt_module);

    return ngx_oauth_keys_zone(cf, &conf->keys, &ngx_http_oauth_jwt_module,
                               jmcf ? jmcf->key_zone_size
                                    : NGX_CONF_UNSET_SIZE);
}


static char *
ngx_http_auth_jwt_verify_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_auth_jwt_loc_conf_t *jlcf = conf;

    if (jlcf->verify_cache != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    return ngx_oauth_cache_conf_ex(cf, &ngx_http_oauth_jwt_module,
                                   "auth_jwt", NGX_HTTP_AUTH_JWT_CACHE_TTL,
                                   NGX_OAUTH_CACHE_REDIS, &jlcf->verify_cache);
}


static char *
ngx_http_auth_jwt_www_authenticate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_auth_jwt_loc_conf_t *jlcf = conf;

    ngx_str_t  *value;

    if (jlcf->challenge != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_auth_jwt_enum_find(ngx_http_auth_jwt_challenges, &value[1],
                                    &jlcf->challenge)
        == NGX_OK)
    {
        return NGX_CONF_OK;
    }

    jlcf->challenge = NGX_HTTP_AUTH_JWT_CHALLENGE_VALUE;

    jlcf->challenge_value = ngx_oauth_complex_value(cf, &value[1]);
    if (jlcf->challenge_value == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_auth_jwt_allow_nested(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_auth_jwt_loc_conf_t *jlcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i;

    if (jlcf->nested != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    jlcf->nested = 1;
    ngx_str_set(&jlcf->delimiter, ".");
    ngx_str_set(&jlcf->quote, "\"");

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "delimiter=", 10) == 0) {
            jlcf->delimiter.data = value[i].data + 10;
            jlcf->delimiter.len = value[i].len - 10;

            if (jlcf->delimiter.len == 0) {
                return "has an empty delimiter";
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "quote=", 6) == 0) {
            jlcf->quote.data = value[i].data + 6;
            jlcf->quote.len = value[i].len - 6;

            if (jlcf->quote.len == 0) {
                return "has an empty quote";
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"auth_jwt_allow_nested\": invalid parameter "
                           "\"%V\"",
                           &value[i]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* ---- per-issuer providers (auth_jwt_provider) ------------------------- */

/*
 * A location with providers verifies a token with one provider's keys
 * only: the one its iss names.  Each provider becomes, at configuration
 * time, a whole location configuration of its own (a copy of the
 * location's, with the provider's key files, key requests and rules):
 * the request ctx points to it (ctx->conf) and everything after the choice
 * (the key cache, the policy, the verified-token cache, the log) runs on
 * it unchanged.  Its policy carries the provider's issuer and options
 * (nox_policy_set_profile), so its identity, and every verify-cache key,
 * differs from any other provider's.
 */

static ngx_int_t
ngx_http_auth_jwt_provider_select(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_http_auth_jwt_ctx_t *ctx)
{
    u_char                        *p;
    ngx_int_t                      rc;
    ngx_str_t                      iss;
    ngx_http_auth_jwt_loc_conf_t  *pc;
    u_char                         safe[ngx_oauth_log_safe_size(
                                            NGX_OAUTH_LOG_SAFE_MAX)];

    rc = NGX_ABORT;

    if (ngx_http_auth_jwt_token_shape(&ctx->token, NOX_JWT_SIGNED) == NGX_OK) {
        rc = ngx_http_auth_jwt_token_issuer(r, &ctx->token, &iss);
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_ABORT) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "auth_jwt: rejected: %s (token %uz bytes)",
                      ngx_oauth_status_text(
                          ctx->token.len > NOX_MAX_TOKEN
                          ? NOX_TOKEN_TOO_LARGE : NOX_TOKEN_MALFORMED),
                      ctx->token.len);
        ngx_oauth_metrics_reason(r, NGX_OAUTH_M_JWT, NGX_OAUTH_R_MALFORMED);
        return ngx_http_auth_jwt_reject(r, jlcf, NGX_HTTP_UNAUTHORIZED, 1);
    }

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "auth_jwt: rejected: the token has no \"iss\", so no "
                      "auth_jwt_provider can check it (token %uz bytes)",
                      ctx->token.len);
        ngx_oauth_metrics_reason(r, NGX_OAUTH_M_JWT, NGX_OAUTH_R_ISSUER);
        return ngx_http_auth_jwt_reject(r, jlcf, NGX_HTTP_UNAUTHORIZED, 1);
    }

    pc = ngx_http_auth_jwt_provider_find(jlcf, &iss);

    if (pc == NULL) {
        p = ngx_oauth_log_safe(safe, &iss, NGX_OAUTH_LOG_SAFE_MAX);
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "auth_jwt: rejected: no auth_jwt_provider for iss "
                      "\"%*s\" (token %uz bytes)", p - safe, safe,
                      ctx->token.len);
        ngx_oauth_metrics_reason(r, NGX_OAUTH_M_JWT, NGX_OAUTH_R_ISSUER);
        return ngx_http_auth_jwt_reject(r, jlcf, NGX_HTTP_UNAUTHORIZED, 1);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "auth_jwt: provider \"%V\"", &pc->provider->issuer);

    ctx->conf = pc;

    return NGX_OK;
}


/*
 * The unverified iss of a compact JWS (nox_jwt_issuer): NGX_OK, NGX_DECLINED
 * when it has none, NGX_ABORT when it is not a JWS that decodes
 */

static ngx_int_t
ngx_http_auth_jwt_token_issuer(ngx_http_request_t *r, ngx_str_t *token,
    ngx_str_t *iss)
{
    u_char   *out;
    int32_t   rc, len;

    if (token->len == 0 || token->len > NOX_MAX_TOKEN) {
        return NGX_ABORT;
    }

    out = ngx_pnalloc(r->pool, token->len);
    if (out == NULL) {
        return NGX_ERROR;
    }

    len = 0;

    rc = ngx_oauth_managed.jwt_issuer(token->data, (int32_t) token->len, out,
                                      (int32_t) token->len, &len);

    switch (rc) {

    case NOX_OK:
        iss->data = out;
        iss->len = len;
        return NGX_OK;

    case NOX_NOT_FOUND:
        return NGX_DECLINED;

    case NOX_TOKEN_MALFORMED:
    case NOX_TOKEN_TOO_LARGE:
        return NGX_ABORT;

    default:
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "auth_jwt: nox_jwt_issuer failed: %s",
                      ngx_oauth_status_text(rc));
        return NGX_ERROR;
    }
}


/*
 * THE provider lookup: the provider conf of a location (with
 * auth_jwt_provider) whose issuer is exactly iss, or NULL
 */

static ngx_http_auth_jwt_loc_conf_t *
ngx_http_auth_jwt_provider_find(ngx_http_auth_jwt_loc_conf_t *jlcf,
    ngx_str_t *iss)
{
    ngx_uint_t                      i;
    ngx_http_auth_jwt_loc_conf_t  **pc;

    if (jlcf->provider_confs == NULL) {
        return NULL;
    }

    pc = jlcf->provider_confs->elts;

    for (i = 0; i < jlcf->provider_confs->nelts; i++) {
        if (pc[i]->provider->issuer.len == iss->len
            && ngx_memcmp(pc[i]->provider->issuer.data, iss->data, iss->len)
               == 0)
        {
            return pc[i];
        }
    }

    return NULL;
}


/*
 * For other modules (one location for JWTs and opaque tokens): is token a
 * compact JWS whose unverified iss names a provider of r's location?
 * NGX_OK with *issuer (the provider's issuer), NGX_DECLINED when not (auth_jwt
 * off or without providers, not a JWS, no iss, unknown iss), NGX_ERROR.
 * It says nothing about the signature: the auth_jwt handler verifies.
 */

ngx_int_t
ngx_oauth_jwt_provider_match(ngx_http_request_t *r, ngx_str_t *token,
    ngx_str_t *issuer)
{
    ngx_int_t                      rc;
    ngx_str_t                      iss;
    ngx_http_auth_jwt_loc_conf_t  *jlcf, *pc;

    jlcf = ngx_http_get_module_loc_conf(r, ngx_http_oauth_jwt_module);

    if (!jlcf->enable || jlcf->provider_confs == NULL
        || !ngx_oauth_managed_ready
        || ngx_http_auth_jwt_token_shape(token, NOX_JWT_SIGNED) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    rc = ngx_http_auth_jwt_token_issuer(r, token, &iss);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc != NGX_OK) {
        return NGX_DECLINED;
    }

    pc = ngx_http_auth_jwt_provider_find(jlcf, &iss);
    if (pc == NULL) {
        return NGX_DECLINED;
    }

    *issuer = pc->provider->issuer;

    return NGX_OK;
}


/* $jwt_provider: the issuer of the provider that accepted the token */

static ngx_int_t
ngx_http_auth_jwt_variable_provider(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_auth_jwt_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_oauth_jwt_module);

    if (ctx == NULL || !ctx->verified || ctx->conf == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    return ngx_oauth_variable_set(r, v, &ctx->conf->provider->issuer);
}


static int32_t
ngx_http_auth_jwt_provider_policy(ngx_http_auth_jwt_provider_t *pv,
    int64_t h)
{
    int32_t     rc;
    ngx_str_t  *aud;
    ngx_uint_t  i;

    rc = ngx_oauth_managed.policy_set_profile(h, pv->issuer.data,
                                              (int32_t) pv->issuer.len,
                                              (int32_t) pv->flags,
                                              (int64_t) pv->max_lifetime);
    if (rc != NOX_OK || pv->audiences == NULL) {
        return rc;
    }

    aud = pv->audiences->elts;

    for (i = 0; i < pv->audiences->nelts; i++) {
        rc = ngx_oauth_managed.policy_add_audience(h, aud[i].data,
                                                   (int32_t) aud[i].len);
        if (rc != NOX_OK) {
            return rc;
        }
    }

    return NOX_OK;
}


static size_t
ngx_http_auth_jwt_provider_identity_len(ngx_http_auth_jwt_provider_t *pv)
{
    size_t      len;
    ngx_str_t  *aud;
    ngx_uint_t  i;

    len = sizeof("provider=:|||") + NGX_SIZE_T_LEN + pv->issuer.len
          + NGX_INT_T_LEN + NGX_TIME_T_LEN;

    if (pv->audiences) {
        aud = pv->audiences->elts;

        for (i = 0; i < pv->audiences->nelts; i++) {
            len += NGX_SIZE_T_LEN + 3 + aud[i].len;
        }
    }

    return len;
}


static u_char *
ngx_http_auth_jwt_provider_identity(ngx_http_auth_jwt_provider_t *pv,
    u_char *p)
{
    ngx_str_t  *aud;
    ngx_uint_t  i;

    p = ngx_sprintf(p, "provider=%uz:%V|%ui|%T|", pv->issuer.len,
                    &pv->issuer, pv->flags, pv->max_lifetime);

    if (pv->audiences) {
        aud = pv->audiences->elts;

        for (i = 0; i < pv->audiences->nelts; i++) {
            p = ngx_sprintf(p, "a%uz:%V|", aud[i].len, &aud[i]);
        }
    }

    return p;
}


/*
 * auth_jwt_provider issuer [key_file=path]... [key_request=uri]...
 *     [format=jwks|keyval] [discovery | discovery=metadata-url]
 *     [discovery_uri=/location] [discovery_<option>=value]...
 *     [audience=aud]... [typ=at+jwt]
 *     [require_exp] [max_lifetime=time]
 *
 * The key sources go through the handlers of auth_jwt_key_file,
 * auth_jwt_key_request and auth_jwt_discovery, into the provider's own
 * scratch configuration, so they are read, checked, cached and refreshed
 * exactly as those directives are.
 */

static char *
ngx_http_auth_jwt_provider_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_auth_jwt_loc_conf_t *jlcf = conf;

    char                          *rv;
    u_char                        *p;
    time_t                         t;
    ngx_str_t                     *value, name, val, format, *aud, *iss;
    ngx_str_t                      route, disc, *dopts;
    ngx_uint_t                     i, discovery, has_format, ndopts;
    ngx_http_auth_jwt_loc_conf_t  *keys;
    ngx_http_auth_jwt_provider_t  *pv, **pvs;

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "has an empty issuer";
    }

    if (jlcf->providers) {
        pvs = jlcf->providers->elts;

        for (i = 0; i < jlcf->providers->nelts; i++) {
            if (pvs[i]->issuer.len == value[1].len
                && ngx_memcmp(pvs[i]->issuer.data, value[1].data,
                              value[1].len)
                   == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"auth_jwt_provider\" \"%V\" is "
                                   "duplicate (first in %V:%ui)", &value[1],
                                   &pvs[i]->file, pvs[i]->line);
                return NGX_CONF_ERROR;
            }
        }
    }

    pv = ngx_pcalloc(cf->pool, sizeof(ngx_http_auth_jwt_provider_t));
    if (pv == NULL) {
        return NGX_CONF_ERROR;
    }

    keys = ngx_http_auth_jwt_create_loc_conf(cf);
    if (keys == NULL) {
        return NGX_CONF_ERROR;
    }

    pv->issuer = value[1];
    pv->keys = keys;
    pv->file = cf->conf_file->file.name;
    pv->line = cf->conf_file->line;

    /*
     * format= applies to the key sources, discovery_*= are the options of
     * auth_jwt_discovery without the prefix: read them first
     */

    ngx_str_set(&format, "jwks");
    has_format = 0;
    ngx_str_null(&route);

    dopts = ngx_palloc(cf->temp_pool, cf->args->nelts * sizeof(ngx_str_t));
    if (dopts == NULL) {
        return NGX_CONF_ERROR;
    }

    ndopts = 0;

    for (i = 2; i < cf->args->nelts; i++) {
        if (ngx_strncmp(value[i].data, "format=", 7) == 0) {
            format.data = value[i].data + 7;
            format.len = value[i].len - 7;
            has_format = 1;

            if (ngx_strcmp(format.data, "jwks") != 0
                && ngx_strcmp(format.data, "keyval") != 0)
            {
                goto invalid;
            }
        }

        if (ngx_strncmp(value[i].data, "discovery_", 10) == 0) {
            /* discovery_uri=/x is handed to auth_jwt_discovery as uri=/x */
            dopts[ndopts].data = value[i].data + 10;
            dopts[ndopts].len = value[i].len - 10;

            if (ngx_strncmp(dopts[ndopts].data, "uri=", 4) == 0) {
                route = dopts[ndopts];
            }

            ndopts++;
        }
    }

    discovery = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        p = (u_char *) ngx_strlchr(value[i].data,
                                   value[i].data + value[i].len, '=');

        name.data = value[i].data;
        name.len = p ? (size_t) (p - value[i].data) : value[i].len;

        if (p) {
            val.data = p + 1;
            val.len = value[i].data + value[i].len - val.data;

        } else {
            ngx_str_null(&val);
        }

#define ngx_http_auth_jwt_is(n)                                              \
        (name.len == sizeof(n) - 1 && ngx_strncmp(name.data, n, name.len) == 0)

        if (ngx_http_auth_jwt_is("format")) {
            if (p == NULL || val.len == 0) {
                goto invalid;
            }

            continue;
        }

        if (name.len > 10 && ngx_strncmp(name.data, "discovery_", 10) == 0) {
            if (p == NULL) {
                goto invalid;
            }

            continue;               /* checked by auth_jwt_discovery */
        }

        if (ngx_http_auth_jwt_is("key_file")) {
            if (p == NULL || val.len == 0) {
                goto invalid;
            }

            rv = ngx_http_auth_jwt_provider_call(cf, pv,
                                            ngx_http_auth_jwt_key_file,
                                            "auth_jwt_key_file", &val,
                                            &format, has_format);
            if (rv != NGX_CONF_OK) {
                return rv;
            }

            continue;
        }

        if (ngx_http_auth_jwt_is("key_request")) {
            if (p == NULL || val.len == 0) {
                goto invalid;
            }

            rv = ngx_http_auth_jwt_provider_call(cf, pv,
                                            ngx_http_auth_jwt_key_request_conf,
                                            "auth_jwt_key_request", &val,
                                            &format, has_format);
            if (rv != NGX_CONF_OK) {
                return rv;
            }

            continue;
        }

        if (ngx_http_auth_jwt_is("discovery")) {
            if (discovery++) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"auth_jwt_provider\" \"%V\": one "
                                   "discovery per provider", &pv->issuer);
                return NGX_CONF_ERROR;
            }

            if (p && val.len == 0) {
                goto invalid;
            }

            if ((cf->cmd_type & NGX_HTTP_MAIN_CONF) && route.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"auth_jwt_provider\" \"%V\": discovery "
                                   "at the http level needs discovery_uri=",
                                   &pv->issuer);
                return NGX_CONF_ERROR;
            }

            disc = p ? val : pv->issuer;

            rv = ngx_http_auth_jwt_provider_call(cf, pv,
                                            ngx_http_auth_jwt_discovery,
                                            "auth_jwt_discovery", &disc,
                                            dopts, ndopts);
            if (rv != NGX_CONF_OK) {
                return rv;
            }

            /* the discovered issuer must be this provider's */

            iss = ngx_oauth_keys_issuer(&keys->keys);

            if (iss->len != pv->issuer.len
                || ngx_memcmp(iss->data, pv->issuer.data, pv->issuer.len)
                   != 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"auth_jwt_provider\" \"%V\": the "
                                   "discovery URL names the issuer \"%V\"",
                                   &pv->issuer, iss);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_http_auth_jwt_is("audience")) {
            if (p == NULL || val.len == 0) {
                goto invalid;
            }

            if (pv->audiences == NULL) {
                pv->audiences = ngx_array_create(cf->pool, 2,
                                                 sizeof(ngx_str_t));
                if (pv->audiences == NULL) {
                    return NGX_CONF_ERROR;
                }
            }

            aud = ngx_array_push(pv->audiences);
            if (aud == NULL) {
                return NGX_CONF_ERROR;
            }

            *aud = val;
            continue;
        }

        if (ngx_http_auth_jwt_is("typ")) {
            if (p == NULL || val.len != sizeof("at+jwt") - 1
                || ngx_strncasecmp(val.data, (u_char *) "at+jwt", val.len)
                   != 0)
            {
                goto invalid;
            }

            pv->flags |= NOX_PROFILE_AT_JWT;
            continue;
        }

        if (ngx_http_auth_jwt_is("require_exp") && p == NULL) {
            pv->flags |= NOX_PROFILE_REQUIRE_EXP;
            continue;
        }

        if (ngx_http_auth_jwt_is("max_lifetime")) {
            if (p == NULL) {
                goto invalid;
            }

            t = ngx_parse_time(&val, 1);

            if (t == (time_t) NGX_ERROR || t <= 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"auth_jwt_provider\" \"%V\": invalid "
                                   "max_lifetime \"%V\"", &pv->issuer, &val);
                return NGX_CONF_ERROR;
            }

            pv->max_lifetime = t;
            continue;
        }

#undef ngx_http_auth_jwt_is

        goto invalid;
    }

    if (ndopts && !discovery) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"auth_jwt_provider\" \"%V\": \"%V\" without "
                           "discovery", &pv->issuer, &dopts[0]);
        return NGX_CONF_ERROR;
    }

    if (keys->key_files == NULL && keys->keys.requests == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"auth_jwt_provider\" \"%V\" has no key source: "
                           "key_file=, key_request= or discovery",
                           &pv->issuer);
        return NGX_CONF_ERROR;
    }

    if (jlcf->providers == NULL) {
        jlcf->providers = ngx_array_create(cf->pool, 2, sizeof(void *));
        if (jlcf->providers == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    pvs = ngx_array_push(jlcf->providers);
    if (pvs == NULL) {
        return NGX_CONF_ERROR;
    }

    *pvs = pv;

    if (ngx_oauth_check_add(cf, ngx_http_auth_jwt_check_provider, pv)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    ngx_oauth_use(cf);

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"auth_jwt_provider\": invalid parameter \"%V\"",
                       &value[i]);
    return NGX_CONF_ERROR;
}


/* runs a key source directive's handler on the provider's scratch conf */

static char *
ngx_http_auth_jwt_provider_call(ngx_conf_t *cf,
    ngx_http_auth_jwt_provider_t *pv, ngx_http_auth_jwt_set_pt handler,
    const char *name, ngx_str_t *arg1, ngx_str_t *more, ngx_uint_t nmore)
{
    char         *rv;
    ngx_str_t    *a;
    ngx_uint_t    i;
    ngx_array_t  *saved, args;

    if (ngx_array_init(&args, cf->temp_pool, 2 + nmore, sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    a = ngx_array_push_n(&args, 2 + nmore);
    if (a == NULL) {
        return NGX_CONF_ERROR;
    }

    a[0].data = (u_char *) name;
    a[0].len = ngx_strlen(name);
    a[1] = *arg1;

    for (i = 0; i < nmore; i++) {
        a[2 + i] = more[i];
    }

    saved = cf->args;
    cf->args = &args;

    rv = handler(cf, NULL, pv->keys);

    cf->args = saved;

    if (rv != NGX_CONF_OK && rv != NGX_CONF_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"auth_jwt_provider\" \"%V\": %s %s",
                           &pv->issuer, name, rv);
        return NGX_CONF_ERROR;
    }

    return rv;
}


/*
 * One provider conf per provider for this location: its settings, the
 * provider's key files, key requests and rules after the location's rules
 */

static char *
ngx_http_auth_jwt_provider_merge(ngx_conf_t *cf,
    ngx_http_auth_jwt_loc_conf_t *conf)
{
    ngx_uint_t                       i;
    ngx_http_auth_jwt_provider_t   **pvs;
    ngx_http_auth_jwt_loc_conf_t    *pc, **slot, *keys;

    pvs = conf->providers->elts;

    if (conf->key_files || conf->keys.requests) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"auth_jwt_provider\": keys belong to the providers, "
                      "auth_jwt_key_file, auth_jwt_key_request and "
                      "auth_jwt_discovery cannot apply beside them in %V:%ui",
                      &pvs[0]->file, pvs[0]->line);
        return NGX_CONF_ERROR;
    }

    if (conf->type != NOX_JWT_SIGNED) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"auth_jwt_provider\" needs \"auth_jwt_type signed\": "
                      "the issuer of an encrypted token cannot be read "
                      "before it is decrypted in %V:%ui",
                      &pvs[0]->file, pvs[0]->line);
        return NGX_CONF_ERROR;
    }

    conf->provider_confs = ngx_array_create(cf->pool, conf->providers->nelts,
                                            sizeof(void *));
    if (conf->provider_confs == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < conf->providers->nelts; i++) {
        keys = pvs[i]->keys;

        pc = ngx_palloc(cf->pool, sizeof(ngx_http_auth_jwt_loc_conf_t));
        if (pc == NULL) {
            return NGX_CONF_ERROR;
        }

        *pc = *conf;

        pc->key_files = keys->key_files;
        pc->keys.requests = keys->keys.requests;
        pc->rules = keys->rules;
        pc->providers = NULL;
        pc->provider_confs = NULL;
        pc->provider = pvs[i];

        if (ngx_oauth_merge_array(cf, &pc->rules, conf->rules,
                                  sizeof(ngx_http_auth_jwt_rule_t))
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        pc->policy = ngx_pcalloc(cf->pool,
                                 sizeof(ngx_http_auth_jwt_policy_t));
        if (pc->policy == NULL) {
            return NGX_CONF_ERROR;
        }

        if (ngx_oauth_keys_discoveries(&pc->keys) && pc->keys.ttl == 0) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"auth_jwt_provider\" \"%V\": discovery "
                          "needs the key set cache, "
                          "\"auth_jwt_key_cache 0\" is not supported "
                          "with it in %V:%ui", &pvs[i]->issuer,
                          &pvs[i]->file, pvs[i]->line);
            return NGX_CONF_ERROR;
        }

        if (ngx_http_auth_jwt_keys_zone(cf, pc) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        slot = ngx_array_push(conf->provider_confs);
        if (slot == NULL) {
            return NGX_CONF_ERROR;
        }

        *slot = pc;
    }

    return NGX_CONF_OK;
}


/* nginx -t: the provider's issuer and audiences as the policy takes them */

static u_char *
ngx_http_auth_jwt_check_provider(void *data, u_char *buf, u_char *last)
{
    ngx_http_auth_jwt_provider_t  *pv = data;

    int64_t  h;
    int32_t  rc;

    h = 0;

    rc = ngx_oauth_managed.policy_create(NOX_POLICY_VALIDATE_EXP
                                         | NOX_POLICY_VALIDATE_SIG, 0, &h);
    if (rc == NOX_OK) {
        rc = ngx_http_auth_jwt_provider_policy(pv, h);
        (void) ngx_oauth_managed.policy_free(h);
    }

    if (rc == NOX_OK) {
        return NULL;
    }

    return ngx_slprintf(buf, last, "\"auth_jwt_provider\" \"%V\": %s "
                        "(the issuer and each audience must be UTF-8)",
                        &pv->issuer, ngx_oauth_status_text(rc));
}



/* ---- auth_jwt_introspect: one location for JWT and opaque tokens ------- */

/*
 * The handler's hybrid step, before any key is fetched: NGX_DECLINED
 * when the token goes through local verification (the handler goes on),
 * else the introspection's result (NGX_OK, NGX_AGAIN or a status).  The
 * path is decided once per request; a JWS that passed is introspected
 * too with "all".  The auth_oauth2_token handler stands aside in such a
 * location, so one handler decides, in auth_jwt_phase, and satisfy
 * any|all sees one access check.
 */

static ngx_int_t
ngx_http_auth_jwt_hybrid(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_http_auth_jwt_ctx_t *ctx)
{
    ngx_int_t  rc;

    switch (ctx->path) {

    case NGX_HTTP_AUTH_JWT_PATH_UNKNOWN:

        rc = ngx_http_auth_jwt_local_jws(r, jlcf, ctx);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_OK) {
            ctx->path = NGX_HTTP_AUTH_JWT_PATH_LOCAL;
            ctx->checked = 1;
            return NGX_DECLINED;
        }

        ctx->path = NGX_HTTP_AUTH_JWT_PATH_INTROSPECT;

        /* fall through */

    case NGX_HTTP_AUTH_JWT_PATH_INTROSPECT:
        return ngx_http_oauth2_token_hybrid(r, &ctx->token, 1);

    default: /* NGX_HTTP_AUTH_JWT_PATH_LOCAL */

        if (ctx->passed) {
            /* "all": the introspection of a verified JWS goes on */
            return ngx_http_auth_jwt_hybrid_passed(r, jlcf, ctx);
        }

        return NGX_DECLINED;
    }
}


/*
 * A JWS of the location passed verification and auth_jwt_require: with
 * "all" it is introspected as well (both must pass); an exchange that is
 * on runs for it either way
 */

static ngx_int_t
ngx_http_auth_jwt_hybrid_passed(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_http_auth_jwt_ctx_t *ctx)
{
    ctx->passed = 1;

    return ngx_http_oauth2_token_hybrid(r, &ctx->token,
                                        jlcf->introspect
                                        == NGX_OAUTH_HYBRID_ALL);
}


/*
 * Whether the token is a JWS of this location (NGX_OK: verified here,
 * never introspected instead) or a token for introspection (NGX_DECLINED):
 * the compact JWS form with a header naming a signing alg, neither "none"
 * nor a JWE (nox_jws_probe, in the core), and, when the location names
 * issuers, an unverified "iss" that is one of them.  The issuers named are
 * those of auth_jwt_discovery and of auth_jwt_provider; a provider's is
 * remembered in ctx->conf, so the provider selection does not read the iss
 * again.  This stays the one place that decides.
 */

static ngx_int_t
ngx_http_auth_jwt_local_jws(ngx_http_request_t *r,
    ngx_http_auth_jwt_loc_conf_t *jlcf, ngx_http_auth_jwt_ctx_t *ctx)
{
    u_char                        *iss;
    int32_t                        rc, len;
    ngx_str_t                     *token, name, *issuer;
    ngx_uint_t                     named;
    ngx_http_auth_jwt_loc_conf_t  *pc;

    token = &ctx->token;

    if (token->len > NOX_MAX_TOKEN) {
        return NGX_DECLINED;
    }

    iss = ngx_pnalloc(r->pool, token->len + 1);
    if (iss == NULL) {
        return NGX_ERROR;
    }

    len = -1;

    rc = ngx_oauth_managed.jws_probe(token->data, (int32_t) token->len, iss,
                                     (int32_t) token->len, &len);

    if (rc < 0) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "auth_jwt_introspect: nox_jws_probe failed: %s",
                      ngx_oauth_status_text(rc));
        return NGX_ERROR;
    }

    if (rc != NOX_OK) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "auth_jwt_introspect: not a JWS (%s), token of %uz "
                       "bytes: introspection", ngx_oauth_status_text(rc),
                       token->len);
        return NGX_DECLINED;
    }

    named = 0;

    if (jlcf->provider_confs) {
        named = 1;

        if (len >= 0) {
            name.data = iss;
            name.len = len;

            pc = ngx_http_auth_jwt_provider_find(jlcf, &name);

            if (pc) {
                ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                               "auth_jwt_introspect: a JWS of the provider "
                               "\"%V\": verified here",
                               &pc->provider->issuer);
                ctx->conf = pc;
                return NGX_OK;
            }
        }
    }

    /* auth_jwt_discovery names the location's issuer */

    issuer = ngx_oauth_keys_issuer(&jlcf->keys);

    if (issuer) {
        named = 1;

        if (len >= 0 && (size_t) len == issuer->len
            && ngx_memcmp(iss, issuer->data, len) == 0)
        {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "auth_jwt_introspect: a JWS of \"%V\": "
                           "verified here", issuer);
            return NGX_OK;
        }
    }

    if (named) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "auth_jwt_introspect: a JWS of another issuer (iss "
                       "of %D bytes): introspection", len);
        return NGX_DECLINED;
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "auth_jwt_introspect: a JWS: verified here");

    return NGX_OK;
}


/*
 * Where auth_jwt is on, auth_jwt_introspect needs a key source of its own
 * or providers (a location without either has nothing to verify locally:
 * beside providers, the location's own key sources are an error of
 * ngx_http_auth_jwt_provider_merge) and signed
 * tokens; the introspection half is checked by auth_oauth2_token's merge,
 * which runs after this one (ngx_http_auth_jwt_hybrid_conf).
 */

static char *
ngx_http_auth_jwt_hybrid_merge(ngx_conf_t *cf,
    ngx_http_auth_jwt_loc_conf_t *conf, ngx_http_auth_jwt_loc_conf_t *prev)
{
    if (conf->introspect == NGX_CONF_UNSET_UINT) {
        conf->introspect_file = prev->introspect_file;
        conf->introspect_line = prev->introspect_line;
    }

    ngx_conf_merge_uint_value(conf->introspect, prev->introspect,
                              NGX_OAUTH_HYBRID_OFF);

    if (!conf->enable || conf->introspect == NGX_OAUTH_HYBRID_OFF) {
        return NGX_CONF_OK;
    }

    if (conf->key_files == NULL && conf->keys.requests == NULL
        && conf->providers == NULL)
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"auth_jwt_introspect\" needs a key source "
                      "(auth_jwt_key_file, auth_jwt_key_request, "
                      "auth_jwt_discovery or auth_jwt_provider) where "
                      "auth_jwt is on in %V:%ui",
                      &conf->introspect_file, conf->introspect_line);
        return NGX_CONF_ERROR;
    }

    if (conf->type != NOX_JWT_SIGNED) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"auth_jwt_introspect\" works with signed tokens "
                      "only, not with auth_jwt_type encrypted or nested "
                      "in %V:%ui",
                      &conf->introspect_file, conf->introspect_line);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


ngx_uint_t
ngx_http_auth_jwt_hybrid_conf(ngx_conf_t *cf, ngx_uint_t *phase,
    ngx_str_t *file, ngx_uint_t *line)
{
    ngx_http_auth_jwt_loc_conf_t  *jlcf;

    jlcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_oauth_jwt_module);

    if (jlcf == NULL || jlcf->introspect == NGX_CONF_UNSET_UINT
        || !jlcf->enable || jlcf->enable == NGX_CONF_UNSET)
    {
        return NGX_OAUTH_HYBRID_OFF;
    }

    *phase = jlcf->phase;
    *file = jlcf->introspect_file;
    *line = jlcf->introspect_line;

    return jlcf->introspect;
}


ngx_uint_t
ngx_http_auth_jwt_checked(ngx_http_request_t *r)
{
    ngx_http_auth_jwt_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_oauth_jwt_module);

    return (ctx != NULL && ctx->checked);
}


/*
 * $oauth_token_path: the checks this request's token went through:
 * "jwt" (verified by auth_jwt), "introspection" (auth_oauth2_token),
 * "jwt+introspection", or empty (no token, or no check ran)
 */

static ngx_int_t
ngx_http_auth_jwt_variable_path(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_uint_t  jwt, introspected;

    jwt = ngx_http_auth_jwt_checked(r);
    introspected = ngx_http_oauth2_token_introspected(r);

    if (jwt && introspected) {
        v->data = (u_char *) "jwt+introspection";

    } else if (jwt) {
        v->data = (u_char *) "jwt";

    } else if (introspected) {
        v->data = (u_char *) "introspection";

    } else {
        v->data = (u_char *) "";
    }

    v->len = ngx_strlen(v->data);
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}
