/**
 * The shared route suite: every route through both faces (the Express router and the fetch handler
 * on Hono), each over a real HTTP server on 127.0.0.1, with fetch as the client and real python3
 * runs behind it. Both faces must answer alike.
 */
import { memoryStore } from '@scriptrunner/core';
import { sampleExecution } from '@scriptrunner/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { STEADY } from '../../core/test/helpers.js';
import { closeServers, countingStore, FACES, fixture, json, linesOf, readSse, runScript, serverFor, upload } from './helpers.js';

afterEach(closeServers);


async function nothingStored(base: string) {
  const list = await json(`${base}/scripts?status=all`);
  expect(list.status).toBe(200);
  expect(list.body.items).toEqual([]);
}

describe.each(FACES)('%s face', (face) => {
  const startServer = serverFor(face);

  describe('scripts', () => {
    it('uploads a script (201) and lists it with its last execution', async () => {
      const { base } = await startServer();
      const up = await upload(base, 'test_sample.py', fixture('test_sample.py'), { description: 'sample', metadata: '{"team":"power"}' });
      expect(up.status).toBe(201);
      expect(up.body.script).toMatchObject({ filename: 'test_sample.py', description: 'sample', metadata: { team: 'power' }, status: 'active', lastExecution: null });
      const id = up.body.script.id as string;

      const run = await runScript(base, id, ['x']);
      expect(run.status).toBe(202);
      const list = await json(`${base}/scripts`);
      expect(list.body.items).toHaveLength(1);
      expect(list.body.items[0]).toMatchObject({ id, totalRuns: 1, lastExecution: { id: run.body.execution.id } });
      expect(list.body.nextCursor).toBeNull();

      const one = await json(`${base}/scripts/${id}`);
      expect(one.body.script).toMatchObject({ id, lastExecution: { id: run.body.execution.id } });
    });

    const invalid: Array<[string, string, Buffer | string, number, RegExp]> = [
      ['a wrong name', 'sample.py', 'print(1)', 422, /must match/],
      ['a traversal name', '../test_escape.py', 'print(1)', 422, /without "\/"/],
      ['an absolute path name', '/etc/test_x.py', 'print(1)', 422, /without "\/"/],
      ['a file over the size limit', 'test_big.py', Buffer.alloc(5 * 1024 * 1024 + 1, 0x61), 413, /larger than the upload limit/],
      ['an empty file', 'test_empty.py', Buffer.alloc(0), 422, /empty/],
      ['a binary file', 'test_bin.py', Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x00, 0x01]), 422, /NUL bytes/],
      ['a file that is not UTF-8', 'test_latin1.py', Buffer.from('print("caf\xe9")\n', 'latin1'), 422, /not valid UTF-8/],
    ];
    for (const [what, name, content, status, message] of invalid) {
      it(`rejects ${what} with ${status} and stores nothing`, async () => {
        const { base } = await startServer();
        const res = await upload(base, name, content);
        expect(res.status).toBe(status);
        expect(res.body.error.message).toMatch(message);
        expect(typeof res.body.error.code).toBe('string');
        await nothingStored(base);
      });
    }

    it('rejects malformed upload requests with 4xx', async () => {
      const { base } = await startServer();
      const noFile = new FormData();
      noFile.append('description', 'no file here');
      let res = await fetch(`${base}/scripts`, { method: 'POST', body: noFile });
      expect(res.status).toBe(400);
      expect(((await res.json()) as any).error.message).toMatch(/field "file"/);

      const otherField = new FormData();
      otherField.append('script', new Blob(['print(1)']), 'test_x.py');
      res = await fetch(`${base}/scripts`, { method: 'POST', body: otherField });
      expect(res.status).toBe(400);

      res = await fetch(`${base}/scripts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"file":"print(1)"}' });
      expect(res.status).toBe(415);

      const badMeta = await upload(base, 'test_x.py', 'print(1)', { metadata: '{not json' });
      expect(badMeta.status).toBe(400);
      const arrayMeta = await upload(base, 'test_x.py', 'print(1)', { metadata: '[1,2]' });
      expect(arrayMeta.status).toBe(422);

      res = await fetch(`${base}/scripts`, {
        method: 'POST',
        headers: { 'content-type': 'multipart/form-data; boundary=XYZ' },
        body: '--XYZ\r\nContent-Disposition: form-data; name="file"; filename="test_x.py"\r\n\r\nprint(1)',
      });
      expect(res.status).toBe(400);
      await nothingStored(base);
    });

    it('downloads the exact bytes, archives idempotently, and refuses to run an archived script', async () => {
      const { base } = await startServer();
      const content = Buffer.from('# é ✓\nprint("hi")\n', 'utf8');
      const id = (await upload(base, 'test_dl.py', content)).body.script.id as string;
      const dl = await fetch(`${base}/scripts/${id}/content`);
      expect(dl.status).toBe(200);
      expect(dl.headers.get('content-disposition')).toBe(`attachment; filename="test_dl.py"; filename*=UTF-8''test_dl.py`);
      expect(dl.headers.get('x-content-type-options')).toBe('nosniff');
      expect(Buffer.from(await dl.arrayBuffer()).equals(content)).toBe(true);

      const first = await json(`${base}/scripts/${id}`, { method: 'DELETE' });
      const second = await json(`${base}/scripts/${id}`, { method: 'DELETE' });
      expect([first.status, second.status]).toEqual([200, 200]);
      expect(second.body.script.status).toBe('archived');
      const run = await runScript(base, id);
      expect(run.status).toBe(409);
      expect(run.body.error.code).toBe('conflict');
      expect((await json(`${base}/scripts?status=archived`)).body.items).toHaveLength(1);
      expect((await json(`${base}/scripts`)).body.items).toHaveLength(0);
    });

    it('lists a page of 50 scripts with their last executions in one store call', async () => {
      const inner = memoryStore();
      const { store, calls } = countingStore(inner);
      const { base, runner } = await startServer({ store });
      const lastRun = new Map<string, string>();
      for (let i = 0; i < 51; i++) {
        const script = await runner.uploadScript({ filename: `test_${i}.py`, content: `print(${i})\n` });
        // Every third script ran twice; the later run is its last execution.
        if (i % 3 === 0) {
          const queuedAt = new Date(Date.now() - 10_000);
          await inner.createExecution(sampleExecution(script.id, { queuedAt }));
          const later = await inner.createExecution(sampleExecution(script.id, { queuedAt: new Date(queuedAt.getTime() + 1000), status: 'succeeded' }));
          lastRun.set(script.id, later.id);
        }
      }

      calls.length = 0;
      const res = await json(`${base}/scripts?limit=50`);
      expect(res.status).toBe(200);
      expect(calls).toEqual(['listScriptsWithLastExecution']);

      expect(res.body.items).toHaveLength(50);
      expect(res.body.nextCursor).toEqual(expect.any(String));
      for (const item of res.body.items as Array<{ id: string; lastExecution: { id: string; status: string } | null }>) {
        const expected = lastRun.get(item.id);
        expect({ id: item.id, last: item.lastExecution?.id ?? null }).toEqual({ id: item.id, last: expected ?? null });
        if (expected) expect(item.lastExecution!.status).toBe('succeeded');
      }
      const direct = await runner.listScriptsWithLastExecution({ limit: 50 });
      expect(res.body).toEqual(JSON.parse(JSON.stringify(direct)));
      const rest = await json(`${base}/scripts?limit=50&cursor=${encodeURIComponent(res.body.nextCursor)}`);
      expect(rest.body.items).toHaveLength(1);
      expect(rest.body.nextCursor).toBeNull();
    });

    it('answers unknown ids with 404 and bad queries with 400', async () => {
      const { base } = await startServer();
      for (const path of ['/scripts/nope', '/scripts/nope/content', '/executions/nope', '/executions/nope/logs', '/executions/nope/logs.txt', '/executions/nope/logs/stream']) {
        const res = await json(`${base}${path}`);
        expect({ path, status: res.status }).toEqual({ path, status: 404 });
        expect(res.body.error.code).toBe('not_found');
      }
      expect((await json(`${base}/scripts/nope`, { method: 'DELETE' })).status).toBe(404);
      expect((await json(`${base}/executions/nope/cancel`, { method: 'POST' })).status).toBe(404);
      expect((await runScript(base, 'nope')).status).toBe(404);
      for (const query of ['/scripts?limit=0', '/scripts?limit=abc', '/scripts?status=deleted', '/scripts?limit=1&limit=2', '/executions?status=done', '/executions?limit=-1']) {
        const res = await json(`${base}${query}`);
        expect({ query, status: res.status }).toEqual({ query, status: 400 });
      }
    });
  });

  describe('executions', () => {
    it('returns 202 with a Location as soon as the run is queued, long before the script ends', async () => {
      const { base } = await startServer();
      const id = (await upload(base, 'test_sleep_forever.py', fixture('test_sleep_forever.py'))).body.script.id as string;
      const run = await runScript(base, id);
      expect(run.status).toBe(202);
      expect(['queued', 'running']).toContain(run.body.execution.status);
      const location = run.headers.get('location')!;
      expect(location).toBe(`/api/sr/executions/${run.body.execution.id}`);
      const current = await json(`${new URL(base).origin}${location}`);
      expect(['queued', 'running']).toContain(current.body.execution.status);

      const cancelled = await json(`${base}/executions/${run.body.execution.id}/cancel`, { method: 'POST' });
      expect(cancelled.status).toBe(200);
      expect(cancelled.body.execution.status).toBe('cancelled');
    });

    it('validates the run body', async () => {
      const { base } = await startServer();
      const id = (await upload(base, 'test_x.py', 'print(1)')).body.script.id as string;
      const post = (body: string) =>
        json(`${base}/scripts/${id}/executions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect((await post('{"args": "not a list"}')).status).toBe(400);
      expect((await post('[1,2]')).status).toBe(400);
      expect((await post('{broken')).status).toBe(400);
      expect((await post('{"args": [1]}')).status).toBe(422);
      expect((await post('{"args": ["a\\u0000b"]}')).status).toBe(422);
      expect((await json(`${base}/executions`)).body.items).toEqual([]);
      // JSON only: no body at all, a form or text/plain (what a cross-site page can send without a preflight) is refused.
      for (const init of [{}, { headers: { 'content-type': 'text/plain' }, body: '{}' }, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' }]) {
        const res = await json(`${base}/scripts/${id}/executions`, { method: 'POST', ...init });
        expect(res.status).toBe(415);
        expect(res.body.error.code).toBe('unsupported_media_type');
      }
      expect((await json(`${base}/executions`)).body.items).toEqual([]);
      // An empty JSON body is a run without arguments.
      expect((await json(`${base}/scripts/${id}/executions`, { method: 'POST', headers: { 'content-type': 'application/json' } })).status).toBe(202);
    });

    it('names a Python environment at upload (form field) and per run (body); the execution says which one ran', async () => {
      // Two names for the interpreter on PATH: which one ran is what the record says.
      const { base } = await startServer({ environments: { forecast: { python: 'python3' } }, isolation: 'none' });
      const named = await upload(base, 'test_x.py', 'print(1)', { environment: 'forecast' });
      expect(named.status).toBe(201);
      expect(named.body.script.environment).toBe('forecast');
      const plain = (await upload(base, 'test_y.py', 'print(1)', { environment: '' })).body.script;
      expect(plain.environment).toBeNull();

      const run = await runScript(base, named.body.script.id);
      expect(run.body.execution.environment).toBe('forecast');
      const post = (id: string, body: unknown) =>
        json(`${base}/scripts/${id}/executions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const override = await post(named.body.script.id, { environment: 'default' });
      expect(override.status).toBe(202);
      expect(override.body.execution.environment).toBe('default');
      const stored = await json(`${base}/executions/${override.body.execution.id}`);
      expect(stored.body.execution.environment).toBe('default');
      expect((await runScript(base, plain.id)).body.execution.environment).toBe('default');

      // Unknown names and wrong types: 422 naming the field, nothing stored or run.
      const before = (await json(`${base}/executions`)).body.items.length;
      for (const environment of ['nope', 42, ['forecast']]) {
        const res = await post(plain.id, { environment });
        expect(res.status, JSON.stringify(environment)).toBe(422);
        expect(res.body.error).toMatchObject({ code: 'validation' });
      }
      expect((await json(`${base}/executions`)).body.items).toHaveLength(before);
      const badUpload = await upload(base, 'test_z.py', 'print(1)', { environment: 'nope' });
      expect(badUpload.status).toBe(422);
      expect(badUpload.body.error.message).toContain('no environment is named "nope"; this runner has default, forecast');
      const twice = new FormData();
      twice.append('file', new Blob(['print(1)']), 'test_z.py');
      twice.append('environment', 'forecast');
      twice.append('environment', 'default');
      expect((await fetch(`${base}/scripts`, { method: 'POST', body: twice })).status).toBe(400);
      expect((await json(`${base}/scripts`)).body.items).toHaveLength(2);
    });

    it('restores an archived script (POST /scripts/:id/restore), idempotent; 404 for an unknown id', async () => {
      const { base } = await startServer({ isolation: 'none' });
      const id = (await upload(base, 'test_x.py', 'print(1)')).body.script.id as string;
      expect((await json(`${base}/scripts/${id}`, { method: 'DELETE' })).body.script.status).toBe('archived');
      expect((await runScript(base, id)).status).toBe(409);
      for (let i = 0; i < 2; i++) {
        const restored = await json(`${base}/scripts/${id}/restore`, { method: 'POST' });
        expect(restored.status).toBe(200);
        expect(restored.body.script).toMatchObject({ id, status: 'active', lastExecution: null });
      }
      expect((await json(`${base}/scripts`)).body.items.map((s: { id: string }) => s.id)).toEqual([id]);
      expect((await runScript(base, id)).status).toBe(202);
      expect((await json(`${base}/scripts/nope/restore`, { method: 'POST' })).status).toBe(404);
      expect((await json(`${base}/scripts/${id}/restore`)).status).toBe(405);
    });

    it('lists artifacts and downloads each as an attachment with its exact bytes; 404 and 422 for what cannot be', async () => {
      const { base, runner } = await startServer({ isolation: 'none' });
      const code = [
        'import os',
        'out = os.environ["SCRIPTRUNNER_OUTPUT_DIR"]',
        'open(os.path.join(out, "prices <today>.csv"), "w").write("hour,price\\n1,42.5\\n")',
        'os.makedirs(os.path.join(out, "plots"))',
        'open(os.path.join(out, "plots", "page.html"), "wb").write(b"<script>alert(1)</script>" + bytes(range(256)))',
      ].join('\n');
      const id = (await upload(base, 'test_art.py', code)).body.script.id as string;
      const executionId = (await runScript(base, id)).body.execution.id as string;
      expect((await runner.waitFor(executionId)).artifactCount).toBe(2);
      expect((await json(`${base}/executions/${executionId}`)).body.execution.artifactCount).toBe(2);

      const list = await json(`${base}/executions/${executionId}/artifacts`);
      expect(list.status).toBe(200);
      expect(list.body.artifacts.map((a: { name: string; sizeBytes: number }) => [a.name, a.sizeBytes])).toEqual([
        ['plots/page.html', 25 + 256],
        ['prices <today>.csv', 18],
      ]);
      expect(typeof list.body.artifacts[0].createdAt).toBe('string');

      const csv = await fetch(`${base}/executions/${executionId}/artifacts/${encodeURIComponent('prices <today>.csv')}`);
      expect(csv.status).toBe(200);
      expect(await csv.text()).toBe('hour,price\n1,42.5\n');
      expect(csv.headers.get('content-disposition')).toBe(`attachment; filename="prices <today>.csv"; filename*=UTF-8''${encodeURIComponent('prices <today>.csv')}`);
      // Whatever a script wrote is a download, never a page of this origin.
      const html = await fetch(`${base}/executions/${executionId}/artifacts/plots%2Fpage.html`);
      expect(html.headers.get('content-type')).toBe('application/octet-stream');
      expect(html.headers.get('x-content-type-options')).toBe('nosniff');
      expect(html.headers.get('content-disposition')).toMatch(/^attachment; filename="page.html"/);
      expect(html.headers.get('content-length')).toBe(String(25 + 256));
      const bytes = Buffer.from(await html.arrayBuffer());
      expect(bytes.subarray(25).equals(Buffer.from(Array.from({ length: 256 }, (_, i) => i)))).toBe(true);
      const head = await fetch(`${base}/executions/${executionId}/artifacts/plots%2Fpage.html`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(await head.text()).toBe('');

      expect((await json(`${base}/executions/${executionId}/artifacts/missing.csv`)).body.error.code).toBe('not_found');
      expect((await json(`${base}/executions/nope/artifacts`)).status).toBe(404);
      expect((await json(`${base}/executions/nope/artifacts/a.csv`)).status).toBe(404);
      for (const bad of ['%2E%2E%2Fetc', 'a%2F%2Fb', 'x%00y', 'a%5Cb']) {
        const res = await json(`${base}/executions/${executionId}/artifacts/${bad}`);
        expect(res.status, bad).toBe(422);
        expect(res.body.error.message).toMatch(/^.*artifact name: /);
      }
    });

    it('answers a full queue with 429 and Retry-After', async () => {
      const { base } = await startServer({ concurrency: 1, maxQueued: 0 }, { retryAfterSeconds: 7 });
      const id = (await upload(base, 'test_sleep_forever.py', fixture('test_sleep_forever.py'))).body.script.id as string;
      expect((await runScript(base, id)).status).toBe(202);
      const full = await runScript(base, id);
      expect(full.status).toBe(429);
      expect(full.headers.get('retry-after')).toBe('7');
      expect(full.body.error.code).toBe('queue_full');
    });

    it('lists executions with filters and cursors', async () => {
      const { base, runner } = await startServer({ concurrency: 4 });
      const a = (await upload(base, 'test_a.py', 'print("a")')).body.script.id as string;
      const b = (await upload(base, 'test_b.py', 'import sys; sys.exit(2)')).body.script.id as string;
      const ids: string[] = [];
      for (const script of [a, b, a, b, a]) ids.push((await runScript(base, script)).body.execution.id);
      await Promise.all(ids.map((id) => runner.waitFor(id)));
      const seen: string[] = [];
      let url = `${base}/executions?scriptId=${a}&limit=2`;
      for (let i = 0; i < 5; i++) {
        const page = await json(url);
        seen.push(...page.body.items.map((e: any) => e.id));
        if (!page.body.nextCursor) break;
        url = `${base}/executions?scriptId=${a}&limit=2&cursor=${encodeURIComponent(page.body.nextCursor)}`;
      }
      expect(seen.sort()).toEqual([ids[0], ids[2], ids[4]].sort());
      const failed = await json(`${base}/executions?status=failed`);
      expect(failed.body.items.map((e: any) => e.scriptId)).toEqual([b, b]);
    });
  });

  describe('logs', () => {
    it('pages logs with after/limit, reports done only at the end, and filters by level', async () => {
      const { base, runner } = await startServer();
      const id = (await upload(base, 'test_many_lines.py', fixture('test_many_lines.py'))).body.script.id as string;
      const executionId = (await runScript(base, id, ['2500'])).body.execution.id as string;
      await runner.waitFor(executionId);
      const seqs: number[] = [];
      let after = 0;
      const dones: boolean[] = [];
      for (let i = 0; i < 10; i++) {
        const page = await json(`${base}/executions/${executionId}/logs?after=${after}&limit=1000`);
        expect(page.status).toBe(200);
        seqs.push(...page.body.lines.map((l: any) => l.seq));
        dones.push(page.body.done);
        after = page.body.nextAfter;
        if (page.body.done) break;
      }
      expect(seqs).toEqual(Array.from({ length: 2500 }, (_, i) => i + 1));
      expect(dones).toEqual([false, false, true]);

      const mixId = (await upload(base, 'test_stderr_mix.py', fixture('test_stderr_mix.py'))).body.script.id as string;
      const mix = (await runScript(base, mixId)).body.execution.id as string;
      await runner.waitFor(mix);
      const warn = await json(`${base}/executions/${mix}/logs?level=warn`);
      expect(warn.body.lines.map((l: any) => l.text)).toEqual(['WARNING: wind profile missing for plant 7']);
      const errors = await json(`${base}/executions/${mix}/logs?level=error&stream=stdout,stderr`);
      expect(errors.body.lines).toHaveLength(51);
      expect((await json(`${base}/executions/${mix}/logs?level=loud`)).status).toBe(400);
      expect((await json(`${base}/executions/${mix}/logs?after=x`)).status).toBe(400);
      expect((await json(`${base}/executions/${mix}/logs?limit=100000`)).status).toBe(400);
    });

    it('a running execution is never reported done', async () => {
      const { base } = await startServer();
      const id = (await upload(base, 'test_print_then_sleep.py', fixture('test_print_then_sleep.py'))).body.script.id as string;
      const executionId = (await runScript(base, id)).body.execution.id as string;
      let page: any;
      for (let i = 0; i < 100; i++) {
        page = (await json(`${base}/executions/${executionId}/logs`)).body;
        if (page.lines.length > 0) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(page.lines.map((l: any) => l.text)).toEqual(['first line, before the pause']);
      expect(page.done).toBe(false);
    });

    it('logs.txt is the whole log as plain text, equal to the concatenated lines', async () => {
      const { base, runner } = await startServer();
      const id = (await upload(base, 'test_stderr_mix.py', fixture('test_stderr_mix.py'))).body.script.id as string;
      const executionId = (await runScript(base, id)).body.execution.id as string;
      await runner.waitFor(executionId);
      const lines = await runner.readLogs(executionId, { limit: 10_000 });
      const res = await fetch(`${base}/executions/${executionId}/logs.txt`);
      expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
      expect(await res.text()).toBe(lines.map((l) => `${l.text}\n`).join(''));
    });

    it('logs.txt streams a 30,000-line log completely', async () => {
      const { base, runner } = await startServer();
      const id = (await upload(base, 'test_many_lines.py', fixture('test_many_lines.py'))).body.script.id as string;
      const executionId = (await runScript(base, id, ['30000'])).body.execution.id as string;
      await runner.waitFor(executionId);
      const text = await (await fetch(`${base}/executions/${executionId}/logs.txt`)).text();
      const rows = text.split('\n');
      expect(rows).toHaveLength(30_001);
      expect(rows[29_999]).toBe('line 30000 price forecast iteration ok');
    });
  });

  describe('Server-Sent Events', () => {
    it('streams every line of a finished run, then end with the final execution', async () => {
      const { base, runner } = await startServer();
      const id = (await upload(base, 'test_stderr_mix.py', fixture('test_stderr_mix.py'))).body.script.id as string;
      const executionId = (await runScript(base, id)).body.execution.id as string;
      await runner.waitFor(executionId);
      const { status, events } = await readSse(`${base}/executions/${executionId}/logs/stream`);
      expect(status).toBe(200);
      const lines = linesOf(events);
      expect(lines.map((l) => l.seq)).toEqual(Array.from({ length: 102 }, (_, i) => i + 1));
      const end = events.at(-1)!;
      expect(end.event).toBe('end');
      expect(JSON.parse(end.data)).toMatchObject({ id: executionId, status: 'succeeded', lineCount: 102 });
      // ids are the seq of the last line of each batch
      for (const event of events.filter((e) => e.event === 'log')) {
        expect(Number(event.id)).toBe((JSON.parse(event.data) as any[]).at(-1).seq);
      }
    });

    it('resumes after a dropped connection with Last-Event-ID: every line exactly once, in order', async () => {
      const { base } = await startServer();
      const total = 6000;
      const id = (await upload(base, 'test_steady.py', STEADY(total))).body.script.id as string;
      const executionId = (await runScript(base, id)).body.execution.id as string;
      const url = `${base}/executions/${executionId}/logs/stream`;
      const received: number[] = [];
      let lastId: string | undefined;
      let ended = false;
      let dropped = 0;
      for (let attempt = 0; attempt < 6 && !ended; attempt++) {
        // Drop the connection after a few batches, four times, then follow to the end.
        const result = await readSse(url, {
          ...(lastId !== undefined ? { lastEventId: lastId } : {}),
          ...(attempt < 4 ? { stopWhen: (events: Array<{ event: string }>) => events.filter((e) => e.event === 'log').length >= 3 } : {}),
        });
        if (result.status === 204) break;
        received.push(...linesOf(result.events).map((l) => l.seq));
        ended = result.events.some((e) => e.event === 'end');
        if (result.aborted) dropped++;
        lastId = result.lastId;
      }
      expect(ended).toBe(true);
      expect(dropped).toBe(4);
      expect(received).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    });

    it('streams a 100,000-line log to a client that reads slowly, complete and in order', async () => {
      const { base, runner } = await startServer();
      const id = (await upload(base, 'test_many_lines.py', fixture('test_many_lines.py'))).body.script.id as string;
      const executionId = (await runScript(base, id, ['100000'])).body.execution.id as string;
      await runner.waitFor(executionId);
      // Read with pauses so the server's socket buffer fills and it has to wait for 'drain'.
      const res = await fetch(`${base}/executions/${executionId}/logs/stream`);
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let text = '';
      let reads = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
        if (++reads % 20 === 0) await new Promise((r) => setTimeout(r, 5));
      }
      const events = text.split('\n\n').filter((e) => e.startsWith('id:'));
      const seqs = events.flatMap((e) => (JSON.parse(e.slice(e.indexOf('data: ') + 6)) as Array<{ seq: number }>).map((l) => l.seq));
      expect(seqs.length).toBe(100_000);
      expect(seqs.every((seq, i) => seq === i + 1)).toBe(true);
      expect(text).toContain('event: end');
    });

    it('starts from ?after= and stops a reconnect after the end with 204', async () => {
      const { base, runner } = await startServer();
      const id = (await upload(base, 'test_many_lines.py', fixture('test_many_lines.py'))).body.script.id as string;
      const executionId = (await runScript(base, id, ['50'])).body.execution.id as string;
      await runner.waitFor(executionId);
      const fromMiddle = await readSse(`${base}/executions/${executionId}/logs/stream?after=40`);
      expect(linesOf(fromMiddle.events).map((l) => l.seq)).toEqual([41, 42, 43, 44, 45, 46, 47, 48, 49, 50]);
      const again = await readSse(`${base}/executions/${executionId}/logs/stream`, { lastEventId: '50' });
      expect(again.status).toBe(204);
      const bad = await json(`${base}/executions/${executionId}/logs/stream`, { headers: { 'last-event-id': 'abc' } });
      expect(bad.status).toBe(400);
    });

    it('stops listening when the client goes away', async () => {
      const { base, runner } = await startServer();
      const id = (await upload(base, 'test_sleep_forever.py', fixture('test_sleep_forever.py'))).body.script.id as string;
      const executionId = (await runScript(base, id)).body.execution.id as string;
      // The runner's open follows (internal; read for this test only).
      const follows = () => (runner as unknown as { follows: { size: number } }).follows.size;
      const seen: number[] = [];
      await readSse(`${base}/executions/${executionId}/logs/stream`, {
        stopWhen: (events) => {
          seen.push(follows());
          return events.length >= 1;
        },
      });
      expect(seen).toContain(1);
      let after = -1;
      for (let i = 0; i < 250; i++) {
        after = follows();
        if (after === 0) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(after).toBe(0);
    });
  });

  describe('authorization', () => {
    it('asks authorize for every route and answers 403 when it says no', async () => {
      const calls: string[] = [];
      let allowed = true;
      const { base } = await startServer(
        {},
        {
          authorize: async (_req, action, resource) => {
            calls.push(`${action} ${resource.scriptId ?? ''}${resource.executionId ?? ''}`);
            return allowed;
          },
        },
      );
      const scriptId = (await upload(base, 'test_x.py', 'print(1)')).body.script.id as string;
      const executionId = (await runScript(base, scriptId)).body.execution.id as string;
      allowed = false;
      const denied: Array<[string, RequestInit?]> = [
        [`/scripts`],
        [`/scripts/${scriptId}`],
        [`/scripts/${scriptId}/content`],
        [`/scripts/${scriptId}`, { method: 'DELETE' }],
        [`/scripts/${scriptId}/executions`, { method: 'POST' }],
        [`/executions`],
        [`/executions/${executionId}`],
        [`/executions/${executionId}/cancel`, { method: 'POST' }],
        [`/executions/${executionId}/logs`],
        [`/executions/${executionId}/logs.txt`],
        [`/executions/${executionId}/logs/stream`],
      ];
      for (const [path, init] of denied) {
        const res = await json(`${base}${path}`, init);
        expect({ path, status: res.status, code: res.body?.error?.code }).toEqual({ path, status: 403, code: 'forbidden' });
      }
      const up = await upload(base, 'test_y.py', 'print(2)');
      expect(up.status).toBe(403);
      allowed = true;
      expect((await json(`${base}/scripts`)).body.items).toHaveLength(1);
      expect((await json(`${base}/scripts/${scriptId}`)).body.script.status).toBe('active');
      expect(calls).toContain(`script:run ${scriptId}`);
      expect(calls).toContain(`execution:cancel ${executionId}`);
      expect(calls).toContain('script:upload ');
    });
  });
});
