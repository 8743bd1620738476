/**
 * ANSI colour codes rendered as coloured spans (never as raw escape codes), without innerHTML:
 * a script's output is untrusted text.
 */
import Anser from 'anser';
import type { CSSProperties, ReactNode } from 'react';

// eslint-disable-next-line no-control-regex
const ESCAPE = /\u001b\[[0-9;?]*[A-Za-z]/g;

/** The text without escape codes (for search and plain display). */
export function stripAnsi(text: string): string {
  return text.includes('\u001b') ? text.replace(ESCAPE, '') : text;
}

export function AnsiText({ text }: { text: string }): ReactNode {
  if (!text.includes('\u001b')) return text;
  const parts = Anser.ansiToJson(text, { json: true, remove_empty: true, use_classes: false });
  return parts.map((part, i) => {
    const style: CSSProperties = {};
    if (part.fg) style.color = `rgb(${part.fg})`;
    if (part.bg) style.backgroundColor = `rgb(${part.bg})`;
    const decorations = part.decorations ?? [];
    if (decorations.includes('bold')) style.fontWeight = 'bold';
    if (decorations.includes('italic')) style.fontStyle = 'italic';
    if (decorations.includes('underline')) style.textDecoration = 'underline';
    if (decorations.includes('dim')) style.opacity = 0.7;
    return (
      <span key={i} className="sr-ansi" style={style}>
        {part.content}
      </span>
    );
  });
}
