// One E2B sandbox as a `Sandbox`: commands (commands.ts) and files (files.ts) on it, and its destroy.
import type { Sandbox as E2bSandbox } from 'e2b';
import type { ExecOptions, ExecResult, FileEntry, Sandbox } from '../../lib/sandbox.ts';
import { exec } from './commands.ts';
import { list, readFile, writeFile } from './files.ts';
import { killQuietly, type BoxState } from './shared.ts';

export class E2bBox implements Sandbox, BoxState {
  readonly provider = 'e2b' as const;
  readonly id: string;
  destroying?: Promise<void>;

  constructor(
    readonly sbx: E2bSandbox,
    readonly runId: string,
  ) {
    this.id = sbx.sandboxId;
  }

  exec(command: string, opts: ExecOptions): Promise<ExecResult> {
    return exec(this, command, opts);
  }

  writeFile(path: string, data: Uint8Array, opts?: { signal?: AbortSignal }): Promise<void> {
    return writeFile(this, path, data, opts);
  }

  readFile(path: string, opts?: { maxBytes?: number; signal?: AbortSignal }): Promise<Uint8Array> {
    return readFile(this, path, opts);
  }

  list(path: string, opts?: { signal?: AbortSignal }): Promise<FileEntry[]> {
    return list(this, path, opts);
  }

  destroy(): Promise<void> {
    this.destroying ??= killQuietly(this.sbx, this.runId);
    return this.destroying;
  }
}
