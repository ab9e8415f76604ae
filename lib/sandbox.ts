// The interface every sandbox backend implements (providers/docker/, providers/e2b/).
// Only tool calls run in a sandbox; the agent loop and every secret stay in the server process.

/** A row name of the sandbox-provider table in use (lib/sandbox-providers.ts; callers may add rows). */
export type SandboxProviderName = string;

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

/** A file the server places before the agent starts (uploads): a path under WORKSPACE it has checked. */
export interface PlacedFile {
  path: string;
  data: Uint8Array;
}

/**
 * File operations act with the sandbox user's rights, exactly as a command would: what that user cannot
 * write or read is a PERMISSION_DENIED rejection, never a write made with more rights. Every failure caused
 * inside a live sandbox (a path, rights, a full disk, a missing utility) is one of the path codes below,
 * which the agent sees as a tool error; only SANDBOX_LOST / SANDBOX_ERROR mean the sandbox or engine failed.
 */
export interface Sandbox {
  /** Provider-level id (container id, E2B sandbox id). */
  readonly id: string;
  readonly provider: SandboxProviderName;
  /** True when WORKSPACE is known to hold nothing before the server's uploads (no listing is needed to tell what the run made). */
  readonly startsEmpty?: boolean;
  exec(command: string, opts: ExecOptions): Promise<ExecResult>;
  /** Absolute path; parent folders are created; the file ends up owned by the sandbox user. Aborting the signal stops it and rejects with the signal's reason. */
  writeFile(path: string, data: Uint8Array, opts?: { signal?: AbortSignal }): Promise<void>;
  /**
   * Absolute path. Rejects with SandboxError code FILE_NOT_FOUND / IS_A_DIRECTORY / PERMISSION_DENIED when it
   * cannot be read as a file, FILE_TOO_LARGE past maxBytes. Aborting the signal stops it and rejects with the signal's reason.
   */
  readFile(path: string, opts?: { maxBytes?: number; signal?: AbortSignal }): Promise<Uint8Array>;
  /**
   * Everything under an absolute folder, recursively (entries inside it, not the folder itself). Costs time per
   * entry, never per byte of file content. Aborting the signal stops it and rejects with the signal's reason.
   */
  list(path: string, opts?: { signal?: AbortSignal }): Promise<FileEntry[]>;
  /**
   * Optional fast path for files the server places before the agent starts (one transfer for all of them).
   * Without it, the server calls writeFile for each.
   */
  place?(files: PlacedFile[], opts?: { signal?: AbortSignal }): Promise<void>;
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
  /**
   * Told when the create has to wait for an image pull: `start` once (also when joining a pull another create
   * began), `progress` at most once a second, `end` once. The pull has its own time bound, apart from the run's.
   */
  onImagePull?(event: ImagePullEvent): void;
}

/** One step of an image pull a create waits for. */
export type ImagePullEvent =
  | { stage: 'start'; image: string }
  | {
      stage: 'progress';
      image: string;
      /** Bytes downloaded so far, and in all, over the layers whose size the engine has reported. */
      downloadedBytes: number;
      totalBytes: number;
      /** Layers fully downloaded (or already present), of the layers seen so far. */
      layersDone: number;
      layers: number;
    }
  | { stage: 'end'; image: string; ok: boolean; durationMs: number; error?: string };

/** An image the operator listed to pull in the background at start. */
export type PrepullState = 'pending' | 'done' | 'failed';

/** The configured OCI runtime as the engine knows it (for `doctor`). */
export interface RuntimeStatus {
  name: string;
  registered: boolean;
  /** What to do when it is not registered. */
  hint?: string;
}

export interface SandboxProvider {
  readonly name: SandboxProviderName;
  /** Default image/template name, as configured. */
  readonly defaultImage: string;
  /** True when this backend can be used right now (engine answers / key set). Never throws. */
  available(): Promise<boolean>;
  create(opts: CreateOptions): Promise<Sandbox>;
  /**
   * Destroys sandboxes labelled with this instance whose run id is not in `keepRunIds`; returns how many. One
   * sandbox that cannot be removed does not stop the others (it is logged and tried again next round).
   */
  reap(instanceId: string, keepRunIds: ReadonlySet<string>): Promise<number>;
  /** Host memory (MiB) one sandbox of this image may hold at most, storage kept in memory included; for admission by memory. */
  reservedMemoryMb?(image?: string): number;
  /** Memory (MiB) of the host that runs the sandboxes, as the backend reports it; undefined when unknown. */
  hostMemoryMb?(): Promise<number | undefined>;
  /** The images listed to pull at start and where each stands; empty when none are listed. Cheap, for /health. */
  prepullState?(): Readonly<Record<string, PrepullState>>;
  /** For `doctor`: the engine's name and version ("Docker 20.10.24", "Podman 4.3.1"); undefined when it does not answer. Never throws. */
  engineVersion?(): Promise<string | undefined>;
  /** For `doctor`: the configured runtime and whether the engine knows it; undefined when none is configured or the engine does not answer. Never throws. */
  runtimeStatus?(): Promise<RuntimeStatus | undefined>;
  /** For `doctor`: whether the image (default: the configured one) is on the engine host; undefined when the engine does not answer. Never throws. */
  imagePresent?(image?: string): Promise<boolean | undefined>;
  /** Sandboxes kept ready ahead of runs (docs/operations.md#warm-pool): how many are wanted and how many are ready now. Cheap, for /health. */
  warmPoolState?(): { size: number; ready: number };
  /** At shutdown, after the runs are drained: stops background work (warm-pool refills) and destroys idle sandboxes. Never rejects. */
  close?(): Promise<void>;
}

/**
 * SANDBOX_ERROR and SANDBOX_LOST end the run (engine or sandbox failed). Every other code is about one path or
 * operation inside a live sandbox and is a tool error the agent sees: PERMISSION_DENIED (rights, read-only
 * file system), NO_SPACE (the sandbox's storage is full), FILE_ERROR (anything else, e.g. a utility missing
 * from the image, said in the message).
 */
export type SandboxErrorCode =
  | 'SANDBOX_ERROR'
  | 'SANDBOX_LOST'
  | 'FILE_NOT_FOUND'
  | 'IS_A_DIRECTORY'
  | 'FILE_TOO_LARGE'
  | 'PERMISSION_DENIED'
  | 'NO_SPACE'
  | 'FILE_ERROR';

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

/** `docker` block of sandcaster.json, resolved with defaults (lib/sandbox-providers.ts). */
export interface DockerSettings {
  image: string;
  memoryMb: number;
  cpus: number;
  pidsLimit: number;
  network: 'none' | 'bridge';
  /** "uid:gid" the tools run as; owns /workspace. */
  user: string;
  /** Total writable storage of one sandbox in MiB (workspace, /tmp, /dev/shm, root layer). */
  diskMb: number;
  readOnlyRootfs: boolean;
  /** OCI runtime the engine runs sandboxes with (e.g. `runsc` for gVisor); undefined = the engine's default. */
  runtime?: string;
  /** Bound on pulling one missing image, apart from any run's timeout (default 600). */
  pullTimeoutSeconds?: number;
  /** Images pulled in the background when the provider starts, so no run waits for them. */
  prepull?: string[];
  /** Idle sandboxes of `image` kept ready for runs to take (docs/operations.md#warm-pool); 0 = none. */
  warmPool?: number;
  /** Engine address from DOCKER_HOST (unix://, tcp://, http(s)://); undefined = the local socket. */
  host?: string;
}

/** `e2b` block of sandcaster.json plus env, resolved (lib/sandbox-providers.ts). The key never reaches a sandbox. */
export interface E2bSettings {
  apiKey?: string;
  template: string;
  allowInternetAccess: boolean;
}
