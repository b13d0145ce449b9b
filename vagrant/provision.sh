#!/usr/bin/env bash
# Provisions the workshop VM: Docker, a real Apache Mesos 1.11 master and
# agent (two containers from one image, on the VM's own network), and the
# Rust toolchain for the vagrant user.
#
# Safe to run again (`vagrant provision`): every step checks before it acts,
# and a container is only recreated when its image or flags changed.
#
# Why not simply `docker run mesos/mesos-mini`? That image boots systemd
# inside the container and runs the agent with the Linux launcher and cgroup
# isolators, which expect cgroup v1; Ubuntu 24.04 has cgroup v2 only, and the
# agent fails to start. So we start the two daemons directly, from the same
# Mesos 1.11 image, and give the agent the POSIX launcher and isolators: no
# cgroups, no systemd, which is all a one-VM workshop needs.
set -euo pipefail

# The image holding Mesos 1.11 (binaries in /usr/sbin). The Vagrantfile
# passes MESOS_IMAGE through, so `MESOS_IMAGE=... vagrant provision` works.
MESOS_IMAGE="${MESOS_IMAGE:-mesos/mesos-mini:1.11.x}"
WORKSHOP_USER="${WORKSHOP_USER:-vagrant}"
# Where the master and the agent keep their state, on the VM (not inside the
# containers), so sandboxes can be read with plain `ls` and survive a
# container being recreated.
MESOS_DIR="${MESOS_DIR:-/var/lib/mesos}"
# How long the master may take to answer before provisioning fails.
MESOS_WAIT_SECONDS="${MESOS_WAIT_SECONDS:-180}"
export DEBIAN_FRONTEND=noninteractive

log() { printf '==> %s\n' "$*"; }
fail() {
  printf '==> ERROR: %s\n' "$*" >&2
  exit 1
}

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

# Runs `docker run -d --name NAME ARGS...` unless a container NAME already
# runs with exactly these arguments. The arguments are recorded in a label,
# so a changed image or flag recreates the container and nothing else does.
ensure_container() {
  local name="$1"
  shift
  # --init: a small init is PID 1, so that `docker stop` reaches the daemon
  # (the kernel drops signals that PID 1 has no handler for) and processes
  # the agent leaves behind are reaped. --stop-signal: the mesos-mini image
  # asks for systemd's stop signal (SIGRTMIN+3), meant for the systemd it
  # normally boots; the daemons stop cleanly on SIGTERM.
  local common=(--restart unless-stopped --network host --init --stop-signal SIGTERM)
  local wanted current
  wanted="$(printf '%s\n' "${common[@]}" "$@" | sha256sum | cut -c1-16)"
  current="$(docker inspect --format '{{index .Config.Labels "workshop.args"}}' "$name" 2>/dev/null || true)"
  if [ "$current" = "$wanted" ]; then
    if [ "$(docker inspect --format '{{.State.Running}}' "$name")" != "true" ]; then
      log "starting the existing ${name} container"
      docker start "$name" >/dev/null
    fi
    return
  fi
  if [ -n "$current" ] || docker inspect "$name" >/dev/null 2>&1; then
    log "replacing the ${name} container (its image or flags changed)"
    docker rm -f "$name" >/dev/null
  fi
  log "starting ${name} from ${MESOS_IMAGE}"
  docker run -d --name "$name" "${common[@]}" \
    --label "workshop.args=${wanted}" "$@" >/dev/null
}

install_packages docker.io curl build-essential pkg-config musl-tools
systemctl enable --now docker

# An earlier version of this script ran the whole mesos-mini image as one
# container called `mesos`; it holds ports 5050 and 5051.
if docker inspect mesos >/dev/null 2>&1; then
  log "removing the old all-in-one mesos container"
  docker rm -f mesos >/dev/null
fi

if ! docker image inspect "$MESOS_IMAGE" >/dev/null 2>&1; then
  log "pulling ${MESOS_IMAGE}"
  docker pull "$MESOS_IMAGE" || fail "cannot pull ${MESOS_IMAGE}; check the VM's network, or set MESOS_IMAGE to a Mesos 1.11 image with mesos-master and mesos-agent in /usr/sbin"
fi
mkdir -p "${MESOS_DIR}/master" "${MESOS_DIR}/agent"

# Both daemons listen on every interface of the VM, because Vagrant's
# forwarded ports arrive on the VM's NAT interface, not on loopback. They
# advertise 127.0.0.1, which is right inside the VM and, thanks to the
# forwarded ports, in the host's browser too.
#
# The master keeps its registry in memory: a one-master workshop cluster
# needs no replicated log, and a restarted master simply re-registers the
# agent.
ensure_container mesos-master \
  -v "${MESOS_DIR}/master:/var/lib/mesos/master" \
  --entrypoint /usr/sbin/mesos-master "$MESOS_IMAGE" \
  --ip=0.0.0.0 --advertise_ip=127.0.0.1 --hostname=127.0.0.1 --port=5050 \
  --work_dir=/var/lib/mesos/master --registry=in_memory

# The agent: the POSIX launcher and isolators (no cgroups, no namespaces) and
# no systemd support, so it runs in a plain container on a cgroup v2 host.
# Its work directory is mounted at the same path, so the sandbox paths in
# the master's UI are also valid on the VM. Executors run inside this
# container, as root; the README's commands pass `--user root` for that.
ensure_container mesos-agent \
  -v "${MESOS_DIR}/agent:/var/lib/mesos/agent" \
  --entrypoint /usr/sbin/mesos-agent "$MESOS_IMAGE" \
  --master=127.0.0.1:5050 \
  --ip=0.0.0.0 --advertise_ip=127.0.0.1 --hostname=127.0.0.1 --port=5051 \
  --work_dir=/var/lib/mesos/agent \
  --launcher=posix --isolation=posix/cpu,posix/mem \
  --no-systemd_enable_support

# Rust, for the workshop user. The musl target builds a static executor,
# which runs in the agent's container whatever its C library is.
if ! sudo -u "${WORKSHOP_USER}" -i bash -c 'command -v cargo' >/dev/null 2>&1; then
  log "installing Rust for ${WORKSHOP_USER}"
  sudo -u "${WORKSHOP_USER}" -i bash -c \
    'curl --proto "=https" --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal'
fi
sudo -u "${WORKSHOP_USER}" -i bash -c 'rustup target add x86_64-unknown-linux-musl' >/dev/null

# Every login shell: builds go to the VM's disk rather than the shared
# folder (slower, and without hard links), and EXECUTOR names the static
# executor the README's commands pass to the scheduler.
cat >/etc/profile.d/mesos-workshop.sh <<'PROFILE'
export CARGO_TARGET_DIR="$HOME/target"
export EXECUTOR="$CARGO_TARGET_DIR/x86_64-unknown-linux-musl/release/executor"
PROFILE

log "waiting up to ${MESOS_WAIT_SECONDS} s for the Mesos master on 127.0.0.1:5050"
deadline=$((SECONDS + MESOS_WAIT_SECONDS))
until curl -sf --max-time 5 http://127.0.0.1:5050/master/health >/dev/null; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    docker logs --tail 20 mesos-master >&2 || true
    fail "the Mesos master did not answer on 127.0.0.1:5050 within ${MESOS_WAIT_SECONDS} s; see 'docker logs mesos-master' (last lines above), then run 'vagrant provision' again"
  fi
  sleep 2
done
log "the master is up; waiting for the agent to register"
until curl -sf --max-time 5 http://127.0.0.1:5050/master/slaves | grep -Eq '"active": ?true'; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    docker logs --tail 20 mesos-agent >&2 || true
    fail "no Mesos agent registered with the master within ${MESOS_WAIT_SECONDS} s; see 'docker logs mesos-agent' (last lines above), then run 'vagrant provision' again"
  fi
  sleep 2
done
log "Mesos is up: http://127.0.0.1:5050 (also forwarded to the host)"
