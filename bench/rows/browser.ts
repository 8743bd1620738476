/**
 * browser: the demo page (examples/server: Express + Socket.IO + SQLite, the React UI) in headless
 * Chromium following a 100,000-line run. The script is uploaded and run through the REST API and the
 * page is opened on `#execution=<id>`; the script pauses 1.5 s before its first line so the page is
 * loaded and following by then. A PerformanceObserver (longtask, buffered) installed before any page
 * script records main-thread tasks; the ones that start while lines stream count. After the run:
 * the header's line count, then the virtualised list scrolled to the top, the middle, the bottom and
 * evenly spaced positions between, each checked row by row (seq matches its position, text matches).
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { CorrectnessError, fmt, type Row, type RowResult } from '../lib.js';
import { CHROMIUM_MISSING, chromiumAvailable, launchChromium, startDemoServer, type DemoServer } from '../../examples/server/test/support/browser.js';
import { PACED_LINES } from './support-net/stack.js';

const ROW_HEIGHT = 20; // LogLines' default: row i sits at translateY((i - 1) × 20px)
const PAUSE_S = 1.5;
const SAMPLES = 12; // positions checked besides top, middle and bottom
const TERMINAL = ['succeeded', 'failed', 'cancelled', 'timed out', 'interrupted'];

interface LongTask {
  start: number;
  duration: number;
}

interface PositionCheck {
  target: number;
  found: boolean;
  rows: number;
  /** The first row whose seq or text does not match its position, if any. */
  wrong: string | null;
}

declare global {
  interface Window {
    __benchLongTasks: LongTask[];
    __benchObserverError: string | null;
    __benchFrames: number[];
  }
}

function lineText(seq: number): string {
  return `line ${seq} price forecast iteration ok`;
}

export const run: Row = async (ctx) => {
  const count = ctx.quick ? 20_000 : 100_000;
  const seconds = ctx.quick ? 3 : 6;
  const rate = Math.round(count / seconds);
  const what = `the demo page (React, virtualised log) in headless Chromium following a ${fmt.int(count)}-line run printed over ${seconds} s (demo server, SQLite store): long tasks while streaming, rows reachable after`;
  const target = 'all rows reachable after the run; no main-thread task over 200 ms while streaming';
  if (!chromiumAvailable()) {
    return { row: 'browser', what, measured: 'not measured', target, met: null, reading: `Not measured: ${CHROMIUM_MISSING}.` } satisfies RowResult;
  }

  let server: DemoServer | null = null;
  let browser: Browser | null = null;
  let context: BrowserContext | null = null;
  try {
    const [started, launched] = await Promise.allSettled([startDemoServer(), launchChromium()]);
    if (started.status === 'fulfilled') server = started.value;
    if (launched.status === 'fulfilled') browser = launched.value;
    if (started.status === 'rejected') throw started.reason;
    if (launched.status === 'rejected') throw launched.reason;
    const api = `${server!.url}/api/scripts-runner`;

    const form = new FormData();
    form.append('file', new Blob([PACED_LINES], { type: 'text/x-python' }), 'test_bench_browser.py');
    const uploaded = await fetch(`${api}/scripts`, { method: 'POST', body: form });
    if (uploaded.status !== 201) throw new Error(`upload answered ${uploaded.status}: ${await uploaded.text()}`);
    const { script } = (await uploaded.json()) as { script: { id: string } };

    context = await browser!.newContext({ viewport: { width: 1400, height: 860 } });
    // tsx compiles with esbuild's keepNames, which wraps named functions in __name(...): the
    // functions this file hands to page.evaluate need it defined in the page too.
    await context.addInitScript({ content: 'globalThis.__name ??= (fn) => fn;' });
    await context.addInitScript(() => {
      window.__benchLongTasks = [];
      window.__benchObserverError = null;
      // Frame times too: a long gap between frames is what a reader sees as a stutter.
      window.__benchFrames = [];
      const onFrame = (t: number) => {
        if (window.__benchFrames.length < 100_000) window.__benchFrames.push(t);
        requestAnimationFrame(onFrame);
      };
      requestAnimationFrame(onFrame);
      try {
        new PerformanceObserver((list) => {
          for (const entry of list.getEntries()) window.__benchLongTasks.push({ start: entry.startTime, duration: entry.duration });
        }).observe({ type: 'longtask', buffered: true });
      } catch (error) {
        window.__benchObserverError = String(error);
      }
    });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(`console.error: ${message.text()}`);
    });

    const ran = await fetch(`${api}/scripts/${script.id}/executions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ args: [String(count), String(rate), String(PAUSE_S)] }),
    });
    if (ran.status !== 202) throw new Error(`run answered ${ran.status}: ${await ran.text()}`);
    const { execution } = (await ran.json()) as { execution: { id: string } };
    ctx.log(`${fmt.int(count)} lines at ${fmt.int(rate)} lines/s into the demo page`);
    await page.goto(`${server!.url}/?${new URLSearchParams({ script: script.id, execution: execution.id, title: 'test_bench_browser.py' })}`);
    const loadedAt = await page.evaluate(() => performance.now());

    // Follow the header from Node (a cheap evaluate every 100 ms) to bracket the streaming window.
    const readHeader = () =>
      page.evaluate(() => ({
        now: performance.now(),
        count: Number(document.querySelector('[data-testid=line-count]')?.textContent ?? 0),
        text: document.querySelector('[data-testid=line-count]')?.textContent ?? '',
        status: document.querySelector('[data-testid=execution-status]')?.textContent ?? '',
      }));
    let previousNow = loadedAt;
    let streamStart = Number.NaN;
    let streamEnd = Number.NaN;
    let header = await readHeader();
    /** Polls that saw part of the lines: the page really followed the run live. */
    let midStream = 0;
    const deadline = Date.now() + (seconds + PAUSE_S + 60) * 1000;
    for (;;) {
      if (header.count > 0 && Number.isNaN(streamStart)) streamStart = previousNow;
      if (header.count > 0 && header.count < count) midStream++;
      if (TERMINAL.includes(header.status) && header.count >= count) {
        streamEnd = header.now;
        break;
      }
      if (TERMINAL.includes(header.status) && header.status !== 'succeeded') throw new Error(`the run ended ${header.status} with ${header.count} lines in view`);
      if (Date.now() > deadline) throw new Error(`the page shows ${header.count} of ${count} lines, status "${header.status}", after the run should have ended`);
      previousNow = header.now;
      await new Promise((r) => setTimeout(r, 100));
      header = await readHeader();
    }
    if (header.text !== String(count) || header.status !== 'succeeded') {
      throw new CorrectnessError(`browser: the header says ${header.text} lines, status "${header.status}"; expected ${count}, succeeded`);
    }
    if (midStream === 0) throw new Error('no poll saw the view with only part of the lines: the streaming window cannot be bracketed');
    if (!(streamStart > loadedAt)) ctx.log('note: lines were already in view when the page finished loading');

    // Rows reachable: top, middle, bottom, and evenly spaced positions, each checked row by row.
    const targets = [1, count / 2, count, ...Array.from({ length: SAMPLES }, (_, i) => Math.round(((i + 0.5) * count) / SAMPLES))];
    const checks = await page.evaluate(
      async ({ targets, rowHeight }) => {
        const scroller = document.querySelector<HTMLElement>('.sr-loglines__scroll');
        if (!scroller) throw new Error('no .sr-loglines__scroll on the page');
        const frame = () => new Promise<void>((resolve) => requestAnimationFrame(() => resolve()));
        const out: PositionCheck[] = [];
        for (const target of targets) {
          scroller.scrollTop = Math.max(0, (target - 1) * rowHeight - scroller.clientHeight / 2);
          const deadline = performance.now() + 5000;
          while (!scroller.querySelector(`.sr-line[data-seq="${target}"]`) && performance.now() < deadline) await frame();
          const rows = [...scroller.querySelectorAll<HTMLElement>('.sr-line')];
          let wrong: string | null = null;
          for (const row of rows) {
            const seq = Number(row.dataset.seq);
            // Its offset in the rows' container (the inline transform serialises large values as 1e+06px).
            const top = row.getBoundingClientRect().top - row.parentElement!.getBoundingClientRect().top;
            const text = row.querySelector('.sr-line__text')?.textContent ?? '';
            if (seq !== Math.round(top / rowHeight) + 1 || text !== `line ${seq} price forecast iteration ok`) {
              wrong = `the row at ${top}px (position ${Math.round(top / rowHeight) + 1}) holds seq ${seq} "${text}"`;
              break;
            }
          }
          out.push({ target, found: scroller.querySelector(`.sr-line[data-seq="${target}"]`) !== null, rows: rows.length, wrong });
        }
        return out;
      },
      { targets, rowHeight: ROW_HEIGHT },
    );
    const wrong = checks.find((c) => c.wrong !== null);
    if (wrong) throw new CorrectnessError(`browser: near seq ${wrong.target}, ${wrong.wrong}; expected row n to hold "${lineText(1).replace('1', 'n')}"`);
    const missing = checks.filter((c) => !c.found).map((c) => c.target);
    const reachable = missing.length === 0;

    // The instrument itself: a deliberate 120 ms task after the run must show up as a long task.
    const probe = await page.evaluate(
      () =>
        new Promise<{ start: number; supported: boolean }>((resolve) => {
          setTimeout(() => {
            const start = performance.now();
            while (performance.now() - start < 120) {
              // busy on purpose
            }
            setTimeout(() => resolve({ start, supported: PerformanceObserver.supportedEntryTypes.includes('longtask') }), 200);
          }, 0);
        }),
    );
    const observed = await page.evaluate(() => ({ tasks: window.__benchLongTasks, error: window.__benchObserverError, frames: window.__benchFrames }));
    if (observed.error) throw new Error(`the longtask observer could not be installed: ${observed.error}`);
    if (!observed.tasks.some((t) => t.start >= probe.start - 5 && t.duration >= 100)) {
      throw new Error(`the longtask observer did not see a deliberate 120 ms task (longtask supported: ${probe.supported}); long tasks cannot be measured in this browser`);
    }
    observed.tasks = observed.tasks.filter((t) => t.start < probe.start - 5);
    const during = observed.tasks.filter((t) => t.start >= streamStart && t.start <= streamEnd);
    const before = observed.tasks.filter((t) => t.start < streamStart);
    const longest = during.reduce((m, t) => Math.max(m, t.duration), 0);
    const over50 = during.filter((t) => t.duration > 50).length;
    const longestBefore = before.reduce((m, t) => Math.max(m, t.duration), 0);
    const frames = observed.frames.filter((t) => t >= streamStart && t <= streamEnd);
    let longestGap = 0;
    for (let i = 1; i < frames.length; i++) longestGap = Math.max(longestGap, frames[i]! - frames[i - 1]!);
    const met = reachable && longest <= 200 && errors.length === 0;
    const streamSeconds = (streamEnd - streamStart) / 1000;
    await page.close();
    return {
      row: 'browser',
      what,
      measured:
        (during.length === 0
          ? `no main-thread task over 50 ms in ${streamSeconds.toFixed(1)} s of streaming (longest frame gap ${fmt.ms(longestGap)}) · `
          : `longest task while streaming ${fmt.ms(longest)}, ${over50} over 50 ms in ${streamSeconds.toFixed(1)} s (longest frame gap ${fmt.ms(longestGap)}) · `) +
        `rows ${fmt.int(1)}, ${fmt.int(count / 2)}, ${fmt.int(count)} ${reachable ? 'reachable' : `NOT reachable (${missing.map((m) => fmt.int(m)).join(', ')})`}`,
      target,
      met,
      reading:
        `The header counted ${fmt.int(count)} lines and every row checked at ${checks.length} scroll positions (${fmt.int(checks.reduce((n, c) => n + c.rows, 0))} rendered rows) held the right seq and text in order; ` +
        `the list keeps only the rows in view (≈${Math.round(checks.reduce((n, c) => n + c.rows, 0) / checks.length)} per position) in the DOM. ` +
        `${fmt.int(frames.length)} animation frames while streaming (${(frames.length / streamSeconds).toFixed(0)}/s); ${before.length === 0 ? 'no long task during page load either' : `page load, before the first line, had a ${fmt.ms(longestBefore)} task (not counted)`}.` +
        (errors.length > 0 ? ` Page errors: ${errors.slice(0, 3).join(' | ')}.` : '') +
        (longest > 200 ? ` A ${fmt.ms(longest)} task blocked the main thread while streaming.` : ''),
    };
  } finally {
    await context?.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    if (server) {
      const exit = await server.stop().catch((error: unknown) => {
        ctx.log(`the demo server did not stop cleanly: ${error instanceof Error ? error.message : String(error)}`);
        return null;
      });
      if (exit && exit.code !== 0) ctx.log(`the demo server exited with ${exit.code ?? exit.signal}`);
    }
  }
};
