// Listing a repository's tags: `GET /v2/<repository>/tags/list`, following `Link: rel="next"` pages.
import { readAll } from "./body.js";
import { ctxOf, pullScope } from "./calls.js";
import { RegistryError } from "./errors.js";
import type { Reference } from "./reference.js";
import { errorFor, header, type Transport } from "./transport.js";

const MAX_PAGES = 1000;

export async function listTags(t: Transport, ref: Reference, signal?: AbortSignal): Promise<string[]> {
  const ctx = ctxOf(ref);
  const tags: string[] = [];
  let path: string | undefined = `/v2/${ref.repository}/tags/list?n=1000`;
  for (let pages = 0; path && pages < MAX_PAGES; pages++) {
    const page: { tags: string[]; next?: string } = await t.request(
      { method: "GET", registry: ref.registry, repository: ref.repository, path, scopes: pullScope(ref), signal },
      async (res) => {
        if (res.status !== 200) throw await errorFor(res, res.counter, ctx, `tags of ${ref.name}`);
        const text = (await readAll(res.body, res.counter, 16 << 20, ctx)).toString("utf8");
        let json: { tags?: string[] | null };
        try {
          json = JSON.parse(text) as typeof json;
        } catch (cause) {
          throw new RegistryError("REGISTRY_BAD_RESPONSE", `tag list of ${ref.name} is not JSON`, ctx, { cause });
        }
        const link = header(res.headers, "link");
        const next = link ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link)?.[1] : undefined;
        return { tags: json.tags ?? [], next: next ? new URL(next, res.url).toString() : undefined };
      },
    );
    tags.push(...page.tags);
    path = page.next;
  }
  return tags;
}
