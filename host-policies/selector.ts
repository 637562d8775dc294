/** Kubernetes label-selector matching, for nodeSelector (and, later, endpoint selectors). */
import type { LabelSelector } from './model.js';

/**
 * Whether `labels` satisfy `selector`, with Kubernetes semantics: every
 * matchLabels pair and every matchExpressions requirement must hold (AND); an
 * empty selector matches everything. `NotIn` and `DoesNotExist` hold when the
 * label is absent.
 */
export function matchesLabels(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  const has = (key: string) => Object.hasOwn(labels, key);
  for (const [key, value] of Object.entries(selector.matchLabels)) {
    if (!has(key) || labels[key] !== value) return false;
  }
  for (const { key, operator, values } of selector.matchExpressions) {
    switch (operator) {
      case 'In':
        if (!has(key) || !values.includes(labels[key]!)) return false;
        break;
      case 'NotIn':
        if (has(key) && values.includes(labels[key]!)) return false;
        break;
      case 'Exists':
        if (!has(key)) return false;
        break;
      case 'DoesNotExist':
        if (has(key)) return false;
        break;
    }
  }
  return true;
}
