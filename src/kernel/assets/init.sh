#!/bin/busybox sh
# banger stage-1 init (runs as /init in banger's initramfs, under busybox-static).
#
# Kernel command line contract:
#   root=/dev/vda | LABEL=x | UUID=x   the root filesystem (required)
#   rootfstype=ext4                    its type (default: ext4)
#   ro | rw                            mount it read-only (default, as the kernel does) or read-write
#   banger.ip=ADDR/PREFIX,GW,IFACE     configure IFACE before switch_root (GW may be empty)
#   init=/sbin/init                    what to exec in the new root (default /sbin/init)
#   banger.shell                       on failure, open a shell on the console instead of powering off
#
# Modules are loaded with insmod in the order listed in /etc/banger/modules (dependencies first).

/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /newroot
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null || echo "banger-initramfs: no devtmpfs, using the static /dev"
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

log() { echo "banger-initramfs: $*"; }

fail() {
  log "FATAL: $*"
  if [ -n "$want_shell" ]; then
    exec sh
  fi
  sleep 1
  poweroff -f
}

root=""
rootfstype="ext4"
rootmode="ro"
init="/sbin/init"
bip=""
want_shell=""
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    root=*) root="${arg#root=}" ;;
    rootfstype=*) rootfstype="${arg#rootfstype=}" ;;
    ro) rootmode="ro" ;;
    rw) rootmode="rw" ;;
    init=*) init="${arg#init=}" ;;
    banger.ip=*) bip="${arg#banger.ip=}" ;;
    banger.shell) want_shell=1 ;;
  esac
done

if [ -f /etc/banger/modules ]; then
  while read -r mod; do
    [ -n "$mod" ] || continue
    insmod "/lib/modules/$mod" || log "insmod $mod failed"
  done < /etc/banger/modules
fi

# Wait up to 10 s for a condition: devices appear asynchronously after their driver loads.
wait_for() {
  i=0
  while ! eval "$1"; do
    i=$((i + 1))
    [ "$i" -gt 100 ] && return 1
    sleep 0.1
  done
  return 0
}

if [ -n "$bip" ]; then
  addr="${bip%%,*}"
  rest="${bip#*,}"
  gw="${rest%%,*}"
  iface="${rest#*,}"
  [ "$iface" = "$bip" ] && iface="eth0"
  [ "$gw" = "$bip" ] && gw=""
  if wait_for "[ -e /sys/class/net/$iface ]"; then
    ip link set lo up
    ip addr add "$addr" dev "$iface" || log "could not set $addr on $iface"
    ip link set "$iface" up
    if [ -n "$gw" ]; then
      ip route add default via "$gw" dev "$iface" || log "could not add default route via $gw"
    fi
    log "network: $iface $addr gw ${gw:-none}"
  else
    log "network interface $iface not found"
  fi
fi

[ -n "$root" ] || fail "no root= on the kernel command line"
case "$root" in
  LABEL=* | UUID=*)
    wait_for "findfs '$root' >/dev/null 2>&1" || fail "root $root not found"
    root="$(findfs "$root")"
    ;;
  *)
    wait_for "[ -b '$root' ]" || fail "root device $root did not appear"
    ;;
esac

mount -t "$rootfstype" -o "$rootmode" "$root" /newroot || fail "cannot mount $root ($rootfstype, $rootmode)"
[ -x "/newroot$init" ] || [ -L "/newroot$init" ] || fail "$init not found in the root filesystem"

for fs in dev proc sys; do
  if [ -d "/newroot/$fs" ]; then
    mount --move "/$fs" "/newroot/$fs"
  else
    umount -l "/$fs"
  fi
done

exec switch_root /newroot "$init"
