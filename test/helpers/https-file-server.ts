/**
 * A stand-in CDN (or a lying peer) for namespace tests: an HTTPS server serving a fixed map of
 * paths. Run inside a namespace with `node --import tsx test/helpers/https-file-server.ts CONFIG_JSON`
 * where CONFIG_JSON = { port, cert, key, routes: { "/path": { file?: string, status?: number,
 * location?: string } } }. Prints "ready <port>" and one "hit <path>" line per request.
 */
import { createServer } from 'node:https';
import { readFileSync, createReadStream, statSync } from 'node:fs';

interface Route { file?: string; status?: number; location?: string }
const cfg = JSON.parse(process.argv[2]!) as { port: number; cert: string; key: string; host?: string; routes: Record<string, Route> };

const server = createServer({ cert: readFileSync(cfg.cert), key: readFileSync(cfg.key) }, (req, res) => {
  const path = (req.url ?? '/').split('?')[0]!;
  process.stdout.write(`hit ${path}\n`);
  const route = cfg.routes[path];
  if (!route) { res.writeHead(404).end('no'); return; }
  if (route.location) { res.writeHead(route.status ?? 302, { Location: route.location }).end(); return; }
  if (!route.file) { res.writeHead(route.status ?? 500).end(); return; }
  res.writeHead(route.status ?? 200, { 'Content-Length': statSync(route.file).size, 'Content-Type': 'application/octet-stream' });
  createReadStream(route.file).pipe(res);
});
server.listen(cfg.port, cfg.host ?? '0.0.0.0', () => {
  const a = server.address();
  process.stdout.write(`ready ${typeof a === 'object' && a ? a.port : cfg.port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
