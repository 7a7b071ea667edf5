import Foundation
import ReproSupport
import ReproStore

/// The timeline, verification and provenance sections.
extension ReportHTML {
    // MARK: timeline

    static func timeline(_ d: ReportData, _ h: inout HTML) {
        h.raw("<section id=\"timeline\"><h2>Timeline</h2>")
        let spans = d.points.compactMap { p -> (String, Double, Double, Double, String)? in
            guard let start = Clock.parseISO8601(p.run.startedAt), let end = p.run.finishedAt.flatMap(Clock.parseISO8601) else { return nil }
            let queued = p.run.queuedAt.flatMap(Clock.parseISO8601) ?? start
            return (p.run.runId, queued, start, end, p.run.backend)
        }
        guard let t0 = spans.map(\.1).min(), let t1 = spans.map(\.3).max() else { return h.raw("<p>No finished runs.</p></section>\n") }
        let backends = Array(Set(spans.map(\.4))).sorted()
        let w = 760.0, left = 10.0, right = 750.0
        let x = SVG.Scale([t0, max(t1, t0 + 0.001)], to: left, right)
        if !aggregated(d) {
            let rowH = spans.count > 400 ? 2.0 : 8.0
            let hgt = Double(spans.count) * (rowH + 1) + 40
            h.open("svg", ["class": "chart wide", "viewBox": "0 0 \(Int(w)) \(Int(hgt))", "role": "img", "aria-labelledby": "tl-t"])
            h.el("title", ["id": "tl-t"], "One bar per run: a thin line while queued, a bar while running; \(DurationText.format((t1 - t0).rounded())) in all")
            for (i, s) in spans.enumerated() {
                let y = 10 + Double(i) * (rowH + 1)
                let bi = backends.firstIndex(of: s.4) ?? 0
                if s.2 > s.1 {
                    h.void("line", ["x1": SVG.c(x(s.1)), "y1": SVG.c(y + rowH / 2), "x2": SVG.c(x(s.2)), "y2": SVG.c(y + rowH / 2), "stroke": "#999"])
                }
                h.el("rect", ["x": SVG.c(x(s.2)), "y": SVG.c(y), "width": SVG.c(max(1, x(s.3) - x(s.2))), "height": SVG.c(rowH), "fill": SVG.fill(bi)]) {
                    $0.el("title", "\(s.0) on \(s.4): queued \(SVG.num(s.2 - s.1)) s, ran \(SVG.num(s.3 - s.2)) s")
                }
            }
            h.el("text", ["x": SVG.c(left), "y": SVG.c(hgt - 8)], Clock.iso8601(t0))
            h.el("text", ["x": SVG.c(right), "y": SVG.c(hgt - 8), "text-anchor": "end"], Clock.iso8601(t1))
            h.raw("</svg>")
            legend(backends, &h)
        }
        // Concurrency: how many ran at once.
        var events: [(Double, Int)] = []
        for s in spans {
            events.append((s.2, 1))
            events.append((s.3, -1))
        }
        events.sort { ($0.0, $0.1) < ($1.0, $1.1) }
        var level = 0, peak = 0
        var steps: [(Double, Int)] = []
        for e in events {
            level += e.1
            peak = max(peak, level)
            steps.append((e.0, level))
        }
        let hgt = 150.0
        let y = SVG.Scale([0, Double(max(1, peak))], to: 120, 10)
        var path = "M\(SVG.c(x(t0))) \(SVG.c(y(0)))"
        var last = 0
        // At most ~2000 steps drawn (aggregated above that), so the file stays small.
        let stride = max(1, steps.count / 2000)
        for (i, s) in steps.enumerated() where i % stride == 0 || i == steps.count - 1 {
            path += "L\(SVG.c(x(s.0))) \(SVG.c(y(Double(last))))L\(SVG.c(x(s.0))) \(SVG.c(y(Double(s.1))))"
            last = s.1
        }
        h.raw("<h3>Concurrency</h3>")
        h.open("svg", ["class": "chart wide", "viewBox": "0 0 \(Int(w)) \(Int(hgt))", "role": "img", "aria-labelledby": "cc-t"])
        h.el("title", ["id": "cc-t"], "Runs executing at once over time; at most \(peak)")
        h.void("path", ["d": path, "fill": "none", "stroke": SVG.colours[0], "stroke-width": "1.5"])
        h.raw("<g class=\"axis\">")
        h.void("line", ["x1": SVG.c(left), "y1": "120", "x2": SVG.c(right), "y2": "120"])
        for t in y.ticks(3) { h.el("text", ["x": SVG.c(right), "y": SVG.c(y(t) - 2), "text-anchor": "end"], SVG.num(t)) }
        h.raw("</g></svg></section>\n")
    }

    static func legend(_ backends: [String], _ h: inout HTML) {
        h.raw("<p class=\"legend\">")
        for (i, b) in backends.enumerated() {
            h.raw("<svg width=\"14\" height=\"14\" aria-hidden=\"true\">")
            h.void("rect", ["width": "14", "height": "14", "fill": SVG.fill(i)])
            h.raw("</svg> ")
            h.text(b + " ")
        }
        h.raw("</p>")
    }

    // MARK: verification

    static func verification(_ d: ReportData, _ h: inout HTML) {
        h.raw("<section id=\"verification\"><h2>Verification</h2>")
        guard !d.verifications.isEmpty else {
            return h.raw("<p>None of these runs' keys has been verified; <code>repro verify SPEC --backends local,slurm</code> does it.</p></section>\n")
        }
        // Newest verification per (key, backend).
        var cells: [String: [String: JSONValue]] = [:]
        var backends = Set<String>()
        var names: [String: String] = [:]
        for p in d.points { names[p.run.key] = p.run.name + " " + p.run.configHash.prefix(8) }
        var causes: [String: [String]] = [:]
        for v in d.verifications {
            let key = v["key"]?.stringValue ?? ""
            for b in v["backends"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
                backends.insert(b)
                cells[key, default: [:]][b] = v
            }
            let c = v["details"]?["causes"]?.arrayValue?.compactMap(\.stringValue) ?? []
            if !c.isEmpty { causes[key] = c }
        }
        let cols = backends.sorted()
        h.raw("<table class=\"matrix\"><thead><tr><th>config</th>")
        for b in cols { h.el("th", b) }
        h.raw("<th>perturbation causes</th></tr></thead><tbody>")
        for key in cells.keys.sorted() {
            h.raw("<tr><td>")
            h.el("code", names[key] ?? String(key.prefix(12)))
            h.raw("</td>")
            for b in cols {
                guard let v = cells[key]?[b] else {
                    h.raw("<td>–</td>")
                    continue
                }
                let verdict = v["verdict"]?.stringValue ?? "?"
                let outs = v["details"]?["outputs"]?.arrayValue ?? []
                let maxAbs = outs.compactMap { $0["max_abs"]?.numberValue }.max() ?? 0
                let maxRel = outs.compactMap { $0["max_rel"]?.numberValue }.max() ?? 0
                let maxUlp = outs.compactMap { $0["max_ulps"]?.numberValue }.max() ?? 0
                let first = outs.first { $0["verdict"]?.stringValue != "IDENTICAL" }
                let field = first.flatMap { o in
                    o["differences"]?.arrayValue?.first?["location"]?.stringValue.map { "\(o["name"]?.stringValue ?? ""): \($0)" }
                }
                let symbol = ["IDENTICAL": "=", "EQUIVALENT": "≈", "DIVERGENT": "≠"][verdict] ?? "!"
                h.el("td", ["class": "v-" + verdict.lowercased()]) { h in
                    h.el("strong", symbol + " " + verdict)
                    h.raw("<br>")
                    h.el("small") { h in
                        h.text("abs \(SVG.num(maxAbs)) · rel \(SVG.num(maxRel)) · ulp \(SVG.num(maxUlp))")
                        if let field {
                            h.raw("<br>")
                            h.text("first: " + field)
                        }
                    }
                }
            }
            h.el("td", (causes[key] ?? []).joined(separator: ", "))
            h.raw("</tr>")
        }
        h.raw("</tbody></table></section>\n")
    }

    // MARK: provenance

    static func provenance(_ d: ReportData, _ h: inout HTML) {
        h.raw("<section id=\"provenance\"><h2>Provenance</h2>")
        if aggregated(d) {
            var byCommit: [String: Int] = [:]
            for p in d.points { byCommit[p.run.commit.prefix(12) + (p.run.dirty ? " (dirty)" : ""), default: 0] += 1 }
            h.raw("<table><thead><tr><th>commit</th><th>runs</th></tr></thead><tbody>")
            for (c, n) in byCommit.sorted(by: { $0.key < $1.key }) {
                h.el("tr") { h in
                    h.el("td") { $0.el("code", c) }
                    h.el("td", ["class": "n"], String(n))
                }
            }
            return h.raw("</tbody></table></section>\n")
        }
        let edges = Dictionary(grouping: d.lineage, by: \.to)
        for p in d.points {
            let r = p.run
            h.open("details", ["id": "run-" + r.runId])
            h.el("summary") { h in
                h.el("code", r.runId)
                h.text(" " + r.name + " ")
                statusCell(r.status, &h)
            }
            h.raw("<dl>")
            let rows: [(String, String)] = [
                ("commit", r.commit + (r.dirty ? " (dirty: " + r.dirtyFiles.joined(separator: ", ") + ")" : "")),
                ("key", r.key), ("config hash", r.configHash), ("seed", String(r.seed)),
                ("rtol / atol", text(r.solver["rtol"]) + " / " + text(r.solver["atol"])),
                ("backend", r.backend + " on " + r.host + (r.jobId.map { ", job " + $0 } ?? "")),
                ("interpreter", r.interpreter.map { $0.path + " " + $0.version } ?? "–"),
                ("attestation", (d.attestations[r.runId] ?? 0) > 0 ? "\(d.attestations[r.runId] ?? 0) signed statement(s)" : "none"),
            ]
            for (k, v) in rows {
                h.el("dt", k)
                h.el("dd", v)
            }
            for i in r.inputs {
                h.raw("<dt>input</dt><dd>")
                h.el("code", i.path)
                h.text(" " + i.sha256.prefix(12))
                h.raw("</dd>")
            }
            h.raw("</dl>")
            if let parents = edges[r.runId], !parents.isEmpty { lineageSVG(r, parents, &h) }
            h.raw("</details>")
        }
        h.raw("</section>\n")
    }

    static func lineageSVG(_ r: RunRecord, _ parents: [Lineage.Edge], _ h: inout HTML) {
        let hgt = Double(parents.count) * 30 + 20
        h.open("svg", ["class": "chart", "viewBox": "0 0 520 \(Int(hgt))", "role": "img", "aria-labelledby": "ln-" + r.runId])
        h.el("title", ["id": "ln-" + r.runId], "Lineage of \(r.runId): \(parents.map { $0.from + " via " + $0.input }.joined(separator: "; "))")
        let cy = hgt / 2
        h.void("rect", ["x": "330", "y": SVG.c(cy - 12), "width": "180", "height": "24", "fill": "#fff", "stroke": "#333"])
        h.el("text", ["x": "420", "y": SVG.c(cy + 4), "text-anchor": "middle"], r.runId)
        for (i, e) in parents.enumerated() {
            let y = 10 + Double(i) * 30 + 12
            h.void("rect", ["x": "10", "y": SVG.c(y - 12), "width": "180", "height": "24", "fill": "#eef", "stroke": "#333"])
            h.el("text", ["x": "100", "y": SVG.c(y + 4), "text-anchor": "middle"], e.from)
            h.void("line", ["x1": "190", "y1": SVG.c(y), "x2": "330", "y2": SVG.c(cy), "stroke": "#333", "marker-end": "url(#arrow)"])
            h.el("text", ["x": "200", "y": SVG.c(y - 4), "class": "small"], e.input)
        }
        h.raw("</svg>")
    }
}
