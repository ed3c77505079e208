// The second XMPP client stack of the end-to-end tests (issue 16): an
// @xmpp/client session driven over stdin/stdout with one JSON object a line.
// Environment: XMPP_SERVICE (xmpp://127.0.0.1:PORT), XMPP_DOMAIN, XMPP_USER,
// XMPP_PASSWORD, XMPP_RESOURCE; NODE_EXTRA_CA_CERTS names the test CA, so the
// STARTTLS certificate is verified for XMPP_DOMAIN.
// Out: {"event":"online","jid","mechanism","tls"} | {"event":"message",...} |
//      {"event":"presence",...} | {"event":"error","error"} | {"event":"offline"}
// In:  {"cmd":"message","to","body"} | {"cmd":"presence","to"?,"type"?,"status"?} | {"cmd":"stop"}
import readline from "node:readline";
import { client, xml } from "@xmpp/client";

const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const env = (k) => {
  const v = process.env[k];
  if (!v) {
    out({ event: "error", error: `missing environment variable ${k}` });
    process.exit(2);
  }
  return v;
};

const xmpp = client({
  service: env("XMPP_SERVICE"),
  domain: env("XMPP_DOMAIN"),
  username: env("XMPP_USER"),
  password: env("XMPP_PASSWORD"),
  resource: env("XMPP_RESOURCE"),
});
xmpp.reconnect.stop(); // a lost connection is a test failure, not something to hide

let mechanism = null;
xmpp.on("send", (el) => {
  if (el.name === "auth" && el.attrs.mechanism) mechanism = el.attrs.mechanism;
});
xmpp.on("error", (err) => out({ event: "error", error: String(err && (err.condition || err.message || err)) }));
xmpp.on("offline", () => out({ event: "offline" }));
xmpp.on("stanza", (st) => {
  if (st.is("message")) {
    const body = st.getChildText("body");
    const state = st.children.find((c) => c.attrs && c.attrs.xmlns === "http://jabber.org/protocol/chatstates");
    out({ event: "message", from: st.attrs.from, type: st.attrs.type || "normal", body,
          chat_state: state ? state.name : null });
  } else if (st.is("presence")) {
    out({ event: "presence", from: st.attrs.from, type: st.attrs.type || "available",
          status: st.getChildText("status") });
  }
});
xmpp.on("online", async (jid) => {
  // RFC 6121 §2.2: a client fetches its roster before initial presence (an
  // "interested resource" gets roster pushes and subscription results)
  const roster = await xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
  const sock = xmpp.socket && xmpp.socket.socket;
  out({ event: "online", roster: roster.getChildren("item").map((i) => i.attrs.jid), jid: jid.toString(), mechanism,
        tls: sock && typeof sock.getProtocol === "function" ? sock.getProtocol() : null });
});

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  let c;
  try {
    c = JSON.parse(line);
    if (c.cmd === "message") {
      await xmpp.send(xml("message", { to: c.to, type: "chat" }, xml("body", {}, c.body)));
    } else if (c.cmd === "presence") {
      const attrs = {};
      if (c.to) attrs.to = c.to;
      if (c.type) attrs.type = c.type;
      await xmpp.send(xml("presence", attrs, c.status ? xml("status", {}, c.status) : null));
    } else if (c.cmd === "stop") {
      await xmpp.stop();
      process.exit(0);
    } else {
      out({ event: "error", error: `unknown command ${line}` });
    }
    out({ event: "done", cmd: c.cmd });
  } catch (err) {
    out({ event: "error", error: String(err.message || err) });
  }
});
rl.on("close", () => xmpp.stop().finally(() => process.exit(0)));

xmpp.start().catch((err) => {
  out({ event: "error", error: String(err.condition || err.message || err) });
  process.exit(1);
});
