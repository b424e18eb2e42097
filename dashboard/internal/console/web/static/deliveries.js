// stripeq Console, the Deliveries pages: re-send selected or all matching
// deliveries, and re-run one, each after an in-page confirmation that
// shows what will happen and takes a reason for the audit log. Vanilla
// JavaScript, nothing inline (the CSP forbids it).
"use strict";
(function () {
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  // What a re-send does to a delivery in each state.
  var fate = {
    archived: "sent again now", retry: "sent again now", scheduled: "sent again now",
    completed: "copied, and the copy is sent", pending: "skipped: already waiting", active: "skipped: being sent"
  };
  function text(el, s) { if (el) el.textContent = s; }

  // The list: ticked rows, "Re-send selected…" and "Re-send all matching…".
  var table = document.getElementById("deliveries");
  var picked = function () {
    return Array.prototype.slice.call(document.querySelectorAll("#deliveries input.dpick:checked")).map(function (c) { return c.closest("tr"); });
  };
  var selBtn = document.getElementById("resend-selected");
  var showPicked = function () {
    if (!selBtn) return;
    var n = picked().length;
    selBtn.hidden = n === 0;
    selBtn.textContent = "Re-send " + n + " selected…";
  };
  document.addEventListener("change", function (ev) {
    if (ev.target.id === "dpick-all") {
      document.querySelectorAll("#deliveries input.dpick").forEach(function (c) { c.checked = ev.target.checked; });
    }
    if (ev.target.id === "dpick-all" || ev.target.classList.contains("dpick")) showPicked();
  });

  var dialog = document.getElementById("resend-dialog");
  var pending = null; // what the open dialog would send

  function preview(rows, total, what) {
    text(document.getElementById("resend-title"), what);
    var counts = {};
    rows.forEach(function (r) { var f = fate[r.dataset.state] || "sent again"; counts[f] = (counts[f] || 0) + 1; });
    var summary = Object.keys(counts).map(function (k) { return counts[k] + " " + k; }).join(", ");
    text(document.getElementById("resend-what"), total + (total === 1 ? " delivery" : " deliveries") +
      (rows.length < total ? "; the first " + rows.length + " of them: " : ": ") + summary + ".");
    var ul = document.getElementById("resend-rows");
    ul.textContent = "";
    rows.slice(0, 10).forEach(function (r) {
      var li = document.createElement("li");
      li.textContent = r.dataset.id + " (" + r.dataset.type + ", " + r.dataset.state + ") → " + (fate[r.dataset.state] || "sent again");
      ul.appendChild(li);
    });
    if (rows.length > 10) {
      var more = document.createElement("li");
      more.textContent = "… and " + (total - 10) + " more";
      ul.appendChild(more);
    }
    var result = document.getElementById("resend-result");
    result.textContent = "";
    result.className = "";
    document.getElementById("resend-go").disabled = false;
    document.getElementById("resend-go").hidden = false;
    text(document.getElementById("resend-cancel"), "Cancel");
    dialog.showModal();
    document.getElementById("resend-reason").focus();
  }

  if (selBtn) selBtn.addEventListener("click", function () {
    var rows = picked();
    pending = { url: "/api/deliveries/rerun-selected", ids: rows.map(function (r) { return r.dataset.id; }) };
    preview(rows, rows.length, "Re-send " + rows.length + " selected");
  });
  var allBtn = document.getElementById("resend-all");
  if (allBtn) allBtn.addEventListener("click", function () {
    var rows = Array.prototype.slice.call(document.querySelectorAll("#deliveries tbody tr[data-id]"));
    var total = Number(allBtn.dataset.count);
    pending = { url: allBtn.dataset.url };
    preview(rows, total, "Re-send all " + total + " matching");
  });

  if (dialog) dialog.addEventListener("close", function () {
    if (dialog.returnValue === "done") location.reload();
  });
  var form = document.getElementById("resend-form");
  if (form) form.addEventListener("submit", function (ev) {
    if (ev.submitter && ev.submitter.value === "cancel") {
      if (document.getElementById("resend-go").hidden) { ev.preventDefault(); dialog.close("done"); }
      return;
    }
    ev.preventDefault();
    var reason = document.getElementById("resend-reason").value.trim();
    if (!reason || !pending) return;
    var go = document.getElementById("resend-go");
    go.disabled = true;
    var init = { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf, "Accept": "application/json" } };
    var url = pending.url;
    if (pending.ids) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify({ ids: pending.ids, reason: reason });
    } else {
      url += "&reason=" + encodeURIComponent(reason);
    }
    var result = document.getElementById("resend-result");
    fetch(url, init).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (res) {
        if (!r.ok) throw new Error(res.message || ("HTTP " + r.status));
        result.className = res.failed ? "bad" : "";
        result.textContent = "Re-sent " + (res.run + res.copied) + " (" + res.run + " sent again now, " + res.copied + " copied), skipped " + res.skipped + (res.failed ? ", failed " + res.failed + ": " + (res.errors || []).join("; ") : "") + ".";
        go.hidden = true;
        text(document.getElementById("resend-cancel"), "Close");
      });
    }).catch(function (err) {
      go.disabled = false;
      result.className = "bad";
      result.textContent = err.message;
    });
  });

  // One delivery: "Re-run this delivery…" asks first.
  var rerunForm = document.getElementById("rerun-form");
  var rerunDialog = document.getElementById("rerun-dialog");
  if (rerunForm && rerunDialog) {
    rerunForm.addEventListener("submit", function (ev) {
      if (rerunForm.dataset.confirmed) return;
      ev.preventDefault();
      var st = document.getElementById("rerun-open").dataset.state;
      var what = {
        archived: "It is sent again now, with the same webhook-id; its retries start over.",
        retry: "It is sent now instead of at its next retry, with the same webhook-id.",
        scheduled: "It is sent now instead of at its scheduled time, with the same webhook-id.",
        completed: "It was delivered: a copy is made and sent, with the same webhook-id, so the destination can tell it is a repeat."
      }[st] || "It is " + st + ": it cannot be re-run now.";
      text(document.getElementById("rerun-what"), what);
      rerunDialog.showModal();
    });
    rerunDialog.addEventListener("close", function () {
      if (rerunDialog.returnValue !== "go") return;
      document.getElementById("rerun-reason-field").value = document.getElementById("rerun-reason").value.trim();
      rerunForm.dataset.confirmed = "1";
      rerunForm.requestSubmit();
    });
  }
})();
