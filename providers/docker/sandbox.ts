// One Docker sandbox: a running hardened container and its (anonymous) workspace volume. Commands and file operations
// run as the sandbox user through exec (exec.ts, files.ts); only the server's uploads use the archive API.
import type Docker from 'dockerode';
import { log } from '../../lib/log.ts';
import { WORKSPACE, type ExecOptions, type ExecResult, type FileEntry, type PlacedFile, type Sandbox } from '../../lib/sandbox.ts';
import type { ControlChannel } from './control.ts';
import type { Engine } from './engine.ts';
import { execCommand, type Target } from './exec.ts';
import * as files from './files.ts';
import { removeSandbox, REMOVE_TIMEOUT_MS } from './reap.ts';
import { parseUser } from './spec.ts';

export class DockerSandbox implements Sandbox {
  readonly provider = 'docker' as const;
  /** /workspace is a fresh tmpfs that copies nothing from the image (spec.ts), so it starts empty. */
  readonly startsEmpty = true;
  readonly id: string;
  private readonly target: Target;
  private readonly owner: { uid: number; gid: number };
  private destroying: Promise<void> | undefined;
  private destroyed = false;

  constructor(
    private readonly engine: Engine,
    container: Docker.Container,
    readonly name: string,
    user: string,
    private readonly removeMs = REMOVE_TIMEOUT_MS,
    /** Told once the container is gone (the warm pool stops keeping a taken sandbox's name). */
    private readonly onRemoved?: () => void,
    /** Answers the /workspace listing without an exec (control.ts); absent when the engine refused the attach. */
    private readonly control?: ControlChannel,
  ) {
    this.id = container.id;
    this.target = { engine, container, name, user };
    this.owner = parseUser(user);
  }

  exec(command: string, opts: ExecOptions): Promise<ExecResult> {
    return execCommand(this.target, command, opts);
  }

  writeFile(path: string, data: Uint8Array, opts?: { signal?: AbortSignal }): Promise<void> {
    return files.writeFile(this.target, path, data, opts?.signal);
  }

  readFile(path: string, opts?: { maxBytes?: number; signal?: AbortSignal }): Promise<Uint8Array> {
    return files.readFile(this.target, path, opts);
  }

  async list(path: string, opts?: { signal?: AbortSignal }): Promise<FileEntry[]> {
    if (this.control && files.absolute(path) === WORKSPACE) {
      const entries = await this.control.list(opts?.signal);
      if (entries) return entries;
    }
    return files.list(this.target, path, opts?.signal);
  }

  place(placed: PlacedFile[], opts?: { signal?: AbortSignal }): Promise<void> {
    return files.place(this.target, placed, this.owner, opts?.signal);
  }

  /** Idempotent and bounded in time; a failure leaves the labelled container to the reaper. */
  destroy(): Promise<void> {
    if (this.destroyed) return Promise.resolve();
    this.control?.close();
    this.destroying ??= removeSandbox(this.engine, this.name, this.removeMs).then(
      () => {
        this.destroyed = true;
        this.onRemoved?.();
        log.debug('docker sandbox destroyed', { container: this.name });
      },
      (err) => {
        this.destroying = undefined; // a later call (or the reaper) tries again
        throw err;
      },
    );
    return this.destroying;
  }
}
