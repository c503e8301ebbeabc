/**
 * Makes the self-signed certificate in a worker thread (started by tls.ts on first start): the
 * x509 library and its metadata polyfill load there and are gone with the thread, instead of
 * staying in the daemon's memory for its whole life.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { generateCertificate } from './tls.js';

const { host, now } = workerData as { host: string; now: number };
parentPort?.postMessage(await generateCertificate(host, new Date(now)));
