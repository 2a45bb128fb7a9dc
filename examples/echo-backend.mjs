// A WebSocket echo server for trying wsgate out: text comes back as text,
// binary as binary.
//
//     node examples/echo-backend.mjs [PORT]      (or PORT=9000; default 9000)
//
// Listens on 127.0.0.1 (HOST overrides). Port 0 picks a free port; the start
// line always names the real one.
import { WebSocketServer } from 'ws';

const arg = process.argv[2] ?? process.env.PORT ?? '9000';
const port = Number(arg);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`echo-backend: bad port "${arg}"`);
    process.exit(2);
}
const host = process.env.HOST || '127.0.0.1';

const wss = new WebSocketServer({ host, port, maxPayload: 256 * 1024 * 1024 });
wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('error', () => ws.terminate());
});
wss.on('listening', () => {
    const a = wss.address();
    console.log(`echo backend listening on ws://${a.address}:${a.port}`);
});
wss.on('error', (e) => {
    console.error(`echo-backend: ${e.message}`);
    process.exit(1);
});
for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => process.exit(0));
    });
}
