/* evfleet admin charts, drawn with the vendored Chart.js (static/vendor/chartjs, no CDN).
 *
 * Each <canvas data-evf-chart="KIND" data-source="ID"> is drawn from the JSON in <script id="ID"> (Django's
 * json_script). Numbers and dates follow the page language (<html lang>). Every chart is kept in
 * window.evfleetCharts[canvas.id] so that tests (and curious people) can read what was drawn.
 */
(function () {
  "use strict";
  const charts = (window.evfleetCharts = window.evfleetCharts || {});
  const lang = document.documentElement.lang || "en";
  const fmt = (digits) => new Intl.NumberFormat(lang, { maximumFractionDigits: digits });
  const monthFmt = new Intl.DateTimeFormat(lang, { year: "numeric", month: "short" });
  const css = getComputedStyle(document.documentElement);
  const textColor = (css.getPropertyValue("--body-quiet-color") || "#666").trim();
  const gridColor = (css.getPropertyValue("--hairline-color") || "#e8e8e8").trim();
  const RED = "#c62828", AMBER = "#c77700", GREEN = "#2e7d32", BLUE = "#417690", GREY = "#888";

  function colour(i, alpha) {
    // Golden-angle hues: neighbours in the stack stay distinguishable however many vehicles there are.
    return `hsla(${Math.round((i * 137.508) % 360)}, 55%, 52%, ${alpha === undefined ? 0.85 : alpha})`;
  }

  function base(extra) {
    return Object.assign(
      {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "nearest", intersect: false },
        plugins: { legend: { labels: { color: textColor, boxWidth: 12 } } },
      },
      extra
    );
  }

  function axis(title, extra) {
    return Object.assign(
      {
        title: { display: !!title, text: title, color: textColor },
        ticks: { color: textColor, callback: function (v) { return fmt(1).format(v); } },
        grid: { color: gridColor },
      },
      extra
    );
  }

  const builders = {
    plan(canvas, d) {
      // Stacked from the ground up: the depot's base load, then each vehicle's charging (the biggest on their
      // own, the rest as one "other vehicles" band); the total site demand and the grid limit as lines, on
      // a scale fitted to the demand (d.y_max_kw): a grid limit far above it is named in the legend instead.
      const t = d.text;
      const bar = { type: "bar", stack: "power", yAxisID: "y", barPercentage: 1.0, categoryPercentage: 1.0, order: 3 };
      const datasets = [Object.assign({}, bar, { label: t.base_load, data: d.base_load_kw, backgroundColor: "rgba(120,120,120,0.45)" })];
      d.vehicles.forEach((v, i) => datasets.push(Object.assign({}, bar, {
        label: v.label, data: v.power_kw, backgroundColor: v.group ? "rgba(65,118,144,0.35)" : colour(i),
      })));
      datasets.push({
        type: "line", label: t.total, data: d.total_kw, borderColor: "#222", borderWidth: 1.5,
        pointRadius: 0, stepped: true, stack: "total", yAxisID: "y", order: 1,
      });
      const limitPeak = Math.min(...d.grid_limit_kw);
      const offScale = limitPeak > d.y_max_kw;
      datasets.push({
        type: "line", label: offScale ? `${t.grid_limit}: ${fmt(0).format(limitPeak)}, ${t.off_scale}` : t.grid_limit,
        data: d.grid_limit_kw, borderColor: RED, borderWidth: 2,
        borderDash: [6, 4], pointRadius: 0, stepped: true, stack: "limit", yAxisID: "y", order: 1,
      });
      datasets.push({
        type: "line", label: t.price, data: d.price_per_kwh, borderColor: GREY, borderWidth: 2,
        pointRadius: 0, stepped: true, stack: "price", yAxisID: "price", order: 2,
      });
      return new Chart(canvas, {
        type: "bar",
        data: { labels: d.labels, datasets },
        options: base({
          scales: {
            x: { stacked: true, ticks: { color: textColor, maxRotation: 0, autoSkip: true, maxTicksLimit: 24 }, grid: { display: false } },
            y: axis(t.power_axis, { stacked: true, beginAtZero: true, max: d.y_max_kw }),
            price: axis(t.price_axis, { position: "right", beginAtZero: true, grid: { drawOnChartArea: false } }),
          },
          plugins: {
            legend: { position: "bottom", labels: { color: textColor, boxWidth: 10, font: { size: 11 } } },
            tooltip: { mode: "index", filter: (item) => item.parsed.y > 0 || item.dataset.type === "line" },
          },
        }),
      });
    },

    health(canvas, d) {
      const t = d.text;
      const xy = (rows, key) => rows.filter((p) => p[key] !== null).map((p) => ({ x: p.t, y: p[key] }));
      const span = [Math.min(...d.points.map((p) => p.t).concat(d.observations.map((o) => o.t))),
                    Math.max(...d.points.map((p) => p.t).concat(d.observations.map((o) => o.t)))];
      const flat = (y) => [{ x: span[0], y }, { x: span[1], y }];
      const datasets = [
        { label: t.p90, data: xy(d.points, "p90"), borderColor: "rgba(65,118,144,0.3)", pointRadius: 0, borderWidth: 1, fill: false },
        { label: t.band, data: xy(d.points, "p10"), borderColor: "rgba(65,118,144,0.3)", backgroundColor: "rgba(65,118,144,0.18)", pointRadius: 0, borderWidth: 1, fill: "-1" },
        { label: t.median, data: xy(d.points, "p50"), borderColor: BLUE, borderWidth: 2.5, pointRadius: 0 },
        { label: t.observed, data: d.observations.map((o) => ({ x: o.t, y: o.soh })), type: "scatter", backgroundColor: "#222", pointRadius: 4 },
        { label: t.eol_line, data: flat(80), borderColor: RED, borderDash: [6, 4], pointRadius: 0, borderWidth: 1.5 },
      ];
      if (d.warranty_pct !== null) {
        datasets.push({ label: t.warranty_line, data: flat(d.warranty_pct), borderColor: AMBER, borderDash: [2, 3], pointRadius: 0, borderWidth: 1.5 });
      }
      if (d.marks.length) {
        datasets.push({ label: t.dates, data: d.marks.map((m) => ({ x: m.t, y: m.y })), type: "scatter", pointStyle: "triangle", pointRadius: 7, backgroundColor: RED });
      }
      return new Chart(canvas, {
        type: "line",
        data: { datasets },
        options: base({
          parsing: true,
          scales: {
            x: { type: "linear", min: span[0], max: span[1], ticks: { color: textColor, maxTicksLimit: 10, callback: (v) => monthFmt.format(new Date(v)) }, grid: { color: gridColor } },
            y: axis(t.soh_axis, { suggestedMin: 60, suggestedMax: 102 }),
          },
          plugins: {
            legend: { position: "bottom", labels: { color: textColor, boxWidth: 12, filter: (item) => item.text !== t.p90 } },
            tooltip: { callbacks: { title: (items) => items.length ? monthFmt.format(new Date(items[0].parsed.x)) : "", label: (item) => `${item.dataset.label}: ${fmt(1).format(item.parsed.y)} %` } },
          },
        }),
      });
    },

    ageing(canvas, d) {
      const t = d.text;
      const points = d.packs.map((p) => ({ x: p.group + p.jitter, y: p.fade, serial: p.serial, mine: p.highlight }));
      const medians = d.groups.map((g, i) => ({ x: i, y: g.median }));
      return new Chart(canvas, {
        type: "scatter",
        data: {
          datasets: [
            { label: t.packs, data: points, pointRadius: (ctx) => (ctx.raw && ctx.raw.mine ? 7 : 4),
              backgroundColor: (ctx) => (ctx.raw && ctx.raw.mine ? RED : "rgba(65,118,144,0.7)") },
            { label: t.median, data: medians, pointStyle: "line", pointRadius: 18, borderWidth: 3, borderColor: "#222", backgroundColor: "#222" },
          ],
        },
        options: base({
          scales: {
            x: {
              type: "linear", min: -0.5, max: d.groups.length - 0.5, grid: { display: false },
              // One tick per group, at its column's centre (the default ticks would fall between columns).
              afterBuildTicks: (scale) => { scale.ticks = d.groups.map((_, i) => ({ value: i })); },
              ticks: { color: textColor, autoSkip: false, callback: (v) => (d.groups[v] ? d.groups[v].label : "") },
            },
            y: axis(t.fade_axis, { beginAtZero: true }),
          },
          plugins: {
            legend: { position: "bottom", labels: { color: textColor } },
            tooltip: { callbacks: { label: (item) => item.raw.serial ? `${item.raw.serial}: ${fmt(2).format(item.parsed.y)} %/a` : `${t.median}: ${fmt(2).format(item.parsed.y)} %/a` } },
          },
        }),
      });
    },

    telemetry(canvas, d) {
      const t = d.text;
      const zoned = new Intl.DateTimeFormat(lang, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", timeZone: d.zone });
      const pts = (key) => d.t.map((x, i) => ({ x, y: d[key][i] })).filter((p) => p.y !== null);
      return new Chart(canvas, {
        type: "line",
        data: {
          datasets: [
            { label: t.soc, data: pts("soc"), borderColor: BLUE, pointRadius: 0, borderWidth: 1.5, yAxisID: "y" },
            { label: t.odometer, data: pts("odometer"), borderColor: GREY, pointRadius: 0, borderWidth: 1.5, yAxisID: "odo" },
          ],
        },
        options: base({
          scales: {
            x: { type: "linear", ticks: { color: textColor, maxTicksLimit: 8, callback: (v) => zoned.format(new Date(v)) }, grid: { color: gridColor } },
            y: axis(t.soc_axis, { min: 0, max: 100 }),
            odo: axis(t.odometer_axis, { position: "right", grid: { drawOnChartArea: false } }),
          },
        }),
      });
    },

    duty(canvas, d) {
      const t = d.text;
      return new Chart(canvas, {
        type: "bar",
        data: {
          labels: d.labels,
          datasets: [
            { type: "bar", label: t.distance, data: d.distance_km, backgroundColor: "rgba(65,118,144,0.35)", yAxisID: "km" },
            { type: "line", label: t.kwh_per_km, data: d.kwh_per_km, borderColor: RED, backgroundColor: RED, pointRadius: 3, yAxisID: "y" },
          ],
        },
        options: base({
          scales: {
            x: { ticks: { color: textColor, maxRotation: 0, autoSkip: true } },
            y: axis(t.kwh_per_km_axis, { beginAtZero: true }),
            km: axis(t.distance_axis, { position: "right", beginAtZero: true, grid: { drawOnChartArea: false } }),
          },
        }),
      });
    },
  };

  function drawAll() {
    document.querySelectorAll("canvas[data-evf-chart]").forEach((canvas) => {
      const source = document.getElementById(canvas.dataset.source);
      if (!source || typeof Chart === "undefined") return;
      charts[canvas.id] = builders[canvas.dataset.evfChart](canvas, JSON.parse(source.textContent));
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawAll);
  else drawAll();
})();
