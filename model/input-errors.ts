/** Input errors that name the file, the object and the field path. */

export type PathSegment = string | number;

/** `spec.ingress[0].toPorts` from ['spec', 'ingress', 0, 'toPorts']. */
export function formatFieldPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out ? `.${segment}` : segment;
  }
  return out || '(root)';
}

export interface InputProblem {
  file: string;
  /** The object inside the file, such as `CiliumClusterwideNetworkPolicy/ssh` or `document 2`. */
  object?: string;
  /** 1-based line of the field, when the YAML parser knows it. */
  line?: number;
  path: readonly PathSegment[];
  message: string;
}

export function formatProblem(p: InputProblem): string {
  const where = p.line ? `${p.file}:${p.line}` : p.file;
  const object = p.object ? ` ${p.object}` : '';
  return `${where}:${object} ${formatFieldPath(p.path)}: ${p.message}`;
}

/** One or more problems in operator input. The daemon keeps its last good state when it sees one. */
export class InputError extends Error {
  override readonly name = 'InputError';
  constructor(readonly problems: readonly InputProblem[]) {
    super(problems.map(formatProblem).join('\n'));
  }
}
