/*
 * NginxOAuth shim: the key sets of auth_jwt_key_request and
 * auth_jwt_discovery: the shared key set zone (auth_jwt_keys), its
 * refresh and kid-miss refetch, the parsed sets of each worker, the
 * metadata document of discovery and the route to the issuer's origin,
 * and the subrequest per request of auth_jwt_key_cache 0
 * (ngx_oauth_keys.h; ARCHITECTURE.md).  The log lines keep the
 * "auth_jwt:" prefix: the directives are auth_jwt's.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_oauth_core.h"
#include "ngx_oauth_cache.h"
#include "ngx_oauth_keys.h"
#include "ngx_oauth_metrics.h"


/* the shared key set cache (auth_jwt_key_request, auth_jwt_key_refresh) */
#define NGX_OAUTH_KEYS_KIND            'k'   /* a key set */
#define NGX_OAUTH_KEYS_FETCH_KIND      'K'   /* its last fetch */
#define NGX_OAUTH_KEYS_ZONE            "auth_jwt_keys"
#define NGX_OAUTH_KEYS_ZONE_SIZE       (4 * 1024 * 1024)  /* default */
#define NGX_OAUTH_KEYS_ZONE_PAGES      8     /* auth_jwt_key_zone min */
#define NGX_OAUTH_KEYS_WORKER_MAX      64    /* parsed sets per worker */
#define NGX_OAUTH_KEYS_LEAD            120   /* s a fetch may take */
#define NGX_OAUTH_KEYS_MIN             300
#define NGX_OAUTH_KEYS_MAX             86400
#define NGX_OAUTH_KEYS_STALE           86400
#define NGX_OAUTH_KEYS_MISS            30

/* auth_jwt_discovery: the generated routes and their timeout */
#define NGX_OAUTH_KEYS_DISCOVERY_PREFIX   "/.oauth-jwt/"
#define NGX_OAUTH_KEYS_DISCOVERY_TIMEOUT  10000


/* a key set entry of the shared zone begins with this; the body follows */

typedef struct {
    int64_t                    fetched;
    u_char                     digest[NOX_SHA256_LEN];  /* of the body */
} ngx_oauth_keys_head_t;


/*
 * A key set parsed in this worker: one per version (digest) of a shared
 * entry, so a request never parses; a replaced version is freed when the
 * last request using it ends
 */

typedef struct {
    ngx_queue_t                queue;       /* most recently used first */
    u_char                     set[NOX_SHA256_LEN];
    u_char                     digest[NOX_SHA256_LEN];
    int64_t                    handle;
    ngx_uint_t                 refs;
    ngx_uint_t                 replaced;
} ngx_oauth_keys_set_t;


/* what a background refresh needs when its subrequest ends */

typedef struct {
    ngx_oauth_flight_t         flight;
    ngx_oauth_keys_conf_t     *kc;
    ngx_str_t                  uri;
    ngx_oauth_key_request_t   *kr;
    u_char                     set[NOX_SHA256_LEN];
} ngx_oauth_keys_refresh_t;


static ngx_int_t ngx_oauth_keys_uris(ngx_http_request_t *r,
    ngx_oauth_keys_conf_t *kc, ngx_oauth_keys_ctx_t *kx);
static ngx_int_t ngx_oauth_keys_request(ngx_http_request_t *r,
    ngx_oauth_keys_conf_t *kc, ngx_oauth_keys_ctx_t *kx);
static ngx_int_t ngx_oauth_keys_response(ngx_http_request_t *r,
    ngx_oauth_keys_conf_t *kc, ngx_oauth_keys_ctx_t *kx, ngx_uint_t defer);
static void ngx_oauth_keys_cleanup(void *data);
static ngx_int_t ngx_oauth_keys_cached(ngx_http_request_t *r,
    ngx_oauth_keys_conf_t *kc, ngx_oauth_keys_ctx_t *kx);
static ngx_int_t ngx_oauth_keys_one(ngx_http_request_t *r,
    ngx_oauth_keys_conf_t *kc, ngx_oauth_keys_ctx_t *kx);
static ngx_int_t ngx_oauth_keys_head(ngx_http_request_t *r,
    ngx_oauth_keys_conf_t *kc, u_char *set, ngx_oauth_keys_head_t *head,
    time_t *expires, time_t *keep);
static ngx_int_t ngx_oauth_keys_ids(ngx_http_request_t *r,
    ngx_oauth_key_request_t *kr, ngx_str_t *uri, u_char *set,
    u_char *fetch);
static ngx_int_t ngx_oauth_keys_hash(ngx_http_request_t *r,
    const char *prefix, ngx_str_t *uri, ngx_int_t format, u_char *hash);
static void ngx_oauth_keys_refresh(ngx_http_request_t *r,
    ngx_oauth_keys_conf_t *kc, ngx_oauth_keys_ctx_t *kx, ngx_str_t *uri,
    ngx_oauth_key_request_t *kr);
static void ngx_oauth_keys_refreshed(ngx_http_request_t *sr, void *data);
static ngx_int_t ngx_oauth_keys_fits(ngx_http_request_t *r,
    ngx_oauth_keys_conf_t *kc, ngx_str_t *uri, ngx_str_t *value);
static void ngx_oauth_keys_store(ngx_http_request_t *r,
    ngx_oauth_keys_conf_t *kc, ngx_oauth_flight_t *f, ngx_str_t *uri,
    ngx_oauth_key_request_t *kr, u_char *set);
static ngx_int_t ngx_oauth_keys_discovered(ngx_http_request_t *r,
    ngx_oauth_key_request_t *kr, ngx_str_t *uri, ngx_str_t *body,
    ngx_str_t *jwks);
static ngx_oauth_keys_set_t *ngx_oauth_keys_find(u_char *set,
    u_char *digest);
static ngx_oauth_keys_set_t *ngx_oauth_keys_add(u_char *set,
    u_char *digest, int64_t handle, ngx_log_t *log);
static void ngx_oauth_keys_unref(void *data);
static ngx_str_t *ngx_oauth_keys_label(ngx_http_request_t *r,
    ngx_oauth_key_request_t *kr, ngx_str_t *uri);
static int32_t ngx_oauth_keys_count(int64_t handle);


static ngx_queue_t  ngx_oauth_keys_sets;          /* per worker */
static ngx_uint_t   ngx_oauth_keys_nsets;


/* ---- requests ---------------------------------------------------------- */

ngx_int_t
ngx_oauth_keys_ctx_init(ngx_http_request_t *r, ngx_oauth_keys_ctx_t *kx)
{
    /*
     * set by ngx_pcalloc() of the caller's ctx:
     *
     *     kx->uris = NULL;
     *     kx->index = 0;
     *     kx->flight = { 0 };
     *     kx->step = 0;
     *     kx->fetching = 0;
     *     kx->fetched = 0;
     *     kx->refetch = 0;
     *     kx->waiting = 0;
     */

    if (ngx_array_init(&kx->keysets, r->pool, 2, sizeof(int64_t)) != NGX_OK
        || ngx_array_init(&kx->bodies, r->pool, 2,
                          sizeof(ngx_oauth_key_body_t))
           != NGX_OK
        || ngx_array_init(&kx->digests, r->pool, 1, NOX_SHA256_LEN)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_oauth_keys_get(ngx_http_request_t *r, ngx_oauth_keys_conf_t *kc,
    ngx_oauth_keys_ctx_t *kx, ngx_uint_t defer)
{
    ngx_int_t  rc;

    if (kx->waiting) {
        if (!kx->flight.done) {
            return NGX_AGAIN;
        }

        kx->waiting = 0;

        rc = ngx_oauth_keys_response(r, kc, kx, defer);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (kx->index >= kc->requests->nelts) {
        return NGX_OK;
    }

    if (kc->cache) {
        return ngx_oauth_keys_cached(r, kc, kx);
    }

    return ngx_oauth_keys_request(r, kc, kx);
}


ngx_int_t
ngx_oauth_keys_refetch(ngx_http_request_t *r, ngx_oauth_keys_conf_t *kc,
    ngx_oauth_keys_ctx_t *kx)
{
    if (kc->cache == NULL || kx->refetch || kx->keysets.nelts == 0) {
        return NGX_DECLINED;
    }

    /*
     * a kid not in the cached sets: fetched again (rate limited, shared
     * with the other requests that miss); the handles taken so far stay
     * referenced until the request ends
     */

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "auth_jwt: no key for the token in the cached key "
                   "sets: fetching them again");

    kx->refetch = 1;
    kx->index = 0;
    kx->step = 0;
    kx->keysets.nelts = 0;
    kx->digests.nelts = 0;

    return NGX_OK;
}


/*
 * every uri is evaluated before the first subrequest: a subrequest runs
 * the server's rewrite phase again on the variables it shares with the
 * main request, so a later evaluation could see them changed
 */

static ngx_int_t
ngx_oauth_keys_uris(ngx_http_request_t *r,
    ngx_oauth_keys_conf_t *kc, ngx_oauth_keys_ctx_t *kx)
{
    ngx_uint_t                i;
    ngx_oauth_key_request_t  *kr;

    if (kx->uris) {
        return NGX_OK;
    }

    kr = kc->requests->elts;

    kx->uris = ngx_palloc(r->pool, kc->requests->nelts
                                        * sizeof(ngx_str_t));
    if (kx->uris == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < kc->requests->nelts; i++) {
        if (kr[i].discovered) {
            /* set from the metadata document (ngx_oauth_keys_one) */
            ngx_str_null(&kx->uris[i]);
            continue;
        }

        if (ngx_http_complex_value(r, &kr[i].uri, &kx->uris[i])
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_oauth_keys_request(ngx_http_request_t *r,
    ngx_oauth_keys_conf_t *kc, ngx_oauth_keys_ctx_t *kx)
{
    u_char                   *p;
    ngx_str_t                 uri;
    ngx_http_request_t       *sr;
    ngx_oauth_key_request_t  *kr;
    u_char                    safe[ngx_oauth_log_safe_size(
                                       NGX_OAUTH_LOG_SAFE_MAX)];

    if (ngx_oauth_keys_uris(r, kc, kx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    kr = kc->requests->elts;
    kr = &kr[kx->index];
    uri = kx->uris[kx->index];

    /*
     * no shared cache: the flight only records the subrequest's facts
     * (ngx_oauth_flight_done), as for a fetch of the cached path, so the
     * IdP and key set counters see this fetch too
     */

    kx->waiting = 1;

    if (ngx_oauth_flight_get(r, &kx->flight, &uri, 0, &sr) != NGX_OK) {
        /* the uri may hold request variables */
        p = ngx_oauth_log_safe(safe, &uri, NGX_OAUTH_LOG_SAFE_MAX);
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth_jwt: cannot start the key request \"%*s\"",
                      p - safe, safe);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "auth_jwt: key request \"%V\"", &kr->uri.value);

    return NGX_AGAIN;
}


/*
 * A key request of auth_jwt_key_cache 0 ended: counted as the cached
 * path counts a fetch (the IdP call, then the key set's fetch by outcome)
 */

static ngx_int_t
ngx_oauth_keys_response(ngx_http_request_t *r, ngx_oauth_keys_conf_t *kc,
    ngx_oauth_keys_ctx_t *kx, ngx_uint_t defer)
{
    u_char                    set[NOX_SHA256_LEN];
    u_char                    fetch[NOX_SHA256_LEN];
    ngx_int_t                 rc;
    ngx_str_t                *uri;
    ngx_oauth_flight_t       *f;
    ngx_oauth_key_body_t     *kb;
    ngx_oauth_key_request_t  *kr;

    kr = kc->requests->elts;
    kr = &kr[kx->index];
    uri = &kx->uris[kx->index];
    f = &kx->flight;
    kx->index++;

    ngx_oauth_flight_count(r, f, "auth_jwt", uri);

    if (ngx_oauth_keys_ids(r, kr, uri, set, fetch) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (f->whole != NGX_OK || f->status != NGX_HTTP_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth_jwt: key request \"%V\" failed: rc %i, "
                      "status %ui", &kr->uri.value, f->whole,
                      f->own ? f->own : f->status);
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    if (f->encoded) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth_jwt: key request \"%V\" returned an encoded "
                      "(Content-Encoding) response", &kr->uri.value);
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    if (f->body.len > NOX_MAX_KEYSET) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth_jwt: key request \"%V\" returned %uz bytes, "
                      "more than %d", &kr->uri.value, f->body.len,
                      NOX_MAX_KEYSET);
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    /*
     * with a verified-token cache the body is first part of the cache key:
     * it is parsed only on a miss
     */

    if (defer) {
        kb = ngx_array_push(&kx->bodies);
        if (kb == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        kb->body = f->body;
        kb->index = kx->index - 1;
        kb->format = kr->format;

        rc = NGX_OK;
        goto done;
    }

    rc = ngx_oauth_keys_load(r, kc, kx, &f->body, kx->index - 1);

done:

    ngx_oauth_metrics_keyset(r, set, ngx_oauth_keys_label(r, kr, uri),
                             (rc == NGX_OK) ? NGX_OAUTH_KS_FETCH_OK
                                            : NGX_OAUTH_KS_FETCH_ERROR);

    return rc;
}


ngx_int_t
ngx_oauth_keys_load(ngx_http_request_t *r,
    ngx_oauth_keys_conf_t *kc, ngx_oauth_keys_ctx_t *kx,
    ngx_str_t *body, ngx_uint_t index)
{
    int64_t                   handle, *slot;
    int32_t                   rc, detail;
    ngx_pool_cleanup_t       *cln;
    ngx_oauth_key_request_t  *kr;

    kr = kc->requests->elts;
    kr = &kr[index];

    handle = 0;
    detail = 0;

    rc = ngx_oauth_managed.keyset_load(body->data, (int32_t) body->len,
                                       (int32_t) kr->format, &handle, &detail);

    if (rc != NOX_OK) {
        if (detail >= 0) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "auth_jwt: key request \"%V\" returned unusable "
                          "keys: key #%D: %s", &kr->uri.value, detail,
                          ngx_oauth_status_text(rc));
        } else {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "auth_jwt: key request \"%V\" returned unusable "
                          "keys: %s", &kr->uri.value,
                          ngx_oauth_status_text(rc));
        }

        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        (void) ngx_oauth_managed.keyset_free(handle);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    slot = ngx_array_push(&kx->keysets);
    if (slot == NULL) {
        (void) ngx_oauth_managed.keyset_free(handle);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *slot = handle;

    cln->handler = ngx_oauth_keys_cleanup;
    cln->data = slot;

    return NGX_OK;
}


static void
ngx_oauth_keys_cleanup(void *data)
{
    int64_t  *handle = data;

    (void) ngx_oauth_managed.keyset_free(*handle);
}


/*
 * The shared key cache.  A key set (one evaluated auth_jwt_key_request uri
 * and format) is an entry of the auth_jwt_keys zone: its fetch time, the
 * digest of its body, and the body; fresh until its refresh time (the
 * answer's max-age bounded by auth_jwt_key_refresh min= and max=, or
 * auth_jwt_key_cache), usable stale= longer.  A second entry, "its last
 * fetch", is the single-flight and rate limit of fetches: while a fetch
 * runs its requests wait (or, for a refresh, do not), and for miss= after
 * one no other starts.  So the whole nginx asks the IdP at most once per
 * miss= per key set, whatever the tokens say.
 *
 *   set fresh              -> use it
 *   set due (stale)        -> use it; start a background refresh if no
 *                             fetch runs or ran within miss=
 *   no usable set          -> wait for a fetch (lead one if none runs)
 *   kid not in the sets    -> the same once per request (kx->refetch):
 *                             lead or wait for a fetch, unless one ran
 *                             within miss=; then verify again
 */

static ngx_int_t
ngx_oauth_keys_cached(ngx_http_request_t *r,
    ngx_oauth_keys_conf_t *kc, ngx_oauth_keys_ctx_t *kx)
{
    ngx_int_t  rc;

    if (ngx_oauth_keys_uris(r, kc, kx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    while (kx->index < kc->requests->nelts) {
        rc = ngx_oauth_keys_one(r, kc, kx);
        if (rc != NGX_OK) {
            return rc;
        }

        kx->index++;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_oauth_keys_one(ngx_http_request_t *r,
    ngx_oauth_keys_conf_t *kc, ngx_oauth_keys_ctx_t *kx)
{
    u_char                   *d;
    time_t                    expires, keep, now;
    int32_t                   aux, rc2, detail;
    int64_t                   handle, *slot;
    ngx_int_t                 rc;
    ngx_str_t                *uri, value, body;
    ngx_uint_t                have;
    ngx_oauth_flight_t       *f;
    ngx_pool_cleanup_t       *cln;
    ngx_http_request_t       *sr;
    ngx_oauth_keys_set_t     *ks;
    ngx_oauth_keys_head_t     head;
    ngx_oauth_key_request_t  *kr;

    kr = kc->requests->elts;
    kr = &kr[kx->index];
    uri = &kx->uris[kx->index];
    f = &kx->flight;
    now = ngx_time();

    if (kx->step != kx->index + 1) {
        kx->step = kx->index + 1;
        kx->fetched = 0;

        if (ngx_oauth_keys_ids(r, kr, uri, kx->set, f->hash)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        f->cache = kc->cache;
        f->kind = NGX_OAUTH_KEYS_FETCH_KIND;
        f->lead_ttl = NGX_OAUTH_KEYS_LEAD;
        f->waited = 0;
        f->nowait = 0;
        f->finish = NULL;
    }

    if (kx->fetching) {
        if (!f->done) {
            return NGX_AGAIN;
        }

        kx->fetching = 0;
        kx->fetched = 1;

        ngx_oauth_keys_store(r, kc, f, uri, kr, kx->set);
    }

    rc = ngx_oauth_keys_head(r, kc, kx->set, &head, &expires, &keep);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    have = (rc == NGX_OK);

    if (!kx->fetched && (!have || kx->refetch)) {

        rc = ngx_oauth_flight_lookup(r, f, &value, &aux);

        switch (rc) {

        case NGX_AGAIN:
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "auth_jwt: key set \"%V\": waiting for its fetch",
                           uri);
            return NGX_AGAIN;

        case NGX_DECLINED:
            f->finish = NULL;

            if (ngx_oauth_flight_get(r, f, uri, 0, &sr) != NGX_OK) {
                ngx_oauth_flight_fail(r, f, NGX_HTTP_INTERNAL_SERVER_ERROR);
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "auth_jwt: cannot start the key request \"%V\"",
                              &kr->uri.value);
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "auth_jwt: key set \"%V\": fetching (%s)", uri,
                           have ? "kid not in the set" : "none cached");

            if (have) {
                ngx_oauth_metrics_keyset(r, kx->set,
                                     ngx_oauth_keys_label(r, kr, uri),
                                     NGX_OAUTH_KS_REFETCH);
            }

            kx->fetching = 1;
            return NGX_AGAIN;

        case NGX_ERROR:
            return NGX_HTTP_INTERNAL_SERVER_ERROR;

        default:
            /* NGX_OK: fetched within miss=; NGX_ABORT: that fetch failed */
            kx->fetched = 1;
            break;
        }

        rc = ngx_oauth_keys_head(r, kc, kx->set, &head, &expires, &keep);
        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        have = (rc == NGX_OK);
    }

    if (!have) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth_jwt: key request \"%V\": no usable key set "
                      "(none fetched, or older than its stale limit)",
                      &kr->uri.value);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "auth_jwt: key set \"%V\": cached, fetched %T s ago, "
                   "refresh %s %T s", uri, now - (time_t) head.fetched,
                   expires > now ? "in" : "due since",
                   expires > now ? expires - now : now - expires);

    if (expires <= now && !kx->fetched) {
        ngx_oauth_keys_refresh(r, kc, kx, uri, kr);
    }

    if (kr->format == NGX_OAUTH_KEYS_DISCOVERY) {

        /* the entry holds the jwks_uri's subrequest uri: the next set's */

        rc = ngx_oauth_cache_get_kept(r, kc->cache,
                                      NGX_OAUTH_KEYS_KIND, kx->set,
                                      &value, 0, &expires, &keep);

        if (rc != NGX_OK
            || value.len <= sizeof(ngx_oauth_keys_head_t)
            || kx->index + 1 >= kc->requests->nelts)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "auth_jwt: discovery \"%V\": the cached metadata "
                          "changed while it was read", &kr->issuer);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        uri = &kx->uris[kx->index + 1];
        uri->len = value.len - sizeof(ngx_oauth_keys_head_t);
        uri->data = ngx_pnalloc(r->pool, uri->len);
        if (uri->data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(uri->data,
                   value.data + sizeof(ngx_oauth_keys_head_t),
                   uri->len);

        kx->step = 0;

        return NGX_OK;
    }

    ks = ngx_oauth_keys_find(kx->set, head.digest);

    if (ks == NULL) {

        /* this version is new to this worker: parsed once, here */

        rc = ngx_oauth_cache_get_kept(r, kc->cache,
                                      NGX_OAUTH_KEYS_KIND, kx->set,
                                      &value, 0, &expires, &keep);

        if (rc != NGX_OK
            || value.len < sizeof(ngx_oauth_keys_head_t)
            || ngx_memcmp(value.data + offsetof(ngx_oauth_keys_head_t,
                                                digest),
                          head.digest, NOX_SHA256_LEN)
               != 0)
        {
            /* replaced meanwhile: the next request takes the new one */
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "auth_jwt: key request \"%V\": the key set "
                          "changed while it was read", &kr->uri.value);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        body.data = value.data + sizeof(ngx_oauth_keys_head_t);
        body.len = value.len - sizeof(ngx_oauth_keys_head_t);

        handle = 0;
        detail = 0;

        rc2 = ngx_oauth_managed.keyset_load(body.data, (int32_t) body.len,
                                            (int32_t) kr->format, &handle,
                                            &detail);
        if (rc2 != NOX_OK) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "auth_jwt: key request \"%V\": the cached key set "
                          "does not load: %s", &kr->uri.value,
                          ngx_oauth_status_text(rc2));
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ks = ngx_oauth_keys_add(kx->set, head.digest, handle,
                                        r->connection->log);
        if (ks == NULL) {
            (void) ngx_oauth_managed.keyset_free(handle);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "auth_jwt: key set \"%V\": parsed %uz bytes in this "
                       "worker", uri, body.len);
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    slot = ngx_array_push(&kx->keysets);
    d = ngx_array_push(&kx->digests);
    if (slot == NULL || d == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *slot = ks->handle;
    ngx_memcpy(d, head.digest, NOX_SHA256_LEN);

    ks->refs++;
    cln->handler = ngx_oauth_keys_unref;
    cln->data = ks;

    kx->step = 0;

    return NGX_OK;
}


/*
 * the head of a set's entry, live or kept (stale=): NGX_OK, NGX_DECLINED
 * (none, or not a set's head), NGX_ERROR
 */

static ngx_int_t
ngx_oauth_keys_head(ngx_http_request_t *r, ngx_oauth_keys_conf_t *kc,
    u_char *set, ngx_oauth_keys_head_t *head, time_t *expires, time_t *keep)
{
    ngx_int_t  rc;
    ngx_str_t  value;

    rc = ngx_oauth_cache_get_kept(r, kc->cache, NGX_OAUTH_KEYS_KIND, set,
                                  &value, sizeof(ngx_oauth_keys_head_t),
                                  expires, keep);
    if (rc != NGX_OK) {
        return rc;
    }

    if (value.len != sizeof(ngx_oauth_keys_head_t)) {
        return NGX_DECLINED;
    }

    ngx_memcpy(head, value.data, sizeof(ngx_oauth_keys_head_t));

    return NGX_OK;
}


/*
 * The two cache keys of a key set (the set, its last fetch): SHA-256 of
 * its uri, wanted on every request.  A worker keeps them for the last uri
 * of a key request without variables and of a discovered jwks_uri (text
 * of the configuration and of the IdP, never of a request); a uri with
 * variables is hashed every time.
 */

static ngx_int_t
ngx_oauth_keys_ids(ngx_http_request_t *r,
    ngx_oauth_key_request_t *kr, ngx_str_t *uri, u_char *set,
    u_char *fetch)
{
    u_char      *copy;
    ngx_uint_t   memo;

    memo = (kr->discovered || kr->uri.lengths == NULL);

    if (memo && kr->memo_uri != NULL && kr->memo_len == uri->len
        && ngx_memcmp(kr->memo_uri, uri->data, uri->len) == 0)
    {
        ngx_memcpy(set, kr->memo_set, NOX_SHA256_LEN);
        ngx_memcpy(fetch, kr->memo_fetch, NOX_SHA256_LEN);
        return NGX_OK;
    }

    if (ngx_oauth_keys_hash(r, "s|", uri, kr->format, set) != NGX_OK
        || ngx_oauth_keys_hash(r, "f|", uri, kr->format, fetch)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (!memo) {
        return NGX_OK;
    }

    copy = ngx_alloc(uri->len + 1, r->connection->log);
    if (copy == NULL) {
        return NGX_OK;              /* no memo: hashed again next time */
    }

    ngx_memcpy(copy, uri->data, uri->len);

    if (kr->memo_uri != NULL) {
        ngx_free(kr->memo_uri);
    }

    kr->memo_uri = copy;
    kr->memo_len = uri->len;
    ngx_memcpy(kr->memo_set, set, NOX_SHA256_LEN);
    ngx_memcpy(kr->memo_fetch, fetch, NOX_SHA256_LEN);

    return NGX_OK;
}


static ngx_int_t
ngx_oauth_keys_hash(ngx_http_request_t *r, const char *prefix,
    ngx_str_t *uri, ngx_int_t format, u_char *hash)
{
    u_char   *key, *p;
    int32_t   rc;

    key = ngx_pnalloc(r->pool, uri->len + NGX_INT_T_LEN + 4);
    if (key == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(key, "%s%i|%V", prefix, format, uri);

    rc = ngx_oauth_managed.sha256(key, (int32_t) (p - key), hash,
                                  NOX_SHA256_LEN);

    return (rc == NOX_OK) ? NGX_OK : NGX_ERROR;
}


/* a refresh the request does not wait for: it keeps the current set */

static void
ngx_oauth_keys_refresh(ngx_http_request_t *r,
    ngx_oauth_keys_conf_t *kc, ngx_oauth_keys_ctx_t *kx,
    ngx_str_t *uri, ngx_oauth_key_request_t *kr)
{
    int32_t                    aux;
    ngx_int_t                  rc;
    ngx_str_t                  value;
    ngx_http_request_t        *sr;
    ngx_oauth_keys_refresh_t  *rf;

    rf = ngx_pcalloc(r->pool, sizeof(ngx_oauth_keys_refresh_t));
    if (rf == NULL) {
        return;
    }

    rf->flight.cache = kc->cache;
    rf->flight.kind = NGX_OAUTH_KEYS_FETCH_KIND;
    rf->flight.lead_ttl = NGX_OAUTH_KEYS_LEAD;
    rf->flight.nowait = 1;
    ngx_memcpy(rf->flight.hash, kx->flight.hash, NOX_SHA256_LEN);

    rc = ngx_oauth_flight_lookup(r, &rf->flight, &value, &aux);

    if (rc != NGX_DECLINED || !rf->flight.leader) {
        /* a fetch runs, ran within miss=, or failed: nothing to do */
        return;
    }

    rf->kc = kc;
    rf->uri = *uri;
    rf->kr = kr;
    ngx_memcpy(rf->set, kx->set, NOX_SHA256_LEN);

    rf->flight.finish = ngx_oauth_keys_refreshed;
    rf->flight.data = rf;

    if (ngx_oauth_flight_get(r, &rf->flight, uri, 1, &sr) != NGX_OK) {
        ngx_oauth_flight_fail(r, &rf->flight, NGX_HTTP_INTERNAL_SERVER_ERROR);
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth_jwt: cannot start the key refresh \"%V\"", uri);
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "auth_jwt: key set \"%V\": refreshing in the background",
                   uri);
}


/*
 * The end of a background refresh: nobody returns to a phase handler for
 * it, so its leader stores (or fails) here (ARCHITECTURE.md)
 */

static void
ngx_oauth_keys_refreshed(ngx_http_request_t *sr, void *data)
{
    ngx_oauth_keys_refresh_t  *rf = data;

    ngx_oauth_keys_store(sr, rf->kc, &rf->flight, &rf->uri,
                                 rf->kr, rf->set);
}


/*
 * A fetch ended (the leader's): a good key set is parsed here (so garbage
 * never replaces a good set), stored for its refresh interval and kept in
 * this worker; the fetch entry then holds off the next fetch for miss=.
 * A failure keeps the last good set (logged at warn, once per failure),
 * and also holds off the next fetch for miss= while that set is usable.
 */

/*
 * A key set (or metadata) entry may take at most half of the auth_jwt_keys
 * zone: a larger one would evict every other issuer's keys and might still
 * not fit.  It is treated as an unusable answer (not cached: the last good
 * set stays in use within stale=, else the request fails with 500), never
 * used uncached.
 */

static ngx_int_t
ngx_oauth_keys_fits(ngx_http_request_t *r,
    ngx_oauth_keys_conf_t *kc, ngx_str_t *uri, ngx_str_t *value)
{
    size_t  limit;

    limit = kc->cache->zone->shm.size / 2;

    if (value->len <= limit) {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "auth_jwt: key set \"%V\" of %uz bytes does not fit the "
                  "key zone \"%V\" of %uz bytes (an entry may take %uz): "
                  "not cached, raise \"auth_jwt_key_zone\"", uri,
                  value->len, &kc->cache->zone->shm.name,
                  kc->cache->zone->shm.size, limit);

    return NGX_DECLINED;
}


static void
ngx_oauth_keys_store(ngx_http_request_t *r,
    ngx_oauth_keys_conf_t *kc, ngx_oauth_flight_t *f,
    ngx_str_t *uri, ngx_oauth_key_request_t *kr, u_char *set)
{
    u_char                *p;
    time_t                 ttl, expires, keep, now;
    int32_t                rc, detail;
    int64_t                handle;
    ngx_str_t              value, empty, body;
    ngx_uint_t             oversized;
    ngx_oauth_keys_head_t  head;

    handle = 0;
    oversized = 0;
    now = ngx_time();
    ngx_str_null(&empty);

    if (ngx_oauth_flight_answer(r, f, "auth_jwt", uri) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth_jwt: key request \"%V\" failed: no whole "
                      "answer", uri);
        goto failed;
    }

    if (f->status != NGX_HTTP_OK || f->encoded
        || f->body.len > NOX_MAX_KEYSET)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth_jwt: key request \"%V\" failed: status %ui, "
                      "%uz bytes%s", uri, f->status, f->body.len,
                      f->encoded ? ", encoded (Content-Encoding)" : "");
        goto failed;
    }

    detail = 0;
    body = f->body;

    if (kr->format == NGX_OAUTH_KEYS_DISCOVERY) {

        /* what is kept is the subrequest uri of the jwks_uri */

        if (ngx_oauth_keys_discovered(r, kr, uri, &f->body, &body)
            != NGX_OK)
        {
            goto failed;
        }

    } else {
        rc = ngx_oauth_managed.keyset_load(f->body.data,
                                           (int32_t) f->body.len,
                                           (int32_t) kr->format, &handle,
                                           &detail);
        if (rc != NOX_OK) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "auth_jwt: key request \"%V\" returned unusable "
                          "keys: %s", uri, ngx_oauth_status_text(rc));
            handle = 0;
            goto failed;
        }
    }

    head.fetched = now;

    if (ngx_oauth_managed.sha256(body.data, (int32_t) body.len,
                                 head.digest, NOX_SHA256_LEN)
        != NOX_OK)
    {
        goto failed;
    }

    if (kc->ttl != NGX_CONF_UNSET) {
        ttl = kc->ttl;

    } else {
        ttl = (f->max_age < 0) ? kc->min : f->max_age;
        ttl = ngx_max(ttl, kc->min);
        ttl = ngx_min(ttl, kc->max);
    }

    ttl = ngx_max(ttl, 1);

    value.len = sizeof(ngx_oauth_keys_head_t) + body.len;
    value.data = ngx_pnalloc(r->pool, value.len);
    if (value.data == NULL) {
        goto failed;
    }

    p = ngx_cpymem(value.data, &head, sizeof(ngx_oauth_keys_head_t));
    ngx_memcpy(p, body.data, body.len);

    if (ngx_oauth_keys_fits(r, kc, uri, &value) != NGX_OK) {
        oversized = 1;
        goto failed;
    }

    /* the entry's aux: its number of keys, for oauth_status */

    ngx_oauth_cache_put(r, kc->cache, NGX_OAUTH_KEYS_KIND, set,
                        &value, ngx_oauth_keys_count(handle), ttl);
    ngx_oauth_flight_store(r, f, &empty, 0, kc->miss);
    ngx_oauth_metrics_keyset(r, set, ngx_oauth_keys_label(r, kr, uri),
                             NGX_OAUTH_KS_FETCH_OK);

    if (handle
        && ngx_oauth_keys_find(set, head.digest) == NULL
        && ngx_oauth_keys_add(set, head.digest, handle,
                                      r->connection->log)
           != NULL)
    {
        handle = 0;
    }

    if (handle) {
        (void) ngx_oauth_managed.keyset_free(handle);
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "auth_jwt: key set \"%V\": fetched %uz bytes, max-age %T, "
                   "refresh in %T s", uri, f->body.len, f->max_age, ttl);

    return;

failed:

    if (handle) {
        (void) ngx_oauth_managed.keyset_free(handle);
    }

    ngx_oauth_metrics_keyset(r, set, ngx_oauth_keys_label(r, kr, uri),
                             NGX_OAUTH_KS_FETCH_ERROR);

    if (ngx_oauth_keys_head(r, kc, set, &head, &expires, &keep) == NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "auth_jwt: key set \"%V\" not refreshed: using the "
                      "one fetched %T s ago, usable for %T s more; next "
                      "try in %T s", uri, now - (time_t) head.fetched,
                      keep - now, kc->miss);

        ngx_oauth_flight_store(r, f, &empty, 0, kc->miss);
        return;
    }

    if (oversized) {
        /*
         * the IdP answered, and will answer the same: the fetch counts for
         * miss=, so requests fail without fetching it again until then
         */
        ngx_oauth_flight_store(r, f, &empty, 0, kc->miss);
        return;
    }

    ngx_oauth_flight_fail(r, f, NGX_HTTP_INTERNAL_SERVER_ERROR);
}


/*
 * A metadata document (auth_jwt_discovery): its "issuer" must be the
 * configured one (OpenID Connect Discovery 1.0 section 4.3, RFC 8414
 * section 3.3), its "jwks_uri" an https:// or http:// URL on the issuer's
 * origin; *jwks is then the subrequest uri reaching it: the route to the
 * origin followed by the URL's path and query.
 */

static ngx_int_t
ngx_oauth_keys_discovered(ngx_http_request_t *r,
    ngx_oauth_key_request_t *kr, ngx_str_t *uri, ngx_str_t *body,
    ngx_str_t *jwks)
{
    u_char     *p;
    int32_t     rc;
    ngx_str_t   name, issuer, url;

    rc = ngx_oauth_managed.json_check(body->data, (int32_t) body->len);
    if (rc != NOX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth_jwt: discovery \"%V\": the metadata \"%V\" is "
                      "not a JSON object: %s", &kr->issuer, uri,
                      ngx_oauth_status_text(rc));
        return NGX_DECLINED;
    }

    ngx_str_set(&name, "issuer");

    if (ngx_oauth_json_get(r, body, &name, NOX_PATH_NAME, NULL, NULL,
                           &issuer)
        != NGX_OK
        || issuer.len != kr->issuer.len
        || ngx_strncmp(issuer.data, kr->issuer.data, issuer.len) != 0)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth_jwt: discovery \"%V\": the metadata names "
                      "another issuer, or none", &kr->issuer);
        return NGX_DECLINED;
    }

    ngx_str_set(&name, "jwks_uri");

    if (ngx_oauth_json_get(r, body, &name, NOX_PATH_NAME, NULL, NULL, &url)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth_jwt: discovery \"%V\": the metadata has no "
                      "\"jwks_uri\"", &kr->issuer);
        return NGX_DECLINED;
    }

    /*
     * only the issuer's origin is routed (a location generated, or the
     * operator's uri=): a jwks_uri elsewhere cannot be reached
     */

    if (url.len <= kr->origin.len
        || ngx_strncasecmp(url.data, kr->origin.data, kr->origin.len) != 0
        || url.data[kr->origin.len] != '/')
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth_jwt: discovery \"%V\": the jwks_uri \"%*s\" is "
                      "not on the issuer's origin \"%V\": refused",
                      &kr->issuer, ngx_min(url.len, 256), url.data,
                      &kr->origin);
        return NGX_DECLINED;
    }

    for (p = url.data + kr->origin.len; p < url.data + url.len; p++) {
        if (*p <= ' ' || *p == 0x7f || *p == '#') {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "auth_jwt: discovery \"%V\": invalid character in "
                          "the jwks_uri", &kr->issuer);
            return NGX_DECLINED;
        }
    }

    jwks->len = kr->route.len + url.len - kr->origin.len;
    jwks->data = ngx_pnalloc(r->pool, jwks->len);
    if (jwks->data == NULL) {
        return NGX_DECLINED;
    }

    p = ngx_cpymem(jwks->data, kr->route.data, kr->route.len);
    ngx_memcpy(p, url.data + kr->origin.len, url.len - kr->origin.len);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "auth_jwt: discovery \"%V\": jwks_uri through \"%V\"",
                   &kr->issuer, jwks);

    return NGX_OK;
}


/* ---- the parsed key sets of this worker -------------------------------- */

static ngx_oauth_keys_set_t *
ngx_oauth_keys_find(u_char *set, u_char *digest)
{
    ngx_queue_t           *q;
    ngx_oauth_keys_set_t  *ks;

    if (ngx_oauth_keys_sets.next == NULL) {
        ngx_queue_init(&ngx_oauth_keys_sets);
    }

    for (q = ngx_queue_head(&ngx_oauth_keys_sets);
         q != ngx_queue_sentinel(&ngx_oauth_keys_sets);
         q = ngx_queue_next(q))
    {
        ks = ngx_queue_data(q, ngx_oauth_keys_set_t, queue);

        if (!ks->replaced
            && ngx_memcmp(ks->set, set, NOX_SHA256_LEN) == 0
            && ngx_memcmp(ks->digest, digest, NOX_SHA256_LEN) == 0)
        {
            ngx_queue_remove(q);
            ngx_queue_insert_head(&ngx_oauth_keys_sets, q);
            return ks;
        }
    }

    return NULL;
}


/* older versions of the set are replaced; the least recently used go */

static ngx_oauth_keys_set_t *
ngx_oauth_keys_add(u_char *set, u_char *digest, int64_t handle,
    ngx_log_t *log)
{
    ngx_queue_t           *q, *prev;
    ngx_oauth_keys_set_t  *ks;

    if (ngx_oauth_keys_sets.next == NULL) {
        ngx_queue_init(&ngx_oauth_keys_sets);
    }

    for (q = ngx_queue_last(&ngx_oauth_keys_sets);
         q != ngx_queue_sentinel(&ngx_oauth_keys_sets);
         q = prev)
    {
        prev = ngx_queue_prev(q);
        ks = ngx_queue_data(q, ngx_oauth_keys_set_t, queue);

        if (ngx_memcmp(ks->set, set, NOX_SHA256_LEN) == 0) {
            ks->replaced = 1;

        } else if (ngx_oauth_keys_nsets
                   < NGX_OAUTH_KEYS_WORKER_MAX)
        {
            continue;
        }

        if (ks->refs == 0) {
            ngx_queue_remove(q);
            (void) ngx_oauth_managed.keyset_free(ks->handle);
            ngx_free(ks);
            ngx_oauth_keys_nsets--;
        }
    }

    ks = ngx_alloc(sizeof(ngx_oauth_keys_set_t), log);
    if (ks == NULL) {
        return NULL;
    }

    ngx_memcpy(ks->set, set, NOX_SHA256_LEN);
    ngx_memcpy(ks->digest, digest, NOX_SHA256_LEN);
    ks->handle = handle;
    ks->refs = 0;
    ks->replaced = 0;

    ngx_queue_insert_head(&ngx_oauth_keys_sets, &ks->queue);
    ngx_oauth_keys_nsets++;

    return ks;
}


static void
ngx_oauth_keys_unref(void *data)
{
    ngx_oauth_keys_set_t  *ks = data;

    if (--ks->refs == 0 && ks->replaced) {
        ngx_queue_remove(&ks->queue);
        (void) ngx_oauth_managed.keyset_free(ks->handle);
        ngx_free(ks);
        ngx_oauth_keys_nsets--;
    }
}


/* ---- the key sets in oauth_status (ngx_oauth_metrics.c) ---------------- */

/*
 * A key set's label: its uri; the issuer of a discovery document; the
 * jwks_uri (origin and path) of a discovered set, not its route
 */

static ngx_str_t *
ngx_oauth_keys_label(ngx_http_request_t *r,
    ngx_oauth_key_request_t *kr, ngx_str_t *uri)
{
    u_char     *p;
    ngx_str_t  *label;

    if (kr->format == NGX_OAUTH_KEYS_DISCOVERY) {
        return &kr->issuer;
    }

    if (!kr->discovered || uri->len < kr->route.len
        || ngx_strncmp(uri->data, kr->route.data, kr->route.len) != 0)
    {
        return uri;
    }

    label = ngx_palloc(r->pool, sizeof(ngx_str_t));
    p = ngx_pnalloc(r->pool, kr->origin.len + uri->len - kr->route.len);

    if (label == NULL || p == NULL) {
        return uri;
    }

    label->data = p;
    p = ngx_cpymem(p, kr->origin.data, kr->origin.len);
    p = ngx_cpymem(p, uri->data + kr->route.len, uri->len - kr->route.len);
    label->len = p - label->data;

    return label;
}


/* the keys of a parsed set (0: none, or a discovery document) */

static int32_t
ngx_oauth_keys_count(int64_t handle)
{
    int32_t  verify, decrypt;

    verify = 0;
    decrypt = 0;

    if (handle == 0
        || ngx_oauth_managed.keyset_count(handle, &verify, &decrypt)
           != NOX_OK)
    {
        return 0;
    }

    return verify + decrypt;
}


/* ---- configuration ----------------------------------------------------- */

void
ngx_oauth_keys_conf_init(ngx_oauth_keys_conf_t *kc)
{
    /*
     * set by ngx_pcalloc() of the caller's conf:
     *
     *     kc->requests = NULL;
     *     kc->cache = NULL;
     */

    kc->ttl = NGX_CONF_UNSET;
    kc->min = NGX_CONF_UNSET;
    kc->max = NGX_CONF_UNSET;
    kc->stale = NGX_CONF_UNSET;
    kc->miss = NGX_CONF_UNSET;
}


/* the parent's key requests come first */

char *
ngx_oauth_keys_merge(ngx_conf_t *cf, ngx_oauth_keys_conf_t *conf,
    ngx_oauth_keys_conf_t *prev)
{
    ngx_conf_merge_sec_value(conf->ttl, prev->ttl, NGX_CONF_UNSET);
    ngx_conf_merge_sec_value(conf->min, prev->min, NGX_OAUTH_KEYS_MIN);
    ngx_conf_merge_sec_value(conf->max, prev->max, NGX_OAUTH_KEYS_MAX);
    ngx_conf_merge_sec_value(conf->stale, prev->stale, NGX_OAUTH_KEYS_STALE);
    ngx_conf_merge_sec_value(conf->miss, prev->miss, NGX_OAUTH_KEYS_MISS);

    if (conf->max < conf->min) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"auth_jwt_key_refresh\": max= %T is less "
                           "than min= %T", conf->max, conf->min);
        return NGX_CONF_ERROR;
    }

    if (ngx_oauth_merge_array(cf, &conf->requests, prev->requests,
                              sizeof(ngx_oauth_key_request_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


char *
ngx_oauth_keys_request_conf(ngx_conf_t *cf, ngx_oauth_keys_conf_t *kc,
    ngx_str_t *uri, ngx_int_t format)
{
    ngx_http_complex_value_t  *cv;
    ngx_oauth_key_request_t   *kr;

    if (kc->requests == NULL) {
        kc->requests = ngx_array_create(cf->pool, 2,
                                        sizeof(ngx_oauth_key_request_t));
        if (kc->requests == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    kr = ngx_array_push(kc->requests);
    if (kr == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(kr, sizeof(ngx_oauth_key_request_t));

    kr->format = format;

    cv = ngx_oauth_complex_value(cf, uri);
    if (cv == NULL) {
        return NGX_CONF_ERROR;
    }

    kr->uri = *cv;

    return NGX_CONF_OK;
}


ngx_str_t *
ngx_oauth_keys_issuer(ngx_oauth_keys_conf_t *kc)
{
    ngx_uint_t                i;
    ngx_oauth_key_request_t  *kr;

    if (kc->requests == NULL) {
        return NULL;
    }

    kr = kc->requests->elts;

    for (i = 0; i < kc->requests->nelts; i++) {
        if (kr[i].format == NGX_OAUTH_KEYS_DISCOVERY) {
            return &kr[i].issuer;
        }
    }

    return NULL;
}


ngx_uint_t
ngx_oauth_keys_discoveries(ngx_oauth_keys_conf_t *kc)
{
    ngx_uint_t                i, n;
    ngx_oauth_key_request_t  *kr;

    if (kc->requests == NULL) {
        return 0;
    }

    kr = kc->requests->elts;
    n = 0;

    for (i = 0; i < kc->requests->nelts; i++) {
        n += (kr[i].format == NGX_OAUTH_KEYS_DISCOVERY);
    }

    return n;
}


/* key requests share the key set zone unless auth_jwt_key_cache 0 */

ngx_int_t
ngx_oauth_keys_zone(ngx_conf_t *cf, ngx_oauth_keys_conf_t *kc, void *tag,
    size_t size)
{
    ngx_str_t  name;

    kc->cache = NULL;

    if (kc->requests == NULL || kc->ttl == 0) {
        return NGX_OK;
    }

    ngx_str_set(&name, NGX_OAUTH_KEYS_ZONE);

    kc->cache = ngx_oauth_cache_add(cf, tag, "auth_jwt", &name,
                                    (size == NGX_CONF_UNSET_SIZE)
                                    ? NGX_OAUTH_KEYS_ZONE_SIZE
                                    : (ssize_t) size,
                                    NGX_OAUTH_CACHE_TIME_MAX);
    if (kc->cache == NULL) {
        return NGX_ERROR;
    }

    kc->cache->stale = kc->stale;

    return NGX_OK;
}


/*
 * auth_jwt_discovery issuer|metadata-url [metadata=openid|oauth]
 *     [uri=/location/] [ssl_verify=on|off] [http_timeout=time]
 *     [ca_file=path] [cert=path key=path]
 *
 * Two key requests: the metadata document, then the key set its jwks_uri
 * names (the JWT module adds the claim rule "iss" eq issuer).  Both
 * fetches go to the issuer's origin: through a generated prefix location,
 * or the operator's uri= (a location that proxies to the origin's "/").
 */

char *
ngx_oauth_keys_discovery_conf(ngx_conf_t *cf, ngx_oauth_keys_conf_t *kc,
    ngx_str_t *issuer)
{
    u_char                    *p, *host, *end, *wk;
    ngx_str_t                 *value, name, val, meta, path, uri;
    ngx_str_t                  route_uri;
    ngx_uint_t                 i, oauth;
    ngx_oauth_route_t          rt;
    ngx_http_complex_value_t  *cv;
    ngx_oauth_key_request_t   *kr, *jk;

    static ngx_str_t  openid =
                          ngx_string("/.well-known/openid-configuration");
    static ngx_str_t  oas =
                          ngx_string("/.well-known/oauth-authorization-server");

    value = cf->args->elts;

    ngx_memzero(&rt, sizeof(ngx_oauth_route_t));
    rt.verify = 1;
    rt.timeout = NGX_OAUTH_KEYS_DISCOVERY_TIMEOUT;
    ngx_str_null(&route_uri);
    oauth = 0;

    for (i = 2; i < cf->args->nelts; i++) {
        p = (u_char *) ngx_strlchr(value[i].data, value[i].data + value[i].len,
                                   '=');
        if (p == NULL) {
            goto invalid;
        }

        name.len = p - value[i].data;
        name.data = ngx_pnalloc(cf->pool, name.len + 1);
        if (name.data == NULL) {
            return NGX_CONF_ERROR;
        }

        (void) ngx_cpystrn(name.data, value[i].data, name.len + 1);

        val.data = p + 1;
        val.len = value[i].data + value[i].len - val.data;

        if (ngx_strcmp(name.data, "uri") == 0) {
            if (val.len < 2 || val.data[0] != '/') {
                goto invalid;
            }

            route_uri = val;

            /* "/_idp/" and "/_idp" reach the same paths */

            if (route_uri.data[route_uri.len - 1] == '/') {
                route_uri.len--;
            }

            continue;
        }

        if (ngx_strcmp(name.data, "metadata") == 0) {
            if (val.len == 6 && ngx_strncmp(val.data, "openid", 6) == 0) {
                oauth = 0;

            } else if (val.len == 5 && ngx_strncmp(val.data, "oauth", 5) == 0)
            {
                oauth = 1;

            } else {
                goto invalid;
            }

            continue;
        }

        /* ngx_oauth_route_option compares NUL-terminated strings */

        p = ngx_pnalloc(cf->pool, val.len + 1);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        (void) ngx_cpystrn(p, val.data, val.len + 1);
        val.data = p;

        switch (ngx_oauth_route_option(cf, &rt, &name, &val)) {
        case NGX_OK:
            continue;
        case NGX_DECLINED:
            goto invalid;
        default:
            return NGX_CONF_ERROR;
        }
    }

    /* the origin: scheme://host[:port], then the issuer's path */

    uri = value[1];

    if (uri.len > 8 && ngx_strncasecmp(uri.data, (u_char *) "https://", 8) == 0)
    {
        host = uri.data + 8;

    } else if (uri.len > 7
               && ngx_strncasecmp(uri.data, (u_char *) "http://", 7) == 0)
    {
        host = uri.data + 7;

    } else {
        return "needs an http:// or https:// issuer or metadata URL";
    }

    end = uri.data + uri.len;

    for (p = host; p < end; p++) {
        if (*p <= ' ' || *p == 0x7f || ngx_strchr("\"\\${};?#", *p)) {
            return "has an invalid character in the URL (no query, no "
                   "fragment, no variables)";
        }
    }

    p = ngx_strlchr(host, end, '/');
    if (p == NULL) {
        p = end;
    }

    if (p == host) {
        return "has a URL without a host";
    }

    kr = NULL;

    if (kc->requests) {
        kr = kc->requests->elts;

        for (i = 0; i < kc->requests->nelts; i++) {
            if (kr[i].format == NGX_OAUTH_KEYS_DISCOVERY) {
                return "is duplicate: one issuer per location";
            }
        }
    }

    kc->requests = kc->requests ? kc->requests
                         : ngx_array_create(cf->pool, 2,
                                 sizeof(ngx_oauth_key_request_t));
    if (kc->requests == NULL) {
        return NGX_CONF_ERROR;
    }

    kr = ngx_array_push_n(kc->requests, 2);
    if (kr == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(kr, 2 * sizeof(ngx_oauth_key_request_t));

    kr->format = NGX_OAUTH_KEYS_DISCOVERY;
    kr->origin.data = uri.data;
    kr->origin.len = p - uri.data;

    path.data = p;
    path.len = end - p;

    /* a metadata URL names its issuer; an issuer names its metadata URL */

    wk = ngx_strlcasestrn(path.data, path.data + path.len, openid.data,
                          openid.len - 1);

    if (wk && wk + openid.len == end) {
        kr->issuer.data = uri.data;
        kr->issuer.len = wk - uri.data;
        meta = path;

    } else if ((wk = ngx_strlcasestrn(path.data, path.data + path.len,
                                      oas.data, oas.len - 1))
               == path.data)
    {
        kr->issuer.len = kr->origin.len + path.len - oas.len;
        kr->issuer.data = ngx_pnalloc(cf->pool, kr->issuer.len);
        if (kr->issuer.data == NULL) {
            return NGX_CONF_ERROR;
        }

        p = ngx_cpymem(kr->issuer.data, kr->origin.data, kr->origin.len);
        ngx_memcpy(p, path.data + oas.len, path.len - oas.len);
        meta = path;

    } else {
        kr->issuer = uri;

        if (path.len && path.data[path.len - 1] == '/') {
            path.len--;
        }

        meta.len = path.len + oas.len;
        meta.data = ngx_pnalloc(cf->pool, meta.len);
        if (meta.data == NULL) {
            return NGX_CONF_ERROR;
        }

        if (oauth) {
            /* RFC 8414 section 3.1: the well-known part goes first */
            p = ngx_cpymem(meta.data, oas.data, oas.len);
            p = ngx_cpymem(p, path.data, path.len);

        } else {
            /* OpenID Connect Discovery 1.0 section 4: appended */
            p = ngx_cpymem(meta.data, path.data, path.len);
            p = ngx_cpymem(p, openid.data, openid.len);
        }

        meta.len = p - meta.data;
    }

    if (kr->issuer.len < kr->origin.len) {
        return "has no issuer";
    }

    /* the route to the origin's "/" */

    if (route_uri.len) {
        kr->route = route_uri;

    } else {
        rt.prefix = 1;
        rt.url.len = kr->origin.len + 1;
        rt.url.data = ngx_pnalloc(cf->pool, rt.url.len);
        if (rt.url.data == NULL) {
            return NGX_CONF_ERROR;
        }

        p = ngx_cpymem(rt.url.data, kr->origin.data, kr->origin.len);
        *p = '/';

        if (ngx_oauth_route_conf(cf, &rt, NGX_OAUTH_KEYS_DISCOVERY_PREFIX)
            != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }

        kr->route = rt.uri;
    }

    /* the metadata request: route + path, a constant */

    uri.len = kr->route.len + meta.len;
    uri.data = ngx_pnalloc(cf->pool, uri.len);
    if (uri.data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_cpymem(uri.data, kr->route.data, kr->route.len);
    ngx_memcpy(p, meta.data, meta.len);

    cv = ngx_oauth_complex_value(cf, &uri);
    if (cv == NULL) {
        return NGX_CONF_ERROR;
    }

    kr->uri = *cv;

    /* the key set: its uri comes from the metadata */

    jk = &kr[1];
    jk->format = NOX_KEYS_JWKS;
    jk->discovered = 1;
    jk->issuer = kr->issuer;
    jk->origin = kr->origin;
    jk->route = kr->route;

    jk->uri.value.len = sizeof("jwks_uri of ") - 1 + kr->issuer.len;
    jk->uri.value.data = ngx_pnalloc(cf->pool, jk->uri.value.len);
    if (jk->uri.value.data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_cpymem(jk->uri.value.data, "jwks_uri of ",
                   sizeof("jwks_uri of ") - 1);
    ngx_memcpy(p, kr->issuer.data, kr->issuer.len);

    *issuer = kr->issuer;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%V\": invalid parameter \"%V\"", &value[0],
                       &value[i]);
    return NGX_CONF_ERROR;
}


/*
 * auth_jwt_key_zone size (http{} only): the size of the one auth_jwt_keys
 * zone every key request, discovery and provider shares; at least
 * NGX_OAUTH_KEYS_ZONE_PAGES pages
 */

char *
ngx_oauth_keys_zone_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    size_t     *zone_size;
    ssize_t     size;
    ngx_str_t  *value;

    zone_size = (size_t *) (p + cmd->offset);

    if (*zone_size != NGX_CONF_UNSET_SIZE) {
        return "is duplicate";
    }

    value = cf->args->elts;

    size = ngx_parse_size(&value[1]);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": invalid size \"%V\"", &value[0],
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    if (size < (ssize_t) (NGX_OAUTH_KEYS_ZONE_PAGES * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": size \"%V\" is too small, at least "
                           "%uik (%d pages) expected", &value[0], &value[1],
                           NGX_OAUTH_KEYS_ZONE_PAGES * ngx_pagesize
                           / 1024,
                           NGX_OAUTH_KEYS_ZONE_PAGES);
        return NGX_CONF_ERROR;
    }

    *zone_size = (size_t) size;

    return NGX_CONF_OK;
}


/* auth_jwt_key_refresh [min=time] [max=time] [stale=time] [miss=time] */

char *
ngx_oauth_keys_refresh_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    size_t                  len;
    time_t                 *t, v;
    ngx_str_t              *value, s;
    ngx_uint_t              i, n;
    ngx_oauth_keys_conf_t  *kc;

    static const char  *names[] = { "min=", "max=", "stale=", "miss=" };

    kc = (ngx_oauth_keys_conf_t *) (p + cmd->offset);

    if (kc->min != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    kc->min = NGX_OAUTH_KEYS_MIN;
    kc->max = NGX_OAUTH_KEYS_MAX;
    kc->stale = NGX_OAUTH_KEYS_STALE;
    kc->miss = NGX_OAUTH_KEYS_MISS;

    for (i = 1; i < cf->args->nelts; i++) {

        for (n = 0; n < 4; n++) {
            len = ngx_strlen(names[n]);

            if (value[i].len > len
                && ngx_strncmp(value[i].data, names[n], len) == 0)
            {
                break;
            }
        }

        switch (n) {
        case 0:
            t = &kc->min;
            break;
        case 1:
            t = &kc->max;
            break;
        case 2:
            t = &kc->stale;
            break;
        case 3:
            t = &kc->miss;
            break;
        default:
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": invalid parameter \"%V\"",
                               &value[0], &value[i]);
            return NGX_CONF_ERROR;
        }

        s.data = value[i].data + len;
        s.len = value[i].len - len;

        v = ngx_parse_time(&s, 1);

        if (v == (time_t) NGX_ERROR || v > NGX_OAUTH_CACHE_TIME_MAX
            || (v == 0 && n != 2))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": invalid \"%V\": a time of at least "
                               "1s (stale=: 0s) and at most 1 year expected",
                               &value[0], &value[i]);
            return NGX_CONF_ERROR;
        }

        *t = v;
    }

    return NGX_CONF_OK;
}
