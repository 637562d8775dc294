#!/usr/bin/env bash
# npm run package: the single executable, then a .deb (dpkg-deb) and an .rpm
# (rpmbuild) from one staged tree. Layout and choices: docs/packaging.md.
#
# Usage: scripts/package.sh [--version VERSION] [--out DIR] [--fast]
#   --version  package and `nodewarden --version` (default: package.json's)
#   --out      output directory (default: dist/packages)
#   --fast     gzip -1 (.deb) and zstd -3 (.rpm), for the tests: seconds instead of
#              minutes, about 30% larger. Default: xz -6 (.deb), zstd -19 (.rpm).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

version=$(node -p 'require("./package.json").version')
out=dist/packages
fast=0
while [ $# -gt 0 ]; do
  case "$1" in
    --version) version=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --fast) fast=1; shift ;;
    -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "package: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if ! [[ $version =~ ^[0-9][0-9A-Za-z.+~]*$ ]]; then
  echo "package: version $version: use digits, letters, '.', '+' and '~' (Debian and rpm both accept them)" >&2
  exit 2
fi

# One architecture: the executable is a copy of this machine's node, and koffi's
# prebuilt module comes from the one platform package npm installed here.
case "$(uname -m)" in
  x86_64) deb_arch=amd64 rpm_arch=x86_64 koffi_triplet=linux_x64 koffi_pkg=koffi-linux-x64 ;;
  aarch64) deb_arch=arm64 rpm_arch=aarch64 koffi_triplet=linux_arm64 koffi_pkg=koffi-linux-arm64 ;;
  *) echo "package: unsupported machine $(uname -m)" >&2; exit 1 ;;
esac
koffi_node="node_modules/@koromix/$koffi_pkg/$koffi_triplet/koffi.node"
[ -f "$koffi_node" ] || { echo "package: $koffi_node is missing (npm ci on this machine installs it)" >&2; exit 1; }

# Changelog dates: the last commit's, so that a rebuild of a commit is the same.
build_epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/nodewarden-package.XXXXXX")
trap 'rm -rf "$work"' EXIT

make -s -C bpf
node packaging/sea/build.mjs "$work/sea" "$version" >/dev/null 2>"$work/sea.log" || {
  cat "$work/sea.log" >&2
  exit 1
}

# stage ROOT UNITDIR: the files both packages ship, under ROOT.
stage() {
  local root=$1 unitdir=$2
  install -D -m 0755 "$work/sea/nodewarden" "$root/usr/bin/nodewarden"
  install -D -m 0644 "$koffi_node" "$root/usr/lib/nodewarden/koffi.node"
  strip --strip-unneeded --remove-section=.comment "$root/usr/lib/nodewarden/koffi.node"
  install -d -m 0755 "$root/usr/lib/nodewarden/bpf" "$root/usr/lib/nodewarden/examples/policies"
  for object in bpf/out/*.o; do
    install -m 0644 "$object" "$root/usr/lib/nodewarden/bpf/"
    # Debug info goes; BTF and BTF.ext (CO-RE relocations, map layouts) stay.
    llvm-strip --strip-debug "$root/usr/lib/nodewarden/bpf/$(basename "$object")"
  done
  install -m 0644 host-policies/examples/*.yaml "$root/usr/lib/nodewarden/examples/policies/"
  # Kubernetes manifests (namespace, RBAC, our CRDs) for `kubectl apply -f`.
  install -d -m 0755 "$root/usr/lib/nodewarden/manifests/crds"
  install -m 0644 manifests/*.yaml "$root/usr/lib/nodewarden/manifests/"
  install -m 0644 manifests/crds/*.yaml "$root/usr/lib/nodewarden/manifests/crds/"
  install -D -m 0644 packaging/files/config.yaml "$root/etc/nodewarden/config.yaml"
  install -d -m 0750 "$root/etc/nodewarden/policies.d"
  install -D -m 0644 systemd/nodewarden.service "$root$unitdir/nodewarden.service"
  install -D -m 0644 systemd/nodewarden.tmpfiles "$root/usr/lib/tmpfiles.d/nodewarden.conf"
  install -d -m 0755 "$root/usr/share/man/man8" "$root/usr/share/doc/nodewarden"
  gzip -9n <packaging/files/nodewarden.8 >"$root/usr/share/man/man8/nodewarden.8.gz"
  chmod 0644 "$root/usr/share/man/man8/nodewarden.8.gz"
  install -m 0644 README.md docs/*.md "$root/usr/share/doc/nodewarden/"
}

# --- .deb -------------------------------------------------------------------
deb_root="$work/deb"
stage "$deb_root" /lib/systemd/system
install -m 0644 packaging/deb/copyright "$deb_root/usr/share/doc/nodewarden/copyright"
sed -e "s/@VERSION@/$version/" -e "s/@DATE@/$(date -R -u -d "@$build_epoch")/" \
  packaging/deb/changelog | gzip -9n >"$deb_root/usr/share/doc/nodewarden/changelog.gz"
chmod 0644 "$deb_root/usr/share/doc/nodewarden/changelog.gz"
install -D -m 0644 packaging/deb/lintian-overrides "$deb_root/usr/share/lintian/overrides/nodewarden"
# The staged executable finds koffi.node in ../lib/nodewarden, as installed.
built=$("$deb_root/usr/bin/nodewarden" --version)
[ "$built" = "$version" ] || { echo "package: the executable says $built, expected $version" >&2; exit 1; }

# The shared libraries the executable and koffi link against, with the versions
# their symbols need (dpkg-shlibdeps), plus libbpf, which koffi opens by name.
mkdir -p "$work/shlibs/debian"
printf 'Source: nodewarden\n\nPackage: nodewarden\nArchitecture: any\n' >"$work/shlibs/debian/control"
shlibs=$(cd "$work/shlibs" && dpkg-shlibdeps -O -e"$deb_root/usr/bin/nodewarden" -e"$deb_root/usr/lib/nodewarden/koffi.node" 2>/dev/null)
shlibs=${shlibs#shlibs:Depends=}
depends="libbpf1 (>= 1:1.1), $shlibs"

install -d -m 0755 "$deb_root/DEBIAN"
installed_size=$(du -sk --exclude=DEBIAN "$deb_root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$deb_arch/" -e "s/@INSTALLED_SIZE@/$installed_size/" \
  -e "s/@DEPENDS@/$depends/" packaging/deb/control.in >"$deb_root/DEBIAN/control"
install -m 0644 packaging/deb/conffiles "$deb_root/DEBIAN/conffiles"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$deb_root/DEBIAN/"
(cd "$deb_root" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' | sort -z |
  xargs -0 md5sum >DEBIAN/md5sums)
chmod 0644 "$deb_root/DEBIAN/md5sums"
deb="$out/nodewarden_${version}_${deb_arch}.deb"
if [ "$fast" = 1 ]; then deb_compression=(-Zgzip -z1); else deb_compression=(-Zxz -z6); fi
dpkg-deb --root-owner-group "${deb_compression[@]}" --build "$deb_root" "$deb" >/dev/null

# --- .rpm -------------------------------------------------------------------
rpm_version=${version//-/\~}
rpm_root="$work/rpm-root"
stage "$rpm_root" /usr/lib/systemd/system
install -m 0644 LICENSE "$rpm_root/usr/share/doc/nodewarden/" 2>/dev/null || true
mkdir -p "$work/rpm/SPECS"
sed -e "s/@RPM_VERSION@/$rpm_version/" -e "s/@CHANGELOG_DATE@/$(date -u -d "@$build_epoch" '+%a %b %d %Y')/" \
  packaging/rpm/nodewarden.spec.in >"$work/rpm/SPECS/nodewarden.spec"
rpmbuild -bb --quiet --target "$rpm_arch" \
  --define "_topdir $work/rpm" --define "staged $rpm_root" --define "_build_id_links none" \
  --define "_binary_payload $([ "$fast" = 1 ] && echo w3.zstdio || echo w19.zstdio)" \
  "$work/rpm/SPECS/nodewarden.spec" >"$work/rpmbuild.log" 2>&1 || {
  cat "$work/rpmbuild.log" >&2
  exit 1
}
rpm="$out/nodewarden-$rpm_version-1.$rpm_arch.rpm"
mv "$work/rpm/RPMS/$rpm_arch/$(basename "$rpm")" "$rpm"

ls -l "$deb" "$rpm" | awk '{ printf "package: %s (%.1f MB)\n", $NF, $5 / 1048576 }'
