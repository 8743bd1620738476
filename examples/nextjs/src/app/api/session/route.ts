/** Demo sign-in: POST { name, role } creates a user with a fresh session token in a cookie; DELETE signs out. */
import { randomBytes, randomUUID } from 'node:crypto';
import { SESSION_COOKIE } from '@/lib/auth.ts';
import { prisma } from '@/lib/prisma.ts';

export async function POST(request: Request): Promise<Response> {
  const body = (await request.json().catch(() => ({}))) as { name?: unknown; role?: unknown };
  const name = typeof body.name === 'string' && body.name.trim() ? body.name.trim().slice(0, 100) : 'analyst';
  const role = body.role === 'viewer' ? 'viewer' : 'analyst';
  const token = randomBytes(24).toString('base64url');
  await prisma().user.create({ data: { id: randomUUID(), name, role, token } });
  const response = Response.json({ user: { name, role } });
  response.headers.set('Set-Cookie', `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Lax`);
  return response;
}

export async function DELETE(): Promise<Response> {
  const response = Response.json({ ok: true });
  response.headers.set('Set-Cookie', `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0`);
  return response;
}

export const dynamic = 'force-dynamic';
