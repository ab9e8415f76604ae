#!/usr/bin/env node
// `npm test`: prepares the Docker engine and the local sandbox image (and, for tests/engines.test.ts, the
// gVisor and Podman engines), then runs every tests/**/*.test.ts with node:test (TypeScript through tsx).
// Every assert.ok in the tests carries a message: without one, a failing assert makes Node re-read and
// re-parse the source to build a message, which takes minutes here. The rules the tests follow, and the
// coverage of the unit suites (`npm run coverage`): docs/testing.md.
// Extra arguments are passed on, e.g. `npm test -- tests/api.test.ts`.
// `npm run test:unit` (`--unit`) runs only the suites that need no Docker engine, in seconds: UNIT below.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Suites that need no engine: pure modules, config, the model clients against fake model servers, docs. */
const UNIT = ['abort', 'config', 'docs', 'glob', 'model-accumulators', 'model-providers', 'models', 'openapi', 'pure', 'sandbox-table', 'store-layout'].map((n) => `tests/${n}.test.ts`);
const unit = process.argv.includes('--unit');
if (!unit) {
  const setup = spawnSync('bash', [join(root, 'tests/setup-docker.sh')], { stdio: 'inherit' });
  if (setup.status !== 0) process.exit(setup.status ?? 1);
}

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'fixtures' || name === 'helpers' ? [] : find(p);
    return name.endsWith('.test.ts') ? [relative(root, p)] : [];
  });
}

const args = process.argv.slice(2).filter((a) => a !== '--unit');
const files = unit ? UNIT : args.filter((a) => !a.startsWith('-'));
const flags = args.filter((a) => a.startsWith('-'));
const env = { ...process.env, SANDCASTER_TEST_IMAGE: process.env.SANDCASTER_TEST_IMAGE ?? 'sandcaster-test:busybox' };

// The gVisor and Podman engines (tests/setup-engines.sh), only when their tests run. Exit 3 means they cannot
// be had on this machine (said loudly); the tests then skip with that reason, except where
// SANDCASTER_REQUIRE_ENGINES=1 (CI), where it is a failure.
if (files.length === 0 || files.some((f) => f.includes('engines.test'))) {
  const engines = spawnSync('bash', [join(root, 'tests/setup-engines.sh')], { stdio: 'inherit', env });
  if (engines.status === 3 && process.env.SANDCASTER_REQUIRE_ENGINES !== '1') env.SANDCASTER_TEST_ENGINES_SKIP = 'runsc/podman cannot be installed or started here (see the message above)';
  else if (engines.status !== 0) process.exit(engines.status ?? 1);
}

const run = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', ...flags, ...(files.length ? files : find(join(root, 'tests')).sort())],
  { stdio: 'inherit', cwd: root, env },
);
process.exit(run.status ?? 1);
