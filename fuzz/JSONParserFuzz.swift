// libFuzzer entry point for JSONParser: built by scripts/fuzz.sh together with the parser's
// own source files (not part of the package build). Any crash, hang or failed round trip is a bug.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSONParser(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let value = try? JSONParser.parse(bytes) else { return 0 }
    // What parses must print canonically and parse back to the same value.
    guard let again = try? JSONParser.parse(value.canonical), again == value else {
        fatalError("round trip failed for \(value.canonical)")
    }
    return 0
}
