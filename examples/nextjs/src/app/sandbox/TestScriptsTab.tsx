'use client';
/**
 * The "Test Scripts" tab: scriptrunner's React components on the app's route and socket. The client
 * opens its socket lazily, in the browser, the first time a log is followed (nothing connects while
 * the page is rendered on the server).
 */
import { createScriptRunnerClient } from '@scriptrunner/client';
import { ExecutionLogView, ScriptList, ScriptRunnerProvider, ScriptUploadCard } from '@scriptrunner/react';
import { useState } from 'react';
import { io } from 'socket.io-client';

const client = createScriptRunnerClient({
  baseUrl: '/api/sandbox/test-scripts',
  socket: () => io('/scriptrunner'),
});

export function TestScriptsTab({ canRun }: { canRun: boolean }) {
  const [selection, setSelection] = useState<{ executionId: string; title: string } | null>(null);
  return (
    <ScriptRunnerProvider client={client}>
      <main className="sandbox">
        <div className="sandbox__left">
          {canRun && <ScriptUploadCard />}
          <ScriptList
            onRun={(execution, script) => setSelection({ executionId: execution.id, title: script.filename })}
            onOpenExecution={(execution, script) => setSelection({ executionId: execution.id, title: script.filename })}
          />
        </div>
        <div className="sandbox__right">
          {selection ? (
            <ExecutionLogView key={selection.executionId} executionId={selection.executionId} title={selection.title} height={520} />
          ) : (
            <div className="sandbox__placeholder">Run a script to see its output here.</div>
          )}
        </div>
      </main>
    </ScriptRunnerProvider>
  );
}
