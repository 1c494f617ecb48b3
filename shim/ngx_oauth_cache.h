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

/* a zone of this size (the size checks are the caller's) */
ngx_oauth_cache_conf_t *ngx_oauth_cache_add(ngx_conf_t *cf, void *tag,
    const char *who, ngx_str_t *name, ssize_t size, time_t max_ttl);

/* NGX_OK: a live entry of this kind, copied into r->pool; else NGX_DECLINED */
ngx_int_t ngx_oauth_cache_get(ngx_http_request_t *r,
    ngx_oauth_cache_conf_t *cc, u_char kind, u_char *hash, ngx_str_t *value,
    int32_t *aux);

/* stores (replacing an entry of the same digest) for ttl seconds (> 0) */
void ngx_oauth_cache_put(ngx_http_request_t *r, ngx_oauth_cache_conf_t *cc,
    u_char kind, u_char *hash, ngx_str_t *value, int32_t aux, time_t ttl);


/*
 * Single-flight: of the requests that miss one key in any worker, one
 * leads (asks the IdP through ngx_oauth_flight_post, then stores or
 * fails); the others wait without blocking (a timer runs their phases
 * again) and take its entry or its status.  A flight lives in the
 * request's module ctx; the caller sets cache, kind, hash and lead_ttl
 * (how long a pending marker lives if its leader never ends).
 */

typedef struct {
    ngx_oauth_cache_conf_t      *cache;
    u_char                       kind;
    u_char                       hash[NOX_SHA256_LEN];
    time_t                       lead_ttl;

    ngx_http_request_t          *request;
    ngx_uint_t                   leader;    /* stores or fails for all */
    ngx_uint_t                   cleanup;
    ngx_uint_t                   waited;
    ngx_event_t                  wait;

    /* the IdP's answer: facts recorded when the subrequest ends */
    ngx_uint_t                   done;
    ngx_uint_t                   answered;  /* a status line came */
    ngx_uint_t                   status;
    ngx_int_t                    whole;     /* NGX_OK: the body is whole */
    ngx_str_t                    body;
} ngx_oauth_flight_t;


/*
 * NGX_OK: a live entry of this kind (as ngx_oauth_cache_get);
 * NGX_DECLINED: ask the IdP (f->leader: for everyone, then store or fail);
 * NGX_AGAIN: another request leads: the phases run again shortly;
 * NGX_ABORT: the leader failed, *aux = its HTTP status;
 * NGX_ERROR.
 */
ngx_int_t ngx_oauth_flight_lookup(ngx_http_request_t *r,
    ngx_oauth_flight_t *f, ngx_str_t *value, int32_t *aux);

/* the leader's result: stored for ttl > 0 s, else followers ask too */
void ngx_oauth_flight_store(ngx_http_request_t *r, ngx_oauth_flight_t *f,
    ngx_str_t *value, int32_t aux, time_t ttl);

/* the leader failed with this HTTP status: followers answer the same */
void ngx_oauth_flight_fail(ngx_http_request_t *r, ngx_oauth_flight_t *f,
    ngx_uint_t status);

/* a POST subrequest whose end is recorded in f (f->done) */
ngx_int_t ngx_oauth_flight_post(ngx_http_request_t *r, ngx_oauth_flight_t *f,
    ngx_str_t *uri, ngx_str_t *type, ngx_str_t *authorization,
    ngx_str_t *body, ngx_http_request_t **psr);

/*
 * NGX_OK: the IdP answered whole (f->status, f->body); else, logged with
 * who and url, 503 (no answer: unreachable, refused, timed out) or 502
 * (no valid status line, or the body cut short or too large)
 */
ngx_int_t ngx_oauth_flight_answer(ngx_http_request_t *r,
    ngx_oauth_flight_t *f, const char *who, ngx_str_t *url);


#endif /* NGX_OAUTH_CACHE_H */
