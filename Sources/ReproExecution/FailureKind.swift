import Foundation
import ReproSupport
import ReproRemote

/// What kind of backend failure an error is: the one distinction every backend's fallback and
/// retry decisions rest on. An outage may pass (trying again, or running elsewhere, is right);
/// a configuration error will not (an unknown queue, refused credentials, a request the
/// service rejects): running elsewhere would hide it, so it is reported with its fix.
public enum FailureKind: String, Sendable {
    /// The service did not answer, was busy, or lacked capacity.
    case outage
    /// The request or the setup is wrong; the same request fails again.
    case configuration

    public static func of(_ error: any Error) -> FailureKind {
        switch error {
        case let e as RemoteError: return e.isTransient ? .outage : .configuration
        case let e as BackendError: return e.kind
        default: return .configuration
        }
    }
}

/// A backend refused or failed (sbatch said no, a configured queue is missing), with what
/// kind of failure it is. Exit 6, like the remote services' errors.
public struct BackendError: ReproError {
    package let message: String
    package let kind: FailureKind
    public var exitCode: Int32 { 6 }
    public var description: String { message }

    package init(_ message: String, kind: FailureKind) {
        self.message = message
        self.kind = kind
    }

    /// What sbatch and scontrol print when slurmctld is down or busy (src/common/slurm_errno.c
    /// and the client's connection errors); anything else is the request's own fault.
    package static func kind(ofSlurmMessage text: String) -> FailureKind {
        let t = text.lowercased()
        let outages = [
            "unable to contact slurm controller", "socket timed out", "connection refused", "temporarily unable to accept job",
            "resource temporarily unavailable", "slurmctld is not responding", "transport endpoint is not connected",
            "zero bytes were transmitted or received", "communication connection failure",
        ]
        return outages.contains { t.contains($0) } ? .outage : .configuration
    }
}

/// One thing `repro backends` (and a sweep deciding where to send its points) found wrong
/// with a backend, and whether it is an outage or the setup's fault.
public struct BackendProblem: Sendable, CustomStringConvertible, Equatable {
    public var message: String
    public var kind: FailureKind
    public var description: String { message }

    public init(_ message: String, kind: FailureKind) {
        self.message = message
        self.kind = kind
    }

    /// A problem found by a request: its kind from the error's.
    package init(_ what: String, _ error: RemoteError) {
        self.init(what + ": " + error.message, kind: FailureKind.of(error))
    }
}
