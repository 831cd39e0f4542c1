/**
 * Returns the path of a request target without its query string. The
 * target is the raw text of the request line, so it is split rather than
 * given to the WHATWG URL parser, which throws on targets such as `//[`.
 * An absolute-form target (`http://host/stream`) yields its path too.
 */
export function requestPath(target: string | undefined): string {
  let path = (target ?? "/").split("?")[0].split("#")[0];
  const absolute = /^[a-z][a-z0-9+.-]*:\/\/[^/]*(\/.*)?$/i.exec(path);
  if (absolute) path = absolute[1] ?? "/";
  return path;
}
