/**
 * A virtualised, filterable log: only the rows in view (plus a small overscan) exist in the DOM,
 * so a million lines scroll as smoothly as a hundred. Auto-scroll follows the end while the reader
 * is at the bottom, pauses when they scroll up, and resumes when they return to the bottom.
 */
import type { LogLevel, LogLine } from '@scriptrunner/core';
import { useVirtualizer } from '@tanstack/react-virtual';
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import { AnsiText, stripAnsi } from './ansi.js';
import { formatTimestamp, type TimestampMode } from './time.js';

export interface LogLinesProps {
  lines: readonly LogLine[];
  /** Changes whenever `lines` grew (the array may grow in place). */
  version?: number;
  /** Show only these levels; all when absent (an empty list shows none). */
  levels?: readonly LogLevel[];
  /** Case-insensitive text filter (escape codes ignored). */
  search?: string;
  /** Row height in px (rows are one line each; long lines scroll sideways). Default 20. */
  rowHeight?: number;
  /** Height of the scroll area in px. Default 480. */
  height?: number;
  className?: string;
  /** Text shown when there is nothing to show. */
  emptyText?: string;
  /** Line times: none (default), wall-clock, or since `startTime`. */
  timestamps?: TimestampMode;
  startTime?: Date | null;
  /**
   * The selected line (a deep link's `#L123`): marked, and scrolled into view once it has arrived,
   * however far down a long log it is.
   */
  selectedSeq?: number | null;
  /** Called when a line number is clicked (or activated from the keyboard). */
  onSelectLine?: (seq: number) => void;
  /** The href of a line number's link. Default `#L<seq>`. */
  lineHref?: (seq: number) => string;
}

/** Where the line with `seq` sits in `lines` (ascending seq), or -1. */
function indexOfSeq(lines: readonly LogLine[], seq: number): number {
  // Unfiltered logs are gap-free from 1: the common case costs one comparison.
  if (lines[seq - 1]?.seq === seq) return seq - 1;
  let low = 0;
  let high = lines.length - 1;
  while (low <= high) {
    const mid = (low + high) >> 1;
    const at = lines[mid]!.seq;
    if (at === seq) return mid;
    if (at < seq) low = mid + 1;
    else high = mid - 1;
  }
  return -1;
}

/** The first position in `indexes` whose line index is at least `target` (binary search). */
function lowerBound(indexes: readonly number[], target: number): number {
  let low = 0;
  let high = indexes.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (indexes[mid]! < target) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** Incrementally filtered indexes: new lines are filtered as they arrive, not the whole log again. */
function useFiltered(lines: readonly LogLine[], version: number | undefined, levels: readonly LogLevel[] | undefined, search: string) {
  const levelKey = levels === undefined ? '*' : [...new Set(levels)].sort().join(',');
  const key = `${levelKey}|${search.toLowerCase()}`;
  const state = useRef<{ key: string; source: readonly LogLine[]; done: number; indexes: number[] }>({ key: '', source: lines, done: 0, indexes: [] });
  return useMemo(() => {
    const active = (levels !== undefined && new Set(levels).size < 3) || search !== '';
    if (!active) return null;
    const s = state.current;
    if (s.key !== key || s.source !== lines || s.done > lines.length) {
      state.current = { key, source: lines, done: 0, indexes: [] };
    }
    const current = state.current;
    const levelSet = levels !== undefined ? new Set(levels) : null;
    const needle = search.toLowerCase();
    for (let i = current.done; i < lines.length; i++) {
      const line = lines[i]!;
      if (levelSet && !levelSet.has(line.level)) continue;
      if (needle && !stripAnsi(line.text).toLowerCase().includes(needle)) continue;
      current.indexes.push(i);
    }
    current.done = lines.length;
    // The same array, grown in place: copying a million indexes on every flush would be the cost.
    return current.indexes;
    // version: the array grows in place, so its identity alone does not say it changed.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [lines, version, key, lines.length]);
}

export function LogLines({
  lines,
  version,
  levels,
  search = '',
  rowHeight = 20,
  height = 480,
  className,
  emptyText = 'No output yet.',
  timestamps = 'none',
  startTime = null,
  selectedSeq = null,
  onSelectLine,
  lineHref = (seq) => `#L${seq}`,
}: LogLinesProps) {
  const filtered = useFiltered(lines, version, levels, search);
  const count = filtered ? filtered.length : lines.length;
  const scrollRef = useRef<HTMLDivElement>(null);
  const [following, setFollowing] = useState(true);
  const followingRef = useRef(true);

  const virtualizer = useVirtualizer({
    count,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => rowHeight,
    overscan: 20,
    // The scroll area's height is ours (a prop), so it is known without measuring: this also keeps
    // rows rendering where layout is unavailable (server rendering, DOM test environments).
    initialRect: { width: 1000, height },
    observeElementRect: (_instance, callback) => {
      callback({ width: scrollRef.current?.clientWidth || 1000, height });
      return () => {};
    },
  });

  // New lines while following: stay at the bottom.
  useLayoutEffect(() => {
    if (!followingRef.current || count === 0) return;
    const element = scrollRef.current;
    if (!element) return;
    element.scrollTop = count * rowHeight;
    virtualizer.scrollToIndex(count - 1, { align: 'end' });
  }, [count, version, rowHeight, virtualizer]);

  useEffect(() => {
    followingRef.current = following;
  }, [following]);

  // A selected line is scrolled to once, as soon as it is among the lines (a deep link into a long
  // log waits for the catch-up to reach it); following stops so new lines do not pull it away.
  const scrolledTo = useRef<number | null>(null);
  useLayoutEffect(() => {
    if (selectedSeq === null || scrolledTo.current === selectedSeq) return;
    const index = indexOfSeq(lines, selectedSeq);
    if (index < 0) return;
    const row = filtered ? lowerBound(filtered, index) : index;
    if (row >= count) return;
    scrolledTo.current = selectedSeq;
    followingRef.current = false;
    setFollowing(false);
    const element = scrollRef.current;
    if (element) element.scrollTop = Math.max(0, row * rowHeight - height / 2);
    virtualizer.scrollToIndex(row, { align: 'center' });
  }, [selectedSeq, lines, version, filtered, count, rowHeight, height, virtualizer]);

  const onScroll = () => {
    const element = scrollRef.current;
    if (!element) return;
    const atBottom = element.scrollTop + element.clientHeight >= element.scrollHeight - rowHeight * 1.5;
    if (atBottom !== followingRef.current) {
      followingRef.current = atBottom;
      setFollowing(atBottom);
    }
  };

  const resume = () => {
    followingRef.current = true;
    setFollowing(true);
    const element = scrollRef.current;
    if (element && count > 0) {
      element.scrollTop = count * rowHeight;
      virtualizer.scrollToIndex(count - 1, { align: 'end' });
    }
  };

  return (
    <div className={['sr-loglines', className].filter(Boolean).join(' ')}>
      <div
        ref={scrollRef}
        className="sr-loglines__scroll"
        style={{ height, overflow: 'auto', position: 'relative' }}
        onScroll={onScroll}
        data-following={following ? 'true' : 'false'}
        role="log"
        aria-live="off"
        aria-label="Log lines"
        // Reachable from the keyboard: arrow keys and Page Up/Down scroll it once it has focus.
        tabIndex={0}
      >
        {count === 0 ? <div className="sr-loglines__empty">{filtered && lines.length > 0 ? 'No lines match the filter.' : emptyText}</div> : null}
        <div style={{ height: virtualizer.getTotalSize(), width: '100%', position: 'relative' }}>
          {virtualizer.getVirtualItems().map((item) => {
            const line = lines[filtered ? filtered[item.index]! : item.index];
            if (!line) return null;
            return (
              <div
                key={line.seq}
                className={`sr-line sr-line--${line.level} sr-line--${line.stream}${line.seq === selectedSeq ? ' sr-line--selected' : ''}`}
                data-seq={line.seq}
                aria-current={line.seq === selectedSeq ? 'true' : undefined}
                style={{ position: 'absolute', top: 0, left: 0, width: '100%', height: rowHeight, transform: `translateY(${item.start}px)` }}
              >
                <a
                  className="sr-line__seq"
                  href={lineHref(line.seq)}
                  aria-label={`Line ${line.seq}`}
                  onClick={(event) => {
                    if (!onSelectLine) return;
                    event.preventDefault();
                    onSelectLine(line.seq);
                  }}
                >
                  {line.seq}
                </a>
                {timestamps !== 'none' ? <span className="sr-line__time">{formatTimestamp(line.time, timestamps, startTime)}</span> : null}
                <span className="sr-line__text">
                  <AnsiText text={line.text} />
                </span>
              </div>
            );
          })}
        </div>
      </div>
      {!following && count > 0 ? (
        <button type="button" className="sr-loglines__resume" onClick={resume}>
          ↓ Follow new lines
        </button>
      ) : null}
    </div>
  );
}
