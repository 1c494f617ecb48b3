/*
 * NginxOAuth shim: the request as it goes on, shared by the feature
 * modules.
 *
 *   - places: a header, a cookie or a query argument of the request to the
 *     upstream, where a token is removed from or put into
 *     (ngx_oauth_place_parse, ngx_oauth_place_set);
 *   - routes: an absolute IdP URL becomes an internal location that
 *     proxy_passes to it, generated while the configuration is parsed, so
 *     that subrequests reach it (ngx_oauth_route_conf), with its transport
 *     options (ngx_oauth_route_option);
 *   - option strings "name=value&..." of directives, in the style of the
 *     modules we replace (ngx_oauth_form_each).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_oauth_core.h"


#define NGX_OAUTH_ROUTE_BUFFER_SIZE  "1m"   /* > the largest IdP answer read */


static ngx_int_t ngx_oauth_list_edit(ngx_pool_t *pool, ngx_str_t *list,
    ngx_uint_t cookie, ngx_str_t *name, ngx_str_t *item);
static ngx_int_t ngx_oauth_headers_drop(ngx_http_request_t *r,
    ngx_str_t *name);
static ngx_int_t ngx_oauth_form_decode(ngx_pool_t *pool, ngx_str_t *s);


/*
 * The directive being parsed, for messages of helpers that several
 * directives share ("STS" once parsing is over, at the merge).
 */

ngx_str_t *
ngx_oauth_directive_name(ngx_conf_t *cf)
{
    static ngx_str_t  unknown = ngx_string("oauth");

    if (cf->args == NULL || cf->args->nelts == 0) {
        return &unknown;
    }

    return cf->args->elts;
}


/*
 * authorization | header:NAME | cookie:NAME | query:NAME; for the target
 * also bearer (Authorization: Bearer <target>)
 */

char *
ngx_oauth_place_parse(ngx_conf_t *cf, ngx_str_t *spec,
    ngx_oauth_place_t *place, ngx_uint_t target)
{
    u_char  *colon;

    colon = ngx_strlchr(spec->data, spec->data + spec->len, ':');

    if (colon == NULL) {
        if (ngx_strcasecmp(spec->data, (u_char *) "authorization") == 0
            || (target
                && ngx_strcasecmp(spec->data, (u_char *) "bearer") == 0))
        {
            place->in = target ? NGX_OAUTH_PLACE_BEARER
                               : NGX_OAUTH_PLACE_HEADER;
            ngx_str_set(&place->name, "Authorization");
            return NGX_CONF_OK;
        }

        goto invalid;
    }

    place->name.data = colon + 1;
    place->name.len = spec->data + spec->len - colon - 1;

    if (place->name.len == 0) {
        goto invalid;
    }

    if (ngx_strncmp(spec->data, "header:", 7) == 0) {
        place->in = NGX_OAUTH_PLACE_HEADER;

    } else if (ngx_strncmp(spec->data, "cookie:", 7) == 0) {
        place->in = NGX_OAUTH_PLACE_COOKIE;

    } else if (ngx_strncmp(spec->data, "query:", 6) == 0) {
        place->in = NGX_OAUTH_PLACE_QUERY;

    } else {
        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%V\": invalid place \"%V\": expected %s "
                       "header:NAME, cookie:NAME or query:NAME",
                       ngx_oauth_directive_name(cf), spec,
                       target ? "bearer," : "authorization,");
    return NGX_CONF_ERROR;
}


/* ---- the source token out, the target token in ------------------------ */

/*
 * Removes the header, cookie or query argument of this place; with a
 * token, then puts the token there (so a client cannot send its own).
 */

ngx_int_t
ngx_oauth_place_set(ngx_http_request_t *r, ngx_oauth_place_t *place,
    ngx_str_t *token)
{
    u_char           *p;
    ngx_str_t         item, *add;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *first;

    if (place->in == 0) {
        return NGX_OK;
    }

    add = NULL;

    if (token) {
        item.len = sizeof("Bearer ") - 1 + place->name.len + 1
                   + 3 * token->len;
        item.data = ngx_pnalloc(r->pool, item.len);
        if (item.data == NULL) {
            return NGX_ERROR;
        }

        p = item.data;

        if (place->in == NGX_OAUTH_PLACE_BEARER) {
            p = ngx_cpymem(p, "Bearer ", sizeof("Bearer ") - 1);

        } else if (place->in != NGX_OAUTH_PLACE_HEADER) {
            p = ngx_cpymem(p, place->name.data, place->name.len);
            *p++ = '=';
        }

        p = (place->in == NGX_OAUTH_PLACE_QUERY)
            ? ngx_oauth_form_encode(p, token)
            : ngx_cpymem(p, token->data, token->len);

        item.len = p - item.data;
        add = &item;
    }

    if (place->in == NGX_OAUTH_PLACE_QUERY) {
        r->valid_unparsed_uri = 0;
        return ngx_oauth_list_edit(r->pool, &r->args, 0, &place->name,
                                      add);
    }

    if (place->in == NGX_OAUTH_PLACE_COOKIE) {
        first = NULL;
        part = &r->headers_in.headers.part;
        h = part->elts;

        for (i = 0; /* void */; i++) {

            if (i >= part->nelts) {
                if (part->next == NULL) {
                    break;
                }

                part = part->next;
                h = part->elts;
                i = 0;
            }

            if (h[i].key.len != sizeof("Cookie") - 1
                || ngx_strncasecmp(h[i].key.data, (u_char *) "Cookie",
                                   sizeof("Cookie") - 1) != 0)
            {
                continue;
            }

            if (ngx_oauth_list_edit(r->pool, &h[i].value, 1, &place->name,
                                       first ? NULL : add)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            first = &h[i];
        }

        if (first || add == NULL) {
            return NGX_OK;
        }

        return ngx_oauth_header_add(r->pool, &r->headers_in.headers, "Cookie",
                                    add) ? NGX_OK : NGX_ERROR;
    }

    /* a header: every one of this name goes, then the new one */

    if (ngx_oauth_headers_drop(r, &place->name) != NGX_OK) {
        return NGX_ERROR;
    }

    if (add) {
        h = ngx_oauth_header_add(r->pool, &r->headers_in.headers,
                                 (const char *) place->name.data, add);
        if (h == NULL) {
            return NGX_ERROR;
        }

        if (place->name.len == sizeof("Authorization") - 1
            && ngx_strncasecmp(place->name.data, (u_char *) "Authorization",
                               place->name.len) == 0)
        {
            r->headers_in.authorization = h;
        }
    }

    return NGX_OK;
}


/*
 * A list of name=value items (a Cookie header, "; "-separated, or the
 * query string, "&"-separated) without the items called name, and with
 * item at its end when given.
 */

static ngx_int_t
ngx_oauth_list_edit(ngx_pool_t *pool, ngx_str_t *list, ngx_uint_t cookie,
    ngx_str_t *name, ngx_str_t *item)
{
    u_char   *p, *end, *start, *eq, *out, *o, sep;
    size_t    len;

    sep = cookie ? ';' : '&';

    /* a cookie separator may grow from ";" to "; " */

    out = ngx_pnalloc(pool, 2 * list->len + 2 + (item ? item->len : 0));
    if (out == NULL) {
        return NGX_ERROR;
    }

    o = out;
    p = list->data;
    end = p + list->len;

    while (p < end) {
        while (p < end && (*p == sep || (cookie && *p == ' '))) {
            p++;
        }

        start = p;

        while (p < end && *p != sep) {
            p++;
        }

        eq = ngx_strlchr(start, p, '=');
        len = (eq ? eq : p) - start;

        if (start == p
            || (len == name->len && ngx_strncmp(start, name->data, len) == 0))
        {
            continue;
        }

        if (o != out) {
            *o++ = sep;
            o = cookie ? ngx_cpymem(o, " ", 1) : o;
        }

        o = ngx_cpymem(o, start, p - start);
    }

    if (item) {
        if (o != out) {
            *o++ = sep;
            o = cookie ? ngx_cpymem(o, " ", 1) : o;
        }

        o = ngx_cpymem(o, item->data, item->len);
    }

    list->data = out;
    list->len = o - out;

    return NGX_OK;
}


/* headers_in without every header of this name (a list cannot shrink) */

static ngx_int_t
ngx_oauth_headers_drop(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_uint_t        i, found;
    ngx_list_t        list;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *n;

    found = 0;

    if (ngx_list_init(&list, r->pool, 16, sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == name->len
            && ngx_strncasecmp(h[i].key.data, name->data, name->len) == 0)
        {
            found = 1;
            continue;
        }

        n = ngx_list_push(&list);
        if (n == NULL) {
            return NGX_ERROR;
        }

        *n = h[i];
    }

    if (!found) {
        return NGX_OK;
    }

    r->headers_in.headers = list;

    if (list.last == &list.part) {
        r->headers_in.headers.last = &r->headers_in.headers.part;
    }

    /* the shortcuts pointed into the old list: only this one can matter */

    if (name->len == sizeof("Authorization") - 1
        && ngx_strncasecmp(name->data, (u_char *) "Authorization",
                           name->len) == 0)
    {
        r->headers_in.authorization = NULL;
    }

    return NGX_OK;
}


/*
 * An absolute URL becomes an internal location of this server that
 * proxy_passes to it (with rt->prefix, a prefix location "uri/" that
 * passes the rest of the request's path to the URL's origin), parsed from generated text in the server's context:
 * TLS verification against the system CA bundle (or ca_file), SNI, the
 * timeouts, the client certificate, and room for the whole answer.  A URI
 * starting with "/" is the operator's own location, used as it is.
 */

char *
ngx_oauth_route_conf(ngx_conf_t *cf, ngx_oauth_route_t *rt, const char *prefix)
{
    u_char                    *p, *text, *last;
    size_t                     len;
    ngx_buf_t                  b;
    ngx_uint_t                 https, i;
    ngx_conf_t                 save;
    ngx_str_t                 *s[4];
    ngx_conf_file_t            file;
    ngx_http_core_srv_conf_t  *cscf;

    if (rt->url.len && rt->url.data[0] == '/') {
        rt->uri = rt->url;
        return NGX_CONF_OK;
    }

    https = (rt->url.len > 8
             && ngx_strncasecmp(rt->url.data, (u_char *) "https://", 8) == 0);

    if (!https && !(rt->url.len > 7
                    && ngx_strncasecmp(rt->url.data, (u_char *) "http://", 7)
                       == 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": invalid endpoint \"%V\": expected an "
                           "http:// or https:// URL, or the URI of a location",
                           ngx_oauth_directive_name(cf), &rt->url);
        return NGX_CONF_ERROR;
    }

    /* the generated text quotes these: no quote, backslash, $ or space */

    s[0] = &rt->url;
    s[1] = &rt->cert;
    s[2] = &rt->key;
    s[3] = &rt->ca;

    for (i = 0; i < 4; i++) {
        for (p = s[i]->data; p < s[i]->data + s[i]->len; p++) {
            if (*p <= ' ' || *p == 0x7f || ngx_strchr("\"\\${};", *p)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": invalid character in \"%V\"",
                                   ngx_oauth_directive_name(cf), s[i]);
                return NGX_CONF_ERROR;
            }
        }
    }

    if ((rt->cert.len == 0) != (rt->key.len == 0)
        || (rt->cert.len && !https))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": a client certificate needs both \"cert\" "
                           "and \"key\", and an https:// endpoint",
                           ngx_oauth_directive_name(cf));
        return NGX_CONF_ERROR;
    }

    len = 1024 + rt->url.len + rt->cert.len + rt->key.len + rt->ca.len;

    text = ngx_pnalloc(cf->pool, len);
    rt->uri.data = ngx_pnalloc(cf->pool, ngx_strlen(prefix) + NGX_INT_T_LEN);

    if (text == NULL || rt->uri.data == NULL) {
        return NGX_CONF_ERROR;
    }

    rt->uri.len = ngx_sprintf(rt->uri.data, "%s%ui", prefix,
                              ngx_oauth_route_number(cf))
                  - rt->uri.data;

    last = text + len;

    p = ngx_slprintf(text, last,
                     "location %s%V%s { internal; proxy_pass \"%V\"; "
                     "proxy_connect_timeout %Mms; proxy_send_timeout %Mms; "
                     "proxy_read_timeout %Mms; proxy_next_upstream off; "
                     "proxy_redirect off; proxy_intercept_errors off; "
                     "proxy_buffering on; subrequest_output_buffer_size "
                     NGX_OAUTH_ROUTE_BUFFER_SIZE "; ",
                     rt->prefix ? "^~ " : "= ", &rt->uri,
                     rt->prefix ? "/" : "", &rt->url, rt->timeout, rt->timeout,
                     rt->timeout);

    /*
     * No TLS session reuse: nginx keeps sessions per upstream server, and
     * every location that proxy_passes to one host:port shares it.  A
     * session resumed in another endpoint location would carry that
     * location's verification result (another CA file, or none) and
     * client certificate into this one.
     */

    if (https) {
        p = ngx_slprintf(p, last, "proxy_ssl_server_name on; "
                         "proxy_ssl_session_reuse off; proxy_ssl_verify %s; ",
                         rt->verify ? "on" : "off");
    }

    if (https && rt->verify) {
        p = ngx_slprintf(p, last, "proxy_ssl_verify_depth 8; "
                         "proxy_ssl_trusted_certificate \"%V\"; ",
                         rt->ca.len ? &rt->ca : &(ngx_str_t)
                         ngx_string("/etc/ssl/certs/ca-certificates.crt"));
    }

    if (rt->cert.len) {
        p = ngx_slprintf(p, last, "proxy_ssl_certificate \"%V\"; "
                         "proxy_ssl_certificate_key \"%V\"; ",
                         &rt->cert, &rt->key);
    }

    p = ngx_slprintf(p, last, "} }");

    /* parse it as a block of the server, reported at this line */

    cscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_core_module);

    ngx_memzero(&b, sizeof(ngx_buf_t));
    b.start = text;
    b.pos = text;
    b.last = p;
    b.end = p;
    b.temporary = 1;

    ngx_memzero(&file, sizeof(ngx_conf_file_t));
    file.file.fd = 0;    /* anything but NGX_INVALID_FILE: a block */
    file.file.name = cf->conf_file->file.name;
    file.file.log = cf->log;
    file.line = cf->conf_file->line;
    file.buffer = &b;

    save = *cf;

    cf->args = ngx_array_create(cf->temp_pool, 10, sizeof(ngx_str_t));
    if (cf->args == NULL) {
        return NGX_CONF_ERROR;
    }

    cf->ctx = cscf->ctx;
    cf->cmd_type = NGX_HTTP_SRV_CONF;
    cf->conf_file = &file;
    cf->handler = NULL;

    p = (u_char *) ngx_conf_parse(cf, NULL);

    *cf = save;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, cf->log, 0,
                   "oauth: \"%V\" through \"%V\"", &rt->url, &rt->uri);

    return ((char *) p == NGX_CONF_OK) ? NGX_CONF_OK : NGX_CONF_ERROR;
}


/*
 * A transport option of an endpoint: ssl_verify (on|true|yes|1 or
 * off|false|no|0), http_timeout, cert, key, ca_file.  NGX_DECLINED: not
 * one of these; NGX_ERROR: an invalid value (logged).
 */

ngx_int_t
ngx_oauth_route_option(ngx_conf_t *cf, ngx_oauth_route_t *rt,
    ngx_str_t *name, ngx_str_t *value)
{
    ngx_uint_t  i;

    static const char  *flags[] = {
        "off", "false", "no", "0", "on", "true", "yes", "1", NULL
    };

    if (ngx_strcmp(name->data, "ssl_verify") == 0) {
        for (i = 0; flags[i]; i++) {
            if (ngx_strcasecmp(value->data, (u_char *) flags[i]) == 0) {
                rt->verify = (i >= 4);
                return NGX_OK;
            }
        }

    } else if (ngx_strcmp(name->data, "http_timeout") == 0) {
        rt->timeout = ngx_oauth_seconds_msec(value);

        if (rt->timeout != (ngx_msec_t) NGX_ERROR) {
            return NGX_OK;
        }

    } else if (ngx_strcmp(name->data, "cert") == 0) {
        rt->cert = *value;
        return NGX_OK;

    } else if (ngx_strcmp(name->data, "key") == 0) {
        rt->key = *value;
        return NGX_OK;

    } else if (ngx_strcmp(name->data, "ca_file") == 0) {
        rt->ca = *value;
        return NGX_OK;

    } else {
        return NGX_DECLINED;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%V\": invalid value \"%V\" of option \"%V\"",
                       ngx_oauth_directive_name(cf), value, name);
    return NGX_ERROR;
}


/* seconds, as the anchor; nginx time units work too */

ngx_msec_t
ngx_oauth_seconds_msec(ngx_str_t *value)
{
    ngx_int_t   n;
    ngx_msec_t  msec;

    n = ngx_atoi(value->data, value->len);

    msec = (n != NGX_ERROR) ? (ngx_msec_t) n * 1000
                            : (ngx_msec_t) ngx_parse_time(value, 0);

    return (msec == 0) ? (ngx_msec_t) NGX_ERROR : msec;
}


/*
 * Walks a form string "a=1&b=2": names and values are percent-decoded
 * into NUL-terminated copies and passed to the handler.
 */

char *
ngx_oauth_form_each(ngx_conf_t *cf, ngx_str_t *form,
    ngx_oauth_pair_pt handler, void *data)
{
    char       *rv;
    u_char     *p, *end, *start, *eq;
    ngx_str_t   name, value;

    p = form->data;
    end = p + form->len;

    for ( /* void */ ; p < end; p++) {
        start = p;

        while (p < end && *p != '&') {
            p++;
        }

        if (p == start) {
            continue;
        }

        eq = ngx_strlchr(start, p, '=');

        name.data = start;
        name.len = (eq ? eq : p) - start;
        value.data = eq ? eq + 1 : p;
        value.len = eq ? (size_t) (p - eq - 1) : 0;

        if (ngx_oauth_form_decode(cf->pool, &name) != NGX_OK
            || ngx_oauth_form_decode(cf->pool, &value) != NGX_OK
            || name.len == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": invalid options \"%V\": expected "
                               "name=value&...",
                               ngx_oauth_directive_name(cf), form);
            return NGX_CONF_ERROR;
        }

        rv = handler(cf, data, &name, &value);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    return NGX_CONF_OK;
}


/* percent- and plus-decoding into a new NUL-terminated copy */

static ngx_int_t
ngx_oauth_form_decode(ngx_pool_t *pool, ngx_str_t *s)
{
    u_char      *d, *p, *end;
    ngx_int_t    c;

    d = ngx_pnalloc(pool, s->len + 1);
    if (d == NULL) {
        return NGX_ERROR;
    }

    p = s->data;
    end = p + s->len;
    s->data = d;

    while (p < end) {
        if (*p == '%') {
            c = (end - p < 3) ? NGX_ERROR : ngx_hextoi(p + 1, 2);

            if (c == NGX_ERROR || c == 0) {
                return NGX_ERROR;
            }

            *d++ = (u_char) c;
            p += 3;

        } else {
            *d++ = (*p == '+') ? ' ' : *p;
            p++;
        }
    }

    *d = '\0';
    s->len = d - s->data;

    return NGX_OK;
}
