import ArgumentParser
import FieldSyncCore
import FieldSyncStore

/// `fieldsync verify`: checks a replica or central-node store end to end.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Check a store: integrity, signatures, version vectors, causal gaps, and state against a replay.",
        discussion: """
            Exits 0 when the store is sound and 1 naming every problem otherwise. Works on a replica or on \
            the central node's store.

            Examples:
              fieldsync verify
              fieldsync verify --store /srv/fieldsync/central.sqlite --json
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Flag(help: "Print the report as JSON.") var json = false

    func run() async throws {
        let report = try storeOptions.open().verify()
        if json {
            print(
                JSONValue.object([
                    "sound": .bool(report.isSound), "revisions": .int(Int64(report.revisions)), "records": .int(Int64(report.records)),
                    "verified_signatures": .int(Int64(report.verifiedSignatures)),
                    "problems": .array(report.problems.map(JSONValue.string)),
                    "set_aside": .array(
                        report.setAside.map { forked in
                            .object([
                                "node": .string(forked.dot.node.rawValue), "counter": .int(Int64(forked.dot.counter)),
                                "record": .string(forked.record.rawValue),
                                "hash": .string(forked.hash), "reason": .string(forked.reason), "detail": .string(forked.detail),
                                "stored": .string(RecordPresenter.isoTime(forked.stored)),
                            ])
                        }),
                ]).prettyText())
        } else {
            print("\(report.revisions) revisions, \(report.records) records, \(report.verifiedSignatures) signatures verified")
            for problem in report.problems { print("problem: \(TerminalText.visible(problem))") }
            for forked in report.setAside {
                print("set aside: \(forked.dot) of record \(forked.record) (\(forked.reason): \(forked.detail))")
            }
        }
        if !report.isSound {
            if !json { print("the store is NOT sound (\(report.problems.count) problem\(report.problems.count == 1 ? "" : "s"))") }
            throw ExitCode(1)
        }
        if !json { print("the store is sound") }
    }
}
