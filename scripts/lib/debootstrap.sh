# Sourced by test/package/rootfs.sh and bench/vm/image.sh: the steps of a Debian
# root that is built once by debootstrap and then cached, keyed by what goes in.

# The mirror apt uses on this machine, else Debian's own.
debian_mirror() {
  local mirror
  mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  echo "${mirror:-http://deb.debian.org/debian}"
}

# lock_cache DIR: creates DIR and holds its lock until the script exits, so two
# runs never build the same root at once.
lock_cache() {
  mkdir -p "$1"
  exec 9>"$1/.lock"
  flock 9
}

# debootstrap_into WORK SUITE INCLUDE MIRROR: a minbase root in WORK/root, its log
# in WORK/debootstrap.log, whose tail is shown if it fails.
debootstrap_into() {
  debootstrap --variant=minbase --include="$3" "$2" "$1/root" "$4" >"$1/debootstrap.log" 2>&1 || {
    tail -n 30 "$1/debootstrap.log" >&2
    exit 1
  }
}

# drop_apt_caches ROOT: the downloaded packages and lists, which the root no longer needs.
drop_apt_caches() {
  rm -rf "$1/var/cache/apt/archives/"*.deb "$1/var/lib/apt/lists/"*
}
