/**
 * PEP 723 inline script metadata: a `# /// script` … `# ///` comment block whose content is TOML
 * (`dependencies`, `requires-python`, and `[tool.scriptrunner]` with `environment`). Parsed at upload
 * to refuse a malformed block with the line it is on, and again at run time to know what to install.
 * The TOML and the requirement strings are read by maintained parsers (smol-toml, and
 * pip-requirements-js's port of PEP 508's grammar), never by hand.
 */
import { validRange } from '@renovatebot/pep440';
import { parsePipRequirementsLine } from 'pip-requirements-js';
import { parse as parseToml, TomlError } from 'smol-toml';
import { ScriptRunnerError } from '../errors.js';

export interface InlineMetadata {
  /** PEP 508 requirement strings, as written. */
  dependencies: string[];
  /** A PEP 440 version specifier such as `>=3.10`, or null. */
  requiresPython: string | null;
  /** `[tool.scriptrunner] environment = "…"`: the named environment the script asks for. */
  environment: string | null;
  /** 1-based line of `environment`, or null. */
  environmentLine: number | null;
  /** 1-based line of the `# /// script` opener. */
  line: number;
}

/** PEP 723's reference regular expression, line by line: an opener, `#`-prefixed lines, a closer. */
const OPENER = /^# \/\/\/ ([a-zA-Z0-9-]+)$/;
const CLOSER = '# ///';

function invalid(line: number, message: string): ScriptRunnerError {
  return new ScriptRunnerError('validation', `line ${line}: ${message}`, { details: { field: 'content', line } });
}

interface Block {
  type: string;
  /** 1-based line of the opener. */
  line: number;
  /** The TOML, one entry per content line (its `# ` or `#` prefix removed). */
  content: string[];
}

/**
 * Finds the metadata blocks. As in the PEP, a block ends at the last `# ///` before the first line
 * that is not a comment, so a TOML line may itself be `# ///`-free text; an opener without a closer
 * is an error (a script that forgot it would otherwise silently run without its dependencies).
 */
function findBlocks(lines: string[]): Block[] {
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const opener = OPENER.exec(lines[i]!);
    if (!opener) continue;
    let close = -1;
    let j = i + 1;
    for (; j < lines.length; j++) {
      const text = lines[j]!;
      if (text === CLOSER) close = j;
      else if (text !== '#' && !text.startsWith('# ')) break;
    }
    if (close === -1) throw invalid(i + 1, `the "# /// ${opener[1]!}" block has no closing "# ///" line`);
    blocks.push({
      type: opener[1]!,
      line: i + 1,
      content: lines.slice(i + 1, close).map((text) => (text === '#' ? '' : text.slice(2))),
    });
    i = close;
  }
  return blocks;
}

function validSpecifier(specifier: string): boolean {
  try {
    return Boolean(validRange(specifier));
  } catch {
    return false;
  }
}

/** The line (1-based, in the script) of the first content line that mentions `needle`. */
function lineOf(block: Block, needle: string): number {
  const index = block.content.findIndex((text) => text.includes(needle));
  return block.line + 1 + Math.max(0, index);
}

function checkRequirement(block: Block, requirement: unknown, index: number): string {
  if (typeof requirement !== 'string') {
    throw invalid(block.line, `dependencies[${index}] must be a string such as "numpy>=1.26"`);
  }
  const line = lineOf(block, requirement);
  const text = requirement.trim();
  // pip-requirements-js also reads requirements.txt syntax (-r, --hash …): PEP 723 takes PEP 508 only.
  if (text === '' || text.startsWith('-')) throw invalid(line, `"${requirement}" is not a requirement (PEP 508: a name, extras, version and markers)`);
  let parsed;
  try {
    parsed = parsePipRequirementsLine(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw invalid(line, `"${requirement}" is not a valid requirement (PEP 508): ${reason}`);
  }
  if (parsed === null || (parsed.type !== 'ProjectName' && parsed.type !== 'ProjectURL')) {
    throw invalid(line, `"${requirement}" is not a requirement (PEP 508: a name, extras, version and markers)`);
  }
  // pip builds a package named by a URL from source whatever --only-binary says (its code would run
  // at install time, with the network on), and a URL goes around the configured index.
  if (parsed.type === 'ProjectURL') {
    throw invalid(line, `"${requirement}" names a URL: name a package and version the configured index or wheelhouse has (e.g. "numpy>=1.26")`);
  }
  return text;
}

/**
 * The script's inline metadata, or null when it has none. Throws `validation` (details: field
 * `content`, `line`) for a block PEP 723 or its TOML refuses, a second `script` block, a field of
 * the wrong type, or a requirement that is not PEP 508.
 */
export function parseInlineMetadata(source: string): InlineMetadata | null {
  const lines = source.split(/\r?\n/);
  const blocks = findBlocks(lines).filter((b) => b.type === 'script');
  if (blocks.length === 0) return null;
  if (blocks.length > 1) throw invalid(blocks[1]!.line, 'a second "# /// script" block: a script has at most one');
  const block = blocks[0]!;
  let data: Record<string, unknown>;
  try {
    data = parseToml(block.content.join('\n')) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof TomlError) {
      throw invalid(block.line + error.line, `the "# /// script" block is not valid TOML: ${error.message.split('\n')[0]}`);
    }
    throw error;
  }
  const dependencies = data.dependencies ?? [];
  if (!Array.isArray(dependencies)) throw invalid(lineOf(block, 'dependencies'), 'dependencies must be a list of strings');
  const requiresPython = data['requires-python'] ?? null;
  if (requiresPython !== null) {
    const line = lineOf(block, 'requires-python');
    if (typeof requiresPython !== 'string') throw invalid(line, 'requires-python must be a string such as ">=3.10"');
    if (!validSpecifier(requiresPython)) throw invalid(line, `requires-python "${requiresPython}" is not a version specifier (PEP 440), e.g. ">=3.10"`);
  }
  const tool = data.tool as Record<string, unknown> | undefined;
  const own = (tool?.scriptrunner ?? {}) as Record<string, unknown>;
  const environment = own.environment ?? null;
  if (environment !== null && (typeof environment !== 'string' || environment === '')) {
    throw invalid(lineOf(block, 'environment'), '[tool.scriptrunner] environment must be the name of an environment');
  }
  return {
    dependencies: dependencies.map((requirement: unknown, index) => checkRequirement(block, requirement, index)),
    requiresPython: requiresPython as string | null,
    environment: environment as string | null,
    environmentLine: environment === null ? null : lineOf(block, 'environment'),
    line: block.line,
  };
}
