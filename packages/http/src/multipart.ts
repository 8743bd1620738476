/**
 * The upload form (`multipart/form-data`, one file in the field "file", optional `description`,
 * `metadata` and `environment`), parsed by busboy (the parser multer is built on) while it streams in. The file size
 * cap is enforced as the bytes arrive: past it the upload is refused with 413 and nothing more is
 * read or buffered.
 */
import busboy from 'busboy';
import { badRequest, HttpError } from './errors.js';
import { readWithin } from './body.js';

export interface UploadForm {
  file: { filename: string; content: Buffer } | null;
  fields: Map<string, string[]>;
}

const FIELD_BYTES = 128 * 1024;
const tooLarge = (message: string) => new HttpError(413, 'too_large', message, { Connection: 'close' });

export async function readUploadForm(
  contentType: string,
  body: AsyncIterable<Uint8Array> | null,
  options: { maxBytes: number; deadlineMs: number },
): Promise<UploadForm> {
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: { 'content-type': contentType },
      limits: { fileSize: options.maxBytes, files: 1, fields: 10, fieldSize: FIELD_BYTES, parts: 12 },
      // Keep "../x.py" as sent so core rejects it, instead of silently storing "x.py".
      preservePath: true,
      // File names are UTF-8 in browsers' form posts.
      defParamCharset: 'utf8',
    });
  } catch (error) {
    throw badRequest(`the upload is not a valid multipart form: ${(error as Error).message}`);
  }
  const form: UploadForm = { file: null, fields: new Map() };
  let failure: Error | null = null;
  const fail = (error: Error) => {
    failure ??= error;
  };
  const finished = new Promise<void>((resolve) => {
    parser.on('close', resolve);
    parser.on('error', (error: Error) => {
      fail(badRequest(`the upload is not a valid multipart form: ${error.message}`));
      resolve();
    });
  });
  parser.on('file', (name, stream, info) => {
    if (name !== 'file') {
      fail(badRequest('upload the script in the form field "file"'));
      stream.on('error', () => undefined);
      stream.resume();
      return;
    }
    const chunks: Buffer[] = [];
    // Destroying the parser (a refused upload) errors the open file stream; that is expected, not a crash.
    stream.on('error', () => undefined);
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('limit', () => fail(tooLarge('the file is larger than the upload limit')));
    stream.on('end', () => {
      if (failure === null) form.file = { filename: info.filename ?? '', content: Buffer.concat(chunks) };
    });
  });
  parser.on('field', (name, value, info) => {
    if (info.valueTruncated) return fail(tooLarge('a form field is too large'));
    if (info.nameTruncated) return fail(badRequest('a form field name is too long'));
    const values = form.fields.get(name) ?? [];
    values.push(value);
    form.fields.set(name, values);
  });
  parser.on('partsLimit', () => fail(badRequest('too many parts in the form')));
  parser.on('filesLimit', () => fail(badRequest('upload exactly one file, in the field "file"')));
  parser.on('fieldsLimit', () => fail(badRequest('too many form fields')));

  if (body !== null) {
    for await (const chunk of readWithin(body, options.deadlineMs)) {
      // Stop reading at the first problem: a huge upload is cut off, not buffered.
      if (failure !== null) break;
      if (!parser.write(chunk)) {
        await new Promise((resolve) => {
          parser.once('drain', resolve);
          parser.once('close', resolve);
        });
      }
    }
  }
  if (failure !== null) {
    parser.destroy();
    throw failure;
  }
  parser.end();
  await finished;
  if (failure !== null) throw failure;
  return form;
}
