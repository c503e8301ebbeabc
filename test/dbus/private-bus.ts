/**
 * A private dbus-daemon for tests, configured like a system bus (default deny, the bus daemon's
 * own interface allowed) plus our contrib/org.freedesktop.Passim.conf policy, listening on a
 * socket in a temp dir. The real system bus is never touched.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

export const POLICY = resolve(import.meta.dirname, '../../contrib/org.freedesktop.Passim.conf');

export interface PrivateBus {
  address: string;
  dir: string;
  /** dbus-daemon's stderr so far (config warnings, policy denials) */
  stderr(): string;
  close(): Promise<void>;
}

/**
 * A bus configuration modelled on /usr/share/dbus-1/system.conf (default deny, the bus daemon's own
 * interface allowed), listening on `socket`, with `extra` (policies, includes) added at the end.
 */
export function systemBusConfig(socket: string, extra: string): string {
  return `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
${extra}
</busconfig>
`;
}

function config(socket: string): string {
  return systemBusConfig(socket, `  <include>${POLICY}</include>`);
}

export async function startPrivateBus(): Promise<PrivateBus> {
  const dir = await mkdtemp(join(tmpdir(), 'passim-dbus-'));
  // other users (the `nobody` client) must reach the socket
  await chmod(dir, 0o755);
  const socket = join(dir, 'system_bus_socket');
  const configFile = join(dir, 'bus.conf');
  await writeFile(configFile, config(socket));

  const proc: ChildProcess = spawn('dbus-daemon', [`--config-file=${configFile}`, '--nofork', '--nopidfile', '--print-address=1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (d: string) => { err += d; });

  const address = await new Promise<string>((resolvePromise, reject) => {
    const rl = createInterface({ input: proc.stdout! });
    const fail = (why: string) => reject(new Error(`dbus-daemon did not start: ${why}\n${err}`));
    rl.once('line', (line) => {
      rl.close();
      resolvePromise(line.trim());
    });
    proc.once('exit', (code) => fail(`exited with ${code}`));
    proc.once('error', (e) => fail(e.message));
  });

  return {
    address,
    dir,
    stderr: () => err,
    async close() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
