// A load generator in its own process (so its work does not share the server's event loop).
// Modes:
//   burst <url> <sockets> <subscriptionsEach> <knownIdsCsv>
//     connects every socket, sends all subscriptions at once, prints "sent", and when every ack
//     arrived, a JSON line with the count of each ack code.
//   readers <url> <sockets> <executionId> <pingUrl>
//     each socket subscribes from seq 0 and reads to execution:finished; one GET to pingUrl right
//     after the subscriptions were sent; prints when the ping was answered relative to the readers.
import { io } from 'socket.io-client';

const [mode, url, count, ...rest] = process.argv.slice(2);
const sockets = [];
for (let i = 0; i < Number(count); i++) {
  const socket = io(url, { transports: ['websocket'], forceNew: true, reconnection: false });
  sockets.push(socket);
}
await Promise.all(sockets.map((s) => new Promise((resolve, reject) => { s.once('connect', resolve); s.once('connect_error', reject); })));
const order = [];
const ping = (pingUrl) => fetch(pingUrl).then((r) => r.text()).then(() => order.push('ping'));

if (mode === 'burst') {
  const [each, knownCsv, pingUrl] = rest;
  const known = knownCsv ? knownCsv.split(',') : [];
  const codes = {};
  const acks = [];
  for (const [i, socket] of sockets.entries()) {
    for (let j = 0; j < Number(each); j++) {
      const executionId = j < known.length ? known[j] : `made-up-${i}-${j}`;
      acks.push(socket.timeout(60_000).emitWithAck('execution:subscribe', { executionId, afterSeq: 0 }).then(
        (ack) => { const code = ack.ok ? 'ok' : ack.error.code; codes[code] = (codes[code] ?? 0) + 1; },
        () => { codes.timeout = (codes.timeout ?? 0) + 1; },
      ));
    }
  }
  // The other side pings the server now (from its own process: this one is busy with the acks).
  console.log('sent');
  await Promise.all(acks);
  console.log(JSON.stringify({ codes }));
} else {
  const [executionId, pingUrl] = rest;
  const ends = sockets.map((socket) => new Promise((resolve) => {
    let next = 1;
    let bad = 0;
    socket.on('execution:log', (batch) => { for (const line of batch.lines) { if (line.seq !== next) bad++; next = line.seq + 1; } });
    socket.on('execution:finished', () => { order.push('reader-finished'); resolve({ lines: next - 1, bad }); });
    socket.emit('execution:subscribe', { executionId, afterSeq: 0 }, () => undefined);
  }));
  const pinged = ping(pingUrl);
  const results = await Promise.all(ends);
  await pinged;
  console.log(JSON.stringify({ order, results }));
}
for (const socket of sockets) socket.disconnect();
