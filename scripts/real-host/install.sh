#!/usr/bin/env bash
# Installs what the real-host test tier (`npm run test:docker`, test/real/) needs on a Debian 12
# machine, as root. Idempotent: what is already there is left alone, so a second run is quick.
#
#   - Docker Engine 20.10 and its CLI (docker.io), a registry (docker-registry), busybox-static,
#     htpasswd (apache2-utils) for the registry's bcrypt password file, debootstrap for the
#     images' Debian root filesystem, caddy (its binary goes into the test host's caddy image),
#     and what the tier shares with `npm test`: the VM's sshd (openssh-server, openssh-client)
#     and the bot's own Redis (redis-server).
#   - Compose v2: not in Debian 12. Debian 13's docker-compose package runs on Debian 12's libc;
#     it is fetched through a separate apt state folder so the system's sources and lists stay
#     untouched, and only its cli-plugin binary is unpacked into COMPOSE_PLUGIN_DIR.
#
# Nothing here starts a daemon: the tests start their own dockerd and registry in temp folders
# (test/real/), and the packages' own services are stopped if their postinst started them.
set -euo pipefail

COMPOSE_PLUGIN_DIR=${COMPOSE_PLUGIN_DIR:-/usr/local/lib/docker/cli-plugins}
APT_PACKAGES=(docker.io docker-registry busybox-static apache2-utils debootstrap caddy openssh-server openssh-client redis-server)
# Where the separate apt state for Debian 13 lives (lists, cache, sources.list).
TRIXIE_APT_DIR=${TRIXIE_APT_DIR:-/var/cache/engramia-real/apt-trixie}

log() { printf '== %s\n' "$*"; }

if [[ $(id -u) -ne 0 ]]; then
  echo "scripts/real-host/install.sh must run as root (it installs Debian packages)" >&2
  exit 1
fi

start=$(date +%s)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]} > 0)); then
  log "apt-get install ${missing[*]}"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
  # docker.io's and docker-registry's postinst may start the system services. The tests run
  # their own, in temp folders; stop these (by service name, never by process-name matching).
  if command -v service >/dev/null 2>&1; then
    service docker stop >/dev/null 2>&1 || true
    service docker-registry stop >/dev/null 2>&1 || true
    service caddy stop >/dev/null 2>&1 || true
    service ssh stop >/dev/null 2>&1 || true
    service redis-server stop >/dev/null 2>&1 || true
  fi
  if [[ -f /run/sshd.pid ]]; then kill "$(cat /run/sshd.pid)" 2>/dev/null || true; fi
else
  log "Debian packages already installed: ${APT_PACKAGES[*]}"
fi

# The Debian mirror the system already uses, read from its own sources (so no host is written
# down here): the first URIs line of the main archive.
mirror_uri() {
  local uri=''
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' \
      /etc/apt/sources.list.d/debian.sources)
  fi
  if [[ -z $uri && -f /etc/apt/sources.list ]]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' \
      /etc/apt/sources.list)
  fi
  if [[ -z $uri ]]; then
    echo "cannot find the Debian mirror in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list" >&2
    return 1
  fi
  printf '%s\n' "$uri"
}

compose_ok() {
  [[ -x $COMPOSE_PLUGIN_DIR/docker-compose ]] && "$COMPOSE_PLUGIN_DIR/docker-compose" version >/dev/null 2>&1
}

if compose_ok; then
  log "Compose v2 already at $COMPOSE_PLUGIN_DIR/docker-compose ($("$COMPOSE_PLUGIN_DIR/docker-compose" version --short))"
else
  log "Compose v2 from Debian 13's docker-compose package (separate apt state in $TRIXIE_APT_DIR)"
  D=$TRIXIE_APT_DIR
  mkdir -p "$D/lists/partial" "$D/cache/archives/partial" "$D/download"
  printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s trixie main\n' "$(mirror_uri)" >"$D/sources.list"
  apt_opts=(
    -o "Dir::Etc::SourceList=$D/sources.list"
    -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$D/lists"
    -o "Dir::Cache=$D/cache"
  )
  apt-get "${apt_opts[@]}" update
  rm -f "$D/download"/docker-compose_*.deb
  (cd "$D/download" && apt-get "${apt_opts[@]}" download docker-compose)
  deb=$(ls "$D/download"/docker-compose_*.deb)
  unpack=$(mktemp -d)
  dpkg-deb -x "$deb" "$unpack"
  install -d -m 0755 "$COMPOSE_PLUGIN_DIR"
  install -m 0755 "$unpack/usr/libexec/docker/cli-plugins/docker-compose" "$COMPOSE_PLUGIN_DIR/docker-compose"
  rm -rf "$unpack"
  compose_ok || { echo "docker-compose plugin at $COMPOSE_PLUGIN_DIR does not run" >&2; exit 1; }
fi

log "versions"
/usr/bin/docker --version
/usr/sbin/dockerd --version
caddy version
docker-registry --version 2>&1 | head -n 1 || true
"$COMPOSE_PLUGIN_DIR/docker-compose" version
log "install took $(($(date +%s) - start)) s"
