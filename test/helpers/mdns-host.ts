/**
 * A scriptable mDNS "host" for multi-host tests: run inside a namespace with
 * `ip netns exec NS node --import tsx test/helpers/mdns-host.ts`, drive it with JSON lines on
 * stdin, read JSON lines on stdout (see mdns-host-client.ts).
 *
 * Requests: {id, cmd, ...}; replies: {id, ok: true, result} or {id, ok: false, error}.
 * Unsolicited events: {event: 'packet' | 'unicast', hex, from, port, size, t}.
 *
 *   start {port, hashes?, gen?: {count, prefix}, instanceName?, hostName?, interfaces?, maxAnnouncedSubtypes?, ipv6?, hold?}
 *                       hold: probing starts but the names are not claimed before `release` (announceAfter)
 *   release {}          → opens a held start's gate; answers once the names are claimed
 *   add {hash} · remove {hash} · set {hashes?, gen?} · stop
 *   browse {hash, timeoutMs?, exclude?, interfaces?, ipv6?}   → {peers: [{...peer, ms}], totalMs}
 *   capture {}          → listens on 0.0.0.0:5353 (eth0 group membership) and reports every datagram
 *   raw-open {}         → an ephemeral-port socket whose unicast replies are reported
 *   raw-send {hex, address?, port?, via?: 'raw' | 'capture'}
 *   flood {hex, count, durationMs, via?}  → sends hex `count` times spread evenly over durationMs → {sent, ms}
 *   auto-reply {match, hexes, unicast?}   → on every query received by `capture` that asks about `match`,
 *                       sends each hex (to the querier's address+port when unicast, else to the group)
 *   auto-reply-stop {}
 *   exit
 */
import dgram from 'node:dgram';
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import dnsPacket from 'dns-packet';
import { Responder } from '../../lib/discovery/responder.js';
import { browse } from '../../lib/discovery/browser.js';
import { listLinks } from '../../lib/discovery/interfaces.js';

export function genHashes(count: number, prefix: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(createHash('sha256').update(`${prefix}-${i}`).digest('hex'));
  return out;
}

type Req = Record<string, unknown> & { id: number; cmd: string };

let responder: Responder | undefined;
/** a start with `hold`: its gate and the start in progress */
let held: { open: () => void; starting: Promise<void>; t: number } | undefined;
let capture: dgram.Socket | undefined;
let raw: dgram.Socket | undefined;
let autoReply: ((msg: Buffer, rinfo: dgram.RemoteInfo) => void) | undefined;
const t0 = Date.now();

function out(obj: unknown): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function ifaceAddress(): string {
  const l = listLinks({})[0];
  if (!l) throw new Error('no interface');
  return l.address;
}

function report(kind: string) {
  return (buf: Buffer, rinfo: dgram.RemoteInfo) =>
    out({ event: kind, hex: buf.toString('hex'), from: rinfo.address, port: rinfo.port, size: buf.length, t: Date.now() - t0 });
}

function hashesOf(req: Req): string[] {
  if (Array.isArray(req.hashes)) return req.hashes as string[];
  const gen = req.gen as { count: number; prefix: string } | undefined;
  return gen ? genHashes(gen.count, gen.prefix) : [];
}

async function handle(req: Req): Promise<unknown> {
  switch (req.cmd) {
    case 'start': {
      responder = new Responder({
        port: Number(req.port ?? 27500),
        instanceName: req.instanceName as string | undefined,
        hostName: req.hostName as string | undefined,
        interfaces: req.interfaces as string[] | undefined,
        maxAnnouncedSubtypes: req.maxAnnouncedSubtypes as number | undefined,
        ipv6: req.ipv6 === true,
      });
      const t = Date.now();
      if (req.hold) {
        let open!: () => void;
        const gate = new Promise<void>((r) => { open = r; });
        responder.setHashes(hashesOf(req)); // in the table while probing, as the daemon's static items
        held = { open, starting: responder.start({ announceAfter: gate }), t };
        held.starting.catch(() => undefined);
        return {};
      }
      await responder.start();
      responder.setHashes(hashesOf(req));
      return { instanceName: responder.instanceName, hostName: responder.hostName, ms: Date.now() - t };
    }
    case 'release': {
      const h = held!;
      held = undefined;
      const t = Date.now();
      h.open();
      await h.starting;
      return { instanceName: responder!.instanceName, hostName: responder!.hostName, ms: Date.now() - t, startMs: Date.now() - h.t };
    }
    case 'add':
      responder!.add(String(req.hash));
      return {};
    case 'remove':
      responder!.remove(String(req.hash));
      return {};
    case 'set':
      responder!.setHashes(hashesOf(req));
      return {};
    case 'stop':
      await responder?.stop();
      return {};
    case 'browse': {
      const t = Date.now();
      const peers = [];
      for await (const p of browse(String(req.hash), {
        timeoutMs: req.timeoutMs as number | undefined,
        excludeInstances: req.exclude as string[] | undefined,
        interfaces: req.interfaces as string[] | undefined,
        ipv6: req.ipv6 === true,
      })) peers.push({ ...p, ms: Date.now() - t });
      return { peers, totalMs: Date.now() - t };
    }
    case 'capture': {
      if (capture) return {};
      const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.bind(5353, '0.0.0.0', () => resolve());
      });
      s.addMembership('224.0.0.251', ifaceAddress());
      s.setMulticastInterface(ifaceAddress());
      s.setMulticastTTL(255);
      s.on('message', report('packet'));
      capture = s;
      return {};
    }
    case 'raw-open': {
      if (raw) return { port: raw.address().port };
      const s = dgram.createSocket({ type: 'udp4' });
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.bind(0, '0.0.0.0', () => resolve());
      });
      s.setMulticastInterface(ifaceAddress());
      s.setMulticastTTL(255);
      s.on('message', report('unicast'));
      raw = s;
      return { port: s.address().port };
    }
    case 'raw-send': {
      const sock = req.via === 'capture' ? capture : raw;
      if (!sock) throw new Error(`socket ${String(req.via ?? 'raw')} not open`);
      const buf = Buffer.from(String(req.hex), 'hex');
      await new Promise<void>((resolve, reject) =>
        sock.send(buf, Number(req.port ?? 5353), String(req.address ?? '224.0.0.251'), (err) => (err ? reject(err) : resolve())));
      return {};
    }
    case 'flood': {
      const sock = req.via === 'raw' ? raw : capture;
      if (!sock) throw new Error(`socket ${String(req.via ?? 'capture')} not open`);
      const buf = Buffer.from(String(req.hex), 'hex');
      const count = Number(req.count);
      const duration = Number(req.durationMs ?? 1000);
      const address = String(req.address ?? '224.0.0.251');
      const port = Number(req.port ?? 5353);
      const t = Date.now();
      let sent = 0;
      await new Promise<void>((resolve) => {
        const step = () => {
          // send what is due by now, then yield to the event loop
          const due = Math.min(count, Math.ceil(((Date.now() - t + 1) / duration) * count));
          while (sent < due) {
            sock.send(buf, port, address);
            sent++;
          }
          if (sent >= count) resolve();
          else setTimeout(step, 2);
        };
        step();
      });
      return { sent, ms: Date.now() - t };
    }
    case 'auto-reply': {
      if (!capture) throw new Error('capture not open');
      const match = String(req.match).toLowerCase();
      const bufs = (req.hexes as string[]).map((h) => Buffer.from(h, 'hex'));
      const unicast = req.unicast === true;
      if (autoReply) capture.off('message', autoReply);
      autoReply = (msg: Buffer, rinfo: dgram.RemoteInfo) => {
        let asks = false;
        try {
          const p = dnsPacket.decode(msg);
          asks = p.type === 'query' && (p.questions ?? []).some((q) => q.name.toLowerCase() === match);
        } catch {
          return;
        }
        if (!asks) return;
        for (const b of bufs) capture!.send(b, unicast ? rinfo.port : 5353, unicast ? rinfo.address : '224.0.0.251');
        out({ event: 'auto-replied', hex: '', from: rinfo.address, port: rinfo.port, size: bufs.length, t: Date.now() - t0 });
      };
      capture.on('message', autoReply);
      return {};
    }
    case 'auto-reply-stop':
      if (autoReply) capture?.off('message', autoReply);
      autoReply = undefined;
      return {};
    case 'exit':
      await responder?.stop();
      capture?.close();
      raw?.close();
      setImmediate(() => process.exit(0));
      return {};
    default:
      throw new Error(`unknown command ${req.cmd}`);
  }
}

const isMain = process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!);
if (isMain) {
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    let req: Req;
    try {
      req = JSON.parse(line) as Req;
    } catch {
      return;
    }
    handle(req).then(
      (result) => out({ id: req.id, ok: true, result }),
      (err: Error) => out({ id: req.id, ok: false, error: err.message }),
    );
  });
  rl.on('close', () => {
    void (async () => {
      await responder?.stop();
      process.exit(0);
    })();
  });
  out({ event: 'ready', t: 0 });
}
