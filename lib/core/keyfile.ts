/**
 * A GLib-style key file reader ("[group]" then "Key=value" lines, "#" comments) that remembers the
 * line of every key, so a bad value can be reported as file:line. Written here rather than taken
 * from `ini` because that package keeps no line numbers and parses values differently from GLib
 * (quotes, inline ";" comments), and upstream's files are GLib key files.
 */
import { ConfigError } from './errors.js';

export interface KeyEntry {
  value: string;
  line: number;
}

export type KeyFile = Map<string, Map<string, KeyEntry>>;

/** A name or value cut short for an error message (a hostile file can hold megabyte-long lines). */
function short(s: string): string {
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}

/** Undoes GLib's escapes: \s \n \t \r \\ ; any other backslash sequence is an error. */
function unescape(raw: string, file: string, line: number, key: string): string {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c !== '\\') { out += c; continue; }
    const n = raw[++i];
    switch (n) {
      case 's': out += ' '; break;
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case '\\': out += '\\'; break;
      case ';': out += '\\;'; break;
      default: throw new ConfigError(`key "${short(key)}": invalid escape "\\${n ?? ''}"`, file, line, key);
    }
  }
  return out;
}

export function parseKeyFile(text: string, file: string): KeyFile {
  const groups: KeyFile = new Map();
  let current: Map<string, KeyEntry> | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i].replace(/\r$/, '');
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    if (trimmed.startsWith('[')) {
      const m = /^\[([^\[\]\u0000-\u001f]+)\]$/.exec(trimmed);
      if (!m) throw new ConfigError(`invalid group header: ${JSON.stringify(trimmed.slice(0, 80))}`, file, lineNo);
      const name = m[1];
      if (groups.has(name)) throw new ConfigError(`duplicate group [${short(name)}]`, file, lineNo);
      current = new Map();
      groups.set(name, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) throw new ConfigError(`expected "Key=value" or "[group]", got ${JSON.stringify(trimmed.slice(0, 80))}`, file, lineNo);
    const key = line.slice(0, eq).trim();
    if (!/^[A-Za-z0-9-]+(\[[^\]]+\])?$/.test(key)) throw new ConfigError(`invalid key name ${JSON.stringify(key.slice(0, 80))}`, file, lineNo);
    if (!current) throw new ConfigError(`key "${short(key)}" is outside any [group]`, file, lineNo, key);
    if (current.has(key)) throw new ConfigError(`duplicate key "${short(key)}"`, file, lineNo, key);
    const value = unescape(line.slice(eq + 1).trimStart(), file, lineNo, key);
    current.set(key, { value, line: lineNo });
  }
  return groups;
}
