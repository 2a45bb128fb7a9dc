// A ws client in its own process, so a test can SIGKILL it mid-session.
// Usage: node ws-client-child.mjs URL
// Connects, sends "hello", and prints "ready" once the echo came back.
import { WebSocket } from 'ws';

const ws = new WebSocket(process.argv[2]);
ws.on('open', () => ws.send('hello'));
ws.on('message', (data) => {
    if (data.toString() === 'hello') process.stdout.write('ready\n');
});
ws.on('error', (e) => {
    process.stderr.write(`ws-client-child: ${e.message}\n`);
    process.exit(1);
});
ws.on('close', (code) => {
    process.stderr.write(`ws-client-child: closed ${code}\n`);
    process.exit(1);
});
