import CReproSys

/// Process-wide memory settings for the command-line tool.
package enum Memory {
    /// Buffers of 256 KB and more are mapped and given back to the system when freed. glibc
    /// otherwise raises that threshold each time such a buffer is freed, and a sweep's freed
    /// blocks of points then stay resident for the rest of it (bench/targets.sh reports a
    /// 10,000-point sweep's peak memory).
    package static func returnLargeBuffers() {
        #if os(Linux)
        repro_fixed_mmap_threshold(256 << 10)
        #endif
    }
}
