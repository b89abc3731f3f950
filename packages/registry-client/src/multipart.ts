// Byte-range wire formats: `Content-Range` and `multipart/byteranges` bodies (RFC 9110), parsed here so that
// ranges.ts deals in parts and never in boundaries.

/** One part of a `multipart/byteranges` body: the bytes [start, end] (inclusive) of the blob. */
export interface BytePart {
  start: number;
  end: number;
  data: Buffer;
}

/** Parses `Content-Range: bytes START-END/TOTAL` (TOTAL may be `*`). */
export function parseContentRange(v: string | undefined): { start: number; end: number; total?: number } | undefined {
  if (!v) return undefined;
  const m = /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(v);
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end < start) return undefined;
  return m[3] === "*" ? { start, end } : { start, end, total: Number(m[3]) };
}

/** The boundary parameter of a `multipart/byteranges; boundary=…` content type, or undefined. */
export function byterangesBoundary(contentType: string | undefined): string | undefined {
  if (!contentType || !/^\s*multipart\/byteranges\b/i.test(contentType)) return undefined;
  const m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

/**
 * Splits a `multipart/byteranges` body (RFC 9110 §14.6) into its parts. Each part's length comes from its
 * own `Content-Range`, never from searching for the boundary (the data is binary and may contain it).
 * Returns undefined when the body does not have that shape, so callers fall back instead of guessing.
 */
export function parseByteranges(body: Buffer, boundary: string): BytePart[] | undefined {
  const r = splitByteranges(body, boundary);
  return Array.isArray(r) ? r : undefined;
}

/**
 * parseByteranges, saying why a body is not usable: `"truncated"` when everything in it is right up to where
 * it ends, before its closing delimiter (cut short on the way: worth another request), `"malformed"` when
 * something in it is wrong.
 */
export function splitByteranges(body: Buffer, boundary: string): BytePart[] | "truncated" | "malformed" {
  const delim = Buffer.from(`--${boundary}`);
  // the body ends within `expected`, which it matches as far as it goes
  const endsWithin = (at: number, expected: Buffer) => body.length - at < expected.length && body.subarray(at).equals(expected.subarray(0, body.length - at));
  const parts: BytePart[] = [];
  let pos = body.indexOf(delim);
  if (pos < 0) return endsWithin(0, Buffer.concat([Buffer.from("\r\n"), delim])) || endsWithin(0, delim) ? "truncated" : "malformed";
  for (;;) {
    pos += delim.length;
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) return parts; // closing delimiter "--"
    // transport padding, then CRLF
    while (body[pos] === 0x20 || body[pos] === 0x09) pos++;
    if (pos + 2 > body.length) return endsWithin(pos, Buffer.from("\r\n")) || endsWithin(pos, Buffer.from("--")) ? "truncated" : "malformed";
    if (body[pos] === 0x0d && body[pos + 1] === 0x0a) pos += 2;
    else return "malformed";
    const headerEnd = body.indexOf("\r\n\r\n", pos);
    if (headerEnd < 0) return "truncated";
    const headers = body.subarray(pos, headerEnd).toString("latin1").split("\r\n");
    let range: ReturnType<typeof parseContentRange>;
    for (const h of headers) {
      const colon = h.indexOf(":");
      if (colon > 0 && h.slice(0, colon).trim().toLowerCase() === "content-range") range = parseContentRange(h.slice(colon + 1));
    }
    if (!range) return "malformed";
    const dataStart = headerEnd + 4;
    const dataEnd = dataStart + (range.end - range.start + 1);
    // each part's data is followed by CRLF and the next delimiter
    const next = Buffer.concat([Buffer.from("\r\n"), delim]);
    if (dataEnd + next.length > body.length) return dataEnd >= body.length || endsWithin(dataEnd, next) ? "truncated" : "malformed";
    parts.push({ start: range.start, end: range.end, data: body.subarray(dataStart, dataEnd) });
    if (!body.subarray(dataEnd, dataEnd + next.length).equals(next)) return "malformed";
    pos = dataEnd + 2;
  }
}
