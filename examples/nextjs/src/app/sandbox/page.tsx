/** The dashboard's Sandbox page (a Server Component): checks the session, then renders the Test Scripts tab. */
import { cookies } from 'next/headers';
import { redirect } from 'next/navigation';
import { SESSION_COOKIE } from '@/lib/auth.ts';
import { prisma } from '@/lib/prisma.ts';
import { TestScriptsTab } from './TestScriptsTab.tsx';

export const dynamic = 'force-dynamic';

export default async function SandboxPage() {
  const token = (await cookies()).get(SESSION_COOKIE)?.value;
  const user = token ? await prisma().user.findUnique({ where: { token } }) : null;
  if (!user) redirect('/login');
  return (
    <>
      <header className="app__header">
        <h1>Dashboard · Sandbox</h1>
        <span>
          {user.name} ({user.role})
        </span>
      </header>
      <nav className="tabs" aria-label="Sandbox">
        <a href="/sandbox" aria-current="page">
          Test Scripts
        </a>
      </nav>
      <TestScriptsTab canRun={user.role === 'analyst'} />
    </>
  );
}
