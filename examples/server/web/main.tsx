/**
 * The demo page: the "Sandbox → Test Scripts" tab of the dashboard, built from @scriptrunner/react.
 * What is open lives in the URL — `?script=<id>&execution=<id>&title=<file>#L123` — so a reload, a
 * shared link or the browser's back button shows the same run, scrolled to the same line.
 */
import { createScriptRunnerClient } from '@scriptrunner/client';
import { ExecutionHistory, ExecutionLogView, ScriptList, ScriptRunnerProvider, ScriptUploadCard } from '@scriptrunner/react';
import '@scriptrunner/react/styles.css';
import { StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { io } from 'socket.io-client';
import './page.css';

const socket = io('/scriptrunner', { transports: ['websocket', 'polling'] });
const client = createScriptRunnerClient({ baseUrl: '/api/scripts-runner', socket });

interface View {
  scriptId: string | null;
  executionId: string | null;
  title: string;
  line: number | null;
}

function readUrl(): View {
  const params = new URLSearchParams(location.search);
  const line = /^#L(\d+)$/.exec(location.hash);
  return {
    scriptId: params.get('script'),
    executionId: params.get('execution'),
    title: params.get('title') ?? '',
    line: line ? Number(line[1]) : null,
  };
}

function writeUrl(view: View, mode: 'push' | 'replace'): void {
  const params = new URLSearchParams();
  if (view.scriptId) params.set('script', view.scriptId);
  if (view.executionId) params.set('execution', view.executionId);
  if (view.title) params.set('title', view.title);
  const url = `${location.pathname}${params.size > 0 ? `?${params}` : ''}${view.line !== null ? `#L${view.line}` : ''}`;
  if (mode === 'push') history.pushState(null, '', url);
  else history.replaceState(null, '', url);
}

function App() {
  const [view, setView] = useState<View>(readUrl);
  useEffect(() => {
    const onNavigate = () => setView(readUrl());
    window.addEventListener('popstate', onNavigate);
    window.addEventListener('hashchange', onNavigate);
    return () => {
      window.removeEventListener('popstate', onNavigate);
      window.removeEventListener('hashchange', onNavigate);
    };
  }, []);
  const go = (next: View, mode: 'push' | 'replace' = 'push') => {
    writeUrl(next, mode);
    setView(next);
  };
  const open = (scriptId: string, executionId: string | null, title: string) => go({ scriptId, executionId, title, line: null });

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
            onRun={(execution, script) => open(script.id, execution.id, script.filename)}
            onOpenExecution={(execution, script) => open(script.id, execution.id, script.filename)}
            // The open run stays open when it is this script's.
            onOpenHistory={(script) => open(script.id, view.scriptId === script.id ? view.executionId : null, script.filename)}
          />
          {view.scriptId ? (
            <ExecutionHistory
              key={view.scriptId}
              scriptId={view.scriptId}
              title={view.title}
              selectedExecutionId={view.executionId}
              onOpenExecution={(execution) => open(execution.scriptId, execution.id, view.title)}
            />
          ) : null}
        </div>
        <div className="page__right">
          {view.executionId ? (
            <ExecutionLogView
              key={view.executionId}
              executionId={view.executionId}
              title={view.title || `Execution ${view.executionId}`}
              height={560}
              selectedLine={view.line}
              onSelectLine={(line) => go({ ...view, line }, 'replace')}
            />
          ) : (
            <div className="page__placeholder">Run a script, or open a run from its history, to see its output here.</div>
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
