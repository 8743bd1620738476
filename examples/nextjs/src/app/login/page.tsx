'use client';
import { useRouter } from 'next/navigation';
import { useState, type FormEvent } from 'react';

export default function LoginPage() {
  const router = useRouter();
  const [name, setName] = useState('analyst');
  const [role, setRole] = useState('analyst');
  const [error, setError] = useState<string | null>(null);
  async function submit(event: FormEvent) {
    event.preventDefault();
    const res = await fetch('/api/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, role }) });
    if (res.ok) router.push('/sandbox');
    else setError(`sign-in failed (HTTP ${res.status})`);
  }
  return (
    <form className="login" onSubmit={submit}>
      <h1>Sign in (demo)</h1>
      <label>
        Name <input value={name} onChange={(e) => setName(e.target.value)} />
      </label>
      <label>
        Role{' '}
        <select value={role} onChange={(e) => setRole(e.target.value)}>
          <option value="analyst">analyst (upload and run)</option>
          <option value="viewer">viewer (watch only)</option>
        </select>
      </label>
      <button type="submit">Sign in</button>
      {error && <p role="alert">{error}</p>}
    </form>
  );
}
