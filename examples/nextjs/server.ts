/**
 * The custom server, as the dashboard has it: one http server for Next (pages and route handlers)
 * and Socket.IO (`setupSocket`). PORT (3000), SCRIPTRUNNER_DATA_DIR (./data: SQLite file, runs).
 */
import { createServer } from 'node:http';
import next from 'next';
import { Server } from 'socket.io';
import { migrate, scriptRunner } from './src/lib/scriptrunner.ts';
import { setupSocket } from './src/lib/socket.ts';

const port = Number(process.env.PORT ?? 3000);
const dev = process.env.NODE_ENV !== 'production';

await migrate();
const runner = scriptRunner();
const app = next({ dev, port });
const handle = app.getRequestHandler();
await app.prepare();

const httpServer = createServer((req, res) => void handle(req, res));
const io = new Server(httpServer);
setupSocket(io);
httpServer.listen(port, () => console.log(`dashboard on http://localhost:${port}`));

async function shutdown(): Promise<void> {
  await runner.close();
  io.close();
  httpServer.closeAllConnections();
  process.exit(0);
}
process.on('SIGINT', () => void shutdown());
process.on('SIGTERM', () => void shutdown());
