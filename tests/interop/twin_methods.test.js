// Device twins and direct methods with the official SDKs: a device on MQTT
// with its X.509 chain gets its twin, reports properties, receives a desired
// property change made through Registry.updateTwin, and answers a direct
// method invoked through the service Client's invokeDeviceMethod.
// Needs the environment interop_node.sh sets (see device.test.js).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const https = require('node:https');
const path = require('node:path');
const { Client: DeviceClient } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const { Registry, Client: ServiceClient } = require('azure-iothub');

const pki = process.env.INTEROP_PKI;
const mqttPort = Number(process.env.HUB_MQTT_PORT || 8883);
const httpsPort = Number(process.env.HUB_PORT || 443);
const ca = fs.readFileSync(process.env.HUB_CAFILE, 'utf8');
const gateway = mqttPort === 8883 ? '' : `;GatewayHostName=localhost:${mqttPort}`;

function onHubPort(sdkObject) {
  // The service SDKs have no port option; off 443 swap their agent (reference §8).
  if (httpsPort !== 443) {
    sdkObject._restApiClient.setOptions({ http: { agent: new https.Agent({ keepAlive: true, port: httpsPort, ca }) } });
  }
  return sdkObject;
}

async function device(id) {
  const client = DeviceClient.fromConnectionString(`HostName=localhost;DeviceId=${id};x509=true${gateway}`, Mqtt);
  await client.setOptions({
    cert: fs.readFileSync(path.join(pki, `${id}-chain.pem`), 'utf8'),
    key: fs.readFileSync(path.join(pki, `${id}.key`), 'utf8'),
    ca,
  });
  await client.open();
  return client;
}

test('twin: get, report, desired change through Registry.updateTwin', { timeout: 60000 }, async () => {
  const client = await device('node-twin');
  const registry = onHubPort(Registry.fromConnectionString(process.env.HUB_CONNECTION_STRING));
  try {
    const twin = await client.getTwin();
    assert.equal(typeof twin.properties.desired.$version, 'number');
    assert.equal(typeof twin.properties.reported.$version, 'number');

    await new Promise((resolve, reject) => twin.properties.reported.update(
      { firmware: '1.2.3', battery: { level: 87 } }, (err) => (err ? reject(err) : resolve())));
    const { responseBody: afterReport } = await registry.getTwin('node-twin');
    assert.equal(afterReport.properties.reported.firmware, '1.2.3');
    assert.equal(afterReport.properties.reported.battery.level, 87);

    const desired = new Promise((resolve) => twin.on('properties.desired', (delta) => {
      if (delta.interval !== undefined) resolve(delta);
    }));
    const { responseBody: current } = await registry.getTwin('node-twin');
    await registry.updateTwin('node-twin', { tags: { site: 'lab' }, properties: { desired: { interval: 30 } } }, current.etag);
    const delta = await desired;
    assert.equal(delta.interval, 30);
    assert.equal(typeof delta.$version, 'number');

    const { responseBody: after } = await registry.getTwin('node-twin');
    assert.equal(after.tags.site, 'lab');
    assert.equal(after.properties.desired.interval, 30);
    await assert.rejects(registry.updateTwin('node-twin', { tags: { x: 1 } }, current.etag),
      (err) => err.name === 'InvalidEtagError');
  } finally {
    await client.close();
  }
});

test('direct method through Client.invokeDeviceMethod', { timeout: 60000 }, async () => {
  const client = await device('node-method');
  try {
    client.onDeviceMethod('reboot', (request, response) => {
      response.send(200, { rebooting: true, delay: request.payload.delay }, () => {});
    });
    // Let the SDK's SUBSCRIBE reach the hub before the call.
    await new Promise((r) => setTimeout(r, 500));
    const service = onHubPort(ServiceClient.fromConnectionString(process.env.HUB_CONNECTION_STRING));
    const { result } = await service.invokeDeviceMethod('node-method', {
      methodName: 'reboot', payload: { delay: 5 }, responseTimeoutInSeconds: 10,
    });
    assert.equal(result.status, 200);
    assert.deepEqual(result.payload, { rebooting: true, delay: 5 });
  } finally {
    await client.close();
  }
  const service = onHubPort(ServiceClient.fromConnectionString(process.env.HUB_CONNECTION_STRING));
  await assert.rejects(service.invokeDeviceMethod('node-method', { methodName: 'reboot', payload: null, responseTimeoutInSeconds: 5 }),
    (err) => err.name === 'DeviceNotFoundError' || /not online|NotOnline|404/i.test(String(err.message) + String(err.responseBody)));
});
