/**
 * The control socket speaks one JSON line each way per connection:
 * `{"method":"status","params":{}}` in, `{"ok":true,"result":...}` or
 * `{"ok":false,"error":"..."}` out. Small enough to drive with socat.
 */
export interface ControlRequest {
  method: string;
  params?: Record<string, unknown>;
}

export type ControlResponse = { ok: true; result: unknown } | { ok: false; error: string };

export type ControlHandler = (params: Record<string, unknown>) => unknown | Promise<unknown>;

/**
 * A handler's result that streams: the server answers `{"ok":true,"stream":true}`
 * and then one JSON line per `send`, until the client hangs up (which calls
 * the function `subscribe` returned).
 */
export class ControlStream {
  constructor(readonly subscribe: (send: (value: unknown) => void) => () => void) {}
}
