import Foundation
import ReproSupport
import ReproStore

/// Renders report data as one self-contained HTML file: inline CSS, inline SVG drawn here, and
/// a little inline script for sorting and filtering the table. Nothing is fetched, and nothing
/// in it depends on when it was written, so the same store gives the same bytes. Built with
/// `HTML` (everything from the store escaped), under a Content-Security-Policy that allows no
/// script or style but the page's own, by hash: a value that slipped through still could not run.
public enum ReportHTML {
    public static func render(_ d: ReportData) -> String {
        var h = HTML()
        h.raw("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
        h.void("meta", ["http-equiv": "Content-Security-Policy", "content": csp])
        h.raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
        h.el("title", "repro report: " + d.title)
        h.raw("<style>")
        h.raw(css)
        h.raw("</style></head>\n<body>\n")
        SVG.patternDefs(&h)
        h.raw("<header>")
        h.el("h1", "repro report: " + d.title)
        h.el("p", "\(d.points.count) run\(d.points.count == 1 ? "" : "s") · made by repro \(HostInfo.reproVersion) from its store")
        h.raw("<nav><a href=\"#summary\">Summary</a> <a href=\"#results\">Results</a> <a href=\"#timeline\">Timeline</a> ")
        h.raw("<a href=\"#verification\">Verification</a> <a href=\"#provenance\">Provenance</a></nav></header>\n")
        summary(d, &h)
        results(d, &h)
        timeline(d, &h)
        verification(d, &h)
        provenance(d, &h)
        h.raw("<script>")
        h.raw(script)
        h.raw("</script>\n</body></html>\n")
        return h.out
    }

    /// Nothing but the page's own script and style run; no fetches of any kind.
    static let csp =
        "default-src 'none'; script-src \(HTML.cspHash(script.description)); style-src \(HTML.cspHash(css.description)); img-src data:; base-uri 'none'; form-action 'none'"

    static func aggregated(_ d: ReportData) -> Bool { d.points.count > ReportData.perRunLimit }

    // MARK: summary

    static func summary(_ d: ReportData, _ h: inout HTML) {
        let runs = d.points.map(\.run)
        let hits = runs.reduce(0) { $0 + $1.hitCount }
        let failed = runs.filter { $0.status == .failed }
        let compute = runs.compactMap(\.durationS).reduce(0, +)
        let rate = runs.isEmpty && hits == 0 ? 0 : Double(hits) / Double(hits + runs.count)
        h.raw("<section id=\"summary\"><h2>Summary</h2><div class=\"cards\">")
        for (label, value) in [
            ("runs computed", "\(runs.count)"), ("cache hits served", "\(hits)"), ("hit rate", String(format: "%.0f%%", rate * 100)),
            ("failed", "\(failed.count)"), ("compute time", DurationText.format(compute.rounded())),
        ] {
            h.el("div", ["class": "card"]) { h in
                h.el("div", ["class": "v"], value)
                h.el("div", ["class": "k"], label)
            }
        }
        h.raw("</div>")
        // Hits and misses per day.
        var misses: [String: Int] = [:]
        for r in runs { misses[String(r.startedAt.prefix(10)), default: 0] += 1 }
        let days = Set(misses.keys).union(d.hitsPerDay.keys).sorted()
        if !days.isEmpty {
            h.raw("<h3>Hits and misses per day</h3>")
            bars(days: days, series: [("misses (computed)", misses), ("hits (served)", d.hitsPerDay)], &h)
        }
        // Failures by cause.
        if !failed.isEmpty {
            var causes: [String: Int] = [:]
            for r in failed { causes[cause(r), default: 0] += 1 }
            h.raw("<h3>Failures by cause</h3><table><thead><tr><th>cause</th><th>runs</th></tr></thead><tbody>")
            for (c, n) in causes.sorted(by: { ($0.value, $1.key) > ($1.value, $0.key) }) {
                h.el("tr") { h in
                    h.el("td", c)
                    h.el("td", ["class": "n"], String(n))
                }
            }
            h.raw("</tbody></table>")
        }
        // Compute and cost by backend.
        var byBackend: [String: (Int, Double)] = [:]
        for r in runs { byBackend[r.backend, default: (0, 0)].0 += 1; byBackend[r.backend, default: (0, 0)].1 += r.durationS ?? 0 }
        h.raw("<h3>By backend</h3><table><thead><tr><th>backend</th><th>runs</th><th>compute time</th><th>cost</th></tr></thead><tbody>")
        for (b, v) in byBackend.sorted(by: { $0.key < $1.key }) {
            h.el("tr") { h in
                h.el("td", b)
                h.el("td", ["class": "n"], String(v.0))
                h.el("td", ["class": "n"], DurationText.format(v.1.rounded()))
                h.raw("<td>not recorded</td>")
            }
        }
        h.raw("</tbody></table></section>\n")
    }

    /// A failure's cause: the first part of its message, with numbers and ids generalized.
    static func cause(_ r: RunRecord) -> String {
        let m = (r.message ?? "failed").split(separator: "\n").first.map(String.init) ?? "failed"
        var out = ""
        var lastWasDigit = false
        for ch in m.prefix(120) {
            if ch.isNumber {
                if !lastWasDigit { out += "N" }
                lastWasDigit = true
            } else {
                out.append(ch)
                lastWasDigit = false
            }
        }
        return out
    }

    /// Grouped bars per day, one series per pattern.
    static func bars(days: [String], series: [(String, [String: Int])], _ h: inout HTML) {
        let (w, hgt, left, top, bottom) = (640.0, 200.0, 48.0, 10.0, 160.0)
        let maxV = Double(series.flatMap { s in days.map { s.1[$0] ?? 0 } }.max() ?? 1)
        let y = SVG.Scale([0, maxV], to: bottom, top)
        let slot = (w - left - 10) / Double(days.count)
        let bw = max(1, slot / Double(series.count + 1))
        var desc = ""
        var body = HTML()
        for (i, day) in days.enumerated() {
            for (j, (name, values)) in series.enumerated() {
                let v = Double(values[day] ?? 0)
                let x = left + Double(i) * slot + Double(j) * bw + bw / 2
                body.el(
                    "rect",
                    ["x": SVG.c(x), "y": SVG.c(y(v)), "width": SVG.c(bw), "height": SVG.c(bottom - y(v)), "fill": SVG.fill(j * 1 + (j > 0 ? 1 : 0)),
                     "stroke": "#333", "stroke-width": "0.5"]
                ) { $0.el("title", "\(day) \(name): \(Int(v))") }
                desc += "\(day) \(name) \(Int(v)); "
            }
            if days.count <= 14 || i % max(1, days.count / 10) == 0 {
                body.el("text", ["x": SVG.c(left + Double(i) * slot + slot / 2), "y": SVG.c(bottom + 14), "text-anchor": "middle"], String(day.suffix(5)))
            }
        }
        h.open("svg", ["class": "chart", "viewBox": "0 0 \(Int(w)) \(Int(hgt))", "role": "img", "aria-labelledby": "hm-t hm-d"])
        h.raw("<title id=\"hm-t\">Cache hits and misses per day</title>")
        h.el("desc", ["id": "hm-d"], desc)
        h.raw("<g class=\"axis\">")
        h.void("line", ["x1": SVG.c(left), "y1": SVG.c(bottom), "x2": SVG.c(w - 10), "y2": SVG.c(bottom)])
        for t in y.ticks() { h.el("text", ["x": SVG.c(left - 4), "y": SVG.c(y(t) + 4), "text-anchor": "end"], SVG.num(t)) }
        h.raw("</g>")
        h.append(body)
        var lx = left
        for (j, (name, _)) in series.enumerated() {
            h.void("rect", ["x": SVG.c(lx), "y": "182", "width": "12", "height": "12", "fill": SVG.fill(j * 1 + (j > 0 ? 1 : 0)), "stroke": "#333", "stroke-width": "0.5"])
            h.el("text", ["x": SVG.c(lx + 16), "y": "192"], name)
            lx += 170
        }
        h.raw("</svg>")
    }

    // MARK: results

    static func results(_ d: ReportData, _ h: inout HTML) {
        h.raw("<section id=\"results\"><h2>Results</h2>")
        guard !d.points.isEmpty else { return h.raw("<p>No runs.</p></section>\n") }
        if d.ys.isEmpty {
            h.raw("<p>No numeric outputs chosen: add <code>report: {y: result.json:$.field}</code> to the spec, or pass ")
            h.raw("<code>--y result.json:$.field</code>.</p>")
        }
        let cols = d.varied
        if aggregated(d) {
            // Above the per-run limit: one row per value of the first varied param.
            let key = cols.first ?? ""
            var groups: [String: [ReportData.Point]] = [:]
            for p in d.points { groups[p.params[key]?.canonical ?? "–", default: []].append(p) }
            h.el("p") { h in
                h.text("\(d.points.count) runs: aggregated by ")
                h.el("code", key)
                h.text(" (above \(ReportData.perRunLimit) runs the report shows groups, not one row per run).")
            }
            h.raw("<table class=\"sortable\"><thead><tr>")
            h.el("th", key)
            h.raw("<th>runs</th>")
            for y in d.ys { h.el("th", "mean " + y) }
            h.raw("</tr></thead><tbody>")
            for (g, pts) in groups.sorted(by: { $0.key < $1.key }) {
                h.el("tr") { h in
                    h.el("td", g)
                    h.el("td", ["class": "n"], String(pts.count))
                    for y in d.ys {
                        let vs = pts.compactMap { $0.ys[y] ?? nil }
                        h.el("td", ["class": "n"], vs.isEmpty ? "–" : SVG.num(vs.reduce(0, +) / Double(vs.count)))
                    }
                }
            }
            h.raw("</tbody></table>")
        } else {
            h.raw("<p><label>Filter rows: <input id=\"filter\" type=\"search\" placeholder=\"text in any cell\"></label> ")
            h.raw("(click a column heading to sort)</p><table class=\"sortable\" id=\"points\"><thead><tr><th>run</th><th>status</th>")
            for c in cols { h.el("th", c) }
            for y in d.ys { h.el("th", y) }
            h.raw("</tr></thead><tbody>")
            for p in d.points {
                h.el("tr") { h in
                    h.el("td") { $0.el("a", ["href": "#run-" + p.run.runId], p.run.runId) }
                    h.el("td") { statusCell(p.run.status, &$0) }
                    for c in cols { h.el("td", ["class": "n"], text(p.params[c])) }
                    for y in d.ys { h.el("td", ["class": "n"], (p.ys[y] ?? nil).map(SVG.num) ?? "–") }
                }
            }
            h.raw("</tbody></table>")
        }
        // Each output against each varied numeric param.
        let numericParams = cols.filter { c in d.points.contains { $0.params[c]?.numberValue != nil } }
        if !d.ys.isEmpty && !numericParams.isEmpty {
            h.raw("<h3>Outputs against parameters</h3><div class=\"plots\">")
            for y in d.ys {
                for x in numericParams { scatter(d, x: x, y: y, &h) }
            }
            h.raw("</div>")
        }
        if numericParams.count + d.ys.count >= 3 && numericParams.count >= 2 {
            h.raw("<h3>Parallel coordinates</h3>")
            parallel(d, axes: numericParams + d.ys, &h)
        }
        h.raw("</section>\n")
    }

    static func text(_ v: JSONValue?) -> String {
        guard let v else { return "–" }
        if case .string(let s) = v { return s }
        return v.canonical
    }

    static func statusCell(_ s: RunStatus, _ h: inout HTML) {
        let symbol: String
        switch s {
        case .succeeded: symbol = "✓"
        case .failed: symbol = "✗"
        case .interrupted: symbol = "■"
        case .running: symbol = "…"
        }
        h.el("span", ["class": "st st-" + s.rawValue], symbol + " " + s.rawValue)
    }

    static func scatter(_ d: ReportData, x: String, y: String, _ h: inout HTML) {
        let pts = d.points.compactMap { p -> (Double, Double, String, String)? in
            guard let xv = p.params[x]?.numberValue, let yv = p.ys[y] ?? nil else { return nil }
            return (xv, yv, p.run.backend, p.run.runId)
        }
        let (w, hgt, left, top, right, bottom) = (320.0, 230.0, 56.0, 12.0, 310.0, 190.0)
        let xs = SVG.Scale(pts.map(\.0), to: left + 6, right - 6), ys = SVG.Scale(pts.map(\.1), to: bottom - 6, top + 6)
        let backends = Array(Set(pts.map(\.2))).sorted()
        let id = "sc-" + Hashing.sha256Hex(x + "|" + y).prefix(10)
        h.raw("<figure>")
        h.open("svg", ["class": "chart", "viewBox": "0 0 \(Int(w)) \(Int(hgt))", "role": "img", "aria-labelledby": id])
        h.el("title", ["id": id], "\(y) against \(x), \(pts.count) points")
        SVG.axes(x: xs, y: ys, left: left, top: top, right: right, bottom: bottom, xLabel: x, yLabel: String(y.split(separator: ":").last ?? ""), &h)
        for (xv, yv, b, run) in pts {
            SVG.marker(backends.firstIndex(of: b) ?? 0, x: xs(xv), y: ys(yv), title: "\(run): \(x)=\(SVG.num(xv)), \(SVG.num(yv))", &h)
        }
        h.raw("</svg>")
        h.el("figcaption", "\(y) vs \(x)" + (backends.count > 1 ? " (shape = backend: " + backends.joined(separator: ", ") + ")" : ""))
        h.raw("</figure>")
    }

    static func parallel(_ d: ReportData, axes: [String], _ h: inout HTML) {
        let (w, hgt, top, bottom) = (max(480.0, Double(axes.count) * 140), 260.0, 24.0, 230.0)
        let step = (w - 80) / Double(max(1, axes.count - 1))
        func value(_ p: ReportData.Point, _ a: String) -> Double? { p.params[a]?.numberValue ?? (p.ys[a] ?? nil) }
        let scales = axes.map { a in SVG.Scale(d.points.compactMap { value($0, a) }, to: bottom, top) }
        // Room at both ends for the outer axes' labels.
        h.open("svg", ["class": "chart wide", "viewBox": "-40 0 \(Int(w) + 80) \(Int(hgt))", "role": "img", "aria-labelledby": "pc-t"])
        h.el("title", ["id": "pc-t"], "Parallel coordinates of \(axes.joined(separator: ", ")), one line per run")
        for p in d.points {
            var pts: [String] = []
            for (i, a) in axes.enumerated() {
                guard let v = value(p, a) else { continue }
                pts.append("\(SVG.c(40 + Double(i) * step)),\(SVG.c(scales[i](v)))")
            }
            guard pts.count > 1 else { continue }
            h.void("polyline", ["points": pts.joined(separator: " "), "fill": "none", "stroke": SVG.colours[0], "stroke-opacity": "0.45"])
        }
        for (i, a) in axes.enumerated() {
            let x = 40 + Double(i) * step
            h.raw("<g class=\"axis\">")
            h.void("line", ["x1": SVG.c(x), "y1": SVG.c(top), "x2": SVG.c(x), "y2": SVG.c(bottom)])
            h.el("text", ["x": SVG.c(x), "y": "14", "text-anchor": "middle", "class": "label"], String(a.split(separator: ":").last ?? ""))
            h.el("text", ["x": SVG.c(x + 3), "y": SVG.c(bottom + 14)], SVG.num(scales[i].lo))
            h.el("text", ["x": SVG.c(x + 3), "y": SVG.c(top + 10)], SVG.num(scales[i].hi))
            h.raw("</g>")
        }
        h.raw("</svg>")
    }

    // MARK: style and script

    static let css: StaticString = """
        body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:0 16px;color:#222}
        h1{font-size:22px}h2{border-bottom:2px solid #ccc;padding-bottom:4px;margin-top:32px}
        nav a{margin-right:12px}table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 8px}
        th{background:#f3f3f3;cursor:pointer}td.n{text-align:right;font-variant-numeric:tabular-nums}
        .cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #ccc;padding:8px 14px}.card .v{font-size:20px;font-weight:600}
        .chart{width:100%;max-width:640px;height:auto}.chart.wide{max-width:100%}.plots{display:flex;flex-wrap:wrap;gap:8px}
        .plots figure{width:330px}.plots figcaption{font-size:11px}
        figure{margin:0}.axis line{stroke:#333}.axis text,.chart text{font-size:10px;fill:#222}.label{font-weight:600}
        .st-failed{color:#a11}.st-succeeded{color:#161}.v-identical{background:#e6f4ea}.v-equivalent{background:#fff6d5}
        .v-divergent{background:#fde2e2}details{border-bottom:1px solid #eee;padding:2px 0}dl{display:grid;grid-template-columns:10em 1fr;margin:4px 0}
        dt{color:#555}dd{margin:0}code{font-size:12px}.legend svg{vertical-align:middle}.defs{position:absolute}
        """

    static let script: StaticString = """
        (function(){
        document.querySelectorAll('table.sortable').forEach(function(t){
          t.querySelectorAll('th').forEach(function(th,i){th.addEventListener('click',function(){
            var b=t.tBodies[0],rows=Array.prototype.slice.call(b.rows),asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
            rows.sort(function(x,y){var a=x.cells[i].textContent,c=y.cells[i].textContent,na=parseFloat(a),nc=parseFloat(c);
              var r=(!isNaN(na)&&!isNaN(nc))?na-nc:a.localeCompare(c);return asc?r:-r;});
            rows.forEach(function(r){b.appendChild(r);});});});});
        var f=document.getElementById('filter');
        if(f){f.addEventListener('input',function(){var q=f.value.toLowerCase();
          document.querySelectorAll('#points tbody tr').forEach(function(r){r.style.display=r.textContent.toLowerCase().indexOf(q)<0?'none':'';});});}
        document.body.setAttribute('data-report-ready','1');
        })();
        """
}
