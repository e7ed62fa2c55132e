#!/usr/bin/env bash
# Idempotent set-up of a Debian/Ubuntu host for banger and its tests: Debian packages, npm deps, build,
# and `banger`/`bangerd` on PATH. Fast (about a second) when everything is already in place, so `npm start`
# and `npm test` call it first.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# Debian packages banger and its test tiers need (see docs/testing.md for which tier uses what).
packages=(
  qemu-system-x86 qemu-utils e2fsprogs iproute2 nftables iptables openssh-client kmod busybox-static
  docker-registry skopeo umoci debootstrap zstd xz-utils lz4 socat apache2-utils cpio musl-tools make gcc
  dpkg-dev ca-certificates openssl procps mount dmsetup attr bzip2 debian-archive-keyring
  systemd
)

log() { printf 'setup: %s\n' "$*" >&2; }

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -q '^installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${missing[*]}"
    log "run: sudo apt-get install -y --no-install-recommends ${missing[*]}"
    exit 1
  fi
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Native addons (better-sqlite3, zstd-napi) build from source against the system's Node headers.
export npm_config_nodedir="${npm_config_nodedir:-/usr}"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund >&2
fi

stamp=dist/.build-stamp
if [ ! -f "$stamp" ] || [ -n "$(find src agent package.json tsconfig.json tsconfig.build.json -newer "$stamp" -print -quit)" ]; then
  log "building"
  npm run -s build >&2
  touch "$stamp"
fi

# banger and bangerd on PATH: /usr/local/bin as root, ~/.local/bin otherwise.
if [ "$(id -u)" -eq 0 ]; then bindir=/usr/local/bin; else bindir="$HOME/.local/bin"; fi
mkdir -p "$bindir"
for bin in banger bangerd; do
  target="$root/bin/$bin"
  if [ "$(readlink "$bindir/$bin" 2>/dev/null)" != "$target" ]; then
    ln -sfn "$target" "$bindir/$bin"
    log "linked $bindir/$bin -> $target"
  fi
done
case ":$PATH:" in *":$bindir:"*) ;; *) log "add $bindir to your PATH" ;; esac
