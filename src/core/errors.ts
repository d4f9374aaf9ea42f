// One error module with stable codes (docs/errors.md lists them). Every error a user can
// meet carries a code and a sentence that says what to do; the CLI prints the sentence,
// never a stack trace. Errors that a trapped call produces are errnos, not these.

export class SockswitchError extends Error {
  readonly code: string;
  /** HTTP status when the error crosses the REST API. */
  readonly status: number;

  constructor(code: string, message: string, status = 400) {
    super(message);
    this.name = "SockswitchError";
    this.code = code;
    this.status = status;
  }
}

export class InvalidArgumentError extends SockswitchError {
  constructor(message: string) {
    super("SOCKSWITCH_ERR_INVALID_ARGUMENT", message, 400);
  }
}

export class NotFoundError extends SockswitchError {
  constructor(message: string) {
    super("SOCKSWITCH_ERR_NOT_FOUND", message, 404);
  }
}

export class ConflictError extends SockswitchError {
  constructor(message: string) {
    super("SOCKSWITCH_ERR_CONFLICT", message, 409);
  }
}

export class PoolExhaustedError extends SockswitchError {
  constructor(message: string) {
    super("SOCKSWITCH_ERR_POOL_EXHAUSTED", message, 503);
  }
}

export class DaemonUnreachableError extends SockswitchError {
  constructor(message: string) {
    super("SOCKSWITCH_ERR_DAEMON_UNREACHABLE", message, 503);
  }
}

export class PermissionError extends SockswitchError {
  constructor(message: string) {
    super("SOCKSWITCH_ERR_PERMISSION", message, 403);
  }
}

export class NativeError extends SockswitchError {
  constructor(message: string) {
    super("SOCKSWITCH_ERR_NATIVE", message, 500);
  }
}

export class StateError extends SockswitchError {
  constructor(message: string) {
    super("SOCKSWITCH_ERR_STATE", message, 500);
  }
}

/** The cluster store (etcd) cannot be reached or refused what was asked. */
export class StoreError extends SockswitchError {
  constructor(message: string) {
    super("SOCKSWITCH_ERR_STORE", message, 503);
  }
}

/** Another daemon has the socket or the state dir, or a directory cannot be made. */
export class InstanceError extends SockswitchError {
  constructor(message: string) {
    super("SOCKSWITCH_ERR_INSTANCE", message, 409);
  }
}

/** A detached app (run -d) could not start: the launcher's sentence. */
export class RunError extends SockswitchError {
  constructor(message: string) {
    super("SOCKSWITCH_ERR_RUN", message, 400);
  }
}

/** The kernel lacks something the daemon cannot run without (core/kernel-info.ts). */
export class KernelError extends SockswitchError {
  constructor(message: string) {
    super("SOCKSWITCH_ERR_KERNEL", message, 500);
  }
}

/** The message of anything thrown, for logs and the CLI. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
