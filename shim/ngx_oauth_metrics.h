/*
 * NginxOAuth shim: counters for operators (ngx_oauth_metrics.c).
 *
 * Every decision of auth_jwt, auth_oauth2_token and sts, every lookup of
 * the shared caches and every IdP call is counted in one shared-memory
 * zone (oauth_metrics_zone), served by "oauth_status" in the Prometheus
 * text format; $oauth_result and $oauth_reason tell the access log why a
 * request was rejected.  The hot path only adds with ngx_atomic_fetch_add;
 * the zone's mutex is taken when a name (location, cache zone, endpoint)
 * gets its slot, once per worker and name.
 *
 * The reason vocabulary lives here and nowhere else: the modules name
 * reasons (hints) at their decision points, the status they answer with
 * decides the rest (ngx_oauth_metrics_reject).
 */

#ifndef NGX_OAUTH_METRICS_H
#define NGX_OAUTH_METRICS_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* the deciding modules: the "module" label */

#define NGX_OAUTH_M_JWT             0
#define NGX_OAUTH_M_OAUTH2_TOKEN    1
#define NGX_OAUTH_M_STS             2
#define NGX_OAUTH_M_MAX             3


/* why a request was rejected: the "reason" label and $oauth_reason */

#define NGX_OAUTH_R_NONE            0
#define NGX_OAUTH_R_MISSING         1   /* no token in the request */
#define NGX_OAUTH_R_MALFORMED       2   /* not a token of the expected shape,
                                           too large, crit/zip, wrong typ */
#define NGX_OAUTH_R_ALG             3   /* alg none, missing, not allowed */
#define NGX_OAUTH_R_EXPIRED         4   /* exp passed, nbf ahead, exp missing
                                           or not a NumericDate */
#define NGX_OAUTH_R_BAD_SIGNATURE   5   /* signature, or a JWE that did not
                                           decrypt */
#define NGX_OAUTH_R_NO_KEY          6   /* no key for the kid / alg */
#define NGX_OAUTH_R_REVOKED         7   /* sub or kid on a revocation list */
#define NGX_OAUTH_R_RULE_FAILED     8   /* a claim/header rule or a
                                           *_require directive */
#define NGX_OAUTH_R_INACTIVE        9   /* introspection: "active": false */
#define NGX_OAUTH_R_INVALID         10  /* other 401: the IdP or STS refused
                                           the token, unusable source */
#define NGX_OAUTH_R_FORBIDDEN       11  /* other 403: insufficient scope,
                                           access_denied */
#define NGX_OAUTH_R_IDP_ERROR       12  /* 502/503/504: IdP, STS or key set
                                           unreachable or unusable */
#define NGX_OAUTH_R_ERROR           13  /* 500 and other statuses */
#define NGX_OAUTH_R_ISSUER          14  /* auth_jwt_provider: no iss, or an
                                           iss no provider names */
#define NGX_OAUTH_R_MAX             15


/* what a cache lookup found */

#define NGX_OAUTH_C_HIT             0
#define NGX_OAUTH_C_MISS            1
#define NGX_OAUTH_C_STALE           2   /* an expired entry served while
                                           its IdP fails (stale_if_error) */
#define NGX_OAUTH_C_EVICTION        3   /* a live entry dropped: zone full */
#define NGX_OAUTH_C_MAX             4


/* a rejection hint of module m (kept until the module's decision) */
void ngx_oauth_metrics_reason(ngx_http_request_t *r, ngx_uint_t m,
    ngx_uint_t reason);

/* the same from a NOX_* status of the managed core */
void ngx_oauth_metrics_nox(ngx_http_request_t *r, ngx_uint_t m,
    int32_t rc);

/* module m let the request through */
void ngx_oauth_metrics_allow(ngx_http_request_t *r, ngx_uint_t m);

/* module m answers status (or NGX_ERROR) */
void ngx_oauth_metrics_reject(ngx_http_request_t *r, ngx_uint_t m,
    ngx_int_t status);

/*
 * a phase handler's result: NGX_OK allowed, a status or NGX_ERROR
 * rejected, anything else not decided yet; returns rc
 */
ngx_int_t ngx_oauth_metrics_done(ngx_http_request_t *r, ngx_uint_t m,
    ngx_int_t rc);

/*
 * a lookup (or eviction) in the cache zone name; *slot caches the
 * zone's counters for this worker (a field of the per-cycle cache object)
 */
void ngx_oauth_metrics_cache(ngx_http_request_t *r, void **slot,
    ngx_str_t *name, ngx_uint_t what);

/* ngx_oauth_cache_add: the zone's entries are shown by oauth_status */
ngx_int_t ngx_oauth_metrics_cache_zone(ngx_conf_t *cf, ngx_shm_zone_t *zone);

/*
 * an IdP call of who to url ended: answered (a status line or bytes came),
 * its status, whole (NGX_OK: the body arrived whole), msec it took
 */
void ngx_oauth_metrics_idp(ngx_http_request_t *r, const char *who,
    ngx_str_t *url, ngx_uint_t answered, ngx_uint_t status, ngx_int_t whole,
    ngx_msec_t msec);

/* ngx_oauth_cache.c: the live and kept entries of a cache zone */
ngx_uint_t ngx_oauth_cache_entries(ngx_shm_zone_t *zone);


/* ---- the Redis second level and the JWT key sets ----------------------- */

/* why a Redis command failed */

#define NGX_OAUTH_RE_NONE           0
#define NGX_OAUTH_RE_TIMEOUT        1   /* connect, send or reply timed out */
#define NGX_OAUTH_RE_UNREACHABLE    2   /* connection refused, closed, reset */
#define NGX_OAUTH_RE_REFUSED        3   /* an error reply (-ERR, -NOAUTH) */
#define NGX_OAUTH_RE_GARBAGE        4   /* not a RESP reply of the kind asked */
#define NGX_OAUTH_RE_MAX            5

/* what a Redis lookup found: every GET started ends in one of them */

#define NGX_OAUTH_RL_HIT            0
#define NGX_OAUTH_RL_MISS           1
#define NGX_OAUTH_RL_FOREIGN        2   /* not ours: another key_file, too
                                           short, does not open */
#define NGX_OAUTH_RL_ERROR          3
#define NGX_OAUTH_RL_ABANDONED      4   /* a value came after its request
                                           had ended: never opened */
#define NGX_OAUTH_RL_MAX            5

/* what happened to a JWT key set */

#define NGX_OAUTH_KS_FETCH_OK       0
#define NGX_OAUTH_KS_FETCH_ERROR    1
#define NGX_OAUTH_KS_REFETCH        2   /* a fetch for a kid not in the set */


/* oauth_redis: the server name has series in oauth_status */
ngx_int_t ngx_oauth_metrics_redis_server(ngx_conf_t *cf, ngx_str_t *name);

/*
 * a Redis command ("GET", "SET") of server name ended: rc NGX_OK (a value
 * or stored), NGX_DECLINED (GET: none), NGX_ERROR with error
 * (NGX_OAUTH_RE_*); msec it took; *slot is the server's (per worker)
 */
void ngx_oauth_metrics_redis(void **slot, ngx_str_t *name, const char *what,
    ngx_int_t rc, ngx_uint_t error, ngx_msec_t msec);

/* what a GET's value turned out to be (NGX_OAUTH_RL_*) */
void ngx_oauth_metrics_redis_lookup(void **slot, ngx_str_t *name,
    ngx_uint_t outcome);

/*
 * a key set (set: its entry's key in the key zone; label: its URI, or the
 * issuer of auth_jwt_discovery) was fetched or refetched (NGX_OAUTH_KS_*)
 */
void ngx_oauth_metrics_keyset(ngx_http_request_t *r, u_char *set,
    ngx_str_t *label, ngx_uint_t what);

/*
 * ngx_oauth_cache.c: the entry (kind, hash) of a cache zone, read under
 * the zone's lock for oauth_status (its first size bytes to buf): NGX_OK
 * and its times and aux, or NGX_DECLINED (none, or too short)
 */
ngx_int_t ngx_oauth_cache_peek(ngx_shm_zone_t *zone, u_char kind,
    u_char *hash, u_char *buf, size_t size, time_t *expires, time_t *keep,
    int32_t *aux);


#endif /* NGX_OAUTH_METRICS_H */
