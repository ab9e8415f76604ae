// One contract (lib/sandbox.ts, docs/architecture.md#adding-a-sandbox-provider) run against every sandbox backend: the real Docker
// provider against the local engine, and the real E2B provider (real e2b SDK) against the local fake E2B.
// A run must behave the same on both, so every case asserts the documented behaviour, not a provider's quirks.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createDockerProvider } from '../providers/docker/index.ts';
import { createE2bProvider } from '../providers/e2b/index.ts';
import { setLogSink } from '../lib/log.ts';
import { startFakeE2b, type FakeE2b } from './fixtures/fake-e2b.ts';
import { CONTRACT_BOUNDS, dockerSettings } from './helpers/docker-sandbox.ts';
import { providerContract } from './helpers/provider-contract.ts';

providerContract('docker', async () => ({ provider: createDockerProvider(dockerSettings(CONTRACT_BOUNDS)), teardown: async () => {} }));

let fake: FakeE2b | undefined;
providerContract('e2b', async () => {
  fake = await startFakeE2b();
  // The e2b SDK takes its endpoints from the environment.
  Object.assign(process.env, fake.env());
  return {
    provider: createE2bProvider({ apiKey: fake.apiKey, template: 'base', allowInternetAccess: false }),
    teardown: async () => {
      const unknown = fake!.requests.filter((r) => r.unknown).map((r) => `${r.method} ${r.path}`);
      await fake!.close();
      assert.deepEqual(unknown, [], 'the SDK made no call the fake could not answer');
    },
  };
});

// Provider debug lines would flood the test output.
before(() => setLogSink(() => {}));
after(() => setLogSink(null));
