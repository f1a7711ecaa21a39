/*
 * Browser test of hubd's web console: playwright-core drives Debian's
 * chromium (headless) through what an operator does, against a real hubd
 * started by tests/e2e/console.sh, with real devices (mosquitto clients).
 *
 * Environment (console.sh sets it):
 *   CONSOLE_URL            https://localhost:PORT/
 *   CONSOLE_SPKI           base64 SHA-256 of the hub's server public key: chromium
 *                          trusts exactly that key (--ignore-certificate-errors-spki-list),
 *                          not every certificate
 *   HUB_CONNECTION_STRING  the iothubowner connection string
 *   HUB_DPS_CONNECTION_STRING, HUB_DPS_ID_SCOPE   the provisioning service's
 *                          provisioningserviceowner connection string and ID scope
 *   HUB_CAFILE, HUB_MQTT_PORT, HUBCTL, HUB_PORT
 *   CONSOLE_PKI            directory with root.pem/root.key (the CA the browser
 *                          uploads), console-dev1-chain.pem/.key (a device under
 *                          it) and console-dps1-chain.pem/.key (one that registers
 *                          with the provisioning service)
 *   CONSOLE_SCREENSHOTS    where the screenshots go
 *   CHROMIUM               the browser (default /usr/bin/chromium)
 */
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run tests/e2e/console.sh)`);
  return v;
};
const URL_ = env('CONSOLE_URL');
const CS = env('HUB_CONNECTION_STRING');
const PKI = env('CONSOLE_PKI');
const SHOTS = env('CONSOLE_SCREENSHOTS');
const HUBCTL = env('HUBCTL');
const DPS_CS = env('HUB_DPS_CONNECTION_STRING');
const DPS_SCOPE = env('HUB_DPS_ID_SCOPE');
const DEVICE = 'console-dev1';
const CA_NAME = 'console-root';
const GROUP = 'console-group';
const DPS_DEVICE = 'console-dps1';
const ENROLLMENT = 'console-ind1';
const STEP_MS = 20000;

let browser;
let context;
let page;
const pageErrors = [];

async function shot(name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/* mosquitto_* as the device, with its certificate chain. */
function mqttArgs() {
  return ['-h', '127.0.0.1', '-p', env('HUB_MQTT_PORT'), '--cafile', env('HUB_CAFILE'), '-V', 'mqttv311',
    '--cert', path.join(PKI, `${DEVICE}-chain.pem`), '--key', path.join(PKI, `${DEVICE}.key`),
    '-i', DEVICE, '-u', `localhost/${DEVICE}/?api-version=2021-04-12`];
}

/* Every form control on the page has a label: a keyboard or screen-reader
 * user can tell what each one is. Returns the unlabelled ones. */
async function unlabelledControls() {
  return page.evaluate(() => [...document.querySelectorAll('main input, main select, main textarea, main button')]
    .filter((el) => {
      if (el.closest('[hidden]')) return false;
      if (el.tagName === 'BUTTON') return !(el.textContent.trim() || el.getAttribute('aria-label'));
      return !(el.labels && el.labels.length) && !el.getAttribute('aria-label');
    })
    .map((el) => el.id || el.outerHTML.slice(0, 80)));
}

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'];
  if (process.env.CONSOLE_SPKI) args.push(`--ignore-certificate-errors-spki-list=${process.env.CONSOLE_SPKI}`);
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args });
  context = await browser.newContext({
    viewport: { width: 1366, height: 860 },
    ignoreHTTPSErrors: !process.env.CONSOLE_SPKI,
  });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(URL_).origin });
  page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on('pageerror', (e) => pageErrors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) pageErrors.push(`console: ${m.text()}`);
  });
  page.on('dialog', (d) => d.accept());
});

after(async () => {
  if (browser) await browser.close();
});

test('the console is served by hubd with its security headers', async () => {
  const res = await page.goto(URL_);
  assert.equal(res.status(), 200);
  const hdr = res.headers();
  assert.match(hdr['content-type'], /^text\/html/);
  assert.match(hdr['content-security-policy'], /default-src 'self'/);
  assert.equal(hdr['x-frame-options'], 'DENY');
  assert.equal(hdr['x-content-type-options'], 'nosniff');
  assert.equal(hdr['referrer-policy'], 'no-referrer');
  await page.locator('#signin-form').waitFor();
  assert.equal(await page.title(), 'Sign in · hubd console');
});

test('a wrong connection string is refused with the hub\'s reason', async () => {
  /* Right host and policy, wrong key: the hub answers 401. */
  const wrongKey = Buffer.alloc(32, 7).toString('base64');
  const wrong = CS.replace(/SharedAccessKey=[^;]*/, `SharedAccessKey=${wrongKey}`);
  await page.fill('#connection-string', wrong);
  await page.click('#signin-button');
  const err = page.locator('#signin-error');
  await err.filter({ hasText: 'did not accept the credentials' }).waitFor();
  const text = await err.textContent();
  assert.match(text, /signature/i, text);
  assert.match(text, /401 IotHubUnauthorizedAccess/, text);
  await shot('01-signin-wrong-connection-string');
  /* A device connection string is refused before any request. */
  await page.fill('#connection-string', 'HostName=localhost;DeviceId=d;SharedAccessKey=AAAA');
  await page.click('#signin-button');
  await err.filter({ hasText: 'device connection string' }).waitFor();
  assert.equal(await page.locator('#nav').isHidden(), true, 'still signed out');
});

test('sign in with the keyboard; the key is kept in memory only', async () => {
  await page.fill('#connection-string', '');
  await page.focus('#connection-string');
  await page.keyboard.type(CS);
  await page.keyboard.press('Enter');
  await page.locator('h1', { hasText: 'CA certificates' }).waitFor();
  const key = /SharedAccessKey=([^;]*)/.exec(CS)[1];
  const stored = await page.evaluate(() => ({
    local: localStorage.length, session: sessionStorage.length, cookie: document.cookie,
    html: document.documentElement.outerHTML, url: location.href,
  }));
  assert.equal(stored.local, 0);
  assert.equal(stored.session, 0);
  assert.equal(stored.cookie, '');
  assert.ok(!stored.html.includes(key), 'the key is not in the DOM');
  assert.ok(!stored.url.includes(key), 'the key is not in the URL');
  assert.deepEqual(await unlabelledControls(), []);
});

test('CA registration: upload, verification code, proof of possession, verified', async () => {
  await page.fill('#ca-name', CA_NAME);
  await page.setInputFiles('#ca-file', path.join(PKI, 'root.pem'));
  await page.click('#ca-upload');
  const row = page.locator(`#ca-table tr[data-name="${CA_NAME}"]`);
  await row.locator('.status', { hasText: 'Unverified' }).waitFor();
  assert.match(await row.textContent(), /CN=Console Root CA/);
  /* Days to expiry: the root is valid 10 years. */
  const days = Number((await row.locator('.expiry').textContent()).match(/(\d+) day/)[1]);
  assert.ok(days > 3000 && days < 3700, `days to expiry ${days}`);

  /* Uploading sets off the proof of possession: code, command, copy. */
  const code = (await page.locator('#pop-code').textContent()).trim();
  assert.match(code, /^[0-9A-F]{48}$/);
  const cmd = await page.locator('#pop-command').textContent();
  assert.ok(cmd.startsWith(`hubctl cert verification --code ${code} `), cmd);
  await page.click('#pop-copy-code');
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(copied, code);
  await shot('02-ca-verification-code');

  /* The operator's side: make the verification certificate with hubctl,
   * from the code the page copied. */
  execFileSync(HUBCTL, ['cert', 'verification', '--code', copied, '--issuer-cert', 'root.pem',
    '--issuer-key', 'root.key', '--out', 'verify', '--force'], { cwd: PKI, stdio: 'pipe' });

  /* A refusal first, in plain words: the CA itself is not the proof. */
  await page.setInputFiles('#pop-file', path.join(PKI, 'root.pem'));
  await page.click('#pop-verify');
  await page.locator('#pop-error', { hasText: 'refused the request' }).waitFor();
  assert.match(await page.locator('#pop-error').textContent(), /CN|verification/i);

  await page.setInputFiles('#pop-file', path.join(PKI, 'verify.pem'));
  await page.click('#pop-verify');
  await page.locator('#pop-error', { hasText: 'is verified' }).waitFor();
  await row.locator('.status', { hasText: /^✓ Verified$/ }).waitFor();
  assert.equal(await row.locator('.status').textContent(), '✓ Verified');
  await shot('03-ca-verified');

  /* The same name again is refused, and the console says why. */
  await page.fill('#ca-name', CA_NAME);
  await page.setInputFiles('#ca-file', path.join(PKI, 'root.pem'));
  await page.click('#ca-upload');
  await page.locator('#ca-upload-error', { hasText: 'already exists' }).waitFor();
  assert.match(await page.locator('#ca-upload-error').textContent(), /409 CertificateAlreadyExists/);
  /* hubctl, another client, sees the CA verified. */
  const show = execFileSync(HUBCTL, ['ca', 'show', CA_NAME], { encoding: 'utf8' });
  assert.match(show, /verified:\s+yes/);
  assert.deepEqual(await unlabelledControls(), []);
});

test('create a device, see its telemetry in the live view', async () => {
  await page.click('#nav a[data-nav="devices"]');
  await page.locator('h1', { hasText: 'Devices' }).waitFor();
  await page.fill('#device-id', DEVICE);
  await page.selectOption('#device-auth', 'certificateAuthority');
  await page.click('#device-create');
  const row = page.locator(`#device-table tr[data-device="${DEVICE}"]`);
  await row.locator('.connection', { hasText: 'Disconnected' }).waitFor();
  assert.match(await row.textContent(), /CA-signed certificate/);
  assert.deepEqual(await unlabelledControls(), []);

  await page.click('#nav a[data-nav="telemetry"]');
  await page.locator('#telemetry-state', { hasText: 'Live: waiting' }).waitFor();
  execFileSync('timeout', ['20', 'mosquitto_pub', ...mqttArgs(), '-q', '1',
    '-t', `devices/${DEVICE}/messages/events/alert=high&%24.ct=application%2Fjson`, '-m', '{"temp":21.5}']);
  const msg = page.locator('#telemetry-table tbody tr', { hasText: DEVICE }).first();
  await msg.waitFor();
  assert.match(await msg.textContent(), /\{"temp":21\.5\}/);
  assert.match(await msg.textContent(), /alert=high/);
  await page.locator('#chart-summary', { hasText: /^1 message in the last 5 minutes/ }).waitFor();
  assert.ok(await page.locator('#telemetry-chart svg rect.bar').count() >= 1, 'a bar in the chart');
  /* The filter hides other devices' messages. */
  await page.fill('#telemetry-device', 'someone-else');
  await page.click('#telemetry-filter button[type="submit"]');
  await page.locator('#telemetry-table tbody tr', { hasText: 'No message yet' }).waitFor();
  await page.fill('#telemetry-device', DEVICE);
  await page.click('#telemetry-filter button[type="submit"]');
  await msg.waitFor();
  await shot('04-telemetry');
});

test('the device turns Connected while mosquitto_sub holds a connection; C2D reaches it', async () => {
  const sub = spawn('mosquitto_sub', [...mqttArgs(), '-q', '1', '-v', '-C', '1', '-W', '60',
    '-t', `devices/${DEVICE}/messages/devicebound/#`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let subOut = '';
  sub.stdout.on('data', (d) => { subOut += d; });
  sub.stderr.on('data', (d) => { subOut += d; });
  const subExit = new Promise((resolve) => sub.on('exit', resolve));
  try {
    await page.click('#nav a[data-nav="devices"]');
    const row = page.locator(`#device-table tr[data-device="${DEVICE}"]`);
    await row.locator('.connection', { hasText: '● Connected' }).waitFor();
    await shot('05-devices-connected');

    await row.locator('a').click();
    await page.locator('h1', { hasText: `Device ${DEVICE}` }).waitFor();
    await page.locator('#device-facts dd[data-fact="Connection"]', { hasText: 'Connected' }).waitFor();
    assert.deepEqual(await unlabelledControls(), []);

    /* Twin: tags and a desired property, sent as a merge patch with the etag. */
    await page.locator('#twin-meta', { hasText: 'version' }).waitFor();
    await page.fill('#twin-tags', '{"site": "lab"}');
    await page.fill('#twin-desired', '{"interval": 5}');
    await page.click('#twin-save');
    await page.locator('#twin-error', { hasText: 'Saved' }).waitFor();
    const twin = JSON.parse(execFileSync(HUBCTL, ['--json', 'twin', 'show', DEVICE], { encoding: 'utf8' }));
    assert.equal(twin.tags.site, 'lab');
    assert.equal(twin.properties.desired.interval, 5);

    await page.fill('#c2d-body', 'hello from the console');
    await page.fill('#c2d-props', 'color=blue');
    await page.fill('#c2d-message-id', 'console-1');
    await page.click('#c2d-send');
    await page.locator('#c2d-result', { hasText: 'Queued: message id console-1' }).waitFor();
    const code = await Promise.race([subExit, new Promise((r) => setTimeout(() => r('timeout'), STEP_MS))]);
    assert.equal(code, 0, `mosquitto_sub: ${subOut}`);
    assert.match(subOut, new RegExp(`^devices/${DEVICE}/messages/devicebound/\\S*color=blue\\S* hello from the console$`, 'm'));
    await shot('06-device');
  } finally {
    sub.kill();
  }
  /* mosquitto_sub is gone: the page shows it, and a method call says why it fails. */
  await page.locator('#device-facts dd[data-fact="Connection"]', { hasText: 'Disconnected' }).waitFor();
  await page.fill('#method-name', 'reboot');
  await page.click('#method-invoke');
  await page.locator('#method-error', { hasText: 'not connected' }).waitFor();
  assert.match(await page.locator('#method-error').textContent(), /404 DeviceNotOnline/);
});

test('disable and delete a device from the list', async () => {
  await page.click('#nav a[data-nav="devices"]');
  const row = page.locator(`#device-table tr[data-device="${DEVICE}"]`);
  await row.getByRole('button', { name: `Disable ${DEVICE}` }).click();
  await row.getByText('disabled', { exact: true }).waitFor();
  const dev = JSON.parse(execFileSync(HUBCTL, ['--json', 'device', 'show', DEVICE], { encoding: 'utf8' }));
  assert.equal(dev.status, 'disabled');
  await page.fill('#device-search', 'console-');
  await page.click('#device-search-form button[type="submit"]');
  await row.waitFor();
  await page.fill('#device-search', 'nomatch-');
  await page.click('#device-search-form button[type="submit"]');
  await page.locator('#device-table tbody', { hasText: 'No device matches' }).waitFor();
  await page.fill('#device-search', '');
  await page.click('#device-search-form button[type="submit"]');
  await row.getByRole('button', { name: `Delete ${DEVICE}` }).click();
  await row.waitFor({ state: 'detached' });
  assert.throws(() => execFileSync(HUBCTL, ['device', 'show', DEVICE], { stdio: 'pipe' }), /DeviceNotFound|status 1/);
});

/* hubctl dps register as the device: chain and key made by hubctl cert device.
 * Resolves {code, out}; never throws (a refusal is what some steps expect). */
function dpsRegister() {
  try {
    const out = execFileSync(HUBCTL, ['dps', 'register', DPS_DEVICE, '--id-scope', DPS_SCOPE, '--timeout', '15',
      '--cert', path.join(PKI, `${DPS_DEVICE}-chain.pem`), '--key', path.join(PKI, `${DPS_DEVICE}.key`)],
    { encoding: 'utf8', stdio: 'pipe' });
    return { code: 0, out };
  } catch (e) {
    return { code: e.status, out: `${e.stdout || ''}${e.stderr || ''}` };
  }
}

const hubctlJson = (...args) => JSON.parse(execFileSync(HUBCTL, ['--json', ...args], { encoding: 'utf8' }));

test('provisioning: its own sign-in; a hub key is refused there; the key stays in memory', async () => {
  await page.click('#nav a[data-nav="provisioning"]');
  await page.locator('h1', { hasText: 'Provisioning' }).waitFor();
  await page.locator('#dps-signin-form').waitFor();
  /* The hub's iothubowner key does not open the provisioning service. */
  await page.fill('#dps-connection-string', CS);
  await page.click('#dps-signin-button');
  const err = page.locator('#dps-signin-error');
  await err.filter({ hasText: 'did not accept the credentials' }).waitFor();
  assert.match(await err.textContent(), /401 IotHubUnauthorizedAccess/);
  assert.match(await err.textContent(), /DPS connection:/);
  /* A malformed ID scope is refused before any request. */
  await page.fill('#dps-connection-string', DPS_CS);
  await page.fill('#dps-id-scope', 'nope');
  await page.click('#dps-signin-button');
  await err.filter({ hasText: 'ID scope' }).waitFor();
  assert.equal(await page.locator('#dps-signout').count(), 0, 'still signed out of the provisioning service');

  await page.fill('#dps-id-scope', DPS_SCOPE);
  await page.focus('#dps-connection-string');
  await page.keyboard.press('Enter');
  await page.locator('#dps-id-scope-shown', { hasText: DPS_SCOPE }).waitFor();
  assert.match(await page.locator('#who').textContent(), /DPS provisioningserviceowner/);
  assert.match(await page.locator('#dps-register-command').textContent(), new RegExp(`--id-scope ${DPS_SCOPE} `));
  const key = /SharedAccessKey=([^;]*)/.exec(DPS_CS)[1];
  const stored = await page.evaluate(() => ({
    local: localStorage.length, session: sessionStorage.length, cookie: document.cookie,
    html: document.documentElement.outerHTML, url: location.href,
  }));
  assert.equal(stored.local, 0);
  assert.equal(stored.session, 0);
  assert.equal(stored.cookie, '');
  assert.ok(!stored.html.includes(key), 'the DPS key is not in the DOM');
  assert.ok(!stored.url.includes(key), 'the DPS key is not in the URL');
  await page.locator('#group-table tbody', { hasText: 'No enrollment group yet' }).waitFor();
  assert.deepEqual(await unlabelledControls(), []);
});

test('provisioning: an X.509 group on the verified hub CA, disabled and enabled, a device registers', async () => {
  /* The CA list comes from the hub's API: the CA verified above is offered. */
  await page.locator(`#group-ca option[value="${CA_NAME}"]`, { hasText: 'verified' }).waitFor({ state: 'attached' });
  await page.fill('#group-id', GROUP);
  await page.selectOption('#group-attestation', 'x509');
  await page.selectOption('#group-ca', CA_NAME);
  await page.click('#group-create');
  const row = page.locator(`#group-table tr[data-group="${GROUP}"]`);
  await row.waitFor();
  assert.match(await row.locator('.attestation').textContent(), new RegExp(`X\\.509 · hub CA ${CA_NAME}`));
  assert.equal(await row.locator('.status').textContent(), 'enabled');
  const regs = page.locator(`#group-table tr[data-group-registrations="${GROUP}"]`);
  assert.match(await regs.textContent(), /No device has registered/);
  /* hubctl, another client, sees what the page made. */
  const made = hubctlJson('dps', 'group', 'show', GROUP);
  assert.deepEqual(made.attestation.x509.caReferences, { primary: CA_NAME });

  /* Disable: the service refuses the device; the page and hubctl agree. */
  await row.getByRole('button', { name: `Disable enrollment group ${GROUP}` }).click();
  await row.locator('.status', { hasText: /^disabled$/ }).waitFor();
  assert.equal(hubctlJson('dps', 'group', 'show', GROUP).provisioningStatus, 'disabled');
  const refused = dpsRegister();
  assert.equal(refused.code, 1, refused.out);
  assert.match(refused.out, /refused: 401/);

  await row.getByRole('button', { name: `Enable enrollment group ${GROUP}` }).click();
  await row.locator('.status', { hasText: /^enabled$/ }).waitFor();
  assert.equal(hubctlJson('dps', 'group', 'show', GROUP).provisioningStatus, 'enabled');

  /* The device registers through the group; its record appears under it. */
  const ok = dpsRegister();
  assert.equal(ok.code, 0, ok.out);
  assert.match(ok.out, new RegExp(`^deviceId=${DPS_DEVICE}$`, 'm'));
  const rec = page.locator(`#group-table tr[data-registration="${DPS_DEVICE}"]`);
  await rec.waitFor();
  assert.match(await rec.locator('.reg-status').textContent(), /assigned/);
  assert.equal(await rec.locator('.reg-device').textContent(), DPS_DEVICE);
  assert.equal(await rec.locator('.reg-hub').textContent(), /^HostName=([^;]*)/.exec(DPS_CS)[1]);
  assert.equal(await rec.locator('.reg-substatus').textContent(), 'initialAssignment');
  assert.notEqual(await rec.locator('.reg-updated').textContent(), 'never');
  assert.equal(await row.locator('.reg-count').textContent(), '1');
  assert.deepEqual(await unlabelledControls(), []);
  await shot('07-provisioning');

  /* Refusals, each with the service's status and words: the same id again
   * (the page reads first), and an id the service refuses (400, DPS shape). */
  await page.fill('#group-id', GROUP);
  await page.click('#group-create');
  await page.locator('#group-create-error', { hasText: 'already exists' }).waitFor();
  await page.fill('#group-id', 'Upper_Case');
  await page.selectOption('#group-ca', CA_NAME);
  await page.click('#group-create');
  await page.locator('#group-create-error', { hasText: 'HTTP 400' }).waitFor();
  assert.match(await page.locator('#group-create-error').textContent(),
    /refused the request: .+ \(HTTP 400 errorCode 400001, tracking id [0-9A-F]+\)/);
});

test('provisioning: individual enrollments listed, disabled, deleted; records and groups deleted', async () => {
  /* A symmetric-key group: the service makes the key, the page shows how to derive a device's. */
  await page.fill('#group-id', 'console-sk');
  await page.selectOption('#group-attestation', 'symmetricKey');
  assert.equal(await page.locator('#group-ca').isHidden(), true, 'no CA for a symmetric-key group');
  await page.click('#group-create');
  const skRow = page.locator('#group-table tr[data-group="console-sk"]');
  await skRow.locator('.attestation', { hasText: /^Symmetric key$/ }).waitFor();
  const groupKey = hubctlJson('dps', 'group', 'show', 'console-sk').attestation.symmetricKey.primaryKey;
  assert.match(groupKey, /^[A-Za-z0-9+/]{40,}={0,2}$/);
  assert.match(await page.locator('#group-create-result').textContent(),
    new RegExp(`hubctl dps key derive --group-key ${groupKey.replace(/\+/g, '\\+')} REGID`));
  await skRow.getByRole('button', { name: 'Delete enrollment group console-sk' }).click();
  await skRow.waitFor({ state: 'detached' });

  /* An individual enrollment made by another client (hubctl) shows up. */
  execFileSync(HUBCTL, ['dps', 'enrollment', 'create', ENROLLMENT, '--symmetric-key'], { stdio: 'pipe' });
  const erow = page.locator(`#enrollment-table tr[data-enrollment="${ENROLLMENT}"]`);
  await erow.waitFor();
  assert.match(await erow.textContent(), /Symmetric key/);
  assert.match(await erow.locator('.registration').textContent(), /not registered/);
  /* It registers with its own key; its record shows in its row. */
  const devKey = hubctlJson('dps', 'enrollment', 'show', ENROLLMENT).attestation.symmetricKey.primaryKey;
  const reg = execFileSync(HUBCTL, ['dps', 'register', ENROLLMENT, '--id-scope', DPS_SCOPE, '--key-sas', devKey],
    { encoding: 'utf8', stdio: 'pipe' });
  assert.match(reg, new RegExp(`^deviceId=${ENROLLMENT}$`, 'm'));
  await erow.locator('.registration', { hasText: '✓ assigned' }).waitFor();
  assert.match(await erow.locator('.registration').textContent(), new RegExp(`${ENROLLMENT}.*initialAssignment`));
  await erow.getByRole('button', { name: `Disable enrollment ${ENROLLMENT}` }).click();
  await erow.locator('.status', { hasText: /^disabled$/ }).waitFor();
  assert.equal(hubctlJson('dps', 'enrollment', 'show', ENROLLMENT).provisioningStatus, 'disabled');
  await erow.getByRole('button', { name: `Delete enrollment ${ENROLLMENT}` }).click();
  await erow.waitFor({ state: 'detached' });
  assert.throws(() => execFileSync(HUBCTL, ['dps', 'enrollment', 'show', ENROLLMENT], { stdio: 'pipe' }), /404 Not Found/);
  await page.locator('#enrollment-table tbody', { hasText: 'No individual enrollment' }).waitFor();

  /* The registration record: deleted, the device stays in the hub. */
  const rec = page.locator(`#group-table tr[data-registration="${DPS_DEVICE}"]`);
  await rec.getByRole('button', { name: `Delete the registration record of ${DPS_DEVICE}` }).click();
  await rec.waitFor({ state: 'detached' });
  assert.throws(() => execFileSync(HUBCTL, ['dps', 'registration', 'show', DPS_DEVICE], { stdio: 'pipe' }), /404 Not Found/);
  assert.equal(hubctlJson('device', 'show', DPS_DEVICE).deviceId, DPS_DEVICE);

  /* A refusal on an action: the group changed behind the page's back (its
   * etag too), so deleting with the etag the list showed is refused (412). */
  await page.uncheck('#dps-auto');
  await page.click('#dps-refresh');
  await page.locator('#dps-refresh:not([disabled])').waitFor(); /* the refresh has ended */
  const row = page.locator(`#group-table tr[data-group="${GROUP}"]`);
  await row.waitFor();
  execFileSync(HUBCTL, ['dps', 'group', 'disable', GROUP], { stdio: 'pipe' });
  await row.getByRole('button', { name: `Delete enrollment group ${GROUP}` }).click();
  await page.locator('#group-error', { hasText: 'changed meanwhile' }).waitFor();
  assert.match(await page.locator('#group-error').textContent(), /HTTP 412 errorCode 412001/);
  await page.check('#dps-auto');
  await row.locator('.status', { hasText: /^disabled$/ }).waitFor();
  await row.getByRole('button', { name: `Delete enrollment group ${GROUP}` }).click();
  await row.waitFor({ state: 'detached' });
  assert.throws(() => execFileSync(HUBCTL, ['dps', 'group', 'show', GROUP], { stdio: 'pipe' }), /404 Not Found/);
  await page.locator('#group-table tbody', { hasText: 'No enrollment group yet' }).waitFor();

  /* Signing out of the provisioning service forgets its key, not the hub's. */
  await page.click('#dps-signout');
  await page.locator('#dps-signin-form').waitFor();
  assert.doesNotMatch(await page.locator('#who').textContent(), /DPS/);
  await page.click('#nav a[data-nav="devices"]');
  await page.locator(`#device-table tr[data-device="${DPS_DEVICE}"]`).waitFor();
});

test('the pages raised no script error and no Content-Security-Policy violation', () => {
  assert.deepEqual(pageErrors, []);
});
