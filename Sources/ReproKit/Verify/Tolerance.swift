import Foundation

/// How close two numbers must be to count as equal: within `atol + rtol·|b|`, or within `ulps`
/// units in the last place. All zero (the default) means only identical passes.
public struct Tolerance: Sendable, Equatable {
    public var rtol: Double
    public var atol: Double
    public var ulps: UInt64

    public init(rtol: Double = 0, atol: Double = 0, ulps: UInt64 = 0) {
        self.rtol = rtol
        self.atol = atol
        self.ulps = ulps
    }

    public static let exact = Tolerance()

    public var isExact: Bool { rtol == 0 && atol == 0 && ulps == 0 }

    public func accepts(_ a: Double, _ b: Double) -> Bool {
        if a == b { return true }
        guard a.isFinite, b.isFinite else { return false }
        if abs(a - b) <= atol + rtol * abs(b) && (atol > 0 || rtol > 0) { return true }
        return ulps > 0 && Tolerance.ulpDistance(a, b) <= ulps
    }

    /// How many representable doubles lie between a and b (0 when equal).
    public static func ulpDistance(_ a: Double, _ b: Double) -> UInt64 {
        guard a.isFinite, b.isFinite else { return UInt64.max }
        if a == b { return 0 }
        // Map the sign-magnitude bit patterns onto a monotonic integer line.
        func ordered(_ x: Double) -> Int64 {
            let bits = Int64(bitPattern: x.bitPattern)
            return bits < 0 ? Int64.min - bits : bits
        }
        let (x, y) = (ordered(a), ordered(b))
        return x > y ? UInt64(bitPattern: x &- y) : UInt64(bitPattern: y &- x)
    }
}
