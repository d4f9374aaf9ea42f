// gRPC names an IP endpoint as the TLS server name, for which Node prints DEP0123 on
// stderr (RFC 6066: a server name is a host name) at every daemon start on an etcd given by
// IP — the certificate is still checked against the IP's SAN. Only that warning is dropped;
// every other one is printed as usual.

let installed = false;

export function silenceIpServernameWarning(): void {
  if (installed) return;
  installed = true;
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((...args: unknown[]) => {
    const opt = args[1];
    const code = typeof opt === "object" && opt !== null ? (opt as { code?: unknown }).code : args[2];
    if (code === "DEP0123") return;
    emit(...args);
  }) as typeof process.emitWarning;
}
