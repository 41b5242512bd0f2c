// orderledger dashboard: live updates from GET /v1/stream, the sales charts, the copy button.
// Loaded from this server only; it fetches nothing but this server's own routes.
(function () {
  "use strict";

  // Live: one EventSource on the log; every event fires "ol:<category>" on <body> (the stream's
  // name up to its first "-": order, stock, payment, customer, purchase_order…), which the
  // live regions of the page listen for (hx-trigger="ol:order from:body").
  function live() {
    var status = document.getElementById("live-status");
    function show(state, text) {
      if (!status) return;
      status.dataset.state = state;
      status.textContent = text;
    }
    if (!window.EventSource) {
      show("closed", "Live: not supported by this browser");
      return;
    }
    var types = (document.body.dataset.liveTypes || "").split(" ").filter(Boolean);
    var source = new EventSource("/v1/stream");
    var seen = 0;
    source.onopen = function () { show("open", "Live"); };
    source.onerror = function () {
      show(source.readyState === EventSource.CLOSED ? "closed" : "connecting",
        source.readyState === EventSource.CLOSED ? "Live: disconnected (reload to retry)" : "Live: reconnecting…");
    };
    function onEvent(msg) {
      var ev;
      try { ev = JSON.parse(msg.data); } catch (e) { return; }
      var category = String(ev.stream || "").split("-")[0];
      seen++;
      show("open", "Live · " + seen + (seen === 1 ? " event" : " events"));
      if (window.htmx && category) {
        window.htmx.trigger(document.body, "ol:" + category, { stream: ev.stream, type: ev.type, position: ev.position });
      }
    }
    types.forEach(function (t) { source.addEventListener(t, onEvent); });
    source.onmessage = onEvent;
    window.addEventListener("pagehide", function () { source.close(); });
  }

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  // Charts: each .chart holds its data as JSON; drawn with uPlot at the width it has.
  function drawCharts(root) {
    if (!window.uPlot) return;
    root.querySelectorAll(".chart").forEach(function (el) {
      var script = el.querySelector("script.chart-data");
      if (!script || el.dataset.drawn) return;
      var data;
      try { data = JSON.parse(script.textContent); } catch (e) { return; }
      el.dataset.drawn = "1";
      var colors = [cssVar("--c1"), cssVar("--c2"), cssVar("--c3")];
      var fg = cssVar("--fg"), line = cssVar("--line");
      var axis = { stroke: fg, grid: { stroke: line }, ticks: { stroke: line } };
      var opts = {
        width: Math.max(280, el.clientWidth || 600),
        height: 240,
        // Half a day either side, so that the first and last days' bars show whole.
        scales: { x: { time: true, range: function (u, min, max) { return [min - 43200, max + 43200]; } } },
        axes: [axis, Object.assign({ size: 70, values: function (u, vals) { return vals.map(function (v) { return v.toLocaleString(); }); } }, axis)],
        series: [{ label: "Day", value: function (u, v) { return v == null ? "" : new Date(v * 1000).toISOString().slice(0, 10); } }].concat(
          data.series.map(function (s, i) {
            var color = colors[i % colors.length];
            var line = { label: s.label + " (" + data.currency + ")", stroke: color, width: 2, points: { show: data.x.length <= 31 } };
            if (i === 0 && window.uPlot.paths && window.uPlot.paths.bars) {
              // Invoiced as bars, the others as lines over them.
              line.paths = window.uPlot.paths.bars({ size: [0.6, 40] });
              line.fill = color + "55";
              line.points = { show: false };
            }
            return line;
          })),
      };
      var rows = [data.x].concat(data.series.map(function (s) { return s.values; }));
      var plot = new window.uPlot(opts, rows, el);
      if (window.ResizeObserver) {
        new ResizeObserver(function () { plot.setSize({ width: Math.max(280, el.clientWidth), height: 240 }); }).observe(el);
      }
    });
  }

  function copyButtons(root) {
    root.querySelectorAll("button.copy").forEach(function (b) {
      if (b.dataset.bound) return;
      b.dataset.bound = "1";
      b.addEventListener("click", function () {
        var input = document.querySelector(b.dataset.copy);
        if (!input) return;
        input.select();
        if (navigator.clipboard) {
          navigator.clipboard.writeText(input.value).then(function () { b.textContent = "Copied"; }, function () {});
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    live();
    drawCharts(document);
    copyButtons(document);
  });
  document.addEventListener("htmx:afterSettle", function () {
    drawCharts(document);
    copyButtons(document);
  });
})();
