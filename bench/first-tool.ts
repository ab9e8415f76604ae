// Benchmark 9 — provisioning hidden behind the model. A real server process with the real Docker provider, and
// a fake Anthropic API that waits 1 s before each answer (first a `bash true` call, then a final answer). The
// sandbox is made while the first model call is out, so the first `tool_result` should arrive 1 s + the exec
// after the request, not 1 s + provisioning + the exec. The exec is the server's own measure of the tool call
// (its `tool call` log line); provisioning is its `sandbox created` log line.
// Run: npx tsx bench/first-tool.ts [--rounds 10] [--delay-ms 1000]
import { parseArgs } from 'node:util';
import { startFakeAnthropic } from '../tests/fixtures/fake-models.ts';
import { oneToolCallScript } from './floor.ts';
import { fmt, loadLine, loadMeter, machineLine, managedContainers, median, quantile, startServerChild, streamRun, table, verdict } from './lib.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '10' }, 'delay-ms': { type: 'string', default: '1000' } } });
const ROUNDS = Number(values.rounds);
const DELAY = Number(values['delay-ms']);

/** When each model request reached the fake (this process's clock), for attribution. */
let arrivals: number[] = [];
const fake = await startFakeAnthropic((body) => {
  arrivals.push(performance.now());
  return { ...oneToolCallScript(body), delayMs: DELAY };
});
const server = await startServerChild({ env: { ANTHROPIC_API_KEY: 'sk-bench-not-a-key', ANTHROPIC_BASE_URL: fake.url }, keepLogs: true });

const firstToolMs: number[] = [];
const execMs: number[] = [];
const provisionMs: number[] = [];
const slack: number[] = [];
const beforeModel: number[] = [];
/** One HTTP round trip to the same server while it idles between runs: what one hop between processes costs here. */
const hopMs: number[] = [];
const afterModel: number[] = [];
let load;
let left = -1;
try {
  await streamRun(server.url, { prompt: 'warm up', model: 'sonnet' }); // loads the SDK and the provider
  const meter = loadMeter(() => [server.pid]);
  for (let i = 0; i < ROUNDS; i++) {
    let at = NaN;
    arrivals = [];
    const t0 = performance.now();
    const out = await streamRun(server.url, { prompt: 'run true', model: 'sonnet' }, {
      onEvent: (type) => {
        if (type === 'tool_result' && Number.isNaN(at)) at = performance.now() - t0;
      },
    });
    if (out.terminal !== 'result') throw new Error(`run failed: ${JSON.stringify(out.terminalData)}`);
    const logs = server.logs.filter((l) => l.runId === out.runId);
    const exec = logs.find((l) => l.msg === 'tool call')?.durationMs;
    const made = logs.find((l) => l.msg === 'sandbox created')?.durationMs;
    firstToolMs.push(at);
    execMs.push(exec);
    provisionMs.push(made);
    slack.push(at - DELAY - exec);
    await new Promise((r) => setTimeout(r, 300)); // idle, as between the hops of a run waiting on its model
    const h0 = performance.now();
    await (await fetch(`${server.url}/health`)).arrayBuffer();
    hopMs.push(performance.now() - h0);
    // Request to the model request reaching the fake; and from the model's answer (sent DELAY later) to the
    // tool_result read here, less the exec: the server's own latency on either side of the model.
    beforeModel.push(arrivals[0]! - t0);
    afterModel.push(t0 + at - (arrivals[0]! + DELAY) - exec);
  }
  load = meter();
  left = (await managedContainers(server.instanceId)).length;
} finally {
  await server.stop();
  await fake.close();
}

const m = median(slack);
console.log(`\n## 9. First tool_result with a model that answers after ${DELAY} ms (${ROUNDS} runs, one at a time)\n`);
console.log(
  table(
    ['measure', 'median ms', 'p90 ms', 'max ms'],
    [
      ['request to first tool_result', fmt(median(firstToolMs)), fmt(quantile(firstToolMs, 0.9)), fmt(Math.max(...firstToolMs))],
      ['  the exec (server log: tool call)', fmt(median(execMs)), fmt(quantile(execMs, 0.9)), fmt(Math.max(...execMs))],
      ['  provisioning, hidden behind the model (server log: sandbox created)', fmt(median(provisionMs)), fmt(quantile(provisionMs, 0.9)), fmt(Math.max(...provisionMs))],
      [`  left over: first tool_result - ${DELAY} - exec`, fmt(m), fmt(quantile(slack, 0.9)), fmt(Math.max(...slack))],
      ['    of which: request to the model request at the fake', fmt(median(beforeModel)), fmt(quantile(beforeModel, 0.9)), fmt(Math.max(...beforeModel))],
      ['    of which: model answer sent to tool_result read, less the exec', fmt(median(afterModel)), fmt(quantile(afterModel, 0.9)), fmt(Math.max(...afterModel))],
      ['reference: GET /health on the idle server (one round trip between processes)', fmt(median(hopMs)), fmt(quantile(hopMs, 0.9)), fmt(Math.max(...hopMs))],
    ],
  ),
);
console.log(`\ntarget: first tool_result <= ${DELAY} ms + exec + 10 ms: ${verdict(m <= 10)} (median left over ${fmt(m)} ms; without the overlap it would hold the provisioning, ${fmt(median(provisionMs))} ms); containers left: ${left}`);
console.log(loadLine(load!) + ' (everything else includes the Docker engine)');
console.log(await machineLine());
