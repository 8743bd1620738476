/**
 * The script list with each script's newest execution: one store call when the store offers
 * `listScriptsWithLastExecution`, otherwise the page and one `listExecutions` per script on it.
 */
import type { ListScriptsQuery, Store } from './store.js';
import type { Page, ScriptWithLastExecution } from './types.js';

export async function listScriptsWithLastExecution(store: Store, query: ListScriptsQuery): Promise<Page<ScriptWithLastExecution>> {
  if (store.listScriptsWithLastExecution) return store.listScriptsWithLastExecution(query);
  const page = await store.listScripts(query);
  const items = await Promise.all(
    page.items.map(async (script) => {
      const { items: newest } = await store.listExecutions({ scriptId: script.id, limit: 1 });
      return { ...script, lastExecution: newest[0] ?? null };
    }),
  );
  return { items, nextCursor: page.nextCursor };
}
