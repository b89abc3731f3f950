// Converts a tar to eStargz in its own process, so that a test can measure the converter's peak memory.
import { createReadStream, createWriteStream } from "node:fs";
import { convertToEstargz } from "@lazypull/stargz-format";

const [input, output, chunkSize] = process.argv.slice(2) as [string, string, string];
const res = await convertToEstargz(createReadStream(input), createWriteStream(output), { chunkSize: Number(chunkSize), level: 1 });
process.stdout.write(`${JSON.stringify({ ...res, maxRssBytes: process.resourceUsage().maxRSS * 1024 })}\n`);
