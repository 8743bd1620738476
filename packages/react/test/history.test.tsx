// @vitest-environment happy-dom
/**
 * The history, artifact and log-viewer components in each of their states — loading, empty, data,
 * error — over a client whose fetch answers from a table (the real stack is the demo's e2e).
 */
import { createScriptRunnerClient } from '@scriptrunner/client';
import type { Execution, LogLine } from '@scriptrunner/core';
import { act, cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { ArtifactList, ExecutionHistory, ExecutionLogView, LogLines, progressPercent } from '../src/index.js';

afterEach(cleanup);

type Route = (url: URL) => { status: number; body: unknown; type?: string } | undefined;

/** A client whose requests are answered by `route` (404 for anything it does not know). */
function clientFor(route: Route) {
  const requests: string[] = [];
  const client = createScriptRunnerClient({
    baseUrl: 'http://test.local/api',
    fetch: async (input) => {
      const url = new URL(String(input));
      requests.push(`${url.pathname}${url.search}`);
      const answer = route(url) ?? { status: 404, body: { error: { code: 'not_found', message: `[scriptrunner] no route ${url.pathname}` } } };
      return new Response(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body), {
        status: answer.status,
        headers: { 'content-type': answer.type ?? 'application/json' },
      });
    },
  });
  return { client, requests };
}

function execution(id: string, overrides: Partial<Execution> = {}): Execution {
  const queuedAt = new Date('2026-12-03T09:00:00Z');
  return {
    id,
    scriptId: 's1',
    status: 'succeeded',
    args: [],
    exitCode: 0,
    signal: null,
    queuedAt,
    startedAt: queuedAt,
    finishedAt: new Date(queuedAt.getTime() + 1500),
    durationMs: 1500,
    lineCount: 3,
    errorMessage: null,
    truncated: false,
    environment: 'default',
    artifactCount: 0,
    ...overrides,
  };
}

describe('ExecutionHistory', () => {
  it('says when a script never ran', async () => {
    const { client } = clientFor((url) => (url.pathname === '/api/executions' ? { status: 200, body: { items: [], nextCursor: null } } : undefined));
    render(<ExecutionHistory scriptId="s1" title="test_x.py" client={client} />);
    expect(screen.getByText('Loading…')).toBeTruthy();
    await screen.findByText('This script has not run yet.');
  });

  it('lists runs newest first with their facts, pages to older ones, and runs one again with its arguments', async () => {
    const first = [
      execution('e3', { args: ['--day', '2026-12-03', 'wind farm'], artifactCount: 2, environment: 'forecast' }),
      execution('e2', { status: 'failed', exitCode: 3, lineCount: 7 }),
    ];
    const older = [execution('e1', { status: 'timed_out', exitCode: null, signal: 'SIGKILL' })];
    const { client, requests } = clientFor((url) => {
      if (url.pathname === '/api/executions' && url.searchParams.get('cursor') === 'c1') return { status: 200, body: { items: older, nextCursor: null } };
      if (url.pathname === '/api/executions') return { status: 200, body: { items: first, nextCursor: 'c1' } };
      if (url.pathname === '/api/scripts/s1/executions') return { status: 202, body: { execution: execution('e4', { status: 'queued' }) } };
      return undefined;
    });
    const opened: string[] = [];
    render(<ExecutionHistory scriptId="s1" client={client} onOpenExecution={(e) => opened.push(e.id)} selectedExecutionId="e2" pageSize={2} />);
    await screen.findByText('--day 2026-12-03 "wind farm"');
    const rows = () => [...document.querySelectorAll('tbody tr')];
    expect(rows().map((r) => r.getAttribute('data-execution'))).toEqual(['e3', 'e2']);
    const cells = rows()[0]!.querySelectorAll('td');
    expect([...cells].slice(2, 8).map((c) => c.textContent)).toEqual(['1.5 s', '0', '3', '2', '--day 2026-12-03 "wind farm"', 'forecast']);
    expect(rows()[1]!.getAttribute('aria-current')).toBe('true');
    expect(requests[0]).toBe('/api/executions?scriptId=s1&limit=2');

    await act(async () => fireEvent.click(screen.getByText('Show older runs')));
    await waitFor(() => expect(rows().map((r) => r.getAttribute('data-execution'))).toEqual(['e3', 'e2', 'e1']));
    expect(rows()[2]!.textContent).toContain('SIGKILL');
    expect(screen.queryByText('Show older runs')).toBeNull();

    await act(async () => fireEvent.click(rows()[0]!.querySelector('button[aria-label^="Run again"]')!));
    await waitFor(() => expect(opened).toEqual(['e4']));
    expect(requests).toContain('/api/scripts/s1/executions');
    fireEvent.click(rows()[1]!.querySelector('button[aria-label^="Open the log"]')!);
    expect(opened).toEqual(['e4', 'e2']);
  });

  it('shows the source with line numbers, and an error in words when the runs cannot be read', async () => {
    const { client } = clientFor((url) => {
      if (url.pathname === '/api/executions') return { status: 503, body: { error: { code: 'store', message: '[scriptrunner] the store is down' } } };
      if (url.pathname === '/api/scripts/s1/content') return { status: 200, body: 'import sys\nprint(sys.argv)\n' };
      return undefined;
    });
    render(<ExecutionHistory scriptId="s1" client={client} />);
    expect((await screen.findByRole('alert')).textContent).toBe('Could not load the runs: The store is down');
    fireEvent.click(screen.getByText('View source'));
    const source = await screen.findByLabelText('Script source');
    await waitFor(() => expect([...source.querySelectorAll('.sr-source__number')].map((n) => n.textContent)).toEqual(['1', '2']));
    expect(source.textContent).toContain('print(sys.argv)');
  });
});

describe('ArtifactList', () => {
  it('lists artifacts with sizes and download links; says when there are none; reports an error', async () => {
    const artifacts = [
      { executionId: 'e1', name: 'plots/wind.png', sizeBytes: 2_500_000, sha256: 'a', createdAt: '2026-12-03T09:00:00Z' },
      { executionId: 'e1', name: 'prices.csv', sizeBytes: 246, sha256: 'b', createdAt: '2026-12-03T09:00:00Z' },
    ];
    const { client } = clientFor((url) => {
      if (url.pathname === '/api/executions/e1/artifacts') return { status: 200, body: { artifacts } };
      if (url.pathname === '/api/executions/e2/artifacts') return { status: 200, body: { artifacts: [] } };
      return undefined;
    });
    const { unmount } = render(<ArtifactList executionId="e1" client={client} />);
    const link = await screen.findByRole('link', { name: 'plots/wind.png' });
    expect(link.getAttribute('href')).toBe('http://test.local/api/executions/e1/artifacts/plots%2Fwind.png');
    expect(link.getAttribute('download')).toBe('wind.png');
    expect(document.querySelector('[data-artifact="prices.csv"]')!.textContent).toBe('prices.csv 246 B');
    expect(document.querySelector('[data-artifact="plots/wind.png"]')!.textContent).toBe('plots/wind.png 2.4 MiB');
    unmount();
    const empty = render(<ArtifactList executionId="e2" client={client} />);
    await screen.findByText(/^No artifacts/);
    empty.unmount();
    render(<ArtifactList executionId="missing" client={client} />);
    expect((await screen.findByRole('alert')).textContent).toMatch(/^Could not list the artifacts: No route/);
  });
});

describe('ExecutionLogView states', () => {
  const lines = (n: number): LogLine[] =>
    Array.from({ length: n }, (_, i) => ({ executionId: 'e1', seq: i + 1, stream: 'stdout', level: 'info', text: `row ${i + 1}`, time: new Date(Date.UTC(2026, 11, 3, 9, 0, 0, 250 * i)) }));

  function logClient(record: Execution | null, stored: LogLine[]) {
    return clientFor((url) => {
      if (url.pathname === '/api/executions/e1') return record ? { status: 200, body: { execution: record } } : undefined;
      if (url.pathname === '/api/executions/e1/logs/stream' && record) {
        // What the SSE route sends for a run that ended: the lines after `after`, then `end`.
        const after = Number(url.searchParams.get('after') ?? 0);
        const rest = stored.filter((l) => l.seq > after);
        const events = (rest.length ? `event: log\ndata: ${JSON.stringify(rest)}\n\n` : '') + `event: end\ndata: ${JSON.stringify(record)}\n\n`;
        return { status: 200, body: events, type: 'text/event-stream' };
      }
      if (url.pathname === '/api/executions/e1/artifacts') return { status: 200, body: { artifacts: [] } };
      return undefined;
    }).client;
  }

  it('says what happened when the run does not exist', async () => {
    render(<ExecutionLogView executionId="e1" client={logClient(null, [])} />);
    expect((await screen.findByTestId('load-error')).textContent).toBe('This run does not exist (any more): it may have been removed, or the link is wrong.');
  });

  it('says a run printed nothing, and shows its artifacts section once it ended', async () => {
    render(<ExecutionLogView executionId="e1" client={logClient(execution('e1', { lineCount: 0 }), [])} />);
    await screen.findByText('The run printed nothing.');
    await screen.findByText(/^No artifacts/);
    expect(screen.getByTestId('duration').textContent).toBe('1.5 s');
  });

  it('waits for a queued run in words', async () => {
    render(<ExecutionLogView executionId="e1" client={logClient(execution('e1', { status: 'queued', startedAt: null, finishedAt: null, durationMs: null }), [])} />);
    await screen.findByText('Waiting for the run to start…');
  });

  it('shows line times as clock or since the start, and selects a line by its number', async () => {
    const selected: number[] = [];
    render(<ExecutionLogView executionId="e1" client={logClient(execution('e1', { startedAt: new Date(Date.UTC(2026, 11, 3, 9, 0, 0)) }), lines(3))} onSelectLine={(s) => selected.push(s)} selectedLine={2} />);
    await waitFor(() => expect(document.querySelectorAll('.sr-line').length).toBe(3));
    expect(document.querySelectorAll('.sr-line__time').length).toBe(0);
    expect(document.querySelector('.sr-line[data-seq="2"]')!.getAttribute('aria-current')).toBe('true');
    expect(screen.getByTestId('selected-line').textContent).toBe('2');
    fireEvent.change(screen.getByLabelText('Line timestamps'), { target: { value: 'relative' } });
    expect([...document.querySelectorAll('.sr-line__time')].map((t) => t.textContent)).toEqual(['+0.000s', '+0.250s', '+0.500s']);
    fireEvent.change(screen.getByLabelText('Line timestamps'), { target: { value: 'absolute' } });
    expect(document.querySelector('.sr-line__time')!.textContent).toMatch(/^\d\d:\d\d:00\.000$/);
    fireEvent.click(screen.getByLabelText('Line 3'));
    expect(selected).toEqual([3]);
  });
});

describe('progress and deep links', () => {
  it('reads the percentage of tqdm, pip and n/total progress lines', () => {
    expect(progressPercent('training:  45%|█████████           | 900/2000 [00:01<00:01, 950.00it/s]')).toBe(45);
    expect(progressPercent('   ━━━━━━━━━━━━━━━━━━━━ 12.5/40.0 MB 3.1 MB/s eta 0:00:09')).toBe(31.25);
    expect(progressPercent('progress 500/2000 [#####]')).toBe(25);
    expect(progressPercent('Downloading 99.5%')).toBe(99.5);
    expect(progressPercent('step 3 of many')).toBeNull();
    expect(progressPercent('250% over budget')).toBeNull();
  });

  it('scrolls a deep-linked line of a 1,000,000-line log into view once it has arrived', () => {
    const time = new Date();
    const all = Array.from({ length: 1_000_000 }, (_, i) => ({ executionId: 'e1', seq: i + 1, stream: 'stdout' as const, level: 'info' as const, text: `l${i + 1}`, time }));
    const view = render(<LogLines lines={all.slice(0, 100)} version={1} selectedSeq={999_950} height={200} />);
    const scroller = document.querySelector<HTMLElement>('.sr-loglines__scroll')!;
    expect(scroller.getAttribute('tabindex')).toBe('0');
    // happy-dom has no layout: give the scroll area the geometry a browser would.
    Object.defineProperty(scroller, 'clientHeight', { value: 200, configurable: true });
    Object.defineProperty(scroller, 'scrollHeight', { get: () => all.length * 20, configurable: true });
    expect(document.querySelector('.sr-line[data-seq="999950"]')).toBeNull();
    // The catch-up reaches it: the view is put on it (centred), not at the end it was following.
    view.rerender(<LogLines lines={all} version={2} selectedSeq={999_950} height={200} />);
    // Row 999,950 spans 999,949 × 20 … 999,950 × 20 px: inside the 200 px view, away from its edges.
    expect(scroller.scrollTop).toBeGreaterThan(999_949 * 20 - 200 + 40);
    expect(scroller.scrollTop).toBeLessThan(999_949 * 20 - 40);
    act(() => {
      fireEvent.scroll(scroller);
    });
    const line = document.querySelector('.sr-line[data-seq="999950"]')!;
    expect(line.getAttribute('aria-current')).toBe('true');
    expect(line.querySelector('.sr-line__seq')!.getAttribute('href')).toBe('#L999950');
    // A bounded number of rows, and following stopped so new lines do not pull the view away.
    expect(document.querySelectorAll('.sr-line').length).toBeLessThan(100);
    expect(scroller.dataset.following).toBe('false');
  });
});
