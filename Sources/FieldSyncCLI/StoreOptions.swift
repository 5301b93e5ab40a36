import ArgumentParser
import FieldSyncStore
import Foundation

/// `--store PATH`, shared by every command; falls back to `FIELDSYNC_STORE`, then the XDG data folder.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The replica file (default: $FIELDSYNC_STORE, else $XDG_DATA_HOME/fieldsync/replica.sqlite).", valueName: "PATH"))
    var store: String?

    var path: String {
        if let store { return store }
        let environment = ProcessInfo.processInfo.environment
        if let fromEnvironment = environment["FIELDSYNC_STORE"], !fromEnvironment.isEmpty { return fromEnvironment }
        let dataHome = environment["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? URL(fileURLWithPath: NSHomeDirectory()).appendingPathComponent(".local/share").path
        return URL(fileURLWithPath: dataHome).appendingPathComponent("fieldsync/replica.sqlite").path
    }

    func open() throws -> ReplicaStore { try ReplicaStore.open(at: path) }
}

/// Milliseconds since 1970, the time stamp of local revisions.
func nowMilliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
