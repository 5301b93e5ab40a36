import ArgumentParser
import FieldSyncStore
import FieldSyncVault
import Foundation

/// `fieldsync unlock`: asks for the passphrase once and leaves the key with an agent for a while.
struct UnlockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unlock", abstract: "Unlock an encrypted replica for a while (an agent holds its key).",
        discussion: """
            Asks for the passphrase once (or reads --passphrase-file) and starts a small agent that \
            holds the replica's key in locked memory, so that the commands that follow need no \
            passphrase. It forgets the key when the time is up, on `fieldsync lock`, and on \
            `fieldsync wipe`. Its socket is under $XDG_RUNTIME_DIR (mode 0600); it answers only you.

            Examples:
              fieldsync unlock              # 15 minutes
              fieldsync unlock --for 2h
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Option(name: .customLong("for"), help: ArgumentHelp("How long: 90s, 15m, 2h (at most 24h).", valueName: "DURATION"))
    var duration = "15m"

    func run() async throws {
        let seconds = try Self.seconds(duration)
        let keys = storeOptions.keys
        guard keys.isEncrypted else { throw CLIError("\(keys.store) is not encrypted (no key file): there is nothing to unlock") }
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let unlocked = try keys.unlock(
            try KeyFile.read(at: keys.keyFilePath), passphrase: try keys.passphrase(prompt: "Passphrase for \(keys.store): "))
        // The key must open the replica before an agent hands it out.
        try ReplicaStore.open(at: keys.store, key: unlocked.key).close()
        let socket = try KeyAgent.socketPath(for: unlocked.file)
        KeyAgent.lock(unlocked.file)
        let agent = Process()
        agent.executableURL = URL(fileURLWithPath: executable)
        agent.arguments = ["agent", "--socket", socket, "--seconds", String(seconds)]
        let input = Pipe()
        let output = Pipe()
        agent.standardInput = input
        agent.standardOutput = output
        agent.standardError = FileHandle.nullDevice
        try agent.run()
        input.fileHandleForWriting.write(Data((unlocked.key.rawBytes.map { String(format: "%02x", $0) }.joined() + "\n").utf8))
        try? input.fileHandleForWriting.close()
        let ready = String(decoding: output.fileHandleForReading.readData(ofLength: 6), as: UTF8.self)
        guard ready == "ready\n" else { throw CLIError("the unlock agent did not start") }
        print(
            "unlocked \(keys.store) for \(Self.describe(seconds)) (agent pid \(agent.processIdentifier)); `fieldsync lock` forgets the key")
    }

    /// `90s`, `15m`, `2h` or a plain number of seconds; from 1 s to 24 h.
    static func seconds(_ text: String) throws -> Int {
        let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600]
        var digits = Substring(text)
        var unit = 1
        if let last = text.last, let factor = units[last] {
            unit = factor
            digits = text.dropLast()
        }
        guard let count = Int(digits), count > 0, count * unit <= 86_400 else {
            throw CLIError("--for \(text): give a duration such as 90s, 15m or 2h, at most 24h")
        }
        return count * unit
    }

    static func describe(_ seconds: Int) -> String {
        if seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        if seconds % 60 == 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }
}

/// `fieldsync lock`: the agent forgets the key at once.
struct LockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lock", abstract: "Make the unlock agent forget the replica's key now.")

    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        let keys = storeOptions.keys
        guard keys.isEncrypted else { throw CLIError("\(keys.store) is not encrypted (no key file): there is nothing to lock") }
        if KeyAgent.lock(try KeyFile.read(at: keys.keyFilePath)) {
            print("locked \(keys.store): the agent forgot its key")
        } else {
            print("\(keys.store) was not unlocked (no agent held its key)")
        }
    }
}

/// `fieldsync agent`: the process `unlock` starts; not for people.
struct AgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent", abstract: "The key agent that `fieldsync unlock` starts.", shouldDisplay: false)

    @Option var socket: String
    @Option var seconds: Int

    func run() throws {
        // Its own session, deaf to the terminal closing; nothing inherited stays open.
        setsid()
        signal(SIGHUP, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        for fd in Int32(3)..<Int32(1024) { close(fd) }
        try KeyAgent.serve(readingKeyFrom: STDIN_FILENO, socketPath: socket, seconds: seconds) {
            FileHandle.standardOutput.write(Data("ready\n".utf8))
            let null = open("/dev/null", O_RDWR)
            dup2(null, STDOUT_FILENO)
            dup2(null, STDIN_FILENO)
            close(null)
        }
    }
}
