// The Azure device SDK over HTTPS (azure-iot-device-http) with an X.509
// chain: telemetry, and C2D messages received, completed, rejected and
// abandoned. The HTTP transport only talks to port 443 (reference §8).
// Needs the environment interop_node.sh sets (see device.test.js).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { promisify } = require('node:util');
const { Client, Message } = require('azure-iot-device');
const { Http } = require('azure-iot-device-http');

const run = promisify(execFile);
const pki = process.env.INTEROP_PKI;
const ca = fs.readFileSync(process.env.HUB_CAFILE, 'utf8');
const hubctl = (...args) => run(process.env.HUBCTL, args, { env: process.env });

test('HTTPS device: telemetry and C2D complete / reject / abandon', { timeout: 90000, skip: Number(process.env.HUB_PORT || 443) !== 443 && 'the HTTP transport needs port 443' }, async () => {
  const id = 'node-http';
  const client = Client.fromConnectionString(`HostName=localhost;DeviceId=${id};x509=true`, Http);
  // Not awaited: azure-iot-device-http calls back only when a receivePolicy is
  // given, and we give one (reference §8).
  client.setOptions({
    cert: fs.readFileSync(path.join(pki, `${id}-chain.pem`), 'utf8'),
    key: fs.readFileSync(path.join(pki, `${id}.key`), 'utf8'),
    ca,
    http: { receivePolicy: { interval: 1 } },
  });
  await client.open();

  const msg = new Message('{"via":"https"}');
  msg.messageId = 'http-1';
  msg.properties.add('transport', 'https');
  await client.sendEvent(msg);
  const { stdout } = await hubctl('--json', 'monitor', '--device', id, '--count', '1', '--timeout', '10');
  const got = JSON.parse(stdout.split('\n')[0]);
  assert.equal(got.body, '{"via":"https"}');
  assert.equal(got.properties.transport, 'https');

  const seen = [];
  const done = new Promise((resolve) => {
    client.on('message', (m) => {
      const text = m.data.toString();
      seen.push(text);
      if (text === 'complete me') client.complete(m, () => {});
      else if (text === 'reject me') client.reject(m, () => {});
      else if (text === 'abandon me' && seen.filter((t) => t === text).length === 1) client.abandon(m, () => {});
      else client.complete(m, () => {});
      if (seen.length >= 4) resolve();
    });
  });
  await hubctl('c2d', 'send', id, 'complete me', '--ack', 'full', '--message-id', 'h-complete');
  await hubctl('c2d', 'send', id, 'reject me', '--ack', 'full', '--message-id', 'h-reject');
  await hubctl('c2d', 'send', id, 'abandon me', '--message-id', 'h-abandon');
  await done;
  await client.close();
  assert.deepEqual(seen.slice(0, 3), ['complete me', 'reject me', 'abandon me']);
  assert.equal(seen[3], 'abandon me', 'an abandoned message comes back');
  const { stdout: dev } = await hubctl('--json', 'device', 'show', id);
  assert.equal(JSON.parse(dev).cloudToDeviceMessageCount, 0);
  const { stdout: fb } = await hubctl('--json', 'c2d', 'feedback');
  assert.match(fb, /h-complete[\s\S]*Success|Success[\s\S]*h-complete/);
  assert.match(fb, /h-reject[\s\S]*Rejected|Rejected[\s\S]*h-reject/);
});
