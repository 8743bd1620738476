// @vitest-environment happy-dom
/**
 * Components in a DOM: upload validation messages, level filter and search, auto-scroll pause and
 * resume, ANSI rendering, and virtualisation of a 100,000-line log.
 */
import { createScriptRunnerClient } from '@scriptrunner/client';
import type { LogLine } from '@scriptrunner/core';
import { act, cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { AnsiText, LogLines, parseArgs, ScriptUploadCard, stripAnsi } from '../src/index.js';

afterEach(cleanup);

function makeLines(count: number, level: (seq: number) => LogLine['level'] = () => 'info'): LogLine[] {
  const time = new Date();
  return Array.from({ length: count }, (_, i) => ({
    executionId: 'e1',
    seq: i + 1,
    stream: level(i + 1) === 'error' ? ('stderr' as const) : ('stdout' as const),
    level: level(i + 1),
    text: `line ${i + 1}${level(i + 1) === 'error' ? ' Traceback failure' : ''}`,
    time,
  }));
}

// The upload card checks files before any request: a client that would fail on use proves it.
const offlineClient = createScriptRunnerClient({
  baseUrl: 'http://127.0.0.1:9/never',
  fetch: () => Promise.reject(new Error('no request may be sent')),
});

function pick(file: File) {
  const input = screen.getByLabelText('Script file') as HTMLInputElement;
  Object.defineProperty(input, 'files', { value: [file], configurable: true });
  fireEvent.change(input);
}

describe('ScriptUploadCard', () => {
  it('explains a wrong file name before uploading', () => {
    render(<ScriptUploadCard client={offlineClient} />);
    pick(new File(['print(1)'], 'analysis.py'));
    expect(screen.getByRole('alert').textContent).toMatch(/"analysis.py" is not accepted: the name must look like test_prices.py/);
    expect((screen.getByText('Upload') as HTMLButtonElement).disabled).toBe(true);
  });

  it('explains a file that is too large or empty', () => {
    render(<ScriptUploadCard client={offlineClient} rules={{ pattern: /^test_.*\.py$/, maxBytes: 10 }} />);
    pick(new File(['x'.repeat(11)], 'test_big.py'));
    expect(screen.getByRole('alert').textContent).toMatch(/the limit is/);
    pick(new File([], 'test_empty.py'));
    expect(screen.getByRole('alert').textContent).toMatch(/is empty/);
  });

  it('takes a dropped file through the same checks', () => {
    render(<ScriptUploadCard client={offlineClient} />);
    const zone = screen.getByTestId('drop-zone');
    fireEvent.dragOver(zone, { dataTransfer: { files: [] } });
    expect(zone.className).toContain('sr-upload__drop--active');
    fireEvent.drop(zone, { dataTransfer: { files: [new File(['print(1)'], 'notes.txt')] } });
    expect(zone.className).not.toContain('sr-upload__drop--active');
    expect(screen.getByRole('alert').textContent).toMatch(/"notes.txt" is not accepted/);
    fireEvent.drop(zone, { dataTransfer: { files: [new File(['print(1)'], 'experiment_drop.py')] } });
    expect(screen.queryByRole('alert')).toBeNull();
    expect(zone.textContent).toContain('experiment_drop.py');
  });

  it('accepts a valid file and reports a network failure in words', async () => {
    render(<ScriptUploadCard client={offlineClient} />);
    pick(new File(['print(1)'], 'test_ok.py'));
    expect(screen.queryByRole('alert')).toBeNull();
    await act(async () => {
      fireEvent.click(screen.getByText('Upload'));
    });
    expect(screen.getByRole('alert').textContent).toBe('No request may be sent');
  });
});

describe('LogLines', () => {
  it('renders a bounded number of rows for 100,000 lines (virtualised)', () => {
    const lines = makeLines(10);
    const { container, rerender } = render(<LogLines lines={lines} version={1} height={400} />);
    const scroll = container.querySelector('.sr-loglines__scroll') as HTMLDivElement;
    // happy-dom has no layout: give the scroll area the geometry a browser would.
    Object.defineProperty(scroll, 'clientHeight', { value: 400, configurable: true });
    Object.defineProperty(scroll, 'scrollHeight', { get: () => lines.length * 20, configurable: true });
    lines.push(...makeLines(100_000).slice(10));
    rerender(<LogLines lines={lines} version={2} height={400} />);
    // Following: the view was scrolled to the end; once the browser reports that scroll, the last
    // line is among the rendered rows — and only a screenful of rows exists.
    expect(scroll.scrollTop).toBeGreaterThan(1_999_000);
    act(() => {
      fireEvent.scroll(scroll);
    });
    const rows = container.querySelectorAll('.sr-line');
    expect(rows.length).toBeGreaterThan(10);
    expect(rows.length).toBeLessThan(100);
    expect(container.querySelector('[data-seq="100000"]')).not.toBeNull();
    expect(container.querySelector('[data-seq="1"]')).toBeNull();
  });

  it('filters by level and by text', () => {
    const lines = makeLines(300, (seq) => (seq % 50 === 0 ? 'error' : seq % 7 === 0 ? 'warn' : 'info'));
    const { container, rerender } = render(<LogLines lines={lines} levels={['error']} height={2000} />);
    const seqs = () => [...container.querySelectorAll('.sr-line')].map((r) => Number(r.getAttribute('data-seq')));
    expect(seqs()).toEqual([50, 100, 150, 200, 250, 300]);
    rerender(<LogLines lines={lines} search="LINE 7" height={2000} />);
    expect(seqs()).toEqual([7, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79]);
    rerender(<LogLines lines={lines} levels={['warn']} search="line 7" height={2000} />);
    expect(seqs()).toEqual([7, 70, 77]);
    rerender(<LogLines lines={lines} levels={[]} height={2000} />);
    expect(seqs()).toEqual([]);
    expect(container.textContent).toContain('No lines match the filter.');
  });

  it('pauses auto-scroll when the reader scrolls up and resumes at the bottom', () => {
    const lines = makeLines(1000);
    const { container, rerender } = render(<LogLines lines={lines} version={1} height={200} />);
    const scroll = container.querySelector('.sr-loglines__scroll') as HTMLDivElement;
    Object.defineProperty(scroll, 'clientHeight', { value: 200, configurable: true });
    Object.defineProperty(scroll, 'scrollHeight', { get: () => lines.length * 20, configurable: true });
    expect(scroll.getAttribute('data-following')).toBe('true');

    // The reader scrolls up: following stops, and new lines do not move the view.
    scroll.scrollTop = 1000;
    fireEvent.scroll(scroll);
    expect(scroll.getAttribute('data-following')).toBe('false');
    lines.push(...makeLines(1100).slice(1000));
    rerender(<LogLines lines={lines} version={2} height={200} />);
    expect(scroll.scrollTop).toBe(1000);
    expect(screen.getByText('↓ Follow new lines')).toBeTruthy();

    // Back at the bottom: following again, and new lines keep the view at the end.
    scroll.scrollTop = lines.length * 20 - 200;
    fireEvent.scroll(scroll);
    expect(scroll.getAttribute('data-following')).toBe('true');
    lines.push(...makeLines(1200).slice(1100));
    rerender(<LogLines lines={lines} version={3} height={200} />);
    expect(scroll.scrollTop).toBeGreaterThanOrEqual(1200 * 20 - 200);
  });

  it('the resume button jumps to the end and follows again', () => {
    const lines = makeLines(500);
    const { container } = render(<LogLines lines={lines} version={1} height={200} />);
    const scroll = container.querySelector('.sr-loglines__scroll') as HTMLDivElement;
    Object.defineProperty(scroll, 'clientHeight', { value: 200, configurable: true });
    Object.defineProperty(scroll, 'scrollHeight', { get: () => lines.length * 20, configurable: true });
    scroll.scrollTop = 0;
    fireEvent.scroll(scroll);
    fireEvent.click(screen.getByText('↓ Follow new lines'));
    expect(scroll.getAttribute('data-following')).toBe('true');
    expect(scroll.scrollTop).toBeGreaterThanOrEqual(500 * 20 - 200);
  });
});

describe('ANSI', () => {
  it('renders colour codes as coloured spans, never as escape codes', () => {
    const { container } = render(
      <div>
        <AnsiText text={'plain \u001b[31mred\u001b[0m and \u001b[1;32mbold green\u001b[0m'} />
      </div>,
    );
    expect(container.textContent).toBe('plain red and bold green');
    expect(container.textContent).not.toContain('\u001b');
    const red = [...container.querySelectorAll('span')].find((s) => s.textContent === 'red') as HTMLSpanElement;
    expect(red.style.color).toMatch(/rgb\(187, 0, 0\)|rgb\(187,0,0\)/);
    const green = [...container.querySelectorAll('span')].find((s) => s.textContent === 'bold green') as HTMLSpanElement;
    expect(green.style.fontWeight).toBe('bold');
    expect(stripAnsi('\u001b[33mwarn\u001b[0m')).toBe('warn');
  });

  it('does not interpret markup in output', () => {
    const { container } = render(
      <div>
        <AnsiText text={'\u001b[31m<img src=x onerror=alert(1)>\u001b[0m'} />
      </div>,
    );
    expect(container.querySelector('img')).toBeNull();
    expect(container.textContent).toBe('<img src=x onerror=alert(1)>');
  });
});

describe('parseArgs', () => {
  it('splits on spaces and keeps quoted groups', () => {
    expect(parseArgs(`--day "2026 11 30" -v 'a b' plain`)).toEqual(['--day', '2026 11 30', '-v', 'a b', 'plain']);
    expect(parseArgs('   ')).toEqual([]);
  });
});
