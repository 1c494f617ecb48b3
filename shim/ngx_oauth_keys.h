/*
 * NginxOAuth shim: the key sets of auth_jwt_key_request and
 * auth_jwt_discovery (ngx_oauth_keys.c).
 *
 * A location's key requests, in order; with the shared key set cache (the
 * auth_jwt_keys zone) a set is fetched once for the whole nginx, refreshed
 * in the background, fetched again for a kid it lacks (rate limited), and
 * parsed once per worker and version; with auth_jwt_key_cache 0, one
 * in-memory subrequest per key request and request.  auth_jwt_discovery
 * is two key requests: the metadata document, through a generated route
 * to the issuer's origin, then the key set its jwks_uri names.
 *
 * The JWT module owns the directives' places (a field of its location and
 * request ctx) and calls in here; what it gets back is this request's
 * keyset handles (kx->keysets), the versions of the cached sets
 * (kx->digests) and, for a verified-token cache, the bodies not parsed yet
 * (kx->bodies).
 */

#ifndef NGX_OAUTH_KEYS_H
#define NGX_OAUTH_KEYS_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_oauth_abi.h"
#include "ngx_oauth_cache.h"


/* the format of a metadata document (auth_jwt_discovery): C only */
#define NGX_OAUTH_KEYS_DISCOVERY    0x100


typedef struct {
    ngx_http_complex_value_t   uri;
    ngx_int_t                  format;      /* NOX_KEYS_*, or
                                               NGX_OAUTH_KEYS_DISCOVERY:
                                               the metadata document */
    ngx_uint_t                 discovered;  /* the uri is the jwks_uri of
                                               the entry before */
    ngx_str_t                  issuer;      /* auth_jwt_discovery */
    ngx_str_t                  origin;      /* scheme://host[:port] */
    ngx_str_t                  route;       /* the subrequest uri that
                                               reaches the origin's "/" */

    /* this worker's last uri and its cache keys (ngx_oauth_keys_ids) */
    u_char                    *memo_uri;
    size_t                     memo_len;
    u_char                     memo_set[NOX_SHA256_LEN];
    u_char                     memo_fetch[NOX_SHA256_LEN];
} ngx_oauth_key_request_t;


/* a location's key requests and how their sets are cached */

typedef struct {
    ngx_array_t               *requests;    /* of ngx_oauth_key_request_t */
    ngx_oauth_cache_conf_t    *cache;       /* the shared key sets; NULL:
                                               a subrequest per request */
    time_t                     ttl;         /* auth_jwt_key_cache; unset:
                                               from the answer */
    time_t                     min;         /* auth_jwt_key_refresh */
    time_t                     max;
    time_t                     stale;
    time_t                     miss;
} ngx_oauth_keys_conf_t;


/* a key request's response kept for a verified-token cache lookup */

typedef struct {
    ngx_str_t                  body;
    ngx_uint_t                 index;       /* in requests */
    ngx_int_t                  format;      /* NOX_KEYS_* */
} ngx_oauth_key_body_t;


/* a request's way through its location's key requests */

typedef struct {
    ngx_str_t                 *uris;        /* every key request's uri,
                                               evaluated before the first
                                               subrequest */
    ngx_uint_t                 index;       /* next key request */
    ngx_array_t                keysets;     /* of int64_t, this request's */
    ngx_array_t                digests;     /* of u_char[32]: the versions
                                               of the cached sets */
    ngx_array_t                bodies;      /* of ngx_oauth_key_body_t: not
                                               yet loaded (verify cache) */
    ngx_oauth_flight_t         flight;      /* this request's fetch; with
                                               auth_jwt_key_cache 0 the
                                               facts of its subrequest */
    u_char                     set[NOX_SHA256_LEN];   /* the set's key */
    ngx_uint_t                 step;        /* index + 1 prepared */
    ngx_uint_t                 fetching;    /* its fetch runs */
    ngx_uint_t                 fetched;     /* a fetch ended meanwhile */
    ngx_uint_t                 refetch;     /* kid miss: fetched again */
    ngx_uint_t                 waiting;     /* a subrequest of
                                               auth_jwt_key_cache 0 runs */
} ngx_oauth_keys_ctx_t;


/* ---- configuration ----------------------------------------------------- */

void ngx_oauth_keys_conf_init(ngx_oauth_keys_conf_t *kc);
char *ngx_oauth_keys_merge(ngx_conf_t *cf, ngx_oauth_keys_conf_t *conf,
    ngx_oauth_keys_conf_t *prev);

/* auth_jwt_key_request uri [format] */
char *ngx_oauth_keys_request_conf(ngx_conf_t *cf, ngx_oauth_keys_conf_t *kc,
    ngx_str_t *uri, ngx_int_t format);

/*
 * auth_jwt_discovery (cf->args): the two key requests; *issuer is the
 * issuer the token's "iss" must name
 */
char *ngx_oauth_keys_discovery_conf(ngx_conf_t *cf,
    ngx_oauth_keys_conf_t *kc, ngx_str_t *issuer);

/* auth_jwt_key_refresh: cmd->offset is that of the ngx_oauth_keys_conf_t */
char *ngx_oauth_keys_refresh_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* auth_jwt_key_zone size: into the size_t at cmd->offset */
char *ngx_oauth_keys_zone_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* the issuer of the location's auth_jwt_discovery, or NULL */
ngx_str_t *ngx_oauth_keys_issuer(ngx_oauth_keys_conf_t *kc);

/* how many auth_jwt_discovery the location has (inherited ones too) */
ngx_uint_t ngx_oauth_keys_discoveries(ngx_oauth_keys_conf_t *kc);

/*
 * the shared key set zone of tag, of size (NGX_CONF_UNSET_SIZE: the
 * default) for the location's key requests, unless auth_jwt_key_cache 0
 */
ngx_int_t ngx_oauth_keys_zone(ngx_conf_t *cf, ngx_oauth_keys_conf_t *kc,
    void *tag, size_t size);


/* ---- requests ---------------------------------------------------------- */

ngx_int_t ngx_oauth_keys_ctx_init(ngx_http_request_t *r,
    ngx_oauth_keys_ctx_t *kx);

/*
 * this request's key sets: NGX_OK (all there), NGX_AGAIN (a subrequest
 * or another request's fetch runs: call again), or an HTTP status.  With
 * defer (a verified-token cache) a response of auth_jwt_key_cache 0 is
 * kept in kx->bodies instead of parsed: ngx_oauth_keys_load on a miss
 */
ngx_int_t ngx_oauth_keys_get(ngx_http_request_t *r, ngx_oauth_keys_conf_t *kc,
    ngx_oauth_keys_ctx_t *kx, ngx_uint_t defer);

/* a kept body (kx->bodies) becomes a keyset of this request */
ngx_int_t ngx_oauth_keys_load(ngx_http_request_t *r,
    ngx_oauth_keys_conf_t *kc, ngx_oauth_keys_ctx_t *kx, ngx_str_t *body,
    ngx_uint_t index);

/*
 * no key for the token's kid: NGX_OK when the cached sets are to be
 * fetched again (once per request; then ngx_oauth_keys_get again), else
 * NGX_DECLINED
 */
ngx_int_t ngx_oauth_keys_refetch(ngx_http_request_t *r,
    ngx_oauth_keys_conf_t *kc, ngx_oauth_keys_ctx_t *kx);


#endif /* NGX_OAUTH_KEYS_H */
