//! The pages a person sees: plain server-rendered HTML, one small script around
//! `navigator.credentials` and one stylesheet, both served from this module so
//! that the Content-Security-Policy can forbid every inline script and style.
//!
//! A request's page shows who is asking, what approving does, and the short code
//! the terminal (or the ssh prompt) shows — so a person never approves a request
//! somebody else started. Unknown, expired and already-answered requests, and a
//! browser without WebAuthn, each get a page that says so.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::authority::webauthn::{PageState, PageView};

/// Sent with every page and page API answer: no inline code, no framing, no
/// caching (a page URL is a capability), no referrer leaking it.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                       connect-src 'self'; img-src 'none'; base-uri 'none'; \
                       form-action 'none'; frame-ancestors 'none'";

/// Add the security headers every page response carries.
pub fn secure(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// Minimal HTML escaping for text and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn html(status: StatusCode, body: String) -> Response {
    secure(
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
    )
}

fn shell(title: &str, body_attrs: &str, main: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} — Rampart</title>\
         <link rel=\"stylesheet\" href=\"{prefix}/static/page.css\"></head>\
         <body{body_attrs}><main>\n<h1>{title}</h1>\n{main}\n</main></body></html>\n",
        title = esc(title),
        prefix = rampart_api::webauthn::PAGE_PREFIX,
    )
}

/// A page that only says something (unknown, expired, finished).
pub fn notice(status: StatusCode, id: &str, title: &str, text: &str) -> Response {
    html(
        status,
        shell(
            title,
            &format!(" data-page=\"{}\"", esc(id)),
            &format!("<p id=\"notice\">{}</p>", esc(text)),
        ),
    )
}

/// The page of a request.
pub fn request_page(request_id: &str, view: &PageView) -> Response {
    match view.state {
        PageState::Expired => {
            return notice(
                StatusCode::GONE,
                "expired",
                "This request has expired",
                "Nothing was approved. Start again in your terminal to get a new link.",
            )
        }
        PageState::Finished => {
            return notice(
                StatusCode::CONFLICT,
                "finished",
                "This request was already answered",
                "A request can be answered once. If that was not you, tell your security team.",
            )
        }
        PageState::Open => {}
    }
    let (title, button) = match view.kind {
        "register" => ("Enrol a security key", "Enrol this key"),
        "approval" => ("Approve an SSH session", "Approve"),
        _ => ("Approve a login", "Approve"),
    };
    let main = format!(
        "<p class=\"what\">Someone asked to <strong>{what}</strong>.</p>\n\
         <dl><dt>User</dt><dd id=\"user\">{user}</dd>\n\
         <dt>Requested from</dt><dd id=\"requested-from\">{from}</dd>\n\
         <dt>Requested at</dt><dd id=\"requested-at\">{at}</dd>\n\
         <dt>Expires</dt><dd id=\"expires\">{expires}</dd></dl>\n\
         <p class=\"check\">Go on only if <strong>you</strong> started this, from your own terminal. \
         Type the code that terminal shows; if none of your terminals shows a code, someone else \
         sent you this link: press Deny.</p>\n\
         <p><label for=\"code\">Code from your terminal</label><br>\
         <input id=\"code\" class=\"code\" autocomplete=\"off\" autocapitalize=\"characters\" \
         spellcheck=\"false\" maxlength=\"16\" placeholder=\"XXXX-XXXX\"></p>\n\
         <p id=\"unsupported\" class=\"error\" hidden>This browser does not support security keys \
         (WebAuthn). Open the link in a current Chrome, Firefox, Safari or Edge.</p>\n\
         <noscript><p class=\"error\">This page needs JavaScript to talk to your security key.</p></noscript>\n\
         <p class=\"buttons\"><button id=\"approve\" type=\"button\">{button}</button> \
         <button id=\"deny\" type=\"button\" class=\"deny\">Deny</button></p>\n\
         <p id=\"status\" role=\"status\" aria-live=\"polite\"></p>\n\
         <script src=\"{prefix}/static/page.js\"></script>",
        what = esc(&view.what),
        user = esc(&view.user),
        from = esc(&view.requested_from),
        at = esc(&view.requested_at.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
        expires = esc(&view.expires_at.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
        button = esc(button),
        prefix = rampart_api::webauthn::PAGE_PREFIX,
    );
    html(
        StatusCode::OK,
        shell(
            title,
            &format!(
                " data-page=\"open\" data-request=\"{}\" data-kind=\"{}\"",
                esc(request_id),
                esc(view.kind)
            ),
            &main,
        ),
    )
}

/// `GET {PAGE_PREFIX}/static/page.js`.
pub fn script() -> Response {
    secure(
        (
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            PAGE_JS,
        )
            .into_response(),
    )
}

/// `GET {PAGE_PREFIX}/static/page.css`.
pub fn stylesheet() -> Response {
    secure(
        (
            [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
            PAGE_CSS,
        )
            .into_response(),
    )
}

const PAGE_CSS: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#f5f5f4;color:#1c1917}\
main{max-width:36rem;margin:3rem auto;padding:2rem;background:#fff;border-radius:.5rem;\
box-shadow:0 1px 3px rgba(0,0,0,.15)}h1{font-size:1.4rem;margin-top:0}\
dl{display:grid;grid-template-columns:auto 1fr;gap:.4rem 1rem}dt{font-weight:600}dd{margin:0}\
.code{font-family:ui-monospace,monospace;font-size:1.6rem;letter-spacing:.1em}\
button{font-size:1rem;padding:.6rem 1.2rem;margin-right:.5rem;border-radius:.3rem;border:1px solid #57534e;\
background:#1c1917;color:#fff;cursor:pointer}button.deny{background:#fff;color:#1c1917}\
button:disabled{opacity:.5;cursor:default}.error{color:#b91c1c}.ok{color:#15803d}\n";

/// The page's script: fetch the options, run the ceremony, post the answer.
/// Binary fields travel as base64url (no padding), as webauthn-rs expects.
const PAGE_JS: &str = r#""use strict";
(function () {
  const body = document.body;
  const id = body.dataset.request;
  const kind = body.dataset.kind;
  if (!id) { return; }
  const base = "/webauthn/r/" + encodeURIComponent(id);
  const status = document.getElementById("status");
  const approve = document.getElementById("approve");
  const deny = document.getElementById("deny");
  function say(text, cls) {
    status.textContent = text;
    status.className = cls || "";
    body.dataset.result = cls || "";
  }
  function fromB64u(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }
  function toB64u(buf) {
    const bytes = new Uint8Array(buf);
    let bin = "";
    for (let i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  // WebIDL refuses null where a sequence or string is expected: drop nulls.
  function dropNulls(o) {
    if (o && typeof o === "object") {
      for (const k of Object.keys(o)) {
        if (o[k] === null) { delete o[k]; } else { dropNulls(o[k]); }
      }
    }
    return o;
  }
  async function call(path, payload) {
    const init = { cache: "no-store", credentials: "omit" };
    if (payload !== undefined) {
      init.method = "POST";
      init.headers = { "Content-Type": "application/json" };
      init.body = JSON.stringify(payload);
    }
    const r = await fetch(path, init);
    let j = {};
    try { j = await r.json(); } catch (e) { j = {}; }
    if (!r.ok) {
      const err = new Error(j.message || ("the CA answered HTTP " + r.status));
      err.code = j.code || "";
      throw err;
    }
    return j;
  }
  const supported = !!(window.PublicKeyCredential && navigator.credentials);
  if (!supported) {
    document.getElementById("unsupported").hidden = false;
    approve.disabled = true;
    body.dataset.result = "unsupported";
  }
  function lock() { approve.disabled = true; deny.disabled = true; }
  async function run() {
    lock();
    say("Touch your security key\u2026", "busy");
    try {
      const code = document.getElementById("code").value.trim();
      if (!code) {
        say("Type the code your terminal shows first.", "error");
        body.dataset.code = "webauthn_code_required";
        approve.disabled = false; deny.disabled = false;
        return;
      }
      const opts = dropNulls(await call(base + "/options", { code: code }));
      const pk = opts.publicKey;
      pk.challenge = fromB64u(pk.challenge);
      let answer;
      if (kind === "register") {
        pk.user.id = fromB64u(pk.user.id);
        (pk.excludeCredentials || []).forEach(function (c) { c.id = fromB64u(c.id); });
        const c = await navigator.credentials.create({ publicKey: pk });
        answer = {
          id: c.id, rawId: toB64u(c.rawId), type: c.type, extensions: {},
          response: {
            attestationObject: toB64u(c.response.attestationObject),
            clientDataJSON: toB64u(c.response.clientDataJSON)
          }
        };
      } else {
        (pk.allowCredentials || []).forEach(function (c) { c.id = fromB64u(c.id); });
        const c = await navigator.credentials.get({ publicKey: pk });
        answer = {
          id: c.id, rawId: toB64u(c.rawId), type: c.type, extensions: {},
          response: {
            authenticatorData: toB64u(c.response.authenticatorData),
            clientDataJSON: toB64u(c.response.clientDataJSON),
            signature: toB64u(c.response.signature),
            userHandle: c.response.userHandle ? toB64u(c.response.userHandle) : null
          }
        };
      }
      await call(base + "/answer", { credential: answer });
      say(kind === "register"
        ? "Done: the key is enrolled. You can close this page and go back to your terminal."
        : "Approved. You can close this page and go back to your terminal.", "ok");
    } catch (e) {
      let text = e.message || String(e);
      if (e.name === "NotAllowedError") {
        text = "the browser or the key refused (cancelled, timed out, or this key is not enrolled here)";
      } else if (e.name === "SecurityError") {
        text = "the browser refused this site for security keys (open the link exactly as printed: " +
               "the address must match the CA's configured origin)";
      } else if (e.name === "InvalidStateError") {
        text = "this key is already enrolled";
      }
      say("Not approved: " + text, "error");
      if (e.code) { body.dataset.code = e.code; }
      // A mistyped code may be typed again (the CA counts the tries).
      if (e.code === "webauthn_code_mismatch") { approve.disabled = false; deny.disabled = false; }
    }
  }
  async function refuse() {
    lock();
    try {
      await call(base + "/deny", {});
      say("Denied. Nothing was approved.", "denied");
    } catch (e) {
      say("Could not deny: " + (e.message || String(e)), "error");
    }
  }
  approve.addEventListener("click", run);
  deny.addEventListener("click", refuse);
})();
"#;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A page's body (the responses here are complete buffers).
    fn futures_body(resp: Response) -> Vec<u8> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap()
                .to_vec()
        })
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn open_page_asks_for_the_code_and_shows_where_the_request_came_from() {
        let view = PageView {
            kind: "login",
            user: "alice".into(),
            what: "log in to Rampart as alice<script>".into(),
            requested_from: "2001:db8:1:2::/64".into(),
            requested_at: chrono::Utc::now(),
            expires_at: chrono::Utc::now(),
            state: PageState::Open,
        };
        let resp = request_page("req1", &view);
        assert_eq!(resp.status(), StatusCode::OK);
        let page = {
            let resp = request_page("req1", &view);
            let bytes = futures_body(resp);
            String::from_utf8(bytes).unwrap()
        };
        assert!(page.contains("id=\"code\""), "{page}");
        assert!(page.contains("2001:db8:1:2::/64"), "{page}");
        assert!(!page.contains("<script>log"), "escaped: {page}");
        let h = resp.headers();
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert!(h[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'"));
        for state in [PageState::Expired, PageState::Finished] {
            let v = PageView {
                state: state.clone(),
                ..view.clone()
            };
            let r = request_page("req1", &v);
            assert!(r.status().is_client_error(), "{state:?}");
            assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        }
    }
}
