/**
 * The worker thread of sqliteStore's log writer: its own better-sqlite3 connection to the store's
 * file, inserting encoded log chunks. better-sqlite3 is synchronous: on the main thread every
 * insert stopped the event loop, so the runner stopped reading the child's pipes while SQLite
 * wrote. Here it blocks only this thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { WriterReply, WriterRequest } from './sqlite-log-writer.js';

const { file, busyTimeoutMs } = workerData as { file: string; busyTimeoutMs: number };
const db = new Database(file, { timeout: busyTimeoutMs });
// WAL is the file's (sqliteStore set it); synchronous is per connection.
db.pragma('synchronous = NORMAL');

const overlapping = db.prepare<[string, number, number], { firstSeq: number; lastSeq: number }>(
  'SELECT "firstSeq", "lastSeq" FROM "scriptrunner_log_chunks" WHERE "executionId" = ? AND "lastSeq" >= ? AND "firstSeq" <= ?',
);
const insert = db.prepare(
  'INSERT INTO "scriptrunner_log_chunks" ("executionId", "firstSeq", "lastSeq", "infoCount", "warnCount", "errorCount", "lines") ' +
    'VALUES (@executionId, @firstSeq, @lastSeq, @infoCount, @warnCount, @errorCount, @lines)',
);

/** All rows or none; a row overlapping a stored chunk (a retried batch) returns what is stored instead. */
const write = db.transaction((request: WriterRequest): WriterReply => {
  const stored = request.rows.flatMap((row) => overlapping.all(request.executionId, row.firstSeq, row.lastSeq));
  if (stored.length > 0) return { id: request.id, stored };
  for (const row of request.rows) insert.run(row);
  return { id: request.id };
});

parentPort!.on('message', (request: WriterRequest) => {
  let reply: WriterReply;
  try {
    reply = write(request);
  } catch (error) {
    reply = { id: request.id, error: error instanceof Error ? error.message : String(error) };
  }
  parentPort!.postMessage(reply);
});
