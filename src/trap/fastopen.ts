// sendto/sendmsg/sendmmsg with MSG_FASTOPEN: TCP Fast Open connects a socket without
// connect(), so it would bypass the switch. The filter traps only calls that carry the flag;
// they are refused with EOPNOTSUPP, what the kernel says when Fast Open is off, and
// programs fall back to connect().

import { E } from "./addresses.js";
import type { Notification } from "./notification.js";
import type { AppSession } from "./session.js";

export function handleFastOpen(s: AppSession, n: Notification): void {
  s.host.log.info(
    { app: s.app.id, pid: n.pid },
    "TCP Fast Open refused (EOPNOTSUPP); the app should fall back to connect()",
  );
  s.fail(n, E.EOPNOTSUPP);
}
