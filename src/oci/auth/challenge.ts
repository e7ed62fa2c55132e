/** One parsed `WWW-Authenticate` challenge. Scheme and parameter names are lower-cased. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

const PARAM = /([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;

/** Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`; undefined when unreadable. */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*([A-Za-z][A-Za-z0-9_-]*)(?:\s+(.*))?$/s.exec(header);
  if (!m?.[1]) return undefined;
  const params: Record<string, string> = {};
  for (const p of (m[2] ?? '').matchAll(PARAM)) {
    params[(p[1] ?? '').toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
  }
  return { scheme: m[1].toLowerCase(), params };
}

/** Of the challenges a response carries, the one we use: Bearer first, then Basic. */
export function pickChallenge(header: string | string[] | undefined): Challenge | undefined {
  const all = (Array.isArray(header) ? header : header === undefined ? [] : [header])
    .map(parseChallenge)
    .filter((c): c is Challenge => c !== undefined);
  return all.find((c) => c.scheme === 'bearer') ?? all.find((c) => c.scheme === 'basic');
}
