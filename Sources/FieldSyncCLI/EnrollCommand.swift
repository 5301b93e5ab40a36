import ArgumentParser
import FieldSyncClient
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore

/// `fieldsync enroll`: registers this replica's device key with the central node, using a one-time code.
struct EnrollCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll", abstract: "Enrol this replica with a central node using a one-time code from an admin.",
        discussion: """
            Registers the replica's node id and Ed25519 public key, and stores the bearer token the \
            server returns (in the replica file, mode 0600; it is never printed).

            Example:
              fieldsync enroll --server https://central.example.org --code abcde-fghij-kmnpq-rstuv-wxyz2-34567-89abc-defgh
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Option(help: "The central node's URL.") var server: String
    @Option(help: "The one-time enrolment code.") var code: String
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        try SyncCommand.checkURL(server)
        let store = try storeOptions.open()
        let identity = try store.identity()
        let transport = try HTTPSyncTransport(baseURL: server, node: identity.node)
        let response: EnrolResponse
        do {
            response = try await transport.enrol(EnrolRequest(code: Secrets.normaliseCode(code), node: identity.node, publicKey: try store.publicKey()))
            await transport.shutdown()
        } catch let error as SyncError {
            await transport.shutdown()
            if case .rejected(_, let rejection) = error { throw CLIError("enrolment refused: \(rejection.message)") }
            throw CLIError("enrolment failed: \(error.description)")
        }
        try store.saveEnrolment(Enrolment(server: server, token: response.token, user: response.user, role: response.role), now: nowMilliseconds())
        if json {
            print(JSONValue.object([
                "server": .string(server), "user": .string(response.user), "role": .string(response.role.rawValue), "node": .string(identity.node.rawValue),
            ]).canonicalText)
        } else {
            print("enrolled with \(server) as \(response.user) (\(response.role.rawValue)); node \(identity.node)")
        }
    }
}
