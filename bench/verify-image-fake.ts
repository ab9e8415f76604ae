// Fake Anthropic API on 127.0.0.1 for bench/verify-image.sh (not a test file: `npm test` does not pick it up).
// Serves a four-turn script (turns are counted across requests): the first query's model asks for `bash` with
// `echo hello-from-sandbox`, then answers; the second query's (stopped with SIGTERM mid-run) asks for a command
// that takes a few seconds, then answers, so the run must finish while the server drains.
// Prints one JSON line {"url": ...} once listening; on SIGTERM/SIGINT prints {"requests": N} and exits 0.
import { startFakeAnthropic, type FakeTurn } from '../tests/fixtures/fake-models.ts';

const script: FakeTurn[] = [
  {
    text: 'Running a command in the sandbox.',
    toolCalls: [{ name: 'bash', input: { command: 'echo hello-from-sandbox' } }],
    usage: { input: 120, output: 30 },
  },
  { text: ['The sandbox said ', 'hello-from-sandbox.'], usage: { input: 180, output: 12 } },
  {
    toolCalls: [{ name: 'bash', input: { command: 'sleep 3; echo finished-while-draining' } }],
    usage: { input: 100, output: 20 },
  },
  { text: 'Done.', usage: { input: 150, output: 5 } },
];

const fake = await startFakeAnthropic(script);
process.stdout.write(JSON.stringify({ url: fake.url }) + '\n');

const stop = async () => {
  process.stdout.write(JSON.stringify({ requests: fake.requests.length, paths: fake.requests.map((r) => r.path) }) + '\n');
  await fake.close();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
