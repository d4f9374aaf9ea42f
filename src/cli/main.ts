// The `sockswitch` command line: daemon, run, get, version. Every mistake a user can make
// ends in one sentence on stderr that says what to do and a non-zero exit (2 for usage,
// 1 for everything else); never a stack trace.

import { hostname } from "node:os";
import { Command, CommanderError, Option } from "commander";
import {
  DEFAULT_CLIENT_BLOCK,
  DEFAULT_CLIENT_PORTS,
  DEFAULT_CLUSTER,
  DEFAULT_LEASE_TTL,
  ephemeralRange,
  parseClientBlock,
  parseClientPorts,
  parseClusterName,
  parseRoles,
  parseStore,
} from "../core/cluster-config.js";
import {
  DEFAULT_DNS_DOMAIN,
  DEFAULT_PORTS,
  DEFAULT_STATE_DIR,
  DEFAULT_VIP_CIDR,
  defaultDnsIp,
  parseApiListen,
  parseDatapath,
  parseDnsDomain,
  parseDnsIp,
  parseEgress,
  parseLb,
  parseNodeIps,
  parsePortRange,
  parseVipCidr,
  readApiToken,
  socketPath,
} from "../core/config.js";
import { InvalidArgumentError, messageOf, SockswitchError } from "../core/errors.js";
import { VERSION } from "../core/version.js";
import { runDaemon } from "../daemon/daemon.js";
import { parseDnsServers } from "../dns/index.js";
import { get } from "./get.js";
import { run } from "./run.js";
import { resolveGroup } from "./users.js";

const collect = (value: string, prev: string[] = []): string[] => [...prev, value];

function parseBool(flag: string) {
  return (value: string | undefined): boolean => {
    if (value === undefined || value === "true") return true;
    if (value === "false") return false;
    throw new InvalidArgumentError(`${flag}="${value}" must be true or false`);
  };
}

export function buildProgram(): Command {
  const program = new Command("sockswitch")
    .description("Serverless SDN: app networking at the socket API, without veth, bridges or iptables")
    .version(VERSION, "-v, --version", "print the version")
    .option(
      "--socket <path>",
      "daemon socket (env SOCKSWITCH_SOCKET; default /run/sockswitch/sockswitch.sock)",
    )
    .enablePositionalOptions()
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeErr: (s) => process.stderr.write(s.startsWith("error: ") ? `sockswitch: ${s.slice(7)}` : s),
    });

  program
    .command("daemon")
    .description("run the per-host daemon in the foreground")
    .option("--state-dir <dir>", "where the embedded store keeps its state", DEFAULT_STATE_DIR)
    .option(
      "--node-ip <ip[,ip6]>",
      "host address(es) managed listeners bind to (default: first non-loopback, else 127.0.0.1)",
    )
    .option("--node-name <name>", "this node's name (default: the host name)")
    .option("--ports <range>", "host port pool for managed listeners", DEFAULT_PORTS)
    .option("--vip-cidr <cidr>", "pool of automatically assigned virtual IPs", DEFAULT_VIP_CIDR)
    .option("--egress <mode>", "connections to addresses that are not virtual: allow or deny", "allow")
    .option("--lb <mode>", "default load balancing: round-robin or random", "round-robin")
    .option(
      "--datapath <mode>",
      "how decisions reach the kernel: auto, seccomp or bpf (docs/how-it-works.md)",
      "auto",
    )
    .option("--clean", "start with an empty state (forget stored apps and services)", false)
    .option("--log-level <level>", "trace, debug, info, warn or error", "info")
    .addOption(
      new Option("--dns [bool]", "serve DNS for managed apps' names (--dns=false: off)")
        .default(true)
        .argParser(parseBool("--dns")),
    )
    .option("--dns-domain <domain>", "the domain of managed apps' names", DEFAULT_DNS_DOMAIN)
    .option("--dns-ip <ip>", "the resolver's virtual IP (default: the 53rd address of --vip-cidr)")
    .option("--dns-servers <ip[:port],...>", "upstream DNS servers (default: the host's /etc/resolv.conf)")
    .option("--socket-group <group>", "group of the daemon socket, mode 0660 (default: root's)")
    .option(
      "--api-listen <[host:]port>",
      "also serve the REST API over TCP (loopback unless a host is given)",
    )
    .option("--api-token-file <file>", "the token TCP API clients must send (Authorization: Bearer)")
    .option(
      "--store <store>",
      "embedded (one host), or etcd://HOST:PORT[,HOST:PORT...] for a cluster",
      "embedded",
    )
    .option("--etcd-ca <file>", "CA certificate for etcd client TLS (PEM)")
    .option("--etcd-cert <file>", "client certificate for etcd client TLS (PEM)")
    .option("--etcd-key <file>", "client key for etcd client TLS (PEM)")
    .option("--cluster <name>", `the cluster's name, its key prefix in etcd (default ${DEFAULT_CLUSTER})`)
    .option(
      "--lease-ttl <seconds>",
      "seconds after which a dead node leaves the cluster",
      String(DEFAULT_LEASE_TTL),
    )
    .option("--client-ports <range>", "host ports of apps' connections to other nodes", DEFAULT_CLIENT_PORTS)
    .option("--client-block <n>", "ports per app in --client-ports", String(DEFAULT_CLIENT_BLOCK))
    .option("--prefer-local", "pick backends on this node when a service has some here", false)
    .option("--roles <list>", "this node's roles, shown by get nodes", "worker")
    .action(async (o) => {
      const levels = ["trace", "debug", "info", "warn", "error", "fatal"];
      if (!levels.includes(o.logLevel))
        throw new InvalidArgumentError(`--log-level "${o.logLevel}" is not one of ${levels.join(", ")}`);
      const vipCidr = parseVipCidr(o.vipCidr);
      const ports = parsePortRange(o.ports);
      const clientBlock = parseClientBlock(o.clientBlock);
      const store = parseStore(o);
      await runDaemon({
        socket: socketPath(program.opts().socket),
        stateDir: o.stateDir,
        ...parseNodeIps(o.nodeIp),
        nodeName: parseClusterName(o.nodeName ?? hostname(), "--node-name"),
        ports,
        store,
        // Checked only for a cluster: on one host the range is not used.
        clientPorts:
          store.kind === "etcd"
            ? parseClientPorts(o.clientPorts, ports, ephemeralRange(), clientBlock)
            : parsePortRange(o.clientPorts),
        clientBlock,
        preferLocal: o.preferLocal === true,
        roles: parseRoles(o.roles),
        vipCidr,
        socketGroup: o.socketGroup === undefined ? null : resolveGroup(o.socketGroup, "--socket-group"),
        api:
          o.apiListen === undefined
            ? null
            : { ...parseApiListen(o.apiListen), token: readApiToken(o.apiTokenFile) },
        dns: {
          enabled: o.dns !== false,
          ip: o.dnsIp === undefined ? defaultDnsIp(vipCidr) : parseDnsIp(o.dnsIp),
          domain: parseDnsDomain(o.dnsDomain),
          upstreams: o.dnsServers === undefined ? null : parseDnsServers(o.dnsServers),
        },
        egress: parseEgress(o.egress),
        datapath: parseDatapath(o.datapath),
        lb: parseLb(o.lb),
        clean: o.clean === true,
        logLevel: o.logLevel,
      });
    });

  program
    .command("run")
    .description("run a program with its own network identity")
    .usage("[options] -- COMMAND [ARGS...]")
    .argument("<command...>", "the program and its arguments")
    .option(
      "--ip <ip>",
      "virtual IP (IPv4 and/or IPv6; repeat for both); assigned from --vip-cidr if absent",
      collect,
    )
    .option("--name <name>", "the app's name")
    .option(
      "--labels <k=v,...>",
      "labels; a client reaches a service only if they share one (default zone=default)",
    )
    .option(
      "--expose <app:host>",
      "publish APP_PORT on HOST_PORT (or APP_PORT:HOST_IP:HOST_PORT); repeatable",
      collect,
    )
    .option("--user <user[:group]>", "run the program as this user")
    .option("--lb <mode>", "load balancing for the services this app provides: round-robin or random")
    .addOption(
      new Option("--new-netns [bool]", "give the app its own empty network namespace")
        .default(true)
        .argParser(parseBool("--new-netns")),
    )
    .addOption(
      new Option(
        "--dns-override [bool]",
        "point the app's /etc/resolv.conf at sockswitch's DNS (default: when the daemon serves it)",
      ).argParser(parseBool("--dns-override")),
    )
    .passThroughOptions()
    .action((command: string[], o) => {
      run(socketPath(program.opts().socket), { ...o, newNetns: o.newNetns !== false }, command);
    });

  program
    .command("get")
    .description("list apps, services or sockets")
    .argument("<resource>", "apps, services or sockets")
    .addOption(new Option("-o, --output <format>", "table or json").default("table"))
    .action(async (resource: string, o) => {
      process.stdout.write(`${await get(socketPath(program.opts().socket), resource, o.output)}\n`);
    });

  program
    .command("version")
    .description("print the version")
    .action(() => {
      process.stdout.write(`sockswitch ${VERSION}\n`);
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    if (argv.length <= 2) {
      program.outputHelp();
      return 2;
    }
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.exitCode === 0)
        return 0;
      return 2;
    }
    if (err instanceof InvalidArgumentError) {
      process.stderr.write(`sockswitch: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`sockswitch: ${err instanceof SockswitchError ? err.message : messageOf(err)}\n`);
    return 1;
  }
}
