// The app module the Next.js snippets import: one runner per process.
import { createScriptRunner, sharedScriptRunner } from '@scriptrunner/core';
export const runner = sharedScriptRunner('docs', () => createScriptRunner());
export const scriptRunner = () => runner;
