import Foundation
import XCTest

@testable import ReproKit
@testable import ReproSupport

/// A contract test server from fixtures/contract (a Python script that writes its port to a
/// file once it listens), started for one test and stopped when released.
final class ContractServer {
    let process: Process
    let port: Int

    init(script: String, arguments: [String], whatIsMissing: String) throws {
        let portFile = NSTemporaryDirectory() + "contract-port-" + UUID().uuidString
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", TestPaths.fixtures + "/contract/" + script, "--port-file", portFile, "--repro", TestPaths.repro] + arguments
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, p.isRunning, !FileManager.default.fileExists(atPath: portFile) { usleep(50_000) }
        guard let text = try? String(contentsOfFile: portFile, encoding: .utf8), let port = Int(text) else {
            p.terminate()
            throw missingTestEnvironment("the \(script) contract server did not start (\(whatIsMissing): scripts/deps.sh --test)")
        }
        unlink(portFile)
        self.port = port
    }

    deinit {
        process.terminate()
        process.waitUntilExit()
    }

    /// What the server's /_test/NAME answers: the list under NAME.
    func testList(_ name: String) -> [JSONValue] {
        parseJSON(sh(["curl", "-s", "http://127.0.0.1:\(port)/_test/\(name)"], cwd: "/").out)[name]?.arrayValue ?? []
    }
}
