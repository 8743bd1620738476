/**
 * The demo page: the "Sandbox → Test Scripts" tab of the dashboard, built from @scriptrunner/react.
 * The selected execution is kept in the URL (#execution=…), so a reload shows the same log.
 */
import { createScriptRunnerClient } from '@scriptrunner/client';
import { ExecutionLogView, ScriptList, ScriptRunnerProvider, ScriptUploadCard } from '@scriptrunner/react';
import '@scriptrunner/react/styles.css';
import { StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { io } from 'socket.io-client';
import './page.css';

const socket = io('/scriptrunner', { transports: ['websocket', 'polling'] });
const client = createScriptRunnerClient({ baseUrl: '/api/scripts-runner', socket });

interface Selection {
  executionId: string;
  title: string;
}

function readHash(): Selection | null {
  const params = new URLSearchParams(location.hash.slice(1));
  const executionId = params.get('execution');
  return executionId ? { executionId, title: params.get('title') ?? `Execution ${executionId}` } : null;
}

function App() {
  const [selection, setSelection] = useState<Selection | null>(readHash);
  useEffect(() => {
    const onHash = () => setSelection(readHash());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
  const select = (executionId: string, title: string) => {
    location.hash = new URLSearchParams({ execution: executionId, title }).toString();
  };

  return (
    <ScriptRunnerProvider client={client}>
      <header className="page__header">
        <h1>Test Scripts</h1>
        <span className="page__subtitle">upload a test_*.py or experiment_*.py file, press Run, watch it live</span>
      </header>
      <main className="page__main">
        <div className="page__left">
          <ScriptUploadCard />
          <ScriptList
            onRun={(execution, script) => select(execution.id, script.filename)}
            onOpenExecution={(execution, script) => select(execution.id, script.filename)}
          />
        </div>
        <div className="page__right">
          {selection ? (
            <ExecutionLogView key={selection.executionId} executionId={selection.executionId} title={selection.title} height={560} />
          ) : (
            <div className="page__placeholder">Run a script to see its output here.</div>
          )}
        </div>
      </main>
    </ScriptRunnerProvider>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
