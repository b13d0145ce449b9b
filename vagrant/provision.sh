#!/usr/bin/env bash
# Provisions the workshop VM: Docker, a Mesos 1.11 master and agent (the
# mesos-mini image, host networking), and the Rust toolchain for the vagrant
# user. Safe to run again: every step checks before it acts.
set -euo pipefail

MESOS_IMAGE="${MESOS_IMAGE:-mesos/mesos-mini:1.11.x}"
WORKSHOP_USER="${WORKSHOP_USER:-vagrant}"
export DEBIAN_FRONTEND=noninteractive

log() { printf '==> %s\n' "$*"; }

install_packages() {
  local missing=()
  for package in "$@"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -q
    apt-get install -y -q "${missing[@]}"
  fi
}

install_packages docker.io curl build-essential pkg-config musl-tools
systemctl enable --now docker

# One container runs the master (5050) and the agent (5051) on the VM's own
# network, so the agent reaches the scheduler's file server on 127.0.0.1.
if ! docker ps --format '{{.Names}}' | grep -qx mesos; then
  if docker ps -a --format '{{.Names}}' | grep -qx mesos; then
    log "starting the existing Mesos container"
    docker start mesos
  else
    log "starting Mesos from ${MESOS_IMAGE}"
    docker run -d --name mesos --restart unless-stopped \
      --privileged --network host "${MESOS_IMAGE}"
  fi
fi

# Rust, for the workshop user. The musl target builds an executor that runs
# in the agent's container whatever its C library is.
if ! sudo -u "${WORKSHOP_USER}" -i bash -c 'command -v cargo' >/dev/null 2>&1; then
  log "installing Rust for ${WORKSHOP_USER}"
  sudo -u "${WORKSHOP_USER}" -i bash -c \
    'curl --proto "=https" --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal'
fi
sudo -u "${WORKSHOP_USER}" -i bash -c 'rustup target add x86_64-unknown-linux-musl' >/dev/null

log "waiting for the Mesos master on 127.0.0.1:5050"
for _ in $(seq 1 60); do
  if curl -sf http://127.0.0.1:5050/health >/dev/null; then
    log "Mesos is up: http://127.0.0.1:5050 (also forwarded to the host)"
    exit 0
  fi
  sleep 2
done
log "the Mesos master did not answer yet; check 'docker logs mesos'"
