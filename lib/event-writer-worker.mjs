// Entry of the event writer's thread. A worker does not inherit a loader registered through the tsx API (as
// bin/sandcaster.js does), so it registers tsx itself, then runs the TypeScript.
import { register } from 'tsx/esm/api';

register();
await import('./event-writer-worker.ts');
