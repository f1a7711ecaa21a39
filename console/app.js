/*
 * hubd console: a client of hubd's public service API (docs/api.md) and of
 * nothing else. It signs its own SAS tokens with WebCrypto from the service
 * connection string the operator pastes; the key lives in this page's
 * memory only (a non-extractable CryptoKey), never in local or session
 * storage, so reloading the page signs out.
 *
 * No build step and no dependency: plain DOM (built with h(), never from
 * HTML strings, so device data cannot inject markup) and a plain-SVG chart.
 * The Content-Security-Policy (default-src 'self') forbids inline script and
 * style, so everything lives in this file and style.css.
 */
'use strict';

(() => {
  const API_VERSION = '2021-04-12';
  /* The provisioning service's API version (docs/api.md, azure-iot-provisioning-service's). */
  const DPS_API_VERSION = '2021-10-01';
  const TOKEN_TTL_S = 3600;
  const DEVICE_PAGE_SIZE = 20;
  const LIST_REFRESH_MS = 3000;
  const CHART_WINDOW_S = 300;
  const MAX_SHOWN_MESSAGES = 200;

  /* ---- sessions: host, policy and the key, in memory only ----------------- */

  /* The hub's and the provisioning service's policies are separate sets (a
   * hub key does not open the DPS API, nor the reverse), so each has its own
   * session; both live in this page's memory only. idScope is what the
   * operator pasted (the API does not expose it), shown and used in hints. */
  const session = { host: null, policy: null, key: null, token: null, tokenExpiry: 0 };
  const dpsSession = { host: null, policy: null, key: null, token: null, tokenExpiry: 0, idScope: null };

  function signedIn() {
    return session.key !== null;
  }

  function dpsSignedIn() {
    return dpsSession.key !== null;
  }

  function parseConnectionString(text) {
    const fields = {};
    for (const piece of text.trim().split(';')) {
      if (piece.trim() === '') continue;
      const eq = piece.indexOf('=');
      if (eq <= 0) throw new Error(`"${piece.slice(0, 40)}" is not Name=value`);
      fields[piece.slice(0, eq).trim()] = piece.slice(eq + 1).trim();
    }
    if (fields.DeviceId !== undefined)
      throw new Error('this is a device connection string (it has DeviceId); sign in with a service ' +
        'policy\'s connection string (SharedAccessKeyName=...), e.g. iothubowner\'s');
    for (const name of ['HostName', 'SharedAccessKeyName', 'SharedAccessKey']) {
      if (!fields[name]) throw new Error(`the connection string has no ${name}=...`);
    }
    return { host: fields.HostName, policy: fields.SharedAccessKeyName, key: fields.SharedAccessKey };
  }

  function base64ToBytes(b64) {
    let bin;
    try {
      bin = atob(b64);
    } catch (e) {
      throw new Error('SharedAccessKey is not base64');
    }
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  }

  function bytesToBase64(bytes) {
    const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    let bin = '';
    for (let i = 0; i < u8.length; i += 0x8000) bin += String.fromCharCode(...u8.subarray(i, i + 0x8000));
    return btoa(bin);
  }

  async function signIn(connectionString, sess = session) {
    const cs = parseConnectionString(connectionString);
    if (!window.crypto || !window.crypto.subtle)
      throw new Error('this browser offers no WebCrypto here (the page must be served over HTTPS)');
    const raw = base64ToBytes(cs.key);
    /* Not extractable: not even this script can read the key back. */
    const key = await crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    raw.fill(0);
    sess.host = cs.host;
    sess.policy = cs.policy;
    sess.key = key;
    sess.token = null;
    sess.tokenExpiry = 0;
  }

  function signOut(sess = session) {
    sess.host = sess.policy = sess.key = sess.token = null;
    sess.tokenExpiry = 0;
    if (sess === dpsSession) sess.idScope = null;
  }

  /* Azure's service SAS token: HMAC-SHA256 over "{sr}\n{se}" with the
   * decoded policy key; one per hour, re-signed five minutes before expiry.
   * The DPS's tokens are the hub's, signed with a DPS policy's key. */
  async function sasToken(sess = session) {
    const now = Math.floor(Date.now() / 1000);
    if (sess.token !== null && sess.tokenExpiry - now > 300) return sess.token;
    const sr = encodeURIComponent(sess.host);
    const se = now + TOKEN_TTL_S;
    const mac = await crypto.subtle.sign('HMAC', sess.key, new TextEncoder().encode(`${sr}\n${se}`));
    const sig = encodeURIComponent(bytesToBase64(mac));
    sess.token = `SharedAccessSignature sr=${sr}&sig=${sig}&se=${se}&skn=${encodeURIComponent(sess.policy)}`;
    sess.tokenExpiry = se;
    return sess.token;
  }

  /* ---- the service API ---------------------------------------------------- */

  class ApiError extends Error {
    constructor(status, code, text, tracking, dps) {
      super(text);
      this.status = status;
      this.code = code;
      this.tracking = tracking;
      this.dps = Boolean(dps); /* from the provisioning service's API */
    }
  }

  /* What each of the API's error codes means for the operator. The hub's
   * own text (after "ErrorCode:X;") follows, for the details. */
  const CODE_WORDS = {
    IotHubUnauthorizedAccess: 'The hub did not accept the credentials',
    IotHubUnauthorized: 'The signed-in policy is not allowed to do this',
    IotHubQuotaExceeded: 'The hub already holds as many CA certificates as it may',
    ArgumentInvalid: 'The hub refused the request',
    InvalidProtocolVersion: 'The hub refused the API version',
    DeviceNotFound: 'There is no such device',
    CertificateNotFound: 'There is no such CA certificate',
    DeviceAlreadyExists: 'A device with this id already exists',
    CertificateAlreadyExists: 'A CA certificate with this name already exists',
    PreconditionFailed: 'It was changed meanwhile (reload it and try again)',
    DeviceMessageLockLost: 'The message lock was lost',
    DeviceMaximumQueueDepthExceeded: 'The device\'s cloud-to-device queue is full',
    DeviceNotOnline: 'The device is not connected (or not subscribed to direct methods)',
    MessageTooLarge: 'It is too large for the hub',
    MethodNotAllowed: 'The hub does not allow this method here',
    NotFound: 'The hub has no such resource',
    GatewayTimeout: 'The device did not answer in time',
    ServiceUnavailable: 'The hub is busy or shutting down; try again',
    ServerBusy: 'The hub is busy; try again',
    ServerError: 'The hub failed (its log has the details, under the tracking id)',
  };

  /* The provisioning service's errors carry a number (status × 1000 + 1 in
   * hubd; Azure's finer sub-codes share the status prefix), so its words go
   * by the HTTP status. 401 and 403 come in the hub's shape, with a code. */
  const DPS_STATUS_WORDS = {
    400: 'The provisioning service refused the request',
    404: 'The provisioning service has no such enrollment or registration',
    405: 'The provisioning service does not allow this method here',
    409: 'It already exists',
    412: 'It was changed meanwhile (reload it and try again)',
    413: 'It is too large for the provisioning service',
    500: 'The provisioning service failed (the hub\'s log has the details, under the tracking id)',
    503: 'The provisioning service cannot write now; try again',
  };
  const DPS_CODE_WORDS = {
    IotHubUnauthorizedAccess: 'The provisioning service did not accept the credentials',
    IotHubUnauthorized: 'The signed-in provisioning policy is not allowed to do this',
  };

  function describeError(err) {
    if (!(err instanceof ApiError)) return err && err.message ? err.message : String(err);
    const words = (err.dps && (DPS_CODE_WORDS[err.code] || DPS_STATUS_WORDS[err.status])) || CODE_WORDS[err.code] ||
      (err.status ? `The ${err.dps ? 'provisioning service' : 'hub'} answered ${err.status}` : 'No answer');
    const detail = err.message && err.message !== words ? `: ${err.message}` : '';
    const meta = err.status ? ` (HTTP ${err.status}${err.code ? ' ' + err.code : ''}` +
      `${err.tracking ? ', tracking id ' + err.tracking : ''})` : '';
    return `${words}${detail}${meta}`;
  }

  function errorFromResponse(res, json, text, dps) {
    let code = res.headers.get('iothub-errorcode') || '';
    let message = '';
    let tracking = '';
    if (json && json.errorCode !== undefined && typeof json.message === 'string') {
      /* The provisioning service's shape: {errorCode, trackingId, message, timestampUtc}. */
      code = code || `errorCode ${json.errorCode}`;
      message = json.message;
      tracking = typeof json.trackingId === 'string' ? json.trackingId : '';
    } else if (json && typeof json.Message === 'string') {
      const m = /^ErrorCode:([^;]*);([\s\S]*)$/.exec(json.Message);
      if (m) {
        code = code || m[1];
        message = m[2];
      } else {
        message = json.Message;
      }
      const t = /Tracking ID:([0-9A-Fa-f]+)/.exec(json.ExceptionMessage || '');
      if (t) tracking = t[1];
    } else if (text) {
      /* The HTTP layer's own answers (413, 400) are short HTML pages. */
      message = text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 300);
    }
    return new ApiError(res.status, code, message || res.statusText, tracking, dps);
  }

  /* One call. Resolves {status, headers, json, text}; rejects ApiError.
   * opts.dps: the provisioning service's API, with its own session. */
  async function api(method, path, opts = {}) {
    const url = new URL(path, window.location.origin);
    url.searchParams.set('api-version', opts.dps ? DPS_API_VERSION : API_VERSION);
    for (const [k, v] of Object.entries(opts.query || {})) {
      if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
    }
    const headers = Object.assign({ Authorization: await sasToken(opts.dps ? dpsSession : session) }, opts.headers || {});
    let body;
    if (opts.raw !== undefined) {
      body = opts.raw;
    } else if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['Content-Type'] = 'application/json';
    }
    let res;
    try {
      res = await fetch(url, { method, headers, body, signal: opts.signal, cache: 'no-store', credentials: 'omit' });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      if (e instanceof TypeError && /header/i.test(e.message)) throw new Error(`a header value is not allowed: ${e.message}`);
      throw new ApiError(0, '', 'the hub did not answer (is hubd still running?)', '', opts.dps);
    }
    const text = await res.text();
    let json = null;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch (e) {
        json = null;
      }
    }
    if (!res.ok) throw errorFromResponse(res, json, text, opts.dps);
    return { status: res.status, headers: res.headers, json, text };
  }

  const dpsApi = (method, path, opts = {}) => api(method, path, Object.assign({}, opts, { dps: true }));

  const seg = encodeURIComponent;
  const quoteEtag = (etag) => `"${etag}"`;

  /* ---- DOM helpers ------------------------------------------------------- */

  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'value') el.value = v;
      else if (k === 'checked') el.checked = Boolean(v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    for (const c of children.flat()) el.append(c instanceof Node ? c : String(c));
    return el;
  }

  /* A labelled form control: label, control, optional hint (described-by). */
  let fieldSeq = 0;
  function field(labelText, control, hint, extraClass) {
    if (!control.id) control.id = `f${++fieldSeq}`;
    /* The hint goes between label and control, so that controls with and
     * without a hint line up at the bottom of a row. */
    const kids = [h('label', { for: control.id }, labelText)];
    if (hint) {
      const hid = `${control.id}-hint`;
      control.setAttribute('aria-describedby', hid);
      kids.push(h('span', { class: 'hint', id: hid }, hint));
    }
    kids.push(control);
    return h('div', { class: `field${extraClass ? ' ' + extraClass : ''}` }, kids);
  }

  function setMessage(el, text, ok) {
    el.className = ok ? 'success' : 'error';
    el.textContent = text || '';
  }

  let toastTimer = null;
  function toast(text) {
    const t = document.getElementById('toast');
    t.textContent = text;
    t.classList.add('show');
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => t.classList.remove('show'), 3500);
  }

  /* Runs an async action from a button: disables it meanwhile, reports any
   * refusal in `out` (role=alert) in plain words. */
  async function act(button, out, fn) {
    if (out) setMessage(out, '');
    if (button) button.disabled = true;
    try {
      await fn();
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (out) setMessage(out, describeError(e));
      else toast(describeError(e));
    } finally {
      if (button) button.disabled = false;
    }
  }

  async function copyText(text, what) {
    try {
      await navigator.clipboard.writeText(text);
      toast(`${what} copied to the clipboard`);
    } catch (e) {
      toast(`Copying failed (${e.message}); select the text and copy it by hand`);
    }
  }

  function fmtTime(iso) {
    if (!iso || iso.startsWith('0001-01-01')) return 'never';
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
  }

  async function readFileForUpload(file) {
    const bytes = new Uint8Array(await file.arrayBuffer());
    const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
    /* PEM goes as text; anything else (a DER .cer) as base64 of its bytes:
     * the API takes either, and decides what it is. */
    return text.includes('-----BEGIN') ? text : bytesToBase64(bytes);
  }

  /* ---- routing ------------------------------------------------------------- */

  const main = () => document.getElementById('main');
  let viewCleanup = [];
  let afterSignIn = '#/certificates';

  function onLeave(fn) {
    viewCleanup.push(fn);
  }

  function parseHash() {
    const raw = window.location.hash.replace(/^#\/?/, '');
    const [pathPart, queryPart] = raw.split('?');
    const parts = pathPart.split('/').filter(Boolean).map(decodeURIComponent);
    return { parts, query: new URLSearchParams(queryPart || '') };
  }

  function render() {
    for (const fn of viewCleanup) fn();
    viewCleanup = [];
    const m = main();
    m.replaceChildren();
    const { parts, query } = parseHash();
    const nav = document.getElementById('nav');
    nav.hidden = !signedIn();
    document.getElementById('signout').hidden = !signedIn();
    document.getElementById('who').textContent = !signedIn() ? ''
      : `${session.host} · ${session.policy}${dpsSignedIn() ? ` · DPS ${dpsSession.policy}` : ''}`;
    if (!signedIn()) {
      if (parts.length && parts[0] !== 'signin') afterSignIn = window.location.hash;
      signinView(m);
      return;
    }
    const section = parts[0] || 'certificates';
    for (const a of nav.querySelectorAll('a')) {
      if (a.dataset.nav === section) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    if (section === 'devices' && parts.length > 1) deviceView(m, parts[1]);
    else if (section === 'devices') devicesView(m);
    else if (section === 'telemetry') telemetryView(m, query.get('device') || '');
    else if (section === 'provisioning') provisioningView(m);
    else certificatesView(m);
    /* Move focus to the new page's heading, as a screen reader expects. */
    const h1 = m.querySelector('h1');
    if (h1) {
      h1.tabIndex = -1;
      h1.focus({ preventScroll: true });
    }
  }

  function go(hash) {
    if (window.location.hash === hash) render();
    else window.location.hash = hash;
  }

  /* ---- sign-in ------------------------------------------------------------- */

  function signinView(m) {
    document.title = 'Sign in · hubd console';
    const input = h('input', { type: 'password', id: 'connection-string', autocomplete: 'off', spellcheck: 'false',
      placeholder: 'HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=...', required: true });
    const show = h('input', { type: 'checkbox', id: 'show-connection-string',
      onchange: () => { input.type = show.checked ? 'text' : 'password'; } });
    const out = h('div', { id: 'signin-error', class: 'error', role: 'alert' });
    const button = h('button', { type: 'submit', id: 'signin-button' }, 'Sign in');
    const form = h('form', { class: 'panel', id: 'signin-form' },
      h('div', { class: 'row' }, field('Service connection string', input,
        'A shared access policy\'s connection string: hubd prints iothubowner\'s when it starts.', 'wide')),
      h('div', { class: 'row' }, h('div', { class: 'field check' }, show,
        h('label', { for: show.id }, 'Show the connection string')), button),
      out);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      act(button, out, async () => {
        await signIn(input.value);
        /* Check the credentials now, so a wrong string fails here and not on
         * the first page: 401 means the hub does not accept them; 403 means
         * it does but the policy lacks RegistryRead, which is fine. */
        try {
          await api('GET', '/certificates');
        } catch (e) {
          if (!(e instanceof ApiError && e.status === 403)) {
            signOut();
            throw e;
          }
        }
        input.value = '';
        const target = afterSignIn;
        afterSignIn = '#/certificates';
        go(target);
      });
    });
    m.append(h('section', { class: 'signin' },
      h('h1', null, 'Sign in to hubd'),
      h('p', { class: 'lead' }, 'The console uses the hub\'s service API with the policy you sign in with. ',
        'It signs its own tokens in this page; the key stays in this tab\'s memory and is never stored, ',
        'so reloading the page signs you out.'),
      form));
    input.focus();
  }

  /* ---- CA certificates ----------------------------------------------------- */

  function daysToExpiry(props) {
    if (typeof props.daysToExpiry === 'number') return props.daysToExpiry;
    const t = Date.parse(props.expiry);
    if (Number.isNaN(t)) return null;
    return Math.floor((t - Date.now()) / 86400000);
  }

  function certificatesView(m) {
    document.title = 'CA certificates · hubd console';
    const listOut = h('div', { class: 'error', role: 'alert' });
    const tbody = h('tbody');
    const popHost = h('div');

    /* Upload form. */
    const nameInput = h('input', { type: 'text', id: 'ca-name', required: true, pattern: '[A-Za-z0-9._\\-]{1,64}',
      autocomplete: 'off' });
    const fileInput = h('input', { type: 'file', id: 'ca-file', accept: '.pem,.cer,.crt,.der', required: true });
    const replace = h('input', { type: 'checkbox', id: 'ca-replace' });
    const upOut = h('div', { class: 'error', role: 'alert', id: 'ca-upload-error' });
    const upButton = h('button', { type: 'submit', id: 'ca-upload' }, 'Upload');
    const upForm = h('form', { id: 'ca-upload-form' },
      h('div', { class: 'row' },
        field('Name', nameInput, 'Letters, digits, . _ - (at most 64)'),
        field('Certificate file', fileInput, 'The CA certificate, PEM or DER (.cer). Never its private key.', 'wide')),
      h('div', { class: 'row' },
        h('div', { class: 'field check' }, replace,
          h('label', { for: replace.id }, 'Replace a certificate of the same name (it becomes unverified)')),
        upButton),
      upOut);
    upForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      act(upButton, upOut, async () => {
        if (!fileInput.files.length) throw new Error('choose the certificate file first');
        const certificate = await readFileForUpload(fileInput.files[0]);
        const name = nameInput.value.trim();
        const headers = replace.checked ? { 'If-Match': '"*"' } : {};
        await api('PUT', `/certificates/${seg(name)}`, { body: { properties: { certificate } }, headers });
        toast(`Uploaded ${name}: now prove possession of its key`);
        upForm.reset();
        await load();
        await startPop(name);
      });
    });

    async function load() {
      setMessage(listOut, '');
      let certs;
      try {
        certs = (await api('GET', '/certificates')).json.value || [];
      } catch (e) {
        setMessage(listOut, describeError(e));
        return;
      }
      tbody.replaceChildren(...certs.map(certRow));
      if (!certs.length) tbody.append(h('tr', null, h('td', { colspan: 6, class: 'empty' }, 'No CA certificate yet.')));
    }

    function certRow(c) {
      const p = c.properties || {};
      const days = daysToExpiry(p);
      let expiry;
      if (days === null) expiry = h('span', null, p.expiry || '?');
      else if (days < 0) expiry = h('span', { class: 'days-bad' }, 'expired');
      else expiry = h('span', { class: days < 30 ? 'days-bad' : '' }, `${days} day${days === 1 ? '' : 's'}`,
        days < 30 ? ' (soon)' : '');
      const status = p.isVerified ? h('span', { class: 'badge ok' }, '✓ Verified')
        : h('span', { class: 'badge warn' }, 'Unverified');
      const popButton = h('button', { type: 'button', class: 'small', 'data-action': 'pop',
        'aria-label': `Get a verification code for ${c.name}` },
      p.isVerified ? 'Prove again' : 'Verify…');
      popButton.addEventListener('click', () => act(popButton, listOut, () => startPop(c.name)));
      const delButton = h('button', { type: 'button', class: 'small danger', 'data-action': 'delete',
        'aria-label': `Delete ${c.name}` }, 'Delete');
      delButton.addEventListener('click', () => {
        if (!window.confirm(`Delete the CA certificate "${c.name}"? Devices whose chains lead only to it can no longer connect.`)) return;
        act(delButton, listOut, async () => {
          await api('DELETE', `/certificates/${seg(c.name)}`, { headers: { 'If-Match': quoteEtag(c.etag) } });
          toast(`Deleted ${c.name}`);
          if (popHost.dataset.name === c.name) popHost.replaceChildren();
          await load();
        });
      });
      return h('tr', { 'data-name': c.name },
        h('td', null, h('strong', null, c.name)),
        h('td', null, p.subject || ''),
        h('td', { class: 'thumb mono' }, h('span', { title: 'SHA-1' }, 'SHA-1 ', p.thumbprint || ''),
          p.thumbprintSha256 ? h('span', { title: 'SHA-256' }, 'SHA-256 ', p.thumbprintSha256) : null),
        h('td', { class: 'status' }, status),
        h('td', { class: 'expiry', title: p.expiry || '' }, expiry),
        h('td', null, h('div', { class: 'actions' }, popButton, delButton)));
    }

    /* Proof of possession: code, the command that makes the certificate, upload. */
    async function startPop(name) {
      const r = await api('POST', `/certificates/${seg(name)}/generateVerificationCode`);
      const code = r.json.properties.verificationCode;
      let etag = r.json.etag;
      const cmd = `hubctl cert verification --code ${code} --issuer-cert ${name}.pem --issuer-key ${name}.key --out ${name}-verify`;
      const verifyFile = h('input', { type: 'file', id: 'pop-file', accept: '.pem,.cer,.crt,.der' });
      const out = h('div', { class: 'error', role: 'alert', id: 'pop-error' });
      const verifyButton = h('button', { type: 'button', id: 'pop-verify' }, 'Verify');
      verifyButton.addEventListener('click', () => act(verifyButton, out, async () => {
        if (!verifyFile.files.length) throw new Error('choose the verification certificate file first');
        const certificate = await readFileForUpload(verifyFile.files[0]);
        const v = await api('POST', `/certificates/${seg(name)}/verify`,
          { body: { certificate }, headers: { 'If-Match': quoteEtag(etag) } });
        etag = v.json.etag;
        setMessage(out, `${name} is verified: devices with chains to it can connect.`, true);
        toast(`${name} verified`);
        await load();
      }));
      const copyCode = h('button', { type: 'button', class: 'secondary small', id: 'pop-copy-code' }, 'Copy code');
      copyCode.addEventListener('click', () => copyText(code, 'Verification code'));
      const copyCmd = h('button', { type: 'button', class: 'secondary small', id: 'pop-copy-command' }, 'Copy command');
      copyCmd.addEventListener('click', () => copyText(cmd, 'Command'));
      popHost.dataset.name = name;
      popHost.replaceChildren(h('section', { class: 'panel pop', id: 'pop', 'aria-labelledby': 'pop-h' },
        h('h2', { id: 'pop-h', tabindex: '-1' }, `Prove possession of ${name}'s private key`),
        h('ol', null,
          h('li', null, 'The verification code (valid for an hour; a new one replaces it):',
            h('div', { class: 'codebox' }, h('code', { id: 'pop-code', class: 'code-big' }, code), copyCode)),
          h('li', null, 'Sign a certificate whose subject CN is the code with the CA\'s private key. ',
            'With the CA\'s files (here named ', h('code', null, `${name}.pem`), ' and ', h('code', null, `${name}.key`),
            '), hubctl makes it:',
            h('div', { class: 'codebox' }, h('pre', { id: 'pop-command' }, cmd), copyCmd)),
          h('li', null, 'Upload the verification certificate it made:',
            h('div', { class: 'row' }, field('Verification certificate', verifyFile, `e.g. ${name}-verify.pem`), verifyButton))),
        out));
      popHost.querySelector('h2').focus();
    }

    m.append(
      h('h1', null, 'CA certificates'),
      h('p', { class: 'lead' }, 'Devices of type certificateAuthority connect with a certificate chain that ends at a ',
        'verified CA. Upload the CA certificate, then prove you hold its private key: sign a certificate whose CN is ',
        'the hub\'s verification code, and upload it.'),
      h('section', { class: 'panel', 'aria-labelledby': 'upload-h' }, h('h2', { id: 'upload-h' }, 'Upload a CA certificate'), upForm),
      popHost,
      h('section', { class: 'panel', 'aria-labelledby': 'certs-h' },
        h('h2', { id: 'certs-h' }, 'Certificates'),
        listOut,
        h('table', { id: 'ca-table' },
          h('caption', null, 'Days to expiry turn red under 30.'),
          h('thead', null, h('tr', null, ['Name', 'Subject', 'Thumbprints', 'State', 'Expires in', 'Actions']
            .map((t) => h('th', { scope: 'col' }, t)))),
          tbody)));
    load();
  }

  /* ---- devices ------------------------------------------------------------- */

  function connectionBadge(state) {
    return state === 'Connected' ? h('span', { class: 'badge ok conn' }, '● Connected')
      : h('span', { class: 'badge off conn' }, '○ ' + (state || 'Disconnected'));
  }

  function statusBadge(status) {
    return status === 'enabled' ? h('span', { class: 'badge ok' }, 'enabled') : h('span', { class: 'badge bad' }, status);
  }

  const AUTH_NAMES = {
    certificateAuthority: 'CA-signed certificate',
    selfSigned: 'Self-signed (thumbprint)',
    sas: 'Shared access key',
    none: 'None',
  };

  /* GET, change the status, PUT back with the etag read (docs/api.md: a PUT
   * replaces every settable field, so the whole device goes back). */
  async function setDeviceStatus(id, status) {
    const cur = await api('GET', `/devices/${seg(id)}`);
    const dev = cur.json;
    dev.status = status;
    dev.statusReason = status === 'disabled' ? 'disabled in the console' : null;
    await api('PUT', `/devices/${seg(id)}`, { body: dev, headers: { 'If-Match': quoteEtag(dev.etag) } });
  }

  async function deleteDevice(id) {
    if (!window.confirm(`Delete the device "${id}" and its twin? It can no longer connect.`)) return false;
    await api('DELETE', `/devices/${seg(id)}`, { headers: { 'If-Match': '"*"' } });
    return true;
  }

  function devicesView(m) {
    document.title = 'Devices · hubd console';
    /* Create form. */
    const idInput = h('input', { type: 'text', id: 'device-id', required: true, maxlength: 128, autocomplete: 'off' });
    const authSelect = h('select', { id: 'device-auth' },
      h('option', { value: 'certificateAuthority' }, 'CA-signed certificate (certificateAuthority)'),
      h('option', { value: 'selfSigned' }, 'Self-signed certificate thumbprint (selfSigned)'),
      h('option', { value: 'sas' }, 'Shared access key (sas; the hub makes the keys)'));
    const thumb1 = h('input', { type: 'text', id: 'device-thumb1', autocomplete: 'off', size: 44 });
    const thumb2 = h('input', { type: 'text', id: 'device-thumb2', autocomplete: 'off', size: 44 });
    const thumbRow = h('div', { class: 'row', hidden: true },
      field('Primary thumbprint', thumb1, 'SHA-1 (40 hex) or SHA-256 (64 hex)'),
      field('Secondary thumbprint', thumb2, 'optional'));
    authSelect.addEventListener('change', () => { thumbRow.hidden = authSelect.value !== 'selfSigned'; });
    const createOut = h('div', { class: 'error', role: 'alert', id: 'device-create-error' });
    const createResult = h('div', { class: 'result' });
    const createButton = h('button', { type: 'submit', id: 'device-create' }, 'Create');
    const createForm = h('form', { id: 'device-create-form' },
      h('div', { class: 'row' }, field('Device id', idInput, 'Up to 128 of A-Z a-z 0-9 - . % _ * ? ! ( ) , : = @ $ \''),
        field('Authentication', authSelect), createButton),
      thumbRow, createOut, createResult);
    createForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      createResult.replaceChildren();
      act(createButton, createOut, async () => {
        const id = idInput.value.trim();
        const type = authSelect.value;
        const authentication = { type };
        if (type === 'selfSigned')
          authentication.x509Thumbprint = { primaryThumbprint: thumb1.value.trim(), secondaryThumbprint: thumb2.value.trim() || null };
        if (type === 'sas') authentication.symmetricKey = { primaryKey: '', secondaryKey: '' };
        const r = await api('PUT', `/devices/${seg(id)}`, { body: { deviceId: id, authentication } });
        toast(`Created ${id}`);
        if (type === 'sas') {
          const cs = `HostName=${session.host};DeviceId=${id};SharedAccessKey=${r.json.authentication.symmetricKey.primaryKey}`;
          const copy = h('button', { type: 'button', class: 'secondary small' }, 'Copy');
          copy.addEventListener('click', () => copyText(cs, 'Device connection string'));
          createResult.replaceChildren(h('p', null, 'The device\'s connection string (keep it secret):'),
            h('div', { class: 'codebox' }, h('pre', null, cs), copy));
        }
        createForm.reset();
        thumbRow.hidden = true;
        await list.reload();
      });
    });

    /* Search and list: POST /devices/query, a page at a time. */
    const search = h('input', { type: 'search', id: 'device-search', autocomplete: 'off', placeholder: 'e.g. sensor-' });
    const statusFilter = h('select', { id: 'device-status-filter' },
      h('option', { value: '' }, 'any'), h('option', { value: 'enabled' }, 'enabled'), h('option', { value: 'disabled' }, 'disabled'));
    const connFilter = h('select', { id: 'device-conn-filter' },
      h('option', { value: '' }, 'any'), h('option', { value: 'Connected' }, 'Connected'),
      h('option', { value: 'Disconnected' }, 'Disconnected'));
    const auto = h('input', { type: 'checkbox', id: 'device-auto', checked: true });
    const searchForm = h('form', { id: 'device-search-form', role: 'search' },
      h('div', { class: 'row' }, field('Device id starts with', search), field('Status', statusFilter),
        field('Connection', connFilter), h('button', { type: 'submit' }, 'Search'),
        h('div', { class: 'field check' }, auto, h('label', { for: auto.id }, 'Refresh every 3 s'))));
    const listOut = h('div', { class: 'error', role: 'alert' });
    const tbody = h('tbody');
    const prev = h('button', { type: 'button', class: 'secondary', id: 'device-prev' }, '← Previous');
    const next = h('button', { type: 'button', class: 'secondary', id: 'device-next' }, 'Next →');
    const pageLabel = h('span', { class: 'status-line', 'aria-live': 'polite' });

    const list = {
      tokens: [null], /* continuation token of each page seen; [page] is the current one */
      page: 0,
      nextToken: null,
      query() {
        const conds = [];
        const q = (v) => `'${v.replace(/'/g, "''")}'`;
        if (search.value.trim()) conds.push(`STARTSWITH(deviceId, ${q(search.value.trim())})`);
        if (statusFilter.value) conds.push(`status = ${q(statusFilter.value)}`);
        if (connFilter.value) conds.push(`connectionState = ${q(connFilter.value)}`);
        return 'SELECT * FROM devices' + (conds.length ? ' WHERE ' + conds.join(' AND ') : '');
      },
      async reload() {
        const headers = { 'x-ms-max-item-count': String(DEVICE_PAGE_SIZE) };
        const token = this.tokens[this.page];
        if (token) headers['x-ms-continuation'] = token;
        let r;
        try {
          r = await api('POST', '/devices/query', { body: { query: this.query() }, headers });
        } catch (e) {
          setMessage(listOut, describeError(e));
          return;
        }
        setMessage(listOut, '');
        this.nextToken = r.headers.get('x-ms-continuation');
        const twins = r.json || [];
        /* Keep keyboard focus on the same control across a refresh. */
        const focused = document.activeElement && tbody.contains(document.activeElement)
          ? document.activeElement.dataset.focusKey : null;
        tbody.replaceChildren(...twins.map(deviceRow));
        if (!twins.length) {
          tbody.append(h('tr', null, h('td', { colspan: 6, class: 'empty' },
            this.nextToken ? 'Nothing on this page yet: the hub stopped early on a large registry; try Next.' : 'No device matches.')));
        }
        if (focused) {
          const again = tbody.querySelector(`[data-focus-key="${CSS.escape(focused)}"]`);
          if (again) again.focus();
        }
        prev.disabled = this.page === 0;
        next.disabled = !this.nextToken;
        pageLabel.textContent = `Page ${this.page + 1}${this.nextToken ? '' : ' (last)'}`;
      },
    };

    function deviceRow(t) {
      const id = t.deviceId;
      const toggle = h('button', { type: 'button', class: 'small secondary', 'data-focus-key': `toggle:${id}`,
        'aria-label': `${t.status === 'enabled' ? 'Disable' : 'Enable'} ${id}` }, t.status === 'enabled' ? 'Disable' : 'Enable');
      toggle.addEventListener('click', () => act(toggle, listOut, async () => {
        await setDeviceStatus(id, t.status === 'enabled' ? 'disabled' : 'enabled');
        await list.reload();
      }));
      const del = h('button', { type: 'button', class: 'small danger', 'data-focus-key': `delete:${id}`,
        'aria-label': `Delete ${id}` }, 'Delete');
      del.addEventListener('click', () => act(del, listOut, async () => {
        if (await deleteDevice(id)) {
          toast(`Deleted ${id}`);
          await list.reload();
        }
      }));
      return h('tr', { 'data-device': id },
        h('td', null, h('a', { href: `#/devices/${seg(id)}`, 'data-focus-key': `link:${id}` }, id)),
        h('td', null, statusBadge(t.status)),
        h('td', null, AUTH_NAMES[t.authenticationType] || t.authenticationType),
        h('td', { class: 'connection' }, connectionBadge(t.connectionState)),
        h('td', null, fmtTime(t.lastActivityTime)),
        h('td', null, h('div', { class: 'actions' }, toggle, del)));
    }

    searchForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      list.tokens = [null];
      list.page = 0;
      list.reload();
    });
    prev.addEventListener('click', () => {
      if (list.page > 0) list.page--;
      list.reload();
    });
    next.addEventListener('click', () => {
      if (!list.nextToken) return;
      list.tokens[list.page + 1] = list.nextToken;
      list.page++;
      list.reload();
    });
    const timer = setInterval(() => {
      if (auto.checked && !document.hidden) list.reload();
    }, LIST_REFRESH_MS);
    onLeave(() => clearInterval(timer));

    m.append(
      h('h1', null, 'Devices'),
      h('section', { class: 'panel', 'aria-labelledby': 'create-h' }, h('h2', { id: 'create-h' }, 'Create a device'), createForm),
      h('section', { class: 'panel', 'aria-labelledby': 'list-h' },
        h('h2', { id: 'list-h' }, 'Registered devices'),
        searchForm, listOut,
        h('table', { id: 'device-table' },
          h('caption', null, 'Connection state is live: the list refreshes while this page is open.'),
          h('thead', null, h('tr', null, ['Device id', 'Status', 'Authentication', 'Connection', 'Last activity', 'Actions']
            .map((t) => h('th', { scope: 'col' }, t)))),
          tbody),
        h('div', { class: 'pager' }, prev, pageLabel, next)));
    list.reload();
  }

  /* ---- one device ------------------------------------------------------------ */

  function stripDollar(obj) {
    const out = {};
    for (const [k, v] of Object.entries(obj || {})) if (!k.startsWith('$')) out[k] = v;
    return out;
  }

  const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

  /* The JSON merge patch (RFC 7396) that turns `before` into `after`: a
   * removed key becomes null, a changed value is sent, objects recurse. */
  function mergeDiff(before, after) {
    const patch = {};
    for (const k of Object.keys(before)) if (!(k in after)) patch[k] = null;
    for (const [k, v] of Object.entries(after)) {
      const b = before[k];
      if (isObject(v) && isObject(b)) {
        const sub = mergeDiff(b, v);
        if (Object.keys(sub).length) patch[k] = sub;
      } else if (JSON.stringify(v) !== JSON.stringify(b)) {
        patch[k] = v;
      }
    }
    return patch;
  }

  function parseJsonObject(text, what) {
    let v;
    try {
      v = JSON.parse(text.trim() === '' ? '{}' : text);
    } catch (e) {
      throw new Error(`${what} is not valid JSON: ${e.message}`);
    }
    if (!isObject(v)) throw new Error(`${what} must be a JSON object`);
    return v;
  }

  function deviceView(m, id) {
    document.title = `${id} · hubd console`;
    const idOut = h('div', { class: 'error', role: 'alert', id: 'device-error' });
    const facts = h('dl', { class: 'facts', id: 'device-facts' });
    const toggle = h('button', { type: 'button', class: 'secondary', id: 'device-toggle' }, 'Disable');
    const del = h('button', { type: 'button', class: 'danger', id: 'device-delete' }, 'Delete');
    const showCs = h('button', { type: 'button', class: 'secondary', id: 'device-show-cs', hidden: true }, 'Show connection string');
    const csOut = h('div', { class: 'result' });
    let device = null;

    async function loadDevice() {
      try {
        device = (await api('GET', `/devices/${seg(id)}`)).json;
      } catch (e) {
        setMessage(idOut, describeError(e));
        return;
      }
      setMessage(idOut, '');
      const rows = [
        ['Connection', connectionBadge(device.connectionState)],
        ['Status', [statusBadge(device.status), device.statusReason ? ` — ${device.statusReason}` : '']],
        ['Authentication', AUTH_NAMES[device.authentication.type] || device.authentication.type],
        ['Last activity', fmtTime(device.lastActivityTime)],
        ['Connection state since', fmtTime(device.connectionStateUpdatedTime)],
        ['C2D messages queued', String(device.cloudToDeviceMessageCount)],
      ];
      const tp = device.authentication.x509Thumbprint || {};
      if (tp.primaryThumbprint) rows.push(['Thumbprint', h('span', { class: 'mono' }, tp.primaryThumbprint)]);
      facts.replaceChildren(...rows.flatMap(([k, v]) => [h('dt', null, k), h('dd', { 'data-fact': k }, v)]));
      toggle.textContent = device.status === 'enabled' ? 'Disable' : 'Enable';
      showCs.hidden = device.authentication.type !== 'sas';
    }

    toggle.addEventListener('click', () => act(toggle, idOut, async () => {
      await setDeviceStatus(id, device && device.status === 'enabled' ? 'disabled' : 'enabled');
      await loadDevice();
    }));
    del.addEventListener('click', () => act(del, idOut, async () => {
      if (await deleteDevice(id)) {
        toast(`Deleted ${id}`);
        go('#/devices');
      }
    }));
    showCs.addEventListener('click', () => {
      const key = device.authentication.symmetricKey.primaryKey;
      const cs = `HostName=${session.host};DeviceId=${id};SharedAccessKey=${key}`;
      const copy = h('button', { type: 'button', class: 'secondary small' }, 'Copy');
      copy.addEventListener('click', () => copyText(cs, 'Device connection string'));
      csOut.replaceChildren(h('div', { class: 'codebox' }, h('pre', null, cs), copy));
    });

    /* Twin: tags and desired are edited as JSON and sent as a merge patch
     * with the twin's etag, so a concurrent change is refused, not lost. */
    const tagsArea = h('textarea', { id: 'twin-tags', spellcheck: 'false', rows: 6 });
    const desiredArea = h('textarea', { id: 'twin-desired', spellcheck: 'false', rows: 6 });
    const reported = h('pre', { id: 'twin-reported' });
    const twinMeta = h('p', { class: 'status-line', id: 'twin-meta' });
    const twinWhole = h('pre', { id: 'twin-json' });
    const twinOut = h('div', { class: 'error', role: 'alert', id: 'twin-error' });
    const saveTwin = h('button', { type: 'button', id: 'twin-save' }, 'Save tags and desired properties');
    const reloadTwin = h('button', { type: 'button', class: 'secondary', id: 'twin-reload' }, 'Reload');
    let twin = null;

    function showTwin(t) {
      twin = t;
      tagsArea.value = JSON.stringify(t.tags || {}, null, 2);
      desiredArea.value = JSON.stringify(stripDollar(t.properties.desired), null, 2);
      reported.textContent = JSON.stringify(stripDollar(t.properties.reported), null, 2);
      twinMeta.textContent = `version ${t.version} · desired $version ${t.properties.desired.$version} · ` +
        `reported $version ${t.properties.reported.$version} · etag ${t.etag}`;
      twinWhole.textContent = JSON.stringify(t, null, 2);
    }
    async function loadTwin() {
      showTwin((await api('GET', `/twins/${seg(id)}`)).json);
    }
    reloadTwin.addEventListener('click', () => act(reloadTwin, twinOut, loadTwin));
    saveTwin.addEventListener('click', () => act(saveTwin, twinOut, async () => {
      const tags = parseJsonObject(tagsArea.value, 'Tags');
      const desired = parseJsonObject(desiredArea.value, 'Desired properties');
      const body = {};
      const tagPatch = mergeDiff(twin.tags || {}, tags);
      const desiredPatch = mergeDiff(stripDollar(twin.properties.desired), desired);
      if (Object.keys(tagPatch).length) body.tags = tagPatch;
      if (Object.keys(desiredPatch).length) body.properties = { desired: desiredPatch };
      if (!Object.keys(body).length) {
        setMessage(twinOut, 'Nothing changed.', true);
        return;
      }
      const r = await api('PATCH', `/twins/${seg(id)}`, { body, headers: { 'If-Match': quoteEtag(twin.etag) } });
      showTwin(r.json);
      setMessage(twinOut, `Saved: twin version ${r.json.version}.`, true);
    }));

    /* Cloud-to-device message. */
    const c2dBody = h('textarea', { id: 'c2d-body', spellcheck: 'false', rows: 4 });
    const c2dProps = h('textarea', { id: 'c2d-props', spellcheck: 'false', rows: 3, placeholder: 'color=blue' });
    const c2dId = h('input', { type: 'text', id: 'c2d-message-id', autocomplete: 'off' });
    const c2dAck = h('select', { id: 'c2d-ack' }, ['none', 'positive', 'negative', 'full'].map((v) => h('option', { value: v }, v)));
    const c2dOut = h('div', { class: 'error', role: 'alert', id: 'c2d-result' });
    const c2dButton = h('button', { type: 'submit', id: 'c2d-send' }, 'Send');
    const c2dForm = h('form', { id: 'c2d-form' },
      field('Message body', c2dBody, 'Sent as is (UTF-8), at most 64 KiB'),
      field('Application properties', c2dProps, 'One name=value a line'),
      h('div', { class: 'row' }, field('Message id', c2dId, 'Empty: the hub makes one'), field('Feedback', c2dAck), c2dButton),
      c2dOut);
    c2dForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      act(c2dButton, c2dOut, async () => {
        const headers = { 'Content-Type': 'text/plain; charset=utf-8' };
        if (c2dId.value.trim()) headers['IoTHub-MessageId'] = c2dId.value.trim();
        if (c2dAck.value !== 'none') headers['IoTHub-Ack'] = c2dAck.value;
        for (const line of c2dProps.value.split('\n')) {
          if (!line.trim()) continue;
          const eq = line.indexOf('=');
          if (eq <= 0) throw new Error(`property line "${line}" is not name=value`);
          headers[`iothub-app-${line.slice(0, eq).trim()}`] = line.slice(eq + 1).trim();
        }
        const r = await api('POST', `/devices/${seg(id)}/messages/deviceBound`, { raw: c2dBody.value, headers });
        setMessage(c2dOut, `Queued: message id ${r.json.messageId}, sequence number ${r.json.sequenceNumber}.`, true);
      });
    });

    /* Direct method. */
    const mName = h('input', { type: 'text', id: 'method-name', required: true, autocomplete: 'off' });
    const mPayload = h('textarea', { id: 'method-payload', spellcheck: 'false', rows: 4, value: '{}' });
    const mTimeout = h('input', { type: 'number', id: 'method-timeout', min: 5, max: 300, value: '30' });
    const mConnect = h('input', { type: 'number', id: 'method-connect-timeout', min: 0, max: 300, value: '0' });
    const mOut = h('div', { class: 'error', role: 'alert', id: 'method-error' });
    const mResult = h('div', { class: 'result', id: 'method-result', 'aria-live': 'polite' });
    const mButton = h('button', { type: 'submit', id: 'method-invoke' }, 'Invoke');
    const mForm = h('form', { id: 'method-form' },
      h('div', { class: 'row' }, field('Method name', mName), field('Answer within (s)', mTimeout),
        field('Wait for the device (s)', mConnect, '0: it must be connected now')),
      field('Payload (JSON)', mPayload),
      h('div', { class: 'row' }, mButton), mOut, mResult);
    mForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      mResult.replaceChildren();
      act(mButton, mOut, async () => {
        let payload;
        try {
          payload = mPayload.value.trim() === '' ? null : JSON.parse(mPayload.value);
        } catch (e) {
          throw new Error(`the payload is not valid JSON: ${e.message}`);
        }
        const body = { methodName: mName.value.trim(), payload,
          responseTimeoutInSeconds: Number(mTimeout.value), connectTimeoutInSeconds: Number(mConnect.value) };
        const r = await api('POST', `/twins/${seg(id)}/methods`, { body });
        mResult.replaceChildren(h('p', null, `The device answered with status ${r.json.status}:`),
          h('pre', null, JSON.stringify(r.json.payload, null, 2)));
      });
    });

    m.append(
      h('p', null, h('a', { href: '#/devices' }, '← All devices')),
      h('h1', null, 'Device ', h('code', null, id)),
      h('div', { class: 'grid2' },
        h('section', { class: 'panel', 'aria-labelledby': 'ident-h' },
          h('h2', { id: 'ident-h' }, 'Identity'), idOut, facts,
          h('div', { class: 'actions' }, toggle, del, showCs,
            h('a', { href: `#/telemetry?device=${seg(id)}` }, 'Live telemetry of this device')),
          csOut),
        h('section', { class: 'panel', 'aria-labelledby': 'c2d-h' },
          h('h2', { id: 'c2d-h' }, 'Send a cloud-to-device message'), c2dForm)),
      h('section', { class: 'panel', 'aria-labelledby': 'twin-h' },
        h('h2', { id: 'twin-h' }, 'Twin'), twinMeta,
        h('div', { class: 'grid2' }, field('Tags (JSON)', tagsArea), field('Desired properties (JSON)', desiredArea)),
        h('div', { class: 'row' }, h('div', { class: 'actions' }, saveTwin, reloadTwin)),
        twinOut,
        h('h3', null, 'Reported properties (the device\'s)'), reported,
        h('details', null, h('summary', null, 'The whole twin JSON'), twinWhole)),
      h('section', { class: 'panel', 'aria-labelledby': 'method-h' },
        h('h2', { id: 'method-h' }, 'Invoke a direct method'), mForm));

    loadDevice();
    act(null, twinOut, loadTwin);
    const timer = setInterval(() => {
      if (!document.hidden) loadDevice();
    }, LIST_REFRESH_MS);
    onLeave(() => clearInterval(timer));
  }

  /* ---- live telemetry -------------------------------------------------------- */

  /* Kept across visits of the page: the stream position and what came in. */
  const tm = {
    from: null,       /* next sequence number to ask for */
    messages: [],     /* newest last, at most 1000 */
    times: [],        /* [hub time ms, deviceId] of messages in the chart window */
    skewMs: 0,        /* hub clock minus ours, from the Date header */
    abort: null,
    paused: false,
  };

  function noteSkew(headers) {
    const d = Date.parse(headers.get('Date') || '');
    if (!Number.isNaN(d)) tm.skewMs = d - Date.now();
  }

  function addMessages(list) {
    for (const msg of list) {
      tm.from = Math.max(tm.from, msg.sequenceNumber + 1);
      tm.messages.push(msg);
      const t = Date.parse(msg.enqueuedTime);
      if (!Number.isNaN(t)) tm.times.push([t, msg.deviceId]);
    }
    if (tm.messages.length > 1000) tm.messages.splice(0, tm.messages.length - 1000);
    const cutoff = Date.now() + tm.skewMs - CHART_WINDOW_S * 1000 - 5000;
    while (tm.times.length && tm.times[0][0] < cutoff) tm.times.shift();
  }

  /* The API reads forward from a sequence number; the live view starts at
   * the end of the log. "Is there a message at or after n" is monotonic in
   * n, so the last sequence number is found by doubling, then bisecting
   * (about 2·log2(n) quick reads), and the last minutes are read back. */
  async function findTail(signal) {
    const exists = async (n) => {
      const r = await api('GET', '/messages/events', { query: { from: n, limit: 1, wait: 0 }, signal });
      noteSkew(r.headers);
      return r.json.length > 0;
    };
    if (!(await exists(1))) return 0;
    let lo = 1;
    let hi = 2;
    while (await exists(hi)) {
      lo = hi;
      hi *= 2;
    }
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (await exists(mid)) lo = mid;
      else hi = mid;
    }
    /* lo: some message has a sequence number >= lo, none >= hi = lo + 1. */
    return lo;
  }

  function telemetryView(m, initialDevice) {
    document.title = 'Live telemetry · hubd console';
    const filter = h('input', { type: 'search', id: 'telemetry-device', value: initialDevice, autocomplete: 'off' });
    const pause = h('button', { type: 'button', class: 'secondary', id: 'telemetry-pause' }, tm.paused ? 'Resume' : 'Pause');
    const state = h('p', { class: 'status-line', id: 'telemetry-state', 'aria-live': 'polite' });
    const out = h('div', { class: 'error', role: 'alert', id: 'telemetry-error' });
    const tbody = h('tbody');
    const chartHost = h('div', { class: 'chart', id: 'telemetry-chart' });
    const chartSummary = h('p', { class: 'status-line', id: 'chart-summary' });
    const filterForm = h('form', { id: 'telemetry-filter', role: 'search' },
      h('div', { class: 'row' }, field('Device id', filter, 'Empty: every device'),
        h('button', { type: 'submit' }, 'Filter'), pause));
    filterForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const v = filter.value.trim();
      history.replaceState(null, '', v ? `#/telemetry?device=${seg(v)}` : '#/telemetry');
      redraw();
    });
    pause.addEventListener('click', () => {
      tm.paused = !tm.paused;
      pause.textContent = tm.paused ? 'Resume' : 'Pause';
      if (tm.paused) stop();
      else start();
      redraw();
    });

    const matches = (deviceId) => !filter.value.trim() || deviceId === filter.value.trim();

    function messageRow(msg) {
      const props = Object.entries(msg.properties || {}).map(([k, v]) => h('span', null, h('code', null, k), '=', v === null ? '(none)' : v));
      const sys = msg.systemProperties || {};
      for (const k of ['messageId', 'correlationId', 'contentType', 'contentEncoding'])
        if (sys[k]) props.push(h('span', { class: 'hint' }, `${k}=${sys[k]}`));
      const body = msg.body.length > 4096 ? msg.body.slice(0, 4096) + '…' : msg.body;
      return h('tr', { 'data-seq': msg.sequenceNumber },
        h('td', null, new Date(msg.enqueuedTime).toLocaleTimeString(), h('div', { class: 'seq' }, `#${msg.sequenceNumber}`)),
        h('td', null, h('a', { href: `#/devices/${seg(msg.deviceId)}` }, msg.deviceId)),
        h('td', { class: 'props' }, props.length ? props : h('span', { class: 'empty' }, 'none')),
        h('td', { class: 'body' }, h('pre', null, body), msg.bodyEncoding === 'base64' ? h('span', { class: 'hint' }, 'base64 (not UTF-8)') : null));
    }

    function drawChart() {
      /* Drawn at about the size it is shown on a laptop, so text stays ~12px. */
      const W = 1000;
      const H = 190;
      const left = 40;
      const top = 10;
      const plotW = 940;
      const plotH = 150;
      const now = Date.now() + tm.skewMs;
      const bins = new Array(CHART_WINDOW_S).fill(0);
      for (const [t, dev] of tm.times) {
        if (!matches(dev)) continue;
        const age = Math.floor((now - t) / 1000);
        if (age >= 0 && age < CHART_WINDOW_S) bins[CHART_WINDOW_S - 1 - age]++;
        else if (age < 0 && age > -3) bins[CHART_WINDOW_S - 1]++; /* clock jitter */
      }
      const peak = Math.max(...bins);
      let max = 1;
      while (max < peak) max = max < 5 ? max + 1 : Math.ceil(max * 1.5);
      const total = bins.reduce((a, b) => a + b, 0);
      const last10 = bins.slice(-10).reduce((a, b) => a + b, 0) / 10;
      const summary = `${total} message${total === 1 ? '' : 's'} in the last ${CHART_WINDOW_S / 60} minutes` +
        `${filter.value.trim() ? ` from ${filter.value.trim()}` : ''}; peak ${peak} per second; ` +
        `${last10.toFixed(1)} per second over the last 10 s.`;
      const bw = plotW / CHART_WINDOW_S;
      const bars = [];
      bins.forEach((n, i) => {
        if (!n) return;
        const bh = (n / max) * plotH;
        bars.push(s('rect', { class: 'bar', x: (left + i * bw).toFixed(2), y: (top + plotH - bh).toFixed(2),
          width: Math.max(bw - 0.3, 1).toFixed(2), height: bh.toFixed(2) }));
      });
      const grid = [];
      for (const v of [0, max / 2, max]) {
        const y = top + plotH - (v / max) * plotH;
        grid.push(s('line', { class: 'grid', x1: left, x2: left + plotW, y1: y, y2: y }));
        grid.push(s('text', { class: 'axis', x: left - 6, y: y + 4, 'text-anchor': 'end' }, Number.isInteger(v) ? v : v.toFixed(1)));
      }
      for (let mnt = CHART_WINDOW_S / 60; mnt >= 0; mnt--) {
        const x = left + plotW - (mnt * 60) * bw;
        grid.push(s('text', { class: 'axis', x, y: top + plotH + 18, 'text-anchor': mnt ? 'middle' : 'end' }, mnt ? `−${mnt} min` : 'now'));
      }
      const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': 'chart-title chart-desc' },
        s('title', { id: 'chart-title' }, 'Messages per second'),
        s('desc', { id: 'chart-desc' }, summary), ...grid, ...bars);
      chartHost.replaceChildren(svg);
      chartSummary.textContent = summary;
    }

    function redraw() {
      const shown = [];
      for (let i = tm.messages.length - 1; i >= 0 && shown.length < MAX_SHOWN_MESSAGES; i--)
        if (matches(tm.messages[i].deviceId)) shown.push(tm.messages[i]);
      tbody.replaceChildren(...shown.map(messageRow));
      if (!shown.length) tbody.append(h('tr', null, h('td', { colspan: 4, class: 'empty' }, 'No message yet. New ones appear here as devices send them.')));
      drawChart();
      if (tm.paused) state.textContent = 'Paused.';
      else if (tm.from !== null) state.textContent = `Live: waiting for sequence number ${tm.from} and later.`;
    }

    async function loop(abort) {
      const signal = abort.signal;
      try {
        if (tm.from === null) {
          state.textContent = 'Finding the end of the telemetry log…';
          const last = await findTail(signal);
          tm.from = last + 1;
          if (last > 0) {
            /* The last minutes, for the chart and the list. */
            const r = await api('GET', '/messages/events', { query: { from: Math.max(1, last - 999), limit: 1000, wait: 0 }, signal });
            const since = Date.now() + tm.skewMs - CHART_WINDOW_S * 1000;
            addMessages(r.json.filter((msg) => Date.parse(msg.enqueuedTime) >= since));
            tm.from = Math.max(tm.from, last + 1);
          }
          redraw();
        }
      } catch (e) {
        if (e.name === 'AbortError') return;
        setMessage(out, describeError(e));
        return;
      }
      while (!signal.aborted) {
        try {
          const r = await api('GET', '/messages/events', { query: { from: tm.from, limit: 500, wait: 20 }, signal });
          noteSkew(r.headers);
          setMessage(out, '');
          if (r.json.length) {
            addMessages(r.json);
            redraw();
          }
        } catch (e) {
          if (e.name === 'AbortError') return;
          setMessage(out, `${describeError(e)}. Trying again in 5 s.`);
          await new Promise((res) => setTimeout(res, 5000));
        }
      }
    }

    function start() {
      if (tm.abort) return;
      tm.abort = new AbortController();
      loop(tm.abort);
    }
    function stop() {
      if (tm.abort) tm.abort.abort();
      tm.abort = null;
    }

    m.append(
      h('h1', null, 'Live telemetry'),
      h('p', { class: 'lead' }, 'Device-to-cloud messages as the hub commits them (GET /messages/events, a long poll).'),
      h('section', { class: 'panel' }, filterForm, state, out),
      h('section', { class: 'panel', 'aria-labelledby': 'chart-h' },
        h('h2', { id: 'chart-h' }, 'Messages per second'), chartHost, chartSummary),
      h('section', { class: 'panel', 'aria-labelledby': 'msgs-h' },
        h('h2', { id: 'msgs-h' }, 'Messages, newest first'),
        h('table', { class: 'msgs', id: 'telemetry-table' },
          h('thead', null, h('tr', null, ['Time', 'Device', 'Properties', 'Body'].map((t) => h('th', { scope: 'col' }, t)))),
          tbody)));
    redraw();
    if (!tm.paused) start();
    const timer = setInterval(drawChart, 1000);
    onLeave(() => {
      clearInterval(timer);
      stop();
    });
  }

  /* ---- provisioning -------------------------------------------------------------- */

  const DPS_PAGE_SIZE = 100;
  /* A bound on the pages one list follows (100 000 records): a service that
   * kept answering with a continuation would otherwise never end a refresh. */
  const DPS_MAX_PAGES = 1000;

  /* Every record of a provisioning query, POST {"query":"*"} following
   * x-ms-continuation to the end, as `hubctl dps ... list` does. */
  async function dpsQueryAll(path) {
    const items = [];
    let token = null;
    for (let i = 0; i < DPS_MAX_PAGES; i++) {
      const headers = { 'x-ms-max-item-count': String(DPS_PAGE_SIZE) };
      if (token) headers['x-ms-continuation'] = token;
      const r = await dpsApi('POST', path, { body: { query: '*' }, headers });
      if (Array.isArray(r.json)) items.push(...r.json);
      token = r.headers.get('x-ms-continuation');
      if (!token) break;
    }
    return items;
  }

  /* What an enrollment admits, in words: the hub CA it names, the signing
   * or device certificate (the API answers with its info, never the PEM),
   * or a symmetric key. */
  function attestationText(att) {
    if (!att) return '?';
    if (att.type === 'symmetricKey') return 'Symmetric key';
    if (att.type !== 'x509') return String(att.type);
    const x = att.x509 || {};
    const cert = (c) => (c && c.info && (c.info.subjectName ||
      (c.info.sha256Thumbprint && `thumbprint ${c.info.sha256Thumbprint}`) ||
      (c.info.sha1Thumbprint && `thumbprint ${c.info.sha1Thumbprint}`))) || 'a certificate';
    const pair = (o, fmt) => fmt(o.primary) + (o.secondary ? `; secondary ${fmt(o.secondary)}` : '');
    if (x.caReferences) return `X.509 · hub CA ${pair(x.caReferences, (n) => n)}`;
    if (x.signingCertificates) return `X.509 · signing certificate ${pair(x.signingCertificates, cert)}`;
    if (x.clientCertificates) return `X.509 · device certificate ${pair(x.clientCertificates, cert)}`;
    return 'X.509';
  }

  function registrationBadge(status) {
    const cls = status === 'assigned' ? 'ok' : status === 'failed' || status === 'disabled' ? 'bad' : 'warn';
    return h('span', { class: `badge ${cls}` }, status === 'assigned' ? '✓ assigned' : status || '?');
  }

  /* GET, flip provisioningStatus, PUT back with If-Match: the etag read, so
   * a change made meanwhile is refused (412), not overwritten. The record
   * goes back as read: certificates as their info, which the service keeps. */
  async function setEnrollmentStatus(collection, id, status) {
    const path = `/${collection}/${seg(id)}`;
    const cur = (await dpsApi('GET', path)).json;
    cur.provisioningStatus = status;
    await dpsApi('PUT', path, { body: cur, headers: { 'If-Match': quoteEtag(cur.etag) } });
  }

  function dpsSigninPanel(m) {
    const input = h('input', { type: 'password', id: 'dps-connection-string', autocomplete: 'off', spellcheck: 'false',
      placeholder: 'HostName=localhost;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=...', required: true });
    const show = h('input', { type: 'checkbox', id: 'show-dps-connection-string',
      onchange: () => { input.type = show.checked ? 'text' : 'password'; } });
    const scope = h('input', { type: 'text', id: 'dps-id-scope', autocomplete: 'off', spellcheck: 'false',
      placeholder: '0ne...', maxlength: 11, size: 14 });
    const out = h('div', { id: 'dps-signin-error', class: 'error', role: 'alert' });
    const button = h('button', { type: 'submit', id: 'dps-signin-button' }, 'Sign in to the provisioning service');
    const form = h('form', { class: 'panel', id: 'dps-signin-form' },
      h('h2', null, 'Sign in to the provisioning service'),
      h('p', null, 'The provisioning service has its own shared access policies: a hub policy\'s key does not open it. ',
        'hubd prints provisioningserviceowner\'s connection string when it starts (', h('code', null, 'DPS connection:'),
        '); ', h('code', null, '{data_dir}/dps-policies'), ' holds every policy\'s keys. The key stays in this tab\'s memory, ',
        'like the hub\'s.'),
      h('div', { class: 'row' }, field('Provisioning service connection string', input, null, 'wide')),
      h('div', { class: 'row' },
        field('ID scope (optional)', scope, 'hubd prints it as idScope=0ne…; shown here for the devices\' setup'),
        h('div', { class: 'field check' }, show, h('label', { for: show.id }, 'Show the connection string')), button),
      out);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      act(button, out, async () => {
        const idScope = scope.value.trim();
        if (idScope && !/^0ne[0-9A-Fa-f]{8}$/.test(idScope))
          throw new Error('an ID scope is "0ne" followed by 8 hexadecimal digits (hubd prints it as idScope=...)');
        await signIn(input.value, dpsSession);
        /* Check the credentials now: 401 is a key the service does not know
         * (a hub policy's, typically); 403 is a policy without
         * EnrollmentRead, which still may read registration records. */
        try {
          await dpsApi('POST', '/enrollmentGroups/query', { body: { query: '*' }, headers: { 'x-ms-max-item-count': '1' } });
        } catch (e) {
          if (!(e instanceof ApiError && e.status === 403)) {
            signOut(dpsSession);
            if (e instanceof ApiError && e.status === 401)
              throw new Error(`${describeError(e)}. Sign in with a provisioning service policy's connection string ` +
                '(hubd\'s "DPS connection:" line); a hub policy\'s, even iothubowner\'s, is refused here.');
            throw e;
          }
        }
        dpsSession.idScope = idScope || null;
        input.value = '';
        render();
      });
    });
    m.append(form);
    input.focus();
  }

  function provisioningView(m) {
    document.title = 'Provisioning · hubd console';
    m.append(h('h1', null, 'Provisioning'),
      h('p', { class: 'lead' }, 'Zero-touch provisioning: enrollments say which devices may register with the provisioning ',
        'service; a device that registers is created in the hub and told where to connect. Everything here goes through ',
        'the provisioning service\'s API (docs/dps.md).'));
    if (!dpsSignedIn()) {
      dpsSigninPanel(m);
      return;
    }

    /* The service: who is signed in, the ID scope if the operator gave it. */
    const signout = h('button', { type: 'button', class: 'secondary', id: 'dps-signout' }, 'Sign out of the provisioning service');
    signout.addEventListener('click', () => {
      signOut(dpsSession);
      toast('Signed out of the provisioning service: its key is gone from this page');
      render();
    });
    const scopeFact = dpsSession.idScope
      ? h('code', { id: 'dps-id-scope-shown' }, dpsSession.idScope)
      : h('span', { id: 'dps-id-scope-shown', class: 'empty' }, 'not given (hubd prints it at start as idScope=0ne…)');
    const registerCmd = `hubctl dps register REGID --id-scope ${dpsSession.idScope || 'SCOPE'} --cert CHAIN.pem --key KEY.pem`;
    const copyCmd = h('button', { type: 'button', class: 'secondary small', id: 'dps-copy-register' }, 'Copy command');
    copyCmd.addEventListener('click', () => copyText(registerCmd, 'Command'));

    /* Create an enrollment group: X.509 on a hub CA, or a symmetric key. */
    const gId = h('input', { type: 'text', id: 'group-id', required: true, maxlength: 128, autocomplete: 'off',
      spellcheck: 'false' });
    const gKind = h('select', { id: 'group-attestation' },
      h('option', { value: 'x509' }, 'X.509, on a hub CA (caReferences)'),
      h('option', { value: 'symmetricKey' }, 'Symmetric key (derived device keys)'));
    const caHost = h('div', { class: 'field-host' });
    let caControl = null;
    function showCaField(control, hint) {
      caControl = control;
      caHost.replaceChildren(field('Hub CA', control, hint));
    }
    showCaField(h('input', { type: 'text', id: 'group-ca', autocomplete: 'off', spellcheck: 'false' }),
      'The name of a CA certificate registered and verified in the hub');
    gKind.addEventListener('change', () => { caHost.hidden = gKind.value !== 'x509'; });
    const gDisabled = h('input', { type: 'checkbox', id: 'group-disabled' });
    const gOut = h('div', { class: 'error', role: 'alert', id: 'group-create-error' });
    const gResult = h('div', { class: 'result', id: 'group-create-result' });
    const gButton = h('button', { type: 'submit', id: 'group-create' }, 'Create');
    const gForm = h('form', { id: 'group-create-form' },
      h('div', { class: 'row' }, field('Group id', gId, '1 to 128 of a-z 0-9 . - _'),
        field('Attestation', gKind, 'How its devices prove who they are'), caHost),
      h('div', { class: 'row' }, h('div', { class: 'field check' }, gDisabled,
        h('label', { for: gDisabled.id }, 'Create it disabled (its devices are refused until it is enabled)')), gButton),
      gOut, gResult);

    /* The CA names come from the hub's API when the hub policy may read
     * them; otherwise the operator types one. */
    async function loadCas() {
      let certs;
      try {
        certs = (await api('GET', '/certificates')).json.value || [];
      } catch (e) {
        showCaField(caControl, `The hub's CA list could not be read (${describeError(e)}): type the CA's name.`);
        return;
      }
      if (!certs.length) {
        showCaField(caControl, 'The hub has no CA certificate yet: upload and verify one on the CA certificates page.');
        return;
      }
      const sel = h('select', { id: 'group-ca' }, certs.map((c) => h('option', { value: c.name },
        c.name + (c.properties && c.properties.isVerified ? ' (✓ verified)' : ' (unverified: its devices are refused)'))));
      showCaField(sel, 'A CA certificate of the hub; it must be verified when devices register');
    }

    gForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      gResult.replaceChildren();
      act(gButton, gOut, async () => {
        const id = gId.value.trim();
        const x509 = gKind.value === 'x509';
        const ca = x509 ? caControl.value.trim() : '';
        if (x509 && !ca) throw new Error('choose or type the hub CA the group\'s devices chain to');
        /* A PUT replaces an existing group unconditionally (as Azure's), so
         * read first: creating never overwrites someone's group by accident. */
        let exists = true;
        try {
          await dpsApi('GET', `/enrollmentGroups/${seg(id)}`);
        } catch (e) {
          if (!(e instanceof ApiError && e.status === 404)) throw e;
          exists = false;
        }
        if (exists) throw new Error(`an enrollment group "${id}" already exists (delete it first, or choose another id)`);
        const attestation = x509 ? { type: 'x509', x509: { caReferences: { primary: ca } } }
          : { type: 'symmetricKey', symmetricKey: { primaryKey: '', secondaryKey: '' } };
        const r = await dpsApi('PUT', `/enrollmentGroups/${seg(id)}`, {
          body: { enrollmentGroupId: id, attestation, provisioningStatus: gDisabled.checked ? 'disabled' : 'enabled' } });
        toast(`Created the enrollment group ${id}`);
        const sk = r.json.attestation && r.json.attestation.symmetricKey;
        if (sk && sk.primaryKey) {
          const cmd = `hubctl dps key derive --group-key ${sk.primaryKey} REGID`;
          const copy = h('button', { type: 'button', class: 'secondary small' }, 'Copy command');
          copy.addEventListener('click', () => copyText(cmd, 'Command'));
          gResult.replaceChildren(h('p', null, 'The group key never goes on a device: each device gets the key derived ',
            'from it and its registration id (keep the group key secret):'), h('div', { class: 'codebox' }, h('pre', null, cmd), copy));
        }
        gForm.reset();
        caHost.hidden = false;
        await lists.reload();
      });
    });

    /* Enrollment groups with their registrations, individual enrollments
     * with theirs; refreshed while the page is shown. */
    const auto = h('input', { type: 'checkbox', id: 'dps-auto', checked: true });
    const refresh = h('button', { type: 'button', class: 'secondary', id: 'dps-refresh' }, 'Refresh');
    refresh.addEventListener('click', () => act(refresh, null, () => lists.reload()));
    /* Refusals of an action stay until the next action; a failed refresh
     * shows apart, and goes when a refresh works again. */
    const groupsOut = h('div', { class: 'error', role: 'alert', id: 'group-error' });
    const groupsLoadOut = h('div', { class: 'error', role: 'alert', id: 'group-list-error' });
    const groupsBody = h('tbody');
    const enrOut = h('div', { class: 'error', role: 'alert', id: 'enrollment-error' });
    const enrLoadOut = h('div', { class: 'error', role: 'alert', id: 'enrollment-list-error' });
    const enrBody = h('tbody');

    function registrationCells(rec) {
      const st = [registrationBadge(rec.status)];
      if (rec.errorMessage) st.push(h('div', { class: 'hint' }, `${rec.errorCode ? rec.errorCode + ': ' : ''}${rec.errorMessage}`));
      return [
        h('td', { class: 'reg-status' }, st),
        h('td', { class: 'reg-device' }, rec.deviceId ? h('a', { href: `#/devices/${seg(rec.deviceId)}` }, rec.deviceId) : '—'),
        h('td', { class: 'reg-hub' }, rec.assignedHub || '—'),
        h('td', { class: 'reg-substatus' }, rec.substatus || '—'),
        h('td', { class: 'reg-updated', title: rec.lastUpdatedDateTimeUtc || '' }, fmtTime(rec.lastUpdatedDateTimeUtc)),
      ];
    }

    function deleteRecordButton(rec, out) {
      const b = h('button', { type: 'button', class: 'small danger', 'data-focus-key': `regdel:${rec.registrationId}`,
        'aria-label': `Delete the registration record of ${rec.registrationId}` }, 'Delete record');
      b.addEventListener('click', () => {
        if (!window.confirm(`Delete the registration record of "${rec.registrationId}"? The device stays in the hub; ` +
          'its next registration is an initial assignment again.')) return;
        act(b, out, async () => {
          await dpsApi('DELETE', `/registrations/${seg(rec.registrationId)}`,
            { headers: rec.etag ? { 'If-Match': quoteEtag(rec.etag) } : {} });
          toast(`Deleted the registration record of ${rec.registrationId}`);
          await lists.reload();
        });
      });
      return b;
    }

    function toggleButton(collection, what, e, id, out) {
      const enabled = e.provisioningStatus !== 'disabled';
      const b = h('button', { type: 'button', class: 'small secondary', 'data-focus-key': `toggle:${collection}:${id}`,
        'aria-label': `${enabled ? 'Disable' : 'Enable'} ${what} ${id}` }, enabled ? 'Disable' : 'Enable');
      b.addEventListener('click', () => act(b, out, async () => {
        await setEnrollmentStatus(collection, id, enabled ? 'disabled' : 'enabled');
        toast(`${enabled ? 'Disabled' : 'Enabled'} ${what} ${id}`);
        await lists.reload();
      }));
      return b;
    }

    function deleteEnrollmentButton(collection, what, e, id, out, consequence) {
      const b = h('button', { type: 'button', class: 'small danger', 'data-focus-key': `delete:${collection}:${id}`,
        'aria-label': `Delete ${what} ${id}` }, 'Delete');
      b.addEventListener('click', () => {
        if (!window.confirm(`Delete the ${what} "${id}"? ${consequence}`)) return;
        act(b, out, async () => {
          /* With the etag the list showed: a record changed meanwhile is not deleted blindly (412). */
          await dpsApi('DELETE', `/${collection}/${seg(id)}`, { headers: { 'If-Match': quoteEtag(e.etag) } });
          toast(`Deleted the ${what} ${id}`);
          await lists.reload();
        });
      });
      return b;
    }

    function groupRows(g, regs) {
      const id = g.enrollmentGroupId;
      const main = h('tr', { 'data-group': id },
        h('td', null, h('strong', null, id)),
        h('td', { class: 'attestation' }, attestationText(g.attestation)),
        h('td', { class: 'status' }, statusBadge(g.provisioningStatus || 'enabled')),
        h('td', { class: 'reg-count' }, regs.error ? '?' : String(regs.items.length)),
        h('td', null, h('div', { class: 'actions' },
          toggleButton('enrollmentGroups', 'enrollment group', g, id, groupsOut),
          deleteEnrollmentButton('enrollmentGroups', 'enrollment group', g, id, groupsOut,
            'Devices it admitted stay in the hub, with their registration records; no new device can register through it.'))));
      let inner;
      if (regs.error) {
        inner = h('div', { class: 'error', role: 'alert' }, `Its registrations: ${describeError(regs.error)}`);
      } else if (!regs.items.length) {
        inner = h('p', { class: 'empty' }, 'No device has registered through this group yet.');
      } else {
        inner = h('div', null, h('table', { class: 'nested', 'data-registrations-of': id },
          h('caption', null, `Devices registered through ${id}`),
          h('thead', null, h('tr', null, ['Registration id', 'Status', 'Device', 'Assigned hub', 'Substatus', 'Last updated', 'Actions']
            .map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', null, regs.items.map((rec) => h('tr', { 'data-registration': rec.registrationId },
            h('td', null, rec.registrationId), registrationCells(rec),
            h('td', null, deleteRecordButton(rec, groupsOut)))))));
      }
      return [main, h('tr', { class: 'regs', 'data-group-registrations': id }, h('td', { colspan: 5 }, inner))];
    }

    function enrollmentRow(e, rec) {
      const id = e.registrationId;
      let regCell;
      if (rec.error) regCell = h('td', { class: 'registration' }, h('span', { class: 'error' }, describeError(rec.error)));
      else if (!rec.record) regCell = h('td', { class: 'registration empty' }, 'not registered');
      else {
        const r = rec.record;
        regCell = h('td', { class: 'registration' }, registrationBadge(r.status),
          r.deviceId ? [' ', h('a', { href: `#/devices/${seg(r.deviceId)}` }, r.deviceId)] : null,
          h('div', { class: 'hint' }, [r.substatus, r.assignedHub && `at ${r.assignedHub}`, fmtTime(r.lastUpdatedDateTimeUtc)]
            .filter(Boolean).join(' · ')),
          r.errorMessage ? h('div', { class: 'hint' }, r.errorMessage) : null);
      }
      return h('tr', { 'data-enrollment': id },
        h('td', null, h('strong', null, id)),
        h('td', null, e.deviceId && e.deviceId !== id ? e.deviceId : h('span', { class: 'hint' }, 'the registration id')),
        h('td', { class: 'attestation' }, attestationText(e.attestation)),
        h('td', { class: 'status' }, statusBadge(e.provisioningStatus || 'enabled')),
        regCell,
        h('td', null, h('div', { class: 'actions' },
          toggleButton('enrollments', 'enrollment', e, id, enrOut),
          deleteEnrollmentButton('enrollments', 'enrollment', e, id, enrOut,
            'The device stays in the hub, with its registration record; it can no longer register.'),
          rec.record ? deleteRecordButton(rec.record, enrOut) : null)));
    }

    /* Keeps keyboard focus on the same control across a refresh. */
    function replaceKeepingFocus(tbody, rows) {
      const focused = document.activeElement && tbody.contains(document.activeElement)
        ? document.activeElement.dataset.focusKey : null;
      tbody.replaceChildren(...rows);
      if (focused) {
        const again = tbody.querySelector(`[data-focus-key="${CSS.escape(focused)}"]`);
        if (again) again.focus();
      }
    }

    const settle = (p) => p.then((v) => ({ value: v }), (e) => ({ error: e }));

    async function loadGroups() {
      let groups;
      try {
        groups = await dpsQueryAll('/enrollmentGroups/query');
      } catch (e) {
        setMessage(groupsLoadOut, describeError(e));
        return;
      }
      const regs = await Promise.all(groups.map((g) =>
        settle(dpsQueryAll(`/registrations/${seg(g.enrollmentGroupId)}/query`))
          .then((r) => (r.error ? { error: r.error, items: [] } : { items: r.value }))));
      setMessage(groupsLoadOut, '');
      const rows = groups.flatMap((g, i) => groupRows(g, regs[i]));
      if (!groups.length) rows.push(h('tr', null, h('td', { colspan: 5, class: 'empty' }, 'No enrollment group yet.')));
      replaceKeepingFocus(groupsBody, rows);
    }

    async function loadEnrollments() {
      let list;
      try {
        list = await dpsQueryAll('/enrollments/query');
      } catch (e) {
        setMessage(enrLoadOut, describeError(e));
        return;
      }
      const recs = await Promise.all(list.map((e) =>
        settle(dpsApi('GET', `/registrations/${seg(e.registrationId)}`)).then((r) => {
          if (!r.error) return { record: r.value.json };
          return r.error instanceof ApiError && r.error.status === 404 ? {} : { error: r.error };
        })));
      setMessage(enrLoadOut, '');
      const rows = list.map((e, i) => enrollmentRow(e, recs[i]));
      if (!list.length) {
        rows.push(h('tr', null, h('td', { colspan: 6, class: 'empty' },
          'No individual enrollment. hubctl dps enrollment create makes one (by certificate, thumbprint or symmetric key).')));
      }
      replaceKeepingFocus(enrBody, rows);
    }

    /* One refresh at a time; a reload asked for meanwhile (after an action)
     * runs once more when the current one ends, so it sees the action. */
    const lists = {
      running: null,
      again: false,
      reload() {
        if (this.running) {
          this.again = true;
          return this.running;
        }
        this.running = (async () => {
          do {
            this.again = false;
            await Promise.all([loadGroups(), loadEnrollments()]);
          } while (this.again);
        })().finally(() => { this.running = null; });
        return this.running;
      },
    };

    const timer = setInterval(() => {
      if (auto.checked && !document.hidden) lists.reload();
    }, LIST_REFRESH_MS);
    onLeave(() => clearInterval(timer));

    m.append(
      h('section', { class: 'panel', 'aria-labelledby': 'dps-h' },
        h('h2', { id: 'dps-h' }, 'The provisioning service'),
        h('dl', { class: 'facts', id: 'dps-facts' },
          h('dt', null, 'Service'), h('dd', null, dpsSession.host),
          h('dt', null, 'Policy'), h('dd', null, dpsSession.policy),
          h('dt', null, 'ID scope'), h('dd', null, scopeFact),
          h('dt', null, 'A device registers'), h('dd', null, h('div', { class: 'codebox' },
            h('pre', { id: 'dps-register-command' }, registerCmd), copyCmd))),
        h('div', { class: 'actions' }, signout)),
      h('section', { class: 'panel', 'aria-labelledby': 'group-create-h' },
        h('h2', { id: 'group-create-h' }, 'Create an enrollment group'), gForm),
      h('section', { class: 'panel', 'aria-labelledby': 'groups-h' },
        h('h2', { id: 'groups-h' }, 'Enrollment groups'),
        h('div', { class: 'row' }, h('div', { class: 'actions' }, refresh,
          h('div', { class: 'field check' }, auto, h('label', { for: auto.id }, `Refresh every ${LIST_REFRESH_MS / 1000} s`)))),
        groupsOut, groupsLoadOut,
        h('table', { id: 'group-table' },
          h('caption', null, 'Each group\'s registrations are under it. Disabling a group refuses new registrations; ',
            'devices already in the hub keep connecting.'),
          h('thead', null, h('tr', null, ['Group id', 'Attestation', 'Status', 'Registrations', 'Actions']
            .map((t) => h('th', { scope: 'col' }, t)))),
          groupsBody)),
      h('section', { class: 'panel', 'aria-labelledby': 'enrollments-h' },
        h('h2', { id: 'enrollments-h' }, 'Individual enrollments'),
        enrOut, enrLoadOut,
        h('table', { id: 'enrollment-table' },
          h('caption', null, 'An individual enrollment decides alone for its registration id, even when a group would admit the device.'),
          h('thead', null, h('tr', null, ['Registration id', 'Device id', 'Attestation', 'Status', 'Registration', 'Actions']
            .map((t) => h('th', { scope: 'col' }, t)))),
          enrBody)));
    loadCas();
    lists.reload();
  }

  /* ---- start ------------------------------------------------------------------ */

  function resetTelemetry() {
    if (tm.abort) tm.abort.abort();
    Object.assign(tm, { from: null, messages: [], times: [], abort: null, paused: false });
  }

  document.addEventListener('DOMContentLoaded', () => {
    document.getElementById('signout').addEventListener('click', () => {
      for (const fn of viewCleanup) fn();
      viewCleanup = [];
      signOut();
      signOut(dpsSession);
      resetTelemetry();
      go('#/signin');
      toast('Signed out: the keys are gone from this page');
    });
    document.getElementById('skip').addEventListener('click', (ev) => {
      ev.preventDefault();
      const h1 = main().querySelector('h1') || main();
      h1.tabIndex = -1;
      h1.focus();
    });
    window.addEventListener('hashchange', render);
    render();
  });
})();
