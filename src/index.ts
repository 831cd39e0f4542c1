export { KvServer } from "./server/kv-server.js";
export { defaultConfig, type ServerConfig } from "./server/config.js";
export { ErrorCode, RpcError, errorCatalog } from "./protocol/errors.js";
