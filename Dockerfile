# syntax=docker/dockerfile:1
# Two images from one file: `--target session` and `--target fleet`.
# Behind a TLS-intercepting proxy or with a private registry, give npm its CA
# and/or an .npmrc as build secrets (never baked into a layer):
#   docker build --secret id=npm_ca,src=$(npm config get cafile) --secret id=npmrc,src=$HOME/.npmrc --target session .
# Air-gapped: deploy/offline/build-base-images.sh makes the base images (docs/containers.md).
ARG NODE_VERSION=22

# ---- manifests: the package.json files npm ci needs (every workspace's), nothing else ----
FROM scratch AS manifests
COPY package.json package-lock.json /app/
COPY packages/host/package.json /app/packages/host/
COPY packages/proto/package.json /app/packages/proto/
COPY packages/runtime/package.json /app/packages/runtime/
COPY packages/goose-sessions/package.json /app/packages/goose-sessions/
COPY packages/testkit/package.json /app/packages/testkit/
COPY packages/cli/package.json /app/packages/cli/
COPY services/session/package.json /app/services/session/
COPY services/fleet/package.json /app/services/fleet/
COPY bench/package.json /app/bench/

# ---- build: all dependencies, better-sqlite3 compiled (once), generated contracts, compiled JS ----
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY --from=manifests /app/ ./
# node-gyp takes Node's headers from the base image instead of downloading them
# (better-sqlite3 builds from source when its prebuilt binary is unreachable).
ENV npm_config_nodedir=/usr/local
COPY deploy/docker/npm-with-secrets.sh /usr/local/bin/npm-with-secrets
RUN --mount=type=secret,id=npm_ca --mount=type=secret,id=npmrc \
    npm-with-secrets ci --no-audit --no-fund
COPY tsconfig.base.json tsconfig.json buf.yaml buf.gen.yaml ./
COPY proto proto
COPY scripts scripts
COPY packages packages
COPY services services
RUN node scripts/generate.mjs \
 && node node_modules/typescript/bin/tsc -b packages/cli services/session services/fleet

# ---- prod-deps: production dependencies only, no install scripts; the native
# addon comes from the build stage (no second compile, no build/ or deps/ trees).
# Never needed at run time: TypeScript sources and types, source maps, docs,
# the testkit and bench workspaces (their links would dangle). ----
FROM node:${NODE_VERSION}-bookworm-slim AS prod-deps
WORKDIR /app
COPY --from=manifests /app/ ./
COPY deploy/docker/npm-with-secrets.sh /usr/local/bin/npm-with-secrets
RUN --mount=type=secret,id=npm_ca --mount=type=secret,id=npmrc \
    npm-with-secrets ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/@skein/testkit node_modules/@skein/bench node_modules/@types \
          node_modules/better-sqlite3/deps node_modules/better-sqlite3/src \
 && find node_modules \( -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.map' -o -name '*.md' \) -type f -delete
COPY --from=build /app/node_modules/better-sqlite3/build/Release/better_sqlite3.node node_modules/better-sqlite3/build/Release/

# ---- base: production dependencies and the shared packages, non-root, an init ----
FROM node:${NODE_VERSION}-bookworm-slim AS base
ENV NODE_ENV=production \
    SKEIN_LOG_FORMAT=json
# tini as pid 1: forwards SIGTERM to node and reaps orphans (the session's MCP
# extension processes, the fleet's agents when their tmux server dies).
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=prod-deps /app/node_modules node_modules
COPY --from=manifests /app/ ./
COPY --from=build /app/packages/host/dist packages/host/dist
COPY --from=build /app/packages/proto/dist packages/proto/dist
COPY --from=build /app/packages/proto/descriptors packages/proto/descriptors
COPY --from=build /app/packages/runtime/dist packages/runtime/dist
COPY --from=build /app/packages/goose-sessions/dist packages/goose-sessions/dist
COPY --from=build /app/packages/cli/dist packages/cli/dist
COPY packages/cli/bin packages/cli/bin
# `skein` on PATH inside the containers (docker compose exec fleet skein fleet ls).
# The data directories are made here, owned by node (uid 1000), so named volumes
# mounted on them start with that owner; no VOLUME lines (they would make
# anonymous volumes nobody uses, under Kubernetes too).
RUN ln -s /app/packages/cli/bin/skein.js /usr/local/bin/skein \
 && mkdir -p /data/sessions /data/heartbeats /data/state /run/skein/tmux /workspace \
 && chown -R node:node /data /run/skein /workspace \
 && chmod 0700 /data/sessions /run/skein/tmux
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--"]

# ---- session service ----
FROM base AS session
COPY --from=build /app/services/session/dist services/session/dist
USER 1000:1000
ENV SKEIN_SESSION_ADDR=0.0.0.0:50051 \
    SKEIN_SESSIONS_DIR=/data/sessions
EXPOSE 50051
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "/app/packages/cli/bin/skein.js", "health", "--service", "session"]
CMD ["node", "services/session/dist/main.js"]

# ---- fleet service: tmux and the agents it runs ----
FROM base AS fleet
RUN apt-get update \
 && apt-get install -y --no-install-recommends tmux procps ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /app/services/fleet/dist services/fleet/dist
COPY services/fleet/bin services/fleet/bin
USER 1000:1000
# The tmux socket lives on a volume so another container (or docker compose
# exec) can attach to the agents.
ENV SKEIN_FLEET_ADDR=0.0.0.0:50052 \
    TMUX_TMPDIR=/run/skein/tmux \
    SKEIN_HEARTBEAT_DIR=/data/heartbeats \
    SKEIN_FLEET_STATE_DIR=/data/state
EXPOSE 50052
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "/app/packages/cli/bin/skein.js", "health", "--service", "fleet"]
CMD ["node", "services/fleet/dist/main.js"]
