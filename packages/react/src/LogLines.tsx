/**
 * A virtualised, filterable log: only the rows in view (plus a small overscan) exist in the DOM,
 * so a million lines scroll as smoothly as a hundred. Auto-scroll follows the end while the reader
 * is at the bottom, pauses when they scroll up, and resumes when they return to the bottom.
 */
import type { LogLevel, LogLine } from '@scriptrunner/core';
import { useVirtualizer } from '@tanstack/react-virtual';
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import { AnsiText, stripAnsi } from './ansi.js';

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

export function LogLines({ lines, version, levels, search = '', rowHeight = 20, height = 480, className, emptyText = 'No output yet.' }: LogLinesProps) {
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
      >
        {count === 0 ? <div className="sr-loglines__empty">{filtered && lines.length > 0 ? 'No lines match the filter.' : emptyText}</div> : null}
        <div style={{ height: virtualizer.getTotalSize(), width: '100%', position: 'relative' }}>
          {virtualizer.getVirtualItems().map((item) => {
            const line = lines[filtered ? filtered[item.index]! : item.index];
            if (!line) return null;
            return (
              <div
                key={line.seq}
                className={`sr-line sr-line--${line.level} sr-line--${line.stream}`}
                data-seq={line.seq}
                style={{ position: 'absolute', top: 0, left: 0, width: '100%', height: rowHeight, transform: `translateY(${item.start}px)` }}
              >
                <span className="sr-line__seq">{line.seq}</span>
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
