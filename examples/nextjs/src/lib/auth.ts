/**
 * The app's own (demo) authentication: a random session token in an HttpOnly cookie, looked up in
 * the `User` table. scriptrunner's routes and socket sit behind it like any other part of the app.
 */
import type { User } from '../generated/prisma/client.ts';
import { prisma } from './prisma.ts';

export const SESSION_COOKIE = 'sr_session';

function readCookie(header: string | null | undefined, name: string): string | null {
  for (const part of (header ?? '').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return decodeURIComponent(rest.join('='));
  }
  return null;
}

/** The signed-in user of a request (a `Request`, or a Socket.IO handshake's cookie header), or null. */
export async function currentUser(source: Request | string | undefined): Promise<User | null> {
  const header = typeof source === 'string' || source === undefined ? source : source.headers.get('cookie');
  const token = readCookie(header, SESSION_COOKIE);
  if (!token) return null;
  return prisma().user.findUnique({ where: { token } });
}

export function canRun(user: User | null): boolean {
  return user?.role === 'analyst';
}
