import Foundation
import ReproSupport
import ReproRemote

/// Polling without describing every child: a 10,000-child array described child by child is
/// 100 DescribeJobs calls a poll. The parent's `arrayProperties.statusSummary` (one
/// DescribeJobs call for up to 100 parents) says how many children are in each state; only when
/// those counts changed does ListJobs (`arrayJobId` and a `jobStatus`, 1,000 a page) say which
/// children are RUNNING, and which SUCCEEDED or FAILED when their count changed. Children in
/// no list are still waiting (SUBMITTED, PENDING, RUNNABLE, STARTING).
extension AWSBatchBackend {
    /// What Batch says of one job (DescribeJobs) or one child (ListJobs' summary).
    struct Job {
        var id: String
        var status: String
        var reason: String?
        var exitCode: Int32?
        /// An array parent's children by state.
        var summary: [String: Int] = [:]
    }

    /// One array's children as last listed, and the counts they were listed at.
    struct ArrayChildren {
        var summary: [String: Int] = [:]
        var children: [String: Job] = [:]
    }

    /// ListJobs pages (`maxResults` with `jobStatus`: at most 1,000).
    static let listPage = 1000
    /// The states listed child by child; the rest are counted only.
    static let listedStates = ["RUNNING", "SUCCEEDED", "FAILED"]

    static func parseJob(_ j: JSONValue) -> Job? {
        guard let id = j["jobId"]?.stringValue else { return nil }
        let last = j["attempts"]?.arrayValue?.last
        let code = j["container"]?["exitCode"]?.intValue ?? last?["container"]?["exitCode"]?.intValue
        let reason = j["statusReason"]?.stringValue ?? last?["statusReason"]?.stringValue ?? j["container"]?["reason"]?.stringValue
        var summary: [String: Int] = [:]
        for (k, v) in j["arrayProperties"]?["statusSummary"]?.objectValue ?? [:] { summary[k] = v.intValue.map(Int.init) ?? 0 }
        return Job(
            id: id, status: j["status"]?.stringValue ?? "UNKNOWN", reason: reason, exitCode: code.map { Int32(truncatingIfNeeded: $0) },
            summary: summary)
    }

    static func parseJobs(_ json: JSONValue) -> [String: Job] {
        var out: [String: Job] = [:]
        for j in json["jobs"]?.arrayValue ?? [] { if let job = parseJob(j) { out[job.id] = job } }
        return out
    }

    /// A host that went away under the job (spot reclaim, scale-in): the task was lost, not failed.
    static func hostLost(_ reason: String?) -> Bool {
        guard let r = reason?.lowercased() else { return false }
        return (r.contains("host ec2") && r.contains("terminated")) || r.contains("spot") || r.contains("instance terminated")
    }

    /// Jobs that are not array children by DescribeJobs, 100 ids a call.
    func describe(_ ids: [String]) throws(RemoteError) -> [String: Job] {
        var jobs: [String: Job] = [:]
        var i = 0
        while i < ids.count {
            let part = Array(ids[i..<min(ids.count, i + AWSBatchBackend.describeLimit)])
            i += part.count
            for (k, v) in AWSBatchBackend.parseJobs(try call("describejobs", ["jobs": .array(part.map { .string($0) })])) { jobs[k] = v }
        }
        return jobs
    }

    /// Brings `arrays[parent]` up to date with the parent's summary: lists the states whose
    /// counts moved (RUNNING whenever any count moved: a child that started left another state).
    func refresh(parent: String, summary: [String: Int]) throws(RemoteError) {
        var known = arrays[parent] ?? ArrayChildren()
        guard summary != known.summary else { return }
        for state in AWSBatchBackend.listedStates where state == "RUNNING" || summary[state, default: 0] != known.summary[state, default: 0] {
            known.children = known.children.filter { $0.value.status != state }
            var token: String? = nil
            repeat {
                var body: [String: JSONValue] = [
                    "arrayJobId": .string(parent), "jobStatus": .string(state), "maxResults": .int(Int64(AWSBatchBackend.listPage)),
                ]
                if let token { body["nextToken"] = .string(token) }
                let answer = try call("listjobs", .object(body))
                for j in answer["jobSummaryList"]?.arrayValue ?? [] {
                    if let job = AWSBatchBackend.parseJob(j) { known.children[job.id] = job }
                }
                token = answer["nextToken"]?.stringValue
            } while token != nil
        }
        known.summary = summary
        arrays[parent] = known
    }

    public func poll(_ handles: [TaskHandle]) throws -> [String: TaskStatus] {
        let ids = Set(handles.compactMap(\.jobId))
        let parents = Set(ids.filter { $0.contains(":") }.compactMap { $0.split(separator: ":").first.map(String.init) })
        var jobs = try describe((ids.filter { !$0.contains(":") }.union(parents)).sorted())
        for p in parents.sorted() {
            guard let parent = jobs[p] else { continue }  // Batch no longer knows it: its children neither
            try refresh(parent: p, summary: parent.summary)
            for id in ids where id.hasPrefix(p + ":") {
                // A child in no list is still waiting for capacity.
                jobs[id] = arrays[p]?.children[id] ?? Job(id: id, status: "RUNNABLE")
            }
        }
        var out: [String: TaskStatus] = [:]
        for h in handles {
            let job = h.jobId.flatMap { jobs[$0] }
            switch job?.status ?? "" {
            case "SUBMITTED", "PENDING", "RUNNABLE", "STARTING":
                out[h.runId] = TaskStatus(phase: .queued, schedulerState: job?.status)
                continue
            case "RUNNING":
                out[h.runId] = running(h, state: job?.status)
                continue
            default: break
            }
            if var m = try staging.manifest(runId: h.runId, attempt: h.attempt) {
                grace.found(h.runId)
                m = reconciled(m, schedulerFailed: job?.status == "FAILED", said: "AWS Batch says job \(h.jobId ?? "?") FAILED (\(job?.reason ?? "no reason given"))")
                out[h.runId] = TaskStatus(phase: .done, schedulerState: job?.status ?? "DONE", node: m.host.isEmpty ? nil : m.host, manifest: m)
                continue
            }
            out[h.runId] = withoutManifest(h, job: job)
        }
        return out
    }
}
