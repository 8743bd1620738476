/**
 * Upload a script: a file picker and a drop zone, the same name/size rules as the server checked
 * before sending, an optional description, and server errors shown in words.
 */
import { checkUpload, UPLOAD_RULES, type ScriptRunnerClient, type ScriptWithLastExecution, type UploadRules } from '@scriptrunner/client';
import { useRef, useState, type DragEvent } from 'react';
import { humanMessage, useScriptRunnerClient } from './context.js';

export interface ScriptUploadCardProps {
  client?: ScriptRunnerClient;
  /** The rules of your runner if you changed its `upload` options. */
  rules?: UploadRules;
  onUploaded?: (script: ScriptWithLastExecution) => void;
  className?: string;
}

export function ScriptUploadCard({ client: clientProp, rules = UPLOAD_RULES, onUploaded, className }: ScriptUploadCardProps) {
  const client = useScriptRunnerClient(clientProp);
  const [file, setFile] = useState<File | null>(null);
  const [description, setDescription] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [dragging, setDragging] = useState(false);
  const input = useRef<HTMLInputElement>(null);

  const choose = (chosen: File | null | undefined) => {
    setDone(null);
    if (!chosen) {
      setFile(null);
      setError(null);
      return;
    }
    setFile(chosen);
    setError(checkUpload(chosen, rules));
  };

  const submit = async () => {
    if (!file) {
      setError('Choose a script first.');
      return;
    }
    const problem = checkUpload(file, rules);
    if (problem) {
      setError(problem);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const script = await client.uploadScript(file, description ? { description } : {});
      setDone(`Uploaded ${script.filename}.`);
      setFile(null);
      setDescription('');
      if (input.current) input.current.value = '';
      onUploaded?.(script);
    } catch (e) {
      setError(humanMessage(e));
    } finally {
      setBusy(false);
    }
  };

  const onDrop = (event: DragEvent) => {
    event.preventDefault();
    setDragging(false);
    choose(event.dataTransfer.files[0]);
  };

  return (
    <section className={['sr-upload', className].filter(Boolean).join(' ')} aria-label="Upload a script">
      <div
        className={`sr-upload__drop${dragging ? ' sr-upload__drop--active' : ''}`}
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={onDrop}
        onClick={() => input.current?.click()}
        data-testid="drop-zone"
      >
        {file ? <span className="sr-upload__file">{file.name}</span> : <span>Drop a test_*.py or experiment_*.py file here, or click to choose</span>}
        <input
          ref={input}
          type="file"
          accept=".py"
          aria-label="Script file"
          className="sr-upload__input"
          onClick={(e) => e.stopPropagation()}
          onChange={(e) => choose(e.target.files?.[0])}
        />
      </div>
      <input
        type="text"
        className="sr-input"
        placeholder="Description (optional)"
        aria-label="Description"
        value={description}
        onChange={(e) => setDescription(e.target.value)}
      />
      <button type="button" className="sr-button sr-button--primary" onClick={() => void submit()} disabled={busy || (file !== null && error !== null)}>
        {busy ? 'Uploading…' : 'Upload'}
      </button>
      {error ? (
        <div className="sr-error" role="alert">
          {error}
        </div>
      ) : null}
      {done ? (
        <div className="sr-success" role="status">
          {done}
        </div>
      ) : null}
    </section>
  );
}
