import { createServer, connect, type Server, type Socket } from "node:net";

/**
 * A TCP proxy on 127.0.0.1 in front of a local server. Pausing it stops
 * reading from the server on the open connections, so the server's unsent
 * data grows as it would for a client that stops reading. Connections made
 * later are not paused, unless `silence()` was called: then no connection
 * passes the server's data on, as behind a dropped network path.
 */
export interface TcpProxy {
  port: number;
  /** `ws://127.0.0.1:PORT/stream` through the proxy. */
  url: string;
  pause(): void;
  /** Pauses every open connection and every later one. */
  silence(): void;
  resume(): void;
  /** Closes the port and every connection, like a server that died. */
  close(): Promise<void>;
  /** Listens again on the same port after close(). */
  reopen(): Promise<void>;
}

interface ProxiedConnection {
  client: Socket;
  upstream: Socket;
  paused: boolean;
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const connections = new Set<ProxiedConnection>();
  let silenced = false;
  const forward = (client: Socket) => {
    const upstream = connect(targetPort, "127.0.0.1");
    const connection: ProxiedConnection = {
      client,
      upstream,
      paused: silenced,
    };
    connections.add(connection);
    if (silenced) upstream.pause();

    client.pipe(upstream);
    // Server to client by hand, so that pause() is not undone by the
    // flow control of pipe().
    upstream.on("data", (chunk) => {
      if (!client.write(chunk)) upstream.pause();
    });
    upstream.on("end", () => client.end());
    client.on("drain", () => {
      if (!connection.paused) upstream.resume();
    });
    const forget = () => {
      connections.delete(connection);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", forget).on("close", forget);
    upstream.on("error", forget).on("close", forget);
  };
  const listen = async (port: number): Promise<Server> => {
    const server = createServer(forward);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", resolve);
    });
    return server;
  };
  let server = await listen(0);
  const port = (server.address() as { port: number }).port;

  return {
    port,
    url: `ws://127.0.0.1:${port}/stream`,
    pause: () => {
      for (const connection of connections) {
        connection.paused = true;
        connection.upstream.pause();
      }
    },
    silence: () => {
      silenced = true;
      for (const connection of connections) {
        connection.paused = true;
        connection.upstream.pause();
      }
    },
    resume: () => {
      silenced = false;
      for (const connection of connections) {
        connection.paused = false;
        connection.upstream.resume();
      }
    },
    close: async () => {
      for (const connection of connections) {
        connection.client.destroy();
        connection.upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    reopen: async () => {
      server = await listen(port);
    },
  };
}
