// azure-iot-provisioning-service's runBulkEnrollmentOperation against hubd's
// POST /enrollments: a bulk create (then a device of one of the enrollments
// registers over the DPS MQTT endpoint, so the records are real ones), a
// create that partly fails (reported per registrationId, the others applied),
// updateIfMatchEtag as the SDK's type spells it, and a bulk delete, one with a
// stale etag.
// Needs (from tests/e2e/interop_node.sh): HUB_DPS_CONNECTION_STRING,
// HUB_DPS_ID_SCOPE, HUB_DPS_MQTT_PORT; NODE_EXTRA_CA_CERTS=<hub CA> (the
// service client has no `ca` option and only talks to port 443, reference
// §8). Its ids all start with "bulk-", so it shares a hub with dps.test.js.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { ProvisioningServiceClient } = require('azure-iot-provisioning-service');
const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const ProvMqtt = require('azure-iot-provisioning-device-mqtt').Mqtt;
const { SymmetricKeySecurityClient } = require('azure-iot-security-symmetric-key');

const service = ProvisioningServiceClient.fromConnectionString(process.env.HUB_DPS_CONNECTION_STRING);
const idScope = process.env.HUB_DPS_ID_SCOPE;
const dpsMqttHost = `localhost:${process.env.HUB_DPS_MQTT_PORT || 8884}`;

const key = () => crypto.randomBytes(32).toString('base64');
function symEnrollment(registrationId, primaryKey = key()) {
  return {
    registrationId,
    attestation: { type: 'symmetricKey', symmetricKey: { primaryKey, secondaryKey: key() } },
    provisioningStatus: 'enabled',
  };
}
// The callback form: in azure-iot-provisioning-service 1.11.2 the promise
// form of runBulkEnrollmentOperation never settles (its inner callback only
// runs when the caller passed one).
function bulk(mode, enrollments) {
  return new Promise((resolve, reject) => {
    service.runBulkEnrollmentOperation({ mode, enrollments }, (err, result, response) => {
      if (err) return reject(err);
      assert.equal(response.statusCode, 200);
      resolve(result);
    });
  });
}
const notFound = (e) => e.response && e.response.statusCode === 404;

const devKey = key();
const e1 = symEnrollment('bulk-1', devKey);
const e2 = symEnrollment('bulk-2');

test('bulk create: both enrollments are created and usable', async () => {
  const result = await bulk('create', [e1, e2]);
  assert.deepEqual(result, { isSuccessful: true, errors: [] });
  for (const e of [e1, e2]) {
    const { responseBody: got } = await service.getIndividualEnrollment(e.registrationId);
    assert.equal(got.registrationId, e.registrationId);
    assert.equal(got.attestation.symmetricKey.primaryKey, e.attestation.symmetricKey.primaryKey);
    assert.match(got.etag, /\S/);
  }
  // A device of bulk-1 provisions with the key given in the bulk request.
  const security = new SymmetricKeySecurityClient('bulk-1', devKey);
  const reg = await ProvisioningDeviceClient.create(dpsMqttHost, idScope, new ProvMqtt(), security).register();
  assert.equal(reg.status, 'assigned');
  assert.equal(reg.deviceId, 'bulk-1');
});

test('bulk create that partly fails: errors per registrationId, the rest applied', async () => {
  const e3 = symEnrollment('bulk-3');
  const result = await bulk('create', [e2, e3, { registrationId: 'bulk-tpm', attestation: { type: 'tpm', tpm: { endorsementKey: 'AA==' } } }]);
  assert.equal(result.isSuccessful, false);
  assert.deepEqual(result.errors.map((x) => [x.registrationId, x.errorCode]), [['bulk-2', 409001], ['bulk-tpm', 400001]]);
  assert.match(result.errors[0].errorStatus, /already exists/);
  const { responseBody: got3 } = await service.getIndividualEnrollment('bulk-3');
  assert.equal(got3.registrationId, 'bulk-3');
  await assert.rejects(service.getIndividualEnrollment('bulk-tpm'), notFound);
});

test('bulk updateIfMatchEtag: the current etag replaces, a stale one is 412', async () => {
  const { responseBody: cur } = await service.getIndividualEnrollment('bulk-2');
  const { responseBody: cur3 } = await service.getIndividualEnrollment('bulk-3');
  const result = await bulk('updateIfMatchEtag', [
    { ...cur, provisioningStatus: 'disabled' },
    { ...cur3, provisioningStatus: 'disabled', etag: cur.etag },
  ]);
  assert.equal(result.isSuccessful, false);
  assert.deepEqual(result.errors.map((x) => [x.registrationId, x.errorCode]), [['bulk-3', 412001]]);
  const { responseBody: after } = await service.getIndividualEnrollment('bulk-2');
  assert.equal(after.provisioningStatus, 'disabled');
  assert.notEqual(after.etag, cur.etag);
  const { responseBody: after3 } = await service.getIndividualEnrollment('bulk-3');
  assert.equal(after3.provisioningStatus, 'enabled');
});

test('bulk delete: a stale etag is refused, the others are deleted', async () => {
  const { responseBody: cur1 } = await service.getIndividualEnrollment('bulk-1');
  const stale = await bulk('delete', [{ ...cur1, etag: 'stale' }, { registrationId: 'bulk-2' }]);
  assert.equal(stale.isSuccessful, false);
  assert.deepEqual(stale.errors.map((x) => [x.registrationId, x.errorCode]), [['bulk-1', 412001]]);
  await assert.rejects(service.getIndividualEnrollment('bulk-2'), notFound);

  const result = await bulk('delete', [cur1, symEnrollment('bulk-3')]);
  assert.deepEqual(result, { isSuccessful: true, errors: [] });
  for (const id of ['bulk-1', 'bulk-2', 'bulk-3']) await assert.rejects(service.getIndividualEnrollment(id), notFound);
});
