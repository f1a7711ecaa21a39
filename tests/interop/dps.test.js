// The official Azure Device Provisioning Service packages against hubd's DPS
// (issue 8 §3): azure-iot-provisioning-service creates enrollments over the
// service API; azure-iot-provisioning-device with the MQTT and HTTPS
// transports and the X.509 / symmetric-key security clients registers
// devices; azure-iot-device then connects each device to the hub it was
// assigned and sends telemetry, checked with `hubctl monitor`. Refusals:
// an unknown CA, a disabled group, CN != registration id, a disabled
// individual enrollment overriding an enabled group; none may leave a device
// in the hub registry.
// Needs (from tests/e2e/interop_node.sh): HUB_CAFILE, HUB_MQTT_PORT,
// HUB_DPS_MQTT_PORT, HUB_DPS_ID_SCOPE, HUB_DPS_CONNECTION_STRING, HUBCTL and
// the HUB_* variables hubctl reads; INTEROP_PKI with the dps-* certificates
// (dps-root under hub CA "interop-dps", verified; dps-int and dps-int2 under
// it; device certificates dps-* with their -chain.pem; dps-alien under a root
// the hub does not know); NODE_EXTRA_CA_CERTS=HUB_CAFILE (the DPS packages
// have no `ca` option, reference §8). The HTTPS provisioning transport and
// the service client only talk to port 443.
// The tests run in file order (node:test runs top-level tests one at a
// time) and build on each other's enrollments: one fresh hub per run.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { promisify } = require('node:util');
const { ProvisioningServiceClient } = require('azure-iot-provisioning-service');
const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const ProvMqtt = require('azure-iot-provisioning-device-mqtt').Mqtt;
const ProvHttp = require('azure-iot-provisioning-device-http').Http;
const { X509Security } = require('azure-iot-security-x509');
const { SymmetricKeySecurityClient } = require('azure-iot-security-symmetric-key');
const { Client, Message } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');

const run = promisify(execFile);
const pki = process.env.INTEROP_PKI;
const idScope = process.env.HUB_DPS_ID_SCOPE;
const mqttPort = Number(process.env.HUB_MQTT_PORT || 8883);
const dpsMqttHost = `localhost:${process.env.HUB_DPS_MQTT_PORT || 8884}`;
const ca = fs.readFileSync(process.env.HUB_CAFILE, 'utf8');
const service = ProvisioningServiceClient.fromConnectionString(process.env.HUB_DPS_CONNECTION_STRING);
const read = (f) => fs.readFileSync(path.join(pki, f), 'utf8');

// ---- helpers -----------------------------------------------------------------

function x509Security(registrationId, certName) {
  // cert = leaf + intermediate: the chain a device presents in TLS.
  return new X509Security(registrationId, { cert: read(`${certName}-chain.pem`), key: read(`${certName}.key`) });
}

function registerWith(host, transport, security) {
  return ProvisioningDeviceClient.create(host, idScope, transport, security).register();
}

const registerMqtt = (security) => registerWith(dpsMqttHost, new ProvMqtt(), security);
const registerHttp = (security) => registerWith('localhost', new ProvHttp(), security);

// The device's registry entry (hubctl --json device show), or null when the
// hub answers that it does not exist. Any other failure throws.
async function registryDevice(id) {
  try {
    const { stdout } = await run(process.env.HUBCTL, ['--json', 'device', 'show', id], { env: process.env });
    return JSON.parse(stdout);
  } catch (e) {
    if (e.code === 1 && /not.?found|404/i.test(`${e.stdout}${e.stderr}`)) return null;
    throw e;
  }
}

async function assertNotInRegistry(id) {
  assert.equal(await registryDevice(id), null, `device ${id} must not be in the hub registry`);
}

// The registration must fail with UnauthorizedError and the DPS error body
// (errorCode 401002 and a message matching `why`, so that a refusal for
// another reason does not pass). The MQTT transport keeps the parsed body in
// err.result, the HTTPS one (RestApiClient) the raw text in err.responseBody.
async function assertRefused(promise, what, why) {
  let caught;
  await promise.then(
    (r) => assert.fail(`${what}: registration succeeded: ${JSON.stringify(r)}`),
    (e) => { caught = e; },
  );
  assert.ok(caught instanceof Error, `${what}: rejected with an Error`);
  assert.equal(caught.constructor.name, 'UnauthorizedError', `${what}: ${caught.constructor.name}: ${caught.message}`);
  const body = caught.result && typeof caught.result === 'object' ? caught.result : JSON.parse(caught.responseBody);
  assert.equal(body.errorCode, 401002, `${what}: DPS errorCode`);
  assert.match(body.message, why, `${what}: refusal reason`);
  assert.ok(body.trackingId, `${what}: trackingId`);
}

async function monitorOne(deviceId, messageId) {
  const { stdout } = await run(process.env.HUBCTL, ['--json', 'monitor', '--device', deviceId, '--count', '100', '--timeout', '3'], { env: process.env }).catch((e) => e);
  const events = stdout.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  return events.find((e) => e.systemProperties.messageId === messageId);
}

// Connects the provisioned device to the hub it was assigned to, with the
// connection string DPS's answer implies, and checks one telemetry message.
async function connectAndSend(result, auth) {
  // Only a non-standard port needs GatewayHostName (reference §8).
  const gateway = mqttPort === 8883 ? '' : `;GatewayHostName=${result.assignedHub}:${mqttPort}`;
  const cred = auth.key ? `SharedAccessKey=${auth.key}` : 'x509=true';
  const client = Client.fromConnectionString(`HostName=${result.assignedHub};DeviceId=${result.deviceId};${cred}${gateway}`, Mqtt);
  await client.setOptions(auth.key ? { ca } : { cert: read(`${auth.cert}-chain.pem`), key: read(`${auth.cert}.key`), ca });
  await client.open();
  const messageId = `${result.deviceId}-dps-1`;
  const msg = new Message(JSON.stringify({ provisioned: true, device: result.deviceId }));
  msg.messageId = messageId;
  try {
    await client.sendEvent(msg);
  } finally {
    await client.close();
  }
  const got = await monitorOne(result.deviceId, messageId);
  assert.ok(got, `message ${messageId} reached the hub`);
  assert.equal(got.deviceId, result.deviceId);
  assert.deepEqual(JSON.parse(got.body), { provisioned: true, device: result.deviceId });
}

function checkAssigned(result, id, group) {
  assert.equal(result.registrationId, id);
  assert.equal(result.deviceId, id);
  assert.equal(result.status, 'assigned');
  assert.equal(typeof result.assignedHub, 'string');
  assert.ok(result.assignedHub.length > 0, 'assignedHub is set');
  if (group) {
    const att = result.x509 || result.symmetricKey;
    assert.ok(att, 'the registration state names its attestation');
    assert.equal(att.enrollmentGroupId, group);
  }
}

const derivedKey = (groupKey, id) =>
  crypto.createHmac('sha256', Buffer.from(groupKey, 'base64')).update(id, 'utf8').digest('base64');

// ---- enrollments (service API) --------------------------------------------------

test('service: X.509 enrollment group by caReferences to the verified hub CA', { timeout: 30000 }, async () => {
  const put = await service.createOrUpdateEnrollmentGroup({
    enrollmentGroupId: 'dps-x509-ca',
    attestation: { type: 'x509', x509: { caReferences: { primary: 'interop-dps' } } },
    provisioningStatus: 'enabled',
  });
  assert.equal(put.responseBody.enrollmentGroupId, 'dps-x509-ca');
  const { responseBody: g } = await service.getEnrollmentGroup('dps-x509-ca');
  assert.equal(g.enrollmentGroupId, 'dps-x509-ca');
  assert.equal(g.attestation.type, 'x509');
  assert.equal(g.attestation.x509.caReferences.primary, 'interop-dps');
  assert.equal(g.provisioningStatus, 'enabled');
  assert.equal(typeof g.etag, 'string');
  assert.ok(g.etag.length > 0, 'the group has an etag');
});

test('service: X.509 enrollment group by inline signingCertificates (an intermediate)', { timeout: 30000 }, async () => {
  const pem = read('dps-int2.pem');
  await service.createOrUpdateEnrollmentGroup({
    enrollmentGroupId: 'dps-x509-int2',
    attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: pem } } } },
    provisioningStatus: 'enabled',
  });
  const { responseBody: g } = await service.getEnrollmentGroup('dps-x509-int2');
  assert.equal(g.attestation.type, 'x509');
  assert.ok(g.attestation.x509.signingCertificates.primary, 'the signing certificate is kept');
  assert.ok(g.etag, 'the group has an etag');
});

// ---- X.509 registrations ----------------------------------------------------------

test('X.509 over MQTT: a device under an intermediate registers, connects, sends', { timeout: 60000 }, async () => {
  await assertNotInRegistry('dps-mqtt-1');
  const result = await registerMqtt(x509Security('dps-mqtt-1', 'dps-mqtt-1'));
  checkAssigned(result, 'dps-mqtt-1', 'dps-x509-ca');
  const dev = await registryDevice('dps-mqtt-1');
  assert.ok(dev, 'the registration created the device');
  assert.equal(dev.authentication.type, 'certificateAuthority');
  await connectAndSend(result, { cert: 'dps-mqtt-1' });
});

test('X.509 over HTTPS: a device under an intermediate registers, connects, sends', { timeout: 60000 }, async () => {
  await assertNotInRegistry('dps-http-1');
  const result = await registerHttp(x509Security('dps-http-1', 'dps-http-1'));
  checkAssigned(result, 'dps-http-1', 'dps-x509-ca');
  assert.ok(await registryDevice('dps-http-1'), 'the registration created the device');
  await connectAndSend(result, { cert: 'dps-http-1' });
});

test('X.509: the intermediate\'s inline group wins over the root\'s group', { timeout: 60000 }, async () => {
  const result = await registerMqtt(x509Security('dps-int2-a', 'dps-int2-a'));
  checkAssigned(result, 'dps-int2-a', 'dps-x509-int2');
  await connectAndSend(result, { cert: 'dps-int2-a' });
});

test('X.509: re-registration of an assigned device answers the same assignment', { timeout: 60000 }, async () => {
  const result = await registerHttp(x509Security('dps-mqtt-1', 'dps-mqtt-1'));
  checkAssigned(result, 'dps-mqtt-1', 'dps-x509-ca');
});

// ---- symmetric keys ----------------------------------------------------------------

test('symmetric-key group: derived key registers over MQTT, connects, sends', { timeout: 60000 }, async () => {
  const groupKey = crypto.randomBytes(32).toString('base64');
  await service.createOrUpdateEnrollmentGroup({
    enrollmentGroupId: 'dps-sym',
    attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: groupKey, secondaryKey: crypto.randomBytes(32).toString('base64') } },
    provisioningStatus: 'enabled',
  });
  const { responseBody: g } = await service.getEnrollmentGroup('dps-sym');
  assert.equal(g.attestation.type, 'symmetricKey');
  assert.equal(g.attestation.symmetricKey.primaryKey, groupKey);

  // A wrong key (the group key itself, not the derived one) is refused.
  await assertRefused(registerMqtt(new SymmetricKeySecurityClient('dps-sym-bad', groupKey)), 'group key as device key', /SAS/);
  await assertNotInRegistry('dps-sym-bad');

  const key = derivedKey(groupKey, 'dps-sym-1');
  const result = await registerMqtt(new SymmetricKeySecurityClient('dps-sym-1', key));
  checkAssigned(result, 'dps-sym-1', 'dps-sym');
  const dev = await registryDevice('dps-sym-1');
  assert.ok(dev, 'the registration created the device');
  assert.equal(dev.authentication.type, 'sas');
  assert.equal(dev.authentication.symmetricKey.primaryKey, key);
  await connectAndSend(result, { key });
});

test('symmetric-key group: derived key registers over HTTPS', { timeout: 60000 }, async () => {
  const { responseBody: g } = await service.getEnrollmentGroup('dps-sym');
  const key = derivedKey(g.attestation.symmetricKey.primaryKey, 'dps-sym-2');
  const result = await registerHttp(new SymmetricKeySecurityClient('dps-sym-2', key));
  checkAssigned(result, 'dps-sym-2', 'dps-sym');
  await connectAndSend(result, { key });
});

test('symmetric-key individual enrollment: hub-made keys, deviceId, initialTwin, payload (HTTPS)', { timeout: 60000 }, async () => {
  await service.createOrUpdateIndividualEnrollment({
    registrationId: 'dps-sym-ind',
    deviceId: 'dps-sym-ind-dev',
    attestation: { type: 'symmetricKey' },
    initialTwin: { tags: { site: 'lab' }, properties: { desired: { interval: 30 } } },
    provisioningStatus: 'enabled',
  });
  const { responseBody: e } = await service.getIndividualEnrollment('dps-sym-ind');
  const key = e.attestation.symmetricKey.primaryKey;
  assert.equal(Buffer.from(key, 'base64').length >= 16, true, 'the hub generated a key');
  assert.equal(e.deviceId, 'dps-sym-ind-dev');

  const client = ProvisioningDeviceClient.create('localhost', idScope, new ProvHttp(), new SymmetricKeySecurityClient('dps-sym-ind', key));
  client.setProvisioningPayload({ modelId: 'dtmi:hubd:interop;1' }); // accepted, ignored
  const result = await client.register();
  assert.equal(result.registrationId, 'dps-sym-ind');
  assert.equal(result.deviceId, 'dps-sym-ind-dev');
  assert.equal(result.status, 'assigned');
  const dev = await registryDevice('dps-sym-ind-dev');
  assert.ok(dev, 'the device was created under the enrollment\'s deviceId');
  assert.equal(dev.authentication.symmetricKey.primaryKey, key);

  const gateway = mqttPort === 8883 ? '' : `;GatewayHostName=${result.assignedHub}:${mqttPort}`;
  const hub = Client.fromConnectionString(`HostName=${result.assignedHub};DeviceId=${result.deviceId};SharedAccessKey=${key}${gateway}`, Mqtt);
  await hub.setOptions({ ca });
  await hub.open();
  try {
    const twin = await hub.getTwin();
    assert.equal(twin.properties.desired.interval, 30, 'initialTwin desired properties applied');
  } finally {
    await hub.close();
  }
});

// ---- refusals ------------------------------------------------------------------

test('refused: a device under a CA the hub does not know (MQTT and HTTPS)', { timeout: 60000 }, async () => {
  await assertRefused(registerMqtt(x509Security('dps-alien', 'dps-alien')), 'alien CA over MQTT', /chain/i);
  await assertRefused(registerHttp(x509Security('dps-alien', 'dps-alien')), 'alien CA over HTTPS', /chain/i);
  await assertNotInRegistry('dps-alien');
});

test('refused: leaf CN differs from the registration id', { timeout: 60000 }, async () => {
  // A valid certificate for dps-cn-real, used to claim dps-cn-other.
  await assertRefused(registerMqtt(x509Security('dps-cn-other', 'dps-cn-real')), 'CN mismatch over MQTT', /CN/);
  await assertRefused(registerHttp(x509Security('dps-cn-other', 'dps-cn-real')), 'CN mismatch over HTTPS', /CN/);
  await assertNotInRegistry('dps-cn-other');
  await assertNotInRegistry('dps-cn-real');
});

test('refused: the enrollment group is disabled, then admitted once re-enabled', { timeout: 60000 }, async () => {
  const { responseBody: g } = await service.getEnrollmentGroup('dps-x509-int2');
  g.provisioningStatus = 'disabled';
  const put = await service.createOrUpdateEnrollmentGroup(g); // If-Match: its etag
  assert.equal(put.responseBody.provisioningStatus, 'disabled');
  assert.notEqual(put.responseBody.etag, g.etag, 'an update changes the etag');
  const { responseBody: g2 } = await service.getEnrollmentGroup('dps-x509-int2');
  assert.equal(g2.provisioningStatus, 'disabled');

  await assertRefused(registerMqtt(x509Security('dps-int2-b', 'dps-int2-b')), 'disabled group over MQTT', /disabled/);
  await assertRefused(registerHttp(x509Security('dps-int2-b', 'dps-int2-b')), 'disabled group over HTTPS', /disabled/);
  await assertNotInRegistry('dps-int2-b');

  // A stale etag is refused (412), the current one accepted.
  g2.provisioningStatus = 'enabled';
  await assert.rejects(service.createOrUpdateEnrollmentGroup({ ...g2, etag: g.etag }), (e) => e.response && e.response.statusCode === 412);
  await service.createOrUpdateEnrollmentGroup(g2);
  const result = await registerMqtt(x509Security('dps-int2-b', 'dps-int2-b'));
  checkAssigned(result, 'dps-int2-b', 'dps-x509-int2');
});

test('refused: a disabled individual enrollment overrides its enabled group', { timeout: 60000 }, async () => {
  const put = await service.createOrUpdateIndividualEnrollment({
    registrationId: 'dps-ind-1',
    attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: read('dps-ind-1.pem') } } } },
    provisioningStatus: 'disabled',
  });
  assert.equal(put.responseBody.registrationId, 'dps-ind-1');
  const { responseBody: e } = await service.getIndividualEnrollment('dps-ind-1');
  assert.equal(e.provisioningStatus, 'disabled');
  assert.ok(e.etag, 'the enrollment has an etag');

  await assertRefused(registerMqtt(x509Security('dps-ind-1', 'dps-ind-1')), 'disabled individual over MQTT', /disabled/);
  await assertRefused(registerHttp(x509Security('dps-ind-1', 'dps-ind-1')), 'disabled individual over HTTPS', /disabled/);
  await assertNotInRegistry('dps-ind-1');

  // Enabled, the individual enrollment (not the group) admits the device.
  e.provisioningStatus = 'enabled';
  await service.createOrUpdateIndividualEnrollment(e);
  const result = await registerMqtt(x509Security('dps-ind-1', 'dps-ind-1'));
  checkAssigned(result, 'dps-ind-1');
  assert.ok(!(result.x509 && result.x509.enrollmentGroupId), 'registered through the individual enrollment');
  assert.ok(await registryDevice('dps-ind-1'), 'the registration created the device');
});

// ---- registration records ------------------------------------------------------------

test('service: getDeviceRegistrationState, then deleteDeviceRegistrationState', { timeout: 30000 }, async () => {
  const { responseBody: r } = await service.getDeviceRegistrationState('dps-http-1');
  assert.equal(r.registrationId, 'dps-http-1');
  assert.equal(r.deviceId, 'dps-http-1');
  assert.equal(r.status, 'assigned');
  assert.ok(r.assignedHub, 'assignedHub is set');
  assert.ok(r.etag, 'the record has an etag');

  await service.deleteDeviceRegistrationState('dps-http-1');
  await assert.rejects(service.getDeviceRegistrationState('dps-http-1'), (e) => e.response && e.response.statusCode === 404);
  // Azure leaves the hub's device alone when a registration record goes.
  assert.ok(await registryDevice('dps-http-1'), 'the device stays in the registry');
  // No record was ever made for a refused device.
  await assert.rejects(service.getDeviceRegistrationState('dps-alien'), (e) => e.response && e.response.statusCode === 404);

  // The device registers again (its registry entry exists, the record not).
  const again = await registerMqtt(x509Security('dps-http-1', 'dps-http-1'));
  checkAssigned(again, 'dps-http-1', 'dps-x509-ca');
  const { responseBody: r2 } = await service.getDeviceRegistrationState('dps-http-1');
  assert.equal(r2.status, 'assigned');
});

test('service: the group query lists every group, a registration query the group\'s devices', { timeout: 30000 }, async () => {
  const groups = await service.createEnrollmentGroupQuery({ query: '*' }).next();
  const ids = groups.responseBody.map((g) => g.enrollmentGroupId).sort();
  assert.deepEqual(ids, ['dps-sym', 'dps-x509-ca', 'dps-x509-int2']);

  const regs = await service.createEnrollmentGroupDeviceRegistrationStateQuery({ query: '*' }, 'dps-x509-int2').next();
  assert.deepEqual(regs.responseBody.map((r) => r.registrationId).sort(), ['dps-int2-a', 'dps-int2-b']);
});

test('service: deleting the intermediate\'s group sends its devices to the root\'s group', { timeout: 60000 }, async () => {
  const { responseBody: g } = await service.getEnrollmentGroup('dps-x509-int2');
  await service.deleteEnrollmentGroup('dps-x509-int2', g.etag);
  await assert.rejects(service.getEnrollmentGroup('dps-x509-int2'), (e) => e.response && e.response.statusCode === 404);
  const result = await registerMqtt(x509Security('dps-int2-a', 'dps-int2-a'));
  checkAssigned(result, 'dps-int2-a', 'dps-x509-ca');
});
