#!/usr/bin/env node
// `npx sandcaster ...`: runs server.ts through tsx (no build step).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../server.ts');
await main(process.argv.slice(2));
