#!/usr/bin/env node
// `npx lab-agent`: the agent is TypeScript run through tsx, so the lab PC needs no build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
