// pyChat's end-to-end vectors (tests/vectors/*.json) checked with Node.js's built-in crypto
// alone, written from docs/e2e.md: another language's client agrees with the reference bytes.
// Run: node tests/e2e_vectors.mjs   (exit 0 and "all vectors hold" when every check passes)
import { createHash, createHmac, createDecipheriv, createPublicKey, privateDecrypt,
  verify, constants } from "node:crypto";
import { readFileSync } from "node:fs";
import { strict as assert } from "node:assert";

const here = new URL("./vectors/", import.meta.url);
const vector = (name) => JSON.parse(readFileSync(new URL(`${name}.json`, here), "utf8"));
const b64 = (text) => {
  assert.match(text, /^[A-Za-z0-9+/]*={0,2}$/);
  return Buffer.from(text, "base64");
};
const sep = (...parts) =>
  Buffer.concat(parts.flatMap((p, i) => (i ? [Buffer.from([0]), Buffer.from(p)] : [Buffer.from(p)])));

// Canonical JSON: keys sorted by code point, no whitespace, JSON.stringify's escapes.
const canonical = (value) => {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
};

// The number rule, on the signed text itself (a parser would forget how a number was written).
const numbersKeepTheRule = (text) => {
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      for (i++; text[i] !== '"'; i++) if (text[i] === "\\") i++;
    } else if (c === "-" || (c >= "0" && c <= "9")) {
      const token = /^-?[0-9.eE+-]+/.exec(text.slice(i))[0];
      if (!/^-?(0|[1-9][0-9]*)$/.test(token) || !Number.isSafeInteger(Number(token))) return false;
      i += token.length - 1;
    }
  }
  return true;
};

const ed25519Key = (raw) =>
  createPublicKey({
    key: Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), raw]),
    format: "der",
    type: "spki",
  });

const fingerprint = (keys) => {
  const h = createHash("sha256").update("pychat-identity-v1");
  for (const part of [b64(keys.encryption), b64(keys.signing)]) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(part.length);
    h.update(len).update(part);
  }
  return h.digest("hex");
};

const safetyNumber = (a, b) => {
  const [low, high] = [a, b].sort();
  const raw = createHash("sha512").update(sep("pychat-safety-v1", low, high)).digest();
  const groups = [];
  for (let i = 0; i < 12; i++) {
    const n = BigInt(`0x${raw.subarray(5 * i, 5 * i + 5).toString("hex")}`) % 100000n;
    groups.push(n.toString().padStart(5, "0"));
  }
  return groups.join(" ");
};

const fernetOpen = (keyText, token) => {
  const key = Buffer.from(keyText, "base64url");
  const raw = Buffer.from(token, "base64url");
  assert.equal(raw[0], 0x80);
  const body = raw.subarray(0, raw.length - 32);
  const tag = createHmac("sha256", key.subarray(0, 16)).update(body).digest();
  assert.ok(tag.equals(raw.subarray(raw.length - 32)), "Fernet HMAC");
  const decipher = createDecipheriv("aes-128-cbc", key.subarray(16), body.subarray(9, 25));
  return Buffer.concat([decipher.update(body.subarray(25)), decipher.final()]);
};

const ids = vector("identity");
let checks = 0;
const check = (what, fn) => {
  try {
    fn();
    checks++;
  } catch (error) {
    console.error(`FAILED ${what}: ${error.message}`);
    process.exitCode = 1;
  }
};

check("identity", () => {
  for (const name of ["alice", "bob"]) {
    assert.equal(fingerprint(ids[name].public_keys), ids[name].fingerprint);
  }
  assert.equal(safetyNumber(ids.bob.fingerprint, ids.alice.fingerprint), ids.safety_number);
  const conv = createHash("sha256").update(sep("pychat-conversation-v1", "alice", "bob"));
  assert.equal(conv.digest("hex").slice(0, 32), ids.conversation_id);
  const r = ids.rotation;
  const statement = sep("pychat-key-rotation-v1", "alice", String(r.key_version), r.new_fingerprint);
  assert.equal(statement.toString("hex"), r.statement_hex);
  assert.ok(verify(null, statement, ed25519Key(b64(ids.alice.public_keys.signing)), b64(r.signature)));
});

const bobRsa = readFileSync(new URL("rsa-bob.pem", here), "utf8");
for (const name of ["envelope", "envelope_v1"]) {
  check(name, () => {
    const { envelope: env, statement_hex: statementHex, fernet_key: fernetKey } = vector(name);
    const head = [`pychat-envelope-v${env.v}`, env.conversation, String(env.epoch), env.creator];
    if (env.v === 2) head.push(String(env.after));
    const members = Object.keys(env.members).sort().flatMap((m) =>
      [m, env.members[m].fingerprint, env.members[m].wrapped]);
    const statement = sep(...head, ...members);
    assert.equal(statement.toString("hex"), statementHex);
    const alice = ed25519Key(b64(ids.alice.public_keys.signing));
    assert.ok(verify(null, statement, alice, b64(env.signature)), "envelope signature");
    const key = privateDecrypt(
      { key: bobRsa, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
      b64(env.members.bob.wrapped));
    assert.equal(key.toString("ascii"), fernetKey);
  });
}

for (const name of ["message", "message_v1", "numbers"]) {
  check(name, () => {
    const v = name === "numbers" ? vector(name).message : vector(name);
    const plain = fernetOpen(v.fernet_key, v.ciphertext);
    assert.equal(plain.toString("hex"), v.plaintext_hex);
    const outer = JSON.parse(plain.toString("utf8"));
    const signed = Buffer.from(canonical(outer.m), "utf8");
    assert.equal(signed.toString("hex"), v.canonical_inner_hex, "canonical JSON");
    if (outer.m.v === 2) assert.ok(numbersKeepTheRule(signed.toString("utf8")), "number rule");
    const alice = ed25519Key(b64(ids.alice.public_keys.signing));
    assert.ok(verify(null, signed, alice, b64(outer.sig)), "message signature");
    assert.equal(`${outer.m.device}-${outer.m.counter}`, v.client_id);
  });
}

check("numbers refused", () => {
  for (const refused of vector("numbers").refused) {
    assert.ok(!numbersKeepTheRule(refused.inner_json), refused.why);
  }
});

check("validity", () => {
  const v = vector("validity");
  const rule = ({ sender, signer, seq, epoch }) => {
    const mine = v.epochs[epoch];
    if (mine.after !== null && seq <= mine.after) return "placed";
    for (const [n, f] of Object.entries(v.epochs)) {
      if (Number(n) > epoch && f.creator === sender && f.after !== null && f.after < seq) {
        return "newest_epoch";
      }
    }
    const keys = v.keys[sender];
    const later = keys.slice(keys.indexOf(signer) + 1);
    const places = Object.values(v.epochs)
      .filter((f) => f.after !== null && later.includes(f.members[sender]))
      .map((f) => f.after);
    return places.length && seq > Math.min(...places) ? "retired_key" : "valid";
  };
  for (const c of v.cases) assert.equal(rule(c), c.rule, JSON.stringify(c));
});

check("group chain", () => {
  const v = vector("group_chain");
  const sha256 = (text) => createHash("sha256").update(text).digest("hex");
  const readChain = (chain) => {
    let group = null;
    for (const s of chain) {
      const entry = v.keys[s.by];
      if (!entry || fingerprint(entry.public_keys) !== s.fingerprint) throw new Error("unknown_key");
      const { signature, ...unsigned } = s;
      const signed = Buffer.concat([Buffer.from("pychat-group-v1\0"), Buffer.from(canonical(unsigned))]);
      if (!verify(null, signed, ed25519Key(b64(entry.public_keys.signing)), b64(signature))) {
        throw new Error("signature");
      }
      if (s.op === "create") {
        const { group: _, ...body } = unsigned;
        const id = sha256(Buffer.concat([Buffer.from("pychat-group-id-v1\0"), Buffer.from(canonical(body))]));
        if (s.n !== 1 || s.prev !== "" || s.group !== id.slice(0, 32)) throw new Error("group");
        if (!s.admins.includes(s.by) || s.members[s.by] !== s.fingerprint) throw new Error("not_admin");
        group = { id: s.group, name: s.name, members: { ...s.members }, admins: new Set(s.admins), n: 1, hashes: [] };
      } else {
        if (s.group !== group.id) throw new Error("group");
        if (s.n !== group.n + 1 || s.prev !== group.hashes.at(-1)) throw new Error("order");
        if (!(s.by in group.members)) throw new Error("not_member");
        if (["add", "remove", "admin"].includes(s.op) && !group.admins.has(s.by)) throw new Error("not_admin");
        if (s.op === "add") group.members[s.member] = s.member_fingerprint;
        if (s.op === "remove") { delete group.members[s.member]; group.admins.delete(s.member); }
        if (s.op === "admin") group.admins.add(s.member);
        if (s.op === "leave") { delete group.members[s.by]; group.admins.delete(s.by); }
        if (s.op === "rename") group.name = s.name;
        group.n += 1;
      }
      group.hashes.push(sha256(Buffer.from(canonical(s))));
    }
    return group;
  };
  const group = readChain(v.statements);
  assert.deepEqual(group.hashes, v.hashes);
  assert.equal(group.name, v.state.name);
  assert.deepEqual(group.members, v.state.members);
  assert.deepEqual([...group.admins].sort(), v.state.admins);
  const digest = createHash("sha512")
    .update(sep("pychat-group-safety-v1", group.id, String(group.n), group.hashes.at(-1)))
    .digest();
  const groups = [];
  for (let i = 0; i < 12; i++) groups.push(String(digest.readUIntBE(5 * i, 5) % 100000).padStart(5, "0"));
  assert.equal(groups.join(" "), v.safety_number);
  for (const c of v.refused) assert.throws(() => readChain(c.statements), new RegExp(`^Error: ${c.reason}$`), c.why);
  assert.notEqual(readChain(v.fork.statements).hashes[1], group.hashes[1]);
});

check("group envelope", () => {
  const chain = vector("group_chain");
  const v = vector("group_envelope");
  const e = v.envelope;
  assert.equal(e.head, chain.hashes[v.chain_statements - 1]);
  assert.deepEqual(Object.keys(e.members).sort(), ["alice", "bob", "carol"]);
  const members = Object.keys(e.members).sort().flatMap((m) =>
    [m, e.members[m].fingerprint, e.members[m].wrapped]);
  const statement = sep("pychat-group-envelope-v1", e.group, String(e.epoch), e.creator,
    String(e.after), String(e.chain), e.head, ...members);
  assert.equal(statement.toString("base64"), v.statement_b64);
  const alice = chain.keys.alice.public_keys;
  assert.equal(e.members.alice.fingerprint, fingerprint(alice));
  assert.ok(verify(null, statement, ed25519Key(b64(alice.signing)), b64(e.signature)), "signature");
  const key = privateDecrypt(
    { key: bobRsa, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
    b64(e.members.bob.wrapped));
  assert.equal(key.toString("ascii"), v.fernet_key);
});

check("group message", () => {
  const chain = vector("group_chain");
  const epoch = vector("group_envelope");
  const v = vector("group_message");
  const group = epoch.envelope.group;
  const bob = ed25519Key(b64(chain.keys.bob.public_keys.signing));
  const read = (message, seq) => {
    const outer = JSON.parse(fernetOpen(epoch.fernet_key, message.ciphertext).toString("utf8"));
    assert.ok(verify(null, Buffer.from(canonical(outer.m), "utf8"), bob, b64(outer.sig)), "signature");
    const m = outer.m;
    if (m.sender !== "bob" || m.conversation !== group || m.epoch !== 2) return "conversation";
    if (m.recipient !== group) return "recipient";
    return seq <= epoch.envelope.after ? "placed" : m.body;
  };
  assert.equal(read(v.message, v.seq), "hello, group");
  for (const c of v.refused) assert.equal(read(c.message, c.seq), c.reason, c.why);
});

if (!process.exitCode) console.log(`all vectors hold (${checks} checks, Node.js ${process.version})`);
