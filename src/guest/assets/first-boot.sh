#!/bin/sh
# banger first boot: make sure the image has an ssh server, once. Runs while /var/lib/banger/first-boot-pending
# exists (written into the image by banger) and removes it on success.
#
# Environment (for tests): RUN_PLAN=1 prints the commands instead of running them;
# OS_RELEASE=path reads another os-release file; BANGER_STATE=dir replaces /var/lib/banger.
set -eu

os_release="${OS_RELEASE:-/etc/os-release}"
state="${BANGER_STATE:-/var/lib/banger}"
marker="$state/first-boot-pending"

log() { echo "banger-first-boot: $*" >&2; }

run() {
  if [ "${RUN_PLAN:-}" = 1 ]; then
    echo "$*"
  else
    "$@"
  fi
}

if [ "${RUN_PLAN:-}" != 1 ] && [ ! -e "$marker" ]; then
  exit 0
fi

[ -r "$os_release" ] || { log "cannot read $os_release"; exit 1; }
ID=$(. "$os_release" && echo "${ID:-}")
ID_LIKE=$(. "$os_release" && echo "${ID_LIKE:-}")

# The family decides the package manager; ID first, then each ID_LIKE entry.
family=""
for id in $ID $ID_LIKE; do
  case "$id" in
    debian | ubuntu | kali | raspbian | linuxmint | pop) family=debian ;;
    alpine) family=alpine ;;
    fedora | rhel | centos | rocky | almalinux) family=fedora ;;
    arch | archlinux | manjaro) family=arch ;;
    opensuse* | suse | sles) family=suse ;;
  esac
  [ -n "$family" ] && break
done

if [ -z "$family" ]; then
  log "unsupported distribution: ID=$ID ID_LIKE=$ID_LIKE (supported: debian, ubuntu, kali, raspbian, linuxmint, pop, alpine, fedora, rhel, centos, rocky, almalinux, arch, manjaro, opensuse, suse)"
  exit 2
fi

have_sshd() { command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ]; }

if [ "${RUN_PLAN:-}" = 1 ] || ! have_sshd; then
  case "$family" in
    debian)
      run env DEBIAN_FRONTEND=noninteractive apt-get update
      run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssh-server
      ;;
    alpine)
      run apk add --no-cache openssh-server
      run rc-update add sshd default
      ;;
    fedora)
      if command -v dnf >/dev/null 2>&1 || [ "${RUN_PLAN:-}" = 1 ]; then run dnf install -y openssh-server; else run yum install -y openssh-server; fi
      ;;
    arch) run pacman -Sy --noconfirm openssh ;;
    suse) run zypper --non-interactive install openssh-server ;;
  esac
fi

run ssh-keygen -A
case "$family" in
  alpine) run rc-service sshd start ;;
  *) run systemctl enable --now "$([ "$family" = debian ] && echo ssh || echo sshd)" ;;
esac
run rm -f "$marker"
log "ssh server ready ($family)"
