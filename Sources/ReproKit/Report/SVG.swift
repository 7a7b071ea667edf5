import Foundation

/// Small, deterministic SVG and HTML helpers for the report: escaping, number text, scales,
/// and the marker shapes and patterns that keep plots readable in black and white.
enum SVG {
    /// Short, locale-free number text (6 significant digits).
    static func num(_ v: Double) -> String {
        guard v.isFinite else { return "–" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return String(format: "%.6g", v)
    }

    /// A coordinate with two decimals (keeps files small and identical across runs).
    static func c(_ v: Double) -> String { String(format: "%.2f", v.isFinite ? v : 0) }

    /// Maps [lo, hi] onto [a, b]; a flat domain maps to the middle.
    struct Scale {
        var lo: Double, hi: Double, a: Double, b: Double
        init(_ values: [Double], to a: Double, _ b: Double) {
            let finite = values.filter(\.isFinite)
            lo = finite.min() ?? 0
            hi = finite.max() ?? 1
            if lo == hi {
                lo -= 0.5
                hi += 0.5
            }
            self.a = a
            self.b = b
        }
        func callAsFunction(_ v: Double) -> Double { a + (v - lo) / (hi - lo) * (b - a) }
        /// About `count` round tick values inside the domain.
        func ticks(_ count: Int = 4) -> [Double] {
            let span = hi - lo
            let raw = span / Double(max(1, count))
            let mag = pow(10, (log10(raw)).rounded(.down))
            let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? raw
            var t = (lo / step).rounded(.up) * step
            var out: [Double] = []
            while t <= hi + step * 1e-9 && out.count < 12 {
                out.append(abs(t) < step * 1e-9 ? 0 : t)
                t += step
            }
            return out
        }
    }

    /// Up to eight series told apart by colour and by shape (for black-and-white print).
    static let colours = ["#1b6ca8", "#d1495b", "#2e8b57", "#e09f3e", "#6a4c93", "#3d405b", "#8c564b", "#17becf"]
    static let shapes = ["circle", "square", "triangle", "diamond", "cross", "circle-open", "square-open", "triangle-open"]
    static let patterns = ["solid", "hatch", "dots", "cross-hatch", "solid", "hatch", "dots", "cross-hatch"]

    /// A marker of series `i` centred at (x, y).
    static func marker(_ i: Int, x: Double, y: Double, r: Double = 3.5, title: String, _ h: inout HTML) {
        let col = colours[i % colours.count]
        let (cx, cy) = (c(x), c(y))
        let t: (inout HTML) -> Void = { $0.el("title", title) }
        switch shapes[i % shapes.count] {
        case "square": h.el("rect", ["x": c(x - r), "y": c(y - r), "width": c(2 * r), "height": c(2 * r), "fill": col], t)
        case "triangle": h.el("polygon", ["points": "\(cx),\(c(y - r)) \(c(x + r)),\(c(y + r)) \(c(x - r)),\(c(y + r))", "fill": col], t)
        case "diamond": h.el("polygon", ["points": "\(cx),\(c(y - r)) \(c(x + r)),\(cy) \(cx),\(c(y + r)) \(c(x - r)),\(cy)", "fill": col], t)
        case "cross":
            h.el("path", ["d": "M\(c(x - r)) \(c(y - r))L\(c(x + r)) \(c(y + r))M\(c(x + r)) \(c(y - r))L\(c(x - r)) \(c(y + r))", "stroke": col, "stroke-width": "2"], t)
        case "circle-open": h.el("circle", ["cx": cx, "cy": cy, "r": c(r), "fill": "none", "stroke": col, "stroke-width": "1.5"], t)
        case "square-open":
            h.el("rect", ["x": c(x - r), "y": c(y - r), "width": c(2 * r), "height": c(2 * r), "fill": "none", "stroke": col, "stroke-width": "1.5"], t)
        case "triangle-open":
            h.el("polygon", ["points": "\(cx),\(c(y - r)) \(c(x + r)),\(c(y + r)) \(c(x - r)),\(c(y + r))", "fill": "none", "stroke": col, "stroke-width": "1.5"], t)
        default: h.el("circle", ["cx": cx, "cy": cy, "r": c(r), "fill": col], t)
        }
    }

    /// Fill for series `i`: a colour, with a hatch or dot pattern on every other series.
    static func fill(_ i: Int) -> String {
        switch patterns[i % patterns.count] {
        case "solid": return colours[i % colours.count]
        default: return "url(#pat\(i % colours.count))"
        }
    }

    /// The pattern definitions `fill` refers to (once per page).
    static func patternDefs(_ h: inout HTML) {
        h.raw("<svg width=\"0\" height=\"0\" class=\"defs\" aria-hidden=\"true\"><defs>")
        for (i, col) in colours.enumerated() {
            h.open("pattern", ["id": "pat\(i)", "width": "6", "height": "6", "patternUnits": "userSpaceOnUse"])
            switch patterns[i] {
            case "hatch":
                h.void("rect", ["width": "6", "height": "6", "fill": col, "opacity": "0.35"])
                h.void("path", ["d": "M0 6L6 0", "stroke": col, "stroke-width": "1.5"])
            case "dots":
                h.void("rect", ["width": "6", "height": "6", "fill": col, "opacity": "0.35"])
                h.void("circle", ["cx": "3", "cy": "3", "r": "1.5", "fill": col])
            case "cross-hatch":
                h.void("rect", ["width": "6", "height": "6", "fill": col, "opacity": "0.35"])
                h.void("path", ["d": "M0 6L6 0M0 0L6 6", "stroke": col, "stroke-width": "1"])
            default: h.void("rect", ["width": "6", "height": "6", "fill": col])
            }
            h.close("pattern")
        }
        h.raw("<marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\">")
        h.raw("<path d=\"M0 0L10 5L0 10z\" fill=\"#333\"/></marker></defs></svg>")
    }

    /// Axis lines, ticks and labels for a plot area.
    static func axes(x: Scale, y: Scale, left: Double, top: Double, right: Double, bottom: Double, xLabel: String, yLabel: String, _ h: inout HTML) {
        h.raw("<g class=\"axis\">")
        h.void("line", ["x1": c(left), "y1": c(bottom), "x2": c(right), "y2": c(bottom)])
        h.void("line", ["x1": c(left), "y1": c(top), "x2": c(left), "y2": c(bottom)])
        for t in x.ticks() { h.el("text", ["x": c(x(t)), "y": c(bottom + 14), "text-anchor": "middle"], num(t)) }
        for t in y.ticks() { h.el("text", ["x": c(left - 4), "y": c(y(t) + 4), "text-anchor": "end"], num(t)) }
        h.el("text", ["x": c((left + right) / 2), "y": c(bottom + 30), "text-anchor": "middle", "class": "label"], xLabel)
        let mid = c((top + bottom) / 2)
        h.el("text", ["x": "12", "y": mid, "text-anchor": "middle", "class": "label", "transform": "rotate(-90 12 \(mid))"], yLabel)
        h.raw("</g>")
    }
}
