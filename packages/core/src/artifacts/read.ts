/** Reading artifacts for the runner's methods: `not_found` and `validation` in the runner's words. */
import { ScriptRunnerError } from '../errors.js';
import type { ArtifactContent, Store } from '../store.js';
import type { Artifact } from '../types.js';
import { artifactNameProblem } from './collect.js';

type StoreCall = <T>(fn: () => Promise<T>) => Promise<T>;

export function checkArtifactName(name: unknown): asserts name is string {
  const problem = typeof name === 'string' ? artifactNameProblem(name) : 'it must be a string';
  if (problem !== null) throw new ScriptRunnerError('validation', `artifact name: ${problem}`, { details: { field: 'name' } });
}

/** The execution's artifacts; none from a store that keeps none. */
export function listArtifactsOf(store: Store, executionId: string, call: StoreCall): Promise<Artifact[]> {
  return store.listArtifacts ? call(() => store.listArtifacts!(executionId)) : Promise.resolve([]);
}

export async function readArtifactOf(store: Store, executionId: string, name: string, call: StoreCall): Promise<ArtifactContent> {
  const found = store.readArtifact ? await call(() => store.readArtifact!(executionId, name)) : null;
  if (found === null) throw new ScriptRunnerError('not_found', `execution ${executionId} has no artifact "${name}"`, { details: { executionId, name } });
  return found;
}
