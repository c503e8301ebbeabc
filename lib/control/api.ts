/**
 * The control socket protocol: HTTP/1.1 + JSON over a Unix socket. Shared by the server (daemon)
 * and the client (CLI, fetch) so neither spells a route twice.
 *
 *   GET    /status                   → StatusReply
 *   GET    /items                    → ItemInfo[]
 *   POST   /items?name=&max_age=&share_limit=&next_reboot=1&cmdline=&sha256=
 *          body: the file bytes       → 201 ItemInfo | 409 exists | 413 too large | 422 mismatch
 *   DELETE /items/<sha256>           → ItemInfo | 404
 *   POST   /verify?fix=1             → VerifyReply
 *   POST   /metered?on=1|0           → StatusReply
 * Errors: { error: { code: "PASSIM_…", message } } with the error class's httpStatus.
 */
import type { ItemInfo } from '../store/types.js';

export interface StatusReply {
  version: string;
  /** 'running' | 'disabled-metered' | 'loading' */
  status: string;
  port: number;
  /** mDNS instance name */
  name: string;
  uri: string;
  downloadSaving: number;
  carbonSaving: number;
  items: number;
}

export interface VerifyReply {
  checked: number;
  bad: Array<{ hash: string; basename: string; actual: string; fixed: boolean }>;
}

export interface ErrorReply {
  error: { code: string; message: string };
}

export type { ItemInfo };
