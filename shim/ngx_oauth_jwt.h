/*
 * NginxOAuth shim: what the auth_jwt module offers the other modules.
 */

#ifndef NGX_OAUTH_JWT_H
#define NGX_OAUTH_JWT_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/*
 * Is token a compact JWS whose (unverified) "iss" names one of the
 * auth_jwt_provider of r's location?  NGX_OK with *issuer set to that
 * provider's issuer; NGX_DECLINED when not (auth_jwt off, no providers,
 * not a JWS, no iss, an unknown iss); NGX_ERROR.  Nothing is verified:
 * the auth_jwt handler does that with the provider's keys.
 */
ngx_int_t ngx_oauth_jwt_provider_match(ngx_http_request_t *r,
    ngx_str_t *token, ngx_str_t *issuer);


#endif /* NGX_OAUTH_JWT_H */
