// Live regions: each element with data-live-src is refreshed from that URL every
// data-live-interval milliseconds. The server answers 304 while nothing changed (ETag), and
// a region is not replaced while the operator is typing in one of its fields. What a region's
// [data-live-summary] says is read out (aria-live) when it changes, not every refresh.
(function () {
  "use strict";

  var status = document.querySelector("[data-live-status]");

  function mark(ok) {
    if (!status) return;
    var time = new Date().toLocaleTimeString();
    status.textContent = ok ? "Live: up to date at " + time : "Live: cannot reach the server (" + time + "), retrying";
    status.classList.toggle("stale", !ok);
  }

  function typingIn(region) {
    var active = document.activeElement;
    return active && region.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName);
  }

  function summary(region) {
    var found = region.querySelector("[data-live-summary]");
    return found ? found.textContent : "";
  }

  function swap(region, html) {
    var before = summary(region);
    var focusedId = document.activeElement && region.contains(document.activeElement) ? document.activeElement.id : null;
    var opened = Array.prototype.map.call(region.querySelectorAll("details[open][id]"), function (d) { return d.id; });
    region.innerHTML = html;
    opened.forEach(function (id) {
      var again = document.getElementById(id);
      if (again) again.open = true;
    });
    region.classList.remove("flash-update");
    void region.offsetWidth; // restart the highlight
    region.classList.add("flash-update");
    if (focusedId) {
      var again = document.getElementById(focusedId);
      if (again) again.focus();
    }
    var announcer = document.getElementById("live-announcer");
    if (announcer && summary(region) !== before) announcer.textContent = summary(region);
  }

  function follow(region) {
    var etag = region.getAttribute("data-live-etag");
    var every = Number(region.getAttribute("data-live-interval")) || 2000;

    function later() { window.setTimeout(poll, every); }

    function poll() {
      if (document.hidden || typingIn(region)) { later(); return; }
      var headers = { "Accept": "text/html" };
      if (etag) headers["If-None-Match"] = etag;
      fetch(region.getAttribute("data-live-src"), { headers: headers, cache: "no-store", credentials: "same-origin" })
        .then(function (response) {
          if (response.status === 401) {
            window.location.assign("/console/login?next=" + encodeURIComponent(window.location.pathname + window.location.search));
            return null;
          }
          if (response.status === 304) { mark(true); return null; }
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.text().then(function (html) {
            if (typingIn(region)) return;  // keep the old tag: the next poll brings it again
            etag = response.headers.get("ETag");
            swap(region, html);
            mark(true);
          });
        })
        .catch(function () { mark(false); })
        .then(later);
    }

    later();
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-live-src]"), follow);
})();
