/**
 * Tests that need a system tool say so with one call, for node:test's `skip`:
 *
 *   const skip = requires('curl');                    // false, or "needs curl: apt-get install curl"
 *   test('…', { skip }, async () => { … });
 *   if (requires('zsh')) return t.skip(requires('zsh') as string);
 *
 * `npm test` after `npm ci` needs only Node: every other tool is optional and its absence is one
 * skip line naming the Debian package (the same names as .ci/packages). In CI (CI=true) .ci/run has
 * installed .ci/packages, so a missing tool there throws instead of hiding a test.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Each tool the tests call → the Debian package that provides it. */
const PACKAGE = {
  'apt-cache': 'apt',
  'apt-get': 'apt',
  'avahi-browse': 'avahi-utils',
  'avahi-daemon': 'avahi-daemon',
  'avahi-resolve': 'avahi-utils',
  awk: 'mawk',
  bash: 'bash',
  chromium: 'chromium',
  createrepo_c: 'createrepo-c',
  curl: 'curl',
  'dbus-daemon': 'dbus-daemon',
  dnf: 'dnf',
  'dpkg-deb': 'dpkg',
  'dpkg-scanpackages': 'dpkg-dev',
  dig: 'bind9-dnsutils',
  named: 'bind9',
  fincore: 'util-linux-extra',
  fish: 'fish',
  groff: 'groff-base',
  gzip: 'gzip',
  hostname: 'hostname',
  ip: 'iproute2',
  mount: 'mount',
  openssl: 'openssl',
  python3: 'python3',
  readlink: 'coreutils',
  rpmbuild: 'rpm',
  'python3-gi': 'python3-gi',
  script: 'bsdutils',
  sed: 'sed',
  setpriv: 'util-linux',
  sh: 'dash',
  sha256sum: 'coreutils',
  'systemd-analyze': 'systemd',
  'systemd-sysusers': 'systemd',
  'systemd-tmpfiles': 'systemd',
  unshare: 'util-linux',
  xz: 'xz-utils',
  zsh: 'zsh',
} as const;

export type Tool = keyof typeof PACKAGE;

const found = new Map<Tool, boolean>();

/** Checks that are not "an executable on PATH". */
const SPECIAL: Partial<Record<Tool, () => boolean>> = {
  // the GDBus test client imports gi (GObject introspection) with the system python
  'python3-gi': () => spawnSync('/usr/bin/python3', ['-c', 'from gi.repository import Gio'], { stdio: 'ignore' }).status === 0,
};

function onPath(cmd: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      // not in this dir
    }
  }
  return false;
}

export function have(tool: Tool): boolean {
  let ok = found.get(tool);
  if (ok === undefined) {
    ok = SPECIAL[tool]?.() ?? onPath(tool);
    found.set(tool, ok);
  }
  return ok;
}

/**
 * false when every tool is there; otherwise the one-line reason to skip, naming the missing tools
 * and the packages to install. Throws in CI, where .ci/run installed them all.
 */
export function requires(...tools: Tool[]): false | string {
  const missing = tools.filter((t) => !have(t));
  if (missing.length === 0) return false;
  const packages = [...new Set(missing.map((t) => PACKAGE[t]))];
  const reason = `needs ${missing.join(', ')}: apt-get install ${packages.join(' ')}`;
  if (process.env.CI === 'true') throw new Error(`${reason} (missing in CI: .ci/run installs .ci/packages)`);
  return reason;
}

/** For tests that need root (network namespaces, mounts): false as root, else the reason. */
export function requiresRoot(what: string): false | string {
  if (typeof process.getuid === 'function' && process.getuid() === 0) return false;
  if (process.env.CI === 'true') throw new Error(`${what} needs root, and CI runs as root`);
  return `${what} needs root`;
}
