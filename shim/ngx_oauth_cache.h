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


typedef struct ngx_oauth_redis_s  ngx_oauth_redis_t;   /* ngx_oauth_redis.h */


typedef struct {
    ngx_shm_zone_t              *zone;
    time_t                       max_ttl;
    time_t                       stale;        /* stale_if_error=, 0: off */
    time_t                       negative_ttl; /* negative_ttl=, 0: off */
} ngx_oauth_cache_conf_t;


/* the optional parameters a directive accepts (ngx_oauth_cache_conf_ex) */
#define NGX_OAUTH_CACHE_STALE       0x1     /* stale_if_error=time */
#define NGX_OAUTH_CACHE_NEGATIVE    0x2     /* negative_ttl=time */
#define NGX_OAUTH_CACHE_REDIS       0x4     /* redis=name (oauth_redis) */

#define NGX_OAUTH_CACHE_TIME_MAX    (365 * 24 * 3600)


/*
 * Parses "zone=name:size [max_ttl=time]" from cf->args (from the second
 * argument on) and adds the zone with the given tag.  *cc is NULL after
 * max_ttl=0 (no lookups, no stores).  who prefixes the zone's log lines
 * ("auth_jwt").
 */
char *ngx_oauth_cache_conf(ngx_conf_t *cf, void *tag, const char *who,
    time_t default_ttl, ngx_oauth_cache_conf_t **cc);

/* the same, also accepting the parameters of allow (NGX_OAUTH_CACHE_*) */
char *ngx_oauth_cache_conf_ex(ngx_conf_t *cf, void *tag, const char *who,
    time_t default_ttl, ngx_uint_t allow, ngx_oauth_cache_conf_t **cc);

/* a zone of this size (the size checks are the caller's) */
ngx_oauth_cache_conf_t *ngx_oauth_cache_add(ngx_conf_t *cf, void *tag,
    const char *who, ngx_str_t *name, ssize_t size, time_t max_ttl);

/*
 * The zone's second level (redis=name, ngx_oauth_redis.h): set once per
 * zone (the same server again is fine, another one is an error); NULL
 * when it has none
 */
char *ngx_oauth_cache_set_redis(ngx_conf_t *cf, ngx_oauth_cache_conf_t *cc,
    ngx_oauth_redis_t *srv);
ngx_oauth_redis_t *ngx_oauth_cache_redis(ngx_oauth_cache_conf_t *cc);

/* NGX_OK: a live entry of this kind, copied into r->pool; else NGX_DECLINED */
ngx_int_t ngx_oauth_cache_get(ngx_http_request_t *r,
    ngx_oauth_cache_conf_t *cc, u_char kind, u_char *hash, ngx_str_t *value,
    int32_t *aux);

/*
 * stores (replacing an entry of the same digest) for ttl seconds (> 0),
 * and keeps it cc->stale seconds longer for ngx_oauth_flight_stale
 */
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
    ngx_uint_t                   nowait;    /* lookup: NGX_AGAIN without
                                               arming the wait timer */
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
    ngx_uint_t                   encoded;   /* a Content-Encoding came */
    time_t                       max_age;   /* Cache-Control max-age, or
                                               Expires - Date; -1: none */

    /*
     * called when the subrequest ends, after the facts above are recorded:
     * a background subrequest (ngx_oauth_flight_get) has no phase handler
     * to return to, so its leader stores or fails here
     */
    void                       (*finish)(ngx_http_request_t *sr,
                                         void *data);
    void                        *data;

    ngx_msec_t                   latency;   /* of the subrequest (metrics) */
    void                        *l2;        /* the leader's Redis lookup
                                               (ngx_oauth_redis_get_t) */
    ngx_uint_t                   own;       /* the status the operator's
                                               own location ended with
                                               (return 404, no file, deny),
                                               before any status line */
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

/*
 * After a failed IdP call (the leader's, or NGX_ABORT for a follower):
 * NGX_OK with the expired entry of f's key when f->cache has stale_if_error
 * and the entry expired less than that long ago (*age: seconds since it
 * expired); NGX_DECLINED when there is none; NGX_ERROR.  Not counted:
 * the caller may still find the entry unusable.
 */
ngx_int_t ngx_oauth_flight_stale(ngx_http_request_t *r,
    ngx_oauth_flight_t *f, ngx_str_t *value, int32_t *aux, time_t *age);

/* the entry ngx_oauth_flight_stale found is served: counted as stale */
void ngx_oauth_flight_stale_served(ngx_http_request_t *r,
    ngx_oauth_flight_t *f);

/* a POST subrequest whose end is recorded in f (f->done) */
ngx_int_t ngx_oauth_flight_post(ngx_http_request_t *r, ngx_oauth_flight_t *f,
    ngx_str_t *uri, ngx_str_t *type, ngx_str_t *authorization,
    ngx_str_t *body, ngx_http_request_t **psr);

/*
 * a GET subrequest whose end is recorded in f (f->done); background: the
 * main request does not wait for it (NGX_HTTP_SUBREQUEST_BACKGROUND) and
 * f->finish must store or fail
 */
ngx_int_t ngx_oauth_flight_get(ngx_http_request_t *r, ngx_oauth_flight_t *f,
    ngx_str_t *uri, ngx_uint_t background, ngx_http_request_t **psr);

/*
 * NGX_OK: an entry of this kind that is live or kept (stale_if_error):
 * at most limit bytes of it (0: all) copied into r->pool, *expires and
 * *keep as stored; else NGX_DECLINED.  No flight is touched.
 */
ngx_int_t ngx_oauth_cache_get_kept(ngx_http_request_t *r,
    ngx_oauth_cache_conf_t *cc, u_char kind, u_char *hash, ngx_str_t *value,
    size_t limit, time_t *expires, time_t *keep);

/*
 * NGX_OK: the IdP answered whole (f->status, f->body); else, logged with
 * who and url, 503 (no answer: unreachable, refused, timed out) or 502
 * (no valid status line, or the body cut short or too large)
 */
void ngx_oauth_flight_count(ngx_http_request_t *r, ngx_oauth_flight_t *f,
    const char *who, ngx_str_t *url);
ngx_int_t ngx_oauth_flight_answer(ngx_http_request_t *r,
    ngx_oauth_flight_t *f, const char *who, ngx_str_t *url);


#endif /* NGX_OAUTH_CACHE_H */
