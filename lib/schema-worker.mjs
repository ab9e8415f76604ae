// Entry of the schema thread (lib/schema-thread.ts). A worker thread does not inherit the TypeScript loader
// that `node --import tsx` set up for the main thread, so it registers tsx itself, as bin/sandcaster.js does.
import { register } from 'tsx/esm/api';

register();
await import('./schema-worker.ts');
