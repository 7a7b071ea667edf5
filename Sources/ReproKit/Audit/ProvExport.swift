import Foundation
import ReproSupport
import ReproStore

/// A run as W3C PROV-JSON: the run is an activity; its config, code trees, inputs and outputs
/// are entities (named by content hash); the user and host are agents; lineage appears as
/// the parent runs that generated this run's inputs.
public enum ProvExport {
    public static func document(run r: RunRecord, store: Store) throws -> JSONValue {
        var entities: [String: JSONValue] = [:]
        var activities: [String: JSONValue] = [:]
        var agents: [String: JSONValue] = [:]
        var used: [String: JSONValue] = [:]
        var generated: [String: JSONValue] = [:]
        var associated: [String: JSONValue] = [:]
        var derived: [String: JSONValue] = [:]
        var delegations: [String: JSONValue] = [:]
        var counter = 0
        func id(_ prefix: String) -> String {
            counter += 1
            return "_:\(prefix)\(counter)"
        }

        let activity = "run:" + r.runId
        var act: [String: JSONValue] = [
            "prov:startTime": .string(r.startedAt), "prov:label": .string(r.name), "repro:key": .string(r.key),
            "repro:status": .string(r.status.rawValue), "repro:seed": .string(String(r.seed)),
            "repro:backend": .string(r.backend), "repro:commit": .string(r.commit),
            "repro:solver": .string(r.solver.canonical), "repro:command": .string(r.command.joined(separator: " ")),
        ]
        if let end = r.finishedAt { act["prov:endTime"] = .string(end) }
        if let exe = r.executableSha256 { act["repro:executableSha256"] = .string(exe) }
        activities[activity] = .object(act)

        let config = "repro:config-" + r.configHash
        entities[config] = [
            "prov:type": "repro:Config", "repro:configHash": .string(r.configHash), "repro:canonical": .string(r.config.canonical),
        ]
        used[id("u")] = ["prov:activity": .string(activity), "prov:entity": .string(config)]
        for e in r.code.paths {
            let path = e.path, oid = e.id
            guard !oid.isEmpty else { continue }
            let ent = "git:" + oid
            entities[ent] = [
                "prov:type": "repro:CodeTree", "prov:label": .string(path), "repro:gitObject": .string(e.kind),
                "repro:commit": .string(r.commit),
            ]
            used[id("u")] = ["prov:activity": .string(activity), "prov:entity": .string(ent)]
        }
        var inputEntities: [String] = []
        let parents = try Lineage(store: store).parents(of: r)
        for input in r.inputs {
            let ent = "sha256:" + input.sha256
            inputEntities.append(ent)
            entities[ent] = [
                "prov:type": "repro:Input", "prov:label": .string(input.path), "repro:sha256": .string(input.sha256),
                "repro:size": .string(String(input.size)),
            ]
            used[id("u")] = ["prov:activity": .string(activity), "prov:entity": .string(ent)]
            if let edge = parents.first(where: { $0.sha256 == input.sha256 }), let parent = try? store.run(id: edge.from) {
                let parentActivity = "run:" + parent.runId
                activities[parentActivity] = [
                    "prov:startTime": .string(parent.startedAt), "prov:label": .string(parent.name), "repro:key": .string(parent.key),
                    "repro:status": .string(parent.status.rawValue),
                ]
                generated[id("g")] = ["prov:entity": .string(ent), "prov:activity": .string(parentActivity)]
            }
        }
        for o in r.outputs {
            let ent = "sha256:" + o.sha256
            entities[ent] = [
                "prov:type": "repro:Output", "prov:label": .string(o.name), "repro:sha256": .string(o.sha256),
                "repro:size": .string(String(o.size)),
            ]
            var gen: [String: JSONValue] = ["prov:entity": .string(ent), "prov:activity": .string(activity)]
            if let end = r.finishedAt { gen["prov:time"] = .string(end) }
            generated[id("g")] = .object(gen)
            for input in inputEntities where input != ent {
                derived[id("d")] = [
                    "prov:generatedEntity": .string(ent), "prov:usedEntity": .string(input), "prov:activity": .string(activity),
                ]
            }
        }
        let user = "user:" + (r.user.isEmpty ? "unknown" : r.user)
        let host = "host:" + r.host
        agents[user] = ["prov:type": "prov:Person", "prov:label": .string(r.user)]
        agents[host] = ["prov:type": "prov:SoftwareAgent", "prov:label": .string("\(r.host) (\(r.os)), repro \(r.reproVersion)")]
        associated[id("a")] = ["prov:activity": .string(activity), "prov:agent": .string(user)]
        associated[id("a")] = ["prov:activity": .string(activity), "prov:agent": .string(host)]
        // A run that ran elsewhere was started by its submitter, on the submitter's behalf.
        if let who = r.submitter?.user, let from = r.submitter?.host {
            let submitter = "user:" + (who.isEmpty ? "unknown" : who)
            agents[submitter] = ["prov:type": "prov:Person", "prov:label": .string(who)]
            agents["host:" + from] = agents["host:" + from] ?? ["prov:type": "prov:SoftwareAgent", "prov:label": .string(from)]
            associated[id("a")] = [
                "prov:activity": .string(activity), "prov:agent": .string(submitter), "prov:role": "repro:submitter",
            ]
            if submitter != user {
                delegations[id("del")] = [
                    "prov:delegate": .string(user), "prov:responsible": .string(submitter), "prov:activity": .string(activity),
                ]
            }
        }

        var doc: [String: JSONValue] = [
            "prefix": [
                "repro": "https://repro.invalid/ns#", "run": "urn:repro:run:", "sha256": "urn:sha256:", "git": "urn:git:",
                "user": "urn:repro:user:", "host": "urn:repro:host:",
            ],
            "entity": .object(entities), "activity": .object(activities), "agent": .object(agents),
            "used": .object(used), "wasGeneratedBy": .object(generated), "wasAssociatedWith": .object(associated),
        ]
        if !derived.isEmpty { doc["wasDerivedFrom"] = .object(derived) }
        if !delegations.isEmpty { doc["actedOnBehalfOf"] = .object(delegations) }
        return .object(doc)
    }
}
