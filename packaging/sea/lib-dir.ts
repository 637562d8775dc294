/** Where the single executable finds what cannot be embedded in it. */
import { dirname, join } from 'node:path';

/**
 * NODEWARDEN_LIB_DIR wins; otherwise ../lib/nodewarden from the executable, which is
 * /usr/lib/nodewarden for /usr/bin/nodewarden and also works for an unpacked tree.
 */
export function packageLibDir(): string {
  return process.env.NODEWARDEN_LIB_DIR ?? join(dirname(process.execPath), '..', 'lib', 'nodewarden');
}
