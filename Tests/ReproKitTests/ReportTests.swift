import Foundation
import XCTest

@testable import ReproKit
@testable import ReproSupport
@testable import ReproStore

/// `repro report`: one self-contained, deterministic HTML file, checked in a real browser.
final class ReportTests: XCTestCase {
    /// The example sweep (fixtures/dna-repair) in a repository of its own, run, and verified.
    func exampleRepo() throws -> TempRepo {
        let repo = try TempRepo()
        for f in ["sim.py", "sim.yaml", "sweep.yaml"] {
            repo.write("fixtures/dna-repair/" + f, (try? String(contentsOfFile: TestPaths.fixtures + "/dna-repair/" + f, encoding: .utf8)) ?? "")
        }
        repo.commitAll("example")
        let sweep = repro(["sweep", "fixtures/dna-repair/sweep.yaml"], cwd: repo.path)
        XCTAssertEqual(sweep.code, 0, sweep.err)
        let verify = repro(["verify", "fixtures/dna-repair/sim.yaml", "--backends", "local", "--runs", "2"], cwd: repo.path)
        XCTAssertEqual(verify.code, 0, verify.err)
        return repo
    }

    func testTheReportIsSelfContainedDeterministicAndHasEverySection() throws {
        let repo = try exampleRepo()
        let args = ["report", "fixtures/dna-repair/sweep.yaml", "fixtures/dna-repair/sim.yaml"]
        let a = repro(args + ["--out", "a.html"], cwd: repo.path)
        XCTAssertEqual(a.code, 0, a.err)
        XCTAssertEqual(repro(args + ["--out", "b.html"], cwd: repo.path).code, 0)
        let html = try XCTUnwrap(repo.read("a.html"))
        XCTAssertEqual(html, repo.read("b.html"), "the same store gives the same bytes")
        for id in ["summary", "results", "timeline", "verification", "provenance"] {
            XCTAssertTrue(html.contains("<section id=\"\(id)\">"), "missing section \(id)")
        }
        // No server, no network, no CDN: nothing is loaded from anywhere.
        for pattern in ["src=\"http", "href=\"http", "<link", "@import", "src=\"//"] {
            XCTAssertFalse(html.contains(pattern), "fetches something: \(pattern)")
        }
        // The swept params and the spec's declared outputs are the table's columns.
        for col in ["dose_gy", "population_size", "t_end_h", "result.json:$.surviving_fraction"] {
            XCTAssertTrue(html.contains("<th>\(col)</th>"), col)
        }
        XCTAssertTrue(html.contains("IDENTICAL"), "the verification matrix shows the verdict")
        // Readable without colour: every plot has a text alternative.
        let svgs = html.components(separatedBy: "<svg class=\"chart").count - 1
        let titled = html.components(separatedBy: "role=\"img\" aria-labelledby=").count - 1
        XCTAssertGreaterThanOrEqual(svgs, 8)
        XCTAssertEqual(svgs, titled)
    }

    /// Loaded in headless Chromium: the script runs (it marks the body), no console errors,
    /// the plots are there; the screenshot is kept in .build/test-artifacts/ for people to look at.
    func testTheReportRendersInHeadlessChromium() throws {
        let chromium = try requireChromium()
        let repo = try exampleRepo()
        let file = repo.path + "/report.html"
        XCTAssertEqual(repro(["report", "fixtures/dna-repair/sweep.yaml", "fixtures/dna-repair/sim.yaml", "--out", file], cwd: repo.path).code, 0)
        let flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]
        let dom = sh(["timeout", "90", chromium] + flags + ["--dump-dom", "file://" + file], cwd: repo.path)
        XCTAssertEqual(dom.code, 0, dom.err.suffix(2000).description)
        XCTAssertTrue(dom.out.contains("data-report-ready=\"1\""), "the inline script did not run to the end")
        XCTAssertGreaterThanOrEqual(dom.out.components(separatedBy: "<svg").count - 1, 8)
        XCTAssertGreaterThan(dom.out.components(separatedBy: "<circle").count, 16)
        let consoleErrors = dom.err.split(separator: "\n").filter { $0.contains("CONSOLE") && ($0.contains("Uncaught") || $0.contains(":ERROR:")) }
        XCTAssertEqual(consoleErrors, [], "console errors")
        let artifacts = TestPaths.root + "/.build/test-artifacts"
        try FileManager.default.createDirectory(atPath: artifacts, withIntermediateDirectories: true)
        let shot = artifacts + "/report.png"
        unlink(shot)
        let r = sh(["timeout", "90", chromium] + flags + ["--window-size=1200,4200", "--screenshot=" + shot, "file://" + file], cwd: repo.path)
        XCTAssertEqual(r.code, 0, r.err.suffix(2000).description)
        var st = stat()
        XCTAssertEqual(stat(shot, &st), 0, "no screenshot")
        XCTAssertGreaterThan(st.st_size, 50_000, "a blank page compresses to almost nothing")
    }

    /// Above 10,000 runs the per-run sections become aggregates and the file stays small.
    /// (Built from records in memory: this is about the renderer; `bench/run.sh` times a real
    /// 10,000-point store.)
    func testTenThousandRunsAreAggregatedAndStaySmall() throws {
        let repo = try TempRepo.seeded()
        XCTAssertEqual(repro(["run", "sim.yaml"], cwd: repo.path).code, 0)
        let store = try Store(root: repo.path + "/.repro")
        let base = try XCTUnwrap(try store.recentRuns(limit: 1).first)
        var points: [ReportData.Point] = []
        for i in 0..<12_000 {
            var r = base
            r.runId = HostInfo.newRunId(at: 1_790_000_000 + Double(i))
            r.startedAt = Clock.iso8601(1_790_000_000 + Double(i))
            r.finishedAt = Clock.iso8601(1_790_000_000 + Double(i) + 1.5)
            r.backend = i % 3 == 0 ? "slurm" : "local"
            points.append(.init(run: r, params: ["n": .int(Int64(i % 50)), "rate": .double(Double(i % 7) / 10)], ys: ["result.json:$.seed": Double(i % 11)]))
        }
        let data = ReportData(
            title: "big", points: points, varied: ["n", "rate"], ys: ["result.json:$.seed"], hitsPerDay: [:], attestations: [:],
            verifications: [], lineage: [])
        let html = ReportHTML.render(data)
        XCTAssertLessThan(html.utf8.count, 20 << 20)
        XCTAssertTrue(html.contains("aggregated by <code>n</code>"))
        XCTAssertFalse(html.contains("<details id=\"run-"), "no per-run provenance above the limit")
    }
}
