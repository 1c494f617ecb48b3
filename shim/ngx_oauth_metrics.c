/*
 * NginxOAuth shim: counters for operators (ngx_oauth_metrics.h).
 *
 * One shared zone ("oauth_metrics", oauth_metrics_zone) holds an array of
 * fixed-size slots.  A slot is a name (a location, a cache zone, an IdP
 * endpoint) and its counters.  Slots are handed out in order under the
 * zone's mutex and never freed: a reader scans the published ones without
 * the mutex (a slot's name is written before its "ready" flag, the flag
 * before the count of used slots).  Each worker finds a name's slot once
 * and keeps its address (in the location's configuration, in the cache
 * zone's object); counting is one ngx_atomic_fetch_add.  When every slot is
 * taken, a name counts in the "(other)" slot of its kind.  A reload with
 * the same zone size keeps the zone, so the counters, and names find their
 * slots again.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_oauth_core.h"
#include "ngx_oauth_cache.h"
#include "ngx_oauth_metrics.h"


#define NGX_OAUTH_METRICS_ZONE_NAME     "oauth_metrics"
#define NGX_OAUTH_METRICS_ZONE_SIZE     (256 * 1024)
#define NGX_OAUTH_METRICS_NAME_MAX      224
#define NGX_OAUTH_METRICS_COUNTERS      48
#define NGX_OAUTH_METRICS_OTHER         "(other)"

/* slot kinds; slot kind - 1 is the kind's "(other)" slot */
#define NGX_OAUTH_METRICS_LOCATION      1
#define NGX_OAUTH_METRICS_CACHE         2
#define NGX_OAUTH_METRICS_IDP           3
#define NGX_OAUTH_METRICS_REDIS         4
#define NGX_OAUTH_METRICS_KEYSET        5
#define NGX_OAUTH_METRICS_KINDS         NGX_OAUTH_METRICS_KEYSET

/* a location slot: per module, [0] allowed, [reason] rejected */
#define NGX_OAUTH_METRICS_MODULE_STRIDE 16

/* an IdP slot */
#define NGX_OAUTH_I_OK                  0
#define NGX_OAUTH_I_HTTP_ERROR          1
#define NGX_OAUTH_I_UNREACHABLE         2
#define NGX_OAUTH_I_UNUSABLE            3
#define NGX_OAUTH_I_MAX                 4
#define NGX_OAUTH_I_BUCKET              4     /* .. + buckets (+Inf last) */
#define NGX_OAUTH_I_BUCKETS             12
#define NGX_OAUTH_I_SUM_MS              (NGX_OAUTH_I_BUCKET \
                                         + NGX_OAUTH_I_BUCKETS)

/* a Redis slot (oauth_redis server): lookups, stores, errors, latency */
#define NGX_OAUTH_RS_LOOKUP             0     /* + NGX_OAUTH_RL_* */
#define NGX_OAUTH_RS_LOOKUPS            4
#define NGX_OAUTH_RS_STORE              4     /* ok, error */
#define NGX_OAUTH_RS_ERROR              6     /* + GET 0 / SET 4, + RE - 1 */
#define NGX_OAUTH_RS_BUCKET             14
#define NGX_OAUTH_RS_SUM_MS             (NGX_OAUTH_RS_BUCKET \
                                         + NGX_OAUTH_I_BUCKETS)
#define NGX_OAUTH_RS_ABANDONED          (NGX_OAUTH_RS_SUM_MS + 1)
                                              /* after the rest: a kept
                                                 zone keeps its layout */
#define ngx_oauth_metrics_rs_lookup(k)  ((k) < NGX_OAUTH_RS_LOOKUPS         \
                                         ? NGX_OAUTH_RS_LOOKUP + (k)        \
                                         : NGX_OAUTH_RS_ABANDONED)

/* a key set slot: its name is the entry's key (32 bytes), then its label */
#define NGX_OAUTH_METRICS_KEYS_KIND     'k'   /* ngx_http_oauth_jwt_module.c:
                                                 NGX_HTTP_AUTH_JWT_KEYS_KIND */
#define NGX_OAUTH_METRICS_KEYS_HEAD     (8 + 32)  /* fetched, digest */

/* the result of the request so far ($oauth_result) */
#define NGX_OAUTH_RESULT_NONE           0
#define NGX_OAUTH_RESULT_ALLOWED        1
#define NGX_OAUTH_RESULT_REJECTED       2

#define NGX_OAUTH_METRICS_OUT_CHUNK     16384
#define NGX_OAUTH_METRICS_LINE_MAX      (160 + 2 * NGX_OAUTH_METRICS_NAME_MAX \
                                         + 2 * NGX_OAUTH_METRICS_NAME_MAX)


typedef struct {
    ngx_atomic_t                 c[NGX_OAUTH_METRICS_COUNTERS];
    ngx_atomic_t                 ready;
    uint16_t                     kind;
    uint16_t                     split;     /* length of the first label */
    uint16_t                     len;
    uint16_t                     reserved;
    u_char                       name[NGX_OAUTH_METRICS_NAME_MAX];
} ngx_oauth_metrics_slot_t;


typedef struct {
    ngx_atomic_t                 used;
    ngx_atomic_t                 overflow;  /* counts in an "(other)" slot */
    ngx_uint_t                   max;
    ngx_oauth_metrics_slot_t     slot[1];
} ngx_oauth_metrics_shctx_t;


typedef struct {
    ngx_oauth_metrics_shctx_t   *sh;
    ngx_slab_pool_t             *shpool;
} ngx_oauth_metrics_zone_t;


typedef struct {
    ngx_shm_zone_t              *zone;      /* NULL: none (yet, or off) */
    ssize_t                      size;      /* NGX_CONF_UNSET: implicit */
    ngx_array_t                  caches;    /* of ngx_shm_zone_t * */
    ngx_array_t                  redis;     /* of ngx_str_t: oauth_redis */
    ngx_str_t                    status_file;
    ngx_uint_t                   status_line;
} ngx_oauth_metrics_main_conf_t;


typedef struct {
    ngx_flag_t                   enable;    /* oauth_metrics */
    ngx_str_t                    label;     /* oauth_metrics_label */
    ngx_str_t                    location;  /* the location's own name */
    ngx_str_t                    key;       /* server \0-less + location */
    ngx_uint_t                   split;
    ngx_oauth_metrics_slot_t    *slot;      /* this worker's, found when the
                                               location first counts */
} ngx_oauth_metrics_loc_conf_t;


/* the decisions of one request, kept on r->main (survives redirects) */

typedef struct {
    ngx_uint_t                   result;    /* NGX_OAUTH_RESULT_* */
    ngx_uint_t                   reason;
    u_char                       hint[NGX_OAUTH_M_MAX];
} ngx_oauth_metrics_req_t;


typedef struct {
    ngx_http_request_t          *r;
    ngx_chain_t                 *first;
    ngx_chain_t                **last;
    ngx_buf_t                   *b;
    ngx_uint_t                   failed;
} ngx_oauth_metrics_out_t;


static ngx_int_t ngx_oauth_metrics_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_oauth_metrics_postconfiguration(ngx_conf_t *cf);
static void *ngx_oauth_metrics_create_main_conf(ngx_conf_t *cf);
static void *ngx_oauth_metrics_create_loc_conf(ngx_conf_t *cf);
static char *ngx_oauth_metrics_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_oauth_metrics_zone_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_oauth_metrics_label_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_oauth_metrics_status_conf(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_oauth_metrics_add_zone(ngx_conf_t *cf,
    ngx_oauth_metrics_main_conf_t *mmcf, ssize_t size);
static ngx_int_t ngx_oauth_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_oauth_metrics_fill(ngx_oauth_metrics_slot_t *s,
    ngx_uint_t kind, u_char *name, size_t len, size_t split);
static ngx_oauth_metrics_zone_t *ngx_oauth_metrics_get_zone(
    ngx_http_request_t *r);
static ngx_oauth_metrics_slot_t *ngx_oauth_metrics_find(
    ngx_oauth_metrics_shctx_t *sh, ngx_uint_t kind, u_char *name, size_t len,
    size_t split);
static ngx_oauth_metrics_slot_t *ngx_oauth_metrics_slot(
    ngx_oauth_metrics_zone_t *mz, ngx_uint_t kind, u_char *name, size_t len,
    size_t split);
static ngx_oauth_metrics_req_t *ngx_oauth_metrics_req(ngx_http_request_t *r,
    ngx_uint_t create);
static void ngx_oauth_metrics_req_cleanup(void *data);
static void ngx_oauth_metrics_count(ngx_http_request_t *r, ngx_uint_t m,
    ngx_uint_t index);
static ngx_int_t ngx_oauth_metrics_status_handler(ngx_http_request_t *r);
static u_char *ngx_oauth_metrics_reserve(ngx_oauth_metrics_out_t *out,
    size_t size);
static u_char *ngx_oauth_metrics_escape(u_char *p, u_char *src, size_t len);
static u_char *ngx_oauth_metrics_labels(u_char *p,
    ngx_oauth_metrics_slot_t *s, const char *first, const char *second);
static void ngx_oauth_metrics_head(ngx_oauth_metrics_out_t *out,
    const char *name, const char *type, const char *help);
static void ngx_oauth_metrics_locations(ngx_oauth_metrics_out_t *out,
    ngx_oauth_metrics_shctx_t *sh, ngx_uint_t allowed);
static void ngx_oauth_metrics_caches(ngx_oauth_metrics_out_t *out,
    ngx_oauth_metrics_main_conf_t *mmcf, ngx_oauth_metrics_shctx_t *sh);
static void ngx_oauth_metrics_idps(ngx_oauth_metrics_out_t *out,
    ngx_oauth_metrics_shctx_t *sh);
static ngx_int_t ngx_oauth_metrics_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_oauth_metrics_zone_t *ngx_oauth_metrics_cycle_zone(void);
static void ngx_oauth_metrics_redis_out(ngx_oauth_metrics_out_t *out,
    ngx_oauth_metrics_main_conf_t *mmcf, ngx_oauth_metrics_shctx_t *sh);
static void ngx_oauth_metrics_keysets(ngx_oauth_metrics_out_t *out,
    ngx_oauth_metrics_main_conf_t *mmcf, ngx_oauth_metrics_shctx_t *sh);


static ngx_command_t  ngx_oauth_metrics_commands[] = {

    { ngx_string("oauth_metrics_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_oauth_metrics_zone_conf,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("oauth_metrics_label"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_oauth_metrics_label_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("oauth_metrics"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_oauth_metrics_loc_conf_t, enable),
      NULL },

    { ngx_string("oauth_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_oauth_metrics_status_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_oauth_metrics_module_ctx = {
    ngx_oauth_metrics_preconfiguration,    /* preconfiguration */
    ngx_oauth_metrics_postconfiguration,   /* postconfiguration */

    ngx_oauth_metrics_create_main_conf,    /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_oauth_metrics_create_loc_conf,     /* create location configuration */
    ngx_oauth_metrics_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_oauth_metrics_module = {
    NGX_MODULE_V1,
    &ngx_oauth_metrics_module_ctx,         /* module context */
    ngx_oauth_metrics_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_oauth_metrics_vars[] = {

    { ngx_string("oauth_result"), NULL, ngx_oauth_metrics_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("oauth_reason"), NULL, ngx_oauth_metrics_variable,
      1, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


/* the vocabulary: label values by NGX_OAUTH_M_*, _R_*, _C_*, _I_* */

static ngx_str_t  ngx_oauth_metrics_modules[NGX_OAUTH_M_MAX] = {
    ngx_string("jwt"),
    ngx_string("oauth2_token"),
    ngx_string("sts")
};

static ngx_str_t  ngx_oauth_metrics_reasons[NGX_OAUTH_R_MAX] = {
    ngx_null_string,
    ngx_string("missing"),
    ngx_string("malformed"),
    ngx_string("alg_not_allowed"),
    ngx_string("expired"),
    ngx_string("bad_signature"),
    ngx_string("no_key"),
    ngx_string("revoked"),
    ngx_string("rule_failed"),
    ngx_string("inactive"),
    ngx_string("invalid"),
    ngx_string("forbidden"),
    ngx_string("idp_error"),
    ngx_string("error"),
    ngx_string("unknown_issuer")
};

static const char  *ngx_oauth_metrics_cache_names[NGX_OAUTH_C_MAX] = {
    "hits", "misses", "stale", "evictions"
};

static const char  *ngx_oauth_metrics_cache_help[NGX_OAUTH_C_MAX] = {
    "Lookups that found a live entry.",
    "Lookups that found no live entry (this request asks the IdP).",
    "Expired entries served while their IdP failed (stale_if_error).",
    "Live entries dropped to make room (the zone is full)."
};

static const char  *ngx_oauth_metrics_outcomes[NGX_OAUTH_I_MAX] = {
    "ok", "http_error", "unreachable", "unusable"
};

/* upper bounds of the latency buckets, ms; the last one is +Inf */
static ngx_msec_t  ngx_oauth_metrics_buckets[NGX_OAUTH_I_BUCKETS - 1] = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000
};

static const char  *ngx_oauth_metrics_le[NGX_OAUTH_I_BUCKETS] = {
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
    "10", "+Inf"
};


/* ---- the hooks of the feature modules ---------------------------------- */

void
ngx_oauth_metrics_reason(ngx_http_request_t *r, ngx_uint_t m,
    ngx_uint_t reason)
{
    ngx_oauth_metrics_req_t  *mr;

    mr = ngx_oauth_metrics_req(r, 1);

    if (mr && m < NGX_OAUTH_M_MAX && reason < NGX_OAUTH_R_MAX) {
        mr->hint[m] = (u_char) reason;
    }
}


void
ngx_oauth_metrics_nox(ngx_http_request_t *r, ngx_uint_t m, int32_t rc)
{
    ngx_uint_t  reason;

    switch (rc) {

    case NOX_OK:
        return;

    case NOX_ALG_NONE:
    case NOX_ALG_UNSUPPORTED:
        reason = NGX_OAUTH_R_ALG;
        break;

    case NOX_KEY_NOT_FOUND:
    case NOX_KEY_SKIPPED:
    case NOX_NO_KEYS:
        reason = NGX_OAUTH_R_NO_KEY;
        break;

    case NOX_BAD_SIGNATURE:
    case NOX_DECRYPT_FAILED:
        reason = NGX_OAUTH_R_BAD_SIGNATURE;
        break;

    case NOX_EXPIRED:
    case NOX_NOT_YET_VALID:
    case NOX_EXP_MISSING:
    case NOX_TIME_INVALID:
        reason = NGX_OAUTH_R_EXPIRED;
        break;

    case NOX_SUB_REVOKED:
    case NOX_KID_REVOKED:
        reason = NGX_OAUTH_R_REVOKED;
        break;

    case NOX_CLAIM_FAILED:
    case NOX_HEADER_FAILED:
    case NOX_ISSUER_MISMATCH:
    case NOX_AT_TYPE_MISMATCH:
    case NOX_LIFETIME_TOO_LONG:
    case NOX_IAT_MISSING:
    case NOX_AUDIENCE_MISMATCH:
    case NOX_RULE_VALUE_INVALID:
    case NOX_RULE_MATCH_LIMIT:
        reason = NGX_OAUTH_R_RULE_FAILED;
        break;

    case NOX_RESPONSE_INACTIVE:
        reason = NGX_OAUTH_R_INACTIVE;
        break;

    case NOX_STS_FORBIDDEN:
        reason = NGX_OAUTH_R_FORBIDDEN;
        break;

    case NOX_STS_REJECTED:
    case NOX_SOURCE_INVALID:
        reason = NGX_OAUTH_R_INVALID;
        break;

    default:
        reason = (rc < 0) ? NGX_OAUTH_R_ERROR : NGX_OAUTH_R_MALFORMED;
        break;
    }

    ngx_oauth_metrics_reason(r, m, reason);
}


void
ngx_oauth_metrics_allow(ngx_http_request_t *r, ngx_uint_t m)
{
    ngx_oauth_metrics_req_t  *mr;

    if (m >= NGX_OAUTH_M_MAX) {
        return;
    }

    mr = ngx_oauth_metrics_req(r, 1);

    if (mr) {
        mr->result = NGX_OAUTH_RESULT_ALLOWED;
        mr->reason = NGX_OAUTH_R_NONE;
        mr->hint[m] = NGX_OAUTH_R_NONE;
    }

    ngx_oauth_metrics_count(r, m, 0);
}


/*
 * The status decides what the status alone can tell (500, the IdP's
 * 502/503/504); otherwise the module's hint, else 401 invalid, 403
 * forbidden
 */

void
ngx_oauth_metrics_reject(ngx_http_request_t *r, ngx_uint_t m,
    ngx_int_t status)
{
    ngx_uint_t                reason;
    ngx_oauth_metrics_req_t  *mr;

    if (m >= NGX_OAUTH_M_MAX) {
        return;
    }

    mr = ngx_oauth_metrics_req(r, 1);

    reason = mr ? mr->hint[m] : NGX_OAUTH_R_NONE;

    switch (status) {

    case NGX_HTTP_BAD_GATEWAY:
    case NGX_HTTP_SERVICE_UNAVAILABLE:
    case NGX_HTTP_GATEWAY_TIME_OUT:
        reason = NGX_OAUTH_R_IDP_ERROR;
        break;

    case NGX_HTTP_UNAUTHORIZED:
        if (reason == NGX_OAUTH_R_NONE) {
            reason = NGX_OAUTH_R_INVALID;
        }
        break;

    case NGX_HTTP_FORBIDDEN:
        if (reason == NGX_OAUTH_R_NONE) {
            reason = NGX_OAUTH_R_FORBIDDEN;
        }
        break;

    default:
        /* a *_require error= status keeps its reason */
        if (reason != NGX_OAUTH_R_RULE_FAILED || status < 400) {
            reason = NGX_OAUTH_R_ERROR;
        }
        break;
    }

    if (mr) {
        mr->result = NGX_OAUTH_RESULT_REJECTED;
        mr->reason = reason;
        mr->hint[m] = NGX_OAUTH_R_NONE;
    }

    ngx_oauth_metrics_count(r, m, reason);
}


ngx_int_t
ngx_oauth_metrics_done(ngx_http_request_t *r, ngx_uint_t m, ngx_int_t rc)
{
    if (rc == NGX_OK) {
        ngx_oauth_metrics_allow(r, m);

    } else if (rc == NGX_ERROR || rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        ngx_oauth_metrics_reject(r, m, (rc == NGX_ERROR)
                                       ? NGX_HTTP_INTERNAL_SERVER_ERROR : rc);
    }

    return rc;
}


void
ngx_oauth_metrics_cache(ngx_http_request_t *r, void **slot, ngx_str_t *name,
    ngx_uint_t what)
{
    ngx_oauth_metrics_slot_t  *s;
    ngx_oauth_metrics_zone_t  *mz;

    s = *slot;

    if (s == NULL) {
        mz = ngx_oauth_metrics_get_zone(r);
        if (mz == NULL) {
            return;
        }

        s = ngx_oauth_metrics_slot(mz, NGX_OAUTH_METRICS_CACHE, name->data,
                                   name->len, 0);
        *slot = s;
    }

    (void) ngx_atomic_fetch_add(&s->c[what], 1);
}


void
ngx_oauth_metrics_idp(ngx_http_request_t *r, const char *who, ngx_str_t *url,
    ngx_uint_t answered, ngx_uint_t status, ngx_int_t whole, ngx_msec_t msec)
{
    u_char                     name[NGX_OAUTH_METRICS_NAME_MAX];
    size_t                     len, split;
    ngx_uint_t                 outcome, m, i;
    ngx_oauth_metrics_slot_t  *s;
    ngx_oauth_metrics_zone_t  *mz;

    mz = ngx_oauth_metrics_get_zone(r);
    if (mz == NULL) {
        return;
    }

    if (!answered) {
        outcome = NGX_OAUTH_I_UNREACHABLE;

    } else if (status == 0 || whole != NGX_OK) {
        outcome = NGX_OAUTH_I_UNUSABLE;

    } else if (status >= 200 && status < 300) {
        outcome = NGX_OAUTH_I_OK;

    } else {
        outcome = NGX_OAUTH_I_HTTP_ERROR;
    }

    if (ngx_strncmp(who, "auth_jwt", 8) == 0) {
        m = NGX_OAUTH_M_JWT;

    } else if (ngx_strncmp(who, "auth_oauth2_token", 17) == 0) {
        m = NGX_OAUTH_M_OAUTH2_TOKEN;

    } else {
        m = NGX_OAUTH_M_STS;
    }

    /* the name: module, then the URL (cut to the slot's room) */

    split = ngx_oauth_metrics_modules[m].len;
    ngx_memcpy(name, ngx_oauth_metrics_modules[m].data, split);

    len = ngx_min(url->len, NGX_OAUTH_METRICS_NAME_MAX - split);
    ngx_memcpy(name + split, url->data, len);
    len += split;

    s = ngx_oauth_metrics_slot(mz, NGX_OAUTH_METRICS_IDP, name, len, split);

    for (i = 0; i < NGX_OAUTH_I_BUCKETS - 1; i++) {
        if (msec <= ngx_oauth_metrics_buckets[i]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&s->c[outcome], 1);
    (void) ngx_atomic_fetch_add(&s->c[NGX_OAUTH_I_BUCKET + i], 1);
    (void) ngx_atomic_fetch_add(&s->c[NGX_OAUTH_I_SUM_MS], msec);
}


ngx_int_t
ngx_oauth_metrics_cache_zone(ngx_conf_t *cf, ngx_shm_zone_t *zone)
{
    ngx_shm_zone_t                 **z;
    ngx_oauth_metrics_main_conf_t   *mmcf;

    mmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_oauth_metrics_module);
    if (mmcf == NULL) {
        return NGX_OK;
    }

    z = ngx_array_push(&mmcf->caches);
    if (z == NULL) {
        return NGX_ERROR;
    }

    *z = zone;

    return NGX_OK;
}


/* ---- counting ---------------------------------------------------------- */

static void
ngx_oauth_metrics_count(ngx_http_request_t *r, ngx_uint_t m,
    ngx_uint_t index)
{
    ngx_oauth_metrics_slot_t      *s;
    ngx_oauth_metrics_zone_t      *mz;
    ngx_oauth_metrics_loc_conf_t  *mlcf;

    if (m >= NGX_OAUTH_M_MAX) {
        return;
    }

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_oauth_metrics_module);

    if (!mlcf->enable) {
        return;
    }

    s = mlcf->slot;

    if (s == NULL) {
        mz = ngx_oauth_metrics_get_zone(r);
        if (mz == NULL) {
            return;
        }

        /* once per worker and location: the same for every request */

        s = ngx_oauth_metrics_slot(mz, NGX_OAUTH_METRICS_LOCATION,
                                   mlcf->key.data, mlcf->key.len,
                                   mlcf->split);
        mlcf->slot = s;
    }

    (void) ngx_atomic_fetch_add(
               &s->c[m * NGX_OAUTH_METRICS_MODULE_STRIDE + index], 1);
}


static ngx_oauth_metrics_zone_t *
ngx_oauth_metrics_get_zone(ngx_http_request_t *r)
{
    ngx_oauth_metrics_zone_t       *mz;
    ngx_oauth_metrics_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_oauth_metrics_module);

    if (mmcf == NULL || mmcf->zone == NULL) {
        return NULL;
    }

    mz = mmcf->zone->data;

    return (mz->sh) ? mz : NULL;
}


static ngx_oauth_metrics_slot_t *
ngx_oauth_metrics_find(ngx_oauth_metrics_shctx_t *sh, ngx_uint_t kind,
    u_char *name, size_t len, size_t split)
{
    ngx_uint_t                 i, n;
    ngx_oauth_metrics_slot_t  *s;

    n = sh->used;

    for (i = 0; i < n; i++) {
        s = &sh->slot[i];

        if (s->ready && s->kind == kind && s->len == len
            && s->split == split && ngx_memcmp(s->name, name, len) == 0)
        {
            return s;
        }
    }

    return NULL;
}


/* the slot of this name: found, made (under the mutex), or "(other)" */

static ngx_oauth_metrics_slot_t *
ngx_oauth_metrics_slot(ngx_oauth_metrics_zone_t *mz, ngx_uint_t kind,
    u_char *name, size_t len, size_t split)
{
    ngx_oauth_metrics_slot_t   *s;
    ngx_oauth_metrics_shctx_t  *sh;

    sh = mz->sh;
    len = ngx_min(len, NGX_OAUTH_METRICS_NAME_MAX);

    s = ngx_oauth_metrics_find(sh, kind, name, len, split);
    if (s) {
        return s;
    }

    ngx_shmtx_lock(&mz->shpool->mutex);

    s = ngx_oauth_metrics_find(sh, kind, name, len, split);

    if (s == NULL) {

        if (sh->used < sh->max) {
            s = &sh->slot[sh->used];
            ngx_oauth_metrics_fill(s, kind, name, len, split);

            ngx_memory_barrier();
            sh->used++;

        } else if (sh->slot[kind - 1].kind == kind) {
            s = &sh->slot[kind - 1];
            (void) ngx_atomic_fetch_add(&sh->overflow, 1);

        } else {
            /* a zone kept from a build without this kind's "(other)" */
            (void) ngx_atomic_fetch_add(&sh->overflow, 1);
        }
    }

    ngx_shmtx_unlock(&mz->shpool->mutex);

    return s;
}


static void
ngx_oauth_metrics_fill(ngx_oauth_metrics_slot_t *s, ngx_uint_t kind,
    u_char *name, size_t len, size_t split)
{
    /* the counters are zero: the slots come from ngx_slab_calloc */

    s->kind = (uint16_t) kind;
    s->split = (uint16_t) split;
    s->len = (uint16_t) len;
    ngx_memcpy(s->name, name, len);

    ngx_memory_barrier();
    s->ready = 1;
}


/*
 * The state of the request's decisions on r->main.  An internal redirect
 * (error_page 401 = ...) clears the module ctx; the pool cleanup that
 * holds the state finds it again (as ngx_http_realip_module does).
 */

static ngx_oauth_metrics_req_t *
ngx_oauth_metrics_req(ngx_http_request_t *r, ngx_uint_t create)
{
    ngx_pool_cleanup_t       *cln;
    ngx_http_request_t       *mr;
    ngx_oauth_metrics_req_t  *st;

    mr = r->main;

    st = ngx_http_get_module_ctx(mr, ngx_http_oauth_metrics_module);
    if (st) {
        return st;
    }

    for (cln = mr->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_oauth_metrics_req_cleanup) {
            st = cln->data;
            ngx_http_set_ctx(mr, st, ngx_http_oauth_metrics_module);
            return st;
        }
    }

    if (!create) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(mr->pool, sizeof(ngx_oauth_metrics_req_t));
    if (cln == NULL) {
        return NULL;
    }

    st = cln->data;
    ngx_memzero(st, sizeof(ngx_oauth_metrics_req_t));
    cln->handler = ngx_oauth_metrics_req_cleanup;

    ngx_http_set_ctx(mr, st, ngx_http_oauth_metrics_module);

    return st;
}


static void
ngx_oauth_metrics_req_cleanup(void *data)
{
    /* nothing to free: the handler marks the state's cleanup */
}


static ngx_int_t
ngx_oauth_metrics_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                 value;
    ngx_oauth_metrics_req_t  *st;

    st = ngx_oauth_metrics_req(r, 0);

    ngx_str_null(&value);

    if (st && data == 0) {
        if (st->result == NGX_OAUTH_RESULT_ALLOWED) {
            ngx_str_set(&value, "allowed");

        } else if (st->result == NGX_OAUTH_RESULT_REJECTED) {
            ngx_str_set(&value, "rejected");
        }

    } else if (st && st->result == NGX_OAUTH_RESULT_REJECTED
               && st->reason < NGX_OAUTH_R_MAX)
    {
        value = ngx_oauth_metrics_reasons[st->reason];
    }

    if (value.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = value.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = value.data;

    return NGX_OK;
}


/* ---- configuration ----------------------------------------------------- */

static ngx_int_t
ngx_oauth_metrics_preconfiguration(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_oauth_metrics_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/* no oauth_metrics_zone: a zone of the default size (0: off) */

static ngx_int_t
ngx_oauth_metrics_postconfiguration(ngx_conf_t *cf)
{
    ngx_oauth_metrics_main_conf_t  *mmcf;

    mmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_oauth_metrics_module);

    if (mmcf->size == NGX_CONF_UNSET) {
        mmcf->size = NGX_OAUTH_METRICS_ZONE_SIZE;

        if (ngx_oauth_metrics_add_zone(cf, mmcf, mmcf->size) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (mmcf->zone == NULL && mmcf->status_line) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"oauth_status\" in %V:%ui needs the metrics zone, "
                      "but \"oauth_metrics_zone\" is off",
                      &mmcf->status_file, mmcf->status_line);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void *
ngx_oauth_metrics_create_main_conf(ngx_conf_t *cf)
{
    ngx_oauth_metrics_main_conf_t  *mmcf;

    mmcf = ngx_pcalloc(cf->pool, sizeof(ngx_oauth_metrics_main_conf_t));
    if (mmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mmcf->zone = NULL;
     *     mmcf->status_file = { 0, NULL };
     *     mmcf->status_line = 0;
     */

    mmcf->size = NGX_CONF_UNSET;

    if (ngx_array_init(&mmcf->caches, cf->pool, 4, sizeof(ngx_shm_zone_t *))
        != NGX_OK)
    {
        return NULL;
    }

    if (ngx_array_init(&mmcf->redis, cf->pool, 2, sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NULL;
    }

    return mmcf;
}


static void *
ngx_oauth_metrics_create_loc_conf(ngx_conf_t *cf)
{
    ngx_oauth_metrics_loc_conf_t  *mlcf;

    mlcf = ngx_pcalloc(cf->pool, sizeof(ngx_oauth_metrics_loc_conf_t));
    if (mlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mlcf->label = { 0, NULL };       unset
     *     mlcf->location = { 0, NULL };
     *     mlcf->key = { 0, NULL };
     *     mlcf->split = 0;
     *     mlcf->slot = NULL;
     */

    mlcf->enable = NGX_CONF_UNSET;

    return mlcf;
}


/*
 * The name a location counts under: its server's first server_name and
 * the label (oauth_metrics_label), else the location's name ("if" blocks
 * and limit_except count as their location)
 */

static char *
ngx_oauth_metrics_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_oauth_metrics_loc_conf_t *prev = parent;
    ngx_oauth_metrics_loc_conf_t *conf = child;

    u_char                    *p;
    ngx_str_t                 *name;
    ngx_http_core_loc_conf_t  *clcf;
    ngx_http_core_srv_conf_t  *cscf;

    ngx_conf_merge_value(conf->enable, prev->enable, 1);

    if (conf->label.data == NULL) {
        conf->label = prev->label;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    cscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_core_module);

    if (clcf->noname || clcf->name.len == 0) {
        conf->location = prev->location;

    } else {
        conf->location = clcf->name;
    }

    name = conf->label.data ? &conf->label : &conf->location;

    conf->split = ngx_min(cscf->server_name.len, NGX_OAUTH_METRICS_NAME_MAX);
    conf->key.len = ngx_min(conf->split + name->len,
                            NGX_OAUTH_METRICS_NAME_MAX);

    p = ngx_pnalloc(cf->pool, conf->key.len + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    conf->key.data = p;

    p = ngx_cpymem(p, cscf->server_name.data, conf->split);
    ngx_memcpy(p, name->data, conf->key.len - conf->split);

    return NGX_CONF_OK;
}


static char *
ngx_oauth_metrics_zone_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_oauth_metrics_main_conf_t *mmcf = conf;

    ssize_t     size;
    ngx_str_t  *value;

    value = cf->args->elts;

    if (mmcf->size != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    if (ngx_strcmp(value[1].data, "off") == 0) {
        mmcf->size = 0;
        return NGX_CONF_OK;
    }

    size = ngx_parse_size(&value[1]);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"oauth_metrics_zone\": invalid size \"%V\": "
                           "expected a size (e.g. 1m) or \"off\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"oauth_metrics_zone\": \"%V\" is too small: at "
                           "least %uz bytes", &value[1], 8 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    mmcf->size = size;

    if (ngx_oauth_metrics_add_zone(cf, mmcf, size) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_oauth_metrics_label_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_oauth_metrics_loc_conf_t *mlcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i;

    value = cf->args->elts;

    if (mlcf->label.data) {
        return "is duplicate";
    }

    if (value[1].len == 0 || value[1].len > 128) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"oauth_metrics_label\": the label must have "
                           "1 to 128 bytes");
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < value[1].len; i++) {
        if (value[1].data[i] < 0x20 || value[1].data[i] == 0x7f) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"oauth_metrics_label\": the label \"%V\" "
                               "holds a control character", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    mlcf->label = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_oauth_metrics_status_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t                      *value;
    ngx_http_core_loc_conf_t       *clcf;
    ngx_oauth_metrics_main_conf_t  *mmcf;

    value = cf->args->elts;

    if (cf->args->nelts == 2
        && ngx_strcmp(value[1].data, "format=prometheus") != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"oauth_status\": invalid parameter \"%V\": "
                           "only \"format=prometheus\" is supported",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    mmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_oauth_metrics_module);

    if (mmcf->status_line == 0) {
        mmcf->status_file = cf->conf_file->file.name;
        mmcf->status_line = cf->conf_file->line;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler != NULL) {
        return "is duplicate";
    }

    clcf->handler = ngx_oauth_metrics_status_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_oauth_metrics_add_zone(ngx_conf_t *cf,
    ngx_oauth_metrics_main_conf_t *mmcf, ssize_t size)
{
    ngx_str_t                  name;
    ngx_shm_zone_t            *zone;
    ngx_oauth_metrics_zone_t  *mz;

    ngx_str_set(&name, NGX_OAUTH_METRICS_ZONE_NAME);

    zone = ngx_shared_memory_add(cf, &name, size,
                                 &ngx_http_oauth_metrics_module);
    if (zone == NULL) {
        return NGX_ERROR;
    }

    if (zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the shared memory zone \"%V\" is already in use",
                           &name);
        return NGX_ERROR;
    }

    mz = ngx_pcalloc(cf->pool, sizeof(ngx_oauth_metrics_zone_t));
    if (mz == NULL) {
        return NGX_ERROR;
    }

    zone->init = ngx_oauth_metrics_init_zone;
    zone->data = mz;

    mmcf->zone = zone;

    return NGX_OK;
}


/* a reload keeps the counters: the old cycle's zone is reused */

static ngx_int_t
ngx_oauth_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_oauth_metrics_zone_t  *omz = data;

    size_t                      size;
    ngx_uint_t                  n, k;
    ngx_slab_pool_t            *shpool;
    ngx_oauth_metrics_zone_t   *mz;
    ngx_oauth_metrics_shctx_t  *sh;

    mz = shm_zone->data;

    if (omz) {
        mz->sh = omz->sh;
        mz->shpool = omz->shpool;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    mz->shpool = shpool;

    if (shm_zone->shm.exists) {
        mz->sh = shpool->data;
        return NGX_OK;
    }

    /* as many slots as fit: the slab allocator keeps some pages */

    n = (shm_zone->shm.size - 4 * ngx_pagesize)
        / sizeof(ngx_oauth_metrics_slot_t);

    for ( ;; ) {
        size = offsetof(ngx_oauth_metrics_shctx_t, slot)
               + n * sizeof(ngx_oauth_metrics_slot_t);

        sh = ngx_slab_calloc(shpool, size);

        if (sh || n <= NGX_OAUTH_METRICS_KINDS + 1) {
            break;
        }

        n -= n / 8 + 1;
    }

    if (sh == NULL) {
        return NGX_ERROR;
    }

    sh->max = n;

    /* the "(other)" slots, one per kind, first */

    for (k = NGX_OAUTH_METRICS_LOCATION; k <= NGX_OAUTH_METRICS_KINDS; k++) {
        ngx_oauth_metrics_fill(&sh->slot[k - 1], k,
                               (u_char *) NGX_OAUTH_METRICS_OTHER,
                               sizeof(NGX_OAUTH_METRICS_OTHER) - 1, 0);
    }

    sh->used = NGX_OAUTH_METRICS_KINDS;

    mz->sh = sh;
    shpool->data = sh;
    shpool->log_nomem = 0;

    return NGX_OK;
}


/* ---- oauth_status: the Prometheus text format 0.0.4 -------------------- */

static ngx_int_t
ngx_oauth_metrics_status_handler(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_chain_t                    *cl;
    ngx_oauth_metrics_out_t         out;
    ngx_oauth_metrics_zone_t       *mz;
    ngx_oauth_metrics_shctx_t      *sh;
    ngx_oauth_metrics_main_conf_t  *mmcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_oauth_metrics_module);
    mz = ngx_oauth_metrics_get_zone(r);

    if (mz == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    sh = mz->sh;

    ngx_memzero(&out, sizeof(ngx_oauth_metrics_out_t));
    out.r = r;
    out.last = &out.first;

    ngx_oauth_metrics_locations(&out, sh, 1);
    ngx_oauth_metrics_locations(&out, sh, 0);
    ngx_oauth_metrics_caches(&out, mmcf, sh);
    ngx_oauth_metrics_idps(&out, sh);
    ngx_oauth_metrics_redis_out(&out, mmcf, sh);
    ngx_oauth_metrics_keysets(&out, mmcf, sh);

    ngx_oauth_metrics_head(&out, "nginx_oauth_metrics_slots", "gauge",
                           "Slots of the metrics zone: used and max.");

    if (ngx_oauth_metrics_reserve(&out, 128)) {
        out.b->last = ngx_sprintf(out.b->last,
                                  "nginx_oauth_metrics_slots{state=\"used\"} "
                                  "%uA\n"
                                  "nginx_oauth_metrics_slots{state=\"max\"} "
                                  "%ui\n", sh->used, sh->max);
    }

    ngx_oauth_metrics_head(&out, "nginx_oauth_metrics_overflow_total",
                           "counter",
                           "Names counted in an (other) slot because the "
                           "zone was full.");

    if (ngx_oauth_metrics_reserve(&out, 64)) {
        out.b->last = ngx_sprintf(out.b->last,
                                  "nginx_oauth_metrics_overflow_total %uA\n",
                                  sh->overflow);
    }

    if (out.failed || out.b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    out.b->last_buf = (r == r->main) ? 1 : 0;
    out.b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    ngx_str_set(&r->headers_out.content_type, "text/plain; version=0.0.4");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.content_length_n = 0;

    for (cl = out.first; cl; cl = cl->next) {
        r->headers_out.content_length_n += cl->buf->last - cl->buf->pos;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, out.first);
}


/* room for size bytes at out->b->last; NULL (and failed) without memory */

static u_char *
ngx_oauth_metrics_reserve(ngx_oauth_metrics_out_t *out, size_t size)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (out->failed) {
        return NULL;
    }

    if (out->b && (size_t) (out->b->end - out->b->last) >= size) {
        return out->b->last;
    }

    b = ngx_create_temp_buf(out->r->pool,
                            ngx_max(size, NGX_OAUTH_METRICS_OUT_CHUNK));
    cl = ngx_alloc_chain_link(out->r->pool);

    if (b == NULL || cl == NULL) {
        out->failed = 1;
        return NULL;
    }

    cl->buf = b;
    cl->next = NULL;
    *out->last = cl;
    out->last = &cl->next;
    out->b = b;

    return b->last;
}


/* a label value: backslash, double quote and new line escaped */

static u_char *
ngx_oauth_metrics_escape(u_char *p, u_char *src, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        switch (src[i]) {

        case '\\':
        case '"':
            *p++ = '\\';
            *p++ = src[i];
            break;

        case '\n':
            *p++ = '\\';
            *p++ = 'n';
            break;

        default:
            *p++ = src[i];
        }
    }

    return p;
}


/* first="<name up to split>",second="<the rest>" */

static u_char *
ngx_oauth_metrics_labels(u_char *p, ngx_oauth_metrics_slot_t *s,
    const char *first, const char *second)
{
    size_t  split;

    split = ngx_min(s->split, s->len);

    if (first) {
        p = ngx_sprintf(p, "%s=\"", first);
        p = ngx_oauth_metrics_escape(p, s->name, split);
        p = ngx_cpymem(p, "\",", 2);

    } else {
        split = 0;
    }

    p = ngx_sprintf(p, "%s=\"", second);
    p = ngx_oauth_metrics_escape(p, s->name + split, s->len - split);
    *p++ = '"';

    return p;
}


static void
ngx_oauth_metrics_head(ngx_oauth_metrics_out_t *out, const char *name,
    const char *type, const char *help)
{
    if (ngx_oauth_metrics_reserve(out, 2 * ngx_strlen(name) + ngx_strlen(help)
                                       + 64)
        == NULL)
    {
        return;
    }

    out->b->last = ngx_sprintf(out->b->last, "# HELP %s %s\n# TYPE %s %s\n",
                               name, help, name, type);
}


/*
 * nginx_oauth_requests_allowed_total / _rejected_total: a module's
 * series of a location appear once it has counted there
 */

static void
ngx_oauth_metrics_locations(ngx_oauth_metrics_out_t *out,
    ngx_oauth_metrics_shctx_t *sh, ngx_uint_t allowed)
{
    u_char                    *p;
    ngx_uint_t                 i, n, m, k, any;
    ngx_atomic_t              *c;
    ngx_oauth_metrics_slot_t  *s;

    if (allowed) {
        ngx_oauth_metrics_head(out, "nginx_oauth_requests_allowed_total",
                               "counter",
                               "Requests a module let through, by location.");
    } else {
        ngx_oauth_metrics_head(out, "nginx_oauth_requests_rejected_total",
                               "counter",
                               "Requests a module rejected, by location and "
                               "reason.");
    }

    n = sh->used;

    for (i = 0; i < n; i++) {
        s = &sh->slot[i];

        if (!s->ready || s->kind != NGX_OAUTH_METRICS_LOCATION) {
            continue;
        }

        for (m = 0; m < NGX_OAUTH_M_MAX; m++) {
            c = &s->c[m * NGX_OAUTH_METRICS_MODULE_STRIDE];

            any = 0;

            for (k = 0; k < NGX_OAUTH_R_MAX; k++) {
                any |= (c[k] != 0);
            }

            if (!any) {
                continue;
            }

            for (k = allowed ? 0 : 1; k < (allowed ? 1 : NGX_OAUTH_R_MAX);
                 k++)
            {
                p = ngx_oauth_metrics_reserve(out,
                                              NGX_OAUTH_METRICS_LINE_MAX);
                if (p == NULL) {
                    return;
                }

                p = ngx_sprintf(p, "%s{", allowed
                                ? "nginx_oauth_requests_allowed_total"
                                : "nginx_oauth_requests_rejected_total");
                p = ngx_oauth_metrics_labels(p, s, "server", "location");
                p = ngx_sprintf(p, ",module=\"%V\"",
                                &ngx_oauth_metrics_modules[m]);

                if (!allowed) {
                    p = ngx_sprintf(p, ",reason=\"%V\"",
                                    &ngx_oauth_metrics_reasons[k]);
                }

                out->b->last = ngx_sprintf(p, "} %uA\n", c[k]);
            }
        }
    }
}


static void
ngx_oauth_metrics_caches(ngx_oauth_metrics_out_t *out,
    ngx_oauth_metrics_main_conf_t *mmcf, ngx_oauth_metrics_shctx_t *sh)
{
    u_char                     *p;
    u_char                      name[128];
    size_t                      len;
    ngx_uint_t                  i, w;
    ngx_atomic_uint_t           v;
    ngx_shm_zone_t            **zones;
    ngx_oauth_metrics_slot_t   *s;

    zones = mmcf->caches.elts;

    for (w = 0; w <= NGX_OAUTH_C_MAX; w++) {

        if (w < NGX_OAUTH_C_MAX) {
            (void) ngx_sprintf(name, "nginx_oauth_cache_%s_total%Z",
                               ngx_oauth_metrics_cache_names[w]);
            ngx_oauth_metrics_head(out, (char *) name, "counter",
                                   ngx_oauth_metrics_cache_help[w]);
        } else {
            (void) ngx_sprintf(name, "nginx_oauth_cache_entries%Z");
            ngx_oauth_metrics_head(out, (char *) name, "gauge",
                                   "Entries in the zone (live, or kept for "
                                   "stale_if_error).");
        }

        for (i = 0; i < mmcf->caches.nelts; i++) {

            len = ngx_min(zones[i]->shm.name.len, NGX_OAUTH_METRICS_NAME_MAX);

            if (w < NGX_OAUTH_C_MAX) {
                s = ngx_oauth_metrics_find(sh, NGX_OAUTH_METRICS_CACHE,
                                           zones[i]->shm.name.data, len, 0);
                v = s ? s->c[w] : 0;

            } else {
                v = ngx_oauth_cache_entries(zones[i]);
            }

            p = ngx_oauth_metrics_reserve(out, NGX_OAUTH_METRICS_LINE_MAX);
            if (p == NULL) {
                return;
            }

            p = ngx_sprintf(p, "%s{zone=\"", name);
            p = ngx_oauth_metrics_escape(p, zones[i]->shm.name.data, len);

            out->b->last = ngx_sprintf(p, "\"} %uA\n", v);
        }
    }
}


static void
ngx_oauth_metrics_idps(ngx_oauth_metrics_out_t *out,
    ngx_oauth_metrics_shctx_t *sh)
{
    u_char                    *p;
    ngx_uint_t                 i, n, k, part;
    ngx_atomic_uint_t          total, v;
    ngx_oauth_metrics_slot_t  *s;

    n = sh->used;

    for (part = 0; part < 2; part++) {

        if (part == 0) {
            ngx_oauth_metrics_head(out, "nginx_oauth_idp_requests_total",
                                   "counter",
                                   "IdP, STS and key set requests by "
                                   "outcome.");
        } else {
            ngx_oauth_metrics_head(out,
                                   "nginx_oauth_idp_request_duration_seconds",
                                   "histogram",
                                   "Time from the start of an IdP, STS or "
                                   "key set request to its end.");
        }

        for (i = 0; i < n; i++) {
            s = &sh->slot[i];

            if (!s->ready || s->kind != NGX_OAUTH_METRICS_IDP) {
                continue;
            }

            /* "(other)": only once something counted there */

            if (s->split == 0) {
                total = 0;

                for (k = 0; k < NGX_OAUTH_I_MAX; k++) {
                    total += s->c[k];
                }

                if (total == 0) {
                    continue;
                }
            }

            if (part == 0) {
                for (k = 0; k < NGX_OAUTH_I_MAX; k++) {
                    p = ngx_oauth_metrics_reserve(out,
                                                 NGX_OAUTH_METRICS_LINE_MAX);
                    if (p == NULL) {
                        return;
                    }

                    p = ngx_cpymem(p, "nginx_oauth_idp_requests_total{",
                                   sizeof("nginx_oauth_idp_requests_total{")
                                   - 1);
                    p = ngx_oauth_metrics_labels(p, s, "module", "endpoint");
                    out->b->last = ngx_sprintf(p, ",outcome=\"%s\"} %uA\n",
                                               ngx_oauth_metrics_outcomes[k],
                                               s->c[k]);
                }

                continue;
            }

            total = 0;

            for (k = 0; k <= NGX_OAUTH_I_BUCKETS + 1; k++) {
                p = ngx_oauth_metrics_reserve(out,
                                              NGX_OAUTH_METRICS_LINE_MAX);
                if (p == NULL) {
                    return;
                }

                p = ngx_sprintf(p, "nginx_oauth_idp_request_duration_seconds"
                                "%s{", k < NGX_OAUTH_I_BUCKETS ? "_bucket"
                                       : (k == NGX_OAUTH_I_BUCKETS
                                          ? "_sum" : "_count"));
                p = ngx_oauth_metrics_labels(p, s, "module", "endpoint");

                if (k < NGX_OAUTH_I_BUCKETS) {
                    total += s->c[NGX_OAUTH_I_BUCKET + k];
                    out->b->last = ngx_sprintf(p, ",le=\"%s\"} %uA\n",
                                               ngx_oauth_metrics_le[k],
                                               total);

                } else if (k == NGX_OAUTH_I_BUCKETS) {
                    v = s->c[NGX_OAUTH_I_SUM_MS];
                    out->b->last = ngx_sprintf(p, "} %uA.%03uA\n",
                                               v / 1000, v % 1000);

                } else {
                    out->b->last = ngx_sprintf(p, "} %uA\n", total);
                }
            }
        }
    }
}


/* ---- the Redis second level (oauth_redis) ------------------------------ */

static const char  *ngx_oauth_metrics_redis_lookups[NGX_OAUTH_RL_MAX] = {
    "hit", "miss", "foreign", "error", "abandoned"
};

static const char  *ngx_oauth_metrics_redis_errors[NGX_OAUTH_RE_MAX] = {
    "", "timeout", "unreachable", "refused", "garbage"
};


/* the zone from a worker's cycle: a Redis command ends without a request */

static ngx_oauth_metrics_zone_t *
ngx_oauth_metrics_cycle_zone(void)
{
    ngx_oauth_metrics_zone_t       *mz;
    ngx_oauth_metrics_main_conf_t  *mmcf;

    if (ngx_cycle->conf_ctx == NULL
        || ngx_cycle->conf_ctx[ngx_http_module.index] == NULL)
    {
        return NULL;
    }

    mmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_oauth_metrics_module);

    if (mmcf == NULL || mmcf->zone == NULL) {
        return NULL;
    }

    mz = mmcf->zone->data;

    return (mz->sh) ? mz : NULL;
}


static ngx_oauth_metrics_slot_t *
ngx_oauth_metrics_redis_slot(void **slot, ngx_str_t *name)
{
    ngx_oauth_metrics_zone_t  *mz;

    if (*slot == NULL) {
        mz = ngx_oauth_metrics_cycle_zone();
        if (mz == NULL) {
            return NULL;
        }

        *slot = ngx_oauth_metrics_slot(mz, NGX_OAUTH_METRICS_REDIS,
                                       name->data, name->len, 0);
    }

    return *slot;
}


ngx_int_t
ngx_oauth_metrics_redis_server(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_str_t                      *n;
    ngx_oauth_metrics_main_conf_t  *mmcf;

    mmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_oauth_metrics_module);
    if (mmcf == NULL) {
        return NGX_OK;
    }

    n = ngx_array_push(&mmcf->redis);
    if (n == NULL) {
        return NGX_ERROR;
    }

    *n = *name;

    return NGX_OK;
}


void
ngx_oauth_metrics_redis(void **slot, ngx_str_t *name, const char *what,
    ngx_int_t rc, ngx_uint_t error, ngx_msec_t msec)
{
    ngx_uint_t                 i, get;
    ngx_oauth_metrics_slot_t  *s;

    s = ngx_oauth_metrics_redis_slot(slot, name);
    if (s == NULL) {
        return;
    }

    get = (what[0] == 'G');

    if (rc == NGX_ERROR) {
        if (error == NGX_OAUTH_RE_NONE || error >= NGX_OAUTH_RE_MAX) {
            error = NGX_OAUTH_RE_UNREACHABLE;
        }

        (void) ngx_atomic_fetch_add(&s->c[get
                                          ? NGX_OAUTH_RS_LOOKUP
                                            + NGX_OAUTH_RL_ERROR
                                          : NGX_OAUTH_RS_STORE + 1], 1);
        (void) ngx_atomic_fetch_add(&s->c[NGX_OAUTH_RS_ERROR
                                          + (get ? 0 : NGX_OAUTH_RE_MAX - 1)
                                          + error - 1], 1);

    } else if (get) {
        if (rc == NGX_DECLINED) {
            (void) ngx_atomic_fetch_add(&s->c[NGX_OAUTH_RS_LOOKUP
                                              + NGX_OAUTH_RL_MISS], 1);
        }

        /* a value: hit or foreign when it is opened */

    } else {
        (void) ngx_atomic_fetch_add(&s->c[NGX_OAUTH_RS_STORE], 1);
    }

    for (i = 0; i < NGX_OAUTH_I_BUCKETS - 1; i++) {
        if (msec <= ngx_oauth_metrics_buckets[i]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&s->c[NGX_OAUTH_RS_BUCKET + i], 1);
    (void) ngx_atomic_fetch_add(&s->c[NGX_OAUTH_RS_SUM_MS], msec);
}


void
ngx_oauth_metrics_redis_lookup(void **slot, ngx_str_t *name,
    ngx_uint_t outcome)
{
    ngx_oauth_metrics_slot_t  *s;

    s = ngx_oauth_metrics_redis_slot(slot, name);

    if (s && outcome < NGX_OAUTH_RL_MAX) {
        (void) ngx_atomic_fetch_add(&s->c[ngx_oauth_metrics_rs_lookup(outcome)],
                                    1);
    }
}


/* a series line: metric{redis="name"<more>} value */

static u_char *
ngx_oauth_metrics_redis_line(ngx_oauth_metrics_out_t *out, const char *metric,
    ngx_str_t *name)
{
    u_char  *p;
    size_t   len;

    p = ngx_oauth_metrics_reserve(out, NGX_OAUTH_METRICS_LINE_MAX);
    if (p == NULL) {
        return NULL;
    }

    len = ngx_min(name->len, NGX_OAUTH_METRICS_NAME_MAX);

    p = ngx_sprintf(p, "%s{redis=\"", metric);
    p = ngx_oauth_metrics_escape(p, name->data, len);
    *p++ = '"';

    return p;
}


static void
ngx_oauth_metrics_redis_out(ngx_oauth_metrics_out_t *out,
    ngx_oauth_metrics_main_conf_t *mmcf, ngx_oauth_metrics_shctx_t *sh)
{
    u_char                    *p;
    size_t                     len;
    ngx_str_t                 *names;
    ngx_uint_t                 part, i, k, cmd;
    ngx_atomic_uint_t          total, v;
    ngx_oauth_metrics_slot_t  *s;

    static const char  *heads[4][3] = {
        { "nginx_oauth_redis_lookups_total", "counter",
          "Second-level lookups (GET) by outcome: hit, miss, foreign (not "
          "ours, or does not open with this key_file), error, abandoned "
          "(the value came after its request had ended)." },
        { "nginx_oauth_redis_stores_total", "counter",
          "Second-level stores (SET) by outcome." },
        { "nginx_oauth_redis_errors_total", "counter",
          "Redis commands that failed, by command and error: timeout, "
          "unreachable, refused (an error reply), garbage." },
        { "nginx_oauth_redis_command_duration_seconds", "histogram",
          "Time from the start of a Redis command to its end." }
    };

    names = mmcf->redis.elts;

    for (part = 0; part < 4; part++) {

        ngx_oauth_metrics_head(out, heads[part][0], heads[part][1],
                               heads[part][2]);

        for (i = 0; i < mmcf->redis.nelts; i++) {

            len = ngx_min(names[i].len, NGX_OAUTH_METRICS_NAME_MAX);
            s = ngx_oauth_metrics_find(sh, NGX_OAUTH_METRICS_REDIS,
                                       names[i].data, len, 0);

#define ngx_oauth_metrics_rc(k)  (s ? s->c[k] : 0)

            switch (part) {

            case 0:
                for (k = 0; k < NGX_OAUTH_RL_MAX; k++) {
                    p = ngx_oauth_metrics_redis_line(out, heads[0][0],
                                                     &names[i]);
                    if (p == NULL) {
                        return;
                    }

                    out->b->last = ngx_sprintf(p, ",outcome=\"%s\"} %uA\n",
                                       ngx_oauth_metrics_redis_lookups[k],
                                       ngx_oauth_metrics_rc(
                                           ngx_oauth_metrics_rs_lookup(k)));
                }

                break;

            case 1:
                for (k = 0; k < 2; k++) {
                    p = ngx_oauth_metrics_redis_line(out, heads[1][0],
                                                     &names[i]);
                    if (p == NULL) {
                        return;
                    }

                    out->b->last = ngx_sprintf(p, ",outcome=\"%s\"} %uA\n",
                                       k ? "error" : "ok",
                                       ngx_oauth_metrics_rc(
                                           NGX_OAUTH_RS_STORE + k));
                }

                break;

            case 2:
                for (cmd = 0; cmd < 2; cmd++) {
                    for (k = 1; k < NGX_OAUTH_RE_MAX; k++) {
                        p = ngx_oauth_metrics_redis_line(out, heads[2][0],
                                                         &names[i]);
                        if (p == NULL) {
                            return;
                        }

                        out->b->last = ngx_sprintf(p,
                                       ",command=\"%s\",error=\"%s\"} %uA\n",
                                       cmd ? "SET" : "GET",
                                       ngx_oauth_metrics_redis_errors[k],
                                       ngx_oauth_metrics_rc(
                                           NGX_OAUTH_RS_ERROR
                                           + cmd * (NGX_OAUTH_RE_MAX - 1)
                                           + k - 1));
                    }
                }

                break;

            default:
                total = 0;

                for (k = 0; k <= NGX_OAUTH_I_BUCKETS + 1; k++) {
                    p = ngx_oauth_metrics_reserve(out,
                                                 NGX_OAUTH_METRICS_LINE_MAX);
                    if (p == NULL) {
                        return;
                    }

                    p = ngx_sprintf(p, "%s%s{redis=\"", heads[3][0],
                                    k < NGX_OAUTH_I_BUCKETS ? "_bucket"
                                    : (k == NGX_OAUTH_I_BUCKETS
                                       ? "_sum" : "_count"));
                    p = ngx_oauth_metrics_escape(p, names[i].data, len);
                    *p++ = '"';

                    if (k < NGX_OAUTH_I_BUCKETS) {
                        total += ngx_oauth_metrics_rc(NGX_OAUTH_RS_BUCKET + k);
                        out->b->last = ngx_sprintf(p, ",le=\"%s\"} %uA\n",
                                                   ngx_oauth_metrics_le[k],
                                                   total);

                    } else if (k == NGX_OAUTH_I_BUCKETS) {
                        v = ngx_oauth_metrics_rc(NGX_OAUTH_RS_SUM_MS);
                        out->b->last = ngx_sprintf(p, "} %uA.%03uA\n",
                                                   v / 1000, v % 1000);

                    } else {
                        out->b->last = ngx_sprintf(p, "} %uA\n", total);
                    }
                }

                break;
            }

#undef ngx_oauth_metrics_rc
        }
    }
}


/* ---- the JWT key sets (auth_jwt_key_request, auth_jwt_discovery) ------- */

void
ngx_oauth_metrics_keyset(ngx_http_request_t *r, u_char *set,
    ngx_str_t *label, ngx_uint_t what)
{
    u_char                     name[NGX_OAUTH_METRICS_NAME_MAX];
    size_t                     len;
    ngx_oauth_metrics_slot_t  *s;
    ngx_oauth_metrics_zone_t  *mz;

    mz = ngx_oauth_metrics_get_zone(r);
    if (mz == NULL || what > NGX_OAUTH_KS_REFETCH) {
        return;
    }

    /* the name: the entry's key, then the label (cut to the room) */

    ngx_memcpy(name, set, NOX_SHA256_LEN);
    len = ngx_min(label->len, NGX_OAUTH_METRICS_NAME_MAX - NOX_SHA256_LEN);
    ngx_memcpy(name + NOX_SHA256_LEN, label->data, len);

    s = ngx_oauth_metrics_slot(mz, NGX_OAUTH_METRICS_KEYSET, name,
                               NOX_SHA256_LEN + len, NOX_SHA256_LEN);

    if (s) {
        (void) ngx_atomic_fetch_add(&s->c[what], 1);
    }
}


/* the label of a key set slot: its name after the entry's key */

static u_char *
ngx_oauth_metrics_keyset_line(ngx_oauth_metrics_out_t *out,
    const char *metric, ngx_oauth_metrics_slot_t *s)
{
    u_char  *p;
    size_t   split;

    p = ngx_oauth_metrics_reserve(out, NGX_OAUTH_METRICS_LINE_MAX);
    if (p == NULL) {
        return NULL;
    }

    split = ngx_min(s->split, s->len);

    p = ngx_sprintf(p, "%s{keyset=\"", metric);
    p = ngx_oauth_metrics_escape(p, s->name + split, s->len - split);
    *p++ = '"';

    return p;
}


/*
 * Gauges from the key zone, read at scrape time (under its lock, here and
 * never on a request's path), counters from the metrics zone
 */

static void
ngx_oauth_metrics_keysets(ngx_oauth_metrics_out_t *out,
    ngx_oauth_metrics_main_conf_t *mmcf, ngx_oauth_metrics_shctx_t *sh)
{
    u_char                     *p;
    u_char                      head[NGX_OAUTH_METRICS_KEYS_HEAD];
    time_t                      expires, keep, now;
    int32_t                     aux;
    int64_t                     fetched;
    ngx_int_t                   rc;
    ngx_uint_t                  part, i, n, z, k;
    ngx_atomic_uint_t           v;
    ngx_shm_zone_t            **zones;
    ngx_oauth_metrics_slot_t   *s;

    static const char  *heads[6][3] = {
        { "nginx_oauth_keyset_fetches_total", "counter",
          "Key set and discovery document fetches by outcome." },
        { "nginx_oauth_keyset_kid_miss_refetches_total", "counter",
          "Fetches started because a token's kid was not in the set." },
        { "nginx_oauth_keyset_keys", "gauge",
          "Keys in the cached set (0 for a discovery document)." },
        { "nginx_oauth_keyset_fetched_timestamp_seconds", "gauge",
          "Unix time of the last successful fetch of the cached set." },
        { "nginx_oauth_keyset_refresh_due_timestamp_seconds", "gauge",
          "Unix time the cached set is due for a refresh." },
        { "nginx_oauth_keyset_stale", "gauge",
          "1 while the cached set is served past its refresh time "
          "(its refresh failed or has not ended), else 0." }
    };

    zones = mmcf->caches.elts;
    now = ngx_time();
    n = sh->used;

    for (part = 0; part < 6; part++) {

        ngx_oauth_metrics_head(out, heads[part][0], heads[part][1],
                               heads[part][2]);

        for (i = 0; i < n; i++) {
            s = &sh->slot[i];

            if (!s->ready || s->kind != NGX_OAUTH_METRICS_KEYSET) {
                continue;
            }

            if (part < 2) {
                if (s->split == 0
                    && s->c[0] + s->c[1] + s->c[2] == 0)
                {
                    continue;               /* "(other)", unused */
                }

                for (k = 0; k < (part ? 1u : 2u); k++) {
                    p = ngx_oauth_metrics_keyset_line(out, heads[part][0], s);
                    if (p == NULL) {
                        return;
                    }

                    if (part == 0) {
                        p = ngx_sprintf(p, ",outcome=\"%s\"",
                                        k ? "error" : "ok");
                    }

                    out->b->last = ngx_sprintf(p, "} %uA\n",
                                               s->c[part ? NGX_OAUTH_KS_REFETCH
                                                         : k]);
                }

                continue;
            }

            /* the gauges: the set as the key zone holds it now */

            if (s->split != NOX_SHA256_LEN) {
                continue;
            }

            rc = NGX_DECLINED;

            for (z = 0; z < mmcf->caches.nelts && rc != NGX_OK; z++) {
                rc = ngx_oauth_cache_peek(zones[z],
                                          NGX_OAUTH_METRICS_KEYS_KIND,
                                          s->name, head, sizeof(head),
                                          &expires, &keep, &aux);
            }

            if (rc != NGX_OK) {
                continue;
            }

            ngx_memcpy(&fetched, head, sizeof(int64_t));

            switch (part) {
            case 2:
                v = (aux > 0) ? (ngx_atomic_uint_t) aux : 0;
                break;
            case 3:
                v = (fetched > 0) ? (ngx_atomic_uint_t) fetched : 0;
                break;
            case 4:
                v = (expires > 0) ? (ngx_atomic_uint_t) expires : 0;
                break;
            default:
                v = (expires <= now) ? 1 : 0;
                break;
            }

            p = ngx_oauth_metrics_keyset_line(out, heads[part][0], s);
            if (p == NULL) {
                return;
            }

            out->b->last = ngx_sprintf(p, "} %uA\n", v);
        }
    }
}
