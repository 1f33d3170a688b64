// Passkeys: the WebAuthn ceremony for "Use a passkey" (sign-in page) and "Add a passkey"
// (passkeys page). Everything else on those pages works without this file; without it, or
// in a browser without WebAuthn, the buttons stay hidden and the page says why.
"use strict";

function bytesToBase64url(buffer) {
  var bytes = new Uint8Array(buffer);
  var text = "";
  for (var i = 0; i < bytes.length; i += 1) { text += String.fromCharCode(bytes[i]); }
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function base64urlToBytes(value) {
  var base64 = value.replace(/-/g, "+").replace(/_/g, "/");
  base64 += "====".slice((base64.length + 3) % 4 + 1);
  var text = atob(base64);
  var bytes = new Uint8Array(text.length);
  for (var i = 0; i < text.length; i += 1) { bytes[i] = text.charCodeAt(i); }
  return bytes.buffer;
}

function withIds(descriptors) {
  return (descriptors || []).map(function (d) {
    return Object.assign({}, d, { id: base64urlToBytes(d.id) });
  });
}

// The server's JSON options (py_webauthn's options_to_json) as the browser API wants them.
function creationOptions(options) {
  return Object.assign({}, options, {
    challenge: base64urlToBytes(options.challenge),
    user: Object.assign({}, options.user, { id: base64urlToBytes(options.user.id) }),
    excludeCredentials: withIds(options.excludeCredentials),
  });
}

function requestOptions(options) {
  return Object.assign({}, options, {
    challenge: base64urlToBytes(options.challenge),
    allowCredentials: withIds(options.allowCredentials),
  });
}

// The browser's answer as the JSON that py_webauthn parses (WebAuthn Level 3's toJSON()).
function credentialJSON(credential) {
  var r = credential.response;
  var response = { clientDataJSON: bytesToBase64url(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = bytesToBase64url(r.attestationObject);
    response.transports = typeof r.getTransports === "function" ? r.getTransports() : [];
  } else {
    response.authenticatorData = bytesToBase64url(r.authenticatorData);
    response.signature = bytesToBase64url(r.signature);
    response.userHandle = r.userHandle ? bytesToBase64url(r.userHandle) : null;
  }
  return JSON.stringify({
    id: credential.id,
    rawId: bytesToBase64url(credential.rawId),
    type: credential.type,
    authenticatorAttachment: credential.authenticatorAttachment || null,
    clientExtensionResults: credential.getClientExtensionResults(),
    response: response,
  });
}

function csrfToken() {
  var field = document.querySelector("input[name=csrfmiddlewaretoken]");
  return field ? field.value : "";
}

// POST form fields; resolves with the JSON body, rejects with the server's message.
function post(url, fields) {
  var body = new URLSearchParams(fields);
  body.set("csrfmiddlewaretoken", csrfToken());
  return fetch(url, {
    method: "POST",
    body: body,
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  }).then(function (response) {
    return response.json().catch(function () { return {}; }).then(function (data) {
      if (!response.ok) {
        var error = new Error((data.error && data.error.message) || "");
        error.fromServer = Boolean(data.error && data.error.message);
        throw error;
      }
      return data;
    });
  });
}

function webAuthnAvailable() {
  return Boolean(window.isSecureContext && window.PublicKeyCredential &&
    navigator.credentials && typeof navigator.credentials.create === "function");
}

// Shows the button (or keeps the "not available" note), and runs `ceremony` on use.
function setUp(root, trigger, ceremony) {
  var actions = root.querySelector("[data-passkey-actions]");
  var button = root.querySelector("[data-passkey-start]");
  var note = root.querySelector("[data-passkey-unavailable]");
  var error = root.querySelector("[data-passkey-error]");
  if (!actions || !button || !webAuthnAvailable()) { return; }
  if (note) { note.hidden = true; }
  actions.hidden = false;
  function fail(problem) {
    error.textContent = problem && problem.fromServer ? problem.message : root.getAttribute("data-failed");
    error.hidden = false;
    button.disabled = false;
  }
  trigger.addEventListener(trigger === button ? "click" : "submit", function (event) {
    event.preventDefault();
    if (button.disabled) { return; }
    button.disabled = true;
    error.hidden = true;
    error.textContent = "";
    ceremony(root).catch(fail);
  });
}

function signIn(root) {
  return post(root.getAttribute("data-begin-url"), {}).then(function (begun) {
    return navigator.credentials.get({ publicKey: requestOptions(begun.options) })
      .then(function (credential) {
        return post(root.getAttribute("data-finish-url"), {
          challenge_id: begun.challenge_id,
          credential: credentialJSON(credential),
          next: root.getAttribute("data-next") || "",
        });
      });
  }).then(function (done) { window.location.assign(done.redirect); });
}

function showRecoveryCodes(codes) {
  var section = document.querySelector("[data-recovery-codes]");
  var list = section.querySelector("[data-recovery-list]");
  codes.forEach(function (code) {
    var item = document.createElement("li");
    var text = document.createElement("code");
    text.textContent = code;
    item.appendChild(text);
    list.appendChild(item);
  });
  section.hidden = false;
  section.focus();
}

function register(form) {
  var otp = form.querySelector("[name=otp]");
  var name = form.querySelector("[name=name]");
  var password = form.querySelector("[name=password]");
  return post(form.getAttribute("data-begin-url"), {
    password: password ? password.value : "",
    otp: otp ? otp.value : "",
  })
    .then(function (begun) {
      return navigator.credentials.create({ publicKey: creationOptions(begun.options) })
        .then(function (credential) {
          return post(form.getAttribute("data-finish-url"), {
            challenge_id: begun.challenge_id,
            credential: credentialJSON(credential),
            name: name ? name.value : "",
          });
        });
    }).then(function (done) {
      if (done.recovery_codes && done.recovery_codes.length) {
        // Only the codes now: the list and the form come back with the next page.
        [form.closest("section"), document.querySelector("[data-passkey-list]")]
          .forEach(function (section) { if (section) { section.hidden = true; } });
        showRecoveryCodes(done.recovery_codes);
      } else {
        window.location.assign(done.redirect);
      }
    });
}

document.addEventListener("DOMContentLoaded", function () {
  var signInRoot = document.querySelector("[data-passkey-sign-in]");
  if (signInRoot) {
    setUp(signInRoot, signInRoot.querySelector("[data-passkey-start]"), signIn);
  }
  var form = document.querySelector("form[data-passkey-register]");
  if (form) { setUp(form, form, register); }
});
