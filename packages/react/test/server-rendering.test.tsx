// @vitest-environment node
/**
 * The components as a Next.js App Router page uses them: rendered on the server (no DOM), from the
 * built package. Nothing may connect or fetch while rendering, and the bundle must say it is client
 * code ('use client'), or importing it from a Server Component breaks the build.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createScriptRunnerClient } from '@scriptrunner/client';
import { ExecutionLogView, ScriptList, ScriptRunnerProvider, ScriptUploadCard } from '@scriptrunner/react';
import { renderToString } from 'react-dom/server';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);

describe('@scriptrunner/react on the server', () => {
  it("marks both builds as client modules: 'use client' is their first statement", () => {
    const esm = require.resolve('@scriptrunner/react').replace(/index\.cjs$/, 'index.js');
    for (const file of [esm, esm.replace(/index\.js$/, 'index.cjs')]) {
      expect(readFileSync(file, 'utf8').trimStart().startsWith("'use client';"), file).toBe(true);
    }
  });

  it('renders the provider and every component without a socket, a request or an error', () => {
    let sockets = 0;
    let requests = 0;
    const client = createScriptRunnerClient({
      baseUrl: '/api/sandbox/test-scripts',
      socket: () => {
        sockets++;
        throw new Error('no socket may be created while rendering on the server');
      },
      fetch: () => {
        requests++;
        return Promise.reject(new Error('no request may be sent while rendering on the server'));
      },
    });
    const html = renderToString(
      <ScriptRunnerProvider client={client}>
        <ScriptUploadCard />
        <ScriptList />
        <ExecutionLogView executionId="e1" title="test_x.py" />
      </ScriptRunnerProvider>,
    );
    expect(html).toContain('sr-');
    expect(sockets).toBe(0);
    expect(requests).toBe(0);
  });

  it('creates the socket from the factory once, on the first follow', () => {
    const made: string[] = [];
    const fake = { connected: false, on() {}, off() {}, emit() {}, timeout() { return fake; } };
    const client = createScriptRunnerClient({
      baseUrl: 'http://127.0.0.1:9/api',
      socket: () => {
        made.push('socket');
        return fake as never;
      },
      fetch: () => Promise.reject(new Error('offline')),
    });
    expect(made).toEqual([]);
    const stopA = client.subscribeScripts({});
    const stopB = client.followExecution('e1', { onLines() {} });
    stopA();
    stopB();
    expect(made).toEqual(['socket']);
  });
});
