/*
 * NginxOAuth shim: shared-memory caches (ngx_oauth_cache.h).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_oauth_core.h"
#include "ngx_oauth_cache.h"


#define NGX_OAUTH_CACHE_EXPIRE_MAX  8   /* expired entries freed per store */
#define NGX_OAUTH_CACHE_FAILED_TTL  2   /* a failed leader's status, s */
#define NGX_OAUTH_FLIGHT_WAIT       20  /* ms between a follower's looks */

/* markers a lookup may meet instead of an entry */
#define NGX_OAUTH_CACHE_PENDING     0xfe   /* another request leads */
#define NGX_OAUTH_CACHE_FAILED      0xff   /* it failed, aux: its status */


typedef struct {
    ngx_rbtree_t                 rbtree;
    ngx_rbtree_node_t            sentinel;
    ngx_queue_t                  queue;       /* LRU: head is the newest */
} ngx_oauth_cache_shctx_t;


typedef struct {
    ngx_oauth_cache_shctx_t     *sh;
    ngx_slab_pool_t             *shpool;
    const char                  *who;         /* log prefix */
} ngx_oauth_cache_t;


/* lives at ngx_rbtree_node_t.color, as in ngx_http_limit_req_module */

typedef struct {
    u_char                       color;
    u_char                       kind;
    u_short                      reserved;
    uint32_t                     len;         /* of data */
    ngx_queue_t                  queue;
    time_t                       expires;
    int32_t                      aux;
    u_char                       hash[NOX_SHA256_LEN];
    u_char                       data[1];
} ngx_oauth_cache_node_t;


static ngx_oauth_cache_node_t *ngx_oauth_cache_lookup(
    ngx_oauth_cache_t *cache, u_char *hash);
static void ngx_oauth_cache_delete(ngx_oauth_cache_t *cache,
    ngx_oauth_cache_node_t *cn);
static ngx_rbtree_key_t ngx_oauth_cache_key(u_char *hash);
static void ngx_oauth_cache_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_int_t ngx_oauth_cache_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_oauth_cache_store_locked(ngx_http_request_t *r,
    ngx_oauth_cache_conf_t *cc, u_char kind, u_char *hash, ngx_str_t *value,
    int32_t aux, time_t expires);
static ngx_int_t ngx_oauth_cache_hit_locked(ngx_http_request_t *r,
    ngx_oauth_cache_conf_t *cc, ngx_oauth_cache_node_t *cn, ngx_str_t *value,
    int32_t *aux);
static ngx_int_t ngx_oauth_cache_acquire(ngx_http_request_t *r,
    ngx_oauth_cache_conf_t *cc, u_char kind, u_char *hash, ngx_str_t *value,
    int32_t *aux, time_t lead_ttl, ngx_uint_t waited);
static void ngx_oauth_cache_fail(ngx_http_request_t *r,
    ngx_oauth_cache_conf_t *cc, u_char *hash, ngx_uint_t status);
static void ngx_oauth_flight_cleanup(void *data);
static ngx_int_t ngx_oauth_flight_done(ngx_http_request_t *sr, void *data,
    ngx_int_t rc);
static ngx_int_t ngx_oauth_cache_wait(ngx_http_request_t *r, ngx_event_t *ev,
    ngx_msec_t msec);
static void ngx_oauth_cache_wake(ngx_event_t *ev);
static void ngx_oauth_cache_wait_cleanup(void *data);


char *
ngx_oauth_cache_conf(ngx_conf_t *cf, void *tag, const char *who,
    time_t default_ttl, ngx_oauth_cache_conf_t **field)
{
    u_char                  *c;
    ssize_t                  size;
    time_t                   ttl;
    ngx_str_t               *value, name, s;
    ngx_uint_t               i;

    value = cf->args->elts;

    ngx_str_null(&name);
    size = 0;
    ttl = default_ttl;

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

    return (*field || ttl == 0) ? NGX_CONF_OK : NGX_CONF_ERROR;
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

    return cc;
}


ngx_int_t
ngx_oauth_cache_get(ngx_http_request_t *r, ngx_oauth_cache_conf_t *cc,
    u_char kind, u_char *hash, ngx_str_t *value, int32_t *aux)
{
    ngx_oauth_cache_t       *cache;
    ngx_oauth_cache_node_t  *cn;

    cache = cc->zone->data;

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_oauth_cache_lookup(cache, hash);

    if (cn == NULL || cn->kind != kind) {
        ngx_shmtx_unlock(&cache->shpool->mutex);

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "%s: cache \"%V\" miss", cache->who,
                       &cc->zone->shm.name);
        return NGX_DECLINED;
    }

    if (cn->expires <= ngx_time()) {
        ngx_oauth_cache_delete(cache, cn);
        ngx_shmtx_unlock(&cache->shpool->mutex);

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "%s: cache \"%V\" entry expired", cache->who,
                       &cc->zone->shm.name);
        return NGX_DECLINED;
    }

    return (ngx_oauth_cache_hit_locked(r, cc, cn, value, aux) == NGX_OK)
           ? NGX_OK : NGX_DECLINED;
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
                                 ngx_time() + ttl);

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
    ngx_oauth_cache_t       *cache;
    ngx_oauth_cache_node_t  *cn;

    cache = cc->zone->data;
    now = ngx_time();

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_oauth_cache_lookup(cache, hash);

    if (cn && cn->expires > now) {

        if (cn->kind == kind) {
            return ngx_oauth_cache_hit_locked(r, cc, cn, value, aux);
        }

        if (cn->kind == NGX_OAUTH_CACHE_PENDING) {
            ngx_shmtx_unlock(&cache->shpool->mutex);
            return NGX_AGAIN;
        }

        if (cn->kind == NGX_OAUTH_CACHE_FAILED && waited) {
            *aux = cn->aux;
            ngx_shmtx_unlock(&cache->shpool->mutex);
            return NGX_ABORT;
        }
    }

    /* a miss: this request leads */

    ngx_str_null(&empty);

    ngx_oauth_cache_store_locked(r, cc, NGX_OAUTH_CACHE_PENDING, hash, &empty,
                                 0, now + lead_ttl);

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
    ngx_str_t           empty;
    ngx_oauth_cache_t  *cache;

    cache = cc->zone->data;

    ngx_str_null(&empty);

    ngx_shmtx_lock(&cache->shpool->mutex);

    ngx_oauth_cache_store_locked(r, cc, NGX_OAUTH_CACHE_FAILED, hash, &empty,
                                 (int32_t) status,
                                 ngx_time() + NGX_OAUTH_CACHE_FAILED_TTL);

    ngx_shmtx_unlock(&cache->shpool->mutex);
}


ngx_int_t
ngx_oauth_flight_lookup(ngx_http_request_t *r, ngx_oauth_flight_t *f,
    ngx_str_t *value, int32_t *aux)
{
    ngx_int_t            rc;
    ngx_pool_cleanup_t  *cln;

    rc = ngx_oauth_cache_acquire(r, f->cache, f->kind, f->hash, value, aux,
                                 f->lead_ttl, f->waited);

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

    if (f->cleanup) {
        return NGX_DECLINED;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_oauth_flight_cleanup;
    cln->data = f;
    f->request = r;
    f->cleanup = 1;

    return NGX_DECLINED;
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

    if (cn && cn->kind == NGX_OAUTH_CACHE_PENDING) {
        ngx_oauth_cache_delete(cache, cn);
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


/* only records facts: the decision is made back in the phase handler */

static ngx_int_t
ngx_oauth_flight_done(ngx_http_request_t *sr, void *data, ngx_int_t rc)
{
    ngx_oauth_flight_t  *f = data;

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

    f->whole = ngx_oauth_subrequest_done(sr, rc, &f->body);

    return NGX_OK;
}


ngx_int_t
ngx_oauth_flight_answer(ngx_http_request_t *r, ngx_oauth_flight_t *f,
    const char *who, ngx_str_t *url)
{
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
    u_char             *p;
    ngx_oauth_cache_t  *cache;

    cache = cc->zone->data;

    p = ngx_pnalloc(r->pool, cn->len + 1);
    if (p == NULL) {
        ngx_shmtx_unlock(&cache->shpool->mutex);
        return NGX_ERROR;
    }

    ngx_memcpy(p, cn->data, cn->len);
    value->data = p;
    value->len = cn->len;

    if (aux) {
        *aux = cn->aux;
    }

    ngx_queue_remove(&cn->queue);
    ngx_queue_insert_head(&cache->sh->queue, &cn->queue);

    ngx_shmtx_unlock(&cache->shpool->mutex);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "%s: cache \"%V\" hit, %uz bytes", cache->who,
                   &cc->zone->shm.name, value->len);

    return NGX_OK;
}


/* the caller holds the zone's mutex; replaces an entry of the same digest */

static void
ngx_oauth_cache_store_locked(ngx_http_request_t *r,
    ngx_oauth_cache_conf_t *cc, u_char kind, u_char *hash, ngx_str_t *value,
    int32_t aux, time_t expires)
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

        if (cn->expires > now) {
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
            return;
        }

        q = ngx_queue_last(&cache->sh->queue);
        cn = ngx_queue_data(q, ngx_oauth_cache_node_t, queue);
        ngx_oauth_cache_delete(cache, cn);

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "%s: cache \"%V\" evicted the least recently used "
                       "entry", cache->who, &cc->zone->shm.name);
    }

    cn = (ngx_oauth_cache_node_t *) &node->color;

    node->key = ngx_oauth_cache_key(hash);

    cn->kind = kind;
    cn->len = (uint32_t) value->len;
    cn->expires = expires;
    cn->aux = aux;
    ngx_memcpy(cn->hash, hash, NOX_SHA256_LEN);

    if (value->len) {
        ngx_memcpy(cn->data, value->data, value->len);
    }

    ngx_rbtree_insert(&cache->sh->rbtree, node);
    ngx_queue_insert_head(&cache->sh->queue, &cn->queue);
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
