// The official azure-iothub Registry against hubd: create, get, update
// (disable), list and delete devices of every authentication type.
// Needs HUB_CONNECTION_STRING (HostName=localhost) and NODE_EXTRA_CA_CERTS
// (the hub CA), and hubd on 127.0.0.1:443 (HUB_PORT may name another port).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const https = require('node:https');
const fs = require('node:fs');
const { Registry } = require('azure-iothub');

function registry() {
  const reg = Registry.fromConnectionString(process.env.HUB_CONNECTION_STRING);
  const port = Number(process.env.HUB_PORT || 443);
  if (port !== 443) {
    // The SDK has no port option; swap its agent (reference §8) off 443 only.
    const ca = fs.readFileSync(process.env.NODE_EXTRA_CA_CERTS);
    reg._restApiClient.setOptions({ http: { agent: new https.Agent({ keepAlive: true, port, ca }) } });
  }
  return reg;
}

const suffix = `${process.pid}`;
const ids = {
  ca: `node-ca-${suffix}`,
  self: `node-self-${suffix}`,
  sas: `node-sas-${suffix}`,
};
const THUMB1 = 'A'.repeat(40);
const THUMB2 = 'b'.repeat(64);

test('Registry CRUD through the Azure SDK', async (t) => {
  const reg = registry();

  await t.test('create a certificateAuthority device', async () => {
    const { responseBody: dev } = await reg.create({
      deviceId: ids.ca,
      authentication: { type: 'certificateAuthority' },
    });
    assert.equal(dev.deviceId, ids.ca);
    assert.equal(dev.authentication.type, 'certificateAuthority');
    assert.equal(dev.status, 'enabled');
    assert.equal(dev.connectionState, 'Disconnected');
    assert.match(dev.generationId, /^\d+$/);
    assert.ok(dev.etag.length > 0);
  });

  await t.test('create a selfSigned device', async () => {
    const { responseBody: dev } = await reg.create({
      deviceId: ids.self,
      authentication: { x509Thumbprint: { primaryThumbprint: THUMB1, secondaryThumbprint: THUMB2 } },
    });
    assert.equal(dev.authentication.type, 'selfSigned');
    assert.equal(dev.authentication.x509Thumbprint.primaryThumbprint, THUMB1);
    assert.equal(dev.authentication.x509Thumbprint.secondaryThumbprint, THUMB2.toUpperCase());
  });

  await t.test('create a sas device without keys gets generated keys', async () => {
    const { responseBody: dev } = await reg.create({ deviceId: ids.sas });
    assert.equal(dev.authentication.type, 'sas');
    assert.match(dev.authentication.symmetricKey.primaryKey, /^[A-Za-z0-9+/]{43}=$/);
    assert.match(dev.authentication.symmetricKey.secondaryKey, /^[A-Za-z0-9+/]{43}=$/);
    assert.notEqual(dev.authentication.symmetricKey.primaryKey, dev.authentication.symmetricKey.secondaryKey);
  });

  await t.test('creating an existing id fails with DeviceAlreadyExistsError', async () => {
    await assert.rejects(reg.create({ deviceId: ids.ca, authentication: { type: 'certificateAuthority' } }),
      (err) => err.name === 'DeviceAlreadyExistsError');
  });

  await t.test('get returns the device', async () => {
    const { responseBody: dev } = await reg.get(ids.sas);
    assert.equal(dev.deviceId, ids.sas);
    assert.equal(dev.authentication.type, 'sas');
  });

  await t.test('update disables the device and keeps its keys', async () => {
    const before = (await reg.get(ids.sas)).responseBody;
    const { responseBody: dev } = await reg.update({ deviceId: ids.sas, status: 'disabled', statusReason: 'interop' });
    assert.equal(dev.status, 'disabled');
    assert.equal(dev.statusReason, 'interop');
    assert.equal(dev.authentication.symmetricKey.primaryKey, before.authentication.symmetricKey.primaryKey);
    assert.notEqual(dev.etag, before.etag);
    const again = (await reg.get(ids.sas)).responseBody;
    assert.equal(again.status, 'disabled');
  });

  await t.test('update without authentication keeps a certificate device one', async () => {
    const { responseBody: dev } = await reg.update({ deviceId: ids.ca, status: 'disabled' });
    assert.equal(dev.status, 'disabled');
    assert.equal(dev.authentication.type, 'certificateAuthority');
    assert.equal(dev.authentication.symmetricKey.primaryKey, null);
  });

  await t.test('list includes all three', async () => {
    const { responseBody: list } = await reg.list();
    const got = new Set(list.map((d) => d.deviceId));
    for (const id of Object.values(ids)) assert.ok(got.has(id), `${id} listed`);
  });

  await t.test('query filters by status', async () => {
    const query = reg.createQuery("SELECT * FROM devices WHERE status = 'disabled'", 50);
    const { result } = await query.nextAsTwin();
    const got = result.map((tw) => tw.deviceId);
    assert.ok(got.includes(ids.sas));
    assert.ok(got.includes(ids.ca));
    assert.ok(!got.includes(ids.self));
  });

  await t.test('delete removes each device', async () => {
    for (const id of Object.values(ids)) await reg.delete(id);
    for (const id of Object.values(ids)) {
      await assert.rejects(reg.get(id), (err) => err.name === 'DeviceNotFoundError');
    }
  });
});

test('a wrong key is refused with UnauthorizedError', async () => {
  const cs = process.env.HUB_CONNECTION_STRING.replace(/SharedAccessKey=[^;]+/, 'SharedAccessKey=' + Buffer.alloc(32, 7).toString('base64'));
  const saved = process.env.HUB_CONNECTION_STRING;
  process.env.HUB_CONNECTION_STRING = cs;
  try {
    const reg = registry();
    await assert.rejects(reg.get('whatever'), (err) => err.name === 'UnauthorizedError');
  } finally {
    process.env.HUB_CONNECTION_STRING = saved;
  }
});
