/**
 * The isolation seam: how the argv of a run is wrapped before it is spawned (nothing, bubblewrap,
 * resource limits). The runner builds a `SpawnSpec` and passes it through exactly one wrapper.
 */
export interface SpawnSpec {
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
}

export type IsolationWrapper = (spec: SpawnSpec) => SpawnSpec;

/** Runs the command as it is, in its own process group, with the allowlisted environment. */
export const noIsolation: IsolationWrapper = (spec) => spec;
