/*
 * NginxOAuth shim: the shared-memory caches of the feature modules
 * (auth_jwt_verify_cache, auth_oauth2_token_*_cache).
 *
 * One zone holds an rbtree keyed by the first 32 bits of a SHA-256 digest
 * (full 32-byte compare) and an LRU queue, as ngx_http_limit_req_module
 * does.  Entries carry a kind byte (which feature stored them), an expiry,
 * a 32-bit auxiliary value and opaque bytes.  Keys are digests: the caller
 * never stores a raw token.  init_zone reuses the old cycle's data, so
 * entries survive reload; a full zone evicts the least recently used
 * entries (log_nomem = 0).
 */

#ifndef NGX_OAUTH_CACHE_H
#define NGX_OAUTH_CACHE_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_oauth_abi.h"


typedef struct {
    ngx_shm_zone_t              *zone;
    time_t                       max_ttl;
} ngx_oauth_cache_conf_t;


/*
 * Parses "zone=name:size [max_ttl=time]" from cf->args (from the second
 * argument on) and adds the zone with the given tag.  *cc is NULL after
 * max_ttl=0 (no lookups, no stores).  who prefixes the zone's log lines
 * ("auth_jwt").
 */
char *ngx_oauth_cache_conf(ngx_conf_t *cf, void *tag, const char *who,
    time_t default_ttl, ngx_oauth_cache_conf_t **cc);

/* NGX_OK: a live entry of this kind, copied into r->pool; else NGX_DECLINED */
ngx_int_t ngx_oauth_cache_get(ngx_http_request_t *r,
    ngx_oauth_cache_conf_t *cc, u_char kind, u_char *hash, ngx_str_t *value,
    int32_t *aux);

/* stores (replacing an entry of the same digest) for ttl seconds (> 0) */
void ngx_oauth_cache_put(ngx_http_request_t *r, ngx_oauth_cache_conf_t *cc,
    u_char kind, u_char *hash, ngx_str_t *value, int32_t aux, time_t ttl);


/*
 * Single-flight.  Kinds of the markers a lookup may meet instead of an
 * entry: another request is asking the IdP for this key (pending), or the
 * request that asked failed with the HTTP status in aux (failed).
 */
#define NGX_OAUTH_CACHE_PENDING  0xfe
#define NGX_OAUTH_CACHE_FAILED   0xff

/*
 * NGX_OK: a live entry of this kind (as ngx_oauth_cache_get);
 * NGX_DECLINED: a miss, and this request now leads: a pending marker
 *   lives for lead_ttl seconds or until the leader stores (put) or fails;
 * NGX_AGAIN: another request leads: wait (ngx_oauth_cache_wait), ask again;
 * NGX_ABORT: only when waited is set: the leader failed, *aux = its status;
 * NGX_ERROR: out of memory.
 */
ngx_int_t ngx_oauth_cache_acquire(ngx_http_request_t *r,
    ngx_oauth_cache_conf_t *cc, u_char kind, u_char *hash, ngx_str_t *value,
    int32_t *aux, time_t lead_ttl, ngx_uint_t waited);

/* the leader failed with this HTTP status: followers answer the same */
void ngx_oauth_cache_fail(ngx_http_request_t *r, ngx_oauth_cache_conf_t *cc,
    u_char *hash, ngx_uint_t status);

/*
 * a leader that will neither store nor fail (its request ended first):
 * drops its pending marker, so that the next request to look leads
 */
void ngx_oauth_cache_release(ngx_oauth_cache_conf_t *cc, u_char *hash);

/* runs r's phases again after msec (ev: zeroed, in the request ctx) */
ngx_int_t ngx_oauth_cache_wait(ngx_http_request_t *r, ngx_event_t *ev,
    ngx_msec_t msec);


#endif /* NGX_OAUTH_CACHE_H */
