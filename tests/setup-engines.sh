#!/usr/bin/env bash
# Makes the extra engines of tests/engines.test.ts answer, each with the test image loaded:
#   - a second dockerd with gVisor (runsc) registered, on its own socket, data, exec root, pidfile and cgroup
#     parent (the shared engine is never reconfigured): unix:///run/sandcaster-runsc/docker.sock
#   - rootful Podman's Docker-compatible API: unix:///run/sandcaster-podman/podman.sock
#   - rootless Podman (user sandcaster-podman), to prove limits it drops are refused:
#     unix:///run/sandcaster-podman-rootless/podman.sock
# Idempotent and quick when everything already runs. Installs runsc, podman, catatonit and uidmap with apt
# when missing and it can; when it cannot, exits 3 after saying so loudly (tests/run.mjs then skips those
# tests, unless SANDCASTER_REQUIRE_ENGINES=1, as in CI). Any other failure exits 1.
set -euo pipefail
IMAGE="${SANDCASTER_TEST_IMAGE:-sandcaster-test:busybox}"
RUNSC_DIR=/run/sandcaster-runsc
RUNSC_SOCK="unix://$RUNSC_DIR/docker.sock"
PODMAN_DIR=/run/sandcaster-podman
ROOTLESS_USER=sandcaster-podman
ROOTLESS_DIR=/run/sandcaster-podman-rootless

unavailable() {
  echo "" >&2
  echo "tests: ************************************************************************" >&2
  echo "tests: gVisor/Podman engine tests CANNOT RUN here: $*" >&2
  echo "tests: install them with: apt-get install -y runsc podman catatonit uidmap (as root)" >&2
  echo "tests: ************************************************************************" >&2
  exit 3
}

# --- packages -------------------------------------------------------------------------------------------
missing=()
command -v runsc >/dev/null 2>&1 || missing+=(runsc)
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v catatonit >/dev/null 2>&1 || [ -x /usr/libexec/podman/catatonit ] || missing+=(catatonit)
command -v newuidmap >/dev/null 2>&1 || missing+=(uidmap)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || unavailable "${missing[*]} missing, and no root apt-get to install them"
  echo "tests: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; } ||
    unavailable "apt-get could not install ${missing[*]}"
fi
[ "$(id -u)" = 0 ] || unavailable "starting a second dockerd and rootful Podman needs root"

wait_for() { # seconds, command...
  local n=$(($1 * 4)); shift
  for _ in $(seq 1 "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  return 1
}

# --- dockerd with runsc ---------------------------------------------------------------------------------
runsc_up() { DOCKER_HOST=$RUNSC_SOCK timeout 5 docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'; }
if ! runsc_up; then
  mkdir -p "$RUNSC_DIR" /var/lib/sandcaster-runsc
  # This kind of host (gVisor 2022-12, kernel 6.x, cgroup v1) only runs the ptrace platform, and runsc refuses
  # to start in the root network namespace with its own network stack enabled.
  cat >"$RUNSC_DIR/daemon.json" <<EOF
{"runtimes": {"runsc": {"path": "$(command -v runsc)", "runtimeArgs": ["--platform=ptrace", "--network=none"]}}}
EOF
  if [ -f "$RUNSC_DIR/docker.pid" ] && kill -0 "$(cat "$RUNSC_DIR/docker.pid")" 2>/dev/null; then
    echo "tests: the runsc dockerd (pid $(cat "$RUNSC_DIR/docker.pid")) does not answer; see /tmp/sandcaster-runsc-dockerd.log" >&2
    exit 1
  fi
  echo "tests: starting a second dockerd with runsc on $RUNSC_SOCK" >&2
  nohup dockerd --config-file "$RUNSC_DIR/daemon.json" --data-root /var/lib/sandcaster-runsc --exec-root "$RUNSC_DIR/exec" \
    --pidfile "$RUNSC_DIR/docker.pid" -H "$RUNSC_SOCK" --iptables=false --bridge=none --cgroup-parent=/sandcaster-runsc \
    >/tmp/sandcaster-runsc-dockerd.log 2>&1 &
  wait_for 30 runsc_up || { tail -20 /tmp/sandcaster-runsc-dockerd.log >&2; echo "tests: the runsc dockerd did not come up" >&2; exit 1; }
fi
if ! DOCKER_HOST=$RUNSC_SOCK docker image inspect "$IMAGE" >/dev/null 2>&1; then
  docker save "$IMAGE" | DOCKER_HOST=$RUNSC_SOCK docker load -q >/dev/null
  echo "tests: loaded $IMAGE into the runsc engine" >&2
fi

# --- rootful Podman -------------------------------------------------------------------------------------
# `docker ps` answers at once; Podman's /version runs its helper binaries and takes seconds.
podman_up() { DOCKER_HOST="unix://$1/podman.sock" timeout 5 docker ps -q >/dev/null 2>&1; }
podman_has_image() { DOCKER_HOST="unix://$1/podman.sock" timeout 5 docker image inspect "$IMAGE" >/dev/null 2>&1; }
if ! podman_up "$PODMAN_DIR"; then
  mkdir -p "$PODMAN_DIR"
  echo "tests: starting rootful podman system service on unix://$PODMAN_DIR/podman.sock" >&2
  nohup podman system service --time=0 "unix://$PODMAN_DIR/podman.sock" >/tmp/sandcaster-podman.log 2>&1 &
  wait_for 30 podman_up "$PODMAN_DIR" || { tail -20 /tmp/sandcaster-podman.log >&2; echo "tests: podman system service did not come up" >&2; exit 1; }
fi
if ! podman_has_image "$PODMAN_DIR"; then
  docker save "$IMAGE" | podman load -q >/dev/null
  echo "tests: loaded $IMAGE into rootful podman" >&2
fi

# --- rootless Podman ------------------------------------------------------------------------------------
if ! id "$ROOTLESS_USER" >/dev/null 2>&1; then
  useradd --system --create-home --home-dir /var/lib/sandcaster-podman-rootless --shell /usr/sbin/nologin "$ROOTLESS_USER"
fi
grep -q "^$ROOTLESS_USER:" /etc/subuid || echo "$ROOTLESS_USER:300000:65536" >>/etc/subuid
grep -q "^$ROOTLESS_USER:" /etc/subgid || echo "$ROOTLESS_USER:300000:65536" >>/etc/subgid
as_rootless() { (cd / && su -s /bin/sh "$ROOTLESS_USER" -c "export XDG_RUNTIME_DIR=$ROOTLESS_DIR; $1"); }
if ! podman_up "$ROOTLESS_DIR"; then
  mkdir -p "$ROOTLESS_DIR"
  chown "$ROOTLESS_USER:" "$ROOTLESS_DIR"
  chmod 700 "$ROOTLESS_DIR"
  echo "tests: starting rootless podman system service on unix://$ROOTLESS_DIR/podman.sock" >&2
  as_rootless "nohup podman system service --time=0 unix://$ROOTLESS_DIR/podman.sock >/tmp/sandcaster-podman-rootless.log 2>&1 &"
  wait_for 30 podman_up "$ROOTLESS_DIR" || { tail -20 /tmp/sandcaster-podman-rootless.log >&2; echo "tests: rootless podman did not come up" >&2; exit 1; }
fi
if ! podman_has_image "$ROOTLESS_DIR"; then
  tar="$(mktemp /tmp/sandcaster-image-XXXXXX.tar)"
  trap 'rm -f "$tar"' EXIT
  docker save "$IMAGE" >"$tar"
  chmod 644 "$tar"
  as_rootless "podman load -q -i $tar" >/dev/null
  echo "tests: loaded $IMAGE into rootless podman" >&2
fi
