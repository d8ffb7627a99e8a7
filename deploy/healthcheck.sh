#!/usr/bin/env bash
# Docker HEALTHCHECK for `patron daemon` (installed as /usr/local/bin/patron-healthcheck).
#
# The slim runtime image has no curl or wget, so this speaks just enough HTTP/1.1 over bash's
# /dev/tcp: GET /healthz on loopback, at the port of PATRON__DAEMON__HTTP_ADDR (default 9464),
# and succeeds only on a 200 status line. Loopback reaches a daemon bound to 0.0.0.0 or to
# 127.0.0.1. Exit 0 = healthy, 1 = unhealthy (Docker's convention).
set -u

addr=${PATRON__DAEMON__HTTP_ADDR:-127.0.0.1:9464}
port=${addr##*:}
host=${PATRON_HEALTHCHECK_HOST:-127.0.0.1}

exec 3<>"/dev/tcp/${host}/${port}" || exit 1
printf 'GET /healthz HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$host" >&3 || exit 1
IFS=' ' read -r -t 4 _version status _reason <&3 || exit 1
[ "${status%$'\r'}" = 200 ] || exit 1
