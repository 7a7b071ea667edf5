// What the record decoder's files refer to but the fuzz build does not compile (the store, git).
struct Store {
    static func makeDirectory(_ path: String) throws(StoreError) {}
}
public struct CodeIdentity: Sendable {
    public var keyJSON: JSONValue { .null }
}
