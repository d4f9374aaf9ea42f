// The store interface: where the service table's apps and services are kept beyond one
// process, and (in a cluster) shared. The table is the local cache and is always read
// directly; writes go to the store without waiting on the trapped-call path.

import type { App, Service } from "../table/types.js";

export interface Snapshot {
  readonly apps: App[];
  readonly services: Service[];
}

export interface Store {
  /** "embedded" or "etcd". */
  readonly kind: string;
  /** Opens the store and returns what it holds. */
  open(): Promise<Snapshot>;
  putApp(app: App): void;
  deleteApp(id: string): void;
  putService(svc: Service): void;
  deleteService(id: string): void;
  /** Resolves when every write so far is durable. */
  flush(): Promise<void>;
  /**
   * Resolves when this node's own records written so far are on its local disk, without
   * waiting on the network: what a restarted daemon needs to know its apps.
   */
  persisted(): Promise<void>;
  close(): Promise<void>;
}
