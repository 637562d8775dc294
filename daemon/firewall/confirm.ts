/**
 * Commit-confirmed policy changes. `policy apply` installs new policy files
 * and records, next to them, what the directory held before and a deadline.
 * Unless `policy confirm` comes first, the daemon puts the old files back at
 * the deadline. The record lives in the policy directory itself (a dot file
 * and a dot directory, which the policy loader skips), so it survives a
 * daemon restart and a reboot: a daemon that starts after the deadline rolls
 * back at once.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

const PENDING_FILE = '.nodewarden-pending-apply.json';
const BACKUP_DIR = '.nodewarden-rollback';

export interface PolicyFile {
  name: string;
  content: string;
}

export interface PendingApply {
  /** Wall-clock ms: a restarted daemon has no other clock in common with its predecessor. */
  deadline: number;
  appliedAt: number;
  files: string[];
}

function isPolicyFile(name: string): boolean {
  return !name.startsWith('.') && /\.ya?ml$/.test(name);
}

/** The policy files of a directory, by name. */
export function readPolicyDir(dir: string): PolicyFile[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter(isPolicyFile)
    .sort()
    .map((name) => ({ name, content: readFileSync(join(dir, name), 'utf8') }));
}

/** Writes a file so that readers see the old or the new content, never a half. */
function writeAtomic(path: string, content: string): void {
  const tmp = `${path}.nodewarden-tmp`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}

export function validFileName(name: string): boolean {
  return name === basename(name) && isPolicyFile(name);
}

export class PendingApplyStore {
  constructor(private readonly dir: string) {}

  private get pendingPath(): string {
    return join(this.dir, PENDING_FILE);
  }

  private get backupDir(): string {
    return join(this.dir, BACKUP_DIR);
  }

  pending(): PendingApply | undefined {
    if (!existsSync(this.pendingPath)) return undefined;
    return JSON.parse(readFileSync(this.pendingPath, 'utf8')) as PendingApply;
  }

  /**
   * Backs up the current files (unless a pending apply already holds the
   * backup: the rollback target stays the last confirmed state), writes the
   * new ones and records the deadline.
   */
  install(files: readonly PolicyFile[], deadline: number | undefined): void {
    mkdirSync(this.dir, { recursive: true });
    if (deadline !== undefined && !this.pending()) {
      rmSync(this.backupDir, { recursive: true, force: true });
      mkdirSync(this.backupDir);
      for (const file of readPolicyDir(this.dir))
        writeFileSync(join(this.backupDir, file.name), file.content);
    }
    for (const file of files) writeAtomic(join(this.dir, file.name), file.content);
    if (deadline === undefined) {
      this.clear();
      return;
    }
    const previous = this.pending();
    writeAtomic(
      this.pendingPath,
      JSON.stringify({
        deadline,
        appliedAt: Date.now(),
        files: [...new Set([...(previous?.files ?? []), ...files.map((f) => f.name)])],
      }),
    );
  }

  /** Keeps what is installed. */
  confirm(): boolean {
    if (!this.pending()) return false;
    this.clear();
    return true;
  }

  /** Puts the directory back to the backup: files added since are removed, changed ones restored. */
  rollback(): boolean {
    if (!this.pending()) return false;
    const backup = readPolicyDir(this.backupDir);
    const keep = new Set(backup.map((f) => f.name));
    for (const file of readPolicyDir(this.dir)) if (!keep.has(file.name)) rmSync(join(this.dir, file.name));
    for (const file of backup) writeAtomic(join(this.dir, file.name), file.content);
    this.clear();
    return true;
  }

  private clear(): void {
    rmSync(this.pendingPath, { force: true });
    rmSync(this.backupDir, { recursive: true, force: true });
  }
}
