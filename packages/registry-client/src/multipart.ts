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
  const delim = Buffer.from(`--${boundary}`);
  const parts: BytePart[] = [];
  let pos = body.indexOf(delim);
  if (pos < 0) return undefined;
  for (;;) {
    pos += delim.length;
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) return parts; // closing delimiter "--"
    // transport padding, then CRLF
    while (body[pos] === 0x20 || body[pos] === 0x09) pos++;
    if (body[pos] === 0x0d && body[pos + 1] === 0x0a) pos += 2;
    else return undefined;
    const headerEnd = body.indexOf("\r\n\r\n", pos);
    if (headerEnd < 0) return undefined;
    const headers = body.subarray(pos, headerEnd).toString("latin1").split("\r\n");
    let range: ReturnType<typeof parseContentRange>;
    for (const h of headers) {
      const colon = h.indexOf(":");
      if (colon > 0 && h.slice(0, colon).trim().toLowerCase() === "content-range") range = parseContentRange(h.slice(colon + 1));
    }
    if (!range) return undefined;
    const dataStart = headerEnd + 4;
    const dataEnd = dataStart + (range.end - range.start + 1);
    if (dataEnd > body.length) return undefined;
    parts.push({ start: range.start, end: range.end, data: body.subarray(dataStart, dataEnd) });
    // each part's data is followed by CRLF and the next delimiter
    if (body[dataEnd] !== 0x0d || body[dataEnd + 1] !== 0x0a) return undefined;
    pos = dataEnd + 2;
    if (!body.subarray(pos, pos + delim.length).equals(delim)) return undefined;
  }
}
