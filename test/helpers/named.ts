/**
 * A real BIND 9 `named` for wide-area tests, run in the foreground (-g) inside a test namespace
 * (never on the machine's interfaces) with a config and zone in a temp dir. The zone statement and
 * zone file are the ones the README's "More than one subnet" shows: updates are accepted only when
 * signed with the one key, and only for names under _cache._tcp.<zone> (PTR, SRV, TXT) and host
 * addresses (A, AAAA).
 */
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { ResultPromise } from 'execa';
import type { LanHost } from './netns.js';

export const NAMED = '/usr/sbin/named';

/** The key statement as `tsig-keygen passim` writes it. */
export function keyStatement(name: string, secretB64: string): string {
  return `key "${name}" {\n\talgorithm hmac-sha256;\n\tsecret "${secretB64}";\n};\n`;
}

/** The zone statement of the README (only `file` differs). */
export function zoneStatement(zone: string, keyName: string, file: string): string {
  return `zone "${zone}" {
	type primary;
	file "${file}";
	update-policy {
		grant ${keyName} subdomain _cache._tcp.${zone}. PTR SRV TXT;
		grant ${keyName} wildcard *.${zone}. A AAAA;
	};
};
`;
}

/** The zone file of the README: short TTLs, and a 5 s negative-cache TTL (the SOA's last field). */
export function zoneFile(zone: string): string {
  return `$TTL 60
@	IN SOA	ns1.example.net. hostmaster.example.net. ( 1 3600 600 86400 5 )
@	IN NS	ns1.example.net.
`;
}

export interface Named {
  dir: string;
  address: string;
  port: number;
  proc: ResultPromise;
  log(): string;
  stop(): Promise<void>;
}

export async function startNamed(host: LanHost, opts: { zone: string; address: string; port?: number; keyName: string; secret: string }): Promise<Named> {
  const dir = await mkdtemp(join(tmpdir(), 'passim-named-'));
  const port = opts.port ?? 53;
  const zf = join(dir, `${opts.zone}.zone`);
  await writeFile(zf, zoneFile(opts.zone));
  await writeFile(join(dir, 'named.conf'), `options {
	directory "${dir}";
	pid-file none;
	session-keyfile "${dir}/session.key";
	listen-on port ${port} { ${opts.address}; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	notify no;
};
${keyStatement(opts.keyName, opts.secret)}
${zoneStatement(opts.zone, opts.keyName, zf)}`);
  const proc = host.spawn(NAMED, ['-g', '-4', '-n', '1', '-c', join(dir, 'named.conf')], { buffer: false, stdin: 'ignore', reject: false });
  let text = '';
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`named did not start:\n${text}`)), 20_000);
    createInterface({ input: proc.stderr! }).on('line', (l) => {
      text += l + '\n';
      if (/\brunning$/.test(l)) { clearTimeout(t); resolve(); }
    });
    void proc.then(() => { clearTimeout(t); reject(new Error(`named exited:\n${text}`)); });
  });
  return {
    dir, address: opts.address, port, proc,
    log: () => text,
    async stop() {
      if (proc.exitCode === null || proc.exitCode === undefined) proc.kill('SIGTERM');
      await proc.catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** `dig +short TYPE NAME @server` from inside a namespace: the answer lines, sorted. */
export async function dig(host: LanHost, server: { address: string; port: number }, type: string, name: string): Promise<string[]> {
  const r = await host.exec('dig', ['+short', '+time=2', '+tries=1', '-p', String(server.port), `@${server.address}`, type, name]);
  if (r.exitCode !== 0) throw new Error(`dig ${type} ${name}: ${r.stderr || r.stdout}`);
  return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean).sort();
}
