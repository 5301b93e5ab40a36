import ArgumentParser
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore
import FieldSyncVault
import Foundation

/// The `fieldsync` command: the front end for documenters and admins.
public struct FieldSyncCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "fieldsync",
        abstract: "Offline-first incident documentation that syncs without losing a word.",
        discussion: """
            Record incidents offline, then exchange changes with a central node (`fieldsync sync`) or by \
            bundle file. Concurrent edits merge field by field; real conflicts are kept for an admin.

            Example:
              fieldsync init --name "Rima" --store ~/rima.fieldsync
              fieldsync add --title "Shelling of the market" --occurred 2025-03-07~ --place Jableh
              fieldsync list
            """,
        version: "0.1.0",
        subcommands: [
            InitCommand.self, AddCommand.self, EditCommand.self, DeleteCommand.self, ShowCommand.self, ListCommand.self,
            StatusCommand.self, ConflictsCommand.self, ResolveCommand.self, BundleCommand.self, SyncCommand.self, ServeCommand.self,
            EnrollCommand.self, ServerCommand.self, UsersCommand.self, DevicesCommand.self, AuditCommand.self, ExportCommand.self,
            ImportCommand.self, VerifyCommand.self, BackupCommand.self, UnlockCommand.self, LockCommand.self, PassphraseCommand.self,
            WipeCommand.self, EncryptCommand.self, AgentCommand.self, AttachmentCommand.self, AttachCommand.self,
            ConsoleCommand.self,
        ])

    public init() {}

    /// Runs the command line and returns the process exit code: 0 on success, 1 for a user error
    /// (one line on stderr), 2 for a usage error.
    public static func run(arguments: [String]) async -> Int32 {
        let arguments = normalize(arguments)
        if let unknown = unknownSubcommand(in: arguments) {
            // ArgumentParser would print the parent's help and exit 0 for `fieldsync nosuch --help`.
            FileHandle.standardError.write(Data("fieldsync: unknown subcommand '\(unknown.name)'; \(unknown.hint)\n".utf8))
            return 2
        }
        do {
            var command = try parseAsRoot(arguments)
            let serving = command is ServeCommand || command is ConsoleCommand
            CommandLogging.bootstrap(try CommandLogging.level(fallback: serving ? .info : .warning))
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            return 0
        } catch let error as CLIError {
            return fail(error.description)
        } catch let error as StoreError {
            return fail(error.message)
        } catch let error as FieldSyncCore.ValidationError {
            return fail(error.description)
        } catch let error as ProtocolError {
            return fail(error.message)
        } catch let error as VaultError {
            return fail(error.message)
        } catch let error as ExitCode {
            return error.rawValue
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                return 0
            }
            if error is CleanExit { return code.rawValue }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            return 2
        }
    }

    /// The first word that should name a subcommand but names none, walking down from the root
    /// while the current command has subcommands. Options end the walk, as does `help` at the root.
    static func unknownSubcommand(in arguments: [String]) -> (name: String, hint: String)? {
        var subcommands = FieldSyncCommand.configuration.subcommands
        var path = ["fieldsync"]
        for argument in arguments {
            guard !subcommands.isEmpty, !argument.hasPrefix("-") else { return nil }
            if path.count == 1, argument == "help" { return nil }
            var next: [any ParsableCommand.Type]?
            var names: [String] = []
            for subcommand in subcommands {
                let configuration = subcommand.configuration
                let name = configuration.commandName ?? ""
                names.append(name)
                if name == argument || configuration.aliases.contains(argument) { next = configuration.subcommands }
            }
            guard let found = next else {
                let parent = path.joined(separator: " ")
                return (argument, "\(parent) has: \(names.joined(separator: ", ")) (see '\(parent) --help')")
            }
            subcommands = found
            path.append(argument)
        }
        return nil
    }

    static func fail(_ message: String) -> Int32 {
        // Messages can quote input (a path, a value, a bundle's member): never raw control characters.
        FileHandle.standardError.write(Data("fieldsync: \(TerminalText.visible(message))\n".utf8))
        return 1
    }

    /// `--store PATH` and `--passphrase-file FILE` are accepted before the subcommand as well as
    /// after it: move them after the subcommand path, where the parser expects them.
    static func normalize(_ arguments: [String]) -> [String] {
        var leading: [String] = []
        var rest = arguments[...]
        let global = ["--store", "--passphrase-file"]
        while let first = rest.first, let option = global.first(where: { first == $0 || first.hasPrefix($0 + "=") }) {
            if first == option, rest.count >= 2 {
                leading += rest.prefix(2)
                rest = rest.dropFirst(2)
            } else if first.hasPrefix(option + "=") {
                leading.append(first)
                rest = rest.dropFirst()
            } else {
                break
            }
        }
        guard !leading.isEmpty else { return arguments }
        if let terminator = rest.firstIndex(of: "--") {
            return Array(rest[..<terminator]) + leading + Array(rest[terminator...])
        }
        return Array(rest) + leading
    }
}
