// The live fleet map: vehicles as circles coloured by SoC (faded when not seen lately), depots with their
// geofence. Markers are vector shapes, so they show even when the tile server cannot be reached (offline).
(function () {
  "use strict";
  var COLOURS = { low: "#c0392b", mid: "#e69f00", high: "#2e8b57", unknown: "#888888" };

  function draw() {
    var element = document.getElementById("fleet-map");
    if (!element || typeof L === "undefined") return;
    var data = JSON.parse(document.getElementById(element.dataset.source).textContent);
    var map = L.map(element, { preferCanvas: false });
    if (data.tiles.url) {
      L.tileLayer(data.tiles.url, { maxZoom: 19, attribution: data.tiles.attribution }).addTo(map);
    }
    var bounds = [];
    var drawn = { vehicles: [], depots: [] };
    data.depots.forEach(function (d) {
      var circle = L.circle([d.lat, d.lon], { radius: d.radius_m, color: "#1f4e79", weight: 1, fillOpacity: 0.08 });
      circle.addTo(map).bindTooltip(d.name);
      L.circleMarker([d.lat, d.lon], { radius: 5, color: "#1f4e79", fillOpacity: 1 }).addTo(map);
      drawn.depots.push({ id: d.id, name: d.name });
      bounds.push([d.lat, d.lon]);
    });
    data.vehicles.forEach(function (v) {
      var colour = COLOURS[v.band] || COLOURS.unknown;
      var marker = L.circleMarker([v.lat, v.lon], {
        radius: 8, color: "#222", weight: 1, fillColor: colour,
        fillOpacity: v.stale ? 0.35 : 0.95, opacity: v.stale ? 0.4 : 1, className: "evf-vehicle evf-soc-" + v.band,
      });
      var soc = v.soc_pct === null ? "—" : v.soc_pct + " %";
      marker.bindTooltip(v.fleet_number + " · " + soc + " · " + v.age_min + " min ago");
      marker.addTo(map);
      drawn.vehicles.push({ id: v.id, fleet_number: v.fleet_number, colour: colour, stale: v.stale });
      bounds.push([v.lat, v.lon]);
    });
    if (bounds.length) {
      map.fitBounds(bounds, { padding: [30, 30], maxZoom: 14 });
    } else {
      map.setView([29.07, -110.95], 11); // Hermosillo
    }
    window.evfleetMap = { map: map, drawn: drawn };
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
