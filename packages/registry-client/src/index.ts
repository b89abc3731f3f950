// The public surface of @lazypull/registry-client; everything else in src/ is internal.
export type * from "./types.js";
export { RegistryClient, type RegistryClientOptions, type PushBlobOptions, type BlobBody } from "./client.js";
export type { ResolveSteps } from "./resolve.js";
export { fileSchemeMemo, type SchemeMemo } from "./scheme-memo.js";
export { parseReference, Reference, toReference, isDigest } from "./reference.js";
export { RegistryError, REGISTRY_ERROR_CODES, type RegistryErrorCode, type RegistryErrorContext } from "./errors.js";
export { MediaType } from "./media-types.js";
export { hostPlatform, parsePlatform, formatPlatform, selectPlatform, type Platform } from "./platform.js";
export { defaultAuthFiles, lookupCredentials, type Credentials } from "./credentials.js";
export { DEFAULT_RETRY, type RetryPolicy } from "./retry.js";
export { parseWwwAuthenticate, type Challenge } from "./challenge.js";
export { parseByteranges, parseContentRange, byterangesBoundary, type BytePart } from "./multipart.js";
export { isLoopbackRegistry, matchesInsecure } from "./insecure.js";
export { checkImageConfig } from "./image-config.js";
export { tlsConnector, hostTls, type TlsSettings, type HostTls } from "./tls.js"; export { tlsErrorFor, speaksPlainHttp } from "./tls-errors.js";
export { loadRegistriesConf, parseRegistriesConf, findRegistry, pullSources, isShortName, shortNameCandidates, isInsecureHost, type RegistriesConf, type RegistryEntry, type MirrorEntry, type PullSource, type PullFromMirror } from "./registries-conf.js";
