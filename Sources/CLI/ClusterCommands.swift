import ArgumentParser
import Foundation
import NIOHTTP1

/// `vhsm cluster`: the members of a vhsmd cluster on PostgreSQL (issue 17), through the active node's API.
struct ClusterCommands: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "List, remove and re-key the members of a vhsmd cluster (HA on PostgreSQL).",
        discussion: """
            Each node of a cluster keeps its own member entry in the database: the cluster's root key sealed to a \
            key pair only that node's launch can open. These commands call the active node (a standby answers \
            with the active node's address; run the command against it). The token comes from --token or \
            VAULT_TOKEN; remove and rotate-root need sudo on their path (a root token has it).

            \(exitCodes)

            Examples:
              vhsm cluster members https://10.0.0.5:8200 --cacert vhsmd.pem
              vhsm cluster remove https://10.0.0.5:8200 vhsm-3 --cacert vhsmd.pem
              vhsm cluster rotate-root http://127.0.0.1:8200 --json
            """,
        subcommands: [Members.self, Remove.self, RotateRoot.self])

    /// What every cluster command exits with.
    static let exitCodes = """
        Exit codes: 0 done; 1 vhsmd refused (a standby names the active node); 2 usage error; 3 vhsmd could not \
        be reached (no connection, or no answer in time).
        """

    struct Connection: ParsableArguments {
        @OptionGroup var server: ServerOptions
        @Option(help: "The token (default: the VAULT_TOKEN environment variable).") var token: String?
        @Flag(help: "Print the answer's data as JSON for scripts.") var json = false

        func call(_ method: HTTPMethod, _ path: String) async throws -> [String: Any] {
            var client = try server.client()
            guard let token = token ?? ProcessInfo.processInfo.environment["VAULT_TOKEN"], !token.isEmpty else {
                throw CLIError.usage("give --token TOKEN or set VAULT_TOKEN")
            }
            client.token = token
            let answer = try await client.send(method, path, body: [])
            let body = (try? JSONSerialization.jsonObject(with: Data(answer.body))) as? [String: Any] ?? [:]
            switch answer.status {
            case 200: return body["data"] as? [String: Any] ?? [:]
            case 204: return [:]
            case 307:
                throw CLIError.refused(
                    "\(server.url) is a standby: the active node is \(answer.location ?? "unknown"); run the command "
                        + "against it")
            default:
                let errors = (body["errors"] as? [String])?.joined(separator: "; ") ?? "no error message"
                throw CLIError.refused("vhsmd refused \(method) /v1/\(path) (HTTP \(answer.status)): \(errors)")
            }
        }

        func print(json data: [String: Any]) throws {
            Swift.print(
                String(
                    decoding: try JSONSerialization.data(withJSONObject: data, options: [.sortedKeys]),
                    as: UTF8.self))
        }
    }

    struct Members: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the members: node id, chip, measurement, when it joined, root-key generation.",
            discussion: ClusterCommands.exitCodes)
        @OptionGroup var connection: Connection

        func run() async throws {
            let data = try await connection.call(.GET, "sys/cluster/members")
            if connection.json { return try connection.print(json: data) }
            let members = data["members"] as? [String: [String: Any]] ?? [:]
            Swift.print("cluster \(data["cluster"] as? String ?? "?"): \(members.count) member(s)")
            for id in (data["keys"] as? [String] ?? []) {
                let member = members[id] ?? [:]
                let chip = (member["chip_id"] as? String ?? "").prefix(16)
                let measurement = (member["measurement"] as? String ?? "").prefix(16)
                let mark = member["self"] as? Bool == true ? " (answered)" : ""
                Swift.print(
                    "  \(id)\(mark): chip \(chip)…, measurement \(measurement)…, joined "
                        + "\(member["joined"] as? String ?? "?"), root key generation "
                        + "\(member["generation"] as? Int ?? 0)")
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a node: delete its entry and rotate the root key, so it cannot unseal again.",
            discussion: """
                The active node deletes the entry and seals a new root key to every other member in one \
                transaction; members that are not running pick it up when they start. The node cannot be the \
                active one (step it down first). Audited like every request.

                \(ClusterCommands.exitCodes)
                """)
        @OptionGroup var connection: Connection
        @Argument(help: "The node_id to remove.") var node: String

        func run() async throws {
            let escaped = node.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? node
            let data = try await connection.call(.DELETE, "sys/cluster/members/" + escaped)
            if connection.json { return try connection.print(json: data) }
            Swift.print(
                "removed \(node); the cluster's root key is now generation \(data["generation"] as? Int ?? 0)")
        }
    }

    struct RotateRoot: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-root",
            abstract: "Seal the keyring under a new cluster root key, sealed to every member (none needs to run).",
            discussion: ClusterCommands.exitCodes)
        @OptionGroup var connection: Connection

        func run() async throws {
            let data = try await connection.call(.PUT, "sys/cluster/rotate-root")
            if connection.json { return try connection.print(json: data) }
            Swift.print("the cluster's root key is now generation \(data["generation"] as? Int ?? 0)")
        }
    }
}
