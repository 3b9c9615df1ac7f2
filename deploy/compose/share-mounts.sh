#!/bin/sh
# The `mounts` service of deploy/docker-compose.yml: makes $MOUNTS a nosuid,nodev mount of its own,
# shared, in the Docker engine's mount namespace (where it resolves bind mounts), so that the
# workspace file systems a server replica mounts inside it reach the engine. Idempotent. Needs the
# host's PID namespace and SYS_ADMIN, SYS_CHROOT and SYS_PTRACE (to enter the engine's namespace).
set -eu
engine=
for comm in /proc/[0-9]*/comm; do
  if [ "$(cat "$comm" 2>/dev/null)" = dockerd ]; then
    engine=${comm#/proc/}
    engine=${engine%/comm}
    break
  fi
done
if [ -z "$engine" ]; then
  echo "no dockerd process in sight: run this with the host's PID namespace (pid: host)" >&2
  exit 1
fi
exec nsenter --target="$engine" --mount -- sh -euc '
  mkdir -p "$MOUNTS"
  mountpoint -q "$MOUNTS" || mount --bind "$MOUNTS" "$MOUNTS"
  mount -o remount,bind,nosuid,nodev "$MOUNTS"
  mount --make-shared "$MOUNTS"
'
