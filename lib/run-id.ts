// Run ids name the instance that holds the run: `run_<16 hex digits of the instance id>_<24 hex random>`.
// A load balancer can route `/runs/<id>/…` to the right instance with one regex, e.g.
// `^/runs/run_([0-9a-f]{16})_` (the instance whose X-Sandcaster-Instance is `inst_<those digits>`).
import { randomBytes } from 'node:crypto';

const INSTANCE = /^inst_([0-9a-f]{16})$/;
const RUN = /^run_([0-9a-f]{16})_[0-9a-f]{24}$/;

/** A new unguessable run id (96 random bits) for a run held by `instanceId`. */
export function newRunId(instanceId: string): string {
  const m = INSTANCE.exec(instanceId);
  if (!m) throw new Error(`instance id ${JSON.stringify(instanceId)} is not inst_<16 hex digits>`);
  return `run_${m[1]}_${randomBytes(12).toString('hex')}`;
}

/** The instance id embedded in a run id, or undefined for anything else (older ids, garbage). */
export function instanceOfRunId(runId: string): string | undefined {
  const m = RUN.exec(runId);
  return m ? `inst_${m[1]}` : undefined;
}
