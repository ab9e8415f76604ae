#!/usr/bin/env node
// `npm test`: prepares the Docker engine and the local sandbox image, then runs every tests/**/*.test.ts
// with node:test (TypeScript through tsx). Every assert.ok in the tests carries a message: without one, a
// failing assert makes Node re-read and re-parse the source to build a message, which takes minutes here.
// Extra arguments are passed on, e.g. `npm test -- tests/api.test.ts`.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const setup = spawnSync('bash', [join(root, 'tests/setup-docker.sh')], { stdio: 'inherit' });
if (setup.status !== 0) process.exit(setup.status ?? 1);

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'fixtures' || name === 'helpers' ? [] : find(p);
    return name.endsWith('.test.ts') ? [relative(root, p)] : [];
  });
}

const args = process.argv.slice(2);
const files = args.filter((a) => !a.startsWith('-'));
const flags = args.filter((a) => a.startsWith('-'));
const run = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', ...flags, ...(files.length ? files : find(join(root, 'tests')).sort())],
  { stdio: 'inherit', cwd: root, env: { ...process.env, SANDCASTER_TEST_IMAGE: process.env.SANDCASTER_TEST_IMAGE ?? 'sandcaster-test:busybox' } },
);
process.exit(run.status ?? 1);
