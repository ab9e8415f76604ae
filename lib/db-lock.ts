// One process per database file (docs/operations.md): a second server on the same SANDCASTER_DB would
// take the first one's instance id, mark its live runs INTERRUPTED and reap their sandboxes.
//
// The lock is an exclusive SQLite lock on a sidecar file `<db>.lock`, held for the life of the process.
// SQLite takes it with fcntl(2) locks, which the kernel drops when the holder dies however it dies
// (SIGKILL included), so a dead holder never blocks the next start and no stale pid file needs judging.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

export interface DatabaseLock {
  release(): void;
}

/** Thrown when another live process holds the lock. `pid` is the holder's, when it wrote one. */
export class DatabaseLockedError extends Error {
  constructor(
    readonly path: string,
    readonly pid: number | undefined,
  ) {
    super(`${path} is in use by another Sandcaster process${pid ? ` (pid ${pid})` : ''}; stop it first or set SANDCASTER_DB to another file`);
    this.name = 'DatabaseLockedError';
  }
}

/**
 * Takes the lock for `dbPath`, or throws DatabaseLockedError. `:memory:` databases need none.
 *
 * @example
 * const lock = lockDatabase('./data/sandcaster.db'); // throws while another server holds it
 * // ... serve ...
 * lock.release();
 */
export function lockDatabase(dbPath: string): DatabaseLock {
  if (dbPath === ':memory:') return { release() {} };
  mkdirSync(dirname(dbPath), { recursive: true });
  const path = `${dbPath}.lock`;
  const db = new Database(path, { timeout: 0 });
  try {
    // Exclusive locking mode keeps the write lock after the first write's commit, until the connection closes.
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL, started_at TEXT NOT NULL)');
    db.transaction(() => {
      db.exec('DELETE FROM holder');
      db.prepare('INSERT INTO holder (pid, started_at) VALUES (?, ?)').run(process.pid, new Date().toISOString());
    })();
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY') throw new DatabaseLockedError(dbPath, holderPid(dbPath));
    throw err;
  }
  // The lock file is unreadable while held, so the pid a refused start names sits beside it.
  const pidFile = `${dbPath}.pid`;
  writeFileSync(pidFile, `${process.pid}\n`);
  return {
    release() {
      rmSync(pidFile, { force: true });
      db.close();
    },
  };
}

/** The holder's pid from `<db>.pid`, if it is there and sane. */
function holderPid(dbPath: string): number | undefined {
  try {
    const pid = Number(readFileSync(`${dbPath}.pid`, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
