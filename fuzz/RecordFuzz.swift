// libFuzzer entry point for the run-record decoder and its self-check (what a pulled manifest
// carries): built by scripts/fuzz.sh record with the decoder's own source files (not part of the
// package build). Any crash or hang is a bug, and so is a record that passes the check while
// naming an output outside its folder.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRecord(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let json = try? JSONParser.parse(bytes), let record = try? RunRecord(json: json, source: "fuzz") else { return 0 }
    let problems = RecordIntegrity.problems(record, now: 1_800_000_000)
    guard problems.isEmpty else { return 0 }
    for o in record.outputs {
        let parts = o.name.split(separator: "/", omittingEmptySubsequences: false)
        if o.name.hasPrefix("/") || parts.contains("..") || parts.contains("") || o.size < 0 {
            fatalError("a record passed its check with output '\(o.name)' of size \(o.size)")
        }
    }
    if !RunId.isValid(record.runId) || record.runId.contains("/") { fatalError("a record passed with run id '\(record.runId)'") }
    // What passes must survive its own JSON and pass again.
    guard let again = try? RunRecord(json: record.json, source: "again"), RecordIntegrity.problems(again, now: 1_800_000_000).isEmpty else {
        fatalError("a record that passed does not pass after a JSON round trip")
    }
    return 0
}
