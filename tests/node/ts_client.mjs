// A minimal MCP client written with the TypeScript SDK (@modelcontextprotocol/sdk), used by
// tests/interop/test_ts_client.py to prove a non-Python client works with the aggregator.
//
//   node ts_client.mjs [--call NAME [--args JSON]] --url URL
//   node ts_client.mjs [--call NAME [--args JSON]] -- COMMAND [ARG...]
//
// Connects (streamable HTTP for --url, else spawns COMMAND over stdio), lists every tool
// (following nextCursor), optionally calls one, and prints one JSON object on stdout:
//   {"server": {name, version}, "protocolVersion": "...", "capabilities": {...},
//    "tools": [{name, description, inputSchema}, ...], "call": <CallToolResult> | null}
// Exits 1 with {"error": "..."} on stdout when anything fails.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

function parseArgs(argv) {
  const options = { url: null, command: null, call: null, args: {} };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--url") options.url = argv[++i];
    else if (arg === "--call") options.call = argv[++i];
    else if (arg === "--args") options.args = JSON.parse(argv[++i]);
    else if (arg === "--") {
      options.command = argv.slice(i + 1);
      break;
    } else throw new Error(`unknown argument: ${arg}`);
  }
  if (!options.url && !(options.command && options.command.length)) {
    throw new Error("give --url URL or -- COMMAND [ARG...]");
  }
  return options;
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const transport = options.url
    ? new StreamableHTTPClientTransport(new URL(options.url))
    : new StdioClientTransport({
        command: options.command[0],
        args: options.command.slice(1),
        env: { ...process.env },
        stderr: "inherit",
      });
  // The SDK tells the transport the negotiated version (stdio transports just lack the hook).
  let negotiated = null;
  const setVersion = transport.setProtocolVersion?.bind(transport);
  transport.setProtocolVersion = (version) => {
    negotiated = version;
    setVersion?.(version);
  };
  const client = new Client({ name: "ts-interop-client", version: "1.0.0" }, { capabilities: {} });
  await client.connect(transport);
  try {
    const tools = [];
    let cursor;
    do {
      const page = await client.listTools(cursor ? { cursor } : {});
      tools.push(...page.tools.map(({ name, description, inputSchema }) => ({ name, description, inputSchema })));
      cursor = page.nextCursor;
    } while (cursor);
    const call = options.call ? await client.callTool({ name: options.call, arguments: options.args }) : null;
    const out = {
      server: client.getServerVersion(),
      protocolVersion: negotiated,
      capabilities: client.getServerCapabilities(),
      tools,
      call,
    };
    process.stdout.write(JSON.stringify(out) + "\n");
  } finally {
    await client.close();
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stdout.write(JSON.stringify({ error: String(error?.stack ?? error) }) + "\n");
    process.exit(1);
  },
);
