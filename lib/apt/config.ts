/**
 * apt's configuration as the method receives it in `601 Configuration` (one `Config-Item:
 * Key=Value` per setting, both sides %-quoted by apt's QuoteString), and the lookups apt's http
 * method makes in it: `Acquire::<scheme>::<key>` with a per-host `Acquire::<scheme>::<key>::<host>`
 * first, https falling back to http, keys without regard to case.
 */

/** apt's DeQuoteString: `%XX` → that byte; the bytes are UTF-8. */
export function dequote(s: string): string {
  if (!s.includes('%')) return s;
  const bytes: number[] = [];
  const raw = Buffer.from(s, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === 0x25 && i + 2 < raw.length && isHex(raw[i + 1]) && isHex(raw[i + 2])) {
      bytes.push(parseInt(String.fromCharCode(raw[i + 1]!, raw[i + 2]!), 16));
      i += 2;
    } else bytes.push(c);
  }
  return Buffer.from(bytes).toString('utf8');
}

function isHex(c: number | undefined): boolean {
  return c !== undefined && ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66));
}

/** apt's StringToBool. */
export function aptBool(value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback;
  const v = value.trim().toLowerCase();
  if (['1', 'yes', 'true', 'with', 'on', 'enable'].includes(v)) return true;
  if (['0', 'no', 'false', 'without', 'off', 'disable'].includes(v)) return false;
  return fallback;
}

export class AptConfig {
  readonly #items = new Map<string, string>();

  /** Adds the `Config-Item` values of a 601 message (`Key=Value`; a later item wins). */
  addItems(items: Iterable<string>): void {
    for (const item of items) {
      const eq = item.indexOf('=');
      if (eq <= 0) continue;
      this.set(dequote(item.slice(0, eq)), dequote(item.slice(eq + 1)));
    }
  }

  set(key: string, value: string): void {
    this.#items.set(key.toLowerCase(), value);
  }

  find(key: string): string | undefined {
    const v = this.#items.get(key.toLowerCase());
    return v === undefined || v === '' ? undefined : v;
  }

  /**
   * `Acquire::<name>::<key>` for the URI's scheme as apt's http method looks it up: the host-specific
   * names first (`Acquire::https::<host>::<key>`, `Acquire::http::<host>::<key>`), then
   * `Acquire::https::<key>`, `Acquire::http::<key>`.
   */
  method(scheme: string, key: string, host?: string): string | undefined {
    const names = scheme === 'http' ? ['http'] : [scheme, 'http'];
    const order = host ? [...names.map((n) => `${n}::${host}`), ...names] : names;
    for (const n of order) {
      const v = this.find(`Acquire::${n}::${key}`);
      if (v !== undefined) return v;
    }
    return undefined;
  }

  methodBool(scheme: string, key: string, host: string | undefined, fallback: boolean): boolean {
    return aptBool(this.method(scheme, key, host), fallback);
  }

  methodInt(scheme: string, key: string, host: string | undefined, fallback: number): number {
    const v = this.method(scheme, key, host);
    const n = v === undefined ? NaN : parseInt(v, 10);
    return Number.isFinite(n) ? n : fallback;
  }

  /**
   * The proxy for a request, as apt's http method picks it: `Acquire::<scheme>::Proxy::<host>`
   * (`DIRECT` = none), else `Acquire::<scheme>::Proxy`, else env `http_proxy` / `https_proxy`;
   * `no_proxy` (a comma list of domain suffixes) turns it off. undefined = connect directly.
   */
  proxyFor(url: URL, env: NodeJS.ProcessEnv = process.env): string | undefined {
    const scheme = url.protocol.replace(/:$/, '');
    const host = url.hostname;
    let proxy: string | undefined;
    const specific = this.method(scheme, `Proxy::${host}`);
    if (specific !== undefined) proxy = specific === 'DIRECT' ? undefined : specific;
    else {
      proxy = this.method(scheme, 'Proxy');
      if (proxy === undefined) proxy = (scheme === 'https' ? env.https_proxy : undefined) ?? env.http_proxy ?? undefined;
    }
    if (proxy && env.no_proxy && inDomainList(host, env.no_proxy)) proxy = undefined;
    return proxy || undefined;
  }
}

/** apt's CheckDomainList: host equals or ends with one of the comma-separated domains. */
function inDomainList(host: string, list: string): boolean {
  return list.split(',').map((d) => d.trim().toLowerCase()).filter(Boolean).some((d) => {
    const h = host.toLowerCase();
    return h === d.replace(/^\./, '') || h.endsWith(d.startsWith('.') ? d : `.${d}`);
  });
}
