// Parsing `WWW-Authenticate` (RFC 9110 challenges), apart from auth.ts so the grammar can be tested alone.
/** One challenge from a `WWW-Authenticate` header, e.g. `Bearer realm="…",service="…",scope="…"`. */
export interface Challenge {
  scheme: string; // lower-cased: "bearer", "basic"
  params: Record<string, string>;
}

/**
 * Parses a `WWW-Authenticate` value (RFC 7235): several challenges may share one header, parameters may
 * be quoted strings with backslash escapes and commas inside.
 */
export function parseWwwAuthenticate(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const values = Array.isArray(header) ? header : [header];
  const out: Challenge[] = [];
  for (const value of values) {
    let i = 0;
    const n = value.length;
    let current: Challenge | undefined;
    const skipWs = () => {
      while (i < n && (value[i] === " " || value[i] === "\t" || value[i] === ",")) i++;
    };
    while (i < n) {
      skipWs();
      const start = i;
      while (i < n && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(value[i]!)) i++;
      const token = value.slice(start, i);
      if (!token) {
        i++;
        continue;
      }
      while (i < n && (value[i] === " " || value[i] === "\t")) i++;
      if (value[i] === "=") {
        // auth-param of the current challenge
        i++;
        while (i < n && (value[i] === " " || value[i] === "\t")) i++;
        let v = "";
        if (value[i] === '"') {
          i++;
          while (i < n && value[i] !== '"') {
            if (value[i] === "\\" && i + 1 < n) i++;
            v += value[i];
            i++;
          }
          i++;
        } else {
          const s = i;
          while (i < n && value[i] !== ",") i++;
          v = value.slice(s, i).trim();
        }
        if (current) current.params[token.toLowerCase()] = v;
      } else {
        current = { scheme: token.toLowerCase(), params: {} };
        out.push(current);
      }
    }
  }
  return out;
}
