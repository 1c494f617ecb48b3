#!/bin/sh
# The entrypoint of a gateway of compose.yaml: gateway.conf with this
# gateway's settings (the environment compose.yaml sets) put in place, then
# nginx in the foreground.
set -eu
: "${GATEWAY_NAME:?}" "${GATEWAY_PORT:?}" "${REDIS_ADDRESS:?}" "${INTROSPECT_URL:?}"
sed -e "s|@GATEWAY_NAME@|$GATEWAY_NAME|g" \
    -e "s|@GATEWAY_PORT@|$GATEWAY_PORT|g" \
    -e "s|@REDIS_ADDRESS@|$REDIS_ADDRESS|g" \
    -e "s|@INTROSPECT_URL@|$INTROSPECT_URL|g" \
    /etc/nginx/fleet/gateway.conf > /etc/nginx/nginx.conf
exec nginx -g 'daemon off;'
