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
      // Not while the page is hidden, rows are ticked for a re-run, or
      // the chart is being dragged across.
      if (document.hidden || chartDrag || document.querySelector("table.list input.pick:checked")) return;
      fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } }).then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      }).then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var seen = {};
        document.querySelectorAll("table.list tbody tr[data-id]").forEach(function (tr) { seen[tr.dataset.id] = true; });
        var focus = focusKey(document.activeElement);
        ["table.list tbody", "div.bar", "#matching", ".pager", "#chart"].forEach(function (sel) {
          var now = document.querySelector(sel), next = doc.querySelector(sel);
          if (now && next) now.replaceWith(document.importNode(next, true));
        });
        // Keyboard focus stays where it was: on the same link or control
        // of the new rows, tabs and pager.
        if (focus && !document.activeElement.matches(focus)) {
          var again = document.querySelector(focus);
          if (again) again.focus({ preventScroll: true });
        }
        document.querySelectorAll("table.list tbody tr[data-id]").forEach(function (tr) {
          if (!seen[tr.dataset.id]) tr.classList.add("new");
        });
        initChart();
        tick();
      }).catch(function (err) { toast("Auto-refresh: " + err.message, true); });
    };
    // focusKey is a selector that finds the focused element again once
    // a refresh has replaced it: its ID, or its row, link and state.
    var focusKey = function (el) {
      if (!el || el === document.body || !el.tagName) return null;
      if (el.id) return "#" + CSS.escape(el.id);
      var sel = el.tagName.toLowerCase();
      ["href", "data-state", "value"].forEach(function (a) {
        if (el.hasAttribute(a)) sel += "[" + a + '="' + CSS.escape(el.getAttribute(a)) + '"]';
      });
      var row = el.closest("tr[data-id]");
      if (row) sel = 'tr[data-id="' + CSS.escape(row.dataset.id) + '"] ' + sel;
      return sel;
    };
    var apply = function () {
      clearInterval(timer);
      timer = auto.checked ? setInterval(refresh, Number(setting("refreshMs")) || 10000) : null;
    };
    auto.checked = setting("autorefresh") === "1";
    auto.addEventListener("change", function () { setSetting("autorefresh", auto.checked ? "1" : ""); apply(); });
    apply();
  }

  // The chart (issue 27, item 5). Each bar's target (a.hit, the whole
  // height of its bucket) is a link to the list narrowed to the bucket's
  // time, which a click or Enter follows. Dragging across bars shows a
  // selection and, on release, goes to the list narrowed to the span: the
  // first bar's link with the last bar's "to". So the URL stays the
  // filter's one truth: the server wrote every from and to. The bars are
  // one tab stop: the arrow keys, Home and End move between them.
  var chartDrag = null, chartSuppressClick = false;
  function chartHits(svg) { return Array.prototype.slice.call(svg.querySelectorAll("a.hit")); }
  function initChart() {
    document.querySelectorAll("#chart svg[data-slot]").forEach(function (svg) {
      var hits = chartHits(svg), cur = hits.indexOf(document.activeElement);
      hits.forEach(function (a, i) { a.setAttribute("tabindex", i === Math.max(cur, 0) ? "0" : "-1"); });
    });
  }
  initChart();
  // chartIndex is the bar under the pointer at clientX, from the SVG's
  // own units: its left margin and a bar's width (data-left, data-slot).
  function chartIndex(svg, clientX) {
    var n = svg.querySelectorAll("a.hit").length, pt = svg.createSVGPoint();
    pt.x = clientX;
    pt.y = 0;
    var x = pt.matrixTransform(svg.getScreenCTM().inverse()).x;
    var i = Math.floor((x - Number(svg.dataset.left)) / Number(svg.dataset.slot));
    return Math.max(0, Math.min(n - 1, i));
  }
  function chartSelect(d) {
    var hits = chartHits(d.svg), lo = hits[Math.min(d.i0, d.i1)].querySelector("rect"), hi = hits[Math.max(d.i0, d.i1)].querySelector("rect");
    var sel = d.svg.querySelector("rect.sel"), x = Number(lo.getAttribute("x"));
    sel.setAttribute("x", x);
    sel.setAttribute("width", Number(hi.getAttribute("x")) + Number(hi.getAttribute("width")) - x);
    sel.removeAttribute("hidden");
  }
  document.addEventListener("pointerdown", function (e) {
    var a = e.target.closest && e.target.closest("#chart a.hit");
    if (!a || e.button !== 0) return;
    // No text selection or dragging of the link; a touch may still
    // scroll the page up and down (touch-action: pan-y).
    if (e.pointerType !== "touch") e.preventDefault();
    var svg = a.ownerSVGElement, i = chartIndex(svg, e.clientX);
    chartDrag = { svg: svg, id: e.pointerId, i0: i, i1: i, moved: false };
  });
  document.addEventListener("pointermove", function (e) {
    var d = chartDrag;
    if (!d || e.pointerId !== d.id) return;
    var i = chartIndex(d.svg, e.clientX);
    if (i === d.i1 && !d.moved) return;
    d.i1 = i;
    d.moved = true;
    d.svg.classList.add("dragging");
    chartSelect(d);
  });
  document.addEventListener("pointerup", function (e) {
    var d = chartDrag;
    if (!d || e.pointerId !== d.id) return;
    chartDrag = null;
    if (!d.moved) return; // a click: the bar's link goes
    chartSuppressClick = true;
    setTimeout(function () { chartSuppressClick = false; }, 0);
    var hits = chartHits(d.svg), lo = hits[Math.min(d.i0, d.i1)], hi = hits[Math.max(d.i0, d.i1)];
    var u = new URL(lo.getAttribute("href"), location.href);
    u.searchParams.set("to", hi.dataset.to);
    location.assign(u.pathname + u.search);
  });
  document.addEventListener("pointercancel", function (e) {
    var d = chartDrag;
    if (!d || e.pointerId !== d.id) return;
    chartDrag = null;
    d.svg.classList.remove("dragging");
    d.svg.querySelector("rect.sel").setAttribute("hidden", "");
  });
  document.addEventListener("click", function (e) {
    if (chartSuppressClick && e.target.closest && e.target.closest("#chart")) e.preventDefault();
  }, true);
  document.addEventListener("keydown", function (e) {
    var a = e.target.closest && e.target.closest("#chart a.hit");
    if (!a || e.altKey || e.ctrlKey || e.metaKey) return;
    var hits = chartHits(a.ownerSVGElement), i = hits.indexOf(a), j;
    switch (e.key) {
      case "Enter": case " ":
        e.preventDefault();
        location.assign(a.getAttribute("href"));
        return;
      case "ArrowRight": case "ArrowDown": j = i + 1; break;
      case "ArrowLeft": case "ArrowUp": j = i - 1; break;
      case "Home": j = 0; break;
      case "End": j = hits.length - 1; break;
      default: return;
    }
    e.preventDefault();
    j = Math.max(0, Math.min(hits.length - 1, j));
    a.setAttribute("tabindex", "-1");
    hits[j].setAttribute("tabindex", "0");
    hits[j].focus();
  });

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

  // confirmAction shows the Console's confirmation dialog and resolves to
  // the reason typed (possibly "") when the operator confirms, or null when
  // they cancel. opts:
  //   title      the question ("Re-run 3 executions?")
  //   verb       the confirm button's label ("Re-run 3")
  //   danger     a red confirm button (discard, delete)
  //   text       one paragraph under the title
  //   rows       the first rows acted on: {id, type, state, what}, what
  //              being what happens to it ("runs now", "copied …")
  //   total      how many are acted on in all (rows may be the first few)
  //   summary    one line of counts ("2 run now · 1 copied · 0 skipped")
  //   effects    side effects, one sentence each
  //   reason     "required" or "optional"
  //   typeCount  a number the operator must type to confirm (0: none)
  // It is window.stripeq.confirm, for the other pages' scripts.
  var dialog = null;
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function confirmAction(opts) {
    if (!dialog) {
      dialog = el("dialog", "confirm");
      dialog.id = "confirm";
      dialog.setAttribute("aria-labelledby", "confirm-title");
      document.body.appendChild(dialog);
    }
    dialog.textContent = "";
    var form = el("form");
    form.method = "dialog";
    var h = el("h2", null, opts.title);
    h.id = "confirm-title";
    form.appendChild(h);
    if (opts.text) form.appendChild(el("p", "confirm-text", opts.text));
    if (opts.summary) form.appendChild(el("p", "confirm-summary", opts.summary));
    var rows = opts.rows || [];
    if (rows.length) {
      var wrap = el("div", "scroll confirm-rows");
      var t = el("table", "kvt");
      var head = el("tr");
      ["Execution", "Type", "State", "What happens"].forEach(function (s) { head.appendChild(el("th", null, s)); });
      t.appendChild(head);
      rows.slice(0, 10).forEach(function (r) {
        var tr = el("tr");
        tr.dataset.id = r.id;
        tr.appendChild(el("td", "mono", r.id));
        tr.appendChild(el("td", "mono", r.type || ""));
        tr.appendChild(el("td", null, r.state || ""));
        tr.appendChild(el("td", "what", r.what));
        t.appendChild(tr);
      });
      wrap.appendChild(t);
      form.appendChild(wrap);
      var total = opts.total || rows.length;
      if (total > Math.min(rows.length, 10)) {
        form.appendChild(el("p", "muted confirm-more", "… and " + (total - Math.min(rows.length, 10)).toLocaleString("en-US") + " more."));
      }
    }
    if (opts.effects && opts.effects.length) {
      var ul = el("ul", "confirm-effects");
      opts.effects.forEach(function (s) { ul.appendChild(el("li", null, s)); });
      form.appendChild(ul);
    }
    var count = null;
    if (opts.typeCount) {
      var lc = el("label", "confirm-field", "This acts on every execution listed, unfiltered. Type " + opts.typeCount + " to confirm");
      count = el("input");
      count.id = "confirm-count";
      count.required = true;
      count.inputMode = "numeric";
      count.autocomplete = "off";
      count.pattern = String(opts.typeCount);
      lc.appendChild(count);
      form.appendChild(lc);
    }
    var required = opts.reason === "required";
    var lr = el("label", "confirm-field", required ? "Reason, for the audit log (required: an incident, a ticket)" : "Reason, for the audit log (optional: an incident, a ticket)");
    var reason = el("input");
    reason.id = "confirm-reason";
    reason.maxLength = 500;
    reason.required = required;
    reason.autocomplete = "off";
    lr.appendChild(reason);
    form.appendChild(lr);
    var actions = el("div", "actions");
    var cancel = el("button", "quiet", "Cancel");
    cancel.type = "button";
    cancel.id = "confirm-cancel";
    var ok = el("button", opts.danger ? "danger" : "primary", opts.verb || "Confirm");
    ok.type = "submit";
    ok.id = "confirm-ok";
    actions.appendChild(cancel);
    actions.appendChild(ok);
    form.appendChild(actions);
    dialog.appendChild(form);
    var check = function () {
      ok.disabled = (required && !reason.value.trim()) || (count && count.value.trim() !== String(opts.typeCount));
    };
    reason.addEventListener("input", check);
    if (count) count.addEventListener("input", check);
    check();
    return new Promise(function (resolve) {
      var done = function (v) { resolve(v); if (dialog.open) dialog.close(); };
      cancel.addEventListener("click", function () { done(null); });
      dialog.oncancel = function () { done(null); };
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        check();
        if (ok.disabled) return;
        done(reason.value.trim());
      });
      dialog.showModal();
      (count || reason).focus();
    });
  }

  // What a re-run does to an execution in each state, as the server does
  // it (a kept failure asynq no longer holds is copied).
  var what = {
    archived: "runs now", retry: "runs now", scheduled: "runs now",
    completed: "copied as a new execution",
    pending: "skipped: already waiting to run", active: "skipped: running"
  };
  function whatHappens(state, kept) {
    if (kept) return "copied as a new execution: asynq no longer holds it";
    return what[state] || "runs now";
  }
  // rerunEffects are the side effects of re-running: copies are forwarded
  // to every destination again; an execution run now reaches only the
  // destinations it has not reached.
  function rerunEffects(copies, runs) {
    var dests = ((document.querySelector('meta[name="destinations"]') || {}).content || "").split(",").filter(Boolean);
    var out = [];
    var to = dests.length ? "every destination that takes its type (" + dests.join(", ") + ")" : "every destination that takes its type (none is set up now)";
    if (copies) out.push("A copy is a new execution: its handlers run again, and its event is forwarded again to " + to + ", with the same webhook-id.");
    if (runs) out.push("An execution run now runs its handlers again; its event is forwarded only to destinations it has not reached yet.");
    out.push("The action, its reason and what it acted on go to the audit log.");
    return out;
  }
  function rowOf(tr) {
    return { id: tr.dataset.id, type: tr.dataset.type, state: tr.dataset.state, what: whatHappens(tr.dataset.state, tr.dataset.kept === "true") };
  }
  function counted(rows) {
    var n = { run: 0, copy: 0, skip: 0 };
    rows.forEach(function (r) {
      if (r.what.indexOf("copied") === 0) n.copy++;
      else if (r.what.indexOf("skipped") === 0) n.skip++;
      else n.run++;
    });
    return n;
  }
  function summary(run, copy, skip) {
    return run.toLocaleString("en-US") + " run now · " + copy.toLocaleString("en-US") + " copied · " + skip.toLocaleString("en-US") + " skipped";
  }
  window.stripeq = { confirm: confirmAction, whatHappens: whatHappens, rerunEffects: rerunEffects };

  // The confirmation of a button with data-action: data-confirm is its
  // question; a re-run (data-action post with data-state) shows what
  // happens to the execution, a bulk re-run the first rows listed and its
  // counts (data-run, data-copy, data-skip); data-type-count asks for the
  // count typed in.
  function confirmFor(b) {
    var action = b.getAttribute("data-action");
    var opts = { title: b.getAttribute("data-confirm"), verb: b.getAttribute("data-verb") || b.textContent.replace(/…$/, ""), danger: b.classList.contains("danger") || b.classList.contains("quiet"), reason: "optional" };
    // The question is the title; what follows it, the text under it.
    var k = opts.title.indexOf("? ");
    if (k > 0) { opts.text = opts.title.slice(k + 2); opts.title = opts.title.slice(0, k + 1); }
    if (action === "bulk") {
      var total = Number(b.getAttribute("data-count")) || 0;
      var run = Number(b.getAttribute("data-run")) || 0, copy = Number(b.getAttribute("data-copy")) || 0, skip = Number(b.getAttribute("data-skip")) || 0;
      opts.rows = Array.prototype.slice.call(document.querySelectorAll("table.list tbody tr[data-id]")).map(rowOf);
      opts.total = total;
      opts.summary = summary(run, copy, skip);
      opts.effects = rerunEffects(copy, run);
      opts.reason = "required";
      opts.typeCount = Number(b.getAttribute("data-type-count")) || 0;
      opts.verb = "Re-run " + (run + copy).toLocaleString("en-US");
      opts.danger = false;
    } else if (b.hasAttribute("data-state")) {
      var r = { id: b.getAttribute("data-id"), type: b.getAttribute("data-type"), state: b.getAttribute("data-state") };
      r.what = b.getAttribute("data-what") || whatHappens(r.state, b.getAttribute("data-kept") === "true");
      opts.rows = [r];
      var n = counted([r]);
      if (action === "post" && b.id === "rerun") opts.effects = rerunEffects(n.copy, n.run);
    }
    if (b.hasAttribute("data-effect")) opts.effects = [b.getAttribute("data-effect")].concat(opts.effects || []);
    return confirmAction(opts);
  }

  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("button[data-action]");
    if (!b) return;
    ev.preventDefault();
    var url = b.getAttribute("data-url");
    var ask = b.getAttribute("data-confirm") ? confirmFor(b) : Promise.resolve("");
    ask.then(function (reason) {
      if (reason === null) return;
      if (reason) url += (url.indexOf("?") < 0 ? "?" : "&") + "reason=" + encodeURIComponent(reason);
      act(b, url);
    });
  });

  function act(b, url) {
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
  }

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
    var rows = picked().map(rowOf);
    if (!rows.length) return;
    var n = counted(rows);
    confirmAction({
      title: "Re-run " + rows.length + " selected execution" + (rows.length === 1 ? "" : "s") + "?",
      verb: "Re-run " + (n.run + n.copy), rows: rows, total: rows.length, summary: summary(n.run, n.copy, n.skip),
      effects: rerunEffects(n.copy, n.run), reason: "required"
    }).then(function (reason) {
      if (reason === null) return;
      b.disabled = true;
      fetch("/api/executions/rerun-selected", {
        method: "POST", credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf, "Accept": "application/json", "Content-Type": "application/json" },
        body: JSON.stringify({ ids: rows.map(function (r) { return r.id; }), reason: reason })
      }).then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (res) {
          if (!r.ok) throw new Error(res.message || ("HTTP " + r.status));
          toast("Re-ran " + (res.run + res.copied) + " (" + res.run + " run now, " + res.copied + " copied), skipped " + res.skipped + (res.failed ? ", failed " + res.failed : "") + ".");
          setTimeout(function () { location.reload(); }, 1200);
        });
      }).catch(function (err) { b.disabled = false; toast(err.message, true); });
    });
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
