// libFuzzer entry point for Tar.extract: built by scripts/fuzz.sh tar together with Tar's own
// source files (not part of the package build). The input is written as an archive and extracted
// into a fresh folder beside a sentinel file; any crash or hang is a bug, and so is any write
// outside the extraction folder (the sentinel changed, or an entry outside the folder).
import Foundation

private let base: String = {
    let dir = NSTemporaryDirectory() + "tar-fuzz-\(getpid())"
    mkdir(dir, 0o755)
    return dir
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTar(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let archive = base + "/in.tar"
    let root = base + "/root"
    let sentinel = base + "/sentinel"
    FileIO.removeTree(root)
    mkdir(root, 0o755)
    try? FileIO.writeNew(Array(UnsafeBufferPointer(start: data, count: size)), to: archive)
    try? FileIO.writeNew(Array("keep".utf8), to: sentinel)
    _ = try? Tar.extract(archive, into: root, fileLimit: 1000)
    let names = (FileIO.directoryNames(base) ?? []).sorted()
    guard names == ["in.tar", "root", "sentinel"], (try? FileIO.readAll(sentinel)) == Array("keep".utf8) else {
        fatalError("extraction wrote outside its folder: \(names)")
    }
    return 0
}
