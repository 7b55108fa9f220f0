// ordo dashboard: live refresh, the tenant picker, "select all" on the
// jobs list, and checking an inclusion proof in the browser. Every page
// works without this file.
"use strict";

(function () {
  const enc = new TextEncoder();

  // ---- times ---------------------------------------------------------
  // Every time is written in UTC; its title gives the reader's local time.
  const localTitles = (root) => {
    for (const el of root.querySelectorAll("time[data-utc]")) {
      const d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) el.title = "Local time: " + d.toLocaleString();
    }
  };
  const utcClock = (d) => d.toISOString().slice(11, 19) + "Z";
  localTitles(document);

  // ---- tenant picker -------------------------------------------------
  const picker = document.querySelector("[data-tenant-picker] select");
  if (picker) {
    picker.addEventListener("change", () => {
      location.href = "/tenants/" + encodeURIComponent(picker.value) + "/jobs";
    });
  }

  // ---- bulk selection ------------------------------------------------
  // The header box ticks every job box of the page. The list sits in
  // #live, which refresh replaces: listen on the document, and enable the
  // box (disabled in the HTML, dead without this script) after each swap.
  const jobBoxes = () => Array.from(document.querySelectorAll('#jobs input[name="job"]'));
  const armSelectAll = () => {
    const all = document.getElementById("select-all");
    if (all) all.disabled = false;
  };
  armSelectAll();
  document.addEventListener("change", (e) => {
    const all = document.getElementById("select-all");
    if (!all) return;
    if (e.target === all) {
      jobBoxes().forEach((b) => { b.checked = all.checked; });
    } else if (e.target.name === "job") {
      const boxes = jobBoxes();
      all.checked = boxes.length > 0 && boxes.every((b) => b.checked);
      all.indeterminate = !all.checked && boxes.some((b) => b.checked);
    }
  });

  // ---- live refresh --------------------------------------------------
  // Re-fetch the page and swap its #live part, every 5 s while the tab is
  // visible and the box is ticked.
  const live = document.querySelector("#live[data-live]");
  const toggle = document.getElementById("live-toggle");
  const status = document.getElementById("live-status");
  if (live && toggle) {
    toggle.disabled = false;
    toggle.checked = true;
    let timer = null;
    const tick = async () => {
      if (document.hidden || !toggle.checked) return;
      // Do not swap a form the user is filling in.
      const focused = document.activeElement;
      if (focused && live.contains(focused) && /^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(focused.tagName)) return;
      // Nor a selection of jobs for a bulk action.
      if (live.querySelector('input[name="job"]:checked')) {
        status.textContent = "Refresh paused while jobs are selected.";
        return;
      }
      try {
        const resp = await fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
        if (resp.redirected && new URL(resp.url).pathname === "/login") {
          toggle.checked = false;
          status.textContent = "Session ended: reload the page to log in.";
          return;
        }
        if (!resp.ok) {
          status.textContent = "Refresh failed (" + resp.status + ").";
          return;
        }
        const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
        const next = doc.getElementById("live");
        // A box ticked while the page was being fetched keeps its page.
        if (live.querySelector('input[name="job"]:checked')) return;
        if (next) {
          // Keep open what the reader opened (the charts' table).
          const open = Array.from(live.querySelectorAll("details[id][open]"), (d) => d.id);
          live.innerHTML = next.innerHTML;
          for (const id of open) document.getElementById(id)?.setAttribute("open", "");
          armSelectAll();
          localTitles(live);
          const now = new Date();
          status.textContent = "Updated " + utcClock(now) + ".";
          status.title = "Local time: " + now.toLocaleTimeString();
        }
      } catch (e) {
        status.textContent = "Refresh failed: " + e.message;
      }
    };
    const arm = () => {
      clearInterval(timer);
      if (toggle.checked) timer = setInterval(tick, 5000);
    };
    toggle.addEventListener("change", arm);
    arm();
  }

  // ---- inclusion proof -----------------------------------------------
  const proofEl = document.getElementById("proof");
  const button = document.getElementById("check-proof");
  if (proofEl && button) {
    button.disabled = false;
    button.addEventListener("click", () => {
      checkProof(proofEl).catch((e) => verdict(false, "The check could not run: " + e.message));
    });
  }

  const hexToBytes = (hex) => {
    if (typeof hex !== "string" || !/^[0-9a-f]*$/i.test(hex) || hex.length % 2) throw new Error("bad hex: " + hex);
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
    return out;
  };
  const b64ToBytes = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  const concat = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) { out.set(p, off); off += p.length; }
    return out;
  };
  const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  const sha256 = async (b) => new Uint8Array(await crypto.subtle.digest("SHA-256", b));
  const uuidBytes = (id) => hexToBytes(id.replace(/-/g, ""));

  function step(ok, text) {
    const li = document.createElement("li");
    li.className = ok === null ? "skip" : ok ? "ok" : "bad";
    li.textContent = text;
    document.getElementById("proof-steps").appendChild(li);
    return ok !== false;
  }

  function verdict(ok, text, state) {
    const v = document.getElementById("proof-verdict");
    v.className = ok ? "ok" : "bad";
    v.dataset.status = state || (ok ? "verified" : "failed");
    v.textContent = text;
  }

  // RFC 6962 / RFC 9162 section 2.1.3.2: the root an audit path leads to
  // from leaf index of a tree of size, or null when the path cannot fit.
  async function rootFromPath(index, size, leaf, path) {
    if (index >= size) return null;
    let fn = index, sn = size - 1n, r = leaf;
    for (const p of path) {
      if (sn === 0n) return null;
      if ((fn & 1n) === 1n || fn === sn) {
        r = await sha256(concat(Uint8Array.of(1), p, r));
        if ((fn & 1n) === 0n) {
          while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
        }
      } else {
        r = await sha256(concat(Uint8Array.of(1), r, p));
      }
      fn >>= 1n; sn >>= 1n;
    }
    return sn === 0n ? r : null;
  }

  async function checkProof(el) {
    document.getElementById("proof-steps").textContent = "";
    const proof = JSON.parse(el.dataset.proof);
    const e = proof.entry;
    let ok = true;
    if (proof.format !== "ordo-proof/v1" || proof.type !== "inclusion" || !e) {
      return verdict(false, "Not an ordo inclusion proof.");
    }
    // The checkpoint: "origin\nsize\nroot\n\n— name sig\n".
    const note = proof.checkpoint;
    const cut = note.indexOf("\n\n");
    if (cut < 0) return verdict(false, "The checkpoint is not a signed note.");
    const text = note.slice(0, cut + 1);
    const [origin, sizeText, rootB64] = text.split("\n");
    const size = BigInt(sizeText);
    const root = b64ToBytes(rootB64);
    // As audit.Origin: the partition key's bytes outside RFC 3986 path
    // characters percent-encoded; checkpoints signed before that name it
    // verbatim (audit.LegacyOrigin).
    const safe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*,;=:@/";
    let escaped = "";
    for (const b of enc.encode(proof.partition_key)) {
      const c = String.fromCharCode(b);
      escaped += b < 128 && safe.includes(c) ? c : "%" + b.toString(16).toUpperCase().padStart(2, "0");
    }
    const wantOrigin = "ordo/" + proof.tenant_id + "/" + escaped;
    const legacyOrigin = "ordo/" + proof.tenant_id + "/" + proof.partition_key;
    ok = step((origin === wantOrigin || origin === legacyOrigin) && proof.tenant_id === el.dataset.tenant,
      "The checkpoint is about chain " + origin + (origin === wantOrigin || origin === legacyOrigin ? "" : ", not " + wantOrigin)) && ok;

    // The entry's link, recomputed: SHA-256(prev || job_id || t_hlc || payload_hash).
    const prev = e.prev_link === null ? new Uint8Array(32) : hexToBytes(e.prev_link);
    const link = await sha256(concat(prev, uuidBytes(e.job_id), enc.encode(e.t_hlc), hexToBytes(e.payload_hash)));
    ok = step(toHex(link) === e.link, "The entry's link recomputes from its prev link, job id, t_hlc and payload hash: " +
      toHex(link).slice(0, 16) + "…") && ok;

    const index = BigInt(proof.leaf_index);
    ok = step(index === BigInt(e.chain_pos) && index < size,
      "Leaf " + index + " (chain_pos " + e.chain_pos + ") of a tree of " + size + " entries") && ok;

    // The audit path from SHA-256(0x00 || link) to the checkpoint's root.
    const leaf = await sha256(concat(Uint8Array.of(0), hexToBytes(e.link)));
    const computed = await rootFromPath(index, size, leaf, proof.hashes.map(b64ToBytes));
    ok = step(computed !== null && equal(computed, root),
      "The " + proof.hashes.length + "-hash audit path leads to the checkpoint's root " + rootB64.slice(0, 12) + "…") && ok;

    // The checkpoint's Ed25519 signature, with the service's public key
    // ("name+hash+base64(0x01 || key)").
    const keyText = el.dataset.publicKey;
    let signed = null;
    if (!keyText) {
      step(null, "Signature not checked: the service has no public key");
    } else {
      // The key's base64 may itself hold "+": split at the first two only.
      const first = keyText.indexOf("+"), second = keyText.indexOf("+", first + 1);
      const name = keyText.slice(0, first), hashHex = keyText.slice(first + 1, second), keyB64 = keyText.slice(second + 1);
      const keyBytes = b64ToBytes(keyB64);
      const sigLine = note.slice(cut + 2).split("\n").find((l) => l.startsWith("— " + name + " "));
      if (!sigLine || keyBytes.length !== 33 || keyBytes[0] !== 1) {
        signed = step(false, "No signature by key " + name + " on the checkpoint");
      } else {
        const sig = b64ToBytes(sigLine.slice(("— " + name + " ").length));
        let key;
        try {
          key = await crypto.subtle.importKey("raw", keyBytes.slice(1), { name: "Ed25519" }, false, ["verify"]);
        } catch (err) {
          step(null, "This browser's WebCrypto has no Ed25519 (" + err.message + "): check the signature with ordo proof check");
        }
        if (key) {
          const good = toHex(sig.slice(0, 4)) === hashHex.toLowerCase() &&
            await crypto.subtle.verify({ name: "Ed25519" }, key, sig.slice(4), enc.encode(text));
          signed = step(good, "The checkpoint's Ed25519 signature verifies with key " + name + "+" + hashHex);
        }
      }
      ok = ok && signed !== false;
    }
    if (!ok) return verdict(false, "Proof NOT verified: see the failed step.");
    if (signed === true) return verdict(true, "Proof verified: the job is in its chain's signed checkpoint.");
    return verdict(true, "Merkle proof verified; the signature was not checked.", "verified-unsigned");
  }
})();
