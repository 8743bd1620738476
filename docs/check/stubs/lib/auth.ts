// The app's own auth, as the Next.js snippets use it.
export async function auth(request: Request): Promise<{ role: 'analyst' | 'viewer' } | null> {
  return request.headers.get('cookie') ? { role: 'analyst' } : null;
}
