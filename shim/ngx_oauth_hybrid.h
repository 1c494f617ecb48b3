/*
 * NginxOAuth shim: one location for JWT and opaque tokens
 * (auth_jwt_introspect).  The JWT module's handler drives the location:
 * a JWS of the location is verified locally, any other token is
 * introspected by the auth_oauth2_token module (its machinery, cache and
 * variables), and with "all" a verified JWS is introspected as well.
 * The auth_oauth2_token handler stands aside in such a location.
 */

#ifndef _NGX_OAUTH_HYBRID_H_INCLUDED_
#define _NGX_OAUTH_HYBRID_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


#define NGX_OAUTH_HYBRID_OFF     0
#define NGX_OAUTH_HYBRID_OPAQUE  1   /* JWS: locally; others: introspected */
#define NGX_OAUTH_HYBRID_ALL     2   /* JWS: locally, then introspected */


/*
 * The JWT side of the location being merged (cf->ctx): its
 * auth_jwt_introspect mode (OFF unless auth_jwt is on), its phase
 * (0 access, 1 preaccess) and where the mode was set.
 */
ngx_uint_t ngx_http_auth_jwt_hybrid_conf(ngx_conf_t *cf, ngx_uint_t *phase,
    ngx_str_t *file, ngx_uint_t *line);

/* whether auth_jwt took this request's token through local verification */
ngx_uint_t ngx_http_auth_jwt_checked(ngx_http_request_t *r);

/*
 * The auth_oauth2_token steps for a token the JWT handler hands over:
 * introspection (unless introspect is 0), auth_oauth2_token_require, then
 * the exchange if it is on.  NGX_OK, NGX_AGAIN (call again), or the
 * status to answer (with auth_oauth2_token's challenge).
 */
ngx_int_t ngx_http_oauth2_token_hybrid(ngx_http_request_t *r,
    ngx_str_t *token, ngx_uint_t introspect);

/* whether auth_oauth2_token introspected this request's token */
ngx_uint_t ngx_http_oauth2_token_introspected(ngx_http_request_t *r);


#endif /* _NGX_OAUTH_HYBRID_H_INCLUDED_ */
