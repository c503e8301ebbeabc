/**
 * A plain-HTTP mirror for namespace tests: serves the files under a directory (GET and HEAD, no
 * listings, nothing outside the directory), like a distribution mirror without TLS. Run it with
 * `node --import tsx test/helpers/http-dir-server.ts '{"port":8080,"dir":"/tmp/repo"}'` (or through
 * startHttpMirror in http-mirror.ts). Prints "ready <port>". With "log": FILE, appends the path of
 * every request (as asked, query dropped) to FILE, synchronously, before answering it: once a
 * client has its answer, the log holds the request.
 */
import { createServer } from 'node:http';
import { appendFileSync, createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, normalize, sep } from 'node:path';

const cfg = JSON.parse(process.argv[2]!) as { port: number; dir: string; host?: string; log?: string };
const root = normalize(cfg.dir);

const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0]!;
  if (cfg.log) appendFileSync(cfg.log, `${path}\n`);
  void (async () => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405).end();
    let file: string;
    try {
      file = normalize(join(root, decodeURIComponent(path)));
    } catch {
      return void res.writeHead(400).end();
    }
    if (!file.startsWith(root + sep)) return void res.writeHead(404).end();
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile()) return void res.writeHead(404).end('no');
    res.writeHead(200, { 'Content-Length': st.size, 'Content-Type': 'application/octet-stream', 'Last-Modified': st.mtime.toUTCString() });
    if (req.method === 'HEAD') return void res.end();
    createReadStream(file).pipe(res);
  })();
});
server.listen(cfg.port, cfg.host ?? '0.0.0.0', () => {
  const a = server.address();
  process.stdout.write(`ready ${typeof a === 'object' && a ? a.port : cfg.port}\n`);
});
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
