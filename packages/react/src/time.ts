/** Durations, line timestamps and a clock that ticks while a run is going. */
import { useEffect, useState } from 'react';

export function formatDuration(ms: number | null): string {
  if (ms === null) return '—';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** How line times are shown: not at all, as the wall-clock time, or as time since the run started. */
export type TimestampMode = 'none' | 'absolute' | 'relative';

export function formatTimestamp(time: Date, mode: TimestampMode, start: Date | null): string {
  if (mode === 'absolute') {
    const pad = (n: number, w = 2) => String(n).padStart(w, '0');
    return `${pad(time.getHours())}:${pad(time.getMinutes())}:${pad(time.getSeconds())}.${pad(time.getMilliseconds(), 3)}`;
  }
  if (mode === 'relative' && start) {
    const ms = Math.max(0, time.getTime() - start.getTime());
    return `+${(ms / 1000).toFixed(3)}s`;
  }
  return '';
}

/** Milliseconds since `since`, updated every second while `running`; null without a start. */
export function useElapsed(since: Date | null, running: boolean): number | null {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!running) return;
    setNow(Date.now());
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [running]);
  return since ? Math.max(0, now - since.getTime()) : null;
}

/**
 * The percentage a progress line carries (tqdm's `45%|████▌     | 45/100`, pip's `12.5/40.0 MB`, a bare
 * `12/40`), or null when it carries none.
 */
export function progressPercent(text: string): number | null {
  const percent = /(\d{1,3}(?:\.\d+)?)\s?%/.exec(text);
  if (percent) {
    const value = Number(percent[1]);
    return value <= 100 ? value : null;
  }
  const fraction = /(?<![\d.])(\d+(?:\.\d+)?)\s?\/\s?(\d+(?:\.\d+)?)(?![\d.])/.exec(text);
  if (fraction) {
    const done = Number(fraction[1]);
    const total = Number(fraction[2]);
    if (total > 0 && done <= total) return (done / total) * 100;
  }
  return null;
}
