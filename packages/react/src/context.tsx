import type { ScriptRunnerClient } from '@scriptrunner/client';
import { createContext, useContext, type ReactNode } from 'react';

const ClientContext = createContext<ScriptRunnerClient | null>(null);

/** Makes a client available to every hook and component below it. */
export function ScriptRunnerProvider({ client, children }: { client: ScriptRunnerClient; children: ReactNode }) {
  return <ClientContext.Provider value={client}>{children}</ClientContext.Provider>;
}

/** The client from a `client` prop, else from the nearest ScriptRunnerProvider. */
export function useScriptRunnerClient(client?: ScriptRunnerClient): ScriptRunnerClient {
  const fromContext = useContext(ClientContext);
  const resolved = client ?? fromContext;
  if (!resolved) throw new Error('[scriptrunner] no client: pass client={...} or wrap the tree in <ScriptRunnerProvider client={...}>');
  return resolved;
}

/** "[scriptrunner] filename ... " → "Filename ..." — server messages shown to people. */
export function humanMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const text = message.replace(/^\[scriptrunner\]\s*/, '');
  return text.charAt(0).toUpperCase() + text.slice(1);
}
