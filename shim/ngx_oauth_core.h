/*
 * NginxOAuth shim: what every feature module of the .so shares.
 *
 *   - the table of managed (NativeAOT) entry points, filled in worker
 *     processes only (ngx_oauth_managed_load);
 *   - configuration checks that need managed code: recorded while parsing,
 *     run in a short-lived forked child at the end of the http block, so
 *     the nginx master never starts the .NET runtime;
 *   - helpers for subrequests, status texts, and for values from tokens
 *     and IdPs on their way into a log line (ngx_oauth_log_safe) or a
 *     variable (ngx_oauth_variable_set).
 */

#ifndef NGX_OAUTH_CORE_H
#define NGX_OAUTH_CORE_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_oauth_abi.h"


#define NGX_OAUTH_MANAGED_NAME  "ngx_http_oauth_managed.so"
#define NGX_OAUTH_GC_GEN0SIZE   "100000"      /* 1 MiB, hexadecimal */

/* seconds a client is asked to wait after a 503 (an IdP down) */
#define NGX_OAUTH_RETRY_AFTER   "5"

/* source bytes of a token or IdP value that reach a log line */
#define NGX_OAUTH_LOG_SAFE_MAX  128

/* the room ngx_oauth_log_safe() needs for max source bytes */
#define ngx_oauth_log_safe_size(max)  ((max) * 4 + sizeof("...") - 1)


typedef struct {
    int32_t  (*abi_version)(void);
    int32_t  (*keyset_load)(const uint8_t *data, int32_t len, int32_t format,
                 int64_t *handle, int32_t *detail);
    int32_t  (*keyset_free)(int64_t handle);
    int32_t  (*keyset_skipped)(int64_t handle, int32_t index,
                 int32_t *key_index, int32_t *reason, uint8_t *kid,
                 int32_t kid_cap, int32_t *kid_len);
    int32_t  (*keyset_count)(int64_t handle, int32_t *verify,
                 int32_t *decrypt);
    int32_t  (*json_check)(const uint8_t *data, int32_t len);
    int32_t  (*policy_create)(int32_t flags, int64_t leeway, int64_t *handle);
    int32_t  (*policy_add_keyset)(int64_t policy, int64_t keyset);
    int32_t  (*policy_add_revocation)(int64_t policy, int32_t kind,
                 const uint8_t *json, int32_t len);
    int32_t  (*policy_set_nested)(int64_t policy, const uint8_t *delim,
                 int32_t delim_len, const uint8_t *quote, int32_t quote_len);
    int32_t  (*policy_add_rule)(int64_t policy, int32_t target,
                 const uint8_t *path, int32_t path_len, int32_t op,
                 int32_t value_kind, const uint8_t *value, int32_t value_len);
    int32_t  (*policy_free)(int64_t policy);
    int32_t  (*jwt_verify)(int64_t policy, const uint8_t *token,
                 int32_t token_len, int64_t now, const int64_t *extra_keysets,
                 int32_t n_extra, const nox_buf_t *rule_values,
                 int32_t n_values, uint8_t *out, int32_t out_cap,
                 int32_t *header_len, int32_t *payload_len, int32_t *detail);
    int32_t  (*jwt_check)(int64_t policy, const uint8_t *header,
                 int32_t header_len, const uint8_t *payload,
                 int32_t payload_len, int64_t now,
                 const nox_buf_t *rule_values, int32_t n_values,
                 int32_t *detail);
    int32_t  (*policy_set_type)(int64_t policy, int32_t type);
    int32_t  (*jwt_verify_ex)(int64_t policy, const uint8_t *token,
                 int32_t token_len, int64_t now, const int64_t *extra_keysets,
                 int32_t n_extra, const nox_buf_t *rule_values,
                 int32_t n_values, uint8_t *out, int32_t out_cap,
                 int32_t *lens, int32_t *detail);
    int32_t  (*json_get)(const uint8_t *json, int32_t json_len,
                 const uint8_t *path, int32_t path_len, int32_t path_kind,
                 const uint8_t *delim, int32_t delim_len,
                 const uint8_t *quote, int32_t quote_len, uint8_t *out,
                 int32_t out_cap, int32_t *out_len);
    int32_t  (*json_compact)(const uint8_t *json, int32_t json_len,
                 uint8_t *out, int32_t out_cap, int32_t *out_len);
    int32_t  (*introspect_parse)(const uint8_t *json, int32_t json_len,
                 int64_t now, int64_t *expires_in);
    int32_t  (*exchange_parse)(const uint8_t *json, int32_t json_len,
                 uint8_t *out, int32_t out_cap, int32_t *token_len,
                 int32_t *type_len, int32_t *issued_len,
                 int64_t *expires_in);
    int32_t  (*token_error)(int32_t http_status, const uint8_t *body,
                 int32_t body_len, uint8_t *out, int32_t out_cap,
                 int32_t *code_len);
    int32_t  (*numeric_date)(const uint8_t *json, int32_t json_len,
                 const uint8_t *name, int32_t name_len, int64_t *seconds);
    int32_t  (*sha256)(const uint8_t *data, int32_t len, uint8_t *out,
                 int32_t out_cap);
    int32_t  (*sts_create)(const nox_buf_t *settings, int32_t n_settings,
                 int64_t *handle, int32_t *detail);
    int32_t  (*sts_free)(int64_t handle);
    int32_t  (*sts_key)(int64_t handle, const uint8_t *source,
                 int32_t source_len, const nox_buf_t *values,
                 int32_t n_values, uint8_t *out, int32_t out_cap);
    int32_t  (*sts_request)(int64_t handle, const uint8_t *source,
                 int32_t source_len, const nox_buf_t *values,
                 int32_t n_values, int64_t now, uint8_t *out,
                 int32_t out_cap, int32_t *lens, int64_t *ttl);
    int32_t  (*sts_response)(int64_t handle, int32_t http_status,
                 const uint8_t *body, int32_t body_len, int64_t now,
                 uint8_t *out, int32_t out_cap, int32_t *lens,
                 int64_t *ttl);
    int32_t  (*jwt_issuer)(const uint8_t *token, int32_t token_len,
                 uint8_t *out, int32_t out_cap, int32_t *out_len);
    int32_t  (*policy_set_profile)(int64_t policy, const uint8_t *issuer,
                 int32_t issuer_len, int32_t flags, int64_t max_lifetime);
    int32_t  (*policy_add_audience)(int64_t policy, const uint8_t *audience,
                 int32_t audience_len);
    int32_t  (*cache_seal)(const uint8_t *secret, int32_t secret_len,
                 const uint8_t *aad, int32_t aad_len, int64_t expires,
                 int32_t aux, const uint8_t *payload, int32_t payload_len,
                 uint8_t *out, int32_t out_cap, int32_t *out_len);
    int32_t  (*cache_open)(const uint8_t *secret, int32_t secret_len,
                 const uint8_t *aad, int32_t aad_len, const uint8_t *sealed,
                 int32_t sealed_len, uint8_t *out, int32_t out_cap,
                 int32_t *out_len, int64_t *expires, int32_t *aux);
    int32_t  (*jws_probe)(const uint8_t *token, int32_t token_len,
                 uint8_t *iss, int32_t iss_cap, int32_t *iss_len);
} ngx_oauth_managed_t;


/*
 * A configuration check that needs managed code.  It runs in the validator
 * child; on failure it writes a message (without " in file:line", which is
 * added from the recorded position) into [buf, last) and returns its end.
 * It may call ngx_oauth_check_warn() for problems that do not fail the
 * configuration (the master logs them at warn, with the same position).
 */
typedef u_char *(*ngx_oauth_check_pt)(void *data, u_char *buf, u_char *last);


/* where a token is removed from or put into the request to the upstream */

#define NGX_OAUTH_PLACE_HEADER   1
#define NGX_OAUTH_PLACE_COOKIE   2
#define NGX_OAUTH_PLACE_QUERY    3
#define NGX_OAUTH_PLACE_BEARER   4    /* Authorization: Bearer <token> */

typedef struct {
    ngx_uint_t                   in;        /* NGX_OAUTH_PLACE_*, 0: none */
    ngx_str_t                    name;
} ngx_oauth_place_t;


/* an IdP endpoint: an absolute URL and the generated location reaching it */

typedef struct {
    ngx_str_t                    url;
    ngx_str_t                    uri;       /* the subrequest target */
    ngx_flag_t                   verify;
    ngx_msec_t                   timeout;
    ngx_str_t                    cert;
    ngx_str_t                    key;
    ngx_str_t                    ca;
    ngx_uint_t                   prefix;    /* a prefix location "uri/":
                                               the URL's path is replaced
                                               by the rest of the uri */
} ngx_oauth_route_t;


/* one "*_require $v ... [error=code]" directive */

typedef struct {
    ngx_array_t                 *values;    /* of ngx_http_complex_value_t * */
    ngx_uint_t                   status;
} ngx_oauth_require_t;


extern ngx_oauth_managed_t  ngx_oauth_managed;
extern ngx_uint_t           ngx_oauth_managed_ready;
extern ngx_module_t         ngx_http_oauth_module;


ngx_int_t ngx_oauth_check_add(ngx_conf_t *cf, ngx_oauth_check_pt handler,
    void *data);
ngx_int_t ngx_oauth_check_add_at(ngx_conf_t *cf, ngx_oauth_check_pt handler,
    void *data, ngx_str_t *file, ngx_uint_t line);
void ngx_oauth_check_warn(u_char *msg, size_t len);
void ngx_oauth_use(ngx_conf_t *cf);
ngx_int_t ngx_oauth_managed_load(ngx_log_t *log, u_char *err, size_t size);
const char *ngx_oauth_status_text(int32_t status);
ngx_int_t ngx_oauth_read_file(ngx_conf_t *cf, ngx_str_t *name,
    size_t max, ngx_str_t *content);
ngx_int_t ngx_oauth_challenge(ngx_http_request_t *r, ngx_uint_t status,
    ngx_uint_t invalid);
ngx_int_t ngx_oauth_read_secret(ngx_conf_t *cf, ngx_str_t *name,
    size_t max, ngx_str_t *content);
ngx_http_complex_value_t *ngx_oauth_complex_value(ngx_conf_t *cf,
    ngx_str_t *value);
ngx_int_t ngx_oauth_subrequest(ngx_http_request_t *r, ngx_str_t *uri,
    ngx_http_post_subrequest_t *ps, ngx_http_request_t **psr);
ngx_int_t ngx_oauth_subrequest_ex(ngx_http_request_t *r, ngx_str_t *uri,
    ngx_http_post_subrequest_t *ps, ngx_uint_t sflags,
    ngx_http_request_t **psr);
ngx_int_t ngx_oauth_subrequest_body(ngx_http_request_t *sr, ngx_str_t *body);
ngx_int_t ngx_oauth_subrequest_post(ngx_http_request_t *r, ngx_str_t *uri,
    ngx_http_post_subrequest_t *ps, ngx_str_t *type, ngx_str_t *authorization,
    ngx_str_t *body, ngx_http_request_t **psr);
ngx_table_elt_t *ngx_oauth_header_add(ngx_pool_t *pool, ngx_list_t *headers,
    const char *key, ngx_str_t *value);
ngx_int_t ngx_oauth_bearer_token(ngx_http_request_t *r, ngx_str_t *token);
ngx_int_t ngx_oauth_json_get(ngx_http_request_t *r, ngx_str_t *json,
    ngx_str_t *path, int32_t kind, ngx_str_t *delim, ngx_str_t *quote,
    ngx_str_t *value);
char *ngx_oauth_require_conf(ngx_conf_t *cf, ngx_array_t **requires);
ngx_int_t ngx_oauth_require_check(ngx_http_request_t *r,
    ngx_array_t *requires, ngx_uint_t *status, ngx_str_t **failed);
ngx_int_t ngx_oauth_merge_array(ngx_conf_t *cf, ngx_array_t **conf,
    ngx_array_t *prev, size_t size);
ngx_int_t ngx_oauth_subrequest_done(ngx_http_request_t *sr, ngx_int_t rc,
    ngx_str_t *body);
u_char *ngx_oauth_log_safe(u_char *dst, ngx_str_t *src, size_t max);
u_char *ngx_oauth_form_encode(u_char *dst, ngx_str_t *src);
ngx_int_t ngx_oauth_variable_set(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, ngx_str_t *value);
ngx_conf_enum_t *ngx_oauth_enum(ngx_conf_enum_t *e, ngx_str_t *value,
    ngx_uint_t caseless);

/* ngx_oauth_proxy.c */
typedef char *(*ngx_oauth_pair_pt)(ngx_conf_t *cf, void *data,
    ngx_str_t *name, ngx_str_t *value);

char *ngx_oauth_form_each(ngx_conf_t *cf, ngx_str_t *form,
    ngx_oauth_pair_pt handler, void *data);
ngx_int_t ngx_oauth_route_option(ngx_conf_t *cf, ngx_oauth_route_t *rt,
    ngx_str_t *name, ngx_str_t *value);
ngx_msec_t ngx_oauth_seconds_msec(ngx_str_t *value);
ngx_str_t *ngx_oauth_directive_name(ngx_conf_t *cf);
char *ngx_oauth_place_parse(ngx_conf_t *cf, ngx_str_t *spec,
    ngx_oauth_place_t *place, ngx_uint_t target);
ngx_int_t ngx_oauth_place_set(ngx_http_request_t *r, ngx_oauth_place_t *place,
    ngx_str_t *token);
char *ngx_oauth_route_conf(ngx_conf_t *cf, ngx_oauth_route_t *rt,
    const char *prefix);
ngx_uint_t ngx_oauth_route_number(ngx_conf_t *cf);
u_char *ngx_oauth_settings_check(nox_buf_t *settings, ngx_uint_t n,
    const char *noun, u_char *buf, u_char *last);
ngx_int_t ngx_oauth_sts_build(ngx_http_request_t *r, int64_t handle,
    ngx_str_t *source, nox_buf_t *values, ngx_uint_t n, size_t cap,
    size_t head, u_char **out, int32_t *lens, int64_t *ttl, int32_t *rc);


#endif /* NGX_OAUTH_CORE_H */
