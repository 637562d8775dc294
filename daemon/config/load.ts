import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { InputError } from '../../model/input-errors.js';
import { parseYamlDocuments, validate } from '../../model/yaml.js';
import { type Config, configSchema } from './schema.js';

export const DEFAULT_CONFIG_PATH = '/etc/nodewarden/config.yaml';

export interface LoadedConfig extends Config {
  nodeName: string;
  /** The file it came from, for messages. */
  file: string;
}

/** Reads and validates config.yaml. A missing default file means "all defaults". */
export function loadConfig(file: string, options: { mustExist?: boolean } = {}): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !options.mustExist) text = '';
    else throw new InputError([{ file, path: [], message: `cannot read: ${code ?? String(error)}` }]);
  }
  const docs = parseYamlDocuments(file, text);
  if (docs.length > 1) {
    throw new InputError([
      { file, object: 'document 2', path: [], message: 'config.yaml holds one document' },
    ]);
  }
  const config = validate(configSchema, docs[0] ?? { file, index: 0, value: {}, lineOf: () => undefined });
  return { ...config, nodeName: config.nodeName ?? hostname(), file };
}
