#!/bin/sh
# Stand-in for the official nginx image's entrypoint, for what skein's compose
# file uses: /docker-entrypoint.d/*.envsh (sourced, in order, when executable)
# and /etc/nginx/templates/*.template, written to /etc/nginx/conf.d/ with the
# environment's variables substituted (only variables that are set, so nginx's
# own $variables stay).
set -eu
if [ "${1:-}" = nginx ]; then
  for f in /docker-entrypoint.d/*.envsh; do
    if [ -x "$f" ]; then . "$f"; fi
  done
  if [ -d /etc/nginx/templates ]; then
    defined="$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/${\1}/p' | tr '\n' ' ')"
    for t in /etc/nginx/templates/*.template; do
      [ -e "$t" ] || continue
      out="/etc/nginx/conf.d/$(basename "$t" .template)"
      envsubst "$defined" < "$t" > "$out"
    done
  fi
fi
exec "$@"
