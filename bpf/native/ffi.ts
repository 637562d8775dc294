/**
 * The one native bridge: koffi declarations for libbpf.so.1 and libc, and
 * nothing else. Every other module calls the typed wrappers in bpf/*.ts; none
 * of them imports koffi. Struct declarations mirror libbpf 1.1's headers
 * (/usr/include/bpf/libbpf.h and bpf.h) field for field.
 */
import koffi from 'koffi';

const libbpf = koffi.load('libbpf.so.1');
const libc = koffi.load('libc.so.6');

/** A native pointer as koffi 3 returns it, or null. */
export type Ptr = bigint;

koffi.opaque('bpf_object');
koffi.opaque('bpf_program');
koffi.opaque('bpf_map');
koffi.opaque('ring_buffer');

koffi.struct('bpf_object_open_opts', {
  sz: 'size_t',
  object_name: 'const char *',
  relaxed_maps: 'bool',
  pin_root_path: 'const char *',
  removed_attach_prog_fd: 'uint32_t',
  kconfig: 'const char *',
  btf_custom_path: 'const char *',
  kernel_log_buf: 'uintptr_t',
  kernel_log_size: 'size_t',
  kernel_log_level: 'uint32_t',
});

// libbpf 1.1 has no tcx member in this union; the kernel reads tcx's
// relative_fd/expected_revision from it, and zero means "append, any revision".
koffi.struct('bpf_link_create_opts', {
  sz: 'size_t',
  flags: 'uint32_t',
  union_words: koffi.array('uint64_t', 4),
});

koffi.struct('bpf_tc_hook', {
  sz: 'size_t',
  ifindex: 'int',
  attach_point: 'int',
  parent: 'uint32_t',
});

koffi.struct('bpf_tc_opts', {
  sz: 'size_t',
  prog_fd: 'int',
  flags: 'uint32_t',
  prog_id: 'uint32_t',
  handle: 'uint32_t',
  priority: 'uint32_t',
});

koffi.struct('bpf_map_create_opts', {
  sz: 'size_t',
  btf_fd: 'uint32_t',
  btf_key_type_id: 'uint32_t',
  btf_value_type_id: 'uint32_t',
  btf_vmlinux_value_type_id: 'uint32_t',
  inner_map_fd: 'uint32_t',
  map_flags: 'uint32_t',
  map_extra: 'uint64_t',
  numa_node: 'uint32_t',
  map_ifindex: 'uint32_t',
});

koffi.struct('bpf_map_batch_opts', {
  sz: 'size_t',
  elem_flags: 'uint64_t',
  flags: 'uint64_t',
});

koffi.struct('bpf_test_run_opts', {
  sz: 'size_t',
  data_in: 'uintptr_t',
  data_out: 'uintptr_t',
  data_size_in: 'uint32_t',
  data_size_out: 'uint32_t',
  ctx_in: 'uintptr_t',
  ctx_out: 'uintptr_t',
  ctx_size_in: 'uint32_t',
  ctx_size_out: 'uint32_t',
  retval: 'uint32_t',
  repeat: 'int',
  duration: 'uint32_t',
  flags: 'uint32_t',
  cpu: 'uint32_t',
  batch_size: 'uint32_t',
});

koffi.struct('timespec', { tv_sec: 'int64_t', tv_nsec: 'int64_t' });

const RingBufferSampleFn = koffi.proto(
  'int ring_buffer_sample_fn(uintptr_t ctx, uintptr_t data, size_t size)',
);

export interface ObjectOpenOpts {
  sz: number;
  object_name: string | null;
  relaxed_maps: boolean;
  pin_root_path: string | null;
  removed_attach_prog_fd: number;
  kconfig: string | null;
  btf_custom_path: string | null;
  kernel_log_buf: bigint;
  kernel_log_size: number;
  kernel_log_level: number;
}
export interface LinkCreateOpts {
  sz: number;
  flags: number;
  union_words: bigint[];
}
export interface TcHook {
  sz: number;
  ifindex: number;
  attach_point: number;
  parent: number;
}
export interface TcOpts {
  sz: number;
  prog_fd: number;
  flags: number;
  prog_id: number;
  handle: number;
  priority: number;
}
export interface MapCreateOpts {
  sz: number;
  btf_fd: number;
  btf_key_type_id: number;
  btf_value_type_id: number;
  btf_vmlinux_value_type_id: number;
  inner_map_fd: number;
  map_flags: number;
  map_extra: bigint;
  numa_node: number;
  map_ifindex: number;
}
export interface MapBatchOpts {
  sz: number;
  elem_flags: bigint;
  flags: bigint;
}
export interface TestRunOpts {
  sz: number;
  data_in: bigint;
  data_out: bigint;
  data_size_in: number;
  data_size_out: number;
  ctx_in: bigint;
  ctx_out: bigint;
  ctx_size_in: number;
  ctx_size_out: number;
  retval: number;
  repeat: number;
  duration: number;
  flags: number;
  cpu: number;
  batch_size: number;
}

export const sizeOf = {
  objectOpenOpts: koffi.sizeof('bpf_object_open_opts'),
  linkCreateOpts: koffi.sizeof('bpf_link_create_opts'),
  tcHook: koffi.sizeof('bpf_tc_hook'),
  tcOpts: koffi.sizeof('bpf_tc_opts'),
  mapBatchOpts: koffi.sizeof('bpf_map_batch_opts'),
  mapCreateOpts: koffi.sizeof('bpf_map_create_opts'),
  testRunOpts: koffi.sizeof('bpf_test_run_opts'),
};

type Buf = Buffer | Uint8Array | null;

/** Typed libbpf entry points. Ints follow libbpf's convention: negative means -errno. */
export const bpf = {
  objectOpenFile: libbpf.func(
    'bpf_object *bpf_object__open_file(const char *path, const bpf_object_open_opts *opts)',
  ) as (path: string, opts: ObjectOpenOpts) => Ptr | null,
  objectLoad: libbpf.func('int bpf_object__load(bpf_object *obj)') as (obj: Ptr) => number,
  objectClose: libbpf.func('void bpf_object__close(bpf_object *obj)') as (obj: Ptr) => void,
  objectFindProgram: libbpf.func(
    'bpf_program *bpf_object__find_program_by_name(bpf_object *obj, const char *name)',
  ) as (obj: Ptr, name: string) => Ptr | null,
  objectFindMap: libbpf.func('bpf_map *bpf_object__find_map_by_name(bpf_object *obj, const char *name)') as (
    obj: Ptr,
    name: string,
  ) => Ptr | null,
  objectNextProgram: libbpf.func(
    'bpf_program *bpf_object__next_program(bpf_object *obj, bpf_program *prev)',
  ) as (obj: Ptr, prev: Ptr | null) => Ptr | null,
  objectNextMap: libbpf.func('bpf_map *bpf_object__next_map(bpf_object *obj, bpf_map *prev)') as (
    obj: Ptr,
    prev: Ptr | null,
  ) => Ptr | null,
  programName: libbpf.func('const char *bpf_program__name(bpf_program *prog)') as (prog: Ptr) => string,
  programFd: libbpf.func('int bpf_program__fd(bpf_program *prog)') as (prog: Ptr) => number,
  programSetAutoload: libbpf.func('int bpf_program__set_autoload(bpf_program *prog, bool autoload)') as (
    prog: Ptr,
    autoload: boolean,
  ) => number,
  mapName: libbpf.func('const char *bpf_map__name(bpf_map *map)') as (map: Ptr) => string,
  mapFd: libbpf.func('int bpf_map__fd(bpf_map *map)') as (map: Ptr) => number,
  mapType: libbpf.func('int bpf_map__type(bpf_map *map)') as (map: Ptr) => number,
  mapKeySize: libbpf.func('uint32_t bpf_map__key_size(bpf_map *map)') as (map: Ptr) => number,
  mapValueSize: libbpf.func('uint32_t bpf_map__value_size(bpf_map *map)') as (map: Ptr) => number,
  mapMaxEntries: libbpf.func('uint32_t bpf_map__max_entries(bpf_map *map)') as (map: Ptr) => number,
  mapSetPinPath: libbpf.func('int bpf_map__set_pin_path(bpf_map *map, const char *path)') as (
    map: Ptr,
    path: string | null,
  ) => number,
  mapIsPinned: libbpf.func('bool bpf_map__is_pinned(bpf_map *map)') as (map: Ptr) => boolean,
  mapPinPath: libbpf.func('const char *bpf_map__pin_path(bpf_map *map)') as (map: Ptr) => string | null,

  mapCreate: libbpf.func(
    'int bpf_map_create(int map_type, const char *name, uint32_t key_size, uint32_t value_size, uint32_t max_entries, const bpf_map_create_opts *opts)',
  ) as (
    type: number,
    name: string,
    keySize: number,
    valueSize: number,
    maxEntries: number,
    opts: MapCreateOpts,
  ) => number,
  mapGetFdById: libbpf.func('int bpf_map_get_fd_by_id(uint32_t id)') as (id: number) => number,
  objGet: libbpf.func('int bpf_obj_get(const char *path)') as (path: string) => number,
  objPin: libbpf.func('int bpf_obj_pin(int fd, const char *path)') as (fd: number, path: string) => number,
  objGetInfoByFd: libbpf.func('int bpf_obj_get_info_by_fd(int fd, void *info, _Inout_ uint32_t *len)') as (
    fd: number,
    info: Buffer,
    len: [number],
  ) => number,

  mapLookupElem: libbpf.func('int bpf_map_lookup_elem(int fd, const void *key, void *value)') as (
    fd: number,
    key: Buf,
    value: Buffer,
  ) => number,
  mapUpdateElem: libbpf.func(
    'int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)',
  ) as (fd: number, key: Buf, value: Buf, flags: bigint) => number,
  mapDeleteElem: libbpf.func('int bpf_map_delete_elem(int fd, const void *key)') as (
    fd: number,
    key: Buf,
  ) => number,
  mapGetNextKey: libbpf.func('int bpf_map_get_next_key(int fd, const void *key, void *next_key)') as (
    fd: number,
    key: Buf,
    next: Buffer,
  ) => number,
  mapLookupBatch: libbpf.func(
    'int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, _Inout_ uint32_t *count, const bpf_map_batch_opts *opts)',
  ) as (
    fd: number,
    inBatch: Buf,
    outBatch: Buffer,
    keys: Buffer,
    values: Buffer,
    count: [number],
    opts: MapBatchOpts,
  ) => number,
  mapUpdateBatch: libbpf.func(
    'int bpf_map_update_batch(int fd, const void *keys, const void *values, _Inout_ uint32_t *count, const bpf_map_batch_opts *opts)',
  ) as (fd: number, keys: Buffer, values: Buffer, count: [number], opts: MapBatchOpts) => number,
  mapDeleteBatch: libbpf.func(
    'int bpf_map_delete_batch(int fd, const void *keys, _Inout_ uint32_t *count, const bpf_map_batch_opts *opts)',
  ) as (fd: number, keys: Buffer, count: [number], opts: MapBatchOpts) => number,

  linkCreate: libbpf.func(
    'int bpf_link_create(int prog_fd, int target_fd, int attach_type, const bpf_link_create_opts *opts)',
  ) as (progFd: number, targetFd: number, attachType: number, opts: LinkCreateOpts) => number,
  linkUpdate: libbpf.func('int bpf_link_update(int link_fd, int new_prog_fd, const void *opts)') as (
    linkFd: number,
    progFd: number,
    opts: null,
  ) => number,
  linkDetach: libbpf.func('int bpf_link_detach(int link_fd)') as (linkFd: number) => number,

  tcHookCreate: libbpf.func('int bpf_tc_hook_create(bpf_tc_hook *hook)') as (hook: TcHook) => number,
  tcHookDestroy: libbpf.func('int bpf_tc_hook_destroy(bpf_tc_hook *hook)') as (hook: TcHook) => number,
  tcAttach: libbpf.func('int bpf_tc_attach(const bpf_tc_hook *hook, _Inout_ bpf_tc_opts *opts)') as (
    hook: TcHook,
    opts: TcOpts,
  ) => number,
  tcDetach: libbpf.func('int bpf_tc_detach(const bpf_tc_hook *hook, const bpf_tc_opts *opts)') as (
    hook: TcHook,
    opts: TcOpts,
  ) => number,
  tcQuery: libbpf.func('int bpf_tc_query(const bpf_tc_hook *hook, _Inout_ bpf_tc_opts *opts)') as (
    hook: TcHook,
    opts: TcOpts,
  ) => number,

  ringBufferNew: libbpf.func(
    'ring_buffer *ring_buffer__new(int map_fd, ring_buffer_sample_fn *cb, uintptr_t ctx, const void *opts)',
  ) as (mapFd: number, cb: unknown, ctx: bigint, opts: null) => Ptr | null,
  ringBufferConsume: libbpf.func('int ring_buffer__consume(ring_buffer *rb)') as (rb: Ptr) => number,
  ringBufferFree: libbpf.func('void ring_buffer__free(ring_buffer *rb)') as (rb: Ptr) => void,

  progTestRun: libbpf.func('int bpf_prog_test_run_opts(int prog_fd, _Inout_ bpf_test_run_opts *opts)') as (
    progFd: number,
    opts: TestRunOpts,
  ) => number,
};

/** Typed libc entry points. Ints follow libc's convention: -1 and errno. */
export const c = {
  ifNameToIndex: libc.func('unsigned int if_nametoindex(const char *name)') as (name: string) => number,
  setns: libc.func('int setns(int fd, int nstype)') as (fd: number, nstype: number) => number,
  close: libc.func('int close(int fd)') as (fd: number) => number,
  clockGettime: libc.func('int clock_gettime(int clock, _Out_ timespec *ts)') as (
    clock: number,
    ts: { tv_sec?: number | bigint; tv_nsec?: number | bigint },
  ) => number,
  socket: libc.func('int socket(int domain, int type, int protocol)') as (
    domain: number,
    type: number,
    protocol: number,
  ) => number,
  bind: libc.func('int bind(int fd, const void *addr, uint32_t len)') as (
    fd: number,
    addr: Buffer,
    len: number,
  ) => number,
  recv: libc.func('intptr_t recv(int fd, void *buf, size_t len, int flags)') as (
    fd: number,
    buf: Buffer,
    len: number,
    flags: number,
  ) => number | bigint,
  sendto: libc.func(
    'intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)',
  ) as (
    fd: number,
    buf: Buffer,
    len: number,
    flags: number,
    addr: Buffer,
    addrLen: number,
  ) => number | bigint,
  sendmmsg: libc.func('int sendmmsg(int fd, void *msgvec, unsigned int vlen, int flags)') as (
    fd: number,
    msgvec: Buffer,
    vlen: number,
    flags: number,
  ) => number,
  mount: libc.func(
    'int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data)',
  ) as (source: string, target: string, fstype: string, flags: number, data: null) => number,
};

/** errno of the last native call on this thread. Read it before any other native call. */
export function lastErrno(): number {
  return koffi.errno();
}

/** The address of a buffer's memory, to put into a struct's pointer field. Keep the buffer alive. */
export function addressOf(buf: Buffer): bigint {
  return koffi.address(buf) as bigint;
}

export type RingBufferSample = (data: Buffer) => void;

/**
 * Registers a JS function as a ring_buffer_sample_fn. The callback runs on the
 * main thread during ring_buffer__consume; the sample memory is only valid during
 * the call, so it is copied out.
 */
export function registerRingBufferCallback(onSample: RingBufferSample): {
  pointer: unknown;
  release(): void;
} {
  const pointer = koffi.register((_ctx: bigint, data: bigint, size: number | bigint) => {
    onSample(Buffer.from(new Uint8Array(koffi.view(data, Number(size)))));
    return 0;
  }, koffi.pointer(RingBufferSampleFn));
  return { pointer, release: () => koffi.unregister(pointer as never) };
}

/**
 * libc for TCP sockets that node:net cannot configure before connect (TCP MD5
 * keys, IP_TTL, binding a source address on a listening fd we hand to Node).
 */
const pollFn = libc.func('int poll(void *fds, unsigned long nfds, int timeout)');

export const tcpSocket = {
  setsockopt: libc.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)') as (
    fd: number,
    level: number,
    name: number,
    value: Buffer,
    len: number,
  ) => number,
  getsockopt: libc.func(
    'int getsockopt(int fd, int level, int name, void *value, _Inout_ uint32_t *len)',
  ) as (fd: number, level: number, name: number, value: Buffer, len: [number]) => number,
  connect: libc.func('int connect(int fd, const void *addr, uint32_t len)') as (
    fd: number,
    addr: Buffer,
    len: number,
  ) => number,
  listen: libc.func('int listen(int fd, int backlog)') as (fd: number, backlog: number) => number,
  /** poll(2) on a worker thread, so waiting never blocks the event loop. Resolves to poll's result. */
  pollAsync: (fds: Buffer, count: number, timeoutMs: number): Promise<number> =>
    new Promise((resolve, reject) => {
      pollFn.async(fds, count, timeoutMs, (error: unknown, result: number) => {
        if (error) reject(error);
        else resolve(result);
      });
    }),
};
