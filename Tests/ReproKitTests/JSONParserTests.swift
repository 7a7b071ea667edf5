import Foundation
import XCTest

@testable import ReproKit
@testable import ReproSupport

/// The JSON parser follows RFC 8259 strictly: results come from simulations, and a value that
/// other tools would read differently must never be stored.
final class JSONParserTests: XCTestCase {
    func testRejectsWhatRFC8259Forbids() {
        let bad: [(String, String)] = [
            ("\"\\ud800\\u0041\"", "high surrogate not followed by a low one"),
            ("\"\\udc00\"", "low surrogate"),
            ("\"\\ud800\"", "lone surrogate"),
            ("01", "leading zero"), ("-01", "leading zero"), ("+1", "unexpected character"), (".5", "unexpected character"),
            ("1.", "decimal point"), ("1e", "exponent"), ("1e+", "exponent"), ("-", "digit must follow"), ("--1", "digit must follow"),
            ("\"a\tb\"", "control character"), ("\"a\nb\"", "control character"),
            ("{\"a\": 1, \"a\": 2}", "duplicate key 'a'"),
            ("\"\\u-123\"", "\\u escape"), ("\"\\u+0041\"", "\\u escape"), ("\"\\x41\"", "invalid escape"),
            ("1e400", "64-bit float"), ("[1,]", ""), ("{\"a\":1,}", "string key"), ("NaN", ""), ("Infinity", ""),
        ]
        for (text, problem) in bad {
            XCTAssertThrowsError(try JSONParser.parse(text), text) { error in
                if !problem.isEmpty { XCTAssertTrue("\(error)".contains(problem), "\(text): \(error)") }
            }
        }
        XCTAssertThrowsError(try JSONParser.parse([0x22, 0xFF, 0xFE, 0x22]), "invalid UTF-8")
    }

    func testAcceptsWhatRFC8259Allows() throws {
        XCTAssertEqual(try JSONParser.parse("\"\\ud83d\\ude00\""), .string("😀"))
        XCTAssertEqual(try JSONParser.parse("-0"), .int(0))
        XCTAssertEqual(try JSONParser.parse("0.5e-3"), .double(0.0005))
        XCTAssertEqual(try JSONParser.parse("1E+2"), .double(100))
        XCTAssertEqual(try JSONParser.parse("9223372036854775807"), .int(Int64.max))
        XCTAssertEqual(try JSONParser.parse("9223372036854775808"), .double(9223372036854775808))
        XCTAssertEqual(try JSONParser.parse(" {\"a\": [true, false, null, \"\\u00e9\\/\"]} "),
            .object(["a": .array([.bool(true), .bool(false), .null, .string("é/")])]))
        XCTAssertEqual(try JSONParser.parse([0x22, 0xC3, 0xA9, 0x22]), .string("é"))
    }

    /// Replays the fuzzing corpus (scripts/fuzz.sh adds to it): no input may crash the
    /// parser, and whatever parses must survive a canonical round trip.
    func testFuzzCorpusReplays() throws {
        let dir = TestPaths.root + "/Tests/ReproKitTests/Corpus/json"
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        XCTAssertGreaterThanOrEqual(names.count, 25, "the corpus is missing")
        var parsed = 0
        for name in names {
            let bytes = try FileIO.readAll(dir + "/" + name)
            guard let v = try? JSONParser.parse(bytes) else { continue }
            parsed += 1
            XCTAssertEqual(try JSONParser.parse(v.canonical), v, name)
        }
        XCTAssertGreaterThan(parsed, 3)
    }

    /// A simulation writing a result.json the parser rejects still finishes: the run is
    /// recorded (succeeded, with the file as an output), never left `running`.
    func testIngestSurvivesAResultTheParserRejects() throws {
        let repo = try TempRepo()
        repo.write("sim.sh", "#!/bin/sh\nprintf '{\"x\": \"\\\\ud800\\\\u0041\"}' > \"$REPRO_OUTDIR/result.json\"\n", executable: true)
        repo.write("sim.yaml", "name: surrogate\ncommand: [./sim.sh]\ncode: [sim.sh]\noutputs: [result.json]\n")
        repo.commitAll()
        let out = try runSpec(repo)
        XCTAssertEqual(out.record.status, .succeeded)
        XCTAssertEqual(out.record.outputs.map(\.name), ["result.json"])
        let again = try runSpec(repo)
        XCTAssertEqual(again.cache, .hit)
    }
}
