/**
 * The app's Socket.IO setup (the dashboard's `setupSocket(io)`): its own events on the default
 * namespace, scriptrunner's live logs on `/scriptrunner`, both behind the app's session.
 */
import { attachScriptRunner } from '@scriptrunner/adapter-socketio';
import type { Server } from 'socket.io';
import { currentUser } from './auth.ts';
import { scriptRunner } from './scriptrunner.ts';

export function setupSocket(io: Server): void {
  // The dashboard's own real-time features would live here.
  io.on('connection', (socket) => {
    socket.emit('welcome', { at: new Date().toISOString() });
  });

  const { namespace } = attachScriptRunner(io, scriptRunner(), {
    // Signed-in users follow logs and lifecycle events; cross-site handshakes are refused by the adapter.
    authorize: (socket) => socket.data.user != null,
  });
  // Authenticate once per connection, from the same cookie the pages and routes use.
  namespace.use((socket, next) => {
    currentUser(socket.handshake.headers.cookie).then(
      (user) => {
        if (!user) return next(Object.assign(new Error('sign in first'), { data: { code: 'unauthenticated' } }));
        socket.data.user = user;
        next();
      },
      (error: unknown) => next(error instanceof Error ? error : new Error(String(error))),
    );
  });
}
