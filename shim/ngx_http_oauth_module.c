/*
 * NginxOAuth shim: the core module of ngx_http_oauth_module.so.
 *
 * It has no directives of its own.  It owns
 *   - loading the managed library beside this .so in worker processes
 *     (never in the master: ARCHITECTURE.md, invariant 1),
 *   - the configuration validator: checks recorded by the feature modules
 *     while parsing run in a forked child that reports over a pipe,
 *   - small helpers shared by the feature modules.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <dlfcn.h>
#include <poll.h>

#include "ngx_oauth_core.h"


#define NGX_OAUTH_CHECK_TIMEOUT  60000   /* ms, validator child */
#define NGX_OAUTH_ERRSTR_LEN     1024


typedef struct {
    ngx_array_t          checks;        /* of ngx_oauth_check_t */
    ngx_uint_t           used;          /* a feature directive was seen */
    ngx_uint_t           routes;        /* generated IdP locations */
} ngx_http_oauth_main_conf_t;


typedef struct {
    ngx_oauth_check_pt   handler;
    void                *data;
    ngx_str_t            file;
    ngx_uint_t           line;
} ngx_oauth_check_t;


/* a header name of the IdP subrequests, hashed once per process */

typedef struct {
    ngx_str_t            key;
    ngx_str_t            lowcase;
    ngx_uint_t           hash;          /* 0: not yet */
} ngx_oauth_header_name_t;


static void *ngx_http_oauth_create_main_conf(ngx_conf_t *cf);
static ngx_int_t ngx_http_oauth_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_oauth_init_process(ngx_cycle_t *cycle);
static ngx_int_t ngx_oauth_checks_run(ngx_conf_t *cf,
    ngx_http_oauth_main_conf_t *omcf);
static void ngx_oauth_checks_child(ngx_http_oauth_main_conf_t *omcf,
    ngx_log_t *log, int fd);
static void ngx_oauth_check_record(int32_t kind, u_char *msg, size_t len);
static void ngx_oauth_write_all(int fd, u_char *p, size_t n);
static ngx_int_t ngx_oauth_managed_path(u_char *buf, size_t size);
static ngx_int_t ngx_oauth_subrequest_whole(ngx_http_request_t *sr,
    ngx_str_t *body);
static ngx_table_elt_t *ngx_oauth_header_push(ngx_list_t *headers,
    ngx_oauth_header_name_t *name, ngx_str_t *value);


static ngx_http_module_t  ngx_http_oauth_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_oauth_postconfiguration,      /* postconfiguration */

    ngx_http_oauth_create_main_conf,       /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_oauth_module = {
    NGX_MODULE_V1,
    &ngx_http_oauth_module_ctx,            /* module context */
    NULL,                                  /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_oauth_init_process,           /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


ngx_oauth_managed_t  ngx_oauth_managed;
ngx_uint_t           ngx_oauth_managed_ready;


static struct {
    const char  *name;
    size_t       offset;
} ngx_oauth_symbols[] = {

#define ngx_oauth_sym(n)  { "nox_" #n, offsetof(ngx_oauth_managed_t, n) }

    ngx_oauth_sym(abi_version),
    ngx_oauth_sym(keyset_load),
    ngx_oauth_sym(keyset_free),
    ngx_oauth_sym(keyset_skipped),
    ngx_oauth_sym(keyset_count),
    ngx_oauth_sym(json_check),
    ngx_oauth_sym(policy_create),
    ngx_oauth_sym(policy_add_keyset),
    ngx_oauth_sym(policy_add_revocation),
    ngx_oauth_sym(policy_set_nested),
    ngx_oauth_sym(policy_add_rule),
    ngx_oauth_sym(policy_free),
    ngx_oauth_sym(jwt_verify),
    ngx_oauth_sym(jwt_check),
    ngx_oauth_sym(policy_set_type),
    ngx_oauth_sym(jwt_verify_ex),
    ngx_oauth_sym(json_get),
    ngx_oauth_sym(json_compact),
    ngx_oauth_sym(introspect_parse),
    ngx_oauth_sym(exchange_parse),
    ngx_oauth_sym(token_error),
    ngx_oauth_sym(numeric_date),
    ngx_oauth_sym(sha256),
    ngx_oauth_sym(sts_create),
    ngx_oauth_sym(sts_free),
    ngx_oauth_sym(sts_key),
    ngx_oauth_sym(sts_request),
    ngx_oauth_sym(sts_response),
    ngx_oauth_sym(jwt_issuer),
    ngx_oauth_sym(policy_set_profile),
    ngx_oauth_sym(policy_add_audience),
    ngx_oauth_sym(cache_seal),
    ngx_oauth_sym(cache_open),
    ngx_oauth_sym(jws_probe),

#undef ngx_oauth_sym
};


static void *
ngx_http_oauth_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_oauth_main_conf_t  *omcf;

    /*
     * set by ngx_pcalloc():
     *
     *     omcf->used = 0;
     */

    omcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_oauth_main_conf_t));
    if (omcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&omcf->checks, cf->pool, 8, sizeof(ngx_oauth_check_t))
        != NGX_OK)
    {
        return NULL;
    }

    return omcf;
}


void
ngx_oauth_use(ngx_conf_t *cf)
{
    ngx_http_oauth_main_conf_t  *omcf;

    omcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_oauth_module);
    omcf->used = 1;
}


ngx_int_t
ngx_oauth_check_add(ngx_conf_t *cf, ngx_oauth_check_pt handler, void *data)
{
    return ngx_oauth_check_add_at(cf, handler, data,
                                  &cf->conf_file->file.name,
                                  cf->conf_file->line);
}


/* a check reported at a recorded position (e.g. one added while merging) */

ngx_int_t
ngx_oauth_check_add_at(ngx_conf_t *cf, ngx_oauth_check_pt handler,
    void *data, ngx_str_t *file, ngx_uint_t line)
{
    ngx_oauth_check_t           *check;
    ngx_http_oauth_main_conf_t  *omcf;

    omcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_oauth_module);
    omcf->used = 1;

    check = ngx_array_push(&omcf->checks);
    if (check == NULL) {
        return NGX_ERROR;
    }

    check->handler = handler;
    check->data = data;
    check->file = *file;
    check->line = line;

    return NGX_OK;
}


static ngx_int_t
ngx_http_oauth_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_oauth_main_conf_t  *omcf;

    omcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_oauth_module);

    if (!omcf->used) {
        return NGX_OK;
    }

    return ngx_oauth_checks_run(cf, omcf);
}


/*
 * The managed runtime must never start in the master: workers forked from
 * a master with a started runtime hang on their first managed call.  So the
 * checks run in a child that exits right after, and report over a pipe.
 * The child writes records: an int32 check index (-1: the library itself),
 * an int32 kind (warning or failure), an int32 length and the message.
 * Warnings (ngx_oauth_check_warn) come first; a failure ends the stream.
 */

#define NGX_OAUTH_CHECK_WARN      0
#define NGX_OAUTH_CHECK_FAIL      1
#define NGX_OAUTH_CHECK_MAX_READ  (256 * 1024)   /* bytes kept of the stream */


static int       ngx_oauth_check_fd = -1;        /* the validator child's */
static int32_t   ngx_oauth_check_index = -1;


static ngx_int_t
ngx_oauth_checks_run(ngx_conf_t *cf, ngx_http_oauth_main_conf_t *omcf)
{
    int                 fds[2], status;
    u_char             *buf, *p, *last, *nbuf, scratch[4096];
    pid_t               pid;
    int32_t             hdr[3];
    ssize_t             n;
    size_t              len, size;
    ngx_int_t           rc;
    ngx_uint_t          level;
    struct pollfd       pfd;
    ngx_oauth_check_t  *check;

    if (pipe(fds) == -1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "oauth: pipe() for the configuration check failed");
        return NGX_ERROR;
    }

    pid = fork();

    if (pid == -1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "oauth: fork() for the configuration check failed");
        close(fds[0]);
        close(fds[1]);
        return NGX_ERROR;
    }

    if (pid == 0) {
        close(fds[0]);
        ngx_oauth_checks_child(omcf, cf->log, fds[1]);
        _exit(0);
    }

    close(fds[1]);

    buf = NULL;
    len = 0;
    size = 0;

    /* read to the end (the child blocks on a full pipe otherwise) */

    for ( ;; ) {
        pfd.fd = fds[0];
        pfd.events = POLLIN;
        pfd.revents = 0;

        n = poll(&pfd, 1, NGX_OAUTH_CHECK_TIMEOUT);

        if (n == -1 && ngx_errno == NGX_EINTR) {
            continue;
        }

        if (n <= 0) {
            kill(pid, SIGKILL);
            (void) waitpid(pid, &status, 0);
            close(fds[0]);
            ngx_free(buf);
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "oauth: the configuration check did not finish "
                          "within %d s", NGX_OAUTH_CHECK_TIMEOUT / 1000);
            return NGX_ERROR;
        }

        n = read(fds[0], scratch, sizeof(scratch));

        if (n == -1 && ngx_errno == NGX_EINTR) {
            continue;
        }

        if (n <= 0) {
            break;
        }

        if (len + n > NGX_OAUTH_CHECK_MAX_READ) {
            continue;                      /* drained, not kept */
        }

        if (len + n > size) {
            size = ngx_max(2 * size, len + n);
            nbuf = ngx_alloc(size, cf->log);
            if (nbuf == NULL) {
                kill(pid, SIGKILL);
                (void) waitpid(pid, &status, 0);
                close(fds[0]);
                ngx_free(buf);
                return NGX_ERROR;
            }

            if (buf) {
                ngx_memcpy(nbuf, buf, len);
                ngx_free(buf);
            }

            buf = nbuf;
        }

        ngx_memcpy(buf + len, scratch, n);
        len += n;
    }

    close(fds[0]);

    /* the master's SIGCHLD handler may reap it first: ECHILD is fine */
    while (waitpid(pid, &status, 0) == -1 && ngx_errno == NGX_EINTR) {
        /* void */
    }

    rc = NGX_OK;
    p = buf;
    last = buf + len;
    check = omcf->checks.elts;

    while (p < last) {

        if ((size_t) (last - p) < sizeof(hdr)) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "oauth: the configuration check failed "
                          "unexpectedly");
            rc = NGX_ERROR;
            break;
        }

        ngx_memcpy(hdr, p, sizeof(hdr));
        p += sizeof(hdr);

        if (hdr[2] < 0 || hdr[2] > last - p) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "oauth: the configuration check failed "
                          "unexpectedly");
            rc = NGX_ERROR;
            break;
        }

        level = (hdr[1] == NGX_OAUTH_CHECK_WARN) ? NGX_LOG_WARN
                                                  : NGX_LOG_EMERG;

        if (hdr[0] < 0 || (ngx_uint_t) hdr[0] >= omcf->checks.nelts) {
            ngx_log_error(level, cf->log, 0, "%*s", (size_t) hdr[2], p);

        } else {
            ngx_log_error(level, cf->log, 0, "%*s in %V:%ui",
                          (size_t) hdr[2], p, &check[hdr[0]].file,
                          check[hdr[0]].line);
        }

        if (hdr[1] != NGX_OAUTH_CHECK_WARN) {
            rc = NGX_ERROR;
            break;
        }

        p += hdr[2];
    }

    ngx_free(buf);

    return rc;
}


static void
ngx_oauth_check_record(int32_t kind, u_char *msg, size_t len)
{
    int32_t  hdr[3];

    if (ngx_oauth_check_fd == -1) {
        return;
    }

    hdr[0] = ngx_oauth_check_index;
    hdr[1] = kind;
    hdr[2] = (int32_t) len;

    ngx_oauth_write_all(ngx_oauth_check_fd, (u_char *) hdr, sizeof(hdr));
    ngx_oauth_write_all(ngx_oauth_check_fd, msg, len);
}


/*
 * A warning from a check running in the validator child: logged by the
 * master at warn with the check's file:line (nginx -t shows it).
 */

void
ngx_oauth_check_warn(u_char *msg, size_t len)
{
    ngx_oauth_check_record(NGX_OAUTH_CHECK_WARN, msg,
                           ngx_min(len, NGX_OAUTH_ERRSTR_LEN));
}


static void
ngx_oauth_checks_child(ngx_http_oauth_main_conf_t *omcf, ngx_log_t *log,
    int fd)
{
    u_char             *last, buf[NGX_OAUTH_ERRSTR_LEN];
    ngx_uint_t          i;
    ngx_oauth_check_t  *check;

    ngx_oauth_check_fd = fd;
    ngx_oauth_check_index = -1;

    if (ngx_oauth_managed_load(log, buf, NGX_OAUTH_ERRSTR_LEN) != NGX_OK) {
        ngx_oauth_check_record(NGX_OAUTH_CHECK_FAIL, buf, ngx_strlen(buf));
        return;
    }

    check = omcf->checks.elts;

    for (i = 0; i < omcf->checks.nelts; i++) {
        ngx_oauth_check_index = (int32_t) i;

        last = check[i].handler(check[i].data, buf, buf + sizeof(buf));
        if (last != NULL) {
            ngx_oauth_check_record(NGX_OAUTH_CHECK_FAIL, buf, last - buf);
            return;
        }
    }
}


static void
ngx_oauth_write_all(int fd, u_char *p, size_t n)
{
    ssize_t  w;

    while (n) {
        w = write(fd, p, n);

        if (w == -1 && ngx_errno == NGX_EINTR) {
            continue;
        }

        if (w <= 0) {
            return;
        }

        p += w;
        n -= w;
    }
}


static ngx_int_t
ngx_http_oauth_init_process(ngx_cycle_t *cycle)
{
    char                        *gen0;
    u_char                       err[NGX_OAUTH_ERRSTR_LEN];
    ngx_http_oauth_main_conf_t  *omcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    omcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_oauth_module);

    if (omcf == NULL || !omcf->used) {
        return NGX_OK;
    }

    /*
     * A worker without the library still runs: every protected request
     * then fails closed with 500 (see ngx_oauth_managed_ready users).
     */

    if (ngx_oauth_managed_load(cycle->log, err, sizeof(err)) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0, "%s", err);
        return NGX_OK;
    }

    gen0 = getenv("DOTNET_GCgen0size");

    ngx_log_error(NGX_LOG_INFO, cycle->log, 0,
                  "oauth: managed core loaded, DOTNET_GCgen0size=%s",
                  gen0 ? gen0 : "(unset)");

    return NGX_OK;
}


/*
 * Loads the managed library from the directory this module was loaded
 * from, RTLD_NODELETE (it can never be unloaded), resolves every export
 * and checks the ABI version.  The first managed call starts the runtime,
 * so this must only run in a process that will not fork afterwards.
 */

ngx_int_t
ngx_oauth_managed_load(ngx_log_t *log, u_char *err, size_t size)
{
    u_char      path[NGX_MAX_PATH];
    void       *lib, *sym;
    int32_t     version;
    ngx_uint_t  i;

    if (ngx_oauth_managed_ready) {
        return NGX_OK;
    }

    if (ngx_oauth_managed_path(path, sizeof(path)) != NGX_OK) {
        ngx_cpystrn(path, (u_char *) NGX_OAUTH_MANAGED_NAME, sizeof(path));
    }

    /*
     * The .NET GC sizes its first generation from the CPU's last-level
     * cache: on a 32 MiB L3 that is about 16 MiB of every worker's RSS for
     * a heap whose live data is a few hundred KiB.  1 MiB keeps the worker
     * small at no measurable cost (docs/PERFORMANCE.md).  The runtime reads
     * the knob when it starts, i.e. on the first call below; its value is
     * hexadecimal, without "0x".  An operator's own value, passed with
     * nginx's "env DOTNET_GCgen0size=...;", is kept.
     */
    (void) setenv("DOTNET_GCgen0size", NGX_OAUTH_GC_GEN0SIZE, 0);

    lib = dlopen((char *) path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);

    if (lib == NULL) {
        *ngx_snprintf(err, size - 1, "oauth: cannot load the managed library "
                      "\"%s\": %s", path, dlerror()) = '\0';
        return NGX_ERROR;
    }

    for (i = 0; i < sizeof(ngx_oauth_symbols) / sizeof(ngx_oauth_symbols[0]);
         i++)
    {
        sym = dlsym(lib, ngx_oauth_symbols[i].name);

        if (sym == NULL) {
            *ngx_snprintf(err, size - 1, "oauth: the managed library \"%s\" "
                          "has no symbol \"%s\"", path,
                          ngx_oauth_symbols[i].name) = '\0';
            return NGX_ERROR;
        }

        ngx_memcpy((u_char *) &ngx_oauth_managed + ngx_oauth_symbols[i].offset,
                   &sym, sizeof(void *));
    }

    version = ngx_oauth_managed.abi_version();

    if (version != NOX_ABI_VERSION) {
        *ngx_snprintf(err, size - 1, "oauth: the managed library \"%s\" has "
                      "ABI version %D, this module needs %d", path, version,
                      NOX_ABI_VERSION) = '\0';
        return NGX_ERROR;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_CORE, log, 0,
                   "oauth: managed library \"%s\" loaded", path);

    ngx_oauth_managed_ready = 1;

    return NGX_OK;
}


static ngx_int_t
ngx_oauth_managed_path(u_char *buf, size_t size)
{
    u_char   *slash;
    size_t    dir;
    Dl_info   info;

    if (dladdr((void *) &ngx_http_oauth_module, &info) == 0
        || info.dli_fname == NULL)
    {
        return NGX_ERROR;
    }

    slash = (u_char *) strrchr(info.dli_fname, '/');
    if (slash == NULL) {
        return NGX_ERROR;
    }

    dir = slash + 1 - (u_char *) info.dli_fname;

    if (dir + sizeof(NGX_OAUTH_MANAGED_NAME) > size) {
        return NGX_ERROR;
    }

    ngx_memcpy(buf, info.dli_fname, dir);
    ngx_memcpy(buf + dir, NGX_OAUTH_MANAGED_NAME,
               sizeof(NGX_OAUTH_MANAGED_NAME));

    return NGX_OK;
}


const char *
ngx_oauth_status_text(int32_t status)
{
    switch (status) {
    case NOX_OK:                  return "ok";
    case NOX_TOKEN_MALFORMED:     return "malformed token";
    case NOX_TOKEN_TOO_LARGE:     return "token too large";
    case NOX_ALG_NONE:            return "alg \"none\" is never accepted";
    case NOX_ALG_UNSUPPORTED:     return "unsupported or missing alg";
    case NOX_KEY_NOT_FOUND:       return "no key for the token's kid and alg";
    case NOX_BAD_SIGNATURE:       return "bad signature";
    case NOX_EXPIRED:             return "token expired";
    case NOX_NOT_YET_VALID:       return "token not yet valid (nbf)";
    case NOX_EXP_MISSING:         return "token has no numeric exp";
    case NOX_SUB_REVOKED:         return "sub is revoked";
    case NOX_KID_REVOKED:         return "kid is revoked or missing";
    case NOX_CLAIM_FAILED:        return "claim requirement failed";
    case NOX_HEADER_FAILED:       return "header requirement failed";
    case NOX_RULE_VALUE_INVALID:  return "expected value is not JSON";
    case NOX_NO_KEYS:             return "no keys to verify the signature";
    case NOX_CRIT_UNSUPPORTED:    return "unsupported crit header";
    case NOX_TIME_INVALID:        return "exp or nbf is not a number of "
                                         "seconds within 64 bits";
    case NOX_KEY_SKIPPED:         return "the key it needs was skipped when "
                                         "its set was loaded";
    case NOX_RULE_MATCH_LIMIT:    return "regex match limit exceeded";
    case NOX_NOT_FOUND:           return "not found";
    case NOX_TYPE_MISMATCH:       return "not the token type of "
                                         "auth_jwt_type";
    case NOX_DECRYPT_FAILED:      return "the token does not decrypt";
    case NOX_ZIP_UNSUPPORTED:     return "compressed (zip) JWE";
    case NOX_JSON_INVALID:        return "invalid JSON";
    case NOX_JSON_NOT_OBJECT:     return "not a JSON object";
    case NOX_JSON_EMPTY:          return "empty JSON object";
    case NOX_KEY_UNKNOWN_KTY:     return "unknown key type (kty)";
    case NOX_KEY_UNKNOWN_ALG:     return "unknown algorithm (alg)";
    case NOX_KEY_UNKNOWN_CURVE:   return "unknown curve (crv)";
    case NOX_KEY_BAD_PARAMETER:   return "missing or invalid key parameter";
    case NOX_KEY_RSA_TOO_SMALL:   return "RSA key shorter than 2048 bits";
    case NOX_KEY_RSA_TOO_LARGE:   return "RSA key longer than 16384 bits";
    case NOX_KEY_HMAC_TOO_SHORT:  return "HMAC key shorter than its hash";
    case NOX_KEY_BAD_PEM:         return "not a PEM public key";
    case NOX_KEY_ALG_MISMATCH:    return "alg does not match the key type";
    case NOX_KEYS_TOO_MANY:       return "too many keys";
    case NOX_KEYS_TOO_LARGE:      return "key set too large";
    case NOX_KEY_EMPTY_KID:       return "empty kid";
    case NOX_PATH_INVALID:        return "invalid claim path";
    case NOX_OPERATOR_INVALID:    return "invalid operator";
    case NOX_RESPONSE_INACTIVE:   return "token is not active";
    case NOX_RESPONSE_ACTIVE_INVALID:
                                  return "\"active\" missing or not a "
                                         "boolean";
    case NOX_RESPONSE_TOO_LARGE:  return "response larger than its limit";
    case NOX_RESPONSE_NO_TOKEN:   return "no \"access_token\" in the "
                                         "response";
    case NOX_VALUE_TYPE_INVALID:  return "expected value has the wrong type "
                                         "for the operator";
    case NOX_PATTERN_INVALID:     return "invalid regular expression (or "
                                         "longer than 1024 bytes)";
    case NOX_KEY_ENCRYPTION:      return "encryption key (use \"enc\" or a "
                                         "JWE alg)";
    case NOX_STS_REJECTED:        return "the STS refused the token";
    case NOX_STS_FORBIDDEN:       return "the STS denied access";
    case NOX_STS_SERVER_ERROR:    return "the STS failed";
    case NOX_XML_INVALID:         return "not a WS-Trust response";
    case NOX_XML_DTD:             return "a DTD or entity declaration";
    case NOX_TOKEN_CHARS:         return "the issued token has control "
                                         "characters or invalid UTF-8";
    case NOX_UTF8_INVALID:        return "the response is not valid UTF-8";
    case NOX_SOURCE_INVALID:      return "the source token cannot be used "
                                         "for this exchange";
    case NOX_STS_SETTING_UNKNOWN: return "unknown option";
    case NOX_STS_SETTING_INVALID: return "invalid value";
    case NOX_STS_KEY_INVALID:     return "not a usable private JWK for the "
                                         "algorithm";
    case NOX_ISSUER_MISMATCH:     return "iss is not the provider's issuer";
    case NOX_AT_TYPE_MISMATCH:    return "typ is not at+jwt";
    case NOX_LIFETIME_TOO_LONG:   return "lifetime (exp - iat) longer than "
                                         "max_lifetime";
    case NOX_IAT_MISSING:         return "no numeric iat";
    case NOX_AUDIENCE_MISMATCH:   return "aud names none of the provider's "
                                         "audiences";
    case NOX_E_ARGUMENT:          return "bad argument (internal)";
    case NOX_E_BUFFER_TOO_SMALL:  return "buffer too small (internal)";
    case NOX_E_HANDLE:            return "bad handle (internal)";
    case NOX_E_INTERNAL:          return "internal error in the managed core";
    default:                      return "unknown status";
    }
}


/* reads a whole configuration file into the cycle pool */

ngx_int_t
ngx_oauth_read_file(ngx_conf_t *cf, ngx_str_t *name, size_t max,
    ngx_str_t *content)
{
    u_char           *p;
    size_t            size;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_str_t        *value;
    ngx_file_info_t   fi;

    value = cf->args->elts;

    if (ngx_conf_full_name(cf->cycle, name, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"%V\": " ngx_open_file_n " \"%s\" failed",
                           &value[0],
                           name->data);
        return NGX_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"%V\": " ngx_fd_info_n " \"%s\" failed",
                           &value[0], name->data);
        goto failed;
    }

    size = (size_t) ngx_file_size(&fi);

    if (size > max) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": file \"%s\" is larger than %uz bytes",
                           &value[0], name->data, max);
        goto failed;
    }

    p = ngx_pnalloc(cf->pool, size + 1);
    if (p == NULL) {
        goto failed;
    }

    n = ngx_read_fd(fd, p, size);

    if (n == -1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"%V\": " ngx_read_fd_n " \"%s\" failed",
                           &value[0], name->data);
        goto failed;
    }

    if ((size_t) n != size) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": " ngx_read_fd_n " \"%s\" returned "
                           "only %z bytes instead of %uz", &value[0],
                           name->data, n, size);
        goto failed;
    }

    p[size] = '\0';
    content->data = p;
    content->len = size;

    ngx_close_file(fd);
    return NGX_OK;

failed:

    ngx_close_file(fd);
    return NGX_ERROR;
}


/*
 * The headers of a refusal: 401 challenges (RFC 6750 3: with
 * error="invalid_token" when a token was sent), 503 says when to retry.
 * Returns the status, or 500 when a header cannot be added.
 */

ngx_int_t
ngx_oauth_challenge(ngx_http_request_t *r, ngx_uint_t status,
    ngx_uint_t invalid)
{
    ngx_str_t         value;
    ngx_table_elt_t  *h;

    if (status == NGX_HTTP_SERVICE_UNAVAILABLE) {
        ngx_str_set(&value, NGX_OAUTH_RETRY_AFTER);

        return ngx_oauth_header_add(r->pool, &r->headers_out.headers,
                                    "Retry-After", &value)
               ? (ngx_int_t) status : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (status != NGX_HTTP_UNAUTHORIZED) {
        return status;
    }

    if (invalid) {
        ngx_str_set(&value, "Bearer error=\"invalid_token\"");

    } else {
        ngx_str_set(&value, "Bearer");
    }

    h = ngx_oauth_header_add(r->pool, &r->headers_out.headers,
                             "WWW-Authenticate", &value);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.www_authenticate = h;

    return status;
}


/*
 * In the validator child: does the managed core accept these STS-client
 * settings (name/value pairs)?  NULL if so; else the reason written after
 * what the caller already put into buf, naming the offending setting as
 * "<noun> \"<name>\"".
 */

u_char *
ngx_oauth_settings_check(nox_buf_t *settings, ngx_uint_t n,
    const char *noun, u_char *buf, u_char *last)
{
    int64_t    handle;
    int32_t    rc, detail;
    ngx_str_t  name;

    handle = 0;
    detail = -1;

    rc = ngx_oauth_managed.sts_create(settings, (int32_t) (2 * n), &handle,
                                      &detail);

    if (rc == NOX_OK) {
        (void) ngx_oauth_managed.sts_free(handle);
        return NULL;
    }

    if (detail < 0 || (ngx_uint_t) detail >= n) {
        return ngx_slprintf(buf, last, "%s", ngx_oauth_status_text(rc));
    }

    name.data = (u_char *) settings[2 * detail].data;
    name.len = settings[2 * detail].len;

    return ngx_slprintf(buf, last, "%s \"%V\": %s", noun, &name,
                        ngx_oauth_status_text(rc));
}


/* the number of the next generated IdP location (ngx_oauth_route_conf) */

ngx_uint_t
ngx_oauth_route_number(ngx_conf_t *cf)
{
    ngx_http_oauth_main_conf_t  *omcf;

    omcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_oauth_module);

    return ++omcf->routes;
}


/* a secret from a file: its content without the trailing line ends */

ngx_int_t
ngx_oauth_read_secret(ngx_conf_t *cf, ngx_str_t *name, size_t max,
    ngx_str_t *content)
{
    if (ngx_oauth_read_file(cf, name, max, content) != NGX_OK) {
        return NGX_ERROR;
    }

    while (content->len
           && (content->data[content->len - 1] == '\n'
               || content->data[content->len - 1] == '\r'))
    {
        content->len--;
    }

    return NGX_OK;
}


/* a value with variables, compiled (NULL after an error) */

ngx_http_complex_value_t *
ngx_oauth_complex_value(ngx_conf_t *cf, ngx_str_t *value)
{
    ngx_http_complex_value_t          *cv;
    ngx_http_compile_complex_value_t   ccv;

    cv = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (cv == NULL) {
        return NULL;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = value;
    ccv.complex_value = cv;

    return (ngx_http_compile_complex_value(&ccv) == NGX_OK) ? cv : NULL;
}


/*
 * The entry of value in an ngx_conf_enum_t table (ended by a null name),
 * compared without case when caseless (as ngx_conf_set_enum_slot() does);
 * NULL: none of them, the caller says which values it takes.
 */

ngx_conf_enum_t *
ngx_oauth_enum(ngx_conf_enum_t *e, ngx_str_t *value, ngx_uint_t caseless)
{
    for ( /* void */ ; e->name.len; e++) {
        if (e->name.len != value->len) {
            continue;
        }

        if ((caseless ? ngx_strncasecmp(e->name.data, value->data, value->len)
                      : ngx_strncmp(e->name.data, value->data, value->len))
            == 0)
        {
            return e;
        }
    }

    return NULL;
}


/*
 * Starts an in-memory, waited subrequest to an (internal) location with a
 * clean slate: no client headers and no client body reach the IdP or key
 * server.  The caller sets the method and body afterwards if it needs to.
 */

ngx_int_t
ngx_oauth_subrequest(ngx_http_request_t *r, ngx_str_t *uri,
    ngx_http_post_subrequest_t *ps, ngx_http_request_t **psr)
{
    return ngx_oauth_subrequest_ex(r, uri, ps, NGX_HTTP_SUBREQUEST_WAITED,
                                   psr);
}


/*
 * the same with other ngx_http_subrequest() flags (in memory always):
 * NGX_HTTP_SUBREQUEST_BACKGROUND for a call the main request does not
 * wait for
 */

ngx_int_t
ngx_oauth_subrequest_ex(ngx_http_request_t *r, ngx_str_t *uri,
    ngx_http_post_subrequest_t *ps, ngx_uint_t sflags,
    ngx_http_request_t **psr)
{
    u_char              *p;
    ngx_str_t            path, args;
    ngx_uint_t           flags;
    ngx_http_request_t  *sr;
    u_char               safe[ngx_oauth_log_safe_size(NGX_OAUTH_LOG_SAFE_MAX)];

    path = *uri;
    ngx_str_null(&args);
    flags = NGX_HTTP_LOG_UNSAFE;

    if (ngx_http_parse_unsafe_uri(r, &path, &args, &flags) != NGX_OK) {
        /* the uri may hold request variables */
        p = ngx_oauth_log_safe(safe, uri, NGX_OAUTH_LOG_SAFE_MAX);
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "oauth: unsafe subrequest uri \"%*s\"", p - safe,
                      safe);
        return NGX_ERROR;
    }

    if (ngx_http_subrequest(r, &path, &args, &sr, ps,
                            sflags|NGX_HTTP_SUBREQUEST_IN_MEMORY)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_memzero(&sr->headers_in, sizeof(ngx_http_headers_in_t));

    if (ngx_list_init(&sr->headers_in.headers, r->pool, 8,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    sr->headers_in.content_length_n = -1;
    sr->headers_in.keep_alive_n = -1;
    sr->headers_in.server = r->headers_in.server;
    sr->request_body = NULL;
    sr->header_only = 0;

    *psr = sr;

    return NGX_OK;
}


/*
 * Adds a header to a request's headers_in or headers_out list with every
 * field set: key, value, lowercased key and its hash (the proxy module
 * looks headers up by them), and on nginx >= 1.23 the "next" link of
 * multi-value headers, which ngx_list_push() leaves uninitialised (other
 * modules, auth_request among them, follow it).
 */

ngx_table_elt_t *
ngx_oauth_header_add(ngx_pool_t *pool, ngx_list_t *headers, const char *key,
    ngx_str_t *value)
{
    ngx_oauth_header_name_t  name;

    name.key.data = (u_char *) key;
    name.key.len = ngx_strlen(key);

    name.lowcase.data = ngx_pnalloc(pool, name.key.len);
    if (name.lowcase.data == NULL) {
        return NULL;
    }

    name.lowcase.len = name.key.len;
    name.hash = ngx_hash_strlow(name.lowcase.data, name.key.data,
                                name.key.len);

    return ngx_oauth_header_push(headers, &name, value);
}


/*
 * The token of "Authorization: Bearer <token>" (RFC 6750 2.1; the scheme
 * is case-insensitive, RFC 7235).  NGX_DECLINED: no such header or token.
 */

ngx_int_t
ngx_oauth_bearer_token(ngx_http_request_t *r, ngx_str_t *token)
{
    u_char           *p, *last;
    ngx_table_elt_t  *h;

    h = r->headers_in.authorization;

    if (h == NULL) {
        return NGX_DECLINED;
    }

    p = h->value.data;
    last = p + h->value.len;

    if (h->value.len <= sizeof("Bearer") - 1
        || ngx_strncasecmp(p, (u_char *) "Bearer", sizeof("Bearer") - 1) != 0
        || p[sizeof("Bearer") - 1] != ' ')
    {
        return NGX_DECLINED;
    }

    p += sizeof("Bearer") - 1;

    while (p < last && *p == ' ') {
        p++;
    }

    while (last > p && (last[-1] == ' ' || last[-1] == '\t')) {
        last--;
    }

    if (p == last) {
        return NGX_DECLINED;
    }

    token->data = p;
    token->len = last - p;

    return NGX_OK;
}


/*
 * A member of a decoded JSON object (token header, payload, IdP response)
 * rendered for a variable by the managed core, into r->pool.  NGX_DECLINED:
 * not found.  delim/quote may be NULL (used with NOX_PATH_NESTED).
 */

ngx_int_t
ngx_oauth_json_get(ngx_http_request_t *r, ngx_str_t *json, ngx_str_t *path,
    int32_t kind, ngx_str_t *delim, ngx_str_t *quote, ngx_str_t *value)
{
    u_char   *out;
    int32_t   rc, len, cap;

    /* strings only unescape and arrays lose brackets: json->len fits
       nearly always; the core says how much it needs otherwise */

    cap = (int32_t) json->len + 64;

    for ( ;; ) {
        out = ngx_pnalloc(r->pool, cap);
        if (out == NULL) {
            return NGX_ERROR;
        }

        len = 0;

        rc = ngx_oauth_managed.json_get(json->data, (int32_t) json->len,
                                        path->data, (int32_t) path->len, kind,
                                        delim ? delim->data : NULL,
                                        delim ? (int32_t) delim->len : 0,
                                        quote ? quote->data : NULL,
                                        quote ? (int32_t) quote->len : 0,
                                        out, cap, &len);

        if (rc == NOX_E_BUFFER_TOO_SMALL && len > cap) {
            cap = len;
            continue;
        }

        break;
    }

    if (rc == NOX_NOT_FOUND) {
        return NGX_DECLINED;
    }

    if (rc != NOX_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "oauth: cannot read \"%V\" from JSON: %s", path,
                      ngx_oauth_status_text(rc));
        return NGX_ERROR;
    }

    value->data = out;
    value->len = len;

    return NGX_OK;
}


/*
 * "*_require $value ... [error=code]": every value must start with a
 * variable; the code is 400 to 599 except 444 and 499 (default 401).
 */

char *
ngx_oauth_require_conf(ngx_conf_t *cf, ngx_array_t **requires)
{
    ngx_int_t                   status;
    ngx_str_t                  *value;
    ngx_uint_t                  i, n;
    ngx_oauth_require_t        *req;
    ngx_http_complex_value_t  **cv;

    value = cf->args->elts;
    n = cf->args->nelts;
    status = NGX_HTTP_UNAUTHORIZED;

    if (n > 2 && ngx_strncmp(value[n - 1].data, "error=", 6) == 0) {
        status = ngx_atoi(value[n - 1].data + 6, value[n - 1].len - 6);

        if (status == NGX_ERROR || status < 400 || status > 599
            || status == 444 || status == 499)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": invalid \"error=\" code \"%V\": it "
                               "must be 400 to 599 except 444 and 499",
                               &value[0], &value[n - 1]);
            return NGX_CONF_ERROR;
        }

        n--;
    }

    if (*requires == NULL) {
        *requires = ngx_array_create(cf->pool, 2, sizeof(ngx_oauth_require_t));
        if (*requires == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    req = ngx_array_push(*requires);
    if (req == NULL) {
        return NGX_CONF_ERROR;
    }

    req->status = status;
    req->values = ngx_array_create(cf->pool, n - 1,
                                   sizeof(ngx_http_complex_value_t *));
    if (req->values == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < n; i++) {
        if (value[i].len == 0 || value[i].data[0] != '$') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": value \"%V\" must start with a "
                               "variable", &value[0], &value[i]);
            return NGX_CONF_ERROR;
        }

        cv = ngx_array_push(req->values);
        if (cv == NULL) {
            return NGX_CONF_ERROR;
        }

        *cv = ngx_oauth_complex_value(cf, &value[i]);
        if (*cv == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * Evaluates "*_require" values in order.  NGX_DECLINED: one is empty or
 * "0"; *status is its directive's code and *failed its text.
 */

ngx_int_t
ngx_oauth_require_check(ngx_http_request_t *r, ngx_array_t *requires,
    ngx_uint_t *status, ngx_str_t **failed)
{
    ngx_str_t                   value;
    ngx_uint_t                  i, j;
    ngx_oauth_require_t        *req;
    ngx_http_complex_value_t  **cv;

    if (requires == NULL) {
        return NGX_OK;
    }

    req = requires->elts;

    for (i = 0; i < requires->nelts; i++) {
        cv = req[i].values->elts;

        for (j = 0; j < req[i].values->nelts; j++) {
            if (ngx_http_complex_value(r, cv[j], &value) != NGX_OK) {
                return NGX_ERROR;
            }

            if (value.len == 0 || (value.len == 1 && value.data[0] == '0')) {
                *status = req[i].status;
                *failed = &cv[j]->value;
                return NGX_DECLINED;
            }
        }
    }

    return NGX_OK;
}


/* list directives accumulate: the parent's entries come first */

ngx_int_t
ngx_oauth_merge_array(ngx_conf_t *cf, ngx_array_t **conf, ngx_array_t *prev,
    size_t size)
{
    void         *p;
    ngx_array_t  *a;

    if (prev == NULL || prev->nelts == 0) {
        return NGX_OK;
    }

    if (*conf == NULL || *conf == prev) {
        *conf = prev;
        return NGX_OK;
    }

    a = ngx_array_create(cf->pool, prev->nelts + (*conf)->nelts, size);
    if (a == NULL) {
        return NGX_ERROR;
    }

    p = ngx_array_push_n(a, prev->nelts);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, prev->elts, prev->nelts * size);

    p = ngx_array_push_n(a, (*conf)->nelts);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, (*conf)->elts, (*conf)->nelts * size);

    *conf = a;

    return NGX_OK;
}


/*
 * For post-subrequest handlers: collects the body of a finished in-memory
 * subrequest and tells whether the subrequest itself succeeded, i.e. ran
 * to its end and its whole answer arrived.
 *
 * A filter that gives up on an in-memory subrequest ("too big subrequest
 * response" past subrequest_output_buffer_size) makes
 * ngx_http_output_filter() set c->error on the connection the subrequest
 * shares with the main request: the client would be dropped without any
 * response.  Nothing of an in-memory subrequest is written to the client,
 * so unless the client itself went away the connection is intact: undo
 * that and report the failure, so the handler answers 500.
 *
 * An upstream that closes the connection before its answer is complete
 * leaves rc NGX_OK and a body that may well be complete JSON (nginx only
 * logs "upstream prematurely closed connection"):
 * ngx_oauth_subrequest_whole() tells.
 */

ngx_int_t
ngx_oauth_subrequest_done(ngx_http_request_t *sr, ngx_int_t rc,
    ngx_str_t *body)
{
    u_char            *p;
    ngx_connection_t  *c;
    u_char             safe[ngx_oauth_log_safe_size(NGX_OAUTH_LOG_SAFE_MAX)];

    if (ngx_oauth_subrequest_body(sr, body) != NGX_OK) {
        rc = NGX_ERROR;
    }

    c = sr->connection;

    if ((c->error || sr->filter_finalize)
        && rc != NGX_HTTP_CLIENT_CLOSED_REQUEST
        && !c->read->eof && !c->read->error && !c->write->error)
    {
        c->error = 0;
        sr->filter_finalize = 0;
        rc = NGX_ERROR;
    }

    if (rc == NGX_OK && ngx_oauth_subrequest_whole(sr, body) != NGX_OK) {
        /* the uri may come from request variables */
        p = ngx_oauth_log_safe(safe, &sr->uri, NGX_OAUTH_LOG_SAFE_MAX);
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "oauth: the answer to the subrequest \"%*s\" did not "
                      "arrive whole (%uz bytes, Content-Length %O): refused",
                      p - safe, safe, body->len,
                      sr->headers_out.content_length_n);
        rc = NGX_ERROR;
    }

    return (rc == NGX_OK) ? NGX_OK : NGX_ERROR;
}


/*
 * Whether an in-memory subrequest got its whole answer.  What nginx 1.22
 * leaves behind (observed with a proxy_pass location):
 *
 *   - any location: the body is shorter than headers_out.content_length_n
 *     when the upstream announced more than it sent;
 *   - proxy_buffering on (u->buffering, the default): the event pipe ends
 *     with upstream_done after the last byte of a Content-Length body or
 *     the last chunk; a close before that leaves upstream_eof (or
 *     upstream_error) without upstream_done; only a body without length
 *     (neither Content-Length nor chunked, p->length -1) ends at the close;
 *   - proxy_buffering off (or "X-Accel-Buffering: no" from the upstream):
 *     u->length counts down to 0 for a Content-Length body and for a
 *     chunked one once its last chunk arrived; -1 without length;
 *   - an answer from proxy_cache (sr->cached) never went through the pipe
 *     and was complete when it was stored.
 */

static ngx_int_t
ngx_oauth_subrequest_whole(ngx_http_request_t *sr, ngx_str_t *body)
{
    ngx_event_pipe_t     *p;
    ngx_http_upstream_t  *u;

    if (sr->headers_out.content_length_n >= 0
        && (off_t) body->len != sr->headers_out.content_length_n)
    {
        return NGX_DECLINED;
    }

    u = sr->upstream;

    if (u == NULL || sr->cached || sr->header_only) {
        return NGX_OK;
    }

    if (u->buffering) {
        p = u->pipe;

        if (p == NULL || p->upstream_done) {
            return NGX_OK;
        }

        return (p->upstream_eof && !p->upstream_error && p->length == -1)
               ? NGX_OK : NGX_DECLINED;
    }

    return (u->length == 0 || u->length == -1) ? NGX_OK : NGX_DECLINED;
}


/*
 * Writes a value from a token or an IdP (kid, iss, a claim, an IdP's
 * string) for a log line: printable ASCII as is, but control characters,
 * DEL, '"', '\\' and every byte from 0x80 as \xNN, so the value can
 * neither start a line of its own nor put raw bytes into the log; at most
 * max source bytes, then "...".  dst must hold
 * ngx_oauth_log_safe_size(max) bytes.  Returns the end of the output.
 */

u_char *
ngx_oauth_log_safe(u_char *dst, ngx_str_t *src, size_t max)
{
    u_char         c;
    size_t         i, n;
    static u_char  hex[] = "0123456789abcdef";

    n = ngx_min(src->len, max);

    for (i = 0; i < n; i++) {
        c = src->data[i];

        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            *dst++ = c;
            continue;
        }

        *dst++ = '\\';
        *dst++ = 'x';
        *dst++ = hex[c >> 4];
        *dst++ = hex[c & 0x0f];
    }

    if (src->len > max) {
        dst = ngx_cpymem(dst, "...", sizeof("...") - 1);
    }

    return dst;
}


/*
 * Sets a variable to a value from a token or an IdP answer with every
 * control character (0x00-0x1f, 0x7f) written as \xNN: a CR/LF in a claim
 * cannot end a header line of add_header, proxy_set_header or a log
 * format.  Other bytes are kept (token parts and IdP answers are valid
 * UTF-8); a value without control characters is used as is.
 */

ngx_int_t
ngx_oauth_variable_set(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    ngx_str_t *value)
{
    u_char         c, *p;
    size_t         i, n;
    static u_char  hex[] = "0123456789abcdef";

    n = 0;

    for (i = 0; i < value->len; i++) {
        c = value->data[i];

        if (c < 0x20 || c == 0x7f) {
            n++;
        }
    }

    if (n == 0) {
        v->data = value->data;
        v->len = value->len;

    } else {
        p = ngx_pnalloc(r->pool, value->len + 3 * n);
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->data = p;

        for (i = 0; i < value->len; i++) {
            c = value->data[i];

            if (c < 0x20 || c == 0x7f) {
                *p++ = '\\';
                *p++ = 'x';
                *p++ = hex[c >> 4];
                *p++ = hex[c & 0x0f];
                continue;
            }

            *p++ = c;
        }

        v->len = p - v->data;
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* the body of a finished in-memory subrequest */

ngx_int_t
ngx_oauth_subrequest_body(ngx_http_request_t *sr, ngx_str_t *body)
{
    u_char       *p;
    size_t        len;
    ngx_chain_t  *cl;

    ngx_str_null(body);

    if (sr->out == NULL) {
        return NGX_OK;
    }

    if (sr->out->next == NULL) {
        body->data = sr->out->buf->pos;
        body->len = sr->out->buf->last - sr->out->buf->pos;
        return NGX_OK;
    }

    len = 0;
    for (cl = sr->out; cl; cl = cl->next) {
        len += cl->buf->last - cl->buf->pos;
    }

    p = ngx_pnalloc(sr->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;
    body->len = len;

    for (cl = sr->out; cl; cl = cl->next) {
        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
    }

    return NGX_OK;
}


/*
 * A POST subrequest with an in-memory body (r's pool), its Content-Type
 * and, when not empty, an Authorization header
 */

ngx_int_t
ngx_oauth_subrequest_post(ngx_http_request_t *r, ngx_str_t *uri,
    ngx_http_post_subrequest_t *ps, ngx_str_t *type, ngx_str_t *authorization,
    ngx_str_t *body, ngx_http_request_t **psr)
{
    ngx_buf_t           *b;
    ngx_chain_t         *cl;
    ngx_table_elt_t     *h;
    ngx_http_request_t  *sr;

    static ngx_oauth_header_name_t  content_type = {
        ngx_string("Content-Type"), ngx_string("content-type"), 0
    };
    static ngx_oauth_header_name_t  authorization_name = {
        ngx_string("Authorization"), ngx_string("authorization"), 0
    };

    if (ngx_oauth_subrequest(r, uri, ps, psr) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "oauth: cannot start the subrequest to \"%V\"", uri);
        return NGX_ERROR;
    }

    sr = *psr;
    sr->method = NGX_HTTP_POST;
    ngx_str_set(&sr->method_name, "POST");

    h = ngx_oauth_header_push(&sr->headers_in.headers, &content_type, type);
    if (h == NULL) {
        return NGX_ERROR;
    }

    sr->headers_in.content_type = h;

    if (authorization && authorization->len) {
        h = ngx_oauth_header_push(&sr->headers_in.headers, &authorization_name,
                                  authorization);
        if (h == NULL) {
            return NGX_ERROR;
        }

        sr->headers_in.authorization = h;
    }

    sr->request_body = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
    b = ngx_calloc_buf(r->pool);
    cl = ngx_alloc_chain_link(r->pool);

    if (sr->request_body == NULL || b == NULL || cl == NULL) {
        return NGX_ERROR;
    }

    b->pos = body->data;
    b->last = body->data + body->len;
    b->start = b->pos;
    b->end = b->last;
    b->memory = 1;
    b->last_buf = 1;

    cl->buf = b;
    cl->next = NULL;

    sr->request_body->bufs = cl;
    sr->headers_in.content_length_n = body->len;

    return NGX_OK;
}


/*
 * A header of name and value at the end of headers.  A constant name
 * (static, hash 0) has its hash computed on first use, once per process;
 * ngx_oauth_header_add() passes a name it lowercased and hashed.
 */

static ngx_table_elt_t *
ngx_oauth_header_push(ngx_list_t *headers, ngx_oauth_header_name_t *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    if (name->hash == 0) {
        name->hash = ngx_hash_key(name->lowcase.data, name->lowcase.len);
    }

    h = ngx_list_push(headers);
    if (h == NULL) {
        return NULL;
    }

    h->key = name->key;
    h->lowcase_key = name->lowcase.data;
    h->value = *value;
    h->hash = name->hash;

#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return h;
}


/* application/x-www-form-urlencoded (RFC 6749 appendix B); 3 x len room */

u_char *
ngx_oauth_form_encode(u_char *dst, ngx_str_t *src)
{
    u_char         c;
    size_t         i;
    static u_char  hex[] = "0123456789ABCDEF";

    for (i = 0; i < src->len; i++) {
        c = src->data[i];

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
            || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
            || c == '*')
        {
            *dst++ = c;

        } else if (c == ' ') {
            *dst++ = '+';

        } else {
            *dst++ = '%';
            *dst++ = hex[c >> 4];
            *dst++ = hex[c & 0x0f];
        }
    }

    return dst;
}


/*
 * Builds an IdP or STS request with nox_sts_request into a pool buffer of
 * cap bytes (after head spare bytes the caller fills in later), growing it
 * once to the size the core asks for.  NGX_ERROR: out of memory; otherwise
 * NGX_OK with the core's status in *rc and, for NOX_OK, the request in
 * *out (lens[0..2] as nox_sts_request says).
 */

ngx_int_t
ngx_oauth_sts_build(ngx_http_request_t *r, int64_t handle, ngx_str_t *source,
    nox_buf_t *values, ngx_uint_t n, size_t cap, size_t head, u_char **out,
    int32_t *lens, int64_t *ttl, int32_t *rc)
{
    u_char  *p;

    for ( ;; ) {
        p = ngx_pnalloc(r->pool, head + cap);
        if (p == NULL) {
            return NGX_ERROR;
        }

        p += head;

        lens[0] = lens[1] = lens[2] = 0;
        *ttl = 0;

        *rc = ngx_oauth_managed.sts_request(handle, source->data,
                                            (int32_t) source->len, values,
                                            (int32_t) n, (int64_t) ngx_time(),
                                            p, (int32_t) cap, lens, ttl);

        if (*rc != NOX_E_BUFFER_TOO_SMALL || (size_t) lens[0] <= cap) {
            *out = p;
            return NGX_OK;
        }

        cap = lens[0];
    }
}
