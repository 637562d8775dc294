import { describe, expect, it } from 'vitest';
import { BpfError, checkLibbpf, errnoName } from '../../bpf/native/errors.js';

describe('errnoName', () => {
  it.each([
    [1, 'EPERM'],
    [2, 'ENOENT'],
    [13, 'EACCES'],
    [16, 'EBUSY'],
    [17, 'EEXIST'],
    [22, 'EINVAL'],
    [95, 'ENOTSUP'],
  ])('%i is %s', (errno, name) => {
    expect(errnoName(errno)).toBe(name);
  });

  it('takes the common name where two names share a number', () => {
    expect(errnoName(11)).toBe('EAGAIN');
  });

  it('accepts negative values, as libbpf returns them', () => {
    expect(errnoName(-2)).toBe('ENOENT');
    expect(errnoName(-22)).toBe('EINVAL');
  });

  it('names unknown numbers E<number>, without a sign', () => {
    expect(errnoName(99999)).toBe('E99999');
    expect(errnoName(-99999)).toBe('E99999');
    expect(errnoName(0)).toBe('E0');
  });
});

describe('BpfError', () => {
  it('says what failed on what, with the errno name', () => {
    const error = new BpfError('bpf_object__open_file', '/usr/lib/nodewarden/counters.o', -2);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('BpfError');
    expect(error.message).toBe('bpf_object__open_file /usr/lib/nodewarden/counters.o: ENOENT');
    expect(error.errno).toBe(2);
    expect(error.code).toBe('ENOENT');
    expect(error.op).toBe('bpf_object__open_file');
    expect(error.object).toBe('/usr/lib/nodewarden/counters.o');
    expect(error.detail).toBeUndefined();
    expect(error.verifierLog).toBeUndefined();
  });

  it('keeps a positive errno as is', () => {
    const error = new BpfError('attach', 'eth0', 16);
    expect(error.errno).toBe(16);
    expect(error.message).toBe('attach eth0: EBUSY');
  });

  it('adds the detail in parentheses', () => {
    expect(new BpfError('attach tcx', 'eth0', 95, 'kernel older than 6.6').message).toBe(
      'attach tcx eth0: ENOTSUP (kernel older than 6.6)',
    );
  });

  it('adds the verifier log after the first line', () => {
    const log = '0: (b7) r0 = 0\n1: (95) exit\nR0 !read_ok';
    const error = new BpfError('load', 'nw_tc_count_ingress', -13, 'permission denied', log);
    expect(error.message).toBe(
      'load nw_tc_count_ingress: EACCES (permission denied)\nverifier log:\n0: (b7) r0 = 0\n1: (95) exit\nR0 !read_ok',
    );
    expect(error.verifierLog).toBe(log);
    expect(error.message.split('\n')[0]).toBe('load nw_tc_count_ingress: EACCES (permission denied)');
  });

  it('adds a verifier log without a detail', () => {
    expect(new BpfError('load', 'p', 22, undefined, 'invalid insn').message).toBe(
      'load p: EINVAL\nverifier log:\ninvalid insn',
    );
  });

  it('leaves out an empty detail and an empty log', () => {
    expect(new BpfError('pin', '/sys/fs/bpf/x', 17, '', '').message).toBe('pin /sys/fs/bpf/x: EEXIST');
  });
});

describe('checkLibbpf', () => {
  it('passes zero and positive results through', () => {
    expect(checkLibbpf(0, 'op', 'obj')).toBe(0);
    expect(checkLibbpf(7, 'op', 'obj')).toBe(7);
  });

  it('throws a BpfError for a negative errno', () => {
    let caught: unknown;
    try {
      checkLibbpf(-1, 'bpf_map__pin', 'nw_counters');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(BpfError);
    expect(caught).toMatchObject({
      op: 'bpf_map__pin',
      object: 'nw_counters',
      errno: 1,
      code: 'EPERM',
      message: 'bpf_map__pin nw_counters: EPERM',
    });
  });
});
