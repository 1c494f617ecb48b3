/*
 * NginxOAuth shim: Redis as the second level of the shared-memory caches.
 *
 * "oauth_redis name host:port key_file=... [...]" (http) names a server;
 * a cache directive's "redis=name" makes it the second level of that zone:
 * a single-flight leader asks Redis before its IdP call, a Redis hit fills
 * the zone, an IdP result is written to both.  Redis is reached through
 * nginx's event loop (ngx_event_connect_peer) with the RESP encoder and
 * decoder of ngx_oauth_redis.c, keepalive connections per worker, connect
 * and read timeouts.  Entries are sealed by the managed core
 * (nox_cache_seal: AES-256-GCM, the Redis key as associated data).  Any
 * trouble with Redis is a miss, logged at warn at most once per 10 s per
 * server and worker: it never fails a request and never passes one.  A
 * command on a kept connection that Redis had closed is sent once more on
 * a new connection, without a warning.
 */

#ifndef NGX_OAUTH_REDIS_H
#define NGX_OAUTH_REDIS_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_oauth_cache.h"


/* ngx_oauth_redis_get_t.state */
#define NGX_OAUTH_REDIS_PENDING     1
#define NGX_OAUTH_REDIS_DONE        2
#define NGX_OAUTH_REDIS_USED        3


typedef struct ngx_oauth_redis_op_s  ngx_oauth_redis_op_t;


/* a lookup of one request: lives in r->pool */

typedef struct {
    ngx_http_request_t          *request;
    ngx_oauth_redis_t           *srv;
    ngx_oauth_redis_op_t        *op;        /* while pending */
    ngx_uint_t                   state;     /* NGX_OAUTH_REDIS_* */
    ngx_int_t                    rc;        /* NGX_OK: value; NGX_DECLINED:
                                               none; NGX_ERROR */
    ngx_str_t                    key;       /* the Redis key */
    ngx_str_t                    value;     /* sealed, in r->pool */
    ngx_event_t                  wake;      /* posted when it ends */
} ngx_oauth_redis_get_t;


/* "redis=name" of a cache directive (a server defined before or after) */
char *ngx_oauth_redis_ref(ngx_conf_t *cf, ngx_str_t *name,
    ngx_oauth_redis_t **srv);

/*
 * The second-level lookup of (cc, kind, hash): NGX_AGAIN when it started
 * (the request's phases run again when it ends; *pg then has state
 * NGX_OAUTH_REDIS_DONE), NGX_DECLINED when there is nothing to ask.
 */
ngx_int_t ngx_oauth_l2_lookup(ngx_http_request_t *r,
    ngx_oauth_cache_conf_t *cc, u_char kind, u_char *hash,
    ngx_oauth_redis_get_t **pg);

/*
 * After the lookup ended: NGX_OK with a live, authentic entry (value in
 * r->pool, *aux, *ttl: its remaining lifetime capped by max_ttl), else
 * NGX_DECLINED (a miss; trouble was logged)
 */
ngx_int_t ngx_oauth_l2_result(ngx_http_request_t *r,
    ngx_oauth_cache_conf_t *cc, ngx_oauth_redis_get_t *g, ngx_str_t *value,
    int32_t *aux, time_t *ttl);

/*
 * A lookup without single-flight (the verified-token cache), driven by
 * the caller's phase handler, *pg in its request ctx (NULL at first):
 * NGX_AGAIN while Redis is asked (return NGX_AGAIN: the phases run again),
 * NGX_OK with a live entry (value, *aux; also stored in the zone),
 * NGX_DECLINED: a miss, or no second level (asked once per request).
 */
ngx_int_t ngx_oauth_l2_get(ngx_http_request_t *r, ngx_oauth_cache_conf_t *cc,
    u_char kind, u_char *hash, ngx_oauth_redis_get_t **pg, ngx_str_t *value,
    int32_t *aux);

/* writes an entry stored for ttl seconds to the second level (no wait) */
void ngx_oauth_l2_store(ngx_http_request_t *r, ngx_oauth_cache_conf_t *cc,
    u_char kind, u_char *hash, ngx_str_t *value, int32_t aux, time_t ttl);


#endif /* NGX_OAUTH_REDIS_H */
