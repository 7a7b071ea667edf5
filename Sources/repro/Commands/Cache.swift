import ArgumentParser

struct Cache: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cache",
        abstract: "Inspect and maintain cache entries: status, refresh, invalidate, gc.",
        subcommands: [CacheStatusCommand.self, CacheRefresh.self, CacheInvalidate.self, CacheGC.self])
}
