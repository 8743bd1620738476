/**
 * The hand-written SQL migrations must create exactly what prisma/scriptrunner.prisma describes:
 * the schema is read with Prisma's own parser (getDMMF), the database with its catalog, after
 * applyMigrations. Any difference — a missing or extra column, a type, nullability, default,
 * primary key, index or foreign key — is drift and fails.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { getDMMF } from '@prisma/get-dmmf';
import { describe, expect, it } from 'vitest';
import { describePostgres, pgDatabase, sqliteDatabase } from './support/databases.js';

type Provider = 'sqlite' | 'postgresql';

interface Column {
  type: string;
  notNull: boolean;
  hasDefault: boolean;
}
interface Table {
  columns: Map<string, Column>;
  primaryKey: string[];
  /** Column lists of the non-primary-key indexes, e.g. "status,createdAt,id". */
  indexes: string[];
  /** "col->table.col onDelete" per foreign key. */
  foreignKeys: string[];
}
type Catalog = Map<string, Table>;

const SCHEMA = readFileSync(fileURLToPath(new URL('../prisma/scriptrunner.prisma', import.meta.url)), 'utf8');

/** The column type each provider's migrations must use for a Prisma scalar type. */
const COLUMN_TYPES: Record<Provider, Record<string, string>> = {
  sqlite: { String: 'TEXT', Int: 'INTEGER', Boolean: 'BOOLEAN', DateTime: 'DATETIME', Json: 'JSONB', Bytes: 'BLOB' },
  postgresql: { String: 'text', Int: 'integer', Boolean: 'boolean', DateTime: 'timestamp(3)', Json: 'jsonb', Bytes: 'bytea' },
};

function datamodel(provider: Provider) {
  const dmmf = getDMMF({
    datamodel: [
      ['base.prisma', `datasource db {\n  provider = "${provider}"\n}\n`],
      ['scriptrunner.prisma', SCHEMA],
    ],
  });
  if (!('datamodel' in dmmf)) throw new Error(`the schema does not parse: ${JSON.stringify(dmmf)}`);
  return dmmf.datamodel;
}

/** Everything that differs between the Prisma schema and the database, in words. */
function drift(provider: Provider, catalog: Catalog): string[] {
  const model = datamodel(provider);
  const problems: string[] = [];
  const tables = new Set<string>();
  for (const m of model.models) {
    const tableName = m.dbName ?? m.name;
    tables.add(tableName);
    const table = catalog.get(tableName);
    if (!table) {
      problems.push(`table ${tableName} (model ${m.name}) is missing`);
      continue;
    }
    const columnOf = (field: string) => m.fields.find((f) => f.name === field)?.dbName ?? field;
    const scalars = m.fields.filter((f) => f.kind === 'scalar');
    for (const field of scalars) {
      const name = field.dbName ?? field.name;
      const column = table.columns.get(name);
      if (!column) {
        problems.push(`${tableName}.${name} is missing`);
        continue;
      }
      const expected = COLUMN_TYPES[provider][field.type];
      if (column.type !== expected) problems.push(`${tableName}.${name} is ${column.type}, the schema says ${field.type} (${expected})`);
      if (column.notNull !== field.isRequired) {
        problems.push(`${tableName}.${name} is ${column.notNull ? 'NOT NULL' : 'nullable'}, the schema says ${field.isRequired ? 'required' : 'optional'}`);
      }
      if (column.hasDefault !== field.hasDefaultValue) {
        problems.push(`${tableName}.${name} ${column.hasDefault ? 'has' : 'has no'} default, the schema ${field.hasDefaultValue ? 'has' : 'has none'}`);
      }
    }
    for (const name of table.columns.keys()) {
      if (!scalars.some((f) => (f.dbName ?? f.name) === name)) problems.push(`${tableName}.${name} is not in the schema`);
    }
    const pk = m.primaryKey?.fields ?? scalars.filter((f) => f.isId).map((f) => f.name);
    if (pk.map(columnOf).join(',') !== table.primaryKey.join(',')) {
      problems.push(`${tableName} primary key is (${table.primaryKey.join(', ')}), the schema says (${pk.join(', ')})`);
    }
    const expectedIndexes = model.indexes
      .filter((index) => index.model === m.name && index.type !== 'id')
      .map((index) => index.fields.map((f) => columnOf(f.name)).join(','))
      .sort();
    const actualIndexes = [...table.indexes].sort();
    if (expectedIndexes.join(' | ') !== actualIndexes.join(' | ')) {
      problems.push(`${tableName} indexes are [${actualIndexes.join(' | ')}], the schema says [${expectedIndexes.join(' | ')}]`);
    }
    const expectedKeys = m.fields
      .filter((f) => f.kind === 'object' && (f.relationFromFields?.length ?? 0) > 0)
      .map((f) => {
        const target = model.models.find((t) => t.name === f.type)!;
        return `${f.relationFromFields!.map(columnOf).join(',')}->${target.dbName ?? target.name}.${f.relationToFields!.join(',')} ${(f.relationOnDelete ?? 'NoAction').toUpperCase()}`;
      })
      .sort();
    const actualKeys = [...table.foreignKeys].sort();
    if (expectedKeys.join(' | ') !== actualKeys.join(' | ')) {
      problems.push(`${tableName} foreign keys are [${actualKeys.join(' | ')}], the schema says [${expectedKeys.join(' | ')}]`);
    }
  }
  for (const name of catalog.keys()) if (!tables.has(name)) problems.push(`table ${name} is not in the schema`);
  return problems;
}

type Query = (sql: string) => Promise<Array<Record<string, unknown>>>;

async function sqliteCatalog(query: Query): Promise<Catalog> {
  const catalog: Catalog = new Map();
  const tables = await query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'scriptrunner_%'`);
  for (const { name } of tables as Array<{ name: string }>) {
    const info = (await query(`PRAGMA table_info("${name}")`)) as Array<{ name: string; type: string; notnull: number | bigint; dflt_value: unknown; pk: number | bigint }>;
    const columns = new Map<string, Column>();
    for (const c of info) {
      // SQLite makes a single-column TEXT primary key nullable unless declared NOT NULL: read it as declared.
      columns.set(c.name, { type: c.type, notNull: Number(c.notnull) === 1, hasDefault: c.dflt_value !== null });
    }
    const primaryKey = info.filter((c) => Number(c.pk) > 0).sort((a, b) => Number(a.pk) - Number(b.pk)).map((c) => c.name);
    const indexes: string[] = [];
    for (const index of (await query(`PRAGMA index_list("${name}")`)) as Array<{ name: string; origin: string }>) {
      if (index.origin === 'pk') continue;
      const cols = (await query(`PRAGMA index_info("${index.name}")`)) as Array<{ seqno: number | bigint; name: string }>;
      indexes.push(cols.sort((a, b) => Number(a.seqno) - Number(b.seqno)).map((c) => c.name).join(','));
    }
    const keys = (await query(`PRAGMA foreign_key_list("${name}")`)) as Array<{ id: number | bigint; from: string; table: string; to: string; on_delete: string }>;
    const foreignKeys = [...new Set(keys.map((k) => Number(k.id)))].map((id) => {
      const parts = keys.filter((k) => Number(k.id) === id);
      return `${parts.map((p) => p.from).join(',')}->${parts[0]!.table}.${parts.map((p) => p.to).join(',')} ${parts[0]!.on_delete.replace(' ', '')}`;
    });
    catalog.set(name, { columns, primaryKey, indexes, foreignKeys });
  }
  return catalog;
}

async function postgresCatalog(query: Query): Promise<Catalog> {
  const catalog: Catalog = new Map();
  const columns = (await query(`
    SELECT c.relname::text AS "table", a.attname::text AS "column", format_type(a.atttypid, a.atttypmod) AS "type",
           a.attnotnull AS "notNull", (d.adbin IS NOT NULL) AS "hasDefault"
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname LIKE 'scriptrunner_%'
      AND a.attnum > 0 AND NOT a.attisdropped`)) as Array<{ table: string; column: string; type: string; notNull: boolean; hasDefault: boolean }>;
  for (const c of columns) {
    let table = catalog.get(c.table);
    if (!table) {
      table = { columns: new Map(), primaryKey: [], indexes: [], foreignKeys: [] };
      catalog.set(c.table, table);
    }
    const type = c.type.replace('timestamp(3) without time zone', 'timestamp(3)');
    table.columns.set(c.column, { type, notNull: c.notNull, hasDefault: c.hasDefault });
  }
  const indexes = (await query(`
    SELECT t.relname::text AS "table", i.indisprimary AS "primary",
           array_to_string(ARRAY(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.ord), ',') AS "columns"
    FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
    WHERE n.nspname = current_schema() AND t.relname LIKE 'scriptrunner_%'`)) as Array<{ table: string; primary: boolean; columns: string }>;
  for (const index of indexes) {
    const table = catalog.get(index.table)!;
    if (index.primary) table.primaryKey = index.columns.split(',');
    else table.indexes.push(index.columns);
  }
  const keys = (await query(`
    SELECT t.relname::text AS "table", r.relname::text AS "target",
           array_to_string(ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.ord), ',') AS "from",
           array_to_string(ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.ord), ',') AS "to",
           c.confdeltype::text AS "onDelete"
    FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class r ON r.oid = c.confrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
    WHERE c.contype = 'f' AND n.nspname = current_schema() AND t.relname LIKE 'scriptrunner_%'`)) as Array<{
    table: string;
    target: string;
    from: string;
    to: string;
    onDelete: string;
  }>;
  const actions: Record<string, string> = { c: 'CASCADE', a: 'NOACTION', r: 'RESTRICT', n: 'SETNULL', d: 'SETDEFAULT' };
  for (const key of keys) {
    catalog.get(key.table)!.foreignKeys.push(`${key.from}->${key.target}.${key.to} ${actions[key.onDelete] ?? key.onDelete}`);
  }
  return catalog;
}

describe('schema drift: SQLite', () => {
  it('the migrations create exactly the Prisma schema', async () => {
    const db = await sqliteDatabase();
    try {
      const query: Query = (sql) => db.prisma.$queryRawUnsafe(sql);
      const catalog = await sqliteCatalog(query);
      expect(catalog.size).toBe(5);
      expect(drift('sqlite', catalog)).toEqual([]);
    } finally {
      await db.cleanup();
    }
  });

  it('reports drift when the database differs', async () => {
    const db = await sqliteDatabase();
    try {
      await db.prisma.$executeRawUnsafe(`DROP INDEX "scriptrunner_log_chunks_executionId_lastSeq_idx"`);
      await db.prisma.$executeRawUnsafe(`ALTER TABLE "scriptrunner_scripts" ADD COLUMN "extra" TEXT`);
      const problems = drift('sqlite', await sqliteCatalog((sql) => db.prisma.$queryRawUnsafe(sql)));
      expect(problems).toEqual([
        'scriptrunner_scripts.extra is not in the schema',
        'scriptrunner_log_chunks indexes are [], the schema says [executionId,lastSeq]',
      ]);
    } finally {
      await db.cleanup();
    }
  });
});

describePostgres('schema drift: PostgreSQL', (suite) => {
  it('the migrations create exactly the Prisma schema', async () => {
    const db = await pgDatabase(suite.server());
    try {
      const catalog = await postgresCatalog((sql) => db.prisma.$queryRawUnsafe(sql));
      expect(catalog.size).toBe(5);
      expect(drift('postgresql', catalog)).toEqual([]);
    } finally {
      await db.cleanup();
    }
  });

  it('reports drift when the database differs', async () => {
    const db = await pgDatabase(suite.server());
    try {
      await db.prisma.$executeRawUnsafe(`ALTER TABLE "scriptrunner_executions" ALTER COLUMN "signal" SET NOT NULL`);
      await db.prisma.$executeRawUnsafe(`ALTER TABLE "scriptrunner_scripts" ALTER COLUMN "sizeBytes" TYPE BIGINT`);
      const problems = drift('postgresql', await postgresCatalog((sql) => db.prisma.$queryRawUnsafe(sql)));
      expect(problems).toEqual([
        'scriptrunner_scripts.sizeBytes is bigint, the schema says Int (integer)',
        'scriptrunner_executions.signal is NOT NULL, the schema says optional',
      ]);
    } finally {
      await db.cleanup();
    }
  });
});
