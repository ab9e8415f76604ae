# Sandcaster server image.
#
#   docker build -t sandcaster .
#   docker run -d -p 8000:8000 --stop-timeout 45 -e SANDCASTER_API_KEY -e ANTHROPIC_API_KEY \
#     -v sandcaster-data:/data sandcaster
# README.md "Deploy" has the full story (Docker sandboxes through the host's socket, E2B, compose, Kubernetes);
# bench/verify-image.sh builds this image and proves it works.
#
# Two stages:
#   build    official Node 20 image on Debian bookworm (slim): compiles better-sqlite3's native module with
#            python3/make/g++ and installs production dependencies only.
#   runtime  official Debian bookworm slim image, the same OS the Node image is built on, with just the `node`
#            binary taken from the build stage: no npm, no yarn, no compiler, no C headers. The image is about
#            215 MB; the whole Node image as the runtime base would add some 60 MB (npm, yarn, headers) that
#            the server never uses and take it past 250 MB.
# Works with BuildKit and with the legacy builder (no `# syntax` line, no RUN --mount).

FROM node:20-bookworm-slim AS build

# Build tools for node-gyp (better-sqlite3, and optional native parts of ssh2/cpu-features under dockerode),
# and tini for the runtime stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ tini \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# node-gyp compiles against the headers that ship with this Node (/usr/local/include/node) instead of
# downloading them, so a native build needs nothing but the npm registry.
ENV npm_config_nodedir=/usr/local \
    npm_config_update_notifier=false

COPY package.json package-lock.json ./
# (npm's download cache stays behind in this stage; only node_modules goes on.)
RUN npm ci --omit=dev --no-audit --no-fund \
 # Keep only better-sqlite3's compiled addon (drops the SQLite sources and ~20 MB of object files).
 && cd node_modules/better-sqlite3 \
 && mv build/Release/better_sqlite3.node /tmp/ \
 && rm -rf build deps src \
 && mkdir -p build/Release \
 && mv /tmp/better_sqlite3.node build/Release/ \
 && cd /app \
 # Type declarations, source maps and docs are never loaded at run time (tsx strips types without them).
 # typescript is only an optional peer of valibot (for its types); @types/* are types only.
 && rm -rf node_modules/typescript node_modules/.bin/tsc node_modules/.bin/tsserver node_modules/@types \
 && find node_modules -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' \
      -o \( -iname '*.md' ! -iname 'license*' ! -iname 'licence*' \) \) -delete \
 # Fail the build here, not at first request, if the native module does not load.
 && node -e "new (require('better-sqlite3'))(':memory:').prepare('select 1 as ok').get().ok === 1 || process.exit(1)"


FROM debian:bookworm-slim AS runtime

# An unprivileged user (uid/gid 1000) owns nothing but the data folder; the code is root-owned and read-only to it.
RUN groupadd --gid 1000 sandcaster \
 && useradd --uid 1000 --gid 1000 --home-dir /app --no-create-home --shell /usr/sbin/nologin sandcaster \
 && mkdir -p /data \
 && chown 1000:1000 /data

COPY --from=build /usr/local/bin/node /usr/local/bin/node
COPY --from=build /usr/bin/tini /usr/bin/tini

WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
# What is copied is chosen by .dockerignore (an allow-list: package files, server.ts, bin/, lib/, routes/, providers/,
# public/ and cli/).
COPY . .

# Listen on every interface inside the container (the server's own default is 127.0.0.1). The port is 8000
# unless SANDCASTER_PORT or PORT says otherwise; it is deliberately not set here so that PORT keeps working.
# tsx compiles the TypeScript in memory (no cache folder), so the server writes nothing outside /data and
# runs with a read-only root file system (docker run --read-only, Kubernetes readOnlyRootFilesystem).
ENV NODE_ENV=production \
    SANDCASTER_HOST=0.0.0.0 \
    SANDCASTER_DB=/data/sandcaster.db \
    TSX_DISABLE_CACHE=1

# Run history (SQLite, WAL). Per instance: nothing else in the server keeps state.
VOLUME /data
EXPOSE 8000
USER 1000:1000

# Uses the image's own node (there is no curl). /health answers 200 when serving and 503 while draining.
HEALTHCHECK --interval=5s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.SANDCASTER_PORT||process.env.PORT||8000)+'/health',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))"]

# tini is PID 1: it passes SIGTERM/SIGINT to node and reaps zombies. Node runs directly (not npm, not the tsx
# CLI wrapper) so the signal reaches the server, which drains runs for SANDCASTER_SHUTDOWN_GRACE_SECONDS
# (default 30) and exits 0. Give `docker stop` / compose / Kubernetes a longer timeout than that grace.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "--import", "tsx", "server.ts", "serve"]
