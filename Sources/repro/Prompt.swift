import Foundation
import ReproKit

/// Questions to a person at a terminal (stdin and stderr both a TTY); nil otherwise, so the
/// caller's configured default decides.
enum Prompt {
    static let choose: Router.Ask = { question, choices, defaultChoice in
        guard isatty(0) == 1, isatty(2) == 1 else { return nil }
        for _ in 0..<3 {
            FileHandle.standardError.write(Data("\(question) [\(choices.joined(separator: "/"))] (default \(defaultChoice)): ".utf8))
            guard let line = readLine() else { return nil }
            let answer = line.trimmingCharacters(in: .whitespaces).lowercased()
            if answer.isEmpty { return defaultChoice }
            if let exact = choices.first(where: { $0.lowercased() == answer }) { return exact }
            let matches = choices.filter { $0.lowercased().hasPrefix(answer) }
            if matches.count == 1 { return matches[0] }
            FileHandle.standardError.write(Data("answer one of: \(choices.joined(separator: ", "))\n".utf8))
        }
        return nil
    }
}
