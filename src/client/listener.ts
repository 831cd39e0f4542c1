/**
 * Calls a callback that the caller registered. An exception it throws is
 * rethrown from a microtask, where the runtime reports it as uncaught,
 * so that it cannot stop the client in the middle of a state change.
 */
export function callListener<T>(listener: (value: T) => void, value: T): void {
  try {
    listener(value);
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}
