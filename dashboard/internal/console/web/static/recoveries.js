// stripeq Console: the "Recover missed events" page. Starts recoveries
// (POST /api/recoveries), follows one until it ends (GET
// /api/recoveries/{id}), lists a dry run's missing events and stores
// exactly those (POST /api/recoveries?from=rec_…), and keeps the history
// table current. Vanilla
// JavaScript, no build step, nothing inline (the CSP forbids it).
"use strict";
(function () {
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var form = document.getElementById("recover-form");
  var result = document.getElementById("result");
  if (!result) return;

  function $(id) { return document.getElementById(id); }

  function call(method, url) {
    return fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Accept": "application/json" }
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) {
          var err = new Error(body.message || ("HTTP " + r.status));
          err.status = r.status;
          throw err;
        }
        return body;
      });
    });
  }

  function num(n) { return (n || 0).toLocaleString("en-US"); }
  function utc(s) { return s ? s.replace("T", " ").replace(/(\.\d+)?Z$/, " UTC") : ""; }

  // fill replaces tbody's rows with one per count, largest first.
  function fill(table, counts, blank) {
    var body = table.tBodies[0];
    body.replaceChildren();
    var keys = Object.keys(counts || {}).sort(function (a, b) { return counts[b] - counts[a] || (a < b ? -1 : 1); });
    if (!keys.length) {
      var tr = body.insertRow(), td = tr.insertCell();
      td.colSpan = 2; td.className = "muted"; td.textContent = "None.";
      return;
    }
    keys.forEach(function (k) {
      var tr = body.insertRow(), th = document.createElement("th"), td = tr.insertCell();
      tr.insertBefore(th, td);
      th.className = "mono"; th.textContent = k || blank;
      td.className = "num"; td.textContent = num(counts[k]);
      tr.dataset.key = k || blank;
    });
  }

  // link returns an <a> to href reading text.
  function link(href, text, cls) {
    var a = document.createElement("a");
    a.href = href; a.textContent = text;
    if (cls) a.className = cls;
    return a;
  }

  // showEvents lists a finished dry run's missing events and offers to
  // store exactly those, or says why it cannot.
  function showEvents(rec) {
    var box = $("missing-events");
    var events = rec.events || [];
    var body = $("missing-table").tBodies[0];
    body.replaceChildren();
    box.hidden = !(rec.dry_run && rec.state === "done" && rec.missing > 0);
    if (box.hidden) return;
    events.forEach(function (e) {
      var tr = body.insertRow();
      tr.dataset.event = e.id; tr.dataset.type = e.type; tr.dataset.account = e.account || "platform";
      var id = tr.insertCell(); id.className = "mono"; id.textContent = e.id;
      var ty = tr.insertCell(); ty.className = "mono"; ty.textContent = e.type;
      var t = document.createElement("time");
      t.setAttribute("datetime", e.created); t.textContent = utc(e.created);
      tr.insertCell().appendChild(t);
      var a = tr.insertCell(); a.className = "mono"; a.textContent = e.account || "platform";
    });
    var capped = rec.events_capped || events.length < rec.missing;
    var note = $("missing-capped");
    note.hidden = !capped;
    note.textContent = capped ? "Showing the first " + num(events.length) + " of " + num(rec.missing) + " missing events; a preview keeps no more." : "";
    var btn = $("store-previewed"), why = $("store-note");
    if (!btn) return;
    btn.hidden = capped;
    btn.textContent = "Store these " + num(events.length) + (events.length === 1 ? " event" : " events");
    btn.dataset.from = rec.id;
    btn.dataset.count = events.length;
    why.hidden = false;
    why.textContent = capped
      ? "These cannot be stored as previewed: more events are missing than the preview lists. Preview a narrower window, or one account, until it lists them all."
      : "Stores only the events listed here, over the same window: one stripeq got meanwhile is counted as already stored, and one that appeared since is left alone.";
  }

  function show(rec) {
    var p = rec.progress || {};
    result.hidden = false;
    result.dataset.state = rec.state;
    result.dataset.id = rec.id;
    $("result-title").textContent = rec.dry_run ? "Preview (dry run)" : "Recovery";
    var st = $("result-state");
    st.textContent = rec.state; st.className = "badge s-" + rec.state;
    $("result-id").textContent = rec.id;
    $("result-window").textContent = utc(rec.since) + " → " + utc(rec.until) + " · " + (rec.account || "all accounts") + " · by " + rec.started_by;
    var bar = $("result-progress");
    bar.max = Math.max(p.accounts || 1, 1);
    bar.value = rec.state === "running" ? (p.accounts_done || 0) : bar.max;
    $("count-listed").textContent = num(rec.listed);
    $("count-missing").textContent = num(rec.missing);
    $("count-enqueued").textContent = num(rec.enqueued);
    $("count-accounts").textContent = num(p.accounts_done) + " of " + num(p.accounts);
    $("count-pages").textContent = num(p.pages);
    var err = $("result-error");
    err.hidden = !rec.error; err.textContent = rec.error || "";
    var from = $("result-from");
    from.hidden = !rec.from;
    from.replaceChildren();
    if (rec.from) {
      from.append("Stores only the events previewed by ", link("/recoveries?id=" + encodeURIComponent(rec.from), rec.from, "mono"), ".");
    }
    document.querySelectorAll("#result .bound").forEach(function (d) { d.hidden = !rec.from; });
    $("count-already").textContent = num(p.already_stored);
    $("count-not-previewed").textContent = num(p.not_previewed);
    var ex = $("result-executions");
    ex.hidden = !rec.executions_url;
    if (rec.executions_url) ex.firstElementChild.href = rec.executions_url;
    showEvents(rec);
    fill($("by-type"), p.missing_by_type, "");
    fill($("by-account"), p.missing_by_account, "platform");
  }

  // history redraws the history table from GET /api/recoveries.
  function history() {
    return call("GET", "/api/recoveries").then(function (res) {
      var body = $("history-table").tBodies[0];
      body.replaceChildren();
      (res.recoveries || []).forEach(function (r) {
        var tr = body.insertRow();
        tr.dataset.id = r.id;
        var a = document.createElement("a");
        a.className = "mono"; a.href = "/recoveries?id=" + encodeURIComponent(r.id); a.textContent = r.id;
        tr.insertCell().appendChild(a);
        var b = document.createElement("span");
        b.className = "badge s-" + r.state; b.textContent = r.state;
        tr.insertCell().appendChild(b);
        var t = document.createElement("time");
        t.setAttribute("datetime", r.started_at); t.title = utc(r.started_at); t.textContent = "just now";
        tr.insertCell().appendChild(t);
        tr.insertCell().textContent = r.started_by;
        var w = tr.insertCell(); w.className = "muted"; w.textContent = utc(r.since) + " → " + utc(r.until);
        var acct = tr.insertCell(); acct.className = "mono"; acct.textContent = r.account || "all";
        var kind = tr.insertCell();
        if (r.dry_run) kind.textContent = "dry run";
        else if (r.from) kind.append("run of ", link("/recoveries?id=" + encodeURIComponent(r.from), r.from, "mono"));
        else kind.textContent = "run";
        [r.listed, r.missing].forEach(function (n) {
          var c = tr.insertCell(); c.className = "num"; c.textContent = num(n);
        });
        var enq = tr.insertCell(); enq.className = "num";
        if (r.executions_url) enq.appendChild(link(r.executions_url, num(r.enqueued), "executions-link"));
        else enq.textContent = num(r.enqueued);
      });
    });
  }

  var polling = null;
  function follow(id) {
    clearTimeout(polling);
    var poll = function () {
      call("GET", "/api/recoveries/" + encodeURIComponent(id)).then(function (rec) {
        show(rec);
        if (rec.state === "running") { polling = setTimeout(poll, 500); return; }
        setButtons(false);
        history();
      }).catch(function (err) {
        // The Console's read limit: wait a moment, keep following.
        if (err.status === 429) { polling = setTimeout(poll, 1000); return; }
        setButtons(false); showError(err);
      });
    };
    poll();
  }

  function setButtons(busy) {
    if (!form) return;
    form.querySelectorAll("button").forEach(function (b) { b.disabled = busy; });
    var store = $("store-previewed");
    if (store) store.disabled = busy;
  }

  // start starts a recovery with the query q and follows it.
  function start(q) {
    setButtons(true);
    call("POST", "/api/recoveries?" + q.toString()).then(function (rec) {
      show(rec);
      history();
      if (window.history.replaceState) window.history.replaceState(null, "", "/recoveries?id=" + encodeURIComponent(rec.id));
      follow(rec.id);
    }).catch(function (err) { setButtons(false); showError(err); });
  }

  function showError(err) {
    var el = $("toast");
    if (!el) return;
    el.textContent = err.message; el.className = "bad"; el.hidden = false;
    setTimeout(function () { el.hidden = true; }, 8000);
  }

  if (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var dry = !ev.submitter || ev.submitter.value !== "false";
      if (!dry && !window.confirm("Store every event of this window that stripeq never got, as Stripe lists them now (not only a preview's)? Each is processed by the worker.")) return;
      var q = new URLSearchParams();
      ["since", "until", "account"].forEach(function (name) {
        var v = form.elements[name].value.trim();
        if (v) q.set(name, v);
      });
      q.set("dry_run", dry ? "true" : "false");
      start(q);
    });
  }

  var store = $("store-previewed");
  if (store) {
    store.addEventListener("click", function () {
      var n = Number(store.dataset.count);
      if (!window.confirm("Store the " + num(n) + " events preview " + store.dataset.from + " listed, and no other? Each is processed by the worker.")) return;
      start(new URLSearchParams({ from: store.dataset.from }));
    });
  }

  // A link from the history (?id=…) shows that recovery, and follows it
  // while it runs.
  if (result.dataset.selected) follow(result.dataset.selected);
})();
