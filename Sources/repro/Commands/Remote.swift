import ArgumentParser
import Foundation
import ReproKit

struct RemoteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remote",
        abstract: "The team's shared result caches (buckets), kept in .repro.yaml: add, list, remove, gc.",
        subcommands: [RemoteAdd.self, RemoteList.self, RemoteRemove.self, RemoteGC.self])
}

/// Push and pull progress on a terminal; nothing otherwise (the summary says it all).
final class TransferDisplay {
    let tty = isatty(2) == 1
    var shown = false

    func show(_ p: TeamCache.Progress) {
        guard tty, p.total > 0 else { return }
        shown = true
        let width = 24
        let filled = Int(Double(width) * Double(p.done) / Double(p.total))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: max(0, width - filled))
        FileHandle.standardError.write(Data("\r\u{1B}[2K[\(bar)] \(p.phase) \(p.done)/\(p.total) runs, \(Format.bytes(p.bytes))".utf8))
    }

    func end() {
        if shown { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
