#!/usr/bin/env bash
# Makes this machine ready to run and test runtime-sandbox: a Docker engine that answers,
# redis-server, docker-registry and docker-compose on PATH (tests start their own instances),
# iptables and iproute2, and the npm dependencies.
# Idempotent: quiet and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[bootstrap] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    log "apt-get update"
    as_root apt-get update -qq
    apt_updated=1
  fi
  log "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

docker_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

ensure_docker() {
  if docker_answers; then return; fi
  if ! command -v dockerd >/dev/null 2>&1; then apt_install docker.io; fi
  if docker_answers; then return; fi
  log "starting dockerd in the background (log: /var/log/runtime-sandbox-dockerd.log)"
  as_root sh -c 'nohup dockerd >/var/log/runtime-sandbox-dockerd.log 2>&1 &'
  for _ in $(seq 1 150); do
    if docker_answers; then log "dockerd is up"; return; fi
    sleep 0.2
  done
  log "dockerd did not answer within 30 s; see /var/log/runtime-sandbox-dockerd.log"
  tail -20 /var/log/runtime-sandbox-dockerd.log >&2 || true
  exit 1
}

ensure_packages() {
  local missing=()
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  # The server's host filter for sandbox networks, and the security tests' network namespaces.
  command -v iptables >/dev/null 2>&1 || missing+=(iptables)
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  # Size-limited workspaces (WORKSPACE_QUOTA): a loop-mounted ext4 image per sandbox.
  command -v mkfs.ext4 >/dev/null 2>&1 || missing+=(e2fsprogs)
  command -v losetup >/dev/null 2>&1 || missing+=(mount)
  # A registry on loopback for the tests of `runtime-sandbox-builder --push`.
  command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
  # deploy/docker-compose.yml's test (Debian's Compose v1; the v2 plugin is not in Debian's archive).
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
}

ensure_node_modules() {
  # package-lock.json is the source of truth; reinstall only when it changed since the last install.
  local stamp=node_modules/.package-lock.sha256
  local want
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return; fi
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
}

ensure_packages
ensure_docker
ensure_node_modules
