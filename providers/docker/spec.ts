// The hardened container of one sandbox: limits, dropped privileges, labels, and bounded storage.
// Exported for the benchmark floor, which must create exactly the container the provider creates.
import type Docker from 'dockerode';
import { WORKSPACE, type DockerSettings } from '../../lib/sandbox.ts';
import { KEEPALIVE } from './control.ts';


/** Parses "uid" or "uid:gid" (lib/config.ts only lets numeric values through); tar headers and mounts need numbers. */
export function parseUser(user: string): { uid: number; gid: number } {
  const m = /^(\d+)(?::(\d+))?$/.exec(user);
  if (!m) throw new Error(`docker.user must be "uid" or "uid:gid" (numeric), got ${JSON.stringify(user)}`);
  return { uid: Number(m[1]), gid: Number(m[2] ?? m[1]) };
}

export interface StorageSplit {
  /** The /workspace tmpfs volume. */
  workspaceMb: number;
  /** The /tmp tmpfs on a read-only root; on a writable root, the root layer's quota (which then holds /tmp). */
  tmpMb: number;
  /** /dev/shm. */
  shmMb: number;
}

/**
 * How `diskMb` is shared out so that ALL writable storage of a sandbox together stays within it: each place
 * is a filesystem with its own hard size, and the sizes add up to diskMb. /tmp gets a quarter (compilers and
 * package builds use it), /dev/shm a sixteenth up to 64 MiB (semaphores, small shared buffers), /workspace the
 * rest (1 GiB: 704 MiB workspace, 256 MiB /tmp, 64 MiB /dev/shm). Writing past a share fails with ENOSPC.
 */
export function storageSplit(diskMb: number): StorageSplit {
  const tmpMb = Math.max(1, Math.floor(diskMb / 4));
  const shmMb = Math.max(1, Math.min(64, Math.floor(diskMb / 16)));
  return { workspaceMb: diskMb - tmpMb - shmMb, tmpMb, shmMb };
}

/**
 * Host memory one sandbox may hold at most (MiB): its processes' memoryMb plus the storage kept in memory.
 * tmpfs pages are charged to the container's memory cgroup, so the limit is raised by exactly that much:
 * with a full disk the processes still get memoryMb, and storage can never push them into the OOM killer
 * because every tmpfs is full (ENOSPC) before the cgroup is. On a writable root the root layer is on disk,
 * not in memory.
 */
export function reservedMemoryMb(settings: DockerSettings): number {
  const split = storageSplit(settings.diskMb);
  return settings.memoryMb + split.workspaceMb + split.shmMb + (settings.readOnlyRootfs ? split.tmpMb : 0);
}

/**
 * Open files per process. Given explicitly because rootful Podman otherwise asks for 1048576, above the hard
 * limit of engines without CAP_SYS_RESOURCE, and the container then fails to start.
 */
const NOFILE = 4096;
/**
 * RLIMIT_NPROC under runc (and crun): the kernel counts every process of the sandbox uid on the whole host, so
 * it cannot bound one sandbox (the pids cgroup does); it is set, high, for the same Podman reason as NOFILE.
 */
const NPROC_SHARED = 16384;
/**
 * gVisor with the ptrace platform: each sandbox task costs about 8 host pids (measured: 55 for init and the
 * keep-alive, then 7.6 to 9.3 per process), and reaching the host pids cgroup's limit kills the whole sandbox.
 * So under gVisor the per-sandbox bound is RLIMIT_NPROC, which gVisor's own kernel counts per sandbox and
 * enforces cleanly (fork fails with EAGAIN), and the pids cgroup is only a backstop well above it.
 */
const GVISOR_HOST_PIDS_PER_TASK = 12;
const GVISOR_HOST_PIDS_BASE = 128;

/** gVisor, by the runtime's name or the binary the engine registered it with. */
export function isGvisor(runtime: string | undefined, path?: string): boolean {
  return runtime !== undefined && /runsc|gvisor/i.test(`${runtime} ${path ?? ''}`);
}

/** Host pids limit and RLIMIT_NPROC of one sandbox (see the constants above). */
export function processLimits(settings: DockerSettings, gvisor: boolean): { pidsLimit: number; nproc: number } {
  if (!gvisor) return { pidsLimit: settings.pidsLimit, nproc: NPROC_SHARED };
  return { pidsLimit: settings.pidsLimit * GVISOR_HOST_PIDS_PER_TASK + GVISOR_HOST_PIDS_BASE, nproc: settings.pidsLimit };
}

/**
 * The hardened container of one sandbox.
 *
 * Storage, bounded by `diskMb` in total (see storageSplit): /workspace is a labelled `local` volume of type
 * tmpfs, sized, and owned by the sandbox user from the start (with CapDrop ALL nothing inside could chown it);
 * the archive API reads and writes it like any volume. It is anonymous (no `volume` name), so removing the
 * container with `v` removes it in the same engine call; a name is only for callers that remove it themselves. /tmp and /dev/shm are tmpfs. The root filesystem is
 * read-only by default; a writable root would be an unbounded layer on the host disk with overlay2 on ext4,
 * so it gets a quota (StorageOpt size) and the create fails when the engine cannot enforce one. Container
 * output goes to no log file (LogConfig none): the sandbox user could otherwise write without bound into the
 * host's json log through /proc/1/fd/1.
 */
export function containerSpec(
  settings: DockerSettings,
  c: { name: string; image: string; labels: Record<string, string>; volume?: string; gvisor?: boolean; podman?: boolean },
): Docker.ContainerCreateOptions {
  const procs = processLimits(settings, c.gvisor ?? isGvisor(settings.runtime));
  const mib = 1024 * 1024;
  const bytes = reservedMemoryMb(settings) * mib;
  const split = storageSplit(settings.diskMb);
  const { uid, gid } = parseUser(settings.user);
  const workspace = { type: 'tmpfs', device: 'tmpfs', o: `size=${split.workspaceMb}m,uid=${uid},gid=${gid},mode=0755` };
  const tmpfs: Record<string, string> = {};
  if (settings.readOnlyRootfs) tmpfs['/tmp'] = `rw,nosuid,nodev,exec,size=${split.tmpMb}m,mode=1777`;
  let mounts: Docker.MountSettings[] = [
    {
      Type: 'volume',
      Source: c.volume ?? '', // empty: an anonymous volume
      Target: WORKSPACE,
      // NoCopy: the image's own /workspace is not copied in (it would land on the host disk, under the tmpfs).
      VolumeOptions: { NoCopy: true, Labels: c.labels, DriverConfig: { Name: 'local', Options: workspace } },
    },
  ];
  if (c.podman) {
    // Podman ignores a mount's DriverConfig (the volume would be a plain root-owned folder on the host disk) and
    // before 4.8 refuses a sized tmpfs volume, so /workspace is a plain tmpfs there: `U` hands it to the
    // sandbox user; Podman's archive API sees into it (Docker's does not, hence the volume). On a read-only
    // root Podman also mounts unsized, world-writable /run and /var/tmp: /var/tmp gets 1 MiB of the
    // workspace's share, /run is made the root-owned folder it is under Docker (1 MiB, closed to the user).
    mounts = [];
    const varTmpMb = settings.readOnlyRootfs ? 1 : 0;
    tmpfs[WORKSPACE] = `rw,nosuid,nodev,exec,size=${split.workspaceMb - varTmpMb}m,mode=0755,U`;
    if (varTmpMb) {
      tmpfs['/var/tmp'] = `rw,nosuid,nodev,size=${varTmpMb}m,mode=1777`;
      tmpfs['/run'] = 'rw,nosuid,nodev,noexec,size=1m,mode=0755';
    }
  }
  return {
    name: c.name,
    Image: c.image,
    // The keep-alive (control.ts) waits on stdin, a pipe the engine holds open because of OpenStdin; Init puts
    // docker-init in front as PID 1 to reap zombies.
    Cmd: KEEPALIVE,
    OpenStdin: true,
    User: settings.user,
    WorkingDir: WORKSPACE,
    Env: [], // nothing of ours: the image's own PATH etc. only, never a key
    Labels: c.labels,
    NetworkDisabled: settings.network === 'none',
    HostConfig: {
      Memory: bytes,
      MemorySwap: bytes, // same as Memory: no swap, so a runaway allocation is OOM-killed
      NanoCpus: Math.round(settings.cpus * 1e9),
      PidsLimit: procs.pidsLimit,
      Ulimits: [
        { Name: 'nofile', Soft: NOFILE, Hard: NOFILE },
        { Name: 'nproc', Soft: procs.nproc, Hard: procs.nproc },
      ],
      ...(settings.runtime ? { Runtime: settings.runtime } : {}),
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      Init: true,
      NetworkMode: settings.network,
      ReadonlyRootfs: settings.readOnlyRootfs,
      Tmpfs: Object.keys(tmpfs).length ? tmpfs : undefined,
      StorageOpt: settings.readOnlyRootfs ? undefined : { size: `${split.tmpMb}M` },
      ShmSize: split.shmMb * mib,
      LogConfig: { Type: 'none', Config: {} },
      Mounts: mounts,
    },
  };
}

/** Limits of `spec` the engine did not keep, as inspect shows them: rootless Podman on cgroup v1 drops them all, silently. */
export function droppedLimits(spec: Docker.ContainerCreateOptions, inspected: Docker.ContainerInspectInfo): string[] {
  const want = spec.HostConfig ?? {};
  const got = inspected.HostConfig ?? {};
  const dropped: string[] = [];
  if ((got.Memory ?? 0) !== want.Memory) dropped.push(`memory (asked ${want.Memory}, got ${got.Memory ?? 0})`);
  const nano = got.NanoCpus || (got.CpuQuota && got.CpuPeriod ? Math.round((got.CpuQuota / got.CpuPeriod) * 1e9) : 0);
  if (nano !== want.NanoCpus) dropped.push(`CPU (asked ${want.NanoCpus} nanocpus, got ${nano})`);
  if ((got.PidsLimit ?? 0) !== want.PidsLimit) dropped.push(`pids (asked ${want.PidsLimit}, got ${got.PidsLimit ?? 0})`);
  return dropped;
}
