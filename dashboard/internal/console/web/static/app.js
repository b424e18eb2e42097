// stripeq Console: relative times and the action buttons. Vanilla
// JavaScript, no build step, nothing inline (the CSP forbids it).
"use strict";
(function () {
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function rel(t) {
    var d = (Date.now() - t.getTime()) / 1000, future = d < 0, s;
    d = Math.abs(d);
    if (d < 5) return "just now";
    if (d < 60) s = Math.floor(d) + "s";
    else if (d < 3600) s = Math.floor(d / 60) + "m";
    else if (d < 172800) s = Math.floor(d / 3600) + "h";
    else s = Math.floor(d / 86400) + "d";
    return future ? "in " + s : s + " ago";
  }
  // Settings kept in the browser: UTC times, auto-refresh.
  function setting(name) { try { return localStorage.getItem("stripeq." + name); } catch (e) { return null; } }
  function setSetting(name, v) { try { if (v) localStorage.setItem("stripeq." + name, v); else localStorage.removeItem("stripeq." + name); } catch (e) {} }

  function utc(t) { return t.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC"); }
  function tick() {
    var abs = setting("utc") === "1";
    document.querySelectorAll("time[datetime]:not(.abs)").forEach(function (el) {
      var t = new Date(el.getAttribute("datetime"));
      if (isNaN(t)) return;
      el.textContent = abs ? utc(t) : rel(t);
    });
  }
  tick();
  setInterval(tick, 15000);

  var utcBox = document.getElementById("utc");
  if (utcBox) {
    utcBox.checked = setting("utc") === "1";
    utcBox.addEventListener("change", function () { setSetting("utc", utcBox.checked ? "1" : ""); tick(); });
  }

  // Auto-refresh: reload the list's rows, counts and tabs in place every
  // 10 s (stripeq.refreshMs overrides it, for tests), while the tab is
  // visible, and highlight the rows that were not there before.
  var auto = document.getElementById("autorefresh");
  if (auto) {
    var timer = null;
    var refresh = function () {
      // Not while the page is hidden, or rows are ticked for a re-run.
      if (document.hidden || document.querySelector("table.list input.pick:checked")) return;
      fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } }).then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      }).then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var seen = {};
        document.querySelectorAll("table.list tbody tr[data-id]").forEach(function (tr) { seen[tr.dataset.id] = true; });
        ["table.list tbody", "div.bar", "#matching", ".pager"].forEach(function (sel) {
          var now = document.querySelector(sel), next = doc.querySelector(sel);
          if (now && next) now.replaceWith(document.importNode(next, true));
        });
        document.querySelectorAll("table.list tbody tr[data-id]").forEach(function (tr) {
          if (!seen[tr.dataset.id]) tr.classList.add("new");
        });
        tick();
      }).catch(function (err) { toast("Auto-refresh: " + err.message, true); });
    };
    var apply = function () {
      clearInterval(timer);
      timer = auto.checked ? setInterval(refresh, Number(setting("refreshMs")) || 10000) : null;
    };
    auto.checked = setting("autorefresh") === "1";
    auto.addEventListener("change", function () { setSetting("autorefresh", auto.checked ? "1" : ""); apply(); });
    apply();
  }

  function toast(msg, bad) {
    var el = document.getElementById("toast");
    if (!el) return;
    el.textContent = msg;
    el.className = bad ? "bad" : "";
    el.hidden = false;
    clearTimeout(toast.t);
    toast.t = setTimeout(function () { el.hidden = true; }, 6000);
  }

  function send(method, url) {
    return fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Accept": "application/json" }
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) throw new Error(body.message || ("HTTP " + r.status));
        return body;
      });
    });
  }

  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("button[data-action]");
    if (!b) return;
    ev.preventDefault();
    var msg = b.getAttribute("data-confirm");
    var url = b.getAttribute("data-url");
    if (msg) {
      // The confirmation also asks for a reason, kept in the audit log.
      var reason = window.prompt(msg + "\n\nReason, for the audit log (optional: an incident, a ticket):", "");
      if (reason === null) return;
      reason = reason.trim();
      if (reason) url += (url.indexOf("?") < 0 ? "?" : "&") + "reason=" + encodeURIComponent(reason);
    }
    var action = b.getAttribute("data-action");
    var method = action === "delete" ? "DELETE" : "POST";
    b.disabled = true;
    send(method, url).then(function (res) {
      if (action === "bulk" && res.job) {
        var poll = function () {
          send("GET", res.job.url).then(function (j) {
            toast("Re-running " + j.done + " of " + j.matched + " (" + j.run + " run now, " + j.copied + " copied, " + j.skipped + " skipped" + (j.failed ? ", " + j.failed + " failed" : "") + ")" + (j.state === "running" ? "…" : ": " + j.state + "."), j.state === "failed");
            if (j.state === "running") { setTimeout(poll, 1000); } else { setTimeout(function () { location.reload(); }, 1500); }
          }).catch(function (err) { toast(err.message, true); });
        };
        poll();
        return;
      }
      if (action === "bulk") {
        toast("Re-ran " + (res.run + res.copied) + " (" + res.run + " run now, " + res.copied + " copied), skipped " + res.skipped + (res.failed ? ", failed " + res.failed : "") + ".");
        setTimeout(function () { location.reload(); }, 1200);
        return;
      }
      if (res.action === "copy" && res.url) { location.href = res.url; return; }
      var then = b.getAttribute("data-then");
      if (then) { location.href = then; return; }
      location.reload();
    }).catch(function (err) {
      b.disabled = false;
      toast(err.message, true);
    });
  });

  // Row checkboxes: "Re-run selected" previews what each ticked execution
  // will do (run now, copy, or skip), asks for a reason, then re-runs them.
  var picked = function () {
    return Array.prototype.slice.call(document.querySelectorAll("table.list input.pick:checked")).map(function (c) { return c.closest("tr"); });
  };
  var showPicked = function () {
    var b = document.getElementById("rerun-selected");
    if (!b) return;
    var n = picked().length;
    b.hidden = n === 0;
    b.textContent = "Re-run " + n + " selected…";
  };
  document.addEventListener("change", function (ev) {
    if (ev.target.id === "pick-all") {
      document.querySelectorAll("table.list input.pick").forEach(function (c) { c.checked = ev.target.checked; });
    }
    if (ev.target.id === "pick-all" || ev.target.classList.contains("pick")) showPicked();
  });
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("#rerun-selected");
    if (!b) return;
    var rows = picked();
    var what = { archived: "run now", retry: "run now", scheduled: "run now", completed: "copy as a new execution", pending: "skip: already pending", active: "skip: running" };
    var lines = rows.slice(0, 15).map(function (r) {
      return r.dataset.id + "  " + r.dataset.type + "  " + r.dataset.state + " → " + (what[r.dataset.state] || "run");
    });
    if (rows.length > 15) lines.push("… and " + (rows.length - 15) + " more");
    var reason = window.prompt("Re-run " + rows.length + " selected executions?\n\n" + lines.join("\n") +
      "\n\nReason, for the audit log (optional: an incident, a ticket):", "");
    if (reason === null) return;
    b.disabled = true;
    fetch("/api/executions/rerun-selected", {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Accept": "application/json", "Content-Type": "application/json" },
      body: JSON.stringify({ ids: rows.map(function (r) { return r.dataset.id; }), reason: reason.trim() })
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (res) {
        if (!r.ok) throw new Error(res.message || ("HTTP " + r.status));
        toast("Re-ran " + (res.run + res.copied) + " (" + res.run + " run now, " + res.copied + " copied), skipped " + res.skipped + (res.failed ? ", failed " + res.failed : "") + ".");
        setTimeout(function () { location.reload(); }, 1200);
      });
    }).catch(function (err) { b.disabled = false; toast(err.message, true); });
  });

  // Filter menus apply at once; text fields on Enter.
  var form = document.getElementById("filters");
  if (form) {
    form.querySelectorAll("select").forEach(function (s) {
      s.addEventListener("change", function () { form.requestSubmit(); });
    });
    form.addEventListener("submit", function () {
      // Leave empty fields out of the URL, so shared links stay short.
      form.querySelectorAll("input, select").forEach(function (el) {
        if (!el.value) el.disabled = true;
      });
    });
    // Back restores the page from the back/forward cache as it was left,
    // with the empty fields still disabled: enable them again.
    window.addEventListener("pageshow", function () {
      form.querySelectorAll("input, select").forEach(function (el) { el.disabled = false; });
    });
  }
})();
