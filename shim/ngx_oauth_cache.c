/*
 * NginxOAuth shim: shared-memory caches (ngx_oauth_cache.h).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_oauth_core.h"
#include "ngx_oauth_cache.h"
#include "ngx_oauth_metrics.h"
#include "ngx_oauth_redis.h"


#define NGX_OAUTH_CACHE_EXPIRE_MAX  8   /* expired entries freed per store */
#define NGX_OAUTH_CACHE_FAILED_TTL  2   /* a failed leader's status, s */
#define NGX_OAUTH_FLIGHT_WAIT       20  /* ms between a follower's looks */

/* an entry's flight state (a marker node has no entry: kind 0) */
#define NGX_OAUTH_CACHE_MARKER      0
#define NGX_OAUTH_FLIGHT_NONE       0
#define NGX_OAUTH_FLIGHT_PENDING    1      /* a request leads */
#define NGX_OAUTH_FLIGHT_FAILED     2      /* it failed, status: its status */

/* what a lookup found for its kind (ngx_oauth_cache_find) */
#define NGX_OAUTH_ENTRY_NONE        0      /* no entry of this kind */
#define NGX_OAUTH_ENTRY_FRESH       1
#define NGX_OAUTH_ENTRY_STALE       2      /* expired, within its keep */
#define NGX_OAUTH_ENTRY_EXPIRED     3      /* past its keep too */


typedef struct {
    ngx_rbtree_t                 rbtree;
    ngx_rbtree_node_t            sentinel;
    ngx_queue_t                  queue;       /* LRU: head is the newest */
} ngx_oauth_cache_shctx_t;


typedef struct {
    ngx_oauth_cache_shctx_t     *sh;
    ngx_slab_pool_t             *shpool;
    const char                  *who;         /* log prefix */
    void                        *metrics;     /* this worker's counters */
    ngx_oauth_redis_t           *redis;       /* the second level */
} ngx_oauth_cache_t;


/* lives at ngx_rbtree_node_t.color, as in ngx_http_limit_req_module */

/*
 * An entry is fresh until expires and kept until keep (expires plus the
 * storing directive's stale_if_error): an expired entry may then be served
 * while its IdP fails.  A flight (pending or failed) marks the entry of
 * its key in place, so a kept entry survives its refresh; a key without an
 * entry gets a marker node (kind 0).  A node is removed when neither its
 * keep nor its flight is current.
 */

typedef struct {
    u_char                       color;
    u_char                       kind;
    u_char                       flight;      /* NGX_OAUTH_FLIGHT_* */
    u_char                       reserved;
    uint32_t                     len;         /* of data */
    ngx_queue_t                  queue;
    time_t                       expires;
    time_t                       keep;
    time_t                       flight_ends;
    int32_t                      aux;
    int32_t                      status;      /* of a failed flight; the
                                                 leader's pid while
                                                 pending */
    u_char                       hash[NOX_SHA256_LEN];
    u_char                       data[1];
} ngx_oauth_cache_node_t;


static ngx_uint_t ngx_oauth_cache_find(ngx_oauth_cache_t *cache,
    u_char kind, u_char *hash, time_t now, ngx_oauth_cache_node_t **cnp);
static ngx_oauth_cache_node_t *ngx_oauth_cache_lookup(
    ngx_oauth_cache_t *cache, u_char *hash);
static void ngx_oauth_cache_delete(ngx_oauth_cache_t *cache,
    ngx_oauth_cache_node_t *cn);
static ngx_rbtree_key_t ngx_oauth_cache_key(u_char *hash);
static void ngx_oauth_cache_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_int_t ngx_oauth_cache_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_oauth_cache_node_t *ngx_oauth_cache_store_locked(
    ngx_http_request_t *r, ngx_oauth_cache_conf_t *cc, u_char kind,
    u_char *hash, ngx_str_t *value, int32_t aux, time_t expires, time_t keep);
static ngx_uint_t ngx_oauth_cache_kept(ngx_oauth_cache_node_t *cn,
    time_t now);
static void ngx_oauth_cache_mark(ngx_oauth_cache_node_t *cn,
    ngx_uint_t flight, time_t ends, int32_t status);
static ngx_uint_t ngx_oauth_cache_leader_gone(ngx_oauth_cache_node_t *cn);
static ngx_int_t ngx_oauth_cache_hit_locked(ngx_http_request_t *r,
    ngx_oauth_cache_conf_t *cc, ngx_oauth_cache_node_t *cn, ngx_str_t *value,
    int32_t *aux);
static ngx_int_t ngx_oauth_cache_copy_locked(ngx_http_request_t *r,
    ngx_oauth_cache_t *cache, ngx_oauth_cache_node_t *cn, ngx_str_t *value,
    size_t limit);
static ngx_int_t ngx_oauth_cache_acquire(ngx_http_request_t *r,
    ngx_oauth_cache_conf_t *cc, u_char kind, u_char *hash, ngx_str_t *value,
    int32_t *aux, time_t lead_ttl, ngx_uint_t waited);
static void ngx_oauth_cache_fail(ngx_http_request_t *r,
    ngx_oauth_cache_conf_t *cc, u_char *hash, ngx_uint_t status);
static void ngx_oauth_flight_cleanup(void *data);
static ngx_int_t ngx_oauth_flight_l2(ngx_http_request_t *r,
    ngx_oauth_flight_t *f, ngx_str_t *value, int32_t *aux);
static ngx_int_t ngx_oauth_flight_done(ngx_http_request_t *sr, void *data,
    ngx_int_t rc);
static time_t ngx_oauth_flight_max_age(ngx_http_request_t *sr);
static ngx_int_t ngx_oauth_cache_wait(ngx_http_request_t *r, ngx_event_t *ev,
    ngx_msec_t msec);
static void ngx_oauth_cache_wake(ngx_event_t *ev);
static void ngx_oauth_cache_wait_cleanup(void *data);
static void ngx_oauth_cache_count(ngx_http_request_t *r,
    ngx_oauth_cache_conf_t *cc, ngx_uint_t what);


char *
ngx_oauth_cache_conf(ngx_conf_t *cf, void *tag, const char *who,
    time_t default_ttl, ngx_oauth_cache_conf_t **field)
{
    return ngx_oauth_cache_conf_ex(cf, tag, who, default_ttl, 0, field);
}


char *
ngx_oauth_cache_conf_ex(ngx_conf_t *cf, void *tag, const char *who,
    time_t default_ttl, ngx_uint_t allow, ngx_oauth_cache_conf_t **field)
{
    u_char                  *c;
    ssize_t                  size;
    time_t                   ttl, stale, negative, *t;
    ngx_str_t               *value, name, s, redis;
    ngx_uint_t               i;
    ngx_oauth_redis_t       *srv;

    value = cf->args->elts;

    ngx_str_null(&name);
    ngx_str_null(&redis);
    srv = NULL;
    size = 0;
    ttl = default_ttl;
    stale = 0;
    negative = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {

            name.data = value[i].data + 5;

            c = (u_char *) ngx_strchr(name.data, ':');

            if (c == NULL) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": invalid zone \"%V\": expected "
                                   "zone=name:size", &value[0], &value[i]);
                return NGX_CONF_ERROR;
            }

            name.len = c - name.data;

            s.data = c + 1;
            s.len = value[i].data + value[i].len - s.data;

            size = ngx_parse_size(&s);

            if (name.len == 0 || size == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": invalid zone \"%V\": expected "
                                   "zone=name:size", &value[0], &value[i]);
                return NGX_CONF_ERROR;
            }

            if (size < (ssize_t) (8 * ngx_pagesize)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": zone \"%V\" is too small: at "
                                   "least %uz bytes", &value[0], &name,
                                   8 * ngx_pagesize);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "max_ttl=", 8) == 0) {

            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            ttl = ngx_parse_time(&s, 1);

            if (ttl == (time_t) NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": invalid max_ttl \"%V\"",
                                   &value[0], &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if ((allow & NGX_OAUTH_CACHE_REDIS)
            && ngx_strncmp(value[i].data, "redis=", 6) == 0)
        {
            redis.data = value[i].data + 6;
            redis.len = value[i].len - 6;

            if (ngx_oauth_redis_ref(cf, &redis, &srv) != NGX_CONF_OK) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        t = NULL;

        if ((allow & NGX_OAUTH_CACHE_STALE)
            && ngx_strncmp(value[i].data, "stale_if_error=", 15) == 0)
        {
            s.data = value[i].data + 15;
            s.len = value[i].len - 15;
            t = &stale;

        } else if ((allow & NGX_OAUTH_CACHE_NEGATIVE)
                   && ngx_strncmp(value[i].data, "negative_ttl=", 13) == 0)
        {
            s.data = value[i].data + 13;
            s.len = value[i].len - 13;
            t = &negative;
        }

        if (t) {
            *t = ngx_parse_time(&s, 1);

            if (*t == (time_t) NGX_ERROR || *t > NGX_OAUTH_CACHE_TIME_MAX) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": invalid \"%V\": a time of at "
                                   "most 1 year expected",
                                   &value[0], &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": invalid parameter \"%V\"",
                           &value[0], &value[i]);
        return NGX_CONF_ERROR;
    }

    if (name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have a \"zone=name:size\" parameter",
                           &value[0]);
        return NGX_CONF_ERROR;
    }

    /* max_ttl=0: no lookups and no stores */

    *field = ngx_oauth_cache_add(cf, tag, who, &name, size, ttl);

    if (*field) {
        (*field)->stale = stale;
        (*field)->negative_ttl = negative;

        if (srv && ngx_oauth_cache_set_redis(cf, *field, srv) != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    return (*field || ttl == 0) ? NGX_CONF_OK : NGX_CONF_ERROR;
}


char *
ngx_oauth_cache_set_redis(ngx_conf_t *cf, ngx_oauth_cache_conf_t *cc,
    ngx_oauth_redis_t *srv)
{
    ngx_oauth_cache_t  *cache;

    cache = cc->zone->data;

    if (cache->redis && cache->redis != srv) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cache zone \"%V\" already has another redis=",
                           &cc->zone->shm.name);
        return NGX_CONF_ERROR;
    }

    cache->redis = srv;

    return NGX_CONF_OK;
}


ngx_oauth_redis_t *
ngx_oauth_cache_redis(ngx_oauth_cache_conf_t *cc)
{
    ngx_oauth_cache_t  *cache;

    cache = cc->zone->data;

    return cache->redis;
}


/* NULL after an error, or for max_ttl 0 */

ngx_oauth_cache_conf_t *
ngx_oauth_cache_add(ngx_conf_t *cf, void *tag, const char *who,
    ngx_str_t *name, ssize_t size, time_t max_ttl)
{
    ngx_shm_zone_t          *zone;
    ngx_oauth_cache_t       *cache;
    ngx_oauth_cache_conf_t  *cc;

    zone = ngx_shared_memory_add(cf, name, size, tag);
    if (zone == NULL) {
        return NULL;
    }

    if (zone->data == NULL) {
        cache = ngx_pcalloc(cf->pool, sizeof(ngx_oauth_cache_t));
        if (cache == NULL) {
            return NULL;
        }

        cache->who = who;

        zone->init = ngx_oauth_cache_init_zone;
        zone->data = cache;

        if (ngx_oauth_metrics_cache_zone(cf, zone) != NGX_OK) {
            return NULL;
        }
    }

    if (max_ttl == 0) {
        return NULL;
    }

    cc = ngx_palloc(cf->pool, sizeof(ngx_oauth_cache_conf_t));
    if (cc == NULL) {
        return NULL;
    }

    cc->zone = zone;
    cc->max_ttl = max_ttl;
    cc->stale = 0;
    cc->negative_ttl = 0;

    return cc;
}


ngx_int_t
ngx_oauth_cache_get(ngx_http_request_t *r, ngx_oauth_cache_conf_t *cc,
    u_char kind, u_char *hash, ngx_str_t *value, int32_t *aux)
{
    time_t                   now;
    ngx_uint_t               state;
    ngx_oauth_cache_t       *cache;
    ngx_oauth_cache_node_t  *cn;

    cache = cc->zone->data;
    now = ngx_time();

    state = ngx_oauth_cache_find(cache, kind, hash, now, &cn);

    if (state == NGX_OAUTH_ENTRY_FRESH) {
        if (ngx_oauth_cache_hit_locked(r, cc, cn, value, aux) != NGX_OK) {
            return NGX_DECLINED;
        }

        ngx_oauth_metrics_cache(r, &cache->metrics, &cc->zone->shm.name,
                                NGX_OAUTH_C_HIT);

        return NGX_OK;
    }

    /* an expired entry kept for stale_if_error, or marked by a flight, stays */

    if (state != NGX_OAUTH_ENTRY_NONE && !ngx_oauth_cache_kept(cn, now)) {
        ngx_oauth_cache_delete(cache, cn);
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);

    ngx_oauth_metrics_cache(r, &cache->metrics, &cc->zone->shm.name,
                            NGX_OAUTH_C_MISS);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "%s: cache \"%V\" %s", cache->who, &cc->zone->shm.name,
                   (state == NGX_OAUTH_ENTRY_NONE) ? "miss"
                                                     : "entry expired");
    return NGX_DECLINED;
}


ngx_int_t
ngx_oauth_cache_get_kept(ngx_http_request_t *r, ngx_oauth_cache_conf_t *cc,
    u_char kind, u_char *hash, ngx_str_t *value, size_t limit,
    time_t *expires, time_t *keep)
{
    ngx_int_t                rc;
    ngx_uint_t               state;
    ngx_oauth_cache_t       *cache;
    ngx_oauth_cache_node_t  *cn;

    cache = cc->zone->data;

    state = ngx_oauth_cache_find(cache, kind, hash, ngx_time(), &cn);

    if (state != NGX_OAUTH_ENTRY_FRESH && state != NGX_OAUTH_ENTRY_STALE) {
        ngx_shmtx_unlock(&cache->shpool->mutex);
        return NGX_DECLINED;
    }

    rc = ngx_oauth_cache_copy_locked(r, cache, cn, value, limit);

    if (rc == NGX_OK) {
        *expires = cn->expires;
        *keep = cn->keep;
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);

    return rc;
}


void
ngx_oauth_cache_put(ngx_http_request_t *r, ngx_oauth_cache_conf_t *cc,
    u_char kind, u_char *hash, ngx_str_t *value, int32_t aux, time_t ttl)
{
    ngx_oauth_cache_t  *cache;

    if (ttl <= 0) {
        return;
    }

    cache = cc->zone->data;

    ngx_shmtx_lock(&cache->shpool->mutex);

    ngx_oauth_cache_store_locked(r, cc, kind, hash, value, aux,
                                 ngx_time() + ttl,
                                 ngx_time() + ttl + cc->stale);

    ngx_shmtx_unlock(&cache->shpool->mutex);

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "%s: cache \"%V\" stored %uz bytes for %T s", cache->who,
                   &cc->zone->shm.name, value->len, ttl);
}


/*
 * Single-flight (see the header): one lookup and, on a miss, a "pending"
 * marker stored under the same lock, so that of N requests missing the
 * same key in any worker exactly one leads.
 */

static ngx_int_t
ngx_oauth_cache_acquire(ngx_http_request_t *r, ngx_oauth_cache_conf_t *cc,
    u_char kind, u_char *hash, ngx_str_t *value, int32_t *aux,
    time_t lead_ttl, ngx_uint_t waited)
{
    time_t                   now;
    ngx_str_t                empty;
    ngx_uint_t               state;
    ngx_oauth_cache_t       *cache;
    ngx_oauth_cache_node_t  *cn;

    cache = cc->zone->data;
    now = ngx_time();

    state = ngx_oauth_cache_find(cache, kind, hash, now, &cn);

    if (state == NGX_OAUTH_ENTRY_FRESH) {
        return ngx_oauth_cache_hit_locked(r, cc, cn, value, aux);
    }

    if (cn && cn->flight != NGX_OAUTH_FLIGHT_NONE && cn->flight_ends > now
        && !ngx_oauth_cache_leader_gone(cn))
    {
        if (cn->flight == NGX_OAUTH_FLIGHT_PENDING) {
            ngx_shmtx_unlock(&cache->shpool->mutex);
            return NGX_AGAIN;
        }

        if (waited) {
            *aux = cn->status;
            ngx_shmtx_unlock(&cache->shpool->mutex);
            return NGX_ABORT;
        }
    }

    if (state != NGX_OAUTH_ENTRY_NONE) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "%s: cache \"%V\" entry expired", cache->who,
                       &cc->zone->shm.name);
    }

    /* a miss: this request leads; an entry kept for stale_if_error stays */

    if (state == NGX_OAUTH_ENTRY_NONE || !ngx_oauth_cache_kept(cn, now)) {
        ngx_str_null(&empty);

        cn = ngx_oauth_cache_store_locked(r, cc, NGX_OAUTH_CACHE_MARKER, hash,
                                          &empty, 0, 0, 0);
    }

    if (cn) {
        ngx_oauth_cache_mark(cn, NGX_OAUTH_FLIGHT_PENDING, now + lead_ttl,
                             (int32_t) ngx_pid);
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "%s: cache \"%V\" miss, this request leads", cache->who,
                   &cc->zone->shm.name);

    return NGX_DECLINED;
}


/* the leader failed: the requests waiting for it take its status */

static void
ngx_oauth_cache_fail(ngx_http_request_t *r, ngx_oauth_cache_conf_t *cc,
    u_char *hash, ngx_uint_t status)
{
    ngx_str_t                empty;
    ngx_oauth_cache_t       *cache;
    ngx_oauth_cache_node_t  *cn;

    cache = cc->zone->data;

    ngx_shmtx_lock(&cache->shpool->mutex);

    /* a node of any kind: an entry, or a flight marker */

    cn = ngx_oauth_cache_lookup(cache, hash);

    if (cn == NULL) {
        ngx_str_null(&empty);

        cn = ngx_oauth_cache_store_locked(r, cc, NGX_OAUTH_CACHE_MARKER, hash,
                                          &empty, 0, 0, 0);
    }

    if (cn) {
        ngx_oauth_cache_mark(cn, NGX_OAUTH_FLIGHT_FAILED,
                             ngx_time() + NGX_OAUTH_CACHE_FAILED_TTL,
                             (int32_t) status);
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);
}


ngx_int_t
ngx_oauth_flight_lookup(ngx_http_request_t *r, ngx_oauth_flight_t *f,
    ngx_str_t *value, int32_t *aux)
{
    ngx_int_t            rc;
    ngx_pool_cleanup_t  *cln;

    if (f->leader && f->l2) {
        rc = ngx_oauth_flight_l2(r, f, value, aux);

        if (rc != NGX_DONE) {
            return rc;
        }
    }

    rc = ngx_oauth_cache_acquire(r, f->cache, f->kind, f->hash, value, aux,
                                 f->lead_ttl, f->waited);

    if (rc != NGX_AGAIN) {
        ngx_oauth_cache_count(r, f->cache,
                              (rc == NGX_OK) ? NGX_OAUTH_C_HIT
                                             : NGX_OAUTH_C_MISS);
    }

    if (rc == NGX_AGAIN && f->nowait) {
        return NGX_AGAIN;
    }

    if (rc == NGX_AGAIN) {
        f->waited = 1;

        return (ngx_oauth_cache_wait(r, &f->wait, NGX_OAUTH_FLIGHT_WAIT)
                == NGX_OK) ? NGX_AGAIN : NGX_ERROR;
    }

    if (rc == NGX_ABORT && *aux == 0) {
        /* the leader's answer was not cacheable: ask, without leading */
        return NGX_DECLINED;
    }

    if (rc != NGX_DECLINED) {
        return rc;
    }

    f->leader = 1;
    f->l2 = NULL;

    if (!f->cleanup) {
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            return NGX_ERROR;
        }

        cln->handler = ngx_oauth_flight_cleanup;
        cln->data = f;
        f->request = r;
        f->cleanup = 1;
    }

    /* the leader asks the second level (Redis) before the IdP */

    if (ngx_oauth_cache_redis(f->cache)
        && ngx_oauth_l2_lookup(r, f->cache, f->kind, f->hash,
                               (ngx_oauth_redis_get_t **) &f->l2)
           == NGX_AGAIN)
    {
        return NGX_AGAIN;
    }

    return NGX_DECLINED;
}


/*
 * The leader's second-level lookup: NGX_AGAIN while it runs; NGX_OK with
 * its entry (stored in the zone, which ends the flight for the waiting
 * requests); NGX_DECLINED: ask the IdP, still leading; NGX_DONE: it is
 * used up (a later step of the request)
 */

static ngx_int_t
ngx_oauth_flight_l2(ngx_http_request_t *r, ngx_oauth_flight_t *f,
    ngx_str_t *value, int32_t *aux)
{
    time_t                  ttl;
    ngx_oauth_redis_get_t  *g;

    g = f->l2;

    switch (g->state) {

    case NGX_OAUTH_REDIS_PENDING:
        return NGX_AGAIN;

    case NGX_OAUTH_REDIS_DONE:

        if (ngx_oauth_l2_result(r, f->cache, g, value, aux, &ttl) != NGX_OK) {
            return NGX_DECLINED;
        }

        f->leader = 0;
        ngx_oauth_cache_put(r, f->cache, f->kind, f->hash, value, *aux, ttl);

        return NGX_OK;

    default:
        return NGX_DONE;
    }
}


void
ngx_oauth_flight_store(ngx_http_request_t *r, ngx_oauth_flight_t *f,
    ngx_str_t *value, int32_t aux, time_t ttl)
{
    if (!f->leader) {
        return;
    }

    f->leader = 0;

    if (ttl > 0) {
        ngx_oauth_cache_put(r, f->cache, f->kind, f->hash, value, aux, ttl);

        if (ngx_oauth_cache_redis(f->cache)) {
            ngx_oauth_l2_store(r, f->cache, f->kind, f->hash, value, aux,
                               ttl);
        }

    } else {
        ngx_oauth_cache_fail(r, f->cache, f->hash, 0);
    }
}


void
ngx_oauth_flight_fail(ngx_http_request_t *r, ngx_oauth_flight_t *f,
    ngx_uint_t status)
{
    if (f->leader) {
        f->leader = 0;
        ngx_oauth_cache_fail(r, f->cache, f->hash, status);
    }
}


ngx_int_t
ngx_oauth_flight_stale(ngx_http_request_t *r, ngx_oauth_flight_t *f,
    ngx_str_t *value, int32_t *aux, time_t *age)
{
    time_t                   now;
    ngx_oauth_cache_t       *cache;
    ngx_oauth_cache_node_t  *cn;

    if (f->cache == NULL || f->cache->stale == 0) {
        return NGX_DECLINED;
    }

    cache = f->cache->zone->data;
    now = ngx_time();

    if (ngx_oauth_cache_find(cache, f->kind, f->hash, now, &cn)
           == NGX_OAUTH_ENTRY_NONE
        || cn->keep <= now
        || cn->expires + f->cache->stale <= now)
    {
        ngx_shmtx_unlock(&cache->shpool->mutex);
        return NGX_DECLINED;
    }

    *age = (cn->expires < now) ? now - cn->expires : 0;

    if (ngx_oauth_cache_hit_locked(r, f->cache, cn, value, aux) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_oauth_flight_stale_served(ngx_http_request_t *r, ngx_oauth_flight_t *f)
{
    ngx_oauth_cache_count(r, f->cache, NGX_OAUTH_C_STALE);
}


/*
 * A leader that ends without storing or failing (its client went away and
 * the request was terminated while the IdP was asked): the requests
 * waiting for it must not wait for its pending marker to expire; without
 * the marker the next one to look leads.
 */

static void
ngx_oauth_flight_cleanup(void *data)
{
    ngx_oauth_flight_t  *f = data;

    ngx_oauth_cache_t       *cache;
    ngx_oauth_cache_node_t  *cn;

    if (!f->leader) {
        return;
    }

    f->leader = 0;
    cache = f->cache->zone->data;

    ngx_log_error(NGX_LOG_INFO, f->request->connection->log, 0,
                  "%s: the request ended before its IdP call did: "
                  "another request may lead", cache->who);

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_oauth_cache_lookup(cache, f->hash);

    if (cn && cn->flight == NGX_OAUTH_FLIGHT_PENDING) {

        if (cn->kind == NGX_OAUTH_CACHE_MARKER) {
            ngx_oauth_cache_delete(cache, cn);

        } else {
            cn->flight = NGX_OAUTH_FLIGHT_NONE;
        }
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);
}


ngx_int_t
ngx_oauth_flight_post(ngx_http_request_t *r, ngx_oauth_flight_t *f,
    ngx_str_t *uri, ngx_str_t *type, ngx_str_t *authorization,
    ngx_str_t *body, ngx_http_request_t **psr)
{
    ngx_http_post_subrequest_t  *ps;

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_ERROR;
    }

    ps->handler = ngx_oauth_flight_done;
    ps->data = f;
    f->done = 0;

    return ngx_oauth_subrequest_post(r, uri, ps, type, authorization, body,
                                     psr);
}


ngx_int_t
ngx_oauth_flight_get(ngx_http_request_t *r, ngx_oauth_flight_t *f,
    ngx_str_t *uri, ngx_uint_t background, ngx_http_request_t **psr)
{
    ngx_http_post_subrequest_t  *ps;

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_ERROR;
    }

    ps->handler = ngx_oauth_flight_done;
    ps->data = f;
    f->done = 0;

    return ngx_oauth_subrequest_ex(r, uri, ps,
                                   background
                                   ? NGX_HTTP_SUBREQUEST_BACKGROUND
                                   : NGX_HTTP_SUBREQUEST_WAITED,
                                   psr);
}


/*
 * Records facts; the decision is made back in the phase handler, except
 * for f->finish (a background subrequest: nobody comes back)
 */

static ngx_int_t
ngx_oauth_flight_done(ngx_http_request_t *sr, void *data, ngx_int_t rc)
{
    ngx_oauth_flight_t  *f = data;

    ngx_msec_int_t   ms;
    ngx_time_t      *tp;

    tp = ngx_timeofday();
    ms = (ngx_msec_int_t) ((tp->sec - sr->start_sec) * 1000
                           + (tp->msec - sr->start_msec));

    f->latency = (ms > 0) ? (ngx_msec_t) ms : 0;
    f->done = 1;
    f->status = sr->headers_out.status;

    /*
     * A status line from the IdP (through proxy_pass), or an answer of the
     * operator's own location: the IdP answered.  A proxy that received
     * nothing (refused, reset, timed out) did not.  Bytes without a valid
     * status line (the proxy reads them as an HTTP/0.9 answer, status 0)
     * are an answer, an unusable one.
     */

    f->answered = (sr->upstream == NULL
                   || sr->upstream->headers_in.status_n != 0
                   || (sr->upstream->state
                       && sr->upstream->state->bytes_received > 0));

    /*
     * An internal location that ends with an error status of its own
     * (return 404, a missing file, deny) calls this before the status is
     * set: the answer has that status, but no body is kept
     */

    f->own = (sr->upstream == NULL && f->status == 0
              && rc >= NGX_HTTP_SPECIAL_RESPONSE && rc < 600)
             ? (ngx_uint_t) rc : 0;

    f->whole = ngx_oauth_subrequest_done(sr, rc, &f->body);
    f->encoded = (sr->headers_out.content_encoding != NULL
                  && sr->headers_out.content_encoding->hash != 0);
    f->max_age = ngx_oauth_flight_max_age(sr);

    if (f->finish) {
        f->finish(sr, f->data);
    }

    return NGX_OK;
}


/*
 * The freshness an answer declares (RFC 9111 4.2.1): Cache-Control
 * max-age, else Expires minus Date (or now); no-store and no-cache count
 * as 0; -1 when it declares none
 */

static time_t
ngx_oauth_flight_max_age(ngx_http_request_t *sr)
{
    u_char           *p, *last;
    time_t            age, expires, date;
    ngx_table_elt_t  *h;
#if (nginx_version < 1023000)
    ngx_uint_t        i;
    ngx_table_elt_t **ph;
#endif

    age = -1;

#if (nginx_version >= 1023000)
    for (h = sr->headers_out.cache_control; h; h = h->next) {
#else
    ph = sr->headers_out.cache_control.elts;

    for (i = 0; i < sr->headers_out.cache_control.nelts; i++) {
        h = ph[i];
#endif
        p = h->value.data;
        last = p + h->value.len;

        if (ngx_strlcasestrn(p, last, (u_char *) "no-store", 8 - 1) != NULL
            || ngx_strlcasestrn(p, last, (u_char *) "no-cache", 8 - 1)
               != NULL)
        {
            return 0;
        }

        p = ngx_strlcasestrn(p, last, (u_char *) "max-age=", 8 - 1);

        if (p == NULL || (p > h->value.data && p[-1] == '-')) {
            continue;                   /* none, or s-maxage */
        }

        p += 8;
        age = 0;

        while (p < last && *p >= '0' && *p <= '9') {
            if (age < NGX_OAUTH_CACHE_TIME_MAX) {
                age = age * 10 + (*p - '0');
            }

            p++;
        }

        return age;
    }

    h = sr->headers_out.expires;

    if (h == NULL || h->hash == 0) {
        return -1;
    }

    expires = ngx_parse_http_time(h->value.data, h->value.len);

    if (expires == NGX_ERROR) {
        return 0;                       /* invalid: already expired */
    }

    date = ngx_time();

    if (sr->headers_out.date && sr->headers_out.date->hash) {
        date = ngx_parse_http_time(sr->headers_out.date->value.data,
                                   sr->headers_out.date->value.len);
        if (date == NGX_ERROR) {
            date = ngx_time();
        }
    }

    return (expires > date) ? expires - date : 0;
}


/*
 * Counts a finished subrequest in the IdP metrics: an error status the
 * operator's own location answered (return 404, deny) is an http_error
 * with that status
 */

void
ngx_oauth_flight_count(ngx_http_request_t *r, ngx_oauth_flight_t *f,
    const char *who, ngx_str_t *url)
{
    if (f->own) {
        ngx_oauth_metrics_idp(r, who, url, 1, f->own, NGX_OK, f->latency);
        return;
    }

    ngx_oauth_metrics_idp(r, who, url, f->answered, f->status, f->whole,
                          f->latency);
}


ngx_int_t
ngx_oauth_flight_answer(ngx_http_request_t *r, ngx_oauth_flight_t *f,
    const char *who, ngx_str_t *url)
{
    ngx_oauth_flight_count(r, f, who, url);

    if (f->own) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "%s: \"%V\" answered status %ui (the location's own "
                      "error answer)", who, url, f->own);
        return NGX_HTTP_BAD_GATEWAY;
    }

    if (!f->answered) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "%s: \"%V\" did not answer (status %ui): "
                      "unreachable or timed out", who, url, f->status);
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    if (f->status == 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "%s: \"%V\" answered without a valid HTTP status "
                      "line", who, url);
        return NGX_HTTP_BAD_GATEWAY;
    }

    if (f->whole != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "%s: the answer of \"%V\" (status %ui) did not "
                      "arrive whole (closed early, or larger than "
                      "subrequest_output_buffer_size)", who, url, f->status);
        return NGX_HTTP_BAD_GATEWAY;
    }

    return NGX_OK;
}


/*
 * A live entry into r->pool, moved to the head of the LRU queue; called
 * with the zone's mutex held, returns with it released.  NGX_ERROR: out of
 * memory.
 */

static ngx_int_t
ngx_oauth_cache_hit_locked(ngx_http_request_t *r, ngx_oauth_cache_conf_t *cc,
    ngx_oauth_cache_node_t *cn, ngx_str_t *value, int32_t *aux)
{
    ngx_oauth_cache_t  *cache;

    cache = cc->zone->data;

    if (ngx_oauth_cache_copy_locked(r, cache, cn, value, 0) != NGX_OK) {
        ngx_shmtx_unlock(&cache->shpool->mutex);
        return NGX_ERROR;
    }

    if (aux) {
        *aux = cn->aux;
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "%s: cache \"%V\" hit, %uz bytes", cache->who,
                   &cc->zone->shm.name, value->len);

    return NGX_OK;
}


/*
 * An entry's value (its first limit bytes; 0: all of it) into r->pool, and
 * the entry to the head of the LRU queue; the caller holds the zone's
 * mutex.  NGX_ERROR: out of memory.
 */

static ngx_int_t
ngx_oauth_cache_copy_locked(ngx_http_request_t *r, ngx_oauth_cache_t *cache,
    ngx_oauth_cache_node_t *cn, ngx_str_t *value, size_t limit)
{
    size_t   len;
    u_char  *p;

    len = (limit && limit < cn->len) ? limit : cn->len;

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, cn->data, len);
    value->data = p;
    value->len = len;

    ngx_queue_remove(&cn->queue);
    ngx_queue_insert_head(&cache->sh->queue, &cn->queue);

    return NGX_OK;
}


/*
 * The caller holds the zone's mutex; replaces an entry of the same digest.
 * NULL: the zone cannot hold it (logged).
 */

static ngx_oauth_cache_node_t *
ngx_oauth_cache_store_locked(ngx_http_request_t *r,
    ngx_oauth_cache_conf_t *cc, u_char kind, u_char *hash, ngx_str_t *value,
    int32_t aux, time_t expires, time_t keep)
{
    size_t                   size;
    time_t                   now;
    ngx_uint_t               i;
    ngx_queue_t             *q;
    ngx_rbtree_node_t       *node;
    ngx_oauth_cache_t       *cache;
    ngx_oauth_cache_node_t  *cn;

    cache = cc->zone->data;
    now = ngx_time();

    size = offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_oauth_cache_node_t, data)
           + value->len;

    cn = ngx_oauth_cache_lookup(cache, hash);
    if (cn) {
        ngx_oauth_cache_delete(cache, cn);
    }

    /* drop a few expired entries from the old end */

    for (i = 0; i < NGX_OAUTH_CACHE_EXPIRE_MAX; i++) {
        if (ngx_queue_empty(&cache->sh->queue)) {
            break;
        }

        q = ngx_queue_last(&cache->sh->queue);
        cn = ngx_queue_data(q, ngx_oauth_cache_node_t, queue);

        if (ngx_oauth_cache_kept(cn, now)) {
            break;
        }

        ngx_oauth_cache_delete(cache, cn);

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "%s: cache \"%V\" expired an entry", cache->who,
                       &cc->zone->shm.name);
    }

    /* zone full: evict the least recently used entries until it fits */

    for ( ;; ) {
        node = ngx_slab_alloc_locked(cache->shpool, size);

        if (node != NULL) {
            break;
        }

        if (ngx_queue_empty(&cache->sh->queue)) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "%s: cache \"%V\" is too small for an entry of "
                          "%uz bytes", cache->who, &cc->zone->shm.name,
                          size);
            return NULL;
        }

        q = ngx_queue_last(&cache->sh->queue);
        cn = ngx_queue_data(q, ngx_oauth_cache_node_t, queue);
        ngx_oauth_cache_delete(cache, cn);

        ngx_oauth_cache_count(r, cc, NGX_OAUTH_C_EVICTION);

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "%s: cache \"%V\" evicted the least recently used "
                       "entry", cache->who, &cc->zone->shm.name);
    }

    cn = (ngx_oauth_cache_node_t *) &node->color;

    node->key = ngx_oauth_cache_key(hash);

    cn->kind = kind;
    cn->flight = NGX_OAUTH_FLIGHT_NONE;
    cn->reserved = 0;
    cn->len = (uint32_t) value->len;
    cn->expires = expires;
    cn->keep = keep;
    cn->flight_ends = 0;
    cn->aux = aux;
    cn->status = 0;
    ngx_memcpy(cn->hash, hash, NOX_SHA256_LEN);

    if (value->len) {
        ngx_memcpy(cn->data, value->data, value->len);
    }

    ngx_rbtree_insert(&cache->sh->rbtree, node);
    ngx_queue_insert_head(&cache->sh->queue, &cn->queue);

    return cn;
}


/* an entry within its stale age, or a current flight marker */

static ngx_uint_t
ngx_oauth_cache_kept(ngx_oauth_cache_node_t *cn, time_t now)
{
    return cn->keep > now
           || (cn->flight != NGX_OAUTH_FLIGHT_NONE && cn->flight_ends > now);
}


/*
 * A pending flight whose leader's worker is gone (killed, crashed): its
 * marker would make the others wait for lead_ttl; the next one leads.
 */

static ngx_uint_t
ngx_oauth_cache_leader_gone(ngx_oauth_cache_node_t *cn)
{
    if (cn->flight != NGX_OAUTH_FLIGHT_PENDING
        || cn->status == (int32_t) ngx_pid
        || cn->status <= 0)
    {
        return 0;
    }

    return kill((ngx_pid_t) cn->status, 0) == -1 && ngx_errno == NGX_ESRCH;
}


static void
ngx_oauth_cache_mark(ngx_oauth_cache_node_t *cn, ngx_uint_t flight,
    time_t ends, int32_t status)
{
    cn->flight = (u_char) flight;
    cn->flight_ends = ends;
    cn->status = status;
}


/*
 * Suspends a request (whose phase handler returns NGX_AGAIN) for msec and
 * then runs its phases again: how a single-flight follower polls.  ev lives
 * in the request ctx; a pool cleanup removes the timer if the request ends
 * first.
 */

static ngx_int_t
ngx_oauth_cache_wait(ngx_http_request_t *r, ngx_event_t *ev, ngx_msec_t msec)
{
    ngx_pool_cleanup_t  *cln;

    if (ev->data == NULL) {
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            return NGX_ERROR;
        }

        cln->handler = ngx_oauth_cache_wait_cleanup;
        cln->data = ev;

        ev->data = r;
        ev->log = r->connection->log;
        ev->handler = ngx_oauth_cache_wake;
    }

    ngx_add_timer(ev, msec);

    return NGX_OK;
}


static void
ngx_oauth_cache_wake(ngx_event_t *ev)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ev->data;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    ngx_http_core_run_phases(r);
    ngx_http_run_posted_requests(c);
}


static void
ngx_oauth_cache_wait_cleanup(void *data)
{
    ngx_event_t  *ev = data;

    if (ev->timer_set) {
        ngx_del_timer(ev);
    }
}


static ngx_rbtree_key_t
ngx_oauth_cache_key(u_char *hash)
{
    return ((ngx_rbtree_key_t) hash[0] << 24)
           | ((ngx_rbtree_key_t) hash[1] << 16)
           | ((ngx_rbtree_key_t) hash[2] << 8)
           | (ngx_rbtree_key_t) hash[3];
}


/*
 * The prologue of every lookup: locks the zone (the caller unlocks it)
 * and finds the node of hash, *cnp (NULL: none).  Returns what it holds
 * of kind at now: NGX_OAUTH_ENTRY_NONE (no node, or a flight marker or
 * an entry of another kind), _FRESH, _STALE (expired, within its keep:
 * stale_if_error) or _EXPIRED.
 */

static ngx_uint_t
ngx_oauth_cache_find(ngx_oauth_cache_t *cache, u_char kind, u_char *hash,
    time_t now, ngx_oauth_cache_node_t **cnp)
{
    ngx_oauth_cache_node_t  *cn;

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_oauth_cache_lookup(cache, hash);
    *cnp = cn;

    if (cn == NULL || cn->kind != kind) {
        return NGX_OAUTH_ENTRY_NONE;
    }

    if (cn->expires > now) {
        return NGX_OAUTH_ENTRY_FRESH;
    }

    return (cn->keep > now) ? NGX_OAUTH_ENTRY_STALE : NGX_OAUTH_ENTRY_EXPIRED;
}


/* the caller holds the zone's mutex */

static ngx_oauth_cache_node_t *
ngx_oauth_cache_lookup(ngx_oauth_cache_t *cache, u_char *hash)
{
    ngx_int_t                rc;
    ngx_rbtree_key_t         key;
    ngx_rbtree_node_t       *node, *sentinel;
    ngx_oauth_cache_node_t  *cn;

    key = ngx_oauth_cache_key(hash);

    node = cache->sh->rbtree.root;
    sentinel = cache->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (key < node->key) {
            node = node->left;
            continue;
        }

        if (key > node->key) {
            node = node->right;
            continue;
        }

        cn = (ngx_oauth_cache_node_t *) &node->color;

        rc = ngx_memcmp(hash, cn->hash, NOX_SHA256_LEN);

        if (rc == 0) {
            return cn;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_oauth_cache_delete(ngx_oauth_cache_t *cache, ngx_oauth_cache_node_t *cn)
{
    ngx_rbtree_node_t  *node;

    node = (ngx_rbtree_node_t *)
               ((u_char *) cn - offsetof(ngx_rbtree_node_t, color));

    ngx_queue_remove(&cn->queue);
    ngx_rbtree_delete(&cache->sh->rbtree, node);
    ngx_slab_free_locked(cache->shpool, node);
}


static void
ngx_oauth_cache_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t       **p;
    ngx_oauth_cache_node_t   *cn, *cnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            cn = (ngx_oauth_cache_node_t *) &node->color;
            cnt = (ngx_oauth_cache_node_t *) &temp->color;

            p = (ngx_memcmp(cn->hash, cnt->hash, NOX_SHA256_LEN) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


/* a reload keeps the entries: the old cycle's zone data is reused */

static ngx_int_t
ngx_oauth_cache_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_oauth_cache_t  *ocache = data;

    size_t              len;
    ngx_oauth_cache_t  *cache;

    cache = shm_zone->data;

    if (ocache) {
        cache->sh = ocache->sh;
        cache->shpool = ocache->shpool;
        return NGX_OK;
    }

    cache->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        cache->sh = cache->shpool->data;
        return NGX_OK;
    }

    cache->sh = ngx_slab_alloc(cache->shpool,
                               sizeof(ngx_oauth_cache_shctx_t));
    if (cache->sh == NULL) {
        return NGX_ERROR;
    }

    cache->shpool->data = cache->sh;

    ngx_rbtree_init(&cache->sh->rbtree, &cache->sh->sentinel,
                    ngx_oauth_cache_rbtree_insert_value);

    ngx_queue_init(&cache->sh->queue);

    len = sizeof(" in  cache zone \"\"") + ngx_strlen(cache->who)
          + shm_zone->shm.name.len;

    cache->shpool->log_ctx = ngx_slab_alloc(cache->shpool, len);
    if (cache->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(cache->shpool->log_ctx, " in %s cache zone \"%V\"%Z",
                cache->who, &shm_zone->shm.name);

    /* a full zone is normal: entries are evicted, not logged as crit */

    cache->shpool->log_nomem = 0;

    return NGX_OK;
}


/* ---- metrics ------------------------------------------------------------ */

static void
ngx_oauth_cache_count(ngx_http_request_t *r, ngx_oauth_cache_conf_t *cc,
    ngx_uint_t what)
{
    ngx_oauth_cache_t  *cache;

    if (cc == NULL) {
        return;
    }

    cache = cc->zone->data;

    ngx_oauth_metrics_cache(r, &cache->metrics, &cc->zone->shm.name, what);
}


/* the entries of a zone (not the single-flight markers), for oauth_status */

ngx_uint_t
ngx_oauth_cache_entries(ngx_shm_zone_t *zone)
{
    ngx_uint_t               n;
    ngx_queue_t             *q;
    ngx_oauth_cache_t       *cache;
    ngx_oauth_cache_node_t  *cn;

    cache = zone->data;

    if (cache == NULL || cache->sh == NULL) {
        return 0;
    }

    n = 0;

    ngx_shmtx_lock(&cache->shpool->mutex);

    for (q = ngx_queue_head(&cache->sh->queue);
         q != ngx_queue_sentinel(&cache->sh->queue);
         q = ngx_queue_next(q))
    {
        cn = ngx_queue_data(q, ngx_oauth_cache_node_t, queue);

        if (cn->kind != NGX_OAUTH_CACHE_MARKER) {
            n++;
        }
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);

    return n;
}


/*
 * An entry as it is, for oauth_status (the JWT key sets): not touched in
 * the LRU order, read whether fresh or only kept
 */

ngx_int_t
ngx_oauth_cache_peek(ngx_shm_zone_t *zone, u_char kind, u_char *hash,
    u_char *buf, size_t size, time_t *expires, time_t *keep, int32_t *aux)
{
    ngx_int_t                rc;
    ngx_uint_t               state;
    ngx_oauth_cache_t       *cache;
    ngx_oauth_cache_node_t  *cn;

    cache = zone->data;

    if (cache == NULL || cache->sh == NULL) {
        return NGX_DECLINED;
    }

    rc = NGX_DECLINED;

    state = ngx_oauth_cache_find(cache, kind, hash, ngx_time(), &cn);

    if ((state == NGX_OAUTH_ENTRY_FRESH || state == NGX_OAUTH_ENTRY_STALE)
        && cn->len >= size)
    {
        ngx_memcpy(buf, cn->data, size);
        *expires = cn->expires;
        *keep = cn->keep;
        *aux = cn->aux;
        rc = NGX_OK;
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);

    return rc;
}
