/**
 * A stand-in CDN (or a lying peer) for namespace tests: an HTTPS server serving a fixed map of
 * paths. Run inside a namespace with `node --import tsx test/helpers/https-file-server.ts CONFIG_JSON`
 * where CONFIG_JSON = { port, cert, key, routes: { "/path": { file?: string, status?: number,
 * location?: string, stall?: { first?: number, afterBytes?: number }, bytesPerSec?: number } } }.
 * Prints "ready <port>", one "hit <path>" line per request and a "connection" line per TLS connection.
 * `stall`: the first `first` (default 1) requests of the route get the headers and `afterBytes`
 * (default 65536) bytes of the body, then nothing more until the client goes away.
 * `bytesPerSec`: the body is sent at about that rate (in 20 pieces a second).
 */
import { createServer } from 'node:https';
import { readFileSync, createReadStream, statSync } from 'node:fs';

interface Route { file?: string; status?: number; location?: string; stall?: { first?: number; afterBytes?: number }; bytesPerSec?: number }
const served = new Map<string, number>();
const cfg = JSON.parse(process.argv[2]!) as { port: number; cert: string; key: string; host?: string; routes: Record<string, Route> };

const server = createServer({ cert: readFileSync(cfg.cert), key: readFileSync(cfg.key) }, (req, res) => {
  const path = (req.url ?? '/').split('?')[0]!;
  process.stdout.write(`hit ${path}\n`);
  const route = cfg.routes[path];
  if (!route) { res.writeHead(404).end('no'); return; }
  if (route.location) { res.writeHead(route.status ?? 302, { Location: route.location }).end(); return; }
  if (!route.file) { res.writeHead(route.status ?? 500).end(); return; }
  const n = (served.get(path) ?? 0) + 1;
  served.set(path, n);
  res.writeHead(route.status ?? 200, { 'Content-Length': statSync(route.file).size, 'Content-Type': 'application/octet-stream' });
  if (route.stall && n <= (route.stall.first ?? 1)) {
    const body = readFileSync(route.file);
    res.write(body.subarray(0, route.stall.afterBytes ?? 65536));
    process.stdout.write(`stalled ${path}\n`);
    return; // never ends: the client times out or goes away
  }
  if (route.bytesPerSec) {
    const body = readFileSync(route.file);
    const piece = Math.max(1, Math.round(route.bytesPerSec / 20));
    let at = 0;
    const t = setInterval(() => {
      if (res.destroyed) return clearInterval(t);
      const end = Math.min(body.length, at + piece);
      res.write(body.subarray(at, end));
      at = end;
      if (at >= body.length) {
        clearInterval(t);
        res.end();
      }
    }, 50);
    res.on('close', () => clearInterval(t));
    return;
  }
  createReadStream(route.file).pipe(res);
});
server.on('secureConnection', () => process.stdout.write('connection\n'));
server.listen(cfg.port, cfg.host ?? '0.0.0.0', () => {
  const a = server.address();
  process.stdout.write(`ready ${typeof a === 'object' && a ? a.port : cfg.port}\n`);
});
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections(); // stalled responses never end by themselves
});
