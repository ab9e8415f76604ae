// The interface every sandbox backend implements (providers/docker.ts, providers/e2b.ts).
// Only tool calls run in a sandbox; the agent loop and every secret stay in the server process.

export type SandboxProviderName = 'docker' | 'e2b';
export const SANDBOX_PROVIDERS: readonly SandboxProviderName[] = ['docker', 'e2b'];

/** Working directory of every command and the root that uploads and artifacts are relative to. */
export const WORKSPACE = '/workspace';

export interface ExecOptions {
  /** Hard limit for this command; on expiry its whole process group is killed inside the sandbox. */
  timeoutMs: number;
  /** Defaults to WORKSPACE. */
  cwd?: string;
  /** Aborting kills the command like a timeout (but `timedOut` stays false) and rejects with the signal's reason. */
  signal?: AbortSignal;
  onStdout?: (chunk: string) => void;
  onStderr?: (chunk: string) => void;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** null when the command was killed before it reported an exit code. */
  exitCode: number | null;
  timedOut: boolean;
}

export interface FileEntry {
  /** Path relative to the listed folder, '/'-separated, no leading './'. */
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  size: number;
  mtimeMs: number;
}

export interface Sandbox {
  /** Provider-level id (container id, E2B sandbox id). */
  readonly id: string;
  readonly provider: SandboxProviderName;
  exec(command: string, opts: ExecOptions): Promise<ExecResult>;
  /** Absolute path; parent folders are created; the file ends up owned by the sandbox user. */
  writeFile(path: string, data: Uint8Array): Promise<void>;
  /** Absolute path. Rejects with SandboxError code FILE_NOT_FOUND / IS_A_DIRECTORY when it cannot be read as a file, FILE_TOO_LARGE past maxBytes. */
  readFile(path: string, opts?: { maxBytes?: number; signal?: AbortSignal }): Promise<Uint8Array>;
  /** Everything under an absolute folder, recursively (entries inside it, not the folder itself). */
  list(path: string, opts?: { signal?: AbortSignal }): Promise<FileEntry[]>;
  /** Idempotent; never throws for a sandbox that is already gone. */
  destroy(): Promise<void>;
}

export interface CreateOptions {
  runId: string;
  instanceId: string;
  /** Image (docker) or template (e2b); the provider's configured default when absent. */
  image?: string;
  /** Whole-run seconds; E2B uses it (+60 s) as the sandbox's own lifetime so it dies even if we do. */
  timeoutSecs: number;
  signal?: AbortSignal;
}

export interface SandboxProvider {
  readonly name: SandboxProviderName;
  /** Default image/template name, as configured. */
  readonly defaultImage: string;
  /** True when this backend can be used right now (engine answers / key set). Never throws. */
  available(): Promise<boolean>;
  create(opts: CreateOptions): Promise<Sandbox>;
  /** Destroys sandboxes labelled with this instance whose run id is not in `keepRunIds`; returns how many. */
  reap(instanceId: string, keepRunIds: ReadonlySet<string>): Promise<number>;
}

export type SandboxErrorCode = 'SANDBOX_ERROR' | 'SANDBOX_LOST' | 'FILE_NOT_FOUND' | 'IS_A_DIRECTORY' | 'FILE_TOO_LARGE';

/** Every provider failure is one of these, so the run can map it to a terminal `error` event. */
export class SandboxError extends Error {
  constructor(
    readonly code: SandboxErrorCode,
    message: string,
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SandboxError';
  }
}

/** `docker` block of sandcaster.json, resolved with defaults (lib/config.ts). */
export interface DockerSettings {
  image: string;
  memoryMb: number;
  cpus: number;
  pidsLimit: number;
  network: 'none' | 'bridge';
  /** "uid:gid" the tools run as; owns /workspace. */
  user: string;
  readOnlyRootfs: boolean;
  /** Engine address from DOCKER_HOST (unix://, tcp://, http(s)://); undefined = the local socket. */
  host?: string;
}

/** `e2b` block of sandcaster.json plus env, resolved (lib/config.ts). The key never reaches a sandbox. */
export interface E2bSettings {
  apiKey?: string;
  template: string;
  allowInternetAccess: boolean;
}
