// A certificate authority made for a test with the openssl CLI: a server certificate for 127.0.0.1 and
// localhost, and a client certificate, all signed by it (EC P-256, so it takes milliseconds).
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { run } from "./run.js";

export interface TestPki {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await run("openssl", args, { cwd });
}

async function signed(dir: string, name: string, ext: string): Promise<void> {
  await openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${name}.key`], dir);
  await openssl(["req", "-new", "-key", `${name}.key`, "-subj", `/CN=lazypull-test-${name}`, "-out", `${name}.csr`], dir);
  await writeFile(join(dir, `${name}.ext`), ext);
  await openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", `${name}.ext`, "-out", `${name}.crt`], dir);
}

/** Makes a CA, a server certificate (SAN 127.0.0.1, localhost) and a client certificate under `dir`. */
export async function makeTestPki(dir: string): Promise<TestPki> {
  await mkdir(dir, { recursive: true });
  await openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key"], dir);
  await openssl(["req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=lazypull-test-ca", "-days", "2", "-out", "ca.crt"], dir);
  await signed(dir, "server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  await signed(dir, "client", "extendedKeyUsage=clientAuth\n");
  return {
    dir,
    caCert: join(dir, "ca.crt"),
    serverCert: join(dir, "server.crt"),
    serverKey: join(dir, "server.key"),
    clientCert: join(dir, "client.crt"),
    clientKey: join(dir, "client.key"),
  };
}
