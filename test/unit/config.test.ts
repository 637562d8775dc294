import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../daemon/config/load.js';
import { formatFieldPath, formatProblem, InputError } from '../../model/input-errors.js';
import { parseYamlDocuments } from '../../model/yaml.js';

let dir: string;
let counter = 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'nodewarden-config-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Writes text to a fresh file and returns its path. */
function configFile(text: string): string {
  const file = join(dir, `config-${++counter}.yaml`);
  writeFileSync(file, text);
  return file;
}

/** Loads text as config.yaml and returns the InputError it must throw. */
function loadError(file: string, options: { mustExist?: boolean } = {}): InputError {
  try {
    loadConfig(file, options);
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    return error as InputError;
  }
  throw new Error(`loadConfig(${file}) did not throw`);
}

const DEFAULT_L2 = {
  interfaces: ['^(eth|en|bond)'],
  announcements: [],
  gratuitous: { count: 3, intervalMs: 200 },
  reannounceSeconds: 0,
  localRoutes: true,
};

const KUBERNETES_DEFAULTS = {
  namespace: 'nodewarden',
  qps: 20,
  burst: 40,
  idleTimeoutSeconds: 90,
  initialSyncTimeoutSeconds: 30,
  heartbeat: { renewIntervalMs: 1000, expirySeconds: 2 },
  loadBalancerClass: { name: 'nodewarden.io/lb', unclassed: true },
  ipam: { enabled: false },
};

const DEFAULTS = {
  labels: {},
  source: 'files',
  devices: [],
  datapath: { tcMode: 'auto', xdpMode: 'native' },
  log: { level: 'info' },
  policies: { directory: '/etc/nodewarden/policies.d', eventsPerSecond: 100 },
  cluster: { nodes: [], podCIDRs: [], apiServers: [] },
  metrics: { listen: '127.0.0.1:9469' },
  l2: DEFAULT_L2,
  kubernetes: KUBERNETES_DEFAULTS,
};

describe('loadConfig: valid input', () => {
  it('uses every default when the file is missing and need not exist', () => {
    const file = join(dir, 'absent.yaml');
    expect(loadConfig(file)).toEqual({ ...DEFAULTS, nodeName: hostname(), file });
  });

  it('uses every default for an empty file and for a file of comments', () => {
    const empty = configFile('');
    expect(loadConfig(empty)).toEqual({ ...DEFAULTS, nodeName: hostname(), file: empty });
    const comments = configFile('# nothing here yet\n');
    expect(loadConfig(comments, { mustExist: true })).toEqual({
      ...DEFAULTS,
      nodeName: hostname(),
      file: comments,
    });
  });

  it('reads a full config', () => {
    const file = configFile(
      [
        'nodeName: edge-1',
        'labels:',
        '  role: edge',
        '  zone: "b"',
        'source: kubernetes',
        'devices:',
        '  - eth0',
        '  - bond0.100',
        'datapath:',
        '  tcMode: tcx',
        '  xdpMode: generic',
        'log:',
        '  level: debug',
        'policies:',
        '  directory: /srv/policies',
        '  eventsPerSecond: 10',
        'cluster:',
        '  nodes: [10.0.0.2, fd00::2]',
        '  podCIDRs: [10.244.0.0/16]',
        '  apiServers:',
        '    - address: 10.0.0.100',
        '',
      ].join('\n'),
    );
    expect(loadConfig(file, { mustExist: true })).toEqual({
      nodeName: 'edge-1',
      labels: { role: 'edge', zone: 'b' },
      source: 'kubernetes',
      devices: ['eth0', 'bond0.100'],
      datapath: { tcMode: 'tcx', xdpMode: 'generic' },
      log: { level: 'debug' },
      policies: { directory: '/srv/policies', eventsPerSecond: 10 },
      cluster: {
        nodes: ['10.0.0.2', 'fd00::2'],
        podCIDRs: ['10.244.0.0/16'],
        apiServers: [{ address: '10.0.0.100', port: 6443 }],
      },
      metrics: { listen: '127.0.0.1:9469' },
      l2: DEFAULT_L2,
      kubernetes: KUBERNETES_DEFAULTS,
      file,
    });
  });

  it('rejects cluster addresses and CIDRs that are not', () => {
    const file = configFile('cluster:\n  nodes: [10.0.0.300]\n  podCIDRs: [10.244.0.0/33]\n');
    expect(loadError(file).message).toBe(
      [
        `${file}:2: cluster.nodes[0]: must be an IPv4 or IPv6 address`,
        `${file}:3: cluster.podCIDRs[0]: must be an IPv4 or IPv6 CIDR`,
      ].join('\n'),
    );
  });

  it('fills in defaults inside a section that is only partly given', () => {
    const file = configFile('datapath:\n  tcMode: tc\n');
    const config = loadConfig(file);
    expect(config.datapath).toEqual({ tcMode: 'tc', xdpMode: 'native' });
    expect(config.log).toEqual({ level: 'info' });
  });

  it('accepts one document followed by an empty one', () => {
    const file = configFile('nodeName: a\n---\n');
    expect(loadConfig(file).nodeName).toBe('a');
  });
});

describe('loadConfig: errors name file, line and field', () => {
  it('reports a missing file that must exist', () => {
    const file = join(dir, 'absent-required.yaml');
    const error = loadError(file, { mustExist: true });
    expect(error.message).toBe(`${file}: (root): cannot read: ENOENT`);
    expect(error.problems).toEqual([{ file, path: [], message: 'cannot read: ENOENT' }]);
  });

  it('reports a file it cannot read even when it need not exist', () => {
    const sub = join(dir, 'a-directory.yaml');
    mkdirSync(sub);
    expect(loadError(sub).message).toBe(`${sub}: (root): cannot read: EISDIR`);
  });

  it('rejects an unknown top-level key, on its line', () => {
    const file = configFile('nodeName: n1\nbogus: 1\n');
    const error = loadError(file);
    expect(error.message).toBe(`${file}:2: bogus: unknown field; nodewarden does not support it`);
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]).toMatchObject({ file, line: 2, path: ['bogus'] });
  });

  it('rejects an unknown nested key with its full field path', () => {
    const file = configFile('nodeName: n1\ndatapath:\n  bogus: true\n  tcMode: tcx\n');
    expect(loadError(file).message).toBe(
      `${file}:3: datapath.bogus: unknown field; nodewarden does not support it`,
    );
  });

  it('points at the key of an unknown field whose value is a block on later lines', () => {
    const file = configFile('nodeName: n1\nextras:\n  a: 1\n  b: 2\n');
    expect(loadError(file).message).toBe(`${file}:2: extras: unknown field; nodewarden does not support it`);
  });

  it('names every unknown key when there are several in one object', () => {
    const file = configFile('log:\n  level: info\n  format: json\n  color: true\n');
    expect(loadError(file).message).toBe(
      `${file}:1: log: unknown fields format, color; nodewarden does not support it`,
    );
  });

  it('rejects a wrong enum value', () => {
    const file = configFile('datapath:\n  tcMode: fast\n');
    expect(loadError(file).message).toBe(
      `${file}:2: datapath.tcMode: Invalid option: expected one of "auto"|"tcx"|"tc"`,
    );
  });

  it('rejects a devices entry longer than an interface name can be', () => {
    const file = configFile('devices:\n  - eth0\n  - averyveryverylongname0\n');
    const error = loadError(file);
    expect(error.message).toBe(`${file}:3: devices[1]: Too big: expected string to have <=15 characters`);
    expect(error.problems[0]!.path).toEqual(['devices', 1]);
  });

  it('rejects a devices entry with a slash', () => {
    const file = configFile('devices: [eth0, "eth0/1"]\n');
    expect(loadError(file).message).toBe(
      `${file}:1: devices[1]: must be an interface name (no spaces or slashes)`,
    );
  });

  it('lists every problem, one per line', () => {
    const file = configFile('source: etcd\nlog:\n  level: loud\n');
    expect(loadError(file).message).toBe(
      [
        `${file}:1: source: Invalid option: expected one of "files"|"kubernetes"`,
        `${file}:3: log.level: Invalid option: expected one of "trace"|"debug"|"info"|"warn"|"error"|"fatal"`,
      ].join('\n'),
    );
  });

  it('rejects a document that is not a mapping', () => {
    const file = configFile('- eth0\n');
    expect(loadError(file).message).toBe(`${file}:1: (root): Invalid input: expected object, received array`);
  });

  it('reports YAML syntax errors with the file and line', () => {
    const file = configFile('nodeName: n1\nsource: files: x\nlog: {}\n');
    const error = loadError(file);
    expect(error.message).toBe(
      `${file}:2: document 1 (root): YAML: Nested mappings are not allowed in compact mappings`,
    );
    expect(error.problems).toEqual([
      {
        file,
        line: 2,
        object: 'document 1',
        path: [],
        message: 'YAML: Nested mappings are not allowed in compact mappings',
      },
    ]);
  });

  it('reports an unclosed flow collection where the parser finds it', () => {
    const file = configFile('nodeName: n1\nlabels: {a: 1\nlog: {}\n');
    expect(loadError(file).message).toBe(
      `${file}:3: document 1 (root): YAML: Flow map in block collection must be sufficiently indented and end with a }`,
    );
  });

  it('reports an unresolved alias as an input error, not a crash', () => {
    const file = configFile('nodeName: &n edge\nsource: *s\n');
    expect(loadError(file).message).toBe(
      `${file}: document 1 (root): YAML: Unresolved alias (the anchor must be set before the alias): s`,
    );
  });

  it('reports an alias bomb as an input error', () => {
    const lines = ['a: &a [x, x, x, x, x, x, x, x, x]'];
    for (const [name, prev] of [
      ['b', 'a'],
      ['c', 'b'],
      ['d', 'c'],
    ]) {
      lines.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(', ')}]`);
    }
    lines.push(`e: [${Array(9).fill('*d').join(', ')}]`);
    const file = configFile(`${lines.join('\n')}\n`);
    expect(loadError(file).message).toBe(
      `${file}: document 1 (root): YAML: Excessive alias count indicates a resource exhaustion attack`,
    );
  });

  it('reports a duplicate key on the line of the second one', () => {
    const file = configFile('nodeName: a\nsource: files\nnodeName: b\n');
    expect(loadError(file).message).toBe(`${file}:3: document 1 (root): YAML: Map keys must be unique`);
  });

  it('reports tab indentation on its line', () => {
    const file = configFile('datapath:\n\ttcMode: tc\n');
    expect(loadError(file).message).toBe(
      `${file}:2: document 1 (root): YAML: Tabs are not allowed as indentation`,
    );
  });

  it('rejects a file of more than one document', () => {
    const file = configFile('nodeName: a\n---\nnodeName: b\n');
    expect(loadError(file).message).toBe(`${file}: document 2 (root): config.yaml holds one document`);
  });
});

describe('parseYamlDocuments', () => {
  it('keeps the index of each document and skips empty ones', () => {
    const docs = parseYamlDocuments('/f.yaml', 'a: 1\n---\n---\nb: [x, y]\n');
    expect(docs.map((d) => [d.index, d.value])).toEqual([
      [0, { a: 1 }],
      [2, { b: ['x', 'y'] }],
    ]);
  });

  it('finds the line of map keys and sequence items, and nothing for absent paths', () => {
    const [doc] = parseYamlDocuments('/f.yaml', 'top:\n  list:\n    - a\n    -\n      deep: 1\n');
    expect(doc!.lineOf([])).toBe(1);
    expect(doc!.lineOf(['top'])).toBe(1);
    expect(doc!.lineOf(['top', 'list'])).toBe(2);
    expect(doc!.lineOf(['top', 'list', 0])).toBe(3);
    expect(doc!.lineOf(['top', 'list', 1, 'deep'])).toBe(5);
    expect(doc!.lineOf(['top', 'missing'])).toBeUndefined();
    expect(doc!.lineOf(['top', 'list', 7])).toBeUndefined();
  });

  it('reports the document number and file line of a syntax error in a later document', () => {
    expect(() => parseYamlDocuments('/f.yaml', 'a: 1\n---\nb: 2\nb: 3\n')).toThrow(
      new InputError([
        {
          file: '/f.yaml',
          object: 'document 2',
          line: 4,
          path: [],
          message: 'YAML: Map keys must be unique',
        },
      ]),
    );
    expect(() => parseYamlDocuments('/f.yaml', 'a: 1\n---\nb: 2\nb: 3\n')).toThrow(
      '/f.yaml:4: document 2 (root): YAML: Map keys must be unique',
    );
  });
});

describe('formatFieldPath', () => {
  it.each([
    [[], '(root)'],
    [['datapath'], 'datapath'],
    [['datapath', 'tcMode'], 'datapath.tcMode'],
    [['devices', 1], 'devices[1]'],
    [['spec', 'ingress', 0, 'toPorts'], 'spec.ingress[0].toPorts'],
    [['a', 1, 2], 'a[1][2]'],
    [[0], '[0]'],
    [[0, 'name'], '[0].name'],
  ] as const)('%j -> %s', (path, expected) => {
    expect(formatFieldPath(path)).toBe(expected);
  });
});

describe('formatProblem and InputError', () => {
  it('formats with and without line and object', () => {
    expect(formatProblem({ file: '/c.yaml', line: 7, path: ['log', 'level'], message: 'bad' })).toBe(
      '/c.yaml:7: log.level: bad',
    );
    expect(formatProblem({ file: '/c.yaml', path: [], message: 'bad' })).toBe('/c.yaml: (root): bad');
    expect(
      formatProblem({
        file: '/p.yaml',
        object: 'CiliumNetworkPolicy/ssh',
        line: 2,
        path: ['spec'],
        message: 'x',
      }),
    ).toBe('/p.yaml:2: CiliumNetworkPolicy/ssh spec: x');
  });

  it('joins its problems into its message and keeps them', () => {
    const problems = [
      { file: '/a', line: 1, path: ['x'], message: 'one' },
      { file: '/b', path: [0], message: 'two' },
    ];
    const error = new InputError(problems);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('InputError');
    expect(error.message).toBe('/a:1: x: one\n/b: [0]: two');
    expect(error.problems).toBe(problems);
  });
});
