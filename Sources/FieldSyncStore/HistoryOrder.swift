import FieldSyncCore

/// Orders a record's stored revisions as every replica does (``HistoryStep/canonicalOrder(_:)``), so
/// `show --history` and exports read the same on identical replicas, whatever the arrival order.
public enum HistoryOrder {
    public static func canonical(_ stored: [StoredRevision]) -> [StoredRevision] {
        let byDot = Dictionary(stored.map { ($0.revision.dot, $0) }, uniquingKeysWith: { a, _ in a })
        return HistoryStep.canonicalOrder(stored.map(\.revision)).compactMap { byDot[$0.dot] }
    }
}
