#!/bin/sh
# PID 1 of the bench guest (baked into the image by bench/vm/image.sh).
# The host shares, over virtio 9p: the exchange directory (tag "out", holding
# run.sh, the command to run) and the repository and its node_modules at their
# host paths (tags "repo" and "modules"; paths on the kernel command line as
# nw.repo= and nw.modules=), so symlinks and absolute paths resolve as on the host.
# The guest has no network device: every link it uses is in its own namespaces.
# It powers off when run.sh returns, leaving run.sh's exit code in out/rc.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts /run && mount -t devpts devpts /dev/pts && mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t bpf bpf /sys/fs/bpf
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
ip link set lo up
for m in 9p 9pnet_virtio ip_vs ip_vs_sh ip_vs_mh veth bridge nf_tables nft_nat nft_chain_nat; do
  modprobe "$m" || echo "guest: modprobe $m failed"
done
arg() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" /proc/cmdline; }
ninep='-t 9p -o trans=virtio,version=9p2000.L,msize=1048576'
mkdir -p /mnt/out && mount $ninep out /mnt/out
repo=$(arg nw.repo)
modules=$(arg nw.modules)
[ -n "$repo" ] && mkdir -p "$repo" && mount $ninep -o ro repo "$repo"
[ -n "$modules" ] && mkdir -p "$modules" && mount $ninep -o ro modules "$modules"
echo "guest: $(uname -r), $(nproc) CPUs, up"
sh /mnt/out/run.sh >/mnt/out/log 2>&1
echo $? >/mnt/out/rc
sync
echo "guest: done, rc $(cat /mnt/out/rc)"
echo 1 >/proc/sys/kernel/sysrq
echo o >/proc/sysrq-trigger
sleep 10
