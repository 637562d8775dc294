import { describe, expect, it } from 'vitest';
import type { LabelSelector } from '../../host-policies/model.js';
import { matchesLabels } from '../../host-policies/selector.js';

const selector = (
  matchLabels: Record<string, string> = {},
  matchExpressions: LabelSelector['matchExpressions'] = [],
): LabelSelector => ({ matchLabels, matchExpressions });

const NODE = { role: 'edge', zone: 'b', 'node-access': 'ssh' };

describe('matchesLabels', () => {
  it('an empty selector matches everything, even a node without labels', () => {
    expect(matchesLabels(selector(), NODE)).toBe(true);
    expect(matchesLabels(selector(), {})).toBe(true);
  });

  it('matchLabels: every pair must be present with the same value', () => {
    expect(matchesLabels(selector({ role: 'edge' }), NODE)).toBe(true);
    expect(matchesLabels(selector({ role: 'edge', zone: 'b' }), NODE)).toBe(true);
    expect(matchesLabels(selector({ role: 'edge', zone: 'a' }), NODE)).toBe(false);
    expect(matchesLabels(selector({ rack: '1' }), NODE)).toBe(false);
    // An empty value is a value: it does not match an absent label.
    expect(matchesLabels(selector({ 'node-role.kubernetes.io/control-plane': '' }), NODE)).toBe(false);
    expect(
      matchesLabels(selector({ 'node-role.kubernetes.io/control-plane': '' }), {
        'node-role.kubernetes.io/control-plane': '',
      }),
    ).toBe(true);
  });

  it('In: the label is present with one of the values', () => {
    const s = selector({}, [{ key: 'role', operator: 'In', values: ['web', 'edge'] }]);
    expect(matchesLabels(s, NODE)).toBe(true);
    expect(matchesLabels(s, { role: 'db' })).toBe(false);
    expect(matchesLabels(s, {})).toBe(false);
  });

  it('NotIn: the label is absent or has none of the values', () => {
    const s = selector({}, [{ key: 'role', operator: 'NotIn', values: ['db'] }]);
    expect(matchesLabels(s, NODE)).toBe(true);
    expect(matchesLabels(s, {})).toBe(true);
    expect(matchesLabels(s, { role: 'db' })).toBe(false);
  });

  it('Exists and DoesNotExist look at the key only', () => {
    const exists = selector({}, [{ key: 'node-access', operator: 'Exists', values: [] }]);
    const absent = selector({}, [{ key: 'node-access', operator: 'DoesNotExist', values: [] }]);
    expect(matchesLabels(exists, NODE)).toBe(true);
    expect(matchesLabels(exists, { 'node-access': '' })).toBe(true);
    expect(matchesLabels(exists, {})).toBe(false);
    expect(matchesLabels(absent, NODE)).toBe(false);
    expect(matchesLabels(absent, {})).toBe(true);
  });

  it('every requirement must hold (AND), across matchLabels and matchExpressions', () => {
    const s = selector({ zone: 'b' }, [
      { key: 'role', operator: 'In', values: ['edge'] },
      { key: 'maintenance', operator: 'DoesNotExist', values: [] },
    ]);
    expect(matchesLabels(s, NODE)).toBe(true);
    expect(matchesLabels(s, { ...NODE, maintenance: 'true' })).toBe(false);
    expect(matchesLabels(s, { ...NODE, zone: 'a' })).toBe(false);
    expect(matchesLabels(s, { zone: 'b' })).toBe(false);
  });

  it('label keys are looked up as own properties only', () => {
    expect(matchesLabels(selector({}, [{ key: 'toString', operator: 'Exists', values: [] }]), {})).toBe(
      false,
    );
    expect(
      matchesLabels(selector({}, [{ key: 'constructor', operator: 'DoesNotExist', values: [] }]), {}),
    ).toBe(true);
  });
});
