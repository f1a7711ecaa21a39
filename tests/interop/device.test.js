// The official Azure IoT device SDK (azure-iot-device + azure-iot-device-mqtt)
// against hubd over MQTT/TLS: an X.509 CA device (leaf + intermediate chain),
// a SAS device and a selfSigned device connect, send telemetry with
// properties, receive a C2D message sent with hubctl, and reconnect.
// Needs (from tests/e2e/interop_node.sh): HUB_CAFILE, HUB_MQTT_PORT, HUBCTL,
// INTEROP_PKI (dir with node-ca-chain.pem/.key, node-self.pem/.key),
// INTEROP_SAS_KEY, and the HUB_* variables hubctl reads.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { promisify } = require('node:util');
const { Client, Message } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');

const run = promisify(execFile);
const pki = process.env.INTEROP_PKI;
const port = Number(process.env.HUB_MQTT_PORT || 8883);
const ca = fs.readFileSync(process.env.HUB_CAFILE, 'utf8');
// Only a non-standard port needs GatewayHostName (reference §8).
const gateway = port === 8883 ? '' : `;GatewayHostName=localhost:${port}`;

async function x509Client(id, certFile, keyFile) {
  const client = Client.fromConnectionString(`HostName=localhost;DeviceId=${id};x509=true${gateway}`, Mqtt);
  // One setOptions call: a second one would replace the first (reference §8).
  await client.setOptions({
    cert: fs.readFileSync(path.join(pki, certFile), 'utf8'),
    key: fs.readFileSync(path.join(pki, keyFile), 'utf8'),
    ca,
  });
  return client;
}

async function sasClient(id, key) {
  const client = Client.fromConnectionString(`HostName=localhost;DeviceId=${id};SharedAccessKey=${key}${gateway}`, Mqtt);
  await client.setOptions({ ca });
  return client;
}

async function monitorOne(deviceId, messageId) {
  const { stdout } = await run(process.env.HUBCTL, ['--json', 'monitor', '--device', deviceId, '--count', '100', '--timeout', '3'], { env: process.env }).catch((e) => e);
  const events = stdout.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  return events.find((e) => e.systemProperties.messageId === messageId);
}

async function sendAndCheck(client, deviceId, messageId) {
  const msg = new Message(JSON.stringify({ temperature: 21.5, device: deviceId }));
  msg.messageId = messageId;
  msg.contentType = 'application/json';
  msg.contentEncoding = 'utf-8';
  msg.properties.add('level', 'high & mighty');
  msg.properties.add('unit', 'C/°');
  await client.sendEvent(msg);
  const got = await monitorOne(deviceId, messageId);
  assert.ok(got, `message ${messageId} reached the hub`);
  assert.equal(got.deviceId, deviceId);
  assert.deepEqual(JSON.parse(got.body), { temperature: 21.5, device: deviceId });
  assert.equal(got.properties.level, 'high & mighty');
  assert.equal(got.properties.unit, 'C/°');
  assert.equal(got.systemProperties.contentType, 'application/json');
  assert.equal(got.systemProperties.connectionDeviceId, deviceId);
}

test('X.509 CA device: telemetry, C2D, reconnect', { timeout: 60000 }, async () => {
  const client = await x509Client('node-ca', 'node-ca-chain.pem', 'node-ca.key');
  const c2d = new Promise((resolve) => client.on('message', (m) => { client.complete(m, () => {}); resolve(m); }));
  await client.open();
  await sendAndCheck(client, 'node-ca', 'node-ca-1');

  await run(process.env.HUBCTL, ['c2d', 'send', 'node-ca', 'hello from the cloud', '--prop', 'color=blue', '--message-id', 'c2d-node-1'], { env: process.env });
  const m = await c2d;
  assert.equal(m.data.toString(), 'hello from the cloud');
  assert.equal(m.messageId, 'c2d-node-1');
  assert.equal(m.properties.getValue('color'), 'blue');

  await client.close();
  await client.open();
  await sendAndCheck(client, 'node-ca', 'node-ca-2');
  await client.close();
});

test('SAS device: telemetry', { timeout: 30000 }, async () => {
  const client = await sasClient('node-sas', process.env.INTEROP_SAS_KEY);
  await client.open();
  await sendAndCheck(client, 'node-sas', 'node-sas-1');
  await client.close();
});

test('selfSigned device: telemetry', { timeout: 30000 }, async () => {
  const client = await x509Client('node-self', 'node-self.pem', 'node-self.key');
  await client.open();
  await sendAndCheck(client, 'node-self', 'node-self-1');
  await client.close();
});

test('an unregistered device is refused with UnauthorizedError', { timeout: 30000 }, async () => {
  const client = await x509Client('node-nobody', 'node-nobody-chain.pem', 'node-nobody.key');
  await assert.rejects(client.open(), (err) => err.constructor.name === 'UnauthorizedError' || /not authori[sz]ed/i.test(String(err && err.message)));
});
