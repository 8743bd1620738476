// Load generators for the responsiveness row, each in its own process (so their work does not share
// the server's event loop, as clients on other machines would not). Every mode prints one JSON line.
//   probe <url>                       GET url one after another, 50 ms apart, until SIGTERM; latencies in ms
//   text <url> <count>                read logs.txt to the end (or SIGTERM); check lines "line <seq> …" are 1..count
//   sse <url> <count>                 read the SSE stream to `end`; check seqs 1..count
//   socket <origin> <executionId> <count>  subscribe from seq 0 to execution:finished; check seqs
//   burst <origin> <sockets> <each> <knownCsv>  every socket subscribes to `each` executions (known first, then made-up ids)
import { io } from 'socket.io-client';

const [mode, ...args] = process.argv.slice(2);
// The result is the last thing a mode does; the process then exits once it is written (a pipe write
// is asynchronous, and process.exit right after console.log cut long results short).
const out = (value) => process.stdout.write(`${JSON.stringify(value)}\n`, () => process.exit(0));
const started = performance.now();
const elapsed = () => performance.now() - started;

function checker(count) {
  let next = 1;
  let bad = 0;
  return {
    see(seq) {
      if (seq !== next) bad++;
      next = seq + 1;
    },
    // Stopped early (SIGTERM at the end of the reading window): lines 1..n in order is correct.
    result: (complete = true) => ({ lines: next - 1, complete, ok: bad === 0 && (!complete || next - 1 === count), ms: elapsed() }),
  };
}

/** Reader modes: SIGTERM ends the read early with what arrived so far. */
function stopEarly(check) {
  process.on('SIGTERM', () => {
    out(check.result(false));
  });
}

if (mode === 'probe') {
  const latencies = [];
  /** Wall-clock start of each request, to place a slow one in another process's phases. */
  const at = [];
  let stop = false;
  process.on('SIGTERM', () => (stop = true));
  while (!stop) {
    at.push(Date.now());
    const t = performance.now();
    const res = await fetch(args[0]);
    await res.arrayBuffer();
    latencies.push(performance.now() - t);
    await new Promise((r) => setTimeout(r, 50));
  }
  out({ latencies, at });
} else if (mode === 'text') {
  const check = checker(Number(args[1]));
  stopEarly(check);
  const res = await fetch(args[0]);
  const decoder = new TextDecoder();
  let rest = '';
  for await (const chunk of res.body) {
    const text = rest + decoder.decode(chunk, { stream: true });
    const rows = text.split('\n');
    rest = rows.pop();
    for (const row of rows) check.see(Number(row.slice(5, row.indexOf(' ', 5))));
  }
  out(check.result());
} else if (mode === 'sse') {
  const check = checker(Number(args[1]));
  stopEarly(check);
  const res = await fetch(args[0]);
  const decoder = new TextDecoder();
  let buffer = '';
  outer: for await (const chunk of res.body) {
    buffer += decoder.decode(chunk, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (block.includes('event: end')) break outer;
      const data = block.split('\n').find((l) => l.startsWith('data: '));
      if (block.includes('event: log') && data) for (const line of JSON.parse(data.slice(6))) check.see(line.seq);
    }
  }
  out(check.result());
} else if (mode === 'socket') {
  const [origin, executionId, count] = args;
  const check = checker(Number(count));
  stopEarly(check);
  const socket = io(`${origin}/scriptrunner`, { transports: ['websocket'] });
  await new Promise((resolve) => {
    socket.on('execution:log', (batch) => {
      for (const line of batch.lines) check.see(line.seq);
    });
    socket.on('execution:finished', resolve);
    socket.emit('execution:subscribe', { executionId, afterSeq: 0 }, () => undefined);
  });
  socket.disconnect();
  out(check.result());
} else if (mode === 'burst') {
  const [origin, count, each, knownCsv] = args;
  const known = knownCsv.split(',');
  const wallStart = Date.now();
  const sockets = Array.from({ length: Number(count) }, () => io(`${origin}/scriptrunner`, { transports: ['websocket'], forceNew: true, reconnection: false }));
  await Promise.all(sockets.map((s) => new Promise((resolve, reject) => { s.once('connect', resolve); s.once('connect_error', reject); })));
  const connectedAt = elapsed();
  const wallConnected = Date.now();
  const codes = {};
  const acks = [];
  for (const [i, socket] of sockets.entries()) {
    for (let j = 0; j < Number(each); j++) {
      const executionId = j < known.length ? known[j] : `made-up-${i}-${j}`;
      const t = performance.now();
      acks.push(
        socket.timeout(60_000).emitWithAck('execution:subscribe', { executionId, afterSeq: 0 }).then(
          (ack) => {
            const code = ack.ok ? 'ok' : ack.error.code;
            codes[code] = (codes[code] ?? 0) + 1;
            return performance.now() - t;
          },
          () => {
            codes.timeout = (codes.timeout ?? 0) + 1;
            return 60_000;
          },
        ),
      );
    }
  }
  const latencies = await Promise.all(acks);
  const wallAcked = Date.now();
  for (const socket of sockets) socket.disconnect();
  out({ codes, connectMs: connectedAt, burstMs: elapsed() - connectedAt, ackLatencies: latencies, wall: { start: wallStart, connected: wallConnected, acked: wallAcked, end: Date.now() } });
}
