/**
 * The files a run kept (`SCRIPTRUNNER_OUTPUT_DIR`): name, size, and a download link each.
 */
import type { ScriptRunnerClient } from '@scriptrunner/client';
import { humanMessage, useScriptRunnerClient } from './context.js';
import { useArtifacts } from './history.js';

export interface ArtifactListProps {
  executionId: string;
  client?: ScriptRunnerClient;
  /** Read the list again when this changes (e.g. the execution's status, so it appears when the run ends). */
  version?: unknown;
  className?: string;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 ** 2).toFixed(1)} MiB`;
}

export function ArtifactList({ executionId, client: clientProp, version, className }: ArtifactListProps) {
  const client = useScriptRunnerClient(clientProp);
  const { artifacts, error } = useArtifacts(executionId, version, { client });
  return (
    <section className={['sr-artifacts', className].filter(Boolean).join(' ')} aria-label="Artifacts">
      <h3 className="sr-artifacts__title">Artifacts</h3>
      {error ? (
        <div className="sr-error" role="alert">
          Could not list the artifacts: {humanMessage(error)}
        </div>
      ) : artifacts === null ? (
        <div className="sr-muted">Loading…</div>
      ) : artifacts.length === 0 ? (
        <div className="sr-muted">No artifacts: files the script writes to $SCRIPTRUNNER_OUTPUT_DIR are kept here.</div>
      ) : (
        <ul className="sr-artifacts__list">
          {artifacts.map((artifact) => (
            <li key={artifact.name} data-artifact={artifact.name}>
              <a className="sr-artifacts__link" href={client.artifactUrl(executionId, artifact.name)} download={artifact.name.split('/').pop()}>
                {artifact.name}
              </a>{' '}
              <span className="sr-muted">{formatBytes(artifact.sizeBytes)}</span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
