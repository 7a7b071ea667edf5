import Foundation

/// Wall-clock and monotonic time without DateFormatter (cheap enough for every command).
public enum Clock {
    /// Seconds since the epoch, with sub-second precision.
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// A monotonic reading in seconds, for durations.
    package static func monotonic() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// `2026-11-24T06:32:40.123Z`
    package static func iso8601(_ t: Double) -> String {
        var secs = time_t(t.rounded(.down))
        let ms = Int((t - Double(secs)) * 1000)
        var tmv = tm()
        gmtime_r(&secs, &tmv)
        func pad(_ v: Int32, _ w: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        return "\(pad(tmv.tm_year + 1900, 4))-\(pad(tmv.tm_mon + 1, 2))-\(pad(tmv.tm_mday, 2))T"
            + "\(pad(tmv.tm_hour, 2)):\(pad(tmv.tm_min, 2)):\(pad(tmv.tm_sec, 2)).\(pad(Int32(ms), 3))Z"
    }

    /// The first instant of the calendar month (UTC) containing `t`.
    package static func monthStart(_ t: Double) -> Double {
        var secs = time_t(t)
        var tmv = tm()
        gmtime_r(&secs, &tmv)
        tmv.tm_mday = 1
        tmv.tm_hour = 0
        tmv.tm_min = 0
        tmv.tm_sec = 0
        return Double(timegm(&tmv))
    }

    /// Parses what `iso8601` writes back into epoch seconds.
    package static func parseISO8601(_ s: String) -> Double? {
        let u = Array(s.utf8)
        guard u.count >= 20 else { return nil }
        func num(_ a: Int, _ b: Int) -> Int32? { Int32(String(decoding: u[a..<b], as: UTF8.self)) }
        guard let y = num(0, 4), let mo = num(5, 7), let d = num(8, 10), let h = num(11, 13), let mi = num(14, 16),
            let se = num(17, 19)
        else { return nil }
        var tmv = tm()
        tmv.tm_year = y - 1900
        tmv.tm_mon = mo - 1
        tmv.tm_mday = d
        tmv.tm_hour = h
        tmv.tm_min = mi
        tmv.tm_sec = se
        let base = Double(timegm(&tmv))
        var frac = 0.0
        if u.count > 20, u[19] == UInt8(ascii: "."), let f = Double("0." + String(decoding: u[20..<(u.count - 1)], as: UTF8.self)) {
            frac = f
        }
        return base + frac
    }
}
