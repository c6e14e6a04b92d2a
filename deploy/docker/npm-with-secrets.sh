#!/bin/sh
# npm inside the image build, with the optional build secrets (Dockerfile,
# RUN --mount=type=secret): npm_ca, a PEM file of the CA(s) npm must trust (a
# TLS-intercepting proxy, a private registry), and npmrc, an .npmrc (registry,
# auth token). Secrets are mounted only for that RUN step: no layer keeps them.
set -eu
export npm_config_update_notifier=false
if [ -s /run/secrets/npm_ca ]; then
  export npm_config_cafile=/run/secrets/npm_ca NODE_EXTRA_CA_CERTS=/run/secrets/npm_ca
fi
if [ -s /run/secrets/npmrc ]; then
  export npm_config_userconfig=/run/secrets/npmrc
fi
exec npm "$@"
