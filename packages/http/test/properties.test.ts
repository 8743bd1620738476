/**
 * Property tests over the real HTTP server: random ids, query strings and bodies never produce a
 * 5xx, and never change what is stored.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeServers, FACES, json, runScript, startServer, upload, type TestServer } from './helpers.js';

describe.each(FACES)('%s face', (face) => {
  let server: TestServer;
  let scriptId = '';
  let executionId = '';

  async function snapshot() {
    const { runner } = server;
    const scripts = await runner.listScripts({ status: 'all', limit: 1000 });
    const executions = await runner.listExecutions({ limit: 1000 });
    const logs = await runner.readLogs(executionId, { limit: 10_000 });
    return JSON.stringify({ scripts: scripts.items, executions: executions.items, logs });
  }

  beforeAll(async () => {
    server = await startServer(face);
    scriptId = (await upload(server.base, 'test_props.py', 'print("a")\nprint("b")\n')).body.script.id;
    executionId = (await runScript(server.base, scriptId)).body.execution.id;
    await server.runner.waitFor(executionId);
  });
  afterAll(closeServers);

  const segment = fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('..', '%00', '%2e%2e', 'ü', ' ', '\u0000', 'a'.repeat(300)));
  const value = fc.oneof(fc.string({ maxLength: 20 }), fc.integer().map(String), fc.constantFrom('-1', '1e9', 'NaN', '0', '10001', 'all', 'error,warn', ''));
  const params = fc.dictionary(fc.constantFrom('limit', 'after', 'level', 'stream', 'status', 'cursor', 'scriptId', 'x'), value, { maxKeys: 4 });

  function url(path: string, query: Record<string, string>): string {
    const search = new URLSearchParams(query).toString();
    return `${server.base}${path}${search ? `?${search}` : ''}`;
  }

  describe('HTTP input properties', () => {
    it('random ids and query strings on every GET route: never a 5xx, nothing changed', { timeout: 120_000 }, async () => {
      const before = await snapshot();
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('/scripts', '/scripts/:id', '/scripts/:id/content', '/executions', '/executions/:id', '/executions/:id/logs', '/executions/:id/logs.txt'),
          fc.oneof(segment, fc.constant('__known__')),
          params,
          async (route, id, query) => {
            const realId = id === '__known__' ? (route.startsWith('/scripts') ? scriptId : executionId) : encodeURIComponent(id);
            const res = await fetch(url(route.replace(':id', realId), query));
            await res.arrayBuffer();
            expect(res.status).toBeLessThan(500);
          },
        ),
        { numRuns: 300 },
      );
      expect(await snapshot()).toBe(before);
    });

    it('random bodies to run, cancel and archive unknown ids, and garbage uploads: never a 5xx', { timeout: 120_000 }, async () => {
      const before = await snapshot();
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(fc.json(), fc.string({ maxLength: 50 })),
          fc.constantFrom('application/json', 'text/plain', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded'),
          fc.constantFrom('POST /scripts/nope/executions', 'POST /executions/nope/cancel', 'DELETE /scripts/nope', 'POST /scripts', 'POST /scripts/:archived/executions'),
          async (body, type, target) => {
            const [method, path] = target.split(' ') as [string, string];
            const res = await json(`${server.base}${path.replace(':archived', 'missing')}`, { method, headers: { 'content-type': type }, body });
            expect(res.status).toBeLessThan(500);
            expect(res.status).toBeGreaterThanOrEqual(400);
            expect(typeof res.body?.error?.code).toBe('string');
          },
        ),
        { numRuns: 200 },
      );
      expect(await snapshot()).toBe(before);
    });
  });
});
