#!/usr/bin/env bash
# Makes sure a Docker engine answers and the local sandbox test image exists.
# No registry is reachable, so the image is laid out from the static busybox binary and `docker import`ed.
# Never skips silently: with no engine and no way to start one, it fails at once saying what to install.
set -euo pipefail
IMAGE="${SANDCASTER_TEST_IMAGE:-sandcaster-test:busybox}"

engine_up() { timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if ! command -v docker >/dev/null 2>&1; then
  echo "tests: the docker client is not installed; install the engine with: apt-get install -y docker.io" >&2
  exit 1
fi
if ! engine_up; then
  if command -v dockerd >/dev/null 2>&1; then
    echo "tests: no Docker engine answers; starting dockerd --iptables=false --bridge=none" >&2
    nohup dockerd --iptables=false --bridge=none >/tmp/sandcaster-dockerd.log 2>&1 &
    for _ in $(seq 1 60); do engine_up && break; sleep 0.5; done
  fi
  if ! engine_up; then
    echo "tests: no Docker engine answers and none could be started." >&2
    echo "       install it with: apt-get install -y docker.io   (then run the tests again)" >&2
    exit 1
  fi
fi

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  BUSYBOX="$(command -v busybox || true)"
  if [ -z "$BUSYBOX" ] || ldd "$BUSYBOX" >/dev/null 2>&1; then
    echo "tests: a static busybox is needed to build $IMAGE: apt-get install -y busybox-static" >&2
    exit 1
  fi
  root="$(mktemp -d)"
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/workspace" "$root/proc" "$root/sys" "$root/dev"
  cp "$BUSYBOX" "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
  done
  chmod 1777 "$root/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\nsandbox:x:1000:1000:sandbox:/workspace:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:x:0:\nsandbox:x:1000:\n' >"$root/etc/group"
  tar -C "$root" --numeric-owner --owner=0 --group=0 -cf - . \
    | docker import -c 'ENV PATH=/bin' -c 'WORKDIR /workspace' - "$IMAGE" >/dev/null
  echo "tests: built $IMAGE" >&2
fi
