/**
 * YAML documents with their source lines, and schema validation whose errors
 * point at file, object, field path and line.
 */
import { type Document, isMap, isScalar, isSeq, LineCounter, type Node, parseAllDocuments } from 'yaml';
import type { z } from 'zod';
import { InputError, type InputProblem, type PathSegment } from './input-errors.js';

export interface SourceDocument {
  file: string;
  /** 0-based position of the document in a multi-document file. */
  index: number;
  value: unknown;
  /** 1-based line of the node at a field path, if it exists. */
  lineOf(path: readonly PathSegment[]): number | undefined;
}

export function parseYamlDocuments(file: string, text: string): SourceDocument[] {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false });
  if (!Array.isArray(docs)) return [];
  const problems: InputProblem[] = [];
  const out: SourceDocument[] = [];
  docs.forEach((doc: Document.Parsed, index) => {
    for (const error of doc.errors) {
      // linePos is only filled in with prettyErrors; pos (offsets) always is.
      const line = lineCounter.linePos(error.pos[0]).line;
      problems.push({
        file,
        object: `document ${index + 1}`,
        line,
        path: [],
        message: `YAML: ${error.message.split('\n')[0]}`,
      });
    }
    let value: unknown;
    try {
      value = doc.toJS();
    } catch (error) {
      // toJS throws on an unresolved alias or an alias bomb: input errors too.
      problems.push({
        file,
        object: `document ${index + 1}`,
        path: [],
        message: `YAML: ${(error as Error).message}`,
      });
      return;
    }
    if (value === null || value === undefined) return; // empty document between `---`
    out.push({
      file,
      index,
      value,
      lineOf(path) {
        let node: unknown = doc.contents;
        // The line of a map entry is its key's: a block value starts on a later line.
        let at: unknown = node;
        for (const segment of path) {
          if (isMap(node)) {
            const pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === segment);
            node = pair?.value;
            at = pair?.key;
          } else if (isSeq(node) && typeof segment === 'number') {
            node = node.get(segment, true);
            at = node;
          } else break;
        }
        const range = (at as Node | undefined)?.range;
        return range ? lineCounter.linePos(range[0]).line : undefined;
      },
    });
  });
  if (problems.length > 0) throw new InputError(problems);
  return out;
}

/** Validates one document; throws an InputError listing every problem. */
export function validate<S extends z.ZodType>(schema: S, doc: SourceDocument, object?: string): z.infer<S> {
  const result = schema.safeParse(doc.value);
  if (result.success) return result.data;
  throw new InputError(
    result.error.issues.map((issue) => {
      const path = issue.path.filter((s): s is string | number => typeof s !== 'symbol');
      // For unknown keys zod reports the parent; point at the key itself.
      const keys = issue.code === 'unrecognized_keys' ? issue.keys : [];
      const fullPath = keys.length === 1 ? [...path, keys[0]!] : path;
      const message =
        issue.code === 'unrecognized_keys'
          ? `unknown field${keys.length > 1 ? `s ${keys.join(', ')}` : ''}; nodewarden does not support it`
          : issue.message;
      return {
        file: doc.file,
        object,
        line: doc.lineOf(fullPath) ?? doc.lineOf(path),
        path: fullPath,
        message,
      };
    }),
  );
}
