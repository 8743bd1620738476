// What the documentation's snippets take from the reader's own program (see scripts/check-docs.mjs).
declare const runner: import('@scriptrunner/core').ScriptRunner;
declare const buffer: Buffer;
declare const executionId: string;
declare const request: Request;
declare const app: import('hono').Hono;
declare const httpServer: import('node:http').Server;
declare const connectionString: string;
declare const store: import('@scriptrunner/core').Store;
declare function send(value: unknown): void;
declare function show(value: unknown): void;
declare function render(lines: unknown): void;
declare function done(execution: unknown): void;
