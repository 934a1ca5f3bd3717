// boxoffice pages: small enhancements on server-rendered HTML. Every page
// works without this file except the live parts (countdown, live sales,
// type-ahead, layout preview). The seat map lives in seatmap.js.
(function () {
  "use strict";

  // --- Hold countdown ------------------------------------------------------
  // Counts down to the hold's expires_at (server time, in the page); at zero
  // the pay form is disabled and the buyer is told the seats are gone.
  function startCountdowns() {
    document.querySelectorAll("[data-countdown]").forEach(function (element) {
      var expiresAt = Date.parse(element.getAttribute("data-expires-at"));
      if (isNaN(expiresAt)) return;
      function tick() {
        var left = Math.max(0, Math.round((expiresAt - Date.now()) / 1000));
        element.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
        element.classList.toggle("urgent", left <= 60);
        if (left === 0) {
          clearInterval(timer);
          expire();
        }
      }
      var timer = setInterval(tick, 1000);
      tick();
    });
  }

  function expire() {
    document.querySelectorAll("[data-pay-form] button").forEach(function (button) {
      button.disabled = true;
    });
    document.querySelectorAll("[data-hold-timer]").forEach(function (element) {
      element.hidden = true;
    });
    document.querySelectorAll("[data-expired-message]").forEach(function (element) {
      element.hidden = false;
    });
  }

  // --- Forms ---------------------------------------------------------------
  function guardForms() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
    // One click, one request: a second submit while the first is on its way
    // is ignored (the server is idempotent anyway; this spares the wait).
    document.querySelectorAll("form[method=post]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (event.defaultPrevented) return;
        if (form.dataset.submitting) {
          event.preventDefault();
          return;
        }
        form.dataset.submitting = "1";
        setTimeout(function () { delete form.dataset.submitting; }, 5000);
      });
    });
  }

  // The "hold selected seats" button waits for a selection on the map.
  function followSelection() {
    var button = document.querySelector("[data-hold-selected]");
    if (!button) return;
    var onSale = !button.disabled;
    button.disabled = true;
    document.addEventListener("seatmap:selection", function (event) {
      button.disabled = !onSale || event.detail.seats.length === 0;
    });
  }

  // --- Type-ahead ----------------------------------------------------------
  function suggest() {
    var input = document.querySelector("input[data-suggest]");
    var list = document.getElementById("suggestions");
    if (!input || !list) return;
    var pending = null;
    var latest = 0;
    input.addEventListener("input", function () {
      clearTimeout(pending);
      var text = input.value.trim();
      if (!text) return;
      pending = setTimeout(function () {
        var ticket = ++latest;
        fetch("/v1/events/suggest?q=" + encodeURIComponent(text))
          .then(function (response) { return response.ok ? response.json() : { items: [] }; })
          .then(function (body) {
            if (ticket !== latest) return;
            list.replaceChildren.apply(list, body.items.map(function (item) {
              var option = document.createElement("option");
              option.value = item.title;
              option.label = item.performer ? item.title + " · " + item.performer : item.title;
              return option;
            }));
          })
          .catch(function () {});
      }, 150);
    });
  }

  // --- Live sales ----------------------------------------------------------
  // The seat stream says when something changed; the sales figures come from
  // GET /v1/shows/{id}/sales (admin), at most a few times a second.
  function money(value) {
    try {
      return new Intl.NumberFormat(undefined, { style: "currency", currency: value.currency })
        .format(value.amount / 100);
    } catch (error) {
      return value.currency + " " + (value.amount / 100).toFixed(2);
    }
  }

  function liveSales() {
    var root = document.querySelector("[data-sales]");
    var tokenMeta = document.querySelector("meta[name=bx-access-token]");
    if (!root || !tokenMeta || !window.EventSource) return;
    var showId = root.getAttribute("data-show-id");
    var status = document.querySelector("[data-live-status]");
    var scheduled = false;
    var running = false;
    var again = false;

    function refresh() {
      if (running) { again = true; return; }
      running = true;
      fetch("/v1/shows/" + encodeURIComponent(showId) + "/sales", {
        headers: { Authorization: "Bearer " + tokenMeta.content }
      })
        .then(function (response) {
          if (!response.ok) throw new Error("sales " + response.status);
          return response.json();
        })
        .then(render)
        .catch(function () { if (status) status.textContent = "not updating (sign in again)"; })
        .finally(function () {
          running = false;
          if (again) { again = false; refresh(); }
        });
    }

    function render(sales) {
      root.querySelector("[data-revenue]").textContent = money(sales.revenue);
      root.querySelector("[data-tickets-sold]").textContent = String(sales.tickets_sold);
      sales.sections.forEach(function (section) {
        var row = root.querySelector('tr[data-section="' + CSS.escape(section.section) + '"]');
        if (!row) return;
        ["available", "held", "booked"].forEach(function (field) {
          var cell = row.querySelector('[data-field="' + field + '"]');
          if (cell.textContent !== String(section[field])) {
            cell.textContent = String(section[field]);
            cell.classList.remove("changed");
            void cell.offsetWidth; // restart the highlight animation
            cell.classList.add("changed");
          }
        });
      });
      root.dataset.updatedAt = String(Date.now());
    }

    function schedule() {
      if (scheduled) return;
      scheduled = true;
      setTimeout(function () { scheduled = false; refresh(); }, 200);
    }

    var source = new EventSource("/v1/shows/" + encodeURIComponent(showId) + "/seats/stream");
    source.addEventListener("snapshot", schedule);
    source.addEventListener("changes", schedule);
    source.addEventListener("open", function () { if (status) status.textContent = "updates live"; });
    source.addEventListener("error", function () { if (status) status.textContent = "reconnecting…"; });
  }

  // --- Venue layout preview -----------------------------------------------
  function layoutPreview() {
    var target = document.querySelector("[data-layout-preview]");
    if (!target || !window.BoxofficeSeatMap) return;
    var source = document.querySelector("[data-layout-source]");
    var data = document.querySelector("script[data-layout-data]");
    var file = document.querySelector("input[name=layout_file]");
    function draw(text) {
      var layout;
      try {
        layout = JSON.parse(text);
      } catch (error) {
        target.textContent = "The layout is not valid JSON yet: " + error.message;
        return;
      }
      window.BoxofficeSeatMap.preview(target, layout);
    }
    if (data) draw(data.textContent);
    if (source) {
      var pending = null;
      source.addEventListener("input", function () {
        clearTimeout(pending);
        pending = setTimeout(function () { draw(source.value); }, 250);
      });
      draw(source.value);
    }
    if (file && source) {
      // Show an uploaded file in the editor, so the preview is of what is sent.
      file.addEventListener("change", function () {
        if (!file.files || !file.files[0]) return;
        file.files[0].text().then(function (text) {
          source.value = text;
          draw(text);
        });
      });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    startCountdowns();
    guardForms();
    followSelection();
    suggest();
    liveSales();
    layoutPreview();
  });
})();

// While waiting in a show's waiting room, the page reloads itself to show
// the new position (and, once admitted, the seat picker's forms).
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  if (!document.querySelector("[data-queue-waiting]")) return;
  setTimeout(function () { window.location.reload(); }, 5000);
});
