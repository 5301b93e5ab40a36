import ArgumentParser
import FieldSyncStore
import Foundation

/// `--store PATH`, shared by every command; falls back to `FIELDSYNC_STORE`, then the XDG data folder.
struct StoreOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp("The replica file (default: $FIELDSYNC_STORE, else $XDG_DATA_HOME/fieldsync/replica.sqlite).", valueName: "PATH")
    )
    var store: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "A file whose first line is the replica's passphrase (default: $FIELDSYNC_PASSPHRASE_FILE, else a running `fieldsync unlock`, else the terminal).",
            valueName: "FILE"))
    var passphraseFile: String?

    var path: String { Self.resolve(store, defaultFile: "replica.sqlite") }

    var keys: ReplicaKeys { ReplicaKeys(store: path, passphraseFile: passphraseFile) }

    /// `store` when given, else `$FIELDSYNC_STORE`, else `defaultFile` in `$XDG_DATA_HOME/fieldsync`
    /// (`~/.local/share/fieldsync` when `XDG_DATA_HOME` is unset or empty). A plain function, so a
    /// command that never parsed this option group (`serve`, `server add-user`) can use it too.
    static func resolve(_ store: String?, defaultFile: String) -> String {
        if let store { return store }
        let environment = ProcessInfo.processInfo.environment
        if let fromEnvironment = environment["FIELDSYNC_STORE"], !fromEnvironment.isEmpty { return fromEnvironment }
        let dataHome =
            environment["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? URL(fileURLWithPath: Self.homeDirectory(environment)).appendingPathComponent(".local/share").path
        return URL(fileURLWithPath: dataHome).appendingPathComponent("fieldsync").appendingPathComponent(defaultFile).path
    }

    /// `$HOME` as the shell sees it; corelibs Foundation's `NSHomeDirectory()` reads the password
    /// database instead, which ignores a `HOME` set for a test or a service.
    static func homeDirectory(_ environment: [String: String]) -> String {
        if let home = environment["HOME"], !home.isEmpty { return home }
        return NSHomeDirectory()
    }

    /// Opens the replica, with its data key when it is encrypted.
    func open() throws -> ReplicaStore {
        // With a key file the key is asked for even when the replica file is missing: the duress
        // passphrase then finishes a switch that a crash cut short.
        let keys = self.keys
        guard keys.isEncrypted || FileManager.default.fileExists(atPath: path) else { return try ReplicaStore.open(at: path) }
        return try ReplicaStore.open(at: path, key: try keys.dataKey())
    }
}

/// Milliseconds since 1970, the time stamp of local revisions.
func nowMilliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
