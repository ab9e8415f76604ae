#!/usr/bin/env bash
# Proves the deployment: builds the Docker image, runs it the way README.md ("Deploy") says, and checks it works.
#
#   bash bench/verify-image.sh [--build-only] [--remove-image]
#
# Steps (every request goes to 127.0.0.1 only):
#   1. Base images: the Dockerfile's FROM images (node:20-bookworm-slim, debian:bookworm-slim) are used if the
#      engine has them (docker pull them first to use the official ones). A missing one is made locally under
#      the same tag, since no image registry is needed or reached: a Debian bookworm root from debootstrap
#      (variant minbase, as the official slim image is made), slimmed like the official image, from the
#      Debian mirror that this machine's apt sources name; for the Node image, plus this machine's own Node 20
#      (binary, headers, npm) laid out as in the official image. The debootstrap result is cached in
#      $SANDCASTER_VERIFY_CACHE (default /var/cache/sandcaster-verify).
#   2. docker build --network host -t sandcaster:verify . ; the image size (fails over 250 MB), non-root
#      user, no npm in the image.
#   3. docker run as documented (--read-only, --stop-timeout, named volume on /data, the host's Docker socket
#      with its group added) but with --network host (this engine has no bridge network) on a free loopback
#      port, and a fake Anthropic server on 127.0.0.1; the time from `docker run` to healthy.
#   4. GET /health; unauthenticated /query is 401; one authenticated /query whose agent runs
#      `echo hello-from-sandbox` in a Docker sandbox (tool_result, sandbox_destroyed, result; /runs/:id).
#   5. docker stop (SIGTERM) while a second run is in flight: /health and new queries 503 while draining,
#      the run still ends with `result`, exit code 0, log shows draining then stopped, every log line JSON
#      without the key, no sandbox container left; a new container on the same volume lists the run.
#   6. docker compose (v2) or docker-compose (v1, installed from Debian packages if neither is there):
#      docker-compose.yml plus an override for this machine (host network, loopback port) turns healthy;
#      then down -v.
# Exits non-zero with a message on the first failure; removes what it started on every path (the built
# image is kept for reuse unless --remove-image). Needs root (debootstrap, apt-get), node, curl, npm ci done.
#
# Environment: SANDCASTER_VERIFY_CACHE, SANDCASTER_VERIFY_IMAGE (default sandcaster:verify),
# SANDCASTER_TEST_IMAGE (sandbox image, default sandcaster-test:busybox, made by tests/setup-docker.sh),
# SANDCASTER_VERIFY_MAX_MB (size limit, default 250).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CACHE="${SANDCASTER_VERIFY_CACHE:-/var/cache/sandcaster-verify}"
mkdir -p "$CACHE" 2>/dev/null || CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/sandcaster-verify"
IMAGE="${SANDCASTER_VERIFY_IMAGE:-sandcaster:verify}"
SANDBOX_IMAGE="${SANDCASTER_TEST_IMAGE:-sandcaster-test:busybox}"
MAX_MB="${SANDCASTER_VERIFY_MAX_MB:-250}"
STOP_TIMEOUT=45 # seconds docker stop waits before SIGKILL: longer than the server's 30 s shutdown grace
BUILD_ONLY=0
KEEP_IMAGE=1
for arg in "$@"; do
  case "$arg" in
    --build-only) BUILD_ONLY=1 ;;
    --remove-image) KEEP_IMAGE=0 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "verify-image: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

T0=$(date +%s)
say() { printf 'verify-image: %s\n' "$*" >&2; }
fail() {
  printf '\nverify-image: FAILED: %s\n' "$*" >&2
  exit 1
}
now_ms() { date +%s%3N; }

# ---------------------------------------------------------------------------------------------------------
# Cleanup on every path
TMP="$(mktemp -d /tmp/sandcaster-verify.XXXXXX)"
RUN_ID="$$-$RANDOM"
SERVER_NAME="sandcaster-verify-$RUN_ID"
VOLUME_NAME="sandcaster-verify-data-$RUN_ID"
COMPOSE_PROJECT="sandcaster-verify-$RUN_ID"
FAKE_PID=""
COMPOSE=()
COMPOSE_FILES=()

cleanup() {
  local rc=$?
  set +e
  if [ -n "$FAKE_PID" ]; then kill "$FAKE_PID" 2>/dev/null; wait "$FAKE_PID" 2>/dev/null; fi
  if docker container inspect "$SERVER_NAME" >/dev/null 2>&1; then
    if [ $rc -ne 0 ]; then
      say "last log lines of $SERVER_NAME:"
      docker logs --tail 40 "$SERVER_NAME" 2>&1 | sed 's/^/    /' >&2
    fi
    docker rm -f "$SERVER_NAME" >/dev/null 2>&1
  fi
  docker volume rm -f "$VOLUME_NAME" >/dev/null 2>&1
  if [ ${#COMPOSE[@]} -gt 0 ] && [ ${#COMPOSE_FILES[@]} -gt 0 ]; then
    if [ $rc -ne 0 ]; then
      say "last compose log lines:"
      "${COMPOSE[@]}" -p "$COMPOSE_PROJECT" "${COMPOSE_FILES[@]}" logs --tail 40 2>&1 | sed 's/^/    /' >&2
    fi
    "${COMPOSE[@]}" -p "$COMPOSE_PROJECT" "${COMPOSE_FILES[@]}" down -v --remove-orphans >/dev/null 2>&1
  fi
  if [ "$KEEP_IMAGE" = 0 ]; then docker rmi "$IMAGE" >/dev/null 2>&1; fi
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------------------
# Preconditions
command -v docker >/dev/null 2>&1 || fail "the docker client is not installed (apt-get install -y docker.io)"
command -v curl >/dev/null 2>&1 || fail "curl is needed on the host"
command -v node >/dev/null 2>&1 || fail "node is needed on the host (it runs the fake model server)"
[ -d node_modules/tsx ] || fail "run npm ci first (the fake model server runs with the project's tsx)"
# Starts the engine if none answers and builds the local sandbox image (static busybox).
bash tests/setup-docker.sh || fail "tests/setup-docker.sh could not prepare the Docker engine"
docker image inspect "$SANDBOX_IMAGE" >/dev/null 2>&1 || fail "sandbox image $SANDBOX_IMAGE is missing"

apt_updated=0
apt_install() {
  if [ $apt_updated = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || fail "apt-get update failed"
    apt_updated=1
  fi
  say "installing $* from Debian packages"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
    || fail "apt-get install $* failed"
}

# ---------------------------------------------------------------------------------------------------------
# 1. Base images
# Mirror URI for a Debian suite, read from this machine's apt sources (one-line and deb822 formats).
apt_mirror_for() {
  local suite="$1" f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v s="$suite" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
      if ($(i + 1) == s) { print $i; exit } }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v s="$suite" '
      function flush() { if (types ~ /(^| )deb( |$)/ && enabled != "no" && (" " suites " ") ~ (" " s " ") && uris != "") { split(uris, u, " "); print u[1]; found = 1 }
                         types = uris = suites = enabled = "" }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); if (found) exit; next }
      { k = tolower($1); sub(/:$/, "", k); $1 = ""; sub(/^ +/, ""); v = $0
        if (k == "types") types = v; else if (k == "uris") uris = v; else if (k == "suites") suites = v; else if (k == "enabled") enabled = tolower(v) }
      END { if (!found) flush() }' "$f"
  done
}

# The Dockerfile's base images, e.g. "node:20-bookworm-slim debian:bookworm-slim".
dockerfile_bases() {
  awk 'toupper($1) == "FROM" { for (i = 2; i <= NF; i++) if ($i !~ /^--/) { print $i; break } }' Dockerfile \
    | grep -v -x -F -f <(awk 'toupper($1) == "FROM" && toupper($(NF-1)) == "AS" { print $NF }' Dockerfile) | sort -u
}

# Debian bookworm root, made once and cached as a tarball.
debian_rootfs_tar() {
  local tarball="$CACHE/debian-bookworm-minbase.tar"
  if [ -s "$tarball" ]; then echo "$tarball"; return; fi
  local mirror security updates
  mirror="$(apt_mirror_for bookworm | head -n1)"
  [ -n "$mirror" ] || fail "no Debian bookworm mirror in this machine's apt sources (/etc/apt/sources.list*)"
  updates="$(apt_mirror_for bookworm-updates | head -n1)"
  security="$(apt_mirror_for bookworm-security | head -n1)"
  command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
  mkdir -p "$CACHE"
  local dir="$CACHE/rootfs.tmp"
  rm -rf "$dir"
  say "debootstrap --variant=minbase bookworm from the mirror in this machine's apt sources (cached in $CACHE)"
  local t=$(date +%s)
  debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; fail "debootstrap failed (log: $CACHE/debootstrap.log)"; }
  say "debootstrap took $(($(date +%s) - t)) s"
  # Slim it as the official debian:*-slim image is (no docs, man pages, locales; apt cleans after itself).
  mkdir -p "$dir/etc/dpkg/dpkg.cfg.d" "$dir/etc/apt/apt.conf.d"
  cat >"$dir/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
  cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$dir/etc/apt/apt.conf.d/docker-no-languages"
  echo 'APT::AutoRemove::SuggestsImportant "false";' >"$dir/etc/apt/apt.conf.d/docker-autoremove-suggests"
  find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "$dir"/usr/share/{groff,info,linda,lintian/overrides,locale,man}/* \
    "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
    "$dir"/var/log/*.log "$dir"/var/log/apt/* "$dir"/tmp/* "$dir"/root/.cache
  {
    echo "deb $mirror bookworm main"
    [ -z "$updates" ] || echo "deb $updates bookworm-updates main"
    [ -z "$security" ] || echo "deb $security bookworm-security main"
  } >"$dir/etc/apt/sources.list"
  : >"$dir/etc/resolv.conf"
  : >"$dir/etc/hostname"
  tar -C "$dir" --numeric-owner -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
  rm -rf "$dir"
  echo "$tarball"
}

ensure_debian_base() { # $1 = tag
  local tar
  tar="$(debian_rootfs_tar)"
  say "importing the Debian stand-in as $1"
  docker import -c 'CMD ["bash"]' -c 'LABEL org.sandcaster.verify.stand-in=true' "$tar" "$1" >/dev/null \
    || fail "docker import of the Debian stand-in failed"
}

ensure_node_base() { # $1 = tag: a Debian stand-in plus this machine's Node 20, laid out as in the official image
  local node_bin node_prefix npm_dir ctx
  node_bin="$(readlink -f "$(command -v node)")"
  "$node_bin" -e 'process.exit(process.versions.node.split(".")[0] === "20" ? 0 : 1)' \
    || fail "the stand-in for $1 needs this machine's node to be version 20 (it is $("$node_bin" --version))"
  node_prefix="$(dirname "$(dirname "$node_bin")")"
  npm_dir="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
  [ -f "$npm_dir/package.json" ] || fail "cannot find npm's folder (from $(command -v npm))"
  [ -f "$node_prefix/include/node/common.gypi" ] \
    || fail "Node's C headers are not at $node_prefix/include/node (needed to build native modules)"
  docker image inspect debian:bookworm-slim >/dev/null 2>&1 || ensure_debian_base debian:bookworm-slim
  ctx="$TMP/node-base"
  mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/usr/local/include" "$ctx/rootfs/usr/local/lib/node_modules" \
    "$ctx/rootfs/usr/local/etc" "$ctx/rootfs/etc/ssl/certs"
  cp "$node_bin" "$ctx/rootfs/usr/local/bin/node"
  cp -a "$node_prefix/include/node" "$ctx/rootfs/usr/local/include/node"
  cp -a "$npm_dir" "$ctx/rootfs/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ctx/rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ctx/rootfs/usr/local/bin/npx"
  # This machine reaches the npm registry through a TLS-inspecting egress; its CA bundle goes in so that
  # `npm ci` in the build trusts it, as the host's npm does. (The official image needs nothing of the sort.)
  local ca="${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}"
  if [ -f "$ca" ]; then
    cp "$ca" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
    echo "cafile=/etc/ssl/certs/ca-certificates.crt" >"$ctx/rootfs/usr/local/etc/npmrc"
  fi
  cat >"$ctx/Dockerfile" <<EOF
FROM debian:bookworm-slim
RUN groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
COPY rootfs/ /
ENV NODE_VERSION=$("$node_bin" -p process.versions.node)
$([ -f "$ca" ] && echo 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt')
LABEL org.sandcaster.verify.stand-in=true
RUN node --version && npm --version
CMD ["node"]
EOF
  say "building the stand-in for $1 (Debian stand-in + this machine's node $("$node_bin" --version), npm $(npm --version))"
  docker build -q --network host -t "$1" "$ctx" >/dev/null 2>"$TMP/node-base.log" \
    || { cat "$TMP/node-base.log" >&2; fail "building the stand-in for $1 failed"; }
  rm -rf "$ctx"
}

ensure_bases() {
  local base
  for base in $(dockerfile_bases); do
    if docker image inspect "$base" >/dev/null 2>&1; then
      if [ "$(docker image inspect -f '{{index .Config.Labels "org.sandcaster.verify.stand-in"}}' "$base")" = true ]; then
        say "base $base: local stand-in (present)"
      else
        say "base $base: present"
      fi
      continue
    fi
    case "$base" in
      debian:bookworm-slim) ensure_debian_base "$base" ;;
      node:20-bookworm-slim) ensure_node_base "$base" ;;
      *) fail "base image $base is not on this engine and there is no local stand-in for it; docker pull it" ;;
    esac
  done
}

T_BASE=$(date +%s)
ensure_bases
say "base images ready in $(($(date +%s) - T_BASE)) s"

# ---------------------------------------------------------------------------------------------------------
# 2. Build and size
say "docker build --network host -t $IMAGE ."
T_BUILD=$(date +%s)
docker build --network host -t "$IMAGE" . >"$TMP/build.log" 2>&1 \
  || { tail -40 "$TMP/build.log" >&2; fail "docker build failed"; }
BUILD_SECS=$(($(date +%s) - T_BUILD))
SIZE_BYTES="$(docker image inspect -f '{{.Size}}' "$IMAGE")"
SIZE_MB="$(awk -v b="$SIZE_BYTES" 'BEGIN { printf "%.1f", b / 1000000 }')"
RUNTIME_BASE="$(awk 'toupper($1) == "FROM" { b = $2 } END { print b }' Dockerfile)"
BASE_MB="$(docker image inspect -f '{{.Size}}' "$RUNTIME_BASE" | awk '{ printf "%.1f", $1 / 1000000 }')"
say "built $IMAGE in $BUILD_SECS s: $SIZE_MB MB (runtime base $RUNTIME_BASE $BASE_MB MB, app and node $(awk -v a="$SIZE_MB" -v b="$BASE_MB" 'BEGIN { printf "%.1f", a - b }') MB)"
awk -v s="$SIZE_MB" -v m="$MAX_MB" 'BEGIN { exit !(s < m) }' || fail "image is $SIZE_MB MB, over the $MAX_MB MB target"

USER_IN_IMAGE="$(docker image inspect -f '{{.Config.User}}' "$IMAGE")"
case "$USER_IN_IMAGE" in "" | root | 0 | 0:*) fail "the image runs as root (USER is '$USER_IN_IMAGE')" ;; esac
if docker run --rm --network none --entrypoint node "$IMAGE" -e 'require("fs").accessSync("/usr/local/bin/npm")' >/dev/null 2>&1; then
  fail "npm is in the runtime image"
fi

if [ "$BUILD_ONLY" = 1 ]; then
  echo "verify-image: OK (build only): image $IMAGE $SIZE_MB MB, built in $BUILD_SECS s, total $(($(date +%s) - T0)) s"
  exit 0
fi

# ---------------------------------------------------------------------------------------------------------
# 3. Run the image: fake model server, server container, time to healthy
free_port() {
  node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'
}
wait_healthy() { # $1 = container; prints seconds since $2 (ms) when healthy
  local c="$1" start="$2" state
  for _ in $(seq 1 600); do
    state="$(docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$c" 2>/dev/null)" \
      || fail "container $c disappeared"
    case "$state" in
      "running healthy") awk -v a="$start" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; return 0 ;;
      "running unhealthy") fail "container $c reports unhealthy" ;;
      "running none") fail "container $c has no health check" ;;
      running*) sleep 0.1 ;;
      *) fail "container $c stopped before it was healthy ($state, exit code $(docker inspect -f '{{.State.ExitCode}}' "$c"))" ;;
    esac
  done
  fail "container $c not healthy after 60 s (state: $state)"
}

say "starting the fake Anthropic server (tests/fixtures/fake-models.ts) on 127.0.0.1"
node --import tsx bench/verify-image-fake.ts >"$TMP/fake.out" 2>"$TMP/fake.err" &
FAKE_PID=$!
FAKE_URL=""
for _ in $(seq 1 100); do
  FAKE_URL="$(head -n1 "$TMP/fake.out" 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).url??"")}catch{}})')"
  [ -n "$FAKE_URL" ] && break
  kill -0 "$FAKE_PID" 2>/dev/null || { cat "$TMP/fake.err" >&2; fail "the fake model server exited"; }
  sleep 0.1
done
[ -n "$FAKE_URL" ] || { cat "$TMP/fake.err" >&2; fail "the fake model server did not start"; }
case "$FAKE_URL" in http://127.0.0.1:*) ;; *) fail "fake model server is not on 127.0.0.1: $FAKE_URL" ;; esac

# The engine's socket, for Docker sandboxes: mounted into the container, with its group added so that the
# image's non-root user (uid 1000) can use it.
SOCK=/var/run/docker.sock
case "${DOCKER_HOST:-}" in unix://*) SOCK="${DOCKER_HOST#unix://}" ;; "") ;; *) fail "DOCKER_HOST=$DOCKER_HOST: this check mounts a local unix socket" ;; esac
[ -S "$SOCK" ] || fail "no Docker socket at $SOCK"
SOCK_GID="$(stat -c %g "$SOCK")"

PORT="$(free_port)"
API_KEY="verify-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
docker volume create "$VOLUME_NAME" >/dev/null
say "docker run $IMAGE on 127.0.0.1:$PORT (network host, socket gid $SOCK_GID, volume $VOLUME_NAME on /data)"
T_RUN=$(now_ms)
# The command from README.md ("Deploy"), with --network host and a loopback port instead of -p 8000:8000, and the
# fake model server and the local sandbox image for this machine.
docker run -d --name "$SERVER_NAME" --restart unless-stopped --stop-timeout "$STOP_TIMEOUT" \
  --network host -e SANDCASTER_HOST=127.0.0.1 -e SANDCASTER_PORT="$PORT" \
  -e SANDCASTER_API_KEY="$API_KEY" -e ANTHROPIC_API_KEY=dummy -e ANTHROPIC_BASE_URL="$FAKE_URL" \
  -e SANDCASTER_SANDBOX_PROVIDER=docker -e SANDCASTER_DOCKER_IMAGE="$SANDBOX_IMAGE" \
  -v "$VOLUME_NAME":/data \
  -v "$SOCK":/var/run/docker.sock --group-add "$SOCK_GID" \
  --read-only --tmpfs /tmp \
  "$IMAGE" >/dev/null || fail "docker run failed"
HEALTHY_SECS="$(wait_healthy "$SERVER_NAME" "$T_RUN")"
# When the server itself was listening, from its first log line, relative to the container's start.
LISTEN_SECS="$(docker inspect -f '{{.State.StartedAt}}' "$SERVER_NAME" | node -e '
  let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
    const line = require("child_process").execFileSync("docker", ["logs", process.argv[1]], { stdio: ["ignore", "pipe", "ignore"] })
      .toString().split("\n").find((l) => l.includes("\"listening\""));
    console.log(line ? ((Date.parse(JSON.parse(line).time) - Date.parse(s.trim())) / 1000).toFixed(1) : "?");
  });' "$SERVER_NAME")"
INSTANCE_ID="$(docker logs "$SERVER_NAME" 2>/dev/null | node -e '
  let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
    const l = s.split("\n").find((x) => x.includes("\"listening\"")); console.log(l ? JSON.parse(l).instanceId ?? "" : "");
  });')"
say "healthy ${HEALTHY_SECS} s after docker run (server listening ${LISTEN_SECS} s after the container started; instance $INSTANCE_ID)"

# ---------------------------------------------------------------------------------------------------------
# 4. HTTP checks
BASE="http://127.0.0.1:$PORT"
VERSION="$(node -p 'require("./package.json").version')"
HEALTH="$(curl -sS --max-time 5 "$BASE/health")" || fail "GET /health failed"
echo "$HEALTH" | node -e '
  let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
    const h = JSON.parse(s); if (h.status !== "ok" || h.version !== process.argv[1]) process.exit(1);
  });' "$VERSION" || fail "GET /health answered $HEALTH (expected status ok, version $VERSION)"
say "GET /health -> $HEALTH"

CODE="$(curl -sS --max-time 5 -o "$TMP/unauth.json" -w '%{http_code}' -H 'Content-Type: application/json' \
  --data '{"prompt":"hi"}' "$BASE/query")" || fail "unauthenticated POST /query failed"
[ "$CODE" = 401 ] || fail "unauthenticated POST /query answered $CODE, expected 401: $(cat "$TMP/unauth.json")"
say "POST /query without the key -> 401"

say "POST /query (Docker sandbox $SANDBOX_IMAGE through the mounted socket, fake model)"
T_Q=$(now_ms)
CODE="$(curl -sS -N --max-time 120 -D "$TMP/query.headers" -o "$TMP/query.sse" -w '%{http_code}' \
  -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' \
  --data '{"prompt":"Say hello from the sandbox.","model":"claude-haiku-4-5","maxTurns":4,"timeout":60}' \
  "$BASE/query")" || fail "POST /query failed (curl exit $?)"
QUERY_SECS="$(awk -v a="$T_Q" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }')"
[ "$CODE" = 200 ] || fail "POST /query answered $CODE: $(head -c 600 "$TMP/query.sse")"
QUERY_SUMMARY="$(node -e '
  const fs = require("fs");
  const text = fs.readFileSync(process.argv[1], "utf8");
  const events = text.split(/\n\n/).filter((b) => /^data: /m.test(b)).map((b) => {
    const type = (b.match(/^event: (.*)$/m) || [])[1];
    return { type, data: JSON.parse(b.match(/^data: (.*)$/m)[1]) };
  });
  const problems = [];
  const sys = (sub) => events.findIndex((e) => e.type === "system" && e.data.subtype === sub);
  const started = events[sys("run_started")];
  if (!started) problems.push("no system run_started event");
  else if (started.data.sandboxProvider !== "docker") problems.push("sandboxProvider is " + started.data.sandboxProvider);
  if (sys("sandbox_created") < 0) problems.push("no sandbox_created event");
  const toolResult = events.findIndex((e) => e.type === "tool_result" && String(e.data.content).includes("hello-from-sandbox"));
  if (toolResult < 0) problems.push("no tool_result containing hello-from-sandbox");
  else if (events[toolResult].data.isError || events[toolResult].data.exitCode !== 0) problems.push("the bash tool_result is an error: " + JSON.stringify(events[toolResult].data));
  const destroyed = sys("sandbox_destroyed");
  if (destroyed < 0) problems.push("no sandbox_destroyed event");
  const last = events[events.length - 1];
  if (!last || last.type !== "result") problems.push("the stream does not end with a result event (last: " + JSON.stringify(last) + ")");
  else {
    if (last.data.subtype !== "success") problems.push("result subtype " + last.data.subtype);
    if (destroyed > events.length - 2 || destroyed < 0) problems.push("sandbox_destroyed is not before the result");
  }
  if (problems.length) { console.error(problems.join("\n")); process.exit(1); }
  console.log(`${events.length} events, run ${last.data.runId}, ${last.data.numTurns} turns, ${last.data.inputTokens}+${last.data.outputTokens} tokens`);
' "$TMP/query.sse")" || { sed 's/^/    /' "$TMP/query.sse" | head -60 >&2; fail "the /query stream is not as expected (above)"; }
RUN_ID_Q="$(tr -d '\r' <"$TMP/query.headers" | awk -F': ' 'tolower($1) == "x-run-id" { print $2 }')"
say "query ok in ${QUERY_SECS} s: $QUERY_SUMMARY"

RUN_JSON="$(curl -sS --max-time 5 -H "Authorization: Bearer $API_KEY" "$BASE/runs/$RUN_ID_Q")" || fail "GET /runs/$RUN_ID_Q failed"
echo "$RUN_JSON" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.exit(JSON.parse(s).status==="completed"?0:1))' \
  || fail "GET /runs/$RUN_ID_Q: $RUN_JSON (expected status completed)"
say "GET /runs/$RUN_ID_Q -> completed"

# ---------------------------------------------------------------------------------------------------------
# 5. Graceful stop: SIGTERM from `docker stop` while a run is in flight. The server must keep serving that
# run (its command takes 3 s), answer /health 503 and new queries 503 while draining, then exit 0.
curl -sS -N --max-time 120 -o "$TMP/drain.sse" \
  -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' \
  --data '{"prompt":"Take your time.","model":"claude-haiku-4-5","maxTurns":4,"timeout":60}' "$BASE/query" &
DRAIN_CURL=$!
for _ in $(seq 1 200); do grep -q '^event: tool_use' "$TMP/drain.sse" 2>/dev/null && break; sleep 0.05; done
grep -q '^event: tool_use' "$TMP/drain.sse" || fail "the second query did not reach its tool call: $(head -c 600 "$TMP/drain.sse")"
T_STOP=$(now_ms)
docker stop -t "$STOP_TIMEOUT" "$SERVER_NAME" >/dev/null 2>"$TMP/stop.err" &
STOP_PID=$!
HEALTH_DRAINING="" QUERY_DRAINING=""
for _ in $(seq 1 40); do
  HEALTH_DRAINING="$(curl -s --max-time 1 -o /dev/null -w '%{http_code}' "$BASE/health" || true)"
  [ "$HEALTH_DRAINING" = 503 ] && break
  sleep 0.05
done
QUERY_DRAINING="$(curl -s --max-time 2 -o "$TMP/draining.json" -w '%{http_code}' -H "Authorization: Bearer $API_KEY" \
  -H 'Content-Type: application/json' --data '{"prompt":"too late"}' "$BASE/query" || true)"
wait "$STOP_PID" || { cat "$TMP/stop.err" >&2; fail "docker stop failed"; }
STOP_SECS="$(awk -v a="$T_STOP" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }')"
wait "$DRAIN_CURL" || fail "the in-flight query's stream broke during shutdown: $(tail -c 600 "$TMP/drain.sse")"
[ "$HEALTH_DRAINING" = 503 ] || fail "GET /health while draining answered ${HEALTH_DRAINING:-nothing}, expected 503"
[ "$QUERY_DRAINING" = 503 ] || fail "POST /query while draining answered ${QUERY_DRAINING:-nothing}, expected 503 DRAINING"
grep -q 'finished-while-draining' "$TMP/drain.sse" || fail "the in-flight run's command did not finish during the drain: $(tail -c 600 "$TMP/drain.sse")"
tail -n 4 "$TMP/drain.sse" | grep -q '^event: result' \
  || fail "the in-flight run did not end with a result event: $(tail -c 600 "$TMP/drain.sse")"
EXIT_CODE="$(docker inspect -f '{{.State.ExitCode}}' "$SERVER_NAME")"
OOM="$(docker inspect -f '{{.State.OOMKilled}}' "$SERVER_NAME")"
[ "$EXIT_CODE" = 0 ] || fail "after docker stop the server exited with $EXIT_CODE (OOM killed: $OOM), expected 0"
docker logs "$SERVER_NAME" 2>/dev/null >"$TMP/server.log"
if docker logs "$SERVER_NAME" 2>&1 >/dev/null | grep -q .; then
  say "note: the server wrote to stderr:"; docker logs "$SERVER_NAME" 2>&1 >/dev/null | head -5 | sed 's/^/    /' >&2
fi
node -e '
  const fs = require("fs");
  const lines = fs.readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean);
  const msgs = [];
  for (const l of lines) {
    let o; try { o = JSON.parse(l); } catch { console.error("not a JSON log line: " + l); process.exit(1); }
    if (!o.time || !o.level || !o.msg) { console.error("log line without time/level/msg: " + l); process.exit(1); }
    if (l.includes(process.argv[2])) { console.error("a log line contains the API key"); process.exit(1); }
    msgs.push(o.msg);
  }
  const d = msgs.indexOf("draining"), s = msgs.lastIndexOf("stopped");
  if (d < 0 || s < d) { console.error("the log does not show draining then stopped: " + msgs.slice(-5).join(", ")); process.exit(1); }
' "$TMP/server.log" "$API_KEY" || fail "the server log is not as expected"
LEFT="$(docker ps -aq --filter label=sandcaster.managed=true ${INSTANCE_ID:+--filter label=sandcaster.instance=$INSTANCE_ID})"
[ -z "$LEFT" ] || fail "sandbox containers left behind: $LEFT"
say "docker stop during a run: /health 503 and /query 503 while draining, the run finished, exit code 0 after ${STOP_SECS} s, log shows draining then stopped, no sandbox left"

# Run history survives the container: a new one on the same volume lists the run.
docker rm "$SERVER_NAME" >/dev/null
docker run -d --name "$SERVER_NAME" --network host -e SANDCASTER_HOST=127.0.0.1 -e SANDCASTER_PORT="$PORT" \
  -e SANDCASTER_API_KEY="$API_KEY" -v "$VOLUME_NAME":/data "$IMAGE" >/dev/null || fail "second docker run failed"
for _ in $(seq 1 100); do curl -sf --max-time 1 "$BASE/health" >/dev/null 2>&1 && break; sleep 0.1; done
RUNS="$(curl -sS --max-time 5 -H "Authorization: Bearer $API_KEY" "$BASE/runs?limit=5")" || fail "GET /runs failed on the second container"
case "$RUNS" in *"$RUN_ID_Q"*) ;; *) fail "the run is not in /runs after a restart on the same volume: $RUNS" ;; esac
docker stop -t "$STOP_TIMEOUT" "$SERVER_NAME" >/dev/null
[ "$(docker inspect -f '{{.State.ExitCode}}' "$SERVER_NAME")" = 0 ] || fail "the second container did not exit 0"
docker rm "$SERVER_NAME" >/dev/null
docker volume rm "$VOLUME_NAME" >/dev/null
say "run history kept on the volume across containers"

# ---------------------------------------------------------------------------------------------------------
# 6. docker compose
if docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  COMPOSE=(docker-compose)
else
  apt_install docker-compose
  COMPOSE=(docker-compose)
fi
COMPOSE_VERSION="${COMPOSE[*]} $("${COMPOSE[@]}" version --short 2>/dev/null || "${COMPOSE[@]}" version | head -n1)"
# Compose reads only what is given here: no shell variables, no .env file of the developer.
compose_env=(env -i PATH="$PATH" HOME="${HOME:-/root}" ${DOCKER_HOST:+DOCKER_HOST="$DOCKER_HOST"})
mkdir -p "$TMP/compose"
: >"$TMP/compose/empty.env"
"${compose_env[@]}" "${COMPOSE[@]}" -f docker-compose.yml --env-file "$TMP/compose/empty.env" config -q \
  || fail "docker-compose.yml is not valid for ${COMPOSE[*]}"

# This engine has no bridge network, so the stack runs with network_mode host on a free loopback port.
# Compose forbids published ports with host networking, so this machine's copy drops the `ports:` entry.
awk '/^    ports:/ { skip = 1; next } skip && /^      / { next } { skip = 0; print }' docker-compose.yml >"$TMP/compose/docker-compose.yml"
PORT2="$(free_port)"
cat >"$TMP/compose/override.yml" <<YAML
services:
  sandcaster:
    image: $IMAGE
    build:
      context: $ROOT
      network: host
    network_mode: host
    environment:
      SANDCASTER_HOST: 127.0.0.1
      SANDCASTER_PORT: "$PORT2"
YAML
COMPOSE_FILES=(--project-directory "$TMP/compose" -f "$TMP/compose/docker-compose.yml" -f "$TMP/compose/override.yml" --env-file "$TMP/compose/empty.env")
COMPOSE=("${compose_env[@]}" "${COMPOSE[@]}")
"${COMPOSE[@]}" -p "$COMPOSE_PROJECT" "${COMPOSE_FILES[@]}" config >"$TMP/compose/resolved.yml" 2>"$TMP/compose/config.err" \
  || { cat "$TMP/compose/config.err" >&2; fail "compose config failed"; }
grep -q -E '^ *(ports:|published)' "$TMP/compose/resolved.yml" && fail "the compose copy for this machine still publishes ports"
say "$COMPOSE_VERSION: up -d --build (network host, 127.0.0.1:$PORT2)"
T_C=$(now_ms)
"${COMPOSE[@]}" -p "$COMPOSE_PROJECT" "${COMPOSE_FILES[@]}" up -d --build >"$TMP/compose/up.log" 2>&1 \
  || { tail -30 "$TMP/compose/up.log" >&2; fail "compose up failed"; }
CID="$("${COMPOSE[@]}" -p "$COMPOSE_PROJECT" "${COMPOSE_FILES[@]}" ps -q sandcaster)"
[ -n "$CID" ] || fail "compose started no sandcaster container"
COMPOSE_HEALTHY_SECS="$(wait_healthy "$CID" "$T_C")"
HEALTH2="$(curl -sS --max-time 5 "http://127.0.0.1:$PORT2/health")" || fail "GET /health on the compose stack failed"
[ "$(docker inspect -f '{{.HostConfig.RestartPolicy.Name}}' "$CID")" = unless-stopped ] || fail "compose service is not restart: unless-stopped"
say "compose stack healthy ${COMPOSE_HEALTHY_SECS} s after up (build cached): $HEALTH2"
"${COMPOSE[@]}" -p "$COMPOSE_PROJECT" "${COMPOSE_FILES[@]}" down -v >/dev/null 2>&1 || fail "compose down -v failed"
COMPOSE_FILES=()
say "compose stack down, volume removed"

echo "verify-image: OK: image $IMAGE $SIZE_MB MB (target < $MAX_MB MB); docker run -> healthy ${HEALTHY_SECS} s (listening after ${LISTEN_SECS} s); /query through a Docker sandbox ok in ${QUERY_SECS} s; docker stop mid-run -> drained, exit 0 in ${STOP_SECS} s; $COMPOSE_VERSION stack healthy in ${COMPOSE_HEALTHY_SECS} s; total $(($(date +%s) - T0)) s"
