/**
 * The completions and the man page keep up with the CLI: every command and every flag that
 * `passim <cmd> --help` shows is in each completion file and in man/passim.1, and the man pages
 * render without a groff warning.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { buildOnce, passim, ROOT } from './helpers.js';
import { requires } from '../helpers/requires.js';

interface CommandHelp {
  name: string;
  aliases: string[];
  /** long flags without the dashes, and short flags (one letter) */
  long: Array<{ name: string; boolean: boolean }>;
  short: string[];
}

const read = (p: string) => readFile(join(ROOT, p), 'utf8');

/** Commands (with aliases) from `passim --help`. */
function parseCommands(help: string): Array<{ name: string; aliases: string[] }> {
  const section = help.split(/^Commands:$/m)[1]!.split(/^Options:$/m)[0]!;
  const out: Array<{ name: string; aliases: string[] }> = [];
  const blocks = section.split(/^ {2}passim /m).slice(1);
  for (const b of blocks) {
    const name = b.split(/\s/)[0]!;
    const aliases = /\[aliases: ([^\]]+)\]/.exec(b.replace(/\s+/g, ' '))?.[1]?.split(/,\s*/) ?? [];
    out.push({ name, aliases });
  }
  return out;
}

/** Flags from the Options section of `passim CMD --help`. */
function parseFlags(help: string): Pick<CommandHelp, 'long' | 'short'> {
  const section = help.split(/^Options:$/m)[1]!.split(/^Examples:$/m)[0]!;
  const long: CommandHelp['long'] = [];
  const short: string[] = [];
  for (const line of section.split('\n')) {
    const m = /^\s+(?:-([A-Za-z]), )?--([a-z0-9][a-z0-9-]*)\s/.exec(line + ' ');
    if (!m) continue;
    if (m[1]) short.push(m[1]);
    long.push({ name: m[2]!, boolean: /\[boolean\]/.test(line) || /\[boolean\]/.test(section.split(line)[1]?.split('\n')[1] ?? '') });
  }
  return { long, short };
}

let commands: CommandHelp[] = [];

before(async () => {
  await buildOnce();
  const top = await passim(['--help']);
  assert.equal(top.exitCode, 0, top.stderr);
  for (const c of parseCommands(top.stdout)) {
    const h = await passim([c.name, '--help']);
    assert.equal(h.exitCode, 0, `${c.name} --help: ${h.stderr}`);
    commands.push({ ...c, ...parseFlags(h.stdout) });
  }
});

test('the help lists the commands of SPEC §2, each with flags', () => {
  const names = commands.map((c) => c.name).sort();
  for (const want of ['dump', 'publish', 'unpublish', 'verify']) assert.ok(names.includes(want), `${want} in ${names}`);
  assert.ok(commands.find((c) => c.name === 'dump')!.aliases.includes('status'));
  for (const c of commands) assert.ok(c.long.some((f) => f.name === 'help'), `${c.name} has --help`);
  assert.ok(commands.find((c) => c.name === 'publish')!.long.some((f) => f.name === 'next-reboot'));
});

/** How each file spells a command and a flag. */
const spell = {
  'completions/passim.bash': {
    command: (n: string) => new RegExp(`\\b${n}\\b`),
    long: (f: string) => new RegExp(`(^|[\\s"'|(])--${f}(?![\\w-])`, 'm'),
    short: (s: string) => new RegExp(`(^|[\\s"'|])-${s}(?![\\w-])`, 'm'),
  },
  'completions/_passim': {
    command: (n: string) => new RegExp(`'${n}:`),
    long: (f: string) => new RegExp(`[\\s'{,*]--${f}(?![\\w-])`),
    short: (s: string) => new RegExp(`[\\s'{,*]-${s}(?![\\w-])`),
  },
  'completions/passim.fish': {
    command: (n: string) => new RegExp(`-a ${n}\\b`),
    long: (f: string) => new RegExp(`-l ${f}(?![\\w-])`),
    short: (s: string) => new RegExp(`-s ${s}(?![\\w-])`),
  },
  'man/passim.1': {
    command: (n: string) => new RegExp(`passim ${n}\\b`),
    long: (f: string) => new RegExp(`--${f}(?![\\w-])`),
    short: (s: string) => new RegExp(`(^|[\\s"])-${s}(?![\\w-])`, 'm'),
  },
} as const;

for (const [file, how] of Object.entries(spell)) {
  test(`${file} has every command and every flag of --help`, async () => {
    let text = await read(file);
    // roff escapes the hyphens and uses font escapes: \-\-max\-age, \fIFILE\fP
    if (file.startsWith('man/')) text = text.replace(/\\-/g, '-').replace(/\\f[BIRP]/g, '').replace(/^\.[A-Z]{1,2} /gm, ' ');
    const missing: string[] = [];
    for (const c of commands) {
      for (const n of [c.name, ...c.aliases]) if (!how.command(n).test(text)) missing.push(`command ${n}`);
      for (const f of c.long) {
        // a boolean that defaults on (--peers) is written as its negation (--no-peers) where it is offered
        const ok = how.long(f.name).test(text) || (f.boolean && how.long(`no-${f.name}`).test(text));
        if (!ok) missing.push(`${c.name} --${f.name}`);
      }
      for (const s of c.short) if (!how.short(s).test(text)) missing.push(`${c.name} -${s}`);
    }
    assert.deepEqual(missing, [], `${file} lacks: ${missing.join(', ')}`);
  });
}

for (const [shell, file] of [['bash', 'completions/passim.bash'], ['zsh', 'completions/_passim'], ['fish', 'completions/passim.fish']] as const) {
  test(`the ${shell} completion file parses`, { skip: requires(shell) }, async () => {
    const r = await execa(shell, ['-n', file], { cwd: ROOT, reject: false });
    assert.equal(r.exitCode, 0, `${shell}: ${r.stderr}`);
  });
}

test('bash completion offers item hashes for unpublish from `passim dump --json`', { skip: requires('bash') }, async () => {
  // a stand-in `passim` on PATH that answers dump --json like the real one and logs its arguments
  const hash = 'ab'.repeat(32);
  const script = `
    exec 3>&2  # the completion silences passim's stderr: log the arguments on fd 3
    passim() { printf '%s\\n' "$*" >&3; printf '{\\n  "status": {},\\n  "items": [\\n    {\\n      "hash": "${hash}",\\n      "basename": "x"\\n    }\\n  ]\\n}\\n'; }
    source completions/passim.bash
    COMP_WORDS=(passim --socket /s/p.sock unpublish ab); COMP_CWORD=4; _passim; echo "\${COMPREPLY[*]}"
    COMP_WORDS=(passim unpublish ff); COMP_CWORD=2; _passim; echo "[\${COMPREPLY[*]}]"
    COMP_WORDS=(passim pub); COMP_CWORD=1; _passim; echo "\${COMPREPLY[*]}"`;
  const r = await execa('bash', ['-c', script], { cwd: ROOT, reject: false });
  assert.equal(r.exitCode, 0, r.stderr);
  assert.deepEqual(r.stdout.split('\n'), [hash, '[]', 'publish']);
  assert.match(r.stderr, /^dump --json --socket \/s\/p\.sock$/m, 'the --socket of the command line is passed on');
});

test('the man pages render without groff warnings', { skip: requires('groff') }, async () => {
  const r = await execa('groff', ['-man', '-Tutf8', '-ww', '-z', 'man/passim.1', 'man/passim.conf.5'], { cwd: ROOT, reject: false });
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal(r.stderr, '', 'no warnings');
});

test('man/passim.conf.5 has every [daemon] key of lib/core/config.ts with its default', async () => {
  const src = await read('lib/core/config.ts');
  const keys = [...src.matchAll(/^\s+(\w+): \['(\w+)', /gm)].map((m) => [m[1]!, m[2]!] as const);
  assert.ok(keys.length >= 10, `found the keys: ${keys.map((k) => k[0])}`);
  const { DEFAULT_CONFIG } = await import('../../lib/core/config.js');
  const man = (await read('man/passim.conf.5')).replace(/\\-/g, '-');
  for (const [key, field] of keys) {
    const def = (DEFAULT_CONFIG as unknown as Record<string, unknown>)[field];
    const shown = Array.isArray(def) || def === undefined ? '' : String(def);
    const want = shown === '' ? `^\\.BI ${key}=\\s*$` : `^\\.BI ${key}= ${shown.replace('.', '\\.')}\\s*$`;
    assert.match(man, new RegExp(want, 'm'), `${key}=${shown}`);
  }
});
