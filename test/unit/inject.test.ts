// Unit tests of `sockswitch inject` (src/kube/inject.ts, src/cli/inject.ts) on manifests as
// people write them (test/fixtures/kube/), and of the DaemonSet (deploy/kubernetes/): every
// object out of the transformer, and the DaemonSet, must pass the Kubernetes API's schema
// (the OpenAPI schemas of Kubernetes, through kubernetes-models); each container runs its
// old command under the launcher with the pod's name and labels; what cannot be done is
// refused with a sentence that names the object.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { DaemonSet, Deployment, ReplicaSet, StatefulSet } from "kubernetes-models/apps/v1";
import { CronJob, Job } from "kubernetes-models/batch/v1";
import { Namespace, Pod, ReplicationController, Service } from "kubernetes-models/v1";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { InvalidArgumentError } from "../../src/core/errors.js";
import type { InjectOptions } from "../../src/kube/inject.js";
import { injectText } from "../../src/kube/manifests.js";

const ROOT = join(import.meta.dirname, "..", "..");
const O: InjectOptions = {
  launcherPath: "/opt/sockswitch/bin/sockswitch-launch",
  socketDir: "/run/sockswitch",
  dnsIp: "10.77.0.53",
  dnsDomain: "sockswitch.local",
};

// biome-ignore lint/suspicious/noExplicitAny: manifests are free-form here
type Obj = Record<string, any>;
const MODELS: Record<string, new (o: Obj) => { validate(): void }> = {
  Pod,
  Service,
  Namespace,
  ReplicationController,
  Deployment,
  StatefulSet,
  DaemonSet,
  ReplicaSet,
  Job,
  CronJob,
};

/** Checks an object against the Kubernetes API schema of its kind; throws what is wrong. */
function validate(o: Obj): void {
  const Model = MODELS[o.kind as string];
  assert.ok(Model, `a model for kind ${o.kind}`);
  new Model(o).validate();
}

function docs(text: string): Obj[] {
  return parseAllDocuments(text).map((d) => d.toJS() as Obj);
}

function podSpecs(o: Obj): Obj[] {
  if (o.kind === "Pod") return [o.spec];
  if (o.kind === "CronJob") return [o.spec.jobTemplate.spec.template.spec];
  return o.spec?.template?.spec ? [o.spec.template.spec] : [];
}

const stack = readFileSync(join(ROOT, "test", "fixtures", "kube", "web-stack.yaml"), "utf8");

describe("sockswitch inject", () => {
  const input = docs(stack);
  const output = docs(injectText(stack, "web-stack.yaml", O));

  test("the input is valid for Kubernetes (the test's premise), and the check can fail", () => {
    for (const d of input) validate(d);
    const broken = structuredClone(input[0]) as Obj;
    broken.spec.template.spec.containers[0].args = "-g daemon off;";
    assert.throws(() => validate(broken), /args must be array/);
  });

  test("every object out of it is valid for the Kubernetes API schema", () => {
    assert.equal(output.length, input.length);
    for (const d of output) validate(d);
  });

  test("objects that are not pods pass through as they were", () => {
    assert.deepEqual(output[1], input[1]);
  });

  test("each container runs what it ran, under the launcher, with the pod's name and labels", () => {
    const web = output[0]?.spec.template.spec;
    assert.deepEqual(web.containers[0].command, ["/sockswitch-launch"]);
    assert.deepEqual(web.containers[0].args, [
      "run",
      "--new-netns=false",
      "--dns-override=false",
      "--name",
      "web",
      "--labels",
      "app.kubernetes.io/name=web,zone=front",
      "--",
      "nginx",
      "-g",
      "daemon off;",
    ]);
    // Init containers too; other fields stay.
    assert.deepEqual(web.initContainers[0].args.slice(-3), [
      "sh",
      "-c",
      "until nslookup redis; do sleep 1; done",
    ]);
    assert.deepEqual(
      web.containers[0].readinessProbe,
      input[0]?.spec.template.spec.containers[0].readinessProbe,
    );
    assert.deepEqual(web.containers[0].volumeMounts, [
      { name: "html", mountPath: "/usr/share/nginx/html", readOnly: true },
      { name: "sockswitch-launch", mountPath: "/sockswitch-launch", readOnly: true },
      { name: "sockswitch-run", mountPath: "/run/sockswitch" },
    ]);
  });

  test("the launcher and the daemon's socket come from the node; DNS is the daemon's", () => {
    for (const d of output.filter((x) => x.kind !== "Service")) {
      for (const spec of podSpecs(d)) {
        assert.deepEqual(spec.volumes.slice(-2), [
          { name: "sockswitch-launch", hostPath: { path: O.launcherPath, type: "File" } },
          { name: "sockswitch-run", hostPath: { path: O.socketDir, type: "Directory" } },
        ]);
        assert.equal(spec.dnsPolicy, "None");
        assert.deepEqual(spec.dnsConfig, {
          nameservers: ["10.77.0.53"],
          searches: ["sockswitch.local"],
          options: [{ name: "ndots", value: "1" }],
        });
      }
    }
  });

  test("$(VAR) in the container's own args is left to Kubernetes; the ip and publish annotations are used", () => {
    const redis = output[2]?.spec.template.spec.containers[0];
    assert.deepEqual(redis.args, [
      "run",
      "--new-netns=false",
      "--dns-override=false",
      "--name",
      "redis",
      "--labels",
      "app=redis,zone=front",
      "--ip",
      "10.77.40.1",
      "--publish",
      "127.0.0.1:16379:6379",
      "--",
      "redis-server",
      "--appendonly",
      "yes",
      "--requirepass",
      "$(REDIS_PASSWORD)",
    ]);
  });

  test("a CronJob and a Job are named after themselves; no labels means the default", () => {
    const cron = output[3]?.spec.jobTemplate.spec.template.spec.containers[0];
    assert.deepEqual(cron.args.slice(3, 7), ["--name", "report", "--labels", "zone=front"]);
    const job = output[4]?.spec.template.spec.containers[0];
    assert.deepEqual(job.args, [
      "run",
      "--new-netns=false",
      "--dns-override=false",
      "--name",
      "migrate",
      "--",
      "/migrate",
      "--to",
      "latest",
    ]);
  });

  test("without a command, the image's ENTRYPOINT and CMD from the annotation, kept literal", () => {
    const echo = output[5]?.spec.containers[0];
    assert.deepEqual(echo.args.slice(-5), ["/bin/echo-server", "--listen", ":8080", "--greeting", "$$HOME"]);
  });

  test("args without a command replace the image's CMD, as in Kubernetes", () => {
    const pod = `apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations:
    image.sockswitch.io/c: '{"entrypoint": ["/ep"], "cmd": ["default"]}'
spec:
  containers: [{name: c, image: i, args: ["given"]}]
`;
    const out = parseYaml(injectText(pod, "p.yaml", O)) as Obj;
    assert.deepEqual(out.spec.containers[0].args.slice(-2), ["/ep", "given"]);
  });

  test("injecting twice changes nothing", () => {
    const once = injectText(stack, "s", O);
    assert.equal(injectText(once, "s", O), once);
  });

  test("a List's items, and empty documents", () => {
    const list = `apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata: {name: a}
    spec: {containers: [{name: c, image: i, command: [x]}]}
---
`;
    const out = docs(injectText(list, "l", O));
    assert.equal(out.length, 1);
    assert.deepEqual(out[0]?.items[0].spec.containers[0].args.slice(-2), ["--", "x"]);
    validate(out[0]?.items[0]);
  });

  const refused = (text: string, re: RegExp) =>
    assert.throws(
      () => injectText(text, "in.yaml", O),
      (e: unknown) => e instanceof InvalidArgumentError && re.test(e.message),
    );
  const pod = (spec: string, meta = "name: p") =>
    `apiVersion: v1\nkind: Pod\nmetadata: {${meta}}\nspec: ${spec}\n`;

  test("a container without a command and without the annotation: say what to add", () => {
    refused(
      pod("{containers: [{name: c, image: nginx}]}"),
      /^Pod "p", container "c": has no command, and its image's ENTRYPOINT and CMD are not known here; give the container a command \(and args\), or annotate the pod with image\.sockswitch\.io\/c: /,
    );
  });

  test("what cannot run under sockswitch is refused, naming the object", () => {
    const c = "containers: [{name: c, image: i, command: [x]}]";
    refused(pod(`{hostNetwork: true, ${c}}`), /^Pod "p": uses hostNetwork/);
    refused(pod(`{shareProcessNamespace: true, ${c}}`), /^Pod "p": sets shareProcessNamespace/);
    refused(pod(`{dnsConfig: {nameservers: [1.1.1.1]}, ${c}}`), /^Pod "p": has a dnsConfig of its own/);
    refused(
      pod(`{volumes: [{name: sockswitch-run, emptyDir: {}}], ${c}}`),
      /already has a volume named sockswitch-run/,
    );
    refused(pod(`{${c}}`, "generateName: p-"), /^Pod "": its name "" cannot be an app's name/);
    refused(
      pod(`{${c}}`, "name: p, labels: {a: 'x y'}"),
      /^Pod "p": its labels cannot be an app's: label "a=x y"/,
    );
    refused(
      pod(`{${c}}`, "name: p, annotations: {sockswitch.io/publish: '8080'}"),
      /^Pod "p": the annotation sockswitch\.io\/publish: --publish "8080" needs HOST_PORT:APP_PORT/,
    );
    refused(
      pod(`{${c}}`, "name: p, annotations: {sockswitch.io/ip: 127.0.0.1}"),
      /^Pod "p": the annotation sockswitch\.io\/ip: --ip 127\.0\.0\.1 cannot be/,
    );
    refused(
      pod("{containers: [{name: c, image: i}]}", "name: p, annotations: {image.sockswitch.io/c: '[x'}"),
      /the annotation image\.sockswitch\.io\/c is not JSON/,
    );
    refused(`kind: Deployment\nmetadata: {name: d}\nspec: {}\n`, /^Deployment "d": has no pod template/);
    refused(
      pod("{containers: [{name: c, image: i, command: [x], livenessProbe: {tcpSocket: {port: 80}}}]}"),
      /^Pod "p", container "c": its livenessProbe connects to the pod's IP, where an app under sockswitch does not listen/,
    );
    refused("a: [1, 2\n", /^in\.yaml is not valid YAML: /);
  });
});

describe("the DaemonSet (deploy/kubernetes/sockswitch.yaml)", () => {
  const objects = docs(readFileSync(join(ROOT, "deploy", "kubernetes", "sockswitch.yaml"), "utf8"));

  test("is valid for the Kubernetes API schema", () => {
    assert.deepEqual(
      objects.map((o) => o.kind),
      ["Namespace", "DaemonSet"],
    );
    for (const o of objects) validate(o);
  });

  test("runs the daemon in the node's namespaces, where inject's pods find it", () => {
    const spec = objects[1]?.spec.template.spec;
    assert.equal(spec.hostNetwork, true);
    assert.equal(spec.hostPID, true);
    const paths = spec.volumes.map((v: Obj) => v.hostPath.path);
    assert.ok(paths.includes(O.socketDir));
    assert.ok(paths.includes(O.launcherPath.slice(0, O.launcherPath.lastIndexOf("/"))));
    assert.match(spec.initContainers[0].command.join(" "), /\/host\/bin\/sockswitch-launch$/);
  });
});
