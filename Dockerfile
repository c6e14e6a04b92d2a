# syntax=docker/dockerfile:1
# Two images from one file: `--target session` and `--target fleet`.
ARG NODE_VERSION=22

# ---- build: full dependencies, generated contracts, compiled JS ----
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/host/package.json packages/host/
COPY packages/proto/package.json packages/proto/
COPY packages/runtime/package.json packages/runtime/
COPY packages/testkit/package.json packages/testkit/
COPY packages/cli/package.json packages/cli/
COPY services/session/package.json services/session/
COPY services/fleet/package.json services/fleet/
COPY bench/package.json bench/
# better-sqlite3 (allowed in package.json's allowScripts) builds from source when no prebuilt binary is reachable.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
RUN npm ci --no-audit --no-fund
COPY tsconfig.base.json tsconfig.json buf.yaml buf.gen.yaml ./
COPY proto proto
COPY scripts scripts
COPY packages packages
COPY services services
RUN node scripts/generate.mjs \
 && node node_modules/typescript/bin/tsc -b packages/cli services/session services/fleet

# ---- base: production dependencies and the shared packages, non-root ----
FROM node:${NODE_VERSION}-bookworm-slim AS base
ENV NODE_ENV=production \
    SKEIN_LOG_FORMAT=json
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/host/package.json packages/host/
COPY packages/proto/package.json packages/proto/
COPY packages/runtime/package.json packages/runtime/
COPY packages/testkit/package.json packages/testkit/
COPY packages/cli/package.json packages/cli/
COPY services/session/package.json services/session/
COPY services/fleet/package.json services/fleet/
COPY bench/package.json bench/
# The toolchain only lives as long as this step: it builds better-sqlite3 if no prebuilt binary is reachable.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ \
 && npm ci --omit=dev --no-audit --no-fund && npm cache clean --force \
 && apt-get purge -y --auto-remove python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY --from=build /app/packages/host/dist packages/host/dist
COPY --from=build /app/packages/proto/dist packages/proto/dist
COPY --from=build /app/packages/proto/descriptors packages/proto/descriptors
COPY --from=build /app/packages/runtime/dist packages/runtime/dist
COPY --from=build /app/packages/cli/dist packages/cli/dist
COPY packages/cli/bin packages/cli/bin
# `skein` on PATH inside the containers (docker compose exec fleet skein fleet ls).
RUN ln -s /app/packages/cli/bin/skein.js /usr/local/bin/skein \
 && mkdir -p /data/sessions /data/heartbeats /data/state /run/skein/tmux /workspace \
 && chown -R node:node /data /run/skein /workspace \
 && chmod 0700 /data/sessions /run/skein/tmux
STOPSIGNAL SIGTERM

# ---- session service ----
FROM base AS session
COPY --from=build /app/services/session/dist services/session/dist
USER node
ENV SKEIN_SESSION_ADDR=0.0.0.0:50051 \
    SKEIN_SESSIONS_DIR=/data/sessions
EXPOSE 50051
VOLUME ["/data/sessions"]
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
USER node
# The tmux socket lives on a volume so another container (or docker compose
# exec) can attach to the agents.
ENV SKEIN_FLEET_ADDR=0.0.0.0:50052 \
    TMUX_TMPDIR=/run/skein/tmux \
    SKEIN_HEARTBEAT_DIR=/data/heartbeats \
    SKEIN_FLEET_STATE_DIR=/data/state
EXPOSE 50052
VOLUME ["/data/heartbeats", "/data/state", "/run/skein/tmux"]
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "/app/packages/cli/bin/skein.js", "health", "--service", "fleet"]
CMD ["node", "services/fleet/dist/main.js"]
